"""The pure core of the built-in LoadBalancer controller: pool parsing (and its errors),
allocation (ranges, exhaustion, loadBalancerIP, release), node address selection (readiness,
exclusion, ExternalIP before InternalIP, IP families, externalTrafficPolicy Local) and port
conflicts between Services."""

from __future__ import annotations

import pytest

from pybernetes.controllers.servicelb_core import (
    PoolAllocator,
    PortConflict,
    ingress_of,
    is_ours,
    local_endpoint_nodes,
    node_eligible,
    node_mode_addresses,
    node_signature,
    parse_pool,
    port_conflicts,
    service_versions,
)


def svc(name: str, *, ports=((80, "TCP"),), created="2024-01-01T00:00:00Z", families=None, etp=None,
        cls=None, type_="LoadBalancer", ns="default") -> dict:
    spec: dict = {"type": type_, "ports": [{"port": p, "protocol": proto} for p, proto in ports]}
    if families:
        spec["ipFamilies"] = families
    if etp:
        spec["externalTrafficPolicy"] = etp
    if cls:
        spec["loadBalancerClass"] = cls
    return {"metadata": {"name": name, "namespace": ns, "creationTimestamp": created}, "spec": spec}


def node(name: str, *addrs: tuple[str, str], ready=True, unschedulable=False, labels=None) -> dict:
    return {"metadata": {"name": name, "labels": labels or {}},
            "spec": {"unschedulable": True} if unschedulable else {},
            "status": {"conditions": [{"type": "Ready", "status": "True" if ready else "False"},
                                      {"type": "MemoryPressure", "status": "False"}],
                       "addresses": [{"type": t, "address": a} for t, a in addrs]
                       + [{"type": "Hostname", "address": name}]}}


def eps(*items: tuple[str, bool | None]) -> dict:
    out = []
    for node_name, ready in items:
        ep: dict = {"addresses": ["10.42.0.9"], "nodeName": node_name}
        if ready is not None:
            ep["conditions"] = {"ready": ready}
        out.append(ep)
    return {"metadata": {"name": "s", "labels": {"kubernetes.io/service-name": "web"}}, "endpoints": out}


# -- pool parsing ------------------------------------------------------------------------------


def test_pool_parses_cidrs_ranges_and_addresses() -> None:
    pool = parse_pool(" 10.0.0.0/30, 192.168.1.10-192.168.1.12 ,, 172.16.0.5, fd00::/127")
    assert str(pool) == "10.0.0.1-10.0.0.2,172.16.0.5,192.168.1.10-192.168.1.12,fd00::-fd00::1"
    assert pool.contains("10.0.0.1") and pool.contains("10.0.0.2")
    assert not pool.contains("10.0.0.0") and not pool.contains("10.0.0.3"), "no network/broadcast"
    assert pool.contains("192.168.1.11") and not pool.contains("192.168.1.13")
    assert pool.contains("fd00:0::1") and not pool.contains("not-an-ip")
    assert str(parse_pool("10.1.0.0/31")) == "10.1.0.0-10.1.0.1"
    assert str(parse_pool(["10.2.0.7/32"])) == "10.2.0.7"
    assert not parse_pool("") and not parse_pool(None) and not parse_pool(" , ")


@pytest.mark.parametrize(("spec", "words"), [
    ("10.0.0.0/33", "not a CIDR"),
    ("10.0.0.1/24", "not a CIDR"),  # host bits set
    ("10.0.0.9-10.0.0.1", "after its end"),
    ("10.0.0.1-fd00::1", "one IP family"),
    ("10.0.0.1-", "two IP addresses"),
    ("banana", "expected a CIDR"),
    ("10.0.0.0/24,300.1.1.1", "'300.1.1.1'"),
])
def test_pool_bad_input_is_a_clear_value_error(spec: str, words: str) -> None:
    with pytest.raises(ValueError, match="invalid service LB pool entry") as info:
        parse_pool(spec)
    assert words in str(info.value)


def test_pool_of_the_wrong_type_is_refused() -> None:
    with pytest.raises(ValueError, match="comma-separated"):
        parse_pool(42)  # type: ignore[arg-type]


# -- allocation --------------------------------------------------------------------------------


def test_allocation_lowest_free_across_ranges_and_exhaustion() -> None:
    alloc = PoolAllocator(parse_pool("10.0.0.5-10.0.0.6,10.0.1.1"))
    assert alloc.ensure("ns/a", None, [4]) == "10.0.0.5"
    assert alloc.ensure("ns/a", None, [4]) == "10.0.0.5", "a Service keeps its address"
    assert alloc.ensure("ns/b", None, [4]) == "10.0.0.6"
    assert alloc.ensure("ns/c", None, [4]) == "10.0.1.1", "the next range"
    assert alloc.ensure("ns/d", None, [4]) is None
    assert "no free IPv4 address in the pool 10.0.0.5-10.0.0.6,10.0.1.1" in alloc.exhausted_message("ns/d", [4])
    assert alloc.release("ns/b") == "10.0.0.6"
    assert alloc.ensure("ns/d", None, [4]) == "10.0.0.6"
    assert alloc.holder("10.0.0.6") == "ns/d" and alloc.held("ns/b") is None


def test_load_balancer_ip_honoured_only_inside_the_pool_and_free() -> None:
    alloc = PoolAllocator(parse_pool("10.0.0.0/29"))  # .1 - .6
    assert alloc.ensure("ns/a", "10.0.0.4", [4]) == "10.0.0.4"
    assert alloc.ensure("ns/b", "10.0.0.4", [4]) == "10.0.0.1", "taken: the lowest free"
    assert alloc.ensure("ns/c", "192.168.0.1", [4]) == "10.0.0.2", "outside the pool: the lowest free"
    assert alloc.ensure("ns/c", "10.0.0.6", [4]) == "10.0.0.6", "a new request that is free moves it"
    assert alloc.holder("10.0.0.2") is None
    assert alloc.ensure("ns/c", "10.0.0.4", [4]) == "10.0.0.6", "a taken request keeps the held one"


def test_occupy_rebuilds_and_refuses_doubles_and_outsiders() -> None:
    alloc = PoolAllocator(parse_pool("10.0.0.1-10.0.0.3"))
    assert alloc.occupy("ns/old", "10.0.0.2")
    assert not alloc.occupy("ns/new", "10.0.0.2"), "already the older one's"
    assert not alloc.occupy("ns/new", "10.9.9.9")
    assert alloc.ensure("ns/new", None, [4]) == "10.0.0.1"
    assert alloc.ensure("ns/third", None, [4]) == "10.0.0.3"


def test_ipv6_and_families() -> None:
    alloc = PoolAllocator(parse_pool("10.0.0.1, fd00::a-fd00::b"))
    assert alloc.ensure("ns/v6", None, [6]) == "fd00::a"
    assert alloc.ensure("ns/v6req", "FD00:0::B", [6]) == "fd00::b", "canonical form"
    assert alloc.ensure("ns/dual", None, [6, 4]) == "10.0.0.1", "falls back to the second family"
    assert alloc.ensure("ns/v4", "fd00::a", [4]) is None, "an IPv6 request does not serve IPv4"
    only_v4 = PoolAllocator(parse_pool("10.0.0.1"))
    assert only_v4.ensure("ns/x", None, [6]) is None
    assert "has no IPv6 address" in only_v4.exhausted_message("ns/x", [6])
    assert ingress_of(["fd00::a"]) == [{"ip": "fd00::a", "ipMode": "VIP"}]


# -- services and nodes ------------------------------------------------------------------------


def test_ownership_and_families() -> None:
    assert is_ours(svc("a"))
    assert not is_ours(svc("a", cls="example.com/lb"))
    assert not is_ours(svc("a", type_="NodePort"))
    assert service_versions(svc("a")) == [4]
    assert service_versions(svc("a", families=["IPv6", "IPv4"])) == [6, 4]


def test_node_addresses_ready_schedulable_not_excluded() -> None:
    nodes = [
        node("ext", ("InternalIP", "192.168.0.2"), ("ExternalIP", "203.0.113.2")),
        node("int", ("InternalIP", "192.168.0.3")),
        node("down", ("InternalIP", "192.168.0.4"), ready=False),
        node("cordoned", ("InternalIP", "192.168.0.5"), unschedulable=True),
        node("excluded", ("InternalIP", "192.168.0.6"),
             labels={"node.kubernetes.io/exclude-from-external-load-balancers": ""}),
        node("dup", ("InternalIP", "192.168.0.3")),
        node("v6", ("InternalIP", "fd00::3"), ("InternalIP", "192.168.0.10")),
    ]
    assert node_mode_addresses(svc("web"), nodes, []) == ["192.168.0.3", "192.168.0.10", "203.0.113.2"]
    assert node_mode_addresses(svc("web", families=["IPv6"]), nodes, []) == ["fd00::3"]
    assert node_mode_addresses(svc("web", families=["IPv4", "IPv6"]), nodes, [])[-1] == "fd00::3"
    assert not node_eligible(nodes[2]) and not node_eligible(nodes[3]) and not node_eligible(nodes[4])
    assert not node_eligible({"metadata": {"name": "new"}}), "no Ready condition yet"


def test_node_signature_ignores_heartbeats() -> None:
    a = node("n", ("InternalIP", "192.168.0.2"))
    b = node("n", ("InternalIP", "192.168.0.2"))
    b["status"]["conditions"][0]["lastHeartbeatTime"] = "2024-01-01T00:00:10Z"
    assert node_signature(a) == node_signature(b)
    assert node_signature(a) != node_signature(node("n", ("InternalIP", "192.168.0.3")))
    assert node_signature(a) != node_signature(node("n", ("InternalIP", "192.168.0.2"), ready=False))


def test_external_traffic_policy_local_uses_nodes_with_ready_endpoints() -> None:
    nodes = [node("a", ("InternalIP", "10.1.0.1")), node("b", ("InternalIP", "10.1.0.2")),
             node("c", ("InternalIP", "10.1.0.3"))]
    slices = [eps(("b", True), ("c", False)), eps(("a", None))]
    assert local_endpoint_nodes(slices) == {"a", "b"}
    assert node_mode_addresses(svc("web", etp="Local"), nodes, slices) == ["10.1.0.1", "10.1.0.2"]
    assert node_mode_addresses(svc("web", etp="Local"), nodes, []) == []
    assert node_mode_addresses(svc("web", etp="Cluster"), nodes, []) == ["10.1.0.1", "10.1.0.2", "10.1.0.3"]


# -- port conflicts ----------------------------------------------------------------------------


def test_older_service_keeps_the_port() -> None:
    services = [
        svc("newer", created="2024-01-02T00:00:00Z"),
        svc("older", created="2024-01-01T00:00:00Z"),
        svc("same-second-b", ports=((8080, "TCP"),), created="2024-01-03T00:00:00Z"),
        svc("same-second-a", ports=((8080, "TCP"),), created="2024-01-03T00:00:00Z"),
        svc("udp", ports=((80, "UDP"),), created="2024-01-04T00:00:00Z"),
        svc("v6", families=["IPv6"], created="2024-01-05T00:00:00Z"),
    ]
    blocked = port_conflicts(services)
    assert blocked == {
        "default/newer": PortConflict("default/older", 80, "TCP"),
        "default/same-second-b": PortConflict("default/same-second-a", 8080, "TCP"),
    }
    assert "default/older" in blocked["default/newer"].message()
    assert port_conflicts([s for s in services if s["metadata"]["name"] != "older"]) == {
        "default/same-second-b": PortConflict("default/same-second-a", 8080, "TCP")}


def test_a_blocked_service_blocks_nobody() -> None:
    a = svc("a", ports=((80, "TCP"),), created="2024-01-01T00:00:00Z")
    b = svc("b", ports=((80, "TCP"), (443, "TCP")), created="2024-01-02T00:00:00Z")
    c = svc("c", ports=((443, "TCP"),), created="2024-01-03T00:00:00Z")
    assert set(port_conflicts([a, b, c])) == {"default/b"}
