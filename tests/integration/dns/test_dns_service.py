"""DnsService against a real API server: Services and EndpointSlices created through the
API are answered over UDP and TCP and follow updates and deletes; a 100-endpoint headless
service is truncated over UDP and complete over TCP (dig retries by itself); the server's
own EndpointSlice appears (owned by its Node once that exists) and goes on stop; /metrics,
/health and /ready."""

from __future__ import annotations

import asyncio
import shutil
import socket
import struct

import aiohttp
import pytest
from dnslib import DNSRecord

from pybernetes.client.errors import NotFound
from pybernetes.client.kubeconfig import Config
from pybernetes.client.rest import RestClient
from pybernetes.dns.service import DnsOptions, DnsService

SERVICES = "/v1/services"
SLICES = "discovery.k8s.io/v1/endpointslices"
NODES = "/v1/nodes"
ZONE = "svc.cluster.local"


def service(name, ns="default", headless=False, ports=None, **spec):
    body = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": ns},
            "spec": {"ports": ports or [{"name": "http", "port": 80, "protocol": "TCP"}], **spec}}
    if headless:
        body["spec"]["clusterIP"] = "None"
    return body


def endpoint_slice(name, svc, addresses, ns="default", ready=True, hostnames=None):
    return {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
            "metadata": {"name": name, "namespace": ns,
                         "labels": {"kubernetes.io/service-name": svc,
                                    "endpointslice.kubernetes.io/managed-by": "test"}},
            "addressType": "IPv4",
            "endpoints": [{"addresses": [ip], "conditions": {"ready": ready},
                           **({"hostname": hostnames[i]} if hostnames and hostnames[i] else {})}
                          for i, ip in enumerate(addresses)],
            "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}]}


def addresses(reply):
    return sorted(str(rr.rdata) for rr in reply.rr if rr.rtype in (1, 28))


async def test_services_are_answered_over_udp_and_tcp_and_follow_changes(rest, start_dns, dns, eventually):
    web = await rest.create(SERVICES, service("web"), "default")
    ip = web["spec"]["clusterIP"]
    server = await start_dns()
    (addr,) = server.dns_addresses
    udp = await dns.udp(addr, f"web.default.{ZONE}")
    assert udp.header.rcode == 0 and udp.header.aa == 1 and addresses(udp) == [ip]
    tcp = await dns.tcp(addr, f"web.default.{ZONE}")
    assert addresses(tcp) == [ip]
    srv = await dns.udp(addr, f"_http._tcp.web.default.{ZONE}", "SRV")
    assert [(rr.rdata.port, str(rr.rdata.target)) for rr in srv.rr] == [(80, f"web.default.{ZONE}.")]
    assert (await dns.udp(addr, f"nope.default.{ZONE}")).header.rcode == 3

    # a new service appears, a deleted one goes
    await rest.create(SERVICES, service("late"), "default")

    async def late_resolves():
        return (await dns.udp(addr, f"late.default.{ZONE}")).header.rcode == 0
    await eventually(late_resolves)
    await rest.delete(SERVICES, "web", "default")

    async def web_gone():
        return (await dns.udp(addr, f"web.default.{ZONE}")).header.rcode == 3
    await eventually(web_gone)

    # headless: ready endpoints from the slices, updated in place
    await rest.create(SERVICES, service("db", headless=True), "default")
    await rest.create(SLICES, endpoint_slice("db-1", "db", ["10.42.0.1", "10.42.0.2"],
                                             hostnames=["db-0", None]), "default")

    async def db_answers():
        return addresses(await dns.udp(addr, f"db.default.{ZONE}")) == ["10.42.0.1", "10.42.0.2"]
    await eventually(db_answers)
    assert addresses(await dns.tcp(addr, f"db-0.db.default.{ZONE}")) == ["10.42.0.1"]
    assert addresses(await dns.udp(addr, f"10-42-0-2.db.default.{ZONE}")) == ["10.42.0.2"]
    current = await rest.get(SLICES, "db-1", "default")
    current["endpoints"][1]["conditions"]["ready"] = False
    await rest.update(SLICES, current, "default")

    async def db_one_left():
        return addresses(await dns.udp(addr, f"db.default.{ZONE}")) == ["10.42.0.1"]
    await eventually(db_one_left)
    ptr = await dns.udp(addr, "1.0.42.10.in-addr.arpa", "PTR")
    assert [str(rr.rdata) for rr in ptr.rr] == [f"db-0.db.default.{ZONE}."]
    pod = await dns.udp(addr, "10-42-7-9.default.pod.cluster.local")
    assert addresses(pod) == ["10.42.7.9"]


async def test_external_name_in_zone(rest, start_dns, dns):
    web = await rest.create(SERVICES, service("web"), "default")
    await rest.create(SERVICES, {"apiVersion": "v1", "kind": "Service",
                                 "metadata": {"name": "alias", "namespace": "default"},
                                 "spec": {"type": "ExternalName", "externalName": f"web.default.{ZONE}"}},
                      "default")
    server = await start_dns()
    reply = await dns.udp(server.dns_addresses[0], f"alias.default.{ZONE}")
    assert [rr.rtype for rr in reply.rr] == [5, 1] and addresses(reply) == [web["spec"]["clusterIP"]]


async def test_truncation_and_tcp_retry_with_100_endpoints(rest, start_dns, dns):
    await rest.create(SERVICES, service("big", headless=True), "default")
    ips = [f"10.42.{i // 200}.{i % 200 + 1}" for i in range(100)]
    await rest.create(SLICES, endpoint_slice("big-1", "big", ips), "default")
    server = await start_dns()
    addr = server.dns_addresses[0]
    udp = await dns.udp(addr, f"big.default.{ZONE}")
    assert udp.header.tc == 1 and len(udp.rr) < 100
    tcp = await dns.tcp(addr, f"big.default.{ZONE}")
    assert tcp.header.tc == 0 and addresses(tcp) == sorted(ips)
    if shutil.which("dig") is None:
        pytest.skip("dig is not installed")
    proc = await asyncio.create_subprocess_exec(
        "dig", f"@{addr[0]}", "-p", str(addr[1]), "+noedns", "+tries=1", "+time=5", f"big.default.{ZONE}", "A",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    out = (await proc.communicate())[0].decode()
    assert "Truncated, retrying in TCP mode" in out, out
    assert out.count("\tA\t") == 100, out


async def test_published_endpoint_slice_appears_gets_its_owner_and_goes_on_stop(rest, start_dns, eventually):
    server = await start_dns(advertise_address="10.0.0.53", node_name="dns-node")
    port = server.dns_addresses[0][1]
    metrics_port = server.metrics_address[1]

    async def published():
        try:
            return await rest.get(SLICES, "kube-dns-dns-node", "kube-system")
        except NotFound:
            return None
    body = await eventually(published)
    assert body["metadata"]["labels"]["kubernetes.io/service-name"] == "kube-dns"
    assert body["metadata"]["labels"]["endpointslice.kubernetes.io/managed-by"] == "pybernetes-dns"
    assert body["endpoints"][0]["addresses"] == ["10.0.0.53"]
    assert body["endpoints"][0]["nodeName"] == "dns-node"
    assert {(p["name"], p["protocol"], p["port"]) for p in body["ports"]} == {
        ("dns", "UDP", port), ("dns-tcp", "TCP", port), ("metrics", "TCP", metrics_port)}
    assert not body["metadata"].get("ownerReferences")

    node = await rest.create(NODES, {"apiVersion": "v1", "kind": "Node", "metadata": {"name": "dns-node"}})

    async def owned():
        current = await rest.get(SLICES, "kube-dns-dns-node", "kube-system")
        return [(o["kind"], o["name"], o["uid"]) for o in current["metadata"].get("ownerReferences") or []]
    assert await eventually(owned, within=20) == [("Node", "dns-node", node["metadata"]["uid"])]

    # removed by someone else: written again
    await rest.delete(SLICES, "kube-dns-dns-node", "kube-system")
    await eventually(published)
    await eventually(lambda: server.publisher.writes >= 3)
    assert server.publisher.writes == 3  # create, owner, re-create: its own writes cause none

    await server.stop()
    with pytest.raises(NotFound):
        await rest.get(SLICES, "kube-dns-dns-node", "kube-system")


async def test_metrics_health_and_ready(rest, start_dns, dns):
    await rest.create(SERVICES, service("web"), "default")
    server = await start_dns()
    addr = server.dns_addresses[0]
    for _ in range(3):
        await dns.udp(addr, f"web.default.{ZONE}")
    await dns.tcp(addr, f"nope.default.{ZONE}")
    host, port = server.metrics_address
    async with aiohttp.ClientSession(f"http://{host}:{port}") as http:
        async with http.get("/health") as resp:
            assert resp.status == 200
        async with http.get("/ready") as resp:
            assert resp.status == 200
        async with http.get("/metrics") as resp:
            text = await resp.text()
    assert 'coredns_dns_requests_total{proto="udp",type="A"} 3.0' in text
    assert 'coredns_dns_requests_total{proto="tcp",type="A"} 1.0' in text
    assert 'coredns_dns_responses_total{rcode="NXDOMAIN"} 1.0' in text
    assert "coredns_dns_request_duration_seconds_bucket" in text


async def test_several_queries_on_one_tcp_connection(rest, start_dns):
    await rest.create(SERVICES, service("web"), "default")
    server = await start_dns()
    reader, writer = await asyncio.open_connection(*server.dns_addresses[0])
    try:
        ids = []
        for name in ("web", "nope", "web"):
            q = DNSRecord.question(f"{name}.default.{ZONE}")
            ids.append(q.header.id)
            data = q.pack()
            writer.write(struct.pack("!H", len(data)) + data)  # pipelined
        got = []
        for _ in ids:
            (length,) = struct.unpack("!H", await asyncio.wait_for(reader.readexactly(2), 5))
            got.append(DNSRecord.parse(await reader.readexactly(length)).header.id)
        assert sorted(got) == sorted(ids)
    finally:
        writer.close()


async def test_servfail_and_not_ready_until_synced(dns):
    with socket.socket() as probe:  # a port where no API server listens
        probe.bind(("127.0.0.1", 0))
        dead = probe.getsockname()[1]
    client = RestClient(Config(servers=[f"http://127.0.0.1:{dead}"]), max_retries=0)
    server = DnsService(client, DnsOptions(listen=[("127.0.0.1", 0)], metrics_port=0, upstreams=[],
                                           sync_timeout=0.2))
    await server.start()
    try:
        assert not server.has_synced()
        reply = await dns.udp(server.dns_addresses[0], f"web.default.{ZONE}")
        assert reply.header.rcode == 2
        host, port = server.metrics_address
        async with aiohttp.ClientSession() as http, http.get(f"http://{host}:{port}/ready") as resp:
            assert resp.status == 503
    finally:
        await server.stop()
        await client.close()
