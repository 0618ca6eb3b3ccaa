"""The node table (scheduler/nodetable.py) and the plugins' table forms.

- The cache's snapshot keeps its table in step with its node infos through adds, pod
  assumptions, node updates (taints, cordon, images, extended resources) and removals.
- Every plugin's ``filter_table`` / ``score_table`` agrees with its per-node ``filter`` /
  ``score`` (+ NormalizeScore) on randomly generated clusters and pods, for every scoring
  strategy.
- The runtime's ``table_statuses`` gives each rejected node the status the per-node chain
  would give.
"""

from __future__ import annotations

import random

import numpy as np
import pytest

from pybernetes.scheduler import registry
from pybernetes.scheduler.cache import SchedulerCache
from pybernetes.scheduler.config import default_config
from pybernetes.scheduler.framework import CycleState
from pybernetes.scheduler.handle import Handle, Snapshot
from pybernetes.scheduler.nodeinfo import node_info_of
from pybernetes.scheduler.nodetable import BASE_RESOURCES, NodeTable
from pybernetes.scheduler.plugins.imagelocality import ImageLocality
from pybernetes.scheduler.plugins.nodename import NodeName
from pybernetes.scheduler.plugins.nodeports import NodePorts
from pybernetes.scheduler.plugins.noderesourcesbalancedallocation import NodeResourcesBalancedAllocation
from pybernetes.scheduler.plugins.noderesourcesfit import NodeResourcesFit
from pybernetes.scheduler.plugins.nodeunschedulable import NodeUnschedulable
from pybernetes.scheduler.plugins.tainttoleration import TaintToleration
from pybernetes.scheduler.queue import SchedulingQueue
from pybernetes.scheduler.runtime import Framework
from pybernetes.scheduler.scheduler import Scheduler

EXT = "example.com/gpu"
IMAGES = ["busybox", "docker.io/library/nginx:1.25", "registry.k8s.io/pause:3.10", "quay.io/app/big:v1"]


def rand_node(rng: random.Random, i: int) -> dict:
    alloc = {"cpu": str(rng.choice([1, 2, 4, 8])), "memory": f"{rng.choice([1, 4, 32])}Gi",
             "pods": str(rng.choice([2, 5, 110]))}
    if rng.random() < 0.3:
        alloc["ephemeral-storage"] = f"{rng.choice([1, 10])}Gi"
    if rng.random() < 0.3:
        alloc[EXT] = str(rng.choice([0, 1, 4]))
    if rng.random() < 0.1:
        del alloc["memory"]
    spec: dict = {}
    if rng.random() < 0.2:
        spec["unschedulable"] = True
    if rng.random() < 0.3:
        spec["taints"] = [{"key": rng.choice(["a", "b"]), "value": rng.choice(["1", "2"]),
                           "effect": rng.choice(["NoSchedule", "PreferNoSchedule", "NoExecute"])}
                          for _ in range(rng.randint(1, 3))]
    status: dict = {"allocatable": alloc, "capacity": alloc}
    if rng.random() < 0.3:
        status["images"] = [{"names": [rng.choice(IMAGES)], "sizeBytes": rng.choice([10, 300, 900]) * 2**20}
                            for _ in range(rng.randint(1, 2))]
    name = f"n{i}"
    labels = {"kubernetes.io/hostname": name}
    if rng.random() < 0.9:
        labels["topology.kubernetes.io/zone"] = f"z{rng.randint(0, 3)}"
    return {"metadata": {"name": name, "labels": labels}, "spec": spec, "status": status}


def rand_pod(rng: random.Random, i: int, node: str = "") -> dict:
    requests: dict = {}
    if rng.random() < 0.8:
        requests["cpu"] = rng.choice(["100m", "500m", "1", "3"])
    if rng.random() < 0.7:
        requests["memory"] = rng.choice(["100Mi", "1Gi", "20Gi"])
    if rng.random() < 0.2:
        requests["ephemeral-storage"] = "2Gi"
    if rng.random() < 0.2:
        requests[EXT] = str(rng.choice([1, 2]))
    container: dict = {"name": "c", "image": rng.choice(IMAGES), "resources": {"requests": requests}}
    if rng.random() < 0.2:
        container["ports"] = [{"containerPort": 80, "hostPort": rng.choice([80, 8080])}]
    spec: dict = {"containers": [container]}
    if rng.random() < 0.3:
        spec["tolerations"] = [{"key": rng.choice(["a", "b"]), "operator": "Exists"}]
    if rng.random() < 0.1:
        spec["tolerations"] = [*spec.get("tolerations", []), {"key": "node.kubernetes.io/unschedulable",
                                                              "operator": "Exists", "effect": "NoSchedule"}]
    if node:
        spec["nodeName"] = node
    labels = {"app": rng.choice(["web", "db"])}
    return {"metadata": {"name": f"p{i}", "namespace": "ns", "uid": f"u{i}", "labels": labels}, "spec": spec}


def rand_cluster(rng: random.Random, nodes: int = 40) -> list:
    infos = []
    for i in range(nodes):
        node = rand_node(rng, i)
        pods = [rand_pod(rng, i * 100 + k, node["metadata"]["name"]) for k in range(rng.randint(0, 3))]
        infos.append(node_info_of(node, pods))
    return infos


def assert_same_table(table: NodeTable, infos: list) -> None:
    """Every column of ``table`` describes ``infos`` row by row."""
    assert table.n == len(infos)
    assert [info.name for info in table.infos] == [info.name for info in infos]
    resources = set(BASE_RESOURCES)
    for info in infos:
        resources |= info.allocatable.keys() | info.requested.keys()
    for res in resources:
        assert table.alloc(res).tolist() == [info.allocatable.get(res, 0) for info in infos], res
        assert table.requested(res).tolist() == [info.requested.get(res, 0) for info in infos], res
    assert table.nz_cpu.tolist() == [info.non_zero_cpu for info in infos]
    assert table.nz_memory.tolist() == [info.non_zero_memory for info in infos]
    assert table.unschedulable.tolist() == [bool((i.node.get("spec") or {}).get("unschedulable")) for i in infos]
    assert table.tainted_rows.tolist() == [r for r, i in enumerate(infos) if (i.node.get("spec") or {}).get("taints")]
    assert table.port_rows.tolist() == [r for r, i in enumerate(infos) if i.used_ports]
    assert table.image_rows.tolist() == [r for r, i in enumerate(infos) if i.images]
    assert table.row_of == {info.name: r for r, info in enumerate(infos)}
    for key in ("topology.kubernetes.io/zone", "kubernetes.io/hostname"):
        codes, index = table.label_codes(key)
        names = {code: value for value, code in index.items()}
        assert [names.get(int(c)) for c in codes] == [info.labels.get(key) for info in infos]


def test_a_table_of_infos_has_their_columns() -> None:
    infos = rand_cluster(random.Random(1), 100)  # grows past the initial capacity
    assert_same_table(NodeTable.of(infos), infos)
    assert NodeTable.of([]).alloc("cpu").tolist() == []
    table = NodeTable.of(infos[:3])
    table.label_codes("topology.kubernetes.io/zone")  # tracked from now on, through growth
    for info in infos[3:]:
        table.append(info)
    assert_same_table(table, infos)


def test_the_cache_keeps_its_snapshot_table_in_step() -> None:
    rng = random.Random(7)
    cache = SchedulerCache()
    nodes = {}
    for step in range(400):
        action = rng.random()
        if action < 0.2 or not nodes:
            node = rand_node(rng, rng.randint(0, 60))
            nodes[node["metadata"]["name"]] = node
            cache.add_node(node)
        elif action < 0.35:
            name = rng.choice(sorted(nodes))
            node = rand_node(rng, int(name[1:]))
            nodes[name] = node
            cache.update_node(None, node)
        elif action < 0.4:
            name = rng.choice(sorted(nodes))
            cache.remove_node(nodes.pop(name))
        else:
            pod = rand_pod(rng, step, rng.choice(sorted(nodes)))
            if rng.random() < 0.5:
                cache.assume_pod(pod)
            else:
                cache.add_pod(pod)
        if rng.random() < 0.3:
            snap = cache.snapshot()
            versions = snap.table.versions.copy()
            assert_same_table(snap.table, snap.node_infos)
            assert (cache.snapshot().table.versions == versions).all()  # nothing changed: same stamps
    snap = cache.snapshot()
    assert_same_table(snap.table, snap.node_infos)


SCORING = [
    {},
    {"scoringStrategy": {"type": "MostAllocated", "resources": [{"name": "cpu", "weight": 2},
                                                                {"name": "memory", "weight": 1},
                                                                {"name": EXT, "weight": 3}]}},
    {"scoringStrategy": {"type": "RequestedToCapacityRatio",
                         "resources": [{"name": "cpu", "weight": 1}, {"name": "ephemeral-storage", "weight": 2}],
                         "requestedToCapacityRatio": {"shape": [{"utilization": 0, "score": 0},
                                                                {"utilization": 60, "score": 3},
                                                                {"utilization": 100, "score": 10}]}}},
    {"scoringStrategy": {"type": "LeastAllocated", "resources": [{"name": "cpu", "weight": 1},
                                                                 {"name": "memory", "weight": 5},
                                                                 {"name": "ephemeral-storage", "weight": 1}]}},
]


def _plugins(handle: Handle) -> list:
    out = [NodeUnschedulable({}, handle), NodeName({}, handle), TaintToleration({}, handle),
           NodePorts({}, handle), ImageLocality({}, handle),
           NodeResourcesBalancedAllocation({}, handle),
           NodeResourcesBalancedAllocation({"resources": [{"name": "cpu"}, {"name": "memory"},
                                                          {"name": "ephemeral-storage"}]}, handle)]
    out += [NodeResourcesFit(args, handle) for args in SCORING]
    return out


@pytest.mark.parametrize("seed", range(12))
def test_table_forms_agree_with_the_per_node_forms(seed: int) -> None:
    rng = random.Random(seed)
    infos = rand_cluster(rng, rng.choice([5, 40, 120]))
    snapshot = Snapshot(infos)
    handle = Handle(snapshot)
    table = snapshot.table
    compared_filters = compared_scores = 0
    for plugin in _plugins(handle):
        for k in range(15):
            pod = rand_pod(rng, 10_000 + k, rng.choice(["", "", "", infos[0].name, "nowhere"]))
            state = CycleState()
            if hasattr(plugin, "pre_filter"):
                _, status = plugin.pre_filter(state, pod, infos)
                if status.is_skip():
                    continue
                assert status.is_success()
            if hasattr(plugin, "filter_table"):
                verdict = plugin.filter_table(state, pod, table)
                per_node = [not plugin.filter(state, pod, info).code for info in infos]
                got = [True] * len(infos) if verdict is True else verdict.tolist()
                assert got == per_node, (plugin.name, pod)
                compared_filters += 1
            if hasattr(plugin, "score_table"):
                if hasattr(plugin, "pre_score"):
                    status = plugin.pre_score(state, pod, infos)
                    if status.is_skip():  # every node would score the same (no taints, no images)
                        continue
                    assert status.is_success()
                rows = np.array(sorted(rng.sample(range(len(infos)), rng.randint(1, len(infos)))), np.intp)
                chosen = [infos[r] for r in rows.tolist()]
                values = plugin.score_table(state, pod, table, rows)
                if values is None:  # declined for this pod: the per-node form scores it
                    continue
                per_node = {info.name: plugin.score(state, pod, info)[0] for info in chosen}
                if hasattr(plugin, "normalize_score"):
                    plugin.normalize_score(state, pod, per_node)
                assert values.tolist() == [per_node[info.name] for info in chosen], (plugin.name, pod)
                compared_scores += 1
    assert compared_filters > 20 and compared_scores > 20


def test_balanced_allocation_declines_when_a_node_lacks_a_resource() -> None:
    infos = [node_info_of({"metadata": {"name": "a"}, "status": {"allocatable": {"cpu": "1", "memory": "1Gi"}}}),
             node_info_of({"metadata": {"name": "b"}, "status": {"allocatable": {"cpu": "1"}}})]
    plugin = NodeResourcesBalancedAllocation({}, Handle(Snapshot(infos)))
    state = CycleState()
    pod = rand_pod(random.Random(0), 1)
    plugin.pre_score(state, pod, infos)
    assert plugin.score_table(state, pod, Snapshot(infos).table, np.array([0, 1], np.intp)) is None


@pytest.mark.parametrize("seed", range(6))
def test_table_statuses_match_the_per_node_chain(seed: int) -> None:
    rng = random.Random(100 + seed)
    infos = rand_cluster(rng, 60)
    snapshot = Snapshot(infos)
    handle = Handle(snapshot)
    fw = Framework(default_config().profiles[0], registry.load, handle)
    for k in range(20):
        pod = rand_pod(rng, 20_000 + k)
        state = CycleState()
        allowed, status = fw.run_pre_filter(state, pod, infos)
        assert status.is_success() and allowed is None
        result = fw.run_filter_table(state, pod, snapshot.table)
        assert result.error is None and not result.per_node
        per_node = {info.name: fw.run_filter(state, pod, info) for info in infos}
        passing = [info.name for info in infos if not per_node[info.name].code]
        table_passing = [info.name for r, info in enumerate(infos)
                         if result.passing is None or result.passing[r]]
        assert table_passing == passing
        statuses = fw.table_statuses(state, pod, snapshot.table, result)
        assert statuses == {name: s for name, s in per_node.items() if s.code}


def spread_pod(rng: random.Random, i: int) -> dict:
    pod = rand_pod(rng, i)
    constraints = [{"maxSkew": rng.choice([1, 2]), "topologyKey": "topology.kubernetes.io/zone",
                    "whenUnsatisfiable": "DoNotSchedule", "labelSelector": {"matchLabels": {"app": "web"}}}]
    if rng.random() < 0.5:
        constraints.append({"maxSkew": 1, "topologyKey": "kubernetes.io/hostname", "whenUnsatisfiable":
                            "DoNotSchedule", "labelSelector": {"matchLabels": {"app": rng.choice(["web", "db"])}}})
    if rng.random() < 0.3:
        constraints[0]["minDomains"] = rng.choice([2, 6])
    pod["spec"]["topologySpreadConstraints"] = constraints
    return pod


@pytest.mark.parametrize("seed", range(8))
def test_topology_spread_table_filter_agrees_with_the_per_node_filter(seed: int) -> None:
    from pybernetes.scheduler.plugins.podtopologyspread import PodTopologySpread
    rng = random.Random(300 + seed)
    cache = SchedulerCache()
    for i in range(rng.choice([8, 60])):
        cache.add_node(rand_node(rng, i))
    names = [info.name for info in cache.snapshot().node_infos]
    handle = Handle()
    plugin = PodTopologySpread({}, handle)
    for k in range(40):  # pods land between checks: the counts follow the changed rows
        snapshot = cache.snapshot()
        handle.snapshot = snapshot
        infos = snapshot.node_infos
        pod = spread_pod(rng, 30_000 + k)
        state = CycleState()
        _, status = plugin.pre_filter(state, pod, infos)
        assert status.is_success(), status
        verdict = plugin.filter_table(state, pod, snapshot.table)
        per_node = [not plugin.filter(state, pod, info).code for info in infos]
        assert (verdict.tolist() if verdict is not True else [True] * len(infos)) == per_node
        fresh = PodTopologySpread({}, Handle(Snapshot(list(infos))))  # counted from scratch
        fresh_state = CycleState()
        fresh.pre_filter(fresh_state, pod, list(infos))
        assert [not fresh.filter(fresh_state, pod, info).code for info in infos] == per_node
        placed = {**pod, "spec": {**pod["spec"], "nodeName": rng.choice(names)}}
        cache.add_pod(placed)


class _Cycle:
    """The parts of a Scheduler that Filter uses, around a cache and a queue (no API)."""

    _next_start = 0
    _find_feasible = Scheduler._find_feasible
    _filter_with_nominated = Scheduler._filter_with_nominated
    _entry_of = Scheduler._entry_of
    _candidate_status = Scheduler._candidate_status

    def __init__(self, config) -> None:
        self.config = config
        self.queue = SchedulingQueue()
        self._entries: dict = {}
        self.by_node = 0  # cycles that fell back to filtering every node node by node

    def _statuses_by_node(self, *args):
        self.by_node += 1
        return Scheduler._statuses_by_node(self, *args)


@pytest.mark.parametrize("seed", range(6))
def test_statuses_when_nothing_fits_match_the_node_by_node_chain(seed: int) -> None:
    """With pods nominated to nodes (their room kept) and with a PreFilter node set, the
    statuses built from the table forms equal those of the node-by-node chain."""
    rng = random.Random(500 + seed)
    cache = SchedulerCache()
    infos = rand_cluster(rng, 30)
    for info in infos:
        cache.add_node(info.node)
        for entry in info.pods.values():
            cache.add_pod(entry.pod)
    snapshot = cache.snapshot()
    handle = Handle(snapshot)
    config = default_config()
    fw = Framework(config.profiles[0], registry.load, handle)
    cycle = _Cycle(config)
    names = [info.name for info in snapshot.node_infos]
    for k in range(12):  # pods nominated here and there, big enough to take the room
        nominee = rand_pod(rng, 40_000 + k)
        nominee["spec"]["priority"] = 1000
        nominee["spec"]["containers"][0]["resources"]["requests"] = {"cpu": "8", "memory": "30Gi"}
        cycle.queue.add_nominated(nominee, rng.choice(names))
    checked = 0
    for k in range(40):
        pod = rand_pod(rng, 50_000 + k)
        if k % 2:  # big: fits few nodes, if any once the nominated pods' room is kept
            pod["spec"]["containers"][0]["resources"]["requests"]["cpu"] = "6"
        allowed = frozenset(rng.sample(names, 20)) if rng.random() < 0.3 else None
        state = CycleState()
        _, status = fw.run_pre_filter(state, pod, snapshot.node_infos)
        assert status.is_success()
        feasible, _rows, statuses = cycle._find_feasible(fw, state, pod, snapshot, allowed)
        if feasible:
            continue
        assert cycle.by_node == 0  # the table forms told every status
        _, _, expected = Scheduler._statuses_by_node(cycle, fw, state, pod, snapshot.node_infos, allowed)
        assert statuses == expected
        checked += 1
    assert checked >= 5


def test_a_pod_nominated_to_a_node_that_fits_it_goes_there_alone() -> None:
    cache = SchedulerCache()
    for i in range(20):
        cache.add_node({"metadata": {"name": f"n{i}"}, "status": {"allocatable": {"cpu": "4", "memory": "8Gi",
                                                                                   "pods": "10"}}})
    snapshot = cache.snapshot()
    config = default_config()
    fw = Framework(config.profiles[0], registry.load, Handle(snapshot))
    cycle = _Cycle(config)
    pod = {"metadata": {"name": "p", "namespace": "ns", "uid": "u"}, "status": {"nominatedNodeName": "n7"},
           "spec": {"containers": [{"name": "c", "image": "x", "resources": {"requests": {"cpu": "1"}}}]}}
    cycle.queue.add_nominated(pod, "n7")
    state = CycleState()
    fw.run_pre_filter(state, pod, snapshot.node_infos)
    feasible, rows, _ = cycle._find_feasible(fw, state, pod, snapshot, None)
    assert [info.name for info in feasible] == ["n7"] and rows.tolist() == [7]
    # where it no longer fits (a bigger pod took the room), every node is considered again
    cache.add_pod({"metadata": {"name": "big", "namespace": "ns"},
                   "spec": {"nodeName": "n7", "containers": [{"name": "c", "image": "x",
                                                             "resources": {"requests": {"cpu": "4"}}}]}})
    snapshot = cache.snapshot()
    state = CycleState()
    fw.run_pre_filter(state, pod, snapshot.node_infos)
    feasible, _, _ = cycle._find_feasible(fw, state, pod, snapshot, None)
    assert len(feasible) == 19 and "n7" not in [info.name for info in feasible]


def test_score_plugins_skip_when_every_node_would_score_the_same() -> None:
    plain = [node_info_of({"metadata": {"name": f"n{i}"}, "status": {"allocatable": {"cpu": "1"}}}) for i in range(3)]
    pod = rand_pod(random.Random(1), 1)
    for plugin_class in (ImageLocality, TaintToleration):
        assert plugin_class({}, Handle(Snapshot(plain))).pre_score(CycleState(), pod, plain).is_skip()
    tainted = plain + [node_info_of({"metadata": {"name": "t"}, "spec": {"taints": [
        {"key": "a", "effect": "PreferNoSchedule"}]}, "status": {"allocatable": {"cpu": "1"}}})]
    assert TaintToleration({}, Handle(Snapshot(tainted))).pre_score(CycleState(), pod, tainted).is_success()
    imaged = plain + [node_info_of({"metadata": {"name": "i"}, "status": {"allocatable": {"cpu": "1"}, "images": [
        {"names": ["busybox:latest"], "sizeBytes": 5 * 2**20}]}})]
    assert ImageLocality({}, Handle(Snapshot(imaged))).pre_score(CycleState(), pod, imaged).is_success()
