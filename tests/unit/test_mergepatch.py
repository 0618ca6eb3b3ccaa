"""JSON merge patch (RFC 7386) and its inverse."""

from __future__ import annotations

import copy

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pybernetes.machinery.patch import apply_merge_patch, create_merge_patch

# The examples of RFC 7386 appendix A.
RFC_CASES = [
    ({"a": "b"}, {"a": "c"}, {"a": "c"}),
    ({"a": "b"}, {"b": "c"}, {"a": "b", "b": "c"}),
    ({"a": "b"}, {"a": None}, {}),
    ({"a": "b", "b": "c"}, {"a": None}, {"b": "c"}),
    ({"a": ["b"]}, {"a": "c"}, {"a": "c"}),
    ({"a": "c"}, {"a": ["b"]}, {"a": ["b"]}),
    ({"a": {"b": "c"}}, {"a": {"b": "d", "c": None}}, {"a": {"b": "d"}}),
    ({"a": [{"b": "c"}]}, {"a": [1]}, {"a": [1]}),
    (["a", "b"], ["c", "d"], ["c", "d"]),
    ({"a": "b"}, ["c"], ["c"]),
    ({"a": "foo"}, None, None),
    ({"a": "foo"}, "bar", "bar"),
    ({"e": None}, {"a": 1}, {"e": None, "a": 1}),
    ([1, 2], {"a": "b", "c": None}, {"a": "b"}),
    ({}, {"a": {"bb": {"ccc": None}}}, {"a": {"bb": {}}}),
]


@pytest.mark.parametrize("target, patch, result", RFC_CASES)
def test_rfc7386_examples(target, patch, result):
    assert apply_merge_patch(target, patch) == result


def test_inputs_not_mutated_and_result_owns_its_containers():
    target = {"metadata": {"labels": {"a": "1"}}, "spec": {"x": [1]}}
    patch = {"metadata": {"labels": {"b": "2"}}, "data": {"k": [1]}}
    before_t, before_p = copy.deepcopy(target), copy.deepcopy(patch)
    out = apply_merge_patch(target, patch)
    out["spec"]["x"].append(2)
    out["data"]["k"].append(2)
    out["metadata"]["labels"]["c"] = "3"
    assert target == before_t and patch == before_p


def test_create_merge_patch_deletes_and_changes():
    original = {"a": 1, "b": {"c": 2, "d": 3}, "e": [1]}
    modified = {"a": 1, "b": {"c": 5}, "f": "new"}
    patch = create_merge_patch(original, modified)
    assert patch == {"b": {"c": 5, "d": None}, "e": None, "f": "new"}
    assert apply_merge_patch(original, patch) == modified


keys = st.text(alphabet="abcdef", min_size=1, max_size=3)
scalars = st.one_of(st.booleans(), st.integers(-3, 3), st.text(max_size=3), st.floats(allow_nan=False, width=32))
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(keys, inner, max_size=3),
    max_leaves=12,
)
documents = st.dictionaries(keys, values, max_size=5)


@given(documents, documents)
def test_merge_patch_of_a_diff_reproduces_the_target(original, target):
    patch = create_merge_patch(original, target)
    assert apply_merge_patch(original, patch) == target


@given(documents, documents)
def test_applying_twice_is_idempotent(doc, patch):
    once = apply_merge_patch(doc, patch)
    assert apply_merge_patch(once, patch) == once
