"""disruption_core: expected and desired counts, disrupted pods, the status and condition."""

from __future__ import annotations

import pytest

from pybernetes.controllers.disruption_core import (
    BudgetError,
    count_healthy,
    desired_healthy,
    disrupted_pods,
    failed_status,
    needs_scale,
    new_status,
    scaled_value,
)
from pybernetes.controllers.podutil import format_time

NOW = 1_700_000_000.0


def make_pod(name: str, ready: bool = True, deleting: bool = False) -> dict:
    meta = {"name": name}
    if deleting:
        meta["deletionTimestamp"] = format_time(NOW)
    return {"metadata": meta, "status": {"conditions": [{"type": "Ready", "status": "True" if ready else "False"}]}}


def test_scaled_values_round_up() -> None:
    assert scaled_value(3, 10) == 3
    assert scaled_value("50%", 5) == 3
    assert scaled_value("10%", 1) == 1
    assert scaled_value("0%", 7) == 0
    with pytest.raises(BudgetError):
        scaled_value("half", 4)


def test_expected_and_desired() -> None:
    assert needs_scale({"maxUnavailable": 1}) and needs_scale({"minAvailable": "50%"})
    assert not needs_scale({"minAvailable": 2})
    assert desired_healthy({"minAvailable": 2}, 5, None) == (5, 2)
    assert desired_healthy({"minAvailable": "50%"}, 3, 5) == (5, 3)
    assert desired_healthy({"maxUnavailable": "25%"}, 3, 6) == (6, 4)
    assert desired_healthy({"maxUnavailable": 10}, 3, 6) == (6, 0)
    assert desired_healthy({}, 3, None) == (0, 0)


def test_disrupted_pods_and_healthy_count() -> None:
    budget = {"status": {"disruptedPods": {"a": format_time(NOW - 30), "b": format_time(NOW - 200),
                                           "c": format_time(NOW - 10), "gone": format_time(NOW)}}}
    pods = [make_pod("a"), make_pod("b"), make_pod("c", deleting=True), make_pod("d"), make_pod("e", ready=False)]
    kept, recheck, overdue = disrupted_pods(pods, budget, NOW)
    assert kept == {"a": format_time(NOW - 30)}
    assert recheck == NOW - 30 + 120
    assert [p["metadata"]["name"] for p in overdue] == ["b"]
    assert count_healthy(pods, kept, NOW) == 2  # b and d; a is being disrupted, c deleted, e unready


def test_status_and_condition() -> None:
    budget = {"metadata": {"generation": 2}, "status": {}}
    new = new_status(budget, 3, 2, 3, {}, NOW)
    st = new["status"]
    assert (st["disruptionsAllowed"], st["observedGeneration"]) == (1, 2)
    cond = st["conditions"][0]
    assert (cond["type"], cond["status"], cond["reason"]) == ("DisruptionAllowed", "True", "SufficientPods")
    assert new_status(new, 3, 2, 3, {}, NOW + 5) is None
    worse = new_status(new, 2, 2, 3, {}, NOW + 5)["status"]
    assert worse["disruptionsAllowed"] == 0
    assert (worse["conditions"][0]["status"], worse["conditions"][0]["reason"]) == ("False", "InsufficientPods")
    assert worse["conditions"][0]["lastTransitionTime"] == format_time(NOW + 5)
    # No expected pods: no disruptions, whatever the counts.
    assert new_status(budget, 3, 0, 0, {}, NOW)["status"]["disruptionsAllowed"] == 0


def test_fail_safe() -> None:
    budget = {"metadata": {"generation": 1}, "status": {"disruptionsAllowed": 2, "observedGeneration": 1}}
    failed = failed_status(budget, "boom", NOW)
    st = failed["status"]
    assert st["disruptionsAllowed"] == 0
    assert (st["conditions"][0]["reason"], st["conditions"][0]["message"]) == ("SyncFailed", "boom")
    assert failed_status(failed, "boom", NOW) is None
