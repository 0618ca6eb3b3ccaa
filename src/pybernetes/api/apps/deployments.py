"""apps/v1 deployments: defaults (replicas, RollingUpdate 25%/25%, history, progress deadline),
spec and status validation, the selector immutable on update, the table printer."""

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
    is_int,
    non_negative,
    non_negative_fields,
    not_more_than_100_percent,
    strategy_status,
    validate_int_or_percent,
)
from pybernetes.api.resource import SCALE, ResourceDef, status_of
from pybernetes.api.strategy import Column
from pybernetes.machinery.errors import FieldError, forbidden_field, invalid_value, not_supported, required

Obj = dict[str, Any]

STATUS_COUNTERS = (
    "observedGeneration",
    "replicas",
    "updatedReplicas",
    "readyReplicas",
    "availableReplicas",
    "unavailableReplicas",
    "collisionCount",
)


def default_deployment(obj: Obj) -> None:
    spec = ensure(obj, "spec")
    if spec.get("replicas") is None:
        spec["replicas"] = 1
    default_rolling_strategy(spec, "strategy", "25%", "25%")
    if spec.get("revisionHistoryLimit") is None:
        spec["revisionHistoryLimit"] = 10
    if spec.get("progressDeadlineSeconds") is None:
        spec["progressDeadlineSeconds"] = 600


def validate_rolling_update(rolling: Obj, path: str, errs: list[FieldError]) -> None:
    unavailable, surge = rolling.get("maxUnavailable"), rolling.get("maxSurge")
    validate_int_or_percent(unavailable, f"{path}.maxUnavailable", errs)
    validate_int_or_percent(surge, f"{path}.maxSurge", errs)
    if int_or_percent_value(unavailable) == 0 and int_or_percent_value(surge) == 0:
        errs.append(
            invalid_value(f"{path}.maxUnavailable", unavailable if unavailable is not None else 0,
                          "may not be 0 when `maxSurge` is 0")
        )
    not_more_than_100_percent(unavailable, f"{path}.maxUnavailable", errs)


def validate_strategy(strategy: Any, path: str, errs: list[FieldError]) -> None:
    strategy = strategy if isinstance(strategy, dict) else {}
    kind = strategy.get("type")
    rolling = strategy.get("rollingUpdate")
    if kind == "Recreate":
        if rolling is not None:
            errs.append(forbidden_field(f"{path}.rollingUpdate",
                                        "may not be specified when strategy `type` is 'Recreate'"))
    elif kind == "RollingUpdate":
        if not isinstance(rolling, dict):
            errs.append(required(f"{path}.rollingUpdate", "this should be defaulted and never be nil"))
        else:
            validate_rolling_update(rolling, f"{path}.rollingUpdate", errs)
    else:
        errs.append(not_supported(path, strategy, ("Recreate", "RollingUpdate")))


def validate_deployment_spec(spec: Any, path: str = "spec") -> list[FieldError]:
    errs: list[FieldError] = []
    if not isinstance(spec, dict):
        return [required(path)]
    non_negative(spec, "replicas", f"{path}.replicas", errs)
    validate_selector_and_template(spec, path, "deployment", errs,
                                   deadline_error="activeDeadlineSeconds in ReplicaSet is not Supported")
    validate_strategy(spec.get("strategy"), f"{path}.strategy", errs)
    non_negative_fields(spec, ("minReadySeconds", "revisionHistoryLimit"), path, errs)
    deadline = spec.get("progressDeadlineSeconds")
    if deadline is not None:
        non_negative(spec, "progressDeadlineSeconds", f"{path}.progressDeadlineSeconds", errs)
        if is_int(deadline) and deadline <= int_of(spec.get("minReadySeconds")):
            errs.append(invalid_value(f"{path}.progressDeadlineSeconds", deadline,
                                      "must be greater than minReadySeconds"))
    return errs


class DeploymentStrategy(WorkloadStrategy):
    status_counters = STATUS_COUNTERS
    replica_counters = ("updatedReplicas", "readyReplicas", "availableReplicas")

    def default(self, obj: Obj) -> None:
        default_deployment(obj)
        super().default(obj)

    def validate(self, obj: Obj) -> list[FieldError]:
        return validate_deployment_spec(obj.get("spec"))

    def columns(self) -> list[Column]:
        return [
            Column("Ready", description="Number of the pod with ready state"),
            Column("Up-to-date", "integer", description="Total number of non-terminated pods targeted by "
                   "this deployment that have the desired template spec."),
            Column("Available", "integer", description="Total number of available pods (ready for at "
                   "least minReadySeconds) targeted by this deployment."),
            AGE,
            CONTAINERS,
            IMAGES,
            Column("Selector", priority=1, description="Label selector for pods. Existing ReplicaSets whose "
                   "pods are selected by this will be the ones affected by this deployment. It must match "
                   "the pod template's labels."),
        ]

    def cells(self, obj: Obj, now: float) -> list[Any]:
        status = strategy_status(obj)
        desired = int_of(dig(obj, "spec", "replicas"))
        return [
            f"{int_of(status.get('readyReplicas'))}/{desired}",
            int_of(status.get("updatedReplicas")),
            int_of(status.get("availableReplicas")),
            *trailing_cells(obj, now),
        ]


DEPLOYMENTS = ResourceDef(
    group="apps",
    version="v1",
    resource="deployments",
    kind="Deployment",
    singular="deployment",
    namespaced=True,
    strategy=DeploymentStrategy(),
    short_names=("deploy",),
    categories=("all",),
    subresources=(status_of("Deployment", "apps"), SCALE),
)
