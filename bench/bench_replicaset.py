"""ReplicaSet scale-up: a ReplicaSet scaled from 0 to 1,000 replicas.

The API server (``pybernetes server``) and the controller manager (``pybernetes
controller-manager --controllers replicaset``) run as separate processes, each on its own
core as in a real cluster.  Figures:

- time from the scale (a PATCH of spec.replicas) until the 1,000th pod is seen on a watch
  (target <= 2 s), and the pod creates/s the controller reached (pods seen / the time from
  the first to the last one);
- reference, in the same run: the API server's own pod creates/s — 1,000 pods of the same
  template POSTed straight at it by concurrent connections (controller manager stopped, so
  it takes no core) — and the ratio controller / API server (target >= 0.7).

Usage: .venv/bin/python bench/bench_replicaset.py [--replicas 1000] [--runs 3] [--concurrency 32]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time

import aiohttp
import orjson

sys.path.insert(0, os.path.dirname(__file__))
from common import VENV_BIN, have_wrk, header, median, run_wrk, running_server  # noqa: E402

JSON = {"Content-Type": "application/json"}
MERGE = {"Content-Type": "application/merge-patch+json"}
POD_SPEC = {"containers": [{"name": "app", "image": "registry.k8s.io/pause:3.10",
                            "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}}}]}


WRK_POD_SCRIPT = """
request = function()
  return wrk.format("POST", "/api/v1/namespaces/%s/pods", {["Content-Type"] = "application/json"},
    '%s')
end
"""


def pod_body(namespace: str, app: str) -> bytes:
    return orjson.dumps({"apiVersion": "v1", "kind": "Pod",
                         "metadata": {"generateName": f"{app}-", "namespace": namespace,
                                      "labels": {"app": app}},
                         "spec": POD_SPEC})


def replica_set(name: str) -> bytes:
    return orjson.dumps({
        "apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": {"name": name},
        "spec": {"replicas": 0, "selector": {"matchLabels": {"app": name}},
                 "template": {"metadata": {"labels": {"app": name}}, "spec": POD_SPEC}},
    })


async def ensure_namespace(session: aiohttp.ClientSession, url: str, name: str) -> None:
    body = orjson.dumps({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
    async with session.post(f"{url}/api/v1/namespaces", data=body, headers=JSON) as resp:
        await resp.read()
        if resp.status not in (201, 409):
            raise RuntimeError(f"creating namespace {name}: {resp.status}")


async def direct_creates(url: str, namespace: str, count: int, concurrency: int) -> float:
    """Pods/s the API server takes from ``concurrency`` connections POSTing ``count`` pods."""
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency)) as session:
        await ensure_namespace(session, url, namespace)
        body = pod_body(namespace, "direct")
        path = f"{url}/api/v1/namespaces/{namespace}/pods"
        next_index = 0
        failures = 0

        async def worker() -> None:
            nonlocal next_index, failures
            while next_index < count:
                next_index += 1
                async with session.post(path, data=body, headers=JSON) as resp:
                    await resp.read()
                    if resp.status != 201:
                        failures += 1

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    if failures:
        print(f"  {failures} direct creates failed")
    return count / elapsed


async def scale_run(url: str, namespace: str, name: str, replicas: int) -> tuple[float, float, float]:
    """Scale a new ReplicaSet 0 -> ``replicas``; (seconds to the last pod seen, controller
    creates/s between the first and the last pod, seconds to status.replicas == replicas)."""
    timeout = aiohttp.ClientTimeout(total=None, sock_read=None)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        await ensure_namespace(session, url, namespace)
        base = f"{url}/apis/apps/v1/namespaces/{namespace}/replicasets"
        async with session.post(base, data=replica_set(name), headers=JSON) as resp:
            if resp.status != 201:
                raise RuntimeError(f"creating the ReplicaSet: {resp.status} {await resp.text()}")
        # Wait until the controller has seen it (it writes observedGeneration 1).
        deadline = time.monotonic() + 60
        while True:
            async with session.get(f"{base}/{name}") as resp:
                rs = orjson.loads(await resp.read())
            if (rs.get("status") or {}).get("observedGeneration") == 1:
                break
            if time.monotonic() > deadline:
                raise TimeoutError("the controller manager never synced the ReplicaSet")
            await asyncio.sleep(0.05)
        async with session.get(f"{url}/api/v1/namespaces/{namespace}/pods",
                               params={"labelSelector": f"app={name}", "limit": "1"}) as resp:
            rv = orjson.loads(await resp.read())["metadata"]["resourceVersion"]
        seen: list[float] = []
        watch = await session.get(f"{url}/api/v1/namespaces/{namespace}/pods",
                                  params={"watch": "1", "resourceVersion": rv,
                                          "labelSelector": f"app={name}", "timeoutSeconds": "120"})
        try:
            started = time.perf_counter()
            async with session.patch(f"{base}/{name}", data=orjson.dumps({"spec": {"replicas": replicas}}),
                                     headers=MERGE) as resp:
                await resp.read()
            buffer = b""
            async for chunk in watch.content.iter_any():
                buffer += chunk
                *lines, buffer = buffer.split(b"\n")
                now = time.perf_counter()
                for line in lines:
                    if line.strip() and orjson.loads(line).get("type") == "ADDED":
                        seen.append(now)
                if len(seen) >= replicas:
                    break
        finally:
            watch.close()
        all_seen = seen[-1] - started
        rate = (len(seen) - 1) / (seen[-1] - seen[0]) if len(seen) > 1 and seen[-1] > seen[0] else float("nan")
        while True:
            async with session.get(f"{base}/{name}") as resp:
                rs = orjson.loads(await resp.read())
            if (rs.get("status") or {}).get("replicas") == replicas:
                break
            await asyncio.sleep(0.01)
        status_seen = time.perf_counter() - started
    return all_seen, rate, status_seen


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far."""
    with open(f"/proc/{pid}/stat") as fh:
        fields = fh.read().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def start_controller_manager(url: str, workdir: str) -> subprocess.Popen:
    kubeconfig = os.path.join(workdir, "kubeconfig")
    with open(kubeconfig, "w") as fh:
        fh.write(
            "apiVersion: v1\nkind: Config\ncurrent-context: bench\n"
            f"clusters:\n- name: bench\n  cluster:\n    server: {url}\n"
            "users:\n- name: bench\n  user: {}\n"
            "contexts:\n- name: bench\n  context:\n    cluster: bench\n    user: bench\n")
    cmd = [str(VENV_BIN / "pybernetes"), "controller-manager", "--kubeconfig", kubeconfig,
           "--controllers", "replicaset", "--leader-elect", "false",
           "--kube-api-qps", "100000", "--kube-api-burst", "100000", "--log-level", "warning"]
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL)


def stop(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def reference_rates(url: str, run: int, replicas: int, concurrency: int) -> tuple[float, float | None]:
    """The API server's own pod creates/s: (Python client, wrk or None)."""
    python_rate = asyncio.run(direct_creates(url, f"direct-{run}", replicas, concurrency))
    wrk_rate = None
    if have_wrk():
        namespace = f"direct-{run}"
        script = WRK_POD_SCRIPT % (namespace, pod_body(namespace, "wrk").decode())
        result = run_wrk(url, seconds=1, connections=32, script=script)
        wrk_rate = result.requests_per_second
        if result.non_2xx:
            print(f"  wrk: {result.non_2xx} failed requests")
    return python_rate, wrk_rate


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--replicas", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=32)
    args = parser.parse_args()
    n = args.replicas

    with running_server() as server, tempfile.TemporaryDirectory(prefix="pyb-bench-rs-") as workdir:
        asyncio.run(direct_creates(server.url, "warm-up", n // 4, args.concurrency))
        header(f"reference: the API server's own pod creates/s ({n} pods POSTed by {args.concurrency} "
               "connections from a Python client; wrk with 32 connections for 1 s)")
        refs = []
        for run in range(args.runs):
            cpu = cpu_seconds(server.process.pid)
            python_rate, wrk_rate = reference_rates(server.url, run, n, args.concurrency)
            refs.append(max(python_rate, wrk_rate or 0.0))
            print(f"  run {run}: Python client {python_rate:,.0f}/s"
                  + (f", wrk {wrk_rate:,.0f}/s" if wrk_rate else "")
                  + f" (API server CPU {cpu_seconds(server.process.pid) - cpu:.2f} s)")

        header(f"ReplicaSet 0 -> {n} (pybernetes controller-manager --controllers replicaset, own process)")
        cm = start_controller_manager(server.url, workdir)
        times, rates = [], []
        try:
            asyncio.run(scale_run(server.url, "rs-warm-up", "warm-up", n // 5))  # caches, connections
            for run in range(args.runs):
                cpu_api, cpu_cm = cpu_seconds(server.process.pid), cpu_seconds(cm.pid)
                all_seen, rate, status_seen = asyncio.run(scale_run(server.url, f"rs-{run}", f"bench-{run}", n))
                times.append(all_seen)
                rates.append(rate)
                print(f"  run {run}: all pods in {all_seen:.2f} s; {rate:,.0f} pods/s from the first to the "
                      f"last pod ({n / all_seen:,.0f}/s over the whole time); status.replicas {n} after "
                      f"{status_seen:.2f} s (CPU: API server {cpu_seconds(server.process.pid) - cpu_api:.2f} s, "
                      f"controller manager {cpu_seconds(cm.pid) - cpu_cm:.2f} s)")
            if cm.poll() is not None:
                print(f"  the controller manager exited with {cm.returncode}")
        finally:
            stop(cm)
        header("summary (medians)")
        time_median, rate_median, ref_median = median(times), median(rates), median(refs)
        print(f"time to {n} pods: {time_median:.2f} s (target <= 2 s)")
        print(f"controller creates/s {rate_median:,.0f}; API server's own {ref_median:,.0f}; "
              f"ratio {rate_median / ref_median:.2f} (target >= 0.7); over the whole time "
              f"{n / time_median / ref_median:.2f}")


if __name__ == "__main__":
    main()
