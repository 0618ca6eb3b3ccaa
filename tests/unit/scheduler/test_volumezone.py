"""VolumeZone: PreFilter's messages and skips, Filter's zone/region matching (multi-zone
values, beta vs GA keys, unlabelled nodes), the fallback without PreFilter, and events."""

from __future__ import annotations

import time

import pytest

from pybernetes.scheduler.framework import ClusterEvent, Code, CycleState
from pybernetes.scheduler.handle import Handle, Snapshot
from pybernetes.scheduler.nodeinfo import node_info_of
from pybernetes.scheduler.plugins.volumezone import (
    ERR_CONFLICT,
    STATE_KEY,
    VolumeZone,
    claim_names,
    label_zones_to_set,
    pv_topologies,
)

ZONE = "topology.kubernetes.io/zone"
REGION = "topology.kubernetes.io/region"
BETA_ZONE = "failure-domain.beta.kubernetes.io/zone"
BETA_REGION = "failure-domain.beta.kubernetes.io/region"


def node(name: str, **labels: str) -> dict:
    return {"metadata": {"name": name, "labels": {"kubernetes.io/hostname": name, **labels}},
            "status": {"allocatable": {"cpu": "4", "memory": "8Gi", "pods": "110"}}}


def pvc(name: str, *, volume: str | None = None, sc: str | None = None, beta_sc: str | None = None) -> dict:
    meta: dict = {"name": name, "namespace": "default", "uid": f"uid-{name}"}
    if beta_sc is not None:
        meta["annotations"] = {"volume.beta.kubernetes.io/storage-class": beta_sc}
    spec: dict = {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}
    if volume:
        spec["volumeName"] = volume
    if sc is not None:
        spec["storageClassName"] = sc
    return {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": meta, "spec": spec}


def pv(name: str, **labels: str) -> dict:
    return {"apiVersion": "v1", "kind": "PersistentVolume", "metadata": {"name": name, "labels": labels},
            "spec": {"capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteOnce"]}}


def storage_class(name: str, mode: str | None = "WaitForFirstConsumer") -> dict:
    out: dict = {"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass", "metadata": {"name": name},
                 "provisioner": "example.com/csi"}
    if mode is not None:
        out["volumeBindingMode"] = mode
    return out


def pod(*claims: str, ephemeral: bool = False, namespace: str = "default") -> dict:
    volumes: list[dict] = [{"name": f"v{i}", "persistentVolumeClaim": {"claimName": c}} for i, c in enumerate(claims)]
    if ephemeral:
        volumes.append({"name": "scratch", "ephemeral": {"volumeClaimTemplate": {"spec": {}}}})
    return {"metadata": {"name": "p", "namespace": namespace, "uid": "pod-uid"},
            "spec": {"containers": [{"name": "c", "image": "x"}], "volumes": volumes}}


PVS = [pv("pv-a", **{ZONE: "zone-a"}),
       pv("pv-b", **{ZONE: "zone-b", REGION: "r1"}),
       pv("pv-ab", **{ZONE: "zone-a__zone-b"}),
       pv("pv-beta", **{BETA_ZONE: "zone-a", BETA_REGION: "r1"}),
       pv("pv-ga", **{ZONE: "zone-a"}),
       pv("pv-region", **{REGION: "r2"}),
       pv("pv-plain"),
       pv("pv-bad", **{ZONE: "zone-a__", REGION: "r1"})]
CLAIMS = [pvc("a", volume="pv-a"), pvc("b", volume="pv-b"), pvc("ab", volume="pv-ab"),
          pvc("beta", volume="pv-beta"), pvc("ga", volume="pv-ga"), pvc("region", volume="pv-region"),
          pvc("plain", volume="pv-plain"), pvc("bad", volume="pv-bad"),
          pvc("wffc", sc="late"), pvc("wffc-beta", beta_sc="late"), pvc("immediate", sc="now"),
          pvc("no-class"), pvc("unknown-class", sc="nope"), pvc("no-mode", sc="modeless"),
          pvc("lost", volume="pv-gone")]
CLASSES = [storage_class("late"), storage_class("now", "Immediate"), storage_class("modeless", None)]

NODES = [node("n-a", **{ZONE: "zone-a", REGION: "r1"}),
         node("n-b", **{ZONE: "zone-b", REGION: "r1"}),
         node("n-c", **{ZONE: "zone-c", REGION: "r2"}),
         node("n-beta-a", **{BETA_ZONE: "zone-a", BETA_REGION: "r1"}),
         node("n-bare")]


def make_plugin(**kwargs) -> VolumeZone:
    objects = {"v1/persistentvolumeclaims": CLAIMS, "v1/persistentvolumes": PVS,
               "storage.k8s.io/v1/storageclasses": CLASSES}
    handle = Handle(Snapshot([node_info_of(n) for n in NODES]), objects=objects, **kwargs)
    return VolumeZone({}, handle)


def run(plugin: VolumeZone, p: dict) -> tuple[CycleState, object, dict[str, object]]:
    """PreFilter, then Filter on every node unless PreFilter skipped or rejected."""
    state = CycleState()
    _, status = plugin.pre_filter(state, p, plugin.handle.snapshot.node_infos)
    verdicts: dict[str, object] = {}
    if status.is_success():
        verdicts = {info.name: plugin.filter(state, p, info) for info in plugin.handle.snapshot.node_infos}
    return state, status, verdicts


def fitting(verdicts: dict) -> set[str]:
    return {name for name, status in verdicts.items() if status.is_success()}


@pytest.mark.parametrize(("claims", "nodes"), [
    (("a",), {"n-a", "n-bare"}),  # a GA PV label is not looked up under the beta key (upstream)
    (("b",), {"n-b", "n-bare"}),  # zone and region both must match
    (("ab",), {"n-a", "n-b", "n-bare"}),  # "a__b" is a set of zones
    (("beta",), {"n-a", "n-beta-a", "n-bare"}),  # beta PV labels match GA node labels too
    (("ab", "beta"), {"n-a", "n-bare"}),  # every PV's labels must hold on the node
    (("region",), {"n-c", "n-bare"}),  # region only
    (("a", "b"), {"n-bare"}),  # two PVs in different zones: no labelled node holds both
    (("a", "wffc"), {"n-a", "n-bare"}),  # the WaitForFirstConsumer claim is skipped
    (("bad",), {"n-a", "n-b", "n-bare"}),  # "zone-a__" cannot be parsed: ignored, region kept
], ids=["ga", "zone+region", "multi-zone", "beta", "multi+beta", "region", "two-zones", "with-wffc", "bad-value"])
def test_filter_by_volume_topology(claims, nodes):
    plugin = make_plugin()
    state, status, verdicts = run(plugin, pod(*claims))
    assert status.code == Code.SUCCESS
    assert fitting(verdicts) == nodes
    for name, verdict in verdicts.items():
        if name not in nodes:
            assert verdict.code == Code.UNSCHEDULABLE_AND_UNRESOLVABLE
            assert verdict.reasons == (ERR_CONFLICT,)
            assert verdict.plugin == "VolumeZone"
    assert state.get(STATE_KEY)


def test_beta_node_label_does_not_match_a_ga_pv_label_but_matches_a_beta_one():
    beta_node = node_info_of(node("n", **{BETA_ZONE: "zone-a"}))
    plugin = make_plugin()
    for claim, fits in (("ga", False), ("beta", False), ("a", False)):
        state = CycleState()
        plugin.pre_filter(state, pod(claim), [])
        # "beta" also needs the region r1, which this node lacks
        assert plugin.filter(state, pod(claim), beta_node).is_success() is fits, claim
    both = node_info_of(node("n2", **{BETA_ZONE: "zone-a", BETA_REGION: "r1"}))
    state = CycleState()
    plugin.pre_filter(state, pod("beta"), [])
    assert plugin.filter(state, pod("beta"), both).is_success()


@pytest.mark.parametrize(("claims", "message"), [
    (("missing",), 'persistentvolumeclaim "missing" not found'),
    (("",), "PersistentVolumeClaim had no name"),
    (("no-class",), "PersistentVolumeClaim had no pv name and storageClass name"),
    (("unknown-class",), 'storageclass.storage.k8s.io "nope" not found'),
    (("no-mode",), 'VolumeBindingMode not set for StorageClass "modeless"'),
    (("immediate",), "PersistentVolume had no name"),
    (("lost",), 'persistentvolume "pv-gone" not found'),
    (("a", "missing"), 'persistentvolumeclaim "missing" not found'),
])
def test_pre_filter_rejections(claims, message):
    plugin = make_plugin()
    state = CycleState()
    result, status = plugin.pre_filter(state, pod(*claims), [])
    assert result is None
    assert status.code == Code.UNSCHEDULABLE_AND_UNRESOLVABLE
    assert status.reasons == (message,)
    assert status.plugin == "VolumeZone"
    assert state.get(STATE_KEY) is None


@pytest.mark.parametrize("claims", [("plain",), ("wffc",), ("wffc-beta",), ("plain", "wffc")])
def test_pre_filter_skips_without_topology(claims):
    state = CycleState()
    _, status = make_plugin().pre_filter(state, pod(*claims), [])
    assert status.code == Code.SKIP
    assert state.get(STATE_KEY) is None


def test_pre_filter_only_looks_in_the_pods_namespace():
    _, status = make_plugin().pre_filter(CycleState(), pod("a", namespace="other"), [])
    assert status.reasons == ('persistentvolumeclaim "a" not found',)


def test_pod_without_claims_is_skipped_without_listing():
    def lister(resource, namespace):
        raise AssertionError(f"listed {resource} for a pod without claims")

    plugin = VolumeZone({}, Handle(Snapshot([node_info_of(n) for n in NODES]), lister=lister))
    no_volumes = {"metadata": {"name": "p", "namespace": "default"}, "spec": {"containers": [{"name": "c"}]}}
    other_volumes = {"metadata": {"name": "p", "namespace": "default"},
                     "spec": {"volumes": [{"name": "e", "emptyDir": {}},
                                          {"name": "x", "ephemeral": {"volumeClaimTemplate": {"spec": {}}}}]}}
    for p in (no_volumes, other_volumes, {"metadata": {}}):
        state = CycleState()
        _, status = plugin.pre_filter(state, p, [])
        assert status.code == Code.SKIP
        assert plugin.filter(state, p, plugin.handle.snapshot.node_infos[0]).is_success()
    # cheap: about a microsecond each (a generous bound for slow CI machines)
    state = CycleState()
    start = time.perf_counter()
    for _ in range(10_000):
        plugin.pre_filter(state, no_volumes, [])
    assert (time.perf_counter() - start) / 10_000 < 20e-6


def test_generic_ephemeral_volumes_are_not_looked_at():
    state, status, verdicts = run(make_plugin(), pod("a", ephemeral=True))
    assert status.is_success()
    assert fitting(verdicts) == {"n-a", "n-bare"}


def test_filter_without_pre_filter_works_it_out_once():
    calls: list[str] = []
    objects = {"v1/persistentvolumeclaims": CLAIMS, "v1/persistentvolumes": PVS,
               "storage.k8s.io/v1/storageclasses": CLASSES}

    def lister(resource, namespace):
        calls.append(resource)
        items = objects.get(resource) or []
        return [o for o in items if namespace is None or o["metadata"].get("namespace") == namespace]

    plugin = VolumeZone({}, Handle(Snapshot([node_info_of(n) for n in NODES]), lister=lister))
    state = CycleState()
    verdicts = {info.name: plugin.filter(state, pod("b"), info) for info in plugin.handle.snapshot.node_infos}
    assert fitting(verdicts) == {"n-b", "n-bare"}
    assert calls == ["v1/persistentvolumeclaims", "v1/persistentvolumes"]
    status = plugin.filter(CycleState(), pod("missing"), plugin.handle.snapshot.node_infos[0])
    assert status.reasons == ('persistentvolumeclaim "missing" not found',)


def test_state_survives_clone():
    plugin = make_plugin()
    state = CycleState()
    plugin.pre_filter(state, pod("b"), [])
    clone = state.clone()
    n_a, n_b = plugin.handle.snapshot.node_infos[:2]
    assert not plugin.filter(clone, pod("b"), n_a).is_success()
    assert plugin.filter(clone, pod("b"), n_b).is_success()


def test_helpers():
    assert label_zones_to_set("a__b") == {"a", "b"}
    assert label_zones_to_set(" a __ b ") == {"a", "b"}
    assert label_zones_to_set("a") == {"a"}
    for bad in ("", "a__", "__b", "a____b"):
        with pytest.raises(ValueError, match="must not contain an empty string"):
            label_zones_to_set(bad)
    topo = pv_topologies(pv("x", **{ZONE: "z1__z2", BETA_REGION: "r", "other": "y"}))
    assert {(t.pv_name, t.key, t.values) for t in topo} == {("x", ZONE, frozenset({"z1", "z2"})),
                                                             ("x", BETA_REGION, frozenset({"r"}))}
    assert pv_topologies({"metadata": {"name": "x"}}) == []
    assert claim_names(pod("a", "b", "a", ephemeral=True)) == ["a", "b"]


def test_events_to_register():
    assert set(make_plugin().events_to_register()) == {
        ClusterEvent("Node", "Add"), ClusterEvent("Node", "UpdateNodeLabel"),
        ClusterEvent("PersistentVolumeClaim", "Add"), ClusterEvent("PersistentVolumeClaim", "Update"),
        ClusterEvent("PersistentVolume", "Add"), ClusterEvent("PersistentVolume", "Update"),
        ClusterEvent("StorageClass", "Add")}
