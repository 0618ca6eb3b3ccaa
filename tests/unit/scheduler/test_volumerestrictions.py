"""VolumeRestrictions: disk conflicts as upstream's isVolumeConflict (GCE PD, AWS EBS, iSCSI,
RBD, read-only sharing), ReadWriteOncePod claims in use (and preemption's what-ifs), the
PreFilter skip and missing claims, and events."""

from __future__ import annotations

import pytest

from pybernetes.scheduler.framework import ClusterEvent, Code, CycleState
from pybernetes.scheduler.handle import Handle, Snapshot
from pybernetes.scheduler.nodeinfo import node_info_of, pod_entry
from pybernetes.scheduler.plugins.volumerestrictions import (
    ERR_DISK_CONFLICT,
    ERR_RWOP_CONFLICT,
    VolumeRestrictions,
    is_volume_conflict,
)

NODE = {"metadata": {"name": "n"}, "status": {"allocatable": {"cpu": "4", "pods": "10"}}}


def pod(name: str, *volumes: dict, namespace: str = "default", phase: str | None = None) -> dict:
    out = {"metadata": {"name": name, "namespace": namespace},
           "spec": {"containers": [{"name": "c"}],
                    "volumes": [{"name": f"v{i}", **v} for i, v in enumerate(volumes)]}}
    if phase:
        out["status"] = {"phase": phase}
    return out


def gce(name: str, ro: bool = False) -> dict:
    return {"gcePersistentDisk": {"pdName": name, "readOnly": ro}}


def ebs(volume_id: str, ro: bool = False) -> dict:
    return {"awsElasticBlockStore": {"volumeID": volume_id, "readOnly": ro}}


def iscsi(iqn: str, ro: bool = False) -> dict:
    return {"iscsi": {"targetPortal": "127.0.0.1:3260", "iqn": iqn, "lun": 0, "readOnly": ro}}


def rbd(monitors: list[str], image: str, pool: str = "rbd", ro: bool = False) -> dict:
    return {"rbd": {"monitors": monitors, "image": image, "pool": pool, "readOnly": ro}}


def claim(name: str) -> dict:
    return {"persistentVolumeClaim": {"claimName": name}}


def pvc(name: str, *modes: str, namespace: str = "default") -> dict:
    return {"metadata": {"name": name, "namespace": namespace},
            "spec": {"accessModes": list(modes or ("ReadWriteOnce",)),
                     "resources": {"requests": {"storage": "1Gi"}}}}


CONFLICTS = [
    ("gce same disk", gce("d1"), gce("d1"), True),
    ("gce other disk", gce("d1"), gce("d2"), False),
    ("gce both read-only", gce("d1", ro=True), gce("d1", ro=True), False),
    ("gce one read-only", gce("d1", ro=True), gce("d1"), True),
    ("ebs same volume, even read-only", ebs("vol-1", ro=True), ebs("vol-1", ro=True), True),
    ("ebs other volume", ebs("vol-1"), ebs("vol-2"), False),
    ("iscsi same iqn", iscsi("iqn.a"), iscsi("iqn.a"), True),
    ("iscsi both read-only", iscsi("iqn.a", ro=True), iscsi("iqn.a", ro=True), False),
    ("iscsi other iqn", iscsi("iqn.a"), iscsi("iqn.b"), False),
    ("rbd shared monitor, same pool and image", rbd(["m1", "m2"], "img"), rbd(["m2", "m3"], "img"), True),
    ("rbd disjoint monitors", rbd(["m1"], "img"), rbd(["m2"], "img"), False),
    ("rbd other pool", rbd(["m1"], "img", pool="a"), rbd(["m1"], "img", pool="b"), False),
    ("rbd other image", rbd(["m1"], "img"), rbd(["m1"], "img2"), False),
    ("rbd both read-only", rbd(["m1"], "img", ro=True), rbd(["m1"], "img", ro=True), False),
    ("different kinds", gce("d1"), ebs("d1"), False),
]


@pytest.mark.parametrize(("title", "mine", "theirs", "conflict"), CONFLICTS, ids=[c[0] for c in CONFLICTS])
def test_disk_conflicts(title: str, mine: dict, theirs: dict, conflict: bool) -> None:
    assert is_volume_conflict(mine, pod("e", theirs)) is conflict
    plugin = VolumeRestrictions(None, Handle(Snapshot([node_info_of(NODE, [pod("e", theirs)])])))
    state = CycleState()
    _, pre = plugin.pre_filter(state, pod("p", mine), [])
    assert pre.is_success()
    status = plugin.filter(state, pod("p", mine), node_info_of(NODE, [pod("e", theirs)]))
    if conflict:
        assert status.code == Code.UNSCHEDULABLE and status.reasons == (ERR_DISK_CONFLICT,)
    else:
        assert status.is_success()


class ExplodingLister:
    def __call__(self, resource: str, namespace: str | None) -> list:
        raise AssertionError("listed for a pod that needs no check")


def test_pre_filter_skips_pods_without_disks_or_claims() -> None:
    plugin = VolumeRestrictions(None, Handle(Snapshot(), lister=ExplodingLister()))
    for p in ({"metadata": {"name": "x"}, "spec": {"containers": []}},
              pod("y", {"emptyDir": {}}, {"configMap": {"name": "c"}})):
        _, status = plugin.pre_filter(CycleState(), p, [])
        assert status.is_skip()


def _plugin(infos: list, claims: list[dict]) -> VolumeRestrictions:
    return VolumeRestrictions(None, Handle(Snapshot(infos), objects={"v1/persistentvolumeclaims": claims}))


def test_claims_without_read_write_once_pod_are_skipped_and_missing_claims_rejected() -> None:
    plugin = _plugin([node_info_of(NODE)], [pvc("rwo", "ReadWriteOnce")])
    _, status = plugin.pre_filter(CycleState(), pod("p", claim("rwo")), [])
    assert status.is_skip()
    _, status = plugin.pre_filter(CycleState(), pod("p", claim("nope")), [])
    assert status.code == Code.UNSCHEDULABLE_AND_UNRESOLVABLE
    assert status.reasons == ('persistentvolumeclaim "nope" not found',)


def _second(name: str = "n2", pods: list | None = None) -> object:
    return node_info_of({"metadata": {"name": name}, "status": {"allocatable": {"pods": "10"}}}, pods or [])


def test_read_write_once_pod_claim_in_use_rejects_every_node() -> None:
    holder = pod("holder", claim("solo"))
    infos = [node_info_of(NODE, [holder]), _second()]
    plugin = _plugin(infos, [pvc("solo", "ReadWriteOncePod")])
    state = CycleState()
    _, status = plugin.pre_filter(state, pod("p", claim("solo")), infos)
    assert status.is_success()
    for info in infos:
        verdict = plugin.filter(state, pod("p", claim("solo")), info)
        assert verdict.code == Code.UNSCHEDULABLE and verdict.reasons == (ERR_RWOP_CONFLICT,)
    # Preemption's what-if: without the holder, the claim is free.
    trial = state.clone()
    assert plugin.remove_pod(trial, pod("p"), pod_entry(holder), infos[0]).is_success()
    assert plugin.filter(trial, pod("p", claim("solo")), infos[0]).is_success()
    assert plugin.filter(state, pod("p", claim("solo")), infos[0]).code == Code.UNSCHEDULABLE  # original intact
    plugin.add_pod(trial, pod("p"), pod_entry(holder), infos[0])
    assert plugin.filter(trial, pod("p", claim("solo")), infos[1]).code == Code.UNSCHEDULABLE


@pytest.mark.parametrize(("title", "holder"), [
    ("holder terminated", pod("holder", claim("solo"), phase="Succeeded")),
    ("same claim name in another namespace", pod("holder", claim("solo"), namespace="other")),
    ("holder uses another claim", pod("holder", claim("else"))),
])
def test_read_write_once_pod_claim_free(title: str, holder: dict) -> None:
    infos = [node_info_of(NODE, [holder])]
    plugin = _plugin(infos, [pvc("solo", "ReadWriteOncePod")])
    state = CycleState()
    _, status = plugin.pre_filter(state, pod("p", claim("solo")), infos)
    assert status.is_skip()  # nothing to check: no conflicting reference, no disks


def test_filter_without_pre_filter_computes_its_state() -> None:
    infos = [node_info_of(NODE, [pod("holder", claim("solo"))])]
    plugin = _plugin(infos, [pvc("solo", "ReadWriteOncePod")])
    status = plugin.filter(CycleState(), pod("p", claim("solo")), infos[0])
    assert status.reasons == (ERR_RWOP_CONFLICT,)


def test_events_to_register() -> None:
    assert set(VolumeRestrictions().events_to_register()) == {
        ClusterEvent("Pod", "Delete"), ClusterEvent("Node", "Add"), ClusterEvent("PersistentVolumeClaim", "Add")}
