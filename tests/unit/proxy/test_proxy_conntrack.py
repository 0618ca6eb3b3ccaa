"""What the proxy deletes from conntrack after a sync that changed UDP service ports
(proxy/conntrack.py), and the ``conntrack`` tool run on real entries in a scratch network
namespace (root and conntrack needed for that part)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import uuid

import pytest

from pybernetes.proxy.conntrack import Conntrack, ConntrackError, Flow, stale_flows
from pybernetes.proxy.model import Endpoint, PortName, PortView, ServicePort

UDP = PortName("default", "dns", "dns", "udp")
TCP = PortName("default", "dns", "dns-tcp", "tcp")


def view(*endpoints: Endpoint, name: PortName = UDP, **kw) -> PortView:
    return PortView(ServicePort(name, "10.43.0.10", 53, **kw), tuple(endpoints))


A = Endpoint("10.244.0.1", 5353)
B = Endpoint("10.244.0.2", 5353)


def test_an_endpoint_that_left_loses_its_flows_to_every_address_of_the_port() -> None:
    before = {UDP: view(A, B, node_port=30053, external_ips=("192.0.2.1",), lb_ips=("192.0.2.2",))}
    after = {UDP: view(B, node_port=30053, external_ips=("192.0.2.1",), lb_ips=("192.0.2.2",))}
    assert stale_flows(before, after) == [
        Flow("", 30053, "10.244.0.1"),
        Flow("10.43.0.10", 0, "10.244.0.1"),
        Flow("192.0.2.1", 0, "10.244.0.1"),
        Flow("192.0.2.2", 0, "10.244.0.1"),
    ]
    # no longer serving counts as gone; ready or not does not matter while it serves
    assert stale_flows({UDP: view(A, B)}, {UDP: view(A, Endpoint("10.244.0.2", 5353, serving=False))}) == \
        [Flow("10.43.0.10", 0, "10.244.0.2")]
    assert stale_flows({UDP: view(A)}, {UDP: view(Endpoint("10.244.0.1", 5353, ready=False))}) == []


def test_a_port_that_gets_its_first_endpoint_loses_every_flow_to_it() -> None:
    flows = stale_flows({UDP: view(Endpoint("10.244.0.1", 5353, serving=False), node_port=30053)},
                        {UDP: view(A, node_port=30053, external_ips=("192.0.2.1",))})
    assert flows == [Flow("", 30053, ""), Flow("10.43.0.10", 0, ""), Flow("192.0.2.1", 0, "")]
    assert stale_flows({UDP: None}, {UDP: view(A)}) == [Flow("10.43.0.10")]  # a new Service
    assert stale_flows({UDP: None}, {UDP: view()}) == []  # nothing serves: nothing to free


def test_a_port_that_went_away_loses_the_flows_to_its_cluster_ip_and_tcp_is_left_alone() -> None:
    assert stale_flows({UDP: view(A)}, {UDP: None}) == [Flow("10.43.0.10")]
    assert stale_flows({UDP: view(A)}, {}) == [Flow("10.43.0.10")]
    assert stale_flows({TCP: view(A, name=TCP)}, {TCP: view(B, name=TCP)}) == []
    assert stale_flows({UDP: view(A)}, {UDP: view(A)}) == []  # changed and changed back


def test_filter_lines() -> None:
    assert Flow("10.43.0.10", 0, "10.244.0.1").line() == \
        "-D -f ipv4 -p udp --orig-dst 10.43.0.10 --reply-src 10.244.0.1"
    assert Flow("", 30053, "").line() == "-D -f ipv4 -p udp --orig-port-dst 30053"


async def test_a_missing_tool_is_an_error_not_a_crash() -> None:
    tool = Conntrack("/nonexistent/conntrack")
    assert not tool.available()
    assert await tool.delete([]) == 0
    with pytest.raises(ConntrackError, match="cannot run"):
        await tool.delete([Flow("10.43.0.10")])


def _tool_missing() -> str | None:
    if os.geteuid() != 0:
        return "needs root (network namespaces)"
    return None if Conntrack().available() else "needs conntrack (conntrack-tools)"


@pytest.fixture
def scratch_netns():
    netns = f"pybct-{uuid.uuid4().hex[:8]}"
    subprocess.run(["ip", "netns", "add", netns], check=True)
    try:
        yield netns
    finally:
        subprocess.run(["ip", "netns", "del", netns], check=False)


@pytest.mark.skipif(_tool_missing() is not None, reason=str(_tool_missing()))
def test_the_tool_deletes_exactly_the_matching_entries_in_its_namespace(scratch_netns: str) -> None:
    inserted: list[str] = []

    def insert(proto: str, dst: str, dport: int, endpoint: str) -> None:
        sport = str(4000 + len(inserted))  # each flow from a port of its own
        inserted.append(sport)
        extra = ["--state", "ESTABLISHED"] if proto == "tcp" else []
        subprocess.run(["ip", "netns", "exec", scratch_netns, "conntrack", "-I", "-p", proto, "-s", "10.0.0.1",
                        "-d", dst, "--sport", sport, "--dport", str(dport), "-r", endpoint, "-q", "10.0.0.1",
                        "--reply-port-src", "5353", "--reply-port-dst", sport, "-t", "100", *extra],
                       check=True, capture_output=True)

    insert("udp", "10.43.0.10", 53, "10.244.0.1")  # to the endpoint that left: goes
    insert("udp", "10.43.0.10", 53, "10.244.0.2")  # to the one that stays: stays
    insert("tcp", "10.43.0.10", 53, "10.244.0.1")  # TCP: stays
    insert("udp", "172.31.254.1", 30053, "10.244.0.1")  # via the node port: goes
    tool = Conntrack(netns=scratch_netns)
    deleted = asyncio.run(tool.delete([Flow("10.43.0.10", 0, "10.244.0.1"), Flow("", 30053, "10.244.0.1"),
                                       Flow("10.43.0.99")]))  # matches nothing: fine
    assert deleted == 2
    left = subprocess.run(["ip", "netns", "exec", scratch_netns, "conntrack", "-L"], capture_output=True,
                          text=True).stdout
    assert "src=10.244.0.2" in left and "tcp" in left and "dport=30053" not in left
    assert left.count("\n") == 2


def test_the_batch_reaches_the_tool_under_uvloop(tmp_path) -> None:
    """conntrack opens its batch by path ("-" means /dev/stdin), which cannot be opened when
    stdin is a socket, as uvloop's subprocess pipes are: the batch goes in a file."""
    import uvloop

    fake = tmp_path / "conntrack"
    fake.write_text('#!/bin/sh\n[ "$1" = -R ] || exit 3\n'
                    'if [ "$2" = - ]; then exec cat /dev/stdin; else exec cat "$2"; fi\n')
    fake.chmod(0o755)
    flows = stale_flows({}, {})  # nothing: no run at all
    assert uvloop.run(Conntrack(str(fake)).delete(flows)) == 0
    flow = Flow(orig_dst="10.43.0.10")
    assert uvloop.run(Conntrack(str(fake)).delete([flow, flow])) == 2
