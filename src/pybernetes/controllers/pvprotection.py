"""The PV protection controller (upstream pkg/controller/volume/pvprotection, feature
StorageObjectInUseProtection): a PersistentVolume is not deleted while it is bound.

Owns the ``kubernetes.io/pv-protection`` finalizer after the StorageObjectInUseProtection
admission plugin put it on a new volume:

- a volume being deleted (deletionTimestamp) that has the finalizer keeps it while its
  ``status.phase`` is Bound (the PV binder's word for "a claim uses it"); once the phase is
  anything else (Released, Available, Failed, Pending) the finalizer is removed and the
  deletion completes;
- a volume not being deleted that lacks the finalizer (created before the plugin, or through
  a path that bypasses it) gets it.

Also the finalizer helpers shared with ``pvcprotection`` (upstream's protectionutil): which
objects need the finalizer or are candidates for its removal, and the writes: JSON merge
patches of ``metadata.finalizers`` (``machinery.meta.finalizer_patch``) carrying the cached
object's resourceVersion, so a write
based on a stale cache is a 409 Conflict and the key is retried from the fresh object (never
re-adding a finalizer to an object that started being deleted meanwhile).
"""

from __future__ import annotations

import logging
from typing import Any

from pybernetes.client.errors import NotFound
from pybernetes.client.rest import ResourceArg
from pybernetes.controllers.base import Controller, Obj
from pybernetes.machinery.meta import finalizer_patch, has_finalizer, is_being_deleted

log = logging.getLogger(__name__)

PVS = "/v1/persistentvolumes"
PV_PROTECTION_FINALIZER = "kubernetes.io/pv-protection"


# -- finalizer helpers (shared with pvcprotection) ---------------------------------------------


def is_deletion_candidate(obj: Obj, finalizer: str) -> bool:
    """Being deleted and still holding ``finalizer``: the controller decides whether it goes."""
    return is_being_deleted(obj) and has_finalizer(obj, finalizer)


def needs_finalizer(obj: Obj, finalizer: str) -> bool:
    """Not being deleted and without ``finalizer``: the controller adds it."""
    return not is_being_deleted(obj) and not has_finalizer(obj, finalizer)


async def write_finalizer(ctl: Controller, res: ResourceArg, obj: Obj, finalizer: str, *, add: bool) -> bool:
    """Send ``finalizer_patch`` for the (cached) ``obj``; False when there was nothing to write
    or the object is gone.  A Conflict propagates: the sync is retried from a fresher cache."""
    patch = finalizer_patch(obj, finalizer, add=add)
    if patch is None:
        return False
    meta = obj.get("metadata") or {}
    try:
        await ctl.client.patch(res, meta.get("name") or "", patch, meta.get("namespace"), patch_type="merge")
    except NotFound:
        return False
    return True


# -- the rule --------------------------------------------------------------------------------


def pv_in_use(pv: Obj) -> bool:
    """A volume is in use while the PV binder reports it Bound."""
    status: Any = pv.get("status")
    return isinstance(status, dict) and status.get("phase") == "Bound"


# -- the controller --------------------------------------------------------------------------


class PVProtectionController(Controller):
    name = "pv-protection"
    component = "pv-protection-controller"
    default_workers = 1

    def setup(self) -> None:
        self.volumes = self.informer(PVS)
        self.volumes.add_event_handler(self._changed, lambda old, new: self._changed(new), None)
        self.added = 0  # finalizers added (tests and metrics)
        self.removed = 0  # finalizers removed

    def _changed(self, pv: Obj) -> None:
        if needs_finalizer(pv, PV_PROTECTION_FINALIZER) or is_deletion_candidate(pv, PV_PROTECTION_FINALIZER):
            self.enqueue(pv)

    async def sync(self, key: str) -> None:
        pv = self.volumes.indexer.get(key)
        if pv is None:
            return
        if is_deletion_candidate(pv, PV_PROTECTION_FINALIZER):
            if pv_in_use(pv):
                log.debug("pv-protection: keeping %s: it is bound", key)
                return
            if await write_finalizer(self, PVS, pv, PV_PROTECTION_FINALIZER, add=False):
                self.removed += 1
                log.info("pv-protection: removed the protection finalizer from %s", key)
            return
        if needs_finalizer(pv, PV_PROTECTION_FINALIZER):
            if await write_finalizer(self, PVS, pv, PV_PROTECTION_FINALIZER, add=True):
                self.added += 1
                log.debug("pv-protection: added the protection finalizer to %s", key)
