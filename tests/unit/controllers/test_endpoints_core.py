"""endpoints_core: which pods are endpoints, port resolution, repacked subsets, truncation at
1000 addresses, the annotations and labels of the desired Endpoints, trigger times."""

from __future__ import annotations

from pybernetes.controllers.endpoints_core import (
    HEADLESS_LABEL,
    OVER_CAPACITY_ANNOTATION,
    TRIGGER_TIME_ANNOTATION,
    TriggerTimeTracker,
    build_subsets,
    desired_endpoints,
    find_port,
    should_pod_be_in_endpoints,
    truncate_subsets,
)
from pybernetes.controllers.podutil import format_time


def make_pod(name: str, ip: str | None = "10.0.0.1", ready: bool = True, phase: str = "Running",
             ports: list[dict] | None = None, deleting: bool = False, ready_at: str = "2024-01-01T00:00:00Z",
             **spec) -> dict:
    meta = {"name": name, "namespace": "ns", "uid": f"uid-{name}", "labels": {"app": "x"}}
    if deleting:
        meta["deletionTimestamp"] = "2024-01-01T00:00:00Z"
    status = {"phase": phase, "conditions": [{"type": "Ready", "status": "True" if ready else "False",
                                              "lastTransitionTime": ready_at}]}
    if ip:
        status["podIP"] = ip
        status["podIPs"] = [{"ip": ip}]
    return {"metadata": meta, "spec": {"nodeName": "n1", "containers": [{"name": "c", "ports": ports or []}], **spec},
            "status": status}


def make_service(ports=None, **spec) -> dict:
    return {"metadata": {"name": "svc", "namespace": "ns", "uid": "svc-uid", "labels": {"l": "v"},
                         "creationTimestamp": "2023-01-01T00:00:00Z"},
            "spec": {"selector": {"app": "x"}, "clusterIP": "10.43.0.10", "ipFamilies": ["IPv4"],
                     "ports": ports if ports is not None else [{"name": "http", "port": 80, "targetPort": 8080,
                                                                "protocol": "TCP"}], **spec}}


def test_which_pods_are_endpoints() -> None:
    assert should_pod_be_in_endpoints(make_pod("a"), False)
    assert not should_pod_be_in_endpoints(make_pod("a", ip=None), True)
    assert not should_pod_be_in_endpoints(make_pod("a", phase="Succeeded"), True)
    assert not should_pod_be_in_endpoints(make_pod("a", deleting=True), False)
    assert should_pod_be_in_endpoints(make_pod("a", deleting=True), True)


def test_find_port_numbers_and_names() -> None:
    pod = make_pod("a", ports=[{"name": "http", "containerPort": 8080},
                               {"name": "dns", "containerPort": 5353, "protocol": "UDP"}])
    assert find_port(pod, {"port": 80, "targetPort": 9000}) == 9000
    assert find_port(pod, {"port": 80}) == 80
    assert find_port(pod, {"port": 80, "targetPort": "http"}) == 8080
    assert find_port(pod, {"port": 53, "targetPort": "dns", "protocol": "UDP"}) == 5353
    assert find_port(pod, {"port": 53, "targetPort": "dns", "protocol": "TCP"}) is None
    assert find_port(pod, {"port": 80, "targetPort": "missing"}) is None
    sidecar = make_pod("s")
    sidecar["spec"]["initContainers"] = [{"name": "proxy", "restartPolicy": "Always",
                                          "ports": [{"name": "proxy", "containerPort": 15001}]}]
    assert find_port(sidecar, {"port": 80, "targetPort": "proxy"}) == 15001


def test_subsets_split_ready_and_group_by_ports() -> None:
    svc = make_service([{"name": "http", "port": 80, "targetPort": "http"}])
    pods = [make_pod("a", "10.0.0.1", ports=[{"name": "http", "containerPort": 8080}]),
            make_pod("b", "10.0.0.2", ready=False, ports=[{"name": "http", "containerPort": 8080}]),
            make_pod("c", "10.0.0.3", ports=[{"name": "http", "containerPort": 9090}]),
            make_pod("d", "10.0.0.4", ports=[]),  # no such named port: skipped
            make_pod("e", "10.0.0.5", deleting=True, ports=[{"name": "http", "containerPort": 8080}])]
    subsets = build_subsets(svc, pods)
    assert len(subsets) == 2
    by_port = {s["ports"][0]["port"]: s for s in subsets}
    assert [a["ip"] for a in by_port[8080]["addresses"]] == ["10.0.0.1"]
    assert [a["ip"] for a in by_port[8080]["notReadyAddresses"]] == ["10.0.0.2"]
    assert [a["ip"] for a in by_port[9090]["addresses"]] == ["10.0.0.3"]
    address = by_port[8080]["addresses"][0]
    assert address == {"ip": "10.0.0.1", "nodeName": "n1",
                       "targetRef": {"kind": "Pod", "namespace": "ns", "name": "a", "uid": "uid-a"}}
    assert by_port[8080]["ports"] == [{"name": "http", "port": 8080, "protocol": "TCP"}]


def test_publish_not_ready_addresses_lists_everyone_as_ready() -> None:
    svc = make_service(publishNotReadyAddresses=True)
    pods = [make_pod("a", "10.0.0.1", ready=False), make_pod("b", "10.0.0.2", deleting=True)]
    (subset,) = build_subsets(svc, pods)
    assert [a["ip"] for a in subset["addresses"]] == ["10.0.0.1", "10.0.0.2"]
    assert "notReadyAddresses" not in subset


def test_multiple_ports_share_one_subset_and_headless_without_ports() -> None:
    svc = make_service([{"name": "a", "port": 80, "targetPort": 80}, {"name": "b", "port": 81, "targetPort": 81}])
    (subset,) = build_subsets(svc, [make_pod("a", "10.0.0.1"), make_pod("b", "10.0.0.2")])
    assert [p["name"] for p in subset["ports"]] == ["a", "b"] and len(subset["addresses"]) == 2
    headless = make_service([], clusterIP="None")
    (subset,) = build_subsets(headless, [make_pod("a", "10.0.0.1", hostname="h", subdomain="svc")])
    assert "ports" not in subset and subset["addresses"][0]["hostname"] == "h"


def test_truncation_keeps_proportions() -> None:
    subsets = [{"addresses": [{"ip": f"10.0.{i // 250}.{i % 250}"} for i in range(800)],
                "notReadyAddresses": [{"ip": f"10.1.0.{i}"} for i in range(100)]},
               {"addresses": [{"ip": f"10.2.{i // 250}.{i % 250}"} for i in range(400)]}]
    assert truncate_subsets(subsets)
    assert sum(len(s.get("addresses") or []) for s in subsets) == 1000
    assert all("notReadyAddresses" not in s for s in subsets)
    assert len(subsets[0]["addresses"]) == 667  # ceil(800/1200*1000)
    small = [{"addresses": [{"ip": "10.0.0.1"}]}]
    assert not truncate_subsets(small)
    not_ready = [{"addresses": [{"ip": f"10.0.{i // 250}.{i % 250}"} for i in range(900)],
                  "notReadyAddresses": [{"ip": f"10.1.0.{i}"} for i in range(200)]}]
    assert truncate_subsets(not_ready)
    assert len(not_ready[0]["addresses"]) == 900 and len(not_ready[0]["notReadyAddresses"]) == 100


def test_desired_endpoints_annotations_labels_and_no_op() -> None:
    svc = make_service()
    pods = [make_pod("a")]
    new = desired_endpoints(svc, pods, None, 1_700_000_000.0)
    assert new["metadata"]["name"] == "svc" and new["metadata"]["labels"]["l"] == "v"
    assert HEADLESS_LABEL not in new["metadata"]["labels"]
    assert new["metadata"]["annotations"][TRIGGER_TIME_ANNOTATION] == format_time(1_700_000_000.0)
    stored = {**new, "metadata": {**new["metadata"], "resourceVersion": "5"}}
    assert desired_endpoints(svc, pods, stored, None) is None
    changed = desired_endpoints(svc, pods + [make_pod("b", "10.0.0.2")], stored, None)
    assert changed["metadata"]["resourceVersion"] == "5"
    assert TRIGGER_TIME_ANNOTATION not in (changed["metadata"].get("annotations") or {})
    headless = desired_endpoints(make_service(clusterIP="None"), pods, None, None)
    assert headless["metadata"]["labels"][HEADLESS_LABEL] == ""


def test_over_capacity_annotation() -> None:
    pods = [make_pod(f"p{i}", f"10.0.{i // 250}.{i % 250 + 1}") for i in range(1001)]
    new = desired_endpoints(make_service(), pods, None, None)
    assert new["metadata"]["annotations"][OVER_CAPACITY_ANNOTATION] == "truncated"
    assert sum(len(s.get("addresses") or []) for s in new["subsets"]) == 1000
    stored = {**new, "metadata": {**new["metadata"], "resourceVersion": "1"}}
    assert desired_endpoints(make_service(), pods, stored, None) is None
    fewer = desired_endpoints(make_service(), pods[:10], stored, None)
    assert OVER_CAPACITY_ANNOTATION not in (fewer["metadata"].get("annotations") or {})


def test_trigger_time_tracker() -> None:
    tracker = TriggerTimeTracker()
    svc = make_service()
    a = make_pod("a", ready_at="2024-01-01T00:00:10Z")
    first = tracker.compute("ns/svc", svc, [a])
    assert first == 1672531200.0  # the service's creation
    assert tracker.compute("ns/svc", svc, [a]) is None
    b = make_pod("b", ready_at="2024-01-01T00:00:20Z")
    a2 = make_pod("a", ready_at="2024-01-01T00:00:30Z")
    assert tracker.compute("ns/svc", svc, [a2, b]) == 1704067220.0
