"""The runc runtime's steps against the raw commands they stand on (root only).

Medians over N runs (default 20) of:

- the floor, by hand: ``ip netns add``; a CNI ``bridge`` ADD (host-local IPAM; no ipMasq, as the
  runtime masquerades once per node — masquerade.py) into a fresh namespace; ``runc run -d`` of a busybox container on a ready overlay root;
- pybernetes' own: the in-process namespace creation (kernel.create_namespaces), and
  RuncRuntime's ``run_pod_sandbox``, ``create_container`` and ``start_container`` (conmon +
  runc create + runc start) of the same image, and the three together;
- the ratio of RuncRuntime's pod start (sandbox + create + start) to the floor's sum;
- the burst floor (``--burst N``, default 100): N raw pods (netns + CNI ADD + overlay mount +
  ``runc run -d``) started at once by a few workers (``--workers``, default 4), nothing else
  running — when each was up, counted from the burst's start (p50, p99), and the machine's CPU
  seconds per pod.  No kubelet can start N runc pods at once faster than this on the machine.

Everything it creates (namespaces, bridge, cgroups, mounts, containers) is removed at the end.

Usage: sudo .venv/bin/python bench/kubelet/bench_runtime_steps.py [--runs 20]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "support"))
sys.path.insert(0, str(ROOT / "bench"))
import busybox_image  # noqa: E402

from common import percentile  # noqa: E402
from pybernetes.kubelet.runtime import cni, kernel  # noqa: E402
from pybernetes.kubelet.runtime.images import ImageStore  # noqa: E402
from pybernetes.kubelet.runtime.protocol import ContainerConfig, PodSandboxConfig  # noqa: E402
from pybernetes.kubelet.runtime.runc import RuncRuntime  # noqa: E402

IMAGE = "pybernetes.test/busybox:1"
CNI_BIN = "/usr/lib/cni"


def ms(seconds: float) -> float:
    return seconds * 1000


def timed(fn) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def run(*argv: str, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(argv, check=True, capture_output=True, **kw)


class Floor:
    """The raw steps, by hand."""

    def __init__(self, work: Path, layers: list[Path], bridge: str, cidr: str, cgroup_root: str) -> None:
        self.work, self.layers, self.bridge, self.cidr, self.cgroup_root = work, layers, bridge, cidr, cgroup_root
        self.tag = secrets.token_hex(3)
        scratch = work / "spec-template"
        scratch.mkdir()
        run("runc", "spec", "--bundle", str(scratch))
        self.spec_template = (scratch / "config.json").read_text()
        conflist = cni.pod_network(name="bench", bridge=bridge, subnet=cidr, data_dir=str(work / "ipam"), ip_masq=False)
        self.cni_input = json.dumps(cni.plugin_input(conflist, conflist["plugins"][0], None)).encode()

    def _cni(self, netns: str, command: str, *, check: bool = True) -> None:
        """The bridge plugin (host-local IPAM) on the named network namespace."""
        env = {"CNI_CONTAINERID": netns, "CNI_NETNS": f"/run/netns/{netns}", "CNI_IFNAME": "eth0",
               "CNI_PATH": CNI_BIN, "CNI_COMMAND": command, "PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin")}
        subprocess.run([f"{CNI_BIN}/bridge"], input=self.cni_input, env=env, capture_output=True, check=check)

    def _bundle(self, bundle: Path, cgroup: str, netns: str | None = None) -> None:
        """An OCI bundle of the image on an overlay root running ``sleep 3600`` (in ``netns``
        when given, else a fresh network namespace)."""
        for sub in ("rootfs", "upper", "work"):
            (bundle / sub).mkdir(parents=True)
        kernel.mount_overlay(self.layers, bundle / "upper", bundle / "work", bundle / "rootfs")
        spec = json.loads(self.spec_template)
        spec["process"].update(terminal=False, args=["sleep", "3600"])
        spec["linux"]["cgroupsPath"] = f"{self.cgroup_root}/{cgroup}"
        if netns:
            spec["linux"]["namespaces"] = [n if n["type"] != "network" else {"type": "network",
                                                                              "path": f"/run/netns/{netns}"}
                                           for n in spec["linux"]["namespaces"]]
        (bundle / "config.json").write_text(json.dumps(spec))

    def _runc_run(self, bundle: Path, cid: str) -> None:
        # the container inherits runc's stdio: no pipes, or run would wait for the container's end
        subprocess.run(["runc", f"--root={self.work / 'runc'}", "run", "-d", "--bundle", str(bundle), cid], check=True,
                       stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def _runc_delete(self, bundle: Path, cid: str) -> None:
        subprocess.run(["runc", f"--root={self.work / 'runc'}", "delete", "-f", cid], capture_output=True)
        kernel.umount(bundle / "rootfs")

    def netns_add(self, i: int) -> float:
        name = f"pybb-{self.tag}-{i}"
        took = timed(lambda: run("ip", "netns", "add", name))
        run("ip", "netns", "del", name)
        return took

    def netns_in_process(self, i: int) -> float:
        path = self.work / f"ns-{i}"
        took = timed(lambda: kernel.create_namespaces({"net": path}))
        kernel.remove_namespace(path)
        return took

    def cni_add(self, i: int) -> float:
        name = f"pybb-{self.tag}-cni{i}"
        run("ip", "netns", "add", name)
        try:
            return timed(lambda: self._cni(name, "ADD"))
        finally:
            self._cni(name, "DEL", check=False)
            subprocess.run(["ip", "netns", "del", name], capture_output=True)

    def runc_run(self, i: int) -> float:
        bundle, cid = self.work / f"bundle-{i}", f"pybb-{self.tag}-{i}"
        self._bundle(bundle, f"raw-{i}")
        try:
            return timed(lambda: self._runc_run(bundle, cid))
        finally:
            self._runc_delete(bundle, cid)

    def pod_up(self, i: int) -> None:
        """One raw pod, left running: netns, CNI ADD, overlay root, ``runc run -d``."""
        name = f"pybb-{self.tag}-p{i}"
        run("ip", "netns", "add", name)
        self._cni(name, "ADD")
        bundle = self.work / f"pbundle-{i}"
        self._bundle(bundle, f"pod-{i}", netns=name)
        self._runc_run(bundle, name)

    def pod_down(self, i: int) -> None:
        name = f"pybb-{self.tag}-p{i}"
        self._runc_delete(self.work / f"pbundle-{i}", name)
        subprocess.run(["ip", "netns", "del", name], capture_output=True)

    def burst(self, count: int, workers: int) -> tuple[list[float], float]:
        """``count`` raw pods by ``workers`` threads: each pod's up time from the start, and the
        machine's CPU seconds spent meanwhile."""
        from concurrent.futures import ThreadPoolExecutor

        cpu_before, began = machine_cpu(), time.perf_counter()

        def one(i: int) -> float:
            self.pod_up(i)
            return time.perf_counter() - began

        try:
            with ThreadPoolExecutor(workers) as pool:
                times = list(pool.map(one, range(count)))
            return times, machine_cpu() - cpu_before
        finally:
            with ThreadPoolExecutor(workers) as pool:
                list(pool.map(self.pod_down, range(count)))


def machine_cpu() -> float:
    """CPU seconds the whole machine has spent busy (every core), from /proc/stat."""
    with open("/proc/stat") as stat:
        fields = [int(x) for x in stat.readline().split()[1:]]
    return (sum(fields) - fields[3] - fields[4]) / os.sysconf("SC_CLK_TCK")


async def runtime_steps(rt: RuncRuntime, runs: int) -> dict[str, list[float]]:
    out: dict[str, list[float]] = {"sandbox": [], "create": [], "start": [], "pod": []}
    await rt.pull_image(IMAGE)
    for i in range(runs):
        t0 = time.perf_counter()
        sandbox = await rt.run_pod_sandbox(PodSandboxConfig(name=f"b{i}", namespace="bench", uid=f"u{i}",
                                                            hostname=f"b{i}"))
        t1 = time.perf_counter()
        container = await rt.create_container(sandbox, ContainerConfig(name="main", image=IMAGE,
                                                                       command=["sleep", "3600"]))
        t2 = time.perf_counter()
        await rt.start_container(container)
        t3 = time.perf_counter()
        out["sandbox"].append(t1 - t0)
        out["create"].append(t2 - t1)
        out["start"].append(t3 - t2)
        out["pod"].append(t3 - t0)
        await rt.remove_pod_sandbox(sandbox)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--burst", type=int, default=100, help="raw pods started at once (0: none)")
    parser.add_argument("--workers", type=int, default=4)
    args = parser.parse_args()
    missing = [b for b in ("runc", "conmon", "ip") if shutil.which(b) is None]
    if os.geteuid() != 0 or missing or not busybox_image.available():
        print(f"skipped: needs root, runc, conmon, iproute2 and busybox-static (missing: {missing or 'root'})")
        return
    work = Path(tempfile.mkdtemp(prefix="pyb-bench-steps-"))
    bridge, cgroup_root = f"pybb{secrets.token_hex(4)}", f"/pybb-{secrets.token_hex(4)}"  # bridge: <= 14 chars
    store = ImageStore(work / "images")
    busybox_image.build_tarball(work / "busybox.tar", IMAGE)
    store.import_archive(work / "busybox.tar")
    rt = RuncRuntime(work / "runtime", store, pod_cidr="10.251.0.0/24", bridge=bridge, cgroup_root=cgroup_root)
    floor = Floor(work, store.unpack(IMAGE), bridge + "f", "10.251.1.0/24", cgroup_root)
    try:
        figures = {
            "ip netns add": [floor.netns_add(i) for i in range(args.runs)],
            "netns in-process": [floor.netns_in_process(i) for i in range(args.runs)],
            "CNI bridge ADD": [floor.cni_add(i) for i in range(args.runs)],
            "runc run -d": [floor.runc_run(i) for i in range(args.runs)],
        }
        steps = asyncio.run(runtime_steps(rt, args.runs))
        figures.update({"RuncRuntime run_pod_sandbox": steps["sandbox"],
                        "RuncRuntime create_container": steps["create"],
                        "RuncRuntime start_container": steps["start"],
                        "RuncRuntime pod (all three)": steps["pod"]})
        print(f"medians over {args.runs} runs (ms):")
        for name, values in figures.items():
            print(f"  {name:32s} {ms(statistics.median(values)):8.1f}   (p90 {ms(sorted(values)[int(len(values) * .9)]):.1f})")
        floor_sum = sum(statistics.median(figures[k]) for k in ("ip netns add", "CNI bridge ADD", "runc run -d"))
        pod = statistics.median(steps["pod"])
        print(f"  floor (netns + CNI ADD + runc run) {ms(floor_sum):6.1f}")
        print(f"  ratio RuncRuntime pod / floor      {pod / floor_sum:6.2f}")
        if args.burst:
            times, cpu = floor.burst(args.burst, args.workers)
            print(f"burst floor: {args.burst} raw pods at once ({args.workers} workers): up at p50 "
                  f"{ms(percentile(times, 50)):.0f} ms, p99 {ms(percentile(times, 99)):.0f} ms, "
                  f"last up at {ms(max(times)):.0f} ms; {ms(cpu / args.burst):.0f} ms of CPU per pod ({os.cpu_count()} cores)")
    finally:
        async def remove_all() -> None:
            for sandbox in await rt.list_pod_sandboxes():
                with contextlib.suppress(Exception):
                    await rt.remove_pod_sandbox(sandbox.id)
        asyncio.run(remove_all())
        for name in (bridge, bridge + "f"):
            subprocess.run(["ip", "link", "del", name], capture_output=True)
        rt.cgroups.remove(cgroup_root)
        with open("/proc/self/mountinfo") as mountinfo:
            stray = [line.split()[4] for line in mountinfo if str(work) in line.split()[4]]
        for target in sorted(stray, key=len, reverse=True):
            kernel.umount(target)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
