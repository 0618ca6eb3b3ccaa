"""Pure pieces of the generic store: continue tokens, deletion planning, metadata rules,
the service allocator's pools, patch helpers."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from store_suite import WIDGETS

from pybernetes.apiserver import deletion, meta_semantics, patching
from pybernetes.apiserver.allocators import ServiceAllocator
from pybernetes.apiserver.continue_token import decode_continue, encode_continue
from pybernetes.machinery.errors import StatusError

ROOT = "/registry/pods/"
NOW = datetime(2030, 1, 1, tzinfo=UTC)


def test_continue_token_round_trip():
    token = encode_continue(42, "/registry/pods/ns/p1", ROOT)
    assert "=" not in token
    assert decode_continue(token, ROOT) == (42, "/registry/pods/ns/p1")


@pytest.mark.parametrize("token", ["", "%%%", "bm90IGpzb24", "eyJ2IjoieCIsInJ2IjoxLCJzdGFydCI6ImEifQ",
                                   "eyJ2IjoibWV0YS5rOHMuaW8vdjEiLCJydiI6MCwic3RhcnQiOiJhIn0"])
def test_bad_continue_tokens_are_400(token):
    with pytest.raises(StatusError) as info:
        decode_continue(token, ROOT)
    assert info.value.code == 400


def widget(**meta):
    return {"metadata": {"name": "w", "uid": "u", "resourceVersion": "5", **meta}, "spec": {}}


def test_plan_delete_plain_object_is_deleted():
    plan = deletion.plan_delete(WIDGETS, widget(), deletion.DeleteOptions(), NOW)
    assert plan.action == "delete"


def test_plan_delete_with_finalizers_marks_once():
    obj = widget(finalizers=["x"], generation=3)
    plan = deletion.plan_delete(WIDGETS, obj, deletion.DeleteOptions(), NOW)
    assert plan.action == "update"
    meta = plan.obj["metadata"]
    assert meta["deletionTimestamp"] == "2030-01-01T00:00:00Z"
    assert meta["deletionGracePeriodSeconds"] == 0 and meta["generation"] == 4
    later = datetime(2031, 1, 1, tzinfo=UTC)
    again = deletion.plan_delete(WIDGETS, plan.obj, deletion.DeleteOptions(), later)
    assert again.obj["metadata"]["deletionTimestamp"] == "2030-01-01T00:00:00Z"
    assert again.obj["metadata"]["generation"] == 4


def test_gc_finalizers_and_default_policies():
    opts = deletion.parse_delete_options({"propagationPolicy": "Foreground"})
    assert deletion.gc_finalizers(WIDGETS, ["a"], opts) == ["a", "foregroundDeletion"]
    opts = deletion.parse_delete_options({"propagationPolicy": "Background"})
    assert deletion.gc_finalizers(WIDGETS, ["orphan"], opts) == []
    from pybernetes.api.resource import ResourceDef

    jobs = ResourceDef("batch", "v1", "jobs", "Job", "job", True)
    assert deletion.gc_finalizers(jobs, [], deletion.DeleteOptions()) == ["orphan"]


def test_negative_grace_period_means_one_second():
    assert deletion.parse_delete_options({"gracePeriodSeconds": -5}).grace_period == 1


def test_spec_changed_ignores_metadata_and_status():
    old = {"metadata": {"labels": {}}, "spec": {"a": 1}, "status": {"x": 1}}
    assert not meta_semantics.spec_changed({"metadata": {"labels": {"b": "c"}}, "spec": {"a": 1}}, old, ("status",))
    assert meta_semantics.spec_changed({"metadata": {}, "spec": {"a": 2}}, old, ("status",))
    assert meta_semantics.spec_changed({"metadata": {}, "spec": {"a": 1}, "data": 1}, old, ("status",))


def test_allocator_pools_fill_and_release():
    alloc = ServiceAllocator("10.0.0.0/29", (30000, 30001))
    assert alloc.first_ip() == "10.0.0.1"
    made = []
    for _ in range(6):  # .1 ... .6 usable in a /29
        svc = {"spec": {"type": "ClusterIP", "ports": []}}
        reservation, errs = alloc.allocate(svc, None)
        assert not errs
        reservation.commit()
        made.append(svc)
    full, errs = alloc.allocate({"spec": {"ports": []}}, None)
    assert errs and "range is full" in errs[0].detail
    alloc.release(made[0]).commit()
    svc = {"spec": {"ports": []}}
    _, errs = alloc.allocate(svc, None)
    assert not errs and svc["spec"]["clusterIP"] == made[0]["spec"]["clusterIP"]


def test_drop_path_and_patch_type():
    obj = {"spec": {"containers": [{"name": "a", "bogus": 1}]}}
    patching.drop_path(obj, "spec.containers[0].bogus")
    assert obj == {"spec": {"containers": [{"name": "a"}]}}
    assert patching.patch_type_of("application/merge-patch+json; charset=utf-8") == patching.MERGE_PATCH
    with pytest.raises(StatusError) as info:
        patching.patch_type_of("application/json")
    assert info.value.code == 415


def test_scale_of_replication_controller_uses_its_plain_selector():
    from pybernetes.api.resource import ResourceDef
    from pybernetes.apiserver.subresources import scale_of

    rcs = ResourceDef("", "v1", "replicationcontrollers", "ReplicationController", "replicationcontroller", True)
    rc = {"metadata": {"name": "r", "namespace": "default", "uid": "u", "resourceVersion": "3"},
          "spec": {"replicas": 2, "selector": {"b": "2", "a": "1"}}, "status": {"replicas": 1}}
    scale = scale_of(rcs, rc)
    assert scale["spec"] == {"replicas": 2}
    assert scale["status"] == {"replicas": 1, "selector": "a=1,b=2"}
    sts = ResourceDef("apps", "v1", "statefulsets", "StatefulSet", "statefulset", True)
    set_based = {"metadata": {"name": "s"}, "spec": {"replicas": 0, "selector": {
        "matchLabels": {"app": "db"}, "matchExpressions": [{"key": "tier", "operator": "In", "values": ["x"]}]}}}
    assert scale_of(sts, set_based)["status"]["selector"] == "app=db,tier in (x)"
