"""Unit tests of machinery.selectors: label and field selectors as upstream parses and prints them."""

from __future__ import annotations

import time

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pybernetes.machinery.errors import StatusError
from pybernetes.machinery.selectors import (
    LabelSelector,
    Requirement,
    SelectorParseError,
    format_label_selector,
    format_labels,
    label_selector_from_dict,
    parse_field_selector,
    parse_label_selector,
    selector_from_set,
    unsupported_field_error,
)

# --------------------------------------------------------------------------- label syntax


@pytest.mark.parametrize(
    ("text", "canonical"),
    [
        ("", ""),
        ("a=b", "a=b"),
        ("a==b", "a==b"),
        ("a!=b", "a!=b"),
        ("  a = b ,  c  ", "a=b,c"),
        ("x in (b,a), !y", "x in (a,b),!y"),
        ("a notin (x)", "a notin (x)"),
        ("a in (x,x,y)", "a in (x,y)"),
        ("z>1,y<3", "y<3,z>1"),
        ("a in ()", "a in ()"),
        ("a in (,)", "a in ()"),
        ("a=", "a="),
        ("example.com/app=web,tier", "example.com/app=web,tier"),
        ("in=1", "in=1"),
        ("a in (in,notin)", "a in (in,notin)"),
        ("b=1,a=2,b!=3", "a=2,b=1,b!=3"),
    ],
)
def test_parse_and_print(text, canonical):
    assert str(parse_label_selector(text)) == canonical


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("a b", "unable to parse requirement: found 'b', expected: in, notin, =, ==, !=, gt, lt"),
        ("a=b c", "found 'c', expected: ',' or 'end of string'"),
        ("a in x", "unable to parse requirement: found 'x' expected: '('"),
        ("!", "unable to parse requirement: found '', expected: identifier"),
        ("a,", "found '', expected: identifier after ','"),
        (",a", "found ',', expected: !, identifier, or 'end of string'"),
        ("a in (b", "unable to parse requirement: found '', expected: ',' or ')'"),
        ("a=(", "unable to parse requirement: found '(', expected: identifier"),
        ("!a=b", "found '=', expected: ',' or 'end of string'"),
        ("a>x", 'unable to parse requirement: values[0]: Invalid value: "x": for \'Gt\', \'Lt\' operators, '
                "the value must be an integer"),
    ],
)
def test_parse_errors_are_400_with_upstream_text(text, message):
    with pytest.raises(StatusError) as info:
        parse_label_selector(text)
    assert info.value.code == 400 and info.value.reason == "BadRequest"
    assert info.value.message == message


def test_invalid_key_and_value_messages():
    with pytest.raises(StatusError) as info:
        parse_label_selector("a/b/c=d")
    assert info.value.message.startswith('unable to parse requirement: <nil>: Invalid value: "a/b/c": '
                                         "a qualified name must consist of")
    with pytest.raises(StatusError) as info:
        parse_label_selector("app=b/c")
    assert info.value.message.startswith('unable to parse requirement: values[0][app]: Invalid value: "b/c": '
                                         "a valid label must be an empty string")


def test_matching_semantics():
    labels = {"app": "web", "tier": "front", "n": "5"}
    cases = {
        "app=web": True, "app==web": True, "app=db": False, "app!=db": True, "app!=web": False,
        "missing!=x": True, "app in (db,web)": True, "app notin (web)": False,
        "missing notin (x)": True, "missing in (x)": False, "app": True, "!app": False,
        "!missing": True, "missing": False, "n>4": True, "n>5": False, "n<6": True,
        "app>1": False, "missing<3": False, "app=web,tier=front": True, "app=web,tier=back": False,
        "": True, "missing=": False,
    }
    for text, expected in cases.items():
        assert parse_label_selector(text).matches(labels) is expected, text
    assert parse_label_selector("missing=").matches({"missing": ""})
    assert parse_label_selector("a=b").matches(None) is False
    assert parse_label_selector("!a").matches(None) is True


def test_empty_and_nothing():
    assert parse_label_selector("").empty
    assert not parse_label_selector("a").empty
    nothing = LabelSelector.nothing()
    assert not nothing.empty and nothing.matches_nothing
    assert not nothing.matches({}) and not nothing.matches({"a": "b"})


def test_requires_exact():
    sel = parse_label_selector("app=web,tier in (a)")
    assert sel.requires_exact("app") == "web" and sel.requires_exact("tier") == "a"
    assert parse_label_selector("a in (x,y)").requires_exact("a") is None


# --------------------------------------------------------------------------- metav1.LabelSelector


def test_from_dict_and_format():
    d = {"matchLabels": {"b": "1", "a": "2"},
         "matchExpressions": [{"key": "c", "operator": "In", "values": ["y", "x"]},
                              {"key": "d", "operator": "DoesNotExist"}]}
    sel = label_selector_from_dict(d)
    assert str(sel) == "a=2,b=1,c in (x,y),!d"
    assert format_label_selector(d) == "a=2,b=1,c in (x,y),!d"
    assert sel.matches({"a": "2", "b": "1", "c": "x"})
    assert not sel.matches({"a": "2", "b": "1", "c": "x", "d": ""})
    assert format_label_selector(None) == "<none>"
    assert format_label_selector({}) == "<none>"
    assert format_label_selector({"matchExpressions": [{"key": "c", "operator": "Bad"}]}) == "<error>"
    assert label_selector_from_dict({}).empty
    assert label_selector_from_dict(None).empty
    assert label_selector_from_dict(None, nil_matches_nothing=True).matches_nothing


def test_format_labels():
    assert format_labels({"zone": "a", "disk": "ssd"}) == "disk=ssd,zone=a"
    assert format_labels({}) == "<none>"
    assert format_labels(None) == "<none>"


def test_from_dict_errors():
    with pytest.raises(SelectorParseError, match='"Bad" is not a valid label selector operator'):
        label_selector_from_dict({"matchExpressions": [{"key": "c", "operator": "Bad"}]})
    with pytest.raises(SelectorParseError, match="values set can't be empty"):
        label_selector_from_dict({"matchExpressions": [{"key": "c", "operator": "In", "values": []}]})
    with pytest.raises(SelectorParseError, match="values set must be empty"):
        label_selector_from_dict({"matchExpressions": [{"key": "c", "operator": "Exists", "values": ["a"]}]})
    with pytest.raises(ValueError):
        label_selector_from_dict({"matchLabels": {"a": "b c"}})
    with pytest.raises(ValueError):
        label_selector_from_dict({"matchLabels": "x"})


def test_selector_from_set_and_requirement():
    sel = selector_from_set({"b": "2", "a": "1"})
    assert str(sel) == "a=1,b=2"
    assert sel.matches({"a": "1", "b": "2", "c": "3"})
    req = Requirement.new("a", "in", ["y", "x"])
    assert str(req) == "a in (x,y)" and req.matches({"a": "x"})
    assert req == Requirement("a", "in", ["x", "y"])
    with pytest.raises(SelectorParseError, match="exact-match compatibility requires one single value"):
        Requirement.new("a", "=", ["x", "y"])
    with pytest.raises(SelectorParseError, match="Unsupported value"):
        Requirement.new("a", "~", [])


# --------------------------------------------------------------------------- properties

_key = st.from_regex(r"([a-z]{1,5}\.[a-z]{2,3}/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,8}[A-Za-z0-9])?", fullmatch=True)
_value = st.from_regex(r"([A-Za-z0-9]([-A-Za-z0-9_.]{0,8}[A-Za-z0-9])?)?", fullmatch=True)


@st.composite
def _requirement_text(draw):
    key = draw(_key)
    kind = draw(st.sampled_from(["=", "==", "!=", "in", "notin", "exists", "!", "gt", "lt"]))
    if kind in ("=", "==", "!="):
        return f"{key}{kind}{draw(_value)}"
    if kind in ("in", "notin"):
        values = draw(st.lists(_value.filter(bool), min_size=1, max_size=4))
        return f"{key} {kind} ({','.join(values)})"
    if kind == "exists":
        return key
    if kind == "!":
        return "!" + key
    number = draw(st.integers(0, 1000))  # "-1" is no valid label value
    return f"{key}{'>' if kind == 'gt' else '<'}{number}"


@given(st.lists(_requirement_text(), max_size=5),
       st.dictionaries(_key, _value, max_size=5))
def test_string_round_trip_and_matching_stable(terms, labels):
    text = ", ".join(terms)
    sel = parse_label_selector(text)
    again = parse_label_selector(str(sel))
    assert str(again) == str(sel)
    assert again == sel
    assert again.matches(labels) == sel.matches(labels)
    # a conjunction matches iff every single term matches
    assert sel.matches(labels) == all(parse_label_selector(t).matches(labels) for t in terms)


@given(st.text(max_size=40))
def test_random_text_never_crashes(text):
    try:
        sel = parse_label_selector(text)
    except StatusError as err:
        assert err.code == 400
    else:
        assert str(parse_label_selector(str(sel))) == str(sel)


def test_matching_is_fast():
    labels = {f"k{i}": f"v{i}" for i in range(10)}
    equality = parse_label_selector("k1=v1,k5=v5")
    sets = parse_label_selector("k1 in (v1,x),!zz,k3")
    n = 20000
    start = time.perf_counter()
    for _ in range(n):
        equality.matches(labels)
        sets.matches(labels)
    per_call = (time.perf_counter() - start) / (2 * n)
    assert per_call < 20e-6, per_call  # ~0.3-1 us on the CI machine; generous bound


# --------------------------------------------------------------------------- field selectors


def test_field_selector_parse_and_print():
    sel = parse_field_selector("spec.nodeName=n1,metadata.name==x,status.phase!=Running")
    assert str(sel) == "metadata.name=x,spec.nodeName=n1,status.phase!=Running"
    assert sel.field_names() == {"spec.nodeName", "metadata.name", "status.phase"}
    fields = {"metadata.name": "x", "spec.nodeName": "n1", "status.phase": "Pending"}
    assert sel.matches(fields)
    assert not sel.matches({**fields, "status.phase": "Running"})
    assert sel.requires_exact("spec.nodeName") == "n1"
    assert sel.requires_exact("status.phase") is None
    assert parse_field_selector("").empty and parse_field_selector("").matches({})
    assert parse_field_selector("spec.nodeName=").matches({"spec.nodeName": ""})
    assert parse_field_selector("spec.nodeName=").matches({})
    assert not parse_field_selector("spec.nodeName!=").matches({})


def test_field_selector_escaping():
    sel = parse_field_selector(r"a=b\,c\=d\\e,f=g")
    assert sel.terms == (("a", "=", "b,c=d\\e"), ("f", "=", "g"))
    assert str(sel) == r"a=b\,c\=d\\e,f=g"
    assert sel.matches({"a": "b,c=d\\e", "f": "g"})


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("a", "invalid selector: 'a'; can't understand 'a'"),
        ("x=1,a", "invalid selector: 'x=1,a'; can't understand 'a'"),
        ("a=b=c", "invalid field selector: unescaped character in value: 61"),
        ("a=b\\x", "invalid field selector: invalid escape sequence: \\x"),
        ("a=b\\", "invalid field selector: invalid escape sequence: \\"),
    ],
)
def test_field_selector_errors(text, message):
    with pytest.raises(StatusError) as info:
        parse_field_selector(text)
    assert info.value.code == 400 and info.value.message == message


def test_field_selector_transform_and_unsupported():
    sel = parse_field_selector("spec.host=n1")
    moved = sel.transform(lambda f, v: ("spec.nodeName" if f == "spec.host" else f, v))
    assert str(moved) == "spec.nodeName=n1"
    err = unsupported_field_error("spec.foo")
    assert err.code == 400 and err.message == "field label not supported: spec.foo"


@given(st.dictionaries(st.from_regex(r"[a-z]{1,6}(\.[a-z]{1,6})?", fullmatch=True), st.text(max_size=8),
                       min_size=1, max_size=4))
def test_field_selector_round_trip(fields):
    from pybernetes.machinery.selectors import escape_field_value

    text = ",".join(f"{k}={escape_field_value(v)}" for k, v in fields.items())
    sel = parse_field_selector(text)
    assert sel.matches(fields)
    assert parse_field_selector(str(sel)) == sel
