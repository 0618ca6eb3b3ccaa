"""VolumeBinding and VolumeRestrictions against a real API server: pods follow their bound
volumes' node affinity, WaitForFirstConsumer claims get a PV of a feasible node (claimRef
written at PreBind, the test playing the PV controller) or the selected-node annotation for
provisioning, and pods with unbound immediate claims, missing claims or a ReadWriteOncePod
claim in use stay Pending with upstream's messages."""

from __future__ import annotations

from typing import Any

from pybernetes.controllers.manager import ControllerManager

PODS = ("", "v1", "pods")
PVCS = ("", "v1", "persistentvolumeclaims")
PVS = ("", "v1", "persistentvolumes")
CLASSES = ("storage.k8s.io", "v1", "storageclasses")
SELECTED_NODE = "volume.kubernetes.io/selected-node"


async def test_bound_claim_places_the_pod_on_its_volume_node(sched: Any, vols: Any) -> None:
    for n in ("node-a", "node-b", "node-c"):
        await sched.add_node(n)
    await vols.storage_class("local")
    await vols.bound_claim("data", "pv-data", sc="local", host="node-b")
    await sched.start()
    await vols.pod("app", "data")
    assert (await sched.wait_bound("app"))["app"] == "node-b"


async def test_wait_for_first_consumer_claim_gets_the_pv_of_the_free_node(sched: Any, vols: Any) -> None:
    await sched.add_node("full", cpu="1")
    await sched.add_node("free", cpu="4")
    await vols.storage_class("local")
    await vols.pv("pv-full", sc="local", host="full")
    await vols.pv("pv-free", sc="local", host="free")
    await vols.pvc("data", sc="local")
    await sched.start()
    await vols.pod("app", "data", cpu="2")

    async def claimed() -> dict | None:
        pv = await sched.client.get(PVS, "pv-free")
        return pv if (pv["spec"].get("claimRef") or {}).get("name") == "data" else None

    pv = await sched.wait_for(claimed, message="PreBind to set pv-free's claimRef")
    claim = await sched.client.get(PVCS, "data", "default")
    assert pv["spec"]["claimRef"]["uid"] == claim["metadata"]["uid"]
    assert pv["spec"]["claimRef"]["namespace"] == "default"
    assert pv["metadata"]["annotations"]["pv.kubernetes.io/bound-by-controller"] == "yes"
    assert "claimRef" not in (await sched.client.get(PVS, "pv-full"))["spec"]
    assert await sched.node_of("app") is None  # PreBind waits for the PV controller
    await vols.bind("data", "pv-free")  # the PV controller's part
    assert (await sched.wait_bound("app"))["app"] == "free"


async def test_unbound_immediate_claim_keeps_the_pod_pending(sched: Any, vols: Any) -> None:
    await sched.add_node("node-a")
    await sched.add_node("node-b")
    await vols.storage_class("fast", mode="Immediate", provisioner="example.com/fast")
    await vols.pvc("data", sc="fast")
    await sched.start()
    await vols.pod("app", "data")
    cond = await vols.rejected("app")
    assert cond["reason"] == "Unschedulable"
    assert cond["message"] == "0/2 nodes are available: pod has unbound immediate PersistentVolumeClaims."


async def test_missing_claim_keeps_the_pod_pending(sched: Any, vols: Any) -> None:
    await sched.add_node("node-a")
    await sched.start()
    await vols.pod("app", "nope")
    cond = await vols.rejected("app")
    assert cond["message"] == '0/1 nodes are available: persistentvolumeclaim "nope" not found.'


async def test_read_write_once_pod_claim_in_use(sched: Any, vols: Any) -> None:
    await sched.add_node("node-a")
    await sched.add_node("node-b")
    await vols.storage_class("csi", mode="Immediate", provisioner="example.com/csi")
    await vols.bound_claim("solo", "pv-solo", sc="csi", modes=("ReadWriteOncePod",))
    await sched.start()
    await vols.pod("first", "solo")
    await sched.wait_bound("first")
    await vols.pod("second", "solo")
    cond = await vols.rejected("second")
    assert cond["message"].startswith("0/2 nodes are available: 2 node has pod using PersistentVolumeClaim "
                                      "with the same name and ReadWriteOncePod access mode.")
    # Once the first pod is gone the claim is free (a Pod Delete event requeues the second).
    await sched.client.delete(PODS, "first", "default", grace_period_seconds=0)
    await sched.wait_bound("second")


async def test_provisioned_claim_gets_the_selected_node(sched: Any, vols: Any) -> None:
    await sched.add_node("node-a", cpu="1")
    await sched.add_node("node-b", cpu="4")
    await vols.storage_class("dynamic", provisioner="example.com/csi")
    await vols.pvc("data", sc="dynamic")
    await sched.start()
    await vols.pod("app", "data", cpu="2")

    async def selected() -> str | None:
        claim = await sched.client.get(PVCS, "data", "default")
        return ((claim["metadata"].get("annotations") or {}).get(SELECTED_NODE))

    assert await sched.wait_for(selected, message="the selected-node annotation") == "node-b"
    # The provisioner creates the volume there and the PV controller binds it.
    claim = await sched.client.get(PVCS, "data", "default")
    await vols.pv("pvc-data", sc="dynamic", host="node-b", claim=claim)
    await vols.bind("data", "pvc-data")
    assert (await sched.wait_bound("app"))["app"] == "node-b"


async def test_scheduler_and_pv_controller_bind_a_waiting_claim_together(sched: Any, vols: Any) -> None:
    """No test plays the PV controller here: the real persistentvolume-binder completes what
    the scheduler's PreBind started, and the pod is bound to the node of the chosen volume."""
    manager = ControllerManager(sched.client, ["persistentvolume-binder"])
    manager.freeze_after_sync = False
    await manager.start()
    try:
        await sched.add_node("full", cpu="1")
        await sched.add_node("free", cpu="4")
        await vols.storage_class("local")
        await vols.pv("pv-full", sc="local", host="full")
        await vols.pv("pv-free", sc="local", host="free")
        await vols.pvc("data", sc="local")
        await sched.start()
        await vols.pod("app", "data", cpu="2")
        assert (await sched.wait_bound("app"))["app"] == "free"
        claim = await sched.client.get(PVCS, "data", "default")
        assert claim["spec"]["volumeName"] == "pv-free" and claim["status"]["phase"] == "Bound"
        assert (await sched.client.get(PVS, "pv-free"))["status"]["phase"] == "Bound"
        assert (await sched.client.get(PVS, "pv-full"))["status"]["phase"] == "Available"
    finally:
        await manager.stop()
