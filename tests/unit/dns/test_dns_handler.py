"""handler.QueryHandler: reply flags, the packed-reply cache and its invalidation, EDNS0 and
truncation, malformed packets (dropped or FORMERR), NOTIMP/REFUSED/BADVERS, SERVFAIL until
synced, forwarding and ExternalName chasing (with a fake forwarder), metrics."""

from __future__ import annotations

import asyncio
import struct

import pytest
from dnslib import EDNS0, QTYPE, RR, A, DNSRecord

from pybernetes.dns.handler import QueryHandler
from pybernetes.dns.metrics import DnsMetrics
from pybernetes.dns.records import NOERROR, NXDOMAIN, SERVFAIL, Answer, RecordIndex


class FakeForwarder:
    def __init__(self, answer: Answer | None = None) -> None:
        self.asked: list[tuple[str, int]] = []
        self.answer = answer or Answer(NOERROR, [RR("example.com.", QTYPE.A, rdata=A("93.184.216.34"), ttl=60)],
                                       [], [])

    async def resolve(self, qname, qtype, qclass=1):
        self.asked.append((qname, qtype))
        return self.answer


def query(name, qtype="A", *, edns: int | None = None, qid: int = 1234) -> bytes:
    q = DNSRecord.question(name, qtype)
    q.header.id = qid
    if edns is not None:
        q.add_ar(EDNS0(udp_len=edns))
    return bytes(q.pack())


def run(reply):
    if isinstance(reply, bytes | None):
        return reply
    return asyncio.run(reply)


@pytest.fixture
def index():
    idx = RecordIndex("cluster.local")
    idx.set_service({"metadata": {"namespace": "default", "name": "web"},
                     "spec": {"clusterIP": "10.43.0.5", "clusterIPs": ["10.43.0.5"],
                              "ports": [{"name": "http", "port": 80, "protocol": "TCP"}]}})
    idx.set_service({"metadata": {"namespace": "default", "name": "big"}, "spec": {"clusterIP": "None"}})
    idx.set_slice({"metadata": {"namespace": "default", "name": "big-1",
                                "labels": {"kubernetes.io/service-name": "big"}},
                   "addressType": "IPv4",
                   "endpoints": [{"addresses": [f"10.42.{i // 200}.{i % 200 + 1}"]} for i in range(100)],
                   "ports": [{"name": "http", "port": 80, "protocol": "TCP"}]})
    return idx


def test_authoritative_reply_flags_and_question(index):
    handler = QueryHandler(index)
    data = query("web.default.svc.cluster.local", qid=4321)
    reply = DNSRecord.parse(handler.handle(data))
    assert reply.header.id == 4321 and reply.header.qr == 1 and reply.header.aa == 1
    assert reply.header.rd == 1 and reply.header.ra == 1 and reply.header.rcode == NOERROR
    assert str(reply.q.qname) == "web.default.svc.cluster.local."
    assert [str(rr.rdata) for rr in reply.rr] == ["10.43.0.5"]


def test_cached_reply_gets_the_new_id_and_is_invalidated_on_change(index):
    handler = QueryHandler(index)
    first = handler.handle(query("web.default.svc.cluster.local", qid=1))
    second = handler.handle(query("web.default.svc.cluster.local", qid=2))
    assert first[2:] == second[2:] and struct.unpack("!H", second[:2])[0] == 2
    assert len(handler._udp_cache) == 1
    index.set_service({"metadata": {"namespace": "default", "name": "web"},
                       "spec": {"clusterIP": "10.43.0.9", "clusterIPs": ["10.43.0.9"]}})
    third = DNSRecord.parse(handler.handle(query("web.default.svc.cluster.local", qid=3)))
    assert [str(rr.rdata) for rr in third.rr] == ["10.43.0.9"]


def test_nxdomain_reply(index):
    reply = DNSRecord.parse(QueryHandler(index).handle(query("nope.default.svc.cluster.local")))
    assert reply.header.rcode == NXDOMAIN and reply.header.aa == 1 and reply.auth[0].rtype == QTYPE.SOA


def test_udp_truncation_and_full_tcp_answer(index):
    handler = QueryHandler(index)
    udp = handler.handle(query("big.default.svc.cluster.local"))
    assert len(udp) <= 512
    parsed = DNSRecord.parse(udp)
    assert parsed.header.tc == 1 and 0 < len(parsed.rr) < 100
    tcp = DNSRecord.parse(handler.handle(query("big.default.svc.cluster.local"), True))
    assert tcp.header.tc == 0 and len(tcp.rr) == 100


def test_edns_payload_size_is_honoured_and_opt_returned(index):
    handler = QueryHandler(index)
    small = DNSRecord.parse(handler.handle(query("big.default.svc.cluster.local", edns=512)))
    assert small.header.tc == 1
    big_reply = handler.handle(query("big.default.svc.cluster.local", edns=4096))
    big = DNSRecord.parse(big_reply)
    assert big.header.tc == 0 and len(big.rr) == 100 and len(big_reply) > 512
    assert [rr.rtype for rr in big.ar] == [QTYPE.OPT]
    # no OPT asked, none returned
    assert DNSRecord.parse(handler.handle(query("web.default.svc.cluster.local"))).ar == []


def test_additional_records_go_first_without_tc(index):
    # SRV of the 100-endpoint service: the answers do not fit 512 either -> TC
    handler = QueryHandler(index)
    srv = DNSRecord.parse(handler.handle(query("_http._tcp.big.default.svc.cluster.local", "SRV", edns=1232)))
    assert srv.header.tc == 1 and srv.ar[-1].rtype == QTYPE.OPT
    # a small SRV answer keeps its additional records
    web = DNSRecord.parse(handler.handle(query("_http._tcp.web.default.svc.cluster.local", "SRV")))
    assert web.header.tc == 0 and [str(rr.rdata) for rr in web.ar] == ["10.43.0.5"]


@pytest.mark.parametrize("data", [b"", b"\x01", b"\x00" * 11])
def test_shorter_than_a_header_is_dropped(index, data):
    metrics = DnsMetrics()
    assert QueryHandler(index, metrics=metrics).handle(data) is None
    assert metrics.malformed._value.get() == 1


def test_garbage_after_a_header_is_formerr(index):
    data = b"\xab\xcd\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x07garbage"
    reply = QueryHandler(index).handle(data)
    assert reply[:2] == b"\xab\xcd"
    flags = struct.unpack("!H", reply[2:4])[0]
    assert flags & 0x8000 and flags & 0xF == 1  # QR, FORMERR
    assert reply[4:12] == b"\x00" * 8


def test_two_questions_is_formerr(index):
    q = DNSRecord.question("web.default.svc.cluster.local")
    q.add_question(*DNSRecord.question("x.default.svc.cluster.local").questions)
    reply = DNSRecord.parse(QueryHandler(index).handle(bytes(q.pack())))
    assert reply.header.rcode == 1


def test_responses_are_never_answered(index):
    data = bytearray(query("web.default.svc.cluster.local"))
    data[2] |= 0x80
    assert QueryHandler(index).handle(bytes(data)) is None


def test_other_opcodes_notimp_and_transfers_refused(index):
    data = bytearray(query("cluster.local"))
    data[2] |= 2 << 3  # STATUS
    assert DNSRecord.parse(QueryHandler(index).handle(bytes(data))).header.rcode == 4
    assert DNSRecord.parse(QueryHandler(index).handle(query("cluster.local", "AXFR"))).header.rcode == 5
    chaos = DNSRecord.question("version.bind", "TXT", "CH")
    assert DNSRecord.parse(QueryHandler(index).handle(bytes(chaos.pack()))).header.rcode == 5


def test_edns_version_above_zero_is_badvers(index):
    q = DNSRecord.question("web.default.svc.cluster.local")
    q.add_ar(EDNS0(udp_len=1232, version=1))
    reply = DNSRecord.parse(QueryHandler(index).handle(bytes(q.pack())))
    (opt,) = reply.ar
    assert reply.header.rcode == 0 and (opt.ttl >> 24) == 1  # extended rcode 16 = BADVERS


def test_servfail_until_synced_but_forwarding_works(index):
    synced = False
    forwarder = FakeForwarder()
    handler = QueryHandler(index, forwarder, ready=lambda: synced)
    reply = DNSRecord.parse(run(handler.handle(query("web.default.svc.cluster.local"))))
    assert reply.header.rcode == SERVFAIL
    ext = DNSRecord.parse(run(handler.handle(query("example.com"))))
    assert ext.header.rcode == NOERROR and ext.header.aa == 0 and forwarder.asked == [("example.com.", 1)]
    synced = True
    reply = DNSRecord.parse(run(handler.handle(query("web.default.svc.cluster.local"))))
    assert reply.header.rcode == NOERROR


def test_without_forwarder_other_names_servfail(index):
    reply = DNSRecord.parse(run(QueryHandler(index).handle(query("example.com"))))
    assert reply.header.rcode == SERVFAIL


def test_external_name_outside_the_zone_is_chased_upstream(index):
    index.set_service({"metadata": {"namespace": "default", "name": "ext"},
                       "spec": {"type": "ExternalName", "externalName": "example.com"}})
    forwarder = FakeForwarder()
    handler = QueryHandler(index, forwarder)
    reply = DNSRecord.parse(run(handler.handle(query("ext.default.svc.cluster.local"))))
    assert [rr.rtype for rr in reply.rr] == [QTYPE.CNAME, QTYPE.A]
    assert forwarder.asked == [("example.com.", 1)]
    cname_only = DNSRecord.parse(run(handler.handle(query("ext.default.svc.cluster.local", "CNAME"))))
    assert [rr.rtype for rr in cname_only.rr] == [QTYPE.CNAME] and len(forwarder.asked) == 1


def test_metrics_count_requests_and_rcodes(index):
    metrics = DnsMetrics()
    handler = QueryHandler(index, metrics=metrics)
    for _ in range(3):
        handler.handle(query("web.default.svc.cluster.local"))
    handler.handle(query("nope.default.svc.cluster.local"), True)
    text = metrics.exposition().decode()
    assert 'coredns_dns_requests_total{proto="udp",type="A"} 3.0' in text
    assert 'coredns_dns_requests_total{proto="tcp",type="A"} 1.0' in text
    assert 'coredns_dns_responses_total{rcode="NXDOMAIN"} 1.0' in text
    assert 'coredns_dns_request_duration_seconds_count{type="A"} 4.0' in text


def test_an_internal_error_becomes_servfail(index, monkeypatch):
    handler = QueryHandler(index)

    def boom(*_a):
        raise RuntimeError("bug")
    monkeypatch.setattr(index, "answer", boom)
    reply = handler.handle(query("web.default.svc.cluster.local"))
    assert struct.unpack("!H", reply[2:4])[0] & 0xF == SERVFAIL
