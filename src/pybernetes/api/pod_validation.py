"""Validation of a PodSpec and a PodTemplateSpec, as upstream's ValidatePodSpec does it
(the pod-level fields; containers and volumes in their own modules)."""

from __future__ import annotations

from typing import Any

from pybernetes.api.container_validation import host_port_key, validate_container
from pybernetes.api.fieldcheck import (
    as_bool,
    as_dict,
    as_int,
    as_list,
    as_str,
    check_enum,
    check_name,
    check_non_negative,
    dict_items,
    str_map,
)
from pybernetes.api.volume_validation import validate_volumes
from pybernetes.machinery import validation as mv
from pybernetes.machinery.errors import FieldError, duplicate, invalid_value, required

Obj = dict[str, Any]
Errors = list[FieldError]

RESTART_POLICIES = ("Always", "OnFailure", "Never")
DNS_POLICIES = ("ClusterFirst", "ClusterFirstWithHostNet", "Default", "None")
TOLERATION_OPERATORS = ("Equal", "Exists")
TAINT_EFFECTS = ("NoExecute", "NoSchedule", "PreferNoSchedule")
MAX_INT32 = 2**31 - 1


def validate_tolerations(value: Any, path: str, errs: Errors) -> None:
    for i, toleration in dict_items(value, path, errs):
        p = f"{path}[{i}]"
        key = as_str(toleration.get("key"), f"{p}.key", errs)
        if key:
            for message in mv.is_qualified_name(key):
                errs.append(invalid_value(f"{p}.key", key, message))
        operator = toleration.get("operator") or "Equal"
        if not key and operator != "Exists":
            errs.append(invalid_value(f"{p}.operator", operator,
                                      "operator must be Exists when `key` is empty, which means \"match all values and all keys\""))
        if toleration.get("tolerationSeconds") is not None and toleration.get("effect") != "NoExecute":
            errs.append(invalid_value(f"{p}.effect", toleration.get("effect", ""),
                                      "effect must be 'NoExecute' when `tolerationSeconds` is set"))
        value_text = as_str(toleration.get("value"), f"{p}.value", errs)
        if operator == "Equal":
            for message in mv.is_valid_label_value(value_text):
                errs.append(invalid_value(f"{p}.value", value_text, message))
        elif operator == "Exists":
            if value_text:
                errs.append(invalid_value(f"{p}.operator", toleration, "value must be empty when `operator` is 'Exists'"))
        else:
            check_enum(operator, f"{p}.operator", TOLERATION_OPERATORS, errs)
        check_enum(toleration.get("effect"), f"{p}.effect", TAINT_EFFECTS, errs)


def _validate_containers(spec: Obj, path: str, volumes: dict[str, Obj], host_network: bool, errs: Errors) -> None:
    names: set[str] = set()
    host_ports: set[str] = set()
    containers = as_list(spec.get("containers"), f"{path}.containers", errs)
    if not containers:
        errs.append(required(f"{path}.containers"))
    for key, kind in (("initContainers", "init"), ("containers", "regular"), ("ephemeralContainers", "ephemeral")):
        for i, container in dict_items(spec.get(key), f"{path}.{key}", errs):
            p = f"{path}.{key}[{i}]"
            errs.extend(validate_container(container, p, volumes, kind=kind, host_network=host_network))
            name = container.get("name")
            if isinstance(name, str) and name:
                if name in names:
                    errs.append(duplicate(f"{p}.name", name))
                names.add(name)
            if kind == "ephemeral":
                continue
            for j, port in dict_items(container.get("ports"), f"{p}.ports", []):
                host_port = host_port_key(port)
                if host_port is None:
                    continue
                if host_port in host_ports:
                    errs.append(duplicate(f"{p}.ports[{j}].hostPort", host_port))
                host_ports.add(host_port)


def _validate_dns(spec: Obj, path: str, errs: Errors) -> None:
    policy = spec.get("dnsPolicy")
    check_enum(policy, f"{path}.dnsPolicy", DNS_POLICIES, errs, needed=True)
    config = spec.get("dnsConfig")
    if policy == "None" and config is None:
        errs.append(required(f"{path}.dnsConfig", "must provide `dnsConfig` when `dnsPolicy` is None"))
    if config is None:
        return
    config = as_dict(config, f"{path}.dnsConfig", errs)
    nameservers = as_list(config.get("nameservers"), f"{path}.dnsConfig.nameservers", errs)
    if policy == "None" and not nameservers:
        errs.append(required(f"{path}.dnsConfig.nameservers",
                             "must provide at least one DNS nameserver when `dnsPolicy` is None"))
    if len(nameservers) > 3:
        errs.append(invalid_value(f"{path}.dnsConfig.nameservers", nameservers,
                                  "must not have more than 3 nameservers"))
    for i, server in enumerate(nameservers):
        if not isinstance(server, str) or mv.is_valid_ip(server):
            errs.append(invalid_value(f"{path}.dnsConfig.nameservers[{i}]", server, "must be a valid IP address"))


def validate_pod_spec(spec: Any, path: str = "spec") -> Errors:
    """Every pod-level rule; ``path`` is where the PodSpec sits (``spec.template.spec`` ...)."""
    errs: Errors = []
    if not isinstance(spec, dict):
        errs.append(required(path) if spec is None else invalid_value(path, spec, "must be an object"))
        return errs
    host_network = as_bool(spec.get("hostNetwork"), f"{path}.hostNetwork", errs) is True
    volumes = validate_volumes(spec.get("volumes"), f"{path}.volumes", errs)
    _validate_containers(spec, path, volumes, host_network, errs)
    check_enum(spec.get("restartPolicy"), f"{path}.restartPolicy", RESTART_POLICIES, errs, needed=True)
    _validate_dns(spec, path, errs)
    for key, value in str_map(spec.get("nodeSelector"), f"{path}.nodeSelector", errs).items():
        errs.extend(mv.validate_labels({key: value}, f"{path}.nodeSelector"))
    for field in ("serviceAccountName", "nodeName"):
        text = as_str(spec.get(field), f"{path}.{field}", errs)
        if text:
            for message in mv.is_dns1123_subdomain(text):
                errs.append(invalid_value(f"{path}.{field}", text, message))
    for field in ("hostname", "subdomain"):
        text = as_str(spec.get(field), f"{path}.{field}", errs)
        if text:
            check_name(text, f"{path}.{field}", mv.is_dns1123_label, errs)
    deadline = as_int(spec.get("activeDeadlineSeconds"), f"{path}.activeDeadlineSeconds", errs)
    if deadline is not None and not 1 <= deadline <= MAX_INT32:
        errs.append(invalid_value(f"{path}.activeDeadlineSeconds", deadline,
                                  f"must be between 1 and {MAX_INT32}, inclusive"))
    check_non_negative(spec.get("terminationGracePeriodSeconds"), f"{path}.terminationGracePeriodSeconds", errs)
    validate_tolerations(spec.get("tolerations"), f"{path}.tolerations", errs)
    for i, alias in dict_items(spec.get("hostAliases"), f"{path}.hostAliases", errs):
        ip = as_str(alias.get("ip"), f"{path}.hostAliases[{i}].ip", errs)
        if not ip:
            errs.append(required(f"{path}.hostAliases[{i}].ip"))
        elif mv.is_valid_ip(ip):
            errs.append(invalid_value(f"{path}.hostAliases[{i}].ip", ip, "must be valid IP address"))
    security = as_dict(spec.get("securityContext"), f"{path}.securityContext", errs)
    for field in ("runAsUser", "runAsGroup", "fsGroup"):
        check_non_negative(security.get(field), f"{path}.securityContext.{field}", errs)
    for i, gate in dict_items(spec.get("readinessGates"), f"{path}.readinessGates", errs):
        condition = as_str(gate.get("conditionType"), f"{path}.readinessGates[{i}].conditionType", errs)
        if not condition:
            errs.append(required(f"{path}.readinessGates[{i}].conditionType"))
    for i, secret in dict_items(spec.get("imagePullSecrets"), f"{path}.imagePullSecrets", errs):
        if not secret.get("name"):
            errs.append(required(f"{path}.imagePullSecrets[{i}].name"))
    return errs


def validate_pod_template(template: Any, path: str = "spec.template") -> Errors:
    """A PodTemplateSpec: its metadata's labels and annotations, then its spec."""
    errs: Errors = []
    if not isinstance(template, dict):
        errs.append(required(path) if template is None else invalid_value(path, template, "must be an object"))
        return errs
    meta = as_dict(template.get("metadata"), f"{path}.metadata", errs)
    if meta.get("labels") is not None:
        errs.extend(mv.validate_labels(meta.get("labels"), f"{path}.metadata.labels"))
    if meta.get("annotations") is not None:
        errs.extend(mv.validate_annotations(meta.get("annotations"), f"{path}.metadata.annotations"))
    errs.extend(validate_pod_spec(template.get("spec"), f"{path}.spec"))
    return errs
