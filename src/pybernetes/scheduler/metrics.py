"""The scheduler's Prometheus metrics, named as upstream's (prometheus_client, one registry
per scheduler so several can live in one process):

- ``scheduler_schedule_attempts_total{result, profile}`` — result scheduled, unschedulable
  or error;
- ``scheduler_scheduling_attempt_duration_seconds{result, profile}`` — one scheduling cycle;
- ``scheduler_pod_scheduling_sli_duration_seconds{attempts}`` — from the pod's first entry
  in the queue to its binding (end to end);
- ``scheduler_pending_pods{queue}`` — active, backoff, unschedulable and gated pods.

``serve_metrics`` runs a small HTTP server with /metrics, /healthz and /readyz on
127.0.0.1 (upstream serves them on :10259).
"""

from __future__ import annotations

from collections.abc import Callable

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
           8.192, 16.384, 32.768, 65.536)


class SchedulerMetrics:
    def __init__(self, pending: Callable[[], dict[str, int]] | None = None) -> None:
        self.registry = CollectorRegistry()
        self.attempts = Counter("scheduler_schedule_attempts", "Number of attempts to schedule pods, by the "
                                "result.", ["result", "profile"], registry=self.registry)
        self.attempt_duration = Histogram("scheduler_scheduling_attempt_duration_seconds",
                                          "Scheduling attempt latency in seconds.", ["result", "profile"],
                                          buckets=BUCKETS, registry=self.registry)
        self.e2e = Histogram("scheduler_pod_scheduling_sli_duration_seconds",
                             "E2e latency for a pod being scheduled, from the time the pod enters the "
                             "scheduling queue until it is bound.", ["attempts"], buckets=BUCKETS,
                             registry=self.registry)
        self.pending = Gauge("scheduler_pending_pods", "Number of pending pods, by the queue type.", ["queue"],
                             registry=self.registry)
        self._pending_source = pending
        self._children: dict[tuple[str, ...], tuple[object, object]] = {}  # labelled children, looked up once

    def set_pending_source(self, pending: Callable[[], dict[str, int]] | None) -> None:
        """Where the pending-pod gauges come from (the leading scheduler's queue; None: zeros)."""
        self._pending_source = pending
        if pending is None:
            for queue in ("active", "backoff", "unschedulable", "gated"):
                self.pending.labels(queue).set(0)

    def observe_attempt(self, result: str, profile: str, seconds: float) -> None:
        children = self._children.get((result, profile))
        if children is None:
            children = self._children[(result, profile)] = (self.attempts.labels(result, profile),
                                                             self.attempt_duration.labels(result, profile))
        children[0].inc()  # type: ignore[attr-defined]
        children[1].observe(seconds)  # type: ignore[attr-defined]

    def observe_bound(self, attempts: int, seconds: float) -> None:
        key = ("e2e", str(min(attempts, 16)))
        children = self._children.get(key)
        if children is None:
            children = self._children[key] = (self.e2e.labels(key[1]), None)
        children[0].observe(seconds)  # type: ignore[attr-defined]

    def render(self) -> bytes:
        if self._pending_source is not None:
            for queue, count in self._pending_source().items():
                self.pending.labels(queue).set(count)
        return generate_latest(self.registry)


async def serve_metrics(metrics: SchedulerMetrics, host: str, port: int,
                        ready: Callable[[], bool] = lambda: True) -> web.AppRunner:
    async def metrics_handler(_: web.Request) -> web.Response:
        return web.Response(body=metrics.render(), headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def health(_: web.Request) -> web.Response:
        return web.Response(text="ok")

    async def readiness(_: web.Request) -> web.Response:
        return web.Response(text="ok") if ready() else web.Response(status=503, text="not ready")

    app = web.Application()
    app.router.add_get("/metrics", metrics_handler)
    app.router.add_get("/healthz", health)
    app.router.add_get("/livez", health)
    app.router.add_get("/readyz", readiness)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    return runner
