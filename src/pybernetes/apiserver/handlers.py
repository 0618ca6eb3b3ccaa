"""REST handlers: one entry point per group-version prefix, dispatching on verb.

Owns the request path of DESIGN.md for resource requests: resolve the path
(``requestinfo``), authenticate and authorize (``pipeline``), read and decode the body once
(``bodies``: 3 MiB limit, content types, apiVersion/kind, fieldValidation), run admission
around the store, call the resource's ``ResourceStore``, and encode the answer once
(``responses``: JSON / Table / PartialObjectMetadata).  Watches are handed to ``watch``.
Every failure is a metav1 Status; an unexpected exception is logged and answered 500.

Admission runs in the handlers, before the store: mutating then validating plugins see the
decoded body of a create/update (``obj``), and only the request's attributes for a patch or
delete (``obj`` None, the options or patch body in ``options``), because the old and the
patched object exist only inside the store's read-modify-write.  Plugins that need them
(the security issue's) need a hook in the store's update loop.

Subresources other than status, scale and binding (pods/log, exec, eviction ... of later
issues) plug in through ``ResourceHandlers.subresource_handlers``.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from pybernetes.api.registry import Registry
from pybernetes.apiserver import bodies, negotiation, params, responses, tables
from pybernetes.apiserver.pipeline import AdmissionAttributes, Attributes, Pipeline, UserInfo
from pybernetes.apiserver.requestinfo import RequestInfo, not_found_path, resolve
from pybernetes.apiserver.store import ResourceStore, Stores, WriteOptions
from pybernetes.apiserver.watch import WatchServer
from pybernetes.machinery.errors import StatusError, bad_request, internal_error

log = logging.getLogger(__name__)

SubresourceHandler = Callable[[web.Request, RequestInfo, ResourceStore, UserInfo], Awaitable[web.StreamResponse]]

# Resources whose DELETE answers the deleted object instead of a Status (upstream's
# ReturnDeletedObject).
_RETURNS_DELETED_OBJECT = frozenset({("", "pods"), ("", "services")})
_OPERATIONS = {"create": "CREATE", "update": "UPDATE", "patch": "UPDATE", "delete": "DELETE",
               "deletecollection": "DELETE"}


class ResourceHandlers:
    def __init__(self, registry: Registry, stores: Stores, pipeline: Pipeline, watches: WatchServer) -> None:
        self.registry = registry
        self.stores = stores
        self.pipeline = pipeline
        self.watches = watches
        self.subresource_handlers: dict[tuple[str, str, str], SubresourceHandler] = {}

    # -- entry points -----------------------------------------------------------------

    async def core(self, request: web.Request) -> web.StreamResponse:
        return await self.handle(request, "", "v1", request.match_info["tail"])

    async def grouped(self, request: web.Request) -> web.StreamResponse:
        info = request.match_info
        return await self.handle(request, info["group"], info["version"], info["tail"])

    async def handle(self, request: web.Request, group: str, version: str, tail: str) -> web.StreamResponse:
        try:
            user = await self.pipeline.authenticate(request)
            query = request.query
            watch_param = "watch" in query and query["watch"].lower() in ("true", "1", "")
            info = resolve(self.registry, group, version, request.method, tail, watch_param=watch_param)
            await self.pipeline.authorize(Attributes(
                user, info.verb, True, group, version, info.res.resource, info.subresource or "",
                info.scope_namespace, info.name or ""))
            store = self.stores.for_resource(info.res)
            if info.subresource is not None and info.subresource not in ("status", "scale", "binding",
                                                                          "finalize"):
                handler = self.subresource_handlers.get((group, info.res.resource, info.subresource))
                if handler is None:
                    raise not_found_path()
                return await handler(request, info, store, user)
            method = getattr(self, "_" + info.verb)
            return await method(request, info, store, user)
        except StatusError as err:
            return responses.status_error_response(err)
        except Exception as exc:  # never crash, never leak a traceback to the client
            log.exception("%s %s failed", request.method, request.path)
            return responses.status_error_response(internal_error(f"{type(exc).__name__}: {exc}"))

    # -- reads ------------------------------------------------------------------------

    async def _get(self, request: web.Request, info: RequestInfo, store: ResourceStore,
                   user: UserInfo) -> web.StreamResponse:
        if info.subresource == "scale":
            return responses.object_response(await store.get_scale(info.namespace or "", info.name or ""))
        target = negotiation.negotiate(request.headers.get("Accept"), list_=False)
        include = tables.include_object_policy(request.query.get("includeObject"))
        obj = await store.get(info.namespace, info.name or "", request.query.get("resourceVersion", ""))
        if info.subresource is not None:
            target = negotiation.JSON_TARGET
        return responses.encode_object(info.res, obj, target, include)

    async def _list(self, request: web.Request, info: RequestInfo, store: ResourceStore,
                    user: UserInfo) -> web.StreamResponse:
        target = negotiation.negotiate(request.headers.get("Accept"), list_=True)
        include = tables.include_object_policy(request.query.get("includeObject"))
        opts = params.list_options(request.query, watch=False)
        page = await store.list(info.namespace, opts)
        return responses.encode_list(info.res, page, target, include)

    async def _watch(self, request: web.Request, info: RequestInfo, store: ResourceStore,
                     user: UserInfo) -> web.StreamResponse:
        target = negotiation.negotiate(request.headers.get("Accept"), list_=True, watch=True)
        include = tables.include_object_policy(request.query.get("includeObject"))
        opts = params.list_options(request.query, watch=True)
        return await self.watches.serve(request, info, store, opts, target, include)

    # -- writes -----------------------------------------------------------------------

    async def _read_object(self, request: web.Request, info: RequestInfo, opts: WriteOptions,
                           api_version: str, kind: str) -> dict[str, Any]:
        """Body of a create/update: decoded once, typed, field-validated; namespace filled."""
        content_type = bodies.object_media_type(request.headers.get("Content-Type"))
        body = await bodies.read_body(request)
        obj, duplicates = bodies.decode(body, content_type, kind)
        obj = bodies.check_type(obj, api_version, kind)
        group, _, version = api_version.rpartition("/")
        opts.warnings.extend(bodies.field_validation(obj, duplicates, group, version, kind,
                                                     opts.field_validation))
        meta = obj.get("metadata")
        if meta is None:
            meta = obj["metadata"] = {}
        body_ns = meta.get("namespace")
        if info.res.namespaced and info.namespace is not None:
            if body_ns and body_ns != info.namespace:
                raise bad_request("the namespace of the provided object does not match the "
                                  "namespace sent on the request")
            meta["namespace"] = info.namespace
        elif body_ns is not None and not info.res.namespaced:
            del meta["namespace"]
        if info.name is not None and info.verb == "update":
            body_name = meta.get("name", "")
            if body_name != info.name:
                raise bad_request(f"the name of the object ({body_name}) does not match the name on "
                                  f"the URL ({info.name})")
        return obj

    async def _admit(self, info: RequestInfo, user: UserInfo, obj: Any, old: Any,
                     opts: WriteOptions, options: Any = None) -> None:
        chain = self.pipeline.admission
        if chain.empty:
            return
        attrs = AdmissionAttributes(
            _OPERATIONS.get(info.verb, "CONNECT") if info.subresource != "binding" else "CREATE",
            info.res.group, info.res.version, info.res.resource, info.subresource or "",
            info.res.kind, info.scope_namespace, info.name or "", obj, old, user, opts.dry_run, options)
        await chain.admit(attrs)
        await chain.validate(attrs)

    async def _create(self, request: web.Request, info: RequestInfo, store: ResourceStore,
                      user: UserInfo) -> web.StreamResponse:
        opts = params.write_options(request.query)
        if info.subresource == "binding":
            binding = await self._read_object(request, info, opts, "v1", "Binding")
            await self._admit(info, user, binding, None, opts)
            await store.bind(info.namespace or "", info.name or "", binding, opts)
            return responses.object_response(
                {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201},
                201, opts.warnings)
        if info.subresource is not None:
            raise not_found_path()
        obj = await self._read_object(request, info, opts, info.res.api_version, info.res.kind)
        await self._admit(info, user, obj, None, opts)
        created = await store.create(info.namespace, obj, opts)
        return responses.object_response(created, 201, opts.warnings)

    async def _update(self, request: web.Request, info: RequestInfo, store: ResourceStore,
                      user: UserInfo) -> web.StreamResponse:
        opts = params.write_options(request.query)
        if info.subresource == "scale":
            scale = await self._read_object(request, info, opts, "autoscaling/v1", "Scale")
            await self._admit(info, user, scale, None, opts)
            result = await store.update_scale(info.namespace or "", info.name or "", scale, opts)
            return responses.object_response(result, 200, opts.warnings)
        obj = await self._read_object(request, info, opts, info.res.api_version, info.res.kind)
        await self._admit(info, user, obj, None, opts)
        result, created = await store.update(info.namespace, info.name or "", obj, opts, info.subresource)
        return responses.object_response(result, 201 if created else 200, opts.warnings)

    async def _patch(self, request: web.Request, info: RequestInfo, store: ResourceStore,
                     user: UserInfo) -> web.StreamResponse:
        patch_type = bodies.patch_media_type(request.headers.get("Content-Type"))
        opts = params.write_options(request.query, apply=patch_type == bodies.APPLY_PATCH)
        body = await bodies.read_body(request)
        if not body.strip():
            raise bad_request("the body of the request was empty")
        # The patched object exists only inside the store's read-modify-write: admission sees
        # the request's attributes here (obj None); see the module docstring.
        await self._admit(info, user, None, None, opts, body)
        if info.subresource == "scale":
            result = await store.patch_scale(info.namespace or "", info.name or "", patch_type, body, opts)
        else:
            result = await store.patch(info.namespace, info.name or "", patch_type, body, opts,
                                       info.subresource)
        return responses.object_response(result, 200, opts.warnings)

    async def _delete_options(self, request: web.Request, opts: WriteOptions) -> dict[str, Any]:
        body = await bodies.read_body(request) if request.can_read_body else b""
        decoded = None
        if body.strip():
            content_type = bodies.object_media_type(request.headers.get("Content-Type"))
            decoded, _ = bodies.decode(body, content_type)
        options = params.delete_options(request.query, decoded)
        if options.get("dryRun"):
            opts.dry_run = True
        return options

    async def _delete(self, request: web.Request, info: RequestInfo, store: ResourceStore,
                      user: UserInfo) -> web.StreamResponse:
        opts = params.write_options(request.query)
        options = await self._delete_options(request, opts)
        await self._admit(info, user, None, None, opts, options)
        result = await store.delete(info.namespace, info.name or "", options, opts)
        if result.deleted:
            if (info.res.group, info.res.resource) in _RETURNS_DELETED_OBJECT:
                return responses.object_response(result.obj, 200, opts.warnings)
            return responses.object_response(responses.success_status(info.res, result.obj), 200,
                                             opts.warnings)
        # Still there (finalizers, graceful deletion): 202 only when the client asked for
        # cascading deletion with the legacy orphanDependents=false, as upstream.
        status = 202 if options.get("orphanDependents") is False else 200
        return responses.object_response(result.obj, status, opts.warnings)

    async def _deletecollection(self, request: web.Request, info: RequestInfo, store: ResourceStore,
                                user: UserInfo) -> web.StreamResponse:
        opts = params.write_options(request.query)
        options = await self._delete_options(request, opts)
        list_opts = params.list_options(request.query, watch=False)
        await self._admit(info, user, None, None, opts, options)
        deleted = await store.delete_collection(info.namespace, list_opts, options, opts)
        return responses.object_response(
            {"kind": info.res.list_kind, "apiVersion": info.res.api_version, "metadata": {},
             "items": deleted}, 200, opts.warnings)
