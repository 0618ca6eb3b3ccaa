"""InterPodAffinity (upstream interpodaffinity): Filter verdicts and reasons on crafted nodes and
pods, the AddPod/RemovePod extensions, PreScore/Score/NormalizeScore, args and events."""

from __future__ import annotations

import pytest

from pybernetes.scheduler.framework import Code, CycleState
from pybernetes.scheduler.handle import Handle, Snapshot
from pybernetes.scheduler.nodeinfo import node_info_of, pod_entry
from pybernetes.scheduler.plugins.interpodaffinity import (
    PRE_FILTER_STATE_KEY,
    InterPodAffinity,
)

HOST = "kubernetes.io/hostname"
ZONE = "topology.kubernetes.io/zone"
AFF = "node(s) didn't match pod affinity rules"
ANTI = "node(s) didn't match pod anti-affinity rules"
EXISTING = "node(s) didn't satisfy existing pods anti-affinity rules"
OK = (Code.SUCCESS, "")


def node(name: str, zone: str | None = None, **extra: str) -> dict:
    labels = {HOST: name, **extra}
    if zone:
        labels[ZONE] = zone
    return {"metadata": {"name": name, "labels": labels},
            "status": {"allocatable": {"cpu": "4", "memory": "8Gi", "pods": "110"}}}


def bare_node(name: str) -> dict:
    return {"metadata": {"name": name}, "status": {"allocatable": {"pods": "110"}}}


def term(topology: str, match: dict | None = None, **extra) -> dict:
    out = {"topologyKey": topology, **extra}
    if match is not None:
        out["labelSelector"] = {"matchLabels": match}
    return out


def pod(name: str, labels: dict | None = None, ns: str = "default", *, affinity: list | None = None,
        anti: list | None = None, pref: list | None = None, pref_anti: list | None = None) -> dict:
    aff: dict = {}
    if affinity or pref:
        aff["podAffinity"] = {}
        if affinity:
            aff["podAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"] = affinity
        if pref:
            aff["podAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"] = [
                {"weight": w, "podAffinityTerm": t} for w, t in pref]
    if anti or pref_anti:
        aff["podAntiAffinity"] = {}
        if anti:
            aff["podAntiAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"] = anti
        if pref_anti:
            aff["podAntiAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"] = [
                {"weight": w, "podAffinityTerm": t} for w, t in pref_anti]
    spec: dict = {"containers": [{"name": "c", "image": "nginx"}]}
    if aff:
        spec["affinity"] = aff
    return {"metadata": {"name": name, "namespace": ns, "labels": labels or {}}, "spec": spec}


def namespace(name: str, **labels: str) -> dict:
    return {"metadata": {"name": name, "labels": labels}}


NAMESPACES = [namespace("default"), namespace("team-a", team="a"), namespace("team-b", team="b"),
              namespace("other")]


def setup(layout: list[tuple[dict, list[dict]]], args: dict | None = None):
    infos = [node_info_of(n, pods) for n, pods in layout]
    handle = Handle(Snapshot(infos), objects={"v1/namespaces": NAMESPACES})
    return InterPodAffinity({**InterPodAffinity.default_args(), **(args or {})}, handle), infos


def filter_all(incoming: dict, layout: list[tuple[dict, list[dict]]]):
    plugin, infos = setup(layout)
    state = CycleState()
    result, status = plugin.pre_filter(state, incoming, infos)
    assert result is None
    if status.is_skip():
        return "skip"
    assert status.is_success(), status
    out = {}
    for info in infos:
        st = plugin.filter(state, incoming, info)
        out[info.name] = (st.code, st.message())
    return out


WEB = {"app": "web"}
DB = {"app": "db"}

FILTER_CASES = [
    # (id, incoming pod, layout, expected per node)
    ("no affinity anywhere skips", pod("p", WEB), [(node("n1", "a"), [pod("x", WEB)])], "skip"),
    ("anti-affinity one per node", pod("p", WEB, anti=[term(HOST, WEB)]),
     [(node("n1", "a"), [pod("w1", WEB)]), (node("n2", "a"), [pod("d1", DB)]), (node("n3", "b"), [])],
     {"n1": (Code.UNSCHEDULABLE, ANTI), "n2": OK, "n3": OK}),
    ("anti-affinity per zone", pod("p", WEB, anti=[term(ZONE, WEB)]),
     [(node("n1", "a"), [pod("w1", WEB)]), (node("n2", "a"), []), (node("n3", "b"), [])],
     {"n1": (Code.UNSCHEDULABLE, ANTI), "n2": (Code.UNSCHEDULABLE, ANTI), "n3": OK}),
    ("anti-affinity ignores other namespaces", pod("p", WEB, anti=[term(HOST, WEB)]),
     [(node("n1", "a"), [pod("w1", WEB, ns="other")])], {"n1": OK}),
    ("anti-affinity: node without the topology key passes", pod("p", WEB, anti=[term(ZONE, WEB)]),
     [(node("n1", "a"), [pod("w1", WEB)]), (node("n2"), [])],
     {"n1": (Code.UNSCHEDULABLE, ANTI), "n2": OK}),
    ("zone affinity", pod("p", WEB, affinity=[term(ZONE, DB)]),
     [(node("n1", "a"), [pod("d1", DB)]), (node("n2", "a"), []), (node("n3", "b"), []), (node("n4"), [])],
     {"n1": OK, "n2": OK, "n3": (Code.UNSCHEDULABLE_AND_UNRESOLVABLE, AFF),
      "n4": (Code.UNSCHEDULABLE_AND_UNRESOLVABLE, AFF)}),
    ("affinity: no matching pod anywhere", pod("p", WEB, affinity=[term(ZONE, DB)]),
     [(node("n1", "a"), [pod("w1", WEB)])], {"n1": (Code.UNSCHEDULABLE_AND_UNRESOLVABLE, AFF)}),
    ("first pod of a group matching its own term", pod("p", WEB, affinity=[term(ZONE, WEB)]),
     [(node("n1", "a"), [pod("d1", DB)]), (node("n2", "b"), []), (node("n3"), [])],
     {"n1": OK, "n2": OK, "n3": (Code.UNSCHEDULABLE_AND_UNRESOLVABLE, AFF)}),
    ("first pod rule does not apply once a pod matches", pod("p", WEB, affinity=[term(ZONE, WEB)]),
     [(node("n1", "a"), [pod("w1", WEB)]), (node("n2", "b"), [])],
     {"n1": OK, "n2": (Code.UNSCHEDULABLE_AND_UNRESOLVABLE, AFF)}),
    ("all affinity terms must match the same pod",
     pod("p", WEB, affinity=[term(ZONE, DB), term(ZONE, {"tier": "cache"})]),
     [(node("n1", "a"), [pod("d1", DB), pod("c1", {"tier": "cache"})]),
      (node("n2", "b"), [pod("dc", {"app": "db", "tier": "cache"})])],
     {"n1": (Code.UNSCHEDULABLE_AND_UNRESOLVABLE, AFF), "n2": OK}),
    ("affinity and anti-affinity together", pod("p", WEB, affinity=[term(ZONE, DB)], anti=[term(HOST, WEB)]),
     [(node("n1", "a"), [pod("d1", DB), pod("w1", WEB)]), (node("n2", "a"), []), (node("n3", "b"), [])],
     {"n1": (Code.UNSCHEDULABLE, ANTI), "n2": OK, "n3": (Code.UNSCHEDULABLE_AND_UNRESOLVABLE, AFF)}),
    ("existing pod's anti-affinity", pod("p", WEB),
     [(node("n1", "a"), [pod("x", DB, anti=[term(ZONE, WEB)])]), (node("n2", "a"), []), (node("n3", "b"), [])],
     {"n1": (Code.UNSCHEDULABLE, EXISTING), "n2": (Code.UNSCHEDULABLE, EXISTING), "n3": OK}),
    ("existing pod's anti-affinity in another namespace does not apply (nothing to check: skip)", pod("p", WEB),
     [(node("n1", "a"), [pod("x", DB, ns="other", anti=[term(HOST, WEB)])]), (node("n2", "a"), [])], "skip"),
    ("existing pod's anti-affinity naming the namespace", pod("p", WEB),
     [(node("n1", "a"), [pod("x", DB, ns="other", anti=[term(HOST, WEB, namespaces=["default"])])])],
     {"n1": (Code.UNSCHEDULABLE, EXISTING)}),
    ("existing pod's anti-affinity namespaceSelector matches incoming namespace labels", pod("p", WEB, ns="team-a"),
     [(node("n1", "a"), [pod("x", DB, anti=[term(HOST, WEB, namespaceSelector={"matchLabels": {"team": "a"}})])]),
      (node("n2", "a"), [pod("y", DB, anti=[term(HOST, WEB, namespaceSelector={"matchLabels": {"team": "b"}})])])],
     {"n1": (Code.UNSCHEDULABLE, EXISTING), "n2": OK}),
    ("incoming namespaceSelector", pod("p", WEB, anti=[term(HOST, WEB, namespaceSelector={
        "matchExpressions": [{"key": "team", "operator": "In", "values": ["a"]}]})]),
     [(node("n1", "a"), [pod("w1", WEB, ns="team-a")]), (node("n2", "a"), [pod("w2", WEB, ns="team-b")]),
      (node("n3", "a"), [pod("w3", WEB)])],
     {"n1": (Code.UNSCHEDULABLE, ANTI), "n2": OK, "n3": OK}),
    ("empty namespaceSelector means every namespace", pod("p", WEB, anti=[term(HOST, WEB, namespaceSelector={})]),
     [(node("n1", "a"), [pod("w1", WEB, ns="team-a")]), (node("n2", "a"), [pod("w2", WEB, ns="other")]),
      (node("n3", "a"), [])],
     {"n1": (Code.UNSCHEDULABLE, ANTI), "n2": (Code.UNSCHEDULABLE, ANTI), "n3": OK}),
    ("namespaces plus namespaceSelector", pod("p", WEB, anti=[term(HOST, WEB, namespaces=["other"], namespaceSelector={
        "matchLabels": {"team": "b"}})]),
     [(node("n1", "a"), [pod("w1", WEB, ns="team-a")]), (node("n2", "a"), [pod("w2", WEB, ns="other")]),
      (node("n3", "a"), [pod("w3", WEB, ns="team-b")]), (node("n4", "a"), [pod("w4", WEB)])],
     {"n1": OK, "n2": (Code.UNSCHEDULABLE, ANTI), "n3": (Code.UNSCHEDULABLE, ANTI), "n4": OK}),
    ("matchLabelKeys merges the incoming pod's label value",
     pod("p", {"app": "web", "version": "v2"}, anti=[term(HOST, WEB, matchLabelKeys=["version"])]),
     [(node("n1", "a"), [pod("old", {"app": "web", "version": "v1"})]),
      (node("n2", "a"), [pod("new", {"app": "web", "version": "v2"})])],
     {"n1": OK, "n2": (Code.UNSCHEDULABLE, ANTI)}),
    ("mismatchLabelKeys excludes the incoming pod's own value",
     pod("p", {"app": "web", "tenant": "t1"}, anti=[term(HOST, WEB, mismatchLabelKeys=["tenant"])]),
     [(node("n1", "a"), [pod("same", {"app": "web", "tenant": "t1"})]),
      (node("n2", "a"), [pod("diff", {"app": "web", "tenant": "t2"})])],
     {"n1": OK, "n2": (Code.UNSCHEDULABLE, ANTI)}),
    ("existing pod's matchLabelKeys use its own labels", pod("p", {"app": "web", "version": "v2"}),
     [(node("n1", "a"), [pod("x", {"app": "web", "version": "v1"}, anti=[term(HOST, WEB, matchLabelKeys=["version"])])]),
      (node("n2", "a"), [pod("y", {"app": "web", "version": "v2"}, anti=[term(HOST, WEB, matchLabelKeys=["version"])])])],
     {"n1": OK, "n2": (Code.UNSCHEDULABLE, EXISTING)}),
    ("nil labelSelector matches no pod", pod("p", WEB, anti=[term(HOST)]),
     [(node("n1", "a"), [pod("w1", WEB)])], {"n1": OK}),
    ("empty labelSelector matches every pod of the namespace", pod("p", WEB, anti=[{"topologyKey": HOST,
                                                                                     "labelSelector": {}}]),
     [(node("n1", "a"), [pod("d1", DB)]), (node("n2", "a"), [])], {"n1": (Code.UNSCHEDULABLE, ANTI), "n2": OK}),
    ("matchExpressions operators", pod("p", WEB, anti=[{"topologyKey": HOST, "labelSelector": {"matchExpressions": [
        {"key": "app", "operator": "NotIn", "values": ["web"]}, {"key": "tier", "operator": "Exists"}]}}]),
     [(node("n1", "a"), [pod("a1", {"app": "db", "tier": "x"})]), (node("n2", "a"), [pod("a2", {"app": "db"})]),
      (node("n3", "a"), [pod("a3", {"app": "web", "tier": "x"})])],
     {"n1": (Code.UNSCHEDULABLE, ANTI), "n2": OK, "n3": OK}),
    ("node without labels", pod("p", WEB, affinity=[term(ZONE, WEB)]), [(bare_node("n1"), [])],
     {"n1": (Code.UNSCHEDULABLE_AND_UNRESOLVABLE, AFF)}),
]


@pytest.mark.parametrize("incoming, layout, expected", [c[1:] for c in FILTER_CASES],
                         ids=[c[0] for c in FILTER_CASES])
def test_filter(incoming, layout, expected) -> None:
    assert filter_all(incoming, layout) == expected


def test_pre_filter_rejects_unparsable_terms() -> None:
    bad = pod("p", WEB, anti=[{"topologyKey": HOST, "labelSelector": {
        "matchExpressions": [{"key": "app", "operator": "Near", "values": ["x"]}]}}])
    plugin, infos = setup([(node("n1", "a"), [])])
    _, status = plugin.pre_filter(CycleState(), bad, infos)
    assert status.code == Code.UNSCHEDULABLE_AND_UNRESOLVABLE
    assert status.message().startswith("parsing pod: ")
    assert "Near" in status.message()


def test_filter_without_pre_filter_state_is_an_error() -> None:
    plugin, infos = setup([(node("n1", "a"), [])])
    assert plugin.filter(CycleState(), pod("p"), infos[0]).code == Code.ERROR


def test_incoming_pod_is_not_mutated() -> None:
    import copy
    incoming = pod("p", {"app": "web", "version": "v2"}, anti=[term(HOST, WEB, matchLabelKeys=["version"])])
    before = copy.deepcopy(incoming)
    filter_all(incoming, [(node("n1", "a"), [pod("x", WEB)])])
    assert incoming == before


def test_add_and_remove_pod_update_a_clone() -> None:
    victim = pod("victim", WEB)
    incoming = pod("p", WEB, anti=[term(HOST, WEB)])
    plugin, infos = setup([(node("n1", "a"), [victim]), (node("n2", "a"), [])])
    state = CycleState()
    _, status = plugin.pre_filter(state, incoming, infos)
    assert status.is_success()
    n1, n2 = infos
    assert plugin.filter(state, incoming, n1).message() == ANTI

    what_if = state.clone()
    assert plugin.remove_pod(what_if, incoming, pod_entry(victim), n1).is_success()
    assert plugin.filter(what_if, incoming, n1).is_success()
    assert plugin.add_pod(what_if, incoming, pod_entry(pod("other", WEB)), n2).is_success()
    assert plugin.filter(what_if, incoming, n2).message() == ANTI
    # The original state is untouched.
    assert plugin.filter(state, incoming, n1).message() == ANTI
    assert plugin.filter(state, incoming, n2).is_success()


def test_remove_pod_with_anti_affinity_frees_the_node() -> None:
    guard = pod("guard", DB, anti=[term(ZONE, WEB)])
    incoming = pod("p", WEB)
    plugin, infos = setup([(node("n1", "a"), [guard]), (node("n2", "a"), [])])
    state = CycleState()
    _, status = plugin.pre_filter(state, incoming, infos)
    assert status.is_success()
    assert plugin.filter(state, incoming, infos[1]).message() == EXISTING
    what_if = state.clone()
    plugin.remove_pod(what_if, incoming, pod_entry(guard), infos[0])
    assert plugin.filter(what_if, incoming, infos[1]).is_success()
    assert not what_if.read(PRE_FILTER_STATE_KEY).existing_anti_affinity_counts
    # Adding it back restores the rejection.
    plugin.add_pod(what_if, incoming, pod_entry(guard), infos[0])
    assert plugin.filter(what_if, incoming, infos[1]).message() == EXISTING


def test_add_pod_matching_affinity_makes_zone_feasible() -> None:
    incoming = pod("p", WEB, affinity=[term(ZONE, DB)])
    plugin, infos = setup([(node("n1", "a"), [pod("d1", DB)]), (node("n2", "b"), [])])
    state = CycleState()
    plugin.pre_filter(state, incoming, infos)
    assert plugin.filter(state, incoming, infos[1]).message() == AFF
    what_if = state.clone()
    plugin.add_pod(what_if, incoming, pod_entry(pod("d2", DB)), infos[1])
    assert plugin.filter(what_if, incoming, infos[1]).is_success()


# -- scoring ---------------------------------------------------------------------------------


def score_all(incoming: dict, layout: list[tuple[dict, list[dict]]], args: dict | None = None):
    plugin, infos = setup(layout, args)
    state = CycleState()
    status = plugin.pre_score(state, incoming, infos)
    if status.is_skip():
        return "skip"
    assert status.is_success(), status
    raw = {}
    for info in infos:
        value, st = plugin.score(state, incoming, info)
        assert st.is_success()
        raw[info.name] = value
    normalized = dict(raw)
    assert plugin.normalize_score(state, incoming, normalized).is_success()
    return raw, normalized


THREE = [(node("n1", "a"), [pod("d1", DB)]), (node("n2", "a"), []), (node("n3", "b"), [])]

SCORE_CASES = [
    ("preferred zone affinity", pod("p", WEB, pref=[(5, term(ZONE, DB))]), THREE, None,
     ({"n1": 5, "n2": 5, "n3": 0}, {"n1": 100, "n2": 100, "n3": 0})),
    ("preferred zone anti-affinity", pod("p", WEB, pref_anti=[(5, term(ZONE, DB))]), THREE, None,
     ({"n1": -5, "n2": -5, "n3": 0}, {"n1": 0, "n2": 0, "n3": 100})),
    ("affinity by zone, anti-affinity by host",
     pod("p", WEB, pref=[(10, term(ZONE, DB))], pref_anti=[(5, term(HOST, DB))]), THREE, None,
     ({"n1": 5, "n2": 10, "n3": 0}, {"n1": 50, "n2": 100, "n3": 0})),
    ("scaled to 0..100 with truncation",
     pod("p", WEB, pref=[(1, term(ZONE, DB)), (2, term(HOST, DB))]),
     [(node("n1", "a"), [pod("d1", DB)]), (node("n2", "a"), []), (node("n3", "b"), [pod("d2", DB), pod("d3", DB)])],
     None, ({"n1": 3, "n2": 1, "n3": 6}, {"n1": 40, "n2": 0, "n3": 100})),
    ("no matching pods skips", pod("p", WEB, pref=[(5, term(ZONE, {"app": "none"}))]), THREE, None, "skip"),
    ("existing pod's required affinity counts hardPodAffinityWeight", pod("p", WEB),
     [(node("n1", "a"), [pod("x", DB, affinity=[term(HOST, WEB)])]), (node("n2", "a"), [])], None,
     ({"n1": 1, "n2": 0}, {"n1": 100, "n2": 0})),
    ("hardPodAffinityWeight 0 ignores required terms", pod("p", WEB),
     [(node("n1", "a"), [pod("x", DB, affinity=[term(HOST, WEB)])]), (node("n2", "a"), [])],
     {"hardPodAffinityWeight": 0}, "skip"),
    ("hardPodAffinityWeight scales", pod("p", WEB),
     [(node("n1", "a"), [pod("x", DB, affinity=[term(ZONE, WEB)])]), (node("n2", "a"), []), (node("n3", "b"), [])],
     {"hardPodAffinityWeight": 7}, ({"n1": 7, "n2": 7, "n3": 0}, {"n1": 100, "n2": 100, "n3": 0})),
    ("existing pods' preferred terms", pod("p", WEB),
     [(node("n1", "a"), [pod("x", DB, pref=[(4, term(HOST, WEB))])]),
      (node("n2", "a"), [pod("y", DB, pref_anti=[(6, term(HOST, WEB))])]), (node("n3", "b"), [])], None,
     ({"n1": 4, "n2": -6, "n3": 0}, {"n1": 100, "n2": 0, "n3": 60})),
    ("existing pods' terms in other namespaces do not count", pod("p", WEB),
     [(node("n1", "a"), [pod("x", DB, ns="other", pref=[(4, term(HOST, WEB))])]), (node("n2", "a"), [])], None,
     "skip"),
    ("ignorePreferredTermsOfExistingPods skips a pod without preferences", pod("p", WEB),
     [(node("n1", "a"), [pod("x", DB, pref=[(4, term(HOST, WEB))])]), (node("n2", "a"), [])],
     {"ignorePreferredTermsOfExistingPods": True}, "skip"),
    ("ignorePreferredTermsOfExistingPods still counts them for a pod with preferences",
     pod("p", WEB, pref=[(2, term(ZONE, DB))]),
     [(node("n1", "a"), [pod("x", DB, pref=[(4, term(HOST, WEB))])]), (node("n2", "b"), [])],
     {"ignorePreferredTermsOfExistingPods": True}, ({"n1": 6, "n2": 0}, {"n1": 100, "n2": 0})),
    ("preferred namespaceSelector", pod("p", WEB, pref=[(3, term(HOST, DB, namespaceSelector={
        "matchLabels": {"team": "a"}}))]),
     [(node("n1", "a"), [pod("d1", DB, ns="team-a")]), (node("n2", "a"), [pod("d2", DB)])], None,
     ({"n1": 3, "n2": 0}, {"n1": 100, "n2": 0})),
    ("equal scores normalize to 0", pod("p", WEB, pref=[(5, term(ZONE, DB))]),
     [(node("n1", "a"), [pod("d1", DB)]), (node("n2", "a"), [])], None,
     ({"n1": 5, "n2": 5}, {"n1": 0, "n2": 0})),
]


@pytest.mark.parametrize("incoming, layout, args, expected", [c[1:] for c in SCORE_CASES],
                         ids=[c[0] for c in SCORE_CASES])
def test_score(incoming, layout, args, expected) -> None:
    assert score_all(incoming, layout, args) == expected


def test_pre_score_without_nodes_skips() -> None:
    plugin, _ = setup([(node("n1", "a"), [])])
    assert plugin.pre_score(CycleState(), pod("p", pref=[(1, term(ZONE, DB))]), []).is_skip()


# -- args and events -------------------------------------------------------------------------


@pytest.mark.parametrize("args, problems", [
    ({"hardPodAffinityWeight": 1, "ignorePreferredTermsOfExistingPods": False}, []),
    ({"hardPodAffinityWeight": 0}, []),
    ({"hardPodAffinityWeight": 100}, []),
    ({"hardPodAffinityWeight": 101}, ["hardPodAffinityWeight: Invalid value: 101: not in valid range [0, 100]"]),
    ({"hardPodAffinityWeight": -1}, ["hardPodAffinityWeight: Invalid value: -1: not in valid range [0, 100]"]),
    ({"ignorePreferredTermsOfExistingPods": "yes"},
     ["ignorePreferredTermsOfExistingPods: Invalid value: 'yes': must be a boolean"]),
])
def test_validate_args(args, problems) -> None:
    assert InterPodAffinity.validate_args(args) == problems


def test_defaults_and_events() -> None:
    assert InterPodAffinity.default_args() == {"hardPodAffinityWeight": 1, "ignorePreferredTermsOfExistingPods": False}
    events = {(e.resource, e.action) for e in InterPodAffinity().events_to_register()}
    assert events == {("Pod", "Add"), ("Pod", "UpdatePodLabel"), ("Pod", "Delete"), ("Node", "Add"),
                      ("Node", "UpdateNodeLabel")}


def test_counts_every_matching_pod_of_a_topology() -> None:
    twins = [pod("w1", WEB), pod("w2", WEB)]
    incoming = pod("p", WEB, anti=[term(ZONE, WEB)])
    plugin, infos = setup([(node("n1", "a"), [twins[0]]), (node("n2", "a"), [twins[1]]), (node("n3", "b"), [])])
    state = CycleState()
    plugin.pre_filter(state, incoming, infos)
    assert state.read(PRE_FILTER_STATE_KEY).anti_affinity_counts == {(ZONE, "a"): 2}
    what_if = state.clone()
    plugin.remove_pod(what_if, incoming, pod_entry(twins[0]), infos[0])
    assert plugin.filter(what_if, incoming, infos[1]).message() == ANTI  # w2 is still in zone a
    plugin.remove_pod(what_if, incoming, pod_entry(twins[1]), infos[1])
    assert plugin.filter(what_if, incoming, infos[1]).is_success()


def test_an_updated_pod_object_is_parsed_again() -> None:
    incoming = pod("p", WEB)
    guard = pod("g", DB, anti=[term(HOST, WEB)])
    plugin, infos = setup([(node("n1", "a"), [guard])])
    state = CycleState()
    plugin.pre_filter(state, incoming, infos)
    assert plugin.filter(state, incoming, infos[0]).message() == EXISTING
    # The guard's anti-affinity is changed (a new object, as the cache would hold after an update).
    relaxed = pod("g", DB, anti=[term(HOST, {"app": "other"})])
    infos[0].add_entry("default/g", pod_entry(relaxed))
    state = CycleState()
    _, status = plugin.pre_filter(state, incoming, infos)
    assert status.is_skip()
