"""SchedulingGates: PreEnqueue verdict, upstream's message and events."""

from __future__ import annotations

import pytest

from pybernetes.scheduler.framework import Code
from pybernetes.scheduler.plugins.schedulinggates import SchedulingGates


@pytest.mark.parametrize(("gates", "message"), [
    (None, None),
    ([], None),
    ([{"name": "foo"}], "waiting for scheduling gates: [foo]"),
    ([{"name": "foo"}, {"name": "bar"}], "waiting for scheduling gates: [foo bar]"),
])
def test_scheduling_gates(gates: list | None, message: str | None) -> None:
    spec: dict = {"containers": [{"name": "c"}]}
    if gates is not None:
        spec["schedulingGates"] = gates
    status = SchedulingGates().pre_enqueue({"metadata": {"name": "p"}, "spec": spec})
    if message is None:
        assert status.is_success()
    else:
        assert status.code == Code.UNSCHEDULABLE_AND_UNRESOLVABLE
        assert status.reasons == (message,)
        assert status.plugin == "SchedulingGates"


def test_events() -> None:
    assert [(e.resource, e.action) for e in SchedulingGates().events_to_register()] == [
        ("Pod", "UpdatePodSchedulingGatesEliminated")]
