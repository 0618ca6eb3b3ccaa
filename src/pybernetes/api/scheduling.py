"""The scheduling.k8s.io/v1 API group: priorityclasses (cluster-scoped; preemptionPolicy
defaulted to PreemptLowerPriority; user values at most 1e9; ``system-`` names reserved for
the two built-in classes; value and preemptionPolicy immutable)."""

from __future__ import annotations

from typing import Any

from pybernetes.api.groupcommon import AGE, check_immutable, int_of, is_int
from pybernetes.api.printing import age
from pybernetes.api.resource import ResourceDef
from pybernetes.api.strategy import Column, Strategy
from pybernetes.machinery.errors import FieldError, forbidden_field, invalid_value, not_supported

Obj = dict[str, Any]

HIGHEST_USER_PRIORITY = 1_000_000_000
SYSTEM_PREFIX = "system-"
SYSTEM_CLASSES = {"system-cluster-critical": 2_000_000_000, "system-node-critical": 2_000_001_000}
PREEMPTION_POLICIES = ("PreemptLowerPriority", "Never")


def _system_class_error(name: str, value: Any, global_default: Any) -> str | None:
    if name not in SYSTEM_CLASSES:
        return f"{name} is not a known system priority class"
    if value != SYSTEM_CLASSES[name]:
        return f"value of {name} PriorityClass must be {SYSTEM_CLASSES[name]}"
    if global_default is True:
        return f"globalDefault of {name} PriorityClass must be false"
    return None


class PriorityClassStrategy(Strategy):
    status_fields = ()
    has_generation = False

    def default(self, obj: Obj) -> None:
        if not obj.get("preemptionPolicy"):
            obj["preemptionPolicy"] = "PreemptLowerPriority"

    def validate(self, obj: Obj) -> list[FieldError]:
        errs: list[FieldError] = []
        name = str((obj.get("metadata") or {}).get("name", ""))
        value = obj.get("value", 0)
        if not is_int(value):
            errs.append(invalid_value("value", value, "must be an integer"))
            value = 0
        if name.startswith(SYSTEM_PREFIX):
            problem = _system_class_error(name, value, obj.get("globalDefault"))
            if problem:
                errs.append(forbidden_field("metadata.name", f"priority class names with '{SYSTEM_PREFIX}' "
                                            f"prefix are reserved for system use only. error: {problem}"))
        elif value > HIGHEST_USER_PRIORITY:
            errs.append(forbidden_field("value", "maximum allowed value of a user defined priority is "
                                        f"{HIGHEST_USER_PRIORITY}"))
        policy = obj.get("preemptionPolicy")
        if policy is not None and policy not in PREEMPTION_POLICIES:
            errs.append(not_supported("preemptionPolicy", policy, PREEMPTION_POLICIES))
        return errs

    def validate_update(self, new: Obj, old: Obj) -> list[FieldError]:
        errs: list[FieldError] = []
        if new.get("value", 0) != old.get("value", 0):
            errs.append(forbidden_field("value", "may not be changed in an update."))
        check_immutable(new.get("preemptionPolicy"), old.get("preemptionPolicy"), "preemptionPolicy", errs)
        return errs

    def columns(self) -> list[Column]:
        return [
            Column("Value", "integer", description="value represents the integer value of this priority "
                   "class. This is the actual priority that pods receive when they have the name of this "
                   "class in their pod spec."),
            Column("Global-Default", "boolean", description="globalDefault specifies whether this "
                   "PriorityClass should be considered as the default priority for pods that do not have "
                   "any priority class."),
            AGE,
            Column("PreemptionPolicy", description="preemptionPolicy is the Policy for preempting pods with "
                   "lower priority. One of Never, PreemptLowerPriority. Defaults to PreemptLowerPriority if "
                   "unset."),
        ]

    def cells(self, obj: Obj, now: float) -> list[Any]:
        policy = obj.get("preemptionPolicy")
        return [int_of(obj.get("value")), obj.get("globalDefault") is True, age(obj, now),
                policy if isinstance(policy, str) else ""]


PRIORITYCLASSES = ResourceDef(
    group="scheduling.k8s.io",
    version="v1",
    resource="priorityclasses",
    kind="PriorityClass",
    singular="priorityclass",
    namespaced=False,
    strategy=PriorityClassStrategy(),
    short_names=("pc",),
)

RESOURCES: list[ResourceDef] = [PRIORITYCLASSES]
