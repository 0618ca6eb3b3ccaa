"""Pod start-up latency and the kubelet's memory, on one node (issue 5's benchmarks).

``pybernetes server`` (no scheduler: pods name their node) and ``pybernetes agent`` run as
their own processes; the image is already in the node's store.  Figures:

- start-up latency, from the pod's creation (the POST sent) to the watch showing it Running,
  for N pods created one by one (each waits for the previous to run) and N created at once
  (16 concurrent POSTs) — p50 and p99 (targets p50 <= 300 ms, p99 <= 1 s; upstream's SLO is
  p99 <= 5 s);
- the agent's resident memory with the N pods running (target <= 150 MB for 100 pods);
- the floor, in the same run: the raw steps a runc pod cannot avoid, timed by hand — ``ip
  netns add``, a CNI bridge ADD and ``runc run -d`` of the same busybox image
  (bench_runtime_steps.py measures them; its medians are printed here when the runtime is runc).

Usage: sudo .venv/bin/python bench/kubelet/bench_pod_startup.py [--runtime runc|process|simulated]
       [--pods 100]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
import orjson

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT / "tests" / "support"))
from common import VENV_BIN, free_port, header, percentile, rss_mb, running_server  # noqa: E402

NODE = "bench-node"
BRIDGE = "pybbench0"
IMAGE = "pybernetes.test/busybox:1"
JSON = {"Content-Type": "application/json"}


def pod_body(name: str, runtime: str) -> bytes:
    container = {"name": "main", "image": IMAGE if runtime == "runc" else "host/shell:1",
                 "command": ["sleep", "3600"], "imagePullPolicy": "IfNotPresent"}
    return orjson.dumps({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": "default"},
                         "spec": {"nodeName": NODE, "containers": [container], "terminationGracePeriodSeconds": 1,
                                  "enableServiceLinks": False}})


class Watcher:
    """Records when each pod is first seen Running, and when pods are gone."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.running: dict[str, float] = {}
        self.present: set[str] = set()
        self.changed = asyncio.Event()
        self.task: asyncio.Task | None = None

    async def run(self, session: aiohttp.ClientSession) -> None:
        params = {"watch": "true", "allowWatchBookmarks": "false"}
        async with session.get(f"{self.url}/api/v1/namespaces/default/pods", params=params,
                               timeout=aiohttp.ClientTimeout(total=None)) as response:
            async for line in response.content:
                event = orjson.loads(line)
                pod = event["object"]
                name = pod["metadata"]["name"]
                if event["type"] == "DELETED":
                    self.present.discard(name)
                else:
                    self.present.add(name)
                    if (pod.get("status") or {}).get("phase") == "Running" and name not in self.running:
                        self.running[name] = time.monotonic()
                self.changed.set()

    async def wait(self, predicate, within: float = 120.0) -> None:
        deadline = time.monotonic() + within
        while not predicate():
            self.changed.clear()
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("pods did not get there in time")
            try:
                await asyncio.wait_for(self.changed.wait(), left)
            except TimeoutError:
                pass


async def create(session: aiohttp.ClientSession, url: str, name: str, runtime: str) -> float:
    sent = time.monotonic()
    async with session.post(f"{url}/api/v1/namespaces/default/pods", data=pod_body(name, runtime),
                            headers=JSON) as response:
        if response.status != 201:
            raise RuntimeError(f"create {name}: {response.status} {await response.text()}")
    return sent


async def delete_all(session: aiohttp.ClientSession, url: str, names: list[str], watcher: Watcher) -> None:
    for name in names:
        async with session.delete(f"{url}/api/v1/namespaces/default/pods/{name}") as response:
            await response.read()
    await watcher.wait(lambda: not (watcher.present & set(names)), within=300)


def report(title: str, latencies: list[float]) -> None:
    ms = [x * 1000 for x in latencies]
    print(f"{title}: p50 {percentile(ms, 50):.0f} ms, p99 {percentile(ms, 99):.0f} ms, "
          f"max {max(ms):.0f} ms over {len(ms)} pods (targets p50 <= 300 ms, p99 <= 1,000 ms)", flush=True)


async def measure(url: str, runtime: str, count: int, agent_pid: int) -> None:
    async with aiohttp.ClientSession() as session:
        watcher = Watcher(url)
        watcher.task = asyncio.create_task(watcher.run(session))
        await asyncio.sleep(0.2)
        header(f"{count} pods created one by one ({runtime} runtime)")
        latencies, names = [], []
        for i in range(count):
            name = f"serial-{i}"
            sent = await create(session, url, name, runtime)
            await watcher.wait(lambda n=name: n in watcher.running)
            latencies.append(watcher.running[name] - sent)
            names.append(name)
        report("one by one", latencies)
        await delete_all(session, url, names, watcher)

        header(f"{count} pods created at once ({runtime} runtime)")
        names = [f"burst-{i}" for i in range(count)]
        limit = asyncio.Semaphore(16)

        async def one(name: str) -> float:
            async with limit:
                return await create(session, url, name, runtime)

        sent = dict(zip(names, await asyncio.gather(*(one(n) for n in names)), strict=True))
        await watcher.wait(lambda: all(n in watcher.running for n in names), within=300)
        report("at once", [watcher.running[n] - sent[n] for n in names])
        await asyncio.sleep(2)
        print(f"agent RSS with {count} pods running: {rss_mb(agent_pid):.0f} MB (target <= 150 MB)", flush=True)
        began = time.monotonic()
        await delete_all(session, url, names, watcher)
        print(f"deleting {count} pods took {time.monotonic() - began:.1f} s", flush=True)
        watcher.task.cancel()


def import_image(data_dir: str) -> None:
    import busybox_image

    tarball = Path(tempfile.mkdtemp(prefix="pyb-img-")) / "busybox.tar"
    busybox_image.build_tarball(tarball, IMAGE)
    subprocess.run([str(VENV_BIN / "pybernetes"), "image", "import", str(tarball), "--data-dir", data_dir],
                   check=True, stdout=subprocess.DEVNULL)


def remove_leftovers(data_dir: str) -> None:
    """What a failed run left: the runtime's sandboxes (the agent leaves containers running on
    exit, for a restarted agent to adopt), the bridge and the data directory."""
    from pybernetes.kubelet import runtimes

    async def clean() -> None:
        runtime = runtimes.build("runc", Path(data_dir), pod_cidr="10.99.0.0/16", bridge=BRIDGE)
        for sandbox in await runtime.list_pod_sandboxes():
            await runtime.remove_pod_sandbox(sandbox.id)

    asyncio.run(clean())
    subprocess.run(["ip", "link", "del", BRIDGE], capture_output=True, check=False)
    subprocess.run(["nft", "delete", "table", "ip", f"pybernetes-masq-{BRIDGE}"], capture_output=True, check=False)
    shutil.rmtree(data_dir, ignore_errors=True)


def wait_node_ready(url: str, agent: subprocess.Popen, within: float = 60) -> None:
    import urllib.request

    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if agent.poll() is not None:
            raise RuntimeError(f"the agent exited with {agent.returncode}")
        try:
            with urllib.request.urlopen(f"{url}/api/v1/nodes/{NODE}", timeout=1) as response:
                node = orjson.loads(response.read())
                if any(c["type"] == "Ready" and c["status"] == "True" for c in node["status"].get("conditions", [])):
                    return
        except OSError:
            pass
        time.sleep(0.1)
    raise TimeoutError("the node did not become Ready")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runtime", choices=("runc", "process", "simulated"),
                        default="runc" if os.geteuid() == 0 else "process")
    parser.add_argument("--pods", type=int, default=100)
    args = parser.parse_args()
    with running_server() as server:
        data_dir = tempfile.mkdtemp(prefix="pyb-agent-")
        if args.runtime == "runc":
            import_image(data_dir)
        log = open(Path(data_dir) / "agent.log", "wb")  # noqa: SIM115 - closed below
        agent = subprocess.Popen([str(VENV_BIN / "pybernetes"), "agent", "--server", server.url, "--data-dir",
                                  data_dir, "--runtime", args.runtime, "--node-name", NODE, "--node-ip", "127.0.0.1",
                                  "--kubelet-port", str(free_port()), "--pod-cidr", "10.99.0.0/16",
                                  "--cni-bridge", BRIDGE,
                                  "--log-level", "warning"], stdout=log, stderr=subprocess.STDOUT)
        try:
            wait_node_ready(server.url, agent)
            print(f"agent RSS at start: {rss_mb(agent.pid):.0f} MB", flush=True)
            asyncio.run(measure(server.url, args.runtime, args.pods, agent.pid))
        finally:
            agent.terminate()
            try:
                agent.wait(30)
            except subprocess.TimeoutExpired:
                agent.kill()
                agent.wait()
            log.close()
            if args.runtime == "runc":
                remove_leftovers(data_dir)
    if args.runtime == "runc":
        steps = ROOT / "bench" / "kubelet" / "bench_runtime_steps.py"
        if steps.exists():
            header("the floor: raw runtime steps (bench_runtime_steps.py)")
            subprocess.run([sys.executable, str(steps)], check=False)


if __name__ == "__main__":
    main()
