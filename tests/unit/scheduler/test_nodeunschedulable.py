"""NodeUnschedulable filter: cordoned nodes, the unschedulable toleration, upstream's reason
and events."""

from __future__ import annotations

import pytest

from pybernetes.scheduler.framework import Code, CycleState
from pybernetes.scheduler.nodeinfo import node_info_of
from pybernetes.scheduler.plugins.nodeunschedulable import NodeUnschedulable


def node(name: str, unschedulable: bool | None = None) -> dict:
    spec = {} if unschedulable is None else {"unschedulable": unschedulable}
    return {"metadata": {"name": name}, "spec": spec, "status": {"allocatable": {"cpu": "1"}}}


def pod(node_name: str = "", tolerations: list | None = None) -> dict:
    spec: dict = {"containers": [{"name": "c"}]}
    if node_name:
        spec["nodeName"] = node_name
    if tolerations is not None:
        spec["tolerations"] = tolerations
    return {"metadata": {"name": "p", "namespace": "default"}, "spec": spec}


UNSCHEDULABLE_TOLERATION = {"key": "node.kubernetes.io/unschedulable", "operator": "Exists", "effect": "NoSchedule"}


@pytest.mark.parametrize(("title", "p", "n", "fits"), [
    ("schedulable node", pod(), node("n", False), True),
    ("no unschedulable field", pod(), node("n"), True),
    ("cordoned node", pod(), node("n", True), False),
    ("cordoned node, pod tolerates it", pod(tolerations=[UNSCHEDULABLE_TOLERATION]), node("n", True), True),
    ("cordoned node, tolerate-everything", pod(tolerations=[{"operator": "Exists"}]), node("n", True), True),
    ("cordoned node, NoExecute toleration only",
     pod(tolerations=[{**UNSCHEDULABLE_TOLERATION, "effect": "NoExecute"}]), node("n", True), False),
])
def test_node_unschedulable(title: str, p: dict, n: dict, fits: bool) -> None:
    status = NodeUnschedulable().filter(CycleState(), p, node_info_of(n))
    if fits:
        assert status.is_success()
    else:
        assert status.code == Code.UNSCHEDULABLE_AND_UNRESOLVABLE
        assert status.reasons == ("node(s) were unschedulable",)


def test_events() -> None:
    assert {(e.resource, e.action) for e in NodeUnschedulable().events_to_register()} == {
        ("Node", "Add"), ("Node", "UpdateNodeTaint"), ("Pod", "UpdatePodTolerations")}
