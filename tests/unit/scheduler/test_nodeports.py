"""NodePorts: host-port conflicts as upstream (0.0.0.0 against specific IPs, protocols),
sidecar ports, PreFilter skip, reason string and events."""

from __future__ import annotations

import pytest

from pybernetes.scheduler.framework import Code, CycleState
from pybernetes.scheduler.nodeinfo import node_info_of
from pybernetes.scheduler.plugins.nodeports import NodePorts, pod_host_ports

REASON = "node(s) didn't have free ports for the requested pod ports"
NODE = {"metadata": {"name": "n"}, "status": {"allocatable": {"cpu": "4", "pods": "10"}}}


def port_spec(spec: str) -> dict:
    """"PROTO/IP/PORT" -> a container port."""
    protocol, ip, port = spec.split("/")
    out: dict = {"containerPort": int(port), "hostPort": int(port)}
    if protocol:
        out["protocol"] = protocol
    if ip:
        out["hostIP"] = ip
    return out


def pod(name: str, *ports: str) -> dict:
    return {"metadata": {"name": name, "namespace": "default"},
            "spec": {"containers": [{"name": "c", "ports": [port_spec(p) for p in ports]}]}}


CASES = [
    ("nothing running", pod("p", "TCP/127.0.0.1/8080"), [], True),
    ("other port", pod("p", "UDP/127.0.0.1/8080"), [pod("e", "UDP/127.0.0.1/9090")], True),
    ("same udp port", pod("p", "UDP/127.0.0.1/8080"), [pod("e", "UDP/127.0.0.1/8080")], False),
    ("same tcp port", pod("p", "TCP/127.0.0.1/8080"), [pod("e", "TCP/127.0.0.1/8080")], False),
    ("different host ip", pod("p", "TCP/127.0.0.1/8080"), [pod("e", "TCP/127.0.0.2/8080")], True),
    ("different protocol", pod("p", "UDP/127.0.0.1/8080"), [pod("e", "TCP/127.0.0.1/8080")], True),
    ("second udp port conflict", pod("p", "UDP/127.0.0.1/8000", "UDP/127.0.0.1/8080"),
     [pod("e", "UDP/127.0.0.1/8080")], False),
    ("first tcp port conflict", pod("p", "TCP/127.0.0.1/8001", "UDP/127.0.0.1/8080"),
     [pod("e", "TCP/127.0.0.1/8001", "UDP/127.0.0.1/8081")], False),
    ("wanted 0.0.0.0 conflicts with a specific ip", pod("p", "TCP/0.0.0.0/8001"),
     [pod("e", "TCP/127.0.0.1/8001")], False),
    ("wanted specific ip conflicts with a used 0.0.0.0", pod("p", "TCP/10.0.10.10/8001"),
     [pod("e", "TCP/0.0.0.0/8001")], False),
    ("specific ip against 0.0.0.0 of another protocol", pod("p", "UDP/127.0.0.1/8001"),
     [pod("e", "TCP/0.0.0.0/8001")], True),
    ("udp 0.0.0.0 against udp on a specific ip", pod("p", "UDP/0.0.0.0/8001"),
     [pod("e", "TCP/0.0.0.0/8001", "UDP/127.0.0.1/8001")], False),
    ("empty ip and protocol mean 0.0.0.0 and TCP", pod("p", "//8001"), [pod("e", "TCP/10.1.1.1/8001")], False),
    ("empty protocol is TCP, not UDP", pod("p", "/0.0.0.0/8001"), [pod("e", "UDP/10.1.1.1/8001")], True),
]


@pytest.mark.parametrize(("title", "p", "existing", "fits"), CASES, ids=[c[0] for c in CASES])
def test_filter(title: str, p: dict, existing: list[dict], fits: bool) -> None:
    plugin, state = NodePorts(), CycleState()
    _, pre = plugin.pre_filter(state, p, [])
    assert pre.is_success()
    status = plugin.filter(state, p, node_info_of(NODE, existing))
    if fits:
        assert status.is_success()
    else:
        assert status.code == Code.UNSCHEDULABLE and status.reasons == (REASON,)


def test_pre_filter_skips_pods_without_host_ports() -> None:
    p = {"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c", "ports": [{"containerPort": 80}]}]}}
    _, status = NodePorts().pre_filter(CycleState(), p, [])
    assert status.is_skip()


def test_host_ports_of_sidecars_count_and_of_plain_init_containers_do_not() -> None:
    p = {"metadata": {"name": "p"}, "spec": {
        "initContainers": [{"name": "init", "ports": [{"containerPort": 1, "hostPort": 1000}]},
                           {"name": "side", "restartPolicy": "Always",
                            "ports": [{"containerPort": 2, "hostPort": 2000, "protocol": "UDP"}]}],
        "containers": [{"name": "c", "ports": [{"containerPort": 3, "hostPort": 3000, "hostIP": "10.0.0.1"},
                                               {"containerPort": 4, "hostPort": 0}]}]}}
    assert pod_host_ports(p) == (("0.0.0.0", "UDP", 2000), ("10.0.0.1", "TCP", 3000))


def test_filter_without_pre_filter_computes_the_ports() -> None:
    p = pod("p", "TCP/0.0.0.0/80")
    status = NodePorts().filter(CycleState(), p, node_info_of(NODE, [pod("e", "TCP/1.2.3.4/80")]))
    assert status.reasons == (REASON,)


def test_events() -> None:
    assert {(e.resource, e.action) for e in NodePorts().events_to_register()} == {("Pod", "Delete"), ("Node", "Add")}
