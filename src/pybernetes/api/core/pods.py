"""core/v1 pods: defaulting and validation of the spec (shared with templates through
``pybernetes.api.podspec``), what an update may change, status (phase Pending and the QoS
class on create), the binding subresource, field selectors and the table."""

from __future__ import annotations

import copy
from fractions import Fraction
from typing import Any

from pybernetes.api.core.pod_printing import POD_COLUMNS, pod_cells
from pybernetes.api.podspec import default_pod_spec, validate_pod_spec
from pybernetes.api.resource import ResourceDef, Subresource, status_of
from pybernetes.api.strategy import Column, Strategy
from pybernetes.machinery import validation as mv
from pybernetes.machinery.errors import (
    FieldError,
    forbidden_field,
    invalid_value,
    not_supported,
    required,
)
from pybernetes.machinery.quantity import parse_quantity

Obj = dict[str, Any]

POD_UPDATE_MESSAGE = (
    "pod updates may not change fields other than `spec.containers[*].image`,"
    "`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` "
    "(only additions to existing tolerations),`spec.terminationGracePeriodSeconds` "
    "(allow it to be set to 1 if it was previously negative)"
)
MAX_INT32 = 2**31 - 1


def _quantity(value: Any) -> Fraction:
    try:
        return parse_quantity(str(value))
    except ValueError:
        return Fraction(0)


def pod_qos_class(spec: Any) -> str:
    """Upstream's QoS class: Guaranteed, Burstable or BestEffort (cpu and memory only)."""
    if not isinstance(spec, dict):
        return "BestEffort"
    requests: dict[str, Fraction] = {}
    limits: dict[str, Fraction] = {}
    guaranteed = True
    containers = [c for key in ("containers", "initContainers") for c in spec.get(key) or []
                  if isinstance(c, dict)]
    for container in containers:
        resources = container.get("resources") if isinstance(container.get("resources"), dict) else {}
        for name, value in (resources.get("requests") or {}).items():
            if name in ("cpu", "memory") and _quantity(value) > 0:
                requests[name] = requests.get(name, Fraction(0)) + _quantity(value)
        found = set()
        for name, value in (resources.get("limits") or {}).items():
            if name in ("cpu", "memory") and _quantity(value) > 0:
                found.add(name)
                limits[name] = limits.get(name, Fraction(0)) + _quantity(value)
        if found != {"cpu", "memory"}:
            guaranteed = False
    if not requests and not limits:
        return "BestEffort"
    if guaranteed and all(limits.get(name) == amount for name, amount in requests.items()) \
            and len(requests) == len(limits):
        return "Guaranteed"
    return "Burstable"


def _sync_ips(status: Obj) -> None:
    """v1 keeps podIP/podIPs and hostIP/hostIPs in step (the plural wins)."""
    for single, plural in (("podIP", "podIPs"), ("hostIP", "hostIPs")):
        items = status.get(plural)
        if isinstance(items, list) and items and isinstance(items[0], dict):
            status[single] = items[0].get("ip", "")
        elif status.get(single):
            status[plural] = [{"ip": status[single]}]


def _comparable_spec(spec: Obj) -> Obj:
    """A copy of the spec without the fields a pod update may change."""
    result = copy.deepcopy(spec)
    for key in ("activeDeadlineSeconds", "tolerations", "terminationGracePeriodSeconds", "schedulingGates"):
        result.pop(key, None)
    for key in ("containers", "initContainers"):
        items = result.get(key)
        if isinstance(items, list):
            for item in items:
                if isinstance(item, dict):
                    item.pop("image", None)
    return result


def _changed_paths(new: Any, old: Any, path: str, out: list[str]) -> None:
    if len(out) >= 5 or new == old:
        return
    if isinstance(new, dict) and isinstance(old, dict):
        for key in sorted(set(new) | set(old)):
            _changed_paths(new.get(key), old.get(key), f"{path}.{key}", out)
    elif isinstance(new, list) and isinstance(old, list) and len(new) == len(old):
        for i, (a, b) in enumerate(zip(new, old, strict=True)):
            _changed_paths(a, b, f"{path}[{i}]", out)
    else:
        out.append(path)


def validate_pod_spec_update(new_spec: Any, old_spec: Any) -> list[FieldError]:
    if not isinstance(new_spec, dict) or not isinstance(old_spec, dict):
        return []
    errs: list[FieldError] = []
    deadline, old_deadline = new_spec.get("activeDeadlineSeconds"), old_spec.get("activeDeadlineSeconds")
    if isinstance(deadline, int):
        if not 0 <= deadline <= MAX_INT32:
            return [invalid_value("spec.activeDeadlineSeconds", deadline,
                                  f"must be between 0 and {MAX_INT32}, inclusive")]
        if isinstance(old_deadline, int) and old_deadline < deadline:
            return [invalid_value("spec.activeDeadlineSeconds", deadline, "must be less than or equal to previous value")]
    elif deadline is None and old_deadline is not None:
        errs.append(invalid_value("spec.activeDeadlineSeconds", None, "must not update from a positive integer to nil value"))
    new_tolerations = new_spec.get("tolerations") or []
    for i, toleration in enumerate(old_spec.get("tolerations") or []):
        if toleration not in new_tolerations:
            errs.append(forbidden_field(f"spec.tolerations[{i}]", "existing toleration can not be modified except its tolerationSeconds"))
    grace, old_grace = new_spec.get("terminationGracePeriodSeconds"), old_spec.get("terminationGracePeriodSeconds")
    grace_ok = grace == old_grace or (isinstance(old_grace, int) and old_grace < 0 and grace == 1)
    gates_ok = all(g in (old_spec.get("schedulingGates") or []) for g in new_spec.get("schedulingGates") or [])
    same_shape = all(len(new_spec.get(k) or []) == len(old_spec.get(k) or []) for k in ("containers", "initContainers"))
    if not same_shape or not grace_ok or not gates_ok or \
            _comparable_spec(new_spec) != _comparable_spec(old_spec):
        changed: list[str] = []
        _changed_paths(_comparable_spec(new_spec), _comparable_spec(old_spec), "spec", changed)
        if not grace_ok:
            changed.append("spec.terminationGracePeriodSeconds")
        if not gates_ok:
            changed.append("spec.schedulingGates")
        detail = POD_UPDATE_MESSAGE + ("\n  changed: " + ", ".join(changed) if changed else "")
        errs.append(forbidden_field("spec", detail))
    return errs


class PodStrategy(Strategy):
    has_generation = False
    field_names = (
        "spec.nodeName", "spec.restartPolicy", "spec.schedulerName", "spec.serviceAccountName",
        "spec.hostNetwork", "status.phase", "status.podIP", "status.nominatedNodeName",
    )

    def default(self, obj: Obj) -> None:
        spec = obj.get("spec")
        if isinstance(spec, dict):
            default_pod_spec(spec)
        status = obj.get("status")
        if isinstance(status, dict):
            _sync_ips(status)

    def prepare_for_create(self, obj: Obj) -> None:
        obj["status"] = {"phase": "Pending", "qosClass": pod_qos_class(obj.get("spec"))}

    def validate(self, obj: Obj) -> list[FieldError]:
        spec = obj.get("spec")
        if spec is None:
            return [required("spec.containers")]
        return validate_pod_spec(spec, "spec")

    def validate_update(self, new: Obj, old: Obj) -> list[FieldError]:
        return validate_pod_spec_update(new.get("spec"), old.get("spec"))

    def prepare_for_status_update(self, new: Obj, old: Obj) -> None:
        super().prepare_for_status_update(new, old)
        status = new.get("status")
        if isinstance(status, dict):
            _sync_ips(status)
        meta = new.get("metadata")
        if isinstance(meta, dict):
            old_meta = old.get("metadata") or {}
            for key in ("deletionTimestamp", "ownerReferences"):
                if key in old_meta:
                    meta[key] = old_meta[key]
                else:
                    meta.pop(key, None)

    def validate_status_update(self, new: Obj, old: Obj) -> list[FieldError]:
        errs: list[FieldError] = []
        status = new.get("status")
        if not isinstance(status, dict):
            return [invalid_value("status", status, "must be an object")] if status is not None else []
        if status.get("phase") not in (None, "", "Pending", "Running", "Succeeded", "Failed", "Unknown"):
            errs.append(not_supported("status.phase", status["phase"],
                                      ("Pending", "Running", "Succeeded", "Failed", "Unknown")))
        nominated = status.get("nominatedNodeName")
        if isinstance(nominated, str) and nominated:
            errs.extend(invalid_value("status.nominatedNodeName", nominated, m) for m in mv.is_dns1123_subdomain(nominated))
        for key in ("podIPs", "hostIPs"):
            items = status.get(key) or []
            if not isinstance(items, list):
                errs.append(invalid_value(f"status.{key}", items, "must be a list"))
                continue
            if len(items) > 2:
                errs.append(invalid_value(f"status.{key}", items, "may specify no more than one IP for each IP family"))
            for i, item in enumerate(items):
                ip = item.get("ip") if isinstance(item, dict) else item
                if not isinstance(ip, str) or mv.is_valid_ip(ip):
                    errs.append(invalid_value(f"status.{key}[{i}].ip", ip, "must be a valid IP address"))
        old_phase = (old.get("status") or {}).get("phase")
        if old_phase in ("Succeeded", "Failed") and status.get("phase") != old_phase:
            errs.append(forbidden_field("status.phase", f"cannot transition from terminal phase {old_phase}"))
        return errs

    def columns(self) -> list[Column]:
        return list(POD_COLUMNS)

    def cells(self, obj: Obj, now: float) -> list[Any]:
        return pod_cells(obj, now)

    def fields(self, obj: Obj) -> dict[str, str]:
        result = super().fields(obj)
        spec = obj.get("spec") if isinstance(obj.get("spec"), dict) else {}
        status = obj.get("status") if isinstance(obj.get("status"), dict) else {}
        pod_ips = status.get("podIPs")
        pod_ip = ""
        if isinstance(pod_ips, list) and pod_ips and isinstance(pod_ips[0], dict):
            pod_ip = str(pod_ips[0].get("ip", ""))
        result.update({
            "spec.nodeName": str(spec.get("nodeName") or ""),
            "spec.restartPolicy": str(spec.get("restartPolicy") or ""),
            "spec.schedulerName": str(spec.get("schedulerName") or ""),
            "spec.serviceAccountName": str(spec.get("serviceAccountName") or ""),
            "spec.hostNetwork": "true" if spec.get("hostNetwork") is True else "false",
            "status.phase": str(status.get("phase") or ""),
            "status.podIP": pod_ip,
            "status.nominatedNodeName": str(status.get("nominatedNodeName") or ""),
        })
        return result


PODS = ResourceDef(
    group="",
    version="v1",
    resource="pods",
    kind="Pod",
    singular="pod",
    namespaced=True,
    strategy=PodStrategy(),
    short_names=("po",),
    categories=("all",),
    subresources=(
        status_of("Pod"),
        Subresource("binding", "Binding", verbs=("create",)),
        Subresource("log", "Pod", verbs=("get",)),
    ),
)
