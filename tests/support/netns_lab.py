"""A node in a box for tests that need real packets: network namespaces wired like a node.

``NetnsLab(prefix)`` makes a "node" namespace holding a bridge with the pod CIDR's gateway
address, and ``add_pod(name)`` a namespace per pod whose ``eth0`` (a veth) is plugged into that
bridge, with the pod's address and a default route through the gateway — the same shape the CNI
bridge plugin gives real pods.  ``add_external(name)`` makes a host outside the node, linked to it
by a point-to-point veth (the node's "InternalIP" is ``lab.node_ip``).  nftables tables for the
node are programmed inside ``lab.node`` (``Nft(netns=lab.node)``), never on the host.

Everything is removed by ``close()`` (processes started through the lab, then the namespaces,
which takes their veths and the bridge with them), also after a failed test; ``sweep(prefix)``
removes what a killed run left.  Needs root and iproute2; busybox for servers and clients.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

BUSYBOX = "/bin/busybox"


def available() -> str | None:
    """Why the lab cannot run here (None: it can)."""
    if os.geteuid() != 0:
        return "needs root (network namespaces)"
    for binary in ("/usr/sbin/ip", "/usr/bin/ip", "/sbin/ip", "/bin/ip"):
        if os.path.exists(binary):
            break
    else:
        return "needs iproute2 (ip)"
    if not os.path.exists(BUSYBOX):
        return "needs busybox-static (/bin/busybox)"
    return None


def ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=30)
    if check and result.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)}: {result.stderr.strip()}")
    return result


def sweep(prefix: str) -> None:
    """Remove namespaces named ``<prefix>-*`` (what a killed run left behind)."""
    for line in ip("netns", "list", check=False).stdout.splitlines():
        name = line.split()[0] if line.split() else ""
        if name.startswith(prefix + "-"):
            _kill_netns_pids(name)
            ip("netns", "del", name, check=False)


def _kill_netns_pids(netns: str) -> None:
    pids = ip("netns", "pids", netns, check=False).stdout.split()
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, ValueError):
            os.kill(int(pid), signal.SIGKILL)


@dataclass
class Pod:
    name: str
    netns: str
    ip: str
    host_veth: str


class NetnsLab:
    def __init__(self, prefix: str, pod_cidr: str = "10.244.7.0/24") -> None:
        if len(prefix) > 8:
            raise ValueError("prefix must be at most 8 characters (interface names are short)")
        self.prefix = prefix
        self.network = ipaddress.ip_network(pod_cidr)
        hosts = self.network.hosts()
        self.gateway = str(next(hosts))
        self._free = hosts
        self.node = f"{prefix}-node"
        self.bridge = f"{prefix}br"
        self.node_ip = "172.31.254.1"  # the node's address towards external hosts
        self.pods: dict[str, Pod] = {}
        self.externals: dict[str, Pod] = {}
        self._processes: list[subprocess.Popen] = []
        self._dirs: list[tempfile.TemporaryDirectory] = []
        self._count = 0
        sweep(prefix)
        try:
            ip("netns", "add", self.node)
            self.exec(self.node, "ip", "link", "set", "lo", "up")
            ip("-n", self.node, "link", "add", self.bridge, "type", "bridge")
            ip("-n", self.node, "addr", "add", f"{self.gateway}/{self.network.prefixlen}", "dev", self.bridge)
            ip("-n", self.node, "link", "set", self.bridge, "up")
            for setting in ("net.ipv4.ip_forward=1", "net.bridge.bridge-nf-call-iptables=1"):
                self.exec(self.node, "sysctl", "-qw", setting, check=False)
        except BaseException:
            self.close()
            raise

    def exec(self, netns: str, *argv: str, check: bool = True, timeout: float = 30,
             input: str | None = None) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(["ip", "netns", "exec", netns, *argv], capture_output=True, text=True,
                                timeout=timeout, input=input)
        if check and result.returncode != 0:
            raise RuntimeError(f"in {netns}: {' '.join(argv)}: {result.stderr.strip() or result.stdout.strip()}")
        return result

    def _veth(self) -> str:
        self._count += 1
        return f"{self.prefix}v{self._count}"

    def add_pod(self, name: str) -> Pod:
        netns = f"{self.prefix}-{name}"
        address = str(next(self._free))
        veth = self._veth()
        ip("netns", "add", netns)
        self.pods[name] = pod = Pod(name, netns, address, veth)
        ip("-n", self.node, "link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", netns)
        ip("-n", self.node, "link", "set", veth, "master", self.bridge, "up")
        # as the CNI bridge plugin's hairpinMode: a pod reaching a Service that lands on itself
        ip("-n", self.node, "link", "set", veth, "type", "bridge_slave", "hairpin", "on")
        ip("-n", netns, "link", "set", "lo", "up")
        ip("-n", netns, "addr", "add", f"{address}/{self.network.prefixlen}", "dev", "eth0")
        ip("-n", netns, "link", "set", "eth0", "up")
        ip("-n", netns, "route", "add", "default", "via", self.gateway)
        return pod

    def add_external(self, name: str) -> Pod:
        """A host outside the node on a point-to-point link; its address is 172.31.254.2 (one
        external host per lab)."""
        if self.externals:
            raise ValueError("one external host per lab")
        netns = f"{self.prefix}-{name}"
        veth = self._veth()
        ip("netns", "add", netns)
        self.externals[name] = host = Pod(name, netns, "172.31.254.2", veth)
        ip("-n", self.node, "link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", netns)
        ip("-n", self.node, "addr", "add", f"{self.node_ip}/30", "dev", veth)
        ip("-n", self.node, "link", "set", veth, "up")
        ip("-n", netns, "link", "set", "lo", "up")
        ip("-n", netns, "addr", "add", f"{host.ip}/30", "dev", "eth0")
        ip("-n", netns, "link", "set", "eth0", "up")
        ip("-n", netns, "route", "add", "default", "via", self.node_ip)
        return host

    def spawn(self, netns: str, *argv: str) -> subprocess.Popen:
        """A background process in ``netns``, killed by ``close()``."""
        process = subprocess.Popen(["ip", "netns", "exec", netns, *argv], stdout=subprocess.DEVNULL,
                                   stderr=subprocess.DEVNULL, start_new_session=True)
        self._processes.append(process)
        return process

    def serve_http(self, netns: str, port: int = 80, body: str | None = None) -> subprocess.Popen:
        """busybox httpd in ``netns`` answering ``body`` (default: the namespace's name) on ``/``;
        returns once it accepts connections."""
        directory = tempfile.TemporaryDirectory(prefix="netns-lab-")
        self._dirs.append(directory)
        Path(directory.name, "index.html").write_text((body if body is not None else netns) + "\n")
        process = self.spawn(netns, BUSYBOX, "httpd", "-f", "-p", str(port), "-h", directory.name)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            probe = self.exec(netns, "ss", "-Hltn", f"sport = :{port}", check=False, timeout=5)
            if probe.stdout.strip():
                return process
            if process.poll() is not None:
                raise RuntimeError(f"httpd in {netns} exited with {process.returncode}")
            time.sleep(0.05)
        raise TimeoutError(f"httpd in {netns} did not listen on {port}")

    def http_get(self, netns: str, host: str, port: int = 80, timeout: float = 5) -> str | None:
        """The body ``host:port/`` answers from ``netns`` (stripped), or None if it does not answer."""
        try:
            result = self.exec(netns, BUSYBOX, "timeout", str(int(max(timeout, 1))), BUSYBOX, "wget", "-qO-",
                               f"http://{host}:{port}/", check=False, timeout=timeout + 5)
        except subprocess.TimeoutExpired:
            return None
        return result.stdout.strip() if result.returncode == 0 else None

    def close(self) -> None:
        for process in self._processes:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(5)
        self._processes.clear()
        for netns in [p.netns for p in self.externals.values()] + [p.netns for p in self.pods.values()] + [self.node]:
            _kill_netns_pids(netns)
            ip("netns", "del", netns, check=False)
        self.pods.clear()
        self.externals.clear()
        for directory in self._dirs:
            directory.cleanup()
        self._dirs.clear()

    def __enter__(self) -> NetnsLab:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
