"""The PersistentVolume binder (upstream kube-controller-manager "persistentvolume-binder",
pkg/controller/volume/persistentvolume): binds claims to volumes and reclaims released volumes.

One work queue carries two kinds of keys: ``pvc:<namespace>/<name>`` (sync a claim) and
``pv:<name>`` (sync a volume); a fixed ``resync`` key requeues every claim and volume each
``pv_resync_period`` seconds (option; default 15, upstream's --pvclaimbinder-sync-period), and
the informers' initial lists enqueue everything at start, so a volume released while the
controller was down is noticed.  Handlers only enqueue: a claim change its claim (and its
volume), a volume change its volume, the claim its claimRef names and the claims naming it
(and, for a free volume, every unbound claim: it may fit one); a StorageClass change every
unbound claim.

What to do is decided in ``persistentvolume_core`` (pure) from the informer caches; this
module reads, writes and records events (component ``persistentvolume-controller``).  Writes
go through the API (``status`` subresource for phases, capacity, access modes) with the read
object's resourceVersion; a conflict re-reads the object and decides again (3 tries, then the
key is retried with backoff).  Objects this controller wrote are remembered until the
informer catches up (upstream's storeObjectUpdate), so a lagging cache never undoes a
binding or hands one volume to two claims.  Before a volume is released for a missing claim
the claim is looked up in the API server too (the cache may not have it yet).
"""

from __future__ import annotations

import logging
from typing import Any, ClassVar

from pybernetes.client.cache import object_of
from pybernetes.client.errors import Conflict, NotFound
from pybernetes.client.informer import SharedInformer
from pybernetes.controllers.base import Controller, Obj, RetryLater, key_of
from pybernetes.controllers.persistentvolume_core import (
    ASSIGN_CLASS,
    BETA_STORAGE_CLASS_ANNOTATION,
    BIND,
    DELETE,
    LOST,
    PENDING,
    PROVISION,
    WAIT,
    Note,
    bind_claim,
    bind_volume,
    claim_key_of_ref,
    claim_matches_ref,
    claim_ref,
    claim_status,
    claim_with_class,
    claim_with_provisioner,
    decide_claim,
    decide_volume,
    default_storage_class,
    has_annotation,
    unbind_volume,
    volume_phase,
    volume_status,
)
from pybernetes.machinery.volumematch import claim_storage_class

log = logging.getLogger(__name__)

PVS = "/v1/persistentvolumes"
PVCS = "/v1/persistentvolumeclaims"
CLASSES = "storage.k8s.io/v1/storageclasses"
CLAIM_PREFIX = "pvc:"
VOLUME_PREFIX = "pv:"
RESYNC_KEY = "resync"
DEFAULT_RESYNC_PERIOD = 15.0
DECIDE_ATTEMPTS = 3
CLAIMS_BY_VOLUME = "pv-binder/volumeName"  # claim -> its spec.volumeName ("" when unbound)
VOLUMES_BY_CLAIM = "pv-binder/claimRef"  # volume -> namespace/name of its claimRef


def _claims_by_volume(claim: Obj) -> list[str]:
    return [str((claim.get("spec") or {}).get("volumeName") or "")]


def _volumes_by_claim(pv: Obj) -> list[str]:
    ref = claim_ref(pv)
    return [claim_key_of_ref(ref)] if ref is not None else []


def _rv(obj: Obj) -> int:
    try:
        return int((obj.get("metadata") or {}).get("resourceVersion") or 0)
    except ValueError:
        return 0


class _Stale(Exception):
    """A write met a newer object (now remembered): decide again."""


class PersistentVolumeBinder(Controller):
    name: ClassVar[str] = "persistentvolume-binder"
    component: ClassVar[str] = "persistentvolume-controller"
    default_workers: ClassVar[int] = 2

    def setup(self) -> None:
        self.resync_period = float(self.options.get("pv_resync_period", DEFAULT_RESYNC_PERIOD))
        self.volumes = self.informer(PVS, indexers={VOLUMES_BY_CLAIM: _volumes_by_claim})
        self.claims = self.informer(PVCS, indexers={CLAIMS_BY_VOLUME: _claims_by_volume})
        self.classes = self.informer(CLASSES)
        self._fresh: dict[str, Obj] = {}  # queue key -> the object as this controller last wrote it
        self._told_to_wait: set[str] = set()  # uids of claims given the WaitForFirstConsumer event
        self.claims.add_event_handler(self._claim_changed, lambda old, new: self._claim_changed(new),
                                      self._claim_deleted)
        self.volumes.add_event_handler(self._volume_changed, lambda old, new: self._volume_changed(new),
                                       self._volume_deleted)
        self.classes.add_event_handler(self._class_changed, lambda old, new: self._class_changed(new))
        self.enqueue_after(RESYNC_KEY, self.resync_period)

    # -- handlers (enqueue only) --------------------------------------------------------------

    def _claim_changed(self, claim: Obj) -> None:
        self.queue.add(CLAIM_PREFIX + key_of(claim))
        volume_name = (claim.get("spec") or {}).get("volumeName")
        if volume_name:
            self.queue.add(VOLUME_PREFIX + volume_name)

    def _claim_deleted(self, item: Any) -> None:
        claim = object_of(item)
        key = key_of(claim)
        self._fresh.pop(CLAIM_PREFIX + key, None)
        self._told_to_wait.discard((claim.get("metadata") or {}).get("uid") or "")
        for volume_key in self.volumes.indexer.index_keys(VOLUMES_BY_CLAIM, key):
            self.queue.add(VOLUME_PREFIX + volume_key)
        volume_name = (claim.get("spec") or {}).get("volumeName")
        if volume_name:
            self.queue.add(VOLUME_PREFIX + volume_name)

    def _volume_changed(self, pv: Obj) -> None:
        name = key_of(pv)
        self.queue.add(VOLUME_PREFIX + name)
        self._enqueue_claims_of(pv)
        if claim_ref(pv) is None:
            self._enqueue_unbound_claims()  # a free volume may fit a waiting claim

    def _volume_deleted(self, item: Any) -> None:
        pv = object_of(item)
        self._fresh.pop(VOLUME_PREFIX + key_of(pv), None)
        self._enqueue_claims_of(pv)

    def _enqueue_claims_of(self, pv: Obj) -> None:
        ref = claim_ref(pv)
        if ref is not None:
            self.queue.add(CLAIM_PREFIX + claim_key_of_ref(ref))
        for claim_key in self.claims.indexer.index_keys(CLAIMS_BY_VOLUME, key_of(pv)):
            self.queue.add(CLAIM_PREFIX + claim_key)

    def _class_changed(self, _storage_class: Obj) -> None:
        self._enqueue_unbound_claims()

    def _enqueue_unbound_claims(self) -> None:
        for claim_key in self.claims.indexer.index_keys(CLAIMS_BY_VOLUME, ""):
            self.queue.add(CLAIM_PREFIX + claim_key)

    # -- reading (informer caches, plus what this controller wrote since) -----------------------

    def _get(self, informer: SharedInformer, prefix: str, key: str) -> Obj | None:
        cached = informer.indexer.get(key)
        fresh = self._fresh.get(prefix + key)
        if fresh is None:
            return cached
        if cached is None or _rv(cached) >= _rv(fresh) or \
                (cached.get("metadata") or {}).get("uid") != (fresh.get("metadata") or {}).get("uid"):
            self._fresh.pop(prefix + key, None)
            return cached
        return fresh

    def _claim(self, key: str) -> Obj | None:
        return self._get(self.claims, CLAIM_PREFIX, key)

    def _volume(self, name: str) -> Obj | None:
        return self._get(self.volumes, VOLUME_PREFIX, name)

    def _all_volumes(self) -> list[Obj]:
        if not any(k.startswith(VOLUME_PREFIX) for k in self._fresh):
            return self.volumes.indexer.list()
        volumes = []
        for name in self.volumes.indexer.list_keys():
            pv = self._volume(name)
            if pv is not None:
                volumes.append(pv)
        return volumes

    def _remember(self, prefix: str, obj: Obj) -> Obj:
        self._fresh[prefix + key_of(obj)] = obj
        return obj

    # -- writing ---------------------------------------------------------------------------------

    async def _write(self, res: str, prefix: str, obj: Obj, *, status: bool = False) -> Obj | None:
        """PUT ``obj`` (or its status); the object written, None when it is gone.  A conflict
        remembers the fresh object and raises ``_Stale``."""
        meta = obj.get("metadata") or {}
        try:
            if status:
                written = await self.client.update_status(res, obj, meta.get("namespace"))
            else:
                written = await self.client.update(res, obj, meta.get("namespace"))
        except NotFound:
            self._fresh.pop(prefix + key_of(obj), None)
            return None
        except Conflict:
            try:
                fresh = await self.client.get(res, meta.get("name") or "", meta.get("namespace"))
            except NotFound:
                self._fresh.pop(prefix + key_of(obj), None)
                return None
            self._remember(prefix, fresh)
            raise _Stale(f"{prefix}{key_of(obj)} changed") from None
        return self._remember(prefix, written)

    async def _write_volume(self, pv: Obj) -> Obj | None:
        return await self._write(PVS, VOLUME_PREFIX, pv)

    async def _write_volume_status(self, pv: Obj, status: Obj) -> Obj | None:
        return await self._write(PVS, VOLUME_PREFIX, {**pv, "status": status}, status=True)

    async def _write_claim(self, claim: Obj) -> Obj | None:
        return await self._write(PVCS, CLAIM_PREFIX, claim)

    async def _write_claim_status(self, claim: Obj, status: Obj) -> Obj | None:
        return await self._write(PVCS, CLAIM_PREFIX, {**claim, "status": status}, status=True)

    def _record(self, notes: list[Note], claim: Obj | None, pv: Obj | None) -> None:
        for note in notes:
            target = claim if note.about == "claim" else pv
            if target is not None:
                self.recorder.event(target, note.type, note.reason, note.message)

    # -- sync ------------------------------------------------------------------------------------

    async def sync(self, key: str) -> None:
        if key == RESYNC_KEY:
            self._resync()
            return
        for attempt in range(DECIDE_ATTEMPTS):
            try:
                if key.startswith(CLAIM_PREFIX):
                    await self.sync_claim(key[len(CLAIM_PREFIX):])
                elif key.startswith(VOLUME_PREFIX):
                    await self.sync_volume(key[len(VOLUME_PREFIX):])
                return
            except _Stale as stale:
                if attempt == DECIDE_ATTEMPTS - 1:
                    raise RetryLater(str(stale)) from None

    def _resync(self) -> None:
        for name in self.volumes.indexer.list_keys():
            self.queue.add(VOLUME_PREFIX + name)
        for claim_key in self.claims.indexer.list_keys():
            self.queue.add(CLAIM_PREFIX + claim_key)
        for key in list(self._fresh):  # forget objects the caches no longer have
            informer = self.claims if key.startswith(CLAIM_PREFIX) else self.volumes
            if informer.indexer.get(key.partition(":")[2]) is None:
                self._fresh.pop(key, None)
        self.enqueue_after(RESYNC_KEY, self.resync_period)

    async def sync_claim(self, key: str) -> None:
        claim = self._claim(key)
        if claim is None:
            return
        spec = claim.get("spec") or {}
        volume_name = spec.get("volumeName") or ""
        class_name = claim_storage_class(claim)
        storage_class = self.classes.indexer.get(class_name) if class_name else None
        default_class = ""
        if not volume_name and spec.get("storageClassName") is None \
                and not has_annotation(claim, BETA_STORAGE_CLASS_ANNOTATION):
            found = default_storage_class(self.classes.indexer.list())
            default_class = (found or {}).get("metadata", {}).get("name") or ""
        plan = decide_claim(claim, volume=self._volume(volume_name) if volume_name else None,
                            volumes=[] if volume_name else self._all_volumes(),
                            storage_class=storage_class, default_class=default_class)
        uid = (claim.get("metadata") or {}).get("uid") or ""
        if plan.action == WAIT:
            if uid in self._told_to_wait:
                plan.notes = []
            self._told_to_wait.add(uid)
        else:
            self._told_to_wait.discard(uid)
        self._record(plan.notes, claim, plan.volume)
        if plan.action == BIND and plan.volume is not None:
            await self._bind(plan.volume, claim)
        elif plan.action in (PENDING, WAIT, LOST):
            status = claim_status(claim, "Lost" if plan.action == LOST else "Pending")
            if status is not None:
                await self._write_claim_status(claim, status)
        elif plan.action == PROVISION:
            annotated = claim_with_provisioner(claim, plan.provisioner)
            if annotated is not None:
                await self._write_claim(annotated)
        elif plan.action == ASSIGN_CLASS:
            log.info("persistentvolume-binder: assigning default StorageClass %s to claim %s",
                     plan.storage_class, key)
            await self._write_claim(claim_with_class(claim, plan.storage_class))

    async def _bind(self, pv: Obj, claim: Obj) -> None:
        """Both sides, in upstream's order: the volume's claimRef, its phase, the claim's
        volumeName and annotations, its status.  A step that fails leaves what the next
        sync (of either side) finishes."""
        new_pv = bind_volume(pv, claim)
        if new_pv is not None:
            log.info("persistentvolume-binder: binding volume %s to claim %s", key_of(pv), key_of(claim))
            written = await self._write_volume(new_pv)
            if written is None:
                return
            pv = written
        status = volume_status(pv, "Bound")
        if status is not None:
            written = await self._write_volume_status(pv, status)
            if written is None:
                return
            pv = written
        new_claim = bind_claim(claim, pv)
        if new_claim is not None:
            written = await self._write_claim(new_claim)
            if written is None:
                return
            claim = written
        status = claim_status(claim, "Bound", pv)
        if status is not None:
            await self._write_claim_status(claim, status)

    async def sync_volume(self, name: str) -> None:
        pv = self._volume(name)
        if pv is None:
            return
        ref = claim_ref(pv)
        claim = await self._claim_of(pv, ref) if ref is not None and ref.get("uid") else None
        plan = decide_volume(pv, claim)
        self._record(plan.notes, claim, pv)
        if plan.unbind:
            log.info("persistentvolume-binder: unbinding volume %s", name)
            written = await self._write_volume(unbind_volume(pv))
            if written is None:
                return
            pv = written
        if plan.phase is not None:
            status = volume_status(pv, plan.phase, plan.message)
            if status is not None:
                written = await self._write_volume_status(pv, status)
                if written is None:
                    return
                pv = written
        if plan.reclaim == DELETE:
            await self._delete_released(pv)
        if plan.enqueue_claim and ref is not None:
            self.queue.add(CLAIM_PREFIX + claim_key_of_ref(ref))

    async def _claim_of(self, pv: Obj, ref: Obj) -> Obj | None:
        """The claim the volume's claimRef means, None when it is gone.  A claim missing from
        the cache, or with another uid, is looked up in the API server before the volume is
        treated as released (the cache may lag a claim the scheduler just bound)."""
        claim = self._claim(claim_key_of_ref(ref))
        if claim_matches_ref(pv, claim):
            return claim
        if claim is None and volume_phase(pv) in ("Released", "Failed"):
            return None
        try:
            claim = await self.client.get(PVCS, ref.get("name") or "", ref.get("namespace") or "")
        except NotFound:
            return None
        return claim if claim_matches_ref(pv, claim) else None

    async def _delete_released(self, pv: Obj) -> None:
        """Delete a released volume (reclaim policy Delete, not provisioned by anyone), after
        checking on a fresh read that it is still the released volume we decided on."""
        meta = pv.get("metadata") or {}
        try:
            fresh = await self.client.get(PVS, meta.get("name") or "")
        except NotFound:
            return
        if (fresh.get("metadata") or {}).get("uid") != meta.get("uid") or \
                claim_ref(fresh) != claim_ref(pv) or volume_phase(fresh) not in ("Released", "Failed"):
            self._remember(VOLUME_PREFIX, fresh)
            raise _Stale(f"{VOLUME_PREFIX}{key_of(pv)} changed")
        log.info("persistentvolume-binder: deleting released volume %s", key_of(pv))
        try:
            await self.client.delete(PVS, meta.get("name") or "",
                                     preconditions={"uid": meta.get("uid"),
                                                    "resourceVersion": (fresh.get("metadata") or {})
                                                    .get("resourceVersion")})
        except NotFound:
            return
        except Conflict:
            raise _Stale(f"{VOLUME_PREFIX}{key_of(pv)} changed") from None
