"""What the runc runtime keeps on disk, so that a new RuncRuntime on the same root (a restarted
kubelet) finds the same sandboxes and containers: one JSON file per sandbox
(``sandboxes/<id>/sandbox.json``) and per container (``containers/<id>/container.json``), each
replaced atomically, plus the pure helpers for the files a sandbox gives its containers
(/etc/hosts, /etc/resolv.conf, /etc/hostname).

Records hold the CRI status (config included) and what the runtime needs to tear things down:
namespace paths, the CNI result for DEL, the PID-namespace holder, the container's cgroup and
its processes named by (pid, start time).
"""

from __future__ import annotations

import dataclasses
import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from pybernetes.kubelet.runtime.protocol import (
    ContainerConfig,
    ContainerState,
    ContainerStatus,
    DNSConfig,
    Mount,
    PodSandboxConfig,
    PodSandboxStatus,
    PortMapping,
    Resources,
    SandboxState,
    SecurityContext,
)


@dataclass(slots=True)
class SandboxRecord:
    status: PodSandboxStatus
    directory: Path
    netns: str = ""  # the network namespace file ("" for hostNetwork)
    namespaces: dict[str, str] = field(default_factory=dict)  # kind -> file (ipc, uts, net)
    cgroup_parent: str = ""
    owns_cgroup_parent: bool = False
    cni: dict[str, Any] | None = None  # {"conflist", "result", "args", "runtime_config"} until DEL
    pid_holder: list[int] = field(default_factory=list)  # [pid, start time] of the PID namespace's init
    containers: set[str] = field(default_factory=set)


@dataclass(slots=True)
class ContainerRecord:
    status: ContainerStatus
    bundle: Path
    cgroup: str = ""
    pid: int = 0
    pid_start: int = 0
    monitor_pid: int = 0
    monitor_start: int = 0
    shares_pid_namespace: bool = False


# -- (de)serialization ------------------------------------------------------------------------------

def _default(value: Any) -> Any:
    """What orjson cannot write by itself (it writes dataclasses and enums natively)."""
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, set | frozenset):
        return sorted(value)
    raise TypeError(f"cannot store {type(value).__name__}")


def _known(cls: type, data: dict[str, Any]) -> dict[str, Any]:
    names = {f.name for f in dataclasses.fields(cls)}
    return {k: v for k, v in data.items() if k in names}


def sandbox_config(data: dict[str, Any]) -> PodSandboxConfig:
    data = _known(PodSandboxConfig, data)
    dns = data.get("dns")
    data["dns"] = DNSConfig(**_known(DNSConfig, dns)) if dns is not None else None
    data["port_mappings"] = [PortMapping(**_known(PortMapping, p)) for p in data.get("port_mappings") or []]
    data["host_aliases"] = [(ip, list(names)) for ip, names in data.get("host_aliases") or []]
    return PodSandboxConfig(**data)


def container_config(data: dict[str, Any]) -> ContainerConfig:
    data = _known(ContainerConfig, data)
    data["env"] = [tuple(pair) for pair in data.get("env") or []]
    data["mounts"] = [Mount(**_known(Mount, m)) for m in data.get("mounts") or []]
    data["resources"] = Resources(**_known(Resources, data.get("resources") or {}))
    data["security"] = SecurityContext(**_known(SecurityContext, data.get("security") or {}))
    return ContainerConfig(**data)


def sandbox_from(data: dict[str, Any]) -> SandboxRecord:
    status = dict(data["status"])
    status["config"] = sandbox_config(status["config"])
    status["state"] = SandboxState(status["state"])
    return SandboxRecord(**{**_known(SandboxRecord, data), "status": PodSandboxStatus(**_known(PodSandboxStatus, status)),
                            "directory": Path(data["directory"]), "containers": set(data.get("containers") or [])})


def container_from(data: dict[str, Any]) -> ContainerRecord:
    status = dict(data["status"])
    status["config"] = container_config(status["config"])
    status["state"] = ContainerState(status["state"])
    return ContainerRecord(**{**_known(ContainerRecord, data),
                              "status": ContainerStatus(**_known(ContainerStatus, status)),
                              "bundle": Path(data["bundle"])})


def write_json(path: Path, record: Any) -> None:
    """Replace ``path`` atomically with the record as JSON."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(orjson.dumps(record, default=_default))
        os.replace(tmp, path)
    except BaseException:
        unlink_quietly(tmp)
        raise


def unlink_quietly(path: str | Path) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def load_all(directory: Path, name: str) -> list[dict[str, Any]]:
    """Every ``<directory>/<id>/<name>`` that parses (a half-created entry without one is
    returned as {"id": <id>, "incomplete": True} so it can be cleaned up)."""
    out: list[dict[str, Any]] = []
    if not directory.is_dir():
        return out
    for entry in sorted(directory.iterdir()):
        if not entry.is_dir():
            continue
        try:
            out.append(json.loads((entry / name).read_bytes()))
        except (OSError, ValueError):
            out.append({"id": entry.name, "incomplete": True, "directory": str(entry)})
    return out


# -- files a sandbox gives its containers ---------------------------------------------------------

def hosts_file(ip: str, hostname: str, fqdn: str = "",
               host_aliases: list[tuple[str, list[str]]] | None = None) -> str:
    """A pod's /etc/hosts as the kubelet writes it: the pod's own name (``fqdn`` first when the
    pod has a subdomain), then the pod's hostAliases."""
    lines = ["# Kubernetes-managed hosts file.", "127.0.0.1\tlocalhost", "::1\tlocalhost ip6-localhost ip6-loopback",
             "fe00::0\tip6-localnet", "fe00::0\tip6-mcastprefix", "fe00::1\tip6-allnodes", "fe00::2\tip6-allrouters"]
    if ip and hostname:
        lines.append(f"{ip}\t{fqdn}\t{hostname}" if fqdn else f"{ip}\t{hostname}")
    if host_aliases:
        lines += ["", "# Entries added by HostAliases."]
        lines += [f"{alias_ip}\t" + "\t".join(names) for alias_ip, names in host_aliases if names]
    return "\n".join(lines) + "\n"


def resolv_conf(dns: DNSConfig) -> str:
    lines = []
    if dns.searches:
        lines.append("search " + " ".join(dns.searches))
    lines.extend(f"nameserver {server}" for server in dns.servers)
    if dns.options:
        lines.append("options " + " ".join(dns.options))
    return "\n".join(lines) + "\n"
