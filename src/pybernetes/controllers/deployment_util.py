"""Pure helpers of the Deployment controller (upstream's pkg/controller/deployment/util).

Owns, without I/O, on wire-shaped dicts that are never changed unless a function says so:

- the names the Deployment API speaks: the pod-template-hash label, the revision, revision
  history, desired-replicas and max-replicas annotations, the condition types and reasons;
- maxSurge / maxUnavailable resolution (``scaled_value``: counts or percents, surge rounds
  up, unavailable rounds down; ``resolve_fenceposts``: both 0 becomes unavailable 1);
- replica counts over ReplicaSets, the active filter and upstream's orderings;
- which ReplicaSet is the new one (``find_new_replica_set``: template equal ignoring the
  hash label, the oldest wins) and the old ones; the new ReplicaSet a rollout creates
  (``new_replica_set``);
- revision annotations (``set_new_replica_set_annotations``, ``set_replicas_annotations``);
- Deployment conditions with upstream's update rule (``set_deployment_condition``).
"""

from __future__ import annotations

import copy
import functools
from collections.abc import Iterable
from typing import Any

from pybernetes.controllers.history import compute_hash
from pybernetes.controllers.podutil import format_time, new_controller_ref, parse_time, scaled_value

Obj = dict[str, Any]

HASH_LABEL = "pod-template-hash"
REVISION = "deployment.kubernetes.io/revision"
REVISION_HISTORY = "deployment.kubernetes.io/revision-history"
DESIRED_REPLICAS = "deployment.kubernetes.io/desired-replicas"
MAX_REPLICAS = "deployment.kubernetes.io/max-replicas"
LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"
DEPRECATED_ROLLBACK_TO = "deprecated.deployment.rollback.to"
# Annotations of the Deployment never copied onto its ReplicaSets.
SKIPPED_ANNOTATIONS = frozenset({LAST_APPLIED, REVISION, REVISION_HISTORY, DESIRED_REPLICAS,
                                 MAX_REPLICAS, DEPRECATED_ROLLBACK_TO})
MAX_REVISION_HISTORY_CHARS = 2000
MAX_INT32 = 2 ** 31 - 1

# Condition types and reasons.
AVAILABLE = "Available"
PROGRESSING = "Progressing"
REPLICA_FAILURE = "ReplicaFailure"
MIN_AVAILABLE = "MinimumReplicasAvailable"
MIN_UNAVAILABLE = "MinimumReplicasUnavailable"
REPLICA_SET_UPDATED = "ReplicaSetUpdated"
FAILED_RS_CREATE = "ReplicaSetCreateError"
NEW_RS_CREATED = "NewReplicaSetCreated"
FOUND_NEW_RS = "FoundNewReplicaSet"
NEW_RS_AVAILABLE = "NewReplicaSetAvailable"
TIMED_OUT = "ProgressDeadlineExceeded"
PAUSED = "DeploymentPaused"
RESUMED = "DeploymentResumed"

APPS_V1 = "apps/v1"
DEPLOYMENT_KIND = {"apiVersion": APPS_V1, "kind": "Deployment"}


# -- field access --------------------------------------------------------------------------------


def int_of(value: Any, default: int = 0) -> int:
    if isinstance(value, bool):
        return default
    if isinstance(value, int):
        return value
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


def spec_replicas(obj: Obj | None) -> int:
    """spec.replicas (1 when unset, the API's default)."""
    if obj is None:
        return 0
    value = (obj.get("spec") or {}).get("replicas")
    return 1 if value is None else int_of(value)


def status_count(obj: Obj | None, field: str) -> int:
    if obj is None:
        return 0
    return int_of((obj.get("status") or {}).get(field))


def meta_of(obj: Obj) -> Obj:
    return obj.get("metadata") or {}


def annotations(obj: Obj) -> dict[str, str]:
    return meta_of(obj).get("annotations") or {}


def is_rolling_update(d: Obj) -> bool:
    return ((d.get("spec") or {}).get("strategy") or {}).get("type", "RollingUpdate") == "RollingUpdate"


def is_recreate(d: Obj) -> bool:
    return ((d.get("spec") or {}).get("strategy") or {}).get("type") == "Recreate"


def progress_deadline(d: Obj) -> int | None:
    """spec.progressDeadlineSeconds, None when there is none (unset or MaxInt32)."""
    value = (d.get("spec") or {}).get("progressDeadlineSeconds")
    if value is None or int_of(value, MAX_INT32) == MAX_INT32:
        return None
    return int_of(value)


def has_progress_deadline(d: Obj) -> bool:
    return progress_deadline(d) is not None


def revision_history_limit(d: Obj) -> int | None:
    value = (d.get("spec") or {}).get("revisionHistoryLimit")
    return None if value is None else int_of(value)


def min_ready_seconds(obj: Obj) -> int:
    return int_of((obj.get("spec") or {}).get("minReadySeconds"))


# -- maxSurge / maxUnavailable -------------------------------------------------------------------


def resolve_fenceposts(max_surge: Any, max_unavailable: Any, desired: int) -> tuple[int, int]:
    """(surge, unavailable) as absolute counts; when both resolve to 0, unavailable is 1
    (rounding down may make a percent 0; the user must be able to make progress)."""
    surge = scaled_value(0 if max_surge is None else max_surge, desired, True)
    unavailable = scaled_value(0 if max_unavailable is None else max_unavailable, desired, False)
    if surge == 0 and unavailable == 0:
        unavailable = 1
    return surge, unavailable


def _rolling_params(d: Obj) -> tuple[Any, Any]:
    rolling = ((d.get("spec") or {}).get("strategy") or {}).get("rollingUpdate") or {}
    return rolling.get("maxSurge"), rolling.get("maxUnavailable")


def max_surge(d: Obj) -> int:
    if not is_rolling_update(d):
        return 0
    surge, unavailable = _rolling_params(d)
    return resolve_fenceposts(surge, unavailable, spec_replicas(d))[0]


def max_unavailable(d: Obj) -> int:
    replicas = spec_replicas(d)
    if not is_rolling_update(d) or replicas == 0:
        return 0
    surge, unavailable = _rolling_params(d)
    return min(resolve_fenceposts(surge, unavailable, replicas)[1], replicas)


# -- counting and ordering ReplicaSets -----------------------------------------------------------


def total_spec_replicas(rss: Iterable[Obj | None]) -> int:
    return sum(spec_replicas(rs) for rs in rss if rs is not None)


def total_status(rss: Iterable[Obj | None], field: str) -> int:
    return sum(status_count(rs, field) for rs in rss if rs is not None)


def active(rss: Iterable[Obj | None]) -> list[Obj]:
    """ReplicaSets with spec.replicas > 0."""
    return [rs for rs in rss if rs is not None and spec_replicas(rs) > 0]


def revision_of(obj: Obj) -> int:
    """The revision annotation as a number (0 when missing or not a number)."""
    return int_of(annotations(obj).get(REVISION))


def max_revision(rss: Iterable[Obj]) -> int:
    return max((revision_of(rs) for rs in rss), default=0)


def _created(obj: Obj) -> float:
    return parse_time(meta_of(obj).get("creationTimestamp")) or 0.0


def by_creation(rss: Iterable[Obj]) -> list[Obj]:
    """Oldest first, ties by name (upstream ReplicaSetsByCreationTimestamp)."""
    return sorted(rss, key=lambda rs: (_created(rs), meta_of(rs).get("name", "")))


def by_revision(rss: Iterable[Obj]) -> list[Obj]:
    """Lowest revision first, ties by creation (upstream ReplicaSetsByRevision)."""
    return sorted(rss, key=lambda rs: (revision_of(rs), _created(rs), meta_of(rs).get("name", "")))


def _creation_less(a: Obj, b: Obj) -> bool:
    ta, tb = _created(a), _created(b)
    if ta == tb:
        return meta_of(a).get("name", "") < meta_of(b).get("name", "")
    return ta < tb


def by_size_newer(rss: Iterable[Obj]) -> list[Obj]:
    """Largest first; among equal sizes the newer first (scaling up)."""
    def cmp(a: Obj, b: Obj) -> int:
        ra, rb = spec_replicas(a), spec_replicas(b)
        if ra != rb:
            return -1 if ra > rb else 1
        return -1 if _creation_less(b, a) else (1 if _creation_less(a, b) else 0)
    return sorted(rss, key=functools.cmp_to_key(cmp))


def by_size_older(rss: Iterable[Obj]) -> list[Obj]:
    """Largest first; among equal sizes the older first (scaling down)."""
    def cmp(a: Obj, b: Obj) -> int:
        ra, rb = spec_replicas(a), spec_replicas(b)
        if ra != rb:
            return -1 if ra > rb else 1
        return -1 if _creation_less(a, b) else (1 if _creation_less(b, a) else 0)
    return sorted(rss, key=functools.cmp_to_key(cmp))


# -- new and old ReplicaSets ---------------------------------------------------------------------


def _without_nulls(value: Any) -> Any:
    """``value`` with every null map entry dropped (in the wire form a null field and a
    missing one are the same: e.g. ``creationTimestamp: null`` in a template that
    ``kubectl rollout undo`` patches back)."""
    if isinstance(value, dict):
        return {k: _without_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_without_nulls(v) for v in value]
    return value


def _template_without_hash(template: Obj | None) -> Obj:
    t = _without_nulls(template or {})
    labels = (t.get("metadata") or {}).get("labels")
    if isinstance(labels, dict):
        labels.pop(HASH_LABEL, None)
        if not labels:
            t["metadata"].pop("labels")
    if "metadata" in t and not t["metadata"]:
        del t["metadata"]
    return t


def equal_ignore_hash(a: Obj | None, b: Obj | None) -> bool:
    """Two pod templates equal but for the pod-template-hash label."""
    return _template_without_hash(a) == _template_without_hash(b)


def find_new_replica_set(d: Obj, rss: Iterable[Obj]) -> Obj | None:
    """The (oldest) ReplicaSet whose template is the Deployment's."""
    template = (d.get("spec") or {}).get("template")
    for rs in by_creation(rss):
        if equal_ignore_hash((rs.get("spec") or {}).get("template"), template):
            return rs
    return None


def old_replica_sets(new_rs: Obj | None, rss: Iterable[Obj]) -> list[Obj]:
    """Every ReplicaSet but the new one."""
    if new_rs is None:
        return list(rss)
    name = meta_of(new_rs).get("name")
    return [rs for rs in rss if meta_of(rs).get("name") != name]


def pod_template_hash(d: Obj) -> str:
    return compute_hash((d.get("spec") or {}).get("template") or {},
                        (d.get("status") or {}).get("collisionCount"))


def new_replica_set(d: Obj, replicas: int, revision: int) -> Obj:
    """The ReplicaSet a rollout of ``d``'s template creates: ``<name>-<hash>``, the hash
    label on its selector, template and labels, owned by ``d``, with its annotations."""
    dmeta = meta_of(d)
    spec = d.get("spec") or {}
    hash_ = pod_template_hash(d)
    template = copy.deepcopy(spec.get("template") or {})
    tmeta = template.setdefault("metadata", {})
    labels = dict(tmeta.get("labels") or {})
    labels[HASH_LABEL] = hash_
    tmeta["labels"] = labels
    selector = copy.deepcopy(spec.get("selector") or {})
    selector["matchLabels"] = {**(selector.get("matchLabels") or {}), HASH_LABEL: hash_}
    rs: Obj = {
        "apiVersion": APPS_V1, "kind": "ReplicaSet",
        "metadata": {
            "name": f"{dmeta.get('name', '')}-{hash_}",
            "namespace": dmeta.get("namespace"),
            "labels": dict(labels),
            "ownerReferences": [new_controller_ref(d, APPS_V1, "Deployment")],
        },
        "spec": {"replicas": replicas, "minReadySeconds": min_ready_seconds(d),
                 "selector": selector, "template": template},
    }
    set_new_replica_set_annotations(d, rs, revision, exists=False)
    return rs


# -- annotations ---------------------------------------------------------------------------------


def _annotations_for_write(obj: Obj) -> dict[str, str]:
    meta = obj.setdefault("metadata", {})
    if not isinstance(meta.get("annotations"), dict):
        meta["annotations"] = {}
    return meta["annotations"]


def copy_deployment_annotations(d: Obj, rs: Obj) -> bool:
    """Copy ``d``'s annotations (but revisions, replicas and last-applied) onto ``rs``
    (changed in place); whether anything changed."""
    target = _annotations_for_write(rs)
    changed = False
    for key, value in annotations(d).items():
        if key in SKIPPED_ANNOTATIONS or target.get(key) == value:
            continue
        target[key] = value
        changed = True
    return changed


def set_replicas_annotations(rs: Obj, desired: int, max_replicas: int) -> bool:
    """Write desired-replicas and max-replicas on ``rs`` (in place); whether they changed."""
    target = _annotations_for_write(rs)
    changed = False
    for key, value in ((DESIRED_REPLICAS, str(desired)), (MAX_REPLICAS, str(max_replicas))):
        if target.get(key) != value:
            target[key] = value
            changed = True
    return changed


def replicas_annotations_need_update(rs: Obj, desired: int, max_replicas: int) -> bool:
    ann = annotations(rs)
    return ann.get(DESIRED_REPLICAS) != str(desired) or ann.get(MAX_REPLICAS) != str(max_replicas)


def desired_replicas_annotation(rs: Obj) -> int | None:
    value = annotations(rs).get(DESIRED_REPLICAS)
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def max_replicas_annotation(rs: Obj) -> int | None:
    value = annotations(rs).get(MAX_REPLICAS)
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def set_new_replica_set_annotations(d: Obj, rs: Obj, new_revision: int, exists: bool,
                                    history_limit_chars: int = MAX_REVISION_HISTORY_CHARS) -> bool:
    """The new ReplicaSet's annotations (in place): the Deployment's copied, its revision
    raised to ``new_revision`` (a ReplicaSet rolled back to keeps its earlier revisions in
    revision-history, within ``history_limit_chars``), and for a ReplicaSet about to be
    created the replicas annotations.  Whether anything changed."""
    changed = copy_deployment_annotations(d, rs)
    target = _annotations_for_write(rs)
    old_text = target.get(REVISION)
    had_revision = old_text is not None
    if old_text is None or old_text == "":
        old_rev = 0
    else:
        try:
            old_rev = int(old_text)
        except ValueError:
            return False
    if old_rev < new_revision:
        target[REVISION] = str(new_revision)
        changed = True
        if had_revision and old_text:
            history = target.get(REVISION_HISTORY) or ""
            if not history:
                target[REVISION_HISTORY] = old_text
            else:
                revisions = history.split(",")
                total = len(history) + len(old_text) + 1
                start = 0
                while total > history_limit_chars and start < len(revisions):
                    total -= len(revisions[start]) + 1
                    start += 1
                if total <= history_limit_chars:
                    target[REVISION_HISTORY] = ",".join([*revisions[start:], old_text])
    if not exists and set_replicas_annotations(rs, spec_replicas(d), spec_replicas(d) + max_surge(d)):
        changed = True
    return changed


def set_deployment_revision(d: Obj, revision: str) -> bool:
    """The Deployment's own revision annotation (in place); whether it changed."""
    target = _annotations_for_write(d)
    if target.get(REVISION) == revision:
        return False
    target[REVISION] = revision
    return True


# -- conditions ----------------------------------------------------------------------------------


def get_condition(status: Obj | None, type_: str) -> Obj | None:
    for cond in (status or {}).get("conditions") or ():
        if isinstance(cond, dict) and cond.get("type") == type_:
            return cond
    return None


def new_condition(type_: str, status: str, reason: str, message: str, now: float) -> Obj:
    stamp = format_time(now)
    return {"type": type_, "status": status, "lastUpdateTime": stamp, "lastTransitionTime": stamp,
            "reason": reason, "message": message}


def set_deployment_condition(status: Obj, cond: Obj) -> None:
    """Upstream's SetDeploymentCondition on ``status`` (in place): nothing when a condition
    of that type has the same status and reason; else it replaces it (at the end), keeping
    the lastTransitionTime when the status did not change."""
    current = get_condition(status, cond["type"])
    if current is not None and current.get("status") == cond.get("status") \
            and current.get("reason") == cond.get("reason"):
        return
    cond = dict(cond)
    if current is not None and current.get("status") == cond.get("status"):
        cond["lastTransitionTime"] = current.get("lastTransitionTime")
    status["conditions"] = [*remove_condition(status, cond["type"]), cond]


def remove_condition(status: Obj, type_: str) -> list[Obj]:
    """The conditions but ``type_`` (also written back into ``status``)."""
    kept = [c for c in status.get("conditions") or () if not (isinstance(c, dict) and c.get("type") == type_)]
    if "conditions" in status or kept:
        status["conditions"] = kept
    return kept


def condition_time(cond: Obj | None, field: str) -> float | None:
    return parse_time(cond.get(field)) if cond else None
