"""Node IPAM: every Node gets a pod CIDR from the cluster CIDR; existing ones are respected;
subnets are released when the node goes and not handed out while held; a full range is an
Event and a retry; dual-stack gives one subnet per family."""

from __future__ import annotations

import ipaddress

NODES = ("", "v1", "nodes")
EVENTS = ("", "v1", "events")


async def pod_cidrs(cluster, name: str) -> list[str] | None:
    node = await cluster.client.get(NODES, name)
    return (node.get("spec") or {}).get("podCIDRs") or None


async def test_pod_cidrs_allocated_respected_and_released(cluster) -> None:
    # A node registered with a subnet of its own before the controller starts.
    pinned = {"apiVersion": "v1", "kind": "Node", "metadata": {"name": "pinned"},
              "spec": {"podCIDR": "10.42.0.0/24"}}
    await cluster.client.create(NODES, pinned)
    cm = await cluster.start("nodeipam", options={"cluster_cidr": "10.42.0.0/22"})
    for name in ("n1", "n2"):
        await cluster.node.create_node(name)
    got = {}
    for name in ("n1", "n2"):
        got[name] = await cluster.wait_for(lambda n=name: pod_cidrs(cluster, n), message=f"{name} podCIDRs")
    node = await cluster.client.get(NODES, "n1")
    assert node["spec"]["podCIDR"] == got["n1"][0]
    assert {got["n1"][0], got["n2"][0]} == {"10.42.1.0/24", "10.42.2.0/24"}
    assert await pod_cidrs(cluster, "pinned") == ["10.42.0.0/24"]

    # The last free subnet goes to n3; the range is then full: n4 waits with an Event.
    await cluster.node.create_node("n3")
    assert await cluster.wait_for(lambda: pod_cidrs(cluster, "n3")) == ["10.42.3.0/24"]
    await cluster.node.create_node("n4")

    async def full_event() -> bool:
        events = (await cluster.client.list(EVENTS, "default"))["items"]
        return any(e["reason"] == "CIDRNotAvailable" and e["involvedObject"]["name"] == "n4"
                   and e["source"]["component"] == "node-ipam-controller" for e in events)

    await cluster.wait_for(full_event, message="a CIDRNotAvailable event for n4")
    assert await pod_cidrs(cluster, "n4") is None

    # Deleting n1 frees its subnet: n4 gets it on a retry; nothing held is handed out twice.
    await cluster.client.delete(NODES, "n1")
    assert await cluster.wait_for(lambda: pod_cidrs(cluster, "n4"), timeout=30) == got["n1"]
    held = [(await pod_cidrs(cluster, n))[0] for n in ("pinned", "n2", "n3", "n4")]
    assert len(set(held)) == 4
    assert cm.controllers["nodeipam"].cidr_sets[0].used == 4


async def test_dual_stack(cluster) -> None:
    await cluster.start("nodeipam", options={"cluster_cidr": "10.42.0.0/16,fd42::/56"})
    await cluster.node.create_node("d1")
    cidrs = await cluster.wait_for(lambda: pod_cidrs(cluster, "d1"), message="dual-stack podCIDRs")
    assert len(cidrs) == 2
    v4, v6 = (ipaddress.ip_network(c) for c in cidrs)
    assert v4.version == 4 and v4.prefixlen == 24 and v4.subnet_of(ipaddress.ip_network("10.42.0.0/16"))
    assert v6.version == 6 and v6.prefixlen == 64 and v6.subnet_of(ipaddress.ip_network("fd42::/56"))
