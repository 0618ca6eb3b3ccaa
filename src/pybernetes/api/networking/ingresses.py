"""networking.k8s.io/v1 ingresses and ingressclasses: rules, paths (pathType required),
backends, TLS hosts, the class name; status reset on create; the CLASS HOSTS ADDRESS PORTS
table; ingressclasses' controller (immutable) and parameters."""

from __future__ import annotations

from typing import Any

from pybernetes.api.groupcommon import AGE, check_immutable, dig
from pybernetes.api.printing import age
from pybernetes.api.resource import ResourceDef, status_of
from pybernetes.api.strategy import Column, Strategy
from pybernetes.machinery.errors import FieldError, invalid_value, not_supported, required, too_long
from pybernetes.machinery.validation import is_dns1035_label, is_dns1123_subdomain
from pybernetes.machinery.validation_net import is_valid_port_name, is_valid_port_num, parse_ip_sloppy

Obj = dict[str, Any]
PATH_TYPES = ("Exact", "Prefix", "ImplementationSpecific")
_BAD_SEQUENCES = ("//", "/./", "/../", "%2f", "%2F")
_BAD_SUFFIXES = ("/..", "/.")
WILDCARD_ERROR = ("a wildcard DNS-1123 subdomain must start with '*.', followed by a valid DNS subdomain, "
                  "which must consist of lower case alphanumeric characters, '-' or '.' and end with an "
                  "alphanumeric character (e.g. '*.example.com', regex used for validation is "
                  r"'\*\.[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')")


def _host_errors(host: str) -> list[str]:
    if host.startswith("*."):
        return [WILDCARD_ERROR] if is_dns1123_subdomain(host[2:]) else []
    if "*" in host:
        return [WILDCARD_ERROR]
    return is_dns1123_subdomain(host)


def validate_backend(backend: Any, path: str, errs: list[FieldError]) -> None:
    if not isinstance(backend, dict):
        errs.append(invalid_value(path, "", "resource or service backend is required"))
        return
    resource, service = backend.get("resource"), backend.get("service")
    if resource is not None and service is not None:
        errs.append(invalid_value(path, "", "cannot set both resource and service backends"))
    elif resource is not None:
        resource = resource if isinstance(resource, dict) else {}
        for field in ("kind", "name"):
            if not resource.get(field):
                errs.append(required(f"{path}.resource.{field}"))
    elif isinstance(service, dict):
        name = service.get("name")
        if not name:
            errs.append(required(f"{path}.service.name"))
        else:
            errs.extend(invalid_value(f"{path}.service.name", name, m) for m in is_dns1035_label(str(name)))
        port = service.get("port") if isinstance(service.get("port"), dict) else {}
        port_name, port_number = port.get("name") or "", port.get("number") or 0
        if port_name and port_number:
            errs.append(invalid_value(path, "", "cannot set both port name & port number"))
        elif port_name:
            errs.extend(invalid_value(f"{path}.service.port.name", port_name, m)
                        for m in is_valid_port_name(str(port_name)))
        elif port_number:
            errs.extend(invalid_value(f"{path}.service.port.number", port_number, m)
                        for m in is_valid_port_num(port_number))
        else:
            errs.append(required(path, "port name or number is required"))
    else:
        errs.append(invalid_value(path, "", "resource or service backend is required"))


def validate_http_path(item: Any, path: str, errs: list[FieldError]) -> None:
    if not isinstance(item, dict):
        errs.append(invalid_value(path, item, "must be an object"))
        return
    path_type, value = item.get("pathType"), item.get("path", "")
    value = value if isinstance(value, str) else ""
    if not path_type:
        errs.append(required(f"{path}.pathType", "pathType must be specified"))
    elif path_type not in PATH_TYPES:
        errs.append(not_supported(f"{path}.pathType", path_type, PATH_TYPES))
    elif path_type in ("Exact", "Prefix") or value:
        if not value.startswith("/"):
            errs.append(invalid_value(f"{path}.path", value, "must be an absolute path"))
        elif path_type in ("Exact", "Prefix"):
            for seq in _BAD_SEQUENCES:
                if seq in value:
                    errs.append(invalid_value(f"{path}.path", value, f"must not contain '{seq}'"))
            for suffix in _BAD_SUFFIXES:
                if value.endswith(suffix):
                    errs.append(invalid_value(f"{path}.path", value, f"must not end with '{suffix}'"))
    validate_backend(item.get("backend"), f"{path}.backend", errs)


def validate_ingress_spec(spec: Any, path: str = "spec") -> list[FieldError]:
    errs: list[FieldError] = []
    if not isinstance(spec, dict):
        return [required(path)]
    rules = spec.get("rules") or []
    if not rules and spec.get("defaultBackend") is None:
        errs.append(invalid_value(path, rules, "either `defaultBackend` or `rules` must be specified"))
    if spec.get("defaultBackend") is not None:
        validate_backend(spec["defaultBackend"], f"{path}.defaultBackend", errs)
    for i, rule in enumerate(rules if isinstance(rules, list) else []):
        rpath = f"{path}.rules[{i}]"
        rule = rule if isinstance(rule, dict) else {}
        host = rule.get("host")
        if host:
            if parse_ip_sloppy(str(host)) is not None:
                errs.append(invalid_value(f"{rpath}.host", host, "must be a DNS name, not an IP address"))
            else:
                errs.extend(invalid_value(f"{rpath}.host", host, m) for m in _host_errors(str(host)))
        http = rule.get("http")
        if http is not None:
            paths = http.get("paths") if isinstance(http, dict) else None
            if not paths:
                errs.append(required(f"{rpath}.http.paths"))
            for j, item in enumerate(paths or []):
                validate_http_path(item, f"{rpath}.http.paths[{j}]", errs)
    for i, tls in enumerate(spec.get("tls") or []):
        for j, host in enumerate((tls or {}).get("hosts") or [] if isinstance(tls, dict) else []):
            errs.extend(invalid_value(f"{path}.tls[{i}].hosts[{j}]", host, m) for m in _host_errors(str(host)))
    class_name = spec.get("ingressClassName")
    if class_name is not None:
        errs.extend(invalid_value(f"{path}.ingressClassName", class_name, m)
                    for m in is_dns1123_subdomain(str(class_name)))
    return errs


def _hosts_cell(rules: Any) -> str:
    rules = rules if isinstance(rules, list) else []
    hosts: list[str] = []
    more = False
    for rule in rules:
        if len(hosts) == 3:
            more = True
        host = rule.get("host") if isinstance(rule, dict) else None
        if not more and host:
            hosts.append(str(host))
    if not hosts:
        return "*"
    text = ",".join(hosts)
    return f"{text} + {len(rules) - 3} more..." if more else text


def load_balancer_addresses(ingress: Any) -> str:
    """ingressLoadBalancerStatusStringer (wide, as the server prints): sorted unique IPs or
    hostnames."""
    seen: set[str] = set()
    for item in ingress or []:
        if isinstance(item, dict):
            if item.get("ip"):
                seen.add(str(item["ip"]))
            elif item.get("hostname"):
                seen.add(str(item["hostname"]))
    return ",".join(sorted(seen))


class IngressStrategy(Strategy):
    def prepare_for_create(self, obj: Obj) -> None:
        obj["status"] = {"loadBalancer": {}}

    def validate(self, obj: Obj) -> list[FieldError]:
        return validate_ingress_spec(obj.get("spec"))

    def columns(self) -> list[Column]:
        return [
            Column("Class", description="The name of the IngressClass resource that should be used for "
                   "ingress"),
            Column("Hosts", description="Hosts that incoming requests are matched against before the ingress "
                   "rule"),
            Column("Address", description="Address is a list containing ingress points for the load-balancer"),
            Column("Ports", description="Ports of TLS configurations that open"),
            AGE,
        ]

    def cells(self, obj: Obj, now: float) -> list[Any]:
        spec = obj.get("spec") if isinstance(obj.get("spec"), dict) else {}
        class_name = spec.get("ingressClassName")
        return [
            class_name if isinstance(class_name, str) else "<none>",
            _hosts_cell(spec.get("rules")),
            load_balancer_addresses(dig(obj, "status", "loadBalancer", "ingress")),
            "80, 443" if spec.get("tls") else "80",
            age(obj, now),
        ]


class IngressClassStrategy(Strategy):
    status_fields = ()

    def default(self, obj: Obj) -> None:
        params = dig(obj, "spec", "parameters")
        if isinstance(params, dict) and not params.get("scope"):
            params["scope"] = "Cluster"

    def validate(self, obj: Obj) -> list[FieldError]:
        errs: list[FieldError] = []
        spec = obj.get("spec") if isinstance(obj.get("spec"), dict) else {}
        controller = spec.get("controller")
        if not controller:
            errs.append(required("spec.controller"))
        elif len(str(controller)) > 250:
            errs.append(too_long("spec.controller", controller, 250))
        else:
            prefix = str(controller).split("/", 1)[0]
            if "/" not in str(controller):
                errs.append(invalid_value("spec.controller", controller, "must be a domain-prefixed path "
                                          "(such as \"acme.io/foo\")"))
            else:
                errs.extend(invalid_value("spec.controller", controller, m) for m in is_dns1123_subdomain(prefix))
        params = spec.get("parameters")
        if isinstance(params, dict):
            for field in ("kind", "name"):
                if not params.get(field):
                    errs.append(required(f"spec.parameters.{field}"))
            scope = params.get("scope")
            if scope not in ("Cluster", "Namespace"):
                errs.append(not_supported("spec.parameters.scope", scope, ("Cluster", "Namespace")))
            elif scope == "Namespace" and not params.get("namespace"):
                errs.append(required("spec.parameters.namespace", "`parameters.scope` is set to 'Namespace'"))
            elif scope == "Cluster" and params.get("namespace"):
                errs.append(invalid_value("spec.parameters.namespace", params["namespace"],
                                          "`parameters.scope` is set to 'Cluster'"))
            group = params.get("apiGroup")
            if group:
                errs.extend(invalid_value("spec.parameters.apiGroup", group, m)
                            for m in is_dns1123_subdomain(str(group)))
        return errs

    def validate_update(self, new: Obj, old: Obj) -> list[FieldError]:
        errs: list[FieldError] = []
        check_immutable(dig(new, "spec", "controller"), dig(old, "spec", "controller"), "spec.controller", errs)
        return errs

    def columns(self) -> list[Column]:
        return [
            Column("Controller", description="Controller that is responsible for handling this class"),
            Column("Parameters", description="A reference to a resource with additional parameters"),
            AGE,
        ]

    def cells(self, obj: Obj, now: float) -> list[Any]:
        params = dig(obj, "spec", "parameters")
        text = "<none>"
        if isinstance(params, dict):
            text = str(params.get("kind", ""))
            if params.get("apiGroup") is not None:
                text += "." + str(params["apiGroup"])
            text += "/" + str(params.get("name", ""))
        return [str(dig(obj, "spec", "controller") or ""), text, age(obj, now)]


INGRESSES = ResourceDef(
    group="networking.k8s.io",
    version="v1",
    resource="ingresses",
    kind="Ingress",
    singular="ingress",
    namespaced=True,
    strategy=IngressStrategy(),
    short_names=("ing",),
    subresources=(status_of("Ingress", "networking.k8s.io"),),
)

INGRESSCLASSES = ResourceDef(
    group="networking.k8s.io",
    version="v1",
    resource="ingressclasses",
    kind="IngressClass",
    singular="ingressclass",
    namespaced=False,
    strategy=IngressClassStrategy(),
)

__all__ = ["INGRESSCLASSES", "INGRESSES"]
