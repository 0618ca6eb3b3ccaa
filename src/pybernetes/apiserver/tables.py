"""Server-side output conversions: metav1 Table and PartialObjectMetadata(List).

Owns the wire shape of ``Table`` (meta.k8s.io/v1 or v1beta1): column definitions (a NAME
column, then the resource strategy's ``columns()``), one row per object with the name cell,
the strategy's ``cells()`` and the row's object per ``includeObject`` (None | Metadata |
Object), and list metadata.  A strategy whose ``cells()`` fails does not fail the request:
the row shows ``<unknown>`` in every cell after NAME and the failure is logged.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from typing import Any

from pybernetes.api.resource import ResourceDef
from pybernetes.machinery.errors import StatusError, bad_request

log = logging.getLogger(__name__)

Obj = dict[str, Any]

NAME_DESCRIPTION = (
    "Name must be unique within a namespace. Is required when creating resources, although "
    "some resources may allow a client to request the generation of an appropriate name "
    "automatically. Name is primarily intended for creation idempotence and configuration "
    "definition. Cannot be updated. More info: "
    "https://kubernetes.io/docs/concepts/overview/working-with-objects/names#names"
)
NAME_COLUMN: dict[str, Any] = {
    "name": "Name",
    "type": "string",
    "format": "name",
    "description": NAME_DESCRIPTION,
    "priority": 0,
}
UNKNOWN_CELL = "<unknown>"
INCLUDE_OBJECT_POLICIES = ("None", "Metadata", "Object")


def include_object_policy(value: str | None) -> str:
    """Validate the ``includeObject`` query parameter (default Metadata)."""
    if not value:
        return "Metadata"
    if value not in INCLUDE_OBJECT_POLICIES:
        raise bad_request(
            f"unable to convert the object to the requested table: includeObject: Unsupported "
            f'value: "{value}": supported values: "None", "Metadata", "Object"'
        )
    return value


def to_partial(obj: Obj, version: str = "v1") -> Obj:
    """An object as PartialObjectMetadata (its metadata only; the input is not changed)."""
    return {
        "kind": "PartialObjectMetadata",
        "apiVersion": f"meta.k8s.io/{version}",
        "metadata": obj.get("metadata") or {},
    }


def to_partial_list(
    res: ResourceDef | None, objs: Iterable[Obj], list_meta: Obj | None, version: str = "v1"
) -> Obj:
    """A list of objects as PartialObjectMetadataList."""
    return {
        "kind": "PartialObjectMetadataList",
        "apiVersion": f"meta.k8s.io/{version}",
        "metadata": dict(list_meta or {}),
        "items": [to_partial(obj, version) for obj in objs],
    }


def column_definitions(res: ResourceDef) -> list[dict[str, Any]]:
    return [NAME_COLUMN, *(column.definition() for column in res.strategy.columns())]


def _cells(res: ResourceDef, obj: Obj, width: int, now: float) -> list[Any]:
    meta = obj.get("metadata") or {}
    try:
        cells = list(res.strategy.cells(obj, now))
    except Exception:  # a printer bug must not fail the request
        log.exception(
            "table cells failed for %s %s/%s",
            res.group_resource,
            meta.get("namespace", ""),
            meta.get("name", ""),
        )
        cells = [UNKNOWN_CELL] * width
    if len(cells) != width:
        log.error("table cells for %s have %d values for %d columns", res.group_resource, len(cells), width)
        cells = (cells + [UNKNOWN_CELL] * width)[:width]
    if not res.strategy.name_column:
        return cells
    return [res.strategy.name_cell(obj), *cells]


def _row_object(obj: Obj, include_object: str, version: str) -> Obj | None:
    if include_object == "Object":
        return obj
    if include_object == "Metadata":
        return to_partial(obj, version)
    return None


def to_table(
    res: ResourceDef,
    objs: Iterable[Obj],
    *,
    list_meta: Obj | None = None,
    include_object: str = "Metadata",
    version: str = "v1",
    now: float | None = None,
    with_columns: bool = True,
) -> Obj:
    """Objects of one resource as a metav1 Table.

    ``list_meta`` (resourceVersion, continue, remainingItemCount) is the list's metadata;
    for a single object pass None and its resourceVersion is used.  ``with_columns=False``
    leaves out the column definitions (watch events after the first, as upstream).
    """
    if version not in ("v1", "v1beta1"):
        raise StatusError(406, "NotAcceptable", f"unsupported Table version {version!r}")
    objs = list(objs)
    if now is None:
        now = time.time()
    columns = res.strategy.columns()
    width = len(columns)
    rows = []
    for obj in objs:
        row: Obj = {"cells": _cells(res, obj, width, now)}
        row_object = _row_object(obj, include_object, version)
        if row_object is not None:
            row["object"] = row_object
        rows.append(row)
    metadata: Obj = {}
    if list_meta is not None:
        for key in ("resourceVersion", "continue", "remainingItemCount"):
            if list_meta.get(key) not in (None, ""):
                metadata[key] = list_meta[key]
    elif len(objs) == 1:
        rv = (objs[0].get("metadata") or {}).get("resourceVersion")
        if rv:
            metadata["resourceVersion"] = rv
    table: Obj = {"kind": "Table", "apiVersion": f"meta.k8s.io/{version}", "metadata": metadata}
    if with_columns:
        definitions = [c.definition() for c in columns]
        table["columnDefinitions"] = [NAME_COLUMN, *definitions] if res.strategy.name_column else definitions
    table["rows"] = rows
    return table
