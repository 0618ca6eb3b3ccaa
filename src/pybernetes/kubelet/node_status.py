"""What a node reports about itself (upstream's kubelet nodestatus setters), as pure functions
over figures read from the host: capacity and allocatable (cpu, memory, ephemeral-storage,
pods), addresses, nodeInfo, and the Ready / MemoryPressure / DiskPressure / PIDPressure
conditions, told truthfully from the host's figures against upstream's default hard
eviction thresholds (memory.available < 100Mi, nodefs.available < 10%, and — as the PID
pressure signal — fewer than 10 % of the PIDs left).

``HostFigures.read(data_dir)`` takes the figures from /proc and the data directory's file
system; everything else is computed from a ``HostFigures``, so it is tested without a host.
"""

from __future__ import annotations

import os
import platform
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Any

Obj = dict[str, Any]

KUBELET_VERSION = "v1.32.0-pybernetes"
MAX_PODS = 110
KUBELET_PORT = 10250  # upstream's default kubelet server port
MEMORY_EVICTION = 100 * 1024 * 1024  # memory.available < 100Mi
DISK_EVICTION = 0.10  # nodefs.available < 10%
PID_EVICTION = 0.10  # fewer than 10 % of the PIDs left


@dataclass(slots=True)
class HostFigures:
    cpus: int
    memory_total: int  # bytes
    memory_available: int
    disk_total: int  # bytes, the data directory's file system
    disk_available: int
    pids_max: int
    pids_used: int
    kernel: str = ""
    os_image: str = ""
    architecture: str = "amd64"
    machine_id: str = ""
    boot_id: str = ""
    hostname: str = ""
    address: str = "127.0.0.1"

    @classmethod
    def read(cls, data_dir: str | os.PathLike[str]) -> HostFigures:
        meminfo = _meminfo()
        stat = os.statvfs(data_dir)
        return cls(
            cpus=os.cpu_count() or 1,
            memory_total=meminfo.get("MemTotal", 0),
            memory_available=meminfo.get("MemAvailable", meminfo.get("MemFree", 0)),
            disk_total=stat.f_blocks * stat.f_frsize,
            disk_available=stat.f_bavail * stat.f_frsize,
            pids_max=_int_file("/proc/sys/kernel/pid_max", 32768),
            pids_used=sum(1 for name in os.listdir("/proc") if name.isdigit()),
            kernel=platform.release(),
            os_image=_os_image(),
            architecture={"x86_64": "amd64", "aarch64": "arm64"}.get(platform.machine(), platform.machine()),
            machine_id=_text_file("/etc/machine-id"),
            boot_id=_text_file("/proc/sys/kernel/random/boot_id"),
            hostname=socket.gethostname(),
            address=_address(),
        )


def _meminfo() -> dict[str, int]:
    out: dict[str, int] = {}
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                name, _, rest = line.partition(":")
                parts = rest.split()
                if parts:
                    out[name] = int(parts[0]) * (1024 if len(parts) > 1 and parts[1] == "kB" else 1)
    except OSError:
        pass
    return out


def _int_file(path: str, default: int) -> int:
    try:
        return int(Path(path).read_text().strip())
    except (OSError, ValueError):
        return default


def _text_file(path: str) -> str:
    try:
        return Path(path).read_text().strip()
    except OSError:
        return ""


def _os_image() -> str:
    for line in _text_file("/etc/os-release").splitlines():
        if line.startswith("PRETTY_NAME="):
            return line.split("=", 1)[1].strip().strip('"')
    return "Linux"


def _address() -> str:
    """The host's primary IPv4 address (the one a default route would use), else loopback."""
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.connect(("192.0.2.1", 9))  # TEST-NET-1: nothing is sent, only a route chosen
            return sock.getsockname()[0]
    except OSError:
        return "127.0.0.1"


def capacity(host: HostFigures) -> dict[str, str]:
    return {"cpu": str(host.cpus), "memory": f"{host.memory_total // 1024}Ki",
            "ephemeral-storage": f"{host.disk_total // 1024}Ki", "pods": str(MAX_PODS)}


def allocatable(host: HostFigures) -> dict[str, str]:
    """Capacity less the hard eviction thresholds (no system or kube reservations), as upstream."""
    return {"cpu": str(host.cpus),
            "memory": f"{max(0, host.memory_total - MEMORY_EVICTION) // 1024}Ki",
            "ephemeral-storage": f"{int(host.disk_total * (1 - DISK_EVICTION)) // 1024}Ki",
            "pods": str(MAX_PODS)}


def addresses(host: HostFigures, node_name: str) -> list[Obj]:
    return [{"type": "InternalIP", "address": host.address}, {"type": "Hostname", "address": node_name}]


def node_info(host: HostFigures, runtime: str, runtime_version: str) -> Obj:
    return {"machineID": host.machine_id, "systemUUID": host.machine_id, "bootID": host.boot_id,
            "kernelVersion": host.kernel, "osImage": host.os_image, "operatingSystem": "linux",
            "architecture": host.architecture, "containerRuntimeVersion": f"{runtime}://{runtime_version}",
            "kubeletVersion": KUBELET_VERSION, "kubeProxyVersion": ""}


def _condition(kind: str, true: bool, reason_true: str, reason_false: str, message_true: str,
               message_false: str, now: str, previous: Obj | None) -> Obj:
    status = "True" if true else "False"
    transition = previous["lastTransitionTime"] if previous and previous.get("status") == status else now
    return {"type": kind, "status": status, "reason": reason_true if true else reason_false,
            "message": message_true if true else message_false, "lastHeartbeatTime": now,
            "lastTransitionTime": transition}


def conditions(host: HostFigures, now: str, previous: list[Obj] | None = None, *,
               runtime_ready: bool = True) -> list[Obj]:
    """The four conditions, each keeping its lastTransitionTime while its status holds."""
    before = {c.get("type"): c for c in previous or ()}
    memory = host.memory_available < MEMORY_EVICTION
    disk = host.disk_total > 0 and host.disk_available < host.disk_total * DISK_EVICTION
    pids = host.pids_max > 0 and host.pids_max - host.pids_used < host.pids_max * PID_EVICTION
    return [
        _condition("MemoryPressure", memory, "KubeletHasInsufficientMemory", "KubeletHasSufficientMemory",
                   "kubelet has insufficient memory available", "kubelet has sufficient memory available",
                   now, before.get("MemoryPressure")),
        _condition("DiskPressure", disk, "KubeletHasDiskPressure", "KubeletHasNoDiskPressure",
                   "kubelet has disk pressure", "kubelet has no disk pressure", now, before.get("DiskPressure")),
        _condition("PIDPressure", pids, "KubeletHasInsufficientPID", "KubeletHasSufficientPID",
                   "kubelet has insufficient PID available", "kubelet has sufficient PID available",
                   now, before.get("PIDPressure")),
        _condition("Ready", runtime_ready, "KubeletReady", "KubeletNotReady", "kubelet is posting ready status",
                   "container runtime is down", now, before.get("Ready")),
    ]


def node_status(host: HostFigures, node_name: str, runtime: str, runtime_version: str, now: str,
                previous: list[Obj] | None = None, *, runtime_ready: bool = True,
                kubelet_port: int = KUBELET_PORT) -> Obj:
    """The whole status; ``kubelet_port`` is where the kubelet's server listens (the API
    server proxies pods/log there)."""
    return {"capacity": capacity(host), "allocatable": allocatable(host),
            "addresses": addresses(host, node_name), "nodeInfo": node_info(host, runtime, runtime_version),
            "conditions": conditions(host, now, previous, runtime_ready=runtime_ready),
            "daemonEndpoints": {"kubeletEndpoint": {"Port": kubelet_port}}}
