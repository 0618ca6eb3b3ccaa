"""configMap and secret payloads: all keys or selected items, modes, optional, upstream's
messages for missing objects and keys, binary data."""

from __future__ import annotations

import base64

import pytest

from pybernetes.kubelet.volumes.configmap_secret import PayloadError, configmap_payload, secret_payload


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


CM = {"metadata": {"name": "cfg"}, "data": {"a.conf": "A", "b.conf": "B"}, "binaryData": {"bin": b64("\x00\x01")}}
SECRET = {"metadata": {"name": "s"}, "data": {"user": b64("admin"), "pass": b64("hunter2")}}


def flat(payload) -> dict:
    return {path: (p.data, oct(p.mode)) for path, p in payload.items()}


def test_every_key_with_the_default_mode() -> None:
    assert flat(configmap_payload({"name": "cfg"}, CM)) == {
        "a.conf": (b"A", "0o644"), "b.conf": (b"B", "0o644"), "bin": (b"\x00\x01", "0o644")}


def test_default_mode() -> None:
    assert {p.mode for p in configmap_payload({"name": "cfg", "defaultMode": 0o400}, CM).values()} == {0o400}


def test_items_select_rename_and_set_modes() -> None:
    source = {"name": "cfg", "defaultMode": 0o440,
              "items": [{"key": "a.conf", "path": "conf/a"}, {"key": "bin", "path": "b", "mode": 0o600}]}
    assert flat(configmap_payload(source, CM)) == {"conf/a": (b"A", "0o440"), "b": (b"\x00\x01", "0o600")}


def test_a_missing_key_fails_unless_optional() -> None:
    source = {"name": "cfg", "items": [{"key": "nope", "path": "x"}, {"key": "a.conf", "path": "a"}]}
    with pytest.raises(PayloadError, match="^configmap references non-existent config key: nope$"):
        configmap_payload(source, CM)
    assert flat(configmap_payload({**source, "optional": True}, CM)) == {"a": (b"A", "0o644")}


def test_a_missing_configmap() -> None:
    with pytest.raises(PayloadError, match='^configmap "cfg" not found$'):
        configmap_payload({"name": "cfg"}, None)
    assert configmap_payload({"name": "cfg", "optional": True}, None) == {}


def test_secret_data_is_decoded() -> None:
    assert flat(secret_payload({"secretName": "s", "defaultMode": 0o400}, SECRET)) == {
        "user": (b"admin", "0o400"), "pass": (b"hunter2", "0o400")}


def test_secret_messages() -> None:
    with pytest.raises(PayloadError, match='^secret "s" not found$'):
        secret_payload({"secretName": "s"}, None)
    with pytest.raises(PayloadError, match="^references non-existent secret key: token$"):
        secret_payload({"secretName": "s", "items": [{"key": "token", "path": "t"}]}, SECRET)
    assert secret_payload({"secretName": "s", "optional": True}, None) == {}


def test_projected_secret_source_uses_name() -> None:
    with pytest.raises(PayloadError, match='^secret "p" not found$'):
        secret_payload({"name": "p"}, None, 0o644, name_field="name")


def test_bad_base64_is_an_error() -> None:
    with pytest.raises(PayloadError, match="not valid base64"):
        secret_payload({"secretName": "s"}, {"data": {"k": "%%%"}})
