"""PV resolution and the local-path reclaimer's safety checks (pure parts): hostPath and local
PVs, node affinity, missing paths, foreign claimRefs, unsupported sources; which released
volumes a node may delete."""

from __future__ import annotations

import os
import stat

import pytest

from pybernetes.kubelet.volumes.common import VolumeError
from pybernetes.kubelet.volumes.localpath import reclaimable_path, remove_volume_dir, volume_dir_name
from pybernetes.kubelet.volumes.pvc import claim_name_of, resolve_pv

CLAIM = {"metadata": {"name": "data", "namespace": "ns", "uid": "c-1"}}
NODE = {"metadata": {"name": "n1", "labels": {"kubernetes.io/hostname": "n1"}}}


def pv(source: dict, *, affinity_host: str | None = None, annotations=None, ref_uid="c-1") -> dict:
    spec = {"capacity": {"storage": "1Gi"}, "claimRef": {"namespace": "ns", "name": "data", "uid": ref_uid}, **source}
    if affinity_host:
        spec["nodeAffinity"] = {"required": {"nodeSelectorTerms": [{"matchExpressions": [
            {"key": "kubernetes.io/hostname", "operator": "In", "values": [affinity_host]}]}]}}
    return {"metadata": {"name": "pv1", "annotations": annotations or {}}, "spec": spec}


def test_host_path_pv(tmp_path) -> None:
    got = resolve_pv(pv({"hostPath": {"path": str(tmp_path), "type": "Directory"}}), CLAIM, NODE, True)
    assert (got.path, got.readonly, got.kind, got.pv_name) == (str(tmp_path), True, "hostPath", "pv1")


def test_host_path_pv_type_check(tmp_path) -> None:
    with pytest.raises(VolumeError, match=f'^MountVolume.SetUp failed for volume "pv1" : hostPath type check '
                                          f'failed: {tmp_path}/x is not a directory$') as err:
        resolve_pv(pv({"hostPath": {"path": str(tmp_path / "x"), "type": "Directory"}}), CLAIM, NODE, False)
    assert err.value.reason == "FailedMount"


def test_local_pv(tmp_path) -> None:
    got = resolve_pv(pv({"local": {"path": str(tmp_path)}}, affinity_host="n1"), CLAIM, NODE, False)
    assert got.kind == "local" and got.path == str(tmp_path)
    with pytest.raises(VolumeError, match=f'^MountVolume.NewMounter initialization failed for volume "pv1" : '
                                          f'path "{tmp_path}/gone" does not exist$'):
        resolve_pv(pv({"local": {"path": str(tmp_path / "gone")}}, affinity_host="n1"), CLAIM, NODE, False)


def test_node_affinity_of_another_node(tmp_path) -> None:
    with pytest.raises(VolumeError, match='^MountVolume.NodeAffinity check failed for volume "pv1" : '
                                          'no matching NodeSelectorTerms$'):
        resolve_pv(pv({"local": {"path": str(tmp_path)}}, affinity_host="n2"), CLAIM, NODE, False)


def test_claim_ref_of_another_claim(tmp_path) -> None:
    with pytest.raises(VolumeError, match="has a ClaimRef that points to PVC ns/data"):
        resolve_pv(pv({"hostPath": {"path": str(tmp_path)}}, ref_uid="other"), CLAIM, NODE, False)


def test_unsupported_source() -> None:
    with pytest.raises(VolumeError, match="volume plugin nfs is not supported"):
        resolve_pv(pv({"nfs": {"server": "s", "path": "/"}}), CLAIM, NODE, False)


def test_local_path_volumes_are_made_writable_for_all(tmp_path) -> None:
    path = tmp_path / "storage" / "pvc-c-1_ns_data"
    volume = pv({"hostPath": {"path": str(path), "type": "DirectoryOrCreate"}},
                annotations={"pv.kubernetes.io/provisioned-by": "pybernetes.io/local-path"})
    old = os.umask(0o022)
    try:
        resolve_pv(volume, CLAIM, NODE, False)
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o777


def test_claim_names() -> None:
    pod = {"metadata": {"name": "web"}}
    assert claim_name_of(pod, {"name": "d", "persistentVolumeClaim": {"claimName": "c", "readOnly": True}}) == ("c", True)
    assert claim_name_of(pod, {"name": "scratch", "ephemeral": {}}) == ("web-scratch", False)


def released(path: str, *, node="n1", uid="u1", policy="Delete", phase="Released", by="pybernetes.io/local-path"):
    return {"metadata": {"name": "pvc-u1", "annotations": {"pv.kubernetes.io/provisioned-by": by,
                                                           "pybernetes.io/local-path-node": node}},
            "spec": {"persistentVolumeReclaimPolicy": policy, "hostPath": {"path": path},
                     "claimRef": {"namespace": "ns", "name": "data", "uid": uid}},
            "status": {"phase": phase}}


def test_reclaimable_path() -> None:
    good = "/var/lib/pybernetes/storage/" + volume_dir_name("ns", "data", "u1")
    assert reclaimable_path(released(good), "n1") == good
    assert reclaimable_path(released(good), "n2") is None
    assert reclaimable_path(released(good, phase="Bound"), "n1") is None
    assert reclaimable_path(released(good, policy="Retain"), "n1") is None
    assert reclaimable_path(released(good, by="someone-else"), "n1") is None
    for bad in ("/etc", "/var/lib/pybernetes/storage/../../../etc/pvc-u1_ns_data", "relative/pvc-u1_ns_data",
                "/var/lib/pybernetes/storage/pvc-u2_ns_data", "/"):
        assert reclaimable_path(released(bad), "n1") is None, bad


def test_remove_volume_dir(tmp_path) -> None:
    keep = tmp_path / "keep"
    keep.mkdir()
    (keep / "f").write_text("x")
    vol = tmp_path / "vol"
    (vol / "d").mkdir(parents=True)
    (vol / "d" / "link").symlink_to(keep)
    remove_volume_dir(str(vol))
    assert not vol.exists() and (keep / "f").exists()
    remove_volume_dir(str(vol))  # gone already: fine
