"""records.RecordIndex: every record kind of the Kubernetes DNS specification, NXDOMAIN vs
NODATA with the SOA, SRV targets, headless readiness and publishNotReadyAddresses,
ExternalName, pod names, reverse lookups, updates and deletes."""

from __future__ import annotations

import pytest

from pybernetes.dns.records import (
    NOERROR,
    NXDOMAIN,
    T_A,
    T_AAAA,
    T_ANY,
    T_CNAME,
    T_NS,
    T_PTR,
    T_SOA,
    T_SRV,
    T_TXT,
    RecordIndex,
    ip_of_reverse,
    reverse_zone,
)

T_MX = 15
ZONE = "cluster.local"


def svc(name, ns="default", cluster_ip="10.43.0.5", ports=None, **spec):
    spec = {"clusterIP": cluster_ip, **spec}
    if cluster_ip and cluster_ip != "None" and "clusterIPs" not in spec:
        spec["clusterIPs"] = [cluster_ip]
    spec["ports"] = ports if ports is not None else [{"name": "http", "port": 80, "protocol": "TCP"}]
    return {"metadata": {"namespace": ns, "name": name}, "spec": spec}


def eps(service, name=None, ns="default", endpoints=(), ports=None, address_type="IPv4"):
    return {"metadata": {"namespace": ns, "name": name or f"{service}-abc",
                         "labels": {"kubernetes.io/service-name": service}},
            "addressType": address_type, "endpoints": list(endpoints),
            "ports": ports if ports is not None else [{"name": "http", "port": 8080, "protocol": "TCP"}]}


def ep(ip, ready=True, hostname=None):
    out = {"addresses": [ip], "conditions": {"ready": ready}}
    if hostname:
        out["hostname"] = hostname
    return out


def rdatas(rrs):
    return [str(rr.rdata) for rr in rrs]


@pytest.fixture
def idx():
    index = RecordIndex(ZONE, ttl=5, reverse_cidrs=["10.43.0.0/16"])
    index.set_namespace({"metadata": {"name": "default"}})
    index.set_namespace({"metadata": {"name": "empty"}})
    return index


def test_clusterip_a_and_nodata_for_aaaa(idx):
    idx.set_service(svc("web"))
    a = idx.answer("web.default.svc.cluster.local.", T_A)
    assert a.rcode == NOERROR and rdatas(a.answer) == ["10.43.0.5"]
    assert a.answer[0].ttl == 5 and str(a.answer[0].rname) == "web.default.svc.cluster.local."
    aaaa = idx.answer("web.default.svc.cluster.local", T_AAAA)
    assert aaaa.rcode == NOERROR and aaaa.answer == []
    assert [rr.rtype for rr in aaaa.authority] == [T_SOA]
    mx = idx.answer("web.default.svc.cluster.local", T_MX)
    assert mx.rcode == NOERROR and mx.answer == [] and mx.authority


def test_names_are_case_insensitive_and_owner_keeps_case(idx):
    idx.set_service(svc("web"))
    a = idx.answer("WeB.Default.SVC.Cluster.Local.", T_A)
    assert rdatas(a.answer) == ["10.43.0.5"]
    assert str(a.answer[0].rname) == "WeB.Default.SVC.Cluster.Local."


def test_dual_stack_service(idx):
    idx.set_service(svc("dual", cluster_ip="10.43.0.7", clusterIPs=["10.43.0.7", "fd00:43::7"]))
    assert rdatas(idx.answer("dual.default.svc.cluster.local", T_A).answer) == ["10.43.0.7"]
    assert rdatas(idx.answer("dual.default.svc.cluster.local", T_AAAA).answer) == ["fd00:43::7"]


@pytest.mark.parametrize("kind", ["NodePort", "LoadBalancer"])
def test_nodeport_and_loadbalancer_answer_their_cluster_ip(idx, kind):
    idx.set_service(svc("lb", type=kind))
    assert rdatas(idx.answer("lb.default.svc.cluster.local", T_A).answer) == ["10.43.0.5"]


def test_nxdomain_and_nodata_carry_the_soa(idx):
    nx = idx.answer("nope.default.svc.cluster.local", T_A)
    assert nx.rcode == NXDOMAIN and nx.answer == []
    (soa,) = nx.authority
    assert str(soa.rname) == "cluster.local."
    assert str(soa.rdata.mname) == "ns.dns.cluster.local." and str(soa.rdata.rname) == "hostmaster.cluster.local."
    assert soa.rdata.times[1:] == (7200, 1800, 86400, 5)  # minimum = the negative TTL
    # intermediate names of existing namespaces exist (NODATA), others do not
    assert idx.answer("default.svc.cluster.local", T_A)[:2] == (NOERROR, [])
    assert idx.answer("empty.svc.cluster.local", T_A)[:2] == (NOERROR, [])
    assert idx.answer("ghost.svc.cluster.local", T_A).rcode == NXDOMAIN
    assert idx.answer("svc.cluster.local", T_A)[:2] == (NOERROR, [])
    assert idx.answer("pod.cluster.local", T_A)[:2] == (NOERROR, [])
    assert idx.answer("other.cluster.local", T_A).rcode == NXDOMAIN
    assert idx.answer("a.b.c.d.e.web.default.svc.cluster.local", T_A).rcode == NXDOMAIN


def test_a_namespace_with_services_exists_even_unwatched():
    index = RecordIndex(ZONE)
    index.set_service(svc("web", ns="team"))
    assert index.answer("team.svc.cluster.local", T_A)[:2] == (NOERROR, [])
    index.delete_service(svc("web", ns="team"))
    assert index.answer("team.svc.cluster.local", T_A).rcode == NXDOMAIN


def test_apex_soa_ns_and_dns_version(idx):
    idx.set_service(svc("kube-dns", ns="kube-system", cluster_ip="10.43.0.10"))
    soa = idx.answer("cluster.local.", T_SOA)
    assert soa.rcode == NOERROR and [rr.rtype for rr in soa.answer] == [T_SOA]
    ns = idx.answer("cluster.local", T_NS)
    assert rdatas(ns.answer) == ["ns.dns.cluster.local."]
    assert rdatas(ns.additional) == ["10.43.0.10"]
    assert rdatas(idx.answer("ns.dns.cluster.local", T_A).answer) == ["10.43.0.10"]
    assert idx.answer("cluster.local", T_A)[:2] == (NOERROR, [])
    txt = idx.answer("dns-version.cluster.local", T_TXT)
    assert rdatas(txt.answer) == ['"1.1.0"']
    assert idx.answer("dns-version.cluster.local", T_A)[:2] == (NOERROR, [])


def test_srv_for_clusterip_named_ports_only(idx):
    idx.set_service(svc("web", ports=[{"name": "http", "port": 80, "protocol": "TCP"},
                                      {"name": "dns", "port": 53, "protocol": "UDP"},
                                      {"port": 9000, "protocol": "TCP"}]))
    srv = idx.answer("_http._tcp.web.default.svc.cluster.local", T_SRV)
    assert srv.rcode == NOERROR
    (rr,) = srv.answer
    assert (rr.rdata.priority, rr.rdata.weight, rr.rdata.port) == (0, 100, 80)
    assert str(rr.rdata.target) == "web.default.svc.cluster.local."
    assert rdatas(srv.additional) == ["10.43.0.5"]
    assert [r.rdata.port for r in idx.answer("_dns._udp.web.default.svc.cluster.local", T_SRV).answer] == [53]
    # the protocol must match; an unknown port name does not exist
    assert idx.answer("_dns._tcp.web.default.svc.cluster.local", T_SRV).rcode == NXDOMAIN
    assert idx.answer("_nope._tcp.web.default.svc.cluster.local", T_SRV).rcode == NXDOMAIN
    # the port name exists: other types are NODATA
    assert idx.answer("_http._tcp.web.default.svc.cluster.local", T_A)[:2] == (NOERROR, [])
    # SRV of the service name: every named port, weights shared
    both = idx.answer("web.default.svc.cluster.local", T_SRV)
    assert sorted(r.rdata.port for r in both.answer) == [53, 80]
    assert {r.rdata.weight for r in both.answer} == {50}


def test_headless_ready_endpoints_deduplicated_over_slices(idx):
    idx.set_service(svc("hl", cluster_ip="None"))
    idx.set_slice(eps("hl", "hl-1", endpoints=[ep("10.42.0.1"), ep("10.42.0.2", ready=False), ep("10.42.0.3")]))
    idx.set_slice(eps("hl", "hl-2", endpoints=[ep("10.42.0.3"), ep("10.42.0.4")]))
    a = idx.answer("hl.default.svc.cluster.local", T_A)
    assert sorted(rdatas(a.answer)) == ["10.42.0.1", "10.42.0.3", "10.42.0.4"]
    # a slice of another service, or of an FQDN address type, adds nothing
    idx.set_slice(eps("other", "o-1", endpoints=[ep("10.42.0.9")]))
    idx.set_slice(eps("hl", "hl-3", endpoints=[{"addresses": ["x.example"]}], address_type="FQDN"))
    assert len(idx.answer("hl.default.svc.cluster.local", T_A).answer) == 3


def test_headless_ready_unknown_counts_as_ready(idx):
    idx.set_service(svc("hl", cluster_ip="None"))
    idx.set_slice(eps("hl", endpoints=[{"addresses": ["10.42.0.1"]}]))
    assert rdatas(idx.answer("hl.default.svc.cluster.local", T_A).answer) == ["10.42.0.1"]


def test_publish_not_ready_addresses(idx):
    idx.set_service(svc("hl", cluster_ip="None", publishNotReadyAddresses=True))
    idx.set_slice(eps("hl", endpoints=[ep("10.42.0.1", ready=False), ep("10.42.0.2")]))
    assert sorted(rdatas(idx.answer("hl.default.svc.cluster.local", T_A).answer)) == ["10.42.0.1", "10.42.0.2"]
    idx.set_service(svc("hl", cluster_ip="None"))  # the flag turned off: readiness counts again
    assert rdatas(idx.answer("hl.default.svc.cluster.local", T_A).answer) == ["10.42.0.2"]


def test_headless_without_ready_endpoints_is_nxdomain(idx):
    idx.set_service(svc("hl", cluster_ip="None"))
    assert idx.answer("hl.default.svc.cluster.local", T_A).rcode == NXDOMAIN
    idx.set_slice(eps("hl", endpoints=[ep("10.42.0.1", ready=False)]))
    assert idx.answer("hl.default.svc.cluster.local", T_A).rcode == NXDOMAIN
    idx.set_slice(eps("hl", endpoints=[ep("fd00::1")], address_type="IPv6"))
    assert idx.answer("hl.default.svc.cluster.local", T_A)[:2] == (NOERROR, [])
    assert rdatas(idx.answer("hl.default.svc.cluster.local", T_AAAA).answer) == ["fd00::1"]


def test_headless_srv_targets_and_additional(idx):
    idx.set_service(svc("db", cluster_ip="None"))
    idx.set_slice(eps("db", endpoints=[ep("10.42.0.1", hostname="db-0"), ep("10.42.0.2")],
                      ports=[{"name": "pg", "port": 5432, "protocol": "TCP"}]))
    srv = idx.answer("_pg._tcp.db.default.svc.cluster.local", T_SRV)
    targets = sorted(str(rr.rdata.target) for rr in srv.answer)
    assert targets == ["10-42-0-2.db.default.svc.cluster.local.", "db-0.db.default.svc.cluster.local."]
    assert {rr.rdata.port for rr in srv.answer} == {5432}
    assert {rr.rdata.weight for rr in srv.answer} == {50}
    extra = {str(rr.rname): str(rr.rdata) for rr in srv.additional}
    assert extra == {"db-0.db.default.svc.cluster.local.": "10.42.0.1",
                     "10-42-0-2.db.default.svc.cluster.local.": "10.42.0.2"}


def test_statefulset_hostnames_and_dashed_ips(idx):
    idx.set_service(svc("db", cluster_ip="None"))
    idx.set_slice(eps("db", endpoints=[ep("10.42.0.1", hostname="db-0"), ep("10.42.0.2")]))
    assert rdatas(idx.answer("db-0.db.default.svc.cluster.local", T_A).answer) == ["10.42.0.1"]
    assert rdatas(idx.answer("10-42-0-2.db.default.svc.cluster.local", T_A).answer) == ["10.42.0.2"]
    assert idx.answer("db-1.db.default.svc.cluster.local", T_A).rcode == NXDOMAIN
    assert idx.answer("db-0.db.default.svc.cluster.local", T_AAAA)[:2] == (NOERROR, [])


def test_external_name_cname(idx):
    idx.set_service(svc("ext", cluster_ip="", ports=[], type="ExternalName", externalName="Example.COM."))
    a = idx.answer("ext.default.svc.cluster.local", T_A)
    assert a.rcode == NOERROR
    (cname,) = a.answer
    assert cname.rtype == T_CNAME and str(cname.rdata) == "example.com."
    assert idx.answer("ext.default.svc.cluster.local", T_CNAME).answer[0].rtype == T_CNAME
    assert idx.answer("_http._tcp.ext.default.svc.cluster.local", T_SRV).rcode == NXDOMAIN


def test_external_name_inside_the_zone_is_chased(idx):
    idx.set_service(svc("web"))
    idx.set_service(svc("alias", cluster_ip="", ports=[], type="ExternalName",
                        externalName="web.default.svc.cluster.local"))
    a = idx.answer("alias.default.svc.cluster.local", T_A)
    assert [rr.rtype for rr in a.answer] == [T_CNAME, T_A]
    assert rdatas(a.answer)[1] == "10.43.0.5"
    idx.set_service(svc("dangling", cluster_ip="", ports=[], type="ExternalName",
                        externalName="gone.default.svc.cluster.local"))
    d = idx.answer("dangling.default.svc.cluster.local", T_A)
    assert d.rcode == NXDOMAIN and [rr.rtype for rr in d.answer] == [T_CNAME]
    # a loop ends
    idx.set_service(svc("loop", cluster_ip="", ports=[], type="ExternalName",
                        externalName="loop.default.svc.cluster.local"))
    assert idx.answer("loop.default.svc.cluster.local", T_A).answer[0].rtype == T_CNAME


def test_external_name_that_is_an_address_has_no_record(idx):
    idx.set_service(svc("ip", cluster_ip="", ports=[], type="ExternalName", externalName="1.2.3.4"))
    assert idx.answer("ip.default.svc.cluster.local", T_A).rcode == NXDOMAIN


@pytest.mark.parametrize("label,expect", [
    ("10-42-0-7", "10.42.0.7"), ("1-2-3-4", "1.2.3.4"),
])
def test_pod_names(idx, label, expect):
    a = idx.answer(f"{label}.default.pod.cluster.local", T_A)
    assert rdatas(a.answer) == [expect]
    assert idx.answer(f"{label}.default.pod.cluster.local", T_AAAA)[:2] == (NOERROR, [])


def test_pod_ipv6_name(idx):
    assert rdatas(idx.answer("fd00--1.default.pod.cluster.local", T_AAAA).answer) == ["fd00::1"]


@pytest.mark.parametrize("label", ["10-42-0", "10-42-0-256", "a-b-c-d", "10-42-0-7-8", "10-42-0-07", "x"])
def test_bad_pod_names_are_nxdomain(idx, label):
    assert idx.answer(f"{label}.default.pod.cluster.local", T_A).rcode == NXDOMAIN


def test_pod_intermediate_names(idx):
    assert idx.answer("default.pod.cluster.local", T_A)[:2] == (NOERROR, [])
    assert idx.answer("ghost.pod.cluster.local", T_A).rcode == NXDOMAIN
    assert idx.answer("x.1-2-3-4.default.pod.cluster.local", T_A).rcode == NXDOMAIN


def test_reverse_cluster_ip_and_headless_endpoints(idx):
    idx.set_service(svc("web"))
    idx.set_service(svc("db", cluster_ip="None"))
    idx.set_slice(eps("db", endpoints=[ep("10.42.0.1", hostname="db-0"), ep("10.42.0.2")]))
    assert rdatas(idx.answer("5.0.43.10.in-addr.arpa.", T_PTR).answer) == ["web.default.svc.cluster.local."]
    assert rdatas(idx.answer("1.0.42.10.in-addr.arpa", T_PTR).answer) == ["db-0.db.default.svc.cluster.local."]
    assert rdatas(idx.answer("2.0.42.10.in-addr.arpa", T_PTR).answer) == ["10-42-0-2.db.default.svc.cluster.local."]
    # inside the service CIDR but unknown: NXDOMAIN with the reverse zone's SOA
    nx = idx.answer("9.9.43.10.in-addr.arpa", T_PTR)
    assert nx.rcode == NXDOMAIN and str(nx.authority[0].rname) == "43.10.in-addr.arpa."
    assert idx.answer("43.10.in-addr.arpa", T_SOA).answer[0].rtype == T_SOA
    # outside every owned zone and unknown: not ours (forwarded)
    assert idx.answer("1.1.168.192.in-addr.arpa", T_PTR) is None
    assert idx.answer("example.com", T_A) is None


def test_reverse_ipv6():
    index = RecordIndex(ZONE, reverse_cidrs=["fd00:43::/112"])
    index.set_service(svc("v6", cluster_ip="fd00:43::a"))
    name = "a.0.0.0." + "0.0.0.0." * 5 + "3.4.0.0.0.0.d.f.ip6.arpa"
    assert ip_of_reverse(name) == "fd00:43::a"
    assert rdatas(index.answer(name, T_PTR).answer) == ["v6.default.svc.cluster.local."]
    assert reverse_zone("fd00:43::/112")[0].endswith(".3.4.0.0.0.0.d.f.ip6.arpa")
    assert reverse_zone("10.43.0.0/16")[0] == "43.10.in-addr.arpa"
    assert reverse_zone("10.96.0.0/12")[0] == "10.in-addr.arpa"


def test_updates_and_deletes(idx):
    idx.set_service(svc("web"))
    gen = idx.generation
    idx.set_service(svc("web"))  # no change: no new generation
    assert idx.generation == gen
    idx.set_service(svc("web", cluster_ip="10.43.0.6"))
    assert idx.generation > gen
    assert rdatas(idx.answer("web.default.svc.cluster.local", T_A).answer) == ["10.43.0.6"]
    assert idx.answer("5.0.43.10.in-addr.arpa", T_PTR).rcode == NXDOMAIN
    idx.delete_service(svc("web"))
    assert idx.answer("web.default.svc.cluster.local", T_A).rcode == NXDOMAIN
    assert idx.answer("6.0.43.10.in-addr.arpa", T_PTR).rcode == NXDOMAIN

    idx.set_service(svc("hl", cluster_ip="None"))
    idx.set_slice(eps("hl", "hl-1", endpoints=[ep("10.42.0.1")]))
    idx.set_slice(eps("hl", "hl-1", endpoints=[ep("10.42.0.2")]))
    assert rdatas(idx.answer("hl.default.svc.cluster.local", T_A).answer) == ["10.42.0.2"]
    assert idx.answer("1.0.42.10.in-addr.arpa", T_PTR) is None  # no longer known
    idx.delete_slice(eps("hl", "hl-1"))
    assert idx.answer("hl.default.svc.cluster.local", T_A).rcode == NXDOMAIN
    # a slice seen before its service counts once the service appears
    idx.set_slice(eps("late", endpoints=[ep("10.42.0.5")]))
    idx.set_service(svc("late", cluster_ip="None"))
    assert rdatas(idx.answer("late.default.svc.cluster.local", T_A).answer) == ["10.42.0.5"]
    # a slice relabelled to another service moves
    idx.set_service(svc("moved", cluster_ip="None"))
    idx.set_slice(eps("moved", "late-abc", endpoints=[ep("10.42.0.5")]))
    assert idx.answer("late.default.svc.cluster.local", T_A).rcode == NXDOMAIN
    assert rdatas(idx.answer("moved.default.svc.cluster.local", T_A).answer) == ["10.42.0.5"]
    idx.delete_namespace({"metadata": {"name": "empty"}})
    assert idx.answer("empty.svc.cluster.local", T_A).rcode == NXDOMAIN


def test_any_and_custom_zone_and_ttl():
    index = RecordIndex("corp.internal", ttl=30)
    index.set_service(svc("web"))
    a = index.answer("web.default.svc.corp.internal", T_ANY)
    assert rdatas(a.answer) == ["10.43.0.5"] and a.answer[0].ttl == 30
    assert index.answer("web.default.svc.cluster.local", T_A) is None
    assert index.answer("nope.corp.internal", T_A).authority[0].rdata.times[4] == 30


def test_malformed_objects_do_not_break_the_index(idx):
    idx.set_service({"metadata": {"namespace": "default", "name": "odd"},
                     "spec": {"clusterIP": "not-an-ip", "ports": "nonsense"}})
    assert idx.answer("odd.default.svc.cluster.local", T_A).rcode == NXDOMAIN
    idx.set_slice({"metadata": {"namespace": "default", "name": "s", "labels": {"kubernetes.io/service-name": "odd"}},
                   "addressType": "IPv4", "endpoints": [None, {"addresses": ["bad"]}], "ports": [None]})
    assert idx.endpoints_of("default", "odd") == []


def test_thousand_services_update_cheaply():
    import time

    index = RecordIndex(ZONE)
    for i in range(1000):
        index.set_service(svc(f"s{i}", cluster_ip=f"10.43.{i // 250}.{i % 250 + 1}"))
    start = time.perf_counter()
    for i in range(100):
        index.set_service(svc("s7", cluster_ip=f"10.43.9.{i + 1}"))
    per_update = (time.perf_counter() - start) / 100
    assert per_update < 0.002  # one update touches one service, not the thousand
