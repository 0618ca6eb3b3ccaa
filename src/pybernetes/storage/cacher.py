"""The watch cache: one per resource, fed by one storage watch, serving lists and watches.

INTERFACE SKELETON — to be implemented (owner: storage helper).  The signatures below are the
contract the API server's generic store codes against; keep them.

The cacher keeps, for every key under its prefix, an ``Entry``: the object's JSON bytes with
``metadata.resourceVersion`` already set to the key's mod_revision (so lists are a join of
bytes), plus the object's labels and selectable fields (for filtering without decoding).
It keeps a bounded history of recent events (with the previous entry) so that watches can
start from a recent revision and lists can be answered at a recent revision (a consistent
snapshot for limit/continue pagination).  A revision older than the history is too old
(CompactedError, which the API turns into 410 Expired).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any, Literal

from pybernetes.storage.interface import Storage

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


class Cacher:
    def __init__(
        self,
        storage: Storage,
        prefix: str,
        attrs: AttrsFunc,
        *,
        history: int = 10_000,
    ) -> None:
        raise NotImplementedError

    async def start(self) -> None:
        """List the prefix, then watch from the list's revision; returns once synced."""
        raise NotImplementedError

    async def stop(self) -> None:
        raise NotImplementedError

    @property
    def revision(self) -> int:
        """The newest revision this cache has applied."""
        raise NotImplementedError

    async def wait_for_revision(self, revision: int, timeout: float = 3.0) -> None:
        """Wait until the cache has applied ``revision`` (for consistent reads after writes).
        Raises TimeoutError (the API answers 504) if it does not get there in time."""
        raise NotImplementedError

    def get(self, key: str) -> Entry | None:
        raise NotImplementedError

    def list(
        self,
        prefix: str,
        *,
        predicate: Predicate = None,
        limit: int = 0,
        start_after: str | None = None,
        revision: int = 0,
    ) -> CacheList:
        """Entries under prefix (a namespace's ``/registry/pods/ns/`` or the whole
        resource's), in key order, matching predicate, as of ``revision`` (0: the cache's
        newest).  Raises CompactedError when revision is older than the history."""
        raise NotImplementedError

    def watch(
        self,
        prefix: str,
        revision: int,
        *,
        predicate: Predicate = None,
        bookmark_interval: float | None = None,
    ) -> AsyncIterator[CacheEvent]:
        """Events under prefix after ``revision``, in order.  With a predicate, an update
        that moves an object into the selection is ADDED and one that moves it out is
        DELETED (as upstream's cacher does).  Raises CompactedError (when iterated) if
        revision is older than the history.  Slow consumers must not block writers or other
        watchers: a watcher too far behind is ended (its iterator raises CompactedError).
        With ``bookmark_interval``, a BOOKMARK event (entry.key "", value b"", revision =
        the newest revision this watcher has been sent or skipped past) is yielded when that
        many seconds pass without another event."""
        raise NotImplementedError
