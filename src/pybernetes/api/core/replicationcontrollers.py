"""core/v1 replicationcontrollers (+status, +scale) and podtemplates: selector and labels
defaulted from the template, template validation (restartPolicy Always), the DESIRED /
CURRENT / READY table; pod templates with their CONTAINERS IMAGES POD LABELS table."""

from __future__ import annotations

from typing import Any

from pybernetes.api.fieldcheck import as_dict, as_int, check_non_negative, str_map
from pybernetes.api.podspec import (
    containers_and_images,
    default_pod_template,
    validate_pod_template,
    validate_template_restart_policy,
)
from pybernetes.api.printing import CORE_AGE, age
from pybernetes.api.resource import SCALE, ResourceDef, status_of
from pybernetes.api.strategy import Column, Strategy
from pybernetes.machinery import validation as mv
from pybernetes.machinery.errors import FieldError, forbidden_field, invalid_value, required
from pybernetes.machinery.selectors import format_labels

Obj = dict[str, Any]

def _d(value: Any) -> Obj:
    return value if isinstance(value, dict) else {}


class ReplicationControllerStrategy(Strategy):
    field_names = ("status.replicas",)

    def default(self, obj: Obj) -> None:
        spec = obj.get("spec")
        if not isinstance(spec, dict):
            return
        template = spec.get("template")
        if isinstance(template, dict):
            labels = _d(template.get("metadata")).get("labels")
            if isinstance(labels, dict) and labels:
                if not spec.get("selector"):
                    spec["selector"] = dict(labels)
                meta = obj.get("metadata")
                if isinstance(meta, dict) and not meta.get("labels"):
                    meta["labels"] = dict(labels)
            default_pod_template(template)
        if spec.get("replicas") is None:
            spec["replicas"] = 1

    def prepare_for_create(self, obj: Obj) -> None:
        obj["status"] = {"replicas": 0}

    def validate(self, obj: Obj) -> list[FieldError]:
        errs: list[FieldError] = []
        spec = as_dict(obj.get("spec"), "spec", errs)
        check_non_negative(spec.get("replicas"), "spec.replicas", errs)
        check_non_negative(spec.get("minReadySeconds"), "spec.minReadySeconds", errs)
        selector = str_map(spec.get("selector"), "spec.selector", errs)
        if not selector:
            errs.append(required("spec.selector"))
        else:
            errs.extend(mv.validate_labels(selector, "spec.selector"))
        template = spec.get("template")
        if template is None:
            errs.append(required("spec.template"))
            return errs
        labels = _d(_d(template).get("metadata")).get("labels") or {}
        if selector and isinstance(labels, dict) and any(labels.get(k) != v for k, v in selector.items()):
            errs.append(invalid_value("spec.template.metadata.labels", labels,
                                      "`selector` does not match template `labels`"))
        errs.extend(validate_pod_template(template, "spec.template"))
        errs.extend(validate_template_restart_policy(template, "spec.template"))
        if _d(_d(template).get("spec")).get("activeDeadlineSeconds") is not None:
            errs.append(forbidden_field("spec.template.spec.activeDeadlineSeconds",
                                        "activeDeadlineSeconds in ReplicationController is not Supported"))
        return errs

    def validate_status_update(self, new: Obj, old: Obj) -> list[FieldError]:
        errs: list[FieldError] = []
        status = as_dict(new.get("status"), "status", errs)
        for field in ("replicas", "fullyLabeledReplicas", "readyReplicas", "availableReplicas", "observedGeneration"):
            check_non_negative(status.get(field), f"status.{field}", errs)
        replicas = as_int(status.get("replicas"), "status.replicas", []) or 0
        for field in ("fullyLabeledReplicas", "readyReplicas"):
            value = as_int(status.get(field), f"status.{field}", [])
            if value is not None and value > replicas:
                errs.append(invalid_value(f"status.{field}", value, "cannot be greater than status.replicas"))
        return errs

    def columns(self) -> list[Column]:
        return [
            Column("Desired", "integer", description="Replicas is the number of desired replicas."),
            Column("Current", "integer", description="Replicas is the most recently observed number of replicas."),
            Column("Ready", "integer", description="The number of ready replicas for this replication controller."),
            CORE_AGE,
            Column("Containers", priority=1, description="Names of each container in the template."),
            Column("Images", priority=1, description="Images referenced by each container in the template."),
            Column("Selector", priority=1, description="Selector is a label query over pods that should match "
                   "the Replicas count."),
        ]

    def cells(self, obj: Obj, now: float) -> list[Any]:
        spec, status = _d(obj.get("spec")), _d(obj.get("status"))
        names, images = containers_and_images(_d(spec.get("template")).get("spec"))
        return [
            int(spec.get("replicas") or 0),
            int(status.get("replicas") or 0),
            int(status.get("readyReplicas") or 0),
            age(obj, now),
            names,
            images,
            format_labels(spec.get("selector")),
        ]

    def fields(self, obj: Obj) -> dict[str, str]:
        result = super().fields(obj)
        result["status.replicas"] = str(int(_d(obj.get("status")).get("replicas") or 0))
        return result


class PodTemplateStrategy(Strategy):
    status_fields = ()

    def default(self, obj: Obj) -> None:
        if isinstance(obj.get("template"), dict):
            default_pod_template(obj["template"])

    def validate(self, obj: Obj) -> list[FieldError]:
        return validate_pod_template(obj.get("template"), "template")

    def columns(self) -> list[Column]:
        return [
            Column("Containers", description="Names of each container in the template."),
            Column("Images", description="Images referenced by each container in the template."),
            Column("Pod Labels", description="The labels for the pod template."),
        ]

    def cells(self, obj: Obj, now: float) -> list[Any]:
        template = _d(obj.get("template"))
        names, images = containers_and_images(template.get("spec"))
        return [names, images, format_labels(_d(template.get("metadata")).get("labels"))]


REPLICATIONCONTROLLERS = ResourceDef(
    group="", version="v1", resource="replicationcontrollers", kind="ReplicationController",
    singular="replicationcontroller", namespaced=True, strategy=ReplicationControllerStrategy(),
    short_names=("rc",), categories=("all",),
    subresources=(status_of("ReplicationController"), SCALE),
)
PODTEMPLATES = ResourceDef(
    group="", version="v1", resource="podtemplates", kind="PodTemplate", singular="podtemplate",
    namespaced=True, strategy=PodTemplateStrategy(),
)
