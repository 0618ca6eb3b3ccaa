"""The scheduling queue: ordering, backoff, moves on cluster events, gates, the moveRequestCycle
race, periodic flush, nominated pods."""

from __future__ import annotations

import asyncio

import pytest

from pybernetes.scheduler.framework import ClusterEvent, Status
from pybernetes.scheduler.queue import (
    Closed,
    QueuedPodInfo,
    SchedulingQueue,
    action_matches,
    is_pod_updated,
    priority_then_timestamp,
)

NODE_ADD = ClusterEvent("Node", "Add")
NODE_LABEL = ClusterEvent("Node", "UpdateNodeLabel")
NODE_TAINT = ClusterEvent("Node", "UpdateNodeTaint")
POD_DELETE = ClusterEvent("Pod", "Delete")

EVENTS = {
    "NodeResourcesFit": {NODE_ADD, ClusterEvent("Node", "UpdateNodeAllocatable"), POD_DELETE},
    "NodeAffinity": {NODE_ADD, ClusterEvent("Node", "Update")},
    "TaintToleration": {NODE_ADD, NODE_TAINT},
    "SchedulingGates": {ClusterEvent("Pod", "UpdatePodSchedulingGatesEliminated")},
}


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def pod(name: str, priority: int = 0, gates: list[str] | None = None, **meta) -> dict:
    spec: dict = {"containers": [{"name": "c", "image": "nginx"}], "priority": priority}
    if gates:
        spec["schedulingGates"] = [{"name": g} for g in gates]
    return {"metadata": {"name": name, "namespace": "ns", **meta}, "spec": spec}


def gates(p: dict) -> Status:
    if (p.get("spec") or {}).get("schedulingGates"):
        return Status.unresolvable("waiting for scheduling gates", plugin="SchedulingGates")
    return Status()


def make(clock: Clock | None = None, **kw) -> tuple[SchedulingQueue, Clock]:
    clock = clock or Clock()
    q = SchedulingQueue(priority_then_timestamp, gates, clock=clock, events_by_plugin=EVENTS, **kw)
    return q, clock


async def pop_fail(q: SchedulingQueue, *plugins: str) -> QueuedPodInfo:
    """Pop the head, fail it with ``plugins`` rejecting it, in its own cycle."""
    info = await q.pop()
    cycle = q.scheduling_cycle
    info.unschedulable_plugins = set(plugins)
    q.add_unschedulable(info, cycle)
    return info


async def test_active_order_is_priority_then_time() -> None:
    q, clock = make()
    for name, prio in [("low", 1), ("high-late", 10), ("mid", 5), ("high-early", 10)]:
        if name == "high-early":
            clock.now -= 10  # queued earlier
        q.add(pod(name, prio))
        clock.now += 1
    names = [(await q.pop()).pod["metadata"]["name"] for _ in range(4)]
    assert names == ["high-early", "high-late", "mid", "low"]


async def test_pop_waits_for_a_pod_and_close_wakes_it() -> None:
    q, _ = make()
    waiter = asyncio.create_task(q.pop())
    await asyncio.sleep(0)
    assert not waiter.done()
    q.add(pod("a"))
    info = await asyncio.wait_for(waiter, 1)
    assert info.key == "ns/a" and info.attempts == 1 and q.scheduling_cycle == 1
    waiter = asyncio.create_task(q.pop())
    await asyncio.sleep(0)
    q.close()
    with pytest.raises(Closed):
        await asyncio.wait_for(waiter, 1)


@pytest.mark.parametrize("attempts,expected", [(1, 1.0), (2, 2.0), (3, 4.0), (4, 8.0), (5, 10.0), (9, 10.0)])
def test_backoff_doubles_to_the_cap(attempts: int, expected: float) -> None:
    q, clock = make()
    info = QueuedPodInfo(pod("a"), clock.now, attempts=attempts)
    assert q.backoff_duration(info) == expected
    assert q.backoff_expiry(info) == clock.now + expected


async def test_error_goes_to_backoff_and_flush_moves_it_when_done() -> None:
    q, clock = make()
    q.add(pod("a"))
    await pop_fail(q)  # no rejecting plugin: an error -> backoff
    assert q.pending_counts() == {"active": 0, "backoff": 1, "unschedulable": 0, "gated": 0}
    q.flush(clock.now + 0.99)
    assert q.where("ns/a") == "backoff"
    q.flush(clock.now + 1.0)
    assert q.where("ns/a") == "active"
    clock.now += 1.0
    await pop_fail(q)  # second attempt: 2 s
    q.flush(clock.now + 1.5)
    assert q.where("ns/a") == "backoff"
    q.flush(clock.now + 2.0)
    assert q.where("ns/a") == "active"


async def test_event_moves_only_pods_whose_plugins_registered_it() -> None:
    q, clock = make()
    for name in ("fit", "taint", "affinity", "unknown-plugin"):
        q.add(pod(name))
    plugins = {"ns/fit": "NodeResourcesFit", "ns/taint": "TaintToleration",
               "ns/affinity": "NodeAffinity", "ns/unknown-plugin": "Custom"}
    for _ in range(4):
        info = await q.pop()
        info.unschedulable_plugins = {plugins[info.key]}
        q.add_unschedulable(info, q.scheduling_cycle)
    assert q.pending_counts()["unschedulable"] == 4
    clock.now += 20  # backoff over
    assert q.move_all_to_active_or_backoff(NODE_TAINT) == 3  # taint, affinity (Update*), Custom
    assert q.where("ns/fit") == "unschedulable"
    assert {q.where(k) for k in ("ns/taint", "ns/affinity", "ns/unknown-plugin")} == {"active"}
    assert q.move_all_to_active_or_backoff(POD_DELETE) == 1
    assert q.where("ns/fit") == "active"


async def test_event_during_backoff_goes_to_backoff() -> None:
    q, clock = make()
    q.add(pod("a"))
    await pop_fail(q, "NodeResourcesFit")
    assert q.where("ns/a") == "unschedulable"
    clock.now += 0.5
    q.move_all_to_active_or_backoff(NODE_ADD)
    assert q.where("ns/a") == "backoff"


async def test_pre_check_filters_moved_pods() -> None:
    q, clock = make()
    q.add(pod("a"))
    q.add(pod("b"))
    await pop_fail(q, "NodeResourcesFit")
    await pop_fail(q, "NodeResourcesFit")
    clock.now += 20
    moved = q.move_all_to_active_or_backoff(NODE_ADD, pre_check=lambda p: p["metadata"]["name"] == "b")
    assert moved == 1 and q.where("ns/a") == "unschedulable" and q.where("ns/b") == "active"


async def test_move_request_during_the_cycle_sends_the_pod_to_backoff() -> None:
    q, _ = make()
    q.add(pod("a"))
    q.add(pod("b"))
    info = await q.pop()
    cycle = q.scheduling_cycle
    # While "a" is being scheduled, an unrelated event arrives...
    q.move_all_to_active_or_backoff(NODE_ADD)
    info.unschedulable_plugins = {"NodeResourcesFit"}
    q.add_unschedulable(info, cycle)
    assert q.where("ns/a") == "backoff"  # ...so its rejection may be stale.
    # Without an event since its cycle began, the next one goes to unschedulable.
    info = await q.pop()
    info.unschedulable_plugins = {"NodeResourcesFit"}
    q.add_unschedulable(info, q.scheduling_cycle)
    assert q.where("ns/b") == "unschedulable"


async def test_gated_pods_wait_until_the_gate_is_lifted() -> None:
    q, clock = make()
    gated = pod("g", gates=["example.com/wait"])
    q.add(gated)
    clock.now += 1
    q.add(pod("free"))
    assert q.pending_counts() == {"active": 1, "backoff": 0, "unschedulable": 0, "gated": 1}
    assert q.get("ns/g").gated and q.get("ns/g").gating_plugin == "SchedulingGates"
    q.update(gated, {**gated, "metadata": {**gated["metadata"], "labels": {"x": "y"}}})
    assert q.where("ns/g") == "gated"  # still gated
    q.move_all_to_active_or_backoff(NODE_ADD)  # SchedulingGates did not register it
    assert q.where("ns/g") == "gated"
    lifted = pod("g")
    q.update(gated, lifted)
    assert q.where("ns/g") == "active" and not q.get("ns/g").gated
    assert [(await q.pop()).key for _ in range(2)] == ["ns/g", "ns/free"]  # kept its first timestamp


async def test_update_of_unschedulable_pod_moves_it_only_when_it_matters() -> None:
    q, clock = make()
    old = pod("a", resourceVersion="1")
    q.add(old)
    await pop_fail(q, "NodeAffinity")
    status_only = {**old, "metadata": {**old["metadata"], "resourceVersion": "2"},
                   "status": {"conditions": [{"type": "PodScheduled", "status": "False"}]}}
    q.update(old, status_only)
    assert q.where("ns/a") == "unschedulable"
    assert q.get("ns/a").pod is status_only
    relabelled = {**status_only, "metadata": {**status_only["metadata"], "labels": {"app": "x"}}}
    q.update(status_only, relabelled)
    assert q.where("ns/a") == "backoff"  # still backing off (1 s)
    clock.now += 5
    q.flush()
    assert q.where("ns/a") == "active"


def test_is_pod_updated() -> None:
    base = pod("a", resourceVersion="1")
    assert not is_pod_updated(base, {**base, "status": {"phase": "Pending"}})
    assert not is_pod_updated(base, {**base, "metadata": {**base["metadata"], "resourceVersion": "9",
                                                         "managedFields": [{}]}})
    assert is_pod_updated(base, {**base, "metadata": {**base["metadata"], "annotations": {"a": "b"}}})
    assert is_pod_updated(base, {**base, "spec": {**base["spec"], "priority": 7}})


def test_action_matching() -> None:
    assert action_matches("Update", "UpdateNodeLabel")
    assert action_matches("UpdateNodeLabel", "Update")
    assert not action_matches("UpdateNodeTaint", "UpdateNodeLabel")
    assert action_matches("*", "Delete") and not action_matches("Add", "Delete")


async def test_flush_returns_pods_unschedulable_for_too_long() -> None:
    q, clock = make(unschedulable_timeout=300)
    q.add(pod("a"))
    await pop_fail(q, "NodeResourcesFit")
    q.flush(clock.now + 299)
    assert q.where("ns/a") == "unschedulable"
    q.flush(clock.now + 301)
    assert q.where("ns/a") == "active"


async def test_delete_removes_from_every_place_and_in_flight() -> None:
    q, _ = make()
    for name in ("a", "b"):
        q.add(pod(name))
    q.add(pod("g", gates=["x"]))
    q.delete(pod("b"))
    q.delete(pod("g"))
    info = await q.pop()
    assert info.key == "ns/a"
    q.delete(pod("a"))  # deleted while being scheduled
    info.unschedulable_plugins = {"NodeResourcesFit"}
    q.add_unschedulable(info, q.scheduling_cycle)
    assert len(q) == 0 and q.where("ns/a") is None


async def test_update_during_the_cycle_is_kept() -> None:
    q, _ = make()
    old = pod("a")
    q.add(old)
    info = await q.pop()
    new = {**old, "metadata": {**old["metadata"], "labels": {"v": "2"}}}
    q.update(old, new)
    assert q.where("ns/a") == "in-flight"  # not queued twice
    info.unschedulable_plugins = {"NodeAffinity"}
    q.add_unschedulable(info, q.scheduling_cycle)
    assert q.where("ns/a") == "backoff" and q.get("ns/a").pod is new


async def test_done_ends_the_cycle_and_unschedulable_plugins_reset_on_pop() -> None:
    q, clock = make()
    q.add(pod("a"))
    info = await pop_fail(q, "NodeResourcesFit")
    clock.now += 20
    q.move_all_to_active_or_backoff(POD_DELETE)
    again = await q.pop()
    assert again is info and again.attempts == 2 and again.unschedulable_plugins == set()
    assert again.initial_attempt_timestamp == 1000.0
    q.done(again.key)
    assert q.where("ns/a") is None


def test_nominated_pods() -> None:
    q, _ = make()
    p = pod("pre", priority=100)
    q.add_nominated(p, "n1")
    assert q.nominated_pods_for_node("n1") == [p] and q.nominated_node(p) == "n1"
    q.add_nominated(p, "n2")
    assert q.nominated_pods_for_node("n1") == [] and q.nominated_pods_for_node("n2") == [p]
    # An update without nominatedNodeName on either side keeps the in-memory nomination.
    newer = {**p, "metadata": {**p["metadata"], "labels": {"x": "1"}}}
    q.add(p)
    q.update(p, newer)
    assert q.nominated_pods_for_node("n2") == [newer]
    # The status names one: it wins; removing it from the status drops it.
    with_status = {**newer, "status": {"nominatedNodeName": "n3"}}
    q.update(newer, with_status)
    assert q.nominated_node(p) == "n3"
    q.update(with_status, newer)
    assert q.nominated_node(p) == ""
    q.add_nominated(p, "n1")
    q.delete(p)
    assert q.nominated_pods_for_node("n1") == []


async def test_many_pods_keep_their_order_through_updates() -> None:
    q, clock = make()
    pods = []
    for i in range(200):
        clock.now += 0.001
        pods.append(pod(f"p{i:03d}", priority=i % 3))
        q.add(pods[-1])
    for p in pods[::7]:
        q.update(p, {**p, "metadata": {**p["metadata"], "labels": {"u": "1"}}})
    out = [await q.pop() for _ in range(200)]
    keys = [(-i.priority(), i.timestamp) for i in out]
    assert keys == sorted(keys)
    assert q.pending_counts()["active"] == 0
