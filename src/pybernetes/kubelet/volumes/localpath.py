"""The node's half of the local-path provisioner: ``LocalPathReclaimer`` deletes the data of
released local-path volumes that live on this node, then their PersistentVolume.

The provisioner (controllers/localpath_provisioner.py, in the controller manager) creates a
hostPath PV per claim at ``<storage dir>/pvc-<claim uid>_<namespace>_<name>``, pinned to the
chosen node and annotated with that node's name (``NODE_ANNOTATION``).  When the claim goes
and the PV's reclaim policy is Delete, the PV binder marks it Released and leaves it to its
provisioner; only the node holding the directory can remove it, so this watcher (started by
the node agent) does: for every PV provisioned by ``PROVISIONER_NAME`` whose node annotation
is this node, phase Released and reclaim policy Delete, it removes the directory and then
deletes the PV (with the PV's uid as precondition).

The directory is removed only when its name is exactly what the provisioner would have made
for the PV's claimRef and the path is absolute and normalised, so a hand-written PV cannot
point the reclaimer at other data.  A failure is logged and retried with backoff.
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
from collections.abc import Callable
from typing import Any

from pybernetes.client.errors import ApiError, Conflict, ConnectionFailed, NotFound
from pybernetes.client.informer import SharedInformer
from pybernetes.client.rest import RestClient
from pybernetes.client.workqueue import RateLimitingQueue, ShutDown, default_controller_rate_limiter

log = logging.getLogger(__name__)

Obj = dict[str, Any]

PROVISIONER_NAME = "pybernetes.io/local-path"
PROVISIONED_BY = "pv.kubernetes.io/provisioned-by"
NODE_ANNOTATION = "pybernetes.io/local-path-node"
PVS = ("", "v1", "persistentvolumes")


def volume_dir_name(namespace: str, name: str, uid: str) -> str:
    """The directory name the provisioner gives a claim's volume."""
    return f"pvc-{uid}_{namespace}_{name}"


def _d(value: Any) -> Obj:
    return value if isinstance(value, dict) else {}


def reclaimable_path(pv: Obj, node_name: str) -> str | None:
    """The directory to delete for ``pv`` on ``node_name``; None when the PV is not one this
    node reclaims now (not ours, not here, not Released, not Delete, or a suspicious path)."""
    meta = _d(pv.get("metadata"))
    notes = _d(meta.get("annotations"))
    spec = _d(pv.get("spec"))
    if notes.get(PROVISIONED_BY) != PROVISIONER_NAME or notes.get(NODE_ANNOTATION) != node_name:
        return None
    if _d(pv.get("status")).get("phase") != "Released" or spec.get("persistentVolumeReclaimPolicy") != "Delete":
        return None
    if meta.get("deletionTimestamp"):
        return None
    path = str(_d(spec.get("hostPath")).get("path") or "")
    ref = _d(spec.get("claimRef"))
    expected = volume_dir_name(str(ref.get("namespace") or ""), str(ref.get("name") or ""), str(ref.get("uid") or ""))
    if not path or not os.path.isabs(path) or os.path.normpath(path) != path or path == "/":
        return None
    if os.path.basename(path) != expected or not ref.get("uid"):
        return None
    return path


def remove_volume_dir(path: str) -> None:
    """Delete the directory and everything in it (links are removed, never followed)."""
    if os.path.islink(path):
        os.unlink(path)
    elif os.path.isdir(path):
        shutil.rmtree(path)
    elif os.path.lexists(path):
        os.unlink(path)


BUSY_RETRY = 10.0  # seconds before a volume still in use is looked at again


class LocalPathReclaimer:
    def __init__(self, client: RestClient, node_name: str, *,
                 claim_in_use: Callable[[str, str], bool] = lambda namespace, claim: False,
                 busy_retry: float = BUSY_RETRY) -> None:
        self.client = client
        self.node_name = node_name
        # (namespace, claim) -> a pod on this node still uses it: its data is not deleted yet
        # (a second guard: the pvc-protection finalizer already keeps a claim a pod uses, so
        # its volume is released only once the pods are gone — unless that finalizer was
        # removed by hand or its controller is not running)
        self.claim_in_use = claim_in_use
        self.busy_retry = busy_retry
        self.informer = SharedInformer(client, PVS)
        self.queue = RateLimitingQueue(default_controller_rate_limiter(), name="local-path-reclaimer")
        self.reclaimed = 0  # volumes whose data this node removed (tests and metrics)
        self.kept = 0  # times a released volume was kept because a pod here still used it
        self.informer.add_event_handler(self._changed, lambda old, new: self._changed(new))

    def _changed(self, pv: Obj) -> None:
        if reclaimable_path(pv, self.node_name) is not None:
            self.queue.add(str(_d(pv.get("metadata")).get("name") or ""))

    async def run(self) -> None:
        """Watch PersistentVolumes and reclaim ours until cancelled."""
        self.informer.start()
        try:
            while True:
                try:
                    name = await self.queue.get()
                except ShutDown:
                    return
                try:
                    await self.reclaim(str(name))
                except asyncio.CancelledError:
                    self.queue.done(name)
                    raise
                except (ApiError, ConnectionFailed, OSError) as exc:
                    log.warning("local-path: reclaiming volume %s failed (retrying): %s", name, exc)
                    self.queue.add_rate_limited(name)
                else:
                    self.queue.forget(name)
                self.queue.done(name)
        finally:
            self.queue.shutdown()
            await self.informer.stop()

    async def reclaim(self, name: str) -> bool:
        """Reclaim one volume (re-read from the API first); True when it was removed."""
        try:
            pv = await self.client.get(PVS, name)
        except NotFound:
            return False
        path = reclaimable_path(pv, self.node_name)
        if path is None:
            return False
        claim = _d(_d(pv.get("spec")).get("claimRef"))
        if self.claim_in_use(str(claim.get("namespace") or ""), str(claim.get("name") or "")):
            log.info("local-path: volume %s is released but a pod here still uses claim %s/%s: kept for now",
                     name, claim.get("namespace"), claim.get("name"))
            self.kept += 1
            self.queue.add_after(name, self.busy_retry)
            return False
        log.info("local-path: deleting %s, the data of released volume %s", path, name)
        await asyncio.to_thread(remove_volume_dir, path)
        meta = _d(pv.get("metadata"))
        try:
            await self.client.delete(PVS, name, preconditions={"uid": meta.get("uid")})
        except (NotFound, Conflict):
            pass
        self.reclaimed += 1
        return True
