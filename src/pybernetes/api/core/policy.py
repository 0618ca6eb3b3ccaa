"""core/v1 limitranges and resourcequotas: per-namespace resource policy (defaults of
LimitRange items, min <= default request <= default <= max, quota resource names) and
their tables (CREATED AT; AGE REQUEST LIMIT)."""

from __future__ import annotations

from fractions import Fraction
from typing import Any

from pybernetes.api.fieldcheck import as_dict, as_list, check_enum, dict_items, parse_quantity_at
from pybernetes.api.printing import CORE_AGE, age, format_time, parse_time
from pybernetes.api.resource import ResourceDef, status_of
from pybernetes.api.strategy import Column, Strategy
from pybernetes.machinery import validation as mv
from pybernetes.machinery.errors import FieldError, forbidden_field, invalid_value, not_supported
from pybernetes.machinery.quantity import canonical_quantity

Obj = dict[str, Any]

LIMIT_TYPES = ("Container", "PersistentVolumeClaim", "Pod")
QUOTA_SCOPES = ("BestEffort", "CrossNamespacePodAffinity", "NotBestEffort", "NotTerminating",
                "PriorityClass", "Terminating")
_STANDARD_QUOTA = {
    "pods", "services", "replicationcontrollers", "resourcequotas", "secrets", "configmaps",
    "persistentvolumeclaims", "services.nodeports", "services.loadbalancers", "cpu", "memory",
    "ephemeral-storage", "storage", "requests.cpu", "requests.memory", "requests.storage",
    "requests.ephemeral-storage", "limits.cpu", "limits.memory", "limits.ephemeral-storage",
}


def _d(value: Any) -> Obj:
    return value if isinstance(value, dict) else {}


def _quantities(value: Any, path: str, errs: list[FieldError]) -> dict[str, Fraction]:
    out: dict[str, Fraction] = {}
    for name, raw in as_dict(value, path, errs).items():
        amount = parse_quantity_at(raw, f"{path}[{name}]", errs)
        if amount is None:
            continue
        if amount < 0:
            errs.append(invalid_value(f"{path}[{name}]", str(raw), "must be greater than or equal to 0"))
        out[name] = amount
    return out


def default_limit_range_item(item: Obj) -> None:
    if item.get("type") != "Container":
        return
    default = dict(_d(item.get("default")))
    request = dict(_d(item.get("defaultRequest")))
    for key, value in _d(item.get("max")).items():
        default.setdefault(key, value)
    for key, value in default.items():
        request.setdefault(key, value)
    for key, value in _d(item.get("min")).items():
        request.setdefault(key, value)
    if default:
        item["default"] = default
    if request:
        item["defaultRequest"] = request


class LimitRangeStrategy(Strategy):
    status_fields = ()
    has_generation = False

    def default(self, obj: Obj) -> None:
        for item in _d(obj.get("spec")).get("limits") or []:
            if isinstance(item, dict):
                default_limit_range_item(item)

    def validate(self, obj: Obj) -> list[FieldError]:
        errs: list[FieldError] = []
        spec = as_dict(obj.get("spec"), "spec", errs)
        for i, item in dict_items(spec.get("limits"), "spec.limits", errs):
            p = f"spec.limits[{i}]"
            kind = item.get("type")
            check_enum(kind, f"{p}.type", LIMIT_TYPES, errs, needed=True)
            bounds = {k: _quantities(item.get(k), f"{p}.{k}", errs)
                      for k in ("min", "max", "default", "defaultRequest", "maxLimitRequestRatio")}
            raw = {k: _d(item.get(k)) for k in bounds}
            if kind == "Pod":
                for key in ("default", "defaultRequest"):
                    if raw[key]:
                        errs.append(forbidden_field(f"{p}.{key}", "may not be specified when `type` is 'Pod'"))
            lo, hi = bounds["min"], bounds["max"]
            for name, value in lo.items():
                if name in hi and value > hi[name]:
                    errs.append(invalid_value(f"{p}.min[{name}]", str(raw["min"][name]),
                                              f"min value {raw['min'][name]} is greater than max value {raw['max'][name]}"))
            for key, label in (("defaultRequest", "default request value"), ("default", "default value")):
                for name, value in bounds[key].items():
                    shown = raw[key][name]
                    if name in lo and value < lo[name]:
                        errs.append(invalid_value(f"{p}.{key}[{name}]", str(shown),
                                                  f"{label} {shown} is less than min value {raw['min'][name]}"))
                    if name in hi and value > hi[name]:
                        errs.append(invalid_value(f"{p}.{key}[{name}]", str(shown),
                                                  f"{label} {shown} is greater than max value {raw['max'][name]}"))
                    if key == "defaultRequest" and name in bounds["default"] and value > bounds["default"][name]:
                        errs.append(invalid_value(
                            f"{p}.defaultRequest[{name}]", str(shown),
                            f"default request value {shown} is greater than default limit value "
                            f"{raw['default'][name]}"))
            for name, value in bounds["maxLimitRequestRatio"].items():
                if value < 1:
                    shown = raw["maxLimitRequestRatio"][name]
                    errs.append(invalid_value(f"{p}.maxLimitRequestRatio[{name}]", str(shown),
                                              f"ratio {shown} is less than 1"))
        return errs

    def columns(self) -> list[Column]:
        return [Column("Created At", "date", description="CreationTimestamp is a timestamp representing the "
                       "server time when this object was created.")]

    def cells(self, obj: Obj, now: float) -> list[Any]:
        epoch = parse_time(_d(obj.get("metadata")).get("creationTimestamp"))
        return [format_time(epoch) if epoch is not None else "<unknown>"]


def _quota_name_ok(name: str) -> bool:
    if name in _STANDARD_QUOTA or name.startswith(("count/", "hugepages-", "requests.hugepages-")):
        return True
    return "/" in name and not mv.is_qualified_name(name)


class ResourceQuotaStrategy(Strategy):
    has_generation = False

    def validate(self, obj: Obj) -> list[FieldError]:
        errs: list[FieldError] = []
        spec = as_dict(obj.get("spec"), "spec", errs)
        for name in as_dict(spec.get("hard"), "spec.hard", errs):
            if not _quota_name_ok(name):
                errs.append(invalid_value(f"spec.hard[{name}]", name, "must be a standard resource for quota"))
        _quantities(spec.get("hard"), "spec.hard", errs)
        for i, scope in enumerate(as_list(spec.get("scopes"), "spec.scopes", errs)):
            if scope not in QUOTA_SCOPES:
                errs.append(not_supported(f"spec.scopes[{i}]", scope, QUOTA_SCOPES))
        return errs

    def validate_status_update(self, new: Obj, old: Obj) -> list[FieldError]:
        errs: list[FieldError] = []
        status = as_dict(new.get("status"), "status", errs)
        _quantities(status.get("hard"), "status.hard", errs)
        _quantities(status.get("used"), "status.used", errs)
        return errs

    def columns(self) -> list[Column]:
        return [
            CORE_AGE,
            Column("Request", description="Request represents a minimum amount of cpu/memory that a container "
                   "may consume."),
            Column("Limit", description="Limits control the maximum amount of cpu/memory that a container may "
                   "use independent of contention on the node."),
        ]

    def cells(self, obj: Obj, now: float) -> list[Any]:
        status = _d(obj.get("status"))
        hard, used = _d(status.get("hard")), _d(status.get("used"))
        requests: list[str] = []
        limits: list[str] = []
        for name in sorted(hard):
            text = f"{name}: {_canonical(used.get(name, '0'))}/{_canonical(hard[name])}"
            (limits if name.split(".")[0] == "limits" and "." in name else requests).append(text)
        return [age(obj, now), ", ".join(requests), ", ".join(limits)]


def _canonical(value: Any) -> str:
    try:
        return canonical_quantity(value)
    except ValueError:
        return str(value)


LIMITRANGES = ResourceDef(
    group="", version="v1", resource="limitranges", kind="LimitRange", singular="limitrange",
    namespaced=True, strategy=LimitRangeStrategy(), short_names=("limits",),
)
RESOURCEQUOTAS = ResourceDef(
    group="", version="v1", resource="resourcequotas", kind="ResourceQuota", singular="resourcequota",
    namespaced=True, strategy=ResourceQuotaStrategy(), short_names=("quota",),
    subresources=(status_of("ResourceQuota"),),
)
