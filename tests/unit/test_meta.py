"""Unit tests of machinery.meta: timestamps, uids, generated names, clone, finalizer/owner helpers."""

from __future__ import annotations

import copy
import re
import time
import uuid

from hypothesis import given
from hypothesis import strategies as st

from pybernetes.machinery import meta as m


def _pod() -> dict:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "web", "namespace": "default", "labels": {"app": "web"},
                     "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "rs",
                                          "uid": "u-rs", "controller": True}]},
        "spec": {"containers": [{"name": "c", "image": "nginx", "env": [{"name": f"E{i}", "value": "x" * 30}
                                                                       for i in range(30)],
                                 "resources": {"requests": {"cpu": "100m"}}}],
                 "terminationGracePeriodSeconds": 30, "priority": 0, "enableServiceLinks": True,
                 "overhead": None, "weight": 1.5},
        "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}] * 4},
    }


def test_now_rfc3339():
    text = m.now_rfc3339()
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", text)
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", m.now_rfc3339_micro())


def test_new_uid_is_uuid4():
    uids = {m.new_uid() for _ in range(200)}
    assert len(uids) == 200
    for uid in list(uids)[:5]:
        assert uuid.UUID(uid).version == 4 and str(uuid.UUID(uid)) == uid


def test_random_suffix_alphabet():
    assert m.SUFFIX_ALPHABET == "bcdfghjklmnpqrstvwxz2456789"
    suffix = m.random_suffix()
    assert len(suffix) == 5 and set(suffix) <= set(m.SUFFIX_ALPHABET)
    assert len(m.random_suffix(12)) == 12
    assert len({m.random_suffix() for _ in range(100)}) > 90


def test_generate_name_truncates_base():
    name = m.generate_name("web-")
    assert name.startswith("web-") and len(name) == 9
    long = m.generate_name("x" * 80)
    assert len(long) == 63 and long.startswith("x" * 58)


def test_get_meta():
    obj: dict = {}
    meta = m.get_meta(obj)
    meta["name"] = "a"
    assert obj == {"metadata": {"name": "a"}}
    assert m.get_meta({"metadata": None}) == {}
    pod = _pod()
    assert m.get_meta(pod) is pod["metadata"]


def test_clone_is_deep_and_equal():
    pod = _pod()
    copied = m.clone(pod)
    assert copied == pod
    copied["metadata"]["labels"]["app"] = "db"
    copied["spec"]["containers"][0]["env"].append({"name": "new"})
    assert pod["metadata"]["labels"]["app"] == "web"
    assert len(pod["spec"]["containers"][0]["env"]) == 30
    assert m.clone([1, {"a": [2]}]) == [1, {"a": [2]}]
    assert m.clone("s") == "s" and m.clone(None) is None


def test_clone_falls_back_for_what_orjson_refuses():
    odd = {"big": 2**70, 1: "int key", "t": (1, 2)}
    copied = m.clone(odd)
    assert copied == {"big": 2**70, 1: "int key", "t": [1, 2]}
    assert m.clone_recursive(_pod()) == _pod()


_json = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.text(max_size=5)
    | st.floats(allow_nan=False, allow_infinity=False),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=4), children, max_size=4),
    max_leaves=20,
)


@given(_json)
def test_clone_equals_deepcopy(value):
    assert m.clone(value) == copy.deepcopy(value)
    assert m.clone_recursive(value) == copy.deepcopy(value)


def test_clone_is_fast_enough():
    pod = _pod()
    n = 2000
    start = time.perf_counter()
    for _ in range(n):
        m.clone(pod)
    clone_time = time.perf_counter() - start
    start = time.perf_counter()
    for _ in range(n):
        copy.deepcopy(pod)
    deepcopy_time = time.perf_counter() - start
    assert clone_time < deepcopy_time


def test_finalizer_helpers():
    obj = {"metadata": {"name": "x"}}
    assert not m.has_finalizer(obj, "a/b")
    assert m.add_finalizer(obj, "a/b") is True
    assert m.add_finalizer(obj, "a/b") is False
    assert m.add_finalizer(obj, "c/d") is True
    assert m.finalizers_of(obj) == ["a/b", "c/d"]
    assert m.has_finalizer(obj, "c/d")
    assert m.remove_finalizer(obj, "a/b") is True
    assert m.remove_finalizer(obj, "a/b") is False
    assert m.remove_finalizer(obj, "c/d") is True
    assert "finalizers" not in obj["metadata"]
    assert m.finalizers_of({}) == []
    assert not m.is_being_deleted(obj)
    obj["metadata"]["deletionTimestamp"] = "2024-01-01T00:00:00Z"
    assert m.is_being_deleted(obj)


def test_finalizer_helpers_do_not_mutate_shared_lists():
    shared = ["a/b"]
    obj = {"metadata": {"finalizers": shared}}
    m.add_finalizer(obj, "c/d")
    m.remove_finalizer(obj, "a/b")
    assert shared == ["a/b"]


def test_owner_reference_helpers():
    pod = _pod()
    assert m.controller_of(pod)["name"] == "rs"
    assert m.is_owned_by(pod, "u-rs") and not m.is_owned_by(pod, "other")
    owner = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d", "uid": "u-d"}}
    assert m.owner_reference_for(owner) == {
        "apiVersion": "apps/v1", "kind": "Deployment", "name": "d", "uid": "u-d",
        "controller": True, "blockOwnerDeletion": True,
    }
    assert m.owner_reference_for(owner, controller=False, block_owner_deletion=False) == {
        "apiVersion": "apps/v1", "kind": "Deployment", "name": "d", "uid": "u-d"}
    assert m.remove_owner_reference(pod, "nope") is False
    assert m.remove_owner_reference(pod, "u-rs") is True
    assert "ownerReferences" not in pod["metadata"]
    assert m.controller_of(pod) is None
    assert m.owner_references({"metadata": {"ownerReferences": "junk"}}) == []


def test_accessors_and_keys():
    pod = _pod()
    assert m.name_of(pod) == "web" and m.namespace_of(pod) == "default"
    assert m.labels_of(pod) == {"app": "web"} and m.annotations_of(pod) == {}
    assert m.key_of(pod) == "default/web"
    assert m.key_of({"metadata": {"name": "node-1"}}) == "node-1"
    assert m.split_key("default/web") == ("default", "web")
    assert m.split_key("node-1") == ("", "node-1")


def test_prepare_meta_for_create():
    meta = {"generateName": "web-", "deletionTimestamp": "x", "deletionGracePeriodSeconds": 3, "uid": "mine"}
    m.prepare_meta_for_create(meta, now="2024-01-01T00:00:00Z")
    assert meta["name"].startswith("web-") and len(meta["name"]) == 9
    assert meta["creationTimestamp"] == "2024-01-01T00:00:00Z"
    assert meta["uid"] != "mine" and uuid.UUID(meta["uid"]).version == 4
    assert "deletionTimestamp" not in meta and "deletionGracePeriodSeconds" not in meta
    named = {"name": "fixed", "generateName": "web-"}
    m.prepare_meta_for_create(named)
    assert named["name"] == "fixed"


def test_prepare_meta_for_update():
    old = {"name": "x", "uid": "u1", "generation": 3, "creationTimestamp": "t0",
           "deletionTimestamp": "t1", "deletionGracePeriodSeconds": 30}
    new = {"name": "x", "generation": 99, "creationTimestamp": "other", "deletionTimestamp": None}
    m.prepare_meta_for_update(new, old)
    assert new == {"name": "x", "uid": "u1", "generation": 3, "creationTimestamp": "t0",
                   "deletionTimestamp": "t1", "deletionGracePeriodSeconds": 30}
    new2 = {"name": "x", "uid": "u2", "deletionGracePeriodSeconds": 0}
    m.prepare_meta_for_update(new2, {"name": "x", "uid": "u1", "deletionGracePeriodSeconds": 30})
    assert new2["uid"] == "u2" and new2["deletionGracePeriodSeconds"] == 0 and "generation" not in new2
