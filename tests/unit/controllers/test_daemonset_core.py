"""daemonset_core and daemonset_history: daemon pods from the template, grouping by node,
the manage plan (create, prune, failed pods with backoff), status counts, and revisions."""

from __future__ import annotations

from pybernetes.api.printing import format_time
from pybernetes.controllers import daemonset_core as core
from pybernetes.controllers import daemonset_history as hist

NOW = 1_700_000_000.0
HASH = "h1"


def ds(*, surge: bool = False, min_ready: int = 0, pod_spec: dict | None = None, limit: int | None = None) -> dict:
    rolling = {"maxUnavailable": 0, "maxSurge": 1} if surge else {"maxUnavailable": 1, "maxSurge": 0}
    spec = {"selector": {"matchLabels": {"app": "d"}}, "minReadySeconds": min_ready,
            "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": rolling},
            "template": {"metadata": {"labels": {"app": "d"}},
                         "spec": {"containers": [{"name": "c", "image": "i"}], **(pod_spec or {})}}}
    if limit is not None:
        spec["revisionHistoryLimit"] = limit
    return {"metadata": {"name": "d", "namespace": "ns", "uid": "u", "generation": 3,
                         "annotations": {"deprecated.daemonset.template.generation": "2"}},
            "spec": spec, "status": {"observedGeneration": 2}}


def node(name: str, taints: list | None = None, labels: dict | None = None) -> dict:
    return {"metadata": {"name": name, "labels": labels or {}}, "spec": {"taints": taints} if taints else {}}


def pod(name: str, node_name: str, *, bound: bool = True, phase: str = "Running", ready: bool = True,
        created: str = "2024-01-01T00:00:00Z", hash_: str = HASH, deleting: bool = False,
        since: float = NOW - 100) -> dict:
    meta = {"name": name, "namespace": "ns", "creationTimestamp": created,
            "labels": {"app": "d", "controller-revision-hash": hash_}}
    if deleting:
        meta["deletionTimestamp"] = "2024-01-01T00:00:00Z"
    spec = {"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
        {"matchFields": [{"key": "metadata.name", "operator": "In", "values": [node_name]}]}]}}}}
    if bound:
        spec["nodeName"] = node_name
    cond = {"type": "Ready", "status": "True" if ready else "False", "lastTransitionTime": format_time(since)}
    return {"metadata": meta, "spec": spec, "status": {"phase": phase, "conditions": [cond]}}


def names(pods: list[dict]) -> list[str]:
    return [p["metadata"]["name"] for p in pods]


def test_slow_start_batches() -> None:
    assert core.slow_start_batches(0) == []
    assert core.slow_start_batches(1) == [1]
    assert core.slow_start_batches(10) == [1, 2, 4, 3]


def test_daemon_pod_from_template() -> None:
    d = ds(pod_spec={"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
        "nodeSelectorTerms": [{"matchExpressions": [{"key": "z", "operator": "Exists"}]}]}}}})
    template = core.pod_template(d, HASH)
    assert template["metadata"]["labels"] == {"app": "d", "pod-template-generation": "2",
                                              "controller-revision-hash": HASH}
    assert len(template["spec"]["tolerations"]) == 6
    assert "tolerations" not in d["spec"]["template"]["spec"]  # the DaemonSet is not touched
    ref = {"apiVersion": "apps/v1", "kind": "DaemonSet", "name": "d", "uid": "u", "controller": True}
    p = core.daemon_pod(d, template, "n1", ref)
    assert p["metadata"]["generateName"] == "d-" and p["metadata"]["namespace"] == "ns"
    assert p["metadata"]["ownerReferences"] == [ref]
    assert p["spec"]["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"] == {
        "nodeSelectorTerms": [{"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["n1"]}]}]}
    assert "nodeName" not in p["spec"]
    assert core.daemon_pod(d, template, "n2", ref)["spec"]["affinity"] != p["spec"]["affinity"]


def test_group_and_sort() -> None:
    pods = [pod("a", "n1"), pod("b", "n2", phase="Failed", deleting=True), {"metadata": {"name": "x"}, "spec": {}}]
    assert {k: names(v) for k, v in core.group_by_node(pods).items()} == {"n1": ["a"]}
    assert set(core.group_by_node(pods, include_deleted_terminal=True)) == {"n1", "n2"}
    ordered = core.sort_pods([pod("young", "n", created="2024-01-02T00:00:00Z"),
                              pod("unbound", "n", bound=False, created="2023-01-01T00:00:00Z"),
                              pod("b-old", "n"), pod("a-old", "n")])
    assert names(ordered) == ["a-old", "b-old", "young", "unbound"]


def test_manage_creates_prunes_and_evicts() -> None:
    nodes = [node("n1"), node("n2"), node("n3", [{"key": "x", "effect": "NoExecute"}]),
             node("n4", [{"key": "x", "effect": "NoSchedule"}]), node("n5", [{"key": "x", "effect": "NoSchedule"}])]
    mapping = {"n2": [pod("dup-young", "n2", created="2024-01-02T00:00:00Z"), pod("dup-old", "n2"),
                      pod("going", "n2", deleting=True)],
               "n3": [pod("evicted", "n3")], "n4": [pod("stays", "n4")],
               "gone": [pod("unbound", "gone", bound=False), pod("bound", "gone")]}
    plan = core.manage(ds(), nodes, mapping, HASH, NOW, core.FailedPodBackoff())
    assert plan.create == ["n1"]
    assert sorted(names(plan.delete)) == ["dup-young", "evicted", "unbound"]
    # A node with only a terminating pod waits for it (no surge), with surge it gets a new one.
    mapping = {"n1": [pod("going", "n1", deleting=True)]}
    assert core.manage(ds(), [node("n1")], mapping, HASH, NOW, core.FailedPodBackoff()).create == []
    assert core.manage(ds(surge=True), [node("n1")], mapping, HASH, NOW, core.FailedPodBackoff()).create == ["n1"]


def test_manage_with_surge_keeps_new_and_old_until_new_is_available() -> None:
    nodes = [node("n1")]
    old = pod("old", "n1", hash_="h0")
    new = pod("new", "n1", ready=False, created="2024-01-02T00:00:00Z")
    new2 = pod("new2", "n1", created="2024-01-03T00:00:00Z")
    plan = core.manage(ds(surge=True), nodes, {"n1": [old, new, new2]}, HASH, NOW, core.FailedPodBackoff())
    assert names(plan.delete) == ["new2"]
    ready_new = pod("new", "n1", created="2024-01-02T00:00:00Z")
    plan = core.manage(ds(surge=True), nodes, {"n1": [old, ready_new]}, HASH, NOW, core.FailedPodBackoff())
    assert names(plan.delete) == ["old"]
    fresh = pod("new", "n1", created="2024-01-02T00:00:00Z", since=NOW - 1)
    plan = core.manage(ds(surge=True, min_ready=30), nodes, {"n1": [old, fresh]}, HASH, NOW, core.FailedPodBackoff())
    assert plan.delete == []


def test_failed_pods_deleted_with_backoff() -> None:
    backoff = core.FailedPodBackoff()
    d = ds()
    mapping = {"n1": [pod("bad", "n1", phase="Failed")]}
    plan = core.manage(d, [node("n1")], mapping, HASH, NOW, backoff)
    assert names(plan.delete) == ["bad"] and plan.create == []
    assert plan.events == [("Warning", "FailedDaemonPod", "Found failed daemon pod ns/bad on node n1, will try to kill it")]
    plan = core.manage(d, [node("n1")], mapping, HASH, NOW + 0.5, backoff)
    assert plan.delete == [] and plan.requeue_after == 1.0
    plan = core.manage(d, [node("n1")], mapping, HASH, NOW + 1.5, backoff)
    assert names(plan.delete) == ["bad"]
    assert backoff.get(core.backoff_key(d, "n1")) == 2.0
    assert core.backoff_key(d, "n1") == "u/2/n1"
    backoff.gc(NOW + 10_000)
    assert backoff.get(core.backoff_key(d, "n1")) == 0.0
    done = core.manage(d, [node("n1")], {"n1": [pod("ok", "n1", phase="Succeeded")]}, HASH, NOW, backoff)
    assert names(done.delete) == ["ok"] and done.events[0][1] == "SucceededDaemonPod"


def test_status_counts() -> None:
    d = ds(min_ready=10)
    nodes = [node("n1"), node("n2"), node("n3"), node("n4", [{"key": "x", "effect": "NoSchedule"}]), node("n5")]
    mapping = {"n1": [pod("a", "n1")],
               "n2": [pod("b", "n2", since=NOW - 1, hash_="old")],
               "n3": [pod("c", "n3", ready=False)],
               "n4": [pod("d", "n4")],
               "gone": [pod("e", "gone")]}
    counts = core.calculate_status(d, nodes, mapping, HASH, NOW)
    assert counts == {"desiredNumberScheduled": 4, "currentNumberScheduled": 3, "numberMisscheduled": 1,
                      "numberReady": 2, "updatedNumberScheduled": 2, "numberAvailable": 1, "numberUnavailable": 3}
    assert core.status_needs_update(d, counts)
    status = core.new_status(d, counts, True, 2)
    assert status["observedGeneration"] == 3 and status["collisionCount"] == 2
    d["status"] = status
    assert not core.status_needs_update(d, counts)
    assert core.new_status(d, counts, False, None)["observedGeneration"] == 3


def rev(name: str, number: int, data: dict, hash_: str | None = None) -> dict:
    labels = {"controller-revision-hash": hash_} if hash_ else {}
    return {"metadata": {"name": name, "labels": labels, "creationTimestamp": "2024-01-01T00:00:00Z"},
            "revision": number, "data": data}


def test_revisions() -> None:
    d = ds(limit=1)
    data = hist.revision_data(d)
    assert data["spec"]["template"]["$patch"] == "replace"
    assert data["spec"]["template"]["spec"]["containers"] == [{"name": "c", "image": "i"}]
    snap = hist.snapshot(d, 4, None)
    assert snap["revision"] == 4 and snap["data"] == data
    assert snap["metadata"]["name"] == f"d-{snap['metadata']['labels']['controller-revision-hash']}"
    assert snap["metadata"]["labels"]["app"] == "d"
    assert snap["metadata"]["ownerReferences"][0]["kind"] == "DaemonSet"
    assert hist.snapshot(d, 4, 1)["metadata"]["name"] != snap["metadata"]["name"]
    other = {"spec": {"template": {"spec": {}, "$patch": "replace"}}}
    revs = [rev("r1", 1, other, "h1"), rev("r2", 2, data, "h2"), rev("r3", 3, data, "h3"), rev("r0", 5, other)]
    current, old = hist.split_revisions(d, revs)
    assert names(current) == ["r2", "r3"] and names(old) == ["r1", "r0"]
    keep, dups = hist.pick_current(current)
    assert keep["metadata"]["name"] == "r3" and names(dups) == ["r2"]
    assert hist.next_revision_number(old) == 6
    assert hist.revision_hash(revs[3]) == "r0"
    older = [rev("a", 1, other, "ha"), rev("b", 2, other, "hb"), rev("c", 3, other, "hc")]
    live = [pod("p", "n", hash_="ha")]
    assert names(hist.revisions_to_prune(d, older, live)) == ["b", "c"]  # "a" is still in use
    assert hist.revisions_to_prune(ds(limit=5), older, live) == []
