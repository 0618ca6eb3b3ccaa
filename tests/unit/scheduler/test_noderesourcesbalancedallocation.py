"""NodeResourcesBalancedAllocation: (1 - std of the requested fractions) * 100, with the
figures of upstream's table tests."""

from __future__ import annotations

import pytest

from pybernetes.scheduler.framework import CycleState
from pybernetes.scheduler.nodeinfo import node_info_of
from pybernetes.scheduler.plugins.noderesourcesbalancedallocation import NodeResourcesBalancedAllocation


def _node(name: str, cpu_milli: int, memory: int, **extra: str) -> dict:
    alloc = {"cpu": f"{cpu_milli}m", "memory": str(memory), "pods": "32", **extra}
    return {"metadata": {"name": name}, "status": {"allocatable": alloc}}


def _pod(*containers: dict, name: str = "p") -> dict:
    return {
        "metadata": {"name": name, "namespace": "ns"},
        "spec": {"containers": list(containers) or [{"name": "c", "image": "x"}]},
    }


def _c(**requests: str) -> dict:
    return {"name": "c", "image": "x", "resources": {"requests": dict(requests)}}


CPU_ONLY = _pod(_c(cpu="1000m", memory="0"), _c(cpu="2000m", memory="0"), name="cpu-only")
CPU_AND_MEMORY = _pod(_c(cpu="1000m", memory="2000"), _c(cpu="2000m", memory="3000"), name="cpu-and-memory")
CPU_MEMORY_GPU = _pod(
    _c(cpu="1000m", memory="2000"),
    _c(cpu="2000m", memory="3000", **{"nvidia.com/gpu": "3"}),
    name="cpu-memory-gpu",
)
GPU = {"nvidia.com/gpu": "8"}
WITH_GPU = {
    "resources": [
        {"name": "cpu", "weight": 1},
        {"name": "memory", "weight": 1},
        {"name": "nvidia.com/gpu", "weight": 1},
    ]
}


@pytest.mark.parametrize(
    ("args", "pod", "nodes", "want"),
    [
        # upstream: nothing scheduled, differently sized nodes: cpu .75 mem .5 -> 87; .5/.5 -> 100
        ({}, CPU_AND_MEMORY, [(_node("n1", 4000, 10000), []), (_node("n2", 6000, 10000), [])], [87, 100]),
        # upstream: pods scheduled: n1 .6/.25 -> 82; n2 .6/.5 -> 95
        (
            {},
            CPU_AND_MEMORY,
            [(_node("n1", 10000, 20000), [CPU_ONLY]), (_node("n2", 10000, 20000), [CPU_AND_MEMORY])],
            [82, 95],
        ),
        # upstream: differently sized: n1 82; n2 .6/.2 -> 80
        (
            {},
            CPU_AND_MEMORY,
            [(_node("n1", 10000, 20000), [CPU_ONLY]), (_node("n2", 10000, 50000), [CPU_AND_MEMORY])],
            [82, 80],
        ),
        # upstream: requested at node capacity: n1 1/0 -> 50; n2 1/.5 -> 75
        (
            {},
            CPU_ONLY,
            [(_node("n1", 6000, 10000), [CPU_ONLY]), (_node("n2", 6000, 10000), [CPU_AND_MEMORY])],
            [50, 75],
        ),
        # upstream: scalar resource included, three fractions: n1 .857/.125/.5 -> 70; n2 .857/.125/.125 -> 65
        (
            WITH_GPU,
            _pod(_c(memory="0", **{"nvidia.com/gpu": "1"})),
            [
                (_node("n1", 3500, 40000, **GPU), [CPU_MEMORY_GPU]),
                (_node("n2", 3500, 40000, **GPU), [CPU_AND_MEMORY]),
            ],
            [70, 65],
        ),
        # upstream: the pod does not request the scalar resource: it is skipped -> (.857 - .125) / 2 -> 63
        (
            WITH_GPU,
            CPU_AND_MEMORY,
            [(_node("n1", 3500, 40000, **GPU), []), (_node("n2", 3500, 40000), [])],
            [63, 63],
        ),
        # requests, not the non-zero defaults: an empty pod on an empty node is perfectly balanced
        ({}, _pod(), [(_node("n1", 4000, 10000), [])], [100]),
        # one resource only: no deviation
        (
            {"resources": [{"name": "cpu", "weight": 1}]},
            CPU_AND_MEMORY,
            [(_node("n1", 4000, 10000), [])],
            [100],
        ),
    ],
)
def test_scores(args: dict, pod: dict, nodes: list, want: list[int]) -> None:
    plugin = NodeResourcesBalancedAllocation(args)
    infos = [node_info_of(node, pods) for node, pods in nodes]
    state = CycleState()
    assert plugin.pre_score(state, pod, infos).is_success()
    assert [plugin.score(state, pod, info)[0] for info in infos] == want
    # without PreScore the same scores
    assert [plugin.score(CycleState(), pod, info)[0] for info in infos] == want


def test_args() -> None:
    assert NodeResourcesBalancedAllocation.validate_args(NodeResourcesBalancedAllocation.default_args()) == []
    errors = NodeResourcesBalancedAllocation.validate_args(
        {"resources": [{"name": "cpu", "weight": 2}, {"name": "memory", "weight": 1}, {"name": "memory"}]}
    )
    assert errors == [
        "resources[0].weight: Invalid value: 2: must be 1",
        'resources[2].name: Duplicate value: "memory"',
    ]
    assert [r["name"] for r in NodeResourcesBalancedAllocation({}).resources] == ["cpu", "memory"]
