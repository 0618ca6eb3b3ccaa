"""daemonset_nodes: default tolerations, taint toleration, node selectors and affinity, and
the should-run / should-continue-running verdicts."""

from __future__ import annotations

from pybernetes.controllers.daemonset_nodes import (
    DaemonPlacement,
    add_daemon_tolerations,
    node_should_run,
    pin_to_node,
    target_node_name,
)
from pybernetes.machinery.taints import find_untolerated_taint as untolerated_taint
from pybernetes.machinery.taints import toleration_tolerates


def node(name: str, labels: dict | None = None, taints: list | None = None) -> dict:
    return {"metadata": {"name": name, "labels": labels or {}}, "spec": {"taints": taints} if taints else {}}


def ds(**pod_spec) -> dict:
    return {"metadata": {"name": "d", "namespace": "ns", "uid": "u"},
            "spec": {"template": {"metadata": {"labels": {"a": "b"}},
                                  "spec": {"containers": [{"name": "c"}], **pod_spec}}}}


def test_default_tolerations_added_and_replaced() -> None:
    spec = {"tolerations": [{"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute",
                             "tolerationSeconds": 300}, {"key": "mine", "operator": "Exists"}]}
    add_daemon_tolerations(spec)
    by_key = {(t["key"], t.get("effect")): t for t in spec["tolerations"]}
    assert by_key[("node.kubernetes.io/not-ready", "NoExecute")] == {
        "key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute"}
    assert ("mine", None) in by_key
    assert len(spec["tolerations"]) == 7  # 6 defaults + mine
    assert not any(t["key"] == "node.kubernetes.io/network-unavailable" for t in spec["tolerations"])
    host = add_daemon_tolerations({"hostNetwork": True})
    assert {"key": "node.kubernetes.io/network-unavailable", "operator": "Exists",
            "effect": "NoSchedule"} in host["tolerations"]


def test_toleration_matching() -> None:
    taint = {"key": "k", "value": "v", "effect": "NoSchedule"}
    assert toleration_tolerates({"key": "k", "operator": "Equal", "value": "v"}, taint)
    assert toleration_tolerates({"key": "k", "value": "v", "effect": "NoSchedule"}, taint)  # "" is Equal
    assert not toleration_tolerates({"key": "k", "value": "w"}, taint)
    assert not toleration_tolerates({"key": "k", "operator": "Exists", "effect": "NoExecute"}, taint)
    assert toleration_tolerates({"operator": "Exists"}, taint)  # everything
    assert not toleration_tolerates({"key": "k", "operator": "Bogus"}, taint)
    taints = [{"key": "p", "effect": "PreferNoSchedule"}, taint]
    assert untolerated_taint(taints, [], ("NoSchedule", "NoExecute")) == taint
    assert untolerated_taint(taints, [], ("NoExecute",)) is None


def test_no_schedule_versus_no_execute() -> None:
    d = ds()
    assert node_should_run(node("n"), d) == (True, True)
    assert node_should_run(node("n", taints=[{"key": "x", "effect": "NoSchedule"}]), d) == (False, True)
    assert node_should_run(node("n", taints=[{"key": "x", "effect": "NoExecute"}]), d) == (False, False)
    assert node_should_run(node("n", taints=[{"key": "x", "effect": "PreferNoSchedule"}]), d) == (True, True)
    tolerant = ds(tolerations=[{"key": "x", "operator": "Exists"}])
    assert node_should_run(node("n", taints=[{"key": "x", "effect": "NoExecute"}]), tolerant) == (True, True)
    # The defaults: cordoned, not-ready, under pressure nodes keep and get daemon pods.
    for key, effect in (("node.kubernetes.io/unschedulable", "NoSchedule"),
                        ("node.kubernetes.io/not-ready", "NoExecute"),
                        ("node.kubernetes.io/unreachable", "NoExecute"),
                        ("node.kubernetes.io/memory-pressure", "NoSchedule")):
        assert node_should_run(node("n", taints=[{"key": key, "effect": effect}]), d) == (True, True)
    net = node("n", taints=[{"key": "node.kubernetes.io/network-unavailable", "effect": "NoSchedule"}])
    assert node_should_run(net, d) == (False, True)
    assert node_should_run(net, ds(hostNetwork=True)) == (True, True)


def test_node_name_selector_and_affinity() -> None:
    assert node_should_run(node("a"), ds(nodeName="b")) == (False, False)
    assert node_should_run(node("b"), ds(nodeName="b")) == (True, True)
    sel = ds(nodeSelector={"disk": "ssd"})
    assert node_should_run(node("a", {"disk": "ssd"}), sel) == (True, True)
    assert node_should_run(node("a", {"disk": "hdd"}), sel) == (False, False)
    affinity = {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
        {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["a", "b"]},
                              {"key": "cores", "operator": "Gt", "values": ["4"]}]},
        {"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["special"]}]},
        {"matchExpressions": [{"key": "gpu", "operator": "Exists"}],
         "matchFields": [{"key": "metadata.name", "operator": "NotIn", "values": ["nogpu"]}]},
    ]}}}
    p = DaemonPlacement(ds(affinity=affinity))
    assert p.should_run(node("x", {"zone": "a", "cores": "8"}))[0]
    assert not p.should_run(node("x", {"zone": "a", "cores": "2"}))[0]
    assert not p.should_run(node("x", {"zone": "c", "cores": "8"}))[0]
    assert not p.should_run(node("x", {"zone": "a", "cores": "many"}))[0]
    assert p.should_run(node("special"))[0]
    assert p.should_run(node("g", {"gpu": "1"}))[0]
    assert not p.should_run(node("nogpu", {"gpu": "1"}))[0]
    # Empty and unparsable terms match nothing; other terms still count.
    weird = {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
        {}, {"matchExpressions": [{"key": "a", "operator": "Bogus"}]},
        {"matchFields": [{"key": "metadata.uid", "operator": "In", "values": ["x"]}]},
        {"matchExpressions": [{"key": "ok", "operator": "DoesNotExist"}]}]}}}
    p = DaemonPlacement(ds(affinity=weird))
    assert p.should_run(node("n"))[0] and not p.should_run(node("n", {"ok": "1"}))[0]
    none = {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": []}}}
    assert not DaemonPlacement(ds(affinity=none)).should_run(node("n"))[0]
    # nodeSelector and affinity both apply.
    both = DaemonPlacement(ds(nodeSelector={"disk": "ssd"}, affinity=affinity))
    assert not both.should_run(node("special"))[0] and both.should_run(node("special", {"disk": "ssd"}))[0]


def test_pin_to_node_and_target_node() -> None:
    affinity = {"nodeAffinity": {
        "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
            {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["a"]}]}]},
        "preferredDuringSchedulingIgnoredDuringExecution": [{"weight": 1, "preference": {}}]},
        "podAntiAffinity": {"x": 1}}
    pinned = pin_to_node(affinity, "n7")
    assert pinned["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"] == {"nodeSelectorTerms": [
        {"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["n7"]}]}]}
    assert pinned["nodeAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"] == [
        {"weight": 1, "preference": {}}]
    assert pinned["podAntiAffinity"] == {"x": 1}
    assert affinity["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"][0][
        "matchExpressions"]  # the original is untouched
    assert pin_to_node(None, "n1")["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
    assert target_node_name({"spec": {"affinity": pinned}}) == "n7"
    assert target_node_name({"spec": {"nodeName": "bound", "affinity": pinned}}) == "bound"
    assert target_node_name({"spec": {}}) is None
    two = {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
        {"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["a", "b"]}]}]}}}
    assert target_node_name({"spec": {"affinity": two}}) is None


def test_which_node_updates_matter() -> None:
    from pybernetes.controllers.daemonset import node_update_matters

    base = {"metadata": {"name": "n", "labels": {"a": "1"}, "resourceVersion": "1"}, "spec": {},
            "status": {"conditions": [{"type": "Ready", "status": "True", "lastHeartbeatTime": "t1"}]}}
    beat = {**base, "metadata": {**base["metadata"], "resourceVersion": "2"},
            "status": {"conditions": [{"type": "Ready", "status": "True", "lastHeartbeatTime": "t2"}]}}
    assert not node_update_matters(base, beat)
    assert node_update_matters(base, {**base, "metadata": {"name": "n", "labels": {"a": "2"}}})
    assert node_update_matters(base, {**base, "spec": {"taints": [{"key": "k", "effect": "NoSchedule"}]}})
    assert node_update_matters(base, {**base, "status": {"conditions": [{"type": "Ready", "status": "False"}]}})


def test_template_generation_annotation_of_the_api() -> None:
    from pybernetes.api.apps.daemonsets import DAEMONSETS

    strategy = DAEMONSETS.strategy
    obj = {"metadata": {"name": "d"}, "spec": {"template": {"spec": {"containers": [{"name": "c"}]}}}}
    strategy.prepare_for_create(obj)
    assert obj["metadata"]["annotations"] == {"deprecated.daemonset.template.generation": "1"}
    same = {"metadata": {"name": "d", "annotations": {"deprecated.daemonset.template.generation": "9"}},
            "spec": {"template": {"spec": {"containers": [{"name": "c"}]}}, "minReadySeconds": 3}}
    strategy.prepare_for_update(same, obj)
    assert same["metadata"]["annotations"]["deprecated.daemonset.template.generation"] == "1"  # not settable
    changed = {"metadata": {"name": "d"}, "spec": {"template": {"spec": {"containers": [{"name": "x"}]}}}}
    strategy.prepare_for_update(changed, same)
    assert changed["metadata"]["annotations"]["deprecated.daemonset.template.generation"] == "2"
