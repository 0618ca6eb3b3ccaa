"""A container's environment, as upstream kubelet computes it (pure: every object it reads is
passed in): the Services' variables, ``envFrom``, then ``env`` in order, each value with
``$(VAR)`` references expanded against the variables defined before it.

- **Service variables** (upstream's ``getServiceEnvVarMap``): for each Service with a cluster
  IP in the pod's namespace (all of them when ``enableServiceLinks`` is true, the default) and
  the ``kubernetes`` Service of ``default`` always: ``<NAME>_SERVICE_HOST``,
  ``<NAME>_SERVICE_PORT``, ``<NAME>_SERVICE_PORT_<PORT NAME>`` and the Docker-link style
  ``<NAME>_PORT``, ``<NAME>_PORT_<port>_<PROTO>[_PROTO|_PORT|_ADDR]``.  They never override a
  variable the container defines.
- **envFrom**: every key of a ConfigMap or Secret (with ``prefix``); a missing source fails the
  container with CreateContainerConfigError unless ``optional``; keys that are not valid
  variable names are skipped and reported.
- **valueFrom**: ``fieldRef`` (metadata.name, namespace, uid, labels['k'], annotations['k'],
  spec.nodeName, spec.serviceAccountName, status.hostIP(s), status.podIP(s)),
  ``resourceFieldRef`` (limits/requests of cpu, memory, ephemeral-storage with a divisor;
  limits default to the node's allocatable), ``configMapKeyRef`` and ``secretKeyRef``.

Errors are ``EnvError`` with upstream's messages; the kubelet shows them as
CreateContainerConfigError.
"""

from __future__ import annotations

import base64
import math
import re
from collections.abc import Mapping
from typing import Any

from pybernetes.machinery.quantity import parse_quantity

Obj = dict[str, Any]

_NAME_OK = re.compile(r"[-._a-zA-Z][-._a-zA-Z0-9]*")
_FIELD_LABEL = re.compile(r"metadata\.(labels|annotations)\['(.+)'\]")


class EnvError(Exception):
    """The container cannot get its environment (CreateContainerConfigError)."""


def expand(value: str, env: Mapping[str, str], missing: set[str] | None = None) -> str:
    """Upstream's ``$(VAR)`` expansion: known references are replaced, unknown ones kept as
    written, ``$$`` is one literal ``$``.  With ``missing`` (subPathExpr's rule), a reference
    to an unknown or empty variable becomes "" and its name is added to ``missing``."""
    out: list[str] = []
    i, n = 0, len(value)
    while i < n:
        c = value[i]
        if c == "$" and i + 1 < n:
            nxt = value[i + 1]
            if nxt == "$":
                out.append("$")
                i += 2
                continue
            if nxt == "(":
                end = value.find(")", i + 2)
                if end != -1:
                    name = value[i + 2:end]
                    if missing is not None:
                        found = env.get(name, "")
                        if not found:
                            missing.add(name)
                        out.append(found)
                    else:
                        out.append(env[name] if name in env else value[i:end + 1])
                    i = end + 1
                    continue
        out.append(c)
        i += 1
    return "".join(out)


def _service_name(name: str) -> str:
    return name.upper().replace("-", "_")


def service_env(services: list[Obj], namespace: str, enable_service_links: bool = True) -> dict[str, str]:
    """The Service variables a pod in ``namespace`` sees (``services``: all Services the node
    knows)."""
    chosen: dict[str, Obj] = {}
    for svc in services:
        meta, spec = svc.get("metadata") or {}, svc.get("spec") or {}
        ip = spec.get("clusterIP")
        if not ip or ip == "None":
            continue
        name, ns = meta.get("name", ""), meta.get("namespace", "")
        if ns == namespace and enable_service_links:
            chosen[name] = svc
        elif ns == "default" and name == "kubernetes" and name not in chosen:
            chosen[name] = svc
    env: dict[str, str] = {}
    for name in sorted(chosen):
        spec = chosen[name].get("spec") or {}
        ports = spec.get("ports") or []
        prefix, ip = _service_name(name), spec["clusterIP"]
        env[f"{prefix}_SERVICE_HOST"] = ip
        if not ports:
            continue
        env[f"{prefix}_SERVICE_PORT"] = str(ports[0].get("port"))
        for port in ports:
            if port.get("name"):
                env[f"{prefix}_SERVICE_PORT_{_service_name(port['name'])}"] = str(port.get("port"))
        first = ports[0]
        env[f"{prefix}_PORT"] = f"{str(first.get('protocol') or 'TCP').lower()}://{ip}:{first.get('port')}"
        for port in ports:
            proto = str(port.get("protocol") or "TCP")
            base = f"{prefix}_PORT_{port.get('port')}_{proto.upper()}"
            env[base] = f"{proto.lower()}://{ip}:{port.get('port')}"
            env[f"{base}_PROTO"] = proto.lower()
            env[f"{base}_PORT"] = str(port.get("port"))
            env[f"{base}_ADDR"] = ip
    return env


def field_value(pod: Obj, path: str) -> str:
    """The value of a downward-API ``fieldRef`` (also used by downwardAPI volumes)."""
    meta, spec, status = pod.get("metadata") or {}, pod.get("spec") or {}, pod.get("status") or {}
    simple = {
        "metadata.name": meta.get("name"), "metadata.namespace": meta.get("namespace"),
        "metadata.uid": meta.get("uid"), "spec.nodeName": spec.get("nodeName"),
        "spec.serviceAccountName": spec.get("serviceAccountName"),
        "status.hostIP": status.get("hostIP"), "status.podIP": status.get("podIP"),
        "status.hostIPs": ",".join(a.get("ip", "") for a in status.get("hostIPs") or []),
        "status.podIPs": ",".join(a.get("ip", "") for a in status.get("podIPs") or []),
    }
    if path in simple:
        return str(simple[path] or "")
    match = _FIELD_LABEL.fullmatch(path)
    if match:
        return str((meta.get(match.group(1)) or {}).get(match.group(2), ""))
    if path in ("metadata.labels", "metadata.annotations"):
        values = meta.get(path.split(".")[1]) or {}
        return "\n".join(f'{k}="{v}"' for k, v in sorted(values.items()))
    raise EnvError(f"unsupported fieldPath: {path}")


def resource_value(container: Obj, resource: str, divisor: str | None, allocatable: Mapping[str, str]) -> str:
    """A ``resourceFieldRef`` value: limits.*/requests.* of the container, limits defaulting to
    the node's allocatable, rounded up to whole ``divisor`` units (as upstream)."""
    kind, _, name = resource.partition(".")
    if kind not in ("limits", "requests") or name not in ("cpu", "memory", "ephemeral-storage"):
        raise EnvError(f"unsupported container resource: {resource}")
    resources = container.get("resources") or {}
    raw = (resources.get(kind) or {}).get(name)
    if raw is None and kind == "requests":
        raw = (resources.get("limits") or {}).get(name)
    if raw is None:
        raw = allocatable.get(name, "0") if kind == "limits" else "0"
    value = parse_quantity(str(raw))
    unit = parse_quantity(str(divisor)) if divisor else parse_quantity("1")
    if unit <= 0:
        raise EnvError(f"invalid divisor {divisor!r} for {resource}")
    return str(math.ceil(value / unit))


def _key_ref(ref: Obj, kind: str, objects: Mapping[str, Obj | None], namespace: str) -> str | None:
    name, key = ref.get("name", ""), ref.get("key", "")
    obj = objects.get(name)
    optional = bool(ref.get("optional"))
    label = "configmap" if kind == "ConfigMap" else "secret"
    if obj is None:
        if optional:
            return None
        raise EnvError(f'{label} "{name}" not found')
    value = _data_value(obj, key, kind)
    if value is None:
        if optional:
            return None
        raise EnvError(f"couldn't find key {key} in {kind} {namespace}/{name}")
    return value


def _data_value(obj: Obj, key: str, kind: str) -> str | None:
    if kind == "Secret":
        raw = (obj.get("data") or {}).get(key)
        return None if raw is None else base64.b64decode(raw).decode("utf-8", "replace")
    data = obj.get("data") or {}
    if key in data:
        return str(data[key])
    binary = (obj.get("binaryData") or {}).get(key)
    if binary is None:
        return None
    return base64.b64decode(binary).decode("utf-8", "replace")


def referenced_sources(container: Obj) -> tuple[set[str], set[str]]:
    """The ConfigMaps and Secrets a container's env names: (configmaps, secrets)."""
    configmaps, secrets = set(), set()
    for source in container.get("envFrom") or []:
        if source.get("configMapRef"):
            configmaps.add(source["configMapRef"].get("name", ""))
        if source.get("secretRef"):
            secrets.add(source["secretRef"].get("name", ""))
    for var in container.get("env") or []:
        value_from = var.get("valueFrom") or {}
        if value_from.get("configMapKeyRef"):
            configmaps.add(value_from["configMapKeyRef"].get("name", ""))
        if value_from.get("secretKeyRef"):
            secrets.add(value_from["secretKeyRef"].get("name", ""))
    return configmaps, secrets


def container_env(pod: Obj, container: Obj, *, services: Mapping[str, str],
                  configmaps: Mapping[str, Obj | None], secrets: Mapping[str, Obj | None],
                  allocatable: Mapping[str, str]) -> tuple[list[tuple[str, str]], list[str]]:
    """The container's variables in order, and warnings (skipped invalid envFrom keys).
    ``configmaps``/``secrets`` map the names the container refers to (referenced_sources) to
    the objects, None for those that do not exist."""
    namespace = (pod.get("metadata") or {}).get("namespace", "")
    defined: dict[str, str] = {}
    warnings: list[str] = []
    for source in container.get("envFrom") or []:
        prefix = source.get("prefix") or ""
        for kind, ref_key, objects in (("ConfigMap", "configMapRef", configmaps), ("Secret", "secretRef", secrets)):
            ref = source.get(ref_key)
            if not ref:
                continue
            obj = objects.get(ref.get("name", ""))
            if obj is None:
                if ref.get("optional"):
                    continue
                raise EnvError(f'{"configmap" if kind == "ConfigMap" else "secret"} "{ref.get("name", "")}" not found')
            keys = sorted(set(obj.get("data") or {}) | set(obj.get("binaryData") or {} if kind == "ConfigMap" else ()))
            invalid = [k for k in keys if not _NAME_OK.fullmatch(prefix + k)]
            if invalid:
                warnings.append(f"Keys [{', '.join(invalid)}] from the EnvFrom {kind.lower()} "
                                f"{namespace}/{ref.get('name')} were skipped since they are considered "
                                "invalid environment variable names.")
            for key in keys:
                if key not in invalid:
                    defined[prefix + key] = _data_value(obj, key, kind) or ""
    scope = {**services, **defined}
    for var in container.get("env") or []:
        name = var.get("name", "")
        value_from = var.get("valueFrom")
        if not value_from:
            value = expand(str(var.get("value") or ""), scope)
        elif value_from.get("fieldRef"):
            value = field_value(pod, value_from["fieldRef"].get("fieldPath", ""))
        elif value_from.get("resourceFieldRef"):
            ref = value_from["resourceFieldRef"]
            target = container
            if ref.get("containerName"):
                spec = pod.get("spec") or {}
                every = [*(spec.get("initContainers") or []), *(spec.get("containers") or [])]
                target = next((c for c in every if c.get("name") == ref["containerName"]), None) or {}
            value = resource_value(target, ref.get("resource", ""), ref.get("divisor"), allocatable)
        elif value_from.get("configMapKeyRef"):
            found = _key_ref(value_from["configMapKeyRef"], "ConfigMap", configmaps, namespace)
            if found is None:
                continue
            value = found
        elif value_from.get("secretKeyRef"):
            found = _key_ref(value_from["secretKeyRef"], "Secret", secrets, namespace)
            if found is None:
                continue
            value = found
        else:
            continue
        defined[name] = value
        scope[name] = value
    result = list(defined.items())
    result.extend((k, v) for k, v in services.items() if k not in defined)
    return result, warnings
