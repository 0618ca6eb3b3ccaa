"""Namespaces and nodes: defaults, status rules, finalizers, tables and field selectors."""

from __future__ import annotations

import copy

from pybernetes.api.core.namespaces import NAMESPACES
from pybernetes.api.core.nodes import NODES
from pybernetes.api.printing import parse_time

NS = NAMESPACES.strategy
NODE = NODES.strategy
NOW = parse_time("2024-01-03T00:00:00Z")


def test_namespace_create():
    ns = {"metadata": {"name": "team-a", "creationTimestamp": "2024-01-01T00:00:00Z"}}
    NS.default(ns)
    NS.prepare_for_create(ns)
    assert ns["metadata"]["labels"] == {"kubernetes.io/metadata.name": "team-a"}
    assert ns["spec"] == {"finalizers": ["kubernetes"]}
    assert ns["status"] == {"phase": "Active"}
    assert NS.validate(ns) == []
    assert NS.cells(ns, NOW) == ["Active", "2d"]
    assert NS.fields(ns)["status.phase"] == "Active"
    assert not NAMESPACES.namespaced and NAMESPACES.short_names == ("ns",)
    assert NS.name_rule("Team") and NS.name_rule("a.b") and not NS.name_rule("team-a")


def test_namespace_update_keeps_finalizers_and_status():
    old = {"metadata": {"name": "a"}, "spec": {"finalizers": ["kubernetes"]}, "status": {"phase": "Active"}}
    new = {"metadata": {"name": "a"}, "spec": {"finalizers": []}, "status": {"phase": "Terminating"}}
    NS.prepare_for_update(new, old)
    assert new["spec"]["finalizers"] == ["kubernetes"]
    assert new["status"]["phase"] == "Active"


def test_namespace_status_phase_rules():
    old = {"metadata": {"name": "a"}, "status": {"phase": "Active"}}
    new = copy.deepcopy(old)
    new["status"]["phase"] = "Terminating"
    errs = NS.validate_status_update(new, old)
    assert [e.error_text() for e in errs] == [
        "status.Phase: Invalid value: \"Terminating\": may only be 'Active' if `deletionTimestamp` is empty"]
    new["metadata"]["deletionTimestamp"] = "2024-01-01T00:00:00Z"
    assert NS.validate_status_update(new, old) == []


def node(**extra):
    obj = {"metadata": {"name": "n1", "creationTimestamp": "2024-01-01T00:00:00Z",
                        "labels": {"node-role.kubernetes.io/control-plane": "", "kubernetes.io/role": "worker"}},
           "spec": {}, "status": {
               "conditions": [{"type": "Ready", "status": "True"}],
               "addresses": [{"type": "InternalIP", "address": "192.168.1.10"}, {"type": "Hostname", "address": "n1"}],
               "nodeInfo": {"kubeletVersion": "v1.32.0", "osImage": "Debian GNU/Linux 12 (bookworm)",
                            "kernelVersion": "6.1.0", "containerRuntimeVersion": "runc://1.1"},
               "capacity": {"cpu": "2", "memory": "4Gi", "pods": "110"}}}
    obj["spec"].update(extra)
    return obj


def test_node_create_keeps_status_and_table():
    obj = node()
    NODE.default(obj)
    NODE.prepare_for_create(obj)
    assert obj["status"]["allocatable"] == {"cpu": "2", "memory": "4Gi", "pods": "110"}
    assert NODE.validate(obj) == []
    assert NODE.cells(obj, NOW) == ["Ready", "control-plane,worker", "2d", "v1.32.0", "192.168.1.10", "<none>",
                                    "Debian GNU/Linux 12 (bookworm)", "6.1.0", "runc://1.1"]
    obj["spec"]["unschedulable"] = True
    obj["status"]["conditions"][0]["status"] = "Unknown"
    assert NODE.cells(obj, NOW)[0] == "NotReady,SchedulingDisabled"
    assert NODE.fields(obj)["spec.unschedulable"] == "true"
    obj["status"]["conditions"] = []
    assert NODE.cells(obj, NOW)[0] == "Unknown,SchedulingDisabled"


def test_node_validation_and_update():
    obj = node(taints=[{"key": "a", "effect": "Sometimes"}, {"key": "", "effect": "NoSchedule"}],
               podCIDRs=["not-a-cidr"])
    out = [e.error_text() for e in NODE.validate(obj)]
    assert any(t.startswith('spec.taints[0].effect: Unsupported value: "Sometimes"') for t in out)
    assert "spec.taints[1].key: Required value" in out
    assert any(t.startswith("spec.podCIDRs[0]: Invalid value") for t in out)
    old = node(podCIDRs=["10.244.0.0/24"], podCIDR="10.244.0.0/24")
    new = node(podCIDRs=["10.244.1.0/24"], podCIDR="10.244.1.0/24")
    assert [e.field for e in NODE.validate_update(new, old)] == ["spec.podCIDRs"]
    unset = node()
    assert NODE.validate_update(old, unset) == []
