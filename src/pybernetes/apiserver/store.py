"""The generic store: create/get/update/patch/delete/list/watch for every resource.

One ``ResourceStore`` per ResourceDef, over the shared ``Storage`` and that resource's
``Cacher`` (one per group-resource).  It owns ObjectMeta semantics (uid, resourceVersion,
generation, creationTimestamp, generateName, finalizers and deletionTimestamp,
deletionGracePeriodSeconds, ownerReferences kept), calls the resource's Strategy, and raises
``StatusError`` for every failure; a failed request changes nothing.  Keys are
``/registry/<group-resource>/<namespace>/<name>`` (cluster-scoped: no namespace segment).
Objects are stored as JSON without ``metadata.resourceVersion`` (the key's revision is the
resourceVersion).  Objects handed to create/update are owned by the store from then on (it
mutates them rather than copying).  Reads (get/list/watch, ``store_read.py``) hand out
cacher entries.  Pure pieces live in meta_semantics.py, deletion.py, patching.py,
subresources.py, allocators.py, continue_token.py; start-up objects in bootstrap.py.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import orjson

from pybernetes.api.registry import Registry
from pybernetes.api.resource import ResourceDef
from pybernetes.apiserver import deletion, patching
from pybernetes.apiserver import meta_semantics as ms
from pybernetes.apiserver.allocators import Reservation, ServiceAllocator
from pybernetes.apiserver.store_read import ReadSide
from pybernetes.apiserver.store_types import DeleteResult, ListOptions, ListPage, WriteOptions
from pybernetes.apiserver.subresources import SubresourceSide
from pybernetes.machinery.errors import (
    MODIFIED_CONFLICT,
    StatusError,
    already_exists,
    conflict,
    forbidden,
    invalid,
    invalid_value,
    not_found,
)
from pybernetes.machinery.meta import clone, generate_name, new_uid, now_rfc3339
from pybernetes.storage.cacher import VALUE, Cacher
from pybernetes.storage.interface import (
    KeyExistsError,
    KeyNotFoundError,
    KeyValue,
    RevisionConflictError,
    Storage,
)

Obj = dict[str, Any]

__all__ = ["DeleteResult", "ListOptions", "ListPage", "ResourceStore", "Stores", "WriteOptions"]

MAX_GENERATE_NAME_ATTEMPTS = 8
DEFAULT_BOOKMARK_INTERVAL = 1.0


# build(old) -> new: the object an update wants, given the stored one (with resourceVersion).
Builder = Callable[[Obj | None], Obj]


class ResourceStore(ReadSide, SubresourceSide):
    def __init__(self, res: ResourceDef, stores: Stores) -> None:
        self.res = res
        self.stores = stores
        self.storage = stores.storage
        self.cacher = stores.cacher_for(res)
        self.strategy = res.strategy
        self.allowed_fields = frozenset(
            ("metadata.name", "metadata.namespace", *res.strategy.field_names)
        )
        self.name_rule = ms.name_rule_of(res)
        self.is_services = res.group == "" and res.resource == "services"
        self.is_namespaces = res.group == "" and res.resource == "namespaces"
        self.is_pods = res.group == "" and res.resource == "pods"

    # -- helpers --------------------------------------------------------------------------

    def _conflict(self, name: str, detail: str = MODIFIED_CONFLICT) -> StatusError:
        return conflict(self.res.resource, name, detail, self.res.group)

    @staticmethod
    def _decode(kv: KeyValue) -> Obj:
        obj = orjson.loads(kv.value)
        obj["metadata"]["resourceVersion"] = str(kv.mod_revision)
        return obj

    def _allocate(self, new: Obj, old: Obj | None, errs: list) -> Reservation | None:
        if not self.is_services:
            return None
        reservation, alloc_errs = self.stores.allocator.allocate(new, old)
        errs.extend(alloc_errs)
        return reservation

    # -- create ---------------------------------------------------------------------------

    async def create(self, namespace: str | None, obj: Obj, opts: WriteOptions) -> Obj:
        """Namespace from the URL (None for cluster-scoped).  A body namespace that differs
        is a 400 BadRequest; missing namespace object is a 404 NotFound."""
        obj = ms.check_type(self.res, obj)
        meta = obj["metadata"]
        ms.check_meta_types(self.res, meta)
        ms.apply_create_namespace(self.res, meta, namespace)
        generate = not meta.get("name") and isinstance(meta.get("generateName"), str) and bool(
            meta.get("generateName")
        )
        if generate:
            meta["name"] = generate_name(meta["generateName"])
        if self.res.namespaced:
            await self.stores.check_namespace_open(self.res, namespace or "", meta.get("name"))
        ms.init_create_meta(
            meta, uid=new_uid(), now=now_rfc3339(), has_generation=self.strategy.has_generation
        )
        self.strategy.default(obj)
        self.strategy.prepare_for_create(obj)
        errs: list = []
        reservation = self._allocate(obj, None, errs)
        try:
            errs = ms.validate_create_meta(self.res, obj, self.name_rule) + self.strategy.validate(obj) + errs
            if errs:
                raise ms.invalid_error(self.res, str(meta.get("name") or ""), errs)
            kv = await self._write_new(namespace, obj, opts, generate)
            if reservation is not None:
                if opts.dry_run:
                    reservation.rollback()
                else:
                    reservation.commit()
        except BaseException:
            if reservation is not None:
                reservation.rollback()
            raise
        if kv is not None:
            meta["resourceVersion"] = str(kv.mod_revision)
        return obj

    async def _write_new(
        self, namespace: str | None, obj: Obj, opts: WriteOptions, generate: bool
    ) -> KeyValue | None:
        meta = obj["metadata"]
        attempts = MAX_GENERATE_NAME_ATTEMPTS if generate else 1
        for attempt in range(attempts):
            key = ms.valid_name_key(self.res, namespace, meta["name"])
            if opts.dry_run:
                if await self.storage.get(key) is None:
                    return None
            else:
                try:
                    return await self.storage.create(key, orjson.dumps(obj))
                except KeyExistsError:
                    pass
            if attempt + 1 < attempts:
                meta["name"] = generate_name(meta["generateName"])
                continue
            err = already_exists(self.res.resource, meta["name"], self.res.group)
            existing = await self.storage.get(key)
            if existing is not None and b'"deletionTimestamp"' in existing.value:
                if orjson.loads(existing.value)["metadata"].get("deletionTimestamp"):
                    err.message = f"object is being deleted: {err.message}"
            raise err
        raise AssertionError("unreachable")

    # -- update ---------------------------------------------------------------------------

    async def update(
        self,
        namespace: str | None,
        name: str,
        obj: Obj,
        opts: WriteOptions,
        subresource: str | None = None,  # None | "status"
    ) -> tuple[Obj, bool]:
        """PUT; returns (object, created)."""
        body = ms.check_type(self.res, obj)
        ms.check_meta_types(self.res, body["metadata"])
        ms.check_update_target(self.res, body["metadata"], namespace, name)
        pristine = clone(body)
        first = [True]

        def build(old: Obj | None) -> Obj:
            if first[0]:
                first[0] = False
                return body
            return clone(pristine)

        allow_create = self.strategy.allow_create_on_update and subresource is None
        return await self._update(namespace, name, build, opts, subresource, allow_create, pristine)

    async def _update(
        self,
        namespace: str | None,
        name: str,
        build: Builder,
        opts: WriteOptions,
        subresource: str | None,
        allow_create: bool = False,
        create_body: Obj | None = None,
    ) -> tuple[Obj, bool]:
        key = ms.object_key(self.res, namespace, name)
        while True:
            kv = await self.storage.get(key)
            if kv is None:
                if not allow_create or create_body is None:
                    raise self._not_found(name)
                try:
                    return await self.create(namespace, clone(create_body), opts), True
                except StatusError as err:
                    if err.reason == "AlreadyExists":
                        continue
                    raise
            old = self._decode(kv)
            new = build(old)
            try:
                result = await self._apply_update(key, kv, old, new, name, opts, subresource)
            except (RevisionConflictError, KeyNotFoundError):
                continue
            return result, False

    async def _apply_update(
        self,
        key: str,
        kv: KeyValue,
        old: Obj,
        new: Obj,
        name: str,
        opts: WriteOptions,
        subresource: str | None,
    ) -> Obj:
        old_meta = old["metadata"]
        new_meta = new.get("metadata")
        if not isinstance(new_meta, dict):
            new_meta = new["metadata"] = {}
        old_rv = old_meta["resourceVersion"]
        body_rv = new_meta.get("resourceVersion") or ""
        if not body_rv:
            if not self.strategy.allow_unconditional_update:
                err = invalid_value("metadata.resourceVersion", 0, "must be specified for an update")
                raise invalid(self.res.kind, name, [err], self.res.group)
        elif str(body_rv) != old_rv:
            raise self._conflict(name)
        new_meta["resourceVersion"] = old_rv
        # The stored object without resourceVersion: what a no-op update compares against.
        stored = orjson.loads(kv.value)
        strategy = self.strategy
        errs: list = []
        reservation: Reservation | None = None
        if subresource == "status":
            strategy.prepare_for_status_update(new, old)
            ms.carry_update_meta(new["metadata"], old_meta)
            errs = ms.validate_update_meta(new, old) + strategy.validate_status_update(new, old)
        elif subresource == "binding":
            ms.carry_update_meta(new["metadata"], old_meta)
        elif subresource == "finalize":
            spec_finalizers = (new.get("spec") or {}).get("finalizers")
            new = clone(old)
            spec = new.get("spec")
            if not isinstance(spec, dict):
                spec = new["spec"] = {}
            if spec_finalizers:
                spec["finalizers"] = spec_finalizers
            else:
                spec.pop("finalizers", None)
        else:
            new["kind"], new["apiVersion"] = self.res.kind, self.res.api_version
            strategy.default(new)
            strategy.prepare_for_update(new, old)
            ms.carry_update_meta(new["metadata"], old_meta)
            ms.bump_generation(new, old, strategy.status_fields)
            reservation = self._allocate(new, old, errs)
            errs = (
                ms.validate_update_meta(new, old)
                + strategy.validate(new)
                + strategy.validate_update(new, old)
                + errs
            )
        try:
            if errs:
                raise ms.invalid_error(self.res, name, errs)
            if deletion.should_delete_on_update(new, old) and not self._namespace_pending(new):
                await self._delete_stored(key, kv, old, opts)
                if reservation is not None:
                    reservation.rollback()
                return new
            new["metadata"].pop("resourceVersion", None)
            if new == stored:
                if reservation is not None:
                    reservation.rollback()
                return old
            if opts.dry_run:
                new["metadata"]["resourceVersion"] = old_rv
                if reservation is not None:
                    reservation.rollback()
                return new
            new_kv = await self.storage.update(
                key, orjson.dumps(new), expected_revision=kv.mod_revision
            )
        except BaseException:
            if reservation is not None:
                reservation.rollback()
            raise
        if reservation is not None:
            reservation.commit()
        new["metadata"]["resourceVersion"] = str(new_kv.mod_revision)
        return new

    def _namespace_pending(self, obj: Obj) -> bool:
        """A namespace stays (Terminating) while its spec.finalizers are not empty."""
        return self.is_namespaces and bool((obj.get("spec") or {}).get("finalizers"))

    # -- patch ----------------------------------------------------------------------------

    async def patch(
        self,
        namespace: str | None,
        name: str,
        patch_type: str,  # the Content-Type: json-patch, merge-patch or strategic-merge-patch
        body: bytes,
        opts: WriteOptions,
        subresource: str | None = None,
    ) -> Obj:
        ptype = patching.patch_type_of(patch_type)
        patch = patching.decode_patch(body, ptype)
        res = self.res

        def build(old: Obj | None) -> Obj:
            assert old is not None
            new = patching.apply_patch(res.group, res.version, res.kind, old, ptype, patch)
            patching.check_patched_identity(res, new, namespace, name)
            warnings: list[str] = []
            patching.handle_unknown_fields(res, new, opts.field_validation, warnings)
            for warning in warnings:
                if warning not in opts.warnings:
                    opts.warnings.append(warning)
            return new

        obj, _ = await self._update(namespace, name, build, opts, subresource)
        return obj

    # -- delete ---------------------------------------------------------------------------

    async def delete(
        self, namespace: str | None, name: str, options: Obj, opts: WriteOptions
    ) -> DeleteResult:
        """``options`` is a DeleteOptions dict (gracePeriodSeconds, preconditions{uid,
        resourceVersion}, propagationPolicy, orphanDependents)."""
        dopts = deletion.parse_delete_options(options)
        key = ms.object_key(self.res, namespace, name)
        while True:
            kv = await self.storage.get(key)
            if kv is None:
                raise self._not_found(name)
            obj = self._decode(kv)
            deletion.check_preconditions(self.res, obj, dopts)
            now = datetime.now(UTC)
            if self.is_namespaces:
                plan = deletion.plan_namespace_delete(obj, dopts, now)
            else:
                plan = deletion.plan_delete(self.res, obj, dopts, now)
            try:
                if plan.action == "pending":
                    return DeleteResult(self._decode(kv), False)
                if plan.action == "update":
                    return DeleteResult(await self._mark_deleting(key, kv, plan.obj, opts), False)
                gone = plan.obj
                await self._delete_stored(key, kv, gone, opts)
            except (RevisionConflictError, KeyNotFoundError):
                continue
            status = None if deletion.returns_deleted_object(self.res) else deletion.success_status(
                self.res, gone
            )
            return DeleteResult(gone, True, status)

    async def _mark_deleting(self, key: str, kv: KeyValue, new: Obj, opts: WriteOptions) -> Obj:
        rv = new["metadata"].pop("resourceVersion", None)
        if new == orjson.loads(kv.value) or opts.dry_run:
            new["metadata"]["resourceVersion"] = rv
            return new
        new_kv = await self.storage.update(key, orjson.dumps(new), expected_revision=kv.mod_revision)
        new["metadata"]["resourceVersion"] = str(new_kv.mod_revision)
        return new

    async def _delete_stored(self, key: str, kv: KeyValue, obj: Obj, opts: WriteOptions) -> None:
        """Remove the object (at kv's revision) and free what it held."""
        if opts.dry_run:
            return
        await self.storage.delete(key, expected_revision=kv.mod_revision)
        if self.is_services:
            self.stores.allocator.release(obj).commit()

    async def delete_collection(
        self, namespace: str | None, list_opts: ListOptions, options: Obj, opts: WriteOptions
    ) -> list[Obj]:
        deletion.parse_delete_options(options)  # bad options fail before anything is deleted
        listing = ListOptions(
            label_selector=list_opts.label_selector,
            field_selector=list_opts.field_selector,
            resource_version=list_opts.resource_version,
            resource_version_match=list_opts.resource_version_match,
        )
        page = await self.list(namespace, listing)
        out: list[Obj] = []
        for entry in page.entries:
            meta = orjson.loads(entry[VALUE])["metadata"]
            try:
                result = await self.delete(meta.get("namespace"), meta["name"], options, opts)
            except StatusError as err:
                if err.code == 404:
                    continue
                raise
            out.append(result.obj)
        return out

class Stores:
    """Every resource's store over one Storage: built once, started before serving."""

    def __init__(self, registry: Registry, storage: Storage, *, service_cidr: str = "10.43.0.0/16",
                 node_port_range: tuple[int, int] = (30000, 32767),
                 cache_history: int = 10_000) -> None:
        self.registry = registry
        self.cache_history = cache_history
        self.storage = storage
        self.allocator = ServiceAllocator(service_cidr, node_port_range)
        self.bookmark_interval = DEFAULT_BOOKMARK_INTERVAL  # seconds between idle BOOKMARKs
        self.api_server_port = 6443  # targetPort of the default/kubernetes Service
        self._cachers: dict[str, Cacher] = {}
        self._stores: dict[tuple[str, str, str], ResourceStore] = {}
        self._ready = False
        for res in registry.all():
            self._add(res)
        self._namespaces = self.find("", "namespaces")

    def _add(self, res: ResourceDef) -> ResourceStore:
        if res.group_resource not in self._cachers:
            self._cachers[res.group_resource] = Cacher(
                self.storage, ms.key_root(res), _attrs_func(res), history=self.cache_history
            )
        store = ResourceStore(res, self)
        self._stores[(res.group, res.version, res.resource)] = store
        return store

    def cacher_for(self, res: ResourceDef) -> Cacher:
        return self._cachers[res.group_resource]

    def find(self, group: str, resource: str) -> ResourceStore | None:
        """A store of ``group``/``resource`` (any version)."""
        for (g, _v, r), store in self._stores.items():
            if g == group and r == resource:
                return store
        return None

    async def start(self) -> None:
        """Start every cacher, create the default namespaces (default, kube-system,
        kube-public, kube-node-lease) and the default/kubernetes Service if missing."""
        from pybernetes.apiserver import bootstrap

        await asyncio.gather(*(cacher.start() for cacher in self._cachers.values()))
        services = self.find("", "services")
        if services is not None:
            listing = services.cacher.list(ms.key_root(services.res))
            self.allocator.rebuild([orjson.loads(e[VALUE]) for e in listing.entries])
        await bootstrap.ensure_defaults(self)
        self._ready = True

    async def stop(self) -> None:
        self._ready = False
        await asyncio.gather(*(cacher.stop() for cacher in self._cachers.values()),
                             return_exceptions=True)

    def ready(self) -> bool:
        return self._ready

    def for_resource(self, res: ResourceDef) -> ResourceStore:
        store = self._stores.get((res.group, res.version, res.resource))
        if store is None:
            raise not_found(res.resource, "", res.group)
        return store

    async def check_namespace_open(self, res: ResourceDef, namespace: str, name: Any) -> None:
        """Writes into a missing namespace are a 404; into a terminating one a 403."""
        namespaces = self._namespaces
        if namespaces is None:
            return
        key = ms.key_root(namespaces.res) + namespace
        entry = namespaces.cacher.get(key)
        if entry is not None:
            raw = entry[VALUE]
        else:
            kv = await self.storage.get(key)
            if kv is None:
                raise not_found("namespaces", namespace)
            raw = kv.value
        if b"deletionTimestamp" in raw or b"Terminating" in raw:
            ns = orjson.loads(raw)
            if ns["metadata"].get("deletionTimestamp") or (ns.get("status") or {}).get(
                "phase"
            ) == "Terminating":
                raise forbidden(
                    f'{res.group_resource} "{name or ""}" is forbidden: unable to create new '
                    f"content in namespace {namespace} because it is being terminated"
                )


def _attrs_func(res: ResourceDef) -> Callable[[Obj], tuple[dict[str, str], dict[str, str]]]:
    fields = res.strategy.fields

    def attrs(obj: Obj) -> tuple[dict[str, str], dict[str, str]]:
        meta = obj.get("metadata") or {}
        return meta.get("labels") or {}, fields(obj)

    return attrs
