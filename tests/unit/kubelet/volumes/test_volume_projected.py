"""projected payloads: sources merged with the volume's defaultMode, errors aggregated as
upstream does, serviceAccountToken skipped while the API has no TokenRequest."""

from __future__ import annotations

import base64

import pytest

from pybernetes.kubelet.volumes.projected import ProjectedError, projected_payload, wanted_objects

POD = {"metadata": {"name": "p", "namespace": "ns", "uid": "u", "labels": {"a": "b"}},
       "spec": {"containers": [{"name": "c"}]}}
CM = {"data": {"k": "v"}}
SECRET = {"data": {"token": base64.b64encode(b"t0k").decode()}}


def volume(*sources, mode=None) -> dict:
    v: dict = {"sources": list(sources)}
    if mode is not None:
        v["defaultMode"] = mode
    return v


def test_sources_merge_with_the_volume_default_mode() -> None:
    v = volume({"configMap": {"name": "cm"}},
               {"secret": {"name": "s", "items": [{"key": "token", "path": "auth/token", "mode": 0o600}]}},
               {"downwardAPI": {"items": [{"path": "labels", "fieldRef": {"fieldPath": "metadata.labels"}}]}},
               mode=0o440)
    assert wanted_objects(v) == [("configmap", "cm"), ("secret", "s")]
    payload = projected_payload(v, POD, {("configmap", "cm"): CM, ("secret", "s"): SECRET})
    assert {p: (f.data, f.mode) for p, f in payload.items()} == {
        "k": (b"v", 0o440), "auth/token": (b"t0k", 0o600), "labels": (b'a="b"', 0o440)}


def test_errors_are_aggregated() -> None:
    v = volume({"configMap": {"name": "cm"}}, {"secret": {"name": "s"}})
    with pytest.raises(ProjectedError, match='^configmap "cm" not found$'):
        projected_payload(v, POD, {("configmap", "cm"): None, ("secret", "s"): SECRET})
    with pytest.raises(ProjectedError, match=r'^\[configmap "cm" not found, secret "s" not found\]$'):
        projected_payload(v, POD, {})


def test_optional_sources() -> None:
    v = volume({"configMap": {"name": "cm", "optional": True}}, {"secret": {"name": "s", "optional": True}})
    assert projected_payload(v, POD, {}) == {}


def test_service_account_token_without_token_request_is_skipped() -> None:
    v = volume({"serviceAccountToken": {"path": "token", "expirationSeconds": 3600}}, {"configMap": {"name": "cm"}})
    assert set(projected_payload(v, POD, {("configmap", "cm"): CM}, token_api=False)) == {"k"}


def test_service_account_token_with_token_request() -> None:
    v = volume({"serviceAccountToken": {"path": "token"}})
    payload = projected_payload(v, POD, {}, token_api=True, tokens={"token": b"jwt"})
    assert payload["token"].data == b"jwt"
    with pytest.raises(ProjectedError, match="failed to fetch token"):
        projected_payload(v, POD, {}, token_api=True, tokens={})
