"""Request body helpers (apiserver/bodies.py) and watch event encoding (apiserver/watch.py)."""

from __future__ import annotations

import orjson
import pytest

from pybernetes.api.resource import ResourceDef
from pybernetes.apiserver import bodies
from pybernetes.apiserver.negotiation import JSON_TARGET, Target
from pybernetes.apiserver.watch import EventEncoder, error_event
from pybernetes.machinery.errors import StatusError, expired
from pybernetes.storage.cacher import CacheEvent, make_entry


def test_drop_path_removes_nested_fields_only():
    obj = {"spec": {"containers": [{"name": "a", "foo": 1}, {"name": "b"}], "bar": {"x": 1}},
           "metadata": {"labels": {"a.b/c": "1"}}, "odd.key": {"z": 1}}
    bodies.drop_path(obj, "spec.containers[0].foo")
    bodies.drop_path(obj, "spec.bar")
    bodies.drop_path(obj, "odd.key.z")
    bodies.drop_path(obj, "spec.containers[5].foo")  # absent: no-op
    bodies.drop_path(obj, "nothing.here")
    assert obj == {"spec": {"containers": [{"name": "a"}, {"name": "b"}]},
                   "metadata": {"labels": {"a.b/c": "1"}}, "odd.key": {}}


def test_media_types():
    assert bodies.object_media_type(None) == "application/json"
    assert bodies.object_media_type("application/json; charset=utf-8") == "application/json"
    assert bodies.object_media_type("application/yaml") == "application/yaml"
    assert bodies.patch_media_type("application/merge-patch+json") == "application/merge-patch+json"
    # typed client-go clients (kubectl create configmap ...) send protobuf
    assert bodies.object_media_type("application/vnd.kubernetes.protobuf") == "application/vnd.kubernetes.protobuf"
    for bad in ("text/plain", "application/x-www-form-urlencoded", "application/cbor"):
        with pytest.raises(StatusError) as caught:
            bodies.object_media_type(bad)
        assert caught.value.code == 415
    with pytest.raises(StatusError) as caught:
        bodies.patch_media_type("application/json")
    assert caught.value.code == 415


def test_check_type():
    obj = bodies.check_type({"metadata": {"name": "x"}}, "apps/v1", "Deployment")
    assert (obj["apiVersion"], obj["kind"]) == ("apps/v1", "Deployment")
    for bad in ({"apiVersion": "v1", "kind": "Deployment"}, {"apiVersion": "apps/v1", "kind": "Pod"},
                [1, 2], "text", {"kind": "Deployment", "metadata": "x"}):
        with pytest.raises(StatusError) as caught:
            bodies.check_type(bad, "apps/v1", "Deployment")
        assert caught.value.code == 400


RES = ResourceDef("", "v1", "configmaps", "ConfigMap", "configmap", True)


def _event(kind: str, obj: dict, rev: int) -> CacheEvent:
    return CacheEvent(kind, make_entry("/registry/configmaps/d/x", rev, orjson.dumps(obj), {}, {}), rev)


def test_json_events_join_stored_bytes():
    obj = {"kind": "ConfigMap", "apiVersion": "v1", "metadata": {"name": "x", "resourceVersion": "5"}}
    line = EventEncoder(RES, JSON_TARGET, "Metadata").encode(_event("MODIFIED", obj, 5))
    assert line.endswith(b"\n")
    assert orjson.loads(line) == {"type": "MODIFIED", "object": obj}


def test_table_events_and_bookmarks():
    obj = {"kind": "ConfigMap", "apiVersion": "v1",
           "metadata": {"name": "x", "resourceVersion": "5", "creationTimestamp": "2024-01-01T00:00:00Z"}}
    encoder = EventEncoder(RES, Target("table", "v1", "application/json;as=Table;g=meta.k8s.io;v=v1"),
                           "Metadata")
    first = orjson.loads(encoder.encode(_event("ADDED", obj, 5)))
    assert first["object"]["kind"] == "Table"
    assert first["object"]["columnDefinitions"][0]["name"] == "Name"
    assert first["object"]["rows"][0]["cells"][0] == "x"
    assert first["object"]["rows"][0]["object"]["kind"] == "PartialObjectMetadata"
    second = orjson.loads(encoder.encode(_event("DELETED", obj, 6)))
    assert second["type"] == "DELETED" and "columnDefinitions" not in second["object"]
    bookmark = CacheEvent("BOOKMARK", make_entry("", 9, b"", {}, {}), 9)
    plain = orjson.loads(EventEncoder(RES, JSON_TARGET, "Metadata").encode(bookmark))
    assert plain == {"type": "BOOKMARK", "object": {"kind": "ConfigMap", "apiVersion": "v1",
                                                    "metadata": {"resourceVersion": "9"}}}


def test_error_event_carries_status():
    err: StatusError = expired("too old resource version: 1 (5)")
    event = orjson.loads(error_event(err))
    assert event["type"] == "ERROR"
    assert event["object"]["code"] == 410 and event["object"]["reason"] == "Expired"
