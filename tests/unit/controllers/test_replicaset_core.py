"""The pure decisions of the ReplicaSet controller: diff and batches, the deletion ranking,
status computation and when to write it."""

from __future__ import annotations

import random

from pybernetes.controllers import replicaset_core as core
from pybernetes.controllers.podutil import format_time

NOW = 1_700_000_000.0


def pod(name: str, *, node: str = "", phase: str = "Pending", ready_since: float | None = None,
        created: float = NOW - 1000, restarts: int = 0, labels: dict | None = None,
        cost: str | None = None, deleting: bool = False, sidecar_restarts: int | None = None) -> dict:
    meta: dict = {"name": name, "namespace": "ns", "uid": f"uid-{name}",
                  "creationTimestamp": format_time(created), "labels": labels or {"app": "a"}}
    if cost is not None:
        meta["annotations"] = {core.DELETION_COST_ANNOTATION: cost}
    if deleting:
        meta["deletionTimestamp"] = format_time(NOW)
    spec: dict = {"containers": [{"name": "c", "image": "i"}]}
    if node:
        spec["nodeName"] = node
    status: dict = {"phase": phase, "containerStatuses": [{"name": "c", "restartCount": restarts}]}
    if ready_since is not None:
        status["conditions"] = [{"type": "Ready", "status": "True",
                                 "lastTransitionTime": format_time(ready_since)}]
    if sidecar_restarts is not None:
        spec["initContainers"] = [{"name": "side", "image": "i", "restartPolicy": "Always"}]
        status["initContainerStatuses"] = [{"name": "side", "restartCount": sidecar_restarts}]
    return {"metadata": meta, "spec": spec, "status": status}


def names(pods: list[dict]) -> list[str]:
    return [p["metadata"]["name"] for p in pods]


# -- how many ------------------------------------------------------------------------------


def test_replica_diff_is_capped_by_burst_both_ways():
    assert core.replica_diff(0, 3) == 3
    assert core.replica_diff(5, 3) == -2
    assert core.replica_diff(0, 1000) == 500
    assert core.replica_diff(2000, 0) == -500
    assert core.replica_diff(0, 10, burst=4) == 4
    assert core.replica_diff(3, 3) == 0


def test_slow_start_batches_double_and_cover_the_count():
    assert core.slow_start_batches(0) == []
    assert core.slow_start_batches(1) == [1]
    assert core.slow_start_batches(10) == [1, 2, 4, 3]
    assert core.slow_start_batches(500) == [1, 2, 4, 8, 16, 32, 64, 128, 245]
    for count in range(0, 200):
        assert sum(core.slow_start_batches(count)) == count


def test_pod_name_prefix():
    assert core.pod_name_prefix("web") == "web-"
    assert core.pod_name_prefix("a" * 253) == "a" * 253


def test_active_pods_leave_out_terminated_and_deleting_ones():
    pods = [pod("a", phase="Running"), pod("b", phase="Succeeded"), pod("c", phase="Failed"),
            pod("d", deleting=True), pod("e")]
    assert names(core.active_pods(pods)) == ["a", "e"]


def test_matching_owners_skip_other_namespaces_and_empty_selectors():
    owners = [
        {"metadata": {"name": "match", "namespace": "ns"}, "spec": {"selector": {"matchLabels": {"app": "a"}}}},
        {"metadata": {"name": "other-ns", "namespace": "x"}, "spec": {"selector": {"matchLabels": {"app": "a"}}}},
        {"metadata": {"name": "empty", "namespace": "ns"}, "spec": {"selector": {}}},
        {"metadata": {"name": "nomatch", "namespace": "ns"}, "spec": {"selector": {"matchLabels": {"app": "b"}}}},
        {"metadata": {"name": "expr", "namespace": "ns"}, "spec": {"selector": {"matchExpressions": [
            {"key": "app", "operator": "In", "values": ["a", "z"]}]}}},
    ]
    found = core.matching_owners(pod("p"), owners, lambda o: o["spec"]["selector"])
    assert [o["metadata"]["name"] for o in found] == ["match", "expr"]


# -- deletion ranking ------------------------------------------------------------------------


def test_ranking_follows_upstream_order():
    pods = [
        pod("old-ready", node="n1", phase="Running", ready_since=NOW - 10_000, created=NOW - 20_000),
        pod("unassigned", phase="Pending"),
        pod("pending", node="n1", phase="Pending"),
        pod("unknown", node="n1", phase="Unknown"),
        pod("running-not-ready", node="n1", phase="Running"),
        pod("new-ready", node="n1", phase="Running", ready_since=NOW - 5, created=NOW - 20_000),
    ]
    ranked = core.rank_for_deletion(pods, pods, NOW)
    assert names(ranked) == ["unassigned", "pending", "unknown", "running-not-ready", "new-ready",
                             "old-ready"]


def test_ranking_deletion_cost_before_co_location():
    a = pod("cheap", node="n1", phase="Running", ready_since=NOW - 100, cost="-5")
    b = pod("doubled", node="n2", phase="Running", ready_since=NOW - 100)
    c = pod("alone", node="n3", phase="Running", ready_since=NOW - 100)
    sibling = pod("sibling", node="n2", phase="Running")  # a related pod on n2
    ranked = core.rank_for_deletion([c, b, a], [a, b, c, sibling], NOW)
    assert names(ranked) == ["cheap", "doubled", "alone"]


def test_co_location_ranks_count_only_active_related_pods():
    p1, p2 = pod("p1", node="n1"), pod("p2", node="n2")
    related = [p1, p2, pod("x", node="n1"), pod("gone", node="n2", phase="Failed")]
    assert core.co_location_ranks([p1, p2], related) == [2, 1]


def test_ranking_restarts_then_age():
    many = pod("many-restarts", node="n", phase="Running", restarts=5, created=NOW - 10_000)
    few = pod("few-restarts", node="n", phase="Running", restarts=1, created=NOW - 10)
    newer = pod("newer", node="n", phase="Running", restarts=1, created=NOW - 1)
    # 'few' and 'newer' are 10 s and 1 s old: different power-of-two buckets, newer first.
    assert names(core.rank_for_deletion([few, many, newer], [], NOW)) == [
        "many-restarts", "newer", "few-restarts"]


def test_sidecar_restarts_break_a_tie_of_regular_restarts():
    a = pod("a", node="n", phase="Running", sidecar_restarts=0, created=NOW - 100)
    b = pod("b", node="n", phase="Running", sidecar_restarts=3, created=NOW - 100)
    assert names(core.rank_for_deletion([a, b], [], NOW)) == ["b", "a"]
    assert core.max_container_restarts(b) == (0, 3)


def test_ready_times_in_one_log_bucket_are_ordered_by_uid():
    # 1000 s and 1001 s ago fall in the same power-of-two bucket of nanoseconds.
    a = pod("z-later", node="n", phase="Running", ready_since=NOW - 1000)
    b = pod("a-earlier", node="n", phase="Running", ready_since=NOW - 1001)
    assert names(core.rank_for_deletion([a, b], [], NOW)) == ["a-earlier", "z-later"]


def test_deletion_cost_parsing():
    assert core.deletion_cost(pod("a", cost="10")) == 10
    assert core.deletion_cost(pod("a", cost="-3")) == -3
    assert core.deletion_cost(pod("a", cost="x")) == 0
    assert core.deletion_cost(pod("a", cost=str(2 ** 31))) == 0
    assert core.deletion_cost(pod("a")) == 0


def test_pods_to_delete_picks_the_first_ranked():
    pods = [pod(f"r{i}", node="n", phase="Running", ready_since=NOW - 100) for i in range(3)]
    pods.append(pod("pending"))
    random.shuffle(pods)
    assert names(core.pods_to_delete(pods, pods, 1, NOW)) == ["pending"]
    assert len(core.pods_to_delete(pods, pods, 10, NOW)) == 4
    assert core.pods_to_delete(pods, pods, 0, NOW) == []


# -- status ----------------------------------------------------------------------------------


def owner(replicas: int = 3, min_ready: int = 0, generation: int = 2, status: dict | None = None) -> dict:
    return {"metadata": {"name": "rs", "namespace": "ns", "generation": generation},
            "spec": {"replicas": replicas, "minReadySeconds": min_ready,
                     "template": {"metadata": {"labels": {"app": "a", "tier": "web"}}}},
            "status": status or {"replicas": 0}}


def test_calculate_status_counts():
    rs = owner(min_ready=30)
    pods = [
        pod("full-available", labels={"app": "a", "tier": "web"}, phase="Running", ready_since=NOW - 60),
        pod("full-ready-young", labels={"app": "a", "tier": "web"}, phase="Running", ready_since=NOW - 5),
        pod("partial-labels", labels={"app": "a"}),
    ]
    status = core.calculate_status(rs, pods, rs["spec"]["template"]["metadata"]["labels"], None, NOW)
    assert status["replicas"] == 3
    assert status["fullyLabeledReplicas"] == 2
    assert status["readyReplicas"] == 2
    assert status["availableReplicas"] == 1
    assert "conditions" not in status


def test_calculate_status_omits_zero_counters():
    status = core.calculate_status(owner(), [], {"app": "a"}, None, NOW)
    assert status == {"replicas": 0}


def test_replica_failure_condition_added_once_and_removed():
    rs = owner(replicas=3)
    status = core.calculate_status(rs, [pod("a")], {}, 'pods "x" is forbidden: quota', NOW)
    (cond,) = status["conditions"]
    assert cond["type"] == "ReplicaFailure" and cond["status"] == "True"
    assert cond["reason"] == "FailedCreate" and cond["message"] == 'pods "x" is forbidden: quota'
    # A second failure keeps the first condition as it was.
    rs["status"] = status
    again = core.calculate_status(rs, [pod("a")], {}, "another error", NOW + 50)
    assert again["conditions"] == status["conditions"]
    # Too many pods: FailedDelete.
    fresh = owner(replicas=0)
    assert core.calculate_status(fresh, [pod("a")], {}, "boom", NOW)["conditions"][0]["reason"] == "FailedDelete"
    # A good sync removes it.
    assert "conditions" not in core.calculate_status(rs, [pod("a")], {}, None, NOW)


def test_status_needs_update():
    rs = owner(generation=2, status={"replicas": 3, "readyReplicas": 3, "observedGeneration": 2})
    same = {"replicas": 3, "readyReplicas": 3, "observedGeneration": 2}
    assert not core.status_needs_update(rs, same)
    assert core.status_needs_update(rs, {**same, "availableReplicas": 1})
    rs["metadata"]["generation"] = 3
    assert core.status_needs_update(rs, same)
    assert core.with_observed_generation(rs, same)["observedGeneration"] == 3


def test_availability_requeue():
    assert core.availability_requeue(owner(replicas=2, min_ready=0)) is None
    waiting = owner(replicas=2, min_ready=10, status={"replicas": 2, "readyReplicas": 2, "availableReplicas": 1})
    assert core.availability_requeue(waiting) == 10.0
    done = owner(replicas=2, min_ready=10, status={"replicas": 2, "readyReplicas": 2, "availableReplicas": 2})
    assert core.availability_requeue(done) is None
    not_ready = owner(replicas=2, min_ready=10, status={"replicas": 2, "readyReplicas": 1})
    assert core.availability_requeue(not_ready) is None
