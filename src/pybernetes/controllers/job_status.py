"""Pure pieces of the Job controller's bookkeeping: which pods count as finished, the
job-tracking finalizer, conditions, deadlines and the pod-failure backoff (upstream's
job_controller.go helpers and backoff_utils.go).

- ``is_pod_failed``: Failed, or (unless only failed pods are replaced) being deleted without
  having succeeded — deleted pods count as failures.
- The backoff: after ``n`` consecutive failures (since the last success) a new pod waits
  ``base * 2**(n-1)`` seconds (capped at ``max``) from the last failure; ``BackoffRecord``
  carries ``n`` and the last failure time between syncs.
- ``rank_for_removal``: upstream's ActivePods order (the pods to delete first come first).
- Conditions: ``ensure_condition`` (upstream ensureJobConditionStatus), ``is_finished``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pybernetes.controllers.podutil import format_time, is_pod_ready, parse_time, pod_ready_time

Obj = dict[str, Any]

TRACKING_FINALIZER = "batch.kubernetes.io/job-tracking"
MAX_BACKOFF = 360.0  # seconds (upstream MaxJobPodFailureBackOff)
DEFAULT_BACKOFF = 10.0  # seconds (upstream DefaultJobPodFailureBackOff)


def phase(pod: Obj) -> str:
    return (pod.get("status") or {}).get("phase") or ""


def uid(obj: Obj) -> str:
    return str((obj.get("metadata") or {}).get("uid") or "")


def has_tracking_finalizer(pod: Obj) -> bool:
    return TRACKING_FINALIZER in ((pod.get("metadata") or {}).get("finalizers") or ())


def remove_finalizer_patch() -> Obj:
    """The strategic-merge patch removing the tracking finalizer."""
    return {"metadata": {"$deleteFromPrimitiveList/finalizers": [TRACKING_FINALIZER]}}


def only_replace_failed_pods(job: Obj) -> bool:
    spec = job.get("spec") or {}
    return spec.get("podReplacementPolicy") == "Failed" or spec.get("podFailurePolicy") is not None


def is_pod_failed(pod: Obj, job: Obj) -> bool:
    if phase(pod) == "Failed":
        return True
    if only_replace_failed_pods(job):
        return False
    return bool((pod.get("metadata") or {}).get("deletionTimestamp")) and phase(pod) != "Succeeded"


def is_terminating(pod: Obj) -> bool:
    """Being deleted and not yet terminal (upstream CountTerminatingPods)."""
    return bool((pod.get("metadata") or {}).get("deletionTimestamp")) and phase(pod) not in ("Succeeded", "Failed")


def is_suspended(job: Obj) -> bool:
    return (job.get("spec") or {}).get("suspend") is True


def is_indexed(job: Obj) -> bool:
    return (job.get("spec") or {}).get("completionMode") == "Indexed"


def has_backoff_limit_per_index(job: Obj) -> bool:
    spec = job.get("spec") or {}
    return is_indexed(job) and spec.get("backoffLimitPerIndex") is not None


# -- times ---------------------------------------------------------------------------------


def finished_time(pod: Obj) -> float:
    """When the pod finished: its last container's finishedAt, else when it stopped being
    ready, else when its deletion began, else its creationTimestamp."""
    status = pod.get("status") or {}
    latest: float | None = None
    for cs in status.get("containerStatuses") or ():
        terminated = ((cs or {}).get("state") or {}).get("terminated") or {}
        t = parse_time(terminated.get("finishedAt"))
        if t is not None and (latest is None or t > latest):
            latest = t
    if latest is not None:
        return latest
    for cond in status.get("conditions") or ():
        if cond.get("type") == "Ready" and cond.get("status") == "False":
            t = parse_time(cond.get("lastTransitionTime"))
            if t is not None:
                return t
    meta = pod.get("metadata") or {}
    t = parse_time(meta.get("deletionTimestamp"))
    if t is not None:
        # A graceful deletion stamps the moment the grace ends: the deletion began earlier.
        return t - float(meta.get("deletionGracePeriodSeconds") or 0)
    return parse_time(meta.get("creationTimestamp")) or 0.0


def backoff_delay(failures: int, base: float, cap: float = MAX_BACKOFF) -> float:
    """The wait before the next pod after ``failures`` consecutive failures."""
    if failures <= 0:
        return 0.0
    delay = base
    for _ in range(1, failures):
        delay *= 2
        if delay >= cap:
            return cap
    return min(delay, cap)


def remaining_backoff(failures: int, last_failure: float | None, now: float, base: float,
                      cap: float = MAX_BACKOFF) -> float:
    if failures <= 0 or last_failure is None:
        return 0.0
    delay = backoff_delay(failures, base, cap)
    elapsed = now - last_failure
    return 0.0 if delay < elapsed else delay - elapsed


@dataclass(frozen=True, slots=True)
class BackoffRecord:
    """Consecutive failures since the last success, and when the last one happened."""

    failures_after_last_success: int = 0
    last_failure_time: float | None = None

    def remaining(self, now: float, base: float, cap: float = MAX_BACKOFF) -> float:
        return remaining_backoff(self.failures_after_last_success, self.last_failure_time, now, base, cap)


def next_backoff_record(old: BackoffRecord, new_succeeded: list[Obj], new_failed: list[Obj]) -> BackoffRecord:
    """The record after this sync's newly finished pods (upstream newBackoffRecord)."""
    if not new_succeeded and not new_failed:
        return old
    failed_times = sorted(finished_time(p) for p in new_failed)
    if not new_succeeded:
        return BackoffRecord(old.failures_after_last_success + len(failed_times), failed_times[-1])
    last_success = max(finished_time(p) for p in new_succeeded)
    after = [t for t in failed_times if t > last_success]
    return BackoffRecord(len(after), after[-1] if after else None)


# -- limits and deadlines ------------------------------------------------------------------


def past_backoff_limit_on_failure(job: Obj, pods: list[Obj]) -> bool:
    """restartPolicy OnFailure: container restarts of running/pending pods reach backoffLimit."""
    spec = job.get("spec") or {}
    if ((spec.get("template") or {}).get("spec") or {}).get("restartPolicy") != "OnFailure":
        return False
    restarts = 0
    for pod in pods:
        if phase(pod) in ("Running", "Pending"):
            status = pod.get("status") or {}
            for cs in (status.get("initContainerStatuses") or []) + (status.get("containerStatuses") or []):
                restarts += int((cs or {}).get("restartCount") or 0)
    limit = int(spec.get("backoffLimit") or 0)
    return restarts > 0 if limit == 0 else restarts >= limit


def deadline_remaining(job: Obj, now: float) -> float | None:
    """Seconds until activeDeadlineSeconds passes (<= 0: passed); None without a deadline,
    a start time, or while suspended."""
    spec = job.get("spec") or {}
    deadline = spec.get("activeDeadlineSeconds")
    start = parse_time((job.get("status") or {}).get("startTime"))
    if deadline is None or start is None or is_suspended(job):
        return None
    return start + float(deadline) - now


# -- conditions ----------------------------------------------------------------------------


def find_condition(job: Obj, type_: str) -> Obj | None:
    for cond in (job.get("status") or {}).get("conditions") or ():
        if cond.get("type") == type_:
            return cond
    return None


def condition_true(job: Obj, type_: str) -> bool:
    cond = find_condition(job, type_)
    return cond is not None and cond.get("status") == "True"


def is_finished(job: Obj) -> bool:
    return condition_true(job, "Complete") or condition_true(job, "Failed")


def new_condition(type_: str, status: str, reason: str, message: str, now: float) -> Obj:
    stamp = format_time(now)
    return {"type": type_, "status": status, "lastProbeTime": stamp, "lastTransitionTime": stamp,
            "reason": reason, "message": message}


def ensure_condition(conditions: list[Obj], type_: str, status: str, reason: str, message: str,
                     now: float) -> tuple[list[Obj], bool]:
    """Set the condition (a new list); whether anything changed.  An absent condition with
    status False is not added."""
    out = [dict(c) for c in conditions]
    for cond in out:
        if cond.get("type") == type_:
            if cond.get("status") != status or cond.get("reason") != reason or cond.get("message") != message:
                stamp = format_time(now)
                if cond.get("status") != status:
                    cond["lastTransitionTime"] = stamp
                cond.update(status=status, reason=reason, message=message, lastProbeTime=stamp)
                return out, True
            return out, False
    if status == "False":
        return out, False
    out.append(new_condition(type_, status, reason, message, now))
    return out, True


# -- which active pods go first ------------------------------------------------------------

_PHASE_RANK = {"Pending": 0, "Unknown": 1, "Running": 2}


def _restarts(pod: Obj) -> int:
    return max((int((cs or {}).get("restartCount") or 0)
                for cs in (pod.get("status") or {}).get("containerStatuses") or ()), default=0)


def removal_rank(pod: Obj) -> tuple[Any, ...]:
    """Sort key: unscheduled < scheduled, Pending < Unknown < Running, not ready < ready,
    ready more recently first, more restarts first, newer first."""
    ready = is_pod_ready(pod)
    ready_since = pod_ready_time(pod) or 0.0
    created = parse_time((pod.get("metadata") or {}).get("creationTimestamp")) or 0.0
    return (
        bool((pod.get("spec") or {}).get("nodeName")),
        _PHASE_RANK.get(phase(pod), 1),
        ready,
        -ready_since if ready else 0.0,
        -_restarts(pod),
        -created,
    )


def rank_for_removal(pods: list[Obj]) -> list[Obj]:
    return sorted(pods, key=removal_rank)


def count_ready(pods: list[Obj]) -> int:
    return sum(1 for p in pods if is_pod_ready(p))
