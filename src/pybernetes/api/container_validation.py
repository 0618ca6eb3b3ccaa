"""Validation of containers (regular, init, ephemeral) as upstream's core validation does it:
names, images, ports, env, resources, probes, lifecycle handlers, volume mounts."""

from __future__ import annotations

import re
from typing import Any

from pybernetes.api.fieldcheck import (
    PROTOCOLS,
    as_bool,
    as_dict,
    as_int,
    as_list,
    as_str,
    check_enum,
    check_int_or_named_port,
    check_name,
    check_non_negative,
    check_port,
    check_resource_requirements,
    config_key_errors,
    dict_items,
    one_of,
    type_error,
)
from pybernetes.machinery import validation as mv
from pybernetes.machinery.errors import (
    FieldError,
    duplicate,
    forbidden_field,
    invalid_value,
    not_found_field,
    required,
)

Obj = dict[str, Any]
Errors = list[FieldError]

PULL_POLICIES = ("Always", "IfNotPresent", "Never")
TERMINATION_MESSAGE_POLICIES = ("File", "FallbackToLogsOnError")
MOUNT_PROPAGATIONS = ("Bidirectional", "HostToContainer", "None")
_ENV_NAME = re.compile(r"^[-._a-zA-Z][-._a-zA-Z0-9]*$")
_ENV_NAME_MESSAGE = (
    "a valid environment variable name must consist of alphabetic characters, digits, '_', '-', "
    "or '.', and must not start with a digit (e.g. 'my.env-name',  or 'MY_ENV.NAME',  or "
    "'MyEnvName1', regex used for validation is '[-._a-zA-Z][-._a-zA-Z0-9]*')"
)
_HANDLERS = ("exec", "httpGet", "tcpSocket", "grpc")
_LIFECYCLE_HANDLERS = ("exec", "httpGet", "tcpSocket", "sleep")


def _check_handler(handler: Obj, path: str, kinds: tuple[str, ...], errs: Errors) -> None:
    kind = one_of(handler, kinds, path, "handler", errs)
    if kind is None:
        return
    body = as_dict(handler.get(kind), f"{path}.{kind}", errs)
    sub = f"{path}.{kind}"
    if kind == "exec":
        command = as_list(body.get("command"), f"{sub}.command", errs)
        if not command:
            errs.append(required(f"{sub}.command"))
    elif kind == "httpGet":
        check_int_or_named_port(body.get("port"), f"{sub}.port", errs)
        check_enum(body.get("scheme"), f"{sub}.scheme", ("HTTP", "HTTPS"), errs)
        for j, header in dict_items(body.get("httpHeaders"), f"{sub}.httpHeaders", errs):
            name = as_str(header.get("name"), f"{sub}.httpHeaders[{j}].name", errs)
            if not name:
                errs.append(required(f"{sub}.httpHeaders[{j}].name"))
    elif kind == "tcpSocket":
        check_int_or_named_port(body.get("port"), f"{sub}.port", errs)
    elif kind == "grpc":
        check_port(body.get("port"), f"{sub}.port", errs)
    elif kind == "sleep":
        seconds = as_int(body.get("seconds"), f"{sub}.seconds", errs)
        if seconds is not None and seconds <= 0:
            errs.append(invalid_value(f"{sub}.seconds", seconds, "must be greater than 0"))


def _check_probe(probe: Obj, path: str, errs: Errors, *, success_must_be_one: bool) -> None:
    _check_handler(probe, path, _HANDLERS, errs)
    for field in ("initialDelaySeconds", "timeoutSeconds", "periodSeconds", "successThreshold",
                  "failureThreshold"):
        check_non_negative(probe.get(field), f"{path}.{field}", errs)
    grace = as_int(probe.get("terminationGracePeriodSeconds"), f"{path}.terminationGracePeriodSeconds", errs)
    if grace is not None and grace <= 0:
        errs.append(invalid_value(f"{path}.terminationGracePeriodSeconds", grace, "must be greater than 0"))
    success = probe.get("successThreshold")
    if success_must_be_one and isinstance(success, int) and success != 1:
        errs.append(invalid_value(f"{path}.successThreshold", success, "must be 1"))


def _check_ports(container: Obj, path: str, host_network: bool, errs: Errors) -> None:
    names: set[str] = set()
    for i, port in dict_items(container.get("ports"), f"{path}.ports", errs):
        p = f"{path}.ports[{i}]"
        name = as_str(port.get("name"), f"{p}.name", errs)
        if name:
            for message in mv.is_valid_port_name(name):
                errs.append(invalid_value(f"{p}.name", name, message))
            if name in names:
                errs.append(duplicate(f"{p}.name", name))
            names.add(name)
        container_port = check_port(port.get("containerPort"), f"{p}.containerPort", errs)
        host_port = check_port(port.get("hostPort"), f"{p}.hostPort", errs, needed=False)
        check_enum(port.get("protocol"), f"{p}.protocol", PROTOCOLS, errs, needed=True)
        if host_network and host_port is not None and container_port is not None and host_port != container_port:
            errs.append(invalid_value(f"{p}.hostPort", host_port, "must match `containerPort` when `hostNetwork` is true"))


def _check_env(container: Obj, path: str, errs: Errors) -> None:
    for i, env in dict_items(container.get("env"), f"{path}.env", errs):
        p = f"{path}.env[{i}]"
        name = as_str(env.get("name"), f"{p}.name", errs)
        if not name:
            errs.append(required(f"{p}.name"))
        elif not _ENV_NAME.match(name):
            errs.append(invalid_value(f"{p}.name", name, _ENV_NAME_MESSAGE))
        as_str(env.get("value"), f"{p}.value", errs)
        source = env.get("valueFrom")
        if source is None:
            continue
        source = as_dict(source, f"{p}.valueFrom", errs)
        kinds = [k for k in ("fieldRef", "resourceFieldRef", "configMapKeyRef", "secretKeyRef")
                 if source.get(k) is not None]
        if not kinds:
            errs.append(invalid_value(f"{p}.valueFrom", "", "must specify one of: `fieldRef`, "
                                      "`resourceFieldRef`, `configMapKeyRef` or `secretKeyRef`"))
        elif len(kinds) > 1:
            errs.append(invalid_value(f"{p}.valueFrom", "", "may not have more than one field specified at a time"))
        if env.get("value") and kinds:
            errs.append(invalid_value(f"{p}.valueFrom", "", "may not be specified when `value` is not empty"))
        for kind in kinds:
            ref = as_dict(source.get(kind), f"{p}.valueFrom.{kind}", errs)
            rp = f"{p}.valueFrom.{kind}"
            if kind == "fieldRef":
                if not ref.get("fieldPath"):
                    errs.append(required(f"{rp}.fieldPath"))
            elif kind == "resourceFieldRef":
                if not ref.get("resource"):
                    errs.append(required(f"{rp}.resource"))
            else:
                if not ref.get("key"):
                    errs.append(required(f"{rp}.key"))
                elif isinstance(ref["key"], str):
                    for message in config_key_errors(ref["key"]):
                        errs.append(invalid_value(f"{rp}.key", ref["key"], message))
    for i, source in dict_items(container.get("envFrom"), f"{path}.envFrom", errs):
        p = f"{path}.envFrom[{i}]"
        kinds = [k for k in ("configMapRef", "secretRef") if source.get(k) is not None]
        if not kinds:
            errs.append(invalid_value(p, "", "must specify one of: `configMapRef` or `secretRef`"))
        elif len(kinds) > 1:
            errs.append(invalid_value(p, "", "may not have more than one field specified at a time"))


def _check_mounts(container: Obj, path: str, volumes: dict[str, Obj], errs: Errors) -> None:
    mount_paths: set[str] = set()
    for i, mount in dict_items(container.get("volumeMounts"), f"{path}.volumeMounts", errs):
        p = f"{path}.volumeMounts[{i}]"
        name = as_str(mount.get("name"), f"{p}.name", errs)
        if not name:
            errs.append(required(f"{p}.name"))
        elif name not in volumes:
            errs.append(not_found_field(f"{p}.name", name))
        mount_path = as_str(mount.get("mountPath"), f"{p}.mountPath", errs)
        if not mount_path:
            errs.append(required(f"{p}.mountPath"))
        elif mount_path in mount_paths:
            errs.append(invalid_value(f"{p}.mountPath", mount_path, "must be unique"))
        mount_paths.add(mount_path)
        sub_path = as_str(mount.get("subPath"), f"{p}.subPath", errs)
        if sub_path and (sub_path.startswith("/") or ".." in sub_path.split("/")):
            detail = "must be a relative path" if sub_path.startswith("/") else "must not contain '..'"
            errs.append(invalid_value(f"{p}.subPath", sub_path, detail))
        check_enum(mount.get("mountPropagation"), f"{p}.mountPropagation", MOUNT_PROPAGATIONS, errs)
        as_bool(mount.get("readOnly"), f"{p}.readOnly", errs)
    for i, device in dict_items(container.get("volumeDevices"), f"{path}.volumeDevices", errs):
        name = as_str(device.get("name"), f"{path}.volumeDevices[{i}].name", errs)
        if not name:
            errs.append(required(f"{path}.volumeDevices[{i}].name"))
        elif name not in volumes:
            errs.append(not_found_field(f"{path}.volumeDevices[{i}].name", name))


def validate_container(
    container: Obj,
    path: str,
    volumes: dict[str, Obj],
    *,
    kind: str = "regular",  # regular | init | ephemeral
    host_network: bool = False,
) -> Errors:
    """One container's own fields (name uniqueness and host ports are checked by the caller)."""
    errs: Errors = []
    check_name(as_str(container.get("name"), f"{path}.name", errs), f"{path}.name", mv.is_dns1123_label, errs)
    image = as_str(container.get("image"), f"{path}.image", errs)
    if not image:
        errs.append(required(f"{path}.image"))
    elif image != image.strip():
        errs.append(invalid_value(f"{path}.image", image, "must not have leading or trailing whitespace"))
    as_list(container.get("command"), f"{path}.command", errs)
    as_list(container.get("args"), f"{path}.args", errs)
    check_enum(container.get("imagePullPolicy"), f"{path}.imagePullPolicy", PULL_POLICIES, errs, needed=True)
    check_enum(container.get("terminationMessagePolicy"), f"{path}.terminationMessagePolicy",
               TERMINATION_MESSAGE_POLICIES, errs, needed=True)
    restart_policy = container.get("restartPolicy")
    restartable = False
    if restart_policy is not None:
        if kind != "init":
            errs.append(forbidden_field(f"{path}.restartPolicy", "may not be set for non-init containers"))
        elif restart_policy != "Always":
            check_enum(restart_policy, f"{path}.restartPolicy", ("Always",), errs)
        else:
            restartable = True
    _check_ports(container, path, host_network, errs)
    _check_env(container, path, errs)
    check_resource_requirements(container.get("resources"), f"{path}.resources", errs)
    _check_mounts(container, path, volumes, errs)
    probes_allowed = kind == "regular" or restartable
    for probe_name in ("livenessProbe", "readinessProbe", "startupProbe"):
        probe = container.get(probe_name)
        if probe is None:
            continue
        p = f"{path}.{probe_name}"
        if kind == "ephemeral":
            errs.append(forbidden_field(p, "cannot be set for an Ephemeral Container"))
        elif not probes_allowed:
            errs.append(forbidden_field(p, "may not be set for init containers without restartPolicy=Always"))
        elif restartable and probe_name == "readinessProbe":
            errs.append(forbidden_field(p, "may not be set for init containers"))
        elif isinstance(probe, dict):
            _check_probe(probe, p, errs, success_must_be_one=probe_name != "readinessProbe")
        else:
            errs.append(type_error(p, probe, "object"))
    lifecycle = container.get("lifecycle")
    if lifecycle is not None:
        p = f"{path}.lifecycle"
        if kind == "ephemeral":
            errs.append(forbidden_field(p, "cannot be set for an Ephemeral Container"))
        elif kind == "init" and not restartable:
            errs.append(forbidden_field(p, "may not be set for init containers without restartPolicy=Always"))
        else:
            for hook, handler in as_dict(lifecycle, p, errs).items():
                if hook not in ("postStart", "preStop"):
                    continue
                if isinstance(handler, dict):
                    _check_handler(handler, f"{p}.{hook}", _LIFECYCLE_HANDLERS, errs)
                else:
                    errs.append(type_error(f"{p}.{hook}", handler, "object"))
    return errs


def host_port_key(port: Obj) -> str | None:
    host_port = port.get("hostPort")
    if not isinstance(host_port, int) or isinstance(host_port, bool) or host_port == 0:
        return None
    return f"{host_port}/{port.get('protocol', 'TCP')}"
