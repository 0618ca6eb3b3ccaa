"""server.DnsServer on real sockets: UDP and TCP share the (ephemeral) port, an address the
machine does not have yet can be listened on (IP_FREEBIND), idle TCP connections are closed,
a connection that sends a frame shorter than a header is closed, and stop() releases the
ports."""

from __future__ import annotations

import asyncio
import socket
import struct

from dnslib import DNSRecord

from pybernetes.dns.handler import QueryHandler
from pybernetes.dns.records import RecordIndex
from pybernetes.dns.server import DnsServer

ABSENT = "198.51.100.77"  # TEST-NET-2: on no interface of this machine


def index() -> RecordIndex:
    idx = RecordIndex()
    idx.set_service({"metadata": {"namespace": "default", "name": "web"}, "spec": {"clusterIP": "10.43.0.5"}})
    return idx


async def test_udp_and_tcp_share_the_port_and_stop_releases_it(dns):
    server = DnsServer(QueryHandler(index()), [("127.0.0.1", 0)])
    await server.start()
    try:
        (addr,) = server.addresses
        assert addr[1] != 0
        assert [str(rr.rdata) for rr in (await dns.udp(addr, "web.default.svc.cluster.local")).rr] == ["10.43.0.5"]
        assert [str(rr.rdata) for rr in (await dns.tcp(addr, "web.default.svc.cluster.local")).rr] == ["10.43.0.5"]
    finally:
        await server.stop()
    for kind in (socket.SOCK_DGRAM, socket.SOCK_STREAM):
        with socket.socket(socket.AF_INET, kind) as sock:
            sock.bind(addr)  # free again


async def test_listening_on_an_address_that_does_not_exist_yet():
    assert ABSENT not in {a[4][0] for a in socket.getaddrinfo(socket.gethostname(), None)}
    server = DnsServer(QueryHandler(index()), [(ABSENT, 0), ("127.0.0.1", 0)])
    await server.start()
    try:
        assert [h for h, _ in server.addresses] == [ABSENT, "127.0.0.1"]
        assert all(port for _, port in server.addresses)
    finally:
        await server.stop()


async def test_idle_tcp_connections_are_closed():
    server = DnsServer(QueryHandler(index()), [("127.0.0.1", 0)], idle_timeout=0.2)
    await server.start()
    try:
        reader, writer = await asyncio.open_connection(*server.addresses[0])
        q = DNSRecord.question("web.default.svc.cluster.local").pack()
        writer.write(struct.pack("!H", len(q)) + q)
        (length,) = struct.unpack("!H", await asyncio.wait_for(reader.readexactly(2), 5))
        await reader.readexactly(length)
        assert await asyncio.wait_for(reader.read(), 5) == b""  # closed by the server when idle
        writer.close()

        reader, writer = await asyncio.open_connection(*server.addresses[0])
        writer.write(b"\x00\x03abc")  # a frame too short for a header
        assert await asyncio.wait_for(reader.read(), 5) == b""
        writer.close()
    finally:
        await server.stop()
