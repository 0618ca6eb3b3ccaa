"""Pure core of the built-in LoadBalancer controller (k3s's ServiceLB, without its svclb pods):
which Services it serves, the addresses their ``status.loadBalancer.ingress`` should hold, and
the address pool.

- Ownership: a Service of type LoadBalancer without ``spec.loadBalancerClass`` is ours (a
  class names another implementation).
- Pool mode (``parse_pool``, ``PoolAllocator``): the controller option ``service_lb_pool`` is
  a comma-separated list of CIDRs (``10.0.0.0/24``, ``fd00::/120``), ranges
  (``10.0.0.10-10.0.0.20``) and single addresses.  An IPv4 CIDR of /30 or wider leaves out its
  network and broadcast addresses; IPv6 CIDRs and /31, /32 give every address.  Each Service
  holds one address of its IP families: ``spec.loadBalancerIP`` when it lies in the pool and
  is free, else the address it holds, else the lowest free one.
- Node-address mode (``node_mode_addresses``): the ExternalIP addresses of ready, schedulable
  nodes not labelled ``node.kubernetes.io/exclude-from-external-load-balancers`` (a node's
  InternalIP where it has no ExternalIP of that family), only the Service's IP families; with
  ``externalTrafficPolicy: Local`` only nodes holding a ready endpoint of the Service.
- Port conflicts in node-address mode (``port_conflicts``): k3s's svclb pod claims the
  Service's ports as host ports on every node, so of two Services asking for one port and
  protocol the older (creationTimestamp, then namespace/name) keeps it and the newer gets none.

No I/O: wire-shaped dicts in, plain values out.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

Obj = dict[str, Any]

LOAD_BALANCER = "LoadBalancer"
EXCLUDE_LABEL = "node.kubernetes.io/exclude-from-external-load-balancers"
SERVICE_NAME_LABEL = "kubernetes.io/service-name"
IP_MODE = "VIP"
FAMILY_VERSION = {"IPv4": 4, "IPv6": 6}


def _d(value: Any) -> Obj:
    return value if isinstance(value, dict) else {}


def _parse_ip(text: Any) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    if not isinstance(text, str):
        return None
    try:
        return ipaddress.ip_address(text.strip())
    except ValueError:
        return None


def canonical_ip(text: Any) -> str | None:
    """The canonical text of an IP address (IPv6 compressed), None when it is not one."""
    ip = _parse_ip(text)
    return str(ip) if ip is not None else None


def ip_sort_key(text: str) -> tuple[int, int]:
    ip = ipaddress.ip_address(text)
    return ip.version, int(ip)


# -- services ------------------------------------------------------------------------------------


def is_load_balancer(service: Obj) -> bool:
    return _d(service.get("spec")).get("type") == LOAD_BALANCER


def is_ours(service: Obj) -> bool:
    """Type LoadBalancer without a loadBalancerClass (a class means another implementation)."""
    return is_load_balancer(service) and not _d(service.get("spec")).get("loadBalancerClass")


def service_versions(service: Obj) -> list[int]:
    """The IP versions of the Service's ``ipFamilies`` in order (IPv4 when none are given)."""
    versions = [FAMILY_VERSION[f] for f in _d(service.get("spec")).get("ipFamilies") or ()
                if f in FAMILY_VERSION]
    return list(dict.fromkeys(versions)) or [4]


def current_ingress(service: Obj) -> list[Obj]:
    ingress = _d(_d(_d(service.get("status")).get("loadBalancer"))).get("ingress")
    return [i for i in ingress if isinstance(i, dict)] if isinstance(ingress, list) else []


def ingress_of(ips: Iterable[str]) -> list[Obj]:
    """Upstream's shape for an IP load balancer: ``{"ip": X, "ipMode": "VIP"}``."""
    return [{"ip": ip, "ipMode": IP_MODE} for ip in ips]


def service_order(service: Obj) -> tuple[str, str, str]:
    """Age order: creationTimestamp, then namespace/name."""
    meta = _d(service.get("metadata"))
    return str(meta.get("creationTimestamp") or ""), str(meta.get("namespace") or ""), str(meta.get("name") or "")


def service_key(service: Obj) -> str:
    meta = _d(service.get("metadata"))
    return f"{meta.get('namespace') or ''}/{meta.get('name') or ''}"


# -- the pool ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PoolRange:
    first: int
    last: int
    version: int

    def __str__(self) -> str:
        first = _address(self.first, self.version)
        return first if self.first == self.last else f"{first}-{_address(self.last, self.version)}"


def _address(value: int, version: int) -> str:
    return str(ipaddress.IPv4Address(value) if version == 4 else ipaddress.IPv6Address(value))


def _parse_entry(entry: str) -> PoolRange:
    def bad(why: str) -> ValueError:
        return ValueError(f"invalid service LB pool entry {entry!r}: {why}")

    if "/" in entry:
        try:
            net = ipaddress.ip_network(entry, strict=True)
        except ValueError as exc:
            raise bad(f"not a CIDR ({exc})") from None
        first, last = int(net.network_address), int(net.broadcast_address)
        if net.version == 4 and net.prefixlen <= 30:
            first, last = first + 1, last - 1  # no network or broadcast address
        return PoolRange(first, last, net.version)
    if "-" in entry:
        start_text, _, end_text = entry.partition("-")
        start, end = _parse_ip(start_text), _parse_ip(end_text)
        if start is None or end is None:
            raise bad("a range must be two IP addresses joined by '-' (e.g. 192.168.1.10-192.168.1.20)")
        if start.version != end.version:
            raise bad("a range's ends must be of one IP family")
        if int(start) > int(end):
            raise bad(f"the range's start {start} is after its end {end}")
        return PoolRange(int(start), int(end), start.version)
    ip = _parse_ip(entry)
    if ip is None:
        raise bad("expected a CIDR (10.0.0.0/24), a range (10.0.0.10-10.0.0.20) or an IP address")
    return PoolRange(int(ip), int(ip), ip.version)


class AddressPool:
    """The addresses a pool holds, as ranges per IP version (sorted, possibly overlapping)."""

    def __init__(self, ranges: Iterable[PoolRange] = ()) -> None:
        self.ranges = tuple(sorted(ranges, key=lambda r: (r.version, r.first, r.last)))

    def __bool__(self) -> bool:
        return bool(self.ranges)

    def __str__(self) -> str:
        return ",".join(str(r) for r in self.ranges)

    def versions(self) -> set[int]:
        return {r.version for r in self.ranges}

    def contains(self, ip: str) -> bool:
        parsed = _parse_ip(ip)
        if parsed is None:
            return False
        value = int(parsed)
        return any(r.version == parsed.version and r.first <= value <= r.last for r in self.ranges)

    def lowest_free(self, version: int, used: Iterable[str]) -> str | None:
        """The lowest address of ``version`` not in ``used``, None when all are taken."""
        taken = {int(ip) for ip in (_parse_ip(u) for u in used) if ip is not None and ip.version == version}
        for r in self.ranges:
            if r.version != version:
                continue
            candidate = r.first
            while candidate <= r.last and candidate in taken:
                candidate += 1
            if candidate <= r.last:
                return _address(candidate, version)
        return None


def parse_pool(spec: str | Sequence[str] | None) -> AddressPool:
    """The pool of the ``service_lb_pool`` option: comma-separated (or a list of) CIDRs,
    ``a-b`` ranges and addresses; empty or None is no pool.  Bad input raises ValueError
    naming the entry."""
    if spec is None:
        return AddressPool()
    if isinstance(spec, str):
        items = spec.split(",")
    elif isinstance(spec, Sequence):
        items = [str(s) for s in spec]
    else:
        raise ValueError(f"service LB pool must be a comma-separated string, not {type(spec).__name__}")
    return AddressPool(_parse_entry(item.strip()) for item in items if item.strip())


class PoolAllocator:
    """Which Service (key) holds which pool address; one address per Service."""

    def __init__(self, pool: AddressPool) -> None:
        self.pool = pool
        self.by_ip: dict[str, str] = {}
        self.by_key: dict[str, str] = {}

    def held(self, key: str) -> str | None:
        return self.by_key.get(key)

    def holder(self, ip: str) -> str | None:
        canon = canonical_ip(ip)
        return self.by_ip.get(canon) if canon else None

    def _assign(self, key: str, ip: str) -> str:
        self.release(key)
        self.by_ip[ip] = key
        self.by_key[key] = ip
        return ip

    def occupy(self, key: str, ip: str) -> bool:
        """Mark ``ip`` as ``key``'s (a restart reading statuses): False when it is outside the
        pool or another Service's."""
        canon = canonical_ip(ip)
        if canon is None or not self.pool.contains(canon) or self.by_ip.get(canon, key) != key:
            return False
        self._assign(key, canon)
        return True

    def release(self, key: str) -> str | None:
        ip = self.by_key.pop(key, None)
        if ip is not None:
            self.by_ip.pop(ip, None)
        return ip

    def ensure(self, key: str, requested: str | None, versions: Sequence[int]) -> str | None:
        """The address ``key`` should hold: ``requested`` (spec.loadBalancerIP) when it lies in
        the pool, is of the Service's versions and is free; else the one it holds; else the
        lowest free address of its first version that has one.  None when the pool is out of
        addresses (the Service then holds none)."""
        wanted = canonical_ip(requested) if requested else None
        if wanted is not None and ipaddress.ip_address(wanted).version in versions \
                and self.pool.contains(wanted) and self.by_ip.get(wanted, key) == key:
            return self._assign(key, wanted)
        held = self.by_key.get(key)
        if held is not None and ipaddress.ip_address(held).version in versions and self.pool.contains(held):
            return held
        self.release(key)
        for version in versions:
            ip = self.pool.lowest_free(version, self.by_ip)
            if ip is not None:
                return self._assign(key, ip)
        return None

    def exhausted_message(self, key: str, versions: Sequence[int]) -> str:
        families = "/".join(f"IPv{v}" for v in versions)
        if not self.pool.versions() & set(versions):
            return f"Failed to allocate an IP for Service {key}: the pool {self.pool} has no {families} address"
        return f"Failed to allocate an IP for Service {key}: no free {families} address in the pool {self.pool}"


# -- nodes ---------------------------------------------------------------------------------------


def node_ready(node: Obj) -> bool:
    for cond in _d(node.get("status")).get("conditions") or ():
        if isinstance(cond, dict) and cond.get("type") == "Ready":
            return cond.get("status") == "True"
    return False


def node_eligible(node: Obj) -> bool:
    """Ready, schedulable, not being deleted, not excluded from external load balancers."""
    meta = _d(node.get("metadata"))
    return (node_ready(node) and not _d(node.get("spec")).get("unschedulable")
            and not meta.get("deletionTimestamp") and EXCLUDE_LABEL not in _d(meta.get("labels")))


def node_lb_addresses(node: Obj, versions: Sequence[int]) -> list[str]:
    """Per IP version: the node's ExternalIP addresses, its InternalIP ones when it has none."""
    by_type: dict[tuple[str, int], list[str]] = {}
    for addr in _d(node.get("status")).get("addresses") or ():
        if not isinstance(addr, dict) or addr.get("type") not in ("ExternalIP", "InternalIP"):
            continue
        ip = _parse_ip(addr.get("address"))
        if ip is not None:
            by_type.setdefault((addr["type"], ip.version), []).append(str(ip))
    out: list[str] = []
    for version in versions:
        out.extend(by_type.get(("ExternalIP", version)) or by_type.get(("InternalIP", version)) or ())
    return out


def node_signature(node: Obj) -> tuple[Any, ...]:
    """What of a node matters here (a heartbeat does not)."""
    return node_eligible(node), tuple(node_lb_addresses(node, (4, 6)))


def local_endpoint_nodes(slices: Iterable[Obj]) -> set[str]:
    """Nodes holding a ready endpoint in ``slices`` (a missing ``ready`` counts as ready)."""
    nodes: set[str] = set()
    for slice_ in slices:
        for ep in slice_.get("endpoints") or ():
            if not isinstance(ep, dict) or not ep.get("nodeName"):
                continue
            if _d(ep.get("conditions")).get("ready") is False:
                continue
            nodes.add(ep["nodeName"])
    return nodes


def node_mode_addresses(service: Obj, nodes: Iterable[Obj], slices: Iterable[Obj]) -> list[str]:
    """The ingress addresses of ``service`` without a pool: sorted, deduplicated."""
    versions = service_versions(service)
    local = _d(service.get("spec")).get("externalTrafficPolicy") == "Local"
    wanted = local_endpoint_nodes(slices) if local else None
    ips: set[str] = set()
    for node in nodes:
        if not node_eligible(node):
            continue
        if wanted is not None and _d(node.get("metadata")).get("name") not in wanted:
            continue
        ips.update(node_lb_addresses(node, versions))
    return sorted(ips, key=ip_sort_key)


# -- port conflicts ------------------------------------------------------------------------------


Claim = tuple[int, str, int]  # port, protocol, IP version


@dataclass(frozen=True)
class PortConflict:
    holder: str  # the older Service's key
    port: int
    protocol: str

    def message(self) -> str:
        return (f"port {self.port}/{self.protocol} is already used by the load balancer of "
                f"Service {self.holder}")


def port_claims(service: Obj) -> set[Claim]:
    claims: set[Claim] = set()
    versions = service_versions(service)
    for port in _d(service.get("spec")).get("ports") or ():
        if isinstance(port, dict) and isinstance(port.get("port"), int):
            for version in versions:
                claims.add((port["port"], str(port.get("protocol") or "TCP"), version))
    return claims


def port_conflicts(services: Iterable[Obj]) -> dict[str, PortConflict]:
    """Of the Services given (ours), those that get no ports because an older one holds one
    of theirs, keyed by namespace/name.  A Service that loses holds none of its ports (its
    svclb pod would stay Pending), so it blocks nobody."""
    claimed: dict[Claim, str] = {}
    blocked: dict[str, PortConflict] = {}
    for service in sorted(services, key=service_order):
        key = service_key(service)
        claims = port_claims(service)
        taken = sorted(c for c in claims if c in claimed)
        if taken:
            port, protocol, _ = taken[0]
            blocked[key] = PortConflict(claimed[taken[0]], port, protocol)
            continue
        for claim in claims:
            claimed[claim] = key
    return blocked


def shares_ports(a: Obj, b: Obj) -> bool:
    return bool(port_claims(a) & port_claims(b))
