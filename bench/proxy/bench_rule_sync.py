"""Rule programming of the service proxy: 1,000 Services x 10 endpoints in a scratch network
namespace (root and nft needed).

Figures (medians):

- full sync, render + apply through the nftables backend: creating the table, and re-syncing
  over the existing one (what a drift repair or a restart costs);
- one incremental change end to end (an endpoint added and one removed in one Service's slice:
  tracker update, planning, ``nft -f``), the issue's target being <= 50 ms;
- references in the same run: ``nft -f`` of the same full script alone (the floor), of the same
  incremental script alone, and of an empty transaction (``add table``; the cost of running
  nft at all); the ratio of each figure to its floor.

Usage: sudo .venv/bin/python bench/proxy/bench_rule_sync.py [--services 1000] [--endpoints 10] [--runs 3]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "unit" / "proxy"))
from proxy_objects import endpoint, endpoint_slice, service  # noqa: E402

from pybernetes.proxy.nft import Nft  # noqa: E402
from pybernetes.proxy.nftables import NftablesBackend  # noqa: E402
from pybernetes.proxy.rules import RenderConfig  # noqa: E402
from pybernetes.proxy.tracker import ChangeTracker, ProxyState, refresh  # noqa: E402

TABLE = "pyb-bench"


def ip_of(i: int, j: int) -> str:
    return f"10.{100 + i // 250}.{i % 250}.{j + 1}"


def slice_of(i: int, endpoints: list[str]) -> dict:
    return endpoint_slice(f"svc{i}", [endpoint(ip, node="node-a") for ip in endpoints], namespace="bench")


def sh(*argv: str, check: bool = True) -> None:
    subprocess.run(list(argv), check=check, capture_output=True)


def nft_alone(netns: str, script: str) -> float:
    start = time.perf_counter()
    result = subprocess.run(["ip", "netns", "exec", netns, "nft", "-f", "-"], input=script.encode(),
                            capture_output=True)
    took = time.perf_counter() - start
    if result.returncode != 0:
        raise SystemExit(f"nft refused the script: {result.stderr.decode()[:500]}")
    return took


async def main(services: int, endpoints: int, runs: int) -> None:
    ns_main, ns_ref = f"pybb-{uuid.uuid4().hex[:6]}", f"pybr-{uuid.uuid4().hex[:6]}"
    for ns in (ns_main, ns_ref):
        sh("ip", "netns", "add", ns)
    try:
        tracker = ChangeTracker("node-a")
        state = ProxyState()
        start = time.perf_counter()
        for i in range(services):
            tracker.service_updated(service(f"svc{i}", f"10.43.{i // 250}.{i % 250 + 1}", namespace="bench"))
            tracker.slice_updated(slice_of(i, [ip_of(i, j) for j in range(endpoints)]))
        refresh(tracker, state)
        model_s = time.perf_counter() - start
        config = RenderConfig(table=TABLE, node_name="node-a", cluster_cidr="10.96.0.0/12",
                              nodeport_ips=("172.31.254.1",))
        backend = NftablesBackend(Nft(netns=ns_main), table=TABLE, stale_grace=3600)

        # every transaction the backend runs in ns_main is replayed by nft alone in ns_ref, whose
        # table is therefore always the same: the floor of each step on the same state
        def replay() -> float:
            return nft_alone(ns_ref, backend.last_transaction.script(TABLE))

        creates, resyncs, floors_create, floors_resync = [], [], [], []
        for _ in range(runs):
            await backend.cleanup()
            sh("ip", "netns", "exec", ns_ref, "nft", "delete", "table", "ip", TABLE, check=False)
            creates.append((await backend.sync(state, config, None)).seconds)
            floors_create.append(replay())
        for _ in range(runs):
            resyncs.append((await backend.sync(state, config, None)).seconds)  # over its own table
            floors_resync.append(replay())

        changes, floors_change = [], []
        victim = services // 2
        current = [ip_of(victim, j) for j in range(endpoints)]
        for k in range(max(runs, 7)):
            current = current[1:] + [f"10.250.{k // 250}.{k % 250 + 1}"]  # one in, one out
            start = time.perf_counter()
            tracker.slice_updated(slice_of(victim, current))
            changed = refresh(tracker, state)
            result = await backend.sync(state, config, changed)
            changes.append(time.perf_counter() - start)
            assert not result.full and len(changed) == 1
            floors_change.append(replay())
        empties = [nft_alone(ns_ref, f"add table ip {TABLE}\n") for _ in range(max(runs, 7))]
        counts = backend.counts()
        await backend.cleanup()
    finally:
        for ns in (ns_main, ns_ref):
            sh("ip", "netns", "del", ns, check=False)

    def ms(values: list[float]) -> float:
        return statistics.median(values) * 1000

    print(f"proxy rule sync: {services} Services x {endpoints} endpoints "
          f"({counts['chains']} chains, {counts['rules']} rules, {counts['elements']} map/set elements)")
    print(f"  model (tracker + state) of all of them:      {model_s * 1000:8.1f} ms")
    print(f"  full sync, table created (render + apply):   {ms(creates):8.1f} ms   "
          f"floor nft -f alone {ms(floors_create):8.1f} ms   ratio {ms(creates) / ms(floors_create):.2f}")
    print(f"  full sync over the existing table:           {ms(resyncs):8.1f} ms   "
          f"floor nft -f alone {ms(floors_resync):8.1f} ms   ratio {ms(resyncs) / ms(floors_resync):.2f}")
    print(f"  one incremental change (+1/-1 endpoint):     {ms(changes):8.1f} ms   "
          f"floor nft -f alone {ms(floors_change):8.1f} ms   ratio {ms(changes) / ms(floors_change):.2f}   "
          f"(target <= 50 ms: {'met' if ms(changes) <= 50 else 'NOT met'})")
    print(f"  empty transaction (nft -f 'add table'):      {ms(empties):8.1f} ms")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--services", type=int, default=1000)
    parser.add_argument("--endpoints", type=int, default=10)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    asyncio.run(main(args.services, args.endpoints, args.runs))
