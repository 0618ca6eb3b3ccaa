"""What the service proxy programs, in its own terms (pure): service ports and their endpoints.

Owns the reading of Services and EndpointSlices (wire dicts) as upstream kube-proxy v1.32 reads
them, IPv4 only:

- ``parse_service`` turns a Service into one ``ServicePort`` per valid port: its ClusterIP, node
  port (NodePort and LoadBalancer types), externalIPs, LoadBalancer ingress IPs (type
  LoadBalancer, ``ipMode`` VIP or unset), protocol, ClientIP session affinity (timeout default
  10800 s), traffic policies and, for type LoadBalancer, ``loadBalancerSourceRanges`` (merged
  address ranges; entries that are no IPv4 CIDR are skipped, an invalid one named in the
  problems).  Headless and ExternalName Services, Services without an IPv4
  ClusterIP and those labelled for another proxy (``service.kubernetes.io/service-proxy-name``)
  give none; a port with a bad number or protocol is skipped and named in the problems.
- ``parse_slice`` keeps what the proxy needs of an EndpointSlice (IPv4 only; ports by name and
  protocol; each endpoint's first address, node and ready/serving/terminating conditions, unset
  ready and serving meaning true).
- ``merge_endpoints`` merges the slices of one Service for one port, deduplicated by ip:port
  (a local endpoint, then a ready one, wins), sorted.
- ``categorize`` picks the endpoints traffic may use, as upstream's CategorizeEndpoints: ready
  ones, or, when none is ready, serving-and-terminating ones; for Local traffic policies only
  this node's (endpoint.nodeName == node name).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from pybernetes.machinery.validation_net import parse_cidr_sloppy

Obj = dict[str, Any]
Range = tuple[int, int]  # first and last address, as integers

PROTOCOLS = {"TCP": "tcp", "UDP": "udp", "SCTP": "sctp"}
DEFAULT_AFFINITY_TIMEOUT = 10800
MAX_AFFINITY_TIMEOUT = 86400
SERVICE_NAME_LABEL = "kubernetes.io/service-name"
PROXY_NAME_LABEL = "service.kubernetes.io/service-proxy-name"


@dataclass(frozen=True, slots=True, order=True)
class PortName:
    """One port of one Service (upstream's ServicePortName): namespace, Service name, the
    port's name ("" for an unnamed port) and protocol (lower case)."""

    namespace: str
    service: str
    port: str
    protocol: str

    @property
    def service_key(self) -> str:
        return f"{self.namespace}/{self.service}"

    def __str__(self) -> str:
        return f"{self.namespace}/{self.service}:{self.port}/{self.protocol}"


@dataclass(frozen=True, slots=True)
class Endpoint:
    ip: str
    port: int
    node_name: str = ""
    ready: bool = True
    serving: bool = True
    terminating: bool = False

    @property
    def address(self) -> str:
        return f"{self.ip}:{self.port}"


@dataclass(frozen=True, slots=True)
class ServicePort:
    name: PortName
    cluster_ip: str  # "" when this port has no ClusterIP frontend (lost to an older Service)
    port: int
    node_port: int = 0
    external_ips: tuple[str, ...] = ()
    lb_ips: tuple[str, ...] = ()
    affinity_timeout: int = 0  # seconds of ClientIP affinity; 0: none
    internal_local: bool = False  # internalTrafficPolicy Local
    external_local: bool = False  # externalTrafficPolicy Local (externally reachable Services)
    created: str = ""  # the Service's creationTimestamp (older wins a colliding address)
    source_ranges: tuple[Range, ...] = ()  # loadBalancerSourceRanges, merged; (): any source

    @property
    def protocol(self) -> str:
        return self.name.protocol

    @property
    def externally_accessible(self) -> bool:
        return bool(self.node_port or self.external_ips or self.lb_ips)

    @property
    def uses_cluster_endpoints(self) -> bool:
        # external traffic with a Local policy still short-circuits pod and node traffic to
        # the cluster-wide endpoints, so every externally reachable port needs them
        return not self.internal_local or self.externally_accessible

    @property
    def uses_local_endpoints(self) -> bool:
        return self.internal_local or (self.externally_accessible and self.external_local)


@dataclass(frozen=True, slots=True)
class PortView:
    """A service port with every endpoint its slices list (merged, deduplicated, sorted)."""

    service: ServicePort
    endpoints: tuple[Endpoint, ...] = ()

    @property
    def name(self) -> PortName:
        return self.service.name


@dataclass(frozen=True, slots=True)
class SliceInfo:
    """What the proxy keeps of one EndpointSlice."""

    ports: tuple[tuple[str, str, int], ...]  # (name, protocol, port)
    endpoints: tuple[tuple[str, str, bool, bool, bool], ...]  # (ip, node, ready, serving, terminating)


@dataclass(frozen=True, slots=True)
class Categorized:
    cluster: tuple[Endpoint, ...]  # for Cluster traffic policy
    local: tuple[Endpoint, ...]  # for Local traffic policy (this node's)
    reachable: tuple[Endpoint, ...]  # union of both: the endpoints this node may DNAT to
    has_any: bool  # some endpoint anywhere is usable (else: reject)


def _ipv4(value: Any) -> str | None:
    if not isinstance(value, str):
        return None
    try:
        return str(ipaddress.IPv4Address(value))
    except ValueError:
        return None


def _port_number(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 65535:
        return 0
    return value


def ip_key(ip: str) -> int:
    return int(ipaddress.IPv4Address(ip))


def _dedupe(values: list[str], exclude: set[str]) -> tuple[str, ...]:
    out: list[str] = []
    for value in values:
        if value not in exclude and value not in out:
            out.append(value)
    return tuple(out)


def merge_ranges(ranges: Iterable[Range]) -> tuple[Range, ...]:
    """Sorted, disjoint, non-adjacent ranges covering the same values (addresses, ports)."""
    out: list[Range] = []
    for start, end in sorted(ranges):
        if out and start <= out[-1][1] + 1:
            if end > out[-1][1]:
                out[-1] = (out[-1][0], end)
        else:
            out.append((start, end))
    return tuple(out)


def _source_ranges(values: Any, problems: list[str]) -> tuple[Range, ...]:
    ranges: list[Range] = []
    for raw in values if isinstance(values, list) else []:
        network = parse_cidr_sloppy(raw.strip()) if isinstance(raw, str) else None
        if network is None:
            problems.append(f"loadBalancerSourceRanges entry {raw!r} is not a CIDR")
        elif network.version == 4:
            ranges.append((int(network.network_address), int(network.broadcast_address)))
    return merge_ranges(ranges)


def service_key(obj: Obj) -> str:
    meta = obj.get("metadata") or {}
    return f"{meta.get('namespace') or ''}/{meta.get('name') or ''}"


def parse_service(obj: Obj) -> tuple[tuple[ServicePort, ...], list[str]]:
    """The service ports the proxy programs for a Service, and what was skipped (problems)."""
    meta = obj.get("metadata") or {}
    spec = obj.get("spec") or {}
    if not isinstance(spec, dict) or not isinstance(meta, dict):
        return (), ["the Service has no spec"]
    labels = meta.get("labels") or {}
    if isinstance(labels, dict) and PROXY_NAME_LABEL in labels:
        return (), []
    kind = spec.get("type") or "ClusterIP"
    if kind == "ExternalName":
        return (), []
    candidates = spec.get("clusterIPs") or [spec.get("clusterIP")]
    if not isinstance(candidates, list) or "None" in candidates or spec.get("clusterIP") == "None":
        return (), []  # headless (or malformed): no virtual IP to program
    cluster_ip = next((ip for ip in map(_ipv4, candidates) if ip), None)
    if cluster_ip is None:
        return (), []  # IPv6-only or not allocated yet
    problems: list[str] = []
    external_ips: list[str] = []
    for raw in spec.get("externalIPs") or []:
        ip = _ipv4(raw)
        if ip:
            external_ips.append(ip)
        elif isinstance(raw, str) and ":" not in raw:
            problems.append(f"externalIP {raw!r} is not an IPv4 address")
    lb_ips: list[str] = []
    if kind == "LoadBalancer":
        status = obj.get("status") or {}
        ingress = ((status.get("loadBalancer") or {}) if isinstance(status, dict) else {}).get("ingress") or []
        for item in ingress if isinstance(ingress, list) else []:
            if isinstance(item, dict) and item.get("ipMode") in (None, "VIP"):
                ip = _ipv4(item.get("ip"))
                if ip:
                    lb_ips.append(ip)
    externals = _dedupe(external_ips, {cluster_ip})
    lbs = _dedupe(lb_ips, {cluster_ip, *externals})
    affinity = 0
    if spec.get("sessionAffinity") == "ClientIP":
        config = ((spec.get("sessionAffinityConfig") or {}).get("clientIP") or {})
        timeout = config.get("timeoutSeconds") if isinstance(config, dict) else None
        affinity = timeout if (isinstance(timeout, int) and not isinstance(timeout, bool)
                               and 0 < timeout <= MAX_AFFINITY_TIMEOUT) else DEFAULT_AFFINITY_TIMEOUT
    reachable_kind = kind in ("NodePort", "LoadBalancer") or bool(externals)
    internal_local = spec.get("internalTrafficPolicy") == "Local"
    external_local = reachable_kind and spec.get("externalTrafficPolicy") == "Local"
    source_ranges = _source_ranges(spec.get("loadBalancerSourceRanges"), problems) if kind == "LoadBalancer" else ()
    namespace, name = meta.get("namespace") or "", meta.get("name") or ""
    created = str(meta.get("creationTimestamp") or "")
    ports: list[ServicePort] = []
    seen: set[tuple[str, str]] = set()
    for i, port in enumerate(spec.get("ports") or []):
        if not isinstance(port, dict):
            problems.append(f"ports[{i}] is not an object")
            continue
        protocol = PROTOCOLS.get(port.get("protocol") or "TCP")
        number = _port_number(port.get("port"))
        port_name = port.get("name") or ""
        if protocol is None or not number or not isinstance(port_name, str):
            problems.append(f"ports[{i}] ({port.get('port')!r}/{port.get('protocol')!r}) is not a valid port")
            continue
        if (port_name, protocol) in seen:
            problems.append(f"ports[{i}] repeats the port name {port_name!r}")
            continue
        seen.add((port_name, protocol))
        node_port = _port_number(port.get("nodePort")) if kind in ("NodePort", "LoadBalancer") else 0
        ports.append(ServicePort(
            PortName(namespace, name, port_name, protocol), cluster_ip, number, node_port, externals, lbs,
            affinity, internal_local, external_local, created, source_ranges))
    return tuple(ports), problems


def parse_slice(obj: Obj) -> tuple[str, str, SliceInfo] | None:
    """(service key, slice name, info) of an EndpointSlice the proxy uses, or None (no
    service-name label, not IPv4)."""
    meta = obj.get("metadata") or {}
    labels = meta.get("labels") or {}
    service = labels.get(SERVICE_NAME_LABEL) if isinstance(labels, dict) else None
    if not service or not isinstance(service, str) or obj.get("addressType") not in (None, "IPv4"):
        return None
    ports: list[tuple[str, str, int]] = []
    for port in obj.get("ports") or []:
        if not isinstance(port, dict):
            continue
        protocol = PROTOCOLS.get(port.get("protocol") or "TCP")
        number = _port_number(port.get("port"))
        name = port.get("name")
        if protocol and number and isinstance(name, str | None):
            ports.append((name or "", protocol, number))
    endpoints: list[tuple[str, str, bool, bool, bool]] = []
    for endpoint in obj.get("endpoints") or []:
        if not isinstance(endpoint, dict):
            continue
        addresses = endpoint.get("addresses") or []
        ip = _ipv4(addresses[0]) if isinstance(addresses, list) and addresses else None
        if ip is None:
            continue
        conditions = endpoint.get("conditions") or {}
        ready = conditions.get("ready") is not False
        serving = conditions.get("serving") is not False
        terminating = conditions.get("terminating") is True
        node = endpoint.get("nodeName") if isinstance(endpoint.get("nodeName"), str) else ""
        endpoints.append((ip, node, ready, serving, terminating))
    endpoints.sort()
    return (f"{meta.get('namespace') or ''}/{service}", str(meta.get("name") or ""),
            SliceInfo(tuple(sorted(set(ports))), tuple(endpoints)))


def merge_endpoints(slices: dict[str, SliceInfo], port: str, protocol: str,
                    node_name: str) -> tuple[Endpoint, ...]:
    """The endpoints of one service port over all slices of its Service: one per ip:port (a
    local one wins, then a ready one, then the first slice by name), sorted by address."""
    best: dict[tuple[str, int], tuple[tuple[bool, bool, bool], Endpoint]] = {}
    for slice_name in sorted(slices):
        info = slices[slice_name]
        numbers = [number for name, proto, number in info.ports if name == port and proto == protocol]
        for number in numbers:
            for ip, node, ready, serving, terminating in info.endpoints:
                rank = (bool(node_name) and node == node_name, ready, serving)
                current = best.get((ip, number))
                if current is None or rank > current[0]:
                    best[(ip, number)] = (rank, Endpoint(ip, number, node, ready, serving, terminating))
    return tuple(best[key][1] for key in sorted(best, key=lambda k: (ip_key(k[0]), k[1])))


def categorize(view: PortView, node_name: str) -> Categorized:
    """The endpoints each traffic policy of the port uses (see the module doc)."""
    service = view.service
    endpoints = view.endpoints
    cluster: tuple[Endpoint, ...] = ()
    has_any = False
    if service.uses_cluster_endpoints:
        cluster = tuple(e for e in endpoints if e.ready)
        if not cluster:
            cluster = tuple(e for e in endpoints if e.serving and e.terminating)
        has_any = bool(cluster)
    if not service.uses_local_endpoints:
        return Categorized(cluster, (), cluster, has_any)
    mine = [e for e in endpoints if node_name and e.node_name == node_name]
    if any(e.ready or (e.serving and e.terminating) for e in endpoints):
        has_any = True
    local = tuple(e for e in mine if e.ready) or tuple(e for e in mine if e.serving and e.terminating)
    if not service.uses_cluster_endpoints:
        return Categorized((), local, local, has_any)
    union = {e.address: e for e in cluster}
    for e in local:
        union.setdefault(e.address, e)
    reachable = tuple(sorted(union.values(), key=lambda e: (ip_key(e.ip), e.port)))
    return Categorized(cluster, local, reachable, has_any)
