"""PodTopologySpread: Filter (with PreFilter), AddPod/RemovePod, PreScore/Score/NormalizeScore
and args, on crafted zone/hostname nodes — upstream's semantics and reason strings."""

from __future__ import annotations

import pytest

from pybernetes.scheduler.framework import Code, CycleState
from pybernetes.scheduler.handle import Handle, Snapshot
from pybernetes.scheduler.nodeinfo import node_info_of, pod_entry
from pybernetes.scheduler.plugins.podtopologyspread import (
    PRE_FILTER_KEY,
    REASON_CONSTRAINTS_NOT_MATCH,
    REASON_NODE_LABEL_NOT_MATCH,
    PodTopologySpread,
)

ZONE = "topology.kubernetes.io/zone"
HOST = "kubernetes.io/hostname"
OK = "ok"
NO = "unschedulable"
MISSING = "missing"


def node(name: str, zone: str | None = "z1", taints: list | None = None, **labels: str) -> dict:
    lab = {HOST: name, **labels}
    if zone is not None:
        lab[ZONE] = zone
    spec = {"taints": taints} if taints else {}
    return {"metadata": {"name": name, "labels": lab}, "spec": spec,
            "status": {"allocatable": {"cpu": "8", "memory": "16Gi", "pods": "110"}}}


def pod(name: str, labels: dict | None = None, ns: str = "default", constraints: list | None = None,
        deleting: bool = False, **spec) -> dict:
    meta: dict = {"name": name, "namespace": ns, "labels": dict(labels or {})}
    if deleting:
        meta["deletionTimestamp"] = "2024-01-01T00:00:00Z"
    body: dict = {"containers": [{"name": "c", "image": "pause"}], **spec}
    if constraints:
        body["topologySpreadConstraints"] = constraints
    return {"metadata": meta, "spec": body}


def constraint(key: str = ZONE, skew: int = 1, action: str = "DoNotSchedule", selector: dict | None = None,
               **extra) -> dict:
    c = {"maxSkew": skew, "topologyKey": key, "whenUnsatisfiable": action,
         "labelSelector": selector if selector is not None else {"matchExpressions": [
             {"key": "foo", "operator": "Exists"}]}}
    c.update(extra)
    return c


FOO = {"foo": ""}


def cluster(layout: dict[str, tuple[str | None, int]], taints: dict | None = None) -> list:
    """Nodes by name -> (zone, number of existing foo pods on it)."""
    infos = []
    for name, (zone, count) in layout.items():
        pods = [pod(f"{name}-p{i}", FOO) for i in range(count)]
        infos.append(node_info_of(node(name, zone, (taints or {}).get(name)), pods))
    return infos


def run_filter(plugin: PodTopologySpread, incoming: dict, infos: list) -> dict[str, str]:
    state = CycleState()
    _, status = plugin.pre_filter(state, incoming, infos)
    assert status.code == Code.SUCCESS, status
    out = {}
    for info in infos:
        st = plugin.filter(state, incoming, info)
        if st.is_success():
            out[info.name] = OK
        elif st.code == Code.UNSCHEDULABLE_AND_UNRESOLVABLE:
            assert st.reasons == (REASON_NODE_LABEL_NOT_MATCH,)
            out[info.name] = MISSING
        else:
            assert st.code == Code.UNSCHEDULABLE and st.reasons == (REASON_CONSTRAINTS_NOT_MATCH,), st
            out[info.name] = NO
    return out


FOUR = {"a": ("z1", 1), "b": ("z1", 1), "x": ("z2", 1), "y": ("z2", 0)}  # z1=2, z2=1

FILTER_CASES = [
    ("no existing pods", {"a": ("z1", 0), "b": ("z1", 0), "x": ("z2", 0)},
     pod("p", FOO, constraints=[constraint()]), {"a": OK, "b": OK, "x": OK}),
    ("zone skew 1: the crowded zone is full", FOUR,
     pod("p", FOO, constraints=[constraint()]), {"a": NO, "b": NO, "x": OK, "y": OK}),
    ("maxSkew 2 tolerates it", FOUR,
     pod("p", FOO, constraints=[constraint(skew=2)]), {"a": OK, "b": OK, "x": OK, "y": OK}),
    ("pod not matching its own selector adds no self match", FOUR,
     pod("p", {"bar": ""}, constraints=[constraint()]), {"a": OK, "b": OK, "x": OK, "y": OK}),
    ("node without the topology key is unresolvable and not counted",
     {"a": ("z1", 1), "b": (None, 5), "x": ("z2", 0)},
     pod("p", FOO, constraints=[constraint()]), {"a": NO, "b": MISSING, "x": OK}),
    ("hostname spread", {"a": ("z1", 2), "b": ("z1", 1), "x": ("z2", 0), "y": ("z2", 0)},
     pod("p", FOO, constraints=[constraint(HOST)]), {"a": NO, "b": NO, "x": OK, "y": OK}),
    ("minDomains above the domain count makes the global minimum 0",
     {"a": ("z1", 1), "b": ("z1", 1), "x": ("z2", 1), "y": ("z2", 1)},
     pod("p", FOO, constraints=[constraint(HOST, minDomains=5)]), {"a": NO, "b": NO, "x": NO, "y": NO}),
    ("minDomains met keeps the real minimum",
     {"a": ("z1", 1), "b": ("z1", 1), "x": ("z2", 1), "y": ("z2", 1)},
     pod("p", FOO, constraints=[constraint(HOST, minDomains=4)]), {"a": OK, "b": OK, "x": OK, "y": OK}),
    ("two constraints: zone and hostname", {"a": ("z1", 1), "b": ("z1", 0), "x": ("z2", 1), "y": ("z2", 0)},
     pod("p", FOO, constraints=[constraint(), constraint(HOST)]), {"a": NO, "b": OK, "x": NO, "y": OK}),
    ("a constraint without labelSelector matches no pod",
     FOUR, pod("p", FOO, constraints=[{"maxSkew": 1, "topologyKey": ZONE, "whenUnsatisfiable": "DoNotSchedule"}]),
     {"a": OK, "b": OK, "x": OK, "y": OK}),
    ("ScheduleAnyway constraints do not filter", FOUR,
     pod("p", FOO, constraints=[constraint(action="ScheduleAnyway"), constraint(HOST, skew=5)]),
     {"a": OK, "b": OK, "x": OK, "y": OK}),
]


@pytest.mark.parametrize(("layout", "incoming", "want"), [c[1:] for c in FILTER_CASES],
                         ids=[c[0] for c in FILTER_CASES])
def test_filter(layout, incoming, want) -> None:
    infos = cluster(layout)
    assert run_filter(PodTopologySpread({}, Handle(Snapshot(infos))), incoming, infos) == want


def test_other_namespaces_and_terminating_pods_do_not_count() -> None:
    infos = [node_info_of(node("a", "z1"), [pod("o1", FOO, ns="other"), pod("o2", FOO, ns="other"),
                                             pod("d1", FOO, deleting=True)]),
             node_info_of(node("x", "z2"), [pod("x1", FOO)])]
    # z1 counts 0 (other namespace, deleting), z2 counts 1: x is full, a is fine.
    got = run_filter(PodTopologySpread(), pod("p", FOO, constraints=[constraint()]), infos)
    assert got == {"a": OK, "x": NO}


# zone z3 (node z) is empty; the pod may only go to z1/z2 (node affinity) or z3 is tainted.
THREE = {"a": ("z1", 2), "x": ("z2", 1), "z": ("z3", 0)}
AFFINITY = {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
    {"matchExpressions": [{"key": ZONE, "operator": "In", "values": ["z1", "z2"]}]}]}}}
TAINT = [{"key": "dedicated", "value": "gpu", "effect": "NoSchedule"}]

POLICY_CASES = [
    ("nodeAffinityPolicy Honor (default) leaves z3 out", {}, {"affinity": AFFINITY},
     {"a": NO, "x": OK, "z": OK}),
    ("nodeAffinityPolicy Ignore counts z3", {"nodeAffinityPolicy": "Ignore"}, {"affinity": AFFINITY},
     {"a": NO, "x": NO, "z": OK}),
    ("nodeSelector honoured too", {}, {"nodeSelector": {"disk": "ssd"}},  # no node has disk=ssd
     {"a": OK, "x": OK, "z": OK}),
    ("nodeTaintsPolicy Ignore (default) counts the tainted zone", {}, {}, {"a": NO, "x": NO, "z": OK}),
    ("nodeTaintsPolicy Honor leaves the tainted zone out", {"nodeTaintsPolicy": "Honor"}, {},
     {"a": NO, "x": OK, "z": OK}),
    ("nodeTaintsPolicy Honor with a toleration counts it", {"nodeTaintsPolicy": "Honor"},
     {"tolerations": [{"key": "dedicated", "operator": "Exists"}]}, {"a": NO, "x": NO, "z": OK}),
]


@pytest.mark.parametrize(("extra", "spec", "want"), [c[1:] for c in POLICY_CASES], ids=[c[0] for c in POLICY_CASES])
def test_node_inclusion_policies(extra, spec, want) -> None:
    infos = cluster(THREE, taints={"z": TAINT})
    incoming = pod("p", FOO, constraints=[constraint(**extra)], **spec)
    assert run_filter(PodTopologySpread(), incoming, infos) == want


def test_match_label_keys_narrow_the_selector() -> None:
    old = [pod(f"old{i}", {"foo": "", "rev": "1"}) for i in range(2)]
    infos = [node_info_of(node("a", "z1"), old), node_info_of(node("x", "z2"))]
    incoming = pod("p", {"foo": "", "rev": "2"}, constraints=[constraint(matchLabelKeys=["rev"])])
    assert run_filter(PodTopologySpread(), incoming, infos) == {"a": OK, "x": OK}
    without = pod("p", {"foo": "", "rev": "2"}, constraints=[constraint()])
    assert run_filter(PodTopologySpread(), without, infos) == {"a": NO, "x": OK}


def test_pre_filter_skips_without_hard_constraints_and_errors_on_bad_selector() -> None:
    plugin = PodTopologySpread()
    infos = cluster(FOUR)
    _, status = plugin.pre_filter(CycleState(), pod("p", FOO), infos)
    assert status.is_skip()
    bad = constraint(selector={"matchExpressions": [{"key": "foo", "operator": "Bogus"}]})
    _, status = plugin.pre_filter(CycleState(), pod("p", FOO, constraints=[bad]), infos)
    assert status.code == Code.ERROR
    assert plugin.filter(CycleState(), pod("p", FOO), infos[0]).code == Code.ERROR


def test_add_and_remove_pod_update_counts_on_a_clone() -> None:
    plugin = PodTopologySpread()
    infos = cluster(FOUR)  # z1=2, z2=1
    by_name = {i.name: i for i in infos}
    incoming = pod("p", FOO, constraints=[constraint()])
    state = CycleState()
    plugin.pre_filter(state, incoming, infos)
    assert not plugin.filter(state, incoming, by_name["a"]).is_success()
    what_if = state.clone()
    victim = next(iter(by_name["a"].pods.values()))
    assert plugin.remove_pod(what_if, incoming, victim, by_name["a"]).is_success()  # z1=1, z2=1
    assert plugin.filter(what_if, incoming, by_name["a"]).is_success()
    assert not plugin.filter(state, incoming, by_name["a"]).is_success()  # the original is untouched
    assert what_if.read(PRE_FILTER_KEY).counts[0] == {"z1": 1, "z2": 1}
    assert state.read(PRE_FILTER_KEY).counts[0] == {"z1": 2, "z2": 1}
    # Adding two pods to z2 makes z2 the crowded zone.
    for i in range(2):
        plugin.add_pod(what_if, incoming, pod_entry(pod(f"n{i}", FOO)), by_name["x"])
    assert plugin.filter(what_if, incoming, by_name["a"]).is_success()
    assert not plugin.filter(what_if, incoming, by_name["x"]).is_success()
    # Pods of another namespace or not matching the selector change nothing.
    plugin.add_pod(what_if, incoming, pod_entry(pod("o", FOO, ns="other")), by_name["a"])
    plugin.add_pod(what_if, incoming, pod_entry(pod("q", {"bar": ""})), by_name["a"])
    assert what_if.read(PRE_FILTER_KEY).counts[0] == {"z1": 1, "z2": 3}


def test_global_minimum_stays_exact_after_updates() -> None:
    plugin = PodTopologySpread()
    infos = cluster({"a": ("z1", 0), "b": ("z2", 0), "c": ("z3", 0)})
    incoming = pod("p", FOO, constraints=[constraint()])
    state = CycleState()
    plugin.pre_filter(state, incoming, infos)
    plugin.add_pod(state, incoming, pod_entry(pod("n1", FOO)), infos[0])
    plugin.add_pod(state, incoming, pod_entry(pod("n2", FOO)), infos[1])
    s = state.read(PRE_FILTER_KEY)
    assert s.min_match(0) == 0  # z3 is still empty
    assert [plugin.filter(state, incoming, i).is_success() for i in infos] == [False, False, True]
    plugin.add_pod(state, incoming, pod_entry(pod("n3", FOO)), infos[2])
    assert s.min_match(0) == 1
    assert all(plugin.filter(state, incoming, i).is_success() for i in infos)


# -- scoring ------------------------------------------------------------------------------------


def run_score(plugin: PodTopologySpread, incoming: dict, infos: list, filtered: list | None = None
              ) -> dict[str, int] | None:
    state = CycleState()
    nodes = filtered if filtered is not None else infos
    status = plugin.pre_score(state, incoming, nodes)
    if status.is_skip():
        return None
    assert status.is_success(), status
    scores = {}
    for info in nodes:
        value, st = plugin.score(state, incoming, info)
        assert st.is_success()
        scores[info.name] = value
    assert plugin.normalize_score(state, incoming, scores).is_success()
    return scores


SOFT = "ScheduleAnyway"
SCORE_CASES = [
    ("no existing pods: all equal", {"a": ("z1", 0), "b": ("z1", 0)},
     [constraint(HOST, action=SOFT)], {"a": 100, "b": 100}),
    ("hostname: fewer matching pods score higher", {"a": ("z1", 2), "b": ("z1", 1), "c": ("z2", 0), "d": ("z2", 0)},
     [constraint(HOST, action=SOFT)], {"a": 0, "b": 50, "c": 100, "d": 100}),
    ("zone: the less crowded zone wins", FOUR, [constraint(action=SOFT)], {"a": 33, "b": 33, "x": 100, "y": 100}),
    ("node missing a key is ignored (0)", {"a": ("z1", 1), "b": (None, 0), "x": ("z2", 0)},
     [constraint(action=SOFT)], {"a": 0, "b": 0, "x": 100}),
    ("DoNotSchedule constraints do not score", FOUR, [constraint()], None),
]


@pytest.mark.parametrize(("layout", "constraints", "want"), [c[1:] for c in SCORE_CASES],
                         ids=[c[0] for c in SCORE_CASES])
def test_score(layout, constraints, want) -> None:
    infos = cluster(layout)
    plugin = PodTopologySpread({}, Handle(Snapshot(infos)))
    assert run_score(plugin, pod("p", FOO, constraints=constraints), infos) == want


def test_score_counts_all_nodes_but_weights_by_candidates() -> None:
    # x is filtered out but its pods still count for zone z2; weight uses candidates' 2 zones.
    infos = cluster({"a": ("z1", 1), "b": ("z2", 0), "x": ("z2", 3)})
    plugin = PodTopologySpread({}, Handle(Snapshot(infos)))
    scores = run_score(plugin, pod("p", FOO, constraints=[constraint(action=SOFT)]), infos, infos[:2])
    # raw: a = 1*ln4 = 1.39 -> 1, b = 3*ln4 = 4.16 -> 4; normalized 100*(4+1-s)/4
    assert scores == {"a": 100, "b": 25}


SERVICE = {"metadata": {"name": "web", "namespace": "default"}, "spec": {"selector": {"app": "web"}}}
WEB = {"app": "web"}


def test_system_default_constraints_use_the_service_selector() -> None:
    infos = [node_info_of(node("a", "z1"), [pod("w1", WEB), pod("w2", WEB), pod("other", {"app": "db"})]),
             node_info_of(node("b", "z1")),
             node_info_of(node("x", "z2"), [pod("w3", WEB)])]
    handle = Handle(Snapshot(infos), objects={"v1/services": [SERVICE]})
    plugin = PodTopologySpread(PodTopologySpread.default_args(), handle)
    incoming = pod("p", WEB)
    # No DoNotSchedule default constraint: PreFilter skips.
    assert plugin.pre_filter(CycleState(), incoming, infos)[1].is_skip()
    # hostname (maxSkew 3, ln5) + zone (maxSkew 5, ln4): a 12, b 9, x 9 -> 75, 100, 100
    assert run_score(plugin, incoming, infos) == {"a": 75, "b": 100, "x": 100}
    # A pod no Service/controller selects gets no default spreading.
    assert run_score(plugin, pod("lonely", {"app": "other"}), infos) is None


def test_system_defaults_do_not_ignore_nodes_without_zone() -> None:
    infos = [node_info_of(node("a", "z1"), [pod("w1", WEB)]), node_info_of(node("b", None))]
    handle = Handle(Snapshot(infos), objects={"v1/services": [SERVICE]})
    plugin = PodTopologySpread({}, handle)
    # a: 1*ln4 + 2 + 1*ln4 (zones z1 and "") + 4 = 8.77 -> 9; b: 0 + 2 (hostname only) -> 2
    assert run_score(plugin, pod("p", WEB), infos) == {"a": 22, "b": 100}


def test_default_selector_from_controllers() -> None:
    rs = {"metadata": {"name": "web-1", "namespace": "default"},
          "spec": {"selector": {"matchLabels": {"app": "web", "hash": "1"}}}}
    owned = pod("p", {"app": "web", "hash": "1"})
    owned["metadata"]["ownerReferences"] = [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web-1",
                                             "uid": "u", "controller": True}]
    handle = Handle(Snapshot(), objects={"apps/v1/replicasets": [rs]})
    plugin = PodTopologySpread({}, handle)
    got = plugin.constraints(owned, SOFT)
    assert [(c.key, c.max_skew) for c in got] == [(HOST, 3), (ZONE, 5)]
    assert got[0].selector.matches({"app": "web", "hash": "1"})
    assert not got[0].selector.matches({"app": "web", "hash": "2"})


def test_list_defaulting_applies_configured_constraints() -> None:
    args = {"defaultingType": "List",
            "defaultConstraints": [{"maxSkew": 1, "topologyKey": ZONE, "whenUnsatisfiable": "DoNotSchedule"}]}
    assert PodTopologySpread.validate_args(args) == []
    infos = [node_info_of(node("a", "z1"), [pod("w1", WEB)]), node_info_of(node("x", "z2"))]
    plugin = PodTopologySpread(args, Handle(Snapshot(infos), objects={"v1/services": [SERVICE]}))
    assert run_filter(plugin, pod("p", WEB), infos) == {"a": NO, "x": OK}
    assert plugin.pre_score(CycleState(), pod("p", WEB), infos).is_skip()  # no ScheduleAnyway default


def test_count_memo_sees_pods_added_later() -> None:
    infos = cluster({"a": ("z1", 0), "x": ("z2", 0)})
    plugin = PodTopologySpread()
    incoming = pod("p", FOO, constraints=[constraint()])
    assert run_filter(plugin, incoming, infos) == {"a": OK, "x": OK}
    infos[0].add_entry("default/late", pod_entry(pod("late", FOO)))
    assert run_filter(plugin, incoming, infos) == {"a": NO, "x": OK}
    infos[0].remove("default/late")
    assert run_filter(plugin, incoming, infos) == {"a": OK, "x": OK}


def test_validate_args_messages() -> None:
    assert PodTopologySpread.validate_args({"defaultingType": "System"}) == []
    assert PodTopologySpread.validate_args({"defaultingType": "Foo"}) == [
        'defaultingType: Unsupported value: "Foo": supported values: "System", "List"']
    one = {"maxSkew": 1, "topologyKey": ZONE, "whenUnsatisfiable": "DoNotSchedule"}
    assert PodTopologySpread.validate_args({"defaultingType": "System", "defaultConstraints": [one]}) == [
        'defaultingType: Invalid value: "System": when .defaultConstraints are not empty']
    bad = {"defaultingType": "List", "defaultConstraints": [
        {"maxSkew": 0, "topologyKey": "", "whenUnsatisfiable": "DoNotSchedule", "labelSelector": {}}, one, one]}
    assert PodTopologySpread.validate_args(bad) == [
        "defaultConstraints[0].maxSkew: Invalid value: 0: not in valid range (0, inf)",
        "defaultConstraints[0].topologyKey: Required value: can not be empty",
        "defaultConstraints[0].labelSelector: Forbidden: constraint must not define a selector, "
        "as they deduced for each pod",
        'defaultConstraints[2]: Duplicate value: "{topology.kubernetes.io/zone, DoNotSchedule}"']


def test_events_to_register() -> None:
    events = {(e.resource, e.action) for e in PodTopologySpread().events_to_register()}
    assert ("Pod", "Delete") in events and ("Node", "UpdateNodeLabel") in events
    assert ("Node", "UpdateNodeTaint") in events and ("Pod", "Add") in events
