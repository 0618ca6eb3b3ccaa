"""Real packets through the proxy: a Proxier fed by a real API server programs nftables inside a
NetnsLab node (tests/support/netns_lab.py), and busybox clients in pod and host namespaces talk to
busybox httpd (and a tiny UDP echo server) in pod namespaces through ClusterIPs, node ports,
externalIPs and LoadBalancer IPs.  Root, iproute2, nft and busybox needed (skipped otherwise)."""

from __future__ import annotations

import asyncio
import sys
import time
import uuid
from collections import Counter
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "support"))
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "unit" / "proxy"))
import netns_lab  # noqa: E402
from proxy_objects import endpoint, endpoint_slice, port, service  # noqa: E402

from pybernetes.client.kubeconfig import Config  # noqa: E402
from pybernetes.client.rest import RestClient  # noqa: E402
from pybernetes.proxy.nft import Nft  # noqa: E402
from pybernetes.proxy.proxier import ENDPOINT_SLICES, NODES, SERVICES, Proxier, ProxierOptions  # noqa: E402

pytestmark = pytest.mark.skipif(netns_lab.available() is not None or not Nft.available(),
                                reason=f"{netns_lab.available() or 'needs nft'}")

NODE = "lab-node"
TABLE = "pyb-proxy-traffic"
UDP_SERVER = ("import socket,sys\ns=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\n"
              "s.bind(('0.0.0.0',int(sys.argv[1])))\n"
              "while True:\n d,a=s.recvfrom(2048)\n s.sendto(sys.argv[2].encode(),a)\n")
UDP_CLIENT = ("import socket,sys\ns=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\ns.settimeout(2)\n"
              "s.sendto(b'hi',(sys.argv[1],int(sys.argv[2])))\nprint(s.recvfrom(2048)[0].decode())\n")


@pytest.fixture
def lab():
    with netns_lab.NetnsLab(f"px{uuid.uuid4().hex[:5]}") as the_lab:
        yield the_lab


async def until(predicate, within: float = 10.0, what: str = "condition"):
    deadline = time.monotonic() + within
    while True:
        value = await asyncio.to_thread(predicate)
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.05)


def answers(lab, netns: str, host: str, port_number: int = 80, count: int = 30) -> Counter:
    return Counter(lab.http_get(netns, host, port_number, timeout=3) for _ in range(count))


async def make_service(client: RestClient, obj: dict) -> str:
    created = await client.create(SERVICES, obj, "default")
    return created["spec"]["clusterIP"]


async def start_proxier(client: RestClient, lab, **kw) -> Proxier:
    await client.create(NODES, {"metadata": {"name": NODE},
                                "status": {"addresses": [{"type": "InternalIP", "address": lab.node_ip}]}})
    proxier = Proxier(client, ProxierOptions(node_name=NODE, table=TABLE, cluster_cidr=str(lab.network),
                                             netns=lab.node, min_sync_period=0.05, sync_period=0.5,
                                             metrics_port=None, stale_grace=0.2, **kw))
    await proxier.start()
    assert await proxier.wait_synced(15)
    return proxier


async def test_cluster_ips_balance_fail_fast_stick_and_hairpin(api_server, lab) -> None:
    pods = {name: lab.add_pod(name) for name in ("a", "b", "c", "cl")}
    for name in ("a", "b", "c"):
        lab.serve_http(pods[name].netns, 80, body=name)
    lab.spawn(pods["c"].netns, sys.executable, "-c", UDP_SERVER, "5353", "udp-c")
    http = [{"name": "http", "port": 80, "protocol": "TCP"}]
    async with RestClient(Config(servers=[api_server.url])) as client:
        proxier = await start_proxier(client, lab)
        try:
            web = await make_service(client, service("web", None, [port("http", 80)]))
            await client.create(ENDPOINT_SLICES, endpoint_slice(
                "web", [endpoint(pods[n].ip, node=NODE) for n in ("a", "b", "c")], http), "default")
            await until(lambda: lab.http_get(pods["cl"].netns, web), what="the ClusterIP")
            assert set(answers(lab, pods["cl"].netns, web)) == {"a", "b", "c"}  # every endpoint answers
            wrong_port = lab.exec(pods["cl"].netns, netns_lab.BUSYBOX, "wget", "-qO-", f"http://{web}:81/",
                                  check=False, timeout=10)
            assert "refused" in wrong_port.stderr.lower()  # a port the Service does not have

            slice_obj = await client.get(ENDPOINT_SLICES, "web-abcde", "default")
            slice_obj["endpoints"][1]["conditions"] = {"ready": False}  # b fails its readiness probe
            await client.update(ENDPOINT_SLICES, slice_obj, "default")

            async def two_endpoints() -> bool:
                frontends = (await proxier.backend.programmed()).frontends
                return len(frontends[(web, "tcp", 80)].endpoints) == 2

            deadline = time.monotonic() + 10
            while not await two_endpoints():
                assert time.monotonic() < deadline
                await asyncio.sleep(0.05)
            assert set(answers(lab, pods["cl"].netns, web)) == {"a", "c"}  # b left the rotation

            slice_obj = await client.get(ENDPOINT_SLICES, "web-abcde", "default")
            slice_obj["endpoints"] = []  # scaled to zero
            await client.update(ENDPOINT_SLICES, slice_obj, "default")

            def refused() -> float | None:
                start = time.monotonic()
                result = lab.exec(pods["cl"].netns, netns_lab.BUSYBOX, "wget", "-qO-", f"http://{web}:80/",
                                  check=False, timeout=10)
                took = time.monotonic() - start
                return took if result.returncode != 0 and "refused" in result.stderr.lower() else None

            assert await until(refused, what="a refusal") < 1.5  # at once, not after a timeout

            lone = await make_service(client, service("lone", None, [port("http", 80)]))
            await client.create(ENDPOINT_SLICES, endpoint_slice("lone", [endpoint(pods["a"].ip, node=NODE)], http),
                                "default")
            assert await until(lambda: lab.http_get(pods["a"].netns, lone), what="hairpin") == "a"

            sticky = await make_service(client, service("sticky", None, [port("http", 80)],
                                                        sessionAffinity="ClientIP"))
            await client.create(ENDPOINT_SLICES, endpoint_slice(
                "sticky", [endpoint(pods[n].ip, node=NODE) for n in ("a", "b", "c")], http), "default")
            await until(lambda: lab.http_get(pods["cl"].netns, sticky), what="the sticky service")
            assert len(answers(lab, pods["cl"].netns, sticky, count=12)) == 1  # always the same endpoint

            dns = await make_service(client, service("dns", None, [port("dns", 53, "UDP")]))
            await client.create(ENDPOINT_SLICES, endpoint_slice(
                "dns", [endpoint(pods["c"].ip, node=NODE)], [{"name": "dns", "port": 5353, "protocol": "UDP"}]),
                "default")

            def udp_answer() -> str | None:
                result = lab.exec(pods["cl"].netns, sys.executable, "-c", UDP_CLIENT, dns, "53", check=False)
                return result.stdout.strip() if result.returncode == 0 else None

            assert await until(udp_answer, what="the UDP service") == "udp-c"
        finally:
            await proxier.stop()
        assert not lab.exec(lab.node, "nft", "list", "table", "ip", TABLE, check=False).returncode == 0


async def test_node_ports_external_ips_load_balancers_and_local_policies(api_server, lab) -> None:
    pods = {name: lab.add_pod(name) for name in ("a", "b")}
    for name in ("a", "b"):
        lab.serve_http(pods[name].netns, 80, body=name)
    ext = lab.add_external("ext")
    lab.exec(lab.node, "ip", "route", "add", "default", "via", ext.ip)  # the node's uplink
    http = [{"name": "http", "port": 80, "protocol": "TCP"}]
    both = [endpoint(pods["a"].ip, node=NODE), endpoint(pods["b"].ip, node="other-node")]
    async with RestClient(Config(servers=[api_server.url])) as client:
        proxier = await start_proxier(client, lab, nodeport_addresses=["primary", "127.0.0.1"])
        try:
            await make_service(client, service("np", None, [port("http", 80, node_port=30080)], type="NodePort"))
            await client.create(ENDPOINT_SLICES, endpoint_slice("np", both, http), "default")
            await until(lambda: lab.http_get(ext.netns, lab.node_ip, 30080), what="the node port")
            assert set(answers(lab, ext.netns, lab.node_ip, 30080, count=20)) == {"a", "b"}
            # on 127.0.0.1 from the node itself (route_localnet + masquerading of 127.0.0.0/8)
            assert await until(lambda: lab.http_get(lab.node, "127.0.0.1", 30080), what="localhost") in ("a", "b")
            assert lab.exec(lab.node, "sysctl", "-n", "net.ipv4.conf.all.route_localnet").stdout.strip() == "1"

            await make_service(client, service("etp", None, [port("http", 80, node_port=30081)], type="NodePort",
                                               externalTrafficPolicy="Local"))
            await client.create(ENDPOINT_SLICES, endpoint_slice("etp", both, http), "default")
            await until(lambda: lab.http_get(ext.netns, lab.node_ip, 30081), what="the Local node port")
            assert set(answers(lab, ext.netns, lab.node_ip, 30081, count=15)) == {"a"}  # this node's only

            itp = await make_service(client, service("itp", None, [port("http", 80)], internalTrafficPolicy="Local"))
            await client.create(ENDPOINT_SLICES, endpoint_slice("itp", both, http), "default")
            await until(lambda: lab.http_get(pods["b"].netns, itp), what="the Local ClusterIP")
            assert set(answers(lab, pods["b"].netns, itp, count=15)) == {"a"}

            old = await make_service(client, service("old", None, [port("http", 80)], externalIPs=["192.0.2.50"],
                                                     externalTrafficPolicy="Cluster"))
            await client.create(ENDPOINT_SLICES, endpoint_slice("old", [endpoint(pods["a"].ip, node=NODE)], http),
                                "default")
            assert await until(lambda: lab.http_get(ext.netns, "192.0.2.50"), what="the externalIP") == "a"

            lb = await client.create(SERVICES, service("lb", None, [port("http", 80, node_port=30082)],
                                                       type="LoadBalancer"), "default")
            lb["status"] = {"loadBalancer": {"ingress": [{"ip": "192.0.2.60"}]}}
            await client.update_status(SERVICES, lb, "default")
            await client.create(ENDPOINT_SLICES, endpoint_slice("lb", [endpoint(pods["b"].ip, node=NODE)], http),
                                "default")
            assert await until(lambda: lab.http_get(ext.netns, "192.0.2.60"), what="the LoadBalancer IP") == "b"

            await asyncio.sleep(1.1)  # a younger creationTimestamp
            young = await make_service(client, service("young", None, [port("http", 80)],
                                                       externalIPs=["192.0.2.50"], externalTrafficPolicy="Cluster"))
            await client.create(ENDPOINT_SLICES, endpoint_slice("young", [endpoint(pods["b"].ip, node=NODE)], http),
                                "default")
            assert await until(lambda: lab.http_get(pods["a"].netns, young), what="the colliding service") == "b"
            assert set(answers(lab, ext.netns, "192.0.2.50", count=10)) == {"a"}  # the older one keeps it
            assert lab.http_get(pods["b"].netns, old) == "a"
        finally:
            await proxier.stop()


async def test_a_deleted_table_comes_back_and_stop_removes_it(api_server, lab) -> None:
    pod = lab.add_pod("a")
    lab.serve_http(pod.netns, 80, body="a")
    client_pod = lab.add_pod("cl")
    async with RestClient(Config(servers=[api_server.url])) as client:
        proxier = await start_proxier(client, lab)
        try:
            web = await make_service(client, service("web", None, [port("http", 80)]))
            await client.create(ENDPOINT_SLICES, endpoint_slice(
                "web", [endpoint(pod.ip, node=NODE)], [{"name": "http", "port": 80, "protocol": "TCP"}]), "default")
            await until(lambda: lab.http_get(client_pod.netns, web), what="the ClusterIP")
            lab.exec(lab.node, "nft", "delete", "table", "ip", TABLE)  # someone removes it
            assert lab.http_get(client_pod.netns, web, timeout=1) is None
            assert await until(lambda: lab.http_get(client_pod.netns, web, timeout=1), what="the repair") == "a"
        finally:
            await proxier.stop(cleanup=True)
        assert lab.exec(lab.node, "nft", "list", "table", "ip", TABLE, check=False).returncode != 0


async def test_load_balancer_source_ranges_limit_only_the_load_balancer_ip(api_server, lab) -> None:
    pods = {name: lab.add_pod(name) for name in ("a", "cl")}
    lab.serve_http(pods["a"].netns, 80, body="a")
    ext = lab.add_external("ext")
    lab.exec(lab.node, "ip", "route", "add", "default", "via", ext.ip)
    http = [{"name": "http", "port": 80, "protocol": "TCP"}]
    async with RestClient(Config(servers=[api_server.url])) as client:
        proxier = await start_proxier(client, lab)
        try:
            fw = await client.create(SERVICES, service("fw", None, [port("http", 80, node_port=30090)],
                                                       type="LoadBalancer",
                                                       loadBalancerSourceRanges=[f"{ext.ip}/32"]), "default")
            fw["status"] = {"loadBalancer": {"ingress": [{"ip": "192.0.2.70"}]}}
            await client.update_status(SERVICES, fw, "default")
            await client.create(ENDPOINT_SLICES, endpoint_slice("fw", [endpoint(pods["a"].ip, node=NODE)], http),
                                "default")
            cluster_ip = fw["spec"]["clusterIP"]
            assert await until(lambda: lab.http_get(ext.netns, "192.0.2.70"), what="an allowed source") == "a"

            async def set_ranges(ranges: list[str], rule: str) -> None:
                obj = await client.get(SERVICES, "fw", "default")
                obj["spec"]["loadBalancerSourceRanges"] = ranges
                await client.update(SERVICES, obj, "default")

                async def programmed() -> bool:
                    table = (await proxier.backend.programmed()).table
                    return [rule for name, chain in table.chains.items() if name.startswith("firewall-") and "/" in name
                            for rule in chain.rules] == [rule]

                deadline = time.monotonic() + 10
                while not await programmed():
                    assert time.monotonic() < deadline, f"not programmed: {rule}"
                    await asyncio.sleep(0.05)

            await set_ranges(["198.51.100.0/24"], "ip saddr != 198.51.100.0/24 drop")  # the external host is outside
            assert lab.http_get(ext.netns, "192.0.2.70", timeout=1) is None  # dropped
            assert lab.http_get(ext.netns, lab.node_ip, 30090) == "a"  # the node port is not limited
            assert lab.http_get(pods["cl"].netns, cluster_ip) == "a"  # nor is the ClusterIP
            # a range holding the node's address: the node may reach the VIP (which loops back from itself)
            await set_ranges(["172.31.254.0/30"], "ip saddr != { 172.31.254.0/30, 192.0.2.70 } drop")
            assert await until(lambda: lab.http_get(ext.netns, "192.0.2.70"), what="allowed again") == "a"
        finally:
            await proxier.stop()
