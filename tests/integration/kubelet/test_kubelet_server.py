"""The kubelet's HTTP server (kubelet/server.py) over real HTTP, against log files in a temp
directory and a fake resolver: /healthz, /pods, /containerLogs with its options, errors as
text with the resolver's codes, follow streaming lines written later and ending when the
container stops, and a follower that disconnects leaving no open file behind."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import pytest

from pybernetes.kubelet.logs import KubeletLookupError, LogTarget
from pybernetes.kubelet.server import KubeletServer

T0 = 1_700_000_000


def rec(second: int, content: str, stream: str = "stdout", tag: str = "F") -> bytes:
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(T0 + second))
    return f"{stamp}.500000000Z {stream} {tag} {content}\n".encode()


def append(path: Path, data: bytes) -> None:
    with open(path, "ab") as f:
        f.write(data)


@dataclass
class FakeNode:
    """Log files by (namespace, pod, container); ``running`` per container."""

    root: Path
    running: dict[str, bool] = field(default_factory=dict)
    asked: list[tuple[str, str, str, bool]] = field(default_factory=list)

    def path(self, container: str, previous: bool = False) -> Path:
        return self.root / f"{container}{'.prev' if previous else ''}.log"

    async def resolve(self, namespace: str, pod: str, container: str, previous: bool) -> LogTarget:
        self.asked.append((namespace, pod, container, previous))
        if pod != "web":
            raise LookupError(f'pod "{pod}" does not exist')
        if container == "waiting":
            raise KubeletLookupError(400, f'container "{container}" in pod "{pod}" is waiting to start: '
                                          "ContainerCreating")
        if container not in self.running:
            raise KubeletLookupError(404, f'container "{container}" not found in pod "{pod}"')
        return LogTarget(self.path(container, previous), [], lambda: self.running[container])


@pytest.fixture
async def node(tmp_path: Path) -> AsyncIterator[tuple[FakeNode, aiohttp.ClientSession]]:
    fake = FakeNode(tmp_path)
    fake.running = {"app": True, "done": False}
    fake.path("app").write_bytes(rec(0, "one") + rec(1, "two", "stderr") + rec(2, "thr", tag="P") + rec(2, "ee"))
    fake.path("app", previous=True).write_bytes(rec(0, "before the restart"))
    fake.path("done").write_bytes(rec(0, "bye"))
    server = KubeletServer(fake.resolve, host="127.0.0.1", port=0, poll_interval=0.02,
                           pods=lambda: [{"metadata": {"name": "web"}}])
    port = await server.start()
    try:
        async with aiohttp.ClientSession(f"http://127.0.0.1:{port}") as session:
            yield fake, session
    finally:
        await server.stop()


async def get(session: aiohttp.ClientSession, path: str, **params: str) -> tuple[int, str]:
    async with session.get(path, params=params) as resp:
        return resp.status, await resp.text()


async def test_healthz_and_pods(node):
    _, session = node
    assert await get(session, "/healthz") == (200, "ok")
    async with session.get("/pods") as resp:
        assert resp.status == 200
        assert (await resp.json())["items"] == [{"metadata": {"name": "web"}}]


async def test_logs_with_options(node):
    fake, session = node
    logs = "/containerLogs/default/web/app"
    async with session.get(logs) as resp:
        assert resp.status == 200
        assert resp.headers["Content-Type"].startswith("text/plain")
        assert await resp.text() == "one\ntwo\nthree\n"
    assert await get(session, logs, tailLines="2") == (200, "two\nthree\n")
    assert await get(session, logs, tail="1") == (200, "three\n")
    assert await get(session, logs, limitBytes="6") == (200, "one\ntw")
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(T0 + 1))
    assert await get(session, logs, timestamps="true", sinceTime=stamp + "Z") == (
        200, f"{stamp}.5Z two\n" + time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(T0 + 2)) + ".5Z three\n")
    assert await get(session, logs, previous="true") == (200, "before the restart\n")
    assert fake.asked[-1] == ("default", "web", "app", True)
    # follow on a container that has stopped: the file, then the end.
    assert await get(session, "/containerLogs/default/web/done", follow="true") == (200, "bye\n")


async def test_errors_are_text_with_the_resolvers_code(node):
    _, session = node
    assert await get(session, "/containerLogs/default/nope/app") == (404, 'pod "nope" does not exist')
    assert await get(session, "/containerLogs/default/web/other") == (
        404, 'container "other" not found in pod "web"')
    assert await get(session, "/containerLogs/default/web/waiting") == (
        400, 'container "waiting" in pod "web" is waiting to start: ContainerCreating')
    status, text = await get(session, "/containerLogs/default/web/app", tailLines="many")
    assert status == 400 and "many" in text
    status, text = await get(session, "/containerLogs/default/web/app", limitBytes="0")
    assert status == 422 and "limitBytes" in text


async def read_until(resp: aiohttp.ClientResponse, wanted: bytes, deadline: float = 5.0) -> bytes:
    got = b""
    async with asyncio.timeout(deadline):
        while not got.endswith(wanted):
            chunk = await resp.content.readany()
            assert chunk, f"stream ended after {got!r}"
            got += chunk
    return got


async def test_follow_streams_new_lines_until_the_container_stops(node):
    fake, session = node
    async with session.get("/containerLogs/default/web/app", params={"follow": "true", "tailLines": "1"}) as resp:
        assert resp.status == 200
        assert await read_until(resp, b"three\n") == b"three\n"
        append(fake.path("app"), rec(3, "four"))
        assert await read_until(resp, b"four\n") == b"four\n"
        append(fake.path("app"), rec(4, "five"))
        fake.running["app"] = False
        async with asyncio.timeout(5):
            assert await resp.content.read() == b"five\n"  # and the stream ends


def open_fds(path: Path) -> int:
    count = 0
    for fd in os.listdir("/proc/self/fd"):
        try:
            if os.readlink(f"/proc/self/fd/{fd}") == str(path):
                count += 1
        except OSError:
            continue
    return count


async def no_open_fds(path: Path, deadline: float = 10.0) -> None:
    """Polls until no descriptor of this process refers to ``path``."""
    end = time.monotonic() + deadline
    while True:
        left = open_fds(path)
        if not left:
            return
        if time.monotonic() > end:
            pytest.fail(f"{path} is still open {deadline}s after the client left")
        await asyncio.sleep(0.02)


async def test_a_follower_going_away_ends_the_stream(node):
    fake, session = node
    resp = await session.get("/containerLogs/default/web/app", params={"follow": "true"})
    try:
        await read_until(resp, b"three\n")
        assert open_fds(fake.path("app")) == 1
    finally:
        resp.close()  # drops the connection
    await no_open_fds(fake.path("app"))
