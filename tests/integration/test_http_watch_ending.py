"""How the server ends open watch streams without a task or timer per stream: the
deadline heap (timeoutSeconds), the liveness sweep (clients that went away while idle),
and the objects a finished stream leaves behind (none)."""

from __future__ import annotations

import asyncio
import time

from pybernetes.apiserver import watch as watch_module
from pybernetes.apiserver.app import WATCHES

CM_URL = "/api/v1/namespaces/default/configmaps"


async def wait_until(condition, seconds: float = 10) -> None:
    """Poll ``condition`` until it holds (a deadline, not a fixed sleep)."""
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.01)


async def test_deadlines_end_streams_in_their_order(http, api_server):
    watches = api_server.app[WATCHES]
    started = time.monotonic()
    long = await http.get(CM_URL, params={"watch": "true", "timeoutSeconds": "30"})
    short = await http.get(CM_URL, params={"watch": "true", "timeoutSeconds": "1"})
    await wait_until(lambda: watches.active == 2)
    assert await asyncio.wait_for(short.content.read(), 10) == b""
    assert time.monotonic() - started < 5
    await wait_until(lambda: watches.active == 1)
    long.close()
    short.close()


async def test_idle_streams_of_clients_that_went_away_are_ended(http, api_server, monkeypatch):
    monkeypatch.setattr(watch_module, "LIVENESS_INTERVAL", 0.05)
    watches = api_server.app[WATCHES]
    _, writer = await asyncio.open_connection("127.0.0.1", api_server.port)
    writer.write(f"GET {CM_URL}?watch=true HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    await writer.drain()
    await wait_until(lambda: watches.active == 1)
    writer.close()
    await wait_until(lambda: watches.active == 0)
    stores = api_server.stores
    cacher = stores.for_resource(stores.registry.get("", "v1", "configmaps")).cacher
    assert cacher._watchers == {}  # the cache forgot it too
