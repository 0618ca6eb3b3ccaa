"""Forwarding through a running DnsService to a fake upstream DNS server on 127.0.0.1:
positive and negative answers are cached (the upstream sees one query), TTLs count down,
a truncated upstream reply is fetched again over TCP, an upstream that is down or silent
gives SERVFAIL, an ExternalName outside the zone carries the CNAME and the upstream's
answer, and cluster names never reach the upstream."""

from __future__ import annotations

import asyncio
import socket

from dnslib import QTYPE, RR, SOA, A

SERVICES = "/v1/services"


def a_rr(name, ip, ttl=60):
    return RR(name + ".", QTYPE.A, rdata=A(ip), ttl=ttl)


def soa_rr(zone, minimum):
    return RR(zone + ".", QTYPE.SOA, ttl=300, rdata=SOA(f"ns.{zone}.", f"h.{zone}.", (1, 2, 3, 4, minimum)))


def closed_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def test_positive_answers_are_cached(start_dns, dns, fake_upstream):
    fake_upstream.table[("example.com", "A")] = (0, [a_rr("example.com", "93.184.216.34", ttl=60)], [])
    server = await start_dns(upstreams=[("127.0.0.1", fake_upstream.port)])
    addr = server.dns_addresses[0]
    first = await dns.udp(addr, "example.com")
    assert first.header.rcode == 0 and first.header.aa == 0 and first.header.ra == 1
    assert [str(rr.rdata) for rr in first.rr] == ["93.184.216.34"]
    assert first.rr[0].ttl <= 30  # capped
    second = await dns.tcp(addr, "EXAMPLE.com")
    assert [str(rr.rdata) for rr in second.rr] == ["93.184.216.34"]
    assert fake_upstream.count("example.com") == 1
    # concurrent identical queries share one exchange
    fake_upstream.table[("other.com", "A")] = (0, [a_rr("other.com", "1.1.1.1")], [])
    replies = await asyncio.gather(*(dns.udp(addr, "other.com") for _ in range(5)))
    assert all(r.header.rcode == 0 for r in replies)
    assert fake_upstream.count("other.com") == 1


async def test_negative_answers_are_cached(start_dns, dns, fake_upstream):
    fake_upstream.table[("nx.example.com", "A")] = (3, [], [soa_rr("example.com", 20)])
    fake_upstream.table[("nodata.example.com", "AAAA")] = (0, [], [soa_rr("example.com", 20)])
    server = await start_dns(upstreams=[("127.0.0.1", fake_upstream.port)])
    addr = server.dns_addresses[0]
    for _ in range(3):
        reply = await dns.udp(addr, "nx.example.com")
        assert reply.header.rcode == 3 and reply.auth[0].rtype == QTYPE.SOA
        nodata = await dns.udp(addr, "nodata.example.com", "AAAA")
        assert nodata.header.rcode == 0 and nodata.rr == []
    assert fake_upstream.count("nx.example.com") == 1
    assert fake_upstream.count("nodata.example.com", "AAAA") == 1


async def test_truncated_upstream_reply_is_retried_over_tcp(start_dns, dns, fake_upstream):
    fake_upstream.table[("big.example.com", "A")] = (0, [a_rr("big.example.com", f"10.9.0.{i}") for i in range(1, 6)],
                                                      [])
    fake_upstream.truncate.add("big.example.com")
    server = await start_dns(upstreams=[("127.0.0.1", fake_upstream.port)])
    reply = await dns.udp(server.dns_addresses[0], "big.example.com")
    assert len(reply.rr) == 5
    assert [p for p, n, _ in fake_upstream.queries if n == "big.example.com"] == ["udp", "tcp"]


async def test_upstream_down_is_servfail(start_dns, dns):
    server = await start_dns(upstreams=[("127.0.0.1", closed_udp_port())], forward_timeout=0.5)
    reply = await dns.udp(server.dns_addresses[0], "example.com")
    assert reply.header.rcode == 2


async def test_silent_upstream_times_out_to_servfail_and_next_upstream_is_tried(start_dns, dns, fake_upstream):
    silent = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    silent.bind(("127.0.0.1", 0))
    try:
        fake_upstream.table[("example.com", "A")] = (0, [a_rr("example.com", "1.2.3.4")], [])
        server = await start_dns(upstreams=[silent.getsockname()], forward_timeout=0.3)
        loop = asyncio.get_running_loop()
        started = loop.time()
        reply = await dns.udp(server.dns_addresses[0], "example.com")
        assert reply.header.rcode == 2 and loop.time() - started < 3
        both = await start_dns(upstreams=[silent.getsockname(), ("127.0.0.1", fake_upstream.port)],
                               forward_timeout=0.3)
        reply = await dns.udp(both.dns_addresses[0], "example.com")
        assert reply.header.rcode == 0 and [str(rr.rdata) for rr in reply.rr] == ["1.2.3.4"]
    finally:
        silent.close()


async def test_external_name_outside_the_zone(rest, start_dns, dns, fake_upstream):
    fake_upstream.table[("db.example.com", "A")] = (0, [a_rr("db.example.com", "192.0.2.7")], [])
    await rest.create(SERVICES, {"apiVersion": "v1", "kind": "Service",
                                 "metadata": {"name": "ext", "namespace": "default"},
                                 "spec": {"type": "ExternalName", "externalName": "db.example.com"}}, "default")
    server = await start_dns(upstreams=[("127.0.0.1", fake_upstream.port)])
    reply = await dns.udp(server.dns_addresses[0], "ext.default.svc.cluster.local")
    assert [(rr.rtype, str(rr.rdata)) for rr in reply.rr] == [(QTYPE.CNAME, "db.example.com."),
                                                             (QTYPE.A, "192.0.2.7")]


async def test_cluster_names_never_reach_the_upstream(start_dns, dns, fake_upstream):
    server = await start_dns(upstreams=[("127.0.0.1", fake_upstream.port)], service_cidr="10.43.0.0/16")
    addr = server.dns_addresses[0]
    assert (await dns.udp(addr, "nope.default.svc.cluster.local")).header.rcode == 3
    assert (await dns.udp(addr, "9.9.43.10.in-addr.arpa", "PTR")).header.rcode == 3
    assert fake_upstream.queries == []
    await dns.udp(addr, "1.0.0.10.in-addr.arpa", "PTR")  # outside the service CIDR: forwarded
    assert fake_upstream.count("1.0.0.10.in-addr.arpa", "PTR") == 1
