"""The Deployment controller's pure helpers: maxSurge/maxUnavailable, new and old
ReplicaSets, the new ReplicaSet's shape, revision annotations and conditions."""

from __future__ import annotations

import pytest

from pybernetes.controllers import deployment_util as du
from pybernetes.controllers.history import compute_hash
from pybernetes.controllers.podutil import format_time

T0 = 1_700_000_000.0
TEMPLATE = {"metadata": {"labels": {"app": "web"}},
            "spec": {"containers": [{"name": "c", "image": "nginx:1"}]}}


def deployment(replicas: int = 10, surge="25%", unavailable="25%", strategy: str = "RollingUpdate",
               template: dict | None = None, **spec) -> dict:
    strat: dict = {"type": strategy}
    if strategy == "RollingUpdate":
        strat["rollingUpdate"] = {"maxSurge": surge, "maxUnavailable": unavailable}
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "ns", "uid": "d-uid", "generation": 1,
                         "annotations": {"team": "a", du.LAST_APPLIED: "{}", du.REVISION: "7"}},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": "web"}},
                     "template": template or TEMPLATE, "strategy": strat, **spec},
            "status": {}}


def rs(name: str, replicas: int, *, template: dict | None = None, revision: int | None = None,
       created: float = T0, available: int | None = None) -> dict:
    ann = {} if revision is None else {du.REVISION: str(revision)}
    return {"metadata": {"name": name, "namespace": "ns", "uid": f"uid-{name}", "annotations": ann,
                         "creationTimestamp": format_time(created)},
            "spec": {"replicas": replicas, "template": template or TEMPLATE},
            "status": {"replicas": replicas, "availableReplicas": replicas if available is None else available}}


@pytest.mark.parametrize(("value", "total", "up", "want"), [
    (3, 10, True, 3), ("25%", 10, True, 3), ("25%", 10, False, 2), ("0%", 10, True, 0),
    ("100%", 7, False, 7), ("33%", 1, True, 1), ("33%", 1, False, 0), (None, 5, True, 0),
])
def test_scaled_value(value, total, up, want) -> None:
    assert du.scaled_value(value, total, up) == want


@pytest.mark.parametrize("bad", ["25", "x%", True])
def test_scaled_value_rejects(bad) -> None:
    with pytest.raises(ValueError):
        du.scaled_value(bad, 10, True)


def test_fenceposts() -> None:
    assert du.resolve_fenceposts("25%", "25%", 10) == (3, 2)
    assert du.resolve_fenceposts("0%", "10%", 5) == (0, 1)  # both round to 0: unavailable 1
    assert du.max_surge(deployment(10)) == 3 and du.max_unavailable(deployment(10)) == 2
    assert du.max_unavailable(deployment(3, surge=0, unavailable=5)) == 3  # capped at replicas
    assert du.max_unavailable(deployment(0)) == 0
    rec = deployment(strategy="Recreate")
    assert du.max_surge(rec) == 0 and du.max_unavailable(rec) == 0


def test_equal_ignore_hash_and_find_new() -> None:
    hashed = {"metadata": {"labels": {"app": "web", du.HASH_LABEL: "abc"}}, "spec": TEMPLATE["spec"]}
    assert du.equal_ignore_hash(hashed, TEMPLATE)
    other = {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "c", "image": "nginx:2"}]}}
    assert not du.equal_ignore_hash(other, TEMPLATE)
    d = deployment()
    old = rs("old", 3, template=other, created=T0)
    new_a = rs("new-a", 1, template=hashed, created=T0 + 5)
    new_b = rs("new-b", 1, template=TEMPLATE, created=T0 + 1)
    assert du.find_new_replica_set(d, [old, new_a, new_b])["metadata"]["name"] == "new-b"
    assert [r["metadata"]["name"] for r in du.old_replica_sets(new_b, [old, new_a, new_b])] == ["old", "new-a"]
    assert du.find_new_replica_set(d, [old]) is None


def test_new_replica_set_shape() -> None:
    d = deployment(minReadySeconds=4)
    hash_ = compute_hash(TEMPLATE, None)
    new = du.new_replica_set(d, 3, 2)
    meta = new["metadata"]
    assert meta["name"] == f"web-{hash_}"
    assert meta["labels"] == {"app": "web", du.HASH_LABEL: hash_}
    assert new["spec"]["selector"]["matchLabels"] == {"app": "web", du.HASH_LABEL: hash_}
    assert new["spec"]["template"]["metadata"]["labels"][du.HASH_LABEL] == hash_
    assert new["spec"]["replicas"] == 3 and new["spec"]["minReadySeconds"] == 4
    assert meta["ownerReferences"][0] | {} == {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web",
                                               "uid": "d-uid", "controller": True, "blockOwnerDeletion": True}
    ann = meta["annotations"]
    assert ann[du.REVISION] == "2" and ann["team"] == "a"
    assert du.LAST_APPLIED not in ann
    assert ann[du.DESIRED_REPLICAS] == "10" and ann[du.MAX_REPLICAS] == "13"
    assert d["spec"]["template"] == TEMPLATE  # the Deployment is not changed
    # A collision count changes the hash.
    d["status"]["collisionCount"] = 1
    assert du.new_replica_set(d, 0, 2)["metadata"]["name"] != meta["name"]


def test_revision_annotations_on_rollback() -> None:
    d = deployment()
    r = rs("r", 0, revision=1)
    assert du.set_new_replica_set_annotations(d, r, 3, exists=True)
    ann = r["metadata"]["annotations"]
    assert ann[du.REVISION] == "3" and ann[du.REVISION_HISTORY] == "1"
    assert du.DESIRED_REPLICAS not in ann  # an existing ReplicaSet keeps its replica annotations
    du.set_new_replica_set_annotations(d, r, 5, exists=True)
    assert ann[du.REVISION] == "5" and ann[du.REVISION_HISTORY] == "1,3"
    # Never lowered; nothing changes the second time.
    assert not du.set_new_replica_set_annotations(d, r, 4, exists=True)
    assert ann[du.REVISION] == "5"
    # The history is bounded in characters: the oldest go first.
    r2 = rs("r2", 0, revision=9)
    r2["metadata"]["annotations"][du.REVISION_HISTORY] = "1,2,3"
    du.set_new_replica_set_annotations(d, r2, 10, exists=True, history_limit_chars=6)
    assert r2["metadata"]["annotations"][du.REVISION_HISTORY] == "2,3,9"


def test_set_deployment_revision() -> None:
    d = deployment()
    assert du.set_deployment_revision(d, "8") and d["metadata"]["annotations"][du.REVISION] == "8"
    assert not du.set_deployment_revision(d, "8")


def test_condition_update_rule() -> None:
    status: dict = {}
    du.set_deployment_condition(status, du.new_condition(du.PROGRESSING, "True", du.NEW_RS_CREATED, "m1", T0))
    du.set_deployment_condition(status, du.new_condition(du.AVAILABLE, "False", du.MIN_UNAVAILABLE, "x", T0))
    # Same status and reason: nothing changes (not even the message).
    du.set_deployment_condition(status, du.new_condition(du.PROGRESSING, "True", du.NEW_RS_CREATED, "m2", T0 + 9))
    assert status["conditions"][0]["message"] == "m1"
    # Same status, new reason: replaced, moved last, transition time kept.
    du.set_deployment_condition(status, du.new_condition(du.PROGRESSING, "True", du.REPLICA_SET_UPDATED, "m3",
                                                         T0 + 10))
    prog = status["conditions"][-1]
    assert prog["reason"] == du.REPLICA_SET_UPDATED
    assert prog["lastTransitionTime"] == format_time(T0) and prog["lastUpdateTime"] == format_time(T0 + 10)
    # New status: a new transition time.
    du.set_deployment_condition(status, du.new_condition(du.PROGRESSING, "False", du.TIMED_OUT, "m4", T0 + 20))
    assert du.get_condition(status, du.PROGRESSING)["lastTransitionTime"] == format_time(T0 + 20)
    du.remove_condition(status, du.PROGRESSING)
    assert [c["type"] for c in status["conditions"]] == [du.AVAILABLE]


def test_orderings() -> None:
    a, b, c = rs("a", 5, created=T0 + 2, revision=3), rs("b", 5, created=T0 + 1, revision=1), rs("c", 9, revision=2)
    assert [r["metadata"]["name"] for r in du.by_creation([a, b, c])] == ["c", "b", "a"]
    assert [r["metadata"]["name"] for r in du.by_revision([a, b, c])] == ["b", "c", "a"]
    assert [r["metadata"]["name"] for r in du.by_size_newer([a, b, c])] == ["c", "a", "b"]
    assert [r["metadata"]["name"] for r in du.by_size_older([a, b, c])] == ["c", "b", "a"]
    assert du.max_revision([a, b, c]) == 3


def test_equal_ignore_hash_treats_null_as_missing() -> None:
    patched_back = {"metadata": {"creationTimestamp": None, "labels": {"app": "web"}}, "spec": TEMPLATE["spec"]}
    assert du.equal_ignore_hash(patched_back, TEMPLATE)
