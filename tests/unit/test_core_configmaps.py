"""ConfigMaps and Secrets: keys, sizes, immutability, secret types, tables, fields."""

from __future__ import annotations

import base64
import copy

from pybernetes.api.core.configmaps import CONFIGMAPS, SECRETS

CM = CONFIGMAPS.strategy
SEC = SECRETS.strategy


def texts(errs):
    return [e.error_text() for e in errs]


def b64(text):
    return base64.b64encode(text.encode()).decode()


def test_configmap_keys_and_table():
    cm = {"metadata": {"name": "c"}, "data": {"a": "1", "bad key": "x"}, "binaryData": {"a": b64("z"), "b": "!!"}}
    out = texts(CM.validate(cm))
    assert any(t.startswith('data[bad key]: Invalid value: "bad key": a valid config key must consist') for t in out)
    assert 'binaryData[a]: Invalid value: "a": duplicate of key present in data' in out
    assert any(t.startswith("binaryData[b]: Invalid value") for t in out)
    assert CM.cells({"data": {"a": "1"}, "binaryData": {"b": "eA=="}}, 0)[0] == 2
    assert not CM.has_generation and CM.status_fields == ()


def test_configmap_size_limit():
    cm = {"data": {"big": "x" * (1024 * 1024)}}
    assert [e.type for e in CM.validate(cm)] == ["FieldValueTooLong"]


def test_configmap_immutable():
    old = {"metadata": {"name": "c"}, "data": {"a": "1"}, "immutable": True}
    new = copy.deepcopy(old)
    assert CM.validate_update(new, old) == []
    new["data"]["a"] = "2"
    new["immutable"] = False
    assert texts(CM.validate_update(new, old)) == [
        "immutable: Forbidden: field is immutable when `immutable` is set",
        "data: Forbidden: field is immutable when `immutable` is set"]
    mutable_old = {"data": {"a": "1"}}
    assert CM.validate_update({"data": {"a": "2"}, "immutable": True}, mutable_old) == []


def test_secret_defaults_and_string_data():
    s = {"metadata": {"name": "s"}, "stringData": {"user": "admin"}, "data": {"user": b64("old"), "p": b64("x")}}
    SEC.default(s)
    assert s["type"] == "Opaque"
    assert "stringData" not in s
    assert s["data"]["user"] == b64("admin")
    assert SEC.validate(s) == []
    assert SEC.cells(s, 0)[:2] == ["Opaque", 2]
    assert SEC.fields(s)["type"] == "Opaque"


def test_secret_type_rules():
    s = {"metadata": {"name": "s"}, "type": "kubernetes.io/tls", "data": {"tls.crt": b64("c")}}
    assert texts(SEC.validate(s)) == ["data[tls.key]: Required value"]
    s = {"metadata": {"name": "s"}, "type": "kubernetes.io/service-account-token"}
    assert texts(SEC.validate(s)) == ["metadata.annotations[kubernetes.io/service-account.name]: Required value"]
    s = {"metadata": {"name": "s"}, "type": "kubernetes.io/dockerconfigjson", "data": {".dockerconfigjson": b64("{")}}
    errs = SEC.validate(s)
    assert [e.field for e in errs] == ["data[.dockerconfigjson]"]
    s["data"][".dockerconfigjson"] = b64('{"auths": {}}')
    assert SEC.validate(s) == []
    s = {"type": "kubernetes.io/basic-auth", "data": {}}
    assert texts(SEC.validate(s)) == ["data[username]: Required value", "data[password]: Required value"]
    s = {"type": "Opaque", "data": {"k": "not base64!"}}
    assert [e.field for e in SEC.validate(s)] == ["data[k]"]


def test_secret_type_immutable():
    old = {"type": "Opaque", "data": {}}
    new = {"type": "kubernetes.io/tls", "data": {}}
    assert texts(SEC.validate_update(new, old)) == ['type: Invalid value: "kubernetes.io/tls": field is immutable']
