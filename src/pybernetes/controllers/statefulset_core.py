"""A StatefulSet's pods and revisions, the pure part (upstream pkg/controller/statefulset
stateful_set_utils.go, v1.32).

- Identity: pod ``<set>-<ordinal>`` for ordinals ``spec.ordinals.start`` (default 0) to
  ``start + replicas - 1``; labels ``statefulset.kubernetes.io/pod-name``,
  ``apps.kubernetes.io/pod-index`` and ``controller-revision-hash``; ``spec.hostname`` is the
  pod name and ``spec.subdomain`` the set's ``serviceName``; one volume per
  volumeClaimTemplate, pointing at the claim ``<template>-<set>-<ordinal>``.
- Revisions: a ControllerRevision's ``data`` is the strategic patch restoring the pod
  template, ``{"spec": {"template": {..., "$patch": "replace"}}}``; ``apply_revision`` gives
  the set as it was at a revision; ``versioned_pod`` builds a pod at the current revision
  (ordinals below the partition) or the update revision.
- Pod states as the controller judges them (created, running and ready, available, healthy)
  and the status counters (``replica_status``, ``complete_rolling_update``,
  ``status_differs``).
"""

from __future__ import annotations

import re
from typing import Any

import orjson

from pybernetes.controllers.history import REVISION_HASH_LABEL
from pybernetes.controllers.podutil import (
    is_pod_available,
    is_pod_ready,
    is_pod_terminating,
    new_controller_ref,
    pod_from_template,
)
from pybernetes.controllers.statefulset_pvc import SET_KIND, claims_for
from pybernetes.machinery.meta import clone

Obj = dict[str, Any]

POD_NAME_LABEL = "statefulset.kubernetes.io/pod-name"
POD_INDEX_LABEL = "apps.kubernetes.io/pod-index"
DEFAULT_HISTORY_LIMIT = 10
_POD_NAME = re.compile(r"^(.*)-([0-9]+)$")
_MAX_ORDINAL = 2**31 - 1


# -- ordinals and identity ----------------------------------------------------------------------


def parent_and_ordinal(pod: Obj) -> tuple[str, int]:
    """(the set a pod's name says it belongs to, its ordinal); ("", -1) for other names."""
    match = _POD_NAME.match((pod.get("metadata") or {}).get("name") or "")
    if match is None:
        return "", -1
    ordinal = int(match.group(2))
    return match.group(1), ordinal if ordinal <= _MAX_ORDINAL else -1


def ordinal_of(pod: Obj) -> int:
    return parent_and_ordinal(pod)[1]


def replicas_of(sts: Obj) -> int:
    value = (sts.get("spec") or {}).get("replicas")
    return 1 if value is None else int(value)


def start_ordinal(sts: Obj) -> int:
    ordinals = (sts.get("spec") or {}).get("ordinals")
    return int((ordinals or {}).get("start") or 0) if isinstance(ordinals, dict) else 0


def end_ordinal(sts: Obj) -> int:
    """The last ordinal (inclusive); below the start when replicas is 0."""
    return start_ordinal(sts) + replicas_of(sts) - 1


def in_ordinal_range(pod: Obj, sts: Obj) -> bool:
    ordinal = ordinal_of(pod)
    return ordinal >= 0 and start_ordinal(sts) <= ordinal <= end_ordinal(sts)


def pod_name(sts: Obj, ordinal: int) -> str:
    return f"{(sts.get('metadata') or {}).get('name')}-{ordinal}"


def is_member(sts: Obj, pod: Obj) -> bool:
    """Whether the pod's name makes it one of the set's (``<set>-<digits>``)."""
    return parent_and_ordinal(pod)[0] == (sts.get("metadata") or {}).get("name")


def identity_matches(sts: Obj, pod: Obj) -> bool:
    parent, ordinal = parent_and_ordinal(pod)
    meta = pod.get("metadata") or {}
    smeta = sts.get("metadata") or {}
    return (ordinal >= 0 and parent == smeta.get("name") and meta.get("name") == pod_name(sts, ordinal)
            and meta.get("namespace") == smeta.get("namespace")
            and (meta.get("labels") or {}).get(POD_NAME_LABEL) == meta.get("name"))


def storage_matches(sts: Obj, pod: Obj) -> bool:
    """Whether the pod mounts every claim of the set's templates under the template's name."""
    ordinal = ordinal_of(pod)
    if ordinal < 0:
        return False
    volumes = {v.get("name"): v for v in (pod.get("spec") or {}).get("volumes") or [] if isinstance(v, dict)}
    for tname, claim in claims_for(sts, ordinal).items():
        source = (volumes.get(tname) or {}).get("persistentVolumeClaim")
        if not isinstance(source, dict) or source.get("claimName") != claim["metadata"]["name"]:
            return False
    return True


def update_identity(sts: Obj, pod: Obj) -> None:
    """Set the pod's name, namespace, pod-name and pod-index labels (in place)."""
    ordinal = ordinal_of(pod)
    meta = pod.setdefault("metadata", {})
    meta["name"] = pod_name(sts, ordinal)
    meta["namespace"] = (sts.get("metadata") or {}).get("namespace")
    labels = meta.get("labels")
    if not isinstance(labels, dict):
        labels = meta["labels"] = {}
    labels[POD_NAME_LABEL] = meta["name"]
    labels[POD_INDEX_LABEL] = str(ordinal)


def update_storage(sts: Obj, pod: Obj) -> None:
    """Point the pod's volumes at the set's claims (in place): a claim volume per template
    first, then the pod's other volumes (one named like a template is replaced)."""
    spec = pod.setdefault("spec", {})
    claims = claims_for(sts, ordinal_of(pod))
    volumes = [{"name": tname, "persistentVolumeClaim": {"claimName": claim["metadata"]["name"]}}
               for tname, claim in claims.items()]
    volumes.extend(v for v in spec.get("volumes") or [] if isinstance(v, dict) and v.get("name") not in claims)
    if volumes:
        spec["volumes"] = volumes


def new_pod(sts: Obj, ordinal: int) -> Obj:
    """A pod of the set for ``ordinal`` (no revision label yet; no status: not created)."""
    meta = sts.get("metadata") or {}
    template = (sts.get("spec") or {}).get("template") or {}
    pod = pod_from_template(template, namespace=meta.get("namespace") or "",
                            owner_ref=new_controller_ref(sts, SET_KIND["apiVersion"], SET_KIND["kind"]),
                            name=pod_name(sts, ordinal))
    update_identity(sts, pod)
    pod["spec"]["hostname"] = pod["metadata"]["name"]
    service = (sts.get("spec") or {}).get("serviceName")
    if service:
        pod["spec"]["subdomain"] = service
    update_storage(sts, pod)
    return pod


def pod_revision(pod: Obj) -> str:
    return ((pod.get("metadata") or {}).get("labels") or {}).get(REVISION_HASH_LABEL) or ""


def set_pod_revision(pod: Obj, revision: str) -> None:
    pod.setdefault("metadata", {}).setdefault("labels", {})[REVISION_HASH_LABEL] = revision


# -- revisions ----------------------------------------------------------------------------------


def revision_data(sts: Obj) -> Obj:
    template = clone((sts.get("spec") or {}).get("template") or {})
    template["$patch"] = "replace"
    return {"spec": {"template": template}}


def same_data(a: Obj, b: Obj) -> bool:
    """Whether two revisions record the same template (their data, not their hash labels,
    which also depend on the collision count)."""
    return orjson.dumps(a.get("data"), option=orjson.OPT_SORT_KEYS) == \
        orjson.dumps(b.get("data"), option=orjson.OPT_SORT_KEYS)


def apply_revision(sts: Obj, revision: Obj) -> Obj:
    """A copy of the set with the pod template the revision recorded."""
    out = clone(sts)
    template = ((revision.get("data") or {}).get("spec") or {}).get("template")
    if isinstance(template, dict):
        template = clone(template)
        template.pop("$patch", None)
        out.setdefault("spec", {})["template"] = template
    return out


def update_strategy(sts: Obj) -> tuple[str, Obj | None]:
    """(the strategy type, its rollingUpdate or None)."""
    strategy = (sts.get("spec") or {}).get("updateStrategy") or {}
    rolling = strategy.get("rollingUpdate")
    return strategy.get("type") or "RollingUpdate", rolling if isinstance(rolling, dict) else None


def partition_of(sts: Obj) -> int:
    _, rolling = update_strategy(sts)
    return int((rolling or {}).get("partition") or 0)


def versioned_pod(current_set: Obj, update_set: Obj, current_rev: str, update_rev: str, ordinal: int) -> Obj:
    """A new pod for ``ordinal``: at the current revision when it lies below the partition of
    a RollingUpdate (or, without rollingUpdate, below the current replicas), else at the
    update revision (upstream newVersionedStatefulSetPod)."""
    kind, rolling = update_strategy(current_set)
    start = start_ordinal(current_set)
    current_replicas = int((current_set.get("status") or {}).get("currentReplicas") or 0)
    keep_current = ((kind == "RollingUpdate" and rolling is None and ordinal < start + current_replicas)
                    or (rolling is not None and ordinal < start + int(rolling.get("partition") or 0)))
    if keep_current:
        pod = new_pod(current_set, ordinal)
        set_pod_revision(pod, current_rev)
    else:
        pod = new_pod(update_set, ordinal)
        set_pod_revision(pod, update_rev)
    return pod


def history_limit(sts: Obj) -> int:
    limit = (sts.get("spec") or {}).get("revisionHistoryLimit")
    return DEFAULT_HISTORY_LIMIT if limit is None else max(int(limit), 0)


def revisions_to_prune(sts: Obj, revisions: list[Obj], live_names: set[str]) -> list[Obj]:
    """The revisions (``revisions`` sorted oldest first) to delete so that at most
    revisionHistoryLimit non-live ones remain; live: the current and update revisions and
    every revision a pod carries."""
    history = [r for r in revisions if (r.get("metadata") or {}).get("name") not in live_names]
    excess = len(history) - history_limit(sts)
    return history[:excess] if excess > 0 else []


# -- pod states ---------------------------------------------------------------------------------


def phase(pod: Obj) -> str:
    return (pod.get("status") or {}).get("phase") or ""


def is_created(pod: Obj) -> bool:
    """Whether the pod exists in the API (the API server always gives it a phase)."""
    return phase(pod) != ""


def is_running_and_ready(pod: Obj) -> bool:
    return phase(pod) == "Running" and is_pod_ready(pod)


def is_running_and_available(pod: Obj, min_ready_seconds: int, now: float) -> bool:
    return is_pod_available(pod, min_ready_seconds, now)


def is_healthy(pod: Obj) -> bool:
    return is_running_and_ready(pod) and not is_pod_terminating(pod)


def min_ready_seconds(sts: Obj) -> int:
    return int((sts.get("spec") or {}).get("minReadySeconds") or 0)


# -- status -------------------------------------------------------------------------------------


def replica_status(pods: list[Obj], min_ready: int, now: float, current_rev: str, update_rev: str) -> Obj:
    """replicas, readyReplicas, availableReplicas, currentReplicas, updatedReplicas."""
    counts = {"replicas": 0, "readyReplicas": 0, "availableReplicas": 0, "currentReplicas": 0,
              "updatedReplicas": 0}
    for pod in pods:
        created = is_created(pod)
        if created:
            counts["replicas"] += 1
        if is_running_and_ready(pod):
            counts["readyReplicas"] += 1
            if is_running_and_available(pod, min_ready, now):
                counts["availableReplicas"] += 1
        if created and not is_pod_terminating(pod):
            revision = pod_revision(pod)
            if revision == current_rev:
                counts["currentReplicas"] += 1
            if revision == update_rev:
                counts["updatedReplicas"] += 1
    return counts


def complete_rolling_update(sts: Obj, status: Obj) -> None:
    """Once every replica is updated and ready under RollingUpdate, the update revision
    becomes the current one (in place)."""
    replicas = replicas_of(sts)
    if (update_strategy(sts)[0] == "RollingUpdate" and status.get("updatedReplicas") == replicas
            and status.get("readyReplicas") == replicas and status.get("replicas") == replicas):
        status["currentReplicas"] = status["updatedReplicas"]
        status["currentRevision"] = status.get("updateRevision")


STATUS_FIELDS = ("replicas", "currentReplicas", "readyReplicas", "updatedReplicas", "availableReplicas",
                 "currentRevision", "updateRevision")


def status_differs(sts: Obj, status: Obj) -> bool:
    """Whether ``status`` says something the set's status does not (upstream
    inconsistentStatus, plus the collision count)."""
    old = sts.get("status") or {}
    if int(status.get("observedGeneration") or 0) > int(old.get("observedGeneration") or 0):
        return True
    if any((status.get(f) or 0) != (old.get(f) or 0) for f in STATUS_FIELDS):
        return True
    return int(status.get("collisionCount") or 0) != int(old.get("collisionCount") or 0)
