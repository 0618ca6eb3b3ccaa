"""Storage object in-use protection against a real API server: the StorageObjectInUseProtection
admission plugin puts ``kubernetes.io/pvc-protection`` / ``kubernetes.io/pv-protection`` on new
claims and volumes; the ``pvc-protection`` controller keeps a deleted claim while a scheduled pod
uses it (found in the informer cache, or by a live list when the cache lags) and lets it go
when the pod is gone; the ``pv-protection`` controller keeps a deleted volume while it is
Bound.  Both add their finalizer to objects that lack it.  The real kubectl sees a claim in use
as Terminating."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kubectl_cli import kubectl_in_thread, needs_kubectl

from pybernetes.client.errors import NotFound

PODS = ("", "v1", "pods")
PVS = ("", "v1", "persistentvolumes")
PVCS = ("", "v1", "persistentvolumeclaims")
NS = "default"
PVC_FINALIZER = "kubernetes.io/pvc-protection"
PV_FINALIZER = "kubernetes.io/pv-protection"
FAST = {"pv_resync_period": 0.5}


def claim(name: str, *, owner: dict[str, Any] | None = None) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "namespace": NS}
    if owner is not None:
        meta["ownerReferences"] = [{"apiVersion": "v1", "kind": "Pod", "name": owner["metadata"]["name"],
                                    "uid": owner["metadata"]["uid"], "controller": True}]
    return {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": meta,
            "spec": {"accessModes": ["ReadWriteOnce"], "storageClassName": "",
                     "resources": {"requests": {"storage": "1Gi"}}}}


def volume(name: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "PersistentVolume", "metadata": {"name": name},
            "spec": {"capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteOnce"],
                     "hostPath": {"path": f"/tmp/pv-{name}"}, "persistentVolumeReclaimPolicy": "Retain"}}


def pod(name: str, *, claims: tuple[str, ...] = (), ephemeral: tuple[str, ...] = (),
        node: str | None = "node-1") -> dict[str, Any]:
    volumes: list[dict[str, Any]] = [{"name": f"v{i}", "persistentVolumeClaim": {"claimName": c}}
                                     for i, c in enumerate(claims)]
    volumes += [{"name": v, "ephemeral": {"volumeClaimTemplate": {"spec": {
        "accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}}} for v in ephemeral]
    spec: dict[str, Any] = {"containers": [{"name": "c", "image": "busybox"}], "volumes": volumes}
    if node:
        spec["nodeName"] = node
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": NS}, "spec": spec}


async def get(cluster: Any, res: Any, name: str, namespace: str | None = NS) -> dict[str, Any] | None:
    try:
        return await cluster.client.get(res, name, namespace)
    except NotFound:
        return None


def finalizers(obj: dict[str, Any] | None) -> list[str]:
    return list(((obj or {}).get("metadata") or {}).get("finalizers") or [])


async def wait_gone(cluster: Any, res: Any, name: str, namespace: str | None = NS) -> None:
    async def gone() -> bool:
        return await get(cluster, res, name, namespace) is None
    await cluster.wait_for(gone, message=f"{name} deleted")


async def settled_on(cluster: Any, ctl: Any, res: Any, name: str, namespace: str | None = NS) -> dict[str, Any]:
    """Wait until ``ctl`` has synced once more after the object started being deleted (so a
    wrong removal of the finalizer would have happened), then return the object."""
    key = f"{namespace}/{name}" if namespace else name
    cache = (ctl.claims if res == PVCS else ctl.volumes).indexer

    def deleting_in_cache() -> bool:
        cached = cache.get(key)
        return bool(cached and cached["metadata"].get("deletionTimestamp"))
    await cluster.wait_for(deleting_in_cache, message=f"{ctl.name} saw {name} deleted")
    before = ctl.syncs + ctl.sync_errors
    ctl.enqueue(key)
    await cluster.wait_for(lambda: ctl.syncs + ctl.sync_errors > before, message=f"{ctl.name} synced {name}")
    obj = await get(cluster, res, name, namespace)
    assert obj is not None, f"{name} was deleted although in use"
    return obj


async def delete_pod_now(cluster: Any, name: str) -> None:
    await cluster.client.delete(PODS, name, NS, grace_period_seconds=0)


# -- admission -----------------------------------------------------------------------------------


async def test_created_claims_and_volumes_carry_their_protection_finalizer(cluster: Any) -> None:
    body = claim("data")
    body["metadata"]["finalizers"] = ["example.com/mine"]
    created = await cluster.client.create(PVCS, body, NS)
    assert finalizers(created) == ["example.com/mine", PVC_FINALIZER]
    pv = await cluster.client.create(PVS, volume("disk"))
    assert finalizers(pv) == [PV_FINALIZER]
    again = await cluster.client.create(PVCS, {**claim("twice"), "metadata": {
        "name": "twice", "namespace": NS, "finalizers": [PVC_FINALIZER]}}, NS)
    assert finalizers(again) == [PVC_FINALIZER]


# -- pvc-protection ------------------------------------------------------------------------------


async def test_a_claim_in_use_waits_for_its_pod(cluster: Any) -> None:
    cm = await cluster.start("pvc-protection")
    ctl = cm.controllers["pvc-protection"]
    await cluster.client.create(PVCS, claim("data"), NS)
    await cluster.client.create(PODS, pod("user", claims=("data",)), NS)
    await cluster.wait_for(lambda: ctl.pods.indexer.get(f"{NS}/user"), message="pod in the cache")
    await cluster.client.delete(PVCS, "data", NS)
    kept = await settled_on(cluster, ctl, PVCS, "data")
    assert finalizers(kept) == [PVC_FINALIZER]
    await delete_pod_now(cluster, "user")
    await wait_gone(cluster, PVCS, "data")


async def test_a_claim_no_pod_uses_goes_at_once(cluster: Any) -> None:
    await cluster.start("pvc-protection")
    await cluster.client.create(PVCS, claim("idle"), NS)
    await cluster.client.create(PVCS, claim("pending-user"), NS)
    # a pod that is not scheduled does not hold a claim (the scheduler refuses a deleted claim)
    await cluster.client.create(PODS, pod("unscheduled", claims=("pending-user",), node=None), NS)
    await cluster.client.delete(PVCS, "idle", NS)
    await cluster.client.delete(PVCS, "pending-user", NS)
    await wait_gone(cluster, PVCS, "idle")
    await wait_gone(cluster, PVCS, "pending-user")


async def test_a_finished_pod_holds_its_claim_until_it_is_deleted(cluster: Any) -> None:
    cm = await cluster.start("pvc-protection")
    ctl = cm.controllers["pvc-protection"]
    await cluster.client.create(PVCS, claim("results"), NS)
    await cluster.client.create(PODS, pod("job-pod", claims=("results",)), NS)
    await cluster.node.mark_succeeded("job-pod", NS)
    await cluster.client.delete(PVCS, "results", NS)
    assert finalizers(await settled_on(cluster, ctl, PVCS, "results")) == [PVC_FINALIZER]
    await delete_pod_now(cluster, "job-pod")
    await wait_gone(cluster, PVCS, "results")


async def test_a_pod_missing_from_the_cache_is_found_by_the_live_list(cluster: Any) -> None:
    cm = await cluster.start("pvc-protection")
    ctl = cm.controllers["pvc-protection"]
    await cluster.client.create(PVCS, claim("fresh"), NS)
    await cluster.client.create(PODS, pod("new-user", claims=("fresh",)), NS)
    await cluster.wait_for(lambda: ctl.pods.indexer.get(f"{NS}/new-user"), message="pod in the cache")
    ctl.pods.indexer.delete(f"{NS}/new-user")  # a cache that has not seen the pod yet
    lists = ctl.live_lists
    await cluster.client.delete(PVCS, "fresh", NS)
    kept = await settled_on(cluster, ctl, PVCS, "fresh")
    assert finalizers(kept) == [PVC_FINALIZER]
    assert ctl.live_lists > lists
    await delete_pod_now(cluster, "new-user")  # its deletion event still re-checks the claim
    await wait_gone(cluster, PVCS, "fresh")


async def test_an_ephemeral_volume_claim_is_held_by_its_pod_only(cluster: Any) -> None:
    cm = await cluster.start("pvc-protection")
    ctl = cm.controllers["pvc-protection"]
    owner = await cluster.client.create(PODS, pod("eph", ephemeral=("scratch",)), NS)
    await cluster.client.create(PVCS, claim("eph-scratch", owner=owner), NS)
    await cluster.client.delete(PVCS, "eph-scratch", NS)
    assert finalizers(await settled_on(cluster, ctl, PVCS, "eph-scratch")) == [PVC_FINALIZER]
    # a claim of the same name that the pod does not control is not held by it
    await cluster.client.create(PODS, pod("eph2", ephemeral=("scratch",)), NS)
    await cluster.client.create(PVCS, claim("eph2-scratch"), NS)
    await cluster.client.delete(PVCS, "eph2-scratch", NS)
    await wait_gone(cluster, PVCS, "eph2-scratch")
    await delete_pod_now(cluster, "eph")
    await wait_gone(cluster, PVCS, "eph-scratch")


async def test_existing_objects_without_the_finalizer_get_it(cluster: Any) -> None:
    await cluster.client.create(PVCS, claim("old"), NS)
    await cluster.client.create(PVS, volume("old-disk"))
    await cluster.client.patch(PVCS, "old", {"metadata": {"finalizers": None}}, NS)
    await cluster.client.patch(PVS, "old-disk", {"metadata": {"finalizers": None}}, None)
    assert finalizers(await get(cluster, PVCS, "old")) == []
    await cluster.start("pvc-protection", "pv-protection")

    async def protected() -> bool:
        return (finalizers(await get(cluster, PVCS, "old")) == [PVC_FINALIZER]
                and finalizers(await get(cluster, PVS, "old-disk", None)) == [PV_FINALIZER])
    await cluster.wait_for(protected, message="finalizers added to the old claim and volume")


# -- pv-protection -------------------------------------------------------------------------------


async def test_a_bound_volume_waits_for_its_claim(cluster: Any) -> None:
    cm = await cluster.start("persistentvolume-binder", "pvc-protection", "pv-protection", options=FAST)
    ctl = cm.controllers["pv-protection"]
    await cluster.client.create(PVS, volume("held"))
    await cluster.client.create(PVCS, claim("holder"), NS)

    async def bound() -> bool:
        pv = await get(cluster, PVS, "held", None)
        return ((pv or {}).get("status") or {}).get("phase") == "Bound"
    await cluster.wait_for(bound, message="volume bound")
    await cluster.client.delete(PVS, "held")
    kept = await settled_on(cluster, ctl, PVS, "held", None)
    assert finalizers(kept) == [PV_FINALIZER]
    assert kept["status"]["phase"] == "Bound"
    await cluster.client.delete(PVCS, "holder", NS)  # released by the binder, then let go
    await wait_gone(cluster, PVS, "held", None)


async def test_a_volume_that_is_not_bound_goes_at_once(cluster: Any) -> None:
    await cluster.start("persistentvolume-binder", "pv-protection", options=FAST)
    await cluster.client.create(PVS, volume("spare"))

    async def available() -> bool:
        pv = await get(cluster, PVS, "spare", None)
        return ((pv or {}).get("status") or {}).get("phase") == "Available"
    await cluster.wait_for(available, message="volume available")
    await cluster.client.delete(PVS, "spare")
    await wait_gone(cluster, PVS, "spare", None)


# -- what kubectl shows --------------------------------------------------------------------------


@needs_kubectl
async def test_kubectl_sees_a_claim_in_use_terminating(cluster: Any, tmp_path: Path) -> None:
    async def kubectl(*args: str) -> str:
        result = await kubectl_in_thread(cluster.url, tmp_path, "-n", NS, *args)
        assert result.returncode == 0, f"kubectl {' '.join(args)}: {result.stdout}{result.stderr}"
        return result.stdout

    await cluster.node.create_node("node-1")
    cluster.node.auto_run(NS)  # pods run, and graceful deletions finish as on a kubelet
    cm = await cluster.start("pvc-protection")
    ctl = cm.controllers["pvc-protection"]
    await cluster.client.create(PVCS, claim("data"), NS)
    await cluster.client.create(PODS, pod("user", claims=("data",)), NS)
    await cluster.wait_for(lambda: ctl.pods.indexer.get(f"{NS}/user"), message="pod in the cache")
    await kubectl("delete", "pvc", "data", "--wait=false")
    await settled_on(cluster, ctl, PVCS, "data")
    row = (await kubectl("get", "pvc", "data", "--no-headers")).split()
    assert row[:2] == ["data", "Terminating"], row
    assert PVC_FINALIZER in await kubectl("get", "pvc", "data", "-o", "jsonpath={.metadata.finalizers}")
    await kubectl("delete", "pod", "user", "--timeout=60s")
    await kubectl("wait", "--for=delete", "pvc/data", "--timeout=60s")
    assert await get(cluster, PVCS, "data") is None
