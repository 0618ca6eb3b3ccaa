"""networking.k8s.io/v1 networkpolicies: defaults (port protocol TCP, policyTypes from the
rules), validation of selectors, ports (endPort ranges) and peers (ipBlock CIDRs and their
strict-subset exceptions: an invalid CIDR is rejected here), and the POD-SELECTOR table."""

from __future__ import annotations

from typing import Any

from pybernetes.api.groupcommon import AGE, is_int
from pybernetes.api.printing import age
from pybernetes.api.resource import ResourceDef
from pybernetes.api.strategy import Column, Strategy
from pybernetes.machinery.errors import FieldError, forbidden_field, invalid_value, not_supported, required
from pybernetes.machinery.selectors import format_label_selector
from pybernetes.machinery.validation import validate_label_selector
from pybernetes.machinery.validation_net import (
    is_valid_cidr,
    is_valid_port_name,
    is_valid_port_num,
    parse_cidr_sloppy,
)

Obj = dict[str, Any]
PROTOCOLS = ("TCP", "UDP", "SCTP")
POLICY_TYPES = ("Ingress", "Egress")


def default_network_policy(obj: Obj) -> None:
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        return
    for direction in ("ingress", "egress"):
        for rule in spec.get(direction) or []:
            for port in (rule.get("ports") or []) if isinstance(rule, dict) else []:
                if isinstance(port, dict) and not port.get("protocol"):
                    port["protocol"] = "TCP"
    if not spec.get("policyTypes"):
        types = ["Ingress"]
        if spec.get("egress"):
            types.append("Egress")
        spec["policyTypes"] = types


def validate_ip_block(block: Any, path: str, errs: list[FieldError]) -> None:
    block = block if isinstance(block, dict) else {}
    cidr = block.get("cidr")
    if not cidr:
        errs.append(required(f"{path}.cidr"))
        return
    messages = is_valid_cidr(cidr)
    errs.extend(invalid_value(f"{path}.cidr", cidr, m) for m in messages)
    network = None if messages else parse_cidr_sloppy(str(cidr))
    if network is None:
        return
    for i, except_cidr in enumerate(block.get("except") or []):
        epath = f"{path}.except[{i}]"
        except_messages = is_valid_cidr(except_cidr)
        errs.extend(invalid_value(epath, except_cidr, m) for m in except_messages)
        if except_messages:
            continue
        excepted = parse_cidr_sloppy(str(except_cidr))
        if (excepted is None or excepted.version != network.version
                or excepted.network_address not in network or network.prefixlen >= excepted.prefixlen):
            errs.append(invalid_value(epath, except_cidr, "must be a strict subset of `cidr`"))


def validate_peer(peer: Any, path: str, errs: list[FieldError]) -> None:
    peer = peer if isinstance(peer, dict) else {}
    count = 0
    for field in ("podSelector", "namespaceSelector"):
        if peer.get(field) is not None:
            count += 1
            errs.extend(validate_label_selector(peer[field], f"{path}.{field}"))
    if peer.get("ipBlock") is not None:
        count += 1
        validate_ip_block(peer["ipBlock"], f"{path}.ipBlock", errs)
    if count == 0:
        errs.append(required(path, "must specify a peer"))
    elif count > 1 and peer.get("ipBlock") is not None:
        errs.append(forbidden_field(path, "may not specify both ipBlock and another peer"))


def validate_port(port: Any, path: str, errs: list[FieldError]) -> None:
    port = port if isinstance(port, dict) else {}
    protocol = port.get("protocol")
    if protocol is not None and protocol not in PROTOCOLS:
        errs.append(not_supported(f"{path}.protocol", protocol, PROTOCOLS))
    value = port.get("port")
    if value is not None:
        if is_int(value):
            errs.extend(invalid_value(f"{path}.port", value, m) for m in is_valid_port_num(value))
        else:
            errs.extend(invalid_value(f"{path}.port", value, m) for m in is_valid_port_name(str(value)))
    end = port.get("endPort")
    if end is not None:
        if value is None:
            errs.append(required(f"{path}.port", "must be specified when endPort is specified"))
        elif not is_int(value):
            errs.append(invalid_value(f"{path}.endPort", end, "may not be specified when `port` is non-numeric"))
        elif not is_int(end) or end < value:
            errs.append(invalid_value(f"{path}.endPort", end, "must be greater than or equal to `port`"))
        else:
            errs.extend(invalid_value(f"{path}.endPort", end, m) for m in is_valid_port_num(end))


def validate_network_policy_spec(spec: Any, path: str = "spec") -> list[FieldError]:
    errs: list[FieldError] = []
    if not isinstance(spec, dict):
        return [required(path)]
    errs.extend(validate_label_selector(spec.get("podSelector"), f"{path}.podSelector"))
    for direction, peers_field in (("ingress", "from"), ("egress", "to")):
        for i, rule in enumerate(spec.get(direction) or []):
            rpath = f"{path}.{direction}[{i}]"
            rule = rule if isinstance(rule, dict) else {}
            for j, port in enumerate(rule.get("ports") or []):
                validate_port(port, f"{rpath}.ports[{j}]", errs)
            for j, peer in enumerate(rule.get(peers_field) or []):
                validate_peer(peer, f"{rpath}.{peers_field}[{j}]", errs)
    types = spec.get("policyTypes") or []
    for i, kind in enumerate(types):
        if kind not in POLICY_TYPES:
            errs.append(not_supported(f"{path}.policyTypes[{i}]", kind, POLICY_TYPES))
    if len(types) > 2:
        errs.append(invalid_value(f"{path}.policyTypes", types, "may not specify more than two policyTypes"))
    return errs


class NetworkPolicyStrategy(Strategy):
    status_fields = ()

    def default(self, obj: Obj) -> None:
        default_network_policy(obj)

    def validate(self, obj: Obj) -> list[FieldError]:
        return validate_network_policy_spec(obj.get("spec"))

    def columns(self) -> list[Column]:
        return [
            Column("Pod-Selector", description="podSelector selects the pods to which this NetworkPolicy "
                   "object applies. The array of ingress rules is applied to any pods selected by this "
                   "field."),
            AGE,
        ]

    def cells(self, obj: Obj, now: float) -> list[Any]:
        spec = obj.get("spec") if isinstance(obj.get("spec"), dict) else {}
        return [format_label_selector(spec.get("podSelector") or {}), age(obj, now)]


NETWORKPOLICIES = ResourceDef(
    group="networking.k8s.io",
    version="v1",
    resource="networkpolicies",
    kind="NetworkPolicy",
    singular="networkpolicy",
    namespaced=True,
    strategy=NetworkPolicyStrategy(),
    short_names=("netpol",),
)
