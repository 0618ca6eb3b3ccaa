"""The proxy's health (upstream's ProxierHealthServer rules), its metrics server, and the choice
of node-port addresses."""

from __future__ import annotations

import aiohttp
import orjson

from pybernetes.proxy.metrics import Health, ProxyMetrics, serve
from pybernetes.proxy.proxier import nodeport_ips


class Clock:
    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


def test_health_turns_bad_only_when_a_change_waits_too_long() -> None:
    clock = Clock()
    health = Health(timeout=60, clock=clock)
    assert health.healthy() and health.report()[0] == 200
    health.queued()
    clock.now += 59
    assert health.healthy()
    health.queued()  # the oldest waiting change counts
    clock.now += 2
    status, body = health.report()
    assert status == 503 and not health.healthy()
    report = orjson.loads(body)
    assert report["nodeEligible"] is True and report["lastUpdated"].startswith("2023-11-14T22:13:20")
    assert report["currentTime"].endswith("Z")
    health.updated()
    assert health.report()[0] == 200
    health.node_eligible = False  # the Node is being deleted
    assert health.report()[0] == 503


async def test_the_server_serves_metrics_and_health() -> None:
    metrics = ProxyMetrics()
    metrics.observe(True, 0.5)
    metrics.observe(False, 0.01)
    metrics.set_objects({"chains": 3, "rules": 5})
    metrics.service_changes.inc()
    clock = Clock()
    health = Health(timeout=1, clock=clock)
    runner, port = await serve("127.0.0.1", 0, metrics, health)
    try:
        async with aiohttp.ClientSession() as http:
            async with http.get(f"http://127.0.0.1:{port}/metrics") as resp:
                text = await resp.text()
            for name in ("kubeproxy_sync_proxy_rules_duration_seconds_count 2.0",
                         "kubeproxy_sync_full_proxy_rules_duration_seconds_count 1.0",
                         "kubeproxy_sync_partial_proxy_rules_duration_seconds_count 1.0",
                         "kubeproxy_sync_proxy_rules_service_changes_total 1.0",
                         'kubeproxy_sync_proxy_rules_nftables_objects{type="chains"} 3.0',
                         "kubeproxy_sync_proxy_rules_last_timestamp_seconds",
                         "kubeproxy_sync_proxy_rules_endpoint_changes_total 0.0",
                         "kubeproxy_sync_proxy_rules_nftables_sync_failures_total 0.0"):
                assert name in text, name
            async with http.get(f"http://127.0.0.1:{port}/healthz") as resp:
                assert resp.status == 200 and "lastUpdated" in await resp.json()
            health.queued()
            clock.now += 5
            async with http.get(f"http://127.0.0.1:{port}/healthz") as resp:
                assert resp.status == 503
    finally:
        await runner.cleanup()


def test_node_port_addresses() -> None:
    node = [("InternalIP", "10.0.0.5"), ("ExternalIP", "203.0.113.5"), ("Hostname", "n1"),
            ("InternalIP", "fd00::5")]
    assert nodeport_ips([], node, []) == ("10.0.0.5",)
    assert nodeport_ips(["127.0.0.1", "10.0.0.0/8", "bad", "fd00::/64"], node, ["10.1.2.3", "192.168.1.1"]) \
        == ("10.0.0.5", "10.1.2.3", "127.0.0.1")
    assert nodeport_ips(["primary", "203.0.113.0/24"], node, []) == ("10.0.0.5", "203.0.113.5")
