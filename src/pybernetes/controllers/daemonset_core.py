"""What the DaemonSet controller decides, as pure functions (upstream daemon_controller.go's
manage, podsShouldBeOnNode, syncNodes' template, updateDaemonSetStatus; the controller shell
in ``daemonset`` does the I/O).

- ``daemon_pod``: the pod for one node: the template with the default daemon tolerations,
  the ``pod-template-generation`` and ``controller-revision-hash`` labels, a required node
  affinity pinning it to its node (the scheduler binds it), a controller reference, and
  generateName ``<daemonset>-``.
- ``group_by_node``: the DaemonSet's pods by the node they are for.
- ``manage``: per node, create a pod where one should run and none exists; where pods may
  stay, delete failed ones (rate-limited per node by ``FailedPodBackoff``, with a
  FailedDaemonPod warning) and succeeded ones, and of several running pods keep the oldest
  (with surge: the oldest new one, and the oldest old one while the new one is not yet
  available); where no pod may stay, delete them all; and delete pods that were never bound
  to a node that is gone.
- ``calculate_status``: the status counters, judging each node by its oldest pod.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Any

from pybernetes.controllers.daemonset_nodes import DaemonPlacement, add_daemon_tolerations, pin_to_node
from pybernetes.controllers.daemonset_nodes import target_node_name as target_node_name
from pybernetes.controllers.daemonset_update import (
    TEMPLATE_GENERATION_LABEL,
    allows_surge,
    is_pod_updated,
    template_generation,
)
from pybernetes.controllers.history import REVISION_HASH_LABEL
from pybernetes.controllers.podutil import (
    is_pod_available,
    is_pod_ready,
    is_pod_terminating,
    pod_from_template,
)
from pybernetes.machinery.meta import clone

Obj = dict[str, Any]

BURST_REPLICAS = 250
SLOW_START_INITIAL_BATCH = 1
BACKOFF_INITIAL = 1.0
BACKOFF_MAX = 15 * 60.0

STATUS_COUNTERS = ("desiredNumberScheduled", "currentNumberScheduled", "numberMisscheduled", "numberReady",
                   "updatedNumberScheduled", "numberAvailable", "numberUnavailable")


def slow_start_batches(count: int, initial: int = SLOW_START_INITIAL_BATCH) -> list[int]:
    """Batch sizes 1, 2, 4, ... adding up to ``count``."""
    sizes: list[int] = []
    size, left = min(count, initial), count
    while left > 0:
        sizes.append(size)
        left -= size
        size = min(2 * size, left)
    return sizes


# -- pods ------------------------------------------------------------------------------------


def pod_template(ds: Obj, hash_: str) -> Obj:
    """The DaemonSet's template as its new pods get it (tolerations and labels added)."""
    template = clone(((ds.get("spec") or {}).get("template")) or {})
    add_daemon_tolerations(template.setdefault("spec", {}))
    labels = template.setdefault("metadata", {}).get("labels") or {}
    generation = template_generation(ds)
    if generation is not None:
        labels[TEMPLATE_GENERATION_LABEL] = str(generation)
    if hash_:
        labels[REVISION_HASH_LABEL] = hash_
    template["metadata"]["labels"] = labels
    return template


def daemon_pod(ds: Obj, template: Obj, node_name: str, owner_ref: Obj) -> Obj:
    """The pod to create for ``node_name`` from a ``pod_template``."""
    meta = ds.get("metadata") or {}
    pod = pod_from_template(template, namespace=meta.get("namespace") or "", owner_ref=owner_ref,
                            generate_name=f"{meta.get('name') or ''}-")
    pod["spec"]["affinity"] = pin_to_node(pod["spec"].get("affinity"), node_name)
    return pod


def _created(pod: Obj) -> str:
    return (pod.get("metadata") or {}).get("creationTimestamp") or ""


def _older_first(a: Obj, b: Obj) -> int:
    bound_a = bool((a.get("spec") or {}).get("nodeName"))
    bound_b = bool((b.get("spec") or {}).get("nodeName"))
    if bound_a != bound_b:
        return -1 if bound_a else 1
    ka = (_created(a), (a.get("metadata") or {}).get("name") or "")
    kb = (_created(b), (b.get("metadata") or {}).get("name") or "")
    return (ka > kb) - (ka < kb)


def sort_pods(pods: list[Obj]) -> list[Obj]:
    """Bound pods first, then oldest first, then by name (upstream
    podByCreationTimestampAndPhase; RFC 3339 UTC timestamps sort as strings)."""
    return sorted(pods, key=functools.cmp_to_key(_older_first))


def is_terminal(pod: Obj) -> bool:
    return (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed")


def group_by_node(pods: list[Obj], include_deleted_terminal: bool = False) -> dict[str, list[Obj]]:
    """The pods by target node; terminal pods being deleted are left out unless asked for,
    pods with no target node always."""
    out: dict[str, list[Obj]] = {}
    for pod in pods:
        if not include_deleted_terminal and is_terminal(pod) and is_pod_terminating(pod):
            continue
        node = target_node_name(pod)
        if node:
            out.setdefault(node, []).append(pod)
    return out


# -- failed pods ------------------------------------------------------------------------------


class FailedPodBackoff:
    """Per (DaemonSet, node) exponential backoff for deleting failed pods (client-go's
    flowcontrol.Backoff: 1 s doubling to 15 min; an entry idle for twice the maximum
    starts again from 1 s)."""

    def __init__(self, initial: float = BACKOFF_INITIAL, maximum: float = BACKOFF_MAX) -> None:
        self.initial = initial
        self.maximum = maximum
        self._entries: dict[str, tuple[float, float]] = {}  # key -> (delay, last update)

    def get(self, key: str) -> float:
        entry = self._entries.get(key)
        return 0.0 if entry is None else entry[0]

    def in_backoff_since_update(self, key: str, now: float) -> bool:
        entry = self._entries.get(key)
        if entry is None or now - entry[1] > 2 * self.maximum:
            return False
        return now - entry[1] < entry[0]

    def next(self, key: str, now: float) -> None:
        entry = self._entries.get(key)
        if entry is None or now - entry[1] > 2 * self.maximum:
            self._entries[key] = (self.initial, now)
        else:
            self._entries[key] = (min(entry[0] * 2, self.maximum), now)

    def gc(self, now: float) -> None:
        for key, (_, last) in list(self._entries.items()):
            if now - last > 2 * self.maximum:
                del self._entries[key]


def backoff_key(ds: Obj, node_name: str) -> str:
    meta, status = ds.get("metadata") or {}, ds.get("status") or {}
    return f"{meta.get('uid')}/{int(status.get('observedGeneration') or 0)}/{node_name}"


# -- the manage loop -----------------------------------------------------------------------


@dataclass
class ManagePlan:
    create: list[str] = field(default_factory=list)  # node names
    delete: list[Obj] = field(default_factory=list)  # pods
    events: list[tuple[str, str, str]] = field(default_factory=list)  # (type, reason, message)
    requeue_after: float | None = None

    def requeue(self, delay: float) -> None:
        self.requeue_after = delay if self.requeue_after is None else min(self.requeue_after, delay)


def _on_node(plan: ManagePlan, ds: Obj, node: Obj, placement: DaemonPlacement, pods: list[Obj] | None,
             hash_: str, now: float, backoff: FailedPodBackoff) -> None:
    node_name = (node.get("metadata") or {}).get("name") or ""
    should_run, should_continue = placement.should_run(node)
    if should_run and pods is None:
        plan.create.append(node_name)
        return
    if not should_continue:
        plan.delete.extend(p for p in pods or () if not is_pod_terminating(p))
        return
    running: list[Obj] = []
    for pod in pods or ():
        if is_pod_terminating(pod):
            continue
        phase = (pod.get("status") or {}).get("phase")
        pmeta = pod.get("metadata") or {}
        where = f"{pmeta.get('namespace')}/{pmeta.get('name')} on node {node_name}"
        if phase == "Failed":
            key = backoff_key(ds, node_name)
            if backoff.in_backoff_since_update(key, now):
                plan.requeue(backoff.get(key))
                continue
            backoff.next(key, now)
            plan.events.append(("Warning", "FailedDaemonPod", f"Found failed daemon pod {where}, will try to kill it"))
            plan.delete.append(pod)
        elif phase == "Succeeded":
            plan.events.append(("Normal", "SucceededDaemonPod",
                                f"Found succeeded daemon pod {where}, will try to delete it"))
            plan.delete.append(pod)
        else:
            running.append(pod)
    if not allows_surge(ds):
        plan.delete.extend(sort_pods(running)[1:])
        return
    if len(running) <= 1:
        if not running and should_run:
            plan.create.append(node_name)
        return
    oldest_new = oldest_old = None
    for pod in sort_pods(running):
        if ((pod.get("metadata") or {}).get("labels") or {}).get(REVISION_HASH_LABEL) == hash_:
            if oldest_new is None:
                oldest_new = pod
                continue
        elif oldest_old is None:
            oldest_old = pod
            continue
        plan.delete.append(pod)
    if oldest_new is not None and oldest_old is not None:
        min_ready = int((ds.get("spec") or {}).get("minReadySeconds") or 0)
        if not is_pod_ready(oldest_old) or is_pod_available(oldest_new, min_ready, now):
            plan.delete.append(oldest_old)


def manage(ds: Obj, nodes: list[Obj], node_to_pods: dict[str, list[Obj]], hash_: str, now: float,
           backoff: FailedPodBackoff) -> ManagePlan:
    """The pods to create (by node) and delete to bring the DaemonSet's nodes in line."""
    plan = ManagePlan()
    placement = DaemonPlacement(ds)
    names = set()
    for node in nodes:
        name = (node.get("metadata") or {}).get("name") or ""
        names.add(name)
        _on_node(plan, ds, node, placement, node_to_pods.get(name), hash_, now, backoff)
    for name in sorted(node_to_pods):
        if name not in names:  # never bound, and its node is gone: no one else will remove it
            plan.delete.extend(p for p in node_to_pods[name]
                               if not (p.get("spec") or {}).get("nodeName") and not is_pod_terminating(p))
    return plan


# -- status --------------------------------------------------------------------------------


def calculate_status(ds: Obj, nodes: list[Obj], node_to_pods: dict[str, list[Obj]], hash_: str,
                     now: float) -> dict[str, int]:
    """The status counters (upstream updateDaemonSetStatus)."""
    placement = DaemonPlacement(ds)
    min_ready = int((ds.get("spec") or {}).get("minReadySeconds") or 0)
    generation = template_generation(ds)
    counts = dict.fromkeys(STATUS_COUNTERS, 0)
    for node in nodes:
        should_run, _ = placement.should_run(node)
        pods = node_to_pods.get((node.get("metadata") or {}).get("name") or "") or []
        if not should_run:
            if pods:
                counts["numberMisscheduled"] += 1
            continue
        counts["desiredNumberScheduled"] += 1
        if not pods:
            continue
        counts["currentNumberScheduled"] += 1
        pod = sort_pods(pods)[0]
        if is_pod_ready(pod):
            counts["numberReady"] += 1
            if is_pod_available(pod, min_ready, now):
                counts["numberAvailable"] += 1
        if is_pod_updated(pod, hash_, generation):
            counts["updatedNumberScheduled"] += 1
    counts["numberUnavailable"] = counts["desiredNumberScheduled"] - counts["numberAvailable"]
    return counts


def status_needs_update(ds: Obj, counts: dict[str, int]) -> bool:
    status = ds.get("status") or {}
    if any(int(status.get(k) or 0) != v for k, v in counts.items()):
        return True
    generation = int((ds.get("metadata") or {}).get("generation") or 0)
    return int(status.get("observedGeneration") or 0) < generation


def new_status(ds: Obj, counts: dict[str, int], observe_generation: bool,
               collision_count: int | None) -> Obj:
    status = dict(ds.get("status") or {})
    status.update(counts)
    if observe_generation:
        status["observedGeneration"] = int((ds.get("metadata") or {}).get("generation") or 0)
    if collision_count is not None:
        status["collisionCount"] = collision_count
    return status
