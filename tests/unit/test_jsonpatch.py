"""JSON patch (RFC 6902): operations, pointers, atomicity and upstream's error codes."""

from __future__ import annotations

import copy

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pybernetes.machinery.errors import StatusError
from pybernetes.machinery.patch import apply_json_patch
from pybernetes.machinery.patch.jsonpatch import REJECTED, parse_pointer

DOC = {"metadata": {"name": "x", "labels": {"a": "1"}}, "spec": {"items": [1, 2, 3]}}


def apply(ops, doc=DOC):
    return apply_json_patch(doc, ops)


def failure(ops, doc=DOC) -> StatusError:
    with pytest.raises(StatusError) as info:
        apply_json_patch(doc, ops)
    return info.value


def test_add_replace_remove():
    out = apply(
        [
            {"op": "add", "path": "/metadata/labels/b", "value": "2"},
            {"op": "replace", "path": "/metadata/name", "value": "y"},
            {"op": "remove", "path": "/metadata/labels/a"},
        ]
    )
    assert out["metadata"] == {"name": "y", "labels": {"b": "2"}}


def test_array_insert_append_and_negative_index():
    out = apply(
        [
            {"op": "add", "path": "/spec/items/0", "value": 0},
            {"op": "add", "path": "/spec/items/-", "value": 9},
            {"op": "remove", "path": "/spec/items/-1"},
            {"op": "replace", "path": "/spec/items/1", "value": 10},
        ]
    )
    assert out["spec"]["items"] == [0, 10, 2, 3]


def test_insert_at_length_appends():
    assert apply([{"op": "add", "path": "/spec/items/3", "value": 4}])["spec"]["items"] == [1, 2, 3, 4]


def test_move_and_copy():
    out = apply(
        [
            {"op": "copy", "from": "/metadata/labels", "path": "/spec/labels"},
            {"op": "move", "from": "/metadata/name", "path": "/spec/name"},
        ]
    )
    assert out["spec"]["labels"] == {"a": "1"}
    assert out["spec"]["name"] == "x"
    assert "name" not in out["metadata"]
    out["spec"]["labels"]["z"] = "changed"
    assert "z" not in out["metadata"]["labels"]  # copy is deep


def test_test_op_success_and_type_strictness():
    assert apply([{"op": "test", "path": "/spec/items/0", "value": 1}]) == DOC
    assert apply([{"op": "test", "path": "/spec/items/0", "value": 1.0}]) == DOC
    err = failure([{"op": "test", "path": "/spec/items/0", "value": True}])
    assert err.code == 422


def test_pointer_escapes():
    doc = {"metadata": {"annotations": {"a/b": "1", "c~d": "2"}}}
    out = apply_json_patch(
        doc,
        [
            {"op": "replace", "path": "/metadata/annotations/a~1b", "value": "x"},
            {"op": "remove", "path": "/metadata/annotations/c~0d"},
        ],
    )
    assert out == {"metadata": {"annotations": {"a/b": "x"}}}
    assert parse_pointer("/a~01") == ["a~1"]


def test_input_never_mutated_even_on_failure():
    before = copy.deepcopy(DOC)
    ops = [{"op": "add", "path": "/metadata/labels/new", "value": "v"}]
    apply(ops)
    failure(ops + [{"op": "test", "path": "/metadata/name", "value": "nope"}])
    assert DOC == before
    value = {"nested": [1]}
    out = apply([{"op": "add", "path": "/spec/v", "value": value}])
    out["spec"]["v"]["nested"].append(2)
    assert value == {"nested": [1]}


def test_failed_test_is_422_with_upstream_message_and_cause():
    err = failure([{"op": "test", "path": "/metadata/resourceVersion", "value": "5"}])
    assert (err.code, err.reason, err.message) == (422, "Invalid", REJECTED)
    assert "test operation" in err.details["causes"][0]["message"]


@pytest.mark.parametrize(
    "op, words",
    [
        ({"op": "add", "path": "/missing/deep/x", "value": 1}, "add operation does not apply"),
        ({"op": "remove", "path": "/metadata/nope"}, "nonexistent key"),
        ({"op": "replace", "path": "/metadata/nope", "value": 1}, "replace operation does not apply"),
        ({"op": "move", "from": "/nope", "path": "/x"}, "move operation does not apply"),
        ({"op": "copy", "from": "/nope", "path": "/x"}, "copy operation does not apply"),
        ({"op": "add", "path": "/spec/items/7", "value": 1}, "invalid index"),
        ({"op": "add", "path": "/spec/items/01", "value": 1}, "not a proper array index"),
        ({"op": "frobnicate", "path": "/x"}, "Unexpected kind: frobnicate"),
        ({"op": "add", "value": 1}, "missing the path"),
        ({"op": "add", "path": "/x"}, "missing the value"),
        ({"op": "move", "from": "/metadata", "path": "/metadata/labels/m"}, "prefix"),
    ],
)
def test_inapplicable_operations_are_422(op, words):
    err = failure([op])
    assert err.code == 422
    assert words in err.details["causes"][0]["message"]


@pytest.mark.parametrize(
    "ops, kind",
    [({"op": "add"}, "object"), ("x", "string"), ([1], "number"), (None, "null")],
)
def test_malformed_documents_are_400(ops, kind):
    err = failure(ops)
    assert err.code == 400 and err.reason == "BadRequest"
    assert f"cannot unmarshal {kind}" in err.message


def test_too_many_operations_is_413():
    err = failure([{"op": "test", "path": "/spec", "value": None}] * 10001)
    assert err.code == 413
    assert "10000, got 10001" in err.message


def test_root_replace_and_add():
    assert apply([{"op": "replace", "path": "", "value": {"a": 1}}]) == {"a": 1}


json_scalars = st.one_of(st.none(), st.booleans(), st.integers(-5, 5), st.text(max_size=3))
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner, max_size=3),
    max_leaves=10,
)


@given(st.dictionaries(st.text(max_size=4), json_values, max_size=5), st.text(max_size=4), json_values)
def test_add_then_remove_round_trips(doc, key, value):
    pointer = "/" + key.replace("~", "~0").replace("/", "~1")
    added = apply_json_patch(doc, [{"op": "add", "path": pointer, "value": value}])
    assert added[key] == value
    if key not in doc:
        assert apply_json_patch(added, [{"op": "remove", "path": pointer}]) == doc
    assert apply_json_patch(added, [{"op": "test", "path": pointer, "value": value}]) == added
