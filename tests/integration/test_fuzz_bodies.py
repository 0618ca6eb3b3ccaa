"""Property: random bodies, content types and paths never crash the server or change the store.

Hypothesis throws bytes, random JSON and YAML, wrongly typed objects and odd content types
at every resource endpoint (collections with POST, objects that do not exist with
PUT/PATCH/DELETE, subresources, malformed paths with every method).  The server must answer
every one with a Status (never a 500) and the store's revision must not move.
"""

from __future__ import annotations

import http.client
import json

import orjson
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from pybernetes.api.registry import builtin_registry
from pybernetes.apiserver.app import STORAGE

REGISTRY = builtin_registry()
MISSING = "fuzz-missing"


def _prefix(res) -> str:
    return f"/apis/{res.group}/{res.version}" if res.group else "/api/v1"


def _collection(res) -> str:
    return f"{_prefix(res)}/namespaces/default/{res.resource}" if res.namespaced else f"{_prefix(res)}/{res.resource}"


COLLECTIONS = [_collection(res) for res in REGISTRY.all()]
OBJECTS = [f"{_collection(res)}/{MISSING}" for res in REGISTRY.all()]
SUBRESOURCES = [f"{_collection(res)}/{MISSING}/{sub.name}" for res in REGISTRY.all() for sub in res.subresources]
CONTENT_TYPES = [
    "application/json", "application/yaml", "application/merge-patch+json",
    "application/strategic-merge-patch+json", "application/json-patch+json",
    "application/apply-patch+yaml", "text/plain", "application/vnd.kubernetes.protobuf", "",
    "application/json; charset=utf-8", "multipart/form-data; boundary=x", "*/*",
]

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-2**70, 2**70) | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=20,
)


BAD_METAS = [
    {"name": "a%b"}, {"name": ".."}, {"name": "a/b"}, {"name": ""}, {"name": "."},
    {"name": 5}, {"name": "..", "namespace": "elsewhere"}, {"labels": {"bad key!": "v"}},
    {"name": "ok-name", "labels": {"bad key!": "v"}}, {"name": "ok-name", "annotations": {"a": 1}},
    {"name": "ok-name", "finalizers": ["not a finalizer!"]}, {"name": "ok-name", "uid": 7},
    None, [], "string", {"generateName": "x/"}, {"name": "ok-name", "creationTimestamp": "yesterday"},
]


@st.composite
def typed_garbage(draw, res=None) -> bytes:
    """Objects that look like resources but are wrong: kinds, names, field types."""
    res = res or draw(st.sampled_from(REGISTRY.all()))
    other = draw(st.sampled_from(REGISTRY.all()))
    obj = {
        "apiVersion": draw(st.sampled_from([res.api_version, res.api_version, other.api_version, "v2", ""])),
        "kind": draw(st.sampled_from([res.kind, res.kind, other.kind, "", "Status"])),
        "metadata": draw(st.sampled_from(BAD_METAS)),
    }
    for key in draw(st.lists(st.sampled_from(["spec", "status", "data", "rules", "subsets", "type"]),
                             max_size=3)):
        obj[key] = draw(json_values)
    return json.dumps(obj).encode()


any_bodies = st.one_of(
    st.binary(max_size=200),
    json_values.map(lambda v: json.dumps(v).encode()),
    typed_garbage(),
    st.text(max_size=100).map(lambda t: f"a: [{t}\n  - b: {{".encode()),
    st.sampled_from([b"{", b"[", b"null", b"\xff\xfe", b'{"a":1,"a":2}', b"---\n---\n", b"*anchor"]),
)
random_paths = st.one_of(
    st.text(alphabet="/abcdefgnpsv0123456789.-_%~", max_size=40).map(lambda t: "/api/v1/" + t),
    st.text(alphabet="/abcdefgnpsv0123456789.-_%", max_size=40).map(lambda t: "/apis/" + t),
)
OBJECT_TYPES = ["application/json", "application/yaml", "application/json; charset=utf-8"]


@st.composite
def requests(draw) -> tuple[str, str, bytes, str]:
    """(method, path, body, content type): mostly creates of wrong objects on real endpoints."""
    shape = draw(st.sampled_from(["create", "create", "create", "write", "subresource", "random"]))
    if shape == "create":
        res = draw(st.sampled_from(REGISTRY.all()))
        body = draw(st.one_of(typed_garbage(res), any_bodies))
        return "POST", _collection(res), body, draw(st.sampled_from(OBJECT_TYPES + CONTENT_TYPES))
    if shape == "write":
        method = draw(st.sampled_from(["PUT", "PATCH", "DELETE"]))
        path = draw(st.sampled_from(OBJECTS))
    elif shape == "subresource":
        method = draw(st.sampled_from(["GET", "POST", "PUT", "PATCH", "DELETE"]))
        path = draw(st.sampled_from(SUBRESOURCES))
    else:
        method = draw(st.sampled_from(["GET", "POST", "PUT", "PATCH", "DELETE"]))
        path = draw(random_paths)
    return method, path, draw(any_bodies), draw(st.sampled_from(CONTENT_TYPES))


QUERIES = ["", "?dryRun=Nope", "?fieldValidation=Strict", "?fieldValidation=bogus", "?limit=-1",
           "?watch=maybe", "?labelSelector=a%20in%20(", "?fieldSelector=no.such.field%3Dx",
           "?resourceVersion=abc", "?gracePeriodSeconds=x", "?propagationPolicy=Sideways",
           "?timeoutSeconds=0&watch=true"]


def _revision(server) -> int:
    return server.run(server.app[STORAGE].current_revision())


def _send(port: int, method: str, path: str, body: bytes, content_type: str) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        headers = {"Content-Type": content_type} if content_type else {}
        conn.request(method, path, body=body if method != "GET" else None, headers=headers)
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(request=requests(), query=st.sampled_from(QUERIES))
def test_random_requests_never_crash_or_change_the_store(threaded_api_server, request, query):
    method, path, body, content_type = request
    before = _revision(threaded_api_server)
    status, payload = _send(threaded_api_server.port, method, path + query, body, content_type)
    event(f"HTTP {status}")
    assert status < 500, payload[:500]
    if status >= 400 and payload:
        answer = orjson.loads(payload)
        assert answer["kind"] == "Status" and answer["code"] == status
    assert _revision(threaded_api_server) == before, (method, path, body[:200], status, payload[:300])
