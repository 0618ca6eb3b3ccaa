"""The NetworkPolicy enforcer's metrics on the proxy's /metrics: ``NodeNetwork`` (what ``pybernetes
proxy`` runs) built from the command's own flags, programming a NetnsLab node namespace, against
a real API server; the scrape shows the enforcer's syncs, rules and isolated pods beside the
proxy's own metrics.  As root only (network namespaces, nft)."""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
import uuid
from pathlib import Path

import aiohttp
import pytest

from pybernetes.cli.network import NodeNetwork, add_proxy_flags
from pybernetes.client.kubeconfig import Config
from pybernetes.client.rest import RestClient
from pybernetes.proxy.nft import Nft

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "support"))
import netns_lab  # noqa: E402

pytestmark = pytest.mark.skipif(netns_lab.available() is not None or not Nft.available(),
                                reason=str(netns_lab.available() or "needs nft"))

NODE = "npm-node"
PODS = ("", "v1", "pods")
NAMESPACES = ("", "v1", "namespaces")
POLICIES = ("networking.k8s.io", "v1", "networkpolicies")


def scrape_values(text: str) -> dict[str, float]:
    return {name: float(value) for name, value in
            (line.rsplit(" ", 1) for line in text.splitlines() if line and not line.startswith("#"))}


async def test_the_proxy_metrics_carry_the_network_policy_enforcers(api_server) -> None:
    lab = await asyncio.to_thread(netns_lab.NetnsLab, f"nm{uuid.uuid4().hex[:4]}", "10.244.94.0/24")
    parser = argparse.ArgumentParser()
    add_proxy_flags(parser)
    args = parser.parse_args(["--server", api_server.url, "--node-name", NODE, "--metrics-port", "0",
                              "--healthz-port", "-1", "--table", "pyb-npm-proxy", "--netpol-table", "pyb-npm-netpol",
                              "--cluster-cidr", str(lab.network), "--min-sync-period", "50ms"])
    network = None
    try:
        async with RestClient(Config(servers=[api_server.url])) as client:
            await client.create(NAMESPACES, {"metadata": {"name": "npm"}})
            for i, name in enumerate(("web", "client")):
                await client.create(PODS, {"metadata": {"name": name, "namespace": "npm", "labels": {"app": name}},
                                           "spec": {"nodeName": NODE, "containers": [{"name": "c", "image": "x"}]}},
                                    "npm")
                ip = f"10.244.94.{10 + i}"
                await client.patch(PODS, name, {"status": {"phase": "Running", "podIP": ip, "podIPs": [{"ip": ip}]}},
                                   "npm", subresource="status")
            network = NodeNetwork(client, args, NODE, netns=lab.node)
            await network.start()
            assert network.enforcer is not None and await network.enforcer.wait_for_sync(15)
            url = f"http://127.0.0.1:{network.proxier.metrics_port}/metrics"

            async with aiohttp.ClientSession() as http:
                async def scrape() -> dict[str, float]:
                    async with http.get(url) as resp:
                        assert resp.status == 200
                        return scrape_values(await resp.text())

                async def until(predicate, what: str) -> dict[str, float]:
                    deadline = time.monotonic() + 15
                    while True:
                        values = await scrape()
                        if predicate(values):
                            return values
                        assert time.monotonic() < deadline, f"{what}: {values}"
                        await asyncio.sleep(0.05)

                values = await scrape()
                assert values["pybernetes_netpol_syncs_total"] >= 1
                assert values["pybernetes_netpol_full_syncs_total"] == 1
                assert values["pybernetes_netpol_sync_failures_total"] == 0
                assert values['pybernetes_netpol_isolated_pods{direction="ingress"}'] == 0
                assert values["pybernetes_netpol_rules"] > 0
                assert values["pybernetes_netpol_sync_duration_seconds_count"] >= 1
                assert values["pybernetes_netpol_last_sync_timestamp_seconds"] > 0
                assert "kubeproxy_sync_proxy_rules_duration_seconds_count" in values  # one /metrics for both

                rules = values["pybernetes_netpol_rules"]
                await client.create(POLICIES, {"metadata": {"name": "deny", "namespace": "npm"},
                                               "spec": {"podSelector": {}, "policyTypes": ["Ingress"]}}, "npm")
                values = await until(lambda v: v['pybernetes_netpol_isolated_pods{direction="ingress"}'] == 2,
                                     "both pods isolated for ingress")
                assert values['pybernetes_netpol_isolated_pods{direction="egress"}'] == 0
                assert values["pybernetes_netpol_rules"] > rules
                await client.create(POLICIES, {"metadata": {"name": "out", "namespace": "npm"},
                                               "spec": {"podSelector": {"matchLabels": {"app": "client"}},
                                                        "policyTypes": ["Egress"]}}, "npm")
                values = await until(lambda v: v['pybernetes_netpol_isolated_pods{direction="egress"}'] == 1,
                                     "the client isolated for egress")
                assert values["pybernetes_netpol_syncs_total"] >= 3
                assert values["pybernetes_netpol_full_syncs_total"] == 1  # the changes were incremental
                assert values["pybernetes_netpol_last_sync_duration_seconds"] > 0
    finally:
        if network is not None:
            await network.stop()
        await asyncio.to_thread(lab.close)
