"""The proxy's reading of Services and EndpointSlices (proxy/model.py) and its change tracking and
collision rules (proxy/tracker.py)."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from proxy_objects import endpoint, endpoint_slice, lb_status, port, service  # noqa: E402

from pybernetes.proxy.model import (  # noqa: E402
    DEFAULT_AFFINITY_TIMEOUT,
    Endpoint,
    PortName,
    PortView,
    ServicePort,
    categorize,
    merge_endpoints,
    parse_service,
    parse_slice,
)
from pybernetes.proxy.tracker import ChangeTracker, ProxyState, refresh  # noqa: E402


def only(obj):
    ports, problems = parse_service(obj)
    assert len(ports) == 1, problems
    return ports[0]


def test_services_without_a_virtual_ip_are_ignored() -> None:
    assert parse_service(service("h", "None"))[0] == ()
    assert parse_service(service("x", None, type="ExternalName", externalName="example.com"))[0] == ()
    assert parse_service(service("v6", "fd00::1"))[0] == ()
    other = service("o", "10.43.0.1")
    other["metadata"]["labels"] = {"service.kubernetes.io/service-proxy-name": "someone-else"}
    assert parse_service(other)[0] == ()


def test_bad_ports_are_skipped_and_named_the_rest_kept() -> None:
    obj = service("s", "10.43.0.1", [port("a", 0), port("b", 70000), port("c", 80, "ICMP"),
                                     port("ok", 80), port("ok", 81), {"port": "eighty"}, "junk"])
    ports, problems = parse_service(obj)
    assert [(p.name.port, p.port) for p in ports] == [("ok", 80)]
    assert len(problems) == 6


def test_fields_of_a_service_port() -> None:
    lb = only(service("lb", "10.43.0.1", [port("http", 80, node_port=30080)], type="LoadBalancer",
                      externalIPs=["192.0.2.1", "192.0.2.1", "10.43.0.1", "not-an-ip"],
                      status=lb_status("192.0.2.2", "192.0.2.1")))
    assert lb.cluster_ip == "10.43.0.1" and lb.node_port == 30080
    assert lb.external_ips == ("192.0.2.1",)  # deduplicated, the ClusterIP left out
    assert lb.lb_ips == ("192.0.2.2",)  # an address already external is not counted twice
    proxy_mode = only(service("p", "10.43.0.2", type="LoadBalancer", status=lb_status("192.0.2.3", mode="Proxy")))
    assert proxy_mode.lb_ips == ()  # ipMode Proxy: the load balancer delivers to the node itself
    not_lb = only(service("c", "10.43.0.3", [port("http", 80, node_port=30081)], status=lb_status("192.0.2.4")))
    assert not_lb.lb_ips == () and not_lb.node_port == 0
    sticky = only(service("s", "10.43.0.4", sessionAffinity="ClientIP"))
    assert sticky.affinity_timeout == DEFAULT_AFFINITY_TIMEOUT
    assert only(service("s", "10.43.0.4", sessionAffinity="ClientIP",
                        sessionAffinityConfig={"clientIP": {"timeoutSeconds": 5}})).affinity_timeout == 5
    assert only(service("s", "10.43.0.4")).affinity_timeout == 0
    # externalTrafficPolicy matters only to a Service reachable from outside
    assert not only(service("e", "10.43.0.5", externalTrafficPolicy="Local")).external_local
    assert only(service("e", "10.43.0.5", externalIPs=["192.0.2.9"], externalTrafficPolicy="Local")).external_local
    assert only(service("i", "10.43.0.6", internalTrafficPolicy="Local")).internal_local


def test_load_balancer_source_ranges_are_merged_and_only_a_load_balancers() -> None:
    ports, problems = parse_service(service(
        "lb", "10.43.0.1", type="LoadBalancer", status=lb_status("192.0.2.2"),
        loadBalancerSourceRanges=[" 10.0.1.0/24", "10.0.0.0/24", "10.0.0.7/32", "fd00::/8", "bogus", "010.9.0.0/16"]))
    assert ports[0].source_ranges == ((0x0A000000, 0x0A0001FF), (0x0A090000, 0x0A09FFFF))  # adjacent ones joined
    assert problems == ["loadBalancerSourceRanges entry 'bogus' is not a CIDR"]
    assert only(service("np", "10.43.0.2", type="NodePort", loadBalancerSourceRanges=["10.0.0.0/8"])).source_ranges == ()


def test_slices_and_their_endpoints() -> None:
    unlabelled = endpoint_slice("web", [endpoint("10.244.0.1")])
    del unlabelled["metadata"]["labels"]
    assert parse_slice(unlabelled) is None
    v6 = endpoint_slice("web", [endpoint("fd00::1")])
    v6["addressType"] = "IPv6"
    assert parse_slice(v6) is None
    key, name, info = parse_slice(endpoint_slice("web", [
        endpoint("10.244.0.2", ready=None), endpoint("bad"), {"addresses": []},
        endpoint("10.244.0.3", ready=False, terminating=True, node=None)]))
    assert (key, name) == ("default/web", "web-abcde")
    assert info.endpoints == (("10.244.0.2", "node-a", True, True, False),
                              ("10.244.0.3", "", False, True, True))
    assert info.ports == (("http", "tcp", 8080),)


def test_slices_merge_deduplicated_a_local_then_a_ready_copy_winning() -> None:
    a = parse_slice(endpoint_slice("web", [endpoint("10.244.0.9", node="node-b", ready=False),
                                           endpoint("10.244.0.10", node="node-b")], name="web-a"))[2]
    b = parse_slice(endpoint_slice("web", [endpoint("10.244.0.9", node="node-a"),
                                           endpoint("10.244.0.2", node="node-b", ready=False)], name="web-b"))[2]
    other_port = parse_slice(endpoint_slice("web", [endpoint("10.244.0.7")],
                                            [{"name": "metrics", "port": 9090, "protocol": "TCP"}], name="web-c"))[2]
    merged = merge_endpoints({"web-a": a, "web-b": b, "web-c": other_port}, "http", "tcp", "node-a")
    assert [(e.address, e.node_name, e.ready) for e in merged] == [
        ("10.244.0.2:8080", "node-b", False), ("10.244.0.9:8080", "node-a", True),
        ("10.244.0.10:8080", "node-b", True)]
    assert merge_endpoints({"web-a": a}, "http", "udp", "node-a") == ()


def view(endpoints: list[Endpoint], **kw) -> PortView:
    return PortView(ServicePort(PortName("default", "web", "http", "tcp"), "10.43.0.1", 80, **kw),
                    tuple(endpoints))


def addresses(endpoints) -> list[str]:
    return [e.ip for e in endpoints]


def test_ready_endpoints_are_used_and_terminating_ones_only_when_none_is_ready() -> None:
    ready = Endpoint("10.0.0.1", 80, "node-a")
    not_ready = Endpoint("10.0.0.2", 80, "node-a", ready=False, serving=False)
    draining = Endpoint("10.0.0.3", 80, "node-a", ready=False, serving=True, terminating=True)
    dead = Endpoint("10.0.0.4", 80, "node-a", ready=False, serving=False, terminating=True)
    found = categorize(view([ready, not_ready, draining, dead]), "node-a")
    assert addresses(found.cluster) == ["10.0.0.1"] and found.has_any and found.local == ()
    found = categorize(view([not_ready, draining, dead]), "node-a")
    assert addresses(found.cluster) == ["10.0.0.3"] and found.has_any
    found = categorize(view([not_ready, dead]), "node-a")
    assert found.cluster == () and not found.has_any


def test_local_traffic_policies_use_this_nodes_endpoints() -> None:
    here = Endpoint("10.0.0.1", 80, "node-a")
    there = Endpoint("10.0.0.2", 80, "node-b")
    found = categorize(view([here, there], internal_local=True), "node-a")
    assert found.cluster == () and addresses(found.local) == ["10.0.0.1"] == addresses(found.reachable)
    found = categorize(view([there], internal_local=True), "node-a")
    assert found.local == () and found.has_any  # endpoints elsewhere: drop, not reject
    draining_here = Endpoint("10.0.0.3", 80, "node-a", ready=False, serving=True, terminating=True)
    found = categorize(view([draining_here, there], internal_local=True), "node-a")
    assert addresses(found.local) == ["10.0.0.3"]
    found = categorize(view([here, there], node_port=30080, external_local=True), "node-a")
    assert addresses(found.cluster) == ["10.0.0.1", "10.0.0.2"] and addresses(found.local) == ["10.0.0.1"]
    assert addresses(found.reachable) == ["10.0.0.1", "10.0.0.2"]


def test_the_tracker_sees_only_real_changes() -> None:
    tracker = ChangeTracker("node-a")
    state = ProxyState()
    svc = service("web", "10.43.0.1")
    assert tracker.service_updated(svc)
    svc2 = {**svc, "metadata": {**svc["metadata"], "resourceVersion": "9"}}
    assert not tracker.service_updated(svc2)  # only the resourceVersion moved
    eps = endpoint_slice("web", [endpoint("10.244.0.1")])
    assert tracker.slice_updated(eps) and not tracker.slice_updated(eps)
    name = PortName("default", "web", "http", "tcp")
    assert refresh(tracker, state) == {name}
    assert refresh(tracker, state) == set()
    moved = endpoint_slice("other", [endpoint("10.244.0.1")], name="web-abcde")  # relabelled
    assert tracker.slice_updated(moved)
    assert refresh(tracker, state) == {name} and state.ports[name].endpoints == ()
    assert not tracker.slice_deleted(endpoint_slice("web", [], name="never-seen"))
    assert tracker.service_deleted(svc) and not tracker.service_deleted(svc)
    assert refresh(tracker, state) == {name} and not state.ports
    assert tracker.service_changes == 2 and tracker.endpoint_changes == 2
    assert not tracker.service_updated(service("h", "None"))  # never had ports: no change


def test_the_older_service_wins_a_contested_address() -> None:
    tracker = ChangeTracker("node-a")
    state = ProxyState()
    old = service("b-old", "10.43.0.1", externalIPs=["192.0.2.1"], created="2024-01-01T00:00:00Z")
    young = service("a-young", "10.43.0.2", externalIPs=["192.0.2.1"], created="2024-03-01T00:00:00Z")
    twin = service("c-twin", "10.43.0.3", [port("http", 80, node_port=30080)], type="NodePort",
                   created="2024-01-01T00:00:00Z")
    twin2 = service("d-twin", "10.43.0.4", [port("http", 80, node_port=30080)], type="NodePort",
                    created="2024-01-01T00:00:00Z")
    for obj in (young, old, twin, twin2):
        tracker.service_updated(obj)
    refresh(tracker, state)
    names = {n.service: n for n in state.ports}
    assert state.effective(names["b-old"]).service.external_ips == ("192.0.2.1",)
    assert state.effective(names["a-young"]).service.external_ips == ()
    assert state.effective(names["a-young"]).service.cluster_ip == "10.43.0.2"  # the rest stays
    assert state.effective(names["c-twin"]).service.node_port == 30080  # same age: by name
    assert state.effective(names["d-twin"]).service.node_port == 0
    assert {(claim, winner.service) for claim, winner, _ in state.conflicts()} == {
        (("192.0.2.1", "tcp", 80), "b-old"), (("nodeport", "tcp", 30080), "c-twin")}
    tracker.service_deleted(old)
    assert refresh(tracker, state) == {names["b-old"], names["a-young"]}  # the young one takes over
    assert state.effective(names["a-young"]).service.external_ips == ("192.0.2.1",)
    assert state.conflicts([names["a-young"]]) == []
