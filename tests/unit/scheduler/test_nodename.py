"""NodeName filter: verdicts, upstream's reason and events."""

from __future__ import annotations

import pytest

from pybernetes.scheduler.framework import Code, CycleState
from pybernetes.scheduler.nodeinfo import node_info_of
from pybernetes.scheduler.plugins.nodename import NodeName


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


@pytest.mark.parametrize(("p", "n", "fits"), [
    (pod(), node("foo"), True),
    (pod("foo"), node("foo"), True),
    (pod("bar"), node("foo"), False),
])
def test_node_name(p: dict, n: dict, fits: bool) -> None:
    status = NodeName().filter(CycleState(), p, node_info_of(n))
    if fits:
        assert status.is_success()
    else:
        assert status.code == Code.UNSCHEDULABLE_AND_UNRESOLVABLE
        assert status.reasons == ("node(s) didn't match the requested node name",)
        assert status.plugin == "NodeName"


def test_events() -> None:
    assert {(e.resource, e.action) for e in NodeName().events_to_register()} == {("Node", "Add")}
