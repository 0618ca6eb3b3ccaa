"""Controller-manager memory: RSS with 10,000 pods (and everything else) in its caches.

Starts ``pybernetes server`` (without its own controller manager), stores N pods, then runs a
``ControllerManager`` with every controller in a child process of this script, waits until
all its informers have synced, and reads the child's RSS.  The reference, measured in the
same run, is the same child against an empty cluster: the difference is what the cached
objects cost.  Target (issue 3): <= 200 MB with 10,000 pods.

Usage: .venv/bin/python bench/bench_controller_manager.py [--pods 10000] [--runs 3]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from bench_api_reads import load_pods
from common import header, median, rss_mb, running_server


async def child(url: str) -> None:
    from pybernetes.client.kubeconfig import Config
    from pybernetes.client.rest import RestClient
    from pybernetes.controllers.manager import ControllerManager

    client = RestClient(Config(servers=[url], qps=1000, burst=2000))
    cm = ControllerManager(client)
    started = time.perf_counter()
    await cm.start(wait_for_sync=300)
    synced = time.perf_counter() - started
    objects = sum(len(inf.indexer.list_keys()) for inf in cm.ctx.informers._informers.values())
    await asyncio.sleep(1.0)  # let the first syncs run
    gc.collect()
    rss = rss_mb(os.getpid())
    print(json.dumps({"rss_mb": rss, "objects": objects, "informers": len(cm.ctx.informers._informers),
                      "sync_s": synced}), flush=True)
    await cm.stop()
    await client.close()


def measure(url: str) -> dict:
    out = subprocess.run([sys.executable, __file__, "--child", url], capture_output=True, text=True,
                         timeout=600, check=False)
    if out.returncode != 0:
        raise RuntimeError(f"child failed: {out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pods", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        asyncio.run(child(args.child))
        return
    with running_server() as server:
        header("controller manager against an empty cluster (reference)")
        empty = [measure(server.url) for _ in range(args.runs)]
        base = median([r["rss_mb"] for r in empty])
        print(f"RSS median {base:.1f} MB ({empty[0]['informers']} informers, "
              f"{empty[0]['objects']} objects cached)")
        header(f"controller manager with {args.pods:,} pods")
        rate = asyncio.run(load_pods(server.url, args.pods))
        print(f"stored {args.pods:,} pods at {rate:,.0f} creates/s")
        full = [measure(server.url) for _ in range(args.runs)]
        rss = median([r["rss_mb"] for r in full])
        sync = median([r["sync_s"] for r in full])
        runs = ", ".join(f"{r['rss_mb']:.1f}" for r in full)
        print(f"RSS median {rss:.1f} MB (runs: {runs}); "
              f"{full[0]['objects']:,} objects in {full[0]['informers']} informers; caches synced in {sync:.2f} s")
        print(f"cost of the cached objects: {rss - base:.1f} MB "
              f"({(rss - base) * 1024 / max(1, args.pods):.1f} KB per pod)")
        print(f"target <= 200 MB: {'met' if rss <= 200 else 'NOT met'} (ratio to target {rss / 200:.2f})")


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    main()
