"""API read path: single-object GETs/s, LIST of 10,000 pods, server RSS with them stored.

Reference, measured in the same run: a bare aiohttp + uvloop handler returning a 1 KB JSON
object (the ceiling of one Python server process here).  For RSS the reference is
published, not measured: a k3s server runs at about 1.4 GB.

Targets (issue 2): GETs >= 5,000/s; LIST of 10,000 pods p50 <= 200 ms; RSS <= 150 MB.
Usage: .venv/bin/python bench/bench_api_reads.py [--pods 10000] [--seconds 5] [--runs 3]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
import urllib.request

import aiohttp
import orjson

sys.path.insert(0, os.path.dirname(__file__))
from common import (  # noqa: E402
    bare_aiohttp_server,
    have_wrk,
    header,
    median,
    percentile,
    rss_mb,
    run_wrk,
    running_server,
)

GET_SCRIPT = 'request = function() return wrk.format("GET", "%s") end'


def pod(index: int) -> dict:
    """A realistic pod as a Deployment would create it."""
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": f"web-7d4b9c8f6d-{index:05d}",
            "labels": {"app": "web", "pod-template-hash": "7d4b9c8f6d", "tier": "frontend"},
            "annotations": {"kubectl.kubernetes.io/restartedAt": "2026-11-25T10:00:00Z"},
        },
        "spec": {
            "containers": [{
                "name": "web",
                "image": "registry.example/web:1.25.3",
                "ports": [{"containerPort": 8080, "name": "http"}],
                "env": [{"name": "MODE", "value": "production"},
                        {"name": "POD_NAME",
                         "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}],
                "resources": {"requests": {"cpu": "100m", "memory": "128Mi"},
                              "limits": {"cpu": "500m", "memory": "256Mi"}},
                "readinessProbe": {"httpGet": {"path": "/healthz", "port": 8080}},
            }],
        },
    }


async def load_pods(url: str, count: int) -> float:
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=64)) as session:
        semaphore = asyncio.Semaphore(64)

        async def create(index: int) -> None:
            async with semaphore:
                async with session.post(url + "/api/v1/namespaces/default/pods",
                                        data=orjson.dumps(pod(index)),
                                        headers={"Content-Type": "application/json"}) as resp:
                    body = await resp.read()
                    if resp.status != 201:
                        raise RuntimeError(f"create failed: {resp.status} {body[:200]!r}")

        started = time.perf_counter()
        await asyncio.gather(*(create(i) for i in range(count)))
        return count / (time.perf_counter() - started)


def timed_list(url: str) -> tuple[float, int, int]:
    started = time.perf_counter()
    with urllib.request.urlopen(url + "/api/v1/namespaces/default/pods", timeout=30) as resp:
        body = resp.read()
    elapsed = (time.perf_counter() - started) * 1000
    return elapsed, len(orjson.loads(body)["items"]), len(body)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--pods", type=int, default=10_000)
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--lists", type=int, default=15)
    args = parser.parse_args()

    ref_rates: list[float] = []
    if have_wrk():
        header("reference: bare aiohttp handler, 1 KB JSON (wrk, 32 connections)")
        with bare_aiohttp_server() as url:
            for _ in range(args.runs):
                ref_rates.append(run_wrk(url, seconds=args.seconds,
                                         script=GET_SCRIPT % "/x").requests_per_second)
        print(f"bare aiohttp GETs/s: {[round(r) for r in ref_rates]}, median {median(ref_rates):,.0f}")

    with running_server() as server:
        request = urllib.request.Request(
            server.url + "/api/v1/namespaces/default/configmaps",
            data=orjson.dumps({"apiVersion": "v1", "kind": "ConfigMap",
                               "metadata": {"name": "bench-get"}, "data": {"k": "v" * 900}}),
            headers={"Content-Type": "application/json"}, method="POST")
        urllib.request.urlopen(request).read()
        if have_wrk():
            header("single-object GETs/s (wrk, 32 connections)")
            rates = []
            for _ in range(args.runs):
                result = run_wrk(server.url, seconds=args.seconds, script=GET_SCRIPT %
                                 "/api/v1/namespaces/default/configmaps/bench-get")
                if result.non_2xx:
                    print(f"  {result.non_2xx} failed requests")
                rates.append(result.requests_per_second)
            get_median = median(rates)
            print(f"GETs/s: {[round(r) for r in rates]}, median {get_median:,.0f} (target >= 5,000); "
                  f"ratio to bare aiohttp {get_median / median(ref_rates):.2f}")

        header(f"LIST of {args.pods:,} pods")
        rate = asyncio.run(load_pods(server.url, args.pods))
        print(f"loaded {args.pods:,} pods at {rate:,.0f} creates/s")
        times = []
        for _ in range(args.lists):
            elapsed, items, size = timed_list(server.url)
            if items != args.pods:
                raise RuntimeError(f"list returned {items} items, expected {args.pods}")
            times.append(elapsed)
        print(f"LIST p50 {percentile(times, 50):.0f} ms, p90 {percentile(times, 90):.0f} ms "
              f"({size / 1e6:.1f} MB body; target p50 <= 200 ms)")

        header(f"server RSS with {args.pods:,} pods stored")
        rss = rss_mb(server.process.pid)
        print(f"RSS {rss:.0f} MB (target <= 150 MB; published reference: a k3s server at about "
              f"1,400 MB; ratio {rss / 1400:.2f})")


if __name__ == "__main__":
    main()
