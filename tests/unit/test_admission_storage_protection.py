"""The StorageObjectInUseProtection admission plugin (apiserver/admission/
storage_object_in_use_protection.py) on its own: the protection finalizers on created claims
and volumes, once, other finalizers kept, nothing else touched; and its place in the
default admission chain."""

from __future__ import annotations

from typing import Any

from pybernetes.apiserver.admission.storage_object_in_use_protection import (
    PV_PROTECTION_FINALIZER,
    PVC_PROTECTION_FINALIZER,
    StorageObjectInUseProtection,
)
from pybernetes.apiserver.pipeline import AdmissionAttributes, UserInfo, default_pipeline


def attrs(resource: str, obj: Any, *, operation: str = "CREATE", group: str = "", subresource: str = "",
          kind: str = "PersistentVolumeClaim") -> AdmissionAttributes:
    return AdmissionAttributes(operation, group, "v1", resource, subresource, kind, "ns", "x", obj, None,
                               UserInfo("admin"), False)


def claim(**meta: Any) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "x", **meta}, "spec": {}}


async def test_a_created_claim_gets_the_pvc_protection_finalizer() -> None:
    plugin = StorageObjectInUseProtection()
    obj = claim()
    await plugin.admit(attrs("persistentvolumeclaims", obj))
    assert obj["metadata"]["finalizers"] == [PVC_PROTECTION_FINALIZER]


async def test_a_created_volume_gets_the_pv_protection_finalizer_after_its_own() -> None:
    plugin = StorageObjectInUseProtection()
    obj = {"kind": "PersistentVolume", "metadata": {"name": "pv", "finalizers": ["example.com/keep"]}}
    await plugin.admit(attrs("persistentvolumes", obj, kind="PersistentVolume"))
    assert obj["metadata"]["finalizers"] == ["example.com/keep", PV_PROTECTION_FINALIZER]


async def test_the_finalizer_is_not_added_twice() -> None:
    plugin = StorageObjectInUseProtection()
    obj = claim(finalizers=[PVC_PROTECTION_FINALIZER, "a"])
    await plugin.admit(attrs("persistentvolumeclaims", obj))
    assert obj["metadata"]["finalizers"] == [PVC_PROTECTION_FINALIZER, "a"]


async def test_other_resources_subresources_and_bad_shapes_are_left_alone() -> None:
    plugin = StorageObjectInUseProtection()
    pod = {"metadata": {"name": "p"}}
    await plugin.admit(attrs("pods", pod, kind="Pod"))
    other_group = claim()
    await plugin.admit(attrs("persistentvolumeclaims", other_group, group="example.com"))
    status = claim()
    await plugin.admit(attrs("persistentvolumeclaims", status, subresource="status"))
    assert "finalizers" not in pod["metadata"]
    assert "finalizers" not in other_group["metadata"]
    assert "finalizers" not in status["metadata"]
    bad = claim(finalizers="not-a-list")
    await plugin.admit(attrs("persistentvolumeclaims", bad))  # validation rejects it, not us
    assert bad["metadata"]["finalizers"] == "not-a-list"
    await plugin.admit(attrs("persistentvolumeclaims", None))


def test_only_creates_are_handled() -> None:
    plugin = StorageObjectInUseProtection()
    assert plugin.handles("CREATE")
    assert not any(plugin.handles(op) for op in ("UPDATE", "DELETE", "CONNECT"))


def test_it_is_on_by_default_after_default_storage_class() -> None:
    names = [p.name for p in default_pipeline().admission.plugins]
    assert "StorageObjectInUseProtection" in names
    assert names.index("DefaultStorageClass") < names.index("StorageObjectInUseProtection")
