"""Pure helpers the workload controllers share: pod states, owner references, pods from
templates, label selectors and status conditions (upstream's controller_utils and podutil).

No I/O: every function reads or builds plain wire-shaped dicts.  Time is epoch seconds
(``parse_time``/``format_time`` are the API's RFC 3339 helpers).
"""

from __future__ import annotations

import math
from typing import Any

from pybernetes.api.printing import format_time, parse_time
from pybernetes.machinery.meta import clone, controller_of, owner_reference_for
from pybernetes.machinery.selectors import SelectorParseError, label_selector_from_dict

Obj = dict[str, Any]

__all__ = [
    "parse_time", "format_time", "controller_ref", "new_controller_ref", "is_pod_active",
    "is_pod_terminating", "is_pod_ready", "pod_ready_time", "is_pod_available", "pod_condition",
    "pod_from_template", "scaled_value", "selector_matches", "get_condition", "set_condition",
    "remove_condition",
]

controller_ref = controller_of


def new_controller_ref(owner: Obj, api_version: str, kind: str) -> Obj:
    """A controller ownerReference to ``owner`` (blockOwnerDeletion true, as upstream)."""
    return owner_reference_for({**owner, "apiVersion": api_version, "kind": kind})


# -- pod states ------------------------------------------------------------------------------


def _phase(pod: Obj) -> str:
    return (pod.get("status") or {}).get("phase") or ""


def is_pod_terminating(pod: Obj) -> bool:
    return bool((pod.get("metadata") or {}).get("deletionTimestamp"))


def is_pod_active(pod: Obj) -> bool:
    """Not Succeeded, not Failed and not being deleted (upstream IsPodActive)."""
    return _phase(pod) not in ("Succeeded", "Failed") and not is_pod_terminating(pod)


def pod_condition(pod: Obj, type_: str) -> Obj | None:
    return get_condition((pod.get("status") or {}).get("conditions"), type_)


def is_pod_ready(pod: Obj) -> bool:
    cond = pod_condition(pod, "Ready")
    return cond is not None and cond.get("status") == "True"


def pod_ready_time(pod: Obj) -> float | None:
    """When the pod's Ready condition last turned True (None when not ready)."""
    cond = pod_condition(pod, "Ready")
    if cond is None or cond.get("status") != "True":
        return None
    return parse_time(cond.get("lastTransitionTime"))


def is_pod_available(pod: Obj, min_ready_seconds: float, now: float) -> bool:
    """Ready for at least ``min_ready_seconds`` (upstream IsPodAvailable)."""
    if not is_pod_ready(pod):
        return False
    if not min_ready_seconds:
        return True
    since = pod_ready_time(pod)
    return since is not None and since + min_ready_seconds <= now


# -- pods from templates -----------------------------------------------------------------------


def pod_from_template(template: Obj, *, namespace: str, owner_ref: Obj | None,
                      generate_name: str | None = None, name: str | None = None) -> Obj:
    """A new Pod from a PodTemplateSpec: its labels, annotations and finalizers, a copy of its
    spec, the owner's controller reference, and a name or generateName."""
    tmeta = template.get("metadata") or {}
    meta: Obj = {"namespace": namespace}
    if name:
        meta["name"] = name
    elif generate_name:
        meta["generateName"] = generate_name
    for field in ("labels", "annotations"):
        if tmeta.get(field):
            meta[field] = dict(tmeta[field])
    if tmeta.get("finalizers"):
        meta["finalizers"] = list(tmeta["finalizers"])
    if owner_ref is not None:
        meta["ownerReferences"] = [dict(owner_ref)]
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta,
            "spec": clone(template.get("spec") or {})}


# -- int-or-percent ---------------------------------------------------------------------------


def scaled_value(value: Any, total: int, round_up: bool) -> int:
    """An IntOrString: an int as it is, "N%" as N% of ``total`` (rounded up or down).
    Raises ValueError for anything else (validation rejects those)."""
    if value is None:
        return 0
    if isinstance(value, bool):
        raise ValueError(f"invalid value for IntOrString: {value!r}")
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.endswith("%"):
        try:
            percent = int(value[:-1])
        except ValueError:
            raise ValueError(f"invalid value for IntOrString: invalid value {value!r}") from None
        scaled = percent * total / 100
        return math.ceil(scaled) if round_up else math.floor(scaled)
    raise ValueError(f"invalid value for IntOrString: invalid type: string is not a percentage: {value!r}")


# -- selectors -----------------------------------------------------------------------------


def selector_matches(selector: Obj | None, labels: dict[str, str] | None) -> bool:
    """Whether a metav1 LabelSelector matches ``labels``: ``{}`` matches everything, None
    and invalid selectors match nothing (upstream's controllers)."""
    if selector is None:
        return False
    try:
        return label_selector_from_dict(selector).matches(labels or {})
    except SelectorParseError:
        return False


# -- conditions ----------------------------------------------------------------------------


def get_condition(conditions: list[Obj] | None, type_: str) -> Obj | None:
    for cond in conditions or ():
        if isinstance(cond, dict) and cond.get("type") == type_:
            return cond
    return None


def set_condition(conditions: list[Obj] | None, cond: Obj, now: float) -> list[Obj]:
    """A new list with ``cond`` set: its lastTransitionTime is kept when the status did not
    change (and the reason/message are updated), else set to ``now``.  ``lastUpdateTime``
    (Deployments) is set to now when the caller put it in ``cond``."""
    out: list[Obj] = []
    placed = False
    stamp = format_time(now)
    for existing in conditions or ():
        if isinstance(existing, dict) and existing.get("type") == cond.get("type"):
            new = dict(cond)
            if existing.get("status") == cond.get("status") and existing.get("lastTransitionTime"):
                new["lastTransitionTime"] = existing["lastTransitionTime"]
            else:
                new.setdefault("lastTransitionTime", stamp)
            if "lastUpdateTime" in cond and cond["lastUpdateTime"] is None:
                new["lastUpdateTime"] = stamp
            out.append(new)
            placed = True
        else:
            out.append(existing)
    if not placed:
        new = dict(cond)
        new.setdefault("lastTransitionTime", stamp)
        if "lastUpdateTime" in new and new["lastUpdateTime"] is None:
            new["lastUpdateTime"] = stamp
        out.append(new)
    return out


def remove_condition(conditions: list[Obj] | None, type_: str) -> list[Obj]:
    return [c for c in conditions or () if not (isinstance(c, dict) and c.get("type") == type_)]
