"""The informer's Indexer and controller expectations."""

from __future__ import annotations

import pytest

from pybernetes.client.cache import DeletedFinalStateUnknown, Indexer, object_of
from pybernetes.client.expectations import ControllerExpectations, UIDTrackingExpectations


def pod(name: str, ns: str = "default", node: str | None = None) -> dict:
    return {"metadata": {"name": name, "namespace": ns}, "spec": {"nodeName": node} if node else {}}


def by_node(obj: dict) -> list[str]:
    node = (obj.get("spec") or {}).get("nodeName")
    return [node] if node else []


def test_indexer_keeps_indexes_in_step():
    idx = Indexer({"node": by_node})
    idx.add(pod("a", node="n1"))
    idx.add(pod("b", "kube-system", node="n1"))
    idx.add(pod("c"))
    assert idx.index_keys("node", "n1") == ["default/a", "kube-system/b"]
    assert [o["metadata"]["name"] for o in idx.by_namespace("default")] == ["a", "c"]
    old = idx.update(pod("a", node="n2"))
    assert old["spec"]["nodeName"] == "n1"
    assert idx.index_keys("node", "n1") == ["kube-system/b"]
    assert idx.index_values("node") == ["n1", "n2"]
    idx.delete("kube-system/b")
    assert idx.index_keys("node", "n1") == [] and "n1" not in idx.index_values("node")
    assert idx.delete("missing") is None
    idx.add_indexers({"name": lambda o: [o["metadata"]["name"]]})  # indexes what is there
    assert idx.index_keys("name", "c") == ["default/c"]
    with pytest.raises(ValueError):
        idx.add_indexers({"node": by_node})
    with pytest.raises(KeyError):
        idx.index_keys("nope", "x")
    idx.replace([pod("z", node="n9")])
    assert idx.list_keys() == ["default/z"] and idx.index_keys("node", "n9") == ["default/z"]
    assert len(idx) == 1 and "default/z" in idx


def test_tombstones_unwrap():
    obj = pod("a")
    assert object_of(DeletedFinalStateUnknown("default/a", obj)) is obj
    assert object_of(obj) is obj


class Clock:
    now = 0.0

    def __call__(self) -> float:
        return self.now


def test_expectations_satisfied_when_observed_or_expired():
    clock = Clock()
    exp = ControllerExpectations(clock=clock)
    assert exp.satisfied("ns/rs")  # nothing expected
    exp.expect_creations("ns/rs", 2)
    assert not exp.satisfied("ns/rs")
    exp.creation_observed("ns/rs")
    assert not exp.satisfied("ns/rs") and exp.get("ns/rs") == (1, 0)
    exp.creation_observed("ns/rs")
    assert exp.satisfied("ns/rs")
    exp.expect_deletions("ns/rs", 1)
    assert not exp.satisfied("ns/rs")
    clock.now += 301  # five minutes: sync anyway
    assert exp.expired("ns/rs") and exp.satisfied("ns/rs")
    exp.raise_expectations("ns/rs", 1, 0)
    exp.delete_expectations("ns/rs")
    assert exp.get("ns/rs") is None and exp.satisfied("ns/rs")


def test_uid_tracking_counts_each_deletion_once():
    exp = UIDTrackingExpectations()
    exp.expect_deletions("ns/rs", ["ns/p1", "ns/p2"])
    exp.deletion_observed("ns/rs", "ns/p1")
    exp.deletion_observed("ns/rs", "ns/p1")
    exp.deletion_observed("ns/rs", "ns/other")
    assert not exp.satisfied("ns/rs")
    assert exp.expected_deletions("ns/rs") == {"ns/p2"}
    exp.deletion_observed("ns/rs", "ns/p2")
    assert exp.satisfied("ns/rs")
