"""core/v1 nodes (cluster-scoped; +status): taints, pod CIDRs and provider ID set once,
the unschedulable field selector and the STATUS/ROLES table."""

from __future__ import annotations

from typing import Any

from pybernetes.api.fieldcheck import (
    as_bool,
    as_dict,
    as_list,
    as_str,
    check_enum,
    check_resource_list,
    dict_items,
)
from pybernetes.api.printing import CORE_AGE, age
from pybernetes.api.resource import ResourceDef, status_of
from pybernetes.api.strategy import Column, Strategy
from pybernetes.machinery import validation as mv
from pybernetes.machinery.errors import FieldError, duplicate, forbidden_field, invalid_value, required

Obj = dict[str, Any]

TAINT_EFFECTS = ("NoExecute", "NoSchedule", "PreferNoSchedule")
ROLE_PREFIX = "node-role.kubernetes.io/"
ROLE_LABEL = "kubernetes.io/role"


def _d(value: Any) -> Obj:
    return value if isinstance(value, dict) else {}


def validate_taints(value: Any, path: str, errs: list[FieldError]) -> None:
    seen: set[tuple[str, str]] = set()
    for i, taint in dict_items(value, path, errs):
        p = f"{path}[{i}]"
        key = as_str(taint.get("key"), f"{p}.key", errs)
        if not key:
            errs.append(required(f"{p}.key"))
        else:
            errs.extend(invalid_value(f"{p}.key", key, m) for m in mv.is_qualified_name(key))
        taint_value = as_str(taint.get("value"), f"{p}.value", errs)
        errs.extend(invalid_value(f"{p}.value", taint_value, m) for m in mv.is_valid_label_value(taint_value))
        effect = taint.get("effect")
        check_enum(effect, f"{p}.effect", TAINT_EFFECTS, errs, needed=True)
        pair = (key, str(effect))
        if pair in seen:
            errs.append(duplicate(p, {"key": key, "effect": effect}))
        seen.add(pair)


class NodeStrategy(Strategy):
    has_generation = False
    reset_status_on_create = False  # kubelets register nodes with their status
    field_names = ("spec.unschedulable",)

    def validate(self, obj: Obj) -> list[FieldError]:
        errs: list[FieldError] = []
        spec = as_dict(obj.get("spec"), "spec", errs)
        as_bool(spec.get("unschedulable"), "spec.unschedulable", errs)
        validate_taints(spec.get("taints"), "spec.taints", errs)
        cidrs = as_list(spec.get("podCIDRs"), "spec.podCIDRs", errs)
        if spec.get("podCIDR") and cidrs and cidrs[0] != spec["podCIDR"]:
            errs.append(invalid_value("spec.podCIDRs", cidrs, "first value must match `podCIDR`"))
        for i, cidr in enumerate(cidrs):
            if not isinstance(cidr, str) or mv.is_valid_cidr(cidr):
                errs.append(invalid_value(f"spec.podCIDRs[{i}]", cidr, "must be a valid CIDR"))
        if len(cidrs) > 2:
            errs.append(invalid_value("spec.podCIDRs", cidrs, "may specify no more than one CIDR for each IP family"))
        errs.extend(self._validate_status(obj))
        return errs

    def default(self, obj: Obj) -> None:
        spec = obj.get("spec")
        if isinstance(spec, dict) and spec.get("podCIDR") and not spec.get("podCIDRs"):
            spec["podCIDRs"] = [spec["podCIDR"]]
        elif isinstance(spec, dict) and spec.get("podCIDRs") and not spec.get("podCIDR"):
            spec["podCIDR"] = spec["podCIDRs"][0]
        status = obj.get("status")
        if isinstance(status, dict):
            if isinstance(status.get("capacity"), dict) and "allocatable" not in status:
                status["allocatable"] = dict(status["capacity"])

    def _validate_status(self, obj: Obj) -> list[FieldError]:
        errs: list[FieldError] = []
        status = as_dict(obj.get("status"), "status", errs)
        for key in ("capacity", "allocatable"):
            check_resource_list(status.get(key), f"status.{key}", errs, node=True)
        for i, address in dict_items(status.get("addresses"), "status.addresses", errs):
            if not address.get("type"):
                errs.append(required(f"status.addresses[{i}].type"))
        return errs

    def validate_update(self, new: Obj, old: Obj) -> list[FieldError]:
        errs: list[FieldError] = []
        new_spec, old_spec = _d(new.get("spec")), _d(old.get("spec"))
        if old_spec.get("podCIDRs") and new_spec.get("podCIDRs") != old_spec.get("podCIDRs"):
            errs.append(forbidden_field("spec.podCIDRs", 'node updates may not change podCIDR except from "" to valid'))
        if old_spec.get("providerID") and new_spec.get("providerID") != old_spec.get("providerID"):
            errs.append(forbidden_field("spec.providerID", 'node updates may not change providerID except from "" to valid'))
        return errs

    def validate_status_update(self, new: Obj, old: Obj) -> list[FieldError]:
        return self._validate_status(new)

    def columns(self) -> list[Column]:
        return [
            Column("Status", description="The status of the node"),
            Column("Roles", description="The roles of the node"),
            CORE_AGE,
            Column("Version", description="Kubelet Version reported by the node."),
            Column("Internal-IP", priority=1, description="List of addresses reachable to the node. Queried "
                   "from cloud provider, if available."),
            Column("External-IP", priority=1, description="List of addresses reachable to the node. Queried "
                   "from cloud provider, if available."),
            Column("OS-Image", priority=1, description="OS Image reported by the node from /etc/os-release "
                   "(e.g. Debian GNU/Linux 7 (wheezy))."),
            Column("Kernel-Version", priority=1, description="Kernel Version reported by the node from "
                   "'uname -r' (e.g. 3.16.0-0.bpo.4-amd64)."),
            Column("Container-Runtime", priority=1, description="ContainerRuntime Version reported by the "
                   "node through runtime remote API (e.g. containerd://1.4.2)."),
        ]

    def cells(self, obj: Obj, now: float) -> list[Any]:
        spec, status = _d(obj.get("spec")), _d(obj.get("status"))
        states: list[str] = []
        for condition in status.get("conditions") or []:
            if isinstance(condition, dict) and condition.get("type") == "Ready":
                states = ["Ready" if condition.get("status") == "True" else "NotReady"]
        if not states:
            states = ["Unknown"]
        if spec.get("unschedulable") is True:
            states.append("SchedulingDisabled")
        info = _d(status.get("nodeInfo"))
        return [
            ",".join(states),
            ",".join(node_roles(obj)) or "<none>",
            age(obj, now),
            str(info.get("kubeletVersion", "")),
            _address(status, "InternalIP"),
            _address(status, "ExternalIP"),
            info.get("osImage") or "<unknown>",
            info.get("kernelVersion") or "<unknown>",
            info.get("containerRuntimeVersion") or "<unknown>",
        ]

    def fields(self, obj: Obj) -> dict[str, str]:
        result = super().fields(obj)
        result["spec.unschedulable"] = "true" if _d(obj.get("spec")).get("unschedulable") is True else "false"
        return result


def node_roles(node: Obj) -> list[str]:
    roles: set[str] = set()
    for key, value in (_d(node.get("metadata")).get("labels") or {}).items():
        if key.startswith(ROLE_PREFIX) and key[len(ROLE_PREFIX):]:
            roles.add(key[len(ROLE_PREFIX):])
        elif key == ROLE_LABEL and value:
            roles.add(str(value))
    return sorted(roles)


def _address(status: Obj, kind: str) -> str:
    for address in status.get("addresses") or []:
        if isinstance(address, dict) and address.get("type") == kind:
            return str(address.get("address", ""))
    return "<none>"


NODES = ResourceDef(
    group="", version="v1", resource="nodes", kind="Node", singular="node",
    namespaced=False, strategy=NodeStrategy(), short_names=("no",),
    subresources=(status_of("Node"),),
)
