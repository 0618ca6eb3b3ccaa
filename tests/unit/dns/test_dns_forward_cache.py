"""forward: resolv.conf parsing, loop avoidance, the cache's TTL rules (positive: the
smallest TTL, negative: the SOA minimum, both capped; SERVFAIL never; TTLs count down), and
the EndpointSlice the server publishes (publish.dns_slice / matches), and DnsOptions'
validation and address parsing."""

from __future__ import annotations

import pytest
from dnslib import QTYPE, RR, SOA, A

from pybernetes.dns import forward
from pybernetes.dns.forward import Forwarder, read_resolv_conf, without_loops
from pybernetes.dns.publish import dns_slice, matches
from pybernetes.dns.records import NOERROR, NXDOMAIN, SERVFAIL, Answer
from pybernetes.dns.service import DnsOptions, parse_address


def test_read_resolv_conf(tmp_path):
    path = tmp_path / "resolv.conf"
    path.write_text("# comment\nsearch example.com\nnameserver 10.0.0.2\nnameserver  fe80::1%eth0 # x\n"
                    "nameserver not-an-ip\noptions ndots:5\nnameserver 1.1.1.1\n")
    assert read_resolv_conf(path) == [("10.0.0.2", 53), ("fe80::1", 53), ("1.1.1.1", 53)]
    assert read_resolv_conf(tmp_path / "missing") == []


def test_without_loops():
    ups = [("127.0.0.1", 53), ("10.0.0.2", 53), ("127.0.0.53", 53), ("127.0.0.1", 5353)]
    assert without_loops(ups, [("127.0.0.1", 53)]) == ups[1:]
    assert without_loops(ups, [("0.0.0.0", 53)]) == [("10.0.0.2", 53), ("127.0.0.1", 5353)]
    assert without_loops(ups, [("10.0.0.2", 53)]) == [ups[0], ups[2], ups[3]]


@pytest.mark.parametrize("text,expect", [
    ("10.0.0.1", ("10.0.0.1", 53)), ("10.0.0.1:5353", ("10.0.0.1", 5353)),
    ("[fd00::1]:54", ("fd00::1", 54)), ("fd00::1", ("fd00::1", 53)),
])
def test_parse_address(text, expect):
    assert parse_address(text) == expect


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


@pytest.fixture
def clock(monkeypatch):
    c = Clock()
    monkeypatch.setattr(forward.time, "monotonic", c)
    return c


def a_record(ttl):
    return RR("example.com.", QTYPE.A, rdata=A("1.2.3.4"), ttl=ttl)


def soa(ttl, minimum):
    return RR("example.com.", QTYPE.SOA, ttl=ttl, rdata=SOA("ns.example.com.", "h.example.com.",
                                                            (1, 2, 3, 4, minimum)))


KEY = ("example.com.", 1, 1)


def test_positive_answer_cached_for_its_ttl_capped(clock):
    fwd = Forwarder([])
    fwd._store(KEY, Answer(NOERROR, [a_record(3600)], [], []))
    clock.now += 10
    hit = fwd._cached(KEY)
    assert hit is not None and hit.answer[0].ttl == 20  # min(3600, 30) - 10
    clock.now += 21
    assert fwd._cached(KEY) is None

    fwd._store(KEY, Answer(NOERROR, [a_record(4)], [], []))
    clock.now += 3
    assert fwd._cached(KEY).answer[0].ttl == 1
    clock.now += 1
    assert fwd._cached(KEY) is None


def test_negative_answers_cached_for_the_soa_minimum(clock):
    fwd = Forwarder([])
    fwd._store(KEY, Answer(NXDOMAIN, [], [soa(3600, 10)], []))
    clock.now += 9
    hit = fwd._cached(KEY)
    assert hit.rcode == NXDOMAIN and hit.authority[0].ttl == 1
    clock.now += 1
    assert fwd._cached(KEY) is None
    fwd._store(KEY, Answer(NOERROR, [], [soa(5, 600)], []))  # NODATA: min(SOA ttl, minimum)
    clock.now += 4
    assert fwd._cached(KEY).rcode == NOERROR
    clock.now += 1
    assert fwd._cached(KEY) is None
    fwd._store(KEY, Answer(NXDOMAIN, [], [soa(600, 600)], []))  # capped at 30
    clock.now += 30
    assert fwd._cached(KEY) is None


def test_uncacheable_answers(clock):
    fwd = Forwarder([])
    fwd._store(KEY, Answer(SERVFAIL, [], [], []))
    fwd._store(("b.", 1, 1), Answer(NXDOMAIN, [], [], []))  # no SOA
    fwd._store(("c.", 1, 1), Answer(NOERROR, [a_record(0)], [], []))
    assert fwd._cached(KEY) is None and fwd._cached(("b.", 1, 1)) is None and fwd._cached(("c.", 1, 1)) is None


def test_cache_size_is_bounded(clock):
    fwd = Forwarder([], cache_size=3)
    for i in range(5):
        fwd._store((f"n{i}.", 1, 1), Answer(NOERROR, [a_record(30)], [], []))
    assert len(fwd._cache) == 3 and fwd._cached(("n0.", 1, 1)) is None and fwd._cached(("n4.", 1, 1))


async def test_no_upstream_is_servfail():
    assert (await Forwarder([]).resolve("example.com", 1)).rcode == SERVFAIL


def test_dns_slice_shape():
    body = dns_slice("node-1", "10.42.0.1", 53, 9153, "uid-1")
    assert body["metadata"]["name"] == "kube-dns-node-1" and body["metadata"]["namespace"] == "kube-system"
    assert body["metadata"]["labels"] == {"kubernetes.io/service-name": "kube-dns",
                                          "endpointslice.kubernetes.io/managed-by": "pybernetes-dns"}
    assert body["metadata"]["ownerReferences"] == [{"apiVersion": "v1", "kind": "Node", "name": "node-1",
                                                    "uid": "uid-1"}]
    assert body["addressType"] == "IPv4"
    (endpoint,) = body["endpoints"]
    assert endpoint["addresses"] == ["10.42.0.1"] and endpoint["nodeName"] == "node-1"
    assert endpoint["conditions"]["ready"] is True and endpoint["conditions"]["serving"] is True
    assert [(p["name"], p["protocol"], p["port"]) for p in body["ports"]] == [
        ("dns", "UDP", 53), ("dns-tcp", "TCP", 53), ("metrics", "TCP", 9153)]
    no_node = dns_slice("n", "fd00::1", 5353, None)
    assert "ownerReferences" not in no_node["metadata"] and no_node["addressType"] == "IPv6"
    assert [p["name"] for p in no_node["ports"]] == ["dns", "dns-tcp"]


def test_matches():
    desired = dns_slice("n", "10.0.0.1", 53, 9153, "u")
    current = {**desired, "metadata": {**desired["metadata"], "uid": "x", "resourceVersion": "5",
                                       "labels": {**desired["metadata"]["labels"], "extra": "kept"}}}
    assert matches(current, desired)
    assert not matches({**current, "ports": desired["ports"][:2]}, desired)
    assert not matches({**current, "metadata": {**current["metadata"], "ownerReferences": []}}, desired)
    assert matches(current, dns_slice("n", "10.0.0.1", 53, 9153))  # no owner known yet: any is fine


@pytest.mark.parametrize("options,message", [
    ({"listen": []}, "listen address"),
    ({"listen": [("localhost", 53)]}, "listen 'localhost' is not an IP"),
    ({"listen": [("127.0.0.1", 70000)]}, "port"),
    ({"upstreams": [("8.8.8.8.8", 53)]}, "upstreams"),
    ({"cluster_domain": "bad..domain"}, "cluster domain"),
    ({"ttl": -1}, "ttl"),
    ({"advertise_address": "node-1"}, "advertise address"),
    ({"service_cidr": "10.43.0.0/33"}, "service CIDR"),
    ({"metrics_port": -1}, "metrics port"),
])
def test_bad_options_are_refused_clearly(options, message):
    with pytest.raises(ValueError, match=message):
        DnsOptions(**options).validate()
    DnsOptions().validate()
