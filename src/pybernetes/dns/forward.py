"""Forwarding: names outside the cluster's zones go to the node's resolvers, through a cache.

``Forwarder.resolve(qname, qtype)`` answers from its cache or asks the upstream servers
(the nameservers of /etc/resolv.conf by default): over UDP with EDNS0, again over TCP when
the reply is truncated, trying the next upstream on a timeout or a refused port, and gives
SERVFAIL when none answers in time.  Positive answers are cached for their smallest TTL and
negative ones (NXDOMAIN, NODATA) for their SOA's minimum (RFC 2308), both capped at
``max_ttl`` (30 s); served TTLs count down.  SERVFAIL and REFUSED are never cached.
Identical queries in flight share one upstream exchange.  Upstreams that are the server's
own listen addresses are dropped (a forwarding loop).
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import random
import struct
import time
from collections import OrderedDict
from collections.abc import Iterable
from pathlib import Path

from dnslib import EDNS0, RR, DNSRecord

from pybernetes.dns.metrics import DnsMetrics
from pybernetes.dns.records import NOERROR, NXDOMAIN, SERVFAIL, T_SOA, Answer

log = logging.getLogger(__name__)

Address = tuple[str, int]
T_OPT = 41


def read_resolv_conf(path: str | Path = "/etc/resolv.conf") -> list[Address]:
    """The nameservers of a resolv.conf, on port 53 (none when the file is missing)."""
    servers: list[Address] = []
    try:
        text = Path(path).read_text()
    except OSError:
        return servers
    for line in text.splitlines():
        parts = line.split("#", 1)[0].split(";", 1)[0].split()
        if len(parts) >= 2 and parts[0] == "nameserver":
            host = parts[1].split("%", 1)[0]
            try:
                ipaddress.ip_address(host)
            except ValueError:
                continue
            servers.append((host, 53))
    return servers


def without_loops(upstreams: Iterable[Address], listen: Iterable[Address]) -> list[Address]:
    """The upstreams that are not this server's own listen addresses."""
    own = list(listen)
    out = []
    for host, port in upstreams:
        ip = ipaddress.ip_address(host)
        looped = False
        for lhost, lport in own:
            if lport != port:
                continue
            lip = ipaddress.ip_address(lhost)
            if lip == ip or (lip.is_unspecified and (ip.is_loopback or ip.is_unspecified)):
                looped = True
        if looped:
            log.warning("dns: not forwarding to %s:%s, an address this server listens on", host, port)
        else:
            out.append((host, port))
    return out


class _UdpExchange(asyncio.DatagramProtocol):
    def __init__(self, query: DNSRecord, done: asyncio.Future[DNSRecord]) -> None:
        self.query = query
        self.done = done

    def datagram_received(self, data: bytes, addr: object) -> None:
        try:
            reply = DNSRecord.parse(data)
        except Exception:  # noqa: BLE001 - garbage from the network: wait for a real reply
            return
        q = self.query.q
        if (reply.header.id != self.query.header.id or not reply.header.qr or len(reply.questions) != 1
                or reply.q.qtype != q.qtype or str(reply.q.qname).lower() != str(q.qname).lower()):
            return
        if not self.done.done():
            self.done.set_result(reply)

    def error_received(self, exc: Exception) -> None:
        if not self.done.done():
            self.done.set_exception(exc)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.done.done():
            self.done.set_exception(exc or ConnectionError("closed"))


class Forwarder:
    def __init__(self, upstreams: list[Address], *, timeout: float = 2.0, max_ttl: int = 30,
                 cache_size: int = 10000, metrics: DnsMetrics | None = None) -> None:
        self.upstreams = list(upstreams)
        self.timeout = timeout
        self.max_ttl = max_ttl
        self.cache_size = cache_size
        self.metrics = metrics
        self._cache: OrderedDict[tuple[str, int, int], tuple[float, float, Answer]] = OrderedDict()
        self._inflight: dict[tuple[str, int, int], asyncio.Future[Answer]] = {}
        self._next = 0  # the upstream to try first (the one that answered last)
        self.exchanges = 0  # upstream exchanges made (tests)

    # -- the cache -------------------------------------------------------------------------

    def _cached(self, key: tuple[str, int, int]) -> Answer | None:
        entry = self._cache.get(key)
        if entry is None:
            return None
        stored, expires, answer = entry
        now = time.monotonic()
        if now >= expires:
            del self._cache[key]
            return None
        elapsed = int(now - stored)
        limit = int(expires - stored)

        def aged(rrs: list[RR]) -> list[RR]:
            return [RR(rr.rname, rr.rtype, rr.rclass, max(0, min(rr.ttl, limit) - elapsed), rr.rdata)
                    for rr in rrs]
        return Answer(answer.rcode, aged(answer.answer), aged(answer.authority), aged(answer.additional))

    def _store(self, key: tuple[str, int, int], answer: Answer) -> None:
        if answer.rcode == NOERROR and answer.answer:
            ttl = min(rr.ttl for rr in answer.answer)
        elif answer.rcode in (NOERROR, NXDOMAIN):
            soas = [rr for rr in answer.authority if rr.rtype == T_SOA]
            if not soas:
                return  # RFC 2308: no SOA, no negative caching
            ttl = min(soas[0].ttl, soas[0].rdata.times[4])
        else:
            return
        ttl = min(ttl, self.max_ttl)
        if ttl <= 0:
            return
        now = time.monotonic()
        self._cache[key] = (now, now + ttl, answer)
        self._cache.move_to_end(key)
        while len(self._cache) > self.cache_size:
            self._cache.popitem(last=False)

    def clear(self) -> None:
        self._cache.clear()

    # -- resolving -------------------------------------------------------------------------

    async def resolve(self, qname: str, qtype: int, qclass: int = 1) -> Answer:
        """The upstream answer for one question (SERVFAIL when no upstream answers)."""
        key = (qname.lower().rstrip(".") + ".", qtype, qclass)
        hit = self._cached(key)
        metrics = self.metrics
        if hit is not None:
            if metrics is not None:
                metrics.cache_hit(not hit.answer)
            return hit
        if metrics is not None:
            metrics.cache_miss()
        pending = self._inflight.get(key)
        if pending is not None:
            return await asyncio.shield(pending)
        future: asyncio.Future[Answer] = asyncio.get_running_loop().create_future()
        self._inflight[key] = future
        answer = Answer(SERVFAIL, [], [], [])
        try:
            answer = await self._ask(qname, qtype, qclass)
            self._store(key, answer)
            answer = self._cached(key) or answer  # TTLs capped as the cache will serve them
            return answer
        finally:
            del self._inflight[key]
            future.set_result(answer)

    async def _ask(self, qname: str, qtype: int, qclass: int) -> Answer:
        if not self.upstreams:
            return Answer(SERVFAIL, [], [], [])
        query = DNSRecord.question(qname.rstrip(".") + ".", "A")
        query.q.qtype, query.q.qclass = qtype, qclass
        query.add_ar(EDNS0(udp_len=4096))
        count = len(self.upstreams)
        for attempt in range(max(2, count)):
            index = (self._next + attempt) % count
            upstream = self.upstreams[index]
            query.header.id = random.randrange(65536)
            to = f"{upstream[0]}:{upstream[1]}"
            if self.metrics is not None:
                self.metrics.forwarded(to)
            self.exchanges += 1
            try:
                reply = await self._udp(query, upstream)
                if reply.header.tc:
                    reply = await self._tcp(query, upstream)
            except (TimeoutError, OSError, ValueError) as exc:
                log.debug("dns: upstream %s failed for %s: %r", to, qname, exc)
                continue
            self._next = index
            if self.metrics is not None:
                self.metrics.forward_answer(to, reply.header.rcode)
            return Answer(reply.header.rcode, list(reply.rr), list(reply.auth),
                          [rr for rr in reply.ar if rr.rtype != T_OPT])
        return Answer(SERVFAIL, [], [], [])

    async def _udp(self, query: DNSRecord, upstream: Address) -> DNSRecord:
        loop = asyncio.get_running_loop()
        done: asyncio.Future[DNSRecord] = loop.create_future()
        transport, _ = await loop.create_datagram_endpoint(lambda: _UdpExchange(query, done),
                                                           remote_addr=upstream)
        try:
            transport.sendto(query.pack())
            async with asyncio.timeout(self.timeout):
                return await done
        finally:
            transport.close()

    async def _tcp(self, query: DNSRecord, upstream: Address) -> DNSRecord:
        async with asyncio.timeout(self.timeout):
            reader, writer = await asyncio.open_connection(*upstream)
            try:
                data = query.pack()
                writer.write(struct.pack("!H", len(data)) + data)
                (length,) = struct.unpack("!H", await reader.readexactly(2))
                payload = await reader.readexactly(length)
            except asyncio.IncompleteReadError as exc:
                raise ConnectionError("upstream closed the connection") from exc
            finally:
                writer.close()
        try:
            reply = DNSRecord.parse(payload)
        except Exception as exc:  # noqa: BLE001 - any parse failure is an unreadable reply
            raise ValueError(f"unreadable reply: {exc!r}") from exc
        if reply.header.id != query.header.id:
            raise ValueError("reply to another query")
        return reply
