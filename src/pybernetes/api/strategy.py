"""The Strategy base class: one resource's policy, as upstream's registry strategies.

A resource contributes a subclass; the generic store in the API server does the plumbing
(names, uids, resourceVersions, generation, finalizers, deletion) and calls these hooks:

create:  default(obj) -> prepare_for_create(obj) -> validate(obj)
update:  default(new) -> prepare_for_update(new, old) -> validate(new) + validate_update(new, old)
status:  prepare_for_status_update(new, old) -> validate_status_update(new, old)

Hooks mutate the dict they are given (the store hands them its own copy) and return lists
of ``FieldError`` for validation.  Generic checks of metadata (name rules, labels,
annotations, namespace presence) are done by the store and need not be repeated here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pybernetes.machinery.errors import FieldError

Obj = dict[str, Any]


@dataclass(frozen=True, slots=True)
class Column:
    """A Table column (metav1.TableColumnDefinition)."""

    name: str
    type: str = "string"  # string | integer | number | boolean | date
    format: str = ""  # e.g. "name" for the NAME column
    description: str = ""
    priority: int = 0  # 0: always shown; 1: only with -o wide

    def definition(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "type": self.type,
            "format": self.format,
            "description": self.description,
            "priority": self.priority,
        }


class Strategy:
    """Defaults to a resource with spec and status, generation, and a NAME/AGE table."""

    # Top-level fields that belong to the status subresource: reset from the old object on a
    # main-resource update, the only fields a status update may change.
    status_fields: tuple[str, ...] = ("status",)
    # Whether metadata.generation is kept (bumped when anything but metadata and status
    # changes).  Resources without a spec (ConfigMap, Secret, ...) have none.
    has_generation: bool = True
    # Whether a PUT of a missing object creates it (Lease, Endpoints, ... upstream: a few).
    allow_create_on_update: bool = False
    # Whether a PUT without metadata.resourceVersion is accepted (last write wins).
    allow_unconditional_update: bool = True
    # Whether status is dropped on create (most resources: yes).
    reset_status_on_create: bool = True
    # Extra selectable fields' names, beyond metadata.name and metadata.namespace.
    field_names: tuple[str, ...] = ()

    # -- defaults and validation ------------------------------------------------------

    def default(self, obj: Obj) -> None:
        """Fill in upstream's defaults in place (also run on update bodies)."""

    def prepare_for_create(self, obj: Obj) -> None:
        if self.reset_status_on_create:
            for field in self.status_fields:
                obj.pop(field, None)

    def validate(self, obj: Obj) -> list[FieldError]:
        return []

    def prepare_for_update(self, new: Obj, old: Obj) -> None:
        for field in self.status_fields:
            if field in old:
                new[field] = old[field]
            else:
                new.pop(field, None)

    def validate_update(self, new: Obj, old: Obj) -> list[FieldError]:
        return []

    def prepare_for_status_update(self, new: Obj, old: Obj) -> None:
        """A status update changes only the status fields (and labels/annotations no)."""
        keep = set(self.status_fields) | {"metadata", "apiVersion", "kind"}
        for field in list(new):
            if field not in keep:
                del new[field]
        for field, value in old.items():
            if field not in keep:
                new[field] = value

    def validate_status_update(self, new: Obj, old: Obj) -> list[FieldError]:
        return []

    # -- table output -----------------------------------------------------------------

    # Whether the table starts with the NAME column (events' tables do not: their name is a
    # wide column of their own, as upstream prints them).
    name_column: bool = True

    def name_cell(self, obj: Obj) -> str:
        """The NAME cell (a StorageClass adds `` (default)``)."""
        return str((obj.get("metadata") or {}).get("name", ""))

    def columns(self) -> list[Column]:
        """Columns after NAME; the default is upstream's for kinds without a printer."""
        return [Column("Age", "string", description="CreationTimestamp is a timestamp ...")]

    def cells(self, obj: Obj, now: float) -> list[Any]:
        """Cells after the name cell, one per column() entry.  ``now`` is epoch seconds."""
        from pybernetes.api.printing import age

        return [age(obj, now)]

    # -- field selectors --------------------------------------------------------------

    def fields(self, obj: Obj) -> dict[str, str]:
        """The selectable fields (upstream's GetAttrs), always with metadata.name and
        metadata.namespace; values are strings ("" when absent)."""
        meta = obj.get("metadata") or {}
        return {
            "metadata.name": meta.get("name", ""),
            "metadata.namespace": meta.get("namespace", ""),
        }
