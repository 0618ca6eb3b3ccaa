"""The discovery.k8s.io/v1 API group: endpointslices (addressType IPv4|IPv6|FQDN, fixed once
created; endpoints with 1-100 addresses of that type; ports defaulted to TCP with name "";
the ADDRESSTYPE PORTS ENDPOINTS table).  No status; the generation counts every change."""

from __future__ import annotations

from typing import Any

from pybernetes.api.groupcommon import AGE, check_immutable, is_int
from pybernetes.api.printing import age
from pybernetes.api.resource import ResourceDef
from pybernetes.api.strategy import Column, Strategy
from pybernetes.machinery.errors import (
    FieldError,
    duplicate,
    invalid_value,
    not_supported,
    required,
    too_many,
)
from pybernetes.machinery.validation import (
    is_dns1123_label,
    is_dns1123_subdomain,
    is_qualified_name,
    validate_path_segment_name,
)
from pybernetes.machinery.validation_net import is_valid_ipv4, is_valid_ipv6, parse_ip_sloppy

Obj = dict[str, Any]
ADDRESS_TYPES = ("IPv4", "IPv6", "FQDN")
PROTOCOLS = ("TCP", "UDP", "SCTP")
MAX_ENDPOINTS = 1000
MAX_ADDRESSES = 100
MAX_PORTS = 20000


def _endpoint_ip_errors(address: str) -> list[str]:
    ip = parse_ip_sloppy(address)
    if ip is None:
        return []
    if ip.is_unspecified:
        return [f"may not be unspecified ({address})"]
    if ip.is_loopback:
        return ["may not be in the loopback range (127.0.0.0/8, ::1/128)"]
    if ip.is_link_local:
        return ["may not be in the link-local range (169.254.0.0/16, fe80::/10)"]
    if ip.is_multicast and (str(ip).startswith("224.0.0.") or str(ip).lower().startswith("ff02:")):
        return ["may not be in the link-local multicast range (224.0.0.0/24, ff02::/10)"]
    return []


def validate_endpoints(endpoints: Any, address_type: Any, errs: list[FieldError]) -> None:
    if not isinstance(endpoints, list):
        if endpoints is not None:
            errs.append(invalid_value("endpoints", endpoints, "must be a list"))
        return
    if len(endpoints) > MAX_ENDPOINTS:
        errs.append(too_many("endpoints", len(endpoints), MAX_ENDPOINTS))
        return
    for i, endpoint in enumerate(endpoints):
        path = f"endpoints[{i}]"
        endpoint = endpoint if isinstance(endpoint, dict) else {}
        addresses = endpoint.get("addresses") or []
        if not addresses:
            errs.append(required(f"{path}.addresses", "must contain at least 1 address"))
        elif len(addresses) > MAX_ADDRESSES:
            errs.append(too_many(f"{path}.addresses", len(addresses), MAX_ADDRESSES))
        for j, address in enumerate(addresses[:MAX_ADDRESSES] if isinstance(addresses, list) else []):
            apath = f"{path}.addresses[{j}]"
            text = str(address)
            if address_type == "IPv4":
                messages = is_valid_ipv4(text) or _endpoint_ip_errors(text)
            elif address_type == "IPv6":
                messages = is_valid_ipv6(text) or _endpoint_ip_errors(text)
            elif address_type == "FQDN":
                messages = is_dns1123_subdomain(text)
            else:
                messages = []
            errs.extend(invalid_value(apath, address, m) for m in messages)
        hostname = endpoint.get("hostname")
        if hostname:
            errs.extend(invalid_value(f"{path}.hostname", hostname, m) for m in is_dns1123_label(str(hostname)))
        node = endpoint.get("nodeName")
        if node:
            errs.extend(invalid_value(f"{path}.nodeName", node, m) for m in validate_path_segment_name(str(node)))


def validate_ports(ports: Any, errs: list[FieldError]) -> None:
    if not isinstance(ports, list):
        if ports is not None:
            errs.append(invalid_value("ports", ports, "must be a list"))
        return
    if len(ports) > MAX_PORTS:
        errs.append(too_many("ports", len(ports), MAX_PORTS))
        return
    names: set[str] = set()
    for i, port in enumerate(ports):
        path = f"ports[{i}]"
        port = port if isinstance(port, dict) else {}
        name = port.get("name") or ""
        if name:
            errs.extend(invalid_value(f"{path}.name", name, m) for m in is_dns1123_label(str(name)))
        if name in names:
            errs.append(duplicate(f"{path}.name", name))
        names.add(name)
        protocol = port.get("protocol")
        if protocol is None:
            errs.append(required(f"{path}.protocol"))
        elif protocol not in PROTOCOLS:
            errs.append(not_supported(f"{path}.protocol", protocol, PROTOCOLS))
        number = port.get("port")
        if number is not None and (not is_int(number) or not 0 <= number <= 65535):
            errs.append(invalid_value(f"{path}.port", number, "must be between 0 and 65535, inclusive"))
        app_protocol = port.get("appProtocol")
        if app_protocol:
            errs.extend(invalid_value(f"{path}.appProtocol", app_protocol, m)
                        for m in is_qualified_name(str(app_protocol)))


def _list_with_more(items: list[str], count: int) -> str:
    text = ",".join(items[:3])
    if count > 3:
        return f"{text} + {count - 3} more..."
    return text or "<unset>"


def ports_cell(ports: Any) -> str:
    shown: list[str] = []
    ports = ports if isinstance(ports, list) else []
    for port in ports:
        port = port if isinstance(port, dict) else {}
        if port.get("port") is not None:
            shown.append(str(port["port"]))
        elif port.get("name") is not None:
            shown.append(str(port["name"]))
        else:
            shown.append("*")
    return _list_with_more(shown, len(shown))


def endpoints_cell(endpoints: Any) -> str:
    addresses = [str(a) for e in endpoints or [] if isinstance(e, dict) for a in e.get("addresses") or []]
    return _list_with_more(addresses, len(addresses))


class EndpointSliceStrategy(Strategy):
    status_fields = ()

    def default(self, obj: Obj) -> None:
        for port in obj.get("ports") or []:
            if isinstance(port, dict):
                if port.get("name") is None:
                    port["name"] = ""
                if port.get("protocol") is None:
                    port["protocol"] = "TCP"

    def validate(self, obj: Obj) -> list[FieldError]:
        errs: list[FieldError] = []
        address_type = obj.get("addressType")
        if not address_type:
            errs.append(required("addressType"))
        elif address_type not in ADDRESS_TYPES:
            errs.append(not_supported("addressType", address_type, ADDRESS_TYPES))
        validate_endpoints(obj.get("endpoints"), address_type, errs)
        validate_ports(obj.get("ports"), errs)
        return errs

    def validate_update(self, new: Obj, old: Obj) -> list[FieldError]:
        errs: list[FieldError] = []
        check_immutable(new.get("addressType"), old.get("addressType"), "addressType", errs)
        return errs

    def columns(self) -> list[Column]:
        return [
            Column("AddressType", description="addressType specifies the type of address carried by this "
                   "EndpointSlice. All addresses in this slice must be the same type."),
            Column("Ports", description="ports specifies the list of network ports exposed by each endpoint "
                   "in this slice."),
            Column("Endpoints", description="endpoints is a list of unique endpoints in this slice."),
            AGE,
        ]

    def cells(self, obj: Obj, now: float) -> list[Any]:
        return [str(obj.get("addressType", "")), ports_cell(obj.get("ports")), endpoints_cell(obj.get("endpoints")),
                age(obj, now)]


ENDPOINTSLICES = ResourceDef(
    group="discovery.k8s.io",
    version="v1",
    resource="endpointslices",
    kind="EndpointSlice",
    singular="endpointslice",
    namespaced=True,
    strategy=EndpointSliceStrategy(),
)

RESOURCES: list[ResourceDef] = [ENDPOINTSLICES]
