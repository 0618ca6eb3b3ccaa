"""The controller manager: every controller of one process over one set of shared informers,
run while this process holds the controller-manager lease.

- ``ControllerManager`` builds the chosen controllers (``registry``) on one
  ``ControllerContext`` (one client, one informer factory: a pod informer serves every
  controller that watches pods), starts the informers, and runs each controller with its
  worker count.  ``start``/``stop`` for in-process use (tests, ``pybernetes up`` later).
- ``pybernetes controller-manager`` runs it with ``client.component.run_leader_elected`` on
  the Lease ``kube-system/kube-controller-manager`` (``LEASE_NAME``).
"""

from __future__ import annotations

import gc
import logging
from typing import Any

from pybernetes.client.informer import SharedInformerFactory
from pybernetes.client.rest import RestClient
from pybernetes.client.tasks import TaskSet
from pybernetes.controllers import registry
from pybernetes.controllers.base import Clock, Controller, ControllerContext, RealClock

log = logging.getLogger(__name__)

LEASE_NAME = "kube-controller-manager"
LEASE_NAMESPACE = "kube-system"


class ControllerManager:
    def __init__(self, client: RestClient, names: list[str] | None = None,
                 workers: dict[str, int] | None = None, clock: Clock | None = None,
                 options: dict[str, Any] | None = None) -> None:
        self.client = client
        self.names = registry.select(names)
        self.workers = dict(workers or {})
        unknown = sorted(set(self.workers) - set(registry.CONTROLLERS))
        if unknown:
            raise ValueError(f"workers given for unknown controllers: {', '.join(unknown)}")
        self.ctx = ControllerContext(client=client, informers=SharedInformerFactory(client),
                                     clock=clock or RealClock(), options=dict(options or {}))
        self.controllers: dict[str, Controller] = {}
        self._tasks = TaskSet("controller-manager")
        self._started = False
        self.freeze_after_sync = True

    async def start(self, *, wait_for_sync: float | None = 60.0) -> None:
        """Build the controllers, start the shared informers and every controller's workers;
        wait (up to ``wait_for_sync`` seconds) until their caches are filled."""
        if self._started:
            return
        self._started = True
        for name in self.names:
            cls = registry.load(name)
            self.controllers[name] = cls(self.ctx)
        self.ctx.informers.start()
        for name, ctl in self.controllers.items():
            count = self.workers.get(name, ctl.default_workers)
            self._tasks.start(name, ctl.run(count))
        if wait_for_sync is not None:
            if not await self.ctx.informers.wait_for_cache_sync(wait_for_sync):
                log.warning("controller manager: caches not synced within %ss", wait_for_sync)
            elif self.freeze_after_sync:
                # The freshly filled caches are long-lived: move them out of the collector's
                # sight, or every full collection walks them all (2x slower first bursts).
                gc.collect()
                gc.freeze()

    async def stop(self) -> None:
        await self._tasks.stop(grace=5.0)
        await self.ctx.informers.shutdown()
        await self.ctx.close()
        self._started = False
