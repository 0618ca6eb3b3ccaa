"""apps/v1 replicasets: replicas defaulted to 1, selector/template checks, the selector
immutable on update, status counters, the status.replicas field selector, the table."""

from __future__ import annotations

from typing import Any

from pybernetes.api.apps.common import WorkloadStrategy, trailing_cells, validate_selector_and_template
from pybernetes.api.groupcommon import (
    AGE,
    CONTAINERS,
    IMAGES,
    dig,
    ensure,
    int_of,
    non_negative_fields,
    strategy_status,
)
from pybernetes.api.resource import SCALE, ResourceDef, status_of
from pybernetes.api.strategy import Column
from pybernetes.machinery.errors import FieldError, required

Obj = dict[str, Any]

STATUS_COUNTERS = ("replicas", "fullyLabeledReplicas", "readyReplicas", "availableReplicas",
                   "observedGeneration")


def validate_replica_set_spec(spec: Any, path: str = "spec") -> list[FieldError]:
    errs: list[FieldError] = []
    if not isinstance(spec, dict):
        return [required(path)]
    non_negative_fields(spec, ("replicas", "minReadySeconds"), path, errs)
    validate_selector_and_template(spec, path, "deployment", errs,
                                   deadline_error="activeDeadlineSeconds in ReplicaSet is not Supported")
    return errs


class ReplicaSetStrategy(WorkloadStrategy):
    initial_status = {"replicas": 0}
    status_counters = STATUS_COUNTERS
    replica_counters = ("fullyLabeledReplicas", "readyReplicas", "availableReplicas")
    field_names = ("status.replicas",)

    def default(self, obj: Obj) -> None:
        spec = ensure(obj, "spec")
        if spec.get("replicas") is None:
            spec["replicas"] = 1
        super().default(obj)

    def validate(self, obj: Obj) -> list[FieldError]:
        return validate_replica_set_spec(obj.get("spec"))

    def columns(self) -> list[Column]:
        return [
            Column("Desired", "integer", description="Replicas is the number of desired pods."),
            Column("Current", "integer", description="Replicas is the most recently observed number of "
                   "non-terminating pods."),
            Column("Ready", "integer", description="The number of non-terminating pods targeted by this "
                   "ReplicaSet with a Ready Condition."),
            AGE,
            CONTAINERS,
            IMAGES,
            Column("Selector", priority=1, description="Selector is a label query over pods that should "
                   "match the replica count."),
        ]

    def cells(self, obj: Obj, now: float) -> list[Any]:
        status = strategy_status(obj)
        return [
            int_of(dig(obj, "spec", "replicas")),
            int_of(status.get("replicas")),
            int_of(status.get("readyReplicas")),
            *trailing_cells(obj, now),
        ]

    def fields(self, obj: Obj) -> dict[str, str]:
        fields = super().fields(obj)
        fields["status.replicas"] = str(int_of(strategy_status(obj).get("replicas")))
        return fields


REPLICASETS = ResourceDef(
    group="apps",
    version="v1",
    resource="replicasets",
    kind="ReplicaSet",
    singular="replicaset",
    namespaced=True,
    strategy=ReplicaSetStrategy(),
    short_names=("rs",),
    categories=("all",),
    subresources=(status_of("ReplicaSet", "apps"), SCALE),
)
