"""endpointslice_core.reconcile: packing, minimal updates of existing slices, placeholders,
address types, port groups, conditions, zones and nodes."""

from __future__ import annotations

import itertools

from pybernetes.controllers.endpointslice_core import (
    MANAGED_BY_LABEL,
    SERVICE_NAME_LABEL,
    reconcile,
)

NODES = {"n1": {"metadata": {"name": "n1", "labels": {"topology.kubernetes.io/zone": "z1"}}}}
_names = itertools.count()


def make_pod(i: int, ready: bool = True, deleting: bool = False, port_name: str = "http", port: int = 8080,
             ips: list[str] | None = None, node: str = "n1") -> dict:
    meta = {"name": f"p{i}", "namespace": "ns", "uid": f"u{i}", "labels": {"app": "x"}}
    if deleting:
        meta["deletionTimestamp"] = "2024-01-01T00:00:00Z"
    ips = ips or [f"10.0.{i // 200}.{i % 200 + 1}"]
    return {"metadata": meta,
            "spec": {"nodeName": node, "containers": [{"name": "c", "ports": [{"name": port_name, "containerPort": port}]}]},
            "status": {"phase": "Running", "podIP": ips[0], "podIPs": [{"ip": ip} for ip in ips],
                       "conditions": [{"type": "Ready", "status": "True" if ready else "False"}]}}


def make_service(**spec) -> dict:
    return {"metadata": {"name": "svc", "namespace": "ns", "uid": "svc-uid"},
            "spec": {"selector": {"app": "x"}, "clusterIP": "10.43.0.1", "ipFamilies": ["IPv4"],
                     "ports": [{"name": "web", "port": 80, "targetPort": "http", "protocol": "TCP"}], **spec}}


def apply(plan, existing: list[dict]) -> list[dict]:
    """What the API would hold after the plan (names given to creates)."""
    by_name = {s["metadata"]["name"]: s for s in existing}
    for s in plan.delete:
        by_name.pop(s["metadata"]["name"])
    for s in plan.update:
        assert s["metadata"]["name"] in by_name
        by_name[s["metadata"]["name"]] = s
    for s in plan.create:
        s = {**s, "metadata": {**s["metadata"], "name": f"svc-{next(_names)}"}}
        by_name[s["metadata"]["name"]] = s
    return list(by_name.values())


def sizes(slices: list[dict]) -> list[int]:
    return sorted(len(s["endpoints"]) for s in slices)


def test_new_service_packs_endpoints() -> None:
    plan = reconcile(make_service(), [make_pod(i) for i in range(250)], [], NODES, 100)
    assert not plan.update and not plan.delete and not plan.errors
    assert sorted(len(s["endpoints"]) for s in plan.create) == [50, 100, 100]
    s = plan.create[0]
    assert s["metadata"]["generateName"] == "svc-"
    assert s["metadata"]["labels"] == {SERVICE_NAME_LABEL: "svc", MANAGED_BY_LABEL: "endpointslice-controller.k8s.io"}
    assert s["metadata"]["ownerReferences"][0]["uid"] == "svc-uid"
    assert s["addressType"] == "IPv4"
    assert s["ports"] == [{"name": "web", "port": 8080, "protocol": "TCP"}]
    ep = s["endpoints"][0]
    assert ep["conditions"] == {"ready": True, "serving": True, "terminating": False}
    assert ep["zone"] == "z1" and ep["nodeName"] == "n1" and ep["targetRef"]["kind"] == "Pod"


def test_steady_state_is_a_no_op_and_changes_are_minimal() -> None:
    svc = make_service()
    pods = [make_pod(i) for i in range(250)]
    slices = apply(reconcile(svc, pods, [], NODES, 100), [])
    assert reconcile(svc, pods, slices, NODES, 100).empty
    # One pod goes unready: only its slice is updated.
    pods[3] = make_pod(3, ready=False)
    plan = reconcile(svc, pods, slices, NODES, 100)
    assert len(plan.update) == 1 and not plan.create and not plan.delete
    slices = apply(plan, slices)
    # Pods removed from one slice and new ones added: they fill the updated slice first.
    full = next(s for s in slices if len(s["endpoints"]) == 100)
    gone = {e["targetRef"]["name"] for e in full["endpoints"][:10]}
    pods = [p for p in pods if p["metadata"]["name"] not in gone] + [make_pod(i) for i in range(300, 305)]
    plan = reconcile(svc, pods, slices, NODES, 100)
    assert len(plan.update) == 1 and not plan.create and not plan.delete
    assert len(plan.update[0]["endpoints"]) == 95
    slices = apply(plan, slices)
    assert sizes(slices) == [50, 95, 100]


def test_leftovers_go_into_the_unchanged_slice_they_fit() -> None:
    svc = make_service()
    pods = [make_pod(i) for i in range(130)]
    slices = apply(reconcile(svc, pods, [], NODES, 100), [])
    assert sizes(slices) == [30, 100]
    plan = reconcile(svc, pods + [make_pod(i) for i in range(500, 520)], slices, NODES, 100)
    assert not plan.create and len(plan.update) == 1
    assert len(plan.update[0]["endpoints"]) == 50


def test_empty_slices_are_deleted_and_placeholder_kept() -> None:
    svc = make_service()
    slices = apply(reconcile(svc, [make_pod(i) for i in range(5)], [], NODES, 3), [])
    assert sizes(slices) == [2, 3]
    plan = reconcile(svc, [], slices, NODES, 3)
    # One slice becomes the placeholder (an update instead of create + delete), one goes.
    assert not plan.create and len(plan.update) == 1 and len(plan.delete) == 1
    assert plan.update[0]["endpoints"] == [] and plan.update[0]["ports"] == []
    slices = apply(plan, slices)
    assert reconcile(svc, [], slices, NODES, 3).empty


def test_conditions_of_terminating_and_publish_not_ready() -> None:
    svc = make_service()
    plan = reconcile(svc, [make_pod(1, deleting=True), make_pod(2, ready=False, deleting=True)], [], NODES)
    eps = {e["targetRef"]["name"]: e["conditions"] for s in plan.create for e in s["endpoints"]}
    assert eps == {"p1": {"ready": False, "serving": True, "terminating": True},
                   "p2": {"ready": False, "serving": False, "terminating": True}}
    plan = reconcile(make_service(publishNotReadyAddresses=True), [make_pod(1, ready=False)], [], NODES)
    assert plan.create[0]["endpoints"][0]["conditions"]["ready"] is True


def test_ports_groups_address_types_and_ownership() -> None:
    svc = make_service()
    pods = [make_pod(1), make_pod(2, port=9090)]
    plan = reconcile(svc, pods, [], NODES)
    assert sorted(s["ports"][0]["port"] for s in plan.create) == [8080, 9090]
    dual = make_service(ipFamilies=["IPv4", "IPv6"], ipFamilyPolicy="PreferDualStack")
    plan = reconcile(dual, [make_pod(1, ips=["10.0.0.1", "fd00::1"])], [], NODES)
    assert sorted((s["addressType"], s["endpoints"][0]["addresses"][0]) for s in plan.create) == [
        ("IPv4", "10.0.0.1"), ("IPv6", "fd00::1")]
    # A slice of a family the service no longer has, or of an older service of the same name, goes.
    v4_slices = apply(reconcile(svc, pods, [], NODES), [])
    v6 = make_service(ipFamilies=["IPv6"])
    plan = reconcile(v6, pods, v4_slices, NODES)
    assert len(plan.delete) == 2 and all(s["addressType"] == "IPv6" for s in plan.create)
    other = make_service()
    other["metadata"]["uid"] = "new-uid"
    plan = reconcile(other, pods, v4_slices, NODES)
    assert len(plan.delete) == 2 and len(plan.create) == 2


def test_missing_node_skips_the_pod_with_an_error() -> None:
    plan = reconcile(make_service(), [make_pod(1), make_pod(2, node="gone")], [], NODES)
    assert [e["targetRef"]["name"] for s in plan.create for e in s["endpoints"]] == ["p1"]
    assert "p2" in plan.errors[0]


def test_trigger_time_annotation_and_label_changes() -> None:
    svc = make_service()
    slices = apply(reconcile(svc, [make_pod(1)], [], NODES, trigger_time=1_700_000_000.0), [])
    assert slices[0]["metadata"]["annotations"]["endpoints.kubernetes.io/last-change-trigger-time"]
    labelled = make_service()
    labelled["metadata"]["labels"] = {"team": "a"}
    plan = reconcile(labelled, [make_pod(1)], slices, NODES)
    assert len(plan.update) == 1 and plan.update[0]["metadata"]["labels"]["team"] == "a"
    assert "annotations" not in plan.update[0]["metadata"]
