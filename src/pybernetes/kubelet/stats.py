"""The kubelet's resource usage summary (upstream's ``/stats/summary``, stats/v1alpha1): the
node's CPU, memory and file system from the kernel, and per pod the usage of each container
and the pod's network, from the runtime (cgroups and the pod's network namespace with runc).
It is what a metrics pipeline reads; ``KubeletServer`` serves it at ``/stats/summary``.

``summary`` is pure over what it is given; ``collect`` reads the runtime and the host.
Figures follow upstream's names: ``usageCoreNanoSeconds`` (cumulative CPU time),
``usageNanoCores`` (the rate since the previous reading, when there was one), memory
``usageBytes`` / ``workingSetBytes`` / ``rssBytes``, ``rootfs.usedBytes``, network
``rxBytes`` / ``txBytes`` / ``rxErrors`` / ``txErrors``.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from pybernetes.kubelet.node_status import HostFigures
from pybernetes.kubelet.runtime.protocol import (
    ContainerState,
    ContainerStats,
    PodSandboxStats,
    Runtime,
    RuntimeError_,
)

Obj = dict[str, Any]


def _time(ns: int) -> str:
    return datetime.fromtimestamp(ns / 1e9, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def host_cpu_ns() -> int:
    """The CPU time all processors have spent busy since boot (from /proc/stat)."""
    with open("/proc/stat") as f:
        fields = [int(x) for x in f.readline().split()[1:]]
    busy = sum(fields) - fields[3] - (fields[4] if len(fields) > 4 else 0)  # less idle and iowait
    return busy * 1_000_000_000 // os.sysconf("SC_CLK_TCK")


def host_network() -> list[Obj]:
    """The host's own interfaces' counters (/proc/net/dev), without loopback and the pods'
    veth ends; the interface of the default route first (upstream's node network figures)."""
    default = ""
    try:
        with open("/proc/net/route") as f:
            for line in f.read().splitlines()[1:]:
                fields = line.split()
                if len(fields) > 2 and fields[1] == "00000000":
                    default = fields[0]
                    break
        with open("/proc/net/dev") as f:
            lines = f.read().splitlines()[2:]
    except OSError:
        return []
    out = []
    for line in lines:
        name, _, rest = line.partition(":")
        name = name.strip()
        if name == "lo" or name.startswith("veth"):
            continue
        v = [int(x) for x in rest.split()]
        out.append({"name": name, "rxBytes": v[0], "rxErrors": v[2], "txBytes": v[8], "txErrors": v[10]})
    out.sort(key=lambda i: i["name"] != default)
    return out


class Rates:
    """``usageNanoCores`` from two readings of a cumulative CPU time."""

    def __init__(self) -> None:
        self._last: dict[str, tuple[int, int]] = {}  # key -> (timestamp ns, cpu ns)

    def rate(self, key: str, timestamp: int, cpu_ns: int) -> int | None:
        previous = self._last.get(key)
        self._last[key] = (timestamp, cpu_ns)
        if previous is None or timestamp <= previous[0] or cpu_ns < previous[1]:
            return None
        return (cpu_ns - previous[1]) * 1_000_000_000 // (timestamp - previous[0])

    def keep(self, keys: set[str]) -> None:
        for key in [k for k in self._last if k not in keys]:
            del self._last[key]


def _cpu(rates: Rates, key: str, stats_time: int, cpu_ns: int) -> Obj:
    out: Obj = {"time": _time(stats_time), "usageCoreNanoSeconds": cpu_ns}
    rate = rates.rate(key, stats_time, cpu_ns)
    if rate is not None:
        out["usageNanoCores"] = rate
    return out


def summary(node_name: str, host: HostFigures, host_cpu: int, now_ns: int,
            pods: list[tuple[Obj, PodSandboxStats | None, list[tuple[str, int, ContainerStats]]]],
            rates: Rates, interfaces: list[Obj] | None = None) -> Obj:
    """``pods``: for each pod, its object, its sandbox's network figures and, per running
    container, (name, start time in ns, stats)."""
    node = {
        "nodeName": node_name, "startTime": None,
        "cpu": _cpu(rates, "node", now_ns, host_cpu),
        "memory": {"time": _time(now_ns), "availableBytes": host.memory_available,
                   "usageBytes": host.memory_total - host.memory_available,
                   "workingSetBytes": host.memory_total - host.memory_available},
        "fs": {"time": _time(now_ns), "availableBytes": host.disk_available, "capacityBytes": host.disk_total,
               "usedBytes": host.disk_total - host.disk_available},
    }
    if interfaces:
        node["network"] = {"time": _time(now_ns), **interfaces[0], "interfaces": interfaces}
    out_pods = []
    for pod, network, containers in pods:
        meta = pod.get("metadata") or {}
        uid = meta.get("uid", "")
        entries, pod_cpu, pod_mem, pod_ws, pod_rss = [], 0, 0, 0, 0
        for name, started, stats in containers:
            entries.append({
                "name": name, "startTime": _time(started),
                "cpu": _cpu(rates, f"{uid}/{name}", stats.timestamp, stats.cpu_usage_ns),
                "memory": {"time": _time(stats.timestamp), "usageBytes": stats.memory_usage_bytes,
                           "workingSetBytes": stats.memory_working_set_bytes, "rssBytes": stats.rss_bytes},
                "rootfs": {"time": _time(stats.timestamp), "usedBytes": stats.fs_used_bytes},
            })
            pod_cpu += stats.cpu_usage_ns
            pod_mem += stats.memory_usage_bytes
            pod_ws += stats.memory_working_set_bytes
            pod_rss += stats.rss_bytes
        entry: Obj = {"podRef": {"name": meta.get("name", ""), "namespace": meta.get("namespace", ""), "uid": uid},
                      "startTime": (pod.get("status") or {}).get("startTime"), "containers": entries,
                      "cpu": _cpu(rates, uid, now_ns, pod_cpu),
                      "memory": {"time": _time(now_ns), "usageBytes": pod_mem, "workingSetBytes": pod_ws,
                                 "rssBytes": pod_rss}}
        if network is not None:
            entry["network"] = {"time": _time(network.timestamp), "rxBytes": network.rx_bytes,
                                "txBytes": network.tx_bytes, "rxErrors": network.rx_errors,
                                "txErrors": network.tx_errors}
        out_pods.append(entry)
    return {"node": node, "pods": out_pods}


async def collect(runtime: Runtime, node_name: str, host: Callable[[], HostFigures],
                  pod_of: Callable[[str], Obj | None], rates: Rates) -> Obj:
    """Read the runtime's sandboxes and running containers and the host, then ``summary``."""
    pods = []
    for sandbox in await runtime.list_pod_sandboxes():
        pod = pod_of(sandbox.config.uid)
        if pod is None:
            continue
        network = None
        containers = []
        try:
            if not sandbox.config.host_network:
                network = await runtime.pod_sandbox_stats(sandbox.id)
            for status in await runtime.list_containers(sandbox.id):
                if status.state is ContainerState.RUNNING:
                    containers.append((status.config.name, status.started_at,
                                       await runtime.container_stats(status.id)))
        except RuntimeError_:
            continue  # gone while being read
        if containers or network is not None:
            pods.append((pod, network, containers))
    keys = {"node"} | {p[0]["metadata"]["uid"] for p in pods} | {
        f"{p[0]['metadata']['uid']}/{name}" for p in pods for name, _, _ in p[2]}
    rates.keep(keys)
    return summary(node_name, host(), host_cpu_ns(), time.time_ns(), pods, rates, host_network())
