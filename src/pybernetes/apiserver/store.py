"""The generic store: create/get/update/patch/delete/list/watch for every resource.

INTERFACE SKELETON — to be implemented (owner: generic-store helper).  The HTTP layer
(``apiserver/handlers*.py``) codes against these signatures; keep them.

One ``ResourceStore`` per ResourceDef, over the shared ``Storage`` and that resource's
``Cacher``.  It owns ObjectMeta semantics (uid, resourceVersion, generation, creationTimestamp,
generateName, finalizers and deletionTimestamp, deletionGracePeriodSeconds, ownerReferences
kept), calls the resource's Strategy, and raises ``StatusError`` for every failure.  Keys are
``/registry/<group-resource>/<namespace>/<name>`` (cluster-scoped: no namespace segment).
Objects in and out are wire-shaped dicts; list and watch hand out cacher entries (JSON bytes)
so that the HTTP layer can join bytes without re-encoding.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from pybernetes.api.registry import Registry
from pybernetes.api.resource import ResourceDef
from pybernetes.storage.cacher import CacheEvent, Entry
from pybernetes.storage.interface import Storage

Obj = dict[str, Any]


@dataclass(slots=True)
class WriteOptions:
    """Query parameters of a write (create/update/patch/delete)."""

    dry_run: bool = False
    field_manager: str = ""
    # fieldValidation: "Strict" | "Warn" | "Ignore" (upstream default: Warn).  The store
    # checks unknown/duplicate fields only on objects it decodes itself (patches); the HTTP
    # layer checks request bodies and passes what it found in ``warnings``.
    field_validation: str = "Warn"
    warnings: list[str] = field(default_factory=list)  # out: Warning headers to send


@dataclass(slots=True)
class ListOptions:
    label_selector: str = ""
    field_selector: str = ""
    limit: int = 0
    continue_token: str = ""
    resource_version: str = ""  # "" | "0" | "<n>"
    resource_version_match: str = ""  # "" | "NotOlderThan" | "Exact"
    # watch only:
    allow_bookmarks: bool = False
    send_initial_events: bool = False
    timeout_seconds: int | None = None


@dataclass(slots=True)
class ListPage:
    entries: list[Entry]  # each .value is the object's JSON bytes with resourceVersion set
    resource_version: str
    continue_token: str = ""
    remaining_item_count: int | None = None


@dataclass(slots=True)
class DeleteResult:
    obj: Obj  # the object as deleted, or as it now stands (deletionTimestamp set)
    deleted: bool  # True: gone from the store; False: still there (finalizers / grace)


class ResourceStore:
    def __init__(self, res: ResourceDef, stores: Stores) -> None:
        raise NotImplementedError

    async def create(self, namespace: str | None, obj: Obj, opts: WriteOptions) -> Obj:
        """Namespace from the URL (None for cluster-scoped).  A body namespace that differs
        is a 400 BadRequest; missing namespace object is a 404 NotFound."""
        raise NotImplementedError

    async def get(self, namespace: str | None, name: str, resource_version: str = "") -> Obj:
        raise NotImplementedError

    async def update(
        self,
        namespace: str | None,
        name: str,
        obj: Obj,
        opts: WriteOptions,
        subresource: str | None = None,  # None | "status"
    ) -> tuple[Obj, bool]:
        """PUT; returns (object, created)."""
        raise NotImplementedError

    async def patch(
        self,
        namespace: str | None,
        name: str,
        patch_type: str,  # the Content-Type: json-patch, merge-patch or strategic-merge-patch
        body: bytes,
        opts: WriteOptions,
        subresource: str | None = None,
    ) -> Obj:
        raise NotImplementedError

    async def delete(
        self, namespace: str | None, name: str, options: Obj, opts: WriteOptions
    ) -> DeleteResult:
        """``options`` is a DeleteOptions dict (gracePeriodSeconds, preconditions{uid,
        resourceVersion}, propagationPolicy, orphanDependents)."""
        raise NotImplementedError

    async def delete_collection(
        self, namespace: str | None, list_opts: ListOptions, options: Obj, opts: WriteOptions
    ) -> list[Obj]:
        raise NotImplementedError

    async def list(self, namespace: str | None, opts: ListOptions) -> ListPage:
        raise NotImplementedError

    def watch(
        self, namespace: str | None, opts: ListOptions, name: str | None = None
    ) -> AsyncIterator[CacheEvent]:
        """Events as the cacher gives them (BOOKMARKs when opts.allow_bookmarks).  An
        initial state (resourceVersion unset or "0") comes first as ADDED events.  Too old a
        resourceVersion raises StatusError 410 Expired when iterated."""
        raise NotImplementedError

    # -- subresources -------------------------------------------------------------------

    async def get_scale(self, namespace: str, name: str) -> Obj:
        """autoscaling/v1 Scale of a workload (spec.replicas, status.replicas, selector)."""
        raise NotImplementedError

    async def update_scale(self, namespace: str, name: str, scale: Obj, opts: WriteOptions) -> Obj:
        raise NotImplementedError

    async def patch_scale(
        self, namespace: str, name: str, patch_type: str, body: bytes, opts: WriteOptions
    ) -> Obj:
        raise NotImplementedError

    async def bind(self, namespace: str, name: str, binding: Obj, opts: WriteOptions) -> Obj:
        """pods/binding: set spec.nodeName (409 Conflict if already bound) and PodScheduled."""
        raise NotImplementedError


class Stores:
    """Every resource's store over one Storage: built once, started before serving."""

    def __init__(self, registry: Registry, storage: Storage, *, service_cidr: str = "10.43.0.0/16",
                 node_port_range: tuple[int, int] = (30000, 32767)) -> None:
        raise NotImplementedError

    async def start(self) -> None:
        """Start every cacher, create the default namespaces (default, kube-system,
        kube-public, kube-node-lease) and the default/kubernetes Service if missing."""
        raise NotImplementedError

    async def stop(self) -> None:
        raise NotImplementedError

    def ready(self) -> bool:
        raise NotImplementedError

    def for_resource(self, res: ResourceDef) -> ResourceStore:
        raise NotImplementedError
