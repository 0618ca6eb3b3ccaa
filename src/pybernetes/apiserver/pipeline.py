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

from dataclasses import dataclass, field
from typing import Any, Protocol

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


def default_pipeline() -> Pipeline:
    """The pass-through pipeline the server runs with until the security issue lands."""
    from pybernetes.apiserver.admission.chain import AdmissionChain
    from pybernetes.apiserver.authn.passthrough import PassThroughAuthenticator
    from pybernetes.apiserver.authz.passthrough import AlwaysAllowAuthorizer

    return Pipeline(PassThroughAuthenticator(), AlwaysAllowAuthorizer(), AdmissionChain([]))
