"""PodGC against a real API server: the terminated-pod threshold, orphaned pods on deleted
nodes (quarantine on a fake clock, DisruptionTarget + Failed before the forced delete),
terminating pods that were never scheduled, and terminating pods on out-of-service nodes."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from pybernetes.client.errors import NotFound
from pybernetes.controllers.base import FakeClock

PODS = ("", "v1", "pods")
NODES = ("", "v1", "nodes")
NS = "default"


def pod(name: str, node: str | None = None, finalizers: list[str] | None = None) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "namespace": NS}
    if finalizers:
        meta["finalizers"] = finalizers
    spec: dict[str, Any] = {"containers": [{"name": "c", "image": "busybox"}]}
    if node:
        spec["nodeName"] = node
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": spec}


async def pod_names(cluster: Any) -> set[str]:
    return {p["metadata"]["name"] for p in (await cluster.client.list(PODS, NS))["items"]}


async def exists(cluster: Any, name: str) -> bool:
    try:
        await cluster.client.get(PODS, name, NS)
    except NotFound:
        return False
    return True


async def passes(cluster: Any, ctl: Any, count: int = 2) -> None:
    """Wait for ``count`` more sweeps (the first may have started before the caller's change)."""
    target = ctl.passes + count
    await cluster.wait_for(lambda: ctl.passes >= target, message=f"{count} podgc passes")


async def test_terminated_pods_beyond_threshold_are_deleted_evicted_and_oldest_first(cluster: Any) -> None:
    await cluster.node.create_node("node-1")
    for name in ("p1", "p2", "p3", "p4", "p5"):
        await cluster.client.create(PODS, pod(name), NS)
    for name in ("p1", "p2", "p3"):
        await cluster.node.mark_succeeded(name, NS)
    evicted = await cluster.node.mark_failed("p4", NS)
    evicted["status"]["reason"] = "Evicted"
    await cluster.client.update_status(PODS, evicted, NS)
    await cluster.node.mark_running("p5", NS)
    # equal creation seconds are ordered by name: p1 is the oldest; the evicted p4 goes first
    ctl = (await cluster.start("podgc", options={"podgc_interval": 0.1, "terminated_pod_gc_threshold": 2}))\
        .controllers["podgc"]
    await cluster.wait_for(lambda: _names_are(cluster, {"p2", "p3", "p5"}), message="p1 and p4 collected")
    await passes(cluster, ctl)
    assert await pod_names(cluster) == {"p2", "p3", "p5"}


async def _names_are(cluster: Any, names: set[str]) -> bool:
    return await pod_names(cluster) == names


async def test_pods_on_a_deleted_node_are_failed_and_force_deleted_after_quarantine(cluster: Any) -> None:
    clock = FakeClock()
    await cluster.node.create_node("node-a")
    await cluster.node.create_node("node-b")
    await cluster.client.create(PODS, pod("on-a", node="node-a"), NS)
    await cluster.client.create(PODS, pod("on-b", node="node-b"), NS)
    await cluster.node.mark_running("on-a", NS)
    await cluster.node.mark_running("on-b", NS)
    ctl = (await cluster.start("podgc", clock=clock,
                               options={"podgc_interval": 0.1, "podgc_orphan_quarantine": 40}))\
        .controllers["podgc"]
    seen: list[tuple[str, dict[str, Any]]] = []
    start_rv = (await cluster.client.list(PODS, NS))["metadata"]["resourceVersion"]

    async def watch() -> None:
        async with cluster.client.watch(PODS, NS, resource_version=start_rv) as stream:
            async for etype, obj in stream:
                if obj["metadata"]["name"] == "on-a":
                    seen.append((etype, obj))

    watcher = asyncio.create_task(watch())
    try:
        await cluster.client.delete(NODES, "node-a")
        await cluster.wait_for(lambda: "node-a" not in ctl.nodes.indexer, message="node-a gone from the cache")
        await passes(cluster, ctl, 3)
        assert await exists(cluster, "on-a")  # still quarantined
        clock.advance(41)
        await cluster.wait_for(lambda: _gone(cluster, "on-a"), message="the orphan deleted")
        await cluster.wait_for(lambda: any(e == "DELETED" for e, _ in seen), message="the DELETED event")
    finally:
        watcher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watcher
    failed = [obj for etype, obj in seen if etype == "MODIFIED" and obj["status"].get("phase") == "Failed"]
    assert failed, [(e, o["status"].get("phase")) for e, o in seen]
    cond = next(c for c in failed[0]["status"]["conditions"] if c["type"] == "DisruptionTarget")
    assert (cond["status"], cond["reason"]) == ("True", "DeletionByPodGC")
    assert await exists(cluster, "on-b")


async def _gone(cluster: Any, name: str) -> bool:
    return not await exists(cluster, name)


async def test_node_back_before_quarantine_ends_keeps_its_pods(cluster: Any) -> None:
    clock = FakeClock()
    await cluster.client.create(PODS, pod("early", node="late-node"), NS)  # node not registered yet
    ctl = (await cluster.start("podgc", clock=clock,
                               options={"podgc_interval": 0.1, "podgc_orphan_quarantine": 40}))\
        .controllers["podgc"]
    await passes(cluster, ctl)
    await cluster.node.create_node("late-node")
    await cluster.wait_for(lambda: "late-node" in ctl.nodes.indexer, message="node in the cache")
    clock.advance(100)
    await passes(cluster, ctl)
    assert await exists(cluster, "early")


async def test_unscheduled_terminating_pod_is_failed_and_force_deleted(cluster: Any) -> None:
    await cluster.client.create(PODS, pod("floating", finalizers=["example.com/hold"]), NS)
    await cluster.client.delete(PODS, "floating", NS)
    await cluster.start("podgc", options={"podgc_interval": 0.1})

    async def failed_and_forced() -> bool:
        obj = await cluster.client.get(PODS, "floating", NS)
        return obj["status"].get("phase") == "Failed" and obj["metadata"].get("deletionGracePeriodSeconds") == 0

    await cluster.wait_for(failed_and_forced, message="the pod Failed and force-deleted")
    obj = await cluster.client.get(PODS, "floating", NS)
    obj["metadata"]["finalizers"] = []
    await cluster.client.update(PODS, obj, NS)
    await cluster.wait_for(lambda: _gone(cluster, "floating"), message="the pod gone once its finalizer is")


async def test_terminating_pod_on_out_of_service_node_is_force_deleted(cluster: Any) -> None:
    taint = {"key": "node.kubernetes.io/out-of-service", "value": "nodeshutdown", "effect": "NoExecute"}
    await cluster.node.create_node("dead", ready=False, taints=[taint])
    await cluster.node.create_node("alive")
    for name, node in (("stuck", "dead"), ("healthy", "alive")):
        await cluster.client.create(PODS, pod(name, node=node), NS)
        await cluster.node.mark_running(name, NS)
        await cluster.client.delete(PODS, name, NS, grace_period_seconds=300)
    ctl = (await cluster.start("podgc", options={"podgc_interval": 0.1})).controllers["podgc"]
    await cluster.wait_for(lambda: _gone(cluster, "stuck"), message="the pod on the out-of-service node deleted")
    await passes(cluster, ctl)
    assert await exists(cluster, "healthy")  # its kubelet will finish it
