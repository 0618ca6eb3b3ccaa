"""Prometheus metrics of the cluster DNS server, named as CoreDNS names them.

One ``CollectorRegistry`` per server (so tests and several servers in one process do not
collide): coredns_dns_requests_total{proto,type}, coredns_dns_responses_total{rcode},
coredns_dns_request_duration_seconds{type} (histogram), coredns_cache_hits_total{type}
(success|denial), coredns_cache_misses_total, coredns_forward_requests_total{to},
coredns_forward_responses_total{to,rcode} and coredns_dns_malformed_requests_total.
Label children are looked up once and kept in dicts: the hot path costs two increments and
one observation.
"""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest

TYPES = {1: "A", 2: "NS", 5: "CNAME", 6: "SOA", 12: "PTR", 15: "MX", 16: "TXT", 28: "AAAA",
         33: "SRV", 35: "NAPTR", 41: "OPT", 43: "DS", 46: "RRSIG", 47: "NSEC", 48: "DNSKEY",
         50: "NSEC3", 13: "HINFO", 251: "IXFR", 252: "AXFR", 255: "ANY"}
RCODES = {0: "NOERROR", 1: "FORMERR", 2: "SERVFAIL", 3: "NXDOMAIN", 4: "NOTIMP", 5: "REFUSED",
          16: "BADVERS"}
# CoreDNS's buckets: 0.25 ms doubling to ~8 s
BUCKETS = tuple(0.00025 * 2 ** i for i in range(16))


def type_name(qtype: int) -> str:
    return TYPES.get(qtype, "other")


def rcode_name(rcode: int) -> str:
    return RCODES.get(rcode, str(rcode))


class DnsMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter("coredns_dns_requests", "DNS requests received.",
                                ["proto", "type"], registry=r)
        self.responses = Counter("coredns_dns_responses", "DNS responses sent, by rcode.",
                                 ["rcode"], registry=r)
        self.duration = Histogram("coredns_dns_request_duration_seconds",
                                  "Time to answer a DNS request.", ["type"], buckets=BUCKETS, registry=r)
        self.malformed = Counter("coredns_dns_malformed_requests",
                                 "Requests dropped or answered FORMERR as unreadable.", registry=r)
        self.cache_hits = Counter("coredns_cache_hits", "Answers served from a cache.", ["type"], registry=r)
        self.cache_misses = Counter("coredns_cache_misses", "Cache lookups that found nothing.", registry=r)
        self.forward_requests = Counter("coredns_forward_requests", "Queries sent upstream.", ["to"],
                                        registry=r)
        self.forward_responses = Counter("coredns_forward_responses", "Answers from upstream.",
                                         ["to", "rcode"], registry=r)
        self._req: dict[tuple[str, int], Any] = {}
        self._resp: dict[int, Any] = {}
        self._dur: dict[int, Any] = {}
        self._hits = {kind: self.cache_hits.labels(kind) for kind in ("success", "denial")}

    def observe(self, proto: str, qtype: int, rcode: int, seconds: float) -> None:
        """One answered request."""
        child = self._req.get((proto, qtype))
        if child is None:
            child = self._req[(proto, qtype)] = self.requests.labels(proto, type_name(qtype))
        child.inc()
        child = self._resp.get(rcode)
        if child is None:
            child = self._resp[rcode] = self.responses.labels(rcode_name(rcode))
        child.inc()
        child = self._dur.get(qtype)
        if child is None:
            child = self._dur[qtype] = self.duration.labels(type_name(qtype))
        child.observe(seconds)

    def cache_hit(self, denial: bool) -> None:
        self._hits["denial" if denial else "success"].inc()

    def cache_miss(self) -> None:
        self.cache_misses.inc()

    def forwarded(self, to: str) -> None:
        self.forward_requests.labels(to).inc()

    def forward_answer(self, to: str, rcode: int) -> None:
        self.forward_responses.labels(to, rcode_name(rcode)).inc()

    def exposition(self) -> bytes:
        return generate_latest(self.registry)
