"""One DNS message in, one reply out: the protocol logic between the transports
(``server.py``) and the answers (``records.py``, ``forward.py``).

``QueryHandler.handle(data, tcp)`` returns the reply bytes at once for anything it can
answer locally, None for a packet to drop, or a coroutine (forwarding) whose result is the
reply.  Rules:

- a packet shorter than a header, or a response (QR set), is dropped; a header followed by
  garbage gets FORMERR, an opcode other than QUERY NOTIMP, zone transfers and classes
  other than IN REFUSED, an EDNS version above 0 BADVERS;
- names of the cluster zone (and the reverse zones it owns) are answered authoritatively
  (AA) from the ``RecordIndex`` — SERVFAIL until ``ready()`` says the caches synced; an
  ExternalName pointing outside the zone is chased through the forwarder; other names are
  forwarded;
- EDNS0: a query with OPT gets OPT back; a UDP reply longer than 512 bytes (or the client's
  advertised payload size) first loses its additional records, then keeps the answers that
  fit and sets TC so the client retries over TCP;
- authoritative replies are cached packed, per (query bytes after the ID, transport), with
  the ID patched in; the cache empties whenever the index's generation changes.
"""

from __future__ import annotations

import logging
import struct
import time
from collections.abc import Callable, Coroutine
from typing import Any

from dnslib import EDNS0, DNSHeader, DNSRecord

from pybernetes.dns.forward import Forwarder
from pybernetes.dns.metrics import DnsMetrics
from pybernetes.dns.records import (
    FORMERR,
    NOERROR,
    NOTIMP,
    REFUSED,
    SERVFAIL,
    T_ANY,
    T_CNAME,
    Answer,
    RecordIndex,
)

log = logging.getLogger(__name__)

T_OPT, T_IXFR, T_AXFR = 41, 251, 252
BADVERS = 16
MIN_UDP = 512
MAX_UDP = 4096
Reply = bytes | None | Coroutine[Any, Any, bytes | None]


class QueryHandler:
    def __init__(self, records: RecordIndex, forwarder: Forwarder | None = None,
                 metrics: DnsMetrics | None = None, *, ready: Callable[[], bool] = lambda: True,
                 cache_size: int = 20000, edns_size: int = 1232) -> None:
        self.records = records
        self.forwarder = forwarder
        self.metrics = metrics
        self.ready = ready
        self.cache_size = cache_size
        self.edns_size = edns_size
        self._generation = records.generation
        self._udp_cache: dict[bytes, tuple[bytes, int, int]] = {}
        self._tcp_cache: dict[bytes, tuple[bytes, int, int]] = {}

    # -- the fast path -----------------------------------------------------------------------

    def handle(self, data: bytes, tcp: bool = False) -> Reply:
        start = time.perf_counter()
        if type(data) is not bytes:
            data = bytes(data)
        if self.records.generation != self._generation:
            self._udp_cache.clear()
            self._tcp_cache.clear()
            self._generation = self.records.generation
        entry = (self._tcp_cache if tcp else self._udp_cache).get(data[2:])
        if entry is not None:
            tail, qtype, rcode = entry
            if self.metrics is not None:
                self.metrics.observe("tcp" if tcp else "udp", qtype, rcode, time.perf_counter() - start)
            return data[:2] + tail
        try:
            return self._slow(data, tcp, start)
        except Exception:  # noqa: BLE001 - one bad query must never stop the server
            log.exception("dns: failed to answer a query")
            return _error(data, SERVFAIL) if len(data) >= 12 else None

    # -- everything else ---------------------------------------------------------------------

    def _slow(self, data: bytes, tcp: bool, start: float) -> Reply:
        if len(data) < 12 or data[2] & 0x80:
            if len(data) < 12 and self.metrics is not None:
                self.metrics.malformed.inc()
            return None
        opcode = (data[2] >> 3) & 0xF
        if opcode != 0:
            return self._done(_error(data, NOTIMP), tcp, 0, NOTIMP, start)
        try:
            query = DNSRecord.parse(data)
            if len(query.questions) != 1:
                raise ValueError("one question expected")
            qname, qtype, qclass = str(query.q.qname), query.q.qtype, query.q.qclass
            opts = [rr for rr in query.ar if rr.rtype == T_OPT]
            if len(opts) > 1:
                raise ValueError("more than one OPT")
        except Exception:  # noqa: BLE001 - whatever dnslib raises on garbage
            if self.metrics is not None:
                self.metrics.malformed.inc()
            return self._done(_error(data, FORMERR), tcp, 0, FORMERR, start)
        opt = opts[0] if opts else None
        limit = 65535 if tcp else (max(MIN_UDP, min(opt.rclass, MAX_UDP)) if opt else MIN_UDP)
        if opt is not None and (opt.ttl >> 16) & 0xFF != 0:
            reply = self._reply(query, True, None, Answer(NOERROR, [], [], []), limit, ext_rcode=BADVERS >> 4)
            return self._done(reply, tcp, qtype, BADVERS, start)
        if qclass not in (1, T_ANY) or qtype in (T_AXFR, T_IXFR):
            reply = self._reply(query, False, opt, Answer(REFUSED, [], [], []), limit)
            return self._done(reply, tcp, qtype, REFUSED, start)
        records = self.records
        if not self.ready():
            if records.owns(qname):
                reply = self._reply(query, False, opt, Answer(SERVFAIL, [], [], []), limit)
                return self._done(reply, tcp, qtype, SERVFAIL, start)
            answer = None
        else:
            answer = records.answer(qname, qtype)
        if answer is None:
            return self._forward(query, qname, qtype, qclass, opt, limit, tcp, start, None)
        chase = _outside_target(records, answer, qtype)
        if chase is not None:
            return self._forward(query, chase, qtype, qclass, opt, limit, tcp, start, answer)
        reply = self._reply(query, True, opt, answer, limit)
        cache = self._tcp_cache if tcp else self._udp_cache
        if len(cache) >= self.cache_size:
            cache.clear()
        cache[data[2:]] = (reply[2:], qtype, answer.rcode)
        return self._done(reply, tcp, qtype, answer.rcode, start)

    def _done(self, reply: bytes, tcp: bool, qtype: int, rcode: int, start: float) -> bytes:
        if self.metrics is not None:
            self.metrics.observe("tcp" if tcp else "udp", qtype, rcode, time.perf_counter() - start)
        return reply

    async def _forward(self, query: DNSRecord, qname: str, qtype: int, qclass: int, opt: Any, limit: int,
                       tcp: bool, start: float, cname: Answer | None) -> bytes:
        if self.forwarder is None:
            answer = Answer(SERVFAIL if cname is None else NOERROR, [], [], [])
        else:
            answer = await self.forwarder.resolve(qname, qtype, qclass)
        if cname is not None:
            answer = Answer(answer.rcode, [*cname.answer, *answer.answer], answer.authority, answer.additional)
        reply = self._reply(query, False, opt, answer, limit)
        return self._done(reply, tcp, qtype, answer.rcode, start)

    def _reply(self, query: DNSRecord, authoritative: bool, opt: Any, answer: Answer, limit: int,
               ext_rcode: int = 0) -> bytes:
        header = DNSHeader(id=query.header.id, qr=1, aa=int(authoritative), ra=1, rd=query.header.rd,
                           rcode=answer.rcode & 0xF)
        extra = [EDNS0(udp_len=self.edns_size, ext_rcode=ext_rcode)] if opt is not None or ext_rcode else []
        reply = DNSRecord(header, questions=[query.q], rr=list(answer.answer), auth=list(answer.authority),
                          ar=[*answer.additional, *extra])
        packed = reply.pack()
        if len(packed) <= limit:
            return bytes(packed)
        return _truncate(reply, extra, limit)


def _truncate(reply: DNSRecord, extra: list[Any], limit: int) -> bytes:
    """Drop the additional records; if still too long keep the answers that fit, with TC."""
    reply.ar = list(extra)
    packed = reply.pack()
    if len(packed) <= limit:
        return bytes(packed)
    answers = reply.rr
    reply.auth = []
    reply.header.tc = 1
    low, high = 0, len(answers)  # the most answers that fit lies in [low, high)
    while high - low > 1:
        middle = (low + high) // 2
        reply.rr = answers[:middle]
        if len(reply.pack()) <= limit:
            low = middle
        else:
            high = middle
    reply.rr = answers[:low]
    packed = reply.pack()
    if len(packed) > limit:  # the question and OPT alone do not fit: header and question
        reply.ar = []
        packed = reply.pack()
    return bytes(packed)


def _outside_target(records: RecordIndex, answer: Answer, qtype: int) -> str | None:
    """The CNAME target to resolve upstream (an ExternalName outside the zone), if any."""
    if qtype in (T_CNAME, T_ANY) or not answer.answer or answer.rcode != NOERROR:
        return None
    last = answer.answer[-1]
    if last.rtype != T_CNAME:
        return None
    target = str(last.rdata.label)
    return None if records.owns(target) else target


def _error(data: bytes, rcode: int) -> bytes:
    """A bare reply (no sections) to a query whose header could be read."""
    flags = struct.unpack_from("!H", data, 2)[0]
    flags = 0x8000 | (flags & 0x7900) | 0x0080 | rcode  # QR, opcode and RD kept, RA, rcode
    return data[:2] + struct.pack("!HHHHH", flags, 0, 0, 0, 0)
