"""core/v1 services (+status): upstream's defaulting (type, ports, traffic policies, IP
families), validation (ports, clusterIP shape, NodePort range), the clusterIP/nodePort
keep-on-update rule and the table.  Allocation of IPs and node ports is the API server's."""

from __future__ import annotations

from typing import Any

from pybernetes.api.fieldcheck import (
    as_dict,
    as_int,
    as_list,
    as_str,
    check_enum,
    check_int_or_named_port,
    check_port_entry,
    dict_items,
    str_map,
)
from pybernetes.api.printing import CORE_AGE, age
from pybernetes.api.resource import ResourceDef, status_of
from pybernetes.api.strategy import Column, Strategy
from pybernetes.machinery import validation as mv
from pybernetes.machinery.errors import (
    FieldError,
    duplicate,
    forbidden_field,
    invalid_value,
    required,
)
from pybernetes.machinery.selectors import format_labels

Obj = dict[str, Any]

SERVICE_TYPES = ("ClusterIP", "ExternalName", "LoadBalancer", "NodePort")
NODE_PORT_RANGE = (30000, 32767)
MAX_AFFINITY_TIMEOUT = 86400


def _d(value: Any) -> Obj:
    return value if isinstance(value, dict) else {}


def externally_accessible(spec: Obj) -> bool:
    kind = spec.get("type")
    return kind in ("LoadBalancer", "NodePort") or (kind == "ClusterIP" and bool(spec.get("externalIPs")))


def default_service_spec(spec: Obj) -> None:
    if not spec.get("type"):
        spec["type"] = "ClusterIP"
    if not spec.get("sessionAffinity"):
        spec["sessionAffinity"] = "None"
    if spec["sessionAffinity"] == "ClientIP":
        config = spec.setdefault("sessionAffinityConfig", {})
        if isinstance(config, dict):
            client_ip = config.setdefault("clientIP", {})
            if isinstance(client_ip, dict):
                client_ip.setdefault("timeoutSeconds", 10800)
    for port in spec.get("ports") or []:
        if not isinstance(port, dict):
            continue
        if not port.get("protocol"):
            port["protocol"] = "TCP"
        if port.get("targetPort") in (None, 0, ""):
            port["targetPort"] = port.get("port")
    kind = spec["type"]
    # externally accessible (also a ClusterIP Service with externalIPs): Cluster by default
    if (kind in ("NodePort", "LoadBalancer") or (kind == "ClusterIP" and spec.get("externalIPs"))) \
            and not spec.get("externalTrafficPolicy"):
        spec["externalTrafficPolicy"] = "Cluster"
    if kind != "ExternalName" and not spec.get("internalTrafficPolicy"):
        spec["internalTrafficPolicy"] = "Cluster"
    if kind == "LoadBalancer" and spec.get("allocateLoadBalancerNodePorts") is None:
        spec["allocateLoadBalancerNodePorts"] = True
    # v1 keeps clusterIP and clusterIPs in step.
    if spec.get("clusterIP") and not spec.get("clusterIPs"):
        spec["clusterIPs"] = [spec["clusterIP"]]
    elif not spec.get("clusterIP") and isinstance(spec.get("clusterIPs"), list) and spec["clusterIPs"]:
        spec["clusterIP"] = spec["clusterIPs"][0]
    if kind != "ExternalName":
        headless = spec.get("clusterIP") == "None"
        if not spec.get("ipFamilyPolicy"):
            spec["ipFamilyPolicy"] = "RequireDualStack" if headless and not spec.get("selector") else "SingleStack"
        if not spec.get("ipFamilies"):
            families = []
            for ip in spec.get("clusterIPs") or []:
                if isinstance(ip, str) and ip != "None" and not mv.is_valid_ip(ip):
                    families.append("IPv6" if ":" in ip else "IPv4")
            spec["ipFamilies"] = families or ["IPv4"]


def _validate_ports(spec: Obj, errs: list[FieldError]) -> None:
    ports = dict_items(spec.get("ports"), "spec.ports", errs)
    kind = spec.get("type")
    headless = spec.get("clusterIP") == "None"
    if not ports and not headless and kind != "ExternalName":
        errs.append(required("spec.ports"))
    names: set[str] = set()
    seen: set[tuple[Any, Any]] = set()
    node_ports: set[tuple[Any, Any]] = set()
    for i, port in ports:
        p = f"spec.ports[{i}]"
        check_port_entry(port, p, errs, many=len(ports) > 1, names=names)
        if port.get("targetPort") is not None:
            check_int_or_named_port(port.get("targetPort"), f"{p}.targetPort", errs)
        key = (port.get("port"), port.get("protocol"))
        if key in seen:
            errs.append(duplicate(p, {"port": key[0], "protocol": key[1]}))
        seen.add(key)
        node_port = as_int(port.get("nodePort"), f"{p}.nodePort", errs)
        if node_port:
            if kind == "ClusterIP":
                errs.append(forbidden_field(f"{p}.nodePort", "may not be used when `type` is 'ClusterIP'"))
            elif kind == "ExternalName":
                errs.append(forbidden_field(f"{p}.nodePort", "may not be used when `type` is 'ExternalName'"))
            elif not NODE_PORT_RANGE[0] <= node_port <= NODE_PORT_RANGE[1]:
                errs.append(invalid_value(
                    f"{p}.nodePort", node_port,
                    "provided port is not in the valid range. The range of valid ports is 30000-32767",
                ))
            elif (node_port, port.get("protocol")) in node_ports:
                errs.append(duplicate(f"{p}.nodePort", node_port))
            node_ports.add((node_port, port.get("protocol")))


def _validate_cluster_ips(spec: Obj, errs: list[FieldError]) -> None:
    kind = spec.get("type")
    cluster_ip = as_str(spec.get("clusterIP"), "spec.clusterIP", errs)
    cluster_ips = as_list(spec.get("clusterIPs"), "spec.clusterIPs", errs)
    if kind == "ExternalName":
        if cluster_ip:
            errs.append(forbidden_field("spec.clusterIP", "may not be set for ExternalName services"))
        if cluster_ips:
            errs.append(forbidden_field("spec.clusterIPs", "may not be set for ExternalName services"))
        name = as_str(spec.get("externalName"), "spec.externalName", errs)
        if not name:
            errs.append(required("spec.externalName"))
        else:
            for message in mv.is_dns1123_subdomain(name.removesuffix(".")):
                errs.append(invalid_value("spec.externalName", name, message))
        return
    if cluster_ips and cluster_ip and cluster_ips[0] != cluster_ip:
        errs.append(invalid_value("spec.clusterIPs", cluster_ips, "first value must match `clusterIP`"))
    if len(cluster_ips) > 2:
        errs.append(invalid_value("spec.clusterIPs", cluster_ips, "may only hold up to 2 values"))
    for i, ip in enumerate(cluster_ips):
        if ip == "None":
            if i > 0 or len(cluster_ips) > 1:
                errs.append(invalid_value(f"spec.clusterIPs[{i}]", ip, "'None' must be the first and only value"))
            elif kind in ("NodePort", "LoadBalancer"):
                errs.append(invalid_value(f"spec.clusterIPs[{i}]", ip, f"may not be set to 'None' for {kind} services"))
        elif not isinstance(ip, str) or mv.is_valid_ip(ip):
            errs.append(invalid_value(f"spec.clusterIPs[{i}]", ip, "must be empty, 'None', or a valid IP address"))


def validate_service(obj: Obj) -> list[FieldError]:
    errs: list[FieldError] = []
    spec = as_dict(obj.get("spec"), "spec", errs)
    check_enum(spec.get("type"), "spec.type", SERVICE_TYPES, errs, needed=True)
    _validate_cluster_ips(spec, errs)
    _validate_ports(spec, errs)
    selector = str_map(spec.get("selector"), "spec.selector", errs)
    if selector:
        errs.extend(mv.validate_labels(selector, "spec.selector"))
    affinity = spec.get("sessionAffinity")
    check_enum(affinity, "spec.sessionAffinity", ("ClientIP", "None"), errs, needed=True)
    if affinity == "ClientIP":
        timeout = as_int(_d(_d(spec.get("sessionAffinityConfig")).get("clientIP")).get("timeoutSeconds"),
                         "spec.sessionAffinityConfig.clientIP.timeoutSeconds", errs)
        if timeout is None or not 0 < timeout <= MAX_AFFINITY_TIMEOUT:
            errs.append(invalid_value("spec.sessionAffinityConfig.clientIP.timeoutSeconds", timeout,
                                      f"must be greater than 0 and less than {MAX_AFFINITY_TIMEOUT}"))
    elif spec.get("sessionAffinityConfig") is not None:
        errs.append(forbidden_field("spec.sessionAffinityConfig",
                                    f"must not be set when session affinity is {affinity}"))
    policy = spec.get("externalTrafficPolicy")
    if externally_accessible(spec):
        check_enum(policy, "spec.externalTrafficPolicy", ("Cluster", "Local"), errs, needed=True)
    elif policy:
        errs.append(invalid_value("spec.externalTrafficPolicy", policy, "may only be set for externally-accessible services"))
    if spec.get("type") != "ExternalName":
        check_enum(spec.get("internalTrafficPolicy"), "spec.internalTrafficPolicy", ("Cluster", "Local"), errs, needed=True)
        check_enum(spec.get("ipFamilyPolicy"), "spec.ipFamilyPolicy",
                   ("SingleStack", "PreferDualStack", "RequireDualStack"), errs)
        families = as_list(spec.get("ipFamilies"), "spec.ipFamilies", errs)
        for i, family in enumerate(families):
            check_enum(family, f"spec.ipFamilies[{i}]", ("IPv4", "IPv6"), errs, needed=True)
        if len(families) == 2 and families[0] == families[1]:
            errs.append(duplicate("spec.ipFamilies[1]", families[1]))
    for i, ip in enumerate(as_list(spec.get("externalIPs"), "spec.externalIPs", errs)):
        if not isinstance(ip, str) or mv.is_valid_ip(ip):
            errs.append(invalid_value(f"spec.externalIPs[{i}]", ip, "must be a valid IP address"))
    for i, cidr in enumerate(as_list(spec.get("loadBalancerSourceRanges"), "spec.loadBalancerSourceRanges", errs)):
        if not isinstance(cidr, str) or mv.is_valid_cidr(cidr.strip()):
            errs.append(invalid_value(f"spec.loadBalancerSourceRanges[{i}]", cidr,
                                      "must be a valid CIDR (e.g. 10.0.0.0/8 or 2001:db8::/64)"))
    if spec.get("type") == "LoadBalancer" and spec.get("allocateLoadBalancerNodePorts") is None:
        errs.append(required("spec.allocateLoadBalancerNodePorts"))
    return errs


def keep_allocated_values(new_spec: Obj, old_spec: Obj) -> None:
    """A PUT that omits allocated values (clusterIP(s), node ports, health check node port)
    keeps the old ones, as upstream's service REST update does."""
    if new_spec.get("type") == "ExternalName" or old_spec.get("type") == "ExternalName":
        return
    if not new_spec.get("clusterIP") and not new_spec.get("clusterIPs") and old_spec.get("clusterIP"):
        new_spec["clusterIP"] = old_spec["clusterIP"]
        if old_spec.get("clusterIPs"):
            new_spec["clusterIPs"] = list(old_spec["clusterIPs"])
    if new_spec.get("type") in ("NodePort", "LoadBalancer"):
        old_ports = {(p.get("port"), p.get("protocol")): p.get("nodePort") for p in old_spec.get("ports") or []
                     if isinstance(p, dict) and p.get("nodePort")}
        for port in new_spec.get("ports") or []:
            if isinstance(port, dict) and not port.get("nodePort"):
                node_port = old_ports.get((port.get("port"), port.get("protocol") or "TCP"))
                if node_port:
                    port["nodePort"] = node_port
        if not new_spec.get("healthCheckNodePort") and old_spec.get("healthCheckNodePort") \
                and new_spec.get("externalTrafficPolicy") == "Local":
            new_spec["healthCheckNodePort"] = old_spec["healthCheckNodePort"]


class ServiceStrategy(Strategy):
    has_generation = False

    @staticmethod
    def name_rule(name: str) -> list[str]:
        return mv.is_dns1035_label(name)

    def default(self, obj: Obj) -> None:
        if isinstance(obj.get("spec"), dict):
            default_service_spec(obj["spec"])
        elif "spec" not in obj:
            obj["spec"] = {}
            default_service_spec(obj["spec"])

    def prepare_for_create(self, obj: Obj) -> None:
        super().prepare_for_create(obj)
        obj["status"] = {"loadBalancer": {}}

    def prepare_for_update(self, new: Obj, old: Obj) -> None:
        super().prepare_for_update(new, old)
        if isinstance(new.get("spec"), dict) and isinstance(old.get("spec"), dict):
            keep_allocated_values(new["spec"], old["spec"])
            default_service_spec(new["spec"])

    def validate(self, obj: Obj) -> list[FieldError]:
        return validate_service(obj)

    def validate_update(self, new: Obj, old: Obj) -> list[FieldError]:
        new_spec, old_spec = _d(new.get("spec")), _d(old.get("spec"))
        if "ExternalName" in (new_spec.get("type"), old_spec.get("type")):
            return []
        errs: list[FieldError] = []
        old_ips = old_spec.get("clusterIPs") or ([old_spec["clusterIP"]] if old_spec.get("clusterIP") else [])
        new_ips = new_spec.get("clusterIPs") or []
        for i, ip in enumerate(old_ips):
            if i < len(new_ips) and new_ips[i] != ip:
                errs.append(invalid_value(f"spec.clusterIPs[{i}]", new_ips, "may not change once set"))
            elif i >= len(new_ips) and i == 0:
                errs.append(invalid_value("spec.clusterIPs[0]", new_ips, "primary clusterIP can not be unset"))
        return errs

    def validate_status_update(self, new: Obj, old: Obj) -> list[FieldError]:
        errs: list[FieldError] = []
        status = as_dict(new.get("status"), "status", errs)
        ingress = as_dict(status.get("loadBalancer"), "status.loadBalancer", errs).get("ingress")
        for i, item in dict_items(ingress, "status.loadBalancer.ingress", errs):
            ip = item.get("ip")
            if ip and (not isinstance(ip, str) or mv.is_valid_ip(ip)):
                errs.append(invalid_value(f"status.loadBalancer.ingress[{i}].ip", ip, "must be a valid IP address"))
        return errs

    def columns(self) -> list[Column]:
        return [
            Column("Type", description="type determines how the Service is exposed."),
            Column("Cluster-IP", description="clusterIP is the IP address of the service."),
            Column("External-IP", description="externalIPs is a list of IP addresses for which nodes in the "
                   "cluster will also accept traffic for this service."),
            Column("Port(s)", description="The list of ports that are exposed by this service."),
            CORE_AGE,
            Column("Selector", priority=1, description="Route service traffic to pods with label keys and "
                   "values matching this selector."),
        ]

    def cells(self, obj: Obj, now: float) -> list[Any]:
        spec = _d(obj.get("spec"))
        selector_text = format_labels(spec.get("selector"))
        return [
            str(spec.get("type", "")),
            spec.get("clusterIP") or "<none>",
            external_ip_cell(obj, wide=True),
            ports_cell(spec),
            age(obj, now),
            selector_text,
        ]


def _load_balancer_text(obj: Obj, wide: bool) -> str:
    ingress = _d(_d(obj.get("status")).get("loadBalancer")).get("ingress")
    items = []
    for item in ingress if isinstance(ingress, list) else []:
        if isinstance(item, dict):
            if item.get("ip"):
                items.append(str(item["ip"]))
            elif item.get("hostname"):
                items.append(str(item["hostname"]))
    text = ",".join(items)
    if not wide and len(text) > 16:
        text = text[:13] + "..."
    return text


def external_ip_cell(obj: Obj, wide: bool = True) -> str:
    spec = _d(obj.get("spec"))
    kind = spec.get("type")
    external = [str(ip) for ip in spec.get("externalIPs") or []]
    if kind in ("ClusterIP", "NodePort"):
        return ",".join(external) if external else "<none>"
    if kind == "LoadBalancer":
        lb = _load_balancer_text(obj, wide)
        if external:
            return ",".join(([lb] if lb else []) + external)
        return lb or "<pending>"
    if kind == "ExternalName":
        return str(spec.get("externalName", ""))
    return "<unknown>"


def ports_cell(spec: Obj) -> str:
    parts = []
    for port in spec.get("ports") or []:
        if not isinstance(port, dict):
            continue
        protocol = port.get("protocol") or "TCP"
        if port.get("nodePort"):
            parts.append(f"{port.get('port')}:{port['nodePort']}/{protocol}")
        else:
            parts.append(f"{port.get('port')}/{protocol}")
    return ",".join(parts) if parts else "<none>"


SERVICES = ResourceDef(
    group="", version="v1", resource="services", kind="Service", singular="service",
    namespaced=True, strategy=ServiceStrategy(), short_names=("svc",), categories=("all",),
    subresources=(status_of("Service"),),
)
