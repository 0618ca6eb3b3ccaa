"""A Deployment's status and conditions, computed without I/O (upstream's progress.go and the
status half of sync.go).

- ``calculate_status``: replicas, updatedReplicas, readyReplicas, availableReplicas,
  unavailableReplicas from its ReplicaSets, observedGeneration, collisionCount, and the
  Available condition (MinimumReplicasAvailable / MinimumReplicasUnavailable against
  ``replicas - maxUnavailable``);
- ``rollout_status``: that plus the Progressing condition of a rollout — NewReplicaSetAvailable
  when complete, ReplicaSetUpdated on progress, ProgressDeadlineExceeded once no progress
  was reported for progressDeadlineSeconds — and the ReplicaFailure condition copied from
  the ReplicaSets;
- ``requeue_after``: when to look again for a deadline that may pass with no event;
- ``paused_condition``: the Progressing condition a pause or resume writes.

``now`` is epoch seconds (the controller's clock).
"""

from __future__ import annotations

import copy
from typing import Any

from pybernetes.controllers import deployment_util as du

Obj = dict[str, Any]


def calculate_status(d: Obj, all_rss: list[Obj], new_rs: Obj | None, now: float) -> Obj:
    rss = [rs for rs in all_rss if rs is not None]
    available = du.total_status(rss, "availableReplicas")
    unavailable = max(0, du.total_spec_replicas(rss) - available)
    old = d.get("status") or {}
    status: Obj = {
        "observedGeneration": (d.get("metadata") or {}).get("generation") or 0,
        "replicas": du.total_status(rss, "replicas"),
        "updatedReplicas": du.status_count(new_rs, "replicas"),
        "readyReplicas": du.total_status(rss, "readyReplicas"),
        "availableReplicas": available,
        "unavailableReplicas": unavailable,
    }
    if old.get("collisionCount") is not None:
        status["collisionCount"] = old["collisionCount"]
    status["conditions"] = copy.deepcopy(old.get("conditions") or [])
    if available >= du.spec_replicas(d) - du.max_unavailable(d):
        cond = du.new_condition(du.AVAILABLE, "True", du.MIN_AVAILABLE,
                                "Deployment has minimum availability.", now)
    else:
        cond = du.new_condition(du.AVAILABLE, "False", du.MIN_UNAVAILABLE,
                                "Deployment does not have minimum availability.", now)
    du.set_deployment_condition(status, cond)
    return status


def deployment_complete(d: Obj, status: Obj) -> bool:
    replicas = du.spec_replicas(d)
    return (du.int_of(status.get("updatedReplicas")) == replicas
            and du.int_of(status.get("replicas")) == replicas
            and du.int_of(status.get("availableReplicas")) == replicas
            and du.int_of(status.get("observedGeneration")) >= du.int_of((d.get("metadata") or {}).get("generation")))


def deployment_progressing(d: Obj, status: Obj) -> bool:
    """More updated, fewer old, more ready or more available replicas than last written."""
    old = d.get("status") or {}

    def n(s: Obj, f: str) -> int:
        return du.int_of(s.get(f))
    old_old = n(old, "replicas") - n(old, "updatedReplicas")
    new_old = n(status, "replicas") - n(status, "updatedReplicas")
    return (n(status, "updatedReplicas") > n(old, "updatedReplicas") or new_old < old_old
            or n(status, "readyReplicas") > n(old, "readyReplicas")
            or n(status, "availableReplicas") > n(old, "availableReplicas"))


def deployment_timed_out(d: Obj, status: Obj, now: float) -> bool:
    deadline = du.progress_deadline(d)
    if deadline is None:
        return False
    cond = du.get_condition(status, du.PROGRESSING)
    if cond is None or cond.get("reason") == du.NEW_RS_AVAILABLE:
        return False
    if cond.get("reason") == du.TIMED_OUT:
        return True
    since = du.condition_time(cond, "lastUpdateTime")
    return since is not None and since + deadline < now


def replica_failures(all_rss: list[Obj], new_rs: Obj | None) -> list[Obj]:
    """ReplicaFailure conditions of the new ReplicaSet, else of any, as Deployment conditions."""
    def of(rs: Obj | None) -> list[Obj]:
        out = []
        for c in ((rs or {}).get("status") or {}).get("conditions") or ():
            if isinstance(c, dict) and c.get("type") == du.REPLICA_FAILURE:
                out.append({"type": du.REPLICA_FAILURE, "status": c.get("status"),
                            "lastUpdateTime": c.get("lastTransitionTime"),
                            "lastTransitionTime": c.get("lastTransitionTime"),
                            "reason": c.get("reason"), "message": c.get("message")})
        return out
    found = of(new_rs)
    if found:
        return found
    for rs in all_rss:
        found.extend(of(rs))
    return found


def rollout_status(d: Obj, all_rss: list[Obj], new_rs: Obj | None, now: float) -> Obj:
    """The status a rollout step writes (upstream syncRolloutStatus)."""
    status = calculate_status(d, all_rss, new_rs, now)
    has_deadline = du.has_progress_deadline(d)
    if not has_deadline:
        du.remove_condition(status, du.PROGRESSING)
    current = du.get_condition(d.get("status"), du.PROGRESSING)
    complete = (du.int_of(status.get("replicas")) == du.int_of(status.get("updatedReplicas"))
                and current is not None and current.get("reason") == du.NEW_RS_AVAILABLE)
    name = (d.get("metadata") or {}).get("name", "")
    rs_name = (new_rs.get("metadata") or {}).get("name", "") if new_rs is not None else None
    if has_deadline and not complete:
        if deployment_complete(d, status):
            msg = (f'ReplicaSet "{rs_name}" has successfully progressed.' if rs_name is not None
                   else f'Deployment "{name}" has successfully progressed.')
            du.set_deployment_condition(status, du.new_condition(du.PROGRESSING, "True", du.NEW_RS_AVAILABLE,
                                                                 msg, now))
        elif deployment_progressing(d, status):
            msg = (f'ReplicaSet "{rs_name}" is progressing.' if rs_name is not None
                   else f'Deployment "{name}" is progressing.')
            cond = du.new_condition(du.PROGRESSING, "True", du.REPLICA_SET_UPDATED, msg, now)
            if current is not None:
                if current.get("status") == "True":
                    cond["lastTransitionTime"] = current.get("lastTransitionTime")
                du.remove_condition(status, du.PROGRESSING)
            du.set_deployment_condition(status, cond)
        elif deployment_timed_out(d, status, now):
            msg = (f'ReplicaSet "{rs_name}" has timed out progressing.' if rs_name is not None
                   else f'Deployment "{name}" has timed out progressing.')
            du.set_deployment_condition(status, du.new_condition(du.PROGRESSING, "False", du.TIMED_OUT,
                                                                 msg, now))
    failures = replica_failures(all_rss, new_rs)
    if failures:
        du.set_deployment_condition(status, failures[0])
    else:
        du.remove_condition(status, du.REPLICA_FAILURE)
    return status


def requeue_after(d: Obj, status: Obj, now: float) -> float | None:
    """Seconds until the progress deadline of a rollout that made no progress passes (0 when
    it already has), None when there is nothing to wait for."""
    deadline = du.progress_deadline(d)
    current = du.get_condition(d.get("status"), du.PROGRESSING)
    if deadline is None or current is None:
        return None
    if deployment_complete(d, status) or current.get("reason") == du.TIMED_OUT:
        return None
    since = du.condition_time(current, "lastUpdateTime")
    if since is None:
        return None
    return max(0.0, since + deadline - now)


def paused_condition(d: Obj, now: float) -> Obj | None:
    """The Progressing condition a pause (DeploymentPaused) or resume (DeploymentResumed)
    writes, None when nothing changes (no deadline, already timed out, already said)."""
    if not du.has_progress_deadline(d):
        return None
    cond = du.get_condition(d.get("status"), du.PROGRESSING)
    if cond is not None and cond.get("reason") == du.TIMED_OUT:
        return None
    paused_said = cond is not None and cond.get("reason") == du.PAUSED
    paused = bool((d.get("spec") or {}).get("paused"))
    if paused and not paused_said:
        return du.new_condition(du.PROGRESSING, "Unknown", du.PAUSED, "Deployment is paused", now)
    if not paused and paused_said:
        return du.new_condition(du.PROGRESSING, "Unknown", du.RESUMED, "Deployment is resumed", now)
    return None


def status_changed(old: Obj | None, new: Obj) -> bool:
    """Whether ``new`` differs from the written status (absent zero counters equal 0)."""
    old = old or {}
    for key in set(old) | set(new):
        a, b = old.get(key), new.get(key)
        if key == "conditions":
            if (a or []) != (b or []):
                return True
        elif a != b and not (key != "collisionCount" and (a or 0) == (b or 0)):
            return True
    return False
