"""core/v1 endpoints: the addresses behind a service (no spec/status; PUT may create) and
the ENDPOINTS table cell (first three host:port pairs, then "+ N more...")."""

from __future__ import annotations

from typing import Any

from pybernetes.api.fieldcheck import as_str, check_name, check_port_entry, dict_items
from pybernetes.api.printing import CORE_AGE, age
from pybernetes.api.resource import ResourceDef
from pybernetes.api.strategy import Column, Strategy
from pybernetes.machinery import validation as mv
from pybernetes.machinery.errors import FieldError, invalid_value, required

Obj = dict[str, Any]


def _validate_address(address: Obj, path: str, errs: list[FieldError]) -> None:
    ip = as_str(address.get("ip"), f"{path}.ip", errs)
    if not ip:
        errs.append(required(f"{path}.ip"))
    elif mv.is_valid_ip(ip):
        errs.append(invalid_value(f"{path}.ip", ip, "must be a valid IP address"))
    hostname = as_str(address.get("hostname"), f"{path}.hostname", errs)
    if hostname:
        check_name(hostname, f"{path}.hostname", mv.is_dns1123_label, errs)
    node_name = as_str(address.get("nodeName"), f"{path}.nodeName", errs)
    if node_name:
        errs.extend(invalid_value(f"{path}.nodeName", node_name, m) for m in mv.is_dns1123_subdomain(node_name))


class EndpointsStrategy(Strategy):
    status_fields = ()
    has_generation = False
    allow_create_on_update = True

    def default(self, obj: Obj) -> None:
        for subset in obj.get("subsets") or []:
            if isinstance(subset, dict):
                for port in subset.get("ports") or []:
                    if isinstance(port, dict) and not port.get("protocol"):
                        port["protocol"] = "TCP"

    def validate(self, obj: Obj) -> list[FieldError]:
        errs: list[FieldError] = []
        for i, subset in dict_items(obj.get("subsets"), "subsets", errs):
            p = f"subsets[{i}]"
            addresses = dict_items(subset.get("addresses"), f"{p}.addresses", errs)
            not_ready = dict_items(subset.get("notReadyAddresses"), f"{p}.notReadyAddresses", errs)
            if not addresses and not not_ready:
                errs.append(required(p, "must specify `addresses` or `notReadyAddresses`"))
            for j, address in addresses:
                _validate_address(address, f"{p}.addresses[{j}]", errs)
            for j, address in not_ready:
                _validate_address(address, f"{p}.notReadyAddresses[{j}]", errs)
            ports = dict_items(subset.get("ports"), f"{p}.ports", errs)
            names: set[str] = set()
            for j, port in ports:
                check_port_entry(port, f"{p}.ports[{j}]", errs, many=len(ports) > 1, names=names)
        return errs

    def columns(self) -> list[Column]:
        return [
            Column("Endpoints", description="Endpoints is the list of endpoints in the endpoint set."),
            CORE_AGE,
        ]

    def cells(self, obj: Obj, now: float) -> list[Any]:
        return [endpoints_cell(obj), age(obj, now)]


def _host_port(ip: str, port: Any) -> str:
    return f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}"


def endpoints_cell(obj: Obj, limit: int = 3) -> str:
    subsets = [s for s in obj.get("subsets") or [] if isinstance(s, dict)]
    if not subsets:
        return "<none>"
    shown: list[str] = []
    count = 0
    more = False
    for subset in subsets:
        addresses = [str(a.get("ip", "")) for a in subset.get("addresses") or [] if isinstance(a, dict)]
        ports = [p for p in subset.get("ports") or [] if isinstance(p, dict)]
        if not ports:
            count += len(addresses)
            for ip in addresses:
                if len(shown) == limit:
                    more = True
                    break
                shown.append(ip)
            continue
        for port in ports:
            count += len(addresses)
            for ip in addresses:
                if len(shown) == limit:
                    more = True
                    break
                shown.append(_host_port(ip, port.get("port")))
    text = ",".join(shown)
    return f"{text} + {count - limit} more..." if more else text


ENDPOINTS = ResourceDef(
    group="", version="v1", resource="endpoints", kind="Endpoints", singular="endpoints",
    namespaced=True, strategy=EndpointsStrategy(), short_names=("ep",),
)
