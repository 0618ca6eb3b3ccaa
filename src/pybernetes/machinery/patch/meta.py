"""Patch metadata: what strategic merge patch needs to know about a type's fields.

Upstream reads Go struct tags (``patchStrategy``, ``patchMergeKey``) or the OpenAPI extensions
``x-kubernetes-patch-strategy`` / ``x-kubernetes-patch-merge-key``.  Here a type is described
by a ``PatchMeta``: asked for one field name, it answers a ``FieldMeta`` (the field's patch
strategies, merge key, whether it is a list, and the ``PatchMeta`` of its value or elements),
or ``None`` when it knows nothing of that field (which makes the field merge like JSON merge
patch).  ``DictPatchMeta`` is a plain in-memory implementation (tests, hand-written types);
``pybernetes.api.schemas`` builds them from the upstream OpenAPI definitions.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

MERGE = "merge"
REPLACE = "replace"
RETAIN_KEYS = "retainKeys"


@dataclass(frozen=True, slots=True)
class FieldMeta:
    """How one field is patched.

    ``strategies`` holds the comma-separated patch strategy split into parts, e.g.
    ``("merge", "retainKeys")``; an empty tuple means the default (replace lists, merge maps).
    ``elem`` describes the value (for a map or object field) or the elements (for a list).
    """

    strategies: tuple[str, ...] = ()
    merge_key: str = ""
    is_list: bool = False
    elem: PatchMeta | None = None

    @property
    def strategy(self) -> str:
        """The strategy other than retainKeys: "merge", "replace" or "" (default)."""
        for s in self.strategies:
            if s != RETAIN_KEYS:
                return s
        return ""

    @property
    def retain_keys(self) -> bool:
        return RETAIN_KEYS in self.strategies


class PatchMeta(Protocol):
    """Patch metadata of one object type."""

    def field(self, name: str) -> FieldMeta | None:
        """The metadata of field ``name``, or None when nothing is known about it."""
        ...


@dataclass(slots=True)
class DictPatchMeta:
    """A PatchMeta backed by a dict of field name to FieldMeta.

    ``values`` describes every key of a map type (``additionalProperties``): it answers for
    any field name not in ``fields``.
    """

    fields: dict[str, FieldMeta] = field(default_factory=dict)
    values: FieldMeta | None = None

    def field(self, name: str) -> FieldMeta | None:
        found = self.fields.get(name)
        return found if found is not None else self.values


def parse_strategies(text: str | None) -> tuple[str, ...]:
    """Split an ``x-kubernetes-patch-strategy`` value such as ``"merge,retainKeys"``."""
    if not text:
        return ()
    return tuple(part.strip() for part in text.split(",") if part.strip())
