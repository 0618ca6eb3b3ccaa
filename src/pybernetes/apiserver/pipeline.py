"""The request path's security stages: authentication, authorization, admission.

Interfaces only plus the glue the handlers call; the plugins live in ``authn/``, ``authz/``
and ``admission/`` (pass-through for now; the security issue adds real ones):

- an ``Authenticator`` turns a request into a ``UserInfo`` (or None: not authenticated,
  401), reading headers and the TLS peer certificate;
- an ``Authorizer`` decides on ``Attributes`` (user, verb, resource, namespace, name ...);
  a deny is a 403 worded as upstream words it;
- an ``AdmissionChain`` (``admission/chain.py``) runs mutating then validating plugins on
  ``AdmissionAttributes`` around the store's write.

``Pipeline`` bundles the three; ``build_app`` puts one on the application.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import orjson
from aiohttp import web

from pybernetes.machinery.errors import StatusError, forbidden, unauthorized


@dataclass(frozen=True, slots=True)
class UserInfo:
    name: str
    uid: str = ""
    groups: tuple[str, ...] = ()
    extra: dict[str, tuple[str, ...]] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Attributes:
    """What is being asked (upstream's authorizer.Attributes)."""

    user: UserInfo
    verb: str  # get list watch create update patch delete deletecollection (or an HTTP verb)
    resource_request: bool = True
    api_group: str = ""
    api_version: str = ""
    resource: str = ""
    subresource: str = ""
    namespace: str = ""
    name: str = ""
    path: str = ""  # for non-resource requests (/healthz, /version ...)


@dataclass(frozen=True, slots=True)
class Decision:
    allowed: bool
    reason: str = ""


class Authenticator(Protocol):
    async def authenticate(self, request: web.Request) -> UserInfo | None: ...


class Authorizer(Protocol):
    async def authorize(self, attrs: Attributes) -> Decision: ...


class AdmissionAttributes:
    """One write as admission plugins see it (upstream's admission.Attributes).

    ``obj`` is the incoming object (mutating plugins change it in place); ``old`` is the
    stored object for updates and deletes when the caller knows it.
    """

    __slots__ = ("operation", "group", "version", "resource", "subresource", "kind", "namespace",
                 "name", "obj", "old", "user", "dry_run", "options")

    def __init__(self, operation: str, group: str, version: str, resource: str, subresource: str,
                 kind: str, namespace: str, name: str, obj: Any, old: Any, user: UserInfo,
                 dry_run: bool, options: Any = None) -> None:
        self.operation = operation  # CREATE UPDATE DELETE CONNECT
        self.group = group
        self.version = version
        self.resource = resource
        self.subresource = subresource
        self.kind = kind
        self.namespace = namespace
        self.name = name
        self.obj = obj
        self.old = old
        self.user = user
        self.dry_run = dry_run
        self.options = options


class AdmissionPlugin(Protocol):
    """A plugin implements ``admit`` (mutating), ``validate`` (validating) or both; one it
    does not take part in is absent (the chain checks with hasattr once)."""

    name: str


def forbidden_message(attrs: Attributes, reason: str) -> str:
    user = attrs.user.name
    if not attrs.resource_request:
        text = f'forbidden: User "{user}" cannot {attrs.verb} path "{attrs.path}"'
    else:
        resource = attrs.resource + (f"/{attrs.subresource}" if attrs.subresource else "")
        target = f'{resource} "{attrs.name}"' if attrs.name else resource
        text = (f'{target} is forbidden: User "{user}" cannot {attrs.verb} resource '
                f'"{resource}" in API group "{attrs.api_group}"')
        text += f' in the namespace "{attrs.namespace}"' if attrs.namespace else " at the cluster scope"
    return f"{text}: {reason}" if reason else text


class Pipeline:
    def __init__(self, authenticator: Authenticator, authorizer: Authorizer, admission: Any) -> None:
        self.authenticator = authenticator
        self.authorizer = authorizer
        self.admission = admission  # an admission.chain.AdmissionChain

    async def authenticate(self, request: web.Request) -> UserInfo:
        user = await self.authenticator.authenticate(request)
        if user is None:
            raise unauthorized()
        return user

    async def authorize(self, attrs: Attributes) -> None:
        decision = await self.authorizer.authorize(attrs)
        if not decision.allowed:
            err: StatusError = forbidden(forbidden_message(attrs, decision.reason))
            details: dict[str, Any] = {"group": attrs.api_group, "kind": attrs.resource}
            if attrs.name:
                details["name"] = attrs.name
            err.details = details
            raise err


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def guard_non_resource(pipeline: Pipeline, handler: Handler) -> Handler:
    """Wrap a non-resource endpoint (/version, /api, /openapi/v3, /healthz ...) so that it too
    is authenticated and authorized (verb = the lower-case HTTP method, as upstream)."""

    async def guarded(request: web.Request) -> web.StreamResponse:
        try:
            user = await pipeline.authenticate(request)
            await pipeline.authorize(Attributes(user, request.method.lower(), False, path=request.path))
        except StatusError as err:
            return web.Response(body=orjson.dumps(err.to_status()), status=err.code,
                                content_type="application/json")
        return await handler(request)

    return guarded


class GuardedApp:
    """What ``add_routes(app, ...)`` of the discovery, OpenAPI and health modules get: the
    application, whose router wraps every handler with ``guard_non_resource``."""

    def __init__(self, app: web.Application, pipeline: Pipeline) -> None:
        self._app = app
        self.router = _GuardedRouter(app.router, pipeline)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._app, name)

    def __getitem__(self, key: Any) -> Any:
        return self._app[key]

    def __setitem__(self, key: Any, value: Any) -> None:
        self._app[key] = value


class _GuardedRouter:
    def __init__(self, router: web.UrlDispatcher, pipeline: Pipeline) -> None:
        self._router = router
        self._pipeline = pipeline

    def add_route(self, method: str, path: str, handler: Handler, **kwargs: Any) -> Any:
        return self._router.add_route(method, path, guard_non_resource(self._pipeline, handler), **kwargs)

    def add_get(self, path: str, handler: Handler, **kwargs: Any) -> Any:
        return self._router.add_get(path, guard_non_resource(self._pipeline, handler), **kwargs)

    def add_post(self, path: str, handler: Handler, **kwargs: Any) -> Any:
        return self._router.add_post(path, guard_non_resource(self._pipeline, handler), **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._router, name)


def default_pipeline() -> Pipeline:
    """The pipeline the server runs with until the security issue lands: pass-through
    authentication and authorization; admission: DefaultStorageClass,
    StorageObjectInUseProtection (upstream's order)."""
    from pybernetes.apiserver.admission.chain import AdmissionChain
    from pybernetes.apiserver.admission.default_storage_class import DefaultStorageClass
    from pybernetes.apiserver.admission.storage_object_in_use_protection import StorageObjectInUseProtection
    from pybernetes.apiserver.authn.passthrough import PassThroughAuthenticator
    from pybernetes.apiserver.authz.passthrough import AlwaysAllowAuthorizer

    return Pipeline(PassThroughAuthenticator(), AlwaysAllowAuthorizer(),
                    AdmissionChain([DefaultStorageClass(), StorageObjectInUseProtection()]))
