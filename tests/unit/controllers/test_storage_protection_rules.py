"""The storage-object-in-use protection rules (controllers/pvcprotection.py and
pvprotection.py, pure functions): which pods use a claim, when a pod is terminated or shut
down, which claims a pod event re-checks, and the finalizer patches."""

from __future__ import annotations

from typing import Any

from pybernetes.controllers.pvcprotection import (
    PVC_PROTECTION_FINALIZER,
    claim_names,
    claims_to_recheck,
    is_pod_terminated,
    pod_is_shut_down,
    pod_pvc_index,
    pod_uses_claim,
)
from pybernetes.controllers.pvprotection import (
    PV_PROTECTION_FINALIZER,
    is_deletion_candidate,
    needs_finalizer,
    pv_in_use,
)
from pybernetes.machinery.meta import finalizer_patch

Obj = dict[str, Any]
DELETED_AT = "2024-01-02T00:00:00Z"


def pod(name: str = "web", *, node: str | None = "n1", phase: str = "Running", claims: tuple[str, ...] = (),
        ephemeral: tuple[str, ...] = (), deleting: bool = False, grace: int | None = None,
        statuses: list[Obj] | None = None, uid: str = "pod-uid") -> Obj:
    volumes: list[Obj] = [{"name": f"v{i}", "persistentVolumeClaim": {"claimName": c}} for i, c in enumerate(claims)]
    volumes += [{"name": v, "ephemeral": {"volumeClaimTemplate": {"spec": {}}}} for v in ephemeral]
    volumes.append({"name": "scratch", "emptyDir": {}})
    meta: Obj = {"name": name, "namespace": "ns", "uid": uid}
    if deleting:
        meta["deletionTimestamp"] = DELETED_AT
        meta["deletionGracePeriodSeconds"] = 30 if grace is None else grace
    status: Obj = {"phase": phase}
    if statuses is not None:
        status["containerStatuses"] = statuses
    return {"metadata": meta, "spec": {"nodeName": node, "volumes": volumes} if node else {"volumes": volumes},
            "status": status}


def claim(name: str, *, owner_uid: str | None = None, controller: bool = True) -> Obj:
    meta: Obj = {"name": name, "namespace": "ns"}
    if owner_uid:
        meta["ownerReferences"] = [{"apiVersion": "v1", "kind": "Pod", "name": "web", "uid": owner_uid,
                                    "controller": controller}]
    return {"metadata": meta, "spec": {}}


def running(name: str = "c") -> Obj:
    return {"name": name, "state": {"running": {"startedAt": "2024-01-01T00:00:00Z"}}}


def terminated(name: str = "c") -> Obj:
    return {"name": name, "state": {"terminated": {"exitCode": 0}}}


# -- which pods use a claim ----------------------------------------------------------------------


def test_a_scheduled_pod_naming_the_claim_uses_it() -> None:
    assert pod_uses_claim(pod(claims=("data",)), claim("data"))
    assert not pod_uses_claim(pod(claims=("other",)), claim("data"))
    assert not pod_uses_claim(pod(), claim("data"))


def test_an_unscheduled_pod_uses_no_claim() -> None:
    # the scheduler and the kubelet refuse a claim being deleted to a pod not yet bound
    assert not pod_uses_claim(pod(node=None, claims=("data",)), claim("data"))


def test_a_finished_pod_still_uses_its_claim_until_it_is_gone() -> None:
    # upstream's podUsesPVC ignores the phase for persistentVolumeClaim volumes: a Succeeded or
    # Failed pod may not have unmounted yet; the claim goes with the pod object
    for phase in ("Succeeded", "Failed"):
        assert pod_uses_claim(pod(phase=phase, claims=("data",)), claim("data"))
    assert pod_uses_claim(pod(deleting=True, grace=0, claims=("data",)), claim("data"))


def test_an_ephemeral_volume_uses_its_own_claim_while_the_pod_is_not_shut_down() -> None:
    mine = claim("web-cache", owner_uid="pod-uid")
    assert pod_uses_claim(pod(ephemeral=("cache",)), mine)
    assert pod_uses_claim(pod(ephemeral=("cache",), phase="Succeeded"), mine)
    assert pod_uses_claim(pod(ephemeral=("cache",), deleting=True, grace=30), mine)
    # the kubelet finished (final delete with grace 0) or it was force-deleted
    assert not pod_uses_claim(pod(ephemeral=("cache",), deleting=True, grace=0), mine)


def test_an_ephemeral_volume_does_not_use_a_claim_of_that_name_it_does_not_control() -> None:
    assert not pod_uses_claim(pod(ephemeral=("cache",)), claim("web-cache"))
    assert not pod_uses_claim(pod(ephemeral=("cache",)), claim("web-cache", owner_uid="someone-else"))
    assert not pod_uses_claim(pod(ephemeral=("cache",)), claim("web-cache", owner_uid="pod-uid", controller=False))
    assert not pod_uses_claim(pod(ephemeral=("cache",)), claim("cache", owner_uid="pod-uid"))


def test_claim_names_and_the_index() -> None:
    p = pod(claims=("data", "logs", "data"), ephemeral=("cache",))
    assert claim_names(p) == ["data", "logs", "web-cache"]
    assert pod_pvc_index(p) == ["ns/data", "ns/logs", "ns/web-cache"]
    assert pod_pvc_index(pod()) == []
    assert pod_pvc_index({"metadata": {"name": "x", "namespace": "ns"}, "spec": {"volumes": "bad"}}) == []
    assert pod_pvc_index({"metadata": {"name": "x", "namespace": "ns"},
                          "spec": {"volumes": [{"name": "v", "persistentVolumeClaim": {}}]}}) == []


# -- terminated, shut down -----------------------------------------------------------------------


def test_is_pod_terminated() -> None:
    assert is_pod_terminated(pod(phase="Succeeded"))
    assert is_pod_terminated(pod(phase="Failed"))
    assert not is_pod_terminated(pod())
    assert not is_pod_terminated(pod(phase="Pending"))
    # deleting, with no container running
    assert is_pod_terminated(pod(deleting=True, statuses=[terminated()]))
    assert is_pod_terminated(pod(deleting=True))
    assert not is_pod_terminated(pod(deleting=True, statuses=[terminated("a"), running("b")]))
    assert not is_pod_terminated(pod(statuses=[terminated()]))  # not deleting, Running phase
    waiting = pod(deleting=True, statuses=[{"name": "c", "state": {"waiting": {"reason": "ContainerCreating"}}}])
    assert is_pod_terminated(waiting)
    unknown = pod(deleting=True, statuses=[{"name": "c", "state": {}}])
    assert not is_pod_terminated(unknown)


def test_pod_is_shut_down_only_with_a_zero_grace_deletion() -> None:
    assert pod_is_shut_down(pod(deleting=True, grace=0))
    assert not pod_is_shut_down(pod(deleting=True, grace=30))
    assert not pod_is_shut_down(pod(phase="Succeeded"))


def test_pod_events_recheck_only_when_the_pod_may_release_a_claim() -> None:
    assert claims_to_recheck(pod(claims=("data",)), deleted=False) == []
    assert claims_to_recheck(pod(claims=("data",)), deleted=True) == ["ns/data"]
    assert claims_to_recheck(pod(claims=("data",), phase="Failed"), deleted=False) == ["ns/data"]
    assert claims_to_recheck(pod(node=None, claims=("data",)), deleted=False) == ["ns/data"]
    assert claims_to_recheck(pod(), deleted=True) == []


# -- finalizers ------------------------------------------------------------------------------------


def obj(finalizers: list[str] | None = None, deleting: bool = False) -> Obj:
    meta: Obj = {"name": "x", "resourceVersion": "7"}
    if finalizers is not None:
        meta["finalizers"] = finalizers
    if deleting:
        meta["deletionTimestamp"] = DELETED_AT
    return {"metadata": meta}


def test_finalizer_candidates() -> None:
    f = PVC_PROTECTION_FINALIZER
    assert needs_finalizer(obj(), f) and needs_finalizer(obj(["other"]), f)
    assert not needs_finalizer(obj([f]), f)
    assert not needs_finalizer(obj(deleting=True), f)  # no finalizer may be added to a deleting object
    assert is_deletion_candidate(obj([f], deleting=True), f)
    assert not is_deletion_candidate(obj([f]), f)
    assert not is_deletion_candidate(obj(["other"], deleting=True), f)


def test_finalizer_patches_keep_the_others_and_carry_the_resource_version() -> None:
    f = PV_PROTECTION_FINALIZER
    assert finalizer_patch(obj(["a"]), f, add=True) == {"metadata": {"resourceVersion": "7", "finalizers": ["a", f]}}
    assert finalizer_patch(obj(), f, add=True) == {"metadata": {"resourceVersion": "7", "finalizers": [f]}}
    assert finalizer_patch(obj([f]), f, add=True) is None
    assert finalizer_patch(obj(["a", f, "b"]), f, add=False) == {
        "metadata": {"resourceVersion": "7", "finalizers": ["a", "b"]}}
    assert finalizer_patch(obj([f]), f, add=False) == {"metadata": {"resourceVersion": "7", "finalizers": None}}
    assert finalizer_patch(obj(["a"]), f, add=False) is None


def test_a_volume_is_in_use_while_bound() -> None:
    assert pv_in_use({"status": {"phase": "Bound"}})
    for phase in ("Available", "Released", "Failed", "Pending"):
        assert not pv_in_use({"status": {"phase": phase}})
    assert not pv_in_use({})
