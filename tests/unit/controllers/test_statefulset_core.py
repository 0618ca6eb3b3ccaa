"""statefulset_core and statefulset_pvc: identity, storage, revisions, status, claims and the
retention policy's owner references."""

from __future__ import annotations

from typing import Any

from pybernetes.controllers import statefulset_core as core
from pybernetes.controllers import statefulset_pvc as pvc
from pybernetes.controllers.podutil import parse_time


def make_set(replicas: int = 3, *, start: int | None = None, claims: bool = True, policy: dict | None = None,
             strategy: dict | None = None, **spec: Any) -> dict:
    body: dict[str, Any] = {
        "apiVersion": "apps/v1", "kind": "StatefulSet",
        "metadata": {"name": "web", "namespace": "ns", "uid": "set-uid", "generation": 1},
        "spec": {"replicas": replicas, "serviceName": "svc", "selector": {"matchLabels": {"app": "web"}},
                 "template": {"metadata": {"labels": {"app": "web"}},
                              "spec": {"containers": [{"name": "c", "image": "db:1"}],
                                       "volumes": [{"name": "data", "emptyDir": {}},
                                                   {"name": "cfg", "configMap": {"name": "x"}}]}},
                 "updateStrategy": strategy or {"type": "RollingUpdate", "rollingUpdate": {"partition": 0}},
                 **spec},
    }
    if start is not None:
        body["spec"]["ordinals"] = {"start": start}
    if claims:
        body["spec"]["volumeClaimTemplates"] = [
            {"metadata": {"name": "data", "labels": {"tier": "db"}},
             "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}},
             "status": {"phase": "Pending"}}]
    if policy is not None:
        body["spec"]["persistentVolumeClaimRetentionPolicy"] = policy
    return body


def test_ordinals_and_names():
    sts = make_set(3, start=5)
    assert (core.start_ordinal(sts), core.end_ordinal(sts)) == (5, 7)
    assert core.parent_and_ordinal({"metadata": {"name": "my-web-12"}}) == ("my-web", 12)
    assert core.parent_and_ordinal({"metadata": {"name": "web"}}) == ("", -1)
    assert core.parent_and_ordinal({"metadata": {"name": "web-99999999999"}})[1] == -1
    assert core.in_ordinal_range({"metadata": {"name": "web-5"}}, sts)
    assert not core.in_ordinal_range({"metadata": {"name": "web-4"}}, sts)
    assert not core.in_ordinal_range({"metadata": {"name": "web-8"}}, sts)
    assert core.is_member(sts, {"metadata": {"name": "web-3"}})
    assert not core.is_member(sts, {"metadata": {"name": "web-x"}})
    assert not core.is_member(sts, {"metadata": {"name": "webby-3"}})
    assert core.end_ordinal(make_set(0)) == -1


def test_new_pod_identity_and_storage():
    sts = make_set()
    pod = core.new_pod(sts, 2)
    meta = pod["metadata"]
    assert meta["name"] == "web-2" and meta["namespace"] == "ns"
    assert meta["labels"] == {"app": "web", core.POD_NAME_LABEL: "web-2", core.POD_INDEX_LABEL: "2"}
    assert meta["ownerReferences"] == [{"apiVersion": "apps/v1", "kind": "StatefulSet", "name": "web",
                                        "uid": "set-uid", "controller": True, "blockOwnerDeletion": True}]
    assert pod["spec"]["hostname"] == "web-2" and pod["spec"]["subdomain"] == "svc"
    # The template's "data" volume is replaced by the claim; other volumes stay.
    assert pod["spec"]["volumes"] == [{"name": "data", "persistentVolumeClaim": {"claimName": "data-web-2"}},
                                      {"name": "cfg", "configMap": {"name": "x"}}]
    assert "status" not in pod and not core.is_created(pod)
    assert core.identity_matches(sts, pod) and core.storage_matches(sts, pod)
    # The template in the set is untouched.
    assert sts["spec"]["template"]["spec"]["volumes"][0] == {"name": "data", "emptyDir": {}}


def test_identity_and_storage_mismatches_are_fixed():
    sts = make_set()
    pod = core.new_pod(sts, 1)
    pod["metadata"]["labels"].pop(core.POD_NAME_LABEL)
    pod["spec"]["volumes"] = [{"name": "data", "persistentVolumeClaim": {"claimName": "other"}}]
    assert not core.identity_matches(sts, pod) and not core.storage_matches(sts, pod)
    core.update_identity(sts, pod)
    core.update_storage(sts, pod)
    assert core.identity_matches(sts, pod) and core.storage_matches(sts, pod)
    other_ns = core.new_pod(sts, 1)
    other_ns["metadata"]["namespace"] = "elsewhere"
    assert not core.identity_matches(sts, other_ns)


def test_revision_data_and_apply():
    sts = make_set()
    data = core.revision_data(sts)
    assert data["spec"]["template"]["$patch"] == "replace"
    assert "$patch" not in sts["spec"]["template"]
    changed = make_set()
    changed["spec"]["template"]["spec"]["containers"][0]["image"] = "db:2"
    restored = core.apply_revision(changed, {"data": data})
    assert restored["spec"]["template"] == sts["spec"]["template"]
    assert changed["spec"]["template"]["spec"]["containers"][0]["image"] == "db:2"
    assert core.same_data({"data": data}, {"data": core.revision_data(sts)})
    assert not core.same_data({"data": data}, {"data": core.revision_data(changed)})


def test_versioned_pod_uses_partition():
    sts = make_set(strategy={"type": "RollingUpdate", "rollingUpdate": {"partition": 2}})
    new = make_set(strategy={"type": "RollingUpdate", "rollingUpdate": {"partition": 2}})
    new["spec"]["template"]["spec"]["containers"][0]["image"] = "db:2"
    below = core.versioned_pod(sts, new, "cur", "upd", 1)
    above = core.versioned_pod(sts, new, "cur", "upd", 2)
    assert core.pod_revision(below) == "cur" and below["spec"]["containers"][0]["image"] == "db:1"
    assert core.pod_revision(above) == "upd" and above["spec"]["containers"][0]["image"] == "db:2"
    on_delete = make_set(strategy={"type": "OnDelete"})
    assert core.pod_revision(core.versioned_pod(on_delete, on_delete, "cur", "upd", 0)) == "upd"
    # ordinals.start shifts the partition.
    shifted = make_set(start=10, strategy={"type": "RollingUpdate", "rollingUpdate": {"partition": 1}})
    assert core.pod_revision(core.versioned_pod(shifted, shifted, "cur", "upd", 10)) == "cur"
    assert core.pod_revision(core.versioned_pod(shifted, shifted, "cur", "upd", 11)) == "upd"


def running(pod: dict, ready: bool = True, since: str = "2024-01-01T00:00:00Z", phase: str = "Running") -> dict:
    pod["status"] = {"phase": phase, "conditions": [{"type": "Ready", "status": "True" if ready else "False",
                                                     "lastTransitionTime": since}]}
    return pod


def test_replica_status_and_completion():
    sts = make_set(3, minReadySeconds=10)
    now = parse_time("2024-01-01T00:00:20Z")
    pods = [running(core.new_pod(sts, 0)), running(core.new_pod(sts, 1), since="2024-01-01T00:00:15Z"),
            running(core.new_pod(sts, 2), ready=False)]
    core.set_pod_revision(pods[0], "a")
    core.set_pod_revision(pods[1], "b")
    core.set_pod_revision(pods[2], "b")
    counts = core.replica_status(pods + [core.new_pod(sts, 3)], 10, now, "a", "b")
    assert counts == {"replicas": 3, "readyReplicas": 2, "availableReplicas": 1, "currentReplicas": 1,
                      "updatedReplicas": 2}
    status = {"replicas": 3, "readyReplicas": 3, "updatedReplicas": 3, "currentReplicas": 0,
              "currentRevision": "a", "updateRevision": "b"}
    core.complete_rolling_update(sts, status)
    assert status["currentRevision"] == "b" and status["currentReplicas"] == 3
    status = {"replicas": 3, "readyReplicas": 2, "updatedReplicas": 3, "currentRevision": "a", "updateRevision": "b"}
    core.complete_rolling_update(sts, status)
    assert status["currentRevision"] == "a"


def test_status_differs():
    sts = make_set()
    sts["status"] = {"observedGeneration": 1, "replicas": 3, "currentRevision": "a", "updateRevision": "a"}
    same = {"observedGeneration": 1, "replicas": 3, "currentRevision": "a", "updateRevision": "a",
            "readyReplicas": 0, "collisionCount": 0}
    assert not core.status_differs(sts, same)
    assert core.status_differs(sts, {**same, "readyReplicas": 1})
    assert core.status_differs(sts, {**same, "observedGeneration": 2})
    assert core.status_differs(sts, {**same, "collisionCount": 1})


def test_revisions_to_prune_keeps_live_and_limit():
    sts = make_set(revisionHistoryLimit=1)
    revs = [{"metadata": {"name": f"r{i}"}, "revision": i} for i in range(1, 6)]
    pruned = core.revisions_to_prune(sts, revs, {"r5", "r2"})
    assert [r["metadata"]["name"] for r in pruned] == ["r1", "r3"]  # r4 kept as history
    assert core.revisions_to_prune(make_set(), revs, set()) == []  # default limit 10


# -- claims and retention ---------------------------------------------------------------------


def test_claims_for_names_labels_and_spec():
    sts = make_set()
    claims = pvc.claims_for(sts, 4)
    claim = claims["data"]
    assert claim["metadata"] == {"name": "data-web-4", "namespace": "ns", "labels": {"tier": "db", "app": "web"}}
    assert "status" not in claim and claim["spec"]["resources"]["requests"]["storage"] == "1Gi"
    assert pvc.claims_for(make_set(claims=False), 0) == {}


def pod_with_uid(sts: dict, ordinal: int, uid: str = "pod-uid") -> dict:
    pod = core.new_pod(sts, ordinal)
    pod["metadata"]["uid"] = uid
    return pod


def claim_of(sts: dict, ordinal: int, refs: list[dict] | None = None) -> dict:
    claim = pvc.claims_for(sts, ordinal)["data"]
    if refs:
        claim["metadata"]["ownerReferences"] = refs
    return claim


def owner_kinds(claim: dict | None) -> list[str]:
    return [r["kind"] for r in (claim or {}).get("metadata", {}).get("ownerReferences") or []]


def test_retention_retain_retain_wants_no_owner():
    sts = make_set(policy={"whenScaled": "Retain", "whenDeleted": "Retain"})
    pod = pod_with_uid(sts, 0)
    assert pvc.claim_update(claim_of(sts, 0), sts, pod, True) is None
    set_ref = {"apiVersion": "apps/v1", "kind": "StatefulSet", "name": "web", "uid": "set-uid", "controller": True}
    fixed = pvc.claim_update(claim_of(sts, 0, [set_ref]), sts, pod, True)
    assert fixed is not None and owner_kinds(fixed) == []


def test_retention_when_deleted_delete_owned_by_set():
    sts = make_set(policy={"whenScaled": "Retain", "whenDeleted": "Delete"})
    pod = pod_with_uid(sts, 0)
    fixed = pvc.claim_update(claim_of(sts, 0), sts, pod, True)
    assert fixed["metadata"]["ownerReferences"] == [{"apiVersion": "apps/v1", "kind": "StatefulSet", "name": "web",
                                                     "uid": "set-uid", "controller": True,
                                                     "blockOwnerDeletion": True}]
    assert pvc.claim_update(fixed, sts, pod, True) is None
    # Scaled down: still the set only.
    assert pvc.claim_update(fixed, sts, pod, False) is None


def test_retention_when_scaled_delete_owned_by_condemned_pod():
    sts = make_set(policy={"whenScaled": "Delete", "whenDeleted": "Retain"})
    pod = pod_with_uid(sts, 4)
    assert pvc.claim_update(claim_of(sts, 4), sts, pod, True) is None
    fixed = pvc.claim_update(claim_of(sts, 4), sts, pod, False)
    assert owner_kinds(fixed) == ["Pod"] and fixed["metadata"]["ownerReferences"][0]["uid"] == "pod-uid"
    # Scaled back up before the pod went: the pod reference is removed again.
    assert owner_kinds(pvc.claim_update(fixed, sts, pod, True)) == []


def test_retention_delete_delete_moves_from_set_to_pod():
    sts = make_set(policy={"whenScaled": "Delete", "whenDeleted": "Delete"})
    pod = pod_with_uid(sts, 1)
    in_range = pvc.claim_update(claim_of(sts, 1), sts, pod, True)
    assert owner_kinds(in_range) == ["StatefulSet"]
    assert owner_kinds(pvc.claim_update(in_range, sts, pod, False)) == ["Pod"]


def test_retention_leaves_foreign_controllers_and_other_owners():
    sts = make_set(policy={"whenScaled": "Retain", "whenDeleted": "Delete"})
    pod = pod_with_uid(sts, 0)
    other = {"apiVersion": "v1", "kind": "ConfigMap", "name": "keep", "uid": "cm"}
    fixed = pvc.claim_update(claim_of(sts, 0, [other]), sts, pod, True)
    assert owner_kinds(fixed) == ["ConfigMap", "StatefulSet"]
    foreign = {"apiVersion": "x/v1", "kind": "Operator", "name": "op", "uid": "op", "controller": True}
    assert pvc.claim_update(claim_of(sts, 0, [foreign]), sts, pod, True) is None
    # A non-controller reference to our set is made a controller reference.
    plain = {"apiVersion": "apps/v1", "kind": "StatefulSet", "name": "web", "uid": "set-uid"}
    assert pvc.claim_update(claim_of(sts, 0, [plain]), sts, pod, True)["metadata"]["ownerReferences"][0][
        "controller"] is True


def test_stale_claims():
    sts = make_set(policy={"whenScaled": "Delete", "whenDeleted": "Retain"})
    new = core.new_pod(sts, 1)  # not created: no uid
    old_ref = {"apiVersion": "v1", "kind": "Pod", "name": "web-1", "uid": "old", "controller": True}
    stale = claim_of(sts, 1, [old_ref])
    assert pvc.is_stale(stale, sts, new)
    assert not pvc.is_stale(claim_of(sts, 1), sts, new)
    assert not pvc.is_stale(None, sts, new)
    retain = make_set(policy={"whenScaled": "Retain", "whenDeleted": "Retain"})
    assert not pvc.is_stale(stale, retain, new)
    # A stale reference is never touched.
    assert pvc.claim_update(stale, sts, pod_with_uid(sts, 1, "new"), True) is None
