"""The scheduler cache: assumed pods (assume, confirm, forget, expire), nodes coming and going
with pods on them, terminated pods, and the incrementally updated snapshot."""

from __future__ import annotations

import time

import pytest

from pybernetes.scheduler.cache import CacheError, SchedulerCache
from pybernetes.scheduler.resources import CPU, PODS


def node(name: str, cpu: str = "4", labels: dict | None = None) -> dict:
    return {"metadata": {"name": name, "labels": labels or {}},
            "status": {"allocatable": {"cpu": cpu, "memory": "8Gi", "pods": "110"}}}


def pod(name: str, node_name: str = "", cpu: str = "1", phase: str = "", anti: bool = False) -> dict:
    spec: dict = {"containers": [{"name": "c", "image": "nginx", "resources": {"requests": {"cpu": cpu}}}]}
    if node_name:
        spec["nodeName"] = node_name
    if anti:
        spec["affinity"] = {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
            {"labelSelector": {"matchLabels": {"app": "x"}}, "topologyKey": "kubernetes.io/hostname"}]}}
    out = {"metadata": {"name": name, "namespace": "ns"}, "spec": spec}
    if phase:
        out["status"] = {"phase": phase}
    return out


def cpu_on(cache: SchedulerCache, name: str) -> int:
    info = cache.snapshot().get(name)
    return info.requested.get(CPU, 0) if info else -1


def test_assume_is_seen_by_the_next_snapshot_and_confirmed_by_add() -> None:
    c = SchedulerCache()
    c.add_node(node("n1"))
    p = pod("a", "n1")
    c.assume_pod(p)
    assert cpu_on(c, "n1") == 1000 and c.is_assumed("ns/a")
    with pytest.raises(CacheError):
        c.assume_pod(p)
    c.finish_binding(p)
    bound = {**p, "status": {"phase": "Pending", "conditions": [{"type": "PodScheduled", "status": "True"}]}}
    c.add_pod(bound)  # the informer confirms, with its own (new) pod object
    assert not c.is_assumed("ns/a") and cpu_on(c, "n1") == 1000
    info = c.snapshot().get("n1")
    assert info.requested[PODS] == 1 and info.pods["ns/a"].pod is bound  # the informer's pod is kept
    with pytest.raises(CacheError):
        c.forget_pod(p)  # no longer assumed


def test_forget_undoes_the_assumption() -> None:
    c = SchedulerCache()
    c.add_node(node("n1"))
    p = pod("a", "n1")
    c.assume_pod(p)
    c.forget_pod(p)
    assert cpu_on(c, "n1") == 0 and c.pod_count() == 0
    c.assume_pod(p)  # may be assumed again (retry)
    assert cpu_on(c, "n1") == 1000


def test_confirmed_on_another_node_moves_it() -> None:
    c = SchedulerCache()
    c.add_node(node("n1"))
    c.add_node(node("n2"))
    c.assume_pod(pod("a", "n1"))
    c.add_pod(pod("a", "n2"))
    assert cpu_on(c, "n1") == 0 and cpu_on(c, "n2") == 1000


@pytest.mark.parametrize("ttl,finished,after,expired", [
    (30.0, True, 31.0, True),     # binding done, never confirmed: dropped
    (30.0, True, 29.0, False),    # not yet
    (30.0, False, 1000.0, False),  # binding still running: never expires
    (0.0, True, 1e9, False),      # ttl 0: never (upstream 1.32's default)
])
def test_assumed_pod_expiry(ttl: float, finished: bool, after: float, expired: bool) -> None:
    now = [100.0]
    c = SchedulerCache(ttl=ttl, clock=lambda: now[0])
    c.add_node(node("n1"))
    p = pod("a", "n1")
    c.assume_pod(p)
    if finished:
        c.finish_binding(p)
    now[0] += after
    assert (c.cleanup_expired() == ["ns/a"]) is expired
    assert cpu_on(c, "n1") == (0 if expired else 1000)


def test_expired_pod_added_later_counts_again() -> None:
    now = [0.0]
    c = SchedulerCache(ttl=1.0, clock=lambda: now[0])
    c.add_node(node("n1"))
    p = pod("a", "n1")
    c.assume_pod(p)
    c.finish_binding(p)
    now[0] = 5.0
    c.cleanup_expired()
    c.add_pod(p)
    assert cpu_on(c, "n1") == 1000 and not c.is_assumed("ns/a")


def test_update_and_remove_pod() -> None:
    c = SchedulerCache()
    c.add_node(node("n1"))
    c.add_pod(pod("a", "n1", cpu="1"))
    c.update_pod(pod("a", "n1", cpu="1"), pod("a", "n1", cpu="2"))
    assert cpu_on(c, "n1") == 2000
    c.remove_pod(pod("a", "n1"))
    assert cpu_on(c, "n1") == 0 and c.pod_count() == 0
    c.remove_pod(pod("a", "n1"))  # twice is harmless


def test_terminated_pods_do_not_count() -> None:
    c = SchedulerCache()
    c.add_node(node("n1"))
    c.add_pod(pod("done", "n1", phase="Succeeded"))
    c.add_pod(pod("failed", "n1", phase="Failed"))
    c.add_pod(pod("running", "n1", phase="Running"))
    assert cpu_on(c, "n1") == 1000 and c.snapshot().get("n1").requested[PODS] == 1
    c.update_pod(pod("running", "n1", phase="Running"), pod("running", "n1", phase="Succeeded"))
    assert cpu_on(c, "n1") == 0 and c.snapshot().get("n1").pods == {}


def test_pods_on_unknown_nodes_wait_for_the_node() -> None:
    c = SchedulerCache()
    c.add_pod(pod("early", "n9"))
    assert c.snapshot().get("n9") is None and len(c.snapshot()) == 0
    c.add_node(node("n9"))
    assert cpu_on(c, "n9") == 1000


def test_node_removal_keeps_its_pods_until_they_go() -> None:
    c = SchedulerCache()
    c.add_node(node("n1"))
    c.add_node(node("n2"))
    c.add_pod(pod("a", "n1"))
    c.remove_node(node("n1"))
    snap = c.snapshot()
    assert [i.name for i in snap.node_infos] == ["n2"] and snap.get("n1") is None
    c.add_node(node("n1"))  # back again: its pod is still there
    assert cpu_on(c, "n1") == 1000
    c.remove_node(node("n1"))
    c.remove_pod(pod("a", "n1"))
    c.add_node(node("n1"))
    assert cpu_on(c, "n1") == 0


def test_update_node_changes_allocatable_and_labels() -> None:
    c = SchedulerCache()
    c.add_node(node("n1", cpu="4"))
    c.add_pod(pod("a", "n1"))
    c.update_node(node("n1"), node("n1", cpu="8", labels={"zone": "b"}))
    info = c.snapshot().get("n1")
    assert info.allocatable[CPU] == 8000 and info.labels == {"zone": "b"} and info.requested[CPU] == 1000


def test_snapshot_reuses_unchanged_node_infos_in_a_stable_order() -> None:
    c = SchedulerCache()
    for i in range(5):
        c.add_node(node(f"n{i}"))
    first = c.snapshot()
    before = list(first.node_infos)
    assert [i.name for i in before] == ["n0", "n1", "n2", "n3", "n4"]
    c.assume_pod(pod("a", "n2"))
    second = c.snapshot()
    after = list(second.node_infos)
    assert [i.name for i in after] == ["n0", "n1", "n2", "n3", "n4"]
    for i in (0, 1, 3, 4):
        assert after[i] is before[i]
    assert after[2] is not before[2] and after[2].requested[CPU] == 1000
    assert before[2].requested.get(CPU, 0) == 0  # the old clone was not changed
    assert second.get("n2") is after[2]
    assert c.snapshot().node_infos[2] is after[2]  # nothing changed: nothing re-cloned
    assert after[2] is not c.node_info("n2")  # the cache's own NodeInfo is never handed out


def test_snapshot_tracks_nodes_with_anti_affinity_pods() -> None:
    c = SchedulerCache()
    for i in range(3):
        c.add_node(node(f"n{i}"))
    assert c.snapshot().with_required_anti_affinity() == []
    c.add_pod(pod("a", "n1", anti=True))
    snap = c.snapshot()
    assert [i.name for i in snap.with_required_anti_affinity()] == ["n1"]
    assert [i.name for i in snap.with_affinity()] == ["n1"]
    assert snap.with_affinity()[0] is snap.get("n1")
    c.add_pod(pod("b", "n1"))  # same node changes: the list holds the new clone
    snap = c.snapshot()
    assert snap.with_affinity()[0] is snap.get("n1")
    c.remove_pod(pod("a", "n1"))
    assert c.snapshot().with_required_anti_affinity() == [] and c.snapshot().with_affinity() == []


def test_snapshot_after_one_assume_on_5000_nodes_is_cheap() -> None:
    c = SchedulerCache()
    for i in range(5000):
        c.add_node(node(f"n{i:04d}"))
    c.snapshot()
    rounds = 200
    start = time.perf_counter()
    for i in range(rounds):
        c.assume_pod(pod(f"p{i}", f"n{i:04d}"))
        c.snapshot()
    per = (time.perf_counter() - start) / rounds
    assert len(c.snapshot()) == 5000
    assert per < 0.001, f"{per * 1e6:.0f} µs per assume + snapshot"  # O(changed), not O(nodes)
