"""metav1 Table and PartialObjectMetadata(List) conversions."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from pybernetes.api.resource import ResourceDef
from pybernetes.api.strategy import Column, Strategy
from pybernetes.apiserver.tables import (
    NAME_COLUMN,
    include_object_policy,
    to_partial,
    to_partial_list,
    to_table,
)
from pybernetes.machinery.errors import StatusError

NOW = 1_700_000_000.0


class ReplicaStrategy(Strategy):
    def columns(self) -> list[Column]:
        return [
            Column("Ready", "string"),
            Column("Age", "string"),
            Column("Image", "string", priority=1),
        ]

    def cells(self, obj: dict[str, Any], now: float) -> list[Any]:
        spec = obj["spec"]  # KeyError for objects without spec: a "printer bug"
        return [f"0/{spec['replicas']}", f"{int(now - 1_699_999_000)}s", spec.get("image", "<none>")]


class ShortStrategy(Strategy):
    def columns(self) -> list[Column]:
        return [Column("A"), Column("B")]

    def cells(self, obj: dict[str, Any], now: float) -> list[Any]:
        return ["only-one"]


RES = ResourceDef("apps", "v1", "things", "Thing", "thing", True, strategy=ReplicaStrategy())


def thing(name: str, replicas: int = 2, rv: str = "7") -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Thing",
        "metadata": {"name": name, "namespace": "default", "resourceVersion": rv, "uid": "u-" + name},
        "spec": {"replicas": replicas, "image": "nginx"},
    }


def test_table_shape_for_a_list() -> None:
    objs = [thing("a"), thing("b", 3)]
    list_meta = {"resourceVersion": "42", "continue": "tok", "remainingItemCount": 5}
    table = to_table(RES, objs, list_meta=list_meta, now=NOW)
    assert table["kind"] == "Table"
    assert table["apiVersion"] == "meta.k8s.io/v1"
    assert table["metadata"] == list_meta
    columns = table["columnDefinitions"]
    assert columns[0] == NAME_COLUMN
    assert columns[0]["format"] == "name"
    assert columns[0]["description"].startswith("Name must be unique within a namespace.")
    assert [c["name"] for c in columns] == ["Name", "Ready", "Age", "Image"]
    assert [c["priority"] for c in columns] == [0, 0, 0, 1]
    assert table["rows"][0]["cells"] == ["a", "0/2", "1000s", "nginx"]
    assert table["rows"][1]["cells"][:2] == ["b", "0/3"]
    row_object = table["rows"][1]["object"]
    assert row_object == {
        "kind": "PartialObjectMetadata",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": objs[1]["metadata"],
    }


def test_list_metadata_leaves_out_empty_fields() -> None:
    table = to_table(RES, [], list_meta={"resourceVersion": "9", "continue": ""}, now=NOW)
    assert table["metadata"] == {"resourceVersion": "9"}
    assert table["rows"] == []


def test_single_object_table_carries_its_resource_version() -> None:
    table = to_table(RES, [thing("a", rv="123")], now=NOW)
    assert table["metadata"] == {"resourceVersion": "123"}


def test_include_object_policies() -> None:
    obj = thing("a")
    full = to_table(RES, [obj], include_object="Object", now=NOW)
    assert full["rows"][0]["object"] == obj
    bare = to_table(RES, [obj], include_object="None", now=NOW)
    assert "object" not in bare["rows"][0]
    assert include_object_policy(None) == "Metadata"
    assert include_object_policy("Object") == "Object"
    with pytest.raises(StatusError) as info:
        include_object_policy("Everything")
    assert info.value.code == 400


def test_v1beta1_table_and_partial() -> None:
    table = to_table(RES, [thing("a")], version="v1beta1", now=NOW)
    assert table["apiVersion"] == "meta.k8s.io/v1beta1"
    assert table["rows"][0]["object"]["apiVersion"] == "meta.k8s.io/v1beta1"
    with pytest.raises(StatusError):
        to_table(RES, [thing("a")], version="v2")


def test_watch_events_after_the_first_have_no_column_definitions() -> None:
    table = to_table(RES, [thing("a")], now=NOW, with_columns=False)
    assert "columnDefinitions" not in table
    assert table["rows"][0]["cells"][0] == "a"


def test_failing_cells_do_not_fail_the_table(caplog: pytest.LogCaptureFixture) -> None:
    broken = {"metadata": {"name": "broken"}}  # no spec: the strategy raises KeyError
    with caplog.at_level(logging.ERROR, logger="pybernetes.apiserver.tables"):
        table = to_table(RES, [thing("ok"), broken], now=NOW)
    assert table["rows"][0]["cells"][0] == "ok"
    assert table["rows"][1]["cells"] == ["broken", "<unknown>", "<unknown>", "<unknown>"]
    assert "table cells failed" in caplog.text


def test_cells_of_the_wrong_length_are_padded() -> None:
    res = ResourceDef("", "v1", "shorts", "Short", "short", False, strategy=ShortStrategy())
    table = to_table(res, [{"metadata": {"name": "x"}}], now=NOW)
    assert table["rows"][0]["cells"] == ["x", "only-one", "<unknown>"]


def test_default_strategy_gives_name_and_age() -> None:
    res = ResourceDef("", "v1", "plain", "Plain", "plain", True)
    obj = {"metadata": {"name": "p", "creationTimestamp": "2023-11-14T22:00:00Z"}}
    table = to_table(res, [obj], now=NOW)
    assert [c["name"] for c in table["columnDefinitions"]] == ["Name", "Age"]
    assert table["rows"][0]["cells"][0] == "p"
    assert table["rows"][0]["cells"][1] != "<unknown>"


def test_partial_conversions_do_not_mutate() -> None:
    obj = thing("a")
    before = repr(obj)
    partial = to_partial(obj)
    assert partial == {
        "kind": "PartialObjectMetadata",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": obj["metadata"],
    }
    listed = to_partial_list(RES, [obj, thing("b")], {"resourceVersion": "5"}, "v1beta1")
    assert listed["kind"] == "PartialObjectMetadataList"
    assert listed["apiVersion"] == "meta.k8s.io/v1beta1"
    assert listed["metadata"] == {"resourceVersion": "5"}
    assert [i["metadata"]["name"] for i in listed["items"]] == ["a", "b"]
    assert all(i["kind"] == "PartialObjectMetadata" for i in listed["items"])
    assert repr(obj) == before


def test_event_tables_have_no_leading_name_column() -> None:
    from pybernetes.api.core import events

    event = {"apiVersion": "v1", "kind": "Event",
             "metadata": {"name": "p.1", "namespace": "default", "resourceVersion": "5"},
             "involvedObject": {"kind": "Pod", "name": "p"}, "reason": "Pulled", "type": "Normal",
             "message": "m", "count": 1}
    table = to_table(events.EVENTS, [event])
    names = [c["name"] for c in table["columnDefinitions"]]
    assert names[0] == "Last Seen" and names[-1] == "Name"
    assert len(table["rows"][0]["cells"]) == len(names)
    assert table["rows"][0]["cells"][-1] == "p.1"


def test_storage_class_name_cell_marks_the_default() -> None:
    from pybernetes.api.registry import builtin_registry

    res = builtin_registry().get("storage.k8s.io", "v1", "storageclasses")
    sc = {"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass", "provisioner": "x",
          "metadata": {"name": "standard",
                       "annotations": {"storageclass.kubernetes.io/is-default-class": "true"}}}
    assert to_table(res, [sc])["rows"][0]["cells"][0] == "standard (default)"
