"""The service proxy's Prometheus metrics (upstream kube-proxy's names, one registry per proxy so
several can live in one process), its health, and the small aiohttp server for both.

Metrics: ``kubeproxy_sync_proxy_rules_duration_seconds`` (every sync) and its ``full`` and
``partial`` variants, ``kubeproxy_sync_proxy_rules_last_timestamp_seconds`` (last success),
``kubeproxy_sync_proxy_rules_last_queued_timestamp_seconds``,
``kubeproxy_sync_proxy_rules_service_changes_total`` and ``..._endpoint_changes_total`` (with
``..._pending`` gauges), ``kubeproxy_sync_proxy_rules_nftables_objects{type}`` (chains, rules,
sets, elements programmed), ``kubeproxy_sync_proxy_rules_nftables_sync_failures_total`` and
``kubeproxy_sync_proxy_rules_nftables_drift_total`` (table found changed by someone else).

``NetpolMetrics`` are the NetworkPolicy enforcer's (netpol.py), registered on the proxy's registry
when both run in one process (``pybernetes proxy``), so one /metrics serves both:
``pybernetes_netpol_syncs_total`` (transactions applied), ``pybernetes_netpol_full_syncs_total``
(those that recreated the table), ``pybernetes_netpol_sync_failures_total``,
``pybernetes_netpol_sync_duration_seconds`` (a histogram) with
``pybernetes_netpol_last_sync_duration_seconds`` and ``..._last_sync_timestamp_seconds``,
``pybernetes_netpol_rules`` (rules in its table), ``pybernetes_netpol_isolated_pods{direction}``
(this node's pods isolated for ingress and for egress) and ``pybernetes_netpol_policy_problems``
(policies partly not enforced).

Health as upstream's ProxierHealthServer: unhealthy (503) when a change has been waiting for
longer than the health timeout without a successful sync; the JSON body carries
``lastUpdated``, ``currentTime`` and ``nodeEligible`` (false while the Node is being deleted).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime

import orjson
from aiohttp import web
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

BUCKETS = (0.001, 0.002, 0.004, 0.008, 0.016, 0.032, 0.064, 0.128, 0.256, 0.512, 1.024, 2.048, 4.096,
           8.192, 16.384)


class ProxyMetrics:
    def __init__(self) -> None:
        r = self.registry = CollectorRegistry()
        self.sync = Histogram("kubeproxy_sync_proxy_rules_duration_seconds",
                              "SyncProxyRules latency in seconds", buckets=BUCKETS, registry=r)
        self.full = Histogram("kubeproxy_sync_full_proxy_rules_duration_seconds",
                              "SyncProxyRules latency in seconds for full resyncs", buckets=BUCKETS, registry=r)
        self.partial = Histogram("kubeproxy_sync_partial_proxy_rules_duration_seconds",
                                 "SyncProxyRules latency in seconds for partial resyncs", buckets=BUCKETS,
                                 registry=r)
        self.last = Gauge("kubeproxy_sync_proxy_rules_last_timestamp_seconds",
                          "The last time proxy rules were successfully synced", registry=r)
        self.last_queued = Gauge("kubeproxy_sync_proxy_rules_last_queued_timestamp_seconds",
                                 "The last time a sync of proxy rules was queued", registry=r)
        self.service_changes = Counter("kubeproxy_sync_proxy_rules_service_changes",
                                       "Cumulative proxy rules Service changes", registry=r)
        self.endpoint_changes = Counter("kubeproxy_sync_proxy_rules_endpoint_changes",
                                        "Cumulative proxy rules Endpoint changes", registry=r)
        self.service_pending = Gauge("kubeproxy_sync_proxy_rules_service_changes_pending",
                                     "Pending proxy rules Service changes", registry=r)
        self.endpoint_pending = Gauge("kubeproxy_sync_proxy_rules_endpoint_changes_pending",
                                      "Pending proxy rules Endpoint changes", registry=r)
        self.objects = Gauge("kubeproxy_sync_proxy_rules_nftables_objects",
                             "Objects in the proxy's nftables table, by type", ["type"], registry=r)
        self.failures = Counter("kubeproxy_sync_proxy_rules_nftables_sync_failures",
                                "nftables transactions of the proxy that failed", registry=r)
        self.drift = Counter("kubeproxy_sync_proxy_rules_nftables_drift",
                             "Times the proxy's table was found changed or removed by someone else", registry=r)

    def observe(self, full: bool, seconds: float) -> None:
        self.sync.observe(seconds)
        (self.full if full else self.partial).observe(seconds)

    def set_objects(self, counts: dict[str, int]) -> None:
        for kind, value in counts.items():
            self.objects.labels(kind).set(value)

    def render(self) -> bytes:
        return generate_latest(self.registry)


class NetpolMetrics:
    """The NetworkPolicy enforcer's metrics (see the module doc), on ``registry`` if given."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        r = self.registry = registry if registry is not None else CollectorRegistry()
        self.syncs = Counter("pybernetes_netpol_syncs", "NetworkPolicy table transactions applied", registry=r)
        self.full_syncs = Counter("pybernetes_netpol_full_syncs",
                                  "NetworkPolicy table transactions that recreated the whole table", registry=r)
        self.failures = Counter("pybernetes_netpol_sync_failures", "NetworkPolicy syncs that failed", registry=r)
        self.duration = Histogram("pybernetes_netpol_sync_duration_seconds",
                                  "NetworkPolicy sync latency in seconds", buckets=BUCKETS, registry=r)
        self.last_duration = Gauge("pybernetes_netpol_last_sync_duration_seconds",
                                   "Latency of the last successful NetworkPolicy sync in seconds", registry=r)
        self.last = Gauge("pybernetes_netpol_last_sync_timestamp_seconds",
                          "The last time the NetworkPolicy table was successfully synced", registry=r)
        self.rules = Gauge("pybernetes_netpol_rules", "Rules in the NetworkPolicy table", registry=r)
        self.isolated = Gauge("pybernetes_netpol_isolated_pods",
                              "Pods of this node isolated by NetworkPolicy, by direction", ["direction"], registry=r)
        self.problems = Gauge("pybernetes_netpol_policy_problems",
                              "NetworkPolicies of which a part is not enforced", registry=r)
        for direction in ("ingress", "egress"):
            self.isolated.labels(direction)

    def synced(self, transactions: int, full: bool, seconds: float, rules: int, isolated: tuple[int, int],
               problems: int) -> None:
        """One successful sync: ``transactions`` applied (0: nothing to change), ``full`` if one
        recreated the table."""
        if transactions:
            self.syncs.inc(transactions)
        if full:
            self.full_syncs.inc()
        self.duration.observe(seconds)
        self.last_duration.set(seconds)
        self.last.set(time.time())
        self.rules.set(rules)
        self.isolated.labels("ingress").set(isolated[0])
        self.isolated.labels("egress").set(isolated[1])
        self.problems.set(problems)

    def render(self) -> bytes:
        return generate_latest(self.registry)


class Health:
    """Upstream's proxier health: healthy unless a queued change waited ``timeout`` seconds."""

    def __init__(self, timeout: float, clock: Callable[[], float] = time.time) -> None:
        self.timeout = timeout
        self.clock = clock
        self.last_updated = clock()
        self.queued_at: float | None = None
        self.node_eligible = True

    def queued(self) -> None:
        if self.queued_at is None:
            self.queued_at = self.clock()

    def updated(self) -> None:
        self.last_updated = self.clock()
        self.queued_at = None

    def healthy(self) -> bool:
        return self.queued_at is None or self.clock() - self.queued_at < self.timeout

    def report(self) -> tuple[int, bytes]:
        now = self.clock()
        body = {"lastUpdated": _iso(self.last_updated), "currentTime": _iso(now),
                "nodeEligible": self.node_eligible}
        ok = self.healthy() and self.node_eligible
        return (200 if ok else 503), orjson.dumps(body)


def _iso(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


async def serve(host: str, port: int, metrics: ProxyMetrics | None, health: Health) -> tuple[web.AppRunner, int]:
    """/healthz and /livez, plus /metrics when ``metrics`` is given; (runner, bound port)."""

    async def healthz(_: web.Request) -> web.Response:
        status, body = health.report()
        return web.Response(status=status, body=body, content_type="application/json")

    async def livez(_: web.Request) -> web.Response:
        status, body = health.report()
        return web.Response(status=200 if health.healthy() else 503, body=body, content_type="application/json")

    async def metrics_handler(_: web.Request) -> web.Response:
        assert metrics is not None
        return web.Response(body=metrics.render(), headers={"Content-Type": CONTENT_TYPE_LATEST})

    app = web.Application()
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/livez", livez)
    if metrics is not None:
        app.router.add_get("/metrics", metrics_handler)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    return runner, runner.addresses[0][1]
