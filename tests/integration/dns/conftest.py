"""Fixtures of the cluster DNS integration tests.

- ``rest`` : a pybernetes RestClient on the test's API server;
- ``start_dns(**options)`` : starts a DnsService (listening on 127.0.0.1:<ephemeral>, metrics
  on an ephemeral port, no upstreams unless given) and stops it at the end of the test;
- ``dns`` : a small DNS client: ``await dns.udp(addr, name, qtype, edns=None)`` and
  ``await dns.tcp(addr, name, qtype)`` return the parsed dnslib reply;
- ``fake_upstream`` : a DNS server on 127.0.0.1 (UDP and TCP, same port) answering from a
  table the test fills, counting the queries it sees;
- ``eventually(check, within)`` : polls an async or sync check until it returns truthy.
"""

from __future__ import annotations

import asyncio
import inspect
import struct
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from dnslib import EDNS0, QTYPE, RR, DNSRecord

from pybernetes.client.kubeconfig import Config
from pybernetes.client.rest import RestClient
from pybernetes.dns.server import bind_pair
from pybernetes.dns.service import DnsOptions, DnsService

REPLY_TIMEOUT = 5.0  # seconds a test query waits for its reply


@pytest.fixture
async def rest(api_server) -> AsyncIterator[RestClient]:
    client = RestClient(Config(servers=[api_server.url]))
    try:
        yield client
    finally:
        await client.close()


@pytest.fixture
async def start_dns(rest):
    started: list[DnsService] = []

    async def start(**options: Any) -> DnsService:
        options.setdefault("listen", [("127.0.0.1", 0)])
        options.setdefault("metrics_port", 0)
        options.setdefault("upstreams", [])
        service = DnsService(rest, DnsOptions(**options))
        await service.start()
        started.append(service)
        return service

    try:
        yield start
    finally:
        for service in reversed(started):
            await service.stop()


class _Reply(asyncio.DatagramProtocol):
    def __init__(self, qid: int) -> None:
        self.qid = qid
        self.done: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()

    def datagram_received(self, data: bytes, addr: Any) -> None:
        if data[:2] == struct.pack("!H", self.qid) and not self.done.done():
            self.done.set_result(data)


class DnsClient:
    @staticmethod
    def question(name: str, qtype: str, edns: int | None) -> DNSRecord:
        q = DNSRecord.question(name, qtype)
        if edns is not None:
            q.add_ar(EDNS0(udp_len=edns))
        return q

    async def udp(self, addr: tuple[str, int], name: str, qtype: str = "A", *,
                  edns: int | None = None) -> DNSRecord:
        q = self.question(name, qtype, edns)
        loop = asyncio.get_running_loop()
        transport, proto = await loop.create_datagram_endpoint(lambda: _Reply(q.header.id), remote_addr=addr)
        try:
            transport.sendto(q.pack())
            async with asyncio.timeout(REPLY_TIMEOUT):
                return DNSRecord.parse(await proto.done)
        finally:
            transport.close()

    async def tcp(self, addr: tuple[str, int], name: str, qtype: str = "A") -> DNSRecord:
        q = self.question(name, qtype, None)
        async with asyncio.timeout(REPLY_TIMEOUT):
            reader, writer = await asyncio.open_connection(*addr)
            try:
                data = q.pack()
                writer.write(struct.pack("!H", len(data)) + data)
                (length,) = struct.unpack("!H", await reader.readexactly(2))
                return DNSRecord.parse(await reader.readexactly(length))
            finally:
                writer.close()


@pytest.fixture
def dns() -> DnsClient:
    return DnsClient()


class FakeUpstream:
    """Answers ``table[(name, qtype)] = (rcode, answer RRs, authority RRs)``; names in
    ``truncate`` get TC over UDP (and the full answer over TCP)."""

    def __init__(self) -> None:
        self.table: dict[tuple[str, str], tuple[int, list[RR], list[RR]]] = {}
        self.truncate: set[str] = set()
        self.queries: list[tuple[str, str, str]] = []  # (proto, name, qtype)
        self.port = 0
        self._transport: asyncio.DatagramTransport | None = None
        self._server: asyncio.AbstractServer | None = None

    def count(self, name: str, qtype: str = "A") -> int:
        return sum(1 for _, n, t in self.queries if n == name and t == qtype)

    def answer(self, data: bytes, proto: str) -> bytes:
        q = DNSRecord.parse(data)
        name, qtype = str(q.q.qname).rstrip(".").lower(), QTYPE[q.q.qtype]
        self.queries.append((proto, name, qtype))
        reply = q.reply()
        rcode, answer, authority = self.table.get((name, qtype), (3, [], []))
        reply.header.rcode = rcode
        if proto == "udp" and name in self.truncate:
            reply.header.tc = 1
        else:
            for rr in answer:
                reply.add_answer(rr)
            for rr in authority:
                reply.add_auth(rr)
        return bytes(reply.pack())

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        upstream = self

        class Udp(asyncio.DatagramProtocol):
            def connection_made(self, transport):
                self.transport = transport

            def datagram_received(self, data, addr):
                self.transport.sendto(upstream.answer(data, "udp"), addr)

        udp, tcp_sock = bind_pair("127.0.0.1", 0)  # one port for both, free for both
        self._transport, _ = await loop.create_datagram_endpoint(Udp, sock=udp)
        self.port = udp.getsockname()[1]

        async def tcp(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            try:
                (length,) = struct.unpack("!H", await reader.readexactly(2))
                reply = upstream.answer(await reader.readexactly(length), "tcp")
                writer.write(struct.pack("!H", len(reply)) + reply)
                await writer.drain()
            finally:
                writer.close()

        self._server = await asyncio.start_server(tcp, sock=tcp_sock)

    async def stop(self) -> None:
        if self._transport is not None:
            self._transport.close()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()


@pytest.fixture
async def fake_upstream() -> AsyncIterator[FakeUpstream]:
    upstream = FakeUpstream()
    await upstream.start()
    try:
        yield upstream
    finally:
        await upstream.stop()


async def _eventually(check: Callable[[], Any], within: float = 10.0, interval: float = 0.05) -> Any:
    deadline = asyncio.get_running_loop().time() + within
    last: Any = None
    while True:
        try:
            last = check()
            if inspect.isawaitable(last):
                last = await last
            if last:
                return last
        except AssertionError as exc:
            last = exc
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"condition not met within {within}s (last: {last!r})")
        await asyncio.sleep(interval)


@pytest.fixture
def eventually():
    return _eventually
