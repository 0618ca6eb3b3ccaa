"""statefulset_plan.plan_sync: what one sync does under OrderedReady and Parallel, scale-down,
failed pods, RollingUpdate (partition, maxUnavailable), OnDelete, claims."""

from __future__ import annotations

from test_statefulset_core import claim_of, make_set

from pybernetes.controllers import statefulset_core as core
from pybernetes.controllers.podutil import parse_time
from pybernetes.controllers.statefulset_plan import (
    CREATE,
    CREATE_CLAIMS,
    DELETE,
    UPDATE_CLAIMS,
    UPDATE_POD,
    max_unavailable,
    plan_sync,
)

NOW = parse_time("2024-01-01T01:00:00Z")


def rev(sts: dict, name: str) -> dict:
    return {"metadata": {"name": name}, "data": core.revision_data(sts), "revision": 1}


def pod(sts: dict, ordinal: int, *, revision: str = "r1", phase: str = "Running", ready: bool = True,
        since: str = "2024-01-01T00:00:00Z", terminating: bool = False) -> dict:
    p = core.new_pod(sts, ordinal)
    p["metadata"]["uid"] = f"uid-{ordinal}"
    core.set_pod_revision(p, revision)
    p["status"] = {"phase": phase, "conditions": [{"type": "Ready", "status": "True" if ready else "False",
                                                   "lastTransitionTime": since}]}
    if terminating:
        p["metadata"]["deletionTimestamp"] = "2024-01-01T00:59:00Z"
    return p


def claims_of(sts: dict, *ordinals: int) -> dict[str, dict]:
    out = {}
    for o in ordinals:
        c = claim_of(sts, o)
        out[c["metadata"]["name"]] = c
    return out


def summary(plan) -> list[tuple[str, str]]:
    return [(a.kind, a.pod_name) for a in plan.actions()]


def run(sts: dict, pods: list[dict], claims: dict | None = None, current: str = "r1", update: str = "r1"):
    return plan_sync(sts, pods, claims or {}, rev(sts, current), rev(sts, update), NOW)


def test_ordered_ready_creates_the_first_missing_pod_only():
    sts = make_set(3)
    plan = run(sts, [])
    assert summary(plan) == [(CREATE, "web-0")]
    action = plan.actions()[0]
    assert [c["metadata"]["name"] for c in action.claims] == ["data-web-0"]
    assert core.pod_revision(action.pod) == "r1"
    assert plan.blocked == "creating web-0"
    # web-0 exists but is not ready: nothing to do.
    plan = run(sts, [pod(sts, 0, ready=False)], claims_of(sts, 0))
    assert summary(plan) == [] and "not Running and Ready" in plan.blocked
    plan = run(sts, [pod(sts, 0, phase="Pending", ready=False)], claims_of(sts, 0))
    assert summary(plan) == []
    # web-0 ready: web-1 next, its claim created with it.
    plan = run(sts, [pod(sts, 0)], claims_of(sts, 0))
    assert summary(plan) == [(CREATE, "web-1")]


def test_ordered_ready_waits_for_min_ready_seconds_and_terminating_pods():
    sts = make_set(3, minReadySeconds=30)
    plan = run(sts, [pod(sts, 0, since="2024-01-01T00:59:50Z")], claims_of(sts, 0))
    assert summary(plan) == [] and "available" in plan.blocked
    plan = run(sts, [pod(sts, 0, since="2024-01-01T00:59:00Z")], claims_of(sts, 0))
    assert summary(plan) == [(CREATE, "web-1")]
    plan = run(sts, [pod(sts, 0, terminating=True)], claims_of(sts, 0))
    assert summary(plan) == [] and "terminating" in plan.blocked


def test_parallel_creates_every_missing_pod():
    sts = make_set(3, podManagementPolicy="Parallel")
    plan = run(sts, [pod(sts, 1, ready=False)], claims_of(sts, 1))
    assert summary(plan) == [(CREATE, "web-0"), (CREATE, "web-2")]
    assert not plan.monotonic


def test_failed_and_succeeded_pods_are_deleted_and_recreated():
    sts = make_set(2)
    plan = run(sts, [pod(sts, 0, phase="Failed", ready=False)], claims_of(sts, 0))
    assert [[(a.kind, a.reason, a.pod_name) for a in u] for u in plan.phases[0].units] == [
        [(DELETE, "failed", "web-0"), (CREATE, "", "web-0")]]
    assert plan.actions()[1].claims == []  # the claim exists: reused
    plan = run(sts, [pod(sts, 0), pod(sts, 1, phase="Succeeded", ready=False)], claims_of(sts, 0, 1))
    assert [(a.kind, a.reason) for a in plan.actions()] == [(DELETE, "succeeded"), (CREATE, "")]


def test_scale_down_highest_first_one_at_a_time():
    sts = make_set(2)
    pods = [pod(sts, i) for i in range(4)]
    plan = run(sts, pods, claims_of(sts, 0, 1, 2, 3))
    assert summary(plan) == [(DELETE, "web-3")]
    assert plan.actions()[0].reason == "condemned"
    assert plan.status["replicas"] == 4
    # The highest is terminating: wait.
    pods[3] = pod(sts, 3, terminating=True)
    plan = run(sts, pods, claims_of(sts, 0, 1, 2, 3))
    assert summary(plan) == [] and "terminate" in plan.blocked
    # Parallel: every condemned pod at once.
    par = make_set(2, podManagementPolicy="Parallel")
    plan = run(par, [pod(par, i) for i in range(4)], claims_of(par, 0, 1, 2, 3))
    assert summary(plan) == [(DELETE, "web-3"), (DELETE, "web-2")]


def test_scale_down_with_unhealthy_condemned_pods():
    sts = make_set(1)
    # web-2 unhealthy, and it is the first unhealthy pod: it may go.
    plan = run(sts, [pod(sts, 0), pod(sts, 1), pod(sts, 2, ready=False)], claims_of(sts, 0, 1, 2))
    assert summary(plan) == [(DELETE, "web-2")]
    # web-1 and web-2 unhealthy: web-1 is the first unhealthy, so web-2 must wait.
    plan = run(sts, [pod(sts, 0), pod(sts, 1, ready=False), pod(sts, 2, ready=False)], claims_of(sts, 0, 1, 2))
    assert summary(plan) == [] and "first unhealthy" in plan.blocked
    # An unhealthy replica stops everything under OrderedReady.
    plan = run(sts, [pod(sts, 0, ready=False), pod(sts, 1)], claims_of(sts, 0, 1))
    assert summary(plan) == []


def test_rolling_update_partition_highest_first():
    sts = make_set(3, strategy={"type": "RollingUpdate", "rollingUpdate": {"partition": 1}})
    pods = [pod(sts, i) for i in range(3)]
    plan = run(sts, pods, claims_of(sts, 0, 1, 2), current="r1", update="r2")
    assert [(a.kind, a.reason, a.pod_name) for a in plan.actions()] == [(DELETE, "update", "web-2")]
    assert plan.status["currentReplicas"] == 2 and plan.status["updatedReplicas"] == 0
    pods[2] = pod(sts, 2, revision="r2")
    plan = run(sts, pods, claims_of(sts, 0, 1, 2), current="r1", update="r2")
    assert summary(plan) == [(DELETE, "web-1")]
    pods[1] = pod(sts, 1, revision="r2")
    plan = run(sts, pods, claims_of(sts, 0, 1, 2), current="r1", update="r2")
    assert summary(plan) == []  # web-0 is below the partition
    # A missing pod below the partition comes back at the current revision.
    plan = run(sts, [pods[1], pods[2]], claims_of(sts, 0, 1, 2), current="r1", update="r2")
    assert summary(plan) == [(CREATE, "web-0")] and core.pod_revision(plan.actions()[0].pod) == "r1"


def test_rolling_update_waits_for_unhealthy_updated_pod():
    sts = make_set(3, podManagementPolicy="Parallel")
    pods = [pod(sts, 0), pod(sts, 1), pod(sts, 2, revision="r2", ready=False)]
    plan = run(sts, pods, claims_of(sts, 0, 1, 2), current="r1", update="r2")
    assert summary(plan) == [] and "healthy" in plan.blocked


def test_max_unavailable():
    sts = make_set(4, strategy={"type": "RollingUpdate", "rollingUpdate": {"partition": 0, "maxUnavailable": 2}})
    pods = [pod(sts, i) for i in range(4)]
    plan = run(sts, pods, claims_of(sts, 0, 1, 2, 3), current="r1", update="r2")
    assert summary(plan) == [(DELETE, "web-3"), (DELETE, "web-2")]
    assert plan.status["currentReplicas"] == 2
    par = make_set(4, podManagementPolicy="Parallel",
                   strategy={"type": "RollingUpdate", "rollingUpdate": {"partition": 0, "maxUnavailable": 2}})
    pods = [pod(par, 0), pod(par, 1), pod(par, 2, revision="r2"), pod(par, 3, revision="r2", ready=False)]
    plan = run(par, pods, claims_of(par, 0, 1, 2, 3), current="r1", update="r2")
    assert summary(plan) == [(DELETE, "web-1")]  # one unavailable already: one more
    assert max_unavailable(make_set(3, strategy={"type": "RollingUpdate",
                                                 "rollingUpdate": {"maxUnavailable": "50%"}})) == 1
    assert max_unavailable(make_set(10, strategy={"type": "RollingUpdate",
                                                  "rollingUpdate": {"maxUnavailable": "35%"}})) == 3
    assert max_unavailable(make_set(3, strategy={"type": "RollingUpdate",
                                                 "rollingUpdate": {"maxUnavailable": "1%"}})) == 1
    assert max_unavailable(make_set(3)) is None


def test_on_delete_never_deletes_for_update():
    sts = make_set(2, strategy={"type": "OnDelete"})
    plan = run(sts, [pod(sts, 0), pod(sts, 1)], claims_of(sts, 0, 1), current="r1", update="r2")
    assert summary(plan) == []
    plan = run(sts, [pod(sts, 0)], claims_of(sts, 0, 1), current="r1", update="r2")
    assert summary(plan) == [(CREATE, "web-1")] and core.pod_revision(plan.actions()[0].pod) == "r2"


def test_deleting_set_only_reports_status():
    sts = make_set(2)
    sts["metadata"]["deletionTimestamp"] = "2024-01-01T00:00:00Z"
    plan = run(sts, [pod(sts, 0)])
    assert summary(plan) == [] and plan.status["replicas"] == 1


def test_stale_claim_blocks_creation():
    sts = make_set(2, policy={"whenScaled": "Delete", "whenDeleted": "Retain"})
    claims = claims_of(sts, 0)
    stale = claim_of(sts, 1, [{"apiVersion": "v1", "kind": "Pod", "name": "web-1", "uid": "gone",
                               "controller": True}])
    claims[stale["metadata"]["name"]] = stale
    plan = run(sts, [pod(sts, 0)], claims)
    assert summary(plan) == [] and "earlier pod" in plan.blocked
    par = make_set(3, podManagementPolicy="Parallel", policy={"whenScaled": "Delete", "whenDeleted": "Retain"})
    plan = run(par, [], {stale["metadata"]["name"]: stale})
    assert summary(plan) == [(CREATE, "web-0"), (CREATE, "web-2")]


def test_pending_pod_gets_missing_claims_and_pods_are_fixed():
    sts = make_set(1)
    plan = run(sts, [pod(sts, 0, phase="Pending", ready=False)], {})
    assert summary(plan) == [(CREATE_CLAIMS, "web-0")]
    broken = pod(sts, 0)
    broken["metadata"]["labels"].pop(core.POD_NAME_LABEL)
    plan = run(sts, [broken], claims_of(sts, 0))
    assert summary(plan) == [(UPDATE_POD, "web-0")]


def test_retention_updates_for_replicas_and_condemned():
    sts = make_set(1, policy={"whenScaled": "Delete", "whenDeleted": "Delete"})
    plan = run(sts, [pod(sts, 0), pod(sts, 1)], claims_of(sts, 0, 1))
    kinds = [(a.kind, a.pod_name, [r["kind"] for r in a.claims[0]["metadata"]["ownerReferences"]])
             for a in plan.actions() if a.claims]
    assert kinds == [(UPDATE_POD, "web-0", ["StatefulSet"]), (UPDATE_CLAIMS, "web-1", ["Pod"])]
    assert [p.name for p in plan.phases] == ["replicas", "condemned-claims", "condemned"]
    assert summary(plan)[-1] == (DELETE, "web-1")
