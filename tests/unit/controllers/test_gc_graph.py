"""The garbage collector's pure graph and decisions (gc_graph)."""

from __future__ import annotations

from typing import Any

from pybernetes.controllers import gc_graph as g
from pybernetes.machinery.meta import finalizer_patch


def obj(name: str, uid: str, ns: str = "default", kind: str = "ConfigMap", api_version: str = "v1",
        owners: list[dict[str, Any]] | None = None, finalizers: list[str] | None = None,
        deleting: bool = False) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "uid": uid}
    if ns:
        meta["namespace"] = ns
    if owners:
        meta["ownerReferences"] = owners
    if finalizers:
        meta["finalizers"] = finalizers
    if deleting:
        meta["deletionTimestamp"] = "2025-01-01T00:00:00Z"
    return {"apiVersion": api_version, "kind": kind, "metadata": meta}


def ref(owner: dict[str, Any], block: bool | None = True) -> dict[str, Any]:
    r = {"apiVersion": owner["apiVersion"], "kind": owner["kind"], "name": owner["metadata"]["name"],
         "uid": owner["metadata"]["uid"]}
    if block is not None:
        r["blockOwnerDeletion"] = block
    return r


def add(graph: g.Graph, o: dict[str, Any], old: dict[str, Any] | None = None) -> g.Actions:
    return graph.process(g.Change("update" if old else "add", o, old))


def test_dependent_first_creates_a_virtual_owner_to_verify() -> None:
    graph = g.Graph()
    owner = obj("owner", "u-owner")
    acts = add(graph, obj("dep", "u-dep", owners=[ref(owner)]))
    node = graph.nodes["u-owner"]
    assert node.virtual and not node.observed
    assert node.dependents == {"u-dep"}
    assert node.identity == g.Identity("v1", "ConfigMap", "owner", "u-owner", "default")
    assert acts.attempt_to_delete == ["u-owner"]
    # the owner is observed later: the node becomes real, nothing to do
    acts = add(graph, owner)
    node = graph.nodes["u-owner"]
    assert node.observed and not node.virtual and node.dependents == {"u-dep"}
    assert acts.attempt_to_delete == []


def test_owner_deleted_enqueues_its_dependents_and_records_it_absent() -> None:
    graph = g.Graph()
    owner = obj("owner", "u-owner")
    add(graph, owner)
    add(graph, obj("a", "u-a", owners=[ref(owner)]))
    add(graph, obj("b", "u-b", owners=[ref(owner)]))
    acts = graph.process(g.Change("delete", owner))
    assert "u-owner" not in graph.nodes
    assert acts.attempt_to_delete == ["u-a", "u-b"]
    assert g.identity_of(owner) in graph.absent_owners


def test_dependent_deleted_leaves_its_owners_dependents_and_wakes_a_waiting_owner() -> None:
    graph = g.Graph()
    owner = obj("owner", "u-owner")
    dep = obj("dep", "u-dep", owners=[ref(owner)])
    add(graph, owner)
    add(graph, dep)
    deleting = obj("owner", "u-owner", finalizers=["foregroundDeletion"], deleting=True)
    acts = add(graph, deleting, owner)
    assert graph.nodes["u-owner"].deleting_dependents
    assert acts.attempt_to_delete == ["u-dep", "u-owner"]
    acts = graph.process(g.Change("delete", dep))
    assert graph.nodes["u-owner"].dependents == set()
    assert acts.attempt_to_delete == ["u-owner"]


def test_orphan_transition_only_once() -> None:
    graph = g.Graph()
    owner = obj("owner", "u-owner")
    add(graph, owner)
    orphaning = obj("owner", "u-owner", finalizers=["orphan"], deleting=True)
    assert add(graph, orphaning, owner).attempt_to_orphan == ["u-owner"]
    assert add(graph, orphaning, orphaning).attempt_to_orphan == []  # a resync is no transition
    # seen for the first time already orphaning (a restart): a transition
    fresh = g.Graph()
    assert add(fresh, orphaning).attempt_to_orphan == ["u-owner"]


def test_blocking_dependents_and_unblocking_by_reference_change() -> None:
    graph = g.Graph()
    owner = obj("owner", "u-owner")
    add(graph, owner)
    blocking = obj("a", "u-a", owners=[ref(owner, True)])
    add(graph, blocking)
    add(graph, obj("b", "u-b", owners=[ref(owner, False)]))
    assert [n.uid for n in graph.blocking_dependents(graph.nodes["u-owner"])] == ["u-a"]
    acts = add(graph, obj("a", "u-a", owners=[ref(owner, False)]), blocking)
    assert acts.attempt_to_delete == ["u-owner"]
    assert graph.blocking_dependents(graph.nodes["u-owner"]) == []
    # removing a blocking reference wakes the owner too
    add(graph, obj("c", "u-c", owners=[ref(owner, True)]))
    acts = add(graph, obj("c", "u-c"), obj("c", "u-c", owners=[ref(owner, True)]))
    assert acts.attempt_to_delete == ["u-owner"]
    assert "u-c" not in graph.nodes["u-owner"].dependents


def test_observed_owner_in_another_namespace_is_reported() -> None:
    graph = g.Graph()
    owner = obj("owner", "u-owner", ns="other")
    add(graph, owner)
    acts = add(graph, obj("dep", "u-dep", ns="default", owners=[ref(owner)]))
    assert acts.attempt_to_delete == ["u-dep"]  # verify its owner (it will be found absent)
    assert len(acts.invalid_namespace) == 1
    dependent, bad = acts.invalid_namespace[0]
    assert dependent.uid == "u-dep" and bad["uid"] == "u-owner"


def test_owner_observed_after_a_dependent_in_another_namespace() -> None:
    graph = g.Graph()
    owner = obj("owner", "u-owner", ns="other")
    add(graph, obj("dep", "u-dep", ns="default", owners=[ref(owner)]))
    acts = add(graph, owner)
    assert acts.attempt_to_delete == ["u-dep"]
    assert [d.uid for d, _ in acts.invalid_namespace] == ["u-dep"]
    assert graph.nodes["u-owner"].identity.namespace == "other"


def test_virtual_delete_removes_a_virtual_owner() -> None:
    graph = g.Graph()
    owner = obj("ghost", "u-ghost")
    add(graph, obj("dep", "u-dep", owners=[ref(owner)]))
    ident = graph.nodes["u-ghost"].identity
    acts = graph.process(g.Change("delete", virtual=True, identity=ident))
    assert "u-ghost" not in graph.nodes
    assert acts.attempt_to_delete == ["u-dep"]
    assert ident in graph.absent_owners


def test_virtual_delete_never_removes_an_observed_node_of_other_coordinates() -> None:
    graph = g.Graph()
    owner = obj("owner", "u-owner", kind="Secret")
    add(graph, owner)
    wrong = g.Identity("v1", "ConfigMap", "owner", "u-owner", "default")
    acts = graph.process(g.Change("delete", virtual=True, identity=wrong))
    assert "u-owner" in graph.nodes
    assert acts.attempt_to_delete == []


def test_virtual_owner_with_disagreeing_dependents_gets_an_alternate_identity() -> None:
    graph = g.Graph()
    as_cm = {"apiVersion": "v1", "kind": "ConfigMap", "name": "o", "uid": "u-o"}
    as_secret = {"apiVersion": "v1", "kind": "Secret", "name": "o", "uid": "u-o"}
    add(graph, obj("a", "u-a", owners=[as_cm]))
    add(graph, obj("b", "u-b", owners=[as_secret]))
    first = graph.nodes["u-o"].identity
    assert first.kind == "ConfigMap"
    acts = graph.process(g.Change("delete", virtual=True, identity=first))
    node = graph.nodes["u-o"]
    assert node.identity.kind == "Secret" and node.virtual
    assert acts.attempt_to_delete == ["u-a"]  # its reference is verified absent
    assert acts.attempt_to_delete_later == ["u-o"]
    assert first in graph.absent_owners


def test_partition_dependents() -> None:
    graph = g.Graph()
    owner = obj("owner", "u-owner")
    add(graph, obj("a", "u-a", owners=[ref(owner)]))
    add(graph, obj("b", "u-b", ns="elsewhere", owners=[ref(owner)]))
    deps = [graph.nodes["u-a"], graph.nodes["u-b"]]
    matching, nonmatching = graph.partition_dependents(deps, g.identity_of(owner))
    assert [d.uid for d in matching] == ["u-a"]
    assert [d.uid for d in nonmatching] == ["u-b"]
    # a cluster-scoped owner matches from any namespace
    cluster_owner = g.Identity("v1", "ConfigMap", "owner", "u-owner", "")
    matching, nonmatching = graph.partition_dependents(deps, cluster_owner)
    assert len(matching) == 2 and not nonmatching


def test_classify_and_decide() -> None:
    r1 = {"uid": "1"}
    r2 = {"uid": "2"}
    r3 = {"uid": "3"}
    waiting_owner = obj("w", "3", finalizers=["foregroundDeletion"], deleting=True)
    c = g.classify_references([r1, r2, r3], {"1": obj("o", "1"), "2": None, "3": waiting_owner})
    assert (c.solid, c.dangling, c.waiting) == ([r1], [r2], [r3])
    latest = obj("x", "x")
    d = g.decide_delete(latest, c, has_dependents=False, dependent_deleting_dependents=False)
    assert d.action == "remove_refs" and d.remove_uids == ["2", "3"]
    only_solid = g.classify_references([r1], {"1": obj("o", "1")})
    assert g.decide_delete(latest, only_solid, False, False).action == "none"
    gone = g.classify_references([r2], {})
    assert (g.decide_delete(latest, gone, False, False).action, g.decide_delete(latest, gone, False, False).policy) \
        == ("delete", "Background")
    orphaning = obj("x", "x", finalizers=["orphan"])
    assert g.decide_delete(orphaning, gone, False, False).policy == "Orphan"
    assert g.decide_delete(obj("x", "x", finalizers=["foregroundDeletion"]), gone, False, False).policy == "Foreground"
    waiting = g.classify_references([r3], {"3": waiting_owner})
    d = g.decide_delete(latest, waiting, has_dependents=True, dependent_deleting_dependents=True)
    assert (d.action, d.policy, d.unblock_first) == ("delete", "Foreground", True)
    d = g.decide_delete(latest, waiting, has_dependents=False, dependent_deleting_dependents=False)
    assert (d.action, d.policy) == ("delete", "Background")


def test_patches() -> None:
    live = obj("x", "ux", owners=[{"uid": "a", "blockOwnerDeletion": True}, {"uid": "b"}],
               finalizers=["orphan", "example.com/keep"])
    live["metadata"]["resourceVersion"] = "7"
    assert g.remove_refs_patch("ux", ["a"]) == {
        "metadata": {"ownerReferences": [{"$patch": "delete", "uid": "a"}], "uid": "ux"}}
    merge = g.remove_refs_merge_patch(live, ["a"])
    assert merge["metadata"]["ownerReferences"] == [{"uid": "b"}]
    assert merge["metadata"]["resourceVersion"] == "7"
    assert g.remove_refs_merge_patch(live, ["a", "b"])["metadata"]["ownerReferences"] is None
    unblocked = g.unblock_refs_merge_patch(live)["metadata"]["ownerReferences"]
    assert unblocked[0]["blockOwnerDeletion"] is False
    assert live["metadata"]["ownerReferences"][0]["blockOwnerDeletion"] is True  # not mutated
    assert finalizer_patch(live, "orphan", add=False) == {
        "metadata": {"resourceVersion": "7", "finalizers": ["example.com/keep"]}}
    assert finalizer_patch(live, "foregroundDeletion", add=False) is None


def test_preferred_resources_and_gc_filter() -> None:
    doc = {"items": [
        {"metadata": {"name": ""}, "versions": [{"version": "v1", "resources": [
            {"resource": "pods", "responseKind": {"kind": "Pod"}, "scope": "Namespaced",
             "verbs": ["create", "delete", "deletecollection", "get", "list", "watch"]},
            {"resource": "events", "responseKind": {"kind": "Event"}, "scope": "Namespaced",
             "verbs": ["delete", "list", "watch"]},
            {"resource": "bindings", "responseKind": {"kind": "Binding"}, "scope": "Namespaced",
             "verbs": ["create"]},
        ]}]},
        {"metadata": {"name": "example.com"}, "versions": [
            {"version": "v2", "resources": [{"resource": "widgets", "responseKind": {"kind": "Widget"},
                                             "scope": "Cluster", "verbs": ["delete", "list", "watch"]}]},
            {"version": "v1", "resources": [
                {"resource": "widgets", "responseKind": {"kind": "Widget"}, "scope": "Cluster",
                 "verbs": ["delete", "list", "watch"]},
                {"resource": "gadgets", "responseKind": {"kind": "Gadget"}, "scope": "Namespaced",
                 "verbs": ["delete", "list", "watch"]}]},
        ]},
    ]}
    resources = g.preferred_resources([doc])
    assert [(r.group, r.version, r.resource) for r in resources] == [
        ("", "v1", "pods"), ("", "v1", "events"), ("", "v1", "bindings"),
        ("example.com", "v2", "widgets"), ("example.com", "v1", "gadgets")]
    widgets = resources[3]
    assert widgets.kind == "Widget" and not widgets.namespaced
    assert [r.resource for r in g.gc_resources(resources)] == ["pods", "widgets", "gadgets"]
    legacy = g.resources_from_list("apps", "v1", {"resources": [
        {"name": "deployments", "kind": "Deployment", "namespaced": True, "verbs": ["list"]},
        {"name": "deployments/status", "kind": "Deployment", "namespaced": True, "verbs": ["get"]}]})
    assert [(r.resource, r.namespaced) for r in legacy] == [("deployments", True)]


def test_identity_string_and_absent_cache_bound() -> None:
    ident = g.Identity("v1", "ConfigMap", "o", "u", "ns")
    assert str(ident) == "[v1/ConfigMap, namespace: ns, name: o, uid: u]"
    cache = g.AbsentOwners(size=2)
    for i in range(3):
        cache.add(g.Identity("v1", "ConfigMap", str(i), str(i)))
    assert g.Identity("v1", "ConfigMap", "0", "0") not in cache
    assert g.Identity("v1", "ConfigMap", "2", "2") in cache
