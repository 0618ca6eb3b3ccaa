"""PATCH bodies applied to the current object (pure): the three patch types, the checks
upstream makes on the patched object (name and namespace), and unknown fields handled per
fieldValidation (Strict: 400, Warn: warnings, Ignore: dropped).
"""

from __future__ import annotations

import re
from typing import Any

import orjson

from pybernetes.api.resource import ResourceDef
from pybernetes.machinery.errors import StatusError, bad_request, unsupported_media_type
from pybernetes.machinery.patch import (
    apply_json_patch,
    apply_merge_patch,
    apply_strategic_merge_patch,
)

Obj = dict[str, Any]

JSON_PATCH = "application/json-patch+json"
MERGE_PATCH = "application/merge-patch+json"
STRATEGIC_MERGE_PATCH = "application/strategic-merge-patch+json"
PATCH_TYPES = (JSON_PATCH, MERGE_PATCH, STRATEGIC_MERGE_PATCH)


def patch_type_of(content_type: str) -> str:
    """The patch type of a Content-Type header (parameters ignored); 415 otherwise."""
    media = (content_type or "").split(";", 1)[0].strip().lower()
    if media not in PATCH_TYPES:
        raise unsupported_media_type(
            f"the body of the request was in an unknown format - accepted media types include: "
            f"{', '.join(PATCH_TYPES)}"
        )
    return media


def decode_patch(body: bytes, patch_type: str) -> Any:
    try:
        patch = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise bad_request(f"error decoding patch: {exc}") from None
    if patch_type != JSON_PATCH and not isinstance(patch, dict):
        raise bad_request(
            "error decoding patch: json: cannot unmarshal "
            f"{_json_type(patch)} into Go value of type map[string]interface {{}}"
        )
    return patch


def _json_type(value: Any) -> str:
    if isinstance(value, list):
        return "array"
    if isinstance(value, str):
        return "string"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    return "null"


def apply_patch(
    group: str, version: str, kind: str, current: Obj, patch_type: str, patch: Any
) -> Obj:
    """The patched document (``current`` is not mutated)."""
    if patch_type == JSON_PATCH:
        result = apply_json_patch(current, patch)
    elif patch_type == MERGE_PATCH:
        result = apply_merge_patch(current, patch)
    else:
        result = apply_strategic_merge_patch(current, patch, patch_meta(group, version, kind))
    if not isinstance(result, dict):
        raise StatusError(
            422, "Invalid", "the patched document is not an object", {"kind": kind}
        )
    return result


def patch_meta(group: str, version: str, kind: str) -> Any:
    from pybernetes.api.schemas import schemas

    return schemas().patch_meta(group, version, kind)


def check_patched_identity(res: ResourceDef, obj: Obj, namespace: str | None, name: str) -> None:
    """A patch may not rename the object nor move it to another namespace (upstream's
    checkName on the patched object)."""
    meta = obj.get("metadata")
    if not isinstance(meta, dict):
        raise bad_request("metadata: must be an object")
    body_name = meta.get("name") or ""
    if body_name != name:
        raise bad_request(
            f"the name of the object ({body_name}) does not match the name on the URL ({name})"
        )
    if res.namespaced:
        body_ns = meta.get("namespace") or ""
        if body_ns and body_ns != namespace:
            raise bad_request(
                f"the namespace of the object ({body_ns}) does not match the namespace on the "
                f"request ({namespace})"
            )


def unknown_fields(res: ResourceDef, obj: Obj) -> list[str]:
    from pybernetes.api.schemas import schemas

    return list(schemas().unknown_fields(obj, res.group, res.version, res.kind))


def handle_unknown_fields(res: ResourceDef, obj: Obj, mode: str, warnings: list[str]) -> None:
    """Strict: 400 naming the fields; Warn: warnings; Ignore: the fields are dropped."""
    fields = unknown_fields(res, obj)
    if not fields:
        return
    if mode == "Strict":
        text = ", ".join(f'unknown field "{f}"' for f in fields)
        raise bad_request(f"strict decoding error: {text}")
    if mode == "Warn":
        warnings.extend(f'unknown field "{f}"' for f in fields)
    for path in fields:
        drop_path(obj, path)


_SEGMENT = re.compile(r"([^.\[\]]+)|\[(\d+)\]")


def drop_path(obj: Any, path: str) -> None:
    """Remove the field at ``a.b[0].c`` from ``obj`` (in place) if it is there."""
    steps: list[str | int] = []
    for match in _SEGMENT.finditer(path):
        steps.append(match.group(1) if match.group(1) is not None else int(match.group(2)))
    node = obj
    for step in steps[:-1]:
        if isinstance(step, int):
            if not isinstance(node, list) or step >= len(node):
                return
        elif not isinstance(node, dict) or step not in node:
            return
        node = node[step]
    if steps and isinstance(node, dict) and isinstance(steps[-1], str):
        node.pop(steps[-1], None)
