"""VolumeZone against a real API server: a pod whose claim is bound to a PV labelled with a
zone lands on a node of that zone, and stays Pending with upstream's message while no node is
in the PV's zone (until one is added)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from pybernetes.client.errors import NotFound

PODS = ("", "v1", "pods")
PVCS = ("", "v1", "persistentvolumeclaims")
PVS = ("", "v1", "persistentvolumes")
NODES = ("", "v1", "nodes")
ZONE = "topology.kubernetes.io/zone"
REGION = "topology.kubernetes.io/region"


class ZonedVolumes:
    """Creates nodes, claims, PVs and pods for one test and deletes them all at the end."""

    def __init__(self, sched: Any) -> None:
        self.sched = sched
        self.client = sched.client
        self.created: list[tuple[tuple, str, str | None]] = []

    async def node(self, name: str, zone: str) -> None:
        await self.sched.add_node(name, labels={ZONE: zone, REGION: "region-1"})
        self.created.append((NODES, name, None))

    async def bound_claim(self, name: str, volume: str, zone: str) -> None:
        claim = await self.client.create(PVCS, {
            "apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": name, "namespace": "default"},
            "spec": {"accessModes": ["ReadWriteOnce"], "storageClassName": "",
                     "resources": {"requests": {"storage": "1Gi"}}}}, "default")
        self.created.append((PVCS, name, "default"))
        await self.client.create(PVS, {
            "apiVersion": "v1", "kind": "PersistentVolume",
            "metadata": {"name": volume, "labels": {ZONE: zone, REGION: "region-1"}},
            "spec": {"capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteOnce"], "storageClassName": "",
                     "csi": {"driver": "example.com/csi", "volumeHandle": volume},
                     "claimRef": {"kind": "PersistentVolumeClaim", "apiVersion": "v1", "namespace": "default",
                                  "name": name, "uid": claim["metadata"]["uid"]}}})
        self.created.append((PVS, volume, None))
        # what the PV controller does last: the claim names its volume and is Bound
        claim = await self.client.get(PVCS, name, "default")
        claim["spec"]["volumeName"] = volume
        claim = await self.client.update(PVCS, claim, "default")
        claim["status"] = {**(claim.get("status") or {}), "phase": "Bound"}
        await self.client.update_status(PVCS, claim, "default")

    async def pod(self, name: str, claim: str) -> None:
        await self.sched.add_pod(name, volumes=[{"name": "data", "persistentVolumeClaim": {"claimName": claim}}])
        self.created.append((PODS, name, "default"))

    async def rejected(self, name: str) -> dict:
        async def condition() -> dict | None:
            cond = await self.sched.scheduled_condition(name)
            return cond if cond and cond["status"] == "False" else None

        return await self.sched.wait_for(condition, message=f"{name} rejected")

    async def cleanup(self) -> None:
        for res, name, namespace in reversed(self.created):
            try:
                await self.client.delete(res, name, namespace, grace_period_seconds=0 if res == PODS else None)
            except NotFound:
                pass


@pytest.fixture
async def zoned(sched: Any) -> AsyncIterator[ZonedVolumes]:
    volumes = ZonedVolumes(sched)
    try:
        yield volumes
    finally:
        await volumes.cleanup()


async def test_pod_lands_in_its_volumes_zone(sched: Any, zoned: ZonedVolumes) -> None:
    for zone in ("zone-a", "zone-b", "zone-c"):
        await zoned.node(f"node-{zone[-1]}", zone)
    await zoned.bound_claim("data", "pv-data", "zone-b")
    await sched.start()
    await zoned.pod("app", "data")
    assert (await sched.wait_bound("app"))["app"] == "node-b"


async def test_pod_stays_pending_without_a_node_in_its_volumes_zone(sched: Any, zoned: ZonedVolumes) -> None:
    for zone in ("zone-a", "zone-c", "zone-d"):
        await zoned.node(f"node-{zone[-1]}", zone)
    await zoned.bound_claim("data", "pv-data", "zone-b")
    await sched.start()
    await zoned.pod("app", "data")
    cond = await zoned.rejected("app")
    assert cond["reason"] == "Unschedulable"
    # the preemption part as upstream: the rejection is UnschedulableAndUnresolvable on every node
    assert cond["message"] == ("0/3 nodes are available: 3 node(s) had no available volume zone. preemption: "
                               "0/3 nodes are available: 3 Preemption is not helpful for scheduling.")
    assert await sched.node_of("app") is None
    await zoned.node("node-b", "zone-b")  # a Node Add in the volume's zone brings the pod back
    assert (await sched.wait_bound("app"))["app"] == "node-b"
