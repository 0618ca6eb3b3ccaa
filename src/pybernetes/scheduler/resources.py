"""What a pod asks of a node, in integers (upstream's resource helpers for scheduling).

- ``pod_requests(pod)``: resource -> amount; cpu in millicores, memory and
  ephemeral-storage in bytes, extended resources as counts.  As upstream: the containers'
  requests summed, at least the largest init container's (restartable "sidecar" init
  containers count from their start onwards: they add to every later init container and
  to the containers), plus spec.overhead.  A limit without a request counts as the request.
- ``non_zero_requests(pod)``: (cpu, memory) with upstream's defaults (100m, 200Mi) for
  containers that request none — what scoring uses so empty pods still spread.
- ``node_allocatable(node)``: the node's status.allocatable in the same units (``pods``).
- ``host_ports(pod)``: the (hostIP, protocol, hostPort) triples the pod's containers claim.
"""

from __future__ import annotations

import math
from typing import Any

from pybernetes.machinery.quantity import parse_quantity

Obj = dict[str, Any]

CPU, MEMORY, EPHEMERAL, PODS = "cpu", "memory", "ephemeral-storage", "pods"
DEFAULT_MILLI_CPU = 100
DEFAULT_MEMORY = 200 * 1024 * 1024


def quantity(resource: str, text: Any) -> int:
    """A quantity as the scheduler counts it: millicores for cpu, else whole units (rounded up)."""
    try:
        value = parse_quantity(text)
    except (ValueError, TypeError):
        return 0
    if resource == CPU:
        return math.ceil(value * 1000)
    return math.ceil(value)


def _container_requests(container: Obj) -> dict[str, int]:
    res = container.get("resources") or {}
    requests = dict(res.get("requests") or {})
    for name, limit in (res.get("limits") or {}).items():
        requests.setdefault(name, limit)
    return {name: quantity(name, q) for name, q in requests.items()}


def _add(into: dict[str, int], other: dict[str, int]) -> None:
    for name, amount in other.items():
        into[name] = into.get(name, 0) + amount


def _max(into: dict[str, int], other: dict[str, int]) -> None:
    for name, amount in other.items():
        if amount > into.get(name, 0):
            into[name] = amount


def pod_requests(pod: Obj) -> dict[str, int]:
    spec = pod.get("spec") or {}
    total: dict[str, int] = {}
    for container in spec.get("containers") or ():
        _add(total, _container_requests(container))
    sidecars: dict[str, int] = {}
    init_peak: dict[str, int] = {}
    for container in spec.get("initContainers") or ():
        req = _container_requests(container)
        if container.get("restartPolicy") == "Always":
            _add(sidecars, req)
            _max(init_peak, sidecars)
        else:
            during = dict(sidecars)
            _add(during, req)
            _max(init_peak, during)
    _add(total, sidecars)
    _max(total, init_peak)
    for name, q in (spec.get("overhead") or {}).items():
        total[name] = total.get(name, 0) + quantity(name, q)
    return {k: v for k, v in total.items() if v}


def non_zero_requests(pod: Obj) -> tuple[int, int]:
    spec = pod.get("spec") or {}
    cpu = memory = 0
    for container in spec.get("containers") or ():
        req = _container_requests(container)
        cpu += req.get(CPU) or DEFAULT_MILLI_CPU
        memory += req.get(MEMORY) or DEFAULT_MEMORY
    for name, q in (spec.get("overhead") or {}).items():
        if name == CPU:
            cpu += quantity(CPU, q)
        elif name == MEMORY:
            memory += quantity(MEMORY, q)
    return cpu, memory


def node_allocatable(node: Obj) -> dict[str, int]:
    status = node.get("status") or {}
    alloc = status.get("allocatable") or status.get("capacity") or {}
    return {name: quantity(name, q) for name, q in alloc.items()}


def host_ports(pod: Obj) -> tuple[tuple[str, str, int], ...]:
    spec = pod.get("spec") or {}
    out = []
    for container in [*(spec.get("initContainers") or ()), *(spec.get("containers") or ())]:
        for port in container.get("ports") or ():
            host_port = port.get("hostPort")
            if host_port:
                out.append((port.get("hostIP") or "0.0.0.0", port.get("protocol") or "TCP", int(host_port)))
    return tuple(out)
