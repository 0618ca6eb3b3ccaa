"""The autoscaling/v2 API group: horizontalpodautoscalers.

Defaults: minReplicas 1, a CPU-utilisation 80% metric when none is given, and (when
``behavior`` is set) upstream's scale-up / scale-down rules for the parts left out.
Validation of scaleTargetRef, replica bounds, metrics and behavior; the REFERENCE TARGETS
MINPODS MAXPODS REPLICAS table (targets as ``cpu: 40%/80%``).
"""

from __future__ import annotations

from typing import Any

from pybernetes.api.groupcommon import AGE, dig, ensure, int_of, is_int, non_negative, strategy_status
from pybernetes.api.printing import age
from pybernetes.api.resource import ResourceDef, status_of
from pybernetes.api.strategy import Column, Strategy
from pybernetes.machinery.errors import FieldError, invalid_value, not_supported, required
from pybernetes.machinery.validation import validate_path_segment_name

Obj = dict[str, Any]

METRIC_TYPES = ("Object", "Pods", "Resource", "ContainerResource", "External")
_SOURCE_FIELD = {"Object": "object", "Pods": "pods", "Resource": "resource",
                 "ContainerResource": "containerResource", "External": "external"}
TARGET_TYPES = ("Utilization", "Value", "AverageValue")
POLICY_TYPES = ("Pods", "Percent")
SELECT_POLICIES = ("Max", "Min", "Disabled")
MAX_PERIOD_SECONDS = 1800
MAX_STABILIZATION_SECONDS = 3600


def _scale_up_defaults() -> Obj:
    return {"stabilizationWindowSeconds": 0, "selectPolicy": "Max",
            "policies": [{"type": "Pods", "value": 4, "periodSeconds": 15},
                         {"type": "Percent", "value": 100, "periodSeconds": 15}]}


def _scale_down_defaults() -> Obj:
    return {"stabilizationWindowSeconds": 300, "selectPolicy": "Max",
            "policies": [{"type": "Percent", "value": 100, "periodSeconds": 15}]}


def _fill_rules(rules: Any, defaults: Obj) -> Obj:
    if not isinstance(rules, dict):
        return defaults
    for key in ("stabilizationWindowSeconds", "selectPolicy", "policies"):
        if rules.get(key) is None:
            rules[key] = defaults[key]
    return rules


def default_hpa(obj: Obj) -> None:
    spec = ensure(obj, "spec")
    if spec.get("minReplicas") is None:
        spec["minReplicas"] = 1
    if not spec.get("metrics"):
        spec["metrics"] = [{"type": "Resource", "resource": {
            "name": "cpu", "target": {"type": "Utilization", "averageUtilization": 80}}}]
    behavior = spec.get("behavior")
    if isinstance(behavior, dict):
        behavior["scaleUp"] = _fill_rules(behavior.get("scaleUp"), _scale_up_defaults())
        behavior["scaleDown"] = _fill_rules(behavior.get("scaleDown"), _scale_down_defaults())


def _validate_target(target: Any, path: str, errs: list[FieldError]) -> None:
    if not isinstance(target, dict):
        errs.append(required(path))
        return
    kind = target.get("type")
    if not kind:
        errs.append(required(f"{path}.type", "must specify a metric target type"))
    elif kind not in TARGET_TYPES:
        errs.append(not_supported(f"{path}.type", kind, TARGET_TYPES))
    utilization = target.get("averageUtilization")
    if utilization is not None and (not is_int(utilization) or utilization < 1):
        errs.append(invalid_value(f"{path}.averageUtilization", utilization, "must be greater than 0"))
    if kind == "Utilization" and utilization is None:
        errs.append(required(f"{path}.averageUtilization",
                             "must set either a target raw value or a target utilization"))
    if kind == "Value" and target.get("value") is None:
        errs.append(required(f"{path}.value", "must set either a target value for metric or a per-pod target"))
    if kind == "AverageValue" and target.get("averageValue") is None:
        errs.append(required(f"{path}.averageValue",
                             "must set either a target value for metric or a per-pod target"))


def _validate_metric(metric: Any, path: str, errs: list[FieldError]) -> None:
    metric = metric if isinstance(metric, dict) else {}
    kind = metric.get("type")
    if not kind:
        errs.append(required(f"{path}.type", "must specify a metric source type"))
        return
    if kind not in METRIC_TYPES:
        errs.append(not_supported(f"{path}.type", kind, METRIC_TYPES))
        return
    for other_kind, field in _SOURCE_FIELD.items():
        if other_kind != kind and metric.get(field) is not None:
            errs.append(invalid_value(f"{path}.{field}", metric[field],
                                      "must populate the given metric source only"))
    field = _SOURCE_FIELD[kind]
    source = metric.get(field)
    spath = f"{path}.{field}"
    if not isinstance(source, dict):
        errs.append(required(spath, f"must populate information for the given metric source (type {kind})"))
        return
    if kind in ("Resource", "ContainerResource"):
        if not source.get("name"):
            errs.append(required(f"{spath}.name", "must specify a resource name"))
        if kind == "ContainerResource" and not source.get("container"):
            errs.append(required(f"{spath}.container", "must specify a container"))
    else:
        if not dig(source, "metric", "name"):
            errs.append(required(f"{spath}.metric.name", "must specify a metric name"))
        if kind == "Object":
            ref = source.get("describedObject") if isinstance(source.get("describedObject"), dict) else {}
            for key in ("kind", "name"):
                if not ref.get(key):
                    errs.append(required(f"{spath}.describedObject.{key}"))
    _validate_target(source.get("target"), f"{spath}.target", errs)


def _validate_rules(rules: Any, path: str, errs: list[FieldError]) -> None:
    if not isinstance(rules, dict):
        return
    window = rules.get("stabilizationWindowSeconds")
    if window is not None and (not is_int(window) or not 0 <= window <= MAX_STABILIZATION_SECONDS):
        errs.append(invalid_value(f"{path}.stabilizationWindowSeconds", window,
                                  f"must be less than or equal to {MAX_STABILIZATION_SECONDS}"
                                  if is_int(window) and window > 0 else "must be greater than or equal to zero"))
    select = rules.get("selectPolicy")
    if select is not None and select not in SELECT_POLICIES:
        errs.append(not_supported(f"{path}.selectPolicy", select, SELECT_POLICIES))
    policies = rules.get("policies")
    if isinstance(policies, list) and not policies and select != "Disabled":
        errs.append(required(f"{path}.policies", "must specify at least one Policy"))
    for i, policy in enumerate(policies if isinstance(policies, list) else []):
        ppath = f"{path}.policies[{i}]"
        policy = policy if isinstance(policy, dict) else {}
        if policy.get("type") not in POLICY_TYPES:
            errs.append(not_supported(f"{ppath}.type", policy.get("type"), POLICY_TYPES))
        value = policy.get("value")
        if not is_int(value) or value <= 0:
            errs.append(invalid_value(f"{ppath}.value", value, "must be greater than zero"))
        period = policy.get("periodSeconds")
        if not is_int(period) or period <= 0:
            errs.append(invalid_value(f"{ppath}.periodSeconds", period, "must be greater than zero"))
        elif period > MAX_PERIOD_SECONDS:
            errs.append(invalid_value(f"{ppath}.periodSeconds", period,
                                      f"must be less than or equal to {MAX_PERIOD_SECONDS}"))


def validate_hpa_spec(spec: Any, path: str = "spec") -> list[FieldError]:
    errs: list[FieldError] = []
    if not isinstance(spec, dict):
        return [required(path)]
    ref = spec.get("scaleTargetRef") if isinstance(spec.get("scaleTargetRef"), dict) else {}
    rpath = f"{path}.scaleTargetRef"
    for field in ("kind", "name"):
        value = ref.get(field)
        if not value:
            errs.append(required(f"{rpath}.{field}"))
        else:
            errs.extend(invalid_value(f"{rpath}.{field}", value, m) for m in validate_path_segment_name(str(value)))
    min_replicas, max_replicas = spec.get("minReplicas"), spec.get("maxReplicas")
    if min_replicas is not None and (not is_int(min_replicas) or min_replicas < 1):
        errs.append(invalid_value(f"{path}.minReplicas", min_replicas, "must be greater than or equal to 1"))
    if not is_int(max_replicas) or max_replicas < 1:
        errs.append(invalid_value(f"{path}.maxReplicas", max_replicas, "must be greater than 0"))
    elif is_int(min_replicas) and max_replicas < min_replicas:
        errs.append(invalid_value(f"{path}.maxReplicas", max_replicas,
                                  "must be greater than or equal to `minReplicas`"))
    for i, metric in enumerate(spec.get("metrics") or []):
        _validate_metric(metric, f"{path}.metrics[{i}]", errs)
    behavior = spec.get("behavior")
    if isinstance(behavior, dict):
        _validate_rules(behavior.get("scaleUp"), f"{path}.behavior.scaleUp", errs)
        _validate_rules(behavior.get("scaleDown"), f"{path}.behavior.scaleDown", errs)
    return errs


def _current(statuses: list, i: int, field: str) -> Obj | None:
    if i < len(statuses) and isinstance(statuses[i], dict) and isinstance(statuses[i].get(field), dict):
        return statuses[i][field]
    return None


def format_metrics(specs: Any, statuses: Any) -> str:
    specs = specs if isinstance(specs, list) else []
    statuses = statuses if isinstance(statuses, list) else []
    if not specs:
        return "<none>"
    items: list[str] = []
    for i, metric in enumerate(specs):
        metric = metric if isinstance(metric, dict) else {}
        kind = metric.get("type")
        field = _SOURCE_FIELD.get(str(kind))
        source = metric.get(field) if field and isinstance(metric.get(field), dict) else None
        if source is None:
            items.append("<unknown type>")
            continue
        target = source.get("target") if isinstance(source.get("target"), dict) else {}
        current = dig(_current(statuses, i, field), "current") or {}
        if kind in ("External", "Object"):
            if target.get("averageValue") is not None:
                now = current.get("averageValue") or "<unknown>"
                items.append(f"{now}/{target['averageValue']} (avg)")
            else:
                now = current.get("value") if _current(statuses, i, field) is not None else None
                items.append(f"{now if now is not None else '<unknown>'}/{target.get('value', '0')}")
        elif kind == "Pods":
            now = current.get("averageValue") if _current(statuses, i, field) is not None else None
            items.append(f"{now if now is not None else '<unknown>'}/{target.get('averageValue', '0')}")
        else:
            name = str(source.get("name", ""))
            if target.get("averageValue") is not None:
                now = current.get("averageValue") if _current(statuses, i, field) is not None else None
                items.append(f"{name}: {now if now is not None else '<unknown>'}/{target['averageValue']}")
            else:
                utilization = current.get("averageUtilization")
                now_text = f"{utilization}%" if utilization is not None else "<unknown>"
                goal = target.get("averageUtilization")
                items.append(f"{name}: {now_text}/{f'{goal}%' if goal is not None else '<auto>'}")
    if len(items) > 2:
        return f"{', '.join(items[:2])} + {len(items) - 2} more..."
    return ", ".join(items)


class HorizontalPodAutoscalerStrategy(Strategy):
    def default(self, obj: Obj) -> None:
        default_hpa(obj)

    def prepare_for_create(self, obj: Obj) -> None:
        obj["status"] = {"desiredReplicas": 0}

    def validate(self, obj: Obj) -> list[FieldError]:
        return validate_hpa_spec(obj.get("spec"))

    def validate_status_update(self, new: Obj, old: Obj) -> list[FieldError]:
        errs: list[FieldError] = []
        status = strategy_status(new)
        for field in ("currentReplicas", "desiredReplicas", "observedGeneration"):
            non_negative(status, field, f"status.{field}", errs)
        return errs

    def columns(self) -> list[Column]:
        return [
            Column("Reference", description="reference to scaled resource; horizontal pod autoscaler will "
                   "learn the current resource consumption and will set the desired number of pods by using "
                   "its Scale subresource."),
            Column("Targets", description="the target value of the metric and the current value"),
            Column("MinPods", description="minReplicas is the lower limit for the number of replicas to which "
                   "the autoscaler can scale down."),
            Column("MaxPods", "integer", description="maxReplicas is the upper limit for the number of "
                   "replicas to which the autoscaler can scale up. It cannot be less that minReplicas."),
            Column("Replicas", "integer", description="currentReplicas is current number of replicas of pods "
                   "managed by this autoscaler, as last seen by the autoscaler."),
            AGE,
        ]

    def cells(self, obj: Obj, now: float) -> list[Any]:
        spec = obj.get("spec") if isinstance(obj.get("spec"), dict) else {}
        ref = spec.get("scaleTargetRef") if isinstance(spec.get("scaleTargetRef"), dict) else {}
        min_replicas = spec.get("minReplicas")
        status = strategy_status(obj)
        return [
            f"{ref.get('kind', '')}/{ref.get('name', '')}",
            format_metrics(spec.get("metrics"), status.get("currentMetrics")),
            "<unset>" if min_replicas is None else str(min_replicas),
            int_of(spec.get("maxReplicas")),
            int_of(status.get("currentReplicas")),
            age(obj, now),
        ]


HORIZONTALPODAUTOSCALERS = ResourceDef(
    group="autoscaling",
    version="v2",
    resource="horizontalpodautoscalers",
    kind="HorizontalPodAutoscaler",
    singular="horizontalpodautoscaler",
    namespaced=True,
    strategy=HorizontalPodAutoscalerStrategy(),
    short_names=("hpa",),
    categories=("all",),
    subresources=(status_of("HorizontalPodAutoscaler", "autoscaling", "v2"),),
)

RESOURCES: list[ResourceDef] = [HORIZONTALPODAUTOSCALERS]
