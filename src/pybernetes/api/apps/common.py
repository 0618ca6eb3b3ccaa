"""What the apps/v1 workloads share: the pod-template defaults and checks, the base strategy
(status reset on create, kept on update, a status counter check), and table cell helpers."""

from __future__ import annotations

import copy
from typing import Any

from pybernetes.api.groupcommon import Errors, dig, non_negative
from pybernetes.api.podspec import containers_and_images, default_pod_template, validate_pod_template
from pybernetes.api.strategy import Strategy
from pybernetes.machinery.errors import FieldError, forbidden_field, invalid_value, not_supported

Obj = dict[str, Any]


def default_template(obj: Obj) -> None:
    template = dig(obj, "spec", "template")
    if isinstance(template, dict):
        default_pod_template(template)


def validate_template(
    spec: Obj, path: str, errs: Errors, *, deadline_error: str | None, deadline_forbidden: bool = True
) -> None:
    """The pod template of a long-running workload: a valid template, restartPolicy Always,
    no activeDeadlineSeconds."""
    template = spec.get("template")
    tpath = f"{path}.template"
    errs.extend(validate_pod_template(template, tpath))
    pod_spec = dig(template, "spec")
    if not isinstance(pod_spec, dict):
        return
    policy = pod_spec.get("restartPolicy")
    if policy is not None and policy != "Always":
        errs.append(not_supported(f"{tpath}.spec.restartPolicy", policy, ("Always",)))
    if pod_spec.get("activeDeadlineSeconds") is not None and deadline_error:
        field = f"{tpath}.spec.activeDeadlineSeconds"
        if deadline_forbidden:
            errs.append(forbidden_field(field, deadline_error))
        else:
            errs.append(invalid_value(field, pod_spec["activeDeadlineSeconds"], deadline_error))


def template_cells(obj: Obj) -> tuple[str, str]:
    return containers_and_images(dig(obj, "spec", "template", "spec"))


def check_status_counters(status: Obj, fields: tuple[str, ...], errs: Errors) -> None:
    for field in fields:
        non_negative(status, field, f"status.{field}", errs)


class WorkloadStrategy(Strategy):
    """Spec + status with generation; the status a new object starts with is upstream's
    zero-valued status in its v1 wire form (non-omitempty counters appear as 0)."""

    initial_status: Obj = {}

    def default(self, obj: Obj) -> None:
        default_template(obj)

    def prepare_for_create(self, obj: Obj) -> None:
        obj["status"] = copy.deepcopy(self.initial_status)

    def validate_status_update(self, new: Obj, old: Obj) -> list[FieldError]:
        return []
