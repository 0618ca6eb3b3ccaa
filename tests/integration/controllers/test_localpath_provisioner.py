"""The local-path provisioner with the PV binder against a real API server: the default class
``local-path`` exists, a claim without a class gets it (DefaultStorageClass admission), waits
for its first consumer, is provisioned on the scheduler's selected node and ends Bound; once
the claim is gone the node's reclaimer deletes the directory and the PV (another node's
reclaimer leaves them alone)."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from pybernetes.client.errors import NotFound
from pybernetes.kubelet.volumes.localpath import LocalPathReclaimer

PVS = ("", "v1", "persistentvolumes")
PVCS = ("", "v1", "persistentvolumeclaims")
CLASSES = ("storage.k8s.io", "v1", "storageclasses")
NODES = ("", "v1", "nodes")
EVENTS = ("", "v1", "events")
NS = "default"
DEFAULT = "storageclass.kubernetes.io/is-default-class"


def claim(name: str, *, storage_class: str | None = None, mode: str | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "2Gi"}}}
    if storage_class is not None:
        spec["storageClassName"] = storage_class
    if mode:
        spec["volumeMode"] = mode
    return {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": name}, "spec": spec}


async def start(cluster: Any, tmp_path: Any) -> None:
    await cluster.start("persistentvolume-binder", "local-path-provisioner", "pvc-protection", "pv-protection",
                        options={"pv_resync_period": 0.3, "local_path_dir": str(tmp_path / "storage")})


async def get_or_none(cluster: Any, res: tuple[str, str, str], name: str, ns: str | None = None) -> Any:
    try:
        return await cluster.client.get(res, name, ns)
    except NotFound:
        return None


async def select_node(cluster: Any, name: str, node: str) -> None:
    await cluster.client.patch(PVCS, name, {"metadata": {"annotations": {
        "volume.kubernetes.io/selected-node": node}}}, NS)


async def wait_event(cluster: Any, name: str, reason: str) -> dict[str, Any]:
    async def check() -> Any:
        items = (await cluster.client.list(EVENTS, NS))["items"]
        found = [e for e in items if e["involvedObject"].get("name") == name and e.get("reason") == reason]
        return found[0] if found else None
    return await cluster.wait_for(check, message=f"event {reason} about {name}")


async def test_a_claim_is_provisioned_bound_and_reclaimed(cluster: Any, tmp_path: Any) -> None:
    await cluster.client.create(NODES, {"metadata": {"name": "n1", "labels": {"kubernetes.io/hostname": "n1-host"}}})
    await start(cluster, tmp_path)
    sc = await cluster.wait_for(lambda: get_or_none(cluster, CLASSES, "local-path"), message="class local-path")
    assert (sc["provisioner"], sc["volumeBindingMode"], sc["reclaimPolicy"]) == \
        ("pybernetes.io/local-path", "WaitForFirstConsumer", "Delete")
    assert sc["metadata"]["annotations"][DEFAULT] == "true"

    created = await cluster.client.create(PVCS, claim("data"), NS)
    assert created["spec"]["storageClassName"] == "local-path"  # the DefaultStorageClass admission
    explicit_none = await cluster.client.create(PVCS, claim("none", storage_class=""), NS)
    assert explicit_none["spec"]["storageClassName"] == ""

    await wait_event(cluster, "data", "WaitForFirstConsumer")
    assert (await cluster.client.list(PVS))["items"] == []
    await select_node(cluster, "data", "n1")

    async def bound() -> Any:
        pvc = await cluster.client.get(PVCS, "data", NS)
        return pvc if (pvc.get("status") or {}).get("phase") == "Bound" else None
    pvc = await cluster.wait_for(bound, message="claim Bound")
    uid = created["metadata"]["uid"]
    assert pvc["spec"]["volumeName"] == f"pvc-{uid}"
    pv = await cluster.client.get(PVS, f"pvc-{uid}")
    path = str(tmp_path / "storage" / f"pvc-{uid}_default_data")
    assert pv["spec"]["hostPath"] == {"path": path, "type": "DirectoryOrCreate"}
    assert pv["spec"]["nodeAffinity"]["required"]["nodeSelectorTerms"] == [{"matchExpressions": [
        {"key": "kubernetes.io/hostname", "operator": "In", "values": ["n1-host"]}]}]
    assert pv["spec"]["capacity"] == {"storage": "2Gi"} and pv["spec"]["accessModes"] == ["ReadWriteOnce"]
    assert pv["spec"]["persistentVolumeReclaimPolicy"] == "Delete" and pv["spec"]["storageClassName"] == "local-path"
    assert pv["spec"]["claimRef"]["uid"] == uid
    assert pv["metadata"]["annotations"]["pv.kubernetes.io/provisioned-by"] == "pybernetes.io/local-path"
    assert pv["metadata"]["annotations"]["pybernetes.io/local-path-node"] == "n1"
    assert (await wait_event(cluster, "data", "ProvisioningSucceeded"))["message"] == \
        f"Successfully provisioned volume pvc-{uid}"

    # the node wrote data there; the claim goes: only n1's reclaimer removes it, then the PV
    (tmp_path / "storage" / f"pvc-{uid}_default_data").mkdir(parents=True)
    (tmp_path / "storage" / f"pvc-{uid}_default_data" / "file").write_text("data")
    other = LocalPathReclaimer(cluster.client, "n2")
    in_use = {("default", "data")}  # a pod on n1 still has the claim mounted
    mine = LocalPathReclaimer(cluster.client, "n1", claim_in_use=lambda ns, name: (ns, name) in in_use,
                              busy_retry=0.2)
    tasks = [asyncio.create_task(other.run()), asyncio.create_task(mine.run())]
    try:
        await cluster.client.delete(PVCS, "data", NS)

        async def released() -> Any:
            pv = await get_or_none(cluster, PVS, f"pvc-{uid}")
            return pv is not None and (pv.get("status") or {}).get("phase") == "Released"

        await cluster.wait_for(released, message="the PV Released")
        # looked at again and again, and kept while the pod uses it
        await cluster.wait_for(lambda: mine.kept >= 3, message="the reclaimer kept the volume in use")
        assert (tmp_path / "storage" / f"pvc-{uid}_default_data" / "file").read_text() == "data"
        assert mine.reclaimed == 0
        in_use.clear()  # the pod is gone
        await cluster.wait_for(lambda: mine.reclaimed == 1, message="n1 reclaimed the volume")
        await cluster.wait_for(lambda: _gone(cluster, f"pvc-{uid}"), message="PV deleted")
        assert not (tmp_path / "storage" / f"pvc-{uid}_default_data").exists()
        assert other.reclaimed == 0
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task


async def _gone(cluster: Any, name: str) -> bool:
    return await get_or_none(cluster, PVS, name) is None


async def test_no_second_default_and_block_claims_fail(cluster: Any, tmp_path: Any) -> None:
    await cluster.client.create(CLASSES, {"metadata": {"name": "standard", "annotations": {DEFAULT: "true"}},
                                          "provisioner": "example.com/disk"})
    await cluster.client.create(NODES, {"metadata": {"name": "n1"}})
    await start(cluster, tmp_path)
    sc = await cluster.wait_for(lambda: get_or_none(cluster, CLASSES, "local-path"), message="class local-path")
    assert DEFAULT not in (sc["metadata"].get("annotations") or {})
    assert (await cluster.client.create(PVCS, claim("plain"), NS))["spec"]["storageClassName"] == "standard"

    await cluster.client.create(PVCS, claim("raw", storage_class="local-path", mode="Block"), NS)
    await select_node(cluster, "raw", "n1")
    event = await wait_event(cluster, "raw", "ProvisioningFailed")
    assert "support only volumeMode Filesystem" in event["message"]
    await cluster.client.create(PVCS, claim("nowhere", storage_class="local-path"), NS)
    await select_node(cluster, "nowhere", "ghost")
    assert 'node "ghost" not found' in (await wait_event(cluster, "nowhere", "ProvisioningFailed"))["message"]
    assert (await cluster.client.list(PVS))["items"] == []
