"""The PersistentVolume binder's pure decisions (controllers/persistentvolume_core.py): every
claim and volume case as a table, and the steps of a binding."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from pybernetes.controllers.persistentvolume_core import (
    ASSIGN_CLASS,
    BIND,
    BIND_COMPLETED,
    BOUND_BY_CONTROLLER,
    DELETE,
    EXTERNAL,
    LOST,
    PENDING,
    PROVISION,
    PROVISIONED_BY,
    RETAIN,
    SELECTED_NODE,
    WAIT,
    bind_claim,
    bind_volume,
    claim_status,
    claim_with_class,
    claim_with_provisioner,
    decide_claim,
    decide_volume,
    default_storage_class,
    unbind_volume,
    volume_mismatch,
    volume_status,
)

UID = "uid-1"


def pvc(name: str = "data", *, size: str = "1Gi", uid: str = UID, volume_name: str = "",
        storage_class: str | None = "", annotations: dict | None = None, phase: str = "Pending",
        modes: tuple[str, ...] = ("ReadWriteOnce",), volume_mode: str | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {"accessModes": list(modes), "resources": {"requests": {"storage": size}}}
    if storage_class is not None:
        spec["storageClassName"] = storage_class
    if volume_name:
        spec["volumeName"] = volume_name
    if volume_mode:
        spec["volumeMode"] = volume_mode
    meta: dict[str, Any] = {"name": name, "namespace": "ns", "uid": uid, "resourceVersion": "7"}
    if annotations:
        meta["annotations"] = dict(annotations)
    return {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": meta, "spec": spec,
            "status": {"phase": phase}}


def pv(name: str = "vol", *, size: str = "5Gi", claim: str | None = None, claim_uid: str | None = UID,
       storage_class: str = "", phase: str = "Available", policy: str = "Retain",
       annotations: dict | None = None, modes: tuple[str, ...] = ("ReadWriteOnce",),
       volume_mode: str | None = None, deleting: bool = False) -> dict[str, Any]:
    spec: dict[str, Any] = {"capacity": {"storage": size}, "accessModes": list(modes),
                            "persistentVolumeReclaimPolicy": policy, "storageClassName": storage_class}
    if claim is not None:
        spec["claimRef"] = {"kind": "PersistentVolumeClaim", "apiVersion": "v1", "namespace": "ns", "name": claim}
        if claim_uid:
            spec["claimRef"]["uid"] = claim_uid
    if volume_mode:
        spec["volumeMode"] = volume_mode
    meta: dict[str, Any] = {"name": name, "uid": f"pv-{name}", "resourceVersion": "3"}
    if annotations:
        meta["annotations"] = dict(annotations)
    if deleting:
        meta["deletionTimestamp"] = "2024-01-01T00:00:00Z"
    return {"apiVersion": "v1", "kind": "PersistentVolume", "metadata": meta, "spec": spec,
            "status": {"phase": phase}}


def sc(name: str, provisioner: str = "example.com/disk", mode: str = "Immediate", default: bool = False,
       created: str = "2024-01-01T00:00:00Z") -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "creationTimestamp": created}
    if default:
        meta["annotations"] = {"storageclass.kubernetes.io/is-default-class": "true"}
    return {"metadata": meta, "provisioner": provisioner, "volumeBindingMode": mode}


BOUND_NOTES = {BIND_COMPLETED: "yes", BOUND_BY_CONTROLLER: "yes"}
WFFC = sc("local", "kubernetes.io/no-provisioner", mode="WaitForFirstConsumer")


def reasons(plan: Any) -> list[tuple[str, str, str]]:
    return [(n.about, n.type, n.reason) for n in plan.notes]


# -- claims ----------------------------------------------------------------------------------------

CLAIM_CASES = [
    # id, claim, volume named by the claim, all volumes, its class, default class -> action, volume, notes
    ("unbound: smallest fitting volume", pvc(), None, [pv("big", size="9Gi"), pv("fit", size="2Gi")], None, "",
     BIND, "fit", []),
    ("unbound: nothing, no class", pvc(), None, [pv("small", size="1Mi")], None, "",
     PENDING, None, [("claim", "Normal", "FailedBinding")]),
    ("unbound: class missing", pvc(storage_class="gone"), None, [], None, "",
     PENDING, None, [("claim", "Warning", "ProvisioningFailed")]),
    ("unbound: no-provisioner class", pvc(storage_class="manual"), None, [],
     sc("manual", "kubernetes.io/no-provisioner"), "", PENDING, None, [("claim", "Warning", "ProvisioningFailed")]),
    ("unbound: external provisioner", pvc(storage_class="fast"), None, [], sc("fast"), "",
     PROVISION, None, [("claim", "Normal", "ExternalProvisioning")]),
    ("unbound: already annotated for the provisioner",
     pvc(storage_class="fast", annotations={"volume.kubernetes.io/storage-provisioner": "example.com/disk",
                                            "volume.beta.kubernetes.io/storage-provisioner": "example.com/disk"}),
     None, [], sc("fast"), "", PROVISION, None, []),
    ("unbound: a matching volume beats provisioning", pvc(storage_class="fast"), None,
     [pv("fast-1", storage_class="fast")], sc("fast"), "", BIND, "fast-1", []),
    ("unbound: no class field gets the default", pvc(storage_class=None), None, [], None, "standard",
     ASSIGN_CLASS, None, []),
    ("unbound: no class field, a classless volume fits first", pvc(storage_class=None), None, [pv("plain")], None,
     "standard", BIND, "plain", []),
    ("unbound: explicit empty class never gets the default", pvc(storage_class=""), None, [], None, "standard",
     PENDING, None, [("claim", "Normal", "FailedBinding")]),
    ("wffc: waits", pvc(storage_class="local"), None, [pv("local-1", storage_class="local")], WFFC, "",
     WAIT, None, [("claim", "Normal", "WaitForFirstConsumer")]),
    ("wffc: volume pre-bound by the scheduler", pvc(storage_class="local"), None,
     [pv("other", storage_class="local"), pv("chosen", storage_class="local", claim="data", phase="Available")],
     WFFC, "", BIND, "chosen", []),
    ("wffc: node selected", pvc(storage_class="local", annotations={SELECTED_NODE: "n1"}), None,
     [pv("local-1", storage_class="local")], WFFC, "", BIND, "local-1", []),
    ("wffc: node selected, nothing fits, no provisioner",
     pvc(storage_class="local", annotations={SELECTED_NODE: "n1"}), None, [], WFFC, "",
     PENDING, None, [("claim", "Warning", "ProvisioningFailed")]),
    ("named volume missing", pvc(volume_name="vol"), None, [], None, "", PENDING, None, []),
    ("named volume free", pvc(volume_name="vol"), pv(), [], None, "", BIND, "vol", []),
    ("named volume too small", pvc(volume_name="vol", size="10Gi"), pv(), [], None, "",
     PENDING, None, [("claim", "Warning", "VolumeMismatch")]),
    ("named volume of another class", pvc(volume_name="vol", storage_class="x"), pv(), [], None, "",
     PENDING, None, [("claim", "Warning", "VolumeMismatch")]),
    ("named volume being deleted", pvc(volume_name="vol"), pv(deleting=True), [], None, "",
     PENDING, None, [("claim", "Warning", "VolumeMismatch")]),
    ("named volume pre-bound to it", pvc(volume_name="vol"), pv(claim="data", claim_uid=None), [], None, "",
     BIND, "vol", []),
    ("named volume bound elsewhere", pvc(volume_name="vol"), pv(claim="other"), [], None, "",
     PENDING, None, [("claim", "Warning", "FailedBinding")]),
    ("bound: all well", pvc(volume_name="vol", annotations=BOUND_NOTES, phase="Bound"), pv(claim="data"), [],
     None, "", BIND, "vol", []),
    ("bound: volume lost its claimRef", pvc(volume_name="vol", annotations=BOUND_NOTES, phase="Bound"), pv(), [],
     None, "", BIND, "vol", []),
    ("bound: volume gone", pvc(volume_name="vol", annotations=BOUND_NOTES, phase="Bound"), None, [], None, "",
     LOST, None, [("claim", "Warning", "ClaimLost")]),
    ("bound: volume gone, already Lost", pvc(volume_name="vol", annotations=BOUND_NOTES, phase="Lost"), None, [],
     None, "", LOST, None, []),
    ("bound: volumeName cleared", pvc(annotations=BOUND_NOTES, phase="Bound"), None, [], None, "",
     LOST, None, [("claim", "Warning", "ClaimLost")]),
    ("bound: volume bound to another claim", pvc(volume_name="vol", annotations=BOUND_NOTES, phase="Bound"),
     pv(claim="data", claim_uid="someone-else"), [], None, "", LOST, None, [("claim", "Warning", "ClaimMisbound")]),
]


@pytest.mark.parametrize(("claim", "volume", "volumes", "storage_class", "default", "action", "chosen", "notes"),
                         [c[1:] for c in CLAIM_CASES], ids=[c[0] for c in CLAIM_CASES])
def test_decide_claim(claim: Any, volume: Any, volumes: Any, storage_class: Any, default: str, action: str,
                      chosen: str | None, notes: list) -> None:
    before = copy.deepcopy((claim, volume, volumes))
    plan = decide_claim(claim, volume=volume, volumes=volumes, storage_class=storage_class, default_class=default)
    assert plan.action == action
    assert (plan.volume or {}).get("metadata", {}).get("name") == chosen
    assert reasons(plan) == notes
    assert (claim, volume, volumes) == before


def test_plan_details() -> None:
    plan = decide_claim(pvc(storage_class="fast"), volume=None, volumes=[], storage_class=sc("fast"))
    assert plan.provisioner == "example.com/disk"
    plan = decide_claim(pvc(storage_class=None), volume=None, volumes=[], storage_class=None, default_class="std")
    assert plan.storage_class == "std"
    plan = decide_claim(pvc(storage_class="gone"), volume=None, volumes=[], storage_class=None)
    assert plan.notes[0].message == 'storageclass.storage.k8s.io "gone" not found'
    plan = decide_claim(pvc(storage_class="local"), volume=None, volumes=[], storage_class=WFFC)
    assert plan.notes[0].message == "waiting for first consumer to be created before binding"
    plan = decide_claim(pvc(), volume=None, volumes=[], storage_class=None)
    assert plan.notes[0].message == "no persistent volumes available for this claim and no storage class is set"


@pytest.mark.parametrize(("volume", "claim", "want"), [
    (pv(), pvc(), ""),
    (pv(size="1Mi"), pvc(), "requested PV is too small"),
    (pv(storage_class="a"), pvc(storage_class="b"), "storageClassName does not match"),
    (pv(volume_mode="Block"), pvc(), "incompatible volumeMode"),
    (pv(modes=("ReadOnlyMany",)), pvc(), "incompatible accessMode"),
])
def test_volume_mismatch(volume: Any, claim: Any, want: str) -> None:
    assert volume_mismatch(volume, claim) == want


def test_default_storage_class_is_the_newest_default() -> None:
    classes = [sc("a", default=True, created="2024-01-01T00:00:00Z"), sc("plain"),
               sc("c", default=True, created="2024-02-01T00:00:00Z"),
               sc("b", default=True, created="2024-02-01T00:00:00Z")]
    assert default_storage_class(classes)["metadata"]["name"] == "b"
    assert default_storage_class([sc("plain")]) is None
    beta = sc("beta")
    beta["metadata"]["annotations"] = {"storageclass.beta.kubernetes.io/is-default-class": "true"}
    assert default_storage_class([beta])["metadata"]["name"] == "beta"


# -- volumes ---------------------------------------------------------------------------------------

VOLUME_CASES = [
    # id, volume, its claim (None: gone) -> phase, reclaim, unbind, enqueue claim, notes
    ("free", pv(phase="Pending"), None, "Available", "", False, False, []),
    ("pre-bound by a user", pv(claim="data", claim_uid=None), None, "Available", "", False, True, []),
    ("bound, claim bound to it", pv(claim="data", phase="Available"), pvc(volume_name="vol"),
     "Bound", "", False, False, []),
    ("bound on this side only", pv(claim="data"), pvc(), None, "", False, True, []),
    ("bound on this side only, volume modes differ", pv(claim="data", volume_mode="Block"), pvc(),
     None, "", False, False, [("volume", "Warning", "VolumeMismatch"), ("claim", "Warning", "VolumeMismatch")]),
    ("claim gone, Retain", pv(claim="data", phase="Bound"), None, "Released", RETAIN, False, False, []),
    ("claim replaced (new uid), Retain", pv(claim="data", phase="Bound"), pvc(uid="new"),
     "Released", RETAIN, False, False, []),
    ("claim gone, Delete", pv(claim="data", phase="Bound", policy="Delete"), None,
     "Released", DELETE, False, False, [("volume", "Normal", "VolumeDelete")]),
    ("claim gone, Delete, provisioned", pv(claim="data", phase="Bound", policy="Delete",
                                           annotations={PROVISIONED_BY: "example.com/disk"}), None,
     "Released", EXTERNAL, False, False, []),
    ("claim gone, Recycle", pv(claim="data", phase="Bound", policy="Recycle"), None,
     "Failed", "", False, False, [("volume", "Warning", "VolumeFailedRecycle")]),
    ("claim gone, Recycle, already Failed", pv(claim="data", phase="Failed", policy="Recycle"), None,
     "Failed", "", False, False, []),
    ("claim gone, Retain, already Failed", pv(claim="data", phase="Failed"), None, None, RETAIN, False, False, []),
    ("claim bound elsewhere, bound by controller", pv(claim="data", annotations={BOUND_BY_CONTROLLER: "yes"}),
     pvc(volume_name="other"), "Available", "", True, False, []),
    ("claim bound elsewhere, pre-bound by user", pv(claim="data"), pvc(volume_name="other"),
     "Available", "", True, False, []),
    ("claim bound elsewhere, provisioned for it", pv(claim="data", policy="Delete",
                                                     annotations={PROVISIONED_BY: "example.com/disk"}),
     pvc(volume_name="other"), "Released", EXTERNAL, False, False, []),
]


@pytest.mark.parametrize(("volume", "claim", "phase", "reclaim", "unbind", "enqueue", "notes"),
                         [c[1:] for c in VOLUME_CASES], ids=[c[0] for c in VOLUME_CASES])
def test_decide_volume(volume: Any, claim: Any, phase: str | None, reclaim: str, unbind: bool, enqueue: bool,
                       notes: list) -> None:
    before = copy.deepcopy((volume, claim))
    plan = decide_volume(volume, claim)
    assert (plan.phase, plan.reclaim, plan.unbind, plan.enqueue_claim) == (phase, reclaim, unbind, enqueue)
    assert reasons(plan) == notes
    assert (volume, claim) == before


def test_failed_volume_carries_a_message() -> None:
    plan = decide_volume(pv(claim="data", policy="Recycle"), None)
    assert plan.message
    assert volume_status(pv(), plan.phase, plan.message) == {"phase": "Failed", "message": plan.message}


# -- the steps of a binding ------------------------------------------------------------------------


def test_bind_volume_chosen_by_the_controller() -> None:
    volume, claim = pv(), pvc()
    new = bind_volume(volume, claim)
    assert new["spec"]["claimRef"] == {"kind": "PersistentVolumeClaim", "apiVersion": "v1", "namespace": "ns",
                                       "name": "data", "uid": UID, "resourceVersion": "7"}
    assert new["metadata"]["annotations"] == {BOUND_BY_CONTROLLER: "yes"}
    assert "claimRef" not in volume["spec"]  # the input is untouched
    assert bind_volume(new, claim) is None


def test_bind_volume_pre_bound_by_a_user_gets_the_uid_only() -> None:
    new = bind_volume(pv(claim="data", claim_uid=None), pvc())
    assert new["spec"]["claimRef"]["uid"] == UID
    assert "annotations" not in new["metadata"]


def test_bind_volume_already_bound() -> None:
    assert bind_volume(pv(claim="data"), pvc()) is None


def test_bind_claim_chosen_by_the_controller_and_named_by_the_user() -> None:
    chosen = bind_claim(pvc(), pv())
    assert chosen["spec"]["volumeName"] == "vol"
    assert chosen["metadata"]["annotations"] == {BIND_COMPLETED: "yes", BOUND_BY_CONTROLLER: "yes"}
    named = bind_claim(pvc(volume_name="vol"), pv())
    assert named["metadata"]["annotations"] == {BIND_COMPLETED: "yes"}
    assert bind_claim(chosen, pv()) is None
    assert bind_claim(named, pv()) is None


def test_claim_status() -> None:
    bound = claim_status(pvc(), "Bound", pv(modes=("ReadWriteOnce", "ReadOnlyMany")))
    assert bound == {"phase": "Bound", "accessModes": ["ReadWriteOnce", "ReadOnlyMany"], "capacity": {"storage": "5Gi"}}
    claim = pvc()
    claim["status"] = bound
    assert claim_status(claim, "Bound", pv(modes=("ReadWriteOnce", "ReadOnlyMany"))) is None
    assert claim_status(claim, "Lost") == {"phase": "Lost"}
    assert claim_status(pvc(), "Pending") is None


def test_volume_status_keeps_other_fields() -> None:
    volume = pv(phase="Pending")
    volume["status"]["lastPhaseTransitionTime"] = "2024-01-01T00:00:00Z"
    volume["status"]["message"] = "old"
    assert volume_status(volume, "Available") == {"phase": "Available", "lastPhaseTransitionTime": "2024-01-01T00:00:00Z"}
    assert volume_status(pv(), "Available") is None


def test_unbind_volume() -> None:
    by_controller = unbind_volume(pv(claim="data", annotations={BOUND_BY_CONTROLLER: "yes"}))
    assert "claimRef" not in by_controller["spec"]
    assert "annotations" not in by_controller["metadata"]
    kept = unbind_volume(pv(claim="data", annotations={BOUND_BY_CONTROLLER: "yes", "other": "x"}))
    assert kept["metadata"]["annotations"] == {"other": "x"}
    by_user = unbind_volume(pv(claim="data"))
    assert by_user["spec"]["claimRef"] == {"kind": "PersistentVolumeClaim", "apiVersion": "v1", "namespace": "ns",
                                           "name": "data"}


def test_claim_annotations_and_class() -> None:
    annotated = claim_with_provisioner(pvc(), "example.com/disk")
    assert annotated["metadata"]["annotations"] == {
        "volume.kubernetes.io/storage-provisioner": "example.com/disk",
        "volume.beta.kubernetes.io/storage-provisioner": "example.com/disk"}
    assert claim_with_provisioner(annotated, "example.com/disk") is None
    assert claim_with_provisioner(annotated, "example.com/other") is not None
    claim = pvc(storage_class=None)
    assert claim_with_class(claim, "std")["spec"]["storageClassName"] == "std"
    assert "storageClassName" not in claim["spec"]

