"""Deletion semantics of the generic store (pure): DeleteOptions, preconditions, graceful
deletion, finalizers and garbage-collection propagation, and what a DELETE answers.

``plan_delete`` looks at the stored object and the options and says what to do: remove the
object now, write it back marked for deletion (deletionTimestamp, deletionGracePeriodSeconds,
orphan/foregroundDeletion finalizers), or nothing (a deletion is already pending).  It
follows upstream's ``rest.BeforeDelete`` and the generic store's ``Delete``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from pybernetes.api.resource import ResourceDef
from pybernetes.machinery.errors import (
    FieldError,
    StatusError,
    bad_request,
    conflict,
    invalid,
    invalid_value,
    not_supported,
)

Obj = dict[str, Any]

ORPHAN_FINALIZER = "orphan"
FOREGROUND_FINALIZER = "foregroundDeletion"
PROPAGATION_POLICIES = ("Foreground", "Background", "Orphan")

# Resources whose DELETE answers with the object (upstream's ReturnDeletedObject); the
# others answer with a Status.  A strategy may say otherwise with ``return_deleted_object``.
_RETURNS_DELETED_OBJECT = {
    ("", "pods"),
    ("", "services"),
    ("", "serviceaccounts"),
    ("", "namespaces"),
    ("", "persistentvolumes"),
    ("", "persistentvolumeclaims"),
    ("storage.k8s.io", "storageclasses"),
    ("storage.k8s.io", "volumeattachments"),
}

# Upstream's DefaultGarbageCollectionPolicy exceptions (kept for compatibility upstream):
# batch/v1 Jobs and v1 ReplicationControllers orphan their dependents by default.
_ORPHAN_BY_DEFAULT = {("batch", "jobs"), ("", "replicationcontrollers")}


@dataclass(slots=True)
class DeleteOptions:
    grace_period: int | None = None
    uid: str | None = None
    resource_version: str | None = None
    propagation: str | None = None
    orphan_dependents: bool | None = None


@dataclass(slots=True)
class DeletePlan:
    action: Literal["delete", "update", "pending"]
    obj: Obj  # "update": the object to write back; otherwise the current object


def _invalid_options(errs: list[FieldError]) -> StatusError:
    return invalid("DeleteOptions", "", errs, "meta.k8s.io")


def parse_delete_options(options: Any) -> DeleteOptions:
    """A DeleteOptions dict (or None) checked as upstream's ValidateDeleteOptions does."""
    if options is None:
        return DeleteOptions()
    if not isinstance(options, dict):
        raise bad_request("DeleteOptions must be an object")
    out = DeleteOptions()
    grace = options.get("gracePeriodSeconds")
    if grace is not None:
        if isinstance(grace, bool) or not isinstance(grace, int):
            raise bad_request("gracePeriodSeconds must be an integer")
        out.grace_period = 1 if grace < 0 else grace
    pre = options.get("preconditions")
    if pre is not None:
        if not isinstance(pre, dict):
            raise bad_request("preconditions must be an object")
        if pre.get("uid") is not None:
            out.uid = str(pre["uid"])
        if pre.get("resourceVersion") is not None:
            out.resource_version = str(pre["resourceVersion"])
    errs: list[FieldError] = []
    orphan = options.get("orphanDependents")
    if orphan is not None:
        if not isinstance(orphan, bool):
            raise bad_request("orphanDependents must be a boolean")
        out.orphan_dependents = orphan
    policy = options.get("propagationPolicy")
    if policy is not None:
        if policy not in PROPAGATION_POLICIES:
            errs.append(
                not_supported("propagationPolicy", policy, [*PROPAGATION_POLICIES, "nil"])
            )
        elif orphan is not None:
            errs.append(
                invalid_value(
                    "propagationPolicy",
                    policy,
                    "orphanDependents and deletionPropagation cannot be both set",
                )
            )
        out.propagation = policy
    dry_run = options.get("dryRun")
    if dry_run is not None:
        if not isinstance(dry_run, list) or any(v != "All" for v in dry_run):
            errs.append(not_supported("dryRun", dry_run, ["All"]))
    if errs:
        raise _invalid_options(errs)
    return out


def check_preconditions(res: ResourceDef, obj: Obj, opts: DeleteOptions) -> None:
    meta = obj["metadata"]
    resource = f"{res.kind}.{res.group}" if res.group else res.kind
    name = meta.get("name", "")
    if opts.uid is not None and opts.uid != meta.get("uid"):
        raise conflict(
            resource,
            name,
            f"the UID in the precondition ({opts.uid}) does not match the UID in record "
            f"({meta.get('uid', '')}). The object might have been deleted and then recreated",
        )
    if opts.resource_version is not None and opts.resource_version != meta.get("resourceVersion"):
        raise conflict(
            resource,
            name,
            f"the ResourceVersion in the precondition ({opts.resource_version}) does not match "
            f"the ResourceVersion in record ({meta.get('resourceVersion', '')}). The object "
            "might have been modified",
        )


def returns_deleted_object(res: ResourceDef) -> bool:
    flag = getattr(res.strategy, "return_deleted_object", None)
    if flag is not None:
        return bool(flag)
    return (res.group, res.resource) in _RETURNS_DELETED_OBJECT


def success_status(res: ResourceDef, obj: Obj) -> Obj:
    """The Status a DELETE answers for resources that do not return the object."""
    meta = obj.get("metadata") or {}
    details: Obj = {"name": meta.get("name", "")}
    if res.group:
        details["group"] = res.group
    details["kind"] = res.resource
    if meta.get("uid"):
        details["uid"] = meta["uid"]
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Success",
        "details": details,
    }


def _gc_policy(res: ResourceDef) -> str:
    policy = getattr(res.strategy, "default_gc_policy", None)
    if policy:
        return str(policy)
    if (res.group, res.resource) in _ORPHAN_BY_DEFAULT:
        return "OrphanDependents"
    return "DeleteDependents"


def gc_finalizers(res: ResourceDef, finalizers: list[str], opts: DeleteOptions) -> list[str]:
    """The finalizer list after applying the propagation policy (upstream's
    deletionFinalizersForGarbageCollection)."""
    policy = _gc_policy(res)
    if policy == "Unsupported":
        return finalizers
    orphan: bool
    foreground: bool
    if opts.orphan_dependents is not None:
        orphan, foreground = opts.orphan_dependents, False
    elif opts.propagation is not None:
        orphan = opts.propagation == "Orphan"
        foreground = opts.propagation == "Foreground"
    elif ORPHAN_FINALIZER in finalizers:
        orphan, foreground = True, False
    elif FOREGROUND_FINALIZER in finalizers:
        orphan, foreground = False, True
    else:
        orphan, foreground = policy == "OrphanDependents", False
    kept = [f for f in finalizers if f not in (ORPHAN_FINALIZER, FOREGROUND_FINALIZER)]
    if orphan:
        kept.append(ORPHAN_FINALIZER)
    if foreground:
        kept.append(FOREGROUND_FINALIZER)
    if set(kept) == set(finalizers):
        return finalizers
    return kept


def graceful_period(res: ResourceDef, obj: Obj, requested: int | None) -> int | None:
    """The grace period of a graceful deletion, or None when the resource has none.

    A strategy may define ``check_graceful_delete(obj, requested) -> int | None``; pods get
    upstream's rule (requested, else spec.terminationGracePeriodSeconds, else 0; 0 when not
    bound to a node or already finished)."""
    hook = getattr(res.strategy, "check_graceful_delete", None)
    if hook is not None:
        return hook(obj, requested)
    if res.group != "" or res.resource != "pods":
        return None
    spec = obj.get("spec") or {}
    period = requested
    if period is None:
        period = spec.get("terminationGracePeriodSeconds") or 0
    if not spec.get("nodeName"):
        period = 0
    if (obj.get("status") or {}).get("phase") in ("Failed", "Succeeded"):
        period = 0
    return int(period)


def parse_time(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)


def format_time(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def plan_delete(res: ResourceDef, obj: Obj, opts: DeleteOptions, now: datetime) -> DeletePlan:
    """Decide a DELETE of ``obj`` (a private copy, mutated for "update")."""
    meta = obj["metadata"]
    graceful = False
    grace = graceful_period(res, obj, opts.grace_period)
    if grace is not None:
        if meta.get("deletionTimestamp"):
            current = meta.get("deletionGracePeriodSeconds")
            if current:
                if opts.grace_period is None or opts.grace_period >= current:
                    return DeletePlan("pending", obj)
                start = parse_time(meta["deletionTimestamp"]) - timedelta(seconds=current)
                meta["deletionTimestamp"] = format_time(start + timedelta(seconds=opts.grace_period))
                meta["deletionGracePeriodSeconds"] = opts.grace_period
                grace = opts.grace_period
                graceful = True
        else:
            meta["deletionTimestamp"] = format_time(now + timedelta(seconds=grace))
            meta["deletionGracePeriodSeconds"] = grace
            if meta.get("generation"):
                meta["generation"] = int(meta["generation"]) + 1
            graceful = True
    finalizers = list(meta.get("finalizers") or ())
    new_finalizers = gc_finalizers(res, finalizers, opts)
    if new_finalizers is not finalizers:
        if new_finalizers:
            meta["finalizers"] = new_finalizers
        else:
            meta.pop("finalizers", None)
    pending_finalizers = bool(new_finalizers)
    if graceful:
        if pending_finalizers or (grace or 0) > 0:
            return DeletePlan("update", obj)
        return DeletePlan("delete", obj)
    if pending_finalizers:
        if not meta.get("deletionTimestamp") and meta.get("generation"):
            meta["generation"] = int(meta["generation"]) + 1
        existing = meta.get("deletionTimestamp")
        if not existing or parse_time(existing) > now:
            meta["deletionTimestamp"] = format_time(now)
        meta["deletionGracePeriodSeconds"] = 0
        return DeletePlan("update", obj)
    return DeletePlan("delete", obj)


def should_delete_on_update(new: Obj, old: Obj) -> bool:
    """An update that leaves no finalizers on an object being deleted (with no grace period
    left) deletes it (upstream's ShouldDeleteDuringUpdate)."""
    new_meta, old_meta = new["metadata"], old["metadata"]
    if new_meta.get("finalizers"):
        return False
    if not old_meta.get("deletionTimestamp"):
        return False
    return not old_meta.get("deletionGracePeriodSeconds")


def plan_namespace_delete(obj: Obj, opts: DeleteOptions, now: datetime) -> DeletePlan:
    """Namespaces (upstream's namespace REST): while ``spec.finalizers`` or finalizers
    remain, a DELETE only marks the namespace Terminating; the namespace controller empties
    it and removes the ``kubernetes`` finalizer (namespaces/finalize), then it goes."""
    meta = obj["metadata"]
    spec_finalizers = (obj.get("spec") or {}).get("finalizers") or []
    if not spec_finalizers and not meta.get("finalizers"):
        return DeletePlan("delete", obj)
    if meta.get("deletionTimestamp"):
        return DeletePlan("pending", obj)
    meta["deletionTimestamp"] = format_time(now)
    meta["deletionGracePeriodSeconds"] = 0
    status = obj.get("status")
    if not isinstance(status, dict):
        status = obj["status"] = {}
    status["phase"] = "Terminating"
    finalizers = list(meta.get("finalizers") or ())
    if opts.orphan_dependents or opts.propagation == "Orphan":
        if ORPHAN_FINALIZER not in finalizers:
            finalizers.append(ORPHAN_FINALIZER)
            meta["finalizers"] = finalizers
    return DeletePlan("update", obj)
