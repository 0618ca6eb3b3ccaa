"""Building ``NodeInfo`` and ``PodEntry`` from wire objects (the cache uses these, and so do
the plugins' table tests)."""

from __future__ import annotations

from typing import Any

from pybernetes.scheduler.framework import NodeInfo, PodEntry
from pybernetes.scheduler.resources import PODS, host_ports, node_allocatable, non_zero_requests, pod_requests

Obj = dict[str, Any]


def pod_key(pod: Obj) -> str:
    meta = pod.get("metadata") or {}
    return f"{meta.get('namespace') or ''}/{meta.get('name') or ''}"


def pod_entry(pod: Obj) -> PodEntry:
    affinity = (pod.get("spec") or {}).get("affinity") or {}
    anti = affinity.get("podAntiAffinity") or {}
    has_affinity = bool(affinity.get("podAffinity") or anti)
    requests = pod_requests(pod)
    requests[PODS] = 1
    cpu, memory = non_zero_requests(pod)
    return PodEntry(pod, requests, cpu, memory, host_ports(pod), has_affinity,
                    bool(anti.get("requiredDuringSchedulingIgnoredDuringExecution")))


def node_info_of(node: Obj, pods: list[Obj] = ()) -> NodeInfo:  # type: ignore[assignment]
    """A NodeInfo of ``node`` with ``pods`` on it; images from status.images."""
    info = NodeInfo(node, (node.get("metadata") or {}).get("name") or "", node_allocatable(node))
    for image in (node.get("status") or {}).get("images") or ():
        size = int(image.get("sizeBytes") or 0)
        for name in image.get("names") or ():
            info.images[name] = size
    for pod in pods:
        info.add_entry(pod_key(pod), pod_entry(pod))
    return info
