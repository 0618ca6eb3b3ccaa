"""Discovery endpoints: /version, /api, /apis, /api/v1, /apis/{group}, /apis/{group}/{version}.

Owns the wire shapes clients read to learn what the server serves: the version info kubectl
(and its version dispatcher) reads; the aggregated discovery document
(apidiscovery.k8s.io/v2 or v2beta1 ``APIGroupDiscoveryList``, chosen by ``Accept``, with an
ETag) and the legacy forms (``APIVersions``, ``APIGroupList``, ``APIGroup``,
``APIResourceList`` with subresources as ``pods/status`` entries).  Every document is built
and encoded once, when the routes are added: discovery is hit by every kubectl run.
"""

from __future__ import annotations

import base64
import hashlib
import platform
import re
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import orjson
from aiohttp import web

from pybernetes.api.registry import Registry
from pybernetes.api.resource import ResourceDef
from pybernetes.apiserver.negotiation import JSON, parse_accept
from pybernetes.machinery.errors import StatusError, not_acceptable

KUBE_MAJOR = "1"
KUBE_MINOR = "32"
KUBE_PATCH = "4"
GIT_VERSION = f"v{KUBE_MAJOR}.{KUBE_MINOR}.{KUBE_PATCH}+pybernetes"
BUILD_DATE = "2025-04-22T00:00:00Z"

DISCOVERY_GROUP = "apidiscovery.k8s.io"
DISCOVERY_VERSIONS = ("v2", "v2beta1")
DISCOVERY_AS = "APIGroupDiscoveryList"

Obj = dict[str, Any]

_NOT_FOUND = StatusError(404, "NotFound", "the server could not find the requested resource")
_ARCH = {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm", "i686": "386", "ppc64le": "ppc64le"}


def version_info() -> Obj:
    """The /version document: upstream's fields, Kubernetes 1.32 with a pybernetes build tag."""
    machine = platform.machine().lower()
    return {
        "major": KUBE_MAJOR,
        "minor": KUBE_MINOR,
        "gitVersion": GIT_VERSION,
        "gitCommit": "",
        "gitTreeState": "",
        "buildDate": BUILD_DATE,
        "goVersion": f"python{platform.python_version()}",
        "compiler": platform.python_implementation().lower(),
        "platform": f"{sys.platform}/{_ARCH.get(machine, machine)}",
    }


_VERSION_RE = re.compile(r"^v(\d+)(?:(alpha|beta)(\d+))?$")


def version_priority(version: str) -> tuple[int, int, int, str]:
    """Sort key putting versions in upstream's preference order: GA (highest first), then
    beta, then alpha, then anything else alphabetically."""
    match = _VERSION_RE.match(version)
    if not match:
        return (3, 0, 0, version)
    major = int(match.group(1))
    level = {None: 0, "beta": 1, "alpha": 2}[match.group(2)]
    minor = int(match.group(3) or 0)
    return (level, -major, -minor, "")


def storage_version_hash(group: str, version: str, kind: str) -> str:
    """A short stable hash of the storage version (8 bytes of sha256, base64)."""
    digest = hashlib.sha256(f"{group}/{version}/{kind}".encode()).digest()
    return base64.b64encode(digest[:8]).decode()


def _gv(group: str, version: str) -> str:
    return f"{group}/{version}" if group else version


def _scope(res: ResourceDef) -> str:
    return "Namespaced" if res.namespaced else "Cluster"


# -- document builders (pure) ---------------------------------------------------------------


def group_versions(registry: Registry) -> dict[str, list[str]]:
    """Served groups, in registration order, each with its versions most preferred first."""
    groups: dict[str, list[str]] = {}
    for group, version in registry.group_versions():
        groups.setdefault(group, []).append(version)
    return {g: sorted(vs, key=version_priority) for g, vs in groups.items()}


def resources_of(registry: Registry, group: str, version: str) -> list[ResourceDef]:
    found = [r for r in registry.all() if r.group == group and r.version == version]
    return sorted(found, key=lambda r: r.resource)


def api_resource_list(registry: Registry, group: str, version: str) -> Obj:
    """Legacy ``APIResourceList`` for one group-version."""
    entries: list[Obj] = []
    for res in resources_of(registry, group, version):
        entry: Obj = {
            "name": res.resource,
            "singularName": res.singular,
            "namespaced": res.namespaced,
            "kind": res.kind,
            "verbs": list(res.verbs),
        }
        if res.short_names:
            entry["shortNames"] = list(res.short_names)
        if res.categories:
            entry["categories"] = list(res.categories)
        entry["storageVersionHash"] = storage_version_hash(group, version, res.kind)
        entries.append(entry)
        for sub in sorted(res.subresources, key=lambda s: s.name):
            sub_entry: Obj = {"name": f"{res.resource}/{sub.name}", "singularName": ""}
            sub_entry["namespaced"] = res.namespaced
            if (sub.group, sub.version) != (group, version):
                sub_entry["group"] = sub.group
                sub_entry["version"] = sub.version
            sub_entry["kind"] = sub.kind
            sub_entry["verbs"] = list(sub.verbs)
            entries.append(sub_entry)
    doc: Obj = {"kind": "APIResourceList"}
    if group:
        doc["apiVersion"] = "v1"
    doc["groupVersion"] = _gv(group, version)
    doc["resources"] = entries
    return doc


def api_group(group: str, versions: list[str]) -> Obj:
    listed = [{"groupVersion": _gv(group, v), "version": v} for v in versions]
    return {
        "kind": "APIGroup",
        "apiVersion": "v1",
        "name": group,
        "versions": listed,
        "preferredVersion": listed[0],
    }


def api_group_list(registry: Registry) -> Obj:
    groups = []
    for group, versions in group_versions(registry).items():
        if not group:
            continue
        entry = api_group(group, versions)
        del entry["kind"], entry["apiVersion"]
        groups.append(entry)
    return {"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}


def _discovery_resource(res: ResourceDef) -> Obj:
    entry: Obj = {
        "resource": res.resource,
        "responseKind": {"group": res.group, "version": res.version, "kind": res.kind},
        "scope": _scope(res),
        "singularResource": res.singular,
        "verbs": list(res.verbs),
    }
    if res.short_names:
        entry["shortNames"] = list(res.short_names)
    if res.categories:
        entry["categories"] = list(res.categories)
    if res.subresources:
        entry["subresources"] = [
            {
                "subresource": sub.name,
                "responseKind": {"group": sub.group, "version": sub.version, "kind": sub.kind},
                "verbs": list(sub.verbs),
            }
            for sub in sorted(res.subresources, key=lambda s: s.name)
        ]
    return entry


def _discovery_group(registry: Registry, group: str, versions: Iterable[str]) -> Obj:
    metadata: Obj = {"creationTimestamp": None}
    if group:
        metadata = {"name": group, "creationTimestamp": None}
    return {
        "metadata": metadata,
        "versions": [
            {
                "version": version,
                "resources": [_discovery_resource(r) for r in resources_of(registry, group, version)],
                "freshness": "Current",
            }
            for version in versions
        ],
    }


def aggregated_discovery(registry: Registry, *, legacy: bool, version: str = "v2") -> Obj:
    """``APIGroupDiscoveryList`` for /api (``legacy``: the core group) or /apis."""
    items = [
        _discovery_group(registry, group, versions)
        for group, versions in group_versions(registry).items()
        if (group == "") == legacy
    ]
    return {
        "kind": DISCOVERY_AS,
        "apiVersion": f"{DISCOVERY_GROUP}/{version}",
        "metadata": {},
        "items": items,
    }


# -- HTTP ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Encoded:
    body: bytes
    content_type: str
    etag: str = ""


def _encoded(doc: Obj, content_type: str = JSON, *, etag: bool = False) -> Encoded:
    body = orjson.dumps(doc)
    tag = '"' + hashlib.sha256(body).hexdigest()[:32].upper() + '"' if etag else ""
    return Encoded(body, content_type, tag)


def _aggregated_content_type(version: str) -> str:
    return f"{JSON};g={DISCOVERY_GROUP};v={version};as={DISCOVERY_AS}"


def discovery_format(accept: str | None) -> str:
    """ "v2", "v2beta1" (aggregated) or "legacy" for an Accept header; 406 when neither."""
    for media in parse_accept(accept):
        params = media.params
        if "as" in params:
            if (
                params.get("as") == DISCOVERY_AS
                and params.get("g") == DISCOVERY_GROUP
                and params.get("v") in DISCOVERY_VERSIONS
                and media.matches(JSON)
            ):
                return params["v"]
            continue
        if media.matches(JSON):
            return "legacy"
    raise not_acceptable(f"only the following media types are accepted: {JSON}")


def _error_response(err: StatusError) -> web.Response:
    return web.Response(body=orjson.dumps(err.to_status()), status=err.code, content_type=JSON)


def _respond(request: web.Request, doc: Encoded, *, vary: bool = False) -> web.Response:
    headers = {"Content-Type": doc.content_type}
    if vary:
        headers["Vary"] = "Accept"
    if doc.etag:
        headers["ETag"] = doc.etag
        if doc.etag in request.headers.get("If-None-Match", ""):
            return web.Response(status=304, headers=headers)
    return web.Response(body=doc.body, headers=headers)


class Discovery:
    """The precomputed discovery documents of one registry and their handlers."""

    def __init__(self, registry: Registry) -> None:
        self.version = _encoded(version_info())
        groups = group_versions(registry)
        self.group_list = _encoded(api_group_list(registry))
        self.groups = {g: _encoded(api_group(g, vs)) for g, vs in groups.items() if g}
        self.core_versions = list(groups.get("", []))
        self.resource_lists = {
            (g, v): _encoded(api_resource_list(registry, g, v)) for g, vs in groups.items() for v in vs
        }
        self.aggregated: dict[tuple[bool, str], Encoded] = {}
        for legacy in (True, False):
            for version in DISCOVERY_VERSIONS:
                self.aggregated[(legacy, version)] = _encoded(
                    aggregated_discovery(registry, legacy=legacy, version=version),
                    _aggregated_content_type(version),
                    etag=True,
                )

    async def get_version(self, request: web.Request) -> web.Response:
        return _respond(request, self.version)

    def _aggregated_or_none(self, request: web.Request, *, legacy: bool) -> Encoded | None:
        fmt = discovery_format(request.headers.get("Accept"))
        if fmt == "legacy":
            return None
        return self.aggregated[(legacy, fmt)]

    async def get_api(self, request: web.Request) -> web.Response:
        try:
            doc = self._aggregated_or_none(request, legacy=True)
        except StatusError as err:
            return _error_response(err)
        if doc is not None:
            return _respond(request, doc, vary=True)
        sockname = request.transport.get_extra_info("sockname") if request.transport else None
        address = f"{sockname[0]}:{sockname[1]}" if sockname else (request.host or "")
        versions: Obj = {
            "kind": "APIVersions",
            "versions": self.core_versions,
            "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": address}],
        }
        return web.Response(body=orjson.dumps(versions), content_type=JSON, headers={"Vary": "Accept"})

    async def get_apis(self, request: web.Request) -> web.Response:
        try:
            doc = self._aggregated_or_none(request, legacy=False)
        except StatusError as err:
            return _error_response(err)
        return _respond(request, doc or self.group_list, vary=True)

    async def get_core_version(self, request: web.Request) -> web.Response:
        doc = self.resource_lists.get(("", request.match_info["version"]))
        return _respond(request, doc) if doc else _error_response(_NOT_FOUND)

    async def get_group(self, request: web.Request) -> web.Response:
        doc = self.groups.get(request.match_info["group"])
        return _respond(request, doc) if doc else _error_response(_NOT_FOUND)

    async def get_group_version(self, request: web.Request) -> web.Response:
        key = (request.match_info["group"], request.match_info["version"])
        doc = self.resource_lists.get(key) if key[0] else None
        return _respond(request, doc) if doc else _error_response(_NOT_FOUND)


def add_routes(app: web.Application, registry: Registry) -> Discovery:
    """Serve the discovery endpoints of ``registry`` on ``app``."""
    discovery = Discovery(registry)
    router = app.router
    router.add_get("/version", discovery.get_version)
    router.add_get("/version/", discovery.get_version)
    router.add_get("/api", discovery.get_api)
    router.add_get("/api/", discovery.get_api)
    router.add_get("/apis", discovery.get_apis)
    router.add_get("/apis/", discovery.get_apis)
    router.add_get("/api/{version}", discovery.get_core_version)
    router.add_get("/apis/{group}", discovery.get_group)
    router.add_get("/apis/{group}/{version}", discovery.get_group_version)
    return discovery
