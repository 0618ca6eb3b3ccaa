"""Fuzzing the DNS server (hypothesis): random bytes and mutated valid queries over UDP and
TCP never stop it — after every example a valid query still gets its answer, over the same
transport.  The server (DnsServer + QueryHandler over a small RecordIndex, forwarding to a
port where nothing listens) runs on its own event loop in a thread; the test talks to it
with blocking sockets."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
import threading

import pytest
from dnslib import EDNS0, DNSRecord
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pybernetes.dns.forward import Forwarder
from pybernetes.dns.handler import QueryHandler
from pybernetes.dns.records import RecordIndex
from pybernetes.dns.server import DnsServer

NAME = "web.default.svc.cluster.local"


def _valid_queries() -> list[bytes]:
    out = []
    for name, qtype in [(NAME, "A"), ("big.default.svc.cluster.local", "A"),
                        ("_http._tcp.web.default.svc.cluster.local", "SRV"), ("example.com", "A"),
                        ("5.0.43.10.in-addr.arpa", "PTR"), ("1-2-3-4.default.pod.cluster.local", "AAAA")]:
        q = DNSRecord.question(name, qtype)
        q.add_ar(EDNS0(udp_len=1232))
        out.append(bytes(q.pack()))
    return out


VALID = _valid_queries()


@pytest.fixture(scope="module")
def server_addr():
    index = RecordIndex("cluster.local", reverse_cidrs=["10.43.0.0/16"])
    index.set_service({"metadata": {"namespace": "default", "name": "web"},
                       "spec": {"clusterIP": "10.43.0.5", "ports": [{"name": "http", "port": 80}]}})
    index.set_service({"metadata": {"namespace": "default", "name": "big"}, "spec": {"clusterIP": "None"}})
    index.set_slice({"metadata": {"namespace": "default", "name": "big-1",
                                  "labels": {"kubernetes.io/service-name": "big"}},
                     "addressType": "IPv4", "endpoints": [{"addresses": [f"10.42.0.{i}"]} for i in range(1, 80)]})
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        dead = probe.getsockname()
    handler = QueryHandler(index, Forwarder([dead], timeout=0.2))
    server = DnsServer(handler, [("127.0.0.1", 0)], idle_timeout=2)
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    asyncio.run_coroutine_threadsafe(server.start(), loop).result(10)
    try:
        yield server.addresses[0]
    finally:
        asyncio.run_coroutine_threadsafe(server.stop(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()


def udp_answer(addr, query: bytes) -> DNSRecord:
    """Send a valid query; the reply with its ID (replies to fuzz are skipped)."""
    qid = query[:2]
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(5)
        sock.sendto(query, addr)
        while True:
            data, _ = sock.recvfrom(65535)
            if data[:2] == qid:
                return DNSRecord.parse(data)


def tcp_answer(addr, query: bytes) -> DNSRecord:
    with socket.create_connection(addr, timeout=5) as sock:
        sock.sendall(struct.pack("!H", len(query)) + query)
        return DNSRecord.parse(_read_frame(sock))


def _read_frame(sock: socket.socket) -> bytes:
    def exactly(n: int) -> bytes:
        buf = b""
        while len(buf) < n:
            chunk = sock.recv(n - len(buf))
            if not chunk:
                raise ConnectionError("closed")
            buf += chunk
        return buf
    (length,) = struct.unpack("!H", exactly(2))
    return exactly(length)


def check_alive(addr) -> None:
    reply = udp_answer(addr, VALID[0])
    assert reply.header.rcode == 0 and [str(rr.rdata) for rr in reply.rr] == ["10.43.0.5"]
    reply = tcp_answer(addr, VALID[0])
    assert [str(rr.rdata) for rr in reply.rr] == ["10.43.0.5"]


@st.composite
def mutated(draw) -> bytes:
    data = bytearray(draw(st.sampled_from(VALID)))
    for _ in range(draw(st.integers(1, 6))):
        op = draw(st.sampled_from(["flip", "cut", "insert", "set"]))
        pos = draw(st.integers(0, max(0, len(data) - 1)))
        if op == "flip" and data:
            data[pos] ^= 1 << draw(st.integers(0, 7))
        elif op == "cut":
            del data[pos:pos + draw(st.integers(1, 8))]
        elif op == "insert":
            data[pos:pos] = draw(st.binary(min_size=1, max_size=8))
        elif data:
            data[pos] = draw(st.sampled_from([0x00, 0xC0, 0xFF, 0x3F, 0x40]))
    return bytes(data)


packets = st.one_of(st.binary(max_size=600), mutated())
FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@FUZZ
@given(data=packets)
def test_udp_fuzz(server_addr, data):
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.sendto(data, server_addr)
    check_alive(server_addr)


@FUZZ
@given(data=packets, framed=st.booleans())
def test_tcp_fuzz(server_addr, data, framed):
    with socket.create_connection(server_addr, timeout=5) as sock:
        payload = struct.pack("!H", len(data)) + data if framed else data
        with contextlib.suppress(OSError):
            sock.sendall(payload)
            # a framed message may be answered; then the connection still serves a valid query
            if framed:
                qid = struct.pack("!H", (int.from_bytes(data[:2].ljust(2, b"\0"), "big") + 1) % 65536)
                valid = qid + VALID[0][2:]  # an ID the fuzz message does not have
                sock.sendall(struct.pack("!H", len(valid)) + valid)
                sock.settimeout(5)
                for _ in range(2):
                    frame = _read_frame(sock)
                    if frame[:2] == qid:
                        assert [str(rr.rdata) for rr in DNSRecord.parse(frame).rr] == ["10.43.0.5"]
                        break
    check_alive(server_addr)
