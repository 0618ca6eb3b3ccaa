"""The PVC protection controller (upstream pkg/controller/volume/pvcprotection, feature
StorageObjectInUseProtection): a PersistentVolumeClaim is not deleted while a pod uses it.

Owns the ``kubernetes.io/pvc-protection`` finalizer after the StorageObjectInUseProtection
admission plugin put it on a new claim:

- a claim being deleted that has the finalizer keeps it while a pod uses the claim, and loses
  it (so the deletion completes) once none does.  "In use" is looked up first in the pod
  informer's cache through an index by claim (``POD_PVC_INDEX``); only when the cache knows
  of no user is the namespace's pods listed live from the API server (the cache may lag: a
  pod just bound may not be in it yet), and the finalizer is removed only when that list
  agrees;
- a claim not being deleted that lacks the finalizer (created before the plugin, or through a
  path that bypasses it) gets it.

Which pods use a claim (upstream's podUsesPVC, pure functions below): only a scheduled pod
(``spec.nodeName`` set: the scheduler and the kubelet refuse a claim that is being deleted
to pods they have not yet taken).  Such a pod uses the claim named by a
``volumes[].persistentVolumeClaim.claimName`` whatever its phase — a Succeeded or Failed pod
may not have unmounted yet, so upstream keeps the claim until the pod object is gone — and the
claim ``<pod>-<volume>`` of a generic ephemeral volume while the pod is not shut down (a
deletionTimestamp with deletionGracePeriodSeconds 0: the kubelet is done with it, or it was
force-deleted; this breaks the cycle with a claim the pod owns) and that claim is controlled
by the pod (its controller owner reference has the pod's uid).

A claim is re-checked when a pod referring to it is deleted, has terminated (upstream's
IsPodTerminated: phase Succeeded/Failed, or deleting with no container running) or is not
scheduled, and when a watch update replaces one pod by another of the same name (the old
pod's claims too).  The finalizer writes are ``pvprotection.write_finalizer`` merge patches
with the cached resourceVersion.
"""

from __future__ import annotations

import logging
from typing import Any

from pybernetes.client.cache import DeletedFinalStateUnknown, object_of
from pybernetes.controllers.base import Controller, Obj
from pybernetes.controllers.pvprotection import (
    is_deletion_candidate,
    needs_finalizer,
    write_finalizer,
)
from pybernetes.machinery.meta import controller_of

log = logging.getLogger(__name__)

PVCS = "/v1/persistentvolumeclaims"
PODS = "/v1/pods"
PVC_PROTECTION_FINALIZER = "kubernetes.io/pvc-protection"
POD_PVC_INDEX = "pod-pvc-index"  # "<namespace>/<claim>" for every claim a pod's volumes name


# -- which pods use which claims (pure) ---------------------------------------------------------


def _d(value: Any) -> Obj:
    return value if isinstance(value, dict) else {}


def _volumes(pod: Obj) -> list[Obj]:
    volumes = _d(pod.get("spec")).get("volumes")
    return [v for v in volumes if isinstance(v, dict)] if isinstance(volumes, list) else []


def ephemeral_claim_name(pod: Obj, volume: Obj) -> str:
    """The claim a generic ephemeral volume gets: ``<pod name>-<volume name>``."""
    return f"{_d(pod.get('metadata')).get('name') or ''}-{volume.get('name') or ''}"


def volume_claim_name(pod: Obj, volume: Obj) -> str | None:
    """The claim a pod volume refers to: its persistentVolumeClaim's claimName, or the claim
    of a generic ephemeral volume; None for other volume types."""
    source = volume.get("persistentVolumeClaim")
    if isinstance(source, dict):
        name = source.get("claimName")
        return name if isinstance(name, str) and name else None
    if isinstance(volume.get("ephemeral"), dict):
        return ephemeral_claim_name(pod, volume)
    return None


def claim_names(pod: Obj) -> list[str]:
    """Every claim the pod's volumes refer to, in volume order, each once."""
    names: list[str] = []
    for volume in _volumes(pod):
        name = volume_claim_name(pod, volume)
        if name and name not in names:
            names.append(name)
    return names


def pod_pvc_index(pod: Obj) -> list[str]:
    """The pod informer's index: ``<namespace>/<claim>`` for each claim the pod refers to."""
    namespace = _d(pod.get("metadata")).get("namespace") or ""
    return [f"{namespace}/{name}" for name in claim_names(pod)]


def _not_running(statuses: Any) -> bool:
    """No container of ``statuses`` is running (each is waiting or terminated)."""
    for status in statuses if isinstance(statuses, list) else ():
        state = _d(_d(status).get("state"))
        if not isinstance(state.get("waiting"), dict) and not isinstance(state.get("terminated"), dict):
            return False
    return True


def is_pod_terminated(pod: Obj) -> bool:
    """Upstream's IsPodTerminated: phase Succeeded or Failed, or being deleted with no init,
    regular or ephemeral container running."""
    status = _d(pod.get("status"))
    if status.get("phase") in ("Succeeded", "Failed"):
        return True
    return (bool(_d(pod.get("metadata")).get("deletionTimestamp"))
            and _not_running(status.get("initContainerStatuses"))
            and _not_running(status.get("containerStatuses"))
            and _not_running(status.get("ephemeralContainerStatuses")))


def pod_is_shut_down(pod: Obj) -> bool:
    """The kubelet is done with the pod (it asked for the final deletion with grace 0) or it
    was force-deleted: a deletionTimestamp with deletionGracePeriodSeconds 0."""
    meta = _d(pod.get("metadata"))
    return bool(meta.get("deletionTimestamp")) and meta.get("deletionGracePeriodSeconds") == 0


def claim_is_for_pod(pod: Obj, claim: Obj) -> bool:
    """The claim is controlled by this pod (an ephemeral volume's claim, not a stranger's)."""
    ref = controller_of(claim)
    uid = _d(pod.get("metadata")).get("uid")
    return ref is not None and bool(uid) and ref.get("uid") == uid


def pod_uses_claim(pod: Obj, claim: Obj) -> bool:
    """Upstream's podUsesPVC: does ``pod`` (of the claim's namespace) keep ``claim``?"""
    if not _d(pod.get("spec")).get("nodeName"):
        return False
    name = _d(claim.get("metadata")).get("name")
    for volume in _volumes(pod):
        source = volume.get("persistentVolumeClaim")
        if isinstance(source, dict):
            if source.get("claimName") == name:
                return True
        elif (isinstance(volume.get("ephemeral"), dict) and ephemeral_claim_name(pod, volume) == name
              and not pod_is_shut_down(pod) and claim_is_for_pod(pod, claim)):
            return True
    return False


def claims_to_recheck(pod: Obj, deleted: bool) -> list[str]:
    """The claim keys a pod event should re-check: none for a running scheduled pod (it cannot
    release anything), else every claim it refers to."""
    if not deleted and not is_pod_terminated(pod) and _d(pod.get("spec")).get("nodeName"):
        return []
    return pod_pvc_index(pod)


# -- the controller --------------------------------------------------------------------------


class PVCProtectionController(Controller):
    name = "pvc-protection"
    component = "pvc-protection-controller"
    default_workers = 2

    def setup(self) -> None:
        self.claims = self.informer(PVCS)
        self.claims.add_event_handler(self._claim_changed, lambda old, new: self._claim_changed(new), None)
        self.pods = self.informer(PODS, indexers={POD_PVC_INDEX: pod_pvc_index})
        self.pods.add_event_handler(self._pod_added, self._pod_updated, self._pod_deleted)
        self.added = 0  # finalizers added (tests and metrics)
        self.removed = 0  # finalizers removed
        self.live_lists = 0  # live pod lists sent to the API server

    # -- event handlers: only keys ---------------------------------------------------------------

    def _claim_changed(self, claim: Obj) -> None:
        if (needs_finalizer(claim, PVC_PROTECTION_FINALIZER)
                or is_deletion_candidate(claim, PVC_PROTECTION_FINALIZER)):
            self.enqueue(claim)

    def _recheck(self, pod: Obj, deleted: bool) -> None:
        for key in claims_to_recheck(pod, deleted):
            self.enqueue(key)

    def _pod_added(self, pod: Obj) -> None:
        self._recheck(pod, False)

    def _pod_updated(self, old: Obj, new: Obj) -> None:
        self._recheck(new, False)
        # An update may hide a deletion followed by a creation under the same name.
        if _d(old.get("metadata")).get("uid") != _d(new.get("metadata")).get("uid"):
            self._recheck(old, True)

    def _pod_deleted(self, item: Obj | DeletedFinalStateUnknown) -> None:
        self._recheck(object_of(item), True)

    # -- sync --------------------------------------------------------------------------------

    async def sync(self, key: str) -> None:
        claim = self.claims.indexer.get(key)
        if claim is None:
            return
        if is_deletion_candidate(claim, PVC_PROTECTION_FINALIZER):
            if await self.in_use(claim):
                log.debug("pvc-protection: keeping %s: a pod uses it", key)
                return
            if await write_finalizer(self, PVCS, claim, PVC_PROTECTION_FINALIZER, add=False):
                self.removed += 1
                log.info("pvc-protection: removed the protection finalizer from %s: no pod uses it", key)
            return
        if needs_finalizer(claim, PVC_PROTECTION_FINALIZER):
            if await write_finalizer(self, PVCS, claim, PVC_PROTECTION_FINALIZER, add=True):
                self.added += 1
                log.debug("pvc-protection: added the protection finalizer to %s", key)

    async def in_use(self, claim: Obj) -> bool:
        """A pod uses the claim: the informer's cache first, then a live list to be sure."""
        meta = _d(claim.get("metadata"))
        namespace = meta.get("namespace") or ""
        cached = self.pods.indexer.by_index(POD_PVC_INDEX, f"{namespace}/{meta.get('name') or ''}")
        if any(pod_uses_claim(pod, claim) for pod in cached):
            return True
        self.live_lists += 1
        live = (await self.client.list_all(PODS, namespace)).get("items") or []
        return any(pod_uses_claim(pod, claim) for pod in live)
