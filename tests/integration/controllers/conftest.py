"""Fixtures for controller tests: a real API server in process, the controllers a test names,
and a simulated node (``NodeSim``) standing in for kubelet and scheduler.

``cluster.start("replicaset", clock=FakeClock(...), options={...})`` runs a
``ControllerManager`` with exactly those controllers on the test's event loop; everything
is stopped and removed at teardown, even when the test fails.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from node_sim import NodeSim

from pybernetes.client.kubeconfig import Config
from pybernetes.client.rest import RestClient
from pybernetes.controllers.base import Clock
from pybernetes.controllers.manager import ControllerManager


class ControllerCluster:
    def __init__(self, server: Any, client: RestClient) -> None:
        self.server = server
        self.url = server.url
        self.client = client
        self.node = NodeSim(client)
        self.managers: list[ControllerManager] = []

    @property
    def manager(self) -> ControllerManager:
        return self.managers[-1]

    async def start(self, *names: str, clock: Clock | None = None, options: dict[str, Any] | None = None,
                    workers: dict[str, int] | None = None) -> ControllerManager:
        """Run a controller manager with exactly ``names`` (its own client)."""
        client = RestClient(Config(servers=[self.url], qps=5000, burst=10000))
        cm = ControllerManager(client, list(names), workers=workers, clock=clock, options=options)
        cm.own_client = client  # type: ignore[attr-defined]
        cm.freeze_after_sync = False  # tests share one process: keep everything collectable
        self.managers.append(cm)
        await cm.start(wait_for_sync=30)
        return cm

    async def stop(self, cm: ControllerManager | None = None) -> None:
        """Stop one manager (default: the last started) and close its client."""
        cm = cm or self.managers[-1]
        if cm in self.managers:
            self.managers.remove(cm)
        await cm.stop()
        await cm.own_client.close()  # type: ignore[attr-defined]

    async def wait_for(self, predicate: Callable[[], Any], timeout: float = 30.0, message: str = "",  # noqa: ASYNC109
                       interval: float = 0.05) -> Any:
        """Poll ``predicate`` (sync or async) until it returns something truthy; that value.
        Fails the test with ``message`` (and the last value) when ``timeout`` passes."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        last: Any = None
        while True:
            last = predicate()
            if inspect.isawaitable(last):
                last = await last
            if last:
                return last
            if loop.time() > deadline:
                pytest.fail(f"timed out after {timeout}s waiting for {message or predicate}: last {last!r}")
            await asyncio.sleep(interval)

    async def close(self) -> None:
        await self.node.stop()
        for cm in list(reversed(self.managers)):
            await self.stop(cm)
        await self.client.close()


@pytest.fixture
async def cluster(tmp_path: Path, server_starter: Any) -> AsyncIterator[ControllerCluster]:
    server, runner = await server_starter(tmp_path / "data")
    client = RestClient(Config(servers=[server.url], qps=5000, burst=10000))
    c = ControllerCluster(server, client)
    try:
        yield c
    finally:
        try:
            await c.close()
        finally:
            await runner.cleanup()
