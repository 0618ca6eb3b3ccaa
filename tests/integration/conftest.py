"""Fixtures: a real API server in process on an ephemeral port with a temporary SQLite file.

- ``api_server`` (async): the server runs on the test's own event loop; use ``http`` (an
  aiohttp ClientSession whose base URL is the server) or ``api_server.url``.
- ``threaded_api_server`` (sync): the server runs on its own event loop in a thread, for
  blocking clients such as the official ``kubernetes`` Python client; ``k8s_api_client``
  is a ``kubernetes.client.ApiClient`` pointed at it.

Both stop the server (ending watches, closing the store) and remove the data directory.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from pybernetes.apiserver.app import STORES, ServerConfig, build_app
from pybernetes.apiserver.pipeline import Pipeline


@dataclass
class ApiServer:
    url: str
    port: int
    data_dir: Path
    app: web.Application
    loop: asyncio.AbstractEventLoop  # the loop the server runs on

    def run(self, coro, timeout: float = 30):
        """Run a coroutine on the server's loop from another thread (threaded server)."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    @property
    def stores(self):
        return self.app[STORES]


async def start_server(data_dir: Path, *, pipeline: Pipeline | None = None,
                       **config: object) -> tuple[ApiServer, web.AppRunner]:
    """Build and serve the app on 127.0.0.1:<ephemeral>; ``pipeline`` replaces the
    pass-through authn/authz/admission stages."""
    app = build_app(ServerConfig(data_dir=data_dir, port=0, shutdown_timeout=2, **config),  # type: ignore[arg-type]
                    pipeline=pipeline)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=2, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    server = ApiServer(f"http://127.0.0.1:{port}", port, data_dir, app, asyncio.get_running_loop())
    return server, runner


@pytest.fixture
async def api_server(tmp_path: Path) -> AsyncIterator[ApiServer]:
    server, runner = await start_server(tmp_path / "data")
    try:
        yield server
    finally:
        await runner.cleanup()


@pytest.fixture
def server_starter():
    """``start_server`` itself, for tests that control the server's lifetime."""
    return start_server


@pytest.fixture
async def http(api_server: ApiServer) -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(base_url=api_server.url) as session:
        yield session


class ThreadedServer:
    """The API server on its own event loop in a daemon thread."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="api-server", daemon=True)
        self._runner: web.AppRunner | None = None
        self.server: ApiServer | None = None

    def start(self) -> ApiServer:
        self._thread.start()
        future = asyncio.run_coroutine_threadsafe(start_server(self.data_dir), self.loop)
        self.server, self._runner = future.result(timeout=30)
        return self.server

    def stop(self) -> None:
        if self._runner is not None:
            with contextlib.suppress(Exception):
                asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self.loop).result(timeout=30)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=10)
        self.loop.close()


@pytest.fixture
def threaded_api_server(tmp_path: Path) -> Iterator[ApiServer]:
    threaded = ThreadedServer(tmp_path / "data")
    try:
        yield threaded.start()
    finally:
        threaded.stop()


@pytest.fixture
def k8s_api_client(threaded_api_server: ApiServer):
    kubernetes = pytest.importorskip("kubernetes")
    configuration = kubernetes.client.Configuration()
    configuration.host = threaded_api_server.url
    with kubernetes.client.ApiClient(configuration) as client:
        yield client
