"""TaintToleration: Filter verdicts and upstream's "node(s) had untolerated taint {key: value}"
reason, Score/NormalizeScore over PreferNoSchedule taints, events."""

from __future__ import annotations

import pytest

from pybernetes.scheduler.framework import Code, CycleState
from pybernetes.scheduler.nodeinfo import node_info_of
from pybernetes.scheduler.plugins.tainttoleration import TaintToleration


def node(name: str, *taints: dict) -> dict:
    spec = {"taints": list(taints)} if taints else {}
    return {"metadata": {"name": name}, "spec": spec, "status": {"allocatable": {"cpu": "1"}}}


def taint(key: str, value: str = "", effect: str = "NoSchedule") -> dict:
    out = {"key": key, "effect": effect}
    if value:
        out["value"] = value
    return out


def pod(*tolerations: dict) -> dict:
    spec: dict = {"containers": [{"name": "c"}]}
    if tolerations:
        spec["tolerations"] = list(tolerations)
    return {"metadata": {"name": "p", "namespace": "default"}, "spec": spec}


FILTER_CASES = [
    ("no taints", pod(), node("n"), None),
    ("untolerated NoSchedule", pod(), node("n", taint("dedicated", "user1")),
     "node(s) had untolerated taint {dedicated: user1}"),
    ("untolerated taint without value", pod(), node("n", taint("dedicated")),
     "node(s) had untolerated taint {dedicated: }"),
    ("untolerated NoExecute", pod(), node("n", taint("evict", "yes", "NoExecute")),
     "node(s) had untolerated taint {evict: yes}"),
    ("PreferNoSchedule never filters", pod(), node("n", taint("soft", "x", "PreferNoSchedule")), None),
    ("Equal toleration", pod({"key": "dedicated", "operator": "Equal", "value": "user1", "effect": "NoSchedule"}),
     node("n", taint("dedicated", "user1")), None),
    ("Equal with another value", pod({"key": "dedicated", "operator": "Equal", "value": "user2",
                                      "effect": "NoSchedule"}),
     node("n", taint("dedicated", "user1")), "node(s) had untolerated taint {dedicated: user1}"),
    ("Exists toleration", pod({"key": "dedicated", "operator": "Exists", "effect": "NoSchedule"}),
     node("n", taint("dedicated", "user1")), None),
    ("toleration for another effect", pod({"key": "dedicated", "operator": "Exists", "effect": "NoExecute"}),
     node("n", taint("dedicated", "user1")), "node(s) had untolerated taint {dedicated: user1}"),
    ("empty effect tolerates all effects", pod({"key": "dedicated", "operator": "Exists"}),
     node("n", taint("dedicated", "a", "NoSchedule"), taint("dedicated", "b", "NoExecute")), None),
    ("empty key with Exists tolerates everything", pod({"operator": "Exists"}),
     node("n", taint("a", "1"), taint("b", "2", "NoExecute")), None),
    ("the first untolerated taint is reported",
     pod({"key": "a", "operator": "Exists"}),
     node("n", taint("a", "1"), taint("b", "2"), taint("c", "3")), "node(s) had untolerated taint {b: 2}"),
]


@pytest.mark.parametrize(("title", "p", "n", "want"), FILTER_CASES, ids=[c[0] for c in FILTER_CASES])
def test_filter(title: str, p: dict, n: dict, want: str | None) -> None:
    status = TaintToleration().filter(CycleState(), p, node_info_of(n))
    if want is None:
        assert status.is_success()
    else:
        assert status.code == Code.UNSCHEDULABLE_AND_UNRESOLVABLE
        assert status.reasons == (want,)
        assert status.plugin == "TaintToleration"


def test_filter_state_is_reused_across_nodes() -> None:
    plugin, state = TaintToleration(), CycleState()
    p = pod({"key": "a", "operator": "Exists"})
    nodes = [node("n1", taint("a")), node("n2", taint("b", "x")), node("n3", taint("b", "x")), node("n4")]
    verdicts = [plugin.filter(state, p, node_info_of(n)) for n in nodes]
    assert [v.is_success() for v in verdicts] == [True, False, False, True]
    assert verdicts[1] is verdicts[2]  # same taint: the memoized status
    assert verdicts[1].reasons == ("node(s) had untolerated taint {b: x}",)


def scores_of(p: dict, nodes: list[dict]) -> dict[str, int]:
    plugin, state = TaintToleration(), CycleState()
    infos = [node_info_of(n) for n in nodes]
    assert plugin.pre_score(state, p, infos).is_success()
    scores = {}
    for info in infos:
        value, status = plugin.score(state, p, info)
        assert status.is_success()
        scores[info.name] = value
    assert plugin.normalize_score(state, p, scores).is_success()
    return scores


SCORE_CASES = [
    ("all tolerated: same score however many taints",
     pod({"key": "foo", "operator": "Equal", "value": "bar", "effect": "PreferNoSchedule"},
         {"key": "cpu-type", "operator": "Equal", "value": "arm64", "effect": "PreferNoSchedule"}),
     [node("n1"), node("n2", taint("foo", "bar", "PreferNoSchedule")),
      node("n3", taint("foo", "bar", "PreferNoSchedule"), taint("cpu-type", "arm64", "PreferNoSchedule"))],
     {"n1": 100, "n2": 100, "n3": 100}),
    ("more intolerable taints, lower score",
     pod({"key": "foo", "operator": "Equal", "value": "bar", "effect": "PreferNoSchedule"}),
     [node("n1"), node("n2", taint("cpu-type", "arm64", "PreferNoSchedule")),
      node("n3", taint("cpu-type", "arm64", "PreferNoSchedule"), taint("disk-type", "ssd", "PreferNoSchedule"))],
     {"n1": 100, "n2": 50, "n3": 0}),
    ("only PreferNoSchedule taints count",
     pod({"key": "cpu-type", "operator": "Equal", "value": "arm64", "effect": "NoSchedule"},
         {"key": "disk-type", "operator": "Equal", "value": "ssd", "effect": "NoSchedule"}),
     [node("n1"), node("n2", taint("cpu-type", "arm64", "NoSchedule")),
      node("n3", taint("cpu-type", "arm64", "PreferNoSchedule"))],
     {"n1": 100, "n2": 100, "n3": 0}),
    ("a NoSchedule-only toleration does not tolerate PreferNoSchedule",
     pod({"key": "foo", "operator": "Exists", "effect": "NoSchedule"}),
     [node("n1", taint("foo", "", "PreferNoSchedule")), node("n2")],
     {"n1": 0, "n2": 100}),
    ("no tolerations, one intolerable taint out of three nodes",
     pod(), [node("n1"), node("n2"), node("n3", taint("x", "", "PreferNoSchedule"))],
     {"n1": 100, "n2": 100, "n3": 0}),
]


@pytest.mark.parametrize(("title", "p", "nodes", "want"), SCORE_CASES, ids=[c[0] for c in SCORE_CASES])
def test_score(title: str, p: dict, nodes: list[dict], want: dict) -> None:
    assert scores_of(p, nodes) == want


def test_score_without_pre_score_is_an_error() -> None:
    value, status = TaintToleration().score(CycleState(), pod(), node_info_of(node("n", taint("a", "", "x"))))
    assert status.code == Code.ERROR


def test_events() -> None:
    events = {(e.resource, e.action) for e in TaintToleration().events_to_register()}
    assert events == {("Node", "Add"), ("Node", "UpdateNodeTaint"), ("Pod", "UpdatePodTolerations")}
