"""The namespace controller's pure deletion logic (namespace_deletion)."""

from __future__ import annotations

from typing import Any

from pybernetes.controllers import namespace_deletion as nd


def item(finalizers: list[str] | None = None) -> dict[str, Any]:
    return {"metadata": {"name": "x", "finalizers": finalizers or []}}


def by_type(conditions: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {c["type"]: c for c in conditions}


def test_success_conditions_in_upstream_order() -> None:
    conditions, changed = nd.update_conditions(None, [], now=1_700_000_000)
    assert changed
    assert [c["type"] for c in conditions] == list(nd.CONDITION_TYPES)
    assert all(c["status"] == "False" for c in conditions)
    conds = by_type(conditions)
    assert conds["NamespaceContentRemaining"]["reason"] == "ContentRemoved"
    assert conds["NamespaceContentRemaining"]["message"] == "All content successfully removed"
    assert conds["NamespaceFinalizersRemaining"]["reason"] == "ContentHasNoFinalizers"
    assert conds["NamespaceDeletionDiscoveryFailure"]["reason"] == "ResourcesDiscovered"
    assert conds["NamespaceDeletionContentFailure"]["reason"] == "ContentDeleted"
    assert conds["NamespaceDeletionGroupVersionParsingFailure"]["reason"] == "ParsedGroupVersions"
    assert conditions[0]["lastTransitionTime"] == "2023-11-14T22:13:20Z"


def test_remaining_content_messages() -> None:
    totals = nd.ContentTotals()
    totals.add("", "pods", [item(), item()])
    totals.add("apps", "deployments", [item(["example.com/a"])])
    totals.add("", "configmaps", [item(["example.com/a", "example.com/b"])])
    totals.add("", "secrets", [])
    conds = by_type(nd.remaining_conditions(totals))
    assert conds["NamespaceContentRemaining"] == {
        "type": "NamespaceContentRemaining", "status": "True", "reason": "SomeResourcesRemain",
        "message": "Some resources are remaining: configmaps. has 1 resource instances, "
                   "deployments.apps has 1 resource instances, pods. has 2 resource instances"}
    assert conds["NamespaceFinalizersRemaining"]["message"] == (
        "Some content in the namespace has finalizers remaining: example.com/a in 2 resource instances, "
        "example.com/b in 1 resource instances")
    assert nd.remaining_conditions(nd.ContentTotals()) == []


def test_conditions_change_only_when_status_reason_or_message_does() -> None:
    first, _ = nd.update_conditions([], [], now=100)
    again, changed = nd.update_conditions(first, [], now=200)
    assert not changed and again == first
    failing = [nd.content_failure(["pods.: boom"])]
    updated, changed = nd.update_conditions(again, failing, now=300)
    assert changed
    cond = nd.get_condition(updated, "NamespaceDeletionContentFailure")
    assert cond["status"] == "True" and cond["reason"] == "ContentDeletionFailed"
    assert cond["message"] == "Failed to delete all resource types, 1 remaining: pods.: boom"
    assert cond["lastTransitionTime"] == "1970-01-01T00:05:00Z"
    untouched = nd.get_condition(updated, "NamespaceContentRemaining")
    assert untouched["lastTransitionTime"] == "1970-01-01T00:01:40Z"
    assert first[2]["status"] == "False"  # the input list is not mutated
    custom = [{"type": "Custom", "status": "True"}]
    merged, _ = nd.update_conditions(custom, [], now=0)
    assert merged[0] == {"type": "Custom", "status": "True"} and len(merged) == 6


def test_estimate_pods() -> None:
    pods = [
        {"spec": {"terminationGracePeriodSeconds": 30}, "status": {"phase": "Running"}},
        {"spec": {"terminationGracePeriodSeconds": 90}, "status": {"phase": "Succeeded"}},
        {"spec": {"terminationGracePeriodSeconds": 10}},
    ]
    assert nd.estimate_pods(pods, deleted_at=None, now=0) == 30
    assert nd.estimate_pods(pods, deleted_at=100.0, now=112.5) == 18
    assert nd.estimate_pods(pods, deleted_at=100.0, now=200.0) == 0
    assert nd.estimate_pods([], deleted_at=None, now=0) == 0


def test_finalize_helpers() -> None:
    ns = {"metadata": {"name": "n"}, "spec": {"finalizers": ["kubernetes", "example.com/x"]}}
    assert not nd.finalized(ns)
    out = nd.without_kubernetes_finalizer(ns)
    assert out["spec"]["finalizers"] == ["example.com/x"]
    assert ns["spec"]["finalizers"] == ["kubernetes", "example.com/x"]
    assert nd.finalized(out)
    assert nd.finalized({"metadata": {"name": "n"}})
    assert nd.requeue_delay(15) == 8.5
