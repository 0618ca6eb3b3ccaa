"""VolumeZone against a real API server: a pod whose claim is bound to a PV labelled with a
zone lands on a node of that zone, and stays Pending with upstream's message while no node is
in the PV's zone (until one is added)."""

from __future__ import annotations

from typing import Any

ZONE = "topology.kubernetes.io/zone"
REGION = "topology.kubernetes.io/region"


def zoned(zone: str) -> dict[str, str]:
    return {ZONE: zone, REGION: "region-1"}


async def test_pod_lands_in_its_volumes_zone(sched: Any, vols: Any) -> None:
    for zone in ("zone-a", "zone-b", "zone-c"):
        await vols.node(f"node-{zone[-1]}", labels=zoned(zone))
    await vols.bound_claim("data", "pv-data", sc="", labels=zoned("zone-b"))
    await sched.start()
    await vols.pod("app", "data")
    assert (await sched.wait_bound("app"))["app"] == "node-b"


async def test_pod_stays_pending_without_a_node_in_its_volumes_zone(sched: Any, vols: Any) -> None:
    for zone in ("zone-a", "zone-c", "zone-d"):
        await vols.node(f"node-{zone[-1]}", labels=zoned(zone))
    await vols.bound_claim("data", "pv-data", sc="", labels=zoned("zone-b"))
    await sched.start()
    await vols.pod("app", "data")
    cond = await vols.rejected("app")
    assert cond["reason"] == "Unschedulable"
    # the preemption part as upstream: the rejection is UnschedulableAndUnresolvable on every node
    assert cond["message"] == ("0/3 nodes are available: 3 node(s) had no available volume zone. preemption: "
                               "0/3 nodes are available: 3 Preemption is not helpful for scheduling.")
    assert await sched.node_of("app") is None
    await vols.node("node-b", labels=zoned("zone-b"))  # a Node Add in the volume's zone brings the pod back
    assert (await sched.wait_bound("app"))["app"] == "node-b"
