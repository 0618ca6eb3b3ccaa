"""The StorageObjectInUseProtection admission plugin (upstream plugin/pkg/admission/storage/
storageobjectinuseprotection; feature StorageObjectInUseProtection, GA, on by default).

On CREATE of a PersistentVolumeClaim it adds the finalizer ``kubernetes.io/pvc-protection``,
on CREATE of a PersistentVolume ``kubernetes.io/pv-protection`` — once (a finalizer already
there is not added again), after the finalizers the object already has.  The finalizers are
removed by the controller manager's ``pvc-protection`` and ``pv-protection`` controllers when
no pod uses the claim / the volume is no longer bound, so that a claim in use by a pod and a
volume bound to a claim are not deleted under their users.  Those controllers also add the
finalizer to objects created without it (before this plugin, or by a path that bypasses it).

Subresources and other resources are left alone; an object whose ``metadata`` or
``metadata.finalizers`` is not of the right shape is left for validation to reject.
Mutating only.
"""

from __future__ import annotations

from typing import Any

from pybernetes.apiserver.pipeline import AdmissionAttributes
from pybernetes.machinery.meta import add_finalizer

PVC_PROTECTION_FINALIZER = "kubernetes.io/pvc-protection"
PV_PROTECTION_FINALIZER = "kubernetes.io/pv-protection"

# (group, resource) -> the finalizer this plugin adds on create
FINALIZERS: dict[tuple[str, str], str] = {
    ("", "persistentvolumeclaims"): PVC_PROTECTION_FINALIZER,
    ("", "persistentvolumes"): PV_PROTECTION_FINALIZER,
}


def with_finalizer(obj: Any, finalizer: str) -> bool:
    """Add ``finalizer`` to ``obj``'s ``metadata.finalizers`` (in place) unless present.
    True when the object was changed; False when it already had it or is not object-shaped
    (validation reports that)."""
    if not isinstance(obj, dict) or not isinstance(obj.get("metadata", {}), dict):
        return False
    if not isinstance(obj.get("metadata", {}).get("finalizers", []), list):
        return False
    return add_finalizer(obj, finalizer)


class StorageObjectInUseProtection:
    name = "StorageObjectInUseProtection"

    def handles(self, operation: str) -> bool:
        return operation == "CREATE"

    async def admit(self, attrs: AdmissionAttributes) -> None:
        if attrs.subresource:
            return
        finalizer = FINALIZERS.get((attrs.group, attrs.resource))
        if finalizer is not None:
            with_finalizer(attrs.obj, finalizer)
