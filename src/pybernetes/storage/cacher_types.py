"""The values the watch cache hands out: entries, events and list pages.

An ``Entry`` is a plain tuple ``(key, revision, value, labels, fields)`` read with the index
constants ``KEY``, ``REVISION``, ``VALUE``, ``LABELS``, ``FIELDS``; labels and fields are flat
tuples ``(name, value, ...)`` (``labels_of(entry)``, ``fields_of(entry)``, ``attrs_of(entry)``
give dicts).  Make one with ``make_entry(key, revision, value, labels=None, fields=None)``.
``CacheEvent(type, entry, revision)`` is a named tuple; ``CacheList(entries, revision, more,
remaining)`` a dataclass.  Import them from ``pybernetes.storage.cacher``, which re-exports
them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from itertools import chain
from typing import Any, Literal, NamedTuple

Labels = dict[str, str]
Fields = dict[str, str]
# Given the decoded object, its labels and selectable fields.
AttrsFunc = Callable[[dict[str, Any]], tuple[Labels, Fields]]
# A filter on (labels, fields); None means everything.
Predicate = Callable[[Labels, Fields], bool] | None


# An entry is a plain tuple ``(key, revision, value, labels, fields)``, read with the index
# constants below (``entry[VALUE]``), made by ``make_entry``:
#   key       the storage key
#   revision  the object's mod_revision = its resourceVersion
#   value     its JSON, with metadata.resourceVersion == str(revision)
#   labels, fields  its labels and selectable fields as flat tuples (name, value, name,
#                   value, ...) (``attr_items``; ``labels_of``/``fields_of``/``attr_dict``
#                   give them as dicts); smaller than a dict, and untracked
# The garbage collector stops tracking an exact tuple whose items are all untracked atoms or
# such tuples (never one holding a dict, even an empty one, nor an instance of a class), so
# the cache's entries and remembered changes cost a full collection nothing however many
# there are, and handing them out (a LIST of 100,000) allocates nothing per entry.
AttrItems = tuple[str, ...]
Entry = tuple[str, int, bytes, AttrItems, AttrItems]
KEY, REVISION, VALUE, LABELS, FIELDS = range(5)


def attr_items(attrs: dict[str, str]) -> AttrItems:
    """Labels or fields as an entry holds them: ``(name, value, name, value, ...)``."""
    return tuple(chain.from_iterable(attrs.items())) if attrs else ()


def attr_dict(items: AttrItems) -> dict[str, str]:
    """Labels or fields held by an entry, as a dict."""
    attrs = {}
    for index in range(0, len(items), 2):
        attrs[items[index]] = items[index + 1]
    return attrs


def attrs_of(entry: Entry) -> tuple[Labels, Fields]:
    """An entry's labels and fields as dicts: what a Predicate is given."""
    return attr_dict(entry[LABELS]), attr_dict(entry[FIELDS])


def make_entry(key: str, revision: int, value: bytes, labels: Labels | None = None,
               fields: Fields | None = None) -> Entry:
    return (key, revision, value, attr_items(labels or {}), attr_items(fields or {}))


def labels_of(entry: Entry) -> Labels:
    return attr_dict(entry[LABELS])


def fields_of(entry: Entry) -> Fields:
    return attr_dict(entry[FIELDS])


class CacheEvent(NamedTuple):
    """One change as a watcher sees it; made when sent (the history keeps plain tuples)."""

    type: Literal["ADDED", "MODIFIED", "DELETED", "BOOKMARK"]
    entry: Entry  # for DELETED: the last entry, with revision = the deletion's revision
    #               and value's resourceVersion set to the deletion's revision
    revision: int


@dataclass(slots=True, frozen=True)
class CacheList:
    entries: list[Entry]
    revision: int  # the revision the list is consistent at
    more: bool  # limit cut it short; continue with start_after=entries[-1][KEY]
    remaining: int | None = None  # entries left after this page (when cheaply known)
