"""Deployment controller: pods created for many Deployments at once, and a 1,000-replica
rolling update.

Three processes: ``pybernetes server`` (API server on SQLite), its supervised
``pybernetes controller-manager`` child running only the deployment and replicaset
controllers, and this script, which plays the node (a watch on every pod; each new pod is
written Running+Ready through pods/status as it appears, as a kubelet would report it) and
drives the load.

(a) 100 Deployments x 10 replicas created at once: time until all 1,000 pods exist (and
    until all 100 report their rollout complete);
(b) a 1,000-replica Deployment (RollingUpdate 25%/25%) whose template changes: wall time
    until the rollout is complete (updated = available = replicas = 1,000, old pods gone),
    and the fewest Ready pods seen meanwhile (never below 750 = replicas - maxUnavailable).

Reference measured in the same run: the API server's own pod creates/s (the same client
creating 1,000 pods directly), which bounds how fast any controller can create them.
Usage: .venv/bin/python bench/bench_deployment.py [--deployments 100] [--replicas 10]
       [--big 1000]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sys
import time
import traceback
from typing import Any

sys.path.insert(0, os.path.dirname(__file__))
from common import header, running_server  # noqa: E402
from pybernetes.client.errors import ApiError, Conflict, NotFound  # noqa: E402
from pybernetes.client.kubeconfig import Config  # noqa: E402
from pybernetes.client.rest import RestClient  # noqa: E402

PODS = ("", "v1", "pods")
DEPLOYMENTS = ("apps", "v1", "deployments")
NAMESPACES = ("", "v1", "namespaces")
Obj = dict[str, Any]


def stamp() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def deployment(name: str, replicas: int, image: str = "nginx:1") -> Obj:
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name}},
                                  "spec": {"containers": [{"name": "c", "image": image}]}}}}


def ready_status(pod: Obj) -> Obj:
    now = stamp()
    return {"phase": "Running", "hostIP": "127.0.0.1", "podIP": "10.42.0.2", "startTime": now,
            "conditions": [{"type": t, "status": "True", "lastTransitionTime": now}
                           for t in ("PodScheduled", "Initialized", "ContainersReady", "Ready")],
            "containerStatuses": [{"name": c["name"], "image": c.get("image", ""), "imageID": "", "ready": True,
                                   "restartCount": 0, "started": True, "state": {"running": {"startedAt": now}}}
                                  for c in pod["spec"].get("containers") or []]}


def is_ready(pod: Obj) -> bool:
    return any(c.get("type") == "Ready" and c.get("status") == "True"
               for c in (pod.get("status") or {}).get("conditions") or ())


class NodeSim:
    """Watches every pod; marks new ones Running+Ready; finishes graceful deletions.  Keeps
    the live pods by namespace and the fewest Ready pods per namespace since ``reset_min``."""

    def __init__(self, client: RestClient, workers: int = 24) -> None:
        self.client = client
        self.pods: dict[str, dict[str, Obj]] = {}
        self.min_ready: dict[str, int] = {}
        self.ready_count: dict[str, int] = {}  # Ready pods (not being deleted) by namespace
        self.todo: asyncio.Queue[Obj] = asyncio.Queue()
        self.marked = 0
        self.tasks = [asyncio.create_task(self._watch())] + [
            asyncio.create_task(self._work()) for _ in range(workers)]
        self.changed = asyncio.Event()

    def count(self, ns: str) -> int:
        return len(self.pods.get(ns, {}))

    def ready(self, ns: str) -> int:
        return self.ready_count.get(ns, 0)

    def reset_min(self, ns: str) -> None:
        self.min_ready[ns] = self.ready(ns)

    async def _watch(self) -> None:
        try:
            await self._follow()
        except asyncio.CancelledError:
            raise
        except BaseException:
            traceback.print_exc()
            raise

    async def _follow(self) -> None:
        listing = await self.client.list(PODS)
        rv = listing["metadata"]["resourceVersion"]
        while True:
            async for kind, pod in self.client.watch(PODS, resource_version=rv, timeout_seconds=3600):
                meta = pod["metadata"]
                rv = meta.get("resourceVersion") or rv
                ns = meta["namespace"]
                bucket = self.pods.setdefault(ns, {})
                old = bucket.get(meta["name"])
                if old is not None and is_ready(old):
                    self.ready_count[ns] -= 1
                if kind == "DELETED" or meta.get("deletionTimestamp"):
                    bucket.pop(meta["name"], None)
                    if kind != "DELETED":
                        self.todo.put_nowait(pod)
                else:
                    bucket[meta["name"]] = pod
                    if is_ready(pod):
                        self.ready_count[ns] = self.ready_count.get(ns, 0) + 1
                    elif (pod.get("status") or {}).get("phase") != "Running":
                        self.todo.put_nowait(pod)
                if ns in self.min_ready:
                    self.min_ready[ns] = min(self.min_ready[ns], self.ready_count.get(ns, 0))
                self.changed.set()

    async def _work(self) -> None:
        while True:
            pod = await self.todo.get()
            meta = pod["metadata"]
            try:
                if meta.get("deletionTimestamp"):
                    await self.client.delete(PODS, meta["name"], meta["namespace"], grace_period_seconds=0)
                    continue
                for _ in range(5):
                    pod = {**pod, "status": ready_status(pod)}  # the watched copy stays as it was
                    try:
                        await self.client.update_status(PODS, pod)
                        self.marked += 1
                        break
                    except Conflict:
                        pod = await self.client.get(PODS, meta["name"], meta["namespace"])
                        if pod["metadata"].get("deletionTimestamp") or is_ready(pod):
                            break
            except (NotFound, ApiError):
                continue

    async def wait(self, predicate, within: float) -> None:
        deadline = time.monotonic() + within
        while not predicate():
            self.changed.clear()
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("benchmark condition not reached")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.changed.wait(), min(left, 0.5))

    async def stop(self) -> None:
        for t in self.tasks:
            t.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)


async def create_namespace(client: RestClient, name: str) -> None:
    await client.create(NAMESPACES, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})


async def rollout_complete(client: RestClient, ns: str, name: str, replicas: int) -> bool:
    d = await client.get(DEPLOYMENTS, name, ns)
    s = d.get("status") or {}
    return (s.get("observedGeneration", 0) >= d["metadata"]["generation"] and s.get("updatedReplicas") == replicas
            and s.get("replicas") == replicas and s.get("availableReplicas") == replicas)


async def poll(predicate, within: float, interval: float = 0.05) -> None:
    deadline = time.monotonic() + within
    while not await predicate():
        if time.monotonic() > deadline:
            raise TimeoutError("benchmark condition not reached")
        await asyncio.sleep(interval)


async def reference_pod_creates(client: RestClient, count: int) -> float:
    """Pod creates/s of the API server itself: ``count`` pods from 32 concurrent callers."""
    await create_namespace(client, "bench-ref")
    body = deployment("ref", 1)["spec"]["template"]
    names = iter(range(count))

    async def creator() -> None:
        for i in names:
            await client.create(PODS, {"apiVersion": "v1", "kind": "Pod",
                                       "metadata": {"name": f"ref-{i}", "labels": body["metadata"]["labels"]},
                                       "spec": body["spec"]}, "bench-ref")
    started = time.perf_counter()
    await asyncio.gather(*(creator() for _ in range(32)))
    return count / (time.perf_counter() - started)


async def run(url: str, args: argparse.Namespace) -> None:
    client = RestClient(Config(servers=[url], qps=100_000, burst=100_000))
    sim = NodeSim(client)
    try:
        # Warm-up: the controller manager holds its lease and its caches are synced once a
        # Deployment's pod appears.
        await create_namespace(client, "bench-warm")
        await client.create(DEPLOYMENTS, deployment("warm", 1), "bench-warm")
        await sim.wait(lambda: sim.count("bench-warm") == 1, 120)

        header(f"(a) {args.deployments} Deployments x {args.replicas} replicas created at once")
        ns, total = "bench-many", args.deployments * args.replicas
        await create_namespace(client, ns)
        started = time.perf_counter()
        await asyncio.gather(*(client.create(DEPLOYMENTS, deployment(f"d{i}", args.replicas), ns)
                               for i in range(args.deployments)))
        created = time.perf_counter() - started
        await sim.wait(lambda: sim.count(ns) >= total, 600)
        all_pods = time.perf_counter() - started
        await sim.wait(lambda: sim.ready(ns) >= total, 600)

        async def every_rollout_done() -> bool:
            listing = await client.list(DEPLOYMENTS, ns)
            return sum(1 for d in listing["items"]
                       if (d.get("status") or {}).get("availableReplicas") == args.replicas
                       and (d.get("status") or {}).get("updatedReplicas") == args.replicas) == args.deployments
        await poll(every_rollout_done, 600, 0.1)
        complete = time.perf_counter() - started
        print(f"{args.deployments} Deployment creates took {created:.2f} s")
        print(f"all {total:,} pods exist after {all_pods:.2f} s ({total / all_pods:,.0f} pods/s)")
        print(f"all {args.deployments} rollouts complete (every pod Ready) after {complete:.2f} s")

        header(f"(b) rolling update of a {args.big:,}-replica Deployment (maxSurge 25%, maxUnavailable 25%)")
        ns = "bench-big"
        await create_namespace(client, ns)
        started = time.perf_counter()
        await client.create(DEPLOYMENTS, deployment("big", args.big), ns)
        await sim.wait(lambda: sim.count(ns) >= args.big, 600)
        first_pods = time.perf_counter() - started
        await poll(lambda: rollout_complete(client, ns, "big", args.big), 600)
        first = time.perf_counter() - started
        print(f"first rollout: {args.big:,} pods exist after {first_pods:.2f} s, complete after {first:.2f} s")
        sim.reset_min(ns)
        started = time.perf_counter()
        await client.patch(DEPLOYMENTS, "big", {"spec": {"template": {"spec": {"containers": [
            {"name": "c", "image": "nginx:2"}]}}}}, ns, patch_type="strategic")
        await poll(lambda: rollout_complete(client, ns, "big", args.big), 900)
        rolled = time.perf_counter() - started
        await sim.wait(lambda: sim.count(ns) == args.big and all(
            p["spec"]["containers"][0]["image"] == "nginx:2" for p in sim.pods[ns].values()), 300)
        gone = time.perf_counter() - started
        floor = args.big - args.big // 4
        print(f"rolling update complete after {rolled:.2f} s (old pods all gone after {gone:.2f} s); "
              f"{2 * args.big:,} pod creates+deletes, {2 * args.big / rolled:,.0f} pods replaced/s")
        print(f"fewest Ready pods during the update: {sim.min_ready[ns]:,} (allowed minimum {floor:,})")

        header("reference: the API server's own pod creates/s (same client, 32 callers)")
        rate = await reference_pod_creates(client, args.big)
        print(f"{rate:,.0f} pod creates/s; (a) reached {total / all_pods / rate:.2f} of it")
    finally:
        await sim.stop()
        await client.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--deployments", type=int, default=100)
    parser.add_argument("--replicas", type=int, default=10)
    parser.add_argument("--big", type=int, default=1000)
    args = parser.parse_args()
    with running_server(("--controllers", "deployment,replicaset"), controller_manager=True) as server:
        asyncio.run(run(server.url, args))


if __name__ == "__main__":
    main()
