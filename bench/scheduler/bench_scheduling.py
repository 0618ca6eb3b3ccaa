"""Scheduler throughput like upstream's scheduler_perf: Node objects only, no kubelets.

``pybernetes server`` (API server on SQLite, without its own controller manager and
scheduler) gets N Node objects (4 cpu, 32 Gi, 110 pods) and M pending pods; then
``pybernetes scheduler`` starts in its own process and binds them.  Figures:

- pods/s from the scheduler's first change to a pod (a binding, or a rejected preemptor's status) to
  the last binding (upstream's SchedulingBasic: 5,000 nodes and
  10,000 pods; target >= 1,000 pods/s; upstream's CI threshold for the case is 680);
- the scheduler's share of the time: the sum of its scheduling cycles (its
  scheduler_scheduling_attempt_duration_seconds) against the wall time, and the CPU seconds
  of the scheduler and of the API server (which serves the bindings) in the same run;
- reference in the same run: the API server's own binding rate (pods/binding POSTs from a
  Python client with 32 callers, no scheduling), which bounds any scheduler.

Cases: basic; anti-affinity (each pod has a required anti-affinity, per hostname, to the
other pods of its group of 4, after upstream's SchedulingPodAntiAffinity); spread (a zone
topology spread constraint, maxSkew 1, over 10 zones); preemption (after upstream's
PreemptionBasic: every node is filled by one bound low-priority pod asking 3.9 cpu, with
terminationGracePeriodSeconds 0 as there is no kubelet; then M high-priority pods asking 3 cpu
each must evict one).

Usage: .venv/bin/python bench/scheduler/bench_scheduling.py [--nodes 5000] [--pods 10000]
       [--case basic|anti-affinity|spread]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import aiohttp
import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from common import VENV_BIN, free_port, header, running_server  # noqa: E402

JSON = {"Content-Type": "application/json"}
TARGETS = {"basic": "target >= 1,000; upstream's CI threshold for SchedulingBasic 680",
           "anti-affinity": "no target; reported", "spread": "no target; reported",
           "preemption": "reported; upstream's threshold for preempting 2,000 pods on 5,000 nodes 570"}


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        parts = f.read().split(")")[1].split()
    return (int(parts[11]) + int(parts[12])) / os.sysconf("SC_CLK_TCK")


def node_body(i: int, zones: int) -> bytes:
    name = f"node-{i}"
    return orjson.dumps({"apiVersion": "v1", "kind": "Node", "metadata": {"name": name, "labels": {
        "kubernetes.io/hostname": name, "topology.kubernetes.io/zone": f"zone-{i % zones}"}}})


def node_status(i: int) -> bytes:
    return orjson.dumps({"status": {
        "capacity": {"cpu": "4", "memory": "32Gi", "pods": "110"},
        "allocatable": {"cpu": "4", "memory": "32Gi", "pods": "110"},
        "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady"}]}})


def pod_body(i: int, case: str, namespace: str) -> bytes:
    labels = {"app": "bench", "group": f"g{i // 4}"}
    cpu = "3" if case == "preemption" else "100m"
    spec: dict = {"containers": [{"name": "c", "image": "registry.k8s.io/pause:3.10",
                                  "resources": {"requests": {"cpu": cpu, "memory": "500Mi"}}}]}
    if case == "preemption":
        spec["priority"] = 100
    if case == "anti-affinity":
        spec["affinity"] = {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
            {"labelSelector": {"matchLabels": {"group": labels["group"]}}, "topologyKey": "kubernetes.io/hostname"}]}}
    elif case == "spread":
        spec["topologySpreadConstraints"] = [{"maxSkew": 1, "topologyKey": "topology.kubernetes.io/zone",
                                              "whenUnsatisfiable": "DoNotSchedule",
                                              "labelSelector": {"matchLabels": {"app": "bench"}}}]
    return orjson.dumps({"apiVersion": "v1", "kind": "Pod",
                         "metadata": {"name": f"pod-{i}", "namespace": namespace, "labels": labels}, "spec": spec})


def victim_body(i: int) -> bytes:
    return orjson.dumps({"apiVersion": "v1", "kind": "Pod",
                         "metadata": {"name": f"low-{i}", "namespace": "low", "labels": {"app": "low"}},
                         "spec": {"nodeName": f"node-{i}", "priority": 0, "terminationGracePeriodSeconds": 0,
                                  "containers": [{"name": "c", "image": "registry.k8s.io/pause:3.10",
                                                  "resources": {"requests": {"cpu": "3900m"}}}]}})


async def _many(url: str, count: int, request) -> float:
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=64)) as session:
        sem = asyncio.Semaphore(64)

        async def one(i: int) -> None:
            async with sem:
                method, path, body, headers = request(i)
                async with session.request(method, url + path, data=body, headers=headers) as resp:
                    if resp.status >= 300:
                        raise RuntimeError(f"{method} {path}: {resp.status} {(await resp.read())[:200]!r}")
                    await resp.read()

        started = time.perf_counter()
        await asyncio.gather(*(one(i) for i in range(count)))
        return count / (time.perf_counter() - started)


async def watch_bindings(url: str, namespace: str, want: int, times: list[float], deadline: float,
                         on_watching, first_change: list[float]) -> None:
    """Watch the namespace's pods from now on and append the time each pod is first seen
    bound, until ``want`` are (a watch, not repeated lists: the API server's CPU goes to the
    scheduler's requests).  ``on_watching()`` runs once the watch is open; ``first_change``
    gets the time of the first change to any of the pods (a binding, or a failed attempt's
    status: preemptors are first rejected, then bound once their victims are gone)."""
    seen: set[str] = set()
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=None)) as session:
        async with session.get(f"{url}/api/v1/namespaces/{namespace}/pods?limit=1") as resp:
            rv = orjson.loads(await resp.read())["metadata"]["resourceVersion"]
        async with session.get(f"{url}/api/v1/namespaces/{namespace}/pods?watch=1&resourceVersion={rv}"
                               f"&timeoutSeconds={int(deadline)}") as resp:
            on_watching()
            async for line in resp.content:
                event = orjson.loads(line)
                obj = event["object"]
                name = obj["metadata"]["name"]
                if not times and not first_change:  # the scheduler's first word on any pod
                    first_change.append(time.perf_counter())
                if obj["spec"].get("nodeName") and name not in seen:
                    seen.add(name)
                    times.append(time.perf_counter())
                    if len(seen) >= want:
                        return


def scrape(port: int) -> dict[str, float]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
        text = resp.read().decode()
    out: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith("scheduler_scheduling_attempt_duration_seconds_sum"):
            out["cycle_seconds"] = out.get("cycle_seconds", 0.0) + float(line.split()[-1])
        if line.startswith("scheduler_schedule_attempts_total"):
            out["attempts"] = out.get("attempts", 0.0) + float(line.split()[-1])
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=5000)
    parser.add_argument("--pods", type=int, default=10000)
    parser.add_argument("--case", choices=("basic", "anti-affinity", "spread", "preemption"), default="basic")
    parser.add_argument("--zones", type=int, default=10)
    parser.add_argument("--profile", metavar="FILE", help="run the scheduler under cProfile, stats to FILE")
    args = parser.parse_args()
    with running_server() as server, tempfile.TemporaryDirectory(prefix="pyb-bench-sched-") as work:
        url = server.url
        header(f"setup: {args.nodes:,} nodes, {args.pods:,} pending pods ({args.case})")
        rate = asyncio.run(_many(url, args.nodes, lambda i: ("POST", "/api/v1/nodes", node_body(i, args.zones), JSON)))
        asyncio.run(_many(url, args.nodes, lambda i: (
            "PATCH", f"/api/v1/nodes/node-{i}/status", node_status(i),
            {"Content-Type": "application/merge-patch+json"})))
        print(f"nodes created at {rate:,.0f}/s")
        if args.case == "preemption":
            low_ns = orjson.dumps({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "low"}})
            asyncio.run(_many(url, 1, lambda i: ("POST", "/api/v1/namespaces", low_ns, JSON)))
            asyncio.run(_many(url, args.nodes, lambda i: ("POST", "/api/v1/namespaces/low/pods", victim_body(i), JSON)))
            print(f"{args.nodes:,} low-priority pods fill the nodes")
        rate = asyncio.run(_many(url, args.pods, lambda i: (
            "POST", "/api/v1/namespaces/default/pods", pod_body(i, args.case, "default"), JSON)))
        print(f"pods created at {rate:,.0f}/s")

        header("reference: the API server's own binding rate (1,000 bindings, no scheduling)")
        ns_body = orjson.dumps({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "ref"}})
        asyncio.run(_many(url, 1, lambda i: ("POST", "/api/v1/namespaces", ns_body, JSON)))
        asyncio.run(_many(url, 1000, lambda i: (
            "POST", "/api/v1/namespaces/ref/pods", pod_body(i, "basic", "ref"), JSON)))
        api_before = cpu_seconds(server.process.pid)
        bind_rate = asyncio.run(_many(url, 1000, lambda i: (
            "POST", f"/api/v1/namespaces/ref/pods/pod-{i}/binding",
            orjson.dumps({"apiVersion": "v1", "kind": "Binding", "metadata": {"name": f"pod-{i}"},
                          "target": {"apiVersion": "v1", "kind": "Node", "name": f"node-{i % args.nodes}"}}),
            JSON)))
        api_per_binding = (cpu_seconds(server.process.pid) - api_before) / 1000
        print(f"{bind_rate:,.0f} bindings/s ({api_per_binding * 1000:.2f} ms API CPU per binding)")

        header("scheduler")
        kubeconfig = Path(work) / "kubeconfig.yaml"
        kubeconfig.write_text(Path(server.data_dir, "kubeconfig.yaml").read_text())
        metrics_port = free_port()
        api_cpu0 = cpu_seconds(server.process.pid)
        procs: list[subprocess.Popen] = []
        started = 0.0

        def start_scheduler() -> None:
            nonlocal started
            started = time.perf_counter()
            command = [str(VENV_BIN / "python"), "-m", "cProfile", "-o", args.profile] if args.profile \
                else [str(VENV_BIN / "python")]
            procs.append(subprocess.Popen([
                *command, "-m", "pybernetes.cli.main", "scheduler", "--kubeconfig", str(kubeconfig), "--leader-elect", "false",
                "--metrics-port", str(metrics_port), "--log-level", "warning"]))

        try:
            times: list[float] = []
            first_change: list[float] = []
            asyncio.run(asyncio.wait_for(
                watch_bindings(url, "default", args.pods, times, 1800, start_scheduler, first_change), 1800))
            first, last = first_change[0], times[-1]
            sched_cpu = cpu_seconds(procs[0].pid)
            api_cpu = cpu_seconds(server.process.pid) - api_cpu0
            metrics = scrape(metrics_port)
        finally:
            for proc in procs:
                proc.terminate()
                proc.wait(30)
        window = max(1e-9, last - first)
        print(f"all {args.pods:,} pods bound {last - started:.1f} s after the scheduler started "
              f"(its first change to a pod after {first - started:.1f} s: start-up and informer sync)")
        print(f"throughput: {args.pods / window:,.0f} pods/s from the scheduler's first change to a pod to the "
              f"last binding ({TARGETS[args.case]})")
        print(f"scheduler: {metrics.get('cycle_seconds', 0):.1f} s in scheduling cycles over a {window:.1f} s window "
              f"({metrics.get('cycle_seconds', 0) / window:.0%}); CPU: scheduler {sched_cpu:.1f} s, "
              f"API server {api_cpu:.1f} s")
        print(f"reference: API server's own binding rate {bind_rate:,.0f}/s; "
              f"ratio {args.pods / window / bind_rate:.2f}")


if __name__ == "__main__":
    main()
