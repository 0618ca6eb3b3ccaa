"""nodeselector: nodeSelectorTerms semantics (ORed terms, ANDed expressions, operators, name
fields, empty and unparsable terms), nodeSelector + affinity, preferred weights, and the
metadata.name narrowing."""

from __future__ import annotations

import pytest

from pybernetes.machinery.nodeaffinity import (
    NodeSelector,
    NodeSelectorError,
    PreferredSchedulingTerms,
    RequiredNodeAffinity,
    compile_matcher,
    match_fields_node_names,
    parse_term,
)


def expr(key: str, op: str, *values: str) -> dict:
    out: dict = {"key": key, "operator": op}
    if values:
        out["values"] = list(values)
    return out


def term(*exprs: dict, fields: list[dict] | None = None) -> dict:
    out: dict = {}
    if exprs:
        out["matchExpressions"] = list(exprs)
    if fields is not None:
        out["matchFields"] = fields
    return out


LABELS = {"zone": "a", "disk": "ssd", "gpus": "4", "bad-int": "x"}

CASES = [
    ("In matches", [term(expr("zone", "In", "a", "b"))], True),
    ("In other value", [term(expr("zone", "In", "b"))], False),
    ("In missing label", [term(expr("rack", "In", "r1"))], False),
    ("NotIn other value", [term(expr("zone", "NotIn", "b"))], True),
    ("NotIn same value", [term(expr("zone", "NotIn", "a"))], False),
    ("NotIn missing label", [term(expr("rack", "NotIn", "r1"))], True),
    ("Exists", [term(expr("disk", "Exists"))], True),
    ("Exists missing", [term(expr("rack", "Exists"))], False),
    ("DoesNotExist", [term(expr("rack", "DoesNotExist"))], True),
    ("DoesNotExist present", [term(expr("disk", "DoesNotExist"))], False),
    ("Gt true", [term(expr("gpus", "Gt", "3"))], True),
    ("Gt equal is false", [term(expr("gpus", "Gt", "4"))], False),
    ("Lt true", [term(expr("gpus", "Lt", "5"))], True),
    ("Lt false", [term(expr("gpus", "Lt", "4"))], False),
    ("Gt on a non-integer label", [term(expr("bad-int", "Gt", "1"))], False),
    ("Gt on a missing label", [term(expr("rack", "Gt", "1"))], False),
    ("Gt with a signed bound: not a label value, dropped", [term(expr("gpus", "Gt", "+3"))], False),
    ("Lt on a non-integer label", [term(expr("bad-int", "Lt", "100"))], False),
    ("expressions ANDed", [term(expr("zone", "In", "a"), expr("disk", "In", "hdd"))], False),
    ("terms ORed", [term(expr("zone", "In", "b")), term(expr("disk", "In", "ssd"))], True),
    ("empty term matches nothing", [{}], False),
    ("empty expression list matches nothing", [term(fields=[])], False),
    ("no terms match nothing", [], False),
    ("name In", [term(fields=[expr("metadata.name", "In", "n1")])], True),
    ("name In other", [term(fields=[expr("metadata.name", "In", "n2")])], False),
    ("name NotIn", [term(fields=[expr("metadata.name", "NotIn", "n2")])], True),
    ("name NotIn self", [term(fields=[expr("metadata.name", "NotIn", "n1")])], False),
    ("labels and name ANDed", [term(expr("zone", "In", "a"), fields=[expr("metadata.name", "In", "n2")])], False),
    ("unparsable term dropped, other matches", [term(expr("zone", "Foo", "a")), term(expr("zone", "In", "a"))], True),
    ("only unparsable terms", [term(expr("zone", "In"))], False),
    ("bad field key dropped", [term(fields=[expr("metadata.uid", "In", "n1")])], False),
    ("field with two values dropped", [term(fields=[expr("metadata.name", "In", "n1", "n2")])], False),
    ("Gt with a non-integer value dropped", [term(expr("gpus", "Gt", "x"))], False),
]


@pytest.mark.parametrize(("title", "terms", "want"), CASES, ids=[c[0] for c in CASES])
def test_required_terms(title: str, terms: list, want: bool) -> None:
    selector = NodeSelector.lenient({"nodeSelectorTerms": terms})
    assert selector.matches(LABELS, "n1") is want
    # the compiled matcher Filter uses agrees with the parsed selector
    compiled = RequiredNodeAffinity.of_pod({"spec": {"affinity": {"nodeAffinity": {
        "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": terms}}}}})
    assert bool(compiled.matches(LABELS, "n1")) is want
    assert bool(compile_matcher((), selector.terms)(LABELS, "n1")) is want


def test_strict_parse_names_the_problem() -> None:
    with pytest.raises(NodeSelectorError, match="not a valid node selector operator"):
        NodeSelector.strict({"nodeSelectorTerms": [term(expr("zone", "Foo", "a"))]})
    with pytest.raises(NodeSelectorError, match="values set can't be empty"):
        parse_term(term(expr("zone", "In")))
    with pytest.raises(NodeSelectorError, match="one element"):
        parse_term(term(fields=[expr("metadata.name", "In", "a", "b")]))
    assert parse_term({}) is None
    lenient = NodeSelector.lenient({"nodeSelectorTerms": [term(expr("zone", "Foo", "a"))]})
    assert lenient.terms == () and len(lenient.errors) == 1


@pytest.mark.parametrize(("pod_spec", "labels", "want"), [
    ({}, {}, True),
    ({"nodeSelector": {"zone": "a"}}, {"zone": "a"}, True),
    ({"nodeSelector": {"zone": "a"}}, {"zone": "b"}, False),
    ({"nodeSelector": {"zone": ""}}, {}, False),
    ({"nodeSelector": {"zone": "a"}, "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
        "nodeSelectorTerms": [term(expr("disk", "In", "ssd"))]}}}}, {"zone": "a", "disk": "hdd"}, False),
    ({"nodeSelector": {"zone": "a"}, "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
        "nodeSelectorTerms": [term(expr("disk", "In", "ssd"))]}}}}, {"zone": "a", "disk": "ssd"}, True),
    ({"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": []}}}},
     {"zone": "a"}, False),
    ({"affinity": {"nodeAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": []}}}, {}, True),
])
def test_required_node_affinity(pod_spec: dict, labels: dict, want: bool) -> None:
    required = RequiredNodeAffinity.of_pod({"spec": pod_spec})
    assert required.matches(labels, "n1") is want
    assert required.matches_node({"metadata": {"name": "n1", "labels": labels}}) is want


def test_preferred_terms_sum_matching_weights() -> None:
    terms = PreferredSchedulingTerms.strict([
        {"weight": 5, "preference": term(expr("zone", "In", "a"))},
        {"weight": 3, "preference": term(expr("disk", "In", "ssd"))},
        {"weight": 0, "preference": term(expr("zone", "In", "a"))},  # ignored
        {"weight": 7, "preference": {}},  # empty preference: ignored
    ])
    assert len(terms.terms) == 2
    assert terms.score(LABELS, "n1") == 8
    assert terms.score({"zone": "a"}, "n1") == 5
    assert terms.score({}, "n1") == 0
    with pytest.raises(NodeSelectorError):
        PreferredSchedulingTerms.strict([{"weight": 1, "preference": term(expr("zone", "Bad"))}])


@pytest.mark.parametrize(("terms", "want"), [
    ([term(fields=[expr("metadata.name", "In", "a")])], {"a"}),
    ([term(fields=[expr("metadata.name", "In", "a")]), term(fields=[expr("metadata.name", "In", "b")])], {"a", "b"}),
    ([term(fields=[expr("metadata.name", "In", "a", "b"), expr("metadata.name", "In", "b", "c")])], {"b"}),
    ([term(fields=[expr("metadata.name", "In", "a"), expr("metadata.name", "In", "b")])], set()),
    ([term(fields=[expr("metadata.name", "In", "a")]), term(expr("zone", "In", "x"))], None),
    ([term(fields=[expr("metadata.name", "NotIn", "a")])], None),
    ([], None),
])
def test_match_fields_node_names(terms: list, want: set | None) -> None:
    assert match_fields_node_names({"nodeSelectorTerms": terms}) == want
