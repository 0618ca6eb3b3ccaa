"""Watch fan-out: 1,000 watchers of one resource, one write, delivery latency to each.

Reference, measured in the same run: a bare aiohttp server that holds 1,000 chunked
responses open and writes one line to each when poked — the floor of fanning one event out
over HTTP from one Python process.

Target (issue 2): p99 delivery <= 100 ms.
Usage: .venv/bin/python bench/bench_watch.py [--watchers 1000] [--writes 10]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import subprocess
import sys
import time
import urllib.request

import aiohttp
import orjson

sys.path.insert(0, os.path.dirname(__file__))
from common import free_port, header, percentile, running_server  # noqa: E402

FANOUT_SERVER = """
import asyncio, uvloop
from aiohttp import web
streams = []
async def watch(request):
    resp = web.StreamResponse(headers={"Content-Type": "application/json"})
    await resp.prepare(request)
    queue = asyncio.Queue()
    streams.append(queue)
    while True:
        line = await queue.get()
        await resp.write(line)
async def write(request):
    line = (await request.read()) + b"\\n"
    for queue in streams:
        queue.put_nowait(line)
    return web.Response(text="ok")
app = web.Application()
app.router.add_get("/watch", watch)
app.router.add_post("/write", write)
uvloop.install()
web.run_app(app, host="127.0.0.1", port=%d, print=None, access_log=None)
"""


class _WatchStream(asyncio.Protocol):
    """One watcher as a bare protocol: the client's own cost per event must stay far below
    what is measured, so no HTTP client library parses the stream; the arrival time of the
    first chunk naming each write is recorded."""

    def __init__(self, request: bytes, sent: dict[bytes, float], latencies: list[float],
                 on_event, connected) -> None:
        self.request, self.sent, self.latencies = request, sent, latencies
        self.on_event, self.connected = on_event, connected
        self.headers_seen = False

    def connection_made(self, transport) -> None:
        transport.write(self.request)

    def data_received(self, data: bytes) -> None:
        arrived = time.perf_counter()
        if not self.headers_seen and b"\r\n\r\n" in data:
            self.headers_seen = True
            self.connected()
        for match in _NAME.finditer(data):
            started = self.sent.get(match.group(1))
            if started is not None:
                self.latencies.append((arrived - started) * 1000)
                self.on_event()


_NAME = re.compile(rb'"name":"(fanout-[0-9-]+)"')


async def measure(base_url: str, path: str, write, watchers: int, writes: int) -> list[float]:
    sent: dict[bytes, float] = {}
    latencies: list[float] = []
    connected = 0
    all_connected = asyncio.Event()
    delivered = asyncio.Event()  # set when the current write reached every watcher
    expected = 0

    def on_connected() -> None:
        nonlocal connected
        connected += 1
        if connected == watchers:
            all_connected.set()

    def on_event() -> None:
        if len(latencies) >= expected:
            delivered.set()

    host, port = base_url.removeprefix("http://").split(":")
    request = (f"GET {path} HTTP/1.1\r\nHost: {host}\r\nAccept: application/json\r\n\r\n").encode()
    loop = asyncio.get_running_loop()
    transports = []
    for _ in range(watchers):
        transport, _protocol = await loop.create_connection(
            lambda: _WatchStream(request, sent, latencies, on_event, on_connected), host, int(port))
        transports.append(transport)
    await asyncio.wait_for(all_connected.wait(), 60)
    await asyncio.sleep(0.5)  # let every stream settle before the first write
    async with aiohttp.ClientSession() as session:
        for index in range(writes):
            name = f"fanout-{index}-{time.monotonic_ns()}"
            expected = watchers * (index + 1)
            delivered.clear()
            sent[name.encode()] = time.perf_counter()
            await write(session, name)
            try:
                await asyncio.wait_for(delivered.wait(), 10)
            except TimeoutError:
                print(f"  write {index}: only {len(latencies)}/{expected} deliveries in 10 s")
    for transport in transports:
        transport.close()
    return latencies


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--watchers", type=int, default=1000)
    parser.add_argument("--writes", type=int, default=10)
    args = parser.parse_args()

    header(f"reference: bare aiohttp fan-out to {args.watchers} streams")
    port = free_port()
    ref = subprocess.Popen([sys.executable, "-c", FANOUT_SERVER % port])
    try:
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            try:
                urllib.request.urlopen(urllib.request.Request(
                    f"http://127.0.0.1:{port}/write", data=b"{}", method="POST"), timeout=1)
                break
            except OSError:
                time.sleep(0.02)

        async def ref_write(session: aiohttp.ClientSession, name: str) -> None:
            body = orjson.dumps({"type": "ADDED", "object": {"metadata": {"name": name}}})
            async with session.post(f"http://127.0.0.1:{port}/write", data=body) as resp:
                await resp.read()

        ref_lat = asyncio.run(measure(f"http://127.0.0.1:{port}", "/watch", ref_write,
                                      args.watchers, args.writes))
    finally:
        ref.kill()  # it holds 1,000 open streams: a graceful stop would wait for them
        ref.wait(10)
    ref_p99 = percentile(ref_lat, 99)
    print(f"bare aiohttp: {len(ref_lat)} deliveries, p50 {percentile(ref_lat, 50):.1f} ms, "
          f"p99 {ref_p99:.1f} ms")

    header(f"pybernetes: {args.watchers} watchers of configmaps, {args.writes} writes")
    with running_server() as server:
        with urllib.request.urlopen(server.url + "/api/v1/namespaces/default/configmaps") as resp:
            rv = orjson.loads(resp.read())["metadata"]["resourceVersion"]
        watch_path = f"/api/v1/namespaces/default/configmaps?watch=true&resourceVersion={rv}"

        async def api_write(session: aiohttp.ClientSession, name: str) -> None:
            body = orjson.dumps({"apiVersion": "v1", "kind": "ConfigMap",
                                 "metadata": {"name": name}, "data": {"k": "v"}})
            async with session.post(server.url + "/api/v1/namespaces/default/configmaps",
                                    data=body, headers={"Content-Type": "application/json"}) as resp:
                await resp.read()

        lat = asyncio.run(measure(server.url, watch_path, api_write, args.watchers, args.writes))
    p99 = percentile(lat, 99)
    expected = args.watchers * args.writes
    print(f"pybernetes: {len(lat)}/{expected} deliveries, p50 {percentile(lat, 50):.1f} ms, "
          f"p99 {p99:.1f} ms (target <= 100 ms); ratio p99 to bare aiohttp {p99 / ref_p99:.2f}")
    # Each write is delivered everywhere before the next, so the first ``watchers`` figures
    # are the first write's: the one that meets the heap just grown by 1,000 new streams
    # (CPython's first full collection after such growth lands there).
    first, rest = lat[: args.watchers], lat[args.watchers:]
    ref_first, ref_rest = ref_lat[: args.watchers], ref_lat[args.watchers:]
    print(f"  first write: p99 {percentile(first, 99):.1f} ms (bare aiohttp "
          f"{percentile(ref_first, 99):.1f} ms); later writes: p99 {percentile(rest, 99):.1f} ms "
          f"(bare aiohttp {percentile(ref_rest, 99):.1f} ms)")


if __name__ == "__main__":
    main()
