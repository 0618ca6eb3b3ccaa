"""What a pod asks of a node, in integers (upstream's resource helpers for scheduling:
component-helpers' PodRequests and the scheduler's resource-name classification).

- ``pod_requests(pod)``: resource -> amount; cpu in millicores, memory, ephemeral-storage and
  hugepages in bytes, extended resources as counts (zero amounts left out).  As upstream:
  the containers' requests summed; restartable ("sidecar", ``restartPolicy: Always``) init
  containers run alongside everything that starts after them, so each one adds to the
  containers and to every later init container; the pod needs at least the peak of its
  init phase (each regular init container plus the sidecars started before it); then
  ``spec.overhead`` is added.  Only ``resources.requests`` counts: the API server defaults a
  pod's missing requests from its limits (as upstream's pod defaulting does), so the
  scheduler does not.
- ``non_zero_requests(pod)``: (cpu, memory) computed the same way, except that a container
  (regular or init) with no cpu or no memory request counts upstream's defaults (100m,
  200Mi) for it — what scoring uses so that pods without requests still spread.  A request
  written as "0" stays zero, as upstream.
- ``node_allocatable(node)``: the node's status.allocatable in the same units (``pods`` as a
  count).  Like the API server's defaulting, a node without allocatable uses its capacity.
- ``host_ports(pod)``: the (hostIP, protocol, hostPort) triples the pod holds while it runs
  (containers and restartable init containers, as upstream's GetHostPorts).
- ``is_scalar_resource(name)`` / ``is_extended_resource(name)``: upstream's classification
  (extended: a domain-qualified name outside kubernetes.io/; scalar: extended, hugepages-*,
  attachable-volumes-* or kubernetes.io/-prefixed) — what NodeResourcesFit checks besides
  cpu, memory, ephemeral-storage and pods.

Sums are exact: quantities are added in nano-units and rounded up once at the end (cpu to
millicores, the rest to whole units), as upstream adds Quantities before MilliValue/Value.
"""

from __future__ import annotations

import re
from typing import Any

from pybernetes.machinery.quantity import parse_quantity

Obj = dict[str, Any]

CPU, MEMORY, EPHEMERAL, PODS = "cpu", "memory", "ephemeral-storage", "pods"
DEFAULT_MILLI_CPU = 100
DEFAULT_MEMORY = 200 * 1024 * 1024
NATIVE_PREFIX = "kubernetes.io/"
REQUESTS_PREFIX = "requests."
HUGEPAGES_PREFIX = "hugepages-"
ATTACHABLE_VOLUMES_PREFIX = "attachable-volumes-"

_NANO = 10**9
_DEFAULT_NANO = {CPU: DEFAULT_MILLI_CPU * 10**6, MEMORY: DEFAULT_MEMORY * _NANO}
_NANO_CACHE: dict[Any, int] = {}
_NANO_CACHE_MAX = 8192
# upstream IsQualifiedName: optional DNS-1123 subdomain prefix "/" and a name part of <= 63
_QUALIFIED_NAME = re.compile(r"^(?:[a-z0-9]([-a-z0-9]*[a-z0-9])?(?:\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
                             r"[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$")


def _nano(text: Any) -> int:
    """A quantity in nano-units (0 when it does not parse); memoised, quantities repeat."""
    try:
        return _NANO_CACHE[text]
    except (KeyError, TypeError):
        pass
    try:
        value = int(parse_quantity(text) * _NANO)  # parse_quantity rounds to 1n: exact
    except (ValueError, TypeError):
        value = 0
    try:
        if len(_NANO_CACHE) >= _NANO_CACHE_MAX:
            _NANO_CACHE.clear()
        _NANO_CACHE[text] = value
    except TypeError:
        pass
    return value


def _from_nano(resource: str, nano: int) -> int:
    """Nano-units to the scheduler's integer: millicores for cpu, else whole units, rounded up."""
    if resource == CPU:
        return -((-nano) // 10**6)
    return -((-nano) // _NANO)


def quantity(resource: str, text: Any) -> int:
    """A quantity as the scheduler counts it: millicores for cpu, else whole units (rounded up)."""
    return _from_nano(resource, _nano(text))


def _container_nano(container: Obj, defaults: bool) -> dict[str, int]:
    res = container.get("resources") or {}
    requests = res.get("requests") or {}
    out = {name: _nano(q) for name, q in requests.items()}
    if defaults:
        for name, amount in _DEFAULT_NANO.items():
            if name not in requests:
                out[name] = amount
    return out


def _add(into: dict[str, int], other: dict[str, int]) -> None:
    for name, amount in other.items():
        into[name] = into.get(name, 0) + amount


def _max(into: dict[str, int], other: dict[str, int]) -> None:
    for name, amount in other.items():
        if amount > into.get(name, 0):
            into[name] = amount


def _aggregate(spec: Obj, defaults: bool) -> dict[str, int]:
    """Upstream's PodRequests in nano-units (with or without the missing-request defaults)."""
    total: dict[str, int] = {}
    for container in spec.get("containers") or ():
        _add(total, _container_nano(container, defaults))
    sidecars: dict[str, int] = {}
    init_peak: dict[str, int] = {}
    for container in spec.get("initContainers") or ():
        req = _container_nano(container, defaults)
        if container.get("restartPolicy") == "Always":
            _add(total, req)  # a sidecar keeps running next to the containers
            _add(sidecars, req)
            _max(init_peak, sidecars)
        else:
            during = dict(req)
            _add(during, sidecars)
            _max(init_peak, during)
    _max(total, init_peak)
    for name, q in (spec.get("overhead") or {}).items():
        total[name] = total.get(name, 0) + _nano(q)
    return total


# Several plugins and the cache ask for the same pod's requests within a cycle (and for the
# assumed copy of the pod, which shares its containers): results are kept by the identity of
# the parts of the spec they come from — objects from informers are never modified — bounded.
_MEMO_SIZE = 4096
_requests_memo: dict[tuple[int, int, int], tuple[tuple[Any, Any, Any], dict[str, int]]] = {}
_non_zero_memo: dict[tuple[int, int, int], tuple[tuple[Any, Any, Any], tuple[int, int]]] = {}


def _parts(spec: Obj) -> tuple[Any, Any, Any]:
    return spec.get("containers"), spec.get("initContainers"), spec.get("overhead")


def _hit(memo: dict, parts: tuple[Any, Any, Any]) -> Any:
    hit = memo.get((id(parts[0]), id(parts[1]), id(parts[2])))
    if hit is not None and hit[0][0] is parts[0] and hit[0][1] is parts[1] and hit[0][2] is parts[2]:
        return hit[1]
    return None


def _keep(memo: dict, parts: tuple[Any, Any, Any], value: Any) -> None:
    if len(memo) >= _MEMO_SIZE:
        memo.clear()
    memo[(id(parts[0]), id(parts[1]), id(parts[2]))] = (parts, value)


def pod_requests(pod: Obj) -> dict[str, int]:
    """The pod's requests (a new dict the caller may change)."""
    spec = pod.get("spec") or {}
    parts = _parts(spec)
    out = _hit(_requests_memo, parts)
    if out is None:
        out = {}
        for name, nano in _aggregate(spec, False).items():
            amount = _from_nano(name, nano)
            if amount:
                out[name] = amount
        _keep(_requests_memo, parts, out)
    return dict(out)


def non_zero_requests(pod: Obj) -> tuple[int, int]:
    spec = pod.get("spec") or {}
    parts = _parts(spec)
    out = _hit(_non_zero_memo, parts)
    if out is None:
        total = _aggregate(spec, True)
        out = _from_nano(CPU, total.get(CPU, 0)), _from_nano(MEMORY, total.get(MEMORY, 0))
        _keep(_non_zero_memo, parts, out)
    return out


def node_allocatable(node: Obj) -> dict[str, int]:
    status = node.get("status") or {}
    alloc = status.get("allocatable") if "allocatable" in status else status.get("capacity")
    return {name: quantity(name, q) for name, q in (alloc or {}).items()}


def host_ports(pod: Obj) -> tuple[tuple[str, str, int], ...]:
    """Ports held while the pod runs (upstream's GetHostPorts): those of the containers and of
    the restartable init containers with hostPort > 0; empty hostIP 0.0.0.0, protocol TCP."""
    spec = pod.get("spec") or {}
    containers = [c for c in spec.get("initContainers") or () if c.get("restartPolicy") == "Always"]
    containers.extend(spec.get("containers") or ())
    out = []
    for container in containers:
        for port in container.get("ports") or ():
            try:
                host_port = int(port.get("hostPort") or 0)
            except (TypeError, ValueError):
                continue
            if host_port > 0:
                out.append((port.get("hostIP") or "0.0.0.0", port.get("protocol") or "TCP", host_port))
    return tuple(out)


# -- resource names ---------------------------------------------------------------------------


def is_prefixed_native_resource(name: str) -> bool:
    return NATIVE_PREFIX in name


def is_native_resource(name: str) -> bool:
    return "/" not in name or NATIVE_PREFIX in name


def is_extended_resource(name: str) -> bool:
    """A domain-qualified name outside kubernetes.io/ (e.g. nvidia.com/gpu), as upstream."""
    if is_native_resource(name) or name.startswith(REQUESTS_PREFIX):
        return False
    return is_qualified_name(REQUESTS_PREFIX + name)


def is_qualified_name(value: str) -> bool:
    """Upstream's IsQualifiedName: [DNS subdomain prefix "/"] name of at most 63 characters."""
    prefix, _, short = value.rpartition("/")
    return len(short) <= 63 and len(prefix) <= 253 and bool(_QUALIFIED_NAME.match(value))


def is_scalar_resource(name: str) -> bool:
    """Extended, hugepages-*, attachable-volumes-* or kubernetes.io/-prefixed resources."""
    return (name.startswith(HUGEPAGES_PREFIX) or name.startswith(ATTACHABLE_VOLUMES_PREFIX)
            or NATIVE_PREFIX in name or is_extended_resource(name))
