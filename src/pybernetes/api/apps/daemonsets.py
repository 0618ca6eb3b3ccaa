"""apps/v1 daemonsets: defaults (RollingUpdate maxUnavailable 1 maxSurge 0, history 10),
validation, the selector immutable on update, status checks and the table.

The template generation (upstream's internal spec.templateGeneration, written in apps/v1 as the
``deprecated.daemonset.template.generation`` annotation): at least 1 on create, kept on update
and bumped when the pod template changes (the DaemonSet controller labels pods with it)."""

from __future__ import annotations

from typing import Any

from pybernetes.api.apps.common import (
    WorkloadStrategy,
    default_rolling_strategy,
    trailing_cells,
    validate_selector_and_template,
)
from pybernetes.api.groupcommon import (
    AGE,
    CONTAINERS,
    IMAGES,
    dig,
    ensure,
    int_of,
    int_or_percent_value,
    non_negative_fields,
    not_more_than_100_percent,
    strategy_status,
    validate_int_or_percent,
)
from pybernetes.api.resource import ResourceDef, status_of
from pybernetes.api.strategy import Column
from pybernetes.machinery.errors import FieldError, invalid_value, not_supported, required
from pybernetes.machinery.selectors import format_labels

Obj = dict[str, Any]

TEMPLATE_GENERATION_ANNOTATION = "deprecated.daemonset.template.generation"
STATUS_COUNTERS = ("currentNumberScheduled", "numberMisscheduled", "desiredNumberScheduled", "numberReady",
                   "observedGeneration", "updatedNumberScheduled", "numberAvailable", "numberUnavailable",
                   "collisionCount")


def default_daemonset(obj: Obj) -> None:
    spec = ensure(obj, "spec")
    default_rolling_strategy(spec, "updateStrategy", 1, 0)
    if spec.get("revisionHistoryLimit") is None:
        spec["revisionHistoryLimit"] = 10


def template_generation(obj: Obj) -> int:
    """The template generation an object carries in its annotation (0 when none or unreadable)."""
    value = (dig(obj, "metadata", "annotations") or {}).get(TEMPLATE_GENERATION_ANNOTATION)
    try:
        return max(int(value), 0) if value is not None else 0
    except (TypeError, ValueError):
        return 0


def validate_update_strategy(strategy: Any, path: str, errs: list[FieldError]) -> None:
    strategy = strategy if isinstance(strategy, dict) else {}
    kind = strategy.get("type")
    if kind == "OnDelete":
        return
    if kind != "RollingUpdate":
        errs.append(not_supported(path, strategy, ("RollingUpdate", "OnDelete")))
        return
    rolling = strategy.get("rollingUpdate")
    rpath = f"{path}.rollingUpdate"
    if not isinstance(rolling, dict):
        errs.append(required(rpath))
        return
    unavailable, surge = rolling.get("maxUnavailable"), rolling.get("maxSurge")
    validate_int_or_percent(unavailable, f"{rpath}.maxUnavailable", errs)
    validate_int_or_percent(surge, f"{rpath}.maxSurge", errs)
    not_more_than_100_percent(unavailable, f"{rpath}.maxUnavailable", errs)
    not_more_than_100_percent(surge, f"{rpath}.maxSurge", errs)
    has_unavailable = int_or_percent_value(unavailable) != 0
    has_surge = int_or_percent_value(surge) != 0
    if has_unavailable and has_surge:
        errs.append(invalid_value(f"{rpath}.maxSurge", surge, "may not be set when maxUnavailable is non-zero"))
    elif not has_unavailable and not has_surge:
        errs.append(required(f"{rpath}.maxUnavailable", "cannot be 0 when maxSurge is 0"))


def validate_daemonset_spec(spec: Any, path: str = "spec") -> list[FieldError]:
    errs: list[FieldError] = []
    if not isinstance(spec, dict):
        return [required(path)]
    validate_selector_and_template(spec, path, "daemonset", errs, deadline_forbidden=False,
                                   deadline_error="activeDeadlineSeconds must be nil for daemon set pods")
    non_negative_fields(spec, ("minReadySeconds", "templateGeneration", "revisionHistoryLimit"), path, errs)
    validate_update_strategy(spec.get("updateStrategy"), f"{path}.updateStrategy", errs)
    return errs


class DaemonSetStrategy(WorkloadStrategy):
    initial_status = {"currentNumberScheduled": 0, "numberMisscheduled": 0, "desiredNumberScheduled": 0,
                      "numberReady": 0}
    status_counters = STATUS_COUNTERS

    def default(self, obj: Obj) -> None:
        default_daemonset(obj)
        super().default(obj)

    def prepare_for_create(self, obj: Obj) -> None:
        super().prepare_for_create(obj)
        generation = max(template_generation(obj), 1)
        ensure(obj, "metadata", "annotations")[TEMPLATE_GENERATION_ANNOTATION] = str(generation)

    def prepare_for_update(self, new: Obj, old: Obj) -> None:
        super().prepare_for_update(new, old)
        generation = template_generation(old)
        if dig(new, "spec", "template") != dig(old, "spec", "template"):
            generation += 1
        if generation > 0:
            ensure(new, "metadata", "annotations")[TEMPLATE_GENERATION_ANNOTATION] = str(generation)

    def validate(self, obj: Obj) -> list[FieldError]:
        return validate_daemonset_spec(obj.get("spec"))

    def columns(self) -> list[Column]:
        return [
            Column("Desired", "integer", description="The total number of nodes that should be running the "
                   "daemon pod (including nodes correctly running the daemon pod)."),
            Column("Current", "integer", description="The number of nodes that are running at least 1 daemon "
                   "pod and are supposed to run the daemon pod."),
            Column("Ready", "integer", description="numberReady is the number of nodes that should be running "
                   "the daemon pod and have one or more of the daemon pod running with a Ready Condition."),
            Column("Up-to-date", "integer", description="The total number of nodes that are running updated "
                   "daemon pod"),
            Column("Available", "integer", description="The number of nodes that should be running the daemon "
                   "pod and have one or more of the daemon pod running and available (ready for at least "
                   "spec.minReadySeconds)"),
            Column("Node Selector", description="NodeSelector is a selector which must be true for the pod to "
                   "fit on a node. Selector which must match a node's labels for the pod to be scheduled on "
                   "that node."),
            AGE,
            CONTAINERS,
            IMAGES,
            Column("Selector", priority=1, description="A label query over pods that are managed by the daemon "
                   "set. Must match in order to be controlled. It must match the pod template's labels."),
        ]

    def cells(self, obj: Obj, now: float) -> list[Any]:
        status = strategy_status(obj)
        return [
            int_of(status.get("desiredNumberScheduled")),
            int_of(status.get("currentNumberScheduled")),
            int_of(status.get("numberReady")),
            int_of(status.get("updatedNumberScheduled")),
            int_of(status.get("numberAvailable")),
            format_labels(dig(obj, "spec", "template", "spec", "nodeSelector")),
            *trailing_cells(obj, now),
        ]


DAEMONSETS = ResourceDef(
    group="apps",
    version="v1",
    resource="daemonsets",
    kind="DaemonSet",
    singular="daemonset",
    namespaced=True,
    strategy=DaemonSetStrategy(),
    short_names=("ds",),
    categories=("all",),
    subresources=(status_of("DaemonSet", "apps"),),
)
