"""downwardAPI payloads: metadata fields in upstream's format, resourceFieldRef with divisors,
unset limits from the node's allocatable, errors."""

from __future__ import annotations

import pytest

from pybernetes.kubelet.volumes.downwardapi import (
    DownwardAPIError,
    downward_payload,
    go_quote,
    needs_allocatable,
)

POD = {
    "metadata": {"name": "web", "namespace": "prod", "uid": "u-1",
                 "labels": {"tier": "front", "app": "web"},
                 "annotations": {"note": 'say "hi"\nbye', "b": "é"}},
    "spec": {"containers": [
        {"name": "main", "resources": {"limits": {"cpu": "1500m", "memory": "256Mi"},
                                       "requests": {"cpu": "250m", "memory": "100M"}}},
        {"name": "side"},
    ]},
}


def files(items, allocatable=None, mode=None) -> dict[str, str]:
    return {p: f.data.decode() for p, f in downward_payload(items, POD, mode, allocatable).items()}


def test_metadata_fields() -> None:
    items = [{"path": "name", "fieldRef": {"fieldPath": "metadata.name"}},
             {"path": "ns", "fieldRef": {"fieldPath": "metadata.namespace"}},
             {"path": "uid", "fieldRef": {"fieldPath": "metadata.uid"}},
             {"path": "labels", "fieldRef": {"fieldPath": "metadata.labels"}},
             {"path": "annotations", "fieldRef": {"fieldPath": "metadata.annotations"}},
             {"path": "tier", "fieldRef": {"fieldPath": "metadata.labels['tier']"}}]
    assert files(items) == {
        "name": "web", "ns": "prod", "uid": "u-1",
        "labels": 'app="web"\ntier="front"',
        "annotations": 'b="é"\nnote="say \\"hi\\"\\nbye"',
        "tier": "front",
    }


def test_modes() -> None:
    items = [{"path": "a", "fieldRef": {"fieldPath": "metadata.name"}},
             {"path": "b", "fieldRef": {"fieldPath": "metadata.name"}, "mode": 0o600}]
    payload = downward_payload(items, POD, 0o444)
    assert payload["a"].mode == 0o444 and payload["b"].mode == 0o600


def test_go_quote() -> None:
    assert go_quote("plain") == '"plain"'
    assert go_quote('a"b\\c\t\x01\x7f') == '"a\\"b\\\\c\\t\\x01\\x7f"'
    assert go_quote("日本\u200b") == '"日本\\u200b"'


def ref(resource: str, container: str = "main", divisor: str | None = None) -> dict:
    r = {"containerName": container, "resource": resource}
    if divisor is not None:
        r["divisor"] = divisor
    return {"path": "v", "resourceFieldRef": r}


@pytest.mark.parametrize("resource,divisor,expected", [
    ("limits.cpu", None, "2"),  # 1.5 cores rounded up
    ("limits.cpu", "1m", "1500"),
    ("requests.cpu", "1m", "250"),
    ("requests.cpu", "0", "1"),  # a zero divisor means 1
    ("limits.memory", None, str(256 * 1024 * 1024)),
    ("limits.memory", "1Mi", "256"),
    ("requests.memory", "1Mi", "96"),  # 100M / 1Mi = 95.4 -> 96
])
def test_resource_field_refs(resource, divisor, expected) -> None:
    assert files([ref(resource, divisor=divisor)]) == {"v": expected}


def test_unset_limits_come_from_the_node() -> None:
    allocatable = {"cpu": "4", "memory": "8Gi", "ephemeral-storage": "100Gi"}
    assert needs_allocatable([ref("limits.cpu", "side")], POD)
    assert not needs_allocatable([ref("limits.cpu")], POD)
    assert files([ref("limits.cpu", "side", "1m")], allocatable) == {"v": "4000"}
    assert files([ref("limits.memory", "side", "1Gi")], allocatable) == {"v": "8"}
    assert files([ref("requests.cpu", "side")], allocatable) == {"v": "0"}


def test_errors() -> None:
    with pytest.raises(DownwardAPIError, match="cannot find container 'ghost'"):
        files([ref("limits.cpu", "ghost")])
    with pytest.raises(DownwardAPIError, match="unsupported fieldPath: spec.nodeName"):
        files([{"path": "n", "fieldRef": {"fieldPath": "spec.nodeName"}}])
    with pytest.raises(DownwardAPIError, match=r"^\[.*, .*\]$"):
        files([{"path": "n", "fieldRef": {"fieldPath": "spec.nodeName"}}, ref("limits.gpu")])
