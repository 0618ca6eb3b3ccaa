"""Content negotiation: which representation a request's ``Accept`` header asks for.

Owns the parsing of ``Accept`` media ranges (type/subtype, parameters ``g``, ``v``, ``as``
and ``q``) and the choice, for a resource endpoint, between plain JSON (or YAML), a
server-side ``Table`` (``as=Table;g=meta.k8s.io;v=v1|v1beta1``) and
``PartialObjectMetadata``/``PartialObjectMetadataList``.  Protobuf is not served: when it is
the only acceptable type the answer is a 406 NotAcceptable; listed next to JSON, JSON wins.
Also ``encode`` to turn an object into bytes for a negotiated target.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson
import yaml

from pybernetes.machinery.errors import StatusError, not_acceptable

_YamlDumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)

META_GROUP = "meta.k8s.io"
META_VERSIONS = ("v1", "v1beta1")
JSON = "application/json"
YAML = "application/yaml"
# What a resource endpoint can produce, as named in 406 messages.
SERVED_MEDIA_TYPES = (JSON, YAML)


@dataclass(frozen=True, slots=True)
class MediaRange:
    """One entry of an Accept header: ``application/json;as=Table;v=v1;g=meta.k8s.io``."""

    type: str  # "application", "*"
    subtype: str  # "json", "yaml", "*"
    params: dict[str, str] = field(default_factory=dict)  # lower-case keys, without q
    q: float = 1.0

    @property
    def media_type(self) -> str:
        return f"{self.type}/{self.subtype}"

    def matches(self, media_type: str) -> bool:
        """Whether this range covers the concrete ``type/subtype``."""
        want_type, _, want_sub = media_type.partition("/")
        if self.type == "*":
            return True
        return self.type == want_type and self.subtype in ("*", want_sub)


@dataclass(frozen=True, slots=True)
class Target:
    """The representation to send for one request."""

    kind: str  # "json" (the object itself) | "table" | "partial"
    version: str = ""  # meta.k8s.io version for table/partial: "v1" or "v1beta1"
    content_type: str = JSON
    encoding: str = "json"  # "json" | "yaml"


JSON_TARGET = Target("json", "", JSON, "json")
YAML_TARGET = Target("json", "", YAML, "yaml")


def _split_outside_quotes(text: str, sep: str) -> list[str]:
    parts: list[str] = []
    current: list[str] = []
    quoted = False
    for ch in text:
        if ch == '"':
            quoted = not quoted
        if ch == sep and not quoted:
            parts.append("".join(current))
            current = []
        else:
            current.append(ch)
    parts.append("".join(current))
    return parts


def parse_media_range(text: str) -> MediaRange | None:
    """Parse one media range; None when it is not of the form ``type/subtype[;k=v]*``."""
    pieces = _split_outside_quotes(text, ";")
    base = pieces[0].strip().lower()
    main, slash, sub = base.partition("/")
    if not slash or not main or not sub:
        # A lone "*" is tolerated by many clients as "*/*".
        if base == "*":
            main, sub = "*", "*"
        else:
            return None
    params: dict[str, str] = {}
    q = 1.0
    for piece in pieces[1:]:
        key, eq, value = piece.partition("=")
        key = key.strip().lower()
        if not key:
            continue
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] == '"':
            value = value[1:-1]
        if key == "q":
            try:
                q = float(value) if eq else 1.0
            except ValueError:
                q = 0.0
            q = min(max(q, 0.0), 1.0)
        else:
            params[key] = value
    return MediaRange(main, sub, params, q)


def parse_accept(accept: str | None) -> list[MediaRange]:
    """Media ranges with q > 0, most preferred first (ties keep the header's order).
    An absent or empty header means ``*/*``."""
    if accept is None or not accept.strip():
        return [MediaRange("*", "*")]
    ranges = []
    for part in _split_outside_quotes(accept, ","):
        if not part.strip():
            continue
        media = parse_media_range(part)
        if media is not None and media.q > 0:
            ranges.append(media)
    ranges.sort(key=lambda m: -m.q)  # stable: equal q keeps header order
    return ranges


def _concrete(media: MediaRange) -> tuple[str, str] | None:
    """The concrete type we would send for a range: (content type, encoding)."""
    if media.matches(JSON):
        return JSON, "json"
    if media.matches(YAML):
        return YAML, "yaml"
    return None


def _conversion_target(media: MediaRange, *, list_: bool, watch: bool) -> Target | None:
    """The Table/PartialObjectMetadata target a range with ``as=`` asks for, if served."""
    as_kind = media.params.get("as", "")
    group = media.params.get("g", "")
    version = media.params.get("v", "")
    if group != META_GROUP or version not in META_VERSIONS:
        return None
    concrete = _concrete(media)
    if concrete is None:
        return None
    base, encoding = concrete
    if as_kind == "Table":
        kind = "table"
    elif as_kind == "PartialObjectMetadata" and (not list_ or watch):
        kind = "partial"
    elif as_kind == "PartialObjectMetadataList" and list_ and not watch:
        kind = "partial"
    else:
        return None
    content_type = f"{base};as={as_kind};g={group};v={version}"
    return Target(kind, version, content_type, encoding)


def negotiate(accept: str | None, *, list_: bool, watch: bool = False) -> Target:
    """Choose the representation for a resource request.

    ``list_`` is true for lists (and collection watches: pass ``watch=True`` too, which
    makes the per-event ``PartialObjectMetadata`` form acceptable as upstream does).
    Raises a 406 StatusError when nothing acceptable can be produced.
    """
    if accept is None or not accept.strip():
        return JSON_TARGET
    for media in parse_accept(accept):
        if "as" in media.params:
            target = _conversion_target(media, list_=list_, watch=watch)
            if target is not None:
                return target
            continue
        concrete = _concrete(media)
        if concrete is None:
            continue
        content_type, encoding = concrete
        return JSON_TARGET if encoding == "json" else YAML_TARGET
    raise not_acceptable_error()


def not_acceptable_error(served: tuple[str, ...] = SERVED_MEDIA_TYPES) -> StatusError:
    """406 worded as upstream words it."""
    return not_acceptable("only the following media types are accepted: " + ", ".join(served))


def accepts_json(accept: str | None) -> bool:
    """Whether plain JSON is acceptable (for endpoints that only speak JSON)."""
    for media in parse_accept(accept):
        if "as" not in media.params and media.matches(JSON):
            return True
    return False


def encode(target: Target, obj: Any) -> bytes:
    """Encode an object (already converted to the target's kind) in the target's encoding."""
    if target.encoding == "yaml":
        return yaml.dump(obj, Dumper=_YamlDumper, default_flow_style=False, sort_keys=False).encode()
    return orjson.dumps(obj)
