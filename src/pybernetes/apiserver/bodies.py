"""Request bodies: size limit, content types, decoding, the object's type, field validation.

``read_body`` reads at most 3 MiB (upstream's limit; more is a 413).  ``media_type`` picks the
bare media type out of a Content-Type.  ``decode_object`` decodes a JSON or YAML body once
(``machinery.decode.decode_body``), checks apiVersion/kind against what the URL expects, and
applies fieldValidation: Strict rejects unknown and duplicate fields with a 400 naming them as
upstream's strict decoder does, Warn drops unknown fields and reports each in a ``Warning``
header, Ignore drops them silently.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from pybernetes.api.schemas import schemas
from pybernetes.machinery.decode import decode_body
from pybernetes.machinery.errors import (
    bad_request,
    request_entity_too_large,
    unsupported_media_type,
)
from pybernetes.machinery.protobuf import MEDIA_TYPE as PROTOBUF
from pybernetes.machinery.protobuf import decode_protobuf_body

MAX_BODY_BYTES = 3 * 1024 * 1024

JSON = "application/json"
YAML = "application/yaml"
JSON_PATCH = "application/json-patch+json"
MERGE_PATCH = "application/merge-patch+json"
STRATEGIC_MERGE_PATCH = "application/strategic-merge-patch+json"
APPLY_PATCH = "application/apply-patch+yaml"

OBJECT_TYPES = (JSON, YAML, PROTOBUF)
PATCH_TYPES = (JSON_PATCH, MERGE_PATCH, STRATEGIC_MERGE_PATCH, APPLY_PATCH)


async def read_body(request: web.Request) -> bytes:
    length = request.content_length
    if length is not None and length > MAX_BODY_BYTES:
        raise request_entity_too_large(f"limit is {MAX_BODY_BYTES}")
    try:
        return await request.read()
    except web.HTTPRequestEntityTooLarge:
        raise request_entity_too_large(f"limit is {MAX_BODY_BYTES}") from None


def media_type(content_type: str | None) -> str:
    """``application/json; charset=utf-8`` -> ``application/json`` ("" stays "")."""
    if not content_type:
        return ""
    return content_type.split(";", 1)[0].strip().lower()


def object_media_type(content_type: str | None) -> str:
    """The media type of a create/update body; none given means JSON (as upstream)."""
    mt = media_type(content_type)
    if mt == "":
        return JSON
    if mt in OBJECT_TYPES:
        return mt
    raise unsupported_media_type(_unsupported_message(OBJECT_TYPES))


def patch_media_type(content_type: str | None) -> str:
    mt = media_type(content_type)
    if mt in PATCH_TYPES:
        return mt
    raise unsupported_media_type(_unsupported_message(PATCH_TYPES))


def _unsupported_message(supported: tuple[str, ...]) -> str:
    return ("the body of the request was in an unknown format - accepted media types include: "
            + ", ".join(supported))


def decode(body: bytes, content_type: str, kind: str = "") -> tuple[Any, list[str]]:
    """Decode once (malformed input is a 400 worded as upstream's decoder words it)."""
    if content_type == PROTOBUF:  # typed client-go clients (kubectl create ...) send protobuf
        return decode_protobuf_body(body, kind=kind), []
    return decode_body(body, content_type, kind=kind)


def check_type(obj: Any, api_version: str, kind: str) -> dict[str, Any]:
    """The body must be an object of the expected apiVersion/kind (missing ones are filled in)."""
    if not isinstance(obj, dict):
        raise bad_request(f"{kind} in version \"{api_version.rsplit('/', 1)[-1]}\" cannot be "
                          f"handled as a {kind}: the body must be a JSON object")
    body_version = obj.get("apiVersion")
    body_kind = obj.get("kind")
    if body_version is not None and not isinstance(body_version, str):
        raise bad_request("apiVersion must be a string")
    if body_kind is not None and not isinstance(body_kind, str):
        raise bad_request("kind must be a string")
    if body_version and body_version != api_version:
        raise bad_request(f"the API version in the data ({body_version}) does not match the "
                          f"expected API version ({api_version})")
    if body_kind and body_kind != kind:
        raise bad_request(f"the kind in the data ({body_kind}) does not match the expected kind ({kind})")
    if not body_version:
        obj["apiVersion"] = api_version
    if not body_kind:
        obj["kind"] = kind
    metadata = obj.get("metadata")
    if metadata is not None and not isinstance(metadata, dict):
        raise bad_request(f"{kind} in version \"{api_version.rsplit('/', 1)[-1]}\" cannot be handled "
                          f"as a {kind}: metadata must be an object")
    return obj


def field_validation(
    obj: dict[str, Any],
    duplicates: list[str],
    group: str,
    version: str,
    kind: str,
    mode: str,
) -> list[str]:
    """Apply fieldValidation to a decoded body; returns the Warning texts to send."""
    unknown = schemas().unknown_fields(obj, group, version, kind)
    if not unknown and not duplicates:
        return []
    if mode == "Strict":
        problems = [f'unknown field "{path}"' for path in unknown]
        problems += [f'duplicate field "{path}"' for path in duplicates]
        raise bad_request(f'{kind} in version "{version}" cannot be handled as a {kind}: '
                          f'strict decoding error: {", ".join(problems)}')
    for path in unknown:
        drop_path(obj, path)
    if mode == "Ignore":
        return []
    return [f'unknown field "{path}"' for path in unknown] + [
        f'duplicate field "{path}"' for path in duplicates]


def drop_path(obj: Any, path: str) -> None:
    """Remove the field at ``spec.containers[0].foo`` (a no-op when it is not there).

    Keys may themselves contain dots; at each step the longest key present in the dict wins.
    """
    node = obj
    rest = path
    while rest:
        if rest.startswith("["):
            close = rest.find("]")
            if close < 0 or not isinstance(node, list):
                return
            try:
                index = int(rest[1:close])
            except ValueError:
                return
            if index >= len(node):
                return
            rest = rest[close + 1:].removeprefix(".")
            if not rest:
                del node[index]
                return
            node = node[index]
            continue
        if not isinstance(node, dict):
            return
        key = _longest_key(node, rest)
        if key is None:
            return
        rest = rest[len(key):].removeprefix(".")
        if not rest:
            del node[key]
            return
        node = node[key]


def _longest_key(node: dict[str, Any], rest: str) -> str | None:
    if rest in node:
        return rest
    best = None
    for i, ch in enumerate(rest):
        if ch in ".[" and rest[:i] in node:
            best = rest[:i]
    return best
