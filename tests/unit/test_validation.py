"""Unit tests of machinery.validation and machinery.validation_net (upstream's rules and texts)."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pybernetes.machinery import validation as mv
from pybernetes.machinery.errors import invalid

SUBDOMAIN_MSG = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', "
    "and must start and end with an alphanumeric character (e.g. 'example.com', regex used for "
    "validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
)
LABEL_MSG = (
    "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must "
    "start and end with an alphanumeric character (e.g. 'my-name' or '123-abc', regex used for "
    "validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')"
)
DNS1035_MSG = (
    "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an "
    "alphabetic character, and end with an alphanumeric character (e.g. 'my-name' or 'abc-123', "
    "regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')"
)


# --------------------------------------------------------------------------- names


@pytest.mark.parametrize("name", ["a", "abc", "a-b", "0", "a.b", "a-b.c-d", "1.2.3.4", "a" * 253])
def test_subdomain_accepts(name):
    # upstream checks the total length only, not the length of each dot-separated label
    assert mv.is_dns1123_subdomain(name) == []


@pytest.mark.parametrize("name", ["", "A", "-a", "a-", "a..b", ".a", "a.", "a_b", "a b", "ä", "a/b"])
def test_subdomain_rejects_with_upstream_text(name):
    assert mv.is_dns1123_subdomain(name) == [SUBDOMAIN_MSG]


def test_subdomain_too_long():
    errs = mv.is_dns1123_subdomain("a" * 254)
    assert errs == ["must be no more than 253 characters"]


def test_label_rules():
    assert mv.is_dns1123_label("my-name") == []
    assert mv.is_dns1123_label("a.b") == ["must not contain dots"]
    assert mv.is_dns1123_label("My") == [LABEL_MSG]
    assert mv.is_dns1123_label("a" * 64) == ["must be no more than 63 characters"]
    assert mv.is_dns1123_label("") == [LABEL_MSG]


def test_dns1035_label():
    assert mv.is_dns1035_label("web-1") == []
    assert mv.is_dns1035_label("1web") == [DNS1035_MSG]
    assert mv.is_dns1035_label("a" * 64) == ["must be no more than 63 characters"]


def test_qualified_names():
    assert mv.is_qualified_name("app") == []
    assert mv.is_qualified_name("App_Name.v1") == []
    assert mv.is_qualified_name("example.com/MyName") == []
    assert mv.is_qualified_name("kubernetes.io/hostname") == []
    errs = mv.is_qualified_name("/name")
    assert errs == ["prefix part must be non-empty"]
    errs = mv.is_qualified_name("Example.com/name")
    assert errs == ["prefix part " + SUBDOMAIN_MSG]
    errs = mv.is_qualified_name("example.com/")
    assert errs[0] == "name part must be non-empty"
    errs = mv.is_qualified_name("a/b/c")
    assert len(errs) == 1 and errs[0].startswith("a qualified name must consist of alphanumeric")
    assert errs[0].endswith("with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')")
    errs = mv.is_qualified_name("x" * 64)
    assert errs == ["name part must be no more than 63 characters"]
    errs = mv.is_qualified_name("-bad")
    assert errs == [
        "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end "
        "with an alphanumeric character (e.g. 'MyName' or 'my.name' or '123-abc', regex used for "
        "validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')"
    ]


def test_label_values():
    assert mv.is_valid_label_value("") == []
    assert mv.is_valid_label_value("v1.2_x-Y") == []
    assert mv.is_valid_label_value("a" * 64) == ["must be no more than 63 characters"]
    errs = mv.is_valid_label_value("has space")
    assert errs == [
        "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', "
        "and must start and end with an alphanumeric character (e.g. 'MyValue' or 'my_value' or "
        "'12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"
    ]


_SUBDOMAIN_RE = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")


@given(st.text(alphabet="abcXYZ019-._/ ", max_size=80))
def test_subdomain_agrees_with_regex(name):
    valid = bool(_SUBDOMAIN_RE.fullmatch(name)) and len(name) <= 253
    assert (mv.is_dns1123_subdomain(name) == []) == valid


@given(st.from_regex(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?", fullmatch=True))
def test_generated_labels_are_valid(name):
    assert mv.is_dns1123_label(name) == []
    assert mv.is_dns1123_subdomain(name) == []
    assert mv.is_qualified_name(name) == []


def test_path_segment_names():
    assert mv.validate_path_segment_name("ok") == []
    assert mv.validate_path_segment_name(".") == ["may not be '.'"]
    assert mv.validate_path_segment_name("..") == ["may not be '..'"]
    assert mv.validate_path_segment_name("a/b%c") == ["may not contain '/'", "may not contain '%'"]
    assert mv.validate_path_segment_name("..", prefix=True) == []


# --------------------------------------------------------------------------- network values


def test_ips():
    for ok in ["10.9.8.7", "2001:db8::ffff", "::1", "::ffff:1.2.3.4", "010.001.0.1"]:
        assert mv.is_valid_ip(ok) == [], ok
    for bad in ["", "1.2.3", "256.1.1.1", "fe80::1%eth0", "a.b.c.d", "1.2.3.4/8", " 1.2.3.4", 5]:
        assert mv.is_valid_ip(bad) == ["must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)"], bad


def test_cidrs():
    for ok in ["10.0.0.0/8", "10.1.2.3/24", "2001:db8::/64", "0.0.0.0/0"]:
        assert mv.is_valid_cidr(ok) == [], ok
    for bad in ["10.0.0.0", "10.0.0.0/33", "2001:db8::/129", "x/8", "10.0.0.0/", "10.0.0.0/-1"]:
        assert mv.is_valid_cidr(bad) == ["must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)"], bad


def test_ports():
    assert mv.is_valid_port_num(1) == [] and mv.is_valid_port_num(65535) == []
    for bad in [0, 65536, -1, True, "80"]:
        assert mv.is_valid_port_num(bad) == ["must be between 1 and 65535, inclusive"]


def test_port_names():
    assert mv.is_valid_port_name("http") == []
    assert mv.is_valid_port_name("h2c-80") == []
    assert mv.is_valid_port_name("80") == ["must contain at least one letter (a-z)"]
    assert mv.is_valid_port_name("a--b") == ["must not contain consecutive hyphens (-)"]
    assert mv.is_valid_port_name("-a") == ["must not begin or end with a hyphen (-)"]
    assert mv.is_valid_port_name("HTTP") == [
        "must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)",
        "must contain at least one letter (a-z)",
    ]
    assert mv.is_valid_port_name("a" * 16) == ["must be no more than 15 characters"]


def test_percent_or_int():
    assert mv.is_percent_or_int(3) == []
    assert mv.is_percent_or_int("25%") == []
    assert mv.is_percent_or_int("25") == ["must be an integer or percentage (e.g '5%')"]
    assert mv.is_percent_or_int("x%") != []
    assert mv.is_percent_or_int(True) != []
    assert mv.is_valid_percent("5%") == []
    assert "regex used for validation is '[0-9]+%'" in mv.is_valid_percent("5")[0]
    from pybernetes.machinery.validation_net import percent_or_int_value

    assert percent_or_int_value("25%", 10, round_up=True) == 3
    assert percent_or_int_value("25%", 10, round_up=False) == 2
    assert percent_or_int_value(4, 10, round_up=False) == 4


# --------------------------------------------------------------------------- labels, annotations


def test_labels_and_annotations():
    assert mv.validate_labels({"app": "web", "example.com/tier": ""}, "metadata.labels") == []
    errs = mv.validate_labels({"bad key": "v", "k": "bad value"}, "metadata.labels")
    assert [e.field for e in errs] == ["metadata.labels", "metadata.labels"]
    assert errs[0].value == "bad key" and errs[1].value == "bad value"
    assert mv.validate_annotations({"Example.COM/Key": "anything at all \n"}, "metadata.annotations") == []
    big = {"a": "x" * (256 * 1024)}
    errs = mv.validate_annotations(big, "metadata.annotations")
    assert len(errs) == 1 and errs[0].type == "FieldValueTooLong"
    assert errs[0].error_text() == "metadata.annotations: Too long: may not be more than 262144 bytes"
    assert mv.validate_annotations({"a": "x" * (256 * 1024 - 1)}, "metadata.annotations") == []
    assert mv.validate_labels({"a": 1}, "metadata.labels")[0].detail == "must be a string"
    assert mv.validate_labels("x", "metadata.labels")[0].type == "FieldValueInvalid"


# --------------------------------------------------------------------------- ObjectMeta


def _texts(errs):
    return [e.error_text() for e in errs]


def test_object_meta_valid():
    meta = {"name": "web", "namespace": "default", "labels": {"a": "b"}, "finalizers": ["example.com/x"]}
    assert mv.validate_object_meta(meta, namespaced=True) == []
    assert mv.validate_object_meta({"name": "node-1"}, namespaced=False) == []


def test_object_meta_name_required():
    errs = mv.validate_object_meta({"namespace": "default"}, namespaced=True)
    assert _texts(errs) == ["metadata.name: Required value: name or generateName is required"]


def test_object_meta_bad_name_and_namespace_rules():
    errs = mv.validate_object_meta({"name": "Bad_Name"}, namespaced=True)
    texts = _texts(errs)
    assert texts[0] == f'metadata.name: Invalid value: "Bad_Name": {SUBDOMAIN_MSG}'
    assert texts[1] == "metadata.namespace: Required value"
    errs = mv.validate_object_meta({"name": "x", "namespace": "ns"}, namespaced=False)
    assert _texts(errs) == ["metadata.namespace: Forbidden: not allowed on this type"]
    errs = mv.validate_object_meta({"name": "x", "namespace": "a.b"}, namespaced=True)
    assert _texts(errs) == ['metadata.namespace: Invalid value: "a.b": must not contain dots']
    errs = mv.validate_object_meta({"name": "a.b"}, namespaced=False, name_rule=mv.is_dns1123_label)
    assert _texts(errs) == ['metadata.name: Invalid value: "a.b": must not contain dots']


def test_object_meta_generate_name_trailing_dash_is_fine():
    assert mv.validate_object_meta({"name": "web-x7k2p", "generateName": "web-"}, namespaced=False) == []
    errs = mv.validate_object_meta({"name": "webx", "generateName": "Web-"}, namespaced=False)
    assert errs[0].field == "metadata.generateName" and errs[0].value == "Web-"


def test_object_meta_invalid_422_text():
    errs = mv.validate_object_meta({"name": "x", "namespace": "default", "generation": -1}, namespaced=True)
    err = invalid("Pod", "x", errs)
    assert err.code == 422
    assert err.message == 'Pod "x" is invalid: metadata.generation: Invalid value: -1: must be greater than or equal to 0'


def test_object_meta_wrong_types_do_not_crash():
    errs = mv.validate_object_meta({"name": 5, "labels": []}, namespaced=False)
    assert errs and errs[0].field == "metadata.name"
    assert mv.validate_object_meta("nope", namespaced=False)[0].field == "metadata"
    assert mv.validate_object_meta({"name": "x", "finalizers": "a"}, namespaced=False)[0].field == (
        "metadata.finalizers")


def test_finalizers():
    ok = {"name": "x", "finalizers": ["kubernetes", "orphan", "example.com/f"]}
    assert mv.validate_object_meta(ok, namespaced=False) == []
    errs = mv.validate_object_meta({"name": "x", "finalizers": ["custom"]}, namespaced=False)
    assert _texts(errs) == [
        'metadata.finalizers[0]: Invalid value: "custom": name is neither a standard finalizer name '
        "nor is it fully qualified"
    ]
    errs = mv.validate_object_meta({"name": "x", "finalizers": ["orphan", "foregroundDeletion"]},
                                   namespaced=False)
    assert errs[0].detail == "finalizer orphan and foregroundDeletion cannot be both set"
    errs = mv.validate_object_meta({"name": "x", "finalizers": ["a/b/c"]}, namespaced=False)
    assert [e.field for e in errs] == ["metadata.finalizers", "metadata.finalizers[0]"]
    # on update only the per-index check runs
    old = {"name": "x", "resourceVersion": "1"}
    errs = mv.validate_object_meta_update({**old, "finalizers": ["a/b/c", "custom"]}, old)
    assert [e.field for e in errs] == ["metadata.finalizers[0]", "metadata.finalizers[1]"]
    assert mv.finalizer_warnings(["custom", "example.com/x"]) == [
        'metadata.finalizers[0]: "custom": prefer a domain-qualified finalizer name including a path (/) '
        "to avoid accidental conflicts with other finalizer writers"
    ]


def test_owner_references():
    good = {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "rs", "uid": "u1", "controller": True}
    assert mv.validate_owner_references([good], "metadata.ownerReferences") == []
    errs = mv.validate_owner_references([{}], "metadata.ownerReferences")
    assert _texts(errs) == [
        'metadata.ownerReferences.apiVersion: Invalid value: "": version must not be empty',
        'metadata.ownerReferences.kind: Invalid value: "": kind must not be empty',
        'metadata.ownerReferences.name: Invalid value: "": name must not be empty',
        'metadata.ownerReferences.uid: Invalid value: "": uid must not be empty',
    ]
    second = {**good, "name": "rs2", "uid": "u2"}
    errs = mv.validate_owner_references([good, second], "metadata.ownerReferences")
    assert len(errs) == 1
    assert errs[0].detail == (
        'Only one reference can have Controller set to true. Found "true" in references for '
        "ReplicaSet/rs and ReplicaSet/rs2"
    )
    event = {"apiVersion": "v1", "kind": "Event", "name": "e", "uid": "u"}
    errs = mv.validate_owner_references([event], "metadata.ownerReferences")
    assert errs[0].detail == "/v1, Kind=Event is disallowed from being an owner"
    errs = mv.validate_owner_references([{**good, "apiVersion": "a/b/c"}], "metadata.ownerReferences")
    assert errs[0].detail == "version must not be empty"


def test_object_meta_update():
    old = {"name": "x", "namespace": "ns", "uid": "u1", "resourceVersion": "5",
           "creationTimestamp": "2024-01-01T00:00:00Z", "generation": 2}
    assert mv.validate_object_meta_update(dict(old), old) == []
    new = {**old, "name": "y", "uid": "u2", "namespace": "other", "creationTimestamp": "2025-01-01T00:00:00Z"}
    texts = _texts(mv.validate_object_meta_update(new, old))
    assert texts == [
        'metadata.name: Invalid value: "y": field is immutable',
        'metadata.namespace: Invalid value: "other": field is immutable',
        'metadata.uid: Invalid value: "u2": field is immutable',
        'metadata.creationTimestamp: Invalid value: "2025-01-01T00:00:00Z": field is immutable',
    ]
    texts = _texts(mv.validate_object_meta_update({**old, "resourceVersion": "", "generation": 1}, old))
    assert texts == [
        'metadata.resourceVersion: Invalid value: "": must be specified for an update',
        "metadata.generation: Invalid value: 1: must not be decremented",
    ]


def test_no_new_finalizers_while_deleting():
    old = {"name": "x", "resourceVersion": "5", "deletionTimestamp": "2024-01-01T00:00:00Z",
           "finalizers": ["example.com/a"]}
    assert mv.validate_object_meta_update({**old, "finalizers": []}, old) == []
    errs = mv.validate_object_meta_update({**old, "finalizers": ["example.com/a", "example.com/b"]}, old)
    assert _texts(errs) == [
        "metadata.finalizers: Forbidden: no new finalizers can be added if the object is being deleted, "
        'found new finalizers []string{"example.com/b"}'
    ]
    errs = mv.validate_object_meta_update({**old, "deletionTimestamp": None}, old)
    assert errs[0].field == "metadata.deletionTimestamp"


# --------------------------------------------------------------------------- LabelSelector dicts


def test_label_selector_validation():
    path = "spec.selector"
    ok = {"matchLabels": {"app": "web"},
          "matchExpressions": [{"key": "tier", "operator": "In", "values": ["a"]},
                               {"key": "x", "operator": "Exists"}]}
    assert mv.validate_label_selector(ok, path) == []
    assert mv.validate_label_selector(None, path) == []
    errs = mv.validate_label_selector({"matchExpressions": [{"key": "k", "operator": "In"}]}, path)
    assert _texts(errs) == [
        "spec.selector.matchExpressions[0].values: Required value: must be specified when `operator` is "
        "'In' or 'NotIn'"
    ]
    errs = mv.validate_label_selector(
        {"matchExpressions": [{"key": "k", "operator": "Exists", "values": ["a"]}]}, path)
    assert _texts(errs) == [
        "spec.selector.matchExpressions[0].values: Forbidden: may not be specified when `operator` is "
        "'Exists' or 'DoesNotExist'"
    ]
    errs = mv.validate_label_selector({"matchExpressions": [{"key": "k", "operator": "Has"}]}, path)
    assert _texts(errs) == [
        'spec.selector.matchExpressions[0].operator: Invalid value: "Has": not a valid selector operator'
    ]
    errs = mv.validate_label_selector(
        {"matchLabels": {"a": "b c"}, "matchExpressions": [{"key": "a b", "operator": "NotIn", "values": ["-"]}]},
        path)
    assert [e.field for e in errs] == [
        "spec.selector.matchLabels",
        "spec.selector.matchExpressions[0].key",
        "spec.selector.matchExpressions[0].values[0]",
    ]
