"""VolumeBinding: PreFilter's messages, Filter per node (bound PVs' node affinity, smallest
matching PV, each PV once per pod, provisioning with allowedTopologies), Reserve/Unreserve
through the assume cache, PreBind's writes and wait, args and events."""

from __future__ import annotations

import asyncio
import copy
from typing import Any

import pytest

from pybernetes.client.errors import NotFound
from pybernetes.scheduler.framework import ClusterEvent, Code, CycleState
from pybernetes.scheduler.handle import Handle, Snapshot
from pybernetes.scheduler.nodeinfo import node_info_of
from pybernetes.scheduler.plugins.volumebinding import VolumeBinding
from pybernetes.scheduler.plugins.volumebinding_core import (
    ANN_BOUND_BY_CONTROLLER,
    ANN_SELECTED_NODE,
    ERR_BIND_CONFLICT,
    ERR_NODE_CONFLICT,
    ERR_PV_NOT_EXIST,
    ERR_UNBOUND_IMMEDIATE,
    AssumeCache,
    local_pv_node_names,
    pod_claim_volumes,
    topology_allows,
)

NO_PROVISIONER = "kubernetes.io/no-provisioner"


def node(name: str, **labels: str) -> dict:
    return {"metadata": {"name": name, "labels": {"kubernetes.io/hostname": name, **labels}},
            "status": {"allocatable": {"cpu": "4", "memory": "8Gi", "pods": "110"}}}


def pvc(name: str, *, sc: str | None = None, size: str = "1Gi", modes: tuple = ("ReadWriteOnce",),
        volume: str | None = None, phase: str = "Pending", annotations: dict | None = None,
        owner_uid: str | None = None, deleting: bool = False, rv: str = "10") -> dict:
    meta: dict = {"name": name, "namespace": "default", "uid": f"uid-{name}", "resourceVersion": rv}
    if annotations:
        meta["annotations"] = annotations
    if owner_uid:
        meta["ownerReferences"] = [{"apiVersion": "v1", "kind": "Pod", "name": "p", "uid": owner_uid,
                                    "controller": True}]
    if deleting:
        meta["deletionTimestamp"] = "2024-01-01T00:00:00Z"
    spec: dict = {"accessModes": list(modes), "resources": {"requests": {"storage": size}}}
    if sc is not None:
        spec["storageClassName"] = sc
    if volume:
        spec["volumeName"] = volume
    return {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": meta, "spec": spec,
            "status": {"phase": phase}}


def pv(name: str, *, sc: str = "", size: str = "1Gi", modes: tuple = ("ReadWriteOnce",),
       hosts: tuple = (), claim: dict | None = None, phase: str = "Available", rv: str = "20",
       affinity: dict | None = None) -> dict:
    spec: dict = {"capacity": {"storage": size}, "accessModes": list(modes), "storageClassName": sc,
                  "local": {"path": "/mnt/x"}}
    if hosts:
        spec["nodeAffinity"] = {"required": {"nodeSelectorTerms": [{"matchExpressions": [
            {"key": "kubernetes.io/hostname", "operator": "In", "values": list(hosts)}]}]}}
    if affinity is not None:
        spec["nodeAffinity"] = {"required": affinity}
    if claim is not None:
        spec["claimRef"] = {"kind": "PersistentVolumeClaim", "namespace": "default",
                            "name": claim["metadata"]["name"], "uid": claim["metadata"]["uid"]}
    return {"apiVersion": "v1", "kind": "PersistentVolume",
            "metadata": {"name": name, "resourceVersion": rv}, "spec": spec, "status": {"phase": phase}}


def bound_pair(claim_name: str, pv_name: str, **pv_kwargs: Any) -> tuple[dict, dict]:
    claim = pvc(claim_name, sc="local", volume=pv_name, phase="Bound")
    return claim, pv(pv_name, sc="local", claim=claim, phase="Bound", **pv_kwargs)


def storage_class(name: str, mode: str = "WaitForFirstConsumer", provisioner: str = NO_PROVISIONER,
                  topologies: list | None = None) -> dict:
    out: dict = {"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass", "metadata": {"name": name},
                 "provisioner": provisioner, "volumeBindingMode": mode}
    if topologies is not None:
        out["allowedTopologies"] = topologies
    return out


WFFC = storage_class("local")
IMMEDIATE = storage_class("fast", mode="Immediate", provisioner="example.com/fast")


def pod(name: str = "p", *claims: str, ephemeral: tuple = (), extra: tuple = ()) -> dict:
    volumes = [{"name": f"v-{c}", "persistentVolumeClaim": {"claimName": c}} for c in claims]
    volumes += [{"name": v, "ephemeral": {"volumeClaimTemplate": {"spec": {}}}} for v in ephemeral]
    volumes += list(extra)
    return {"metadata": {"name": name, "namespace": "default", "uid": f"uid-pod-{name}"},
            "spec": {"containers": [{"name": "c"}], "volumes": volumes}}


class World:
    """The listers' contents (lists a test may change, as informers would) and the plugin."""

    def __init__(self, nodes: list[dict], claims: list[dict] = (), volumes: list[dict] = (),  # type: ignore[assignment]
                 classes: list[dict] = (WFFC,), client: Any = None, **args: Any) -> None:  # type: ignore[assignment]
        self.nodes = nodes
        self.objects = {"v1/persistentvolumeclaims": list(claims), "v1/persistentvolumes": list(volumes),
                        "storage.k8s.io/v1/storageclasses": list(classes)}
        self.handle = Handle(Snapshot([node_info_of(n) for n in nodes]), objects=self.objects, client=client)
        self.plugin = VolumeBinding({**VolumeBinding.default_args(), **args}, self.handle)

    def run(self, p: dict) -> tuple[CycleState, Any, dict[str, Any]]:
        """PreFilter, then Filter on every node: (state, PreFilter status or result, node -> status)."""
        state = CycleState()
        result, status = self.plugin.pre_filter(state, p, self.handle.snapshot.node_infos)
        if not status.is_success():
            return state, status, {}
        statuses = {info.name: self.plugin.filter(state, p, info) for info in self.handle.snapshot.node_infos}
        return state, result, statuses

    def replace(self, resource: str, obj: dict) -> None:
        items = self.objects[resource]
        name = obj["metadata"]["name"]
        items[:] = [o for o in items if o["metadata"]["name"] != name] + [obj]


def ok_nodes(statuses: dict) -> list[str]:
    return sorted(n for n, s in statuses.items() if s.is_success())


# -- PreFilter --------------------------------------------------------------------------------------


class ExplodingLister:
    def __call__(self, resource: str, namespace: str | None) -> list:
        raise AssertionError(f"listed {resource} for a pod without claims")


def test_pods_without_claims_are_skipped_without_listing() -> None:
    handle = Handle(Snapshot([node_info_of(node("a"))]), lister=ExplodingLister())
    plugin = VolumeBinding(VolumeBinding.default_args(), handle)
    state = CycleState()
    bare = {"metadata": {"name": "x", "namespace": "default"}, "spec": {"containers": [{"name": "c"}]}}
    other_volumes = pod("y", extra=({"name": "cfg", "configMap": {"name": "c"}}, {"name": "tmp", "emptyDir": {}}))
    for p in (bare, other_volumes, {"metadata": {"name": "z"}}):
        result, status = plugin.pre_filter(state, p, [])
        assert result is None and status.is_skip()


PREFILTER_CASES = [
    ("missing claim", [], pod("p", "nope"), 'persistentvolumeclaim "nope" not found'),
    ("claim being deleted", [pvc("c", sc="local", deleting=True)], pod("p", "c"),
     'persistentvolumeclaim "c" is being deleted'),
    ("claim lost", [pvc("c", sc="local", volume="gone", phase="Lost")], pod("p", "c"),
     'persistentvolumeclaim "c" bound to non-existent persistentvolume "gone"'),
    ("ephemeral claim not created yet", [], pod("p", ephemeral=("scratch",)),
     'waiting for ephemeral volume controller to create the persistentvolumeclaim "p-scratch"'),
    ("ephemeral claim not owned by the pod", [pvc("p-scratch", sc="local", owner_uid="someone-else")],
     pod("p", ephemeral=("scratch",)), "PVC default/p-scratch was not created for pod default/p (pod is not owner)"),
    ("unbound immediate claim", [pvc("c", sc="fast")], pod("p", "c"), ERR_UNBOUND_IMMEDIATE),
    ("unbound claim without a class", [pvc("c")], pod("p", "c"), ERR_UNBOUND_IMMEDIATE),
    ("unbound claim of an unknown class", [pvc("c", sc="nosuch")], pod("p", "c"), ERR_UNBOUND_IMMEDIATE),
    ("pre-bound but not yet bound WFFC claim", [pvc("c", sc="local", volume="pv1")], pod("p", "c"),
     ERR_UNBOUND_IMMEDIATE),
]


@pytest.mark.parametrize(("title", "claims", "p", "message"), PREFILTER_CASES, ids=[c[0] for c in PREFILTER_CASES])
def test_pre_filter_rejections(title: str, claims: list, p: dict, message: str) -> None:
    world = World([node("a")], claims, classes=[WFFC, IMMEDIATE])
    _, status, _ = world.run(p)
    assert status.code == Code.UNSCHEDULABLE_AND_UNRESOLVABLE
    assert status.reasons == (message,)
    assert status.plugin == "VolumeBinding"


def test_ephemeral_claim_owned_by_the_pod_is_accepted() -> None:
    world = World([node("a")], [pvc("p-scratch", sc="local", owner_uid="uid-pod-p")], [pv("pv1", sc="local")])
    _, result, statuses = world.run(pod("p", ephemeral=("scratch",)))
    assert ok_nodes(statuses) == ["a"]


def test_class_without_binding_mode_is_an_error() -> None:
    broken = storage_class("local")
    del broken["volumeBindingMode"]
    world = World([node("a")], [pvc("c", sc="local")], classes=[broken])
    _, status, _ = world.run(pod("p", "c"))
    assert status.code == Code.ERROR
    assert status.message() == 'VolumeBindingMode not set for StorageClass "local"'


# -- Filter: bound claims ------------------------------------------------------------------------------


def test_bound_claim_pv_node_affinity_narrows_and_filters() -> None:
    claim, volume = bound_pair("c", "pv1", hosts=("b",))
    world = World([node("a"), node("b"), node("c")], [claim], [volume])
    _, result, statuses = world.run(pod("p", "c"))
    assert result.node_names == frozenset({"b"})  # hostname In pins the nodes (PreFilterResult)
    assert ok_nodes(statuses) == ["b"]
    assert statuses["a"].code == Code.UNSCHEDULABLE_AND_UNRESOLVABLE
    assert statuses["a"].reasons == (ERR_NODE_CONFLICT,)


def test_bound_claim_zone_affinity_filters_without_narrowing() -> None:
    zone = {"nodeSelectorTerms": [{"matchExpressions": [
        {"key": "topology.kubernetes.io/zone", "operator": "In", "values": ["z1"]}]}]}
    claim, volume = bound_pair("c", "pv1", affinity=zone)
    nodes = [node("a", **{"topology.kubernetes.io/zone": "z1"}), node("b", **{"topology.kubernetes.io/zone": "z2"})]
    world = World(nodes, [claim], [volume])
    _, result, statuses = world.run(pod("p", "c"))
    assert result is None
    assert ok_nodes(statuses) == ["a"]


def test_bound_claim_with_missing_pv() -> None:
    claim, _ = bound_pair("c", "pv1")
    world = World([node("a")], [claim], [])
    _, _, statuses = world.run(pod("p", "c"))
    assert statuses["a"].code == Code.UNSCHEDULABLE_AND_UNRESOLVABLE
    assert statuses["a"].reasons == (ERR_PV_NOT_EXIST,)


def test_bound_claim_via_bind_completed_annotation() -> None:
    claim, volume = bound_pair("c", "pv1", hosts=("a",))
    claim["status"]["phase"] = "Pending"
    claim["metadata"]["annotations"] = {"pv.kubernetes.io/bind-completed": "yes"}
    world = World([node("a"), node("b")], [claim], [volume])
    _, _, statuses = world.run(pod("p", "c"))
    assert ok_nodes(statuses) == ["a"]


def test_match_fields_on_the_node_name_never_match_a_pv() -> None:
    # As upstream's CheckNodeAffinity, which sees the node's labels only.
    by_name = {"nodeSelectorTerms": [{"matchFields": [
        {"key": "metadata.name", "operator": "In", "values": ["a"]}]}]}
    claim, volume = bound_pair("c", "pv1", affinity=by_name)
    world = World([node("a")], [claim], [volume])
    _, _, statuses = world.run(pod("p", "c"))
    assert statuses["a"].reasons == (ERR_NODE_CONFLICT,)


# -- Filter: delayed claims ------------------------------------------------------------------------------


def test_smallest_fitting_pv_is_chosen() -> None:
    volumes = [pv("big", sc="local", size="10Gi"), pv("small", sc="local", size="1Gi"),
               pv("medium", sc="local", size="3Gi"), pv("other-class", sc="slow", size="2Gi")]
    world = World([node("a")], [pvc("c", sc="local", size="2Gi")], volumes)
    state, _, statuses = world.run(pod("p", "c"))
    assert statuses["a"].is_success()
    chosen = state.read("PreFilterVolumeBinding").by_node["a"]
    assert [v["metadata"]["name"] for v, _ in chosen.static_bindings] == ["medium"]
    assert chosen.dynamic_provisions == []


def test_each_pv_is_used_once_per_pod() -> None:
    claims = [pvc("c1", sc="local"), pvc("c2", sc="local")]
    world = World([node("a")], claims, [pv("only", sc="local")])
    _, _, statuses = world.run(pod("p", "c1", "c2"))
    assert statuses["a"].code == Code.UNSCHEDULABLE_AND_UNRESOLVABLE
    assert statuses["a"].reasons == (ERR_BIND_CONFLICT,)
    world.objects["v1/persistentvolumes"].append(pv("second", sc="local"))
    state, _, statuses = world.run(pod("p", "c1", "c2"))
    chosen = state.read("PreFilterVolumeBinding").by_node["a"]
    assert sorted(v["metadata"]["name"] for v, _ in chosen.static_bindings) == ["only", "second"]


def test_local_pvs_fit_only_their_node() -> None:
    volumes = [pv("on-a", sc="local", hosts=("a",)), pv("on-b", sc="local", hosts=("b",))]
    world = World([node("a"), node("b"), node("c")], [pvc("c", sc="local")], volumes)
    state, result, statuses = world.run(pod("p", "c"))
    assert result is None  # unbound claims do not narrow
    assert ok_nodes(statuses) == ["a", "b"]
    assert statuses["c"].reasons == (ERR_BIND_CONFLICT,)
    by_node = state.read("PreFilterVolumeBinding").by_node
    assert by_node["a"].static_bindings[0][0]["metadata"]["name"] == "on-a"
    assert by_node["b"].static_bindings[0][0]["metadata"]["name"] == "on-b"


def test_pv_bound_to_another_claim_or_too_small_is_not_chosen() -> None:
    other = pvc("other", sc="local")
    volumes = [pv("taken", sc="local", size="5Gi", claim=other), pv("tiny", sc="local", size="100Mi")]
    world = World([node("a")], [pvc("c", sc="local", size="1Gi")], volumes)
    _, _, statuses = world.run(pod("p", "c"))
    assert statuses["a"].reasons == (ERR_BIND_CONFLICT,)


def test_pre_bound_pv_is_taken_and_its_affinity_checked() -> None:
    claim = pvc("c", sc="local")
    volumes = [pv("mine", sc="local", size="5Gi", claim=claim, hosts=("b",)), pv("free", sc="local", size="1Gi")]
    world = World([node("a"), node("b")], [claim], volumes)
    state, _, statuses = world.run(pod("p", "c"))
    # On a the pre-bound PV does not fit, and the claim may not take another one.
    assert ok_nodes(statuses) == ["b"]
    assert state.read("PreFilterVolumeBinding").by_node["b"].static_bindings[0][0]["metadata"]["name"] == "mine"


def test_bound_conflict_and_unbound_conflict_are_both_reported() -> None:
    bound, volume = bound_pair("b1", "pv-b", hosts=("b",))
    world = World([node("a"), node("b")], [bound, pvc("c", sc="local")], [volume])
    _, _, statuses = world.run(pod("p", "b1", "c"))
    assert statuses["b"].reasons == (ERR_BIND_CONFLICT,)
    world.plugin = VolumeBinding(VolumeBinding.default_args(), world.handle)
    state = CycleState()
    world.plugin.pre_filter(state, pod("p", "b1", "c"), [])
    status = world.plugin.filter(state, pod("p", "b1", "c"), world.handle.snapshot.get("a"))
    assert status.reasons == (ERR_NODE_CONFLICT, ERR_BIND_CONFLICT)


ZONES = [{"matchLabelExpressions": [{"key": "topology.kubernetes.io/zone", "values": ["z1", "z3"]}]}]


def test_provisioning_respects_allowed_topologies() -> None:
    nodes = [node("a", **{"topology.kubernetes.io/zone": "z1"}), node("b", **{"topology.kubernetes.io/zone": "z2"})]
    cls = storage_class("dyn", provisioner="example.com/csi", topologies=ZONES)
    world = World(nodes, [pvc("c", sc="dyn")], [], classes=[cls])
    state, _, statuses = world.run(pod("p", "c"))
    assert ok_nodes(statuses) == ["a"]
    assert statuses["b"].reasons == (ERR_BIND_CONFLICT,)
    chosen = state.read("PreFilterVolumeBinding").by_node["a"]
    assert chosen.static_bindings == [] and [c["metadata"]["name"] for c in chosen.dynamic_provisions] == ["c"]


def test_provisioning_without_topologies_fits_every_node_and_static_pvs_come_first() -> None:
    cls = storage_class("dyn", provisioner="example.com/csi")
    world = World([node("a"), node("b")], [pvc("c1", sc="dyn"), pvc("c2", sc="dyn")],
                  [pv("static", sc="dyn", hosts=("a",))], classes=[cls])
    state, _, statuses = world.run(pod("p", "c1", "c2"))
    assert ok_nodes(statuses) == ["a", "b"]
    by_node = state.read("PreFilterVolumeBinding").by_node
    assert len(by_node["a"].static_bindings) == 1 and len(by_node["a"].dynamic_provisions) == 1
    assert by_node["b"].static_bindings == [] and len(by_node["b"].dynamic_provisions) == 2


def test_selected_node_annotation_pins_the_claim() -> None:
    cls = storage_class("dyn", provisioner="example.com/csi")
    claim = pvc("c", sc="dyn", annotations={ANN_SELECTED_NODE: "b"})
    world = World([node("a"), node("b")], [claim], [], classes=[cls])
    _, _, statuses = world.run(pod("p", "c"))
    assert ok_nodes(statuses) == ["b"]
    assert statuses["a"].reasons == (ERR_BIND_CONFLICT,)


def test_topology_terms() -> None:
    labels = {"zone": "z1", "rack": "r1"}
    term = {"matchLabelExpressions": [{"key": "zone", "values": ["z1"]}, {"key": "rack", "values": ["r2"]}]}
    assert topology_allows({}, labels)
    assert not topology_allows({"allowedTopologies": [term]}, labels)
    assert topology_allows({"allowedTopologies": [term, {"matchLabelExpressions": [
        {"key": "rack", "values": ["r1"]}]}]}, labels)
    assert not topology_allows({"allowedTopologies": [{"matchLabelExpressions": []}]}, labels)


def test_local_node_names_and_claims_of_a_pod() -> None:
    assert local_pv_node_names(pv("x", hosts=("a", "b"))) == {"a", "b"}
    assert local_pv_node_names(pv("x")) is None
    mixed = {"nodeSelectorTerms": [
        {"matchExpressions": [{"key": "kubernetes.io/hostname", "operator": "In", "values": ["a"]}]},
        {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["z"]}]}]}
    assert local_pv_node_names(pv("x", affinity=mixed)) is None
    p = pod("p", "c1", "c1", "c2", ephemeral=("e",))
    assert pod_claim_volumes(p) == [("c1", False), ("c2", False), ("p-e", True)]


# -- Reserve / Unreserve: the assume cache -------------------------------------------------------------


async def test_reserve_assumes_pvs_for_later_pods_and_unreserve_releases_them() -> None:
    claims = [pvc("c1", sc="local"), pvc("c2", sc="local")]
    world = World([node("a")], claims, [pv("only", sc="local")])
    state1, _, statuses = world.run(pod("p1", "c1"))
    assert statuses["a"].is_success()
    assert (await world.plugin.reserve(state1, pod("p1", "c1"), "a")).is_success()
    assumed = world.plugin.pv_cache.get("only", world.objects["v1/persistentvolumes"][0])
    assert assumed["spec"]["claimRef"] == {"kind": "PersistentVolumeClaim", "namespace": "default", "name": "c1",
                                           "uid": "uid-c1", "apiVersion": "v1", "resourceVersion": "10"}
    assert assumed["metadata"]["annotations"] == {ANN_BOUND_BY_CONTROLLER: "yes"}
    assert "claimRef" not in world.objects["v1/persistentvolumes"][0]["spec"]  # the lister's object untouched
    # The next pod cannot take the assumed PV ...
    _, _, statuses = world.run(pod("p2", "c2"))
    assert statuses["a"].reasons == (ERR_BIND_CONFLICT,)
    # ... until the first pod's reservation is undone.
    await world.plugin.unreserve(state1, pod("p1", "c1"), "a")
    _, _, statuses = world.run(pod("p2", "c2"))
    assert statuses["a"].is_success()


async def test_assumption_ends_when_a_newer_version_is_listed() -> None:
    world = World([node("a")], [pvc("c1", sc="local"), pvc("c2", sc="local")], [pv("only", sc="local", rv="20")])
    state, _, _ = world.run(pod("p1", "c1"))
    await world.plugin.reserve(state, pod("p1", "c1"), "a")
    assert "only" in world.plugin.pv_cache
    # Someone else changed the PV (say, our write was lost to a newer version without claimRef).
    world.replace("v1/persistentvolumes", pv("only", sc="local", rv="21"))
    _, _, statuses = world.run(pod("p2", "c2"))
    assert statuses["a"].is_success()
    assert "only" not in world.plugin.pv_cache


async def test_reserve_assumes_provisioned_claims_with_the_selected_node() -> None:
    cls = storage_class("dyn", provisioner="example.com/csi")
    world = World([node("a"), node("b")], [pvc("c", sc="dyn")], [], classes=[cls])
    state, _, _ = world.run(pod("p", "c"))
    await world.plugin.reserve(state, pod("p", "c"), "b")
    # A second pod sharing the claim now has to follow it to b.
    _, _, statuses = world.run(pod("q", "c"))
    assert ok_nodes(statuses) == ["b"]
    await world.plugin.unreserve(state, pod("p", "c"), "b")
    _, _, statuses = world.run(pod("q", "c"))
    assert ok_nodes(statuses) == ["a", "b"]


async def test_reserve_with_everything_bound_leaves_nothing_for_prebind() -> None:
    claim, volume = bound_pair("c", "pv1")
    world = World([node("a")], [claim], [volume], client=None)
    state, _, _ = world.run(pod("p", "c"))
    assert (await world.plugin.reserve(state, pod("p", "c"), "a")).is_success()
    assert state.read("PreFilterVolumeBinding").all_bound
    assert (await world.plugin.pre_bind(state, pod("p", "c"), "a")).is_success()  # no client needed


def test_assume_cache_semantics() -> None:
    cache = AssumeCache()
    base = {"metadata": {"name": "x", "resourceVersion": "5"}}
    mine = {"metadata": {"name": "x", "resourceVersion": "5"}, "spec": {"claimRef": {}}}
    cache.assume("x", mine, base)
    assert cache.get("x", base) is mine
    assert cache.get("x", {"metadata": {"name": "x", "resourceVersion": "6"}})["metadata"]["resourceVersion"] == "6"
    assert "x" not in cache
    cache.assume("x", mine, base)
    assert cache.get("x", None) is None and len(cache) == 0
    cache.assume("x", mine, base)
    cache.retain(set())
    assert len(cache) == 0


# -- PreBind ---------------------------------------------------------------------------------------------


class FakeClient:
    """Records PUTs; each returns the object with the next resourceVersion and (when
    ``echo``) shows it to the listers, as the informer would."""

    def __init__(self, world: World | None = None, echo: bool = True) -> None:
        self.world = world
        self.echo = echo
        self.updates: list[tuple[str, dict]] = []
        self.deleted_pods: set[str] = set()
        self.written = asyncio.Event()

    async def update(self, res: tuple, obj: dict, namespace: str | None = None, **_: Any) -> dict:
        out = copy.deepcopy(obj)
        out["metadata"]["resourceVersion"] = str(int(obj["metadata"].get("resourceVersion") or 0) + 100)
        self.updates.append((res[2], out))
        self.written.set()
        if self.echo and self.world is not None:
            self.world.replace(f"v1/{res[2]}", out)
        return out

    async def get(self, res: tuple, name: str, namespace: str | None = None, **_: Any) -> dict:
        if name in self.deleted_pods:
            raise NotFound(404, "NotFound", f'pods "{name}" not found')
        return {"metadata": {"name": name, "namespace": namespace, "uid": f"uid-pod-{name}"}}


def fast(world: World) -> None:
    world.plugin.poll_interval = 0.01
    world.plugin.pod_check_interval = 0.02


async def _reserved(world: World, p: dict, node_name: str) -> CycleState:
    state, _, statuses = world.run(p)
    assert statuses[node_name].is_success()
    assert (await world.plugin.reserve(state, p, node_name)).is_success()
    return state


async def test_pre_bind_writes_claim_ref_and_waits_for_the_pv_controller() -> None:
    world = World([node("a")], [pvc("c", sc="local")], [pv("pv1", sc="local", hosts=("a",))])
    client = world.handle.client = FakeClient(world)
    fast(world)
    p = pod("p", "c")
    state = await _reserved(world, p, "a")
    task = asyncio.create_task(world.plugin.pre_bind(state, p, "a"))
    await asyncio.wait_for(client.written.wait(), 5)
    kind, written = client.updates[0]
    assert kind == "persistentvolumes"
    assert written["spec"]["claimRef"]["name"] == "c" and written["spec"]["claimRef"]["uid"] == "uid-c"
    assert written["metadata"]["annotations"][ANN_BOUND_BY_CONTROLLER] == "yes"
    await asyncio.sleep(0.05)
    assert not task.done()  # the claim is not bound yet
    # The PV controller completes the binding.
    done = pvc("c", sc="local", volume="pv1", phase="Bound", rv="11")
    world.replace("v1/persistentvolumeclaims", done)
    status = await asyncio.wait_for(task, 5)
    assert status.is_success()


async def test_pre_bind_provisioning_sets_selected_node() -> None:
    cls = storage_class("dyn", provisioner="example.com/csi")
    world = World([node("a")], [pvc("c", sc="dyn")], [], classes=[cls])
    client = world.handle.client = FakeClient(world)
    fast(world)
    p = pod("p", "c")
    state = await _reserved(world, p, "a")
    task = asyncio.create_task(world.plugin.pre_bind(state, p, "a"))
    await asyncio.wait_for(client.written.wait(), 5)
    kind, written = client.updates[0]
    assert kind == "persistentvolumeclaims" and written["metadata"]["annotations"][ANN_SELECTED_NODE] == "a"
    # The provisioner creates a PV and the controller binds it.
    claim = copy.deepcopy(written)
    claim["spec"]["volumeName"] = "pvc-1"
    claim["status"]["phase"] = "Bound"
    claim["metadata"]["resourceVersion"] = "999"
    world.objects["v1/persistentvolumes"].append(pv("pvc-1", sc="dyn", claim=claim, phase="Bound"))
    world.replace("v1/persistentvolumeclaims", claim)
    assert (await asyncio.wait_for(task, 5)).is_success()


async def test_pre_bind_fails_when_provisioning_is_given_up() -> None:
    cls = storage_class("dyn", provisioner="example.com/csi")
    world = World([node("a")], [pvc("c", sc="dyn")], [], classes=[cls])
    client = world.handle.client = FakeClient(world)
    fast(world)
    p = pod("p", "c")
    state = await _reserved(world, p, "a")
    task = asyncio.create_task(world.plugin.pre_bind(state, p, "a"))
    await asyncio.wait_for(client.written.wait(), 5)
    dropped = copy.deepcopy(client.updates[0][1])
    dropped["metadata"]["annotations"] = {"other": "x"}
    dropped["metadata"]["resourceVersion"] = "999"
    world.replace("v1/persistentvolumeclaims", dropped)
    status = await asyncio.wait_for(task, 5)
    assert status.code == Code.ERROR
    assert status.message() == 'binding volumes: provisioning failed for PVC "c"'


async def test_pre_bind_times_out() -> None:
    world = World([node("a")], [pvc("c", sc="local")], [pv("pv1", sc="local")], bindTimeoutSeconds=0)
    world.handle.client = FakeClient(world)
    fast(world)
    p = pod("p", "c")
    state = await _reserved(world, p, "a")
    status = await world.plugin.pre_bind(state, p, "a")
    assert status.code == Code.ERROR
    assert status.message() == "binding volumes: context deadline exceeded"


async def test_pre_bind_fails_when_the_claim_ref_is_reset() -> None:
    world = World([node("a")], [pvc("c", sc="local")], [pv("pv1", sc="local")])
    client = world.handle.client = FakeClient(world)
    fast(world)
    p = pod("p", "c")
    state = await _reserved(world, p, "a")
    task = asyncio.create_task(world.plugin.pre_bind(state, p, "a"))
    await asyncio.wait_for(client.written.wait(), 5)
    world.replace("v1/persistentvolumes", pv("pv1", sc="local", rv="500"))  # the controller unbound it
    status = await asyncio.wait_for(task, 5)
    assert status.message() == 'binding volumes: ClaimRef got reset for pv "pv1"'


async def test_pre_bind_gives_up_when_the_pod_is_deleted() -> None:
    world = World([node("a")], [pvc("c", sc="local")], [pv("pv1", sc="local")])
    client = world.handle.client = FakeClient(world)
    client.deleted_pods.add("p")
    fast(world)
    p = pod("p", "c")
    state = await _reserved(world, p, "a")
    status = await world.plugin.pre_bind(state, p, "a")
    assert status.code == Code.ERROR
    assert status.message().startswith("binding volumes: pod does not exist any more")


async def test_pre_bind_write_failure_is_an_error() -> None:
    from pybernetes.client.errors import Conflict

    class Refusing(FakeClient):
        async def update(self, res: tuple, obj: dict, namespace: str | None = None, **_: Any) -> dict:
            raise Conflict(409, "Conflict", 'Operation cannot be fulfilled on persistentvolumes "pv1"')

    world = World([node("a")], [pvc("c", sc="local")], [pv("pv1", sc="local")], client=Refusing())
    p = pod("p", "c")
    state = await _reserved(world, p, "a")
    status = await world.plugin.pre_bind(state, p, "a")
    assert status.code == Code.ERROR and "Operation cannot be fulfilled" in status.message()


# -- args, events ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(("args", "problem"), [
    ({"bindTimeoutSeconds": 600}, None),
    ({"bindTimeoutSeconds": 0}, None),
    ({"bindTimeoutSeconds": -1}, "bindTimeoutSeconds: Invalid value: -1: invalid BindTimeoutSeconds, "
                                 "should not be a negative value"),
    ({"bindTimeoutSeconds": "10s"}, "bindTimeoutSeconds: Invalid value: '10s': must be an integer (seconds)"),
    ({"bindTimeoutSeconds": 1.5}, "bindTimeoutSeconds: Invalid value: 1.5: must be an integer (seconds)"),
    ({"bindTimeoutSeconds": True}, "bindTimeoutSeconds: Invalid value: True: must be an integer (seconds)"),
    ({"bindTimeout": 5}, 'bindTimeout: unknown field "bindTimeout"'),
])
def test_validate_args(args: dict, problem: str | None) -> None:
    problems = VolumeBinding.validate_args({**VolumeBinding.default_args(), **args})
    assert problems == ([problem] if problem else [])


def test_args_reach_the_configuration() -> None:
    from pybernetes.scheduler.config import ConfigError, parse_config

    doc = {"apiVersion": "kubescheduler.config.k8s.io/v1", "kind": "KubeSchedulerConfiguration",
           "profiles": [{"pluginConfig": [{"name": "VolumeBinding", "args": {"bindTimeoutSeconds": -5}}]}]}
    with pytest.raises(ConfigError) as err:
        parse_config(doc)
    assert "plugin 'VolumeBinding': bindTimeoutSeconds: Invalid value: -5" in str(err.value)
    doc["profiles"][0]["pluginConfig"][0]["args"]["bindTimeoutSeconds"] = 30
    profile = parse_config(doc).profiles[0]
    assert profile.plugin_args["VolumeBinding"] == {"bindTimeoutSeconds": 30}
    assert ("VolumeBinding", 0) in profile.points["preBind"] and ("VolumeBinding", 0) in profile.points["reserve"]


def test_events_to_register() -> None:
    events = set(VolumeBinding().events_to_register())
    assert events == {ClusterEvent(r, a) for r in ("PersistentVolumeClaim", "PersistentVolume", "StorageClass")
                      for a in ("Add", "Update")} | {ClusterEvent("Node", "Add"), ClusterEvent("Node", "UpdateNodeLabel")}


def test_score_is_skipped_as_upstream_without_its_alpha_gate() -> None:
    plugin = VolumeBinding(VolumeBinding.default_args(), Handle())
    assert plugin.pre_score(CycleState(), pod("p", "c"), []).is_skip()
    value, status = plugin.score(CycleState(), pod("p", "c"), node_info_of(node("a")))
    assert (value, status.is_success()) == (0, True)
