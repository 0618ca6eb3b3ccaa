"""The parts of the watch cache that hold events: the history ring and the per-watcher queue.

``History`` is a bounded ring of recent changes, searchable by revision; each is a plain
tuple ``(type, entry, prev)``: the event type and the entries it put and replaced (tuples
the garbage collector does not track).  ``CacheWatcher`` is one client watch's bounded
queue; the cacher appends to it synchronously (never waiting), and a watcher whose queue is
full is ended instead of slowing the writer.  Its consumer pulls from it (``pop``/``wait``), so an
open watch is a queue and, while idle, one future: no task or generator of its own.
``select(type, now, before, predicate)`` is the event type a watcher with a predicate must
see of one change (an update entering the selection is ADDED, leaving it is DELETED), or
None.
"""

from __future__ import annotations

import asyncio
import bisect
from collections import deque
from collections.abc import Iterator
from typing import Protocol

from pybernetes.storage.cacher_types import REVISION, CacheEvent, Entry, Fields, Labels, Predicate


class WatcherOwner(Protocol):
    """What a watcher needs of its cacher: the newest revision (for bookmarks) and a way to
    be forgotten."""

    @property
    def revision(self) -> int: ...

    def unregister(self, watcher: CacheWatcher) -> None: ...


# One remembered change: the event's type, the entry it put (for DELETED: the last entry at
# the deletion's revision) and the entry it replaced (None for a creation); plain tuples.
Change = tuple[str, Entry, Entry | None]


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
        self._revisions.append(change[1][REVISION])
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


def select(kind: str, now: tuple[Labels, Fields], before: tuple[Labels, Fields] | None,
           predicate: Predicate) -> str | None:
    """The event type a watcher with ``predicate`` sees of a change (None: nothing), given
    the (labels, fields) of the change's entry and, for MODIFIED, of the entry it replaced
    (``attrs_of``; made once per change for all the watchers that need them)."""
    if predicate is None:
        return kind
    matches = predicate(*now)
    if kind != "MODIFIED":
        return kind if matches else None
    was = before is not None and predicate(*before)
    if matches and was:
        return kind
    if matches:
        return "ADDED"
    if was:
        return "DELETED"
    return None


class CacheWatcher:
    """One watch's queue, filled by the cacher and pulled by its consumer.

    The consumer (the cacher's async iterator, or an HTTP watch stream directly) calls
    ``pop()`` until it returns None, then ends if ``done`` or awaits ``wait()``.  Nothing here
    runs on its own: no task, no generator, and a timer only while a bookmark is pending, so
    that thousands of open watches cost a few objects each.
    """

    __slots__ = ("prefix", "predicate", "floor", "limit", "buffer", "waiter", "error", "done",
                 "bookmark_interval", "_owner", "_timer", "_bookmark_due")

    def __init__(self, prefix: str, predicate: Predicate, floor: int, limit: int,
                 owner: WatcherOwner | None = None, bookmark_interval: float | None = None) -> None:
        self.prefix = prefix
        self.predicate = predicate
        self.floor = floor  # events at or below this revision are not sent
        self.limit = limit
        self.buffer: deque[CacheEvent] = deque()
        self.waiter: asyncio.Future[None] | None = None
        self.error: BaseException | None = None
        self.done = False
        self.bookmark_interval = bookmark_interval or None
        self._owner = owner
        self._timer: asyncio.TimerHandle | None = None
        self._bookmark_due = False

    # -- the cacher's side -------------------------------------------------------------------

    def push(self, event: CacheEvent) -> bool:
        """Queue an event; False if the queue is full (the watcher must be ended)."""
        buffer = self.buffer
        if len(buffer) >= self.limit:
            return False
        buffer.append(event)
        if self.waiter is not None:
            self._wake()
        return True

    def end(self, error: BaseException | None) -> None:
        """Stop this watch: after what is queued (error None), or at once with ``error``."""
        self.done = True
        if error is not None:
            self.error = error
            self.buffer.clear()
        if self.waiter is not None:
            self._wake()

    def _wake(self) -> None:
        waiter, self.waiter = self.waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(None)
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    # -- the consumer's side -----------------------------------------------------------------

    def pop(self) -> CacheEvent | None:
        """The next event; None when none is ready (the watch is over if ``done``, else
        ``wait()``).  Raises the error the watch was ended with (CompactedError)."""
        buffer = self.buffer
        while buffer:
            event = buffer.popleft()
            if event.revision > self.floor:
                return event
        if self.error is not None:
            raise self.error
        if self._bookmark_due:
            self._bookmark_due = False
            if not self.done and self._owner is not None:
                mark = max(self._owner.revision, self.floor)
                return CacheEvent("BOOKMARK", ("", mark, b"", (), ()), mark)
        return None

    def wait(self) -> asyncio.Future[None]:
        """A future done when something may be ready: an event, the end, or a bookmark due
        (``bookmark_interval`` seconds passed without an event)."""
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[None] = loop.create_future()
        if self.waiter is not None:
            self._wake()
        self.waiter = waiter
        if self.bookmark_interval:
            self._timer = loop.call_later(self.bookmark_interval, self._bookmark, waiter)
        return waiter

    def _bookmark(self, waiter: asyncio.Future[None]) -> None:
        self._timer = None
        if waiter is self.waiter:
            self._bookmark_due = True
            self._wake()

    def close(self) -> None:
        """Stop receiving events (idempotent); the owner forgets this watcher."""
        self.done = True
        if self.waiter is not None or self._timer is not None:
            self._wake()
        owner, self._owner = self._owner, None
        if owner is not None:
            owner.unregister(self)
