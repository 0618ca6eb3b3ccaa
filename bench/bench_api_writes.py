"""API write path: ConfigMap creates/s over HTTP and mutating-call latency at 500 writes/s.

Reference, measured in the same run: single-row creates/s straight through the SQLite
backend (no HTTP, no API machinery) — the ceiling the API's write path is compared with; and
the same open-loop 500/s generator against a bare aiohttp handler (the floor of latency).

Targets (issue 2): >= 2,000 creates/s; p99 <= 50 ms at a steady 500 writes/s.
Usage: .venv/bin/python bench/bench_api_writes.py [--seconds 5] [--runs 3]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import shutil
import sys
import tempfile
import time

import aiohttp
import orjson

sys.path.insert(0, os.path.dirname(__file__))
from common import (  # noqa: E402
    bare_aiohttp_server,
    have_wrk,
    header,
    median,
    percentile,
    run_wrk,
    running_server,
)

CREATE_SCRIPT = """
local counter = 0
local prefix = "%s"
request = function()
  counter = counter + 1
  local body = '{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"cm-' .. prefix ..
    '-' .. counter .. '","labels":{"app":"bench"}},"data":{"key":"value"}}'
  return wrk.format("POST", "/api/v1/namespaces/default/configmaps",
    {["Content-Type"] = "application/json"}, body)
end
"""


async def raw_sqlite_creates(count: int) -> float:
    from pybernetes.storage.sqlite import SQLiteStorage

    directory = tempfile.mkdtemp(prefix="pyb-bench-sqlite-")
    try:
        store = await SQLiteStorage.open(os.path.join(directory, "state.db"))
        value = orjson.dumps({"apiVersion": "v1", "kind": "ConfigMap",
                              "metadata": {"name": "x", "namespace": "default"},
                              "data": {"key": "value"}})
        started = time.perf_counter()
        for i in range(count):
            await store.create(f"/registry/configmaps/default/cm-{i}", value)
        elapsed = time.perf_counter() - started
        await store.close()
        return count / elapsed
    finally:
        shutil.rmtree(directory, ignore_errors=True)


async def open_loop(url: str, rate: int, seconds: float) -> tuple[list[float], int]:
    """Send POSTs at a fixed rate (open loop: latency counted from the scheduled time)."""
    latencies: list[float] = []
    failures = 0
    run = random.randrange(1 << 30)

    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=256)) as session:

        async def one(index: int, scheduled: float) -> None:
            nonlocal failures
            body = orjson.dumps({"apiVersion": "v1", "kind": "ConfigMap",
                                 "metadata": {"name": f"steady-{run}-{index}"},
                                 "data": {"key": "value"}})
            async with session.post(url + "/api/v1/namespaces/default/configmaps", data=body,
                                    headers={"Content-Type": "application/json"}) as resp:
                await resp.read()
                if resp.status >= 300:
                    failures += 1
            latencies.append((time.perf_counter() - scheduled) * 1000)

        total = int(rate * seconds)
        start = time.perf_counter() + 0.1
        tasks = []
        for i in range(total):
            scheduled = start + i / rate
            delay = scheduled - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(i, scheduled)))
        await asyncio.gather(*tasks)
    return latencies, failures


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--steady-seconds", type=float, default=10.0)
    args = parser.parse_args()

    header("reference: raw creates through the SQLite backend")
    raw = [asyncio.run(raw_sqlite_creates(20_000)) for _ in range(args.runs)]
    raw_median = median(raw)
    print(f"raw SQLite creates/s: runs {[round(r) for r in raw]}, median {raw_median:,.0f}")

    with running_server() as server:
        if have_wrk():
            header("ConfigMap creates/s over HTTP (wrk, 32 connections)")
            rates = []
            for run in range(args.runs):
                result = run_wrk(server.url, seconds=args.seconds,
                                 script=CREATE_SCRIPT % f"r{run}x{random.randrange(1 << 30)}")
                if result.non_2xx:
                    print(f"  run {run}: {result.non_2xx} failed requests")
                rates.append(result.requests_per_second)
                print(f"  run {run}: {result.requests_per_second:,.0f}/s "
                      f"p50 {result.p50_ms:.1f} ms p99 {result.p99_ms:.1f} ms")
            api_median = median(rates)
            print(f"creates/s median {api_median:,.0f} (target >= 2,000); "
                  f"ratio to raw SQLite {api_median / raw_median:.2f}")
        else:
            print("wrk is not installed (apt-get install wrk): creates/s skipped")

        header(f"mutating-call latency at a steady 500 writes/s for {args.steady_seconds:.0f} s")
        latencies, failures = asyncio.run(open_loop(server.url, 500, args.steady_seconds))
        p50, p99 = percentile(latencies, 50), percentile(latencies, 99)
        print(f"pybernetes: p50 {p50:.1f} ms, p99 {p99:.1f} ms, failures {failures} "
              f"(target p99 <= 50 ms; upstream SLO 1 s)")

    with bare_aiohttp_server() as url:
        ref_latencies, _ = asyncio.run(open_loop(url, 500, args.steady_seconds))
        ref_p99 = percentile(ref_latencies, 99)
        print(f"reference bare aiohttp: p50 {percentile(ref_latencies, 50):.1f} ms, "
              f"p99 {ref_p99:.1f} ms; ratio p99 {p99 / ref_p99:.2f}")


if __name__ == "__main__":
    main()
