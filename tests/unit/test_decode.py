"""Request body decoding: JSON, YAML, duplicate fields and upstream-worded errors."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pybernetes.machinery.decode import decode_body, encode, json_duplicate_paths, summarize
from pybernetes.machinery.errors import StatusError

CM = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}, "data": {"a": "1"}}


def rejected(body: bytes, ct: str = "application/json", **kw) -> StatusError:
    with pytest.raises(StatusError) as info:
        decode_body(body, ct, **kw)
    return info.value


@pytest.mark.parametrize(
    "ct",
    [
        "application/json",
        "application/json; charset=utf-8",
        "application/merge-patch+json",
        "application/strategic-merge-patch+json",
        "application/yaml",
    ],
)
def test_json_round_trip_in_every_json_type(ct):
    assert decode_body(encode(CM), ct) == (CM, [])


def test_pretty_printed_json_has_no_false_duplicates():
    body = json.dumps(CM, indent=2).encode()
    assert decode_body(body, "application/json") == (CM, [])
    tricky = {"metadata": {"annotations": {"x": 'a":b', "y": "\\\":"}}}
    assert decode_body(json.dumps(tricky).encode(), "application/json") == (tricky, [])


def test_json_duplicates_reported_with_paths_last_value_kept():
    body = (
        b'{"apiVersion":"v1","kind":"Pod","metadata":{"name":"a","name":"b"},'
        b'"spec":{"containers":[{"name":"c","image":"x","image":"y"}]},"kind":"Pod"}'
    )
    obj, dups = decode_body(body, "application/json")
    assert obj["metadata"]["name"] == "b"
    assert obj["spec"]["containers"][0]["image"] == "y"
    assert dups == ["kind", "metadata.name", "spec.containers[0].image"]


def test_duplicates_found_when_whitespace_precedes_colon():
    assert json_duplicate_paths(b'{"a" : 1, "a" : 2}') == ["a"]
    assert decode_body(b'{"a" : 1, "a" : 2}', "application/json")[1] == ["a"]


def test_yaml_object_with_duplicates_and_plain_strings():
    body = b"""
apiVersion: v1
kind: ConfigMap
metadata:
  name: x
  name: y
  labels: {a: "1", a: "2"}
data:
  when: 2024-01-01
  flag: "true"
  list:
    - {k: 1, k: 2}
"""
    obj, dups = decode_body(body, "application/yaml")
    assert obj["metadata"]["name"] == "y"
    assert obj["data"]["when"] == "2024-01-01"
    assert obj["data"]["flag"] == "true"
    assert dups == ["metadata.name", "metadata.labels.a", "data.list[0].k"]


def test_yaml_non_string_keys_become_strings_and_anchors_work():
    obj, _ = decode_body(b"a: &x {b: 1}\nc: *x\n1: one\ntrue: yes\n", "application/yaml")
    assert obj == {"a": {"b": 1}, "c": {"b": 1}, "1": "one", "true": True}


def test_first_yaml_document_is_used():
    obj, _ = decode_body(b"a: 1\n---\nb: 2\n", "application/yaml")
    assert obj == {"a": 1}


def test_malformed_json_is_400_worded_like_upstream():
    err = rejected(b'{"apiVersion": "v1", "kind": "Conf', kind="ConfigMap")
    assert err.code == 400 and err.reason == "BadRequest"
    assert err.message.startswith(
        "the object provided is unrecognized (must be of type ConfigMap): "
        "couldn't get version/kind; json parse error: "
    )
    assert err.message.endswith('({"apiVersion": "v1", "kind": " ...)')
    plain = rejected(b"{oops")
    assert plain.message.startswith("couldn't get version/kind; json parse error: ")


def test_empty_body():
    assert "unexpected end of JSON input" in rejected(b"").message


@pytest.mark.parametrize("body, kind", [(b"[1, 2]", "array"), (b'"x"', "string"), (b"3", "number"),
                                        (b"null", "null")])
def test_non_object_top_level_is_400(body, kind):
    err = rejected(body)
    assert err.code == 400
    assert f"json: cannot unmarshal {kind} into Go value" in err.message


def test_non_object_allowed_for_json_patch():
    ops = [{"op": "add", "path": "/a", "value": 1}]
    assert decode_body(encode(ops), "application/json-patch+json", require_object=False) == (ops, [])


@pytest.mark.parametrize("body", [b"a: [1\n", b"a: b: c\n", b"a: *nope\n", b"- a\nb: c\n", b"x: !!python/name:os.system\n",
                                  b"a: .inf\n"])
def test_malformed_yaml_is_400(body):
    err = rejected(body, "application/yaml")
    assert err.code == 400
    assert "error converting YAML to JSON: yaml: " in err.message or "cannot unmarshal" in err.message


def test_yaml_alias_bombs_are_refused():
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    for i in range(1, 9):
        prev = f"*a{i - 1}"
        lines.append(f"a{i}: &a{i} [{', '.join([prev] * 10)}]")
    err = rejected("\n".join(lines).encode(), "application/yaml")
    assert "excessive aliasing" in err.message


def test_unknown_media_type_is_415():
    err = rejected(b"{}", "application/xml")
    assert err.code == 415
    assert "accepted media types include" in err.message


def test_summarize():
    assert summarize(b"") == "<empty>"
    assert summarize(b"\x01\x02") == "0102"
    assert summarize(b'{"a": 1}') == '{"a": 1}'
    assert summarize(b"{" + b"a" * 40).endswith(" ...")


keys = st.text(alphabet='ab"\\:{ ', min_size=1, max_size=3)
leaf = st.one_of(st.integers(-(2**63), 2**63 - 1), st.text(alphabet='x":\\', max_size=4), st.booleans(), st.none())
trees = st.recursive(leaf, lambda inner: st.dictionaries(keys, inner, max_size=3) | st.lists(inner, max_size=3),
                     max_leaves=10)


@given(st.dictionaries(keys, trees, max_size=4), st.booleans())
def test_documents_without_duplicates_never_report_any(obj, pretty):
    body = json.dumps(obj, indent=2 if pretty else None).encode()
    assert decode_body(body, "application/json") == (obj, [])


@given(st.dictionaries(keys, trees, min_size=1, max_size=4))
def test_a_repeated_top_level_key_is_always_found(obj):
    first = next(iter(obj))
    text = json.dumps(obj)
    body = ("{" + json.dumps(first) + ": 0, " + text[1:]).encode()
    assert first in decode_body(body, "application/json")[1]
