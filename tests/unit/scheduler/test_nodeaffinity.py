"""NodeAffinity: PreFilter (skip, metadata.name narrowing, conflict), Filter (selector,
required terms, addedAffinity) with upstream's reasons, Score/NormalizeScore with preferred
terms, args validation and events."""

from __future__ import annotations

import pytest

from pybernetes.scheduler.framework import Code, CycleState, PreFilterResult
from pybernetes.scheduler.nodeinfo import node_info_of
from pybernetes.scheduler.plugins.nodeaffinity import NodeAffinity, normalize_scores

REASON_POD = "node(s) didn't match Pod's node affinity/selector"
REASON_ENFORCED = "node(s) didn't match scheduler-enforced node affinity"


def node(name: str, **labels: str) -> dict:
    return {"metadata": {"name": name, "labels": dict(labels)}, "status": {"allocatable": {"cpu": "1"}}}


def expr(key: str, op: str, *values: str) -> dict:
    out: dict = {"key": key, "operator": op}
    if values:
        out["values"] = list(values)
    return out


def required(*terms: dict) -> dict:
    return {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": list(terms)}}}


def preferred(*weighted: tuple[int, dict]) -> dict:
    return {"nodeAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
        {"weight": w, "preference": t} for w, t in weighted]}}


def pod(**spec) -> dict:
    return {"metadata": {"name": "p", "namespace": "default"}, "spec": {"containers": [{"name": "c"}], **spec}}


def run_filter(plugin: NodeAffinity, p: dict, n: dict):
    state = CycleState()
    result, status = plugin.pre_filter(state, p, [])
    if status.is_skip():
        return result, status, None
    return result, status, plugin.filter(state, p, node_info_of(n))


FILTER_CASES = [
    ("no selector: filter skipped", pod(), node("n1"), None),
    ("nodeSelector not matching", pod(nodeSelector={"foo": "bar"}), node("n1"), REASON_POD),
    ("nodeSelector matching", pod(nodeSelector={"foo": "bar"}), node("n1", foo="bar", x="y"), "ok"),
    ("nodeSelector and affinity both needed",
     pod(nodeSelector={"foo": "bar"}, affinity=required({"matchExpressions": [expr("zone", "In", "a")]})),
     node("n1", foo="bar", zone="b"), REASON_POD),
    ("In matching", pod(affinity=required({"matchExpressions": [expr("zone", "In", "a", "b")]})),
     node("n1", zone="b"), "ok"),
    ("NotIn", pod(affinity=required({"matchExpressions": [expr("zone", "NotIn", "a")]})),
     node("n1", zone="a"), REASON_POD),
    ("DoesNotExist without the label", pod(affinity=required({"matchExpressions": [expr("gpu", "DoesNotExist")]})),
     node("n1"), "ok"),
    ("Gt", pod(affinity=required({"matchExpressions": [expr("cores", "Gt", "8")]})), node("n1", cores="16"), "ok"),
    ("Lt", pod(affinity=required({"matchExpressions": [expr("cores", "Lt", "8")]})), node("n1", cores="16"),
     REASON_POD),
    ("terms ORed", pod(affinity=required({"matchExpressions": [expr("zone", "In", "x")]},
                                         {"matchExpressions": [expr("zone", "In", "a")]})),
     node("n1", zone="a"), "ok"),
    ("an empty term matches nothing", pod(affinity=required({})), node("n1", zone="a"), REASON_POD),
    ("empty matchExpressions match nothing", pod(affinity=required({"matchExpressions": []})), node("n1"),
     REASON_POD),
    ("name field matching", pod(affinity=required({"matchFields": [expr("metadata.name", "In", "n1")]})),
     node("n1"), "ok"),
    ("name field NotIn", pod(affinity=required({"matchFields": [expr("metadata.name", "NotIn", "n1")]})),
     node("n1"), REASON_POD),
    ("unparsable term ignored", pod(affinity=required({"matchExpressions": [expr("zone", "Bogus", "a")]},
                                                      {"matchExpressions": [expr("zone", "Exists")]})),
     node("n1", zone="a"), "ok"),
]


@pytest.mark.parametrize(("title", "p", "n", "want"), FILTER_CASES, ids=[c[0] for c in FILTER_CASES])
def test_filter(title: str, p: dict, n: dict, want: str | None) -> None:
    plugin = NodeAffinity()
    _, pre_status, status = run_filter(plugin, p, n)
    if want is None:
        assert pre_status.is_skip() and status is None
        return
    assert pre_status.is_success()
    if want == "ok":
        assert status.is_success()
    else:
        assert status.code == Code.UNSCHEDULABLE_AND_UNRESOLVABLE
        assert status.reasons == (want,)
        assert status.plugin == "NodeAffinity"


def test_filter_without_pre_filter_parses_the_pod_itself() -> None:
    plugin = NodeAffinity()
    state = CycleState()
    p = pod(nodeSelector={"zone": "a"})
    assert plugin.filter(state, p, node_info_of(node("n1", zone="a"))).is_success()
    assert plugin.filter(state, p, node_info_of(node("n2", zone="b"))).reasons == (REASON_POD,)


@pytest.mark.parametrize(("terms", "want_names", "want_code"), [
    ([{"matchFields": [expr("metadata.name", "In", "n1")]}], {"n1"}, Code.SUCCESS),
    ([{"matchFields": [expr("metadata.name", "In", "n1")]}, {"matchFields": [expr("metadata.name", "In", "n2")]}],
     {"n1", "n2"}, Code.SUCCESS),
    ([{"matchFields": [expr("metadata.name", "In", "n1")]}, {"matchExpressions": [expr("zone", "Exists")]}],
     None, Code.SUCCESS),
    ([{"matchFields": [expr("metadata.name", "In", "n1"), expr("metadata.name", "In", "n2")]}],
     None, Code.UNSCHEDULABLE_AND_UNRESOLVABLE),
])
def test_pre_filter_narrows_to_named_nodes(terms: list, want_names: set | None, want_code: Code) -> None:
    result, status = NodeAffinity().pre_filter(CycleState(), pod(affinity=required(*terms)), [])
    assert status.code == want_code
    if want_code == Code.UNSCHEDULABLE_AND_UNRESOLVABLE:
        assert status.reasons == ("pod affinity terms conflict",)
        return
    if want_names is None:
        assert result is None
    else:
        assert result == PreFilterResult(frozenset(want_names))


def test_added_affinity_is_enforced_on_every_pod() -> None:
    plugin = NodeAffinity({"addedAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
        "nodeSelectorTerms": [{"matchExpressions": [expr("pool", "In", "web")]}]}}})
    state = CycleState()
    _, status = plugin.pre_filter(state, pod(), [])
    assert status.is_success()  # not skipped: the added affinity applies
    assert plugin.filter(state, pod(), node_info_of(node("n1", pool="web"))).is_success()
    rejected = plugin.filter(state, pod(), node_info_of(node("n2", pool="db")))
    assert rejected.code == Code.UNSCHEDULABLE_AND_UNRESOLVABLE and rejected.reasons == (REASON_ENFORCED,)
    # the pod's own selector is still checked after the enforced one
    p = pod(nodeSelector={"zone": "a"})
    state = CycleState()
    plugin.pre_filter(state, p, [])
    assert plugin.filter(state, p, node_info_of(node("n3", pool="web", zone="b"))).reasons == (REASON_POD,)


def score_all(plugin: NodeAffinity, p: dict, nodes: list[dict]) -> dict[str, int] | None:
    state = CycleState()
    infos = [node_info_of(n) for n in nodes]
    status = plugin.pre_score(state, p, infos)
    if status.is_skip():
        return None
    assert status.is_success()
    scores = {}
    for info in infos:
        value, st = plugin.score(state, p, info)
        assert st.is_success()
        scores[info.name] = value
    assert plugin.normalize_score(state, p, scores).is_success()
    return scores


def test_score_preferred_terms_normalized() -> None:
    p = pod(affinity=preferred((2, {"matchExpressions": [expr("foo", "In", "bar")]}),
                               (4, {"matchExpressions": [expr("key", "In", "value")]}),
                               (5, {"matchExpressions": [expr("foo", "In", "bar"), expr("key", "In", "value"),
                                                         expr("az", "In", "az1")]})))
    nodes = [node("m1", foo="bar"), node("m2", key="value"), node("m3", foo="bar", key="value", az="az1"),
             node("m4")]
    # raw: 2, 4, 11, 0 -> 100*raw//11
    assert score_all(NodeAffinity(), p, nodes) == {"m1": 18, "m2": 36, "m3": 100, "m4": 0}


def test_score_all_zero_and_skip() -> None:
    p = pod(affinity=preferred((3, {"matchExpressions": [expr("foo", "In", "bar")]})))
    assert score_all(NodeAffinity(), p, [node("a"), node("b")]) == {"a": 0, "b": 0}
    assert score_all(NodeAffinity(), pod(), [node("a")]) is None  # nothing preferred: Score skipped


def test_score_with_added_preferred_terms() -> None:
    plugin = NodeAffinity({"addedAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
        {"weight": 3, "preference": {"matchExpressions": [expr("pool", "In", "web")]}}]}})
    nodes = [node("a", pool="web"), node("b", zone="z"), node("c", pool="web", zone="z")]
    assert score_all(plugin, pod(), nodes) == {"a": 100, "b": 0, "c": 100}
    p = pod(affinity=preferred((1, {"matchExpressions": [expr("zone", "In", "z")]})))
    assert score_all(plugin, p, nodes) == {"a": 75, "b": 25, "c": 100}


def test_pre_score_error_on_unparsable_preferred_term() -> None:
    p = pod(affinity=preferred((1, {"matchExpressions": [expr("zone", "Bogus", "x")]})))
    status = NodeAffinity().pre_score(CycleState(), p, [])
    assert status.code == Code.ERROR


def test_normalize_scores() -> None:
    scores = {"a": 0, "b": 2, "c": 5}
    normalize_scores(scores)
    assert scores == {"a": 0, "b": 40, "c": 100}
    scores = {"a": 0, "b": 1, "c": 2}
    normalize_scores(scores, reverse=True)
    assert scores == {"a": 100, "b": 50, "c": 0}
    scores = {"a": 0, "b": 0}
    normalize_scores(scores, reverse=True)
    assert scores == {"a": 100, "b": 100}


def test_validate_args_names_bad_added_affinity() -> None:
    assert NodeAffinity.validate_args({}) == []
    problems = NodeAffinity.validate_args({"addedAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
        "nodeSelectorTerms": [{"matchExpressions": [expr("zone", "Bogus")]}]}}})
    assert len(problems) == 1 and "addedAffinity" in problems[0] and "Bogus" in problems[0]


def test_events() -> None:
    events = {(e.resource, e.action) for e in NodeAffinity().events_to_register()}
    assert events == {("Node", "Add"), ("Node", "UpdateNodeLabel")}
