"""Storage benchmarks (a script, not a test): prints medians of several rounds.

* raw single-row insert transactions/s through the SQLite backend (``create``): the reference
  for the API's create benchmark; next to it, bare sqlite3 autocommit INSERTs into a plain
  table (the floor of what the log could do);
* compare-and-swap updates/s (``update`` with expected_revision) and guaranteed_update/s;
* watch fan-out: 1,000 cacher watchers of one resource, one write, p50/p99 delivery latency
  (from before the write call to each watcher receiving the event);
* the watch cache's memory for 10,000 pods (RSS growth while loading them) and the time to
  list them from the cache.

Run: ``.venv/bin/python bench/bench_storage.py [--rounds N]``
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import sqlite3
import statistics
import tempfile
import time
from pathlib import Path

import orjson

from pybernetes.storage.cacher import VALUE, Cacher
from pybernetes.storage.sqlite import SQLiteStorage

CONFIGMAP = orjson.dumps(
    {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "cm", "namespace": "default", "uid": "3f1c2a9e-0000-4000-8000-000000000000"},
        "data": {"key": "value"},
    }
)


def pod(i: int) -> bytes:
    name = f"web-{i:05d}-7d9c8b5f4-abcde"
    return orjson.dumps(
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                "name": name,
                "namespace": "default",
                "uid": f"0b0c{i:08d}-1111-4222-8333-444455556666",
                "resourceVersion": "1",
                "creationTimestamp": "2025-01-01T00:00:00Z",
                "labels": {"app": "web", "pod-template-hash": "7d9c8b5f4"},
                "ownerReferences": [
                    {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web-7d9c8b5f4",
                     "uid": "aaaa-bbbb", "controller": True, "blockOwnerDeletion": True}
                ],
            },
            "spec": {
                "containers": [
                    {"name": "web", "image": "nginx:1.27", "ports": [{"containerPort": 80, "protocol": "TCP"}],
                     "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}},
                     "terminationMessagePath": "/dev/termination-log", "terminationMessagePolicy": "File",
                     "imagePullPolicy": "IfNotPresent"}
                ],
                "restartPolicy": "Always", "terminationGracePeriodSeconds": 30, "dnsPolicy": "ClusterFirst",
                "serviceAccountName": "default", "nodeName": f"node-{i % 100:03d}", "schedulerName": "default-scheduler",
                "tolerations": [
                    {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute",
                     "tolerationSeconds": 300}
                ],
            },
            "status": {
                "phase": "Running", "podIP": f"10.42.{i // 250}.{i % 250}", "hostIP": "192.168.1.10",
                "conditions": [{"type": "Ready", "status": "True", "lastTransitionTime": "2025-01-01T00:00:05Z"}],
                "containerStatuses": [
                    {"name": "web", "ready": True, "restartCount": 0, "image": "nginx:1.27",
                     "imageID": "sha256:0123456789abcdef", "containerID": "runc://0123456789abcdef",
                     "started": True, "state": {"running": {"startedAt": "2025-01-01T00:00:04Z"}}}
                ],
            },
        }
    )


def pod_attrs(obj):
    meta = obj["metadata"]
    spec = obj.get("spec") or {}
    return meta.get("labels") or {}, {
        "metadata.name": meta.get("name", ""),
        "metadata.namespace": meta.get("namespace", ""),
        "spec.nodeName": spec.get("nodeName", ""),
        "spec.schedulerName": spec.get("schedulerName", ""),
        "status.phase": (obj.get("status") or {}).get("phase", ""),
    }


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


async def bench_creates(directory: Path, count: int) -> tuple[float, float, float]:
    """Creates/s, and p99 and max latency of one create in ms (checkpoint pauses included).
    The loop is given a turn after each create, as a server does between requests."""
    store = await SQLiteStorage.open(directory / f"creates-{time.monotonic_ns()}.db")
    latencies = []
    try:
        started = time.perf_counter()
        for i in range(count):
            before = time.perf_counter()
            await store.create(f"/registry/configmaps/default/cm-{i:07d}", CONFIGMAP)
            latencies.append(time.perf_counter() - before)
            await asyncio.sleep(0)
        rate = count / (time.perf_counter() - started)
        latencies.sort()
        return rate, latencies[int(count * 0.99)] * 1000, latencies[-1] * 1000
    finally:
        await store.close()


def bench_bare_sqlite(directory: Path, count: int) -> float:
    conn = sqlite3.connect(directory / f"bare-{time.monotonic_ns()}.db", isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, key TEXT, value BLOB)")
    started = time.perf_counter()
    for i in range(count):
        conn.execute("INSERT INTO t (key, value) VALUES (?, ?)", (f"/registry/configmaps/default/cm-{i:07d}", CONFIGMAP))
    rate = count / (time.perf_counter() - started)
    conn.close()
    return rate


async def bench_updates(directory: Path, count: int) -> tuple[float, float]:
    store = await SQLiteStorage.open(directory / f"updates-{time.monotonic_ns()}.db")
    try:
        kvs = [await store.create(f"/registry/configmaps/default/cm-{i:03d}", CONFIGMAP) for i in range(100)]
        started = time.perf_counter()
        for i in range(count):
            kv = kvs[i % 100]
            kvs[i % 100] = await store.update(kv.key, CONFIGMAP, expected_revision=kv.mod_revision)
        cas = count / (time.perf_counter() - started)
        started = time.perf_counter()
        for i in range(count):
            await store.guaranteed_update(kvs[i % 100].key, lambda cur: cur.value)
        guaranteed = count / (time.perf_counter() - started)
        return cas, guaranteed
    finally:
        await store.close()


async def fanout_round(store: SQLiteStorage, cacher: Cacher, key: str, watchers: int) -> tuple[float, float]:
    """One write to ``watchers`` parked watchers: (p50, p99) delivery in milliseconds."""
    received: list[float] = []
    done = asyncio.Event()
    parked = asyncio.Event()
    ready = 0

    async def watcher(revision: int) -> None:
        nonlocal ready
        watch = cacher.watch("/registry/configmaps/", revision)
        pending = asyncio.ensure_future(watch.__anext__())
        await asyncio.sleep(0)
        ready += 1
        if ready == watchers:
            parked.set()
        await pending
        received.append(time.perf_counter())
        if len(received) == watchers:
            done.set()
        await watch.aclose()

    tasks = [asyncio.ensure_future(watcher(cacher.revision)) for _ in range(watchers)]
    await parked.wait()
    for _ in range(5):
        await asyncio.sleep(0)  # every watcher is now waiting on its queue
    kv = await store.get(key)
    assert kv is not None
    started = time.perf_counter()
    await store.update(key, CONFIGMAP, expected_revision=kv.mod_revision)
    await asyncio.wait_for(done.wait(), 10)
    await asyncio.gather(*tasks)
    latencies = sorted((t - started) * 1000 for t in received)
    return latencies[len(latencies) // 2], latencies[int(len(latencies) * 0.99) - 1]


async def bench_fanout(directory: Path, watchers: int, rounds: int) -> list[tuple[float, float]]:
    store = await SQLiteStorage.open(directory / f"fanout-{time.monotonic_ns()}.db")
    cacher = Cacher(store, "/registry/configmaps/", lambda obj: ({}, {}))
    await cacher.start()
    try:
        kv = await store.create("/registry/configmaps/default/cm", CONFIGMAP)
        await cacher.wait_for_revision(kv.mod_revision)
        return [await fanout_round(store, cacher, kv.key, watchers) for _ in range(rounds)]
    finally:
        await cacher.stop()
        await store.close()


async def bench_memory(directory: Path, pods: int) -> tuple[float, float, float, int]:
    store = await SQLiteStorage.open(directory / f"pods-{time.monotonic_ns()}.db")
    try:
        for i in range(pods):
            await store.create(f"/registry/pods/default/web-{i:05d}", pod(i))
        gc.collect()
        before = rss_mb()
        cacher = Cacher(store, "/registry/pods/", pod_attrs)
        started = time.perf_counter()
        await cacher.start()
        start_s = time.perf_counter() - started
        gc.collect()
        grown = rss_mb() - before
        times = []
        for _ in range(5):
            started = time.perf_counter()
            page = cacher.list("/registry/pods/")
            body = b",".join(e[VALUE] for e in page.entries)
            times.append((time.perf_counter() - started) * 1000)
        await cacher.stop()
        return grown, start_s, statistics.median(times), len(body)
    finally:
        await store.close()


async def main(rounds: int) -> None:
    with tempfile.TemporaryDirectory(prefix="bench-storage-") as tmp:
        directory = Path(tmp)
        creates = [await bench_creates(directory, 10_000) for _ in range(rounds)]
        bare = [bench_bare_sqlite(directory, 10_000) for _ in range(rounds)]
        updates = [await bench_updates(directory, 10_000) for _ in range(rounds)]
        fanout = await bench_fanout(directory, 1_000, rounds)
        grown, start_s, list_ms, body = await bench_memory(directory, 10_000)
    create_rate = statistics.median(c[0] for c in creates)
    print(f"sqlite backend create (single-row insert txn): {create_rate:10,.0f} /s"
          f"   (one create: p99 {statistics.median(c[1] for c in creates):.2f} ms,"
          f" max {statistics.median(c[2] for c in creates):.1f} ms incl. checkpoint pauses)")
    print(f"bare sqlite3 autocommit INSERT (reference):    {statistics.median(bare):10,.0f} /s"
          f"   backend/bare = {create_rate / statistics.median(bare):.2f}")
    print(f"compare-and-swap update:                       {statistics.median(u[0] for u in updates):10,.0f} /s")
    print(f"guaranteed_update (get + mutate + CAS):        {statistics.median(u[1] for u in updates):10,.0f} /s")
    print(f"watch fan-out, 1,000 cacher watchers, one write: p50 {statistics.median(f[0] for f in fanout):.2f} ms"
          f", p99 {statistics.median(f[1] for f in fanout):.2f} ms (target p99 <= 100 ms)")
    print(f"watch cache of 10,000 pods: RSS +{grown:.1f} MB, start (list + decode) {start_s * 1000:.0f} ms,"
          f" list all from cache {list_ms:.1f} ms ({body / 2**20:.1f} MiB joined)")
    print(f"(medians of {rounds} rounds)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    asyncio.run(main(args.rounds))
