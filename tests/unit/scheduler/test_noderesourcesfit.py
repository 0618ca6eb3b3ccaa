"""NodeResourcesFit: Filter's reasons and the three scoring strategies on crafted nodes and
pods (upstream's semantics and, where noted, the figures of upstream's tests and docs)."""

from __future__ import annotations

import pytest

from pybernetes.scheduler.framework import Code, CycleState, Status
from pybernetes.scheduler.nodeinfo import node_info_of
from pybernetes.scheduler.plugins.noderesourcesfit import NodeResourcesFit, broken_linear

MI = 1024 * 1024


def _node(name: str, cpu: str, memory: str, pods: int = 32, **extra: str) -> dict:
    alloc = {
        "cpu": cpu,
        "memory": memory,
        "pods": str(pods),
        **{k.replace("_", "-"): v for k, v in extra.items()},
    }
    return {"metadata": {"name": name}, "status": {"allocatable": alloc, "capacity": alloc}}


def _pod(*containers: dict, init: list | None = None, overhead: dict | None = None, name: str = "p") -> dict:
    spec: dict = {"containers": list(containers) or [{"name": "c", "image": "x"}]}
    if init:
        spec["initContainers"] = init
    if overhead:
        spec["overhead"] = overhead
    return {"metadata": {"name": name, "namespace": "ns"}, "spec": spec}


def _c(**requests: str) -> dict:
    return {"name": "c", "image": "x", "resources": {"requests": dict(requests)}}


def _filter(plugin: NodeResourcesFit, pod: dict, node_info) -> Status:
    state = CycleState()
    _, status = plugin.pre_filter(state, pod, [node_info])
    assert status.is_success()
    return plugin.filter(state, pod, node_info)


NODE = _node(
    "n1", "10", "20Gi", pods=32, ephemeral_storage="20Gi", **{"example.com/aaa": "5", "hugepages-2Mi": "8Mi"}
)
USED = _pod(_c(cpu="5", memory="10Gi", **{"example.com/aaa": "3", "ephemeral-storage": "10Gi"}), name="used")


@pytest.mark.parametrize(
    ("pod", "args", "reasons"),
    [
        (_pod(), {}, ()),
        (_pod(_c(cpu="5", memory="10Gi")), {}, ()),
        (_pod(_c(cpu="6")), {}, ("Insufficient cpu",)),
        (_pod(_c(cpu="6", memory="11Gi")), {}, ("Insufficient cpu", "Insufficient memory")),
        (_pod(_c(memory="11Gi")), {}, ("Insufficient memory",)),
        # init containers: the larger one counts
        (_pod(_c(cpu="1"), init=[_c(cpu="6")]), {}, ("Insufficient cpu",)),
        (_pod(_c(cpu="1"), init=[_c(cpu="5")]), {}, ()),
        # a sidecar adds to the containers
        (_pod(_c(cpu="4"), init=[{**_c(cpu="2"), "restartPolicy": "Always"}]), {}, ("Insufficient cpu",)),
        # pod overhead counts
        (_pod(_c(memory="10Gi"), overhead={"memory": "1Mi"}), {}, ("Insufficient memory",)),
        (_pod(_c(**{"ephemeral-storage": "11Gi"})), {}, ("Insufficient ephemeral-storage",)),
        (_pod(_c(**{"example.com/aaa": "3"})), {}, ("Insufficient example.com/aaa",)),
        (_pod(_c(**{"example.com/aaa": "2"})), {}, ()),
        (_pod(_c(**{"example.com/bbb": "1"})), {}, ("Insufficient example.com/bbb",)),
        (_pod(_c(**{"example.com/aaa": "3"})), {"ignoredResources": ["example.com/aaa"]}, ()),
        (_pod(_c(**{"example.com/bbb": "1"})), {"ignoredResourceGroups": ["example.com"]}, ()),
        # only extended resources can be ignored
        (
            _pod(_c(**{"hugepages-2Mi": "10Mi"})),
            {"ignoredResources": ["hugepages-2Mi"]},
            ("Insufficient hugepages-2Mi",),
        ),
        (_pod(_c(**{"hugepages-2Mi": "8Mi"})), {}, ()),
        # names that are not scalar resources are not checked
        (_pod(_c(foo="5")), {}, ()),
    ],
)
def test_filter(pod: dict, args: dict, reasons: tuple) -> None:
    plugin = NodeResourcesFit(args)
    status = _filter(plugin, pod, node_info_of(NODE, [USED]))
    assert status.reasons == reasons
    assert status.code == (Code.UNSCHEDULABLE if reasons else Code.SUCCESS)


def test_too_many_pods_comes_first() -> None:
    plugin = NodeResourcesFit()
    full = node_info_of(_node("n", "1", "1Gi", pods=1), [_pod(name="a")])
    assert _filter(plugin, _pod(), full).reasons == ("Too many pods",)
    assert _filter(plugin, _pod(_c(cpu="2")), full).reasons == ("Too many pods", "Insufficient cpu")
    assert _filter(
        plugin, _pod(), node_info_of(_node("n", "1", "1Gi", pods=2), [_pod(name="a")])
    ).is_success()


def test_filter_without_pre_filter_is_an_error() -> None:
    status = NodeResourcesFit().filter(CycleState(), _pod(), node_info_of(NODE))
    assert status.code == Code.ERROR


# upstream's test pods: cpuOnly (1000m + 2000m, memory "0") and cpuAndMemory (1000m/2000 + 2000m/3000)
CPU_ONLY = _pod(_c(cpu="1000m", memory="0"), _c(cpu="2000m", memory="0"), name="cpu-only")
CPU_AND_MEMORY = _pod(_c(cpu="1000m", memory="2000"), _c(cpu="2000m", memory="3000"), name="cpu-and-memory")


def _scores(args: dict, pod: dict, nodes: list) -> list[int]:
    plugin = NodeResourcesFit(args)
    state = CycleState()
    assert plugin.pre_score(state, pod, nodes).is_success()
    out = []
    for info in nodes:
        score, status = plugin.score(state, pod, info)
        assert status.is_success()
        out.append(score)
    return out


def _strategy(kind: str, resources: list | None = None, shape: list | None = None) -> dict:
    strategy: dict = {"type": kind}
    if resources:
        strategy["resources"] = resources
    if shape:
        strategy["requestedToCapacityRatio"] = {"shape": shape}
    return {"scoringStrategy": strategy}


@pytest.mark.parametrize(
    ("args", "pod", "nodes", "want"),
    [
        # upstream: LeastAllocated, differently sized nodes: cpu 25 / mem 50 -> 37; cpu 50 / mem 50 -> 50
        (
            {},
            CPU_AND_MEMORY,
            [(_node("n1", "4000m", "10000"), []), (_node("n2", "6000m", "10000"), [])],
            [37, 50],
        ),
        # upstream: pods scheduled: n1 cpu 40 mem 75 -> 57; n2 cpu 40 mem 50 -> 45
        (
            {},
            CPU_AND_MEMORY,
            [
                (_node("n1", "10000m", "20000"), [CPU_ONLY]),
                (_node("n2", "10000m", "20000"), [CPU_AND_MEMORY]),
            ],
            [57, 45],
        ),
        # nothing requested: the non-zero defaults (100m, 200Mi) count; 200Mi > 10000 bytes scores 0
        ({}, _pod(), [(_node("n1", "4000m", "10000"), [])], [(97 + 0) // 2]),
        ({}, _pod(), [(_node("n1", "4000m", "1000Mi"), [])], [(97 + 80) // 2]),
        # weights: cpu 3, memory 1: (25*3 + 50) / 4 = 31
        (
            _strategy("LeastAllocated", [{"name": "cpu", "weight": 3}, {"name": "memory", "weight": 1}]),
            CPU_AND_MEMORY,
            [(_node("n1", "4000m", "10000"), [])],
            [31],
        ),
        # an extended resource the pod does not request is left out
        (
            _strategy(
                "LeastAllocated",
                [
                    {"name": "cpu", "weight": 1},
                    {"name": "memory", "weight": 1},
                    {"name": "example.com/gpu", "weight": 5},
                ],
            ),
            CPU_AND_MEMORY,
            [(_node("n1", "4000m", "10000", **{"example.com/gpu": "4"}), [])],
            [37],
        ),
        # ... and counted when it does: gpu (4-1)*100/4 = 75: (25 + 50 + 75*5) / 7 = 64
        (
            _strategy(
                "LeastAllocated",
                [
                    {"name": "cpu", "weight": 1},
                    {"name": "memory", "weight": 1},
                    {"name": "example.com/gpu", "weight": 5},
                ],
            ),
            _pod(_c(cpu="1000m", memory="2000", **{"example.com/gpu": "1"}), _c(cpu="2000m", memory="3000")),
            [(_node("n1", "4000m", "10000", **{"example.com/gpu": "4"}), [])],
            [64],
        ),
        # upstream: MostAllocated, differently sized nodes: cpu 75 / mem 50 -> 62; 50 / 50 -> 50
        (
            _strategy("MostAllocated"),
            CPU_AND_MEMORY,
            [(_node("n1", "4000m", "10000"), []), (_node("n2", "6000m", "10000"), [])],
            [62, 50],
        ),
        # upstream: MostAllocated with pods: n1 cpu 60 mem 25 -> 42; n2 60 / 50 -> 55
        (
            _strategy("MostAllocated"),
            CPU_AND_MEMORY,
            [
                (_node("n1", "10000m", "20000"), [CPU_ONLY]),
                (_node("n2", "10000m", "20000"), [CPU_AND_MEMORY]),
            ],
            [42, 55],
        ),
        # MostAllocated caps requested at allocatable (the 200Mi default on a 10000-byte node): (2 + 100) / 2
        (_strategy("MostAllocated"), _pod(), [(_node("n1", "4000m", "10000"), [])], [(2 + 100) // 2]),
    ],
)
def test_score_least_and_most_allocated(args: dict, pod: dict, nodes: list, want: list[int]) -> None:
    infos = [node_info_of(node, pods) for node, pods in nodes]
    assert _scores(args, pod, infos) == want


def test_score_requested_to_capacity_ratio_docs_example() -> None:
    # the Kubernetes docs' bin-packing example: shape (0,0)-(100,10), weights foo 5, memory 1, cpu 3
    args = _strategy(
        "RequestedToCapacityRatio",
        [
            {"name": "intel.com/foo", "weight": 5},
            {"name": "memory", "weight": 1},
            {"name": "cpu", "weight": 3},
        ],
        [{"utilization": 0, "score": 0}, {"utilization": 100, "score": 10}],
    )
    pod = _pod(_c(cpu="2", memory="256Mi", **{"intel.com/foo": "2"}))
    node1 = node_info_of(
        _node("n1", "8", "1Gi", **{"intel.com/foo": "4"}),
        [_pod(_c(cpu="1", memory="256Mi", **{"intel.com/foo": "1"}), name="u1")],
    )
    node2 = node_info_of(
        _node("n2", "8", "1Gi", **{"intel.com/foo": "8"}),
        [_pod(_c(cpu="6", memory="512Mi", **{"intel.com/foo": "2"}), name="u2")],
    )
    # n1: foo 3/4 -> 75, memory 512Mi/1Gi -> 50, cpu 3/8 -> 37: (375 + 50 + 111) / 9 = 59.6 -> 60
    # n2: foo 4/8 -> 50, memory 768Mi/1Gi -> 75, cpu 8/8 -> 100: (250 + 75 + 300) / 9 = 69.4 -> 69
    assert _scores(args, pod, [node1, node2]) == [60, 69]


def test_score_requested_to_capacity_ratio_spreading_shape() -> None:
    # (0,10)-(100,0) favours empty nodes; zero-scored resources leave the mean
    args = _strategy(
        "RequestedToCapacityRatio", None, [{"utilization": 0, "score": 10}, {"utilization": 100, "score": 0}]
    )
    empty = node_info_of(_node("n1", "4000m", "10000"))
    # cpu 3000/4000 -> 75 -> 25; memory 5000/10000 -> 50 -> 50: (25 + 50) / 2 = 37.5 -> 38
    assert _scores(args, CPU_AND_MEMORY, [empty]) == [38]
    full = node_info_of(_node("n1", "3000m", "10000"))
    # cpu at 100% scores 0 and is left out: 50 / 1
    assert _scores(args, CPU_AND_MEMORY, [full]) == [50]


def test_broken_linear_truncates_toward_zero_like_go() -> None:
    shape = [(0, 100), (30, 0)]
    assert broken_linear(shape, 10) == 100 - 33  # Go: -1000/30 = -33 (floor would give -34)
    assert broken_linear(shape, 0) == 100 and broken_linear(shape, 50) == 0
    assert broken_linear([(20, 40), (60, 80)], 10) == 40 and broken_linear([(20, 40), (60, 80)], 30) == 50


def test_score_without_pre_score() -> None:
    plugin = NodeResourcesFit()
    info = node_info_of(_node("n1", "4000m", "10000"))
    assert plugin.score(CycleState(), CPU_AND_MEMORY, info) == (
        37,
        plugin.score(CycleState(), _pod(), info)[1],
    )


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        ({"scoringStrategy": {"type": "Bogus"}}, 'scoringStrategy.type: Unsupported value: "Bogus"'),
        (
            {"scoringStrategy": {"type": "LeastAllocated", "resources": [{"name": "cpu", "weight": 0}]}},
            "resource weight of cpu not in valid range (0, 100]",
        ),
        (
            {"scoringStrategy": {"type": "LeastAllocated", "resources": [{"name": "cpu", "weight": 101}]}},
            "not in valid range (0, 100]",
        ),
        ({"scoringStrategy": {"type": "RequestedToCapacityRatio"}}, "at least one point must be specified"),
        (
            {
                "scoringStrategy": {
                    "type": "RequestedToCapacityRatio",
                    "requestedToCapacityRatio": {
                        "shape": [{"utilization": 50, "score": 1}, {"utilization": 10, "score": 2}]
                    },
                }
            },
            "utilization values must be sorted in increasing order",
        ),
        (
            {
                "scoringStrategy": {
                    "type": "RequestedToCapacityRatio",
                    "requestedToCapacityRatio": {"shape": [{"utilization": 10, "score": 11}]},
                }
            },
            "score: Invalid value: 11: not in valid range [0, 10]",
        ),
        (
            {
                "scoringStrategy": {
                    "type": "RequestedToCapacityRatio",
                    "requestedToCapacityRatio": {"shape": [{"utilization": 101, "score": 1}]},
                }
            },
            "not in valid range [0, 100]",
        ),
        ({"ignoredResourceGroups": ["example.com/x"]}, "resource group name can't contain '/'"),
        ({"ignoredResources": ["not a name!"]}, "ignoredResources[0]"),
    ],
)
def test_validate_args(args: dict, fragment: str) -> None:
    errors = NodeResourcesFit.validate_args(args)
    assert any(fragment in e for e in errors), errors


def test_default_args_and_events() -> None:
    assert NodeResourcesFit.validate_args(NodeResourcesFit.default_args()) == []
    assert (
        NodeResourcesFit.validate_args(
            {"ignoredResources": ["example.com/aaa"], "ignoredResourceGroups": ["example.com"]}
        )
        == []
    )
    plugin = NodeResourcesFit({"scoringStrategy": {"type": "MostAllocated"}})
    assert [r["name"] for r in plugin.resources] == ["cpu", "memory"]
    events = {(e.resource, e.action) for e in plugin.events_to_register()}
    assert events == {("Pod", "Delete"), ("Node", "Add"), ("Node", "UpdateNodeAllocatable")}
