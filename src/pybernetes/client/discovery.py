"""Client-side discovery: which resources the server serves, resolved and cached.

Owns ``ApiResource`` (group, version, plural resource, kind, scope, verbs ...) and
``Discovery``, which turns a group/version/resource (or a kind) into one.  It asks
``/api`` and ``/apis`` for the aggregated discovery document (apidiscovery.k8s.io/v2, one
request per root) and falls back to the legacy documents (APIVersions / APIGroupList, then
one APIResourceList per group version, fetched when first needed).  Answers are cached; a
miss refreshes the cache at most once per ``refresh_interval`` (a CRD created since).
A ``ResourceDef`` from ``pybernetes.api.registry`` resolves without any request.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

from pybernetes.client.errors import ApiError, NotFound

AGGREGATED_ACCEPT = (
    "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,"
    "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList,"
    "application/json"
)

Obj = dict[str, Any]
# (path, accept) -> (content type, decoded body)
Fetch = Callable[[str, str], Awaitable[tuple[str, Any]]]


class ResourceLike(Protocol):
    group: str
    version: str
    resource: str
    kind: str
    namespaced: bool


@dataclass(frozen=True, slots=True)
class ApiResource:
    group: str
    version: str
    resource: str
    kind: str
    namespaced: bool
    singular: str = ""
    verbs: tuple[str, ...] = ()
    short_names: tuple[str, ...] = ()
    subresources: tuple[str, ...] = ()

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def gvr(self) -> tuple[str, str, str]:
        return (self.group, self.version, self.resource)

    def path(self, namespace: str | None = None, name: str | None = None,
             subresource: str | None = None) -> str:
        """The URL path of the collection, an object, or a subresource of one."""
        parts = ["/api/v1" if not self.group else f"/apis/{self.group}/{self.version}"]
        if self.group == "" and self.version != "v1":
            parts = [f"/api/{self.version}"]
        if self.namespaced and namespace:
            parts.append(f"namespaces/{namespace}")
        parts.append(self.resource)
        if name is not None:
            if not name:
                raise ValueError(f"{self.resource}: an empty name")
            parts.append(name)
            if subresource:
                parts.append(subresource)
        return "/".join(parts)

    @classmethod
    def of(cls, res: ResourceLike) -> ApiResource:
        if isinstance(res, ApiResource):
            return res
        subs = tuple(getattr(s, "name", str(s)) for s in getattr(res, "subresources", ()))
        return cls(res.group, res.version, res.resource, res.kind, bool(res.namespaced),
                   getattr(res, "singular", ""), tuple(getattr(res, "verbs", ())),
                   tuple(getattr(res, "short_names", ())), subs)


def parse_gvr(text: str) -> tuple[str, str, str]:
    """``"apps/v1/deployments"`` or ``"v1/pods"`` as (group, version, resource)."""
    parts = text.strip("/").split("/")
    if len(parts) == 2:
        return ("", parts[0], parts[1])
    if len(parts) == 3:
        return (parts[0], parts[1], parts[2])
    raise ValueError(f"not group/version/resource: {text!r}")


def _from_aggregated(doc: Obj) -> list[ApiResource]:
    out: list[ApiResource] = []
    for item in doc.get("items") or []:
        group = (item.get("metadata") or {}).get("name") or ""
        for ver in item.get("versions") or []:
            version = ver.get("version") or ""
            for r in ver.get("resources") or []:
                kind = (r.get("responseKind") or {}).get("kind") or ""
                out.append(ApiResource(
                    group, version, r.get("resource") or "", kind, r.get("scope") == "Namespaced",
                    r.get("singularResource") or "", tuple(r.get("verbs") or ()),
                    tuple(r.get("shortNames") or ()),
                    tuple(s.get("subresource") or "" for s in r.get("subresources") or ())))
    return out


def _from_resource_list(group: str, version: str, doc: Obj) -> list[ApiResource]:
    subs: dict[str, list[str]] = {}
    for r in doc.get("resources") or []:
        name = r.get("name") or ""
        if "/" in name:
            base, sub = name.split("/", 1)
            subs.setdefault(base, []).append(sub)
    out = []
    for r in doc.get("resources") or []:
        name = r.get("name") or ""
        if "/" in name:
            continue
        out.append(ApiResource(group, version, name, r.get("kind") or "", bool(r.get("namespaced")),
                               r.get("singularName") or "", tuple(r.get("verbs") or ()),
                               tuple(r.get("shortNames") or ()), tuple(subs.get(name, ()))))
    return out


class Discovery:
    def __init__(self, fetch: Fetch, *, refresh_interval: float = 2.0) -> None:
        self._fetch = fetch
        self.refresh_interval = refresh_interval
        self._by_gvr: dict[tuple[str, str, str], ApiResource] = {}
        self._by_gvk: dict[tuple[str, str, str], ApiResource] = {}
        self._legacy_gvs: set[tuple[str, str]] | None = None  # group versions (legacy servers)
        self._fetched_gvs: set[tuple[str, str]] = set()
        self._loaded_at: float | None = None
        self._lock = asyncio.Lock()

    def invalidate(self) -> None:
        self._by_gvr.clear()
        self._by_gvk.clear()
        self._fetched_gvs.clear()
        self._legacy_gvs = None
        self._loaded_at = None

    def _add(self, resources: list[ApiResource]) -> None:
        for r in resources:
            self._by_gvr[r.gvr] = r
            self._by_gvk.setdefault((r.group, r.version, r.kind), r)

    async def _load(self) -> None:
        """Both roots, aggregated when the server answers that way."""
        self.invalidate()
        legacy: set[tuple[str, str]] = set()
        for root in ("/api", "/apis"):
            try:
                ctype, doc = await self._fetch(root, AGGREGATED_ACCEPT)
            except NotFound:
                if root == "/api":
                    continue  # tolerated, as client-go does
                raise
            if "as=APIGroupDiscoveryList" in ctype:
                self._add(_from_aggregated(doc))
            elif root == "/api":
                legacy.update(("", v) for v in doc.get("versions") or [])
            else:
                for group in doc.get("groups") or []:
                    for ver in group.get("versions") or []:
                        legacy.add((group.get("name") or "", ver.get("version") or ""))
        self._legacy_gvs = legacy
        self._loaded_at = time.monotonic()

    async def _load_gv(self, group: str, version: str) -> None:
        path = f"/apis/{group}/{version}" if group else f"/api/{version}"
        try:
            _, doc = await self._fetch(path, "application/json")
        except NotFound:
            return
        self._add(_from_resource_list(group, version, doc))
        self._fetched_gvs.add((group, version))

    async def _lookup(self, find: Callable[[], ApiResource | None], group: str, version: str) -> ApiResource | None:
        async with self._lock:
            for attempt in range(2):
                if self._loaded_at is None or (
                        attempt and time.monotonic() - self._loaded_at >= self.refresh_interval):
                    await self._load()
                found = find()
                if found is None and self._legacy_gvs and (group, version) in self._legacy_gvs \
                        and (group, version) not in self._fetched_gvs:
                    await self._load_gv(group, version)
                    found = find()
                if found is not None:
                    return found
        return None

    async def resource(self, group: str, version: str, resource: str) -> ApiResource:
        found = await self._lookup(lambda: self._by_gvr.get((group, version, resource)), group, version)
        if found is None:
            gv = f"{group}/{version}" if group else version
            raise NotFound(404, "NotFound", f'the server doesn\'t have a resource type "{resource}" in {gv}')
        return found

    async def resource_for_kind(self, api_version: str, kind: str) -> ApiResource:
        group, _, version = api_version.rpartition("/")
        found = await self._lookup(lambda: self._by_gvk.get((group, version, kind)), group, version)
        if found is None:
            raise NotFound(404, "NotFound", f'no matches for kind "{kind}" in version "{api_version}"')
        return found

    def cached(self) -> list[ApiResource]:
        return list(self._by_gvr.values())


__all__ = ["AGGREGATED_ACCEPT", "ApiError", "ApiResource", "Discovery", "parse_gvr"]
