"""The EndpointSlice controller against a real API server: slices follow pods (ready,
serving, terminating), carry zones, ports and owner references, split at the per-slice
maximum (a small one, and the real 100 with 250 pods), and selectorless services are left
alone."""

from __future__ import annotations

import asyncio

import pytest

SERVICES = ("", "v1", "services")
PODS = ("", "v1", "pods")
SLICES = ("discovery.k8s.io", "v1", "endpointslices")
NS = "default"


def pod(name: str, labels: dict[str, str]) -> dict:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": labels},
            "spec": {"containers": [{"name": "c", "image": "nginx",
                                     "ports": [{"name": "http", "containerPort": 8080}]}]}}


def service(name: str, selector: dict[str, str] | None) -> dict:
    spec = {"ports": [{"name": "web", "port": 80, "targetPort": "http", "appProtocol": "http"}]}
    if selector is not None:
        spec["selector"] = selector
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name}, "spec": spec}


async def slices_of(cluster, svc: str) -> list[dict]:
    listing = await cluster.client.list(SLICES, NS, label_selector=f"kubernetes.io/service-name={svc}")
    return listing["items"]


def endpoints_by_pod(slices: list[dict]) -> dict[str, dict]:
    return {e["targetRef"]["name"]: e for s in slices for e in s.get("endpoints") or []}


async def test_slices_follow_pods(cluster) -> None:
    await cluster.node.create_node("node-1", labels={"topology.kubernetes.io/zone": "zone-a"})
    await cluster.start("endpointslice")
    svc = await cluster.client.create(SERVICES, service("web", {"app": "web"}), NS)

    async def one_slice():
        slices = await slices_of(cluster, "web")
        return slices if len(slices) == 1 else None

    (placeholder,) = await cluster.wait_for(one_slice, message="a placeholder slice")
    assert placeholder["endpoints"] in (None, []) and placeholder["addressType"] == "IPv4"
    meta = placeholder["metadata"]
    assert meta["name"].startswith("web-")
    assert meta["labels"]["endpointslice.kubernetes.io/managed-by"] == "endpointslice-controller.k8s.io"
    assert meta["ownerReferences"][0]["uid"] == svc["metadata"]["uid"]
    assert meta["ownerReferences"][0]["kind"] == "Service"

    a = await cluster.node.mark_running(await cluster.client.create(PODS, pod("a", {"app": "web"}), NS))
    b = await cluster.node.mark_running(await cluster.client.create(PODS, pod("b", {"app": "web"}), NS),
                                        ready=False)

    async def both():
        eps = endpoints_by_pod(await slices_of(cluster, "web"))
        return eps if set(eps) == {"a", "b"} else None

    eps = await cluster.wait_for(both, message="both pods in a slice")
    assert eps["a"]["conditions"] == {"ready": True, "serving": True, "terminating": False}
    assert eps["b"]["conditions"] == {"ready": False, "serving": False, "terminating": False}
    assert eps["a"]["addresses"] == [a["status"]["podIP"]]
    assert eps["a"]["zone"] == "zone-a" and eps["a"]["nodeName"] == "node-1"
    assert eps["a"]["targetRef"]["uid"] == a["metadata"]["uid"]
    (the_slice,) = await slices_of(cluster, "web")
    assert the_slice["metadata"]["name"] == placeholder["metadata"]["name"], "the placeholder is reused"
    assert the_slice["ports"] == [{"name": "web", "port": 8080, "protocol": "TCP", "appProtocol": "http"}]

    # A sync with nothing new writes nothing.
    controller = cluster.manager.controllers["endpointslice"]
    before = controller.syncs
    controller.enqueue("default/web")
    await cluster.wait_for(lambda: controller.syncs > before, message="a resync")
    (again,) = await slices_of(cluster, "web")
    assert again["metadata"]["resourceVersion"] == the_slice["metadata"]["resourceVersion"]

    # A terminating ready pod stays: serving, terminating, not ready.
    await cluster.client.delete(PODS, "a", NS)

    async def a_terminating():
        eps = endpoints_by_pod(await slices_of(cluster, "web"))
        return eps.get("a", {}).get("conditions") == {"ready": False, "serving": True, "terminating": True}

    await cluster.wait_for(a_terminating, message="a terminating")
    await cluster.node.finish_deletion(await cluster.client.get(PODS, "a", NS))
    await cluster.client.delete(PODS, "b", NS, grace_period_seconds=0)

    async def empty():
        slices = await slices_of(cluster, "web")
        return len(slices) == 1 and not slices[0].get("endpoints")

    await cluster.wait_for(empty, message="back to an empty slice")
    assert b["metadata"]["name"] == "b"


async def test_slices_split_at_the_maximum_and_selectorless_left_alone(cluster) -> None:
    await cluster.node.create_node("node-1")
    await cluster.start("endpointslice", options={"max_endpoints_per_slice": 3})
    await cluster.client.create(SERVICES, service("manual", None), NS)
    await cluster.client.create(SERVICES, service("many", {"app": "many"}), NS)
    cluster.node.auto_run(NS)
    for i in range(7):
        await cluster.client.create(PODS, pod(f"p{i}", {"app": "many"}), NS)

    async def packed():
        slices = await slices_of(cluster, "many")
        sizes = sorted(len(s.get("endpoints") or []) for s in slices)
        return slices if sizes == [1, 3, 3] else None

    await cluster.wait_for(packed, message="7 endpoints in slices of 3, 3, 1")
    for i in range(4):
        await cluster.client.delete(PODS, f"p{i}", NS)

    async def shrunk():
        eps = endpoints_by_pod(await slices_of(cluster, "many"))
        return set(eps) == {"p4", "p5", "p6"}

    await cluster.wait_for(shrunk, message="deleted pods leave the slices")
    slices = await slices_of(cluster, "many")
    assert all(len(s.get("endpoints") or []) <= 3 for s in slices) and len(slices) <= 2
    assert await slices_of(cluster, "manual") == []


async def test_250_pods_fill_slices_of_100(cluster) -> None:
    await cluster.node.create_node("node-1")
    await cluster.start("endpointslice")
    await cluster.client.create(SERVICES, service("big", {"app": "big"}), NS)
    created = await asyncio.gather(*(cluster.client.create(PODS, pod(f"p{i:03}", {"app": "big"}), NS)
                                     for i in range(250)))
    sem = asyncio.Semaphore(20)

    async def run(p):
        async with sem:
            await cluster.node.mark_running(p)

    await asyncio.gather(*(run(p) for p in created))

    async def counted():
        slices = await slices_of(cluster, "big")
        eps = endpoints_by_pod(slices)
        return slices if len(eps) == 250 and all(e["conditions"]["ready"] for e in eps.values()) else None

    slices = await cluster.wait_for(counted, timeout=60, message="250 ready endpoints")
    assert all(len(s["endpoints"]) <= 100 for s in slices)
    assert len(slices) == 3, [len(s["endpoints"]) for s in slices]


@pytest.mark.parametrize("families", [["IPv6"]])
async def test_address_type_follows_ip_families(cluster, families) -> None:
    await cluster.node.create_node("node-1")
    await cluster.start("endpointslice")
    svc = service("v6", {"app": "v6"})
    svc["spec"].update({"clusterIP": "None", "ipFamilies": families})
    await cluster.client.create(SERVICES, svc, NS)
    p = await cluster.client.create(PODS, pod("p", {"app": "v6"}), NS)
    p = await cluster.node.mark_running(p)
    p["status"]["podIPs"] = [{"ip": p["status"]["podIP"]}, {"ip": "fd00::5"}]
    await cluster.client.update_status(PODS, p)

    async def v6():
        slices = await slices_of(cluster, "v6")
        eps = endpoints_by_pod(slices)
        return slices if eps.get("p", {}).get("addresses") == ["fd00::5"] else None

    slices = await cluster.wait_for(v6, message="an IPv6 slice")
    assert [s["addressType"] for s in slices] == ["IPv6"]
    assert slices[0]["metadata"]["labels"]["service.kubernetes.io/headless"] == ""
