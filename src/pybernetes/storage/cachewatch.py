"""The parts of the watch cache that hold events: the history ring and the per-watcher queue.

``History`` is a bounded ring of recent changes (each a CacheEvent with the entry it
replaced), searchable by revision.  ``CacheWatcher`` is one client watch's bounded queue;
the cacher appends to it synchronously (never waiting), and a watcher whose queue is full is
ended instead of slowing the writer.  ``select`` turns one change into what a watcher with a
predicate must see (an update entering the selection is ADDED, leaving it is DELETED).
"""

from __future__ import annotations

import asyncio
import bisect
from collections import deque
from collections.abc import Iterator

from pybernetes.storage.cacher_types import CacheEvent, Entry, Predicate

# One remembered change: the event and the entry it replaced (None for a creation).
Change = tuple[CacheEvent, Entry | None]


class History:
    """The last ``capacity`` changes, oldest first."""

    __slots__ = ("_revisions", "_changes", "_head", "capacity")

    def __init__(self, capacity: int) -> None:
        self.capacity = max(1, capacity)
        self._revisions: list[int] = []
        self._changes: list[Change | None] = []
        self._head = 0  # index of the oldest change kept

    def __len__(self) -> int:
        return len(self._revisions) - self._head

    def append(self, change: Change) -> int | None:
        """Remember a change; returns the revision of the change forgotten to make room."""
        self._revisions.append(change[0].revision)
        self._changes.append(change)
        if len(self._revisions) - self._head <= self.capacity:
            return None
        dropped = self._revisions[self._head]
        self._changes[self._head] = None
        self._head += 1
        if self._head >= 1024 and self._head * 2 >= len(self._revisions):
            del self._revisions[: self._head]
            del self._changes[: self._head]
            self._head = 0
        return dropped

    def since(self, revision: int) -> Iterator[Change]:
        """The changes with a revision greater than ``revision``, oldest first."""
        start = bisect.bisect_right(self._revisions, revision, lo=self._head)
        for index in range(start, len(self._changes)):
            change = self._changes[index]
            assert change is not None
            yield change

    def clear(self) -> None:
        self._revisions.clear()
        self._changes.clear()
        self._head = 0


def select(event: CacheEvent, prev: Entry | None, predicate: Predicate) -> CacheEvent | None:
    """What a watcher with ``predicate`` sees of a change (None: nothing)."""
    if predicate is None:
        return event
    entry = event.entry
    now = predicate(entry.labels, entry.fields)
    if event.type != "MODIFIED":
        return event if now else None
    before = prev is not None and predicate(prev.labels, prev.fields)
    if now and before:
        return event
    if now:
        return CacheEvent("ADDED", entry, event.revision)
    if before:
        return CacheEvent("DELETED", entry, event.revision)
    return None


class CacheWatcher:
    """The queue of one watch; filled by the cacher, drained by the watch's iterator."""

    __slots__ = ("prefix", "predicate", "floor", "limit", "buffer", "waiter", "error", "done")

    def __init__(self, prefix: str, predicate: Predicate, floor: int, limit: int) -> None:
        self.prefix = prefix
        self.predicate = predicate
        self.floor = floor  # events at or below this revision are not sent
        self.limit = limit
        self.buffer: deque[CacheEvent] = deque()
        self.waiter: asyncio.Future[bool] | None = None
        self.error: BaseException | None = None
        self.done = False

    def push(self, event: CacheEvent) -> bool:
        """Queue an event; False if the queue is full (the watcher must be ended)."""
        buffer = self.buffer
        if len(buffer) >= self.limit:
            return False
        buffer.append(event)
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(False)
        return True

    def end(self, error: BaseException | None) -> None:
        """Stop this watch: after what is queued (error None), or at once with ``error``."""
        self.done = True
        if error is not None:
            self.error = error
            self.buffer.clear()
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(False)

    def wait(self, bookmark_interval: float | None) -> asyncio.Future[bool]:
        """A future set to False when something is queued, True when a bookmark is due."""
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[bool] = loop.create_future()
        self.waiter = waiter
        if bookmark_interval:
            handle = loop.call_later(bookmark_interval, _bookmark_due, waiter)
            waiter.add_done_callback(lambda _: handle.cancel())
        return waiter


def _bookmark_due(waiter: asyncio.Future[bool]) -> None:
    if not waiter.done():
        waiter.set_result(True)
