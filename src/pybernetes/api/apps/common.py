"""What the apps/v1 workloads share: the pod-template defaults, the RollingUpdate defaults,
the selector-vs-template and template checks, the base strategy (status reset on create, kept
on update, the selector immutable, upstream's status-update rules driven by class
attributes), and the trailing AGE CONTAINERS IMAGES [SELECTOR] table cells."""

from __future__ import annotations

import copy
from typing import Any

from pybernetes.api.groupcommon import (
    Errors,
    as_selector,
    check_immutable,
    collision_count_update,
    dig,
    ensure,
    non_negative_fields,
    not_greater,
    selector_string,
    strategy_status,
)
from pybernetes.api.podspec import containers_and_images, default_pod_template, validate_pod_template
from pybernetes.api.printing import age
from pybernetes.api.strategy import Strategy
from pybernetes.machinery.errors import FieldError, forbidden_field, invalid_value, not_supported, required
from pybernetes.machinery.validation import validate_label_selector

Obj = dict[str, Any]


# -- defaults ------------------------------------------------------------------------------

def default_template(obj: Obj) -> None:
    template = dig(obj, "spec", "template")
    if isinstance(template, dict):
        default_pod_template(template)


def default_rolling_strategy(spec: Obj, field: str, max_unavailable: Any, max_surge: Any) -> None:
    """spec[field] (a Deployment's strategy, a DaemonSet's updateStrategy): type RollingUpdate
    when unset, and for RollingUpdate the maxUnavailable / maxSurge defaults."""
    strategy = ensure(spec, field)
    if not strategy.get("type"):
        strategy["type"] = "RollingUpdate"
    if strategy["type"] == "RollingUpdate":
        rolling = ensure(strategy, "rollingUpdate")
        if rolling.get("maxUnavailable") is None:
            rolling["maxUnavailable"] = max_unavailable
        if rolling.get("maxSurge") is None:
            rolling["maxSurge"] = max_surge


# -- validation ----------------------------------------------------------------------------

def validate_workload_selector(selector: Any, template_labels: Any, path: str, kind_word: str,
                               errs: Errors) -> None:
    """Upstream's selector checks of ReplicaSets, Deployments, DaemonSets, StatefulSets:
    required, valid, not empty, and matching the pod template's labels (a selector that
    does not convert is reported as upstream does: "invalid label selector")."""
    spath = f"{path}.selector"
    if selector is None:
        errs.append(required(spath))
        return
    if not isinstance(selector, dict):
        errs.append(invalid_value(spath, selector, "invalid label selector"))
        return
    errs.extend(validate_label_selector(selector, spath))
    if not selector.get("matchLabels") and not selector.get("matchExpressions"):
        errs.append(invalid_value(spath, selector, f"empty selector is invalid for {kind_word}"))
        return
    parsed = as_selector(selector)
    labels = template_labels if isinstance(template_labels, dict) else {}
    if parsed is None:
        errs.append(invalid_value(spath, selector, "invalid label selector"))
    elif not parsed.matches(labels):
        errs.append(invalid_value(f"{path}.template.metadata.labels", labels,
                                  "`selector` does not match template `labels`"))


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


def validate_selector_and_template(
    spec: Obj, path: str, kind_word: str, errs: Errors, *, deadline_error: str, deadline_forbidden: bool = True
) -> None:
    """The selector checks, then the template checks, of a workload spec."""
    validate_workload_selector(spec.get("selector"), dig(spec, "template", "metadata", "labels"), path,
                               kind_word, errs)
    validate_template(spec, path, errs, deadline_error=deadline_error, deadline_forbidden=deadline_forbidden)


# -- tables --------------------------------------------------------------------------------

def template_cells(obj: Obj) -> tuple[str, str]:
    return containers_and_images(dig(obj, "spec", "template", "spec"))


def trailing_cells(obj: Obj, now: float, *, selector: bool = True) -> list[Any]:
    """The AGE CONTAINERS IMAGES cells (and SELECTOR, the selector's string) that end the
    apps workloads' rows."""
    names, images = template_cells(obj)
    cells: list[Any] = [age(obj, now), names, images]
    if selector:
        cells.append(selector_string(dig(obj, "spec", "selector")))
    return cells


# -- the strategy --------------------------------------------------------------------------

class WorkloadStrategy(Strategy):
    """Spec + status with generation; the status a new object starts with is upstream's
    zero-valued status in its v1 wire form (non-omitempty counters appear as 0).

    On update the selector is immutable.  A status update checks ``status_counters`` are
    non-negative, then each of ``replica_counters`` is at most status.replicas and (when
    there are any) availableReplicas at most readyReplicas (``ready_text`` names it in the
    message), then that collisionCount does not decrease (when it is a counter)."""

    initial_status: Obj = {}
    status_counters: tuple[str, ...] = ()
    replica_counters: tuple[str, ...] = ()
    ready_text = "readyReplicas"

    def default(self, obj: Obj) -> None:
        default_template(obj)

    def prepare_for_create(self, obj: Obj) -> None:
        obj["status"] = copy.deepcopy(self.initial_status)

    def validate_update(self, new: Obj, old: Obj) -> list[FieldError]:
        errs: list[FieldError] = []
        check_immutable(dig(new, "spec", "selector"), dig(old, "spec", "selector"), "spec.selector", errs)
        return errs

    def validate_status_update(self, new: Obj, old: Obj) -> list[FieldError]:
        status = strategy_status(new)
        errs: list[FieldError] = []
        non_negative_fields(status, self.status_counters, "status", errs)
        for field in self.replica_counters:
            not_greater(status, field, "replicas", "status", errs, "status.replicas")
        if self.replica_counters:
            not_greater(status, "availableReplicas", "readyReplicas", "status", errs, self.ready_text)
        if "collisionCount" in self.status_counters:
            collision_count_update(status, strategy_status(old), errs)
        return errs
