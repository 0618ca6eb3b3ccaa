"""DefaultPreemption's dry runs re-run only the filters whose verdict depends on the node's pods
(``Framework.pods_filters``), on the nodes the others let through.  On random clusters they find
exactly the candidates, victims and statuses that re-running every filter finds."""

from __future__ import annotations

import random

import pytest

from pybernetes.scheduler import registry
from pybernetes.scheduler.cache import SchedulerCache
from pybernetes.scheduler.config import Profile, default_config
from pybernetes.scheduler.framework import CycleState
from pybernetes.scheduler.handle import Handle
from pybernetes.scheduler.runtime import TABLE_FILTER_KEY, Framework

ZONE = "topology.kubernetes.io/zone"


def node(i: int, rng: random.Random) -> dict:
    spec: dict = {}
    if rng.random() < 0.2:
        spec["taints"] = [{"key": "dedicated", "value": "x", "effect": "NoSchedule"}]
    return {"metadata": {"name": f"n{i}", "labels": {"kubernetes.io/hostname": f"n{i}", ZONE: f"z{i % 3}"}},
            "spec": spec, "status": {"allocatable": {"cpu": "4", "memory": "8Gi", "pods": "4"}}}


def pod(name: str, rng: random.Random, priority: int, node_name: str = "", cpu: str = "1") -> dict:
    spec: dict = {"priority": priority, "containers": [{"name": "c", "image": "x",
                                                         "resources": {"requests": {"cpu": cpu}}}]}
    if node_name:
        spec["nodeName"] = node_name
    if rng.random() < 0.2:
        spec["tolerations"] = [{"key": "dedicated", "operator": "Exists"}]
    if not node_name and rng.random() < 0.3:
        spec["volumes"] = [{"name": "data", "persistentVolumeClaim": {"claimName": "zoned"}}]
    if not node_name and rng.random() < 0.2:
        spec["nodeSelector"] = {ZONE: "z1"}
    return {"metadata": {"name": name, "namespace": "ns", "uid": name, "labels": {"app": "a"}},
            "spec": spec, "status": {"startTime": f"2026-01-01T00:00:{rng.randint(10, 59)}Z"}}


STORAGE = {
    "v1/persistentvolumeclaims": [{"metadata": {"name": "zoned", "namespace": "ns"},
                                   "spec": {"volumeName": "pv-z2", "storageClassName": ""},
                                   "status": {"phase": "Bound"}}],
    "v1/persistentvolumes": [{"metadata": {"name": "pv-z2", "labels": {ZONE: "z2"}},
                              "spec": {"storageClassName": "", "claimRef": {"namespace": "ns", "name": "zoned"}}}],
}


@pytest.mark.parametrize("seed", range(8))
def test_dry_runs_on_the_pod_dependent_filters_find_what_all_filters_find(seed: int) -> None:
    rng = random.Random(seed)
    cache = SchedulerCache()
    for i in range(24):
        cache.add_node(node(i, rng))
        for k in range(rng.randint(1, 3)):
            cache.add_pod(pod(f"low-{i}-{k}", rng, rng.choice([0, 5, 50]), f"n{i}", rng.choice(["1", "2"])))
    snapshot = cache.snapshot()
    handle = Handle(snapshot, objects=STORAGE)
    fw = Framework(default_config().profiles[0], registry.load, handle)
    preemption = fw.plugins["DefaultPreemption"]
    compared = 0
    for k in range(12):
        incoming = pod(f"high-{k}", rng, 10, cpu=rng.choice(["3", "4"]))
        state = CycleState()
        _, status = fw.run_pre_filter(state, incoming, snapshot.node_infos)
        if not status.is_success():
            continue
        result = fw.run_filter_table(state, incoming, snapshot.table)
        state.write(TABLE_FILTER_KEY, result)
        statuses = {info.name: s for info in snapshot.node_infos
                    if (s := fw.run_filter(state, incoming, info)).code}
        runs = []
        for keep_plan in (True, False):
            if not keep_plan:
                state.delete(TABLE_FILTER_KEY)  # no table verdicts: every filter runs again
            preemption.random = random.Random(k)
            candidates, node_statuses = preemption.find_candidates(state, incoming, list(snapshot.node_infos),
                                                                   statuses)
            runs.append(([(c.node, [v["metadata"]["name"] for v in c.victims], c.pdb_violations)
                          for c in candidates], node_statuses))
        assert runs[0] == runs[1]
        compared += bool(runs[0][0])
    assert compared >= 3


@pytest.mark.parametrize("seed", range(4))
def test_nodes_other_filters_reject_are_not_dry_run_on_the_pod_filters_alone(seed: int) -> None:
    """With NodeResourcesFit ordered before TaintToleration, a tainted node full of pods is
    Unschedulable (fixable by preemption) by its first verdict, but removing pods never lets
    the pod tolerate the taint: it must not become a candidate."""
    rng = random.Random(100 + seed)
    cache = SchedulerCache()
    for i in range(12):
        cache.add_node(node(i, rng))
        cache.add_pod(pod(f"low-{i}", rng, 0, f"n{i}", "4"))
    snapshot = cache.snapshot()
    handle = Handle(snapshot)
    profile = Profile("default-scheduler", 0, {
        "preFilter": [("NodeResourcesFit", 0)],
        "filter": [("NodeResourcesFit", 0), ("TaintToleration", 0), ("NodeUnschedulable", 0)],
        "postFilter": [("DefaultPreemption", 0)]}, {})
    fw = Framework(profile, registry.load, handle)
    incoming = pod("high", rng, 10, cpu="2")
    incoming["spec"].pop("tolerations", None)
    incoming["spec"].pop("volumes", None)
    incoming["spec"].pop("nodeSelector", None)
    state = CycleState()
    fw.run_pre_filter(state, incoming, snapshot.node_infos)
    state.write(TABLE_FILTER_KEY, fw.run_filter_table(state, incoming, snapshot.table))
    statuses = {info.name: fw.run_filter(state, incoming, info) for info in snapshot.node_infos}
    candidates, _ = fw.plugins["DefaultPreemption"].find_candidates(state, incoming, list(snapshot.node_infos),
                                                                    statuses)
    tainted = {info.name for info in snapshot.node_infos if info.taints}
    assert tainted and candidates
    assert not tainted & {c.node for c in candidates}
