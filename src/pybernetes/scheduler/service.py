"""``pybernetes scheduler``: the scheduler while it leads, and its metrics endpoint all along.

``serve()`` (before leader election) serves /metrics, /healthz and /readyz on
127.0.0.1:``metrics_port``, so a standby instance answers too, as upstream's does (a port
already taken is logged and skipped: scheduling matters more than its metrics).
``start()`` (on becoming leader) builds a ``Scheduler`` from the configuration, sharing the
service's metrics (counters live as long as the process), and waits for its informers;
/readyz answers 200 from then on.  ``stop()`` stops the scheduler; ``close()`` the endpoint.
``client.component.run_leader_elected`` calls start and stop.
"""

from __future__ import annotations

import gc
import logging
from typing import Any

from aiohttp import web

from pybernetes.client.rest import RestClient
from pybernetes.scheduler.metrics import SchedulerMetrics, serve_metrics
from pybernetes.scheduler.scheduler import Scheduler

log = logging.getLogger(__name__)


class SchedulerService:
    def __init__(self, client: RestClient, config: Any, *, metrics_port: int = 10259,
                 metrics_host: str = "127.0.0.1") -> None:
        self.client = client
        self.config = config
        self.metrics_port = metrics_port
        self.metrics_host = metrics_host
        self.metrics = SchedulerMetrics()
        self.scheduler: Scheduler | None = None
        self._runner: web.AppRunner | None = None

    async def serve(self) -> None:
        if not self.metrics_port or self._runner is not None:
            return
        try:
            self._runner = await serve_metrics(self.metrics, self.metrics_host, self.metrics_port,
                                               ready=lambda: self.scheduler is not None)
        except OSError as exc:  # the port is taken: schedule anyway, say so
            log.warning("scheduler metrics not served on %s:%d: %s", self.metrics_host, self.metrics_port, exc)
        else:
            log.info("scheduler metrics on http://%s:%d/metrics", self.metrics_host, self.metrics_port)

    async def start(self) -> None:
        await self.serve()
        scheduler = Scheduler(self.client, self.config, metrics=self.metrics)
        await scheduler.start()
        self.scheduler = scheduler
        # What the first sync loaded (every node and pod) lives long: keep it out of the
        # collector's full passes, which would otherwise walk it all again and again.
        gc.collect()
        gc.freeze()

    async def stop(self) -> None:
        if self.scheduler is not None:
            scheduler, self.scheduler = self.scheduler, None
            await scheduler.stop()
            self.metrics.set_pending_source(None)

    async def close(self) -> None:
        await self.stop()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
