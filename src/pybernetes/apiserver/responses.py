"""Encoding REST responses: objects, lists, Tables, PartialObjectMetadata, Status errors.

Objects are encoded once with orjson; a JSON list is the join of its entries' stored JSON
bytes (no decode, no re-encode).  Tables and PartialObjectMetadata are built by
``apiserver/tables.py`` for the target ``apiserver/negotiation.py`` chose.  ``Warning``
headers (fieldValidation=Warn and other warnings) are added as upstream formats them:
``299 - "<text>"``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import orjson
from aiohttp import web
from multidict import CIMultiDict

from pybernetes.api.resource import ResourceDef
from pybernetes.apiserver import negotiation, tables
from pybernetes.apiserver.negotiation import Target
from pybernetes.apiserver.store import ListPage
from pybernetes.machinery.errors import StatusError
from pybernetes.storage.cacher import VALUE

JSON = "application/json"


def warning_value(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace('"', '\\"')
    return f'299 - "{escaped}"'


def _headers(content_type: str, warnings: Iterable[str] | None) -> CIMultiDict[str]:
    headers: CIMultiDict[str] = CIMultiDict()
    headers["Content-Type"] = content_type
    if warnings:
        for text in warnings:
            headers.add("Warning", warning_value(text))
    return headers


def json_bytes(body: bytes, status: int = 200, warnings: list[str] | None = None,
               content_type: str = JSON) -> web.Response:
    if warnings:
        return web.Response(body=body, status=status, headers=_headers(content_type, warnings))
    return web.Response(body=body, status=status, content_type=content_type)


def object_response(obj: Any, status: int = 200, warnings: list[str] | None = None) -> web.Response:
    return json_bytes(orjson.dumps(obj), status, warnings)


def status_error_response(err: StatusError, warnings: list[str] | None = None) -> web.Response:
    return json_bytes(orjson.dumps(err.to_status()), err.code, warnings)


def success_status(res: ResourceDef, obj: dict[str, Any]) -> dict[str, Any]:
    """The Status a delete answers when the object is gone (upstream's finalizeDelete)."""
    meta = obj.get("metadata") or {}
    details: dict[str, Any] = {"name": meta.get("name", "")}
    if res.group:
        details["group"] = res.group
    details["kind"] = res.resource
    if meta.get("uid"):
        details["uid"] = meta["uid"]
    return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
            "details": details}


def list_meta(page: ListPage) -> dict[str, Any]:
    meta: dict[str, Any] = {"resourceVersion": page.resource_version}
    if page.continue_token:
        meta["continue"] = page.continue_token
        if page.remaining_item_count is not None:
            meta["remainingItemCount"] = page.remaining_item_count
    return meta


def list_json(res: ResourceDef, page: ListPage) -> bytes:
    """``{"kind":"PodList",...,"items":[...]}`` by joining the stored JSON of the entries."""
    head = orjson.dumps({"kind": res.list_kind, "apiVersion": res.api_version,
                         "metadata": list_meta(page)})
    return b"".join((head[:-1], b',"items":[', b",".join([e[VALUE] for e in page.entries]), b"]}"))


def encode_object(res: ResourceDef, obj: dict[str, Any], target: Target, include_object: str,
                  status: int = 200, warnings: list[str] | None = None) -> web.Response:
    """One object (get/create/update/patch) in the negotiated representation."""
    if target.kind == "json" and target.encoding == "json":
        return object_response(obj, status, warnings)
    if target.kind == "table":
        converted = tables.to_table(res, [obj], include_object=include_object, version=target.version)
    elif target.kind == "partial":
        converted = tables.to_partial(obj, target.version)
    else:
        converted = obj
    return json_bytes(negotiation.encode(target, converted), status, warnings, target.content_type)


def encode_list(res: ResourceDef, page: ListPage, target: Target, include_object: str) -> web.Response:
    if target.kind == "json" and target.encoding == "json":
        return json_bytes(list_json(res, page))
    objs = [orjson.loads(e[VALUE]) for e in page.entries]
    meta = list_meta(page)
    if target.kind == "table":
        converted = tables.to_table(res, objs, list_meta=meta, include_object=include_object,
                                    version=target.version)
    elif target.kind == "partial":
        converted = tables.to_partial_list(res, objs, meta, target.version)
    else:
        converted = {"kind": res.list_kind, "apiVersion": res.api_version, "metadata": meta,
                     "items": objs}
    return json_bytes(negotiation.encode(target, converted), 200, None, target.content_type)
