"""The cluster's objects as the DNS index keeps them, and the name and address helpers.

Pure: ``parse_service`` and ``parse_slice`` turn wire-shaped Services and EndpointSlices
into small frozen records (normalised addresses, lower-case port names and protocols,
readiness with "unknown" counted as ready, FQDN slices ignored; malformed fields are
skipped, never raised on); ``dashed``, ``pod_ip`` and the reverse-name helpers
(``reverse_name``, ``ip_of_reverse``, ``reverse_zone``) map between addresses and labels.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Any

Obj = dict[str, Any]
SERVICE_NAME_LABEL = "kubernetes.io/service-name"


@dataclass(frozen=True, slots=True)
class Port:
    name: str
    protocol: str
    port: int


@dataclass(frozen=True, slots=True)
class Service:
    namespace: str
    name: str
    type: str
    cluster_ips: tuple[str, ...]  # normalised addresses; empty for headless / ExternalName
    headless: bool
    external_name: str  # lower case, no trailing dot
    ports: tuple[Port, ...]
    publish_not_ready: bool


@dataclass(frozen=True, slots=True)
class Slice:
    service: tuple[str, str] | None
    endpoints: tuple[tuple[tuple[str, ...], bool, str], ...]  # (addresses, ready, hostname)
    ports: tuple[Port, ...]


@dataclass(slots=True)
class Endpoint:
    ip: str
    label: str  # hostname, else the address with dashes
    ports: list[Port]


def norm_ip(text: Any) -> str | None:
    try:
        return ipaddress.ip_address(str(text)).compressed
    except ValueError:
        return None


def is_v6(ip: str) -> bool:
    return ":" in ip


def dashed(ip: str) -> str:
    return ip.replace(".", "-") if "." in ip else ip.replace(":", "-")


def _ports(raw: Any) -> tuple[Port, ...]:
    out = []
    for p in raw if isinstance(raw, list) else ():
        if isinstance(p, dict) and isinstance(p.get("port"), int):
            out.append(Port(str(p.get("name") or "").lower(), str(p.get("protocol") or "TCP").lower(),
                            p["port"]))
    return tuple(out)


def parse_service(obj: Obj) -> Service:
    meta, spec = obj.get("metadata") or {}, obj.get("spec") or {}
    raw_ips = spec.get("clusterIPs") or ([spec["clusterIP"]] if spec.get("clusterIP") else [])
    headless = spec.get("clusterIP") == "None" or raw_ips[:1] == ["None"]
    ips = () if headless else tuple(ip for ip in (norm_ip(x) for x in raw_ips) if ip)
    return Service(str(meta.get("namespace") or ""), str(meta.get("name") or ""),
                   str(spec.get("type") or "ClusterIP"), ips, headless,
                   str(spec.get("externalName") or "").rstrip(".").lower(), _ports(spec.get("ports")),
                   bool(spec.get("publishNotReadyAddresses")))


def parse_slice(obj: Obj) -> Slice:
    meta = obj.get("metadata") or {}
    svc = (meta.get("labels") or {}).get(SERVICE_NAME_LABEL)
    service = (str(meta.get("namespace") or ""), str(svc)) if svc else None
    endpoints = []
    if obj.get("addressType") in ("IPv4", "IPv6"):
        for ep in obj.get("endpoints") or ():
            if not isinstance(ep, dict):
                continue
            addrs = tuple(ip for ip in (norm_ip(a) for a in ep.get("addresses") or ()) if ip)
            ready = (ep.get("conditions") or {}).get("ready")
            endpoints.append((addrs, ready is None or bool(ready), str(ep.get("hostname") or "").lower()))
    return Slice(service, tuple(endpoints), _ports(obj.get("ports")))


def reverse_name(ip: str) -> str:
    """The in-addr.arpa / ip6.arpa name (no trailing dot) of an address."""
    return ipaddress.ip_address(ip).reverse_pointer


def ip_of_reverse(name: str) -> str | None:
    """The address a complete reverse name stands for (None for anything else)."""
    if name.endswith(".in-addr.arpa"):
        parts = name[: -len(".in-addr.arpa")].split(".")
        if len(parts) != 4:
            return None
        return norm_ip(".".join(reversed(parts)))
    if name.endswith(".ip6.arpa"):
        nibbles = name[: -len(".ip6.arpa")].split(".")
        if len(nibbles) != 32 or any(len(n) != 1 for n in nibbles):
            return None
        text = "".join(reversed(nibbles))
        return norm_ip(":".join(text[i:i + 4] for i in range(0, 32, 4)))
    return None


def reverse_zone(cidr: str) -> tuple[str, ipaddress.IPv4Network | ipaddress.IPv6Network]:
    """The reverse zone (octet/nibble aligned, rounding the prefix down) of a CIDR."""
    net = ipaddress.ip_network(cidr, strict=False)
    if net.version == 4:
        octets = net.network_address.exploded.split(".")[: net.prefixlen // 8]
        return ".".join([*reversed(octets), "in-addr.arpa"]), net
    nibbles = net.network_address.exploded.replace(":", "")[: net.prefixlen // 4]
    return ".".join([*reversed(nibbles), "ip6.arpa"]), net


def port_match(p: Port, port: str | None, proto: str | None) -> bool:
    return (port is None or p.name == port) and (proto is None or p.protocol == proto)


def pod_ip(label: str) -> str | None:
    """The address of a dashed pod label (a-b-c-d, or IPv6 with dashes for colons)."""
    if label.count("-") == 3 and "--" not in label:
        text = label.replace("-", ".")
        try:
            return str(ipaddress.IPv4Address(text))
        except ValueError:
            return None
    try:
        return ipaddress.IPv6Address(label.replace("-", ":")).compressed
    except ValueError:
        return None
