"""A whole cluster with a real node for the end-to-end tests that run pods: ``pybernetes up``
with the runc runtime, and the test image (busybox-static as an OCI image) pushed to Debian's
docker-registry on 127.0.0.1, from where the node pulls it.

``node_cluster(name, pod_cidr, bridge, extra)`` is a context manager yielding ``(cluster,
image)``; afterwards every pod is deleted, the cluster stopped and whatever a failed run left
(sandboxes with their containers, namespaces, mounts and cgroups; the bridge; the node's
nftables tables) removed.  ``missing()`` says why this machine cannot run them ("" if it can).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

from e2e_cluster import Cluster, poll

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "support"))
import busybox_image  # noqa: E402
from registry import DockerRegistry  # noqa: E402

KUBECTL = "/usr/lib/google-cloud-sdk/bin/kubectl.1.32"
NEEDS = ("runc", "conmon", "docker-registry", "skopeo", "ip", "nft")


def missing() -> str:
    if os.geteuid() != 0:
        return "needs root (runc, network namespaces, mounts)"
    for binary in NEEDS:
        if shutil.which(binary) is None:
            return f"{binary} is not installed (make test installs it)"
    if not Path("/usr/lib/cni/bridge").exists():
        return "the CNI plugins are not installed (containernetworking-plugins)"
    if not busybox_image.available():
        return "busybox-static is not installed"
    if not Path(KUBECTL).exists():
        return f"{KUBECTL} is missing"
    return ""


def node_tables(bridge: str) -> list[str]:
    """The nftables tables (``ip`` family) a node on ``bridge`` programs."""
    return [f"pybernetes-masq-{bridge}", f"pybernetes-proxy-{bridge}", f"pybernetes-netpol-{bridge}"]


def node_ready(cluster: Cluster) -> bool:
    nodes = cluster.get("nodes")["items"]
    return any(c["type"] == "Ready" and c["status"] == "True"
               for n in nodes for c in (n.get("status") or {}).get("conditions", []))


@contextlib.contextmanager
def node_cluster(name: str, pod_cidr: str, bridge: str, extra: tuple[str, ...] = ()) -> Iterator[tuple[Cluster, str]]:
    subprocess.run(["ip", "link", "del", bridge], capture_output=True, check=False)  # a killed run's
    root = Path(tempfile.mkdtemp(prefix="pyb-e2e-node-"))
    registry = DockerRegistry(root / "registry")
    registry.start()
    from e2e_cluster import free_port

    cluster = Cluster(root, KUBECTL, command="up", extra=(
        "--runtime", "runc", "--node-name", name, "--node-ip", "127.0.0.1", "--kubelet-port", str(free_port()),
        "--pod-cidr", pod_cidr, "--cni-bridge", bridge, "--proxy-cluster-cidr", pod_cidr,
        # the node's proxy and DNS serve their metrics on free ports: a cluster the developer
        # runs keeps the default ones
        "--proxy-metrics-port", str(free_port()), "--proxy-healthz-port", str(free_port()),
        "--dns-metrics-port", str(free_port()), *extra))
    try:
        layout = root / "busybox-layout"
        busybox_image.build_layout(layout, "busybox:1")
        registry.push(layout, "1", "busybox:1")
        cluster.start()
        poll(lambda: node_ready(cluster), "the node Ready", timeout=60)
        yield cluster, f"{registry.host}/busybox:1"
    finally:
        try:
            if cluster.process is not None and cluster.process.poll() is None:
                cluster.kubectl("delete", "deployments,statefulsets,pods,pvc", "--all", "--all-namespaces",
                                "--wait=false", check=False)
                poll(lambda: not cluster.get("pods", "--all-namespaces")["items"], "every pod gone", timeout=90)
        finally:
            cluster.stop()
            remove_leftovers(cluster.data_dir, pod_cidr, bridge)
            registry.stop()
            shutil.rmtree(root, ignore_errors=True)


def remove_leftovers(data_dir: Path, pod_cidr: str, bridge: str) -> None:
    """Whatever a failed run left: the runtime's sandboxes (and their containers, namespaces,
    CNI allocations, mounts, cgroups), the bridge and the node's tables."""
    from pybernetes.kubelet import runtimes

    async def clean() -> None:
        runtime = runtimes.build("runc", data_dir, pod_cidr=pod_cidr, bridge=bridge)
        for sandbox in await runtime.list_pod_sandboxes():
            await runtime.remove_pod_sandbox(sandbox.id)

    if (data_dir / "agent" / "runc").exists():
        asyncio.run(clean())
    subprocess.run(["ip", "link", "del", bridge], capture_output=True, check=False)
    for table in node_tables(bridge):
        subprocess.run(["nft", "delete", "table", "ip", table], capture_output=True, check=False)


def apply(cluster: Cluster, manifest: str) -> None:
    cluster.kubectl("apply", "-f", "-", input=manifest)


def is_ready(obj: dict) -> bool:
    return any(c["type"] == "Ready" and c["status"] == "True" for c in obj.get("status", {}).get("conditions", []))


def phase_is(cluster: Cluster, name: str, *phases: str, namespace: str = "default"):
    def check():
        found = cluster.get("pod", name, "-n", namespace)
        return found if found.get("status", {}).get("phase") in phases else None
    return check
