"""The Endpoints controller against a real API server: addresses follow pods becoming ready,
unready, terminating and deleted; named target ports; publishNotReadyAddresses; selectorless
services left alone; Endpoints deleted with their service and recreated when deleted."""

from __future__ import annotations

import pytest

from pybernetes.client.errors import NotFound

SERVICES = ("", "v1", "services")
PODS = ("", "v1", "pods")
ENDPOINTS = ("", "v1", "endpoints")
NS = "default"


def pod(name: str, labels: dict[str, str], ports: list[dict] | None = None) -> dict:
    container = {"name": "c", "image": "nginx"}
    if ports:
        container["ports"] = ports
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": labels},
            "spec": {"containers": [container]}}


def service(name: str, selector: dict[str, str] | None, ports: list[dict], **spec) -> dict:
    body = {"ports": ports, **spec}
    if selector is not None:
        body["selector"] = selector
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "labels": {"team": "a"}},
            "spec": body}


async def get_endpoints(cluster, name: str) -> dict | None:
    try:
        return await cluster.client.get(ENDPOINTS, name, NS)
    except NotFound:
        return None


def addresses(ep: dict | None, field: str = "addresses") -> list[str]:
    if not ep:
        return []
    return sorted(a["ip"] for s in ep.get("subsets") or [] for a in s.get(field) or [])


@pytest.fixture
async def started(cluster):
    await cluster.node.create_node("node-1")
    await cluster.start("endpoints")
    return cluster


async def test_endpoints_follow_pod_readiness_and_deletion(started) -> None:
    cluster = started
    await cluster.client.create(SERVICES, service("web", {"app": "web"}, [{"name": "http", "port": 80,
                                                                          "targetPort": 8080}]), NS)
    ep = await cluster.wait_for(lambda: get_endpoints(cluster, "web"), message="Endpoints created")
    assert ep["metadata"]["labels"]["team"] == "a"
    assert not ep.get("subsets")
    a = await cluster.client.create(PODS, pod("a", {"app": "web"}), NS)
    b = await cluster.client.create(PODS, pod("b", {"app": "web"}), NS)
    await cluster.client.create(PODS, pod("other", {"app": "db"}), NS)
    a = await cluster.node.mark_running(a, ready=True)
    b = await cluster.node.mark_running(b, ready=False)
    await cluster.node.mark_running("other", NS)
    ip_a, ip_b = a["status"]["podIP"], b["status"]["podIP"]

    async def state() -> tuple[list[str], list[str]]:
        ep = await get_endpoints(cluster, "web")
        return addresses(ep), addresses(ep, "notReadyAddresses")

    await cluster.wait_for(lambda: _eq(state(), ([ip_a], [ip_b])), message="a ready, b not ready")
    ep = await get_endpoints(cluster, "web")
    subset = ep["subsets"][0]
    assert subset["ports"] == [{"name": "http", "port": 8080, "protocol": "TCP"}]
    ready = subset["addresses"][0]
    assert ready["nodeName"] == "node-1"
    assert ready["targetRef"] == {"kind": "Pod", "namespace": NS, "name": "a", "uid": a["metadata"]["uid"]}
    assert "endpoints.kubernetes.io/last-change-trigger-time" in ep["metadata"]["annotations"]

    await cluster.node.mark_ready(b, ready=True)
    await cluster.wait_for(lambda: _eq(state(), (sorted([ip_a, ip_b]), [])), message="both ready")
    await cluster.node.mark_ready(a, ready=False)
    await cluster.wait_for(lambda: _eq(state(), ([ip_b], [ip_a])), message="a unready")
    # A graceful delete leaves b terminating: it leaves the endpoints at once.
    await cluster.client.delete(PODS, "b", NS)
    await cluster.wait_for(lambda: _eq(state(), ([], [ip_a])), message="terminating b dropped")
    await cluster.client.delete(PODS, "a", NS, grace_period_seconds=0)
    await cluster.wait_for(lambda: _eq(state(), ([], [])), message="a deleted")
    ep = await get_endpoints(cluster, "web")
    assert not ep.get("subsets")


async def _eq(awaitable, expected):
    value = await awaitable
    return value == expected


async def test_named_ports_and_publish_not_ready(started) -> None:
    cluster = started
    svc = service("named", {"app": "n"}, [{"name": "web", "port": 80, "targetPort": "http"},
                                          {"name": "dns", "port": 53, "protocol": "UDP", "targetPort": "dns"}],
                  publishNotReadyAddresses=True)
    await cluster.client.create(SERVICES, svc, NS)
    p1 = await cluster.client.create(PODS, pod("p1", {"app": "n"}, [
        {"name": "http", "containerPort": 8080}, {"name": "dns", "containerPort": 5353, "protocol": "UDP"}]), NS)
    p2 = await cluster.client.create(PODS, pod("p2", {"app": "n"}, [{"name": "http", "containerPort": 9090}]), NS)
    p1 = await cluster.node.mark_running(p1, ready=False)
    p2 = await cluster.node.mark_running(p2, ready=False)

    async def subsets():
        ep = await get_endpoints(cluster, "named")
        out = []
        for s in (ep or {}).get("subsets") or []:
            out.append((sorted(a["ip"] for a in s.get("addresses") or []),
                        sorted((p["name"], p["port"], p["protocol"]) for p in s.get("ports") or []),
                        len(s.get("notReadyAddresses") or [])))
        return sorted(out)

    ip1, ip2 = p1["status"]["podIP"], p2["status"]["podIP"]
    want = sorted([([ip1], [("dns", 5353, "UDP"), ("web", 8080, "TCP")], 0),
                   ([ip2], [("web", 9090, "TCP")], 0)])
    await cluster.wait_for(lambda: _eq(subsets(), want), message="named ports resolved, unready published")


async def test_selectorless_left_alone_deleted_with_service_and_recreated(started) -> None:
    cluster = started
    await cluster.client.create(SERVICES, service("manual", None, [{"port": 80}]), NS)
    manual = {"apiVersion": "v1", "kind": "Endpoints", "metadata": {"name": "manual"},
              "subsets": [{"addresses": [{"ip": "10.1.2.3"}], "ports": [{"port": 80}]}]}
    await cluster.client.create(ENDPOINTS, manual, NS)
    await cluster.client.create(SERVICES, service("auto", {"app": "x"}, [{"port": 80}]), NS)
    await cluster.wait_for(lambda: get_endpoints(cluster, "auto"), message="auto Endpoints")
    # Deleted Endpoints come back.
    await cluster.client.delete(ENDPOINTS, "auto", NS)
    await cluster.wait_for(lambda: get_endpoints(cluster, "auto"), message="auto Endpoints recreated")
    ep = await get_endpoints(cluster, "manual")
    assert addresses(ep) == ["10.1.2.3"] and "endpoints.kubernetes.io/managed-by" not in (
        ep["metadata"].get("labels") or {})
    await cluster.client.delete(SERVICES, "auto", NS)

    async def gone() -> bool:
        return await get_endpoints(cluster, "auto") is None

    await cluster.wait_for(gone, message="Endpoints deleted with the service")
    assert addresses(await get_endpoints(cluster, "manual")) == ["10.1.2.3"]
