"""Decoding request bodies: JSON and YAML into wire-shaped objects, with duplicate-field
detection for ``fieldValidation`` and upstream-worded 400s for malformed input.

``decode_body(body, content_type)`` returns ``(object, duplicate_paths)``.  JSON is parsed by
orjson, which silently keeps the last of duplicate keys; to stay fast when there are none (the
usual case), the number of ``":`` pairs in the body is compared with that of orjson's compact
re-encoding — equal means no key was dropped — and only on a mismatch is the body parsed again
by the standard library with a hook that names each duplicate by its path
(``metadata.name``, ``spec.containers[0].image``).  YAML (also JSON sent as YAML) is parsed by
PyYAML's C loader into nodes that are then built into plain values here: timestamps stay
strings, non-string keys become strings, duplicates are recorded with their paths, and alias
expansion is bounded.

``encode(obj)`` is the matching fast encoder (orjson).
"""

from __future__ import annotations

import base64
import json
import math
from typing import Any

import orjson
import yaml

from pybernetes.machinery.errors import StatusError, bad_request, unsupported_media_type
from pybernetes.machinery.patch._json import json_kind

JSON_TYPES = frozenset(
    {
        "application/json",
        "application/json-patch+json",
        "application/merge-patch+json",
        "application/strategic-merge-patch+json",
    }
)
YAML_TYPES = frozenset({"application/yaml", "application/apply-patch+yaml", "text/yaml"})

ACCEPTED_MEDIA = "application/json, application/yaml, application/vnd.kubernetes.protobuf"

_NOT_AN_OBJECT = (
    'json: cannot unmarshal {} into Go value of type struct {{ APIVersion string '
    '"json:\\"apiVersion,omitempty\\""; Kind string "json:\\"kind,omitempty\\"" }}'
)


def encode(obj: Any) -> bytes:
    """Encode a wire-shaped object as compact JSON."""
    return orjson.dumps(obj)


def media_type(content_type: str | None) -> str:
    """The bare media type of a Content-Type header (parameters dropped, lower case)."""
    if not content_type:
        return ""
    return content_type.split(";", 1)[0].strip().lower()


def summarize(body: bytes, limit: int = 30) -> str:
    """How upstream quotes a rejected body: JSON-looking text as is, anything else in hex."""
    if not body:
        return "<empty>"
    head = body[:limit]
    more = " ..." if len(body) > limit else ""
    if body[:1] == b"{":
        return head.decode("utf-8", "replace") + more
    return head.hex() + more


def decode_body(
    body: bytes,
    content_type: str,
    *,
    kind: str = "",
    require_object: bool = True,
) -> tuple[Any, list[str]]:
    """Decode a request body; return (value, paths of duplicate fields).

    ``kind`` (the kind the URL expects) only words the error as upstream's create/update
    handlers do; ``require_object=False`` accepts any top-level value (JSON patch lists).
    Malformed input raises a 400 StatusError; an unknown media type a 415.
    """
    media = media_type(content_type)
    if media in JSON_TYPES or media.endswith("+json"):
        value, duplicates = _decode_json(body, kind)
    elif media in YAML_TYPES or media.endswith("+yaml"):
        value, duplicates = _decode_yaml(body, kind)
    else:
        raise unsupported_media_type(
            f"the body of the request was in an unknown format - accepted media types include: "
            f"{ACCEPTED_MEDIA}"
        )
    if require_object and not isinstance(value, dict):
        raise _decode_error(_NOT_AN_OBJECT.format(json_kind(value)), body, kind, prefix=True)
    return value, duplicates


def _decode_error(detail: str, body: bytes, kind: str, *, prefix: bool) -> StatusError:
    inner = f"couldn't get version/kind; json parse error: {detail}" if prefix else detail
    if kind:
        return bad_request(
            f"the object provided is unrecognized (must be of type {kind}): {inner} ({summarize(body)})"
        )
    return bad_request(inner)


# ---------------------------------------------------------------------------------------
# JSON
# ---------------------------------------------------------------------------------------


def _decode_json(body: bytes, kind: str) -> tuple[Any, list[str]]:
    try:
        value = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        detail = "unexpected end of JSON input" if not body.strip() else str(exc)
        raise _decode_error(detail, body, kind, prefix=True) from None
    if not isinstance(value, dict | list):
        return value, []
    if body.count(b'":') == orjson.dumps(value).count(b'":'):
        return value, []
    return value, json_duplicate_paths(body)


class _PairsDict(dict):
    """A dict built from key/value pairs that remembers which keys were repeated."""

    __slots__ = ("duplicates",)


def _pairs_hook(pairs: list[tuple[str, Any]]) -> _PairsDict:
    result = _PairsDict()
    repeated: list[str] = []
    for key, value in pairs:
        if key in result and key not in repeated:
            repeated.append(key)
        result[key] = value
    result.duplicates = repeated
    return result


def json_duplicate_paths(body: bytes) -> list[str]:
    """The paths of every repeated key in a JSON document (slow path: exact)."""
    try:
        tree = json.loads(body, object_pairs_hook=_pairs_hook)
    except ValueError:
        return []
    paths: list[str] = []
    _collect(tree, "", paths)
    return paths


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _collect(node: Any, path: str, paths: list[str]) -> None:
    if isinstance(node, dict):
        for key in getattr(node, "duplicates", ()):
            paths.append(_join(path, key))
        for key, value in node.items():
            if isinstance(value, dict | list):
                _collect(value, _join(path, key), paths)
    elif isinstance(node, list):
        for index, value in enumerate(node):
            if isinstance(value, dict | list):
                _collect(value, f"{path}[{index}]", paths)


# ---------------------------------------------------------------------------------------
# YAML
# ---------------------------------------------------------------------------------------


class _Loader(yaml.CSafeLoader if hasattr(yaml, "CSafeLoader") else yaml.SafeLoader):  # type: ignore[misc]
    """Safe loader whose timestamps stay strings (as sigs.k8s.io/yaml leaves them)."""


_Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


class _YamlBuilder:
    """Builds plain JSON values from a composed YAML node tree."""

    def __init__(self, loader: yaml.SafeLoader, budget: int) -> None:
        self.loader = loader
        self.budget = budget
        self.duplicates: list[str] = []

    def build(self, node: yaml.Node, path: str, depth: int = 0) -> Any:
        self.budget -= 1
        if self.budget < 0:
            raise ValueError("document contains excessive aliasing")
        if depth > 1000:
            raise ValueError("exceeded max depth of 1000")
        if isinstance(node, yaml.MappingNode):
            self.loader.flatten_mapping(node)
            result: dict[str, Any] = {}
            for key_node, value_node in node.value:
                key = _key_text(self.loader.construct_object(key_node, deep=True))
                if key in result:
                    self.duplicates.append(_join(path, key))
                result[key] = self.build(value_node, _join(path, key), depth + 1)
            return result
        if isinstance(node, yaml.SequenceNode):
            return [self.build(item, f"{path}[{i}]", depth + 1) for i, item in enumerate(node.value)]
        return _scalar(self.loader.construct_object(node, deep=True))


def _key_text(key: Any) -> str:
    if isinstance(key, str):
        return key
    if isinstance(key, bool):
        return "true" if key else "false"
    if key is None:
        return "null"
    if isinstance(key, int | float):
        return _scalar_text(key)
    raise ValueError(f"invalid map key: {key!r}")


def _scalar_text(value: int | float) -> str:
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e21:
        return str(int(value))
    return str(value)


def _scalar(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"json: unsupported value: {'NaN' if math.isnan(value) else '+Inf' if value > 0 else '-Inf'}")
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    return str(value)


def _decode_yaml(body: bytes, kind: str) -> tuple[Any, list[str]]:
    stripped = body.lstrip()
    if stripped[:1] in (b"{", b"["):
        try:
            return _decode_json(body, "")
        except StatusError:
            pass  # not JSON after all: YAML flow style
    loader = _Loader(body)
    try:
        node = loader.get_node() if loader.check_node() else None
        if node is None:
            return None, []
        builder = _YamlBuilder(loader, budget=10 * len(body) + 10000)
        value = builder.build(node, "")
        return value, builder.duplicates
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = f"line {mark.line + 1}: " if mark is not None else ""
        problem = exc.problem or exc.context or "invalid YAML"
        raise _decode_error(f"error converting YAML to JSON: yaml: {line}{problem}", body, kind,
                            prefix=False) from None
    except (yaml.YAMLError, ValueError, RecursionError) as exc:
        raise _decode_error(f"error converting YAML to JSON: yaml: {exc}", body, kind, prefix=False) from None
    finally:
        loader.dispose()
