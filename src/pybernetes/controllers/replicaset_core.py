"""The pure decisions of the ReplicaSet and ReplicationController controllers (no I/O).

Owns, as upstream v1.32's replica_set.go / replica_set_utils.go / controller_utils.go do:

- how many pods to create or delete in one sync (``replica_diff``: the difference between
  active pods and desired replicas, capped at ``BURST_REPLICAS``) and the slow-start batch
  sizes creations go out in (``slow_start_batches``: 1, 2, 4, ...);
- which pods to delete first (``pods_to_delete``): upstream's ActivePodsWithRanks order —
  unassigned before assigned, Pending < Unknown < Running, not ready before ready, lower
  ``controller.kubernetes.io/pod-deletion-cost`` first, pods doubled up on a node with
  related pods (``co_location_ranks``) first, ready for less time first (logarithmic
  buckets), more container restarts first, newer first;
- the status a sync writes (``calculate_status``): replicas, fullyLabeledReplicas,
  readyReplicas, availableReplicas (minReadySeconds), the ReplicaFailure condition for a
  failed create or delete; ``status_needs_update`` (only when changed, observedGeneration
  included) and ``availability_requeue`` (when to look again for availableReplicas);
- which owners an orphan pod could belong to (``matching_owners``) and the generateName
  prefix of their pods (``pod_name_prefix``).

Time is epoch seconds; objects are wire-shaped dicts and are never changed here.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from functools import cmp_to_key
from typing import Any

from pybernetes.controllers.podutil import (
    format_time,
    is_pod_active,
    is_pod_available,
    is_pod_ready,
    parse_time,
    pod_ready_time,
    selector_matches,
)
from pybernetes.machinery import validation as mv

Obj = dict[str, Any]

BURST_REPLICAS = 500  # upstream's BurstReplicas: at most this many creates/deletes per sync
SLOW_START_INITIAL_BATCH = 1
DELETION_COST_ANNOTATION = "controller.kubernetes.io/pod-deletion-cost"
REPLICA_FAILURE = "ReplicaFailure"
FAILED_CREATE = "FailedCreate"
FAILED_DELETE = "FailedDelete"
OPTIONAL_COUNTERS = ("fullyLabeledReplicas", "readyReplicas", "availableReplicas")
_PHASE_ORDER = {"Pending": 0, "Unknown": 1, "Running": 2}
_INT32 = (-(2 ** 31), 2 ** 31 - 1)


# -- how many ----------------------------------------------------------------------------------


def replica_diff(active: int, desired: int, burst: int = BURST_REPLICAS) -> int:
    """Pods to create (> 0) or delete (< 0) this sync, at most ``burst`` either way."""
    diff = desired - active
    return max(-burst, min(burst, diff))


def slow_start_batches(count: int, initial: int = SLOW_START_INITIAL_BATCH) -> list[int]:
    """Batch sizes for ``count`` calls: ``initial``, then doubling, the last one cut to what
    remains (upstream slowStartBatch).  A batch with a failure ends the run."""
    sizes: list[int] = []
    remaining = count
    size = min(remaining, max(1, initial))
    while size > 0:
        sizes.append(size)
        remaining -= size
        size = min(2 * size, remaining)
    return sizes


def pod_name_prefix(owner_name: str) -> str:
    """``<owner>-`` as the pods' generateName, or the bare name when that is not a valid
    prefix (upstream getPodsPrefix)."""
    prefix = f"{owner_name}-"
    if mv.is_dns1123_subdomain(owner_name + "a"):  # the dash masked, as upstream
        return owner_name
    return prefix


# -- which pods are whose ----------------------------------------------------------------------


def active_pods(pods: Iterable[Obj]) -> list[Obj]:
    """Pods not Succeeded, not Failed and not being deleted (upstream FilterActivePods)."""
    return [p for p in pods if is_pod_active(p)]


def matching_owners(pod: Obj, owners: Iterable[Obj], selector_of: Callable[[Obj], Obj | None]
                    ) -> list[Obj]:
    """The owners in the pod's namespace whose selector matches its labels (an orphan pod
    wakes them all).  Empty selectors match nothing here, as upstream GetPodReplicaSets."""
    meta = pod.get("metadata") or {}
    ns, labels = meta.get("namespace"), meta.get("labels") or {}
    out: list[Obj] = []
    for owner in owners:
        if (owner.get("metadata") or {}).get("namespace") != ns:
            continue
        selector = selector_of(owner)
        if not selector or not (selector.get("matchLabels") or selector.get("matchExpressions")):
            continue
        if selector_matches(selector, labels):
            out.append(owner)
    return out


# -- which pods to delete first ------------------------------------------------------------------


def deletion_cost(pod: Obj) -> int:
    """The pod-deletion-cost annotation as an int32 (0 when absent or not a valid int32)."""
    raw = ((pod.get("metadata") or {}).get("annotations") or {}).get(DELETION_COST_ANNOTATION)
    if raw is None:
        return 0
    try:
        value = int(str(raw).strip(), 10)
    except ValueError:
        return 0
    return value if _INT32[0] <= value <= _INT32[1] else 0


def max_container_restarts(pod: Obj) -> tuple[int, int]:
    """(highest restartCount of regular containers, of sidecars — init containers with
    restartPolicy Always)."""
    status = pod.get("status") or {}
    regular = max((int(cs.get("restartCount") or 0) for cs in status.get("containerStatuses") or ()
                   if isinstance(cs, dict)), default=0)
    sidecar_names = {c.get("name") for c in (pod.get("spec") or {}).get("initContainers") or ()
                     if isinstance(c, dict) and c.get("restartPolicy") == "Always"}
    sidecar = max((int(cs.get("restartCount") or 0) for cs in status.get("initContainerStatuses") or ()
                   if isinstance(cs, dict) and cs.get("name") in sidecar_names), default=0)
    return regular, sidecar


def co_location_ranks(pods: list[Obj], related: Iterable[Obj]) -> list[int]:
    """For each pod, how many active related pods (this owner's and its siblings') share its
    node (upstream getPodsRankedByRelatedPodsOnSameNode)."""
    on_node: dict[str, int] = {}
    for pod in related:
        if is_pod_active(pod):
            node = (pod.get("spec") or {}).get("nodeName") or ""
            on_node[node] = on_node.get(node, 0) + 1
    return [on_node.get((p.get("spec") or {}).get("nodeName") or "", 0) for p in pods]


def _after_or_zero(t1: float | None, t2: float | None) -> bool:
    """t1 is a zero time (when either is), else t1 is later than t2."""
    if not t1 or not t2:
        return not t1
    return t1 > t2


def _log_rank(t: float, now: float) -> int:
    nanos = (now - t) * 1e9
    return int(math.log2(nanos)) if nanos > 0 else -1


def _newer_first(t1: float | None, t2: float | None, uid1: str, uid2: str, now: float) -> bool:
    """Upstream's LogarithmicScaleDown comparison: times within the same power-of-two age
    bucket are equals (ordered by uid), else the younger one first."""
    if not now or not t1 or not t2:
        return _after_or_zero(t1, t2)
    diff = _log_rank(t1, now) - _log_rank(t2, now)
    if diff == 0:
        return uid1 < uid2
    return diff < 0


def _created(pod: Obj) -> float | None:
    return parse_time((pod.get("metadata") or {}).get("creationTimestamp"))


def _uid(pod: Obj) -> str:
    return str((pod.get("metadata") or {}).get("uid") or "")


def delete_first(a: Obj, b: Obj, rank_a: int, rank_b: int, now: float) -> bool:
    """Whether pod ``a`` should be deleted before pod ``b`` (upstream ActivePodsWithRanks)."""
    node_a = (a.get("spec") or {}).get("nodeName") or ""
    node_b = (b.get("spec") or {}).get("nodeName") or ""
    if node_a != node_b and (not node_a or not node_b):  # 1. unassigned < assigned
        return not node_a
    phase_a = _PHASE_ORDER.get((a.get("status") or {}).get("phase") or "", 0)
    phase_b = _PHASE_ORDER.get((b.get("status") or {}).get("phase") or "", 0)
    if phase_a != phase_b:  # 2. Pending < Unknown < Running
        return phase_a < phase_b
    ready_a, ready_b = is_pod_ready(a), is_pod_ready(b)
    if ready_a != ready_b:  # 3. not ready < ready
        return not ready_a
    cost_a, cost_b = deletion_cost(a), deletion_cost(b)
    if cost_a != cost_b:  # 4. lower deletion cost < higher
        return cost_a < cost_b
    if rank_a != rank_b:  # 5. doubled up on a node < not
        return rank_a > rank_b
    if ready_a and ready_b:  # 6. ready for less time < more time
        t_a, t_b = pod_ready_time(a), pod_ready_time(b)
        if t_a != t_b:
            return _newer_first(t_a, t_b, _uid(a), _uid(b), now)
    restarts_a, restarts_b = max_container_restarts(a), max_container_restarts(b)
    if restarts_a[0] != restarts_b[0]:  # 7. more restarts < fewer (regular, then sidecars)
        return restarts_a[0] > restarts_b[0]
    if restarts_a[1] != restarts_b[1]:
        return restarts_a[1] > restarts_b[1]
    c_a, c_b = _created(a), _created(b)
    if c_a != c_b:  # 8. newer < older
        return _newer_first(c_a, c_b, _uid(a), _uid(b), now)
    return False


def rank_for_deletion(pods: list[Obj], related: Iterable[Obj], now: float) -> list[Obj]:
    """The pods in the order they should be deleted."""
    ranks = co_location_ranks(pods, related)
    indexed = list(range(len(pods)))

    def compare(i: int, j: int) -> int:
        if delete_first(pods[i], pods[j], ranks[i], ranks[j], now):
            return -1
        if delete_first(pods[j], pods[i], ranks[j], ranks[i], now):
            return 1
        return 0

    indexed.sort(key=cmp_to_key(compare))
    return [pods[i] for i in indexed]


def pods_to_delete(pods: list[Obj], related: Iterable[Obj], count: int, now: float) -> list[Obj]:
    """The ``count`` pods to delete (every pod when ``count`` covers them all)."""
    if count <= 0:
        return []
    if count >= len(pods):
        return list(pods)
    return rank_for_deletion(pods, related, now)[:count]


# -- status ------------------------------------------------------------------------------------


def _counter(status: Obj, field: str) -> int:
    return int(status.get(field) or 0)


def calculate_status(owner: Obj, pods: list[Obj], template_labels: dict[str, str] | None,
                     manage_error: str | None, now: float) -> Obj:
    """The owner's new status from its active, claimed ``pods`` (upstream calculateStatus).

    ``manage_error`` is the message of this sync's failed create/delete (None when it went
    well): it adds the ReplicaFailure condition when absent (FailedCreate when pods were
    missing, FailedDelete when there were too many); a sync without error removes it."""
    spec = owner.get("spec") or {}
    status = dict(owner.get("status") or {})
    min_ready = int(spec.get("minReadySeconds") or 0)
    template_labels = template_labels or {}
    fully_labeled = ready = available = 0
    for pod in pods:
        labels = (pod.get("metadata") or {}).get("labels") or {}
        if all(labels.get(k) == v for k, v in template_labels.items()):
            fully_labeled += 1
        if is_pod_ready(pod):
            ready += 1
            if is_pod_available(pod, min_ready, now):
                available += 1
    conditions = [c for c in status.get("conditions") or () if isinstance(c, dict)]
    failure = next((c for c in conditions if c.get("type") == REPLICA_FAILURE), None)
    if manage_error is not None and failure is None:
        desired = int(spec.get("replicas") if spec.get("replicas") is not None else 1)
        diff = len(pods) - desired
        reason = FAILED_CREATE if diff < 0 else FAILED_DELETE if diff > 0 else ""
        conditions.append({"type": REPLICA_FAILURE, "status": "True",
                           "lastTransitionTime": format_time(now), "reason": reason,
                           "message": manage_error})
    elif manage_error is None and failure is not None:
        conditions = [c for c in conditions if c.get("type") != REPLICA_FAILURE]
    if conditions:
        status["conditions"] = conditions
    else:
        status.pop("conditions", None)
    status["replicas"] = len(pods)
    for field, value in zip(OPTIONAL_COUNTERS, (fully_labeled, ready, available), strict=True):
        if value:
            status[field] = value
        else:
            status.pop(field, None)  # omitempty, as upstream writes them
    return status


def status_needs_update(owner: Obj, new_status: Obj) -> bool:
    """Whether ``new_status`` differs from the owner's (counters, conditions) or the owner's
    generation was not observed yet (upstream updateReplicaSetStatus)."""
    old = owner.get("status") or {}
    for field in ("replicas", *OPTIONAL_COUNTERS):
        if _counter(old, field) != _counter(new_status, field):
            return True
    generation = int((owner.get("metadata") or {}).get("generation") or 0)
    if _counter(old, "observedGeneration") != generation:
        return True
    return (old.get("conditions") or []) != (new_status.get("conditions") or [])


def with_observed_generation(owner: Obj, new_status: Obj) -> Obj:
    status = dict(new_status)
    status["observedGeneration"] = int((owner.get("metadata") or {}).get("generation") or 0)
    return status


def availability_requeue(owner: Obj) -> float | None:
    """Seconds after which to sync again so availableReplicas catches up: when every
    desired replica is ready but not all are available yet and minReadySeconds > 0."""
    spec = owner.get("spec") or {}
    status = owner.get("status") or {}
    min_ready = int(spec.get("minReadySeconds") or 0)
    if min_ready <= 0:
        return None
    desired = int(spec.get("replicas") if spec.get("replicas") is not None else 1)
    if _counter(status, "readyReplicas") == desired and _counter(status, "availableReplicas") != desired:
        return float(min_ready)
    return None
