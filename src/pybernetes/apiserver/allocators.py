"""Service ClusterIP and NodePort allocation (upstream's service REST allocators).

``ServiceAllocator`` hands out cluster IPs from the service CIDR (the first host address is
kept for the ``default/kubernetes`` Service, which asks for it by name) and node ports from
the node-port range, checks requested ones (422 with upstream's words), releases them when a
Service goes, and is rebuilt from the stored Services at start so that allocations survive a
restart.  Changes are made through a ``Reservation`` that the store commits when the write
succeeds or rolls back when it does not (or on dry-run), so failed requests leave nothing
allocated.  In-memory state only; one API server process owns it.
"""

from __future__ import annotations

import ipaddress
import random
from dataclasses import dataclass, field
from typing import Any

from pybernetes.machinery.errors import FieldError, invalid_value

Obj = dict[str, Any]

NODE_PORT_TYPES = ("NodePort", "LoadBalancer")


class _Pool:
    """A set of integers in [low, high] with random-probe then linear-scan allocation."""

    def __init__(self, low: int, high: int) -> None:
        self.low = low
        self.high = high
        self.used: set[int] = set()

    def contains(self, value: int) -> bool:
        return self.low <= value <= self.high

    def allocate_next(self) -> int | None:
        size = self.high - self.low + 1
        if len(self.used) >= size:
            return None
        for _ in range(16):
            value = random.randint(self.low, self.high)
            if value not in self.used:
                self.used.add(value)
                return value
        start = random.randint(self.low, self.high)
        for offset in range(size):
            value = self.low + (start - self.low + offset) % size
            if value not in self.used:
                self.used.add(value)
                return value
        return None


@dataclass(slots=True)
class Reservation:
    """Allocations made for one write, and releases to do once it is committed."""

    allocator: ServiceAllocator
    ips: list[int] = field(default_factory=list)
    ports: list[int] = field(default_factory=list)
    release_ips: list[int] = field(default_factory=list)
    release_ports: list[int] = field(default_factory=list)

    def commit(self) -> None:
        for ip in self.release_ips:
            self.allocator.ips.used.discard(ip)
        for port in self.release_ports:
            self.allocator.ports.used.discard(port)
        self.ips.clear()
        self.ports.clear()
        self.release_ips.clear()
        self.release_ports.clear()

    def rollback(self) -> None:
        for ip in self.ips:
            self.allocator.ips.used.discard(ip)
        for port in self.ports:
            self.allocator.ports.used.discard(port)
        self.ips.clear()
        self.ports.clear()
        self.release_ips.clear()
        self.release_ports.clear()


class ServiceAllocator:
    def __init__(self, service_cidr: str, node_port_range: tuple[int, int]) -> None:
        self.network = ipaddress.ip_network(service_cidr, strict=False)
        base = int(self.network.network_address)
        last = int(self.network.broadcast_address)
        # Usable addresses: not the network address, nor (IPv4) the broadcast address.
        high = last - 1 if self.network.version == 4 and self.network.num_addresses > 2 else last
        self.ips = _Pool(base + 1, high)
        self.ports = _Pool(node_port_range[0], node_port_range[1])

    # -- helpers ----------------------------------------------------------------------

    def first_ip(self) -> str:
        """The address of the ``default/kubernetes`` Service."""
        return str(ipaddress.ip_address(self.ips.low))

    def _range_text(self) -> str:
        return str(self.network)

    def _ports_text(self) -> str:
        return f"{self.ports.low}-{self.ports.high}"

    def _parse_ip(self, text: Any) -> int | None:
        try:
            addr = ipaddress.ip_address(str(text))
        except ValueError:
            return None
        if addr.version != self.network.version:
            return None
        return int(addr)

    # -- state from stored Services -----------------------------------------------------

    def rebuild(self, services: list[Obj]) -> None:
        self.ips.used.clear()
        self.ports.used.clear()
        for svc in services:
            self.mark_used(svc)

    def mark_used(self, svc: Obj) -> None:
        spec = svc.get("spec") or {}
        for ip in _cluster_ips(spec):
            value = self._parse_ip(ip)
            if value is not None and self.ips.contains(value):
                self.ips.used.add(value)
        for port in _node_ports(spec):
            if self.ports.contains(port):
                self.ports.used.add(port)

    # -- create / update / delete -------------------------------------------------------

    def allocate(self, new: Obj, old: Obj | None) -> tuple[Reservation, list[FieldError]]:
        """Fill in and reserve the cluster IP and node ports of ``new`` (mutated), keeping
        those of ``old`` on update.  Returns the reservation and any allocation errors (the
        reservation is already rolled back when there are errors)."""
        res = Reservation(self)
        errs: list[FieldError] = []
        spec = new.get("spec")
        if not isinstance(spec, dict):
            return res, errs
        old_spec = (old or {}).get("spec") or {}
        svc_type = spec.get("type") or "ClusterIP"
        self._allocate_ip(res, spec, old_spec, svc_type, errs)
        self._allocate_ports(res, spec, old_spec, svc_type, errs)
        if errs:
            res.rollback()
        return res, errs

    def release(self, svc: Obj) -> Reservation:
        """A reservation that, once committed, frees everything ``svc`` holds."""
        res = Reservation(self)
        spec = svc.get("spec") or {}
        for ip in _cluster_ips(spec):
            value = self._parse_ip(ip)
            if value is not None:
                res.release_ips.append(value)
        res.release_ports.extend(_node_ports(spec))
        return res

    def _allocate_ip(
        self, res: Reservation, spec: Obj, old_spec: Obj, svc_type: str, errs: list[FieldError]
    ) -> None:
        old_ips = _cluster_ips(old_spec)
        if svc_type == "ExternalName":
            for ip in old_ips:
                value = self._parse_ip(ip)
                if value is not None:
                    res.release_ips.append(value)
            return
        requested = spec.get("clusterIP") or ""
        ips = spec.get("clusterIPs")
        if not requested and isinstance(ips, list) and ips and isinstance(ips[0], str):
            requested = ips[0]
        if not requested and old_ips:
            requested = old_ips[0]  # an update that does not repeat the allocated IP keeps it
        if requested == "None":
            spec["clusterIP"] = "None"
            spec["clusterIPs"] = ["None"]
        elif requested:
            value = self._parse_ip(requested)
            if value is None:
                return  # not an IP of this family: validation reports it
            old_values = {self._parse_ip(ip) for ip in old_ips}
            if value not in old_values:
                if not self.ips.contains(value):
                    errs.append(
                        invalid_value(
                            "spec.clusterIPs",
                            [requested],
                            f"failed to allocate IP {requested}: the provided IP ({requested}) "
                            f"is not in the valid range. The range of valid IPs is "
                            f"{self._range_text()}",
                        )
                    )
                    return
                if value in self.ips.used:
                    errs.append(
                        invalid_value(
                            "spec.clusterIPs",
                            [requested],
                            f"failed to allocate IP {requested}: provided IP is already allocated",
                        )
                    )
                    return
                self.ips.used.add(value)
                res.ips.append(value)
            spec["clusterIP"] = requested
            spec["clusterIPs"] = [requested]
        else:
            value = self.ips.allocate_next()
            if value is None:
                errs.append(
                    FieldError(
                        "InternalError", "spec.clusterIPs", "failed to allocate a serviceIP: range is full"
                    )
                )
                return
            res.ips.append(value)
            text = str(ipaddress.ip_address(value))
            spec["clusterIP"] = text
            spec["clusterIPs"] = [text]
        for ip in old_ips:
            value = self._parse_ip(ip)
            if value is not None and ip not in spec["clusterIPs"]:
                res.release_ips.append(value)
        family = "IPv4" if self.network.version == 4 else "IPv6"
        if not spec.get("ipFamilies"):
            spec["ipFamilies"] = [family]
        if not spec.get("ipFamilyPolicy"):
            spec["ipFamilyPolicy"] = "SingleStack"

    def _allocate_ports(
        self, res: Reservation, spec: Obj, old_spec: Obj, svc_type: str, errs: list[FieldError]
    ) -> None:
        old_ports = set(_node_ports(old_spec))
        ports = spec.get("ports")
        wants_ports = svc_type in NODE_PORT_TYPES
        kept: set[int] = set()
        if isinstance(ports, list):
            old_list = [p for p in old_spec.get("ports") or () if isinstance(p, dict)]
            for index, port in enumerate(ports):
                if not isinstance(port, dict):
                    continue
                node_port = port.get("nodePort")
                if not wants_ports:
                    if node_port in old_ports:
                        port.pop("nodePort", None)  # type changed away from NodePort
                    continue
                if not node_port:
                    node_port = _matching_old_port(port, old_list)
                if node_port:
                    if isinstance(node_port, bool) or not isinstance(node_port, int):
                        continue  # validation reports the type
                    if node_port in old_ports or node_port in kept:
                        kept.add(node_port)
                        port["nodePort"] = node_port
                        continue
                    path = f"spec.ports[{index}].nodePort"
                    if not self.ports.contains(node_port):
                        errs.append(
                            invalid_value(
                                path,
                                node_port,
                                "provided port is not in the valid range. The range of valid "
                                f"ports is {self._ports_text()}",
                            )
                        )
                        continue
                    if node_port in self.ports.used:
                        errs.append(invalid_value(path, node_port, "provided port is already allocated"))
                        continue
                    self.ports.used.add(node_port)
                    res.ports.append(node_port)
                    kept.add(node_port)
                    continue
                value = self.ports.allocate_next()
                if value is None:
                    errs.append(
                        FieldError(
                            "InternalError",
                            f"spec.ports[{index}].nodePort",
                            "failed to allocate a nodePort: range is full",
                        )
                    )
                    continue
                res.ports.append(value)
                kept.add(value)
                port["nodePort"] = value
        res.release_ports.extend(p for p in old_ports if p not in kept)


def _matching_old_port(port: Obj, old_ports: list[Obj]) -> int | None:
    for old in old_ports:
        if old.get("nodePort") and old.get("port") == port.get("port") and (
            old.get("protocol") or "TCP"
        ) == (port.get("protocol") or "TCP"):
            return old["nodePort"]
    return None


def _cluster_ips(spec: Obj) -> list[str]:
    ips = spec.get("clusterIPs")
    if isinstance(ips, list) and ips:
        return [ip for ip in ips if isinstance(ip, str) and ip and ip != "None"]
    ip = spec.get("clusterIP")
    if isinstance(ip, str) and ip and ip != "None":
        return [ip]
    return []


def _node_ports(spec: Obj) -> list[int]:
    out: list[int] = []
    for port in spec.get("ports") or ():
        if isinstance(port, dict):
            value = port.get("nodePort")
            if isinstance(value, int) and not isinstance(value, bool) and value:
                out.append(value)
    value = spec.get("healthCheckNodePort")
    if isinstance(value, int) and not isinstance(value, bool) and value:
        out.append(value)
    return out
