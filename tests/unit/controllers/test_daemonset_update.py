"""daemonset_update: int-or-percent scaling, updated pods, and the RollingUpdate step with
and without surge."""

from __future__ import annotations

import pytest

from pybernetes.api.printing import format_time
from pybernetes.controllers.daemonset_nodes import DaemonPlacement
from pybernetes.controllers.daemonset_update import (
    allows_surge,
    desired_counts,
    find_updated_pods_on_node,
    is_pod_updated,
    max_surge,
    max_unavailable,
    rolling_update,
    scaled_value,
)

NOW = 1_700_000_000.0
NEW, OLD = "newhash", "oldhash"


def ds(unavailable=1, surge=0, *, kind="RollingUpdate", min_ready=0, generation="2") -> dict:
    strategy = {"type": kind}
    if kind == "RollingUpdate":
        strategy["rollingUpdate"] = {"maxUnavailable": unavailable, "maxSurge": surge}
    return {"metadata": {"name": "d", "namespace": "ns", "uid": "u",
                         "annotations": {"deprecated.daemonset.template.generation": generation}},
            "spec": {"updateStrategy": strategy, "minReadySeconds": min_ready,
                     "template": {"metadata": {"labels": {"a": "b"}}, "spec": {}}}}


def node(name: str, taints: list | None = None) -> dict:
    return {"metadata": {"name": name, "labels": {}}, "spec": {"taints": taints} if taints else {}}


def pod(name: str, hash_: str, *, ready: bool = True, since: float = NOW - 100, deleting: bool = False,
        gen: str | None = None) -> dict:
    labels = {"controller-revision-hash": hash_}
    if gen:
        labels["pod-template-generation"] = gen
    meta = {"name": name, "namespace": "ns", "labels": labels}
    if deleting:
        meta["deletionTimestamp"] = "2024-01-01T00:00:00Z"
    cond = {"type": "Ready", "status": "True" if ready else "False",
            "lastTransitionTime": format_time(since)}
    return {"metadata": meta, "spec": {}, "status": {"phase": "Running", "conditions": [cond]}}


def names(pods: list[dict]) -> list[str]:
    return [p["metadata"]["name"] for p in pods]


def test_scaled_values() -> None:
    assert scaled_value(3, 10, True) == 3
    assert scaled_value("25%", 10, True) == 3 and scaled_value("25%", 10, False) == 2
    assert scaled_value("0%", 10, True) == 0 and scaled_value(None, 10, True) == 0
    with pytest.raises(ValueError):
        scaled_value("5", 10, True)
    with pytest.raises(ValueError):
        scaled_value("x%", 10, True)
    assert max_unavailable(ds("10%"), 5) == 1  # rounds up
    assert max_surge(ds(0, "50%"), 3) == 2
    assert max_unavailable(ds(kind="OnDelete"), 5) == 0
    assert allows_surge(ds(0, 1)) and not allows_surge(ds(1, 0)) and not allows_surge(ds(kind="OnDelete"))


def test_updated_pods() -> None:
    assert is_pod_updated(pod("p", NEW), NEW, 2)
    assert is_pod_updated(pod("p", OLD, gen="2"), NEW, 2)  # the template generation is enough
    assert not is_pod_updated(pod("p", OLD, gen="1"), NEW, 2)
    assert not is_pod_updated(pod("p", OLD), NEW, None)
    new, old, ok = find_updated_pods_on_node([pod("a", NEW), pod("b", OLD), pod("c", OLD, deleting=True)], NEW, None)
    assert ok and new["metadata"]["name"] == "a" and old["metadata"]["name"] == "b"
    assert find_updated_pods_on_node([pod("a", OLD), pod("b", OLD)], NEW, None) == (None, None, False)


def test_desired_counts_default_to_one_unavailable() -> None:
    nodes = [node("a"), node("b", [{"key": "x", "effect": "NoSchedule"}])]
    mapping: dict = {}
    d = ds("0%", "0%")
    assert desired_counts(d, nodes, mapping, DaemonPlacement(d)) == (0, 1, 1)
    assert mapping == {"a": []}


def test_rolling_update_without_surge_respects_max_unavailable() -> None:
    nodes = [node(f"n{i}") for i in range(5)]
    mapping = {f"n{i}": [pod(f"p{i}", OLD)] for i in range(5)}
    delete, create = rolling_update(ds(2), nodes, mapping, NEW, NOW)
    assert names(delete) == ["p0", "p1"] and create == []
    # One node already has an unready new pod: only one more may go.
    mapping["n0"] = [pod("q0", NEW, ready=False)]
    delete, _ = rolling_update(ds(2), nodes, mapping, NEW, NOW)
    assert names(delete) == ["p1"]
    # A node with no pod (being recreated) counts as unavailable, as does a terminating pod.
    mapping["n0"] = [pod("q0", OLD, deleting=True)]
    mapping["n1"] = []
    delete, _ = rolling_update(ds(2), nodes, mapping, NEW, NOW)
    assert delete == []
    # Unavailable old pods are always replaceable, and they use up the budget.
    mapping = {f"n{i}": [pod(f"p{i}", OLD, ready=i < 2)] for i in range(5)}
    delete, _ = rolling_update(ds(1), nodes, mapping, NEW, NOW)
    assert sorted(names(delete)) == ["p2", "p3", "p4"]
    # minReadySeconds: a new pod ready for too short a time is not yet available.
    mapping = {"n0": [pod("q0", NEW, since=NOW - 5)], **{f"n{i}": [pod(f"p{i}", OLD)] for i in range(1, 5)}}
    assert rolling_update(ds(1, min_ready=10), nodes, mapping, NEW, NOW)[0] == []
    assert names(rolling_update(ds(1, min_ready=3), nodes, mapping, NEW, NOW)[0]) == ["p1"]
    # Two pods on a node: left to the manage loop, counted unavailable.
    mapping = {"n0": [pod("a", OLD), pod("b", OLD)], **{f"n{i}": [pod(f"p{i}", OLD)] for i in range(1, 5)}}
    assert rolling_update(ds(1), nodes, mapping, NEW, NOW)[0] == []


def test_rolling_update_with_surge() -> None:
    nodes = [node(f"n{i}") for i in range(4)]
    mapping = {f"n{i}": [pod(f"p{i}", OLD)] for i in range(4)}
    delete, create = rolling_update(ds(0, 1), nodes, mapping, NEW, NOW)
    assert delete == [] and create == ["n0"]
    # The surged pod is not available yet: no more surging, nothing deleted.
    mapping["n0"].append(pod("q0", NEW, ready=False))
    assert rolling_update(ds(0, 1), nodes, mapping, NEW, NOW) == ([], [])
    # It is available: its old pod goes; the next node surges only once the budget allows.
    mapping["n0"][1] = pod("q0", NEW)
    delete, create = rolling_update(ds(0, 1), nodes, mapping, NEW, NOW)
    assert names(delete) == ["p0"] and create == ["n1"]
    # Unavailable old pods get their replacement at once, beyond maxSurge.
    mapping = {f"n{i}": [pod(f"p{i}", OLD, ready=False)] for i in range(4)}
    delete, create = rolling_update(ds(0, 1), nodes, mapping, NEW, NOW)
    assert delete == [] and create == ["n0", "n1", "n2", "n3"]
    # An old pod on a node it no longer fits goes only while enough others are available.
    tainted = [node("n0", [{"key": "x", "effect": "NoSchedule"}])] + nodes[1:]
    mapping = {"n0": [pod("p0", OLD)], **{f"n{i}": [pod(f"q{i}", NEW)] for i in range(1, 4)}}
    delete, create = rolling_update(ds(0, 1), tainted, mapping, NEW, NOW)
    assert names(delete) == ["p0"] and create == []
    mapping["n1"] = [pod("q1", NEW, ready=False)]
    assert rolling_update(ds(0, 1), tainted, mapping, NEW, NOW) == ([], [])
