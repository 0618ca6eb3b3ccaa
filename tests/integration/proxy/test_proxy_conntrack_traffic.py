"""Stale UDP flows with real packets: a Proxier fed by a real API server programs a NetnsLab node
(tests/support/netns_lab.py) and clears conntrack there after its syncs.  A client pod sends
datagrams from FIXED source ports to a UDP Service whose only endpoint moves from pod a to pod
b, and to a ClusterIP that had no rules yet (its first datagram left by the node's uplink).
With the cleanup both flows follow the rules at once; without it (the control) the old flow
keeps reaching a and the early one keeps going nowhere, until conntrack expires them.  Root,
iproute2, nft, conntrack and busybox needed (skipped otherwise)."""

from __future__ import annotations

import asyncio
import functools
import sys
import uuid
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "support"))
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "unit" / "proxy"))
import async_poll  # noqa: E402
import netns_lab  # noqa: E402
from proxy_objects import endpoint, endpoint_slice, port, service  # noqa: E402

from pybernetes.client.kubeconfig import Config  # noqa: E402
from pybernetes.client.rest import RestClient  # noqa: E402
from pybernetes.proxy.conntrack import Conntrack  # noqa: E402
from pybernetes.proxy.nft import Nft  # noqa: E402
from pybernetes.proxy.proxier import ENDPOINT_SLICES, NODES, SERVICES, Proxier, ProxierOptions  # noqa: E402
from pybernetes.proxy.table import Target  # noqa: E402

_MISSING = netns_lab.available() or (None if Nft.available() else "needs nft") or (
    None if Conntrack().available() else "needs conntrack (conntrack-tools)")
pytestmark = pytest.mark.skipif(_MISSING is not None, reason=str(_MISSING))

NODE = "lab-node"
TABLE = "pyb-proxy-ct"
CLUSTER_IP = "10.43.77.53"
UDP_SERVER = ("import socket,sys\ns=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\n"
              "s.bind(('0.0.0.0',int(sys.argv[1])))\n"
              "while True:\n d,a=s.recvfrom(2048)\n s.sendto(sys.argv[2].encode(),a)\n")
# one datagram from a fixed source port; prints the answer, or "-" when none comes
UDP_CLIENT = ("import socket,sys\ns=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\n"
              "s.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1)\n"
              "s.bind(('0.0.0.0',int(sys.argv[3])))\ns.settimeout(1.0)\n"
              "s.sendto(b'hi',(sys.argv[1],int(sys.argv[2])))\n"
              "try:\n print(s.recvfrom(2048)[0].decode())\nexcept OSError:\n print('-')\n")
MOVED, EARLY, FRESH = 41001, 41002, 41003  # the client's source ports


@pytest.fixture
def lab():
    with netns_lab.NetnsLab(f"pc{uuid.uuid4().hex[:5]}", "10.244.61.0/24") as the_lab:
        yield the_lab


poll = functools.partial(async_poll.poll, within=10.0, interval=0.05)


@pytest.mark.parametrize("cleanup", [True, False], ids=["with-cleanup", "control-without"])
async def test_udp_flows_follow_a_moved_endpoint_and_a_service_that_became_active(api_server, lab,
                                                                                 cleanup: bool) -> None:
    pods = {name: lab.add_pod(name) for name in ("a", "b", "cl")}
    for name in ("a", "b"):
        lab.spawn(pods[name].netns, sys.executable, "-c", UDP_SERVER, "5353", name)
    ext = lab.add_external("ext")
    lab.exec(lab.node, "ip", "route", "add", "default", "via", ext.ip)  # where unknown addresses go

    async def send(source_port: int) -> str:
        result = await asyncio.to_thread(lab.exec, pods["cl"].netns, sys.executable, "-c", UDP_CLIENT,
                                         CLUSTER_IP, "53", str(source_port), check=False)
        return result.stdout.strip() or "-"

    dns = [{"name": "dns", "port": 5353, "protocol": "UDP"}]
    async with RestClient(Config(servers=[api_server.url])) as client:
        await client.create(NODES, {"metadata": {"name": NODE},
                                    "status": {"addresses": [{"type": "InternalIP", "address": lab.node_ip}]}})
        proxier = Proxier(client, ProxierOptions(
            node_name=NODE, table=TABLE, cluster_cidr=str(lab.network), netns=lab.node, min_sync_period=0.05,
            sync_period=5.0, metrics_port=None, stale_grace=0.2, conntrack="conntrack" if cleanup else None))
        await proxier.start()
        try:
            assert await proxier.wait_synced(15)

            async def programmed(ip: str) -> bool:
                target = (await proxier.backend.programmed()).frontends.get((CLUSTER_IP, "udp", 53))
                return target == Target("dnat", (f"{ip}:5353",))

            # no rule for the address yet: the datagram leaves by the uplink and conntrack remembers that
            assert await send(EARLY) == "-"
            await client.create(SERVICES, service("dns", CLUSTER_IP, [port("dns", 53, "UDP")]), "default")
            await client.create(ENDPOINT_SLICES, endpoint_slice("dns", [endpoint(pods["a"].ip, node=NODE)], dns),
                                "default")
            await poll(lambda: programmed(pods["a"].ip), what="the Service on a")
            assert await send(MOVED) == "a"

            slice_obj = await client.get(ENDPOINT_SLICES, "dns-abcde", "default")
            slice_obj["endpoints"] = [endpoint(pods["b"].ip, node=NODE)]  # a goes, b comes
            await client.update(ENDPOINT_SLICES, slice_obj, "default")
            await poll(lambda: programmed(pods["b"].ip), what="the Service on b")

            async def answers(source_port: int, wanted: str) -> bool:
                return await send(source_port) == wanted

            assert await poll(lambda: answers(FRESH, "b"), what="a new flow reaching b")  # the rules are right
            if cleanup:
                await poll(lambda: answers(MOVED, "b"), within=5, what="the moved flow reaching b")
                await poll(lambda: answers(EARLY, "b"), within=5, what="the early flow reaching the Service")
                assert proxier.flows_deleted >= 2
            else:  # the control: what the cleanup is for
                assert [await send(MOVED) for _ in range(3)] == ["a"] * 3
                assert [await send(EARLY) for _ in range(2)] == ["-"] * 2
                assert proxier.flows_deleted == 0
        finally:
            await proxier.stop()
