"""PodTopologySpread's incremental per-domain counting: after any sequence of node and pod
changes, the cached totals equal a count from scratch."""

from __future__ import annotations

import random

from pybernetes.machinery.selectors import label_selector_from_dict
from pybernetes.scheduler.nodeinfo import node_info_of, pod_entry
from pybernetes.scheduler.plugins.podtopologyspread_counts import CountMemo, DomainCounter, count_matching

ZONE = "topology.kubernetes.io/zone"
SELECTOR = label_selector_from_dict({"matchLabels": {"app": "web"}})


def _node(name: str, zone: str | None) -> dict:
    labels = {"kubernetes.io/hostname": name}
    if zone is not None:
        labels[ZONE] = zone
    return {"metadata": {"name": name, "labels": labels}, "status": {"allocatable": {"pods": "110"}}}


def _pod(name: str, app: str = "web", ns: str = "default", deleting: bool = False) -> dict:
    meta = {"name": name, "namespace": ns, "labels": {"app": app}}
    if deleting:
        meta["deletionTimestamp"] = "2024-01-01T00:00:00Z"
    return {"metadata": meta, "spec": {"containers": [{"name": "c"}]}}


def _from_scratch(nodes: list, required: tuple[str, ...]) -> dict[str, int]:
    totals: dict[str, int] = {}
    for info in nodes:
        labels = info.labels
        if not all(k in labels for k in required):
            continue
        value = labels.get(ZONE, "")
        totals[value] = totals.get(value, 0) + count_matching(info, SELECTOR, "default")
    return totals


def test_count_matching_skips_other_namespaces_deleting_and_unmatched() -> None:
    info = node_info_of(_node("a", "z1"), [_pod("p1"), _pod("p2", app="db"), _pod("p3", ns="other"),
                                            _pod("p4", deleting=True), _pod("p5")])
    assert count_matching(info, SELECTOR, "default") == 2


def test_incremental_refresh_matches_a_full_count() -> None:
    rng = random.Random(4)
    zones = ["z1", "z2", "z3", None]
    nodes = [node_info_of(_node(f"n{i}", rng.choice(zones)), [_pod(f"p{i}-{j}") for j in range(rng.randint(0, 3))])
             for i in range(40)]
    memo = CountMemo()
    for required in ((ZONE,), ()):
        counter = DomainCounter("default", SELECTOR, ZONE, required)
        serial = 0
        for _ in range(60):
            action = rng.random()
            i = rng.randrange(len(nodes))
            serial += 1
            if action < 0.3:  # a pod placed on a node, in place (generation bump)
                nodes[i].add_entry(f"default/x{serial}", pod_entry(_pod(f"x{serial}", rng.choice(["web", "db"]))))
            elif action < 0.5 and nodes[i].pods:  # a pod leaves, on a clone (new object)
                clone = nodes[i].clone()
                clone.remove(next(iter(clone.pods)))
                nodes[i] = clone
            elif action < 0.65:  # node relabelled: a new NodeInfo with the same pods
                nodes[i] = node_info_of(_node(nodes[i].name, rng.choice(zones)), nodes[i].pod_list())
            elif action < 0.75:  # node removed
                nodes.pop(i)
            elif action < 0.85:  # node added
                nodes.append(node_info_of(_node(f"new{serial}", rng.choice(zones)), [_pod(f"np{serial}")]))
            got = counter.refresh(nodes, memo)
            assert got == _from_scratch(nodes, required), (serial, action)


def test_memo_recounts_a_node_whose_pods_changed() -> None:
    memo = CountMemo()
    info = node_info_of(_node("a", "z1"), [_pod("p1")])
    table = memo.table("default", SELECTOR)
    assert CountMemo.count(table, info, SELECTOR, "default") == 1
    info.add_entry("default/p2", pod_entry(_pod("p2")))
    assert CountMemo.count(table, info, SELECTOR, "default") == 2
    # Another NodeInfo of the same name, same generation, other pods: not confused.
    other = node_info_of(_node("a", "z1"), [_pod("q1", app="db"), _pod("q2", app="db")])
    other.generation = info.generation
    assert CountMemo.count(table, other, SELECTOR, "default") == 0
