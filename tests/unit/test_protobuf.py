"""machinery.protobuf: Kubernetes protobuf request bodies decode to the JSON a Go client sends.

The fixtures under fixtures/protobuf/ are real: ``<name>.pb`` is the body kubectl 1.32 sent for
``kubectl create <name> ...`` and ``<name>.json`` is what the same kubectl printed for the same
command with ``--dry-run=client -o json`` (Go's JSON encoding of the same object).
"""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from pybernetes.apiserver import bodies
from pybernetes.machinery import protobuf_wire as wire
from pybernetes.machinery.errors import StatusError
from pybernetes.machinery.protobuf import (
    MAGIC,
    decode_message,
    decode_protobuf_body,
    format_duration,
    format_time,
    known_messages,
    message_for,
)

FIXTURES = Path(__file__).parent / "fixtures" / "protobuf"
PAIRS = sorted(p.stem for p in FIXTURES.glob("*.json"))
f = wire.encode_field


def envelope(api_version: str, kind: str, raw: bytes) -> bytes:
    return MAGIC + f(1, f(1, api_version) + f(2, kind)) + f(2, raw)


@pytest.mark.parametrize("name", PAIRS)
def test_real_kubectl_bodies_decode_to_the_json_kubectl_would_send(name: str) -> None:
    got = decode_protobuf_body((FIXTURES / f"{name}.pb").read_bytes())
    expected = json.loads((FIXTURES / f"{name}.json").read_text())
    got["metadata"].pop("namespace", None)  # the typed client fills it; the dry-run printer does not
    assert got == expected


def test_fixture_details() -> None:
    secret = decode_protobuf_body((FIXTURES / "secret.pb").read_bytes())
    assert secret["data"] == {"p": base64.b64encode(b"q").decode()}
    deployment = decode_protobuf_body((FIXTURES / "deployment.pb").read_bytes())
    assert deployment["spec"]["replicas"] == 2
    assert deployment["spec"]["template"]["spec"]["containers"][0]["image"] == "nginx"
    assert deployment["metadata"]["creationTimestamp"] is None
    pdb = decode_protobuf_body((FIXTURES / "poddisruptionbudget.pb").read_bytes())
    assert pdb["spec"]["minAvailable"] == 1
    token = decode_protobuf_body((FIXTURES / "tokenrequest.pb").read_bytes())
    assert token["apiVersion"] == "authentication.k8s.io/v1" and token["kind"] == "TokenRequest"


def test_every_served_kind_has_a_message() -> None:
    from pybernetes.api.registry import builtin_registry

    names = known_messages()
    for res in builtin_registry().all():
        assert message_for(res.api_version, res.kind) in names, res.kind
    assert message_for("v1", "DeleteOptions") in names


def test_message_names() -> None:
    assert message_for("v1", "ConfigMap") == "k8s.io.api.core.v1.ConfigMap"
    assert message_for("apps/v1", "Deployment") == "k8s.io.api.apps.v1.Deployment"
    assert message_for("rbac.authorization.k8s.io/v1", "Role") == "k8s.io.api.rbac.v1.Role"
    assert message_for("apps/v1", "DeleteOptions") == "k8s.io.apimachinery.pkg.apis.meta.v1.DeleteOptions"


# -- presence rules ------------------------------------------------------------------------


def test_zero_scalars_follow_go_json_rules() -> None:
    # DeploymentSpec: replicas (*int32, 1), minReadySeconds (int32 omitempty, 5), paused (bool, 7)
    spec = f(1, 0) + f(5, 0) + f(7, 0)
    obj = decode_message(spec, "k8s.io.api.apps.v1.DeploymentSpec")
    assert obj == {"replicas": 0}  # an explicit zero pointer stays; plain zeros are omitted
    # ServicePort.port has no omitempty: present even when absent from the wire
    assert decode_message(b"", "k8s.io.api.core.v1.ServicePort") == {"port": 0}
    # a zero IntOrString that is not a pointer is unset (Go defaulting treats it so)
    port = f(3, 80) + f(4, f(1, 0) + f(2, 0))
    assert decode_message(port, "k8s.io.api.core.v1.ServicePort") == {"port": 80}
    port = f(3, 80) + f(4, f(1, 1) + f(3, "http"))
    assert decode_message(port, "k8s.io.api.core.v1.ServicePort") == {"port": 80, "targetPort": "http"}


def test_negative_ints_and_repeated_and_maps() -> None:
    meta = f(10, -5) + f(14, "a") + f(14, "b") + f(11, f(1, "k") + f(2, "v")) + f(11, f(1, "k2"))
    obj = decode_message(meta, "k8s.io.apimachinery.pkg.apis.meta.v1.ObjectMeta")
    assert obj == {"deletionGracePeriodSeconds": -5, "finalizers": ["a", "b"],
                   "labels": {"k": "v", "k2": ""}}


def test_packed_repeated_scalars_are_accepted() -> None:
    # PodSecurityContext.supplementalGroups (repeated int64, field 4): proto2 writes it
    # unpacked, but a decoder must accept the packed form too
    payload = wire.encode_varint(1) + wire.encode_varint(300)
    packed = wire.encode_varint(4 << 3 | 2) + wire.encode_varint(len(payload)) + payload
    assert decode_message(packed, "k8s.io.api.core.v1.PodSecurityContext") == {"supplementalGroups": [1, 300]}
    unpacked = f(4, 7) + f(4, 8)
    assert decode_message(unpacked, "k8s.io.api.core.v1.PodSecurityContext") == {"supplementalGroups": [7, 8]}
    truncated = wire.encode_varint(4 << 3 | 2) + bytes([2, 1, 0x80])
    with pytest.raises(wire.WireError):
        decode_message(truncated, "k8s.io.api.core.v1.PodSecurityContext")


def test_inline_messages_merge_into_their_parent() -> None:
    volume = f(1, "data") + f(2, f(2, f(1, "Memory")))  # Volume{name, VolumeSource{emptyDir{medium}}}
    assert decode_message(volume, "k8s.io.api.core.v1.Volume") == {"name": "data", "emptyDir": {"medium": "Memory"}}


def test_special_types() -> None:
    requirements = f(1, f(1, "cpu") + f(2, f(1, "500m"))) + f(2, f(1, "memory") + f(2, b""))
    assert decode_message(requirements, "k8s.io.api.core.v1.ResourceRequirements") == {
        "limits": {"cpu": "500m"}, "requests": {"memory": "0"}}
    condition = f(1, "Ready") + f(2, "True") + f(6, f(1, 1704164645))
    assert decode_message(condition, "k8s.io.api.apps.v1.DeploymentCondition")["lastUpdateTime"] == \
        "2024-01-02T03:04:05Z"
    revision = f(2, f(1, b'{"spec":{"x":1}}')) + f(3, 4)
    assert decode_message(revision, "k8s.io.api.apps.v1.ControllerRevision") == {
        "data": {"spec": {"x": 1}}, "revision": 4}
    entry = f(7, f(1, b'{"f:metadata":{}}'))  # ManagedFieldsEntry.fieldsV1
    assert decode_message(entry, "k8s.io.apimachinery.pkg.apis.meta.v1.ManagedFieldsEntry")["fieldsV1"] == \
        {"f:metadata": {}}
    assert format_time(1704164645, 123456789, micro=True) == "2024-01-02T03:04:05.123456Z"
    assert format_duration(0) == "0s"
    assert format_duration(3_723_500_000_000) == "1h2m3.5s"
    assert format_duration(150_000_000) == "150ms"
    assert format_duration(-90_000_000_000) == "-1m30s"


def test_unknown_fields_are_skipped() -> None:
    raw = f(1, f(1, "x")) + f(99, "whatever") + f(98, 7) + wire.encode_varint(97 << 3 | 5) + b"\0\0\0\0"
    obj = decode_protobuf_body(envelope("v1", "ConfigMap", raw))
    assert obj == {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}}


def test_delete_options() -> None:
    raw = f(1, 0) + f(4, "Foreground") + f(5, "All") + f(2, f(1, "uid-1"))
    obj = decode_protobuf_body(envelope("apps/v1", "DeleteOptions", raw))
    assert obj == {"apiVersion": "apps/v1", "kind": "DeleteOptions", "gracePeriodSeconds": 0,
                   "propagationPolicy": "Foreground", "dryRun": ["All"], "preconditions": {"uid": "uid-1"}}


# -- malformed input -----------------------------------------------------------------------


@pytest.mark.parametrize(("body", "fragment"), [
    (b'{"kind":"ConfigMap"}', "expected prefix"),
    (MAGIC + b"\x0a", "truncated varint"),
    (MAGIC + b"\x12\x05ab", "runs past the end"),
    (MAGIC + f(1, f(1, "v1") + f(2, "ConfigMap")) + f(2, b"\x0a\x03\x0a\x01"), "runs past the end"),
    (MAGIC + f(1, f(1, "v1") + f(2, "ConfigMap")) + f(2, f(1, 5)), "wire type 0"),
    (MAGIC + f(2, b""), "apiVersion and kind"),
    (MAGIC + f(1, f(1, "v1") + f(2, "ConfigMap")) + f(2, b"\x0b"), "groups"),
    (MAGIC + f(1, f(1, "v1") + f(2, "ConfigMap")) + f(2, b"\xff" * 11), "varint"),
    (MAGIC + f(1, f(1, "v1") + f(2, "ConfigMap")) + f(3, "gzip"), "content encoding"),
    (MAGIC + f(1, f(1, "apps/v1") + f(2, "ControllerRevision")) + f(2, f(2, f(1, b"{nope"))),
     "not JSON"),
])
def test_malformed_bodies_are_bad_requests(body: bytes, fragment: str) -> None:
    with pytest.raises(StatusError) as info:
        decode_protobuf_body(body, kind="ConfigMap")
    assert info.value.code == 400
    assert fragment in info.value.message


def test_kinds_without_protobuf_are_unsupported() -> None:
    with pytest.raises(StatusError) as info:
        decode_protobuf_body(envelope("example.com/v1", "Widget", b""))
    assert info.value.code == 415


def test_fuzzed_bodies_never_crash() -> None:
    base = (FIXTURES / "deployment.pb").read_bytes()
    for i in range(len(base)):
        for replacement in (0x00, 0xFF, 0x7F, 0x80):
            body = base[:i] + bytes([replacement]) + base[i + 1:]
            try:
                decode_protobuf_body(body)
            except StatusError as exc:
                assert exc.code in (400, 415)
        try:
            decode_protobuf_body(base[:i])
        except StatusError as exc:
            assert exc.code in (400, 415)


def test_http_body_hook() -> None:
    assert bodies.object_media_type("application/vnd.kubernetes.protobuf") == bodies.PROTOBUF
    obj, duplicates = bodies.decode((FIXTURES / "configmap.pb").read_bytes(), bodies.PROTOBUF, "ConfigMap")
    assert obj["data"] == {"a": "b"} and duplicates == []
