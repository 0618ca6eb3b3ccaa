"""OpenAPI v3: the /openapi/v3 index and one OpenAPI 3.0 document per group-version.

Owns the documents kubectl reads for validation (a PATCH operation with the kind's
``x-kubernetes-group-version-kind`` and a ``fieldValidation`` parameter), for client-side
apply (patch strategies and merge keys in the component schemas) and for ``explain``.
Paths and operations come from the resource registry (``openapi_paths``); component schemas
from the upstream v1.32 definitions (``api.schemas``), converted from JSON Schema to OpenAPI
3.0 form and cut down to what each group-version's kinds reach.  Documents are built on
first request and kept encoded; each is named in the index by a hash of its bytes, and a
request naming the current hash may be cached immutably.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass
from email.utils import formatdate
from typing import Any

import orjson
from aiohttp import web

from pybernetes.api.registry import Registry
from pybernetes.apiserver.discovery import GIT_VERSION, group_versions
from pybernetes.apiserver.negotiation import JSON, accepts_json
from pybernetes.apiserver.openapi_paths import META, gv_paths, kind_roots

log = logging.getLogger(__name__)

Obj = dict[str, Any]
DEFS_PREFIX = "#/$defs/"
SCHEMAS_PREFIX = "#/components/schemas/"
INT_OR_STRING = "io.k8s.apimachinery.pkg.util.intstr.IntOrString"
# Always part of a document: what every operation's parameters and responses refer to.
COMMON_ROOTS = (
    f"{META}.Status",
    f"{META}.DeleteOptions",
    f"{META}.Patch",
    f"{META}.WatchEvent",
    f"{META}.APIResourceList",
)
_YEAR = 365 * 24 * 3600


# -- schema conversion: JSON Schema (kubernetes-validate) -> OpenAPI 3.0 --------------------


def _drop_null(value: Any) -> Any:
    """``["string", "null"]`` -> ``"string"``."""
    if isinstance(value, list):
        kept = [t for t in value if t != "null"]
        return kept[0] if len(kept) == 1 else kept
    return value


def convert_schema(schema: Any, *, top: bool = True) -> Any:
    """One JSON Schema node as OpenAPI 3.0: refs into components, non-nullable types, a
    ``$ref`` with siblings wrapped in ``allOf`` (3.0 ignores a ref's siblings), and no
    ``enum`` pinning apiVersion/kind (one definition may serve several kinds)."""
    if isinstance(schema, list):
        return [convert_schema(item, top=False) for item in schema]
    if not isinstance(schema, dict):
        return schema
    out: Obj = {}
    for key, value in schema.items():
        if key in ("$schema", "$id"):
            continue
        if key == "type":
            out[key] = _drop_null(value)
        elif key == "$ref":
            out[key] = SCHEMAS_PREFIX + value.removeprefix(DEFS_PREFIX).rsplit("/", 1)[-1]
        elif key == "properties" and isinstance(value, dict):
            props = {}
            for name, prop in value.items():
                prop = convert_schema(prop, top=False)
                if name in ("apiVersion", "kind") and isinstance(prop, dict):
                    prop.pop("enum", None)
                props[name] = prop
            out[key] = props
        elif key in ("items", "additionalProperties", "oneOf", "anyOf", "allOf", "not"):
            out[key] = convert_schema(value, top=False)
        else:
            out[key] = value  # descriptions, formats, x-kubernetes-* extensions
    if "$ref" in out and len(out) > 1:
        ref = out.pop("$ref")
        out = {"allOf": [{"$ref": ref}], **out}
    return out


def convert_definitions(definitions: dict[str, Obj]) -> dict[str, Obj]:
    """All definitions as OpenAPI 3.0 component schemas."""
    converted = {name: convert_schema(schema) for name, schema in definitions.items()}
    if INT_OR_STRING in converted:
        converted[INT_OR_STRING] = {
            **converted[INT_OR_STRING],
            "format": "int-or-string",
            "x-kubernetes-int-or-string": True,
        }
    return converted


def refs_in(schema: Any) -> Iterable[str]:
    """Names of the component schemas a node refers to."""
    stack = [schema]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "$ref" and isinstance(value, str) and value.startswith(SCHEMAS_PREFIX):
                    yield value[len(SCHEMAS_PREFIX) :]
                elif isinstance(value, dict | list):
                    stack.append(value)
        elif isinstance(node, list):
            stack.extend(node)


def reachable(schemas: dict[str, Obj], roots: Iterable[str]) -> dict[str, Obj]:
    """The schemas named by ``roots`` and everything they refer to, sorted by name."""
    seen: set[str] = set()
    todo = [r for r in roots if r in schemas]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        todo.extend(ref for ref in refs_in(schemas[name]) if ref in schemas and ref not in seen)
    return {name: schemas[name] for name in sorted(seen)}


def gvk_index(schemas: dict[str, Obj]) -> dict[tuple[str, str, str], str]:
    """(group, version, kind) -> definition name, from x-kubernetes-group-version-kind."""
    index: dict[tuple[str, str, str], str] = {}
    for name, schema in schemas.items():
        for gvk in schema.get("x-kubernetes-group-version-kind") or ():
            index.setdefault((gvk.get("group", ""), gvk.get("version", ""), gvk.get("kind", "")), name)
    return index


# -- documents -------------------------------------------------------------------------------


def gv_path_key(group: str, version: str) -> str:
    """The index key of a group-version: ``api/v1``, ``apis/apps/v1``."""
    return f"apis/{group}/{version}" if group else f"api/{version}"


def build_document(
    registry: Registry,
    group: str,
    version: str,
    schemas: dict[str, Obj],
    index: dict[tuple[str, str, str], str],
) -> Obj:
    """The OpenAPI 3.0 document of one group-version."""
    resources = [r for r in registry.all() if r.group == group and r.version == version]
    resources.sort(key=lambda r: r.resource)
    paths = gv_paths(group, version, resources, index)
    roots = list(COMMON_ROOTS)
    for res in resources:
        roots.extend(kind_roots(res, index))
    return {
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": GIT_VERSION},
        "paths": paths,
        "components": {
            "schemas": reachable(schemas, roots),
            "securitySchemes": {
                "BearerToken": {
                    "type": "apiKey",
                    "description": "Bearer token authentication",
                    "name": "authorization",
                    "in": "header",
                }
            },
        },
        "security": [{"BearerToken": []}],
    }


@dataclass(frozen=True, slots=True)
class Encoded:
    body: bytes
    hash: str  # upper-case hex sha512 of body, as upstream names documents


def _encode(doc: Obj) -> Encoded:
    body = orjson.dumps(doc)
    return Encoded(body, hashlib.sha512(body).hexdigest().upper())


def _load_definitions() -> dict[str, Obj]:
    from pybernetes.api.schemas import schemas

    return schemas().definitions()


class OpenAPIService:
    """Lazily built, cached, encoded OpenAPI v3 documents of one registry."""

    def __init__(self, registry: Registry, definitions: dict[str, Obj] | None = None) -> None:
        self.registry = registry
        self.keys: dict[str, tuple[str, str]] = {
            gv_path_key(g, v): (g, v) for g, vs in group_versions(registry).items() for v in vs
        }
        self._definitions = definitions
        self._schemas: dict[str, Obj] | None = None
        self._index: dict[tuple[str, str, str], str] = {}
        self._documents: dict[str, Encoded] = {}
        self._index_doc: Encoded | None = None

    def _component_schemas(self) -> dict[str, Obj]:
        if self._schemas is None:
            definitions = self._definitions if self._definitions is not None else _load_definitions()
            self._schemas = convert_definitions(definitions)
            self._index = gvk_index(self._schemas)
        return self._schemas

    def document(self, key: str) -> Encoded | None:
        """The encoded document of ``api/v1`` / ``apis/G/V``; None if not served."""
        cached = self._documents.get(key)
        if cached is not None:
            return cached
        gv = self.keys.get(key)
        if gv is None:
            return None
        schemas = self._component_schemas()
        encoded = _encode(build_document(self.registry, gv[0], gv[1], schemas, self._index))
        self._documents[key] = encoded
        return encoded

    def index(self) -> Encoded:
        if self._index_doc is None:
            paths = {}
            for key in self.keys:
                doc = self.document(key)
                assert doc is not None
                paths[key] = {"serverRelativeURL": f"/openapi/v3/{key}?hash={doc.hash}"}
            self._index_doc = _encode({"paths": paths})
        return self._index_doc

    # -- HTTP ---------------------------------------------------------------------------

    async def _ready(self, build) -> Any:
        """Build outside the event loop the first time (a few hundred ms of CPU at most)."""
        if self._index_doc is None:
            return await asyncio.get_running_loop().run_in_executor(None, build)
        return build()

    async def get_index(self, request: web.Request) -> web.Response:
        if not accepts_json(request.headers.get("Accept")):
            return _not_acceptable()
        doc = await self._ready(self.index)
        return _respond(request, doc, {"Cache-Control": "no-cache, private"})

    async def get_document(self, request: web.Request) -> web.Response:
        key = request.match_info["path"].strip("/")
        if key not in self.keys:
            return _not_found()
        if not accepts_json(request.headers.get("Accept")):
            return _not_acceptable()
        doc = await self._ready(lambda: self.document(key))
        wanted = request.query.get("hash")
        if wanted is None:
            return _respond(request, doc, {"Cache-Control": "no-cache, private"})
        if wanted != doc.hash:
            location = f"/openapi/v3/{key}?hash={doc.hash}"
            return web.Response(
                status=301, headers={"Location": location, "Cache-Control": "no-cache, private"}
            )
        headers = {
            "Cache-Control": "public, immutable",
            "Expires": formatdate(time.time() + _YEAR, usegmt=True),
        }
        return _respond(request, doc, headers)


def _respond(request: web.Request, doc: Encoded, headers: dict[str, str]) -> web.Response:
    etag = f'"{doc.hash}"'
    headers = {**headers, "ETag": etag, "Vary": "Accept"}
    if etag in request.headers.get("If-None-Match", ""):
        return web.Response(status=304, headers=headers)
    return web.Response(body=doc.body, content_type=JSON, headers=headers)


def _status(code: int, reason: str, message: str) -> web.Response:
    status = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    }
    return web.Response(body=orjson.dumps(status), status=code, content_type=JSON)


def _not_found() -> web.Response:
    return _status(404, "NotFound", "the server could not find the requested resource")


def _not_acceptable() -> web.Response:
    return _status(406, "NotAcceptable", f"only the following media types are accepted: {JSON}")


def add_routes(
    app: web.Application, registry: Registry, definitions: dict[str, Obj] | None = None
) -> OpenAPIService:
    """Serve /openapi/v3 and /openapi/v3/{api/v1|apis/G/V} for ``registry`` on ``app``.
    ``definitions`` (JSON Schema ``$defs``) defaults to ``api.schemas``'s."""
    service = OpenAPIService(registry, definitions)
    app.router.add_get("/openapi/v3", service.get_index)
    app.router.add_get("/openapi/v3/", service.get_index)
    app.router.add_get("/openapi/v3/{path:.+}", service.get_document)
    return service
