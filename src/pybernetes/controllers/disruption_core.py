"""Pure core of the disruption controller (upstream pkg/controller/disruption): the status of
a PodDisruptionBudget from its pods and the scale of their controllers.

- ``scaled_value``: an int-or-percent against a total, rounded up (intstr's
  GetScaledValueFromIntOrPercent);
- ``desired_healthy``: (expectedPods, desiredHealthy) from minAvailable (an int counts the
  matching pods; a percent needs the controllers' scale) or maxUnavailable (always the scale);
- ``disrupted_pods`` / ``count_healthy``: pods the eviction API marked as being disrupted stay
  out of the healthy count for 2 minutes, then the entry is dropped;
- ``new_status``: the status to write (disruptionsAllowed, DisruptionAllowed condition with
  reason SufficientPods / InsufficientPods, observedGeneration), or None when current;
  ``failed_status``: the fail-safe status (SyncFailed) for a budget that cannot be computed.
"""

from __future__ import annotations

import math
from typing import Any

from pybernetes.controllers.podutil import format_time, is_pod_ready, parse_time
from pybernetes.machinery.meta import clone

Obj = dict[str, Any]

DELETION_TIMEOUT = 120.0  # seconds a disrupted pod has to disappear
CONDITION = "DisruptionAllowed"
SUFFICIENT_PODS = "SufficientPods"
INSUFFICIENT_PODS = "InsufficientPods"
SYNC_FAILED = "SyncFailed"


class BudgetError(Exception):
    """The budget's status cannot be computed (reported through SyncFailed)."""


def needs_scale(spec: Obj) -> bool:
    """Whether the expected pod count comes from the pods' controllers' scale."""
    if spec.get("maxUnavailable") is not None:
        return True
    return isinstance(spec.get("minAvailable"), str)


def scaled_value(value: int | str, total: int) -> int:
    if isinstance(value, bool):
        raise BudgetError(f"invalid value for IntOrString: {value!r}")
    if isinstance(value, int):
        return value
    text = str(value)
    if not text.endswith("%"):
        if text.lstrip("-").isdigit():
            return int(text)
        raise BudgetError(f"invalid value for IntOrString: invalid type: string is not a percentage: {text!r}")
    try:
        percent = int(text[:-1])
    except ValueError:
        raise BudgetError(f"invalid value for IntOrString: invalid value {text!r}") from None
    return math.ceil(percent * total / 100)


def desired_healthy(spec: Obj, pod_count: int, expected_scale: int | None) -> tuple[int, int]:
    """(expectedPods, desiredHealthy).  ``expected_scale`` is the sum of the controllers'
    replicas (needed when ``needs_scale(spec)``)."""
    if spec.get("maxUnavailable") is not None:
        expected = int(expected_scale or 0)
        return expected, max(0, expected - scaled_value(spec["maxUnavailable"], expected))
    min_available = spec.get("minAvailable")
    if min_available is None:
        return 0, 0
    if isinstance(min_available, int) and not isinstance(min_available, bool):
        return pod_count, min_available
    expected = int(expected_scale or 0)
    return expected, scaled_value(min_available, expected)


def disrupted_pods(pods: list[Obj], budget: Obj, now: float) -> tuple[dict[str, str], float | None, list[Obj]]:
    """The disruptedPods entries to keep (pods still there, not being deleted, within the
    timeout), when to look again, and the pods that overstayed (for a NotDeleted event)."""
    recorded = (budget.get("status") or {}).get("disruptedPods") or {}
    kept: dict[str, str] = {}
    recheck: float | None = None
    overdue: list[Obj] = []
    if not recorded:
        return kept, recheck, overdue
    for pod in pods:
        meta = pod.get("metadata") or {}
        if meta.get("deletionTimestamp"):
            continue
        stamp = recorded.get(meta.get("name"))
        if stamp is None:
            continue
        since = parse_time(stamp)
        if since is None:
            continue
        deadline = since + DELETION_TIMEOUT
        if deadline < now:
            overdue.append(pod)
        else:
            recheck = deadline if recheck is None else min(recheck, deadline)
            kept[meta["name"]] = stamp
    return kept, recheck, overdue


def count_healthy(pods: list[Obj], disrupted: dict[str, str], now: float) -> int:
    healthy = 0
    for pod in pods:
        meta = pod.get("metadata") or {}
        if meta.get("deletionTimestamp"):
            continue
        stamp = disrupted.get(meta.get("name"))
        since = parse_time(stamp) if stamp else None
        if since is not None and since + DELETION_TIMEOUT > now:
            continue
        if is_pod_ready(pod):
            healthy += 1
    return healthy


def _set_condition(conditions: list[Obj], status: str, reason: str, message: str, generation: int,
                   now: float) -> list[Obj]:
    """metav1 SetStatusCondition: lastTransitionTime moves only when the status does."""
    out = []
    placed = False
    for cond in conditions:
        if cond.get("type") == CONDITION:
            new = {"type": CONDITION, "status": status, "observedGeneration": generation,
                   "lastTransitionTime": cond.get("lastTransitionTime") if cond.get("status") == status
                   and cond.get("lastTransitionTime") else format_time(now),
                   "reason": reason, "message": message}
            out.append(new)
            placed = True
        else:
            out.append(cond)
    if not placed:
        out.append({"type": CONDITION, "status": status, "observedGeneration": generation,
                    "lastTransitionTime": format_time(now), "reason": reason, "message": message})
    return out


def _condition_up_to_date(status: Obj, generation: int, allowed: int) -> bool:
    cond = next((c for c in status.get("conditions") or () if c.get("type") == CONDITION), None)
    if cond is None or status.get("observedGeneration") != generation:
        return False
    if allowed > 0:
        return cond.get("status") == "True" and cond.get("reason") == SUFFICIENT_PODS
    return cond.get("status") == "False" and cond.get("reason") == INSUFFICIENT_PODS


def new_status(budget: Obj, current_healthy: int, desired: int, expected: int,
               disrupted: dict[str, str], now: float) -> Obj | None:
    """The budget with its new status, or None when its status already says so."""
    allowed = current_healthy - desired
    if expected <= 0 or allowed <= 0:
        allowed = 0
    status = budget.get("status") or {}
    generation = int((budget.get("metadata") or {}).get("generation") or 0)
    if (status.get("currentHealthy", 0) == current_healthy and status.get("desiredHealthy", 0) == desired
            and status.get("expectedPods", 0) == expected and status.get("disruptionsAllowed", 0) == allowed
            and (status.get("disruptedPods") or {}) == disrupted
            and _condition_up_to_date(status, generation, allowed)):
        return None
    new = clone(budget)
    conditions = list(status.get("conditions") or [])
    if allowed > 0:
        conditions = _set_condition(conditions, "True", SUFFICIENT_PODS, "", generation, now)
    else:
        conditions = _set_condition(conditions, "False", INSUFFICIENT_PODS, "", generation, now)
    new["status"] = {"currentHealthy": current_healthy, "desiredHealthy": desired, "expectedPods": expected,
                     "disruptionsAllowed": allowed, "observedGeneration": generation, "conditions": conditions}
    if disrupted:
        new["status"]["disruptedPods"] = dict(disrupted)
    return new


def failed_status(budget: Obj, message: str, now: float) -> Obj | None:
    """Fail safe: no disruptions allowed, DisruptionAllowed False with reason SyncFailed (None
    when the status says exactly that already)."""
    status = budget.get("status") or {}
    cond = next((c for c in status.get("conditions") or () if c.get("type") == CONDITION), None)
    if (status.get("disruptionsAllowed", 0) == 0 and cond is not None and cond.get("status") == "False"
            and cond.get("reason") == SYNC_FAILED and cond.get("message") == message):
        return None
    new = clone(budget)
    new_st = dict(status)
    new_st["disruptionsAllowed"] = 0
    new_st["conditions"] = _set_condition(list(status.get("conditions") or []), "False", SYNC_FAILED, message,
                                          int(status.get("observedGeneration") or 0), now)
    new["status"] = new_st
    return new
