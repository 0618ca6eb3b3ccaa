"""What one StatefulSet sync does, computed without I/O (upstream v1.32
defaultStatefulSetControl.updateStatefulSet, processReplica, processCondemned and the rolling
update that follows).

``plan_sync`` splits the set's pods into *replicas* (ordinals in ``[start, start+replicas)``,
a missing one stands in as a new pod at the right revision) and *condemned* pods (other
ordinals, highest first) and returns a ``Plan``: phases of units, each unit a list of
actions done in order.

1. replicas, by ordinal: a Failed/Succeeded pod is deleted and made anew; a missing pod is
   created (its claims first) unless a claim of an earlier pod of that name still exists;
   a Pending pod gets its missing claims; a pod whose identity, volumes or claim owners are
   off is fixed.  Under OrderedReady (monotonic) the plan stops at the first pod created, or
   at the first that is terminating, not Running and Ready, or not yet available
   (minReadySeconds); under Parallel every replica is handled (in slow-start batches).
2. condemned pods' claims get the owners the retention policy asks for on scale-down;
3. condemned pods are deleted: under OrderedReady only the highest, and only when it is
   healthy or the first unhealthy pod of the set, and nothing else is then done this sync;
   under Parallel all of them;
4. RollingUpdate: the highest replica at or above the partition not at the update revision
   is deleted (it comes back at the update revision next sync), waiting while an updated
   one is unhealthy; with ``rollingUpdate.maxUnavailable`` up to that many replicas may be
   unavailable at once.  OnDelete does nothing here.

The ``status`` of the plan holds the counters of the pods as they were seen (upstream
updateStatus), minus the pods deleted for the update from ``currentReplicas``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pybernetes.controllers import statefulset_core as core
from pybernetes.controllers.podutil import is_pod_terminating
from pybernetes.controllers.statefulset_pvc import claim_update, claims_for, is_stale

Obj = dict[str, Any]

CREATE = "create"            # create the pod's missing claims, then the pod
DELETE = "delete"            # delete the pod
UPDATE_POD = "update-pod"    # fix the pod's identity/volumes (and its claims' owners)
UPDATE_CLAIMS = "update-claims"  # write claims with new ownerReferences
CREATE_CLAIMS = "create-claims"  # create a pending pod's missing claims


@dataclass
class Action:
    kind: str
    pod: Obj
    reason: str = ""  # DELETE: failed | succeeded | condemned | update
    claims: list[Obj] = field(default_factory=list)  # claims to create, or updated claims to write

    @property
    def pod_name(self) -> str:
        return (self.pod.get("metadata") or {}).get("name") or ""


@dataclass
class Phase:
    name: str
    units: list[list[Action]] = field(default_factory=list)

    def add(self, unit: list[Action]) -> None:
        if unit:
            self.units.append(unit)


@dataclass
class Plan:
    monotonic: bool
    phases: list[Phase]
    status: Obj
    blocked: str = ""  # why an OrderedReady sync stopped early ("" when it did not)

    def actions(self) -> list[Action]:
        return [a for ph in self.phases for unit in ph.units for a in unit]


def max_unavailable(sts: Obj) -> int | None:
    """rollingUpdate.maxUnavailable as a count (percent of replicas rounded down, at least 1);
    None when not set."""
    _, rolling = core.update_strategy(sts)
    value = (rolling or {}).get("maxUnavailable")
    if value is None:
        return None
    if isinstance(value, str):
        text = value.strip()
        if text.endswith("%"):
            count = int(text[:-1]) * core.replicas_of(sts) // 100
        else:
            count = int(text)
    else:
        count = int(value)
    return max(count, 1)


def missing_claims(sts: Obj, ordinal: int, claims: dict[str, Obj]) -> list[Obj]:
    return [c for c in claims_for(sts, ordinal).values() if c["metadata"]["name"] not in claims]


def claim_updates(sts: Obj, pod: Obj, claims: dict[str, Obj], in_range: bool) -> list[Obj]:
    """The pod's existing claims whose owners the retention policy wants changed, fixed."""
    out = []
    for wanted in claims_for(sts, core.ordinal_of(pod)).values():
        existing = claims.get(wanted["metadata"]["name"])
        if existing is not None:
            updated = claim_update(existing, sts, pod, in_range)
            if updated is not None:
                out.append(updated)
    return out


def split_pods(sts: Obj, pods: list[Obj]) -> tuple[dict[int, Obj], list[Obj]]:
    """(ordinal -> pod within the range, condemned pods highest ordinal first)."""
    replicas: dict[int, Obj] = {}
    condemned: list[Obj] = []
    for pod in pods:
        ordinal = core.ordinal_of(pod)
        if ordinal < 0:
            continue
        if core.in_ordinal_range(pod, sts):
            replicas[ordinal] = pod
        else:
            condemned.append(pod)
    condemned.sort(key=core.ordinal_of, reverse=True)
    return replicas, condemned


def plan_sync(sts: Obj, pods: list[Obj], claims: dict[str, Obj], current_rev: Obj, update_rev: Obj,
              now: float) -> Plan:
    """The plan of one sync (see the module doc).  ``claims``: the namespace's claims by name."""
    current_name = (current_rev.get("metadata") or {}).get("name") or ""
    update_name = (update_rev.get("metadata") or {}).get("name") or ""
    current_set = core.apply_revision(sts, current_rev)
    update_set = core.apply_revision(sts, update_rev)
    min_ready = core.min_ready_seconds(sts)
    monotonic = (sts.get("spec") or {}).get("podManagementPolicy") != "Parallel"
    start = core.start_ordinal(sts)

    by_ordinal, condemned = split_pods(sts, pods)
    replicas: list[Obj] = [by_ordinal.get(o) or core.versioned_pod(current_set, update_set, current_name,
                                                                   update_name, o)
                           for o in range(start, core.end_ordinal(sts) + 1)]
    first_unhealthy = next((p for p in replicas if not core.is_healthy(p)), None)
    if first_unhealthy is None:
        first_unhealthy = next((p for p in reversed(condemned) if not core.is_healthy(p)), None)

    def status() -> Obj:
        counts = core.replica_status(replicas + condemned, min_ready, now, current_name, update_name)
        return counts

    plan = Plan(monotonic=monotonic, phases=[], status={})
    if (sts.get("metadata") or {}).get("deletionTimestamp"):
        plan.status = core.replica_status(pods, min_ready, now, current_name, update_name)
        return plan

    # 1. replicas
    phase = Phase("replicas")
    plan.phases.append(phase)
    for i, ordinal in enumerate(range(start, core.end_ordinal(sts) + 1)):
        unit: list[Action] = []
        pod = replicas[i]
        if core.phase(pod) in ("Failed", "Succeeded"):
            unit.append(Action(DELETE, pod, "failed" if core.phase(pod) == "Failed" else "succeeded"))
            pod = replicas[i] = core.versioned_pod(current_set, update_set, current_name, update_name, ordinal)
        if not core.is_created(pod):
            if any(is_stale(claims.get(c["metadata"]["name"]), sts, pod) for c in claims_for(sts, ordinal).values()):
                phase.add(unit)
                if monotonic:
                    plan.blocked = f"claims of {core.pod_name(sts, ordinal)} still belong to an earlier pod"
                    break
                continue
            unit.append(Action(CREATE, pod, claims=missing_claims(sts, ordinal, claims)))
            phase.add(unit)
            if monotonic:
                plan.blocked = f"creating {core.pod_name(sts, ordinal)}"
                break
            continue
        if core.phase(pod) == "Pending":
            absent = missing_claims(sts, ordinal, claims)
            if absent:
                unit.append(Action(CREATE_CLAIMS, pod, claims=absent))
        name = core.pod_name(sts, ordinal)
        if monotonic and is_pod_terminating(pod):
            plan.blocked = f"{name} is terminating"
        elif monotonic and not core.is_running_and_ready(pod):
            plan.blocked = f"{name} is not Running and Ready"
        elif monotonic and not core.is_running_and_available(pod, min_ready, now):
            plan.blocked = f"{name} is not available yet"
        if plan.blocked:
            phase.add(unit)
            break
        fixes = claim_updates(update_set, pod, claims, True)
        if not (core.identity_matches(sts, pod) and core.storage_matches(sts, pod)) or fixes:
            unit.append(Action(UPDATE_POD, pod, claims=fixes))
        phase.add(unit)
    if plan.blocked:
        plan.status = status()
        return plan

    # 2. condemned pods' claims
    phase = Phase("condemned-claims")
    plan.phases.append(phase)
    for pod in condemned:
        fixes = claim_updates(update_set, pod, claims, False)
        if fixes:
            phase.add([Action(UPDATE_CLAIMS, pod, claims=fixes)])

    # 3. condemned pods
    phase = Phase("condemned")
    plan.phases.append(phase)
    for pod in condemned:
        name = (pod.get("metadata") or {}).get("name")
        if is_pod_terminating(pod):
            if monotonic:
                plan.blocked = f"waiting for {name} to terminate"
                break
            continue
        healthy = core.is_running_and_ready(pod) and core.is_running_and_available(pod, min_ready, now)
        if monotonic and pod is not first_unhealthy and not healthy:
            plan.blocked = f"{name} is not healthy and not the first unhealthy pod"
            break
        phase.add([Action(DELETE, pod, "condemned")])
        if monotonic:
            plan.blocked = f"scaling down {name}"
            break
    plan.status = status()
    if plan.blocked:
        return plan

    # 4. the rolling update
    kind, rolling = core.update_strategy(sts)
    if kind == "OnDelete":
        return plan
    phase = Phase("update")
    plan.phases.append(phase)
    partition = int((rolling or {}).get("partition") or 0)
    limit = max_unavailable(sts)
    if limit is None:
        for target in range(len(replicas) - 1, partition - 1, -1):
            pod = replicas[target]
            if core.pod_revision(pod) != update_name and not is_pod_terminating(pod):
                phase.add([Action(DELETE, pod, "update")])
                plan.status["currentReplicas"] -= 1
                break
            if not core.is_healthy(pod):
                plan.blocked = f"waiting for {(pod.get('metadata') or {}).get('name')} to be healthy"
                break
        return plan
    unavailable = sum(1 for p in replicas if not core.is_healthy(p))
    budget = limit - unavailable
    if budget <= 0:
        plan.blocked = f"{unavailable} replicas unavailable (maxUnavailable {limit})"
        return plan
    for target in range(len(replicas) - 1, partition - 1, -1):
        if budget <= 0:
            break
        pod = replicas[target]
        if core.pod_revision(pod) != update_name and not is_pod_terminating(pod):
            phase.add([Action(DELETE, pod, "update")])
            plan.status["currentReplicas"] -= 1
            budget -= 1
    return plan
