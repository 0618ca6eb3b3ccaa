"""What deleting a namespace's content amounts to (pure): the deletion conditions, the
graceful-termination estimate and what remains, as upstream's
pkg/controller/namespace/deletion (v1.32).

Owns:
- the five status conditions a terminating namespace carries, in upstream's order, with
  their success (status False) and failure (status True) reasons and messages;
- ``ContentTotals`` — what remains after one pass, per resource and per finalizer — and
  ``remaining_conditions`` turning it into NamespaceContentRemaining /
  NamespaceFinalizersRemaining ("Some resources are remaining: pods. has 2 resource
  instances");
- ``update_conditions`` — upstream's condition updater: a condition is replaced (with a new
  lastTransitionTime) only when its status, reason or message changed;
- ``estimate_pods`` — the longest grace period of the namespace's pods still running,
  less the time since the namespace was deleted;
- ``finalized`` / ``without_kubernetes_finalizer`` — the namespace's spec.finalizers.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

from pybernetes.controllers.podutil import format_time

Obj = dict[str, Any]

KUBERNETES_FINALIZER = "kubernetes"
FINALIZER_ESTIMATE_SECONDS = 15  # upstream's estimate for content held by finalizers

DISCOVERY_FAILURE = "NamespaceDeletionDiscoveryFailure"
GV_PARSING_FAILURE = "NamespaceDeletionGroupVersionParsingFailure"
CONTENT_FAILURE = "NamespaceDeletionContentFailure"
CONTENT_REMAINING = "NamespaceContentRemaining"
FINALIZERS_REMAINING = "NamespaceFinalizersRemaining"
CONDITION_TYPES = (DISCOVERY_FAILURE, GV_PARSING_FAILURE, CONTENT_FAILURE, CONTENT_REMAINING,
                   FINALIZERS_REMAINING)

OK_REASONS = {
    DISCOVERY_FAILURE: "ResourcesDiscovered",
    GV_PARSING_FAILURE: "ParsedGroupVersions",
    CONTENT_FAILURE: "ContentDeleted",
    CONTENT_REMAINING: "ContentRemoved",
    FINALIZERS_REMAINING: "ContentHasNoFinalizers",
}
OK_MESSAGES = {
    DISCOVERY_FAILURE: "All resources successfully discovered",
    GV_PARSING_FAILURE: "All legacy kube types successfully parsed",
    CONTENT_FAILURE: "All content successfully deleted, may be waiting on finalization",
    CONTENT_REMAINING: "All content successfully removed",
    FINALIZERS_REMAINING: "All content-preserving finalizers finished",
}


def condition(ctype: str, status: str, reason: str, message: str) -> Obj:
    return {"type": ctype, "status": status, "reason": reason, "message": message}


def discovery_failure(error: str) -> Obj:
    return condition(DISCOVERY_FAILURE, "True", "DiscoveryFailed", error)


def content_failure(errors: list[str]) -> Obj:
    return condition(CONTENT_FAILURE, "True", "ContentDeletionFailed",
                     f"Failed to delete all resource types, {len(errors)} remaining: {', '.join(errors)}")


@dataclass
class ContentTotals:
    """What is left after a pass: instances per resource ("resource.group") and per finalizer."""

    by_resource: dict[str, int] = field(default_factory=dict)
    by_finalizer: dict[str, int] = field(default_factory=dict)

    def add(self, group: str, resource: str, items: list[Obj]) -> None:
        if not items:
            return
        key = f"{resource}.{group}"
        self.by_resource[key] = self.by_resource.get(key, 0) + len(items)
        for finalizer, count in finalizer_counts(items).items():
            self.by_finalizer[finalizer] = self.by_finalizer.get(finalizer, 0) + count


def finalizer_counts(items: list[Obj]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for item in items:
        for finalizer in (item.get("metadata") or {}).get("finalizers") or []:
            counts[finalizer] = counts.get(finalizer, 0) + 1
    return counts


def remaining_conditions(totals: ContentTotals) -> list[Obj]:
    out = []
    resources = sorted(f"{key} has {n} resource instances" for key, n in totals.by_resource.items() if n)
    if resources:
        out.append(condition(CONTENT_REMAINING, "True", "SomeResourcesRemain",
                             f"Some resources are remaining: {', '.join(resources)}"))
    finalizers = sorted(f"{name} in {n} resource instances" for name, n in totals.by_finalizer.items() if n)
    if finalizers:
        out.append(condition(FINALIZERS_REMAINING, "True", "SomeFinalizersRemain",
                             f"Some content in the namespace has finalizers remaining: {', '.join(finalizers)}"))
    return out


def update_conditions(current: list[Obj] | None, failures: list[Obj], now: float) -> tuple[list[Obj], bool]:
    """The namespace's conditions with every deletion condition set: the failure given for
    its type, else its success variant.  (new list, whether anything changed)."""
    conditions = copy.deepcopy(list(current or []))
    changed = False
    by_type = {c["type"]: c for c in failures}
    stamp = format_time(now)
    for ctype in CONDITION_TYPES:
        new = dict(by_type.get(ctype) or condition(ctype, "False", OK_REASONS[ctype], OK_MESSAGES[ctype]))
        new["lastTransitionTime"] = stamp
        index = next((i for i, c in enumerate(conditions) if c.get("type") == ctype), None)
        if index is None:
            conditions.append(new)
            changed = True
            continue
        old = conditions[index]
        if all(old.get(k) == new[k] for k in ("status", "reason", "message")):
            continue
        conditions[index] = new
        changed = True
    return conditions, changed


def get_condition(conditions: list[Obj] | None, ctype: str) -> Obj | None:
    return next((c for c in conditions or [] if c.get("type") == ctype), None)


def estimate_pods(pods: list[Obj], deleted_at: float | None, now: float) -> int:
    """Seconds to allow the namespace's pods to terminate gracefully: the longest
    terminationGracePeriodSeconds of the pods not finished, less the time since the
    namespace was deleted (never below 0)."""
    estimate = 0
    for pod in pods:
        if (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
            continue
        grace = (pod.get("spec") or {}).get("terminationGracePeriodSeconds")
        if isinstance(grace, int) and grace > estimate:
            estimate = grace
    if deleted_at is not None:
        estimate -= int(max(0.0, now - deleted_at))
    return max(0, estimate)


def finalized(namespace: Obj) -> bool:
    """Whether this controller's finalizer is already gone from spec.finalizers."""
    return KUBERNETES_FINALIZER not in ((namespace.get("spec") or {}).get("finalizers") or [])


def without_kubernetes_finalizer(namespace: Obj) -> Obj:
    """A copy of the namespace for PUT .../finalize: spec.finalizers without "kubernetes"."""
    out = copy.deepcopy(namespace)
    spec = out.setdefault("spec", {})
    spec["finalizers"] = [f for f in spec.get("finalizers") or [] if f != KUBERNETES_FINALIZER]
    return out


def requeue_delay(estimate: float) -> float:
    """Upstream requeues a namespace with content remaining after half the estimate + 1 s."""
    return estimate / 2 + 1
