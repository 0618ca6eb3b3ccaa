"""The volume manager against a real API server: configMap, secret, downwardAPI, projected and
emptyDir volumes set up and kept current by refresh; missing sources as FailedMount (optional
ones empty); claims resolved to their PVs; fsGroup; teardown (also by a restarted manager)
leaving no mount and no directory, and never touching hostPath data."""

from __future__ import annotations

import base64
import os
import stat
from pathlib import Path

import pytest

from pybernetes.client.kubeconfig import Config
from pybernetes.client.rest import RestClient
from pybernetes.kubelet.volumes import VolumeError, VolumeManager, mountutil

ROOT = os.geteuid() == 0
needs_root = pytest.mark.skipif(not ROOT, reason="needs root: tmpfs and bind mounts")
CMS, SECRETS, NODES = ("", "v1", "configmaps"), ("", "v1", "secrets"), ("", "v1", "nodes")
PVS, PVCS = ("", "v1", "persistentvolumes"), ("", "v1", "persistentvolumeclaims")
NS = "default"


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def pod(uid: str, volumes: list[dict], *, labels=None, containers=None, fs_group=None) -> dict:
    spec: dict = {"nodeName": "n1", "volumes": volumes,
                  "containers": containers or [{"name": "app", "image": "busybox"}]}
    if fs_group is not None:
        spec["securityContext"] = {"fsGroup": fs_group}
    return {"metadata": {"name": f"pod-{uid}", "namespace": NS, "uid": uid, "labels": labels or {}}, "spec": spec}


@pytest.fixture
async def env(api_server, tmp_path):
    client = RestClient(Config(servers=[api_server.url]))
    pods_dir = tmp_path / "pods"
    managers: list[VolumeManager] = []

    def make() -> VolumeManager:
        manager = VolumeManager(client, pods_dir, "n1", data_dir=tmp_path)
        managers.append(manager)
        return manager

    try:
        yield client, make, pods_dir, tmp_path
    finally:
        try:
            for uid in managers[-1].pod_uids_on_disk() if managers else ():
                await managers[-1].teardown(uid)
        finally:
            if ROOT:
                mountutil.unmount_all_under(tmp_path)
            await client.close()


def read(path: str | Path) -> str:
    return Path(path).read_text()


def exists(path: str | Path) -> bool:
    return os.path.lexists(path)


async def test_sources_are_projected_and_kept_current(env) -> None:
    client, make, pods_dir, _ = env
    await client.create(NODES, {"metadata": {"name": "n1"}})
    node = await client.get(NODES, "n1")
    node["status"] = {"allocatable": {"cpu": "3", "memory": "2Gi"}}
    await client.update_status(NODES, node)
    await client.create(CMS, {"metadata": {"name": "cfg"}, "data": {"app.conf": "v1", "other": "o"}}, NS)
    await client.create(SECRETS, {"metadata": {"name": "creds"}, "data": {"password": b64("s3cret")}}, NS)
    volumes = [
        {"name": "cfg", "configMap": {"name": "cfg", "items": [{"key": "app.conf", "path": "conf/app.conf"}]}},
        {"name": "creds", "secret": {"secretName": "creds", "defaultMode": 0o400}},
        {"name": "info", "downwardAPI": {"items": [
            {"path": "labels", "fieldRef": {"fieldPath": "metadata.labels"}},
            {"path": "mem", "resourceFieldRef": {"containerName": "app", "resource": "limits.memory",
                                                 "divisor": "1Mi"}}]}},
        {"name": "all", "projected": {"sources": [{"configMap": {"name": "cfg"}},
                                                  {"secret": {"name": "creds"}},
                                                  {"serviceAccountToken": {"path": "token"}}]}},
        {"name": "scratch", "emptyDir": {"sizeLimit": "64Mi"}},
    ]
    p = pod("u-sources", volumes, labels={"app": "web"})
    manager = make()
    paths = await manager.setup(p)
    base = pods_dir / "u-sources" / "volumes"
    assert paths == {"cfg": str(base / "kubernetes.io~configmap" / "cfg"),
                     "creds": str(base / "kubernetes.io~secret" / "creds"),
                     "info": str(base / "kubernetes.io~downward-api" / "info"),
                     "all": str(base / "kubernetes.io~projected" / "all"),
                     "scratch": str(base / "kubernetes.io~empty-dir" / "scratch")}
    assert read(f"{paths['cfg']}/conf/app.conf") == "v1" and not exists(f"{paths['cfg']}/other")
    assert read(f"{paths['creds']}/password") == "s3cret"
    assert stat.S_IMODE(os.stat(f"{paths['creds']}/password").st_mode) == 0o400
    assert read(f"{paths['info']}/labels") == 'app="web"' and read(f"{paths['info']}/mem") == "2048"
    assert sorted(p for p in os.listdir(paths["all"]) if not p.startswith("..")) == ["app.conf", "other", "password"]
    assert manager.size_limits("u-sources") == {"scratch": 64 * 1024 * 1024}
    if ROOT:  # secrets, downward API and projected volumes never touch the disk
        for name in ("creds", "info", "all"):
            assert mountutil.fs_type(paths[name]) == "tmpfs", name
        assert mountutil.fs_type(paths["cfg"]) == ""
    assert await manager.setup(p) == paths  # idempotent

    data_before = os.readlink(f"{paths['cfg']}/..data")
    await manager.refresh(p)
    assert os.readlink(f"{paths['cfg']}/..data") == data_before  # nothing changed: nothing written

    cm = await client.get(CMS, "cfg", NS)
    cm["data"]["app.conf"] = "v2"
    await client.update(CMS, cm, NS)
    secret = await client.get(SECRETS, "creds", NS)
    secret["data"]["password"] = b64("rotated")
    await client.update(SECRETS, secret, NS)
    p["metadata"]["labels"] = {"app": "web", "track": "canary"}
    await manager.refresh(p)
    assert os.readlink(f"{paths['cfg']}/..data") != data_before
    assert read(f"{paths['cfg']}/conf/app.conf") == "v2"
    assert read(f"{paths['creds']}/password") == "rotated"
    assert read(f"{paths['all']}/app.conf") == "v2" and read(f"{paths['all']}/password") == "rotated"
    assert read(f"{paths['info']}/labels") == 'app="web"\ntrack="canary"'

    await client.delete(CMS, "cfg", NS)  # a source going away keeps the old files
    await manager.refresh(p)
    assert read(f"{paths['cfg']}/conf/app.conf") == "v2"


async def test_a_missing_configmap_is_a_failed_mount_until_it_exists(env) -> None:
    client, make, _, _ = env
    manager = make()
    p = pod("u-missing", [{"name": "cfg", "configMap": {"name": "later"}},
                          {"name": "keys", "secret": {"secretName": "nope"}},
                          {"name": "scratch", "emptyDir": {}}])
    with pytest.raises(VolumeError) as err:
        await manager.setup(p)
    assert err.value.reason == "FailedMount"
    assert err.value.message == 'MountVolume.SetUp failed for volume "cfg" : configmap "later" not found'
    assert [e.message for e in err.value.errors][1] == \
        'MountVolume.SetUp failed for volume "keys" : secret "nope" not found'
    await client.create(CMS, {"metadata": {"name": "later"}, "data": {"k": "v"}}, NS)
    await client.create(SECRETS, {"metadata": {"name": "nope"}, "data": {}}, NS)
    paths = await manager.setup(p)
    assert read(f"{paths['cfg']}/k") == "v" and set(paths) == {"cfg", "keys", "scratch"}


async def test_missing_key_and_optional_sources(env) -> None:
    client, make, _, _ = env
    manager = make()
    await client.create(CMS, {"metadata": {"name": "cfg"}, "data": {"a": "1"}}, NS)
    bad = pod("u-key", [{"name": "cfg", "configMap": {"name": "cfg", "items": [{"key": "b", "path": "b"}]}}])
    with pytest.raises(VolumeError, match='^MountVolume.SetUp failed for volume "cfg" : configmap references '
                                          'non-existent config key: b$'):
        await manager.setup(bad)
    optional = pod("u-optional", [{"name": "gone", "configMap": {"name": "absent", "optional": True}},
                                  {"name": "part", "configMap": {"name": "cfg", "optional": True,
                                                                 "items": [{"key": "b", "path": "b"},
                                                                           {"key": "a", "path": "a"}]}}])
    paths = await manager.setup(optional)
    assert [n for n in os.listdir(paths["gone"]) if not n.startswith("..")] == []
    assert [n for n in os.listdir(paths["part"]) if not n.startswith("..")] == ["a"]


async def bound_claim(client: RestClient, name: str, pv_source: dict, *, node_affinity: str | None = None) -> None:
    pv_spec = {"capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteOnce"], **pv_source,
               "claimRef": {"namespace": NS, "name": name}}
    if node_affinity:
        pv_spec["nodeAffinity"] = {"required": {"nodeSelectorTerms": [{"matchExpressions": [
            {"key": "kubernetes.io/hostname", "operator": "In", "values": [node_affinity]}]}]}}
    await client.create(PVS, {"metadata": {"name": f"pv-{name}"}, "spec": pv_spec})
    claim = await client.create(PVCS, {"metadata": {"name": name}, "spec": {
        "accessModes": ["ReadWriteOnce"], "storageClassName": "", "resources": {"requests": {"storage": "1Gi"}},
        "volumeName": f"pv-{name}"}}, NS)
    claim["status"] = {"phase": "Bound"}
    await client.update_status(PVCS, claim, NS)
    pv = await client.get(PVS, f"pv-{name}")
    pv["spec"]["claimRef"]["uid"] = claim["metadata"]["uid"]
    await client.update(PVS, pv)


async def test_claims_resolve_to_their_volumes(env) -> None:
    client, make, _, tmp_path = env
    manager = make()
    with pytest.raises(VolumeError, match='^persistentvolumeclaim "nothing" not found$'):
        await manager.setup(pod("u-pvc0", [{"name": "d", "persistentVolumeClaim": {"claimName": "nothing"}}]))
    await client.create(PVCS, {"metadata": {"name": "pending"}, "spec": {
        "accessModes": ["ReadWriteOnce"], "storageClassName": "", "resources": {"requests": {"storage": "1Gi"}}}}, NS)
    with pytest.raises(VolumeError, match='^persistentvolumeclaim "pending" is not bound$') as err:
        await manager.setup(pod("u-pvc1", [{"name": "d", "persistentVolumeClaim": {"claimName": "pending"}}]))
    assert err.value.reason == "FailedMount"

    data = tmp_path / "hostdata"
    await bound_claim(client, "data", {"hostPath": {"path": str(data), "type": "DirectoryOrCreate"}})
    local = tmp_path / "localdisk"
    local.mkdir()
    await client.create(NODES, {"metadata": {"name": "n1", "labels": {"kubernetes.io/hostname": "n1"}}})
    await bound_claim(client, "fast", {"local": {"path": str(local)}}, node_affinity="n1")
    await bound_claim(client, "elsewhere", {"local": {"path": str(local)}}, node_affinity="n2")
    p = pod("u-pvc2", [{"name": "d", "persistentVolumeClaim": {"claimName": "data", "readOnly": True}},
                       {"name": "f", "persistentVolumeClaim": {"claimName": "fast"}}],
            containers=[{"name": "app", "image": "busybox",
                         "volumeMounts": [{"name": "d", "mountPath": "/d"}, {"name": "f", "mountPath": "/f"}]}])
    paths = await manager.setup(p)
    assert paths == {"d": str(data), "f": str(local)} and data.is_dir()
    mounts = manager.mounts(p, p["spec"]["containers"][0], paths, {})
    assert [(m.host_path, m.readonly) for m in mounts] == [(str(data), True), (str(local), False)]
    with pytest.raises(VolumeError, match='NodeAffinity check failed for volume "pv-elsewhere"'):
        await manager.setup(pod("u-pvc3", [{"name": "e", "persistentVolumeClaim": {"claimName": "elsewhere"}}]))

    (data / "keep").write_text("precious")
    await manager.teardown("u-pvc2")
    assert (data / "keep").read_text() == "precious" and local.is_dir()


@needs_root
async def test_teardown_by_a_restarted_manager_leaves_nothing(env) -> None:
    client, make, pods_dir, _ = env
    await client.create(SECRETS, {"metadata": {"name": "s"}, "data": {"k": b64("v")}}, NS)
    container = {"name": "app", "image": "busybox",
                 "volumeMounts": [{"name": "mem", "mountPath": "/m", "subPath": "sub"},
                                  {"name": "s", "mountPath": "/s"}]}
    p = pod("u-gone", [{"name": "mem", "emptyDir": {"medium": "Memory", "sizeLimit": "4Mi"}},
                       {"name": "s", "secret": {"secretName": "s"}}], containers=[container])
    first = make()
    paths = await first.setup(p)
    mounts = first.mounts(p, container, paths, {})
    assert mounts[0].host_path == str(pods_dir / "u-gone" / "volume-subpaths" / "mem" / "app" / "0")
    assert mounts[1].readonly
    assert len(mountutil.mounts_under(pods_dir / "u-gone")) == 3  # two tmpfs, one pinned subpath

    restarted = make()  # a new kubelet: knows nothing but the disk
    assert restarted.pod_uids_on_disk() == {"u-gone"}
    await restarted.teardown("u-gone")
    assert mountutil.mounts_under(pods_dir) == []
    assert not (pods_dir / "u-gone").exists() and restarted.pod_uids_on_disk() == set()
    await restarted.teardown("u-gone")  # idempotent


@needs_root
async def test_fs_group(env) -> None:
    client, make, _, _ = env
    await client.create(CMS, {"metadata": {"name": "cfg"}, "data": {"k": "v"}}, NS)
    p = pod("u-fsgroup", [{"name": "scratch", "emptyDir": {}}, {"name": "cfg", "configMap": {"name": "cfg"}}],
            fs_group=3456)
    paths = await make().setup(p)
    for name in ("scratch", "cfg"):
        st = os.stat(paths[name])
        assert st.st_gid == 3456 and st.st_mode & stat.S_ISGID, name
    st = os.stat(f"{paths['cfg']}/k")
    assert st.st_gid == 3456 and stat.S_IMODE(st.st_mode) == 0o644


async def test_unsupported_volume_types_fail_clearly(env) -> None:
    _, make, _, _ = env
    with pytest.raises(VolumeError, match='^MountVolume.SetUp failed for volume "n" : volume type nfs is not '
                                          'supported by this node$'):
        await make().setup(pod("u-nfs", [{"name": "n", "nfs": {"server": "s", "path": "/"}}]))


async def test_without_root_nothing_is_mounted(env) -> None:
    client, _, pods_dir, tmp_path = env
    await client.create(SECRETS, {"metadata": {"name": "s"}, "data": {"k": b64("v")}}, NS)
    manager = VolumeManager(client, pods_dir, "n1", data_dir=tmp_path, root=False)
    container = {"name": "app", "image": "busybox", "volumeMounts": [
        {"name": "mem", "mountPath": "/m", "subPathExpr": "$(POD)/x"}, {"name": "s", "mountPath": "/s"}]}
    p = pod("u-plain", [{"name": "mem", "emptyDir": {"medium": "Memory"}}, {"name": "s", "secret": {"secretName": "s"}}],
            containers=[container])
    paths = await manager.setup(p)
    assert read(f"{paths['s']}/k") == "v"
    mounts = manager.mounts(p, container, paths, {"POD": "pod-u-plain"})
    assert mounts[0].host_path == f"{paths['mem']}/pod-u-plain/x" and exists(mounts[0].host_path)
    assert mountutil.mounts_under(pods_dir) == []
    await manager.teardown("u-plain")
    assert not exists(pods_dir / "u-plain")
