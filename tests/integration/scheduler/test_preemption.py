"""Preemption with a real API server: a higher-priority pod that fits nowhere evicts a
lower-priority one (DisruptionTarget condition, graceful delete), is nominated to the node,
and binds there once the victim is gone; a PodDisruptionBudget steers the choice to the node
whose victim it does not protect."""

from __future__ import annotations

PODS = ("", "v1", "pods")
PDBS = ("policy", "v1", "poddisruptionbudgets")


async def _finish_deletions(sched) -> None:
    """What the victim's kubelet would do: remove pods whose graceful deletion began."""
    for p in (await sched.client.list(PODS, "default"))["items"]:
        if p["metadata"].get("deletionTimestamp"):
            await sched.client.delete(PODS, p["metadata"]["name"], "default", grace_period_seconds=0)


async def test_higher_priority_pod_preempts_and_binds_to_the_nominated_node(sched) -> None:
    await sched.add_node("only", cpu="1")
    await sched.start()
    await sched.add_pod("low", cpu="800m", priority=10, labels={"app": "low"})
    await sched.wait_bound("low")
    await sched.add_pod("high", cpu="800m", priority=1000, labels={"app": "high"})

    async def victim_marked() -> dict | None:
        low = await sched.client.get(PODS, "low", "default")
        cond = next((c for c in low["status"].get("conditions") or [] if c["type"] == "DisruptionTarget"), None)
        return low if cond and low["metadata"].get("deletionTimestamp") else None

    low = await sched.wait_for(victim_marked, message="low marked as a disruption target and deleted")
    cond = next(c for c in low["status"]["conditions"] if c["type"] == "DisruptionTarget")
    assert cond["reason"] == "PreemptionByScheduler"

    async def nominated() -> bool:
        high = await sched.client.get(PODS, "high", "default")
        return high["status"].get("nominatedNodeName") == "only"

    await sched.wait_for(nominated, message="high nominated to node only")
    await _finish_deletions(sched)
    assert (await sched.wait_bound("high"))["high"] == "only"


async def test_pdb_protected_victim_is_spared(sched) -> None:
    await sched.add_node("a", cpu="1")
    await sched.add_node("b", cpu="1")
    await sched.start()
    await sched.add_pod("guarded", cpu="800m", priority=10, labels={"app": "guarded"}, nodeName="a")
    await sched.add_pod("free", cpu="800m", priority=10, labels={"app": "free"}, nodeName="b")
    pdb = await sched.client.create(PDBS, {"apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
                                           "metadata": {"name": "guard"},
                                           "spec": {"minAvailable": 1,
                                                    "selector": {"matchLabels": {"app": "guarded"}}}}, "default")
    pdb["status"] = {"currentHealthy": 1, "desiredHealthy": 1, "expectedPods": 1, "disruptionsAllowed": 0,
                     "observedGeneration": pdb["metadata"].get("generation", 1)}
    await sched.client.update_status(PDBS, pdb, "default")
    await sched.add_pod("urgent", cpu="800m", priority=1000, labels={"app": "urgent"})

    async def nominated() -> str | None:
        return (await sched.client.get(PODS, "urgent", "default"))["status"].get("nominatedNodeName")

    assert await sched.wait_for(nominated, message="urgent nominated") == "b"
    guarded = await sched.client.get(PODS, "guarded", "default")
    assert not guarded["metadata"].get("deletionTimestamp")
    await _finish_deletions(sched)
    assert (await sched.wait_bound("urgent"))["urgent"] == "b"


async def test_room_nominated_to_a_higher_priority_pod_is_left_for_it(sched) -> None:
    await sched.add_node("roomy", cpu="4")
    await sched.add_node("small", cpu="1")
    await sched.start()
    # A high-priority pod that was nominated to "roomy" (it preempted there) and is waiting.
    await sched.add_pod("waiting", cpu="3500m", priority=1000, nodeSelector={"not": "yet"})
    await sched.client.patch(PODS, "waiting", {"status": {"nominatedNodeName": "roomy"}}, "default",
                             patch_type="merge", subresource="status")

    async def queued_nomination() -> bool:
        return sched.schedulers[0].queue.nominated_node({"metadata": {"name": "waiting", "namespace": "default"}}) \
            == "roomy"

    await sched.wait_for(queued_nomination, message="the nomination known to the queue")
    # "roomy" looks best for a lower-priority pod (more free cpu), but 3.5 of its 4 cpu are promised.
    await sched.add_pod("later", cpu="800m", priority=10)
    assert (await sched.wait_bound("later"))["later"] == "small"
