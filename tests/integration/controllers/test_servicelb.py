"""The built-in LoadBalancer controller against a real API server: node addresses (readiness,
exclusion, ExternalIP before InternalIP, externalTrafficPolicy Local from EndpointSlices), a
configured pool (loadBalancerIP, exhaustion, release), allocations surviving a restart, a type
change clearing the status, a port conflict resolved when the older Service goes, and
Services of another loadBalancerClass left alone."""

from __future__ import annotations

from typing import Any

SERVICES = ("", "v1", "services")
NODES = ("", "v1", "nodes")
EVENTS = ("", "v1", "events")
SLICES = ("discovery.k8s.io", "v1", "endpointslices")
NS = "default"


def lb_service(name: str, port: int = 80, **spec: Any) -> dict:
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name},
            "spec": {"type": "LoadBalancer", "selector": {"app": name},
                     "ports": [{"name": "web", "port": port, "targetPort": 8080}], **spec}}


async def add_node(cluster, name: str, *addresses: tuple[str, str], ready: bool = True,
                   labels: dict[str, str] | None = None) -> dict:
    node = await cluster.node.create_node(name, labels=labels, ready=ready)
    return await set_addresses(cluster, name, *addresses, node=node)


async def set_addresses(cluster, name: str, *addresses: tuple[str, str], node: dict | None = None,
                        ready: bool | None = None) -> dict:
    node = node or await cluster.client.get(NODES, name)
    node["status"]["addresses"] = [{"type": t, "address": a} for t, a in addresses] + \
        [{"type": "Hostname", "address": name}]
    if ready is not None:
        for cond in node["status"]["conditions"]:
            if cond["type"] == "Ready":
                cond["status"] = "True" if ready else "False"
    return await cluster.client.update_status(NODES, node)


async def ingress(cluster, name: str) -> list[dict]:
    svc = await cluster.client.get(SERVICES, name, NS)
    return ((svc.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []


async def wait_ips(cluster, name: str, ips: list[str], message: str = "") -> None:
    async def check():
        got = await ingress(cluster, name)
        return got == [{"ip": ip, "ipMode": "VIP"} for ip in ips]

    await cluster.wait_for(check, message=message or f"{name} ingress {ips}")


async def wait_event(cluster, name: str, reason: str, contains: str = "") -> dict:
    async def find():
        events = (await cluster.client.list(EVENTS, NS))["items"]
        return next((e for e in events if e["involvedObject"]["name"] == name and e["reason"] == reason
                     and contains in e.get("message", "")), None)

    return await cluster.wait_for(find, message=f"event {reason} on {name}")


def endpoint_slice(service: str, *nodes: tuple[str, bool]) -> dict:
    return {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
            "metadata": {"name": f"{service}-manual", "labels": {"kubernetes.io/service-name": service}},
            "addressType": "IPv4",
            "endpoints": [{"addresses": [f"10.42.0.{i + 10}"], "conditions": {"ready": ready}, "nodeName": n}
                          for i, (n, ready) in enumerate(nodes)],
            "ports": [{"name": "web", "port": 8080, "protocol": "TCP"}]}


async def to_cluster_ip(cluster, name: str) -> None:
    svc = await cluster.client.get(SERVICES, name, NS)
    spec = svc["spec"]
    spec["type"] = "ClusterIP"
    for key in ("externalTrafficPolicy", "allocateLoadBalancerNodePorts", "loadBalancerIP"):
        spec.pop(key, None)
    for port in spec["ports"]:
        port.pop("nodePort", None)
    await cluster.client.update(SERVICES, svc, NS)


async def test_node_address_mode(cluster) -> None:
    await add_node(cluster, "n1", ("InternalIP", "192.168.50.1"), ("ExternalIP", "203.0.113.1"))
    await add_node(cluster, "n2", ("InternalIP", "192.168.50.2"))
    await add_node(cluster, "n3", ("InternalIP", "192.168.50.3"), ready=False)
    await add_node(cluster, "n4", ("InternalIP", "192.168.50.4"),
                   labels={"node.kubernetes.io/exclude-from-external-load-balancers": "true"})
    await cluster.start("service-lb")
    await cluster.client.create(SERVICES, lb_service("web"), NS)
    await wait_ips(cluster, "web", ["192.168.50.2", "203.0.113.1"], "ready, included nodes' addresses")
    await wait_event(cluster, "web", "EnsuringLoadBalancer")
    await wait_event(cluster, "web", "EnsuredLoadBalancer")

    # A sync with nothing new writes nothing.
    controller = cluster.manager.controllers["service-lb"]
    before_rv = (await cluster.client.get(SERVICES, "web", NS))["metadata"]["resourceVersion"]
    before = controller.syncs
    controller.enqueue(f"{NS}/web")
    await cluster.wait_for(lambda: controller.syncs > before, message="a resync")
    assert (await cluster.client.get(SERVICES, "web", NS))["metadata"]["resourceVersion"] == before_rv

    # Nodes change: a new address, a node becoming ready.
    await set_addresses(cluster, "n2", ("InternalIP", "192.168.50.22"))
    await set_addresses(cluster, "n3", ("InternalIP", "192.168.50.3"), ready=True)
    await wait_ips(cluster, "web", ["192.168.50.3", "192.168.50.22", "203.0.113.1"], "node changes followed")

    # externalTrafficPolicy Local: only nodes with a ready endpoint of the Service.
    await cluster.client.create(SERVICES, lb_service("local", port=81, externalTrafficPolicy="Local"), NS)
    await wait_ips(cluster, "local", [], "no endpoints, no nodes")
    slice_ = await cluster.client.create(SLICES, endpoint_slice("local", ("n1", True), ("n2", False)), NS)
    await wait_ips(cluster, "local", ["203.0.113.1"], "the node with a ready endpoint")
    slice_["endpoints"][1]["conditions"]["ready"] = True
    slice_["endpoints"][0]["nodeName"] = "n3"
    await cluster.client.update(SLICES, slice_, NS)
    await wait_ips(cluster, "local", ["192.168.50.3", "192.168.50.22"], "endpoints moved")


async def test_pool_mode(cluster) -> None:
    await add_node(cluster, "n1", ("InternalIP", "192.168.50.1"))
    await cluster.start("service-lb", options={"service_lb_pool": "10.99.0.0/30, 10.99.0.8"})
    await cluster.client.create(SERVICES, lb_service("a"), NS)
    await wait_ips(cluster, "a", ["10.99.0.1"], "the lowest address")
    await cluster.client.create(SERVICES, lb_service("b", loadBalancerIP="10.99.0.8"), NS)
    await wait_ips(cluster, "b", ["10.99.0.8"], "loadBalancerIP honoured")
    await cluster.client.create(SERVICES, lb_service("c", loadBalancerIP="10.99.0.1"), NS)
    await wait_ips(cluster, "c", ["10.99.0.2"], "a taken loadBalancerIP: the lowest free")
    await cluster.client.create(SERVICES, lb_service("d"), NS)
    event = await wait_event(cluster, "d", "AllocationFailed")
    assert event["type"] == "Warning" and "no free IPv4 address in the pool" in event["message"]
    assert await ingress(cluster, "d") == []
    await cluster.client.delete(SERVICES, "a", NS)
    await wait_ips(cluster, "d", ["10.99.0.1"], "a deleted Service's address reused")
    assert await ingress(cluster, "b") == [{"ip": "10.99.0.8", "ipMode": "VIP"}]


async def test_restart_keeps_allocations(cluster) -> None:
    await add_node(cluster, "n1", ("InternalIP", "192.168.50.1"))
    options = {"service_lb_pool": "10.98.0.1-10.98.0.2"}
    await cluster.start("service-lb", options=options)
    await cluster.client.create(SERVICES, lb_service("x"), NS)
    await wait_ips(cluster, "x", ["10.98.0.1"])
    await cluster.client.create(SERVICES, lb_service("y"), NS)
    await wait_ips(cluster, "y", ["10.98.0.2"])
    await cluster.stop()

    # While the controller is down x goes and a Service (listed, so synced, before y) asks
    # for y's address.
    await cluster.client.delete(SERVICES, "x", NS)
    await cluster.client.create(SERVICES, lb_service("new", loadBalancerIP="10.98.0.2"), NS)
    await cluster.start("service-lb", options=options)
    await wait_ips(cluster, "new", ["10.98.0.1"], "the free address, not y's")
    assert await ingress(cluster, "y") == [{"ip": "10.98.0.2", "ipMode": "VIP"}]
    await cluster.client.create(SERVICES, lb_service("z"), NS)
    await wait_event(cluster, "z", "AllocationFailed")
    assert await ingress(cluster, "z") == []
    assert await ingress(cluster, "y") == [{"ip": "10.98.0.2", "ipMode": "VIP"}]


async def test_type_change_clears_and_frees(cluster) -> None:
    await add_node(cluster, "n1", ("InternalIP", "192.168.50.1"))
    await cluster.start("service-lb", options={"service_lb_pool": "10.97.0.5"})
    await cluster.client.create(SERVICES, lb_service("a"), NS)
    await wait_ips(cluster, "a", ["10.97.0.5"])
    await cluster.client.create(SERVICES, lb_service("b"), NS)
    await wait_event(cluster, "b", "AllocationFailed")
    await to_cluster_ip(cluster, "a")

    async def cleared():
        svc = await cluster.client.get(SERVICES, "a", NS)
        return svc["status"].get("loadBalancer") == {}

    await cluster.wait_for(cleared, message="a's status.loadBalancer cleared")
    await wait_event(cluster, "a", "DeletedLoadBalancer")
    await wait_ips(cluster, "b", ["10.97.0.5"], "the address a gave back")


async def test_port_conflict_resolves_when_the_older_goes(cluster) -> None:
    await add_node(cluster, "n1", ("InternalIP", "192.168.50.1"))
    await cluster.start("service-lb")
    await cluster.client.create(SERVICES, lb_service("first"), NS)
    await wait_ips(cluster, "first", ["192.168.50.1"])
    await cluster.client.create(SERVICES, lb_service("second"), NS)
    await cluster.client.create(SERVICES, lb_service("third", port=81), NS)
    event = await wait_event(cluster, "second", "PortConflict")
    assert event["type"] == "Warning" and "default/first" in event["message"] and "80/TCP" in event["message"]
    await wait_ips(cluster, "third", ["192.168.50.1"], "another port has no conflict")
    assert await ingress(cluster, "second") == []
    await cluster.client.delete(SERVICES, "first", NS)
    await wait_ips(cluster, "second", ["192.168.50.1"], "the port free again")


async def test_load_balancer_class_is_left_alone(cluster) -> None:
    await add_node(cluster, "n1", ("InternalIP", "192.168.50.1"))
    await cluster.start("service-lb")
    classy = await cluster.client.create(
        SERVICES, lb_service("classy", loadBalancerClass="example.com/other-lb"), NS)
    await cluster.client.create(SERVICES, lb_service("plain", port=81), NS)
    await wait_ips(cluster, "plain", ["192.168.50.1"])
    assert await ingress(cluster, "classy") == []

    # The other implementation's status stays, through a resync.
    classy = await cluster.client.get(SERVICES, "classy", NS)
    classy["status"] = {"loadBalancer": {"ingress": [{"ip": "198.51.100.7", "ipMode": "Proxy"}]}}
    await cluster.client.update_status(SERVICES, classy)
    controller = cluster.manager.controllers["service-lb"]
    await cluster.wait_for(lambda: controller.services.indexer.get(f"{NS}/classy")["status"]["loadBalancer"],
                           message="the controller's cache sees the foreign status")
    before = controller.syncs
    controller.enqueue(f"{NS}/classy")
    await cluster.wait_for(lambda: controller.syncs > before, message="a sync after the status write")
    assert await ingress(cluster, "classy") == [{"ip": "198.51.100.7", "ipMode": "Proxy"}]
    events = (await cluster.client.list(EVENTS, NS))["items"]
    assert not [e for e in events if e["involvedObject"]["name"] == "classy"]
