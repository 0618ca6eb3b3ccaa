"""An in-memory Storage with the same semantics as the SQLite log, for unit tests.

It keeps every key's history (so lists at an old revision work) and the log of events (so
watches from an old revision work) until ``compact`` forgets them.  Revisions are
consecutive, so the log is indexed by revision.  Watchers are served by the same
``WatchHub`` as the SQLite backend.
"""

from __future__ import annotations

import bisect
from collections.abc import AsyncIterator

from pybernetes.storage import common
from pybernetes.storage.interface import (
    CompactedError,
    FutureRevisionError,
    KeyExistsError,
    KeyNotFoundError,
    KeyValue,
    ListResult,
    Mutation,
    RevisionConflictError,
    WatchEvent,
)
from pybernetes.storage.watchhub import HubWatch, WatchHub

# A key's history: (revision, value at that revision, None once deleted), oldest first.
History = list[tuple[int, KeyValue | None]]


class MemoryStorage:
    def __init__(self, *, watch_buffer_limit: int = 10_000) -> None:
        self._current: dict[str, KeyValue] = {}
        self._history: dict[str, History] = {}
        self._keys: list[str] = []  # every key with a history, sorted
        self._log: list[WatchEvent] = []  # events, self._log[i].revision == self._log_start + i
        self._log_start = 1
        self._hub = WatchHub(self._read_events, buffer_limit=watch_buffer_limit)
        self._closed = False

    # -- reads ---------------------------------------------------------------------------

    async def get(self, key: str) -> KeyValue | None:
        return self._current.get(key)

    async def list(
        self, prefix: str, *, limit: int = 0, start_after: str | None = None, revision: int = 0
    ) -> ListResult:
        current = self._hub.revision
        if revision > current:
            raise FutureRevisionError(revision, current)
        if 0 < revision < self._hub.compacted:
            raise CompactedError(revision, self._hub.compacted)
        at = revision if revision > 0 else current
        start = bisect.bisect_left(self._keys, prefix)
        if start_after is not None and start_after >= prefix:
            start = bisect.bisect_right(self._keys, start_after)
        items: list[KeyValue] = []
        more = False
        for index in range(start, len(self._keys)):
            key = self._keys[index]
            if not key.startswith(prefix):
                break
            value = self._value_at(key, at)
            if value is None:
                continue
            if limit > 0 and len(items) == limit:
                more = True
                break
            items.append(value)
        return ListResult(items, at, more)

    def _value_at(self, key: str, revision: int) -> KeyValue | None:
        history = self._history[key]
        index = bisect.bisect_right(history, revision, key=lambda item: item[0])
        return history[index - 1][1] if index > 0 else None

    async def current_revision(self) -> int:
        return self._hub.revision

    async def compacted_revision(self) -> int:
        return self._hub.compacted

    # -- writes --------------------------------------------------------------------------

    def _record(self, event: WatchEvent, value: KeyValue | None) -> None:
        if self._closed:
            raise RuntimeError("storage is closed")
        key = event.key
        history = self._history.get(key)
        if history is None:
            history = self._history[key] = []
            bisect.insort(self._keys, key)
        history.append((event.revision, value))
        if value is None:
            del self._current[key]
        else:
            self._current[key] = value
        self._log.append(event)
        self._hub.publish(event)

    async def create(self, key: str, value: bytes) -> KeyValue:
        if key in self._current:
            raise KeyExistsError(key)
        rev = self._hub.revision + 1
        kv = KeyValue(key, value, rev, rev)
        self._record(WatchEvent("ADDED", key, value, rev), kv)
        return kv

    async def update(self, key: str, value: bytes, *, expected_revision: int) -> KeyValue:
        old = self._current.get(key)
        if old is None:
            raise KeyNotFoundError(key)
        if old.mod_revision != expected_revision:
            raise RevisionConflictError(key, expected_revision, old.mod_revision)
        rev = self._hub.revision + 1
        kv = KeyValue(key, value, rev, old.create_revision)
        self._record(WatchEvent("MODIFIED", key, value, rev, old.value), kv)
        return kv

    async def delete(self, key: str, *, expected_revision: int | None = None) -> KeyValue:
        old = self._current.get(key)
        if old is None:
            raise KeyNotFoundError(key)
        if expected_revision is not None and old.mod_revision != expected_revision:
            raise RevisionConflictError(key, expected_revision, old.mod_revision)
        rev = self._hub.revision + 1
        self._record(WatchEvent("DELETED", key, old.value, rev, old.value), None)
        return KeyValue(key, old.value, rev, old.create_revision)

    async def guaranteed_update(
        self, key: str, mutate: Mutation, *, create_if_missing: bool = False
    ) -> KeyValue | None:
        return await common.guaranteed_update(self, key, mutate, create_if_missing=create_if_missing)

    # -- watch ---------------------------------------------------------------------------

    def watch(self, prefix: str, revision: int) -> AsyncIterator[WatchEvent]:
        """A ``HubWatch``: also has ``progress()`` and ``aclose()``."""
        watcher: HubWatch = self._hub.watch(prefix, revision)
        return watcher

    def _read_events(self, prefix: str, after: int, limit: int) -> list[WatchEvent]:
        events: list[WatchEvent] = []
        for index in range(max(0, after + 1 - self._log_start), len(self._log)):
            event = self._log[index]
            if event.key.startswith(prefix):
                events.append(event)
                if len(events) >= limit:
                    break
        return events

    # -- compaction ------------------------------------------------------------------------

    async def compact(self, revision: int) -> None:
        hub = self._hub
        if revision > hub.revision:
            raise FutureRevisionError(revision, hub.revision)
        if revision <= hub.compacted:
            return
        hub.compacted = revision
        for key in list(self._history):
            history = self._history[key]
            index = bisect.bisect_right(history, revision, key=lambda item: item[0])
            if index == 0:
                continue
            keep_from = index - 1 if history[index - 1][1] is not None else index
            del history[:keep_from]
            if not history:
                del self._history[key]
                self._keys.pop(bisect.bisect_left(self._keys, key))
        drop = revision + 1 - self._log_start
        if drop > 0:
            del self._log[:drop]
            self._log_start = revision + 1

    async def close(self) -> None:
        self._closed = True
        self._hub.close()
