"""PodGC's choice of pods (controllers/podgc.py, pure functions)."""

from __future__ import annotations

from typing import Any

from pybernetes.controllers.podgc import (
    OUT_OF_SERVICE_TAINT,
    disruption_condition,
    missing_nodes,
    out_of_service_terminating,
    terminated_beyond_threshold,
    unscheduled_terminating,
)


def pod(name: str, phase: str = "Running", created: str = "2024-01-01T00:00:00Z", node: str = "n1",
        deleting: bool = False, reason: str | None = None) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "namespace": "default", "creationTimestamp": created}
    if deleting:
        meta["deletionTimestamp"] = "2024-01-02T00:00:00Z"
    status: dict[str, Any] = {"phase": phase}
    if reason:
        status["reason"] = reason
    return {"metadata": meta, "spec": {"nodeName": node} if node else {}, "status": status}


def node(name: str, ready: bool = True, taints: list[str] = ()) -> dict[str, Any]:
    return {"metadata": {"name": name}, "spec": {"taints": [{"key": k, "effect": "NoExecute"} for k in taints]},
            "status": {"conditions": [{"type": "Ready", "status": "True" if ready else "False"}]}}


def names(pods: list[dict[str, Any]]) -> list[str]:
    return [p["metadata"]["name"] for p in pods]


def test_threshold_deletes_oldest_terminated_first() -> None:
    pods = [
        pod("c", "Succeeded", "2024-01-03T00:00:00Z"),
        pod("a", "Failed", "2024-01-01T00:00:00Z"),
        pod("run", "Running", "2023-01-01T00:00:00Z"),
        pod("b2", "Succeeded", "2024-01-02T00:00:00Z"),
        pod("b1", "Succeeded", "2024-01-02T00:00:00Z"),
    ]
    assert names(terminated_beyond_threshold(pods, 2)) == ["a", "b1"]
    assert terminated_beyond_threshold(pods, 4) == []
    assert terminated_beyond_threshold(pods, 0) == []  # 0 turns it off


def test_threshold_deletes_evicted_pods_first() -> None:
    pods = [pod("old", "Succeeded", "2024-01-01T00:00:00Z"),
            pod("evicted", "Failed", "2024-06-01T00:00:00Z", reason="Evicted"),
            pod("new", "Succeeded", "2024-07-01T00:00:00Z")]
    assert names(terminated_beyond_threshold(pods, 1)) == ["evicted", "old"]


def test_out_of_service_only_for_not_ready_tainted_nodes() -> None:
    nodes = {"down": node("down", ready=False, taints=[OUT_OF_SERVICE_TAINT]),
             "tainted-ready": node("tainted-ready", taints=[OUT_OF_SERVICE_TAINT]),
             "notready": node("notready", ready=False)}
    pods = [pod("x", node="down", deleting=True), pod("y", node="down"),
            pod("z", node="tainted-ready", deleting=True), pod("w", node="notready", deleting=True)]
    assert names(out_of_service_terminating(pods, nodes)) == ["x"]


def test_unscheduled_terminating_and_missing_nodes() -> None:
    pods = [pod("u", node="", deleting=True), pod("v", node=""), pod("s", node="n1", deleting=True),
            pod("o", node="gone")]
    assert names(unscheduled_terminating(pods)) == ["u"]
    assert missing_nodes(pods, {"n1": node("n1")}) == {"gone"}


def test_disruption_condition() -> None:
    cond = disruption_condition(0.0)
    assert cond["type"] == "DisruptionTarget" and cond["reason"] == "DeletionByPodGC"
    assert cond["status"] == "True" and cond["lastTransitionTime"] == "1970-01-01T00:00:00Z"
