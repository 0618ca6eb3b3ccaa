"""``pybernetes scheduler`` while it leads: the scheduler and its metrics endpoint.

``SchedulerService.start()`` builds a ``Scheduler`` from the configuration (its informers
start and sync), then serves /metrics, /healthz and /readyz on 127.0.0.1:``metrics_port`` (a port already
taken is logged and skipped: scheduling matters more than its metrics);
``stop()`` stops both.  ``client.component.run_leader_elected`` runs it.
"""

from __future__ import annotations

import gc
import logging
from typing import Any

from aiohttp import web

from pybernetes.client.rest import RestClient
from pybernetes.scheduler.metrics import serve_metrics
from pybernetes.scheduler.scheduler import Scheduler

log = logging.getLogger(__name__)


class SchedulerService:
    def __init__(self, client: RestClient, config: Any, *, metrics_port: int = 10259,
                 metrics_host: str = "127.0.0.1") -> None:
        self.client = client
        self.config = config
        self.metrics_port = metrics_port
        self.metrics_host = metrics_host
        self.scheduler: Scheduler | None = None
        self._runner: web.AppRunner | None = None

    async def start(self) -> None:
        self.scheduler = Scheduler(self.client, self.config)
        await self.scheduler.start()
        # What the first sync loaded (every node and pod) lives long: keep it out of the
        # collector's full passes, which would otherwise walk it all again and again.
        gc.collect()
        gc.freeze()
        if self.metrics_port:
            try:
                self._runner = await serve_metrics(self.scheduler.metrics, self.metrics_host, self.metrics_port)
            except OSError as exc:  # the port is taken: schedule anyway, say so
                log.warning("scheduler metrics not served on %s:%d: %s", self.metrics_host, self.metrics_port, exc)
            else:
                log.info("scheduler metrics on http://%s:%d/metrics", self.metrics_host, self.metrics_port)

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        if self.scheduler is not None:
            await self.scheduler.stop()
            self.scheduler = None
