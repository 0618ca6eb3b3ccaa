"""Running a component (controller manager, scheduler) while it holds its lease.

``run_leader_elected(client, component, election)`` waits for the API server (/readyz),
then campaigns for the Lease ``election.namespace/election.name`` (15 s lease, 10 s renew
deadline, 2 s retry by default).  While leading it runs ``component.start()`` and keeps it
running; it returns 1 when the lease is lost or the component fails to start (upstream's
components exit so their supervisor restarts them), 0 when stopped by SIGTERM/SIGINT — the
lease is then released at once, so a standby takes over without waiting for it to expire.
``component`` is anything with ``async start()`` and ``async stop()``.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import socket
import uuid
from dataclasses import dataclass
from typing import Protocol

from pybernetes.client.errors import ApiError, ConnectionFailed
from pybernetes.client.leaderelection import LeaderElector
from pybernetes.client.rest import RestClient

log = logging.getLogger(__name__)


class Component(Protocol):
    async def start(self) -> None: ...
    async def stop(self) -> None: ...


@dataclass
class LeaderElection:
    enabled: bool = True
    lease_duration: float = 15.0
    renew_deadline: float = 10.0
    retry_period: float = 2.0
    name: str = "kube-controller-manager"
    namespace: str = "kube-system"
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


async def run_leader_elected(client: RestClient, component: Component,
                             election: LeaderElection) -> int:
    """Run ``component`` while leading (see the module doc); the exit status."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await wait_for_api(client)
        if not election.enabled:
            await component.start()
            try:
                await stop.wait()
            finally:
                await component.stop()
            return 0

        failed = asyncio.Event()

        async def lead() -> None:
            try:
                await component.start()
                await asyncio.Event().wait()
            except Exception:
                log.exception("the component failed to start")
                failed.set()
                raise
            finally:
                await component.stop()

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
