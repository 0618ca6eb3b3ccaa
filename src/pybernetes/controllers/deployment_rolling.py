"""What a Deployment sync scales, decided without I/O (upstream's rolling.go, recreate.go and
the scaling half of sync.go).

Every planner returns a list of ``(replica_set, new_size)`` steps, in the order upstream
makes the calls; the controller shell applies them one by one (each an update of the
ReplicaSet, with the desired-/max-replicas annotations) and stops at the first failure.

- RollingUpdate: ``plan_new_replica_set`` (scale the new ReplicaSet up within maxSurge, or
  down to spec.replicas), ``plan_old_replica_sets`` (first old replicas that are not
  available, then available ones while at least ``replicas - maxUnavailable`` stay
  available);
- Recreate: ``plan_recreate_scale_down`` (every old ReplicaSet to 0), ``old_pods_running``
  (wait until their pods are gone), then the new ReplicaSet to spec.replicas;
- scaling (a replicas change, or a paused Deployment): ``plan_scale`` — one active
  ReplicaSet gets everything; a saturated new ReplicaSet makes old ones 0; else every
  active ReplicaSet grows or shrinks in proportion to its size (``proportion``), leftovers
  to the largest; ``is_scaling_event`` tells a replicas change from a template change;
- ``plan_cleanup``: old ReplicaSets beyond revisionHistoryLimit, oldest revision first, only
  those fully scaled down.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from pybernetes.controllers import deployment_util as du
from pybernetes.controllers.podutil import controller_ref

Obj = dict[str, Any]
Step = tuple[Obj, int]


def _with_size(rs: Obj, size: int) -> Obj:
    """A shallow stand-in for ``rs`` scaled to ``size`` (for planning only)."""
    return {**rs, "spec": {**(rs.get("spec") or {}), "replicas": size}}


def _available(rs: Obj) -> int:
    """Available replicas counted for scaling down: never more than spec.replicas (a status
    not yet caught up with a scale-down must not make more pods look available)."""
    return min(du.status_count(rs, "availableReplicas"), du.spec_replicas(rs))


# -- RollingUpdate -------------------------------------------------------------------------------


def new_rs_new_replicas(d: Obj, all_rss: Iterable[Obj | None], new_rs: Obj | None) -> int:
    """How many replicas the new ReplicaSet may have now (upstream NewRSNewReplicas)."""
    replicas = du.spec_replicas(d)
    current = du.spec_replicas(new_rs) if new_rs is not None else 0
    if not du.is_rolling_update(d):
        return replicas
    surge = du.scaled_value((((d.get("spec") or {}).get("strategy") or {}).get("rollingUpdate") or {})
                            .get("maxSurge") or 0, replicas, True)
    pods = du.total_spec_replicas(all_rss)
    max_total = replicas + surge
    if pods >= max_total:
        return current
    return current + min(max_total - pods, replicas - current)


def plan_new_replica_set(d: Obj, all_rss: list[Obj], new_rs: Obj) -> list[Step]:
    replicas = du.spec_replicas(d)
    current = du.spec_replicas(new_rs)
    if current == replicas:
        return []
    if current > replicas:
        return [(new_rs, replicas)]
    target = new_rs_new_replicas(d, all_rss, new_rs)
    return [] if target == current else [(new_rs, target)]


def plan_old_replica_sets(d: Obj, all_rss: list[Obj], old_rss: list[Obj], new_rs: Obj) -> list[Step]:
    """Scale-downs of the old ReplicaSets (upstream reconcileOldReplicaSets)."""
    old_active = du.active(old_rss)
    if du.total_spec_replicas(old_active) == 0:
        return []
    all_pods = du.total_spec_replicas(all_rss)
    min_available = du.spec_replicas(d) - du.max_unavailable(d)
    new_unavailable = du.spec_replicas(new_rs) - du.status_count(new_rs, "availableReplicas")
    max_scaled_down = all_pods - min_available - new_unavailable
    if max_scaled_down <= 0:
        return []
    steps: list[Step] = []
    # Unhealthy replicas first: they would otherwise block the rollout until it times out.
    current = du.by_creation(old_active)
    scaled = 0
    for i, rs in enumerate(current):
        if scaled >= max_scaled_down:
            break
        size = du.spec_replicas(rs)
        unhealthy = size - du.status_count(rs, "availableReplicas")
        if size == 0 or unhealthy <= 0:
            continue
        count = min(max_scaled_down - scaled, unhealthy)
        steps.append((rs, size - count))
        current[i] = _with_size(rs, size - count)
        scaled += count
    # Then available ones, as long as minAvailable stays available.
    everyone = [*current, new_rs]
    available = sum(_available(rs) for rs in everyone)
    if available > min_available:
        to_scale = available - min_available
        done = 0
        for rs in current:
            if done >= to_scale:
                break
            size = du.spec_replicas(rs)
            if size == 0:
                continue
            count = min(size, to_scale - done)
            steps.append((rs, size - count))
            done += count
    return _merge(steps)


def _merge(steps: list[Step]) -> list[Step]:
    """One step per ReplicaSet (its last size), in first-seen order."""
    order: list[str] = []
    last: dict[str, Step] = {}
    for rs, size in steps:
        name = du.meta_of(rs).get("name", "")
        if name not in last:
            order.append(name)
            last[name] = (rs, size)
        else:
            last[name] = (last[name][0], size)
    return [last[n] for n in order]


# -- Recreate ------------------------------------------------------------------------------------


def plan_recreate_scale_down(old_rss: list[Obj]) -> list[Step]:
    return [(rs, 0) for rs in du.active(old_rss)]


def old_pods_running(new_rs: Obj | None, old_rss: list[Obj], pods_by_rs_uid: dict[str, list[Obj]]) -> bool:
    """Whether pods of old ReplicaSets may still run (status replicas, or a pod of theirs
    not Succeeded/Failed — even one being deleted)."""
    if du.total_status(old_rss, "replicas") > 0:
        return True
    new_uid = du.meta_of(new_rs).get("uid") if new_rs is not None else None
    for uid, pods in pods_by_rs_uid.items():
        if new_uid is not None and uid == new_uid:
            continue
        for pod in pods:
            if (pod.get("status") or {}).get("phase") not in ("Succeeded", "Failed"):
                return True
    return False


def pods_by_replica_set(rss: Iterable[Obj], pods: Iterable[Obj]) -> dict[str, list[Obj]]:
    """Pods grouped by the uid of the ReplicaSet (of ``rss``) that controls them."""
    uids = {du.meta_of(rs).get("uid") for rs in rss}
    out: dict[str, list[Obj]] = {uid: [] for uid in uids if uid}
    for pod in pods:
        ref = controller_ref(pod)
        if ref is not None and ref.get("uid") in out:
            out[ref["uid"]].append(pod)
    return out


# -- scaling -------------------------------------------------------------------------------------


def active_or_latest(new_rs: Obj | None, old_rss: list[Obj]) -> Obj | None:
    """The only active ReplicaSet; with none active, the newest (the new one if any); with
    several active, None."""
    everyone = [rs for rs in [new_rs, *old_rss] if rs is not None]
    if not everyone:
        return None
    act = du.active(everyone)
    if len(act) == 1:
        return act[0]
    if not act:
        if new_rs is not None:
            return new_rs
        return du.by_creation(everyone)[-1]
    return None


def is_saturated(d: Obj, rs: Obj | None) -> bool:
    """The ReplicaSet has all of the Deployment's replicas and all are available."""
    if rs is None:
        return False
    desired = du.desired_replicas_annotation(rs)
    replicas = du.spec_replicas(d)
    return (desired == replicas and du.spec_replicas(rs) == replicas
            and du.status_count(rs, "availableReplicas") == replicas)


def is_scaling_event(d: Obj, new_rs: Obj | None, old_rss: list[Obj]) -> bool:
    """Whether an active ReplicaSet was sized for another spec.replicas."""
    replicas = du.spec_replicas(d)
    for rs in du.active([new_rs, *old_rss]):
        desired = du.desired_replicas_annotation(rs)
        if desired is not None and desired != replicas:
            return True
    return False


def proportion(rs: Obj, d: Obj, to_add: int, added: int) -> int:
    """How many replicas ``rs`` gets (or loses) of the ``to_add`` being spread, ``added``
    of them already given (upstream GetProportion)."""
    size = du.spec_replicas(rs)
    if size == 0 or to_add == 0 or to_add == added:
        return 0
    allowed = to_add - added
    if du.spec_replicas(d) == 0:
        fraction = -size
    else:
        max_now = du.spec_replicas(d) + du.max_surge(d)
        max_before = du.max_replicas_annotation(rs)
        if not max_before:
            max_before = du.status_count(d, "replicas")
        fraction = _round_half_away(size * max_now / max_before) - size if max_before else 0
    return min(fraction, allowed) if to_add > 0 else max(fraction, allowed)


def _round_half_away(x: float) -> int:
    return int(x + 0.5) if x >= 0 else -int(-x + 0.5)


def plan_scale(d: Obj, new_rs: Obj | None, old_rss: list[Obj]) -> list[Step]:
    """Sizes after a change of spec.replicas (upstream's scale)."""
    replicas = du.spec_replicas(d)
    only = active_or_latest(new_rs, old_rss)
    if only is not None:
        return [] if du.spec_replicas(only) == replicas else [(only, replicas)]
    if is_saturated(d, new_rs):
        return [(rs, 0) for rs in du.active(old_rss)]
    if not du.is_rolling_update(d):
        return []
    everyone = du.active([*old_rss, new_rs])
    allowed = replicas + du.max_surge(d) if replicas > 0 else 0
    to_add = allowed - du.total_spec_replicas(everyone)
    if to_add > 0:
        everyone = du.by_size_newer(everyone)
    elif to_add < 0:
        everyone = du.by_size_older(everyone)
    sizes: list[int] = []
    added = 0
    for rs in everyone:
        if to_add != 0:
            part = proportion(rs, d, to_add, added)
            sizes.append(du.spec_replicas(rs) + part)
            added += part
        else:
            sizes.append(du.spec_replicas(rs))
    if everyone and to_add != 0:
        sizes[0] = max(0, sizes[0] + to_add - added)
    return [(rs, size) for rs, size in zip(everyone, sizes, strict=True)]


# -- history -------------------------------------------------------------------------------------


def plan_cleanup(d: Obj, old_rss: list[Obj]) -> list[Obj]:
    """Old ReplicaSets to delete beyond spec.revisionHistoryLimit: oldest revisions first,
    only those with no replicas, an up-to-date status and not already being deleted."""
    limit = du.revision_history_limit(d)
    if limit is None:
        return []
    alive = [rs for rs in old_rss if not du.meta_of(rs).get("deletionTimestamp")]
    extra = len(alive) - limit
    if extra <= 0:
        return []
    doomed = []
    for rs in du.by_revision(alive)[:extra]:
        meta = du.meta_of(rs)
        if du.status_count(rs, "replicas") != 0 or du.spec_replicas(rs) != 0:
            continue
        if _gen(meta.get("generation")) > du.status_count(rs, "observedGeneration"):
            continue
        doomed.append(rs)
    return doomed


def _gen(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0
