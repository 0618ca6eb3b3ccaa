"""The pure helpers every workload controller uses: pod states, templates, selectors,
conditions, adoption decisions and revision hashes."""

from __future__ import annotations

from pybernetes.controllers import history, podutil
from pybernetes.controllers.refmanager import classify, owners_of_update

T0 = 1_700_000_000.0


def _pod(name: str, *, phase: str = "Running", ready: bool = True, since: float = T0, labels=None,
         owner_uid: str | None = None, deleting: bool = False) -> dict:
    meta: dict = {"name": name, "namespace": "ns", "uid": f"uid-{name}", "labels": labels or {"app": "a"}}
    if owner_uid:
        meta["ownerReferences"] = [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "rs",
                                    "uid": owner_uid, "controller": True}]
    if deleting:
        meta["deletionTimestamp"] = podutil.format_time(T0)
    return {"metadata": meta, "status": {"phase": phase, "conditions": [
        {"type": "Ready", "status": "True" if ready else "False",
         "lastTransitionTime": podutil.format_time(since)}]}}


def test_pod_states() -> None:
    assert podutil.is_pod_active(_pod("a"))
    assert not podutil.is_pod_active(_pod("a", phase="Succeeded"))
    assert not podutil.is_pod_active(_pod("a", deleting=True))
    assert podutil.is_pod_terminating(_pod("a", deleting=True))
    assert podutil.is_pod_ready(_pod("a")) and not podutil.is_pod_ready(_pod("a", ready=False))
    assert podutil.pod_ready_time(_pod("a")) == T0
    assert podutil.is_pod_available(_pod("a"), 0, T0)
    assert not podutil.is_pod_available(_pod("a"), 10, T0 + 9)
    assert podutil.is_pod_available(_pod("a"), 10, T0 + 10)
    assert not podutil.is_pod_available(_pod("a", ready=False), 0, T0 + 100)


def test_pod_from_template_copies_and_owns() -> None:
    template = {"metadata": {"labels": {"app": "a"}, "annotations": {"x": "y"}, "finalizers": ["f"]},
                "spec": {"containers": [{"name": "c", "image": "i"}]}}
    owner = {"metadata": {"name": "rs", "uid": "u1"}}
    ref = podutil.new_controller_ref(owner, "apps/v1", "ReplicaSet")
    pod = podutil.pod_from_template(template, namespace="ns", owner_ref=ref, generate_name="rs-")
    assert pod["metadata"] == {"namespace": "ns", "generateName": "rs-", "labels": {"app": "a"},
                               "annotations": {"x": "y"}, "finalizers": ["f"], "ownerReferences": [
                                   {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "rs", "uid": "u1",
                                    "controller": True, "blockOwnerDeletion": True}]}
    pod["spec"]["containers"][0]["image"] = "changed"
    pod["metadata"]["labels"]["app"] = "changed"
    assert template["spec"]["containers"][0]["image"] == "i"
    assert template["metadata"]["labels"]["app"] == "a"
    assert podutil.controller_ref(pod)["uid"] == "u1"


def test_selector_matches() -> None:
    assert podutil.selector_matches({}, {"a": "b"})
    assert not podutil.selector_matches(None, {"a": "b"})
    assert podutil.selector_matches({"matchLabels": {"a": "b"}}, {"a": "b", "c": "d"})
    assert not podutil.selector_matches({"matchExpressions": [{"key": "a", "operator": "NotIn",
                                                               "values": ["b"]}]}, {"a": "b"})
    assert not podutil.selector_matches({"matchExpressions": [{"key": "a", "operator": "Bogus"}]}, {"a": "b"})


def test_set_condition_keeps_transition_time_when_status_unchanged() -> None:
    conds = podutil.set_condition([], {"type": "Available", "status": "True", "reason": "A"}, T0)
    assert conds[0]["lastTransitionTime"] == podutil.format_time(T0)
    conds = podutil.set_condition(conds, {"type": "Available", "status": "True", "reason": "B"}, T0 + 60)
    assert conds == [{"type": "Available", "status": "True", "reason": "B",
                      "lastTransitionTime": podutil.format_time(T0)}]
    conds = podutil.set_condition(conds, {"type": "Available", "status": "False"}, T0 + 120)
    assert conds[0]["lastTransitionTime"] == podutil.format_time(T0 + 120)
    assert podutil.get_condition(conds, "Available")["status"] == "False"
    assert podutil.remove_condition(conds, "Available") == []


def test_classify_adopts_orphans_and_releases_mismatches() -> None:
    owner = {"metadata": {"name": "rs", "uid": "mine"}}
    selector = {"matchLabels": {"app": "a"}}
    pods = [_pod("kept", owner_uid="mine"), _pod("orphan"), _pod("other", owner_uid="theirs"),
            _pod("moved", owner_uid="mine", labels={"app": "b"}), _pod("stranger", labels={"app": "b"}),
            _pod("dying-orphan", deleting=True)]
    kept, adopt, release = classify(owner, selector, pods)
    assert [p["metadata"]["name"] for p in kept] == ["kept"]
    assert [p["metadata"]["name"] for p in adopt] == ["orphan"]
    assert [p["metadata"]["name"] for p in release] == ["moved"]
    deleting_owner = {"metadata": {"name": "rs", "uid": "mine", "deletionTimestamp": "2024-01-01T00:00:00Z"}}
    kept, adopt, release = classify(deleting_owner, selector, pods)
    assert adopt == [] and release == []


def test_hash_is_stable_safe_and_changes_with_collisions() -> None:
    template = {"metadata": {"labels": {"app": "a"}}, "spec": {"containers": [{"name": "c", "image": "i"}]}}
    same = {"spec": {"containers": [{"image": "i", "name": "c"}]}, "metadata": {"labels": {"app": "a"}}}
    h = history.compute_hash(template)
    assert h == history.compute_hash(same)
    assert set(h) <= set(history.SAFE_ALPHABET)
    assert h != history.compute_hash(template, 1)
    assert history.compute_hash(template, 1) != history.compute_hash(template, 2)
    assert history.fnv1a_32(b"") == 0x811C9DC5
    assert history.fnv1a_32(b"a") == 0xE40C292C  # the published FNV-1a test vector


def test_revisions() -> None:
    parent = {"metadata": {"name": "ds", "namespace": "ns", "uid": "u"}}
    kind = {"apiVersion": "apps/v1", "kind": "DaemonSet"}
    r1 = history.new_revision(parent, kind, {"spec": {"template": {"a": 1}}}, 1, None, {"app": "a"})
    r2 = history.new_revision(parent, kind, {"spec": {"template": {"a": 2}}}, 2, None, {"app": "a"})
    r1b = history.new_revision(parent, kind, {"spec": {"template": {"a": 1}}}, 3, None, {"app": "a"})
    assert r1["metadata"]["name"].startswith("ds-")
    assert r1["metadata"]["labels"]["controller-revision-hash"] == r1["metadata"]["name"][3:]
    assert r1["metadata"]["ownerReferences"][0]["kind"] == "DaemonSet"
    assert history.equal_revisions(r1, r1b) and not history.equal_revisions(r1, r2)
    assert history.find_equal_revisions([r1, r2], r1b) == [r1]
    assert history.max_revision([r1, r2, r1b]) == 3
    assert [r["revision"] for r in history.sort_revisions([r1b, r2, r1])] == [1, 2, 3]


def test_owners_of_update_routes_to_old_new_and_candidate_owners() -> None:
    owners = {"rs-a": {"metadata": {"name": "rs-a", "uid": "a"}}, "rs-b": {"metadata": {"name": "rs-b", "uid": "b"}}}

    def resolve(ns, ref):
        owner = owners.get(ref.get("name"))
        return owner if owner and owner["metadata"]["uid"] == ref.get("uid") else None

    def ref(name: str, uid: str) -> list:
        return [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": name, "uid": uid, "controller": True}]

    def matching(obj):
        return [owners["rs-b"]]

    owned_a = {"metadata": {"namespace": "ns", "labels": {"x": "1"}, "ownerReferences": ref("rs-a", "a")}}
    owned_b = {"metadata": {"namespace": "ns", "labels": {"x": "1"}, "ownerReferences": ref("rs-b", "b")}}
    orphan = {"metadata": {"namespace": "ns", "labels": {"x": "1"}}}
    relabelled = {"metadata": {"namespace": "ns", "labels": {"x": "2"}}}
    assert owners_of_update(owned_a, owned_a, resolve, matching) == (None, owners["rs-a"], [])
    assert owners_of_update(owned_a, owned_b, resolve, matching) == (owners["rs-a"], owners["rs-b"], [])
    assert owners_of_update(owned_a, orphan, resolve, matching) == (owners["rs-a"], None, [owners["rs-b"]])
    assert owners_of_update(orphan, orphan, resolve, matching) == (None, None, [])
    assert owners_of_update(orphan, relabelled, resolve, matching) == (None, None, [owners["rs-b"]])
    stale = {"metadata": {"namespace": "ns", "ownerReferences": ref("rs-a", "other-uid")}}
    assert owners_of_update(stale, stale, resolve, matching) == (None, None, [])
