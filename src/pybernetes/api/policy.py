"""The policy/v1 API group: poddisruptionbudgets (minAvailable or maxUnavailable, as an
integer or a percentage, a label selector, the unhealthy-pod eviction policy; status counters
and the MIN AVAILABLE / MAX UNAVAILABLE / ALLOWED DISRUPTIONS table)."""

from __future__ import annotations

from typing import Any

from pybernetes.api.groupcommon import (
    AGE,
    int_of,
    int_or_string_text,
    non_negative,
    not_more_than_100_percent,
    strategy_status,
    validate_int_or_percent,
)
from pybernetes.api.printing import age
from pybernetes.api.resource import ResourceDef, status_of
from pybernetes.api.strategy import Column, Strategy
from pybernetes.machinery.errors import FieldError, invalid_value, not_supported, required
from pybernetes.machinery.validation import validate_label_selector

Obj = dict[str, Any]

EVICTION_POLICIES = ("IfHealthyBudget", "AlwaysAllow")
STATUS_COUNTERS = ("disruptionsAllowed", "currentHealthy", "desiredHealthy", "expectedPods", "observedGeneration")


def validate_pdb_spec(spec: Any, path: str = "spec") -> list[FieldError]:
    errs: list[FieldError] = []
    if spec is None:
        return errs
    if not isinstance(spec, dict):
        return [required(path)]
    if spec.get("minAvailable") is not None and spec.get("maxUnavailable") is not None:
        errs.append(invalid_value(path, spec, "minAvailable and maxUnavailable cannot be both set"))
    for field in ("minAvailable", "maxUnavailable"):
        if spec.get(field) is not None:
            validate_int_or_percent(spec[field], f"{path}.{field}", errs)
            not_more_than_100_percent(spec[field], f"{path}.{field}", errs)
    errs.extend(validate_label_selector(spec.get("selector"), f"{path}.selector"))
    policy = spec.get("unhealthyPodEvictionPolicy")
    if policy is not None and policy not in EVICTION_POLICIES:
        errs.append(not_supported(f"{path}.unhealthyPodEvictionPolicy", policy, EVICTION_POLICIES))
    return errs


class PodDisruptionBudgetStrategy(Strategy):
    def prepare_for_create(self, obj: Obj) -> None:
        obj["status"] = {"disruptionsAllowed": 0, "currentHealthy": 0, "desiredHealthy": 0, "expectedPods": 0}

    def validate(self, obj: Obj) -> list[FieldError]:
        return validate_pdb_spec(obj.get("spec"))

    def validate_status_update(self, new: Obj, old: Obj) -> list[FieldError]:
        errs: list[FieldError] = []
        status = strategy_status(new)
        for field in STATUS_COUNTERS:
            non_negative(status, field, f"status.{field}", errs)
        return errs

    def columns(self) -> list[Column]:
        return [
            Column("Min Available", description="The minimum number of pods that must be available."),
            Column("Max Unavailable", description="The maximum number of pods that may be unavailable."),
            Column("Allowed Disruptions", "integer", description="Calculated number of pods that may be "
                   "disrupted at this time."),
            AGE,
        ]

    def cells(self, obj: Obj, now: float) -> list[Any]:
        spec = obj.get("spec") if isinstance(obj.get("spec"), dict) else {}
        min_available = spec.get("minAvailable")
        max_unavailable = spec.get("maxUnavailable")
        return [
            "N/A" if min_available is None else int_or_string_text(min_available),
            "N/A" if max_unavailable is None else int_or_string_text(max_unavailable),
            int_of(strategy_status(obj).get("disruptionsAllowed")),
            age(obj, now),
        ]


PODDISRUPTIONBUDGETS = ResourceDef(
    group="policy",
    version="v1",
    resource="poddisruptionbudgets",
    kind="PodDisruptionBudget",
    singular="poddisruptionbudget",
    namespaced=True,
    strategy=PodDisruptionBudgetStrategy(),
    short_names=("pdb",),
    subresources=(status_of("PodDisruptionBudget", "policy"),),
)

RESOURCES: list[ResourceDef] = [PODDISRUPTIONBUDGETS]
