"""InterPodAffinity's pod index (interpodaffinity_index.py) and table filter: on random
clusters kept by a SchedulerCache (pods coming and going between cycles), PreFilter's
counters and PreScore's topology scores taken from the index equal those taken by scanning
every pod (a plain Snapshot), and ``filter_table`` agrees with ``filter`` on every node."""

from __future__ import annotations

import random

import pytest

from pybernetes.machinery.selectors import label_selector_from_dict
from pybernetes.scheduler.cache import SchedulerCache
from pybernetes.scheduler.framework import CycleState
from pybernetes.scheduler.handle import Handle, Snapshot
from pybernetes.scheduler.plugins.interpodaffinity import (
    PRE_FILTER_STATE_KEY,
    PRE_SCORE_STATE_KEY,
    InterPodAffinity,
)
from pybernetes.scheduler.plugins.interpodaffinity_index import equality_pairs

HOST, ZONE = "kubernetes.io/hostname", "topology.kubernetes.io/zone"
NAMESPACES = [{"metadata": {"name": "a", "labels": {"team": "x"}}},
              {"metadata": {"name": "b", "labels": {"team": "y"}}}]


def node(i: int, rng: random.Random) -> dict:
    labels = {HOST: f"n{i}"}
    if rng.random() < 0.85:
        labels[ZONE] = f"z{rng.randint(0, 2)}"
    return {"metadata": {"name": f"n{i}", "labels": labels},
            "status": {"allocatable": {"cpu": "8", "memory": "8Gi", "pods": "110"}}}


def term(rng: random.Random) -> dict:
    if rng.random() < 0.7:
        selector: dict = {"matchLabels": {"app": rng.choice(["web", "db", "cache"])}}
    elif rng.random() < 0.5:
        selector = {"matchExpressions": [{"key": "app", "operator": "In", "values": ["web", "db"]}]}
    else:
        selector = {"matchExpressions": [{"key": "tier", "operator": "Exists"}]}
    out: dict = {"labelSelector": selector, "topologyKey": rng.choice([HOST, ZONE, ZONE])}
    roll = rng.random()
    if roll < 0.15:
        out["namespaces"] = ["a", "b"]
    elif roll < 0.25:
        out["namespaceSelector"] = {"matchLabels": {"team": "x"}} if rng.random() < 0.5 else {}
    return out


def pod(i: int, rng: random.Random, node_name: str = "") -> dict:
    labels = {"app": rng.choice(["web", "db", "cache"])}
    if rng.random() < 0.3:
        labels["tier"] = "front"
    affinity: dict = {}
    for kind in ("podAffinity", "podAntiAffinity"):
        if rng.random() < 0.35:
            section: dict = {}
            if rng.random() < 0.6:
                section["requiredDuringSchedulingIgnoredDuringExecution"] = [term(rng)
                                                                             for _ in range(rng.randint(1, 2))]
            if rng.random() < 0.6:
                section["preferredDuringSchedulingIgnoredDuringExecution"] = [
                    {"weight": rng.randint(1, 100), "podAffinityTerm": term(rng)}]
            affinity[kind] = section
    spec: dict = {"containers": [{"name": "c", "image": "x"}]}
    if affinity:
        spec["affinity"] = affinity
    if node_name:
        spec["nodeName"] = node_name
    return {"metadata": {"name": f"p{i}", "namespace": rng.choice(["a", "a", "b"]), "uid": f"u{i}",
                         "labels": labels}, "spec": spec}


def test_equality_pairs_of_selectors() -> None:
    assert equality_pairs(label_selector_from_dict({"matchLabels": {"a": "1"}})) == [("a", "1")]
    assert equality_pairs(label_selector_from_dict(
        {"matchExpressions": [{"key": "a", "operator": "In", "values": ["1", "2"]}]})) == [("a", "1"), ("a", "2")]
    assert equality_pairs(label_selector_from_dict(
        {"matchExpressions": [{"key": "a", "operator": "Exists"}]})) is None
    assert equality_pairs(label_selector_from_dict(None, nil_matches_nothing=True)) == []


@pytest.mark.parametrize("seed", range(10))
def test_the_index_gives_what_a_scan_gives(seed: int) -> None:
    rng = random.Random(seed)
    cache = SchedulerCache()
    names = [f"n{i}" for i in range(rng.choice([4, 25]))]
    for i in range(len(names)):
        cache.add_node(node(i, rng))
    handle = Handle(objects={"v1/namespaces": NAMESPACES})
    plugin = InterPodAffinity({"hardPodAffinityWeight": rng.choice([0, 1, 5])}, handle)
    placed: list[dict] = []
    compared = 0
    for k in range(60):
        snapshot = cache.snapshot()
        handle.snapshot = snapshot
        infos = snapshot.node_infos
        incoming = pod(10_000 + k, rng)
        state = CycleState()
        _, status = plugin.pre_filter(state, incoming, infos)
        scan_handle = Handle(Snapshot(list(infos)), objects={"v1/namespaces": NAMESPACES})
        scan = InterPodAffinity(plugin.args, scan_handle)
        scan_state = CycleState()
        _, scan_status = scan.pre_filter(scan_state, incoming, scan_handle.snapshot.node_infos)
        assert status.code == scan_status.code
        if not status.code:
            s, t = state.read(PRE_FILTER_STATE_KEY), scan_state.read(PRE_FILTER_STATE_KEY)
            assert s.existing_anti_affinity_counts == t.existing_anti_affinity_counts
            assert s.affinity_counts == t.affinity_counts
            assert s.anti_affinity_counts == t.anti_affinity_counts
            verdict = plugin.filter_table(state, incoming, snapshot.table)
            per_node = [not plugin.filter(state, incoming, info).code for info in infos]
            assert verdict.tolist() == per_node
            compared += 1
        status = plugin.pre_score(state, incoming, infos)
        scan_status = scan.pre_score(scan_state, incoming, scan_handle.snapshot.node_infos)
        assert status.code == scan_status.code
        if not status.code:
            assert state.read(PRE_SCORE_STATE_KEY).topology_score == \
                scan_state.read(PRE_SCORE_STATE_KEY).topology_score
            compared += 1
        # the cluster changes between cycles: pods come, and some go
        new = pod(k, rng, rng.choice(names))
        cache.add_pod(new)
        placed.append(new)
        if placed and rng.random() < 0.2:
            cache.remove_pod(placed.pop(rng.randrange(len(placed))))
        if rng.random() < 0.15:  # a node is relabelled (moves zone): its pods count elsewhere
            i = rng.randrange(len(names))
            cache.update_node(None, node(i, rng))
    assert compared > 20
