"""The controller manager: every controller of one process over one set of shared informers,
run while this process holds the controller-manager lease.

- ``ControllerManager`` builds the chosen controllers (``registry``) on one
  ``ControllerContext`` (one client, one informer factory: a pod informer serves every
  controller that watches pods), starts the informers, and runs each controller with its
  worker count.  ``start``/``stop`` for in-process use (tests, ``pybernetes up`` later).
- ``run_leader_elected`` is ``pybernetes controller-manager``: it waits for the API server,
  takes the ``kube-system/kube-controller-manager`` Lease (15 s lease, 10 s renew deadline,
  2 s retry, configurable), runs the manager while it leads, and returns 1 when the lease is
  lost (upstream exits so its supervisor restarts it), 0 when stopped by a signal (the lease
  is released at once so a standby takes over without waiting for it to expire).
"""

from __future__ import annotations

import asyncio
import gc
import logging
import signal
import socket
import uuid
from dataclasses import dataclass
from typing import Any

from pybernetes.client.errors import ApiError, ConnectionFailed
from pybernetes.client.informer import SharedInformerFactory
from pybernetes.client.leaderelection import LeaderElector
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


@dataclass
class LeaderElection:
    enabled: bool = True
    lease_duration: float = 15.0
    renew_deadline: float = 10.0
    retry_period: float = 2.0
    name: str = LEASE_NAME
    namespace: str = LEASE_NAMESPACE
    identity: str = ""


async def wait_for_api(client: RestClient, within: float = 60.0) -> None:
    """Until the API server answers /readyz (or ``within`` seconds pass: TimeoutError)."""
    async with asyncio.timeout(within):
        while True:
            try:
                resp = await client.open("GET", "/readyz", accept="text/plain")
                resp.release()
                return
            except (ApiError, ConnectionFailed) as exc:
                log.info("waiting for the API server: %s", exc)
                await asyncio.sleep(0.5)


async def run_leader_elected(client: RestClient, manager: ControllerManager,
                             election: LeaderElection) -> int:
    """Run ``manager`` while leading (see the module doc); the exit status."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await wait_for_api(client)
        if not election.enabled:
            await manager.start()
            try:
                await stop.wait()
            finally:
                await manager.stop()
            return 0

        failed = asyncio.Event()

        async def lead() -> None:
            try:
                await manager.start()
                await asyncio.Event().wait()
            except Exception:
                log.exception("the controllers failed to start")
                failed.set()
                raise
            finally:
                await manager.stop()

        identity = election.identity or f"{socket.gethostname()}_{uuid.uuid4()}"
        elector = LeaderElector(
            client, name=election.name, namespace=election.namespace, identity=identity,
            on_started_leading=lead, on_new_leader=lambda who: log.info("leader is now %s", who),
            lease_duration=election.lease_duration, renew_deadline=election.renew_deadline,
            retry_period=election.retry_period, release_on_cancel=True)
        runner = asyncio.create_task(elector.run(), name="controller-manager/leader-election")
        stopper = asyncio.create_task(stop.wait(), name="controller-manager/signals")
        failure = asyncio.create_task(failed.wait(), name="controller-manager/failure")
        done, _ = await asyncio.wait({runner, stopper, failure}, return_when=asyncio.FIRST_COMPLETED)
        if stopper in done or failure in done:
            runner.cancel()
            await asyncio.gather(runner, return_exceptions=True)
            stopper.cancel()
            failure.cancel()
            return 1 if failure in done else 0
        stopper.cancel()
        failure.cancel()
        exc = runner.exception()
        if exc is not None:
            log.error("leader election failed: %r", exc)
        else:
            log.error("leader election lost: %s no longer holds the lease", identity)
        return 1
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
