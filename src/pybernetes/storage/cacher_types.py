"""The values the watch cache hands out: entries, events and list pages.

They live here so that both ``cacher`` and ``cachewatch`` can use them; import them from
``pybernetes.storage.cacher``, which re-exports them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

Labels = dict[str, str]
Fields = dict[str, str]
# Given the decoded object, its labels and selectable fields.
AttrsFunc = Callable[[dict[str, Any]], tuple[Labels, Fields]]
# A filter on (labels, fields); None means everything.
Predicate = Callable[[Labels, Fields], bool] | None


@dataclass(slots=True, frozen=True)
class Entry:
    key: str
    revision: int  # mod_revision = the object's resourceVersion
    value: bytes  # JSON with metadata.resourceVersion == str(revision)
    labels: Labels
    fields: Fields


@dataclass(slots=True, frozen=True)
class CacheEvent:
    type: Literal["ADDED", "MODIFIED", "DELETED", "BOOKMARK"]
    entry: Entry  # for DELETED: the last entry, with revision = the deletion's revision
    #               and value's resourceVersion set to the deletion's revision
    revision: int


@dataclass(slots=True, frozen=True)
class CacheList:
    entries: list[Entry]
    revision: int  # the revision the list is consistent at
    more: bool  # limit cut it short; continue with start_after=entries[-1].key
    remaining: int | None = None  # entries left after this page (when cheaply known)
