"""The watch cache: one per resource, fed by one storage watch, serving lists and watches.

The cacher keeps, for every key under its prefix, an entry: the object's JSON bytes with
``metadata.resourceVersion`` already set to the key's mod_revision (so lists are a join of
bytes), plus the object's labels and selectable fields (for filtering without decoding).
Each storage event is decoded once (orjson), given its resourceVersion, passed to ``attrs``
and encoded again; only bytes and the two small tuples of labels and fields are kept, never
the decoded object.

Entries (plain tuples read by index, see cacher_types) and the history's changes hold only
strings, ints, bytes and tuples of them, so the garbage collector stops tracking them: a
full collection costs no more with 100,000 objects cached than with none.  ``get`` and
``list`` hand out the stored entries themselves (nothing allocated per entry); a watch's
``CacheEvent`` is made when a change is sent, once per change and shared by the watchers
that see it as it is.  Predicates still get dicts (``attrs_of``), made per entry tested and
once per change for all the watchers with a predicate.

Public: ``Cacher(storage, prefix, attrs, *, history=10_000, watcher_buffer=10_000)`` with
``start()``, ``stop()``, ``revision``, ``wait_for_revision(revision, timeout=3.0)``,
``get(key) -> Entry | None``, ``list(prefix, *, predicate, limit, start_after, revision)
-> CacheList``, ``watch(prefix, revision, *, predicate, bookmark_interval) ->
AsyncIterator[CacheEvent]``, ``open_watch(...) -> CacheWatcher`` and ``unregister(watcher)``;
and re-exported from cacher_types: Entry and its index constants, ``make_entry``,
``labels_of``, ``fields_of``, ``attr_dict``, ``attrs_of``, CacheEvent, CacheList.

It keeps a bounded history of recent events (with the previous entry) so that watches can
start from a recent revision and lists can be answered at a recent revision (a consistent
snapshot for limit/continue pagination).  A revision older than the history is too old
(CompactedError, which the API turns into 410 Expired).

Fan-out is synchronous and never waits: each applied event is appended to the bounded queue
of every watcher whose prefix (and predicate) it matches, grouped by prefix so that a
watcher of another namespace costs one string comparison per group.  A watcher whose queue
is full is ended with CompactedError.

``revision`` also advances without events of this prefix when the storage watch tells its
progress (the SQLite and memory backends' watches have ``progress()``), so a read after a
write to another resource does not wait for an event that will never come.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import heapq
import logging
import sys
from collections.abc import AsyncIterator, Callable
from typing import Any

import orjson

from pybernetes.storage.cacher_types import (
    FIELDS,
    KEY,
    LABELS,
    REVISION,
    VALUE,
    AttrItems,
    AttrsFunc,
    CacheEvent,
    CacheList,
    Entry,
    Fields,
    Labels,
    Predicate,
    attr_dict,
    attrs_of,
    fields_of,
    labels_of,
    make_entry,
)
from pybernetes.storage.cachewatch import CacheWatcher, History, select
from pybernetes.storage.common import prefix_end
from pybernetes.storage.interface import CompactedError, FutureRevisionError, Storage, WatchEvent

__all__ = [
    "FIELDS", "KEY", "LABELS", "REVISION", "VALUE", "AttrItems", "AttrsFunc", "CacheEvent",
    "CacheList", "Cacher", "Entry", "Fields", "Labels", "Predicate", "attr_dict", "attrs_of",
    "fields_of", "labels_of", "make_entry",
]

log = logging.getLogger(__name__)

LIST_PAGE = 5_000  # keys per storage read while (re)listing
RELIST_BACKOFF = 0.5  # seconds between attempts when the storage fails


class Cacher:
    def __init__(
        self,
        storage: Storage,
        prefix: str,
        attrs: AttrsFunc,
        *,
        history: int = 10_000,
        watcher_buffer: int = 10_000,
    ) -> None:
        self._storage = storage
        self.prefix = prefix
        self._attrs = attrs
        self._watcher_buffer = max(1, watcher_buffer)
        self._entries: dict[str, Entry] = {}
        self._keys: list[str] = []  # the keys of _entries, sorted
        self._history = History(history)
        self._history_start = 0  # watches from this revision on can be served
        self._applied = 0  # the newest revision applied
        self._watchers: dict[str, dict[CacheWatcher, None]] = {}  # by prefix
        self._revision_waiters: set[asyncio.Future[None]] = set()
        self._source: AsyncIterator[WatchEvent] | None = None
        self._progress: Callable[[], int] | None = None
        self._task: asyncio.Task[None] | None = None
        self._stopped = False

    # -- lifecycle -------------------------------------------------------------------------

    async def start(self) -> None:
        """List the prefix, then watch from the list's revision; returns once synced."""
        await self._relist()
        self._task = asyncio.create_task(self._run(), name=f"cacher {self.prefix}")

    async def stop(self) -> None:
        self._stopped = True
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self._close_source()
        self._end_watchers(None)

    async def _close_source(self) -> None:
        source, self._source, self._progress = self._source, None, None
        aclose = getattr(source, "aclose", None)
        if aclose is not None:
            with contextlib.suppress(Exception):
                await aclose()

    async def _relist(self) -> None:
        entries: dict[str, Entry] = {}
        revision, start_after = 0, None
        while True:
            page = await self._storage.list(
                self.prefix, limit=LIST_PAGE, start_after=start_after, revision=revision
            )
            revision = page.revision
            for kv in page.items:
                entries[kv.key] = self._entry(kv.key, kv.mod_revision, kv.value, None)
            if not page.more:
                break
            start_after = page.items[-1].key
        await self._close_source()
        self._entries = entries
        self._keys = sorted(entries)
        self._history.clear()
        self._history_start = self._applied = revision
        self._source = self._storage.watch(self.prefix, revision)
        self._progress = getattr(self._source, "progress", None)
        self._wake_revision_waiters()

    async def _run(self) -> None:
        while not self._stopped:
            source = self._source
            assert source is not None
            try:
                async for event in source:
                    self._apply(event)
                if self._source is source:  # the storage closed
                    self._end_watchers(None)
                    return
            except CompactedError as exc:
                log.warning("cacher %s: storage watch too old (%s); relisting", self.prefix, exc)
            except Exception:
                log.exception("cacher %s: storage watch failed; relisting", self.prefix)
            while not self._stopped:
                try:
                    await self._relist()
                    break
                except Exception:
                    log.exception("cacher %s: relist failed", self.prefix)
                    await asyncio.sleep(RELIST_BACKOFF)
            # The history restarted: every watcher must start again from a new list.
            self._end_watchers(CompactedError(self._history_start - 1, self._history_start))

    # -- applying storage events ---------------------------------------------------------

    def _entry(self, key: str, revision: int, value: bytes, like: Entry | None) -> Entry:
        """An entry of value with resourceVersion set; attrs from ``like`` when given."""
        try:
            obj: Any = orjson.loads(value)
            meta = obj.setdefault("metadata", {})
            meta["resourceVersion"] = str(revision)
            if like is not None:
                labels, fields = like[LABELS], like[FIELDS]
            else:
                labels, fields = self._attrs(obj)
                labels, fields = _shared_strings(labels), _shared_strings(fields)
            # orjson's buffer is larger than its output: keep an exact-size copy.
            return (key, revision, bytes(memoryview(orjson.dumps(obj))), labels, fields)
        except Exception:
            log.exception("cacher %s: cannot decode %s at revision %d", self.prefix, key, revision)
            return (key, revision, value, (), ())

    def _apply(self, event: WatchEvent) -> None:
        key, revision = event.key, event.revision
        if revision <= self._applied:
            return
        prev = self._entries.get(key)
        if event.type == "DELETED":
            if prev is None:
                return
            entry = self._entry(key, revision, event.value, prev)
            del self._entries[key]
            index = bisect.bisect_left(self._keys, key)
            del self._keys[index]
            kind = "DELETED"
        else:
            entry = self._entry(key, revision, event.value, None)
            self._entries[key] = entry
            if prev is None:
                bisect.insort(self._keys, key)
            kind = "ADDED" if prev is None else "MODIFIED"
        self._applied = revision
        dropped = self._history.append((kind, entry, prev))
        if dropped is not None:
            self._history_start = dropped
        if self._watchers:
            self._dispatch(kind, entry, prev)
        if self._revision_waiters:
            self._wake_revision_waiters()

    def _dispatch(self, kind: str, entry: Entry, prev: Entry | None) -> None:
        key = entry[KEY]
        event: CacheEvent | None = None  # made once, for the first watcher it goes to
        now: tuple[Labels, Fields] | None = None  # attrs as dicts, once, for predicates
        before: tuple[Labels, Fields] | None = None
        full: list[CacheWatcher] | None = None
        for prefix, group in self._watchers.items():
            if not key.startswith(prefix):
                continue
            for watcher in group:
                predicate = watcher.predicate
                if predicate is None:
                    seen: str | None = kind
                else:
                    if now is None:
                        now = attrs_of(entry)
                        if kind == "MODIFIED" and prev is not None:
                            before = attrs_of(prev)
                    seen = select(kind, now, before, predicate)
                if seen is None:
                    continue
                if event is None:
                    event = CacheEvent(kind, entry, entry[REVISION])
                selected = event if seen == kind else CacheEvent(seen, event.entry, event.revision)
                if not watcher.push(selected):
                    if full is None:
                        full = []
                    full.append(watcher)
        if full:
            for watcher in full:
                watcher.end(CompactedError(watcher.floor, self._history_start))
                self.unregister(watcher)

    # -- reads -----------------------------------------------------------------------------

    @property
    def revision(self) -> int:
        """The newest revision this cache has applied."""
        progress = self._progress
        if progress is not None:
            seen = progress()
            if seen > self._applied:
                return seen
        return self._applied

    async def wait_for_revision(self, revision: int, timeout: float = 3.0) -> None:  # noqa: ASYNC109
        """Wait until the cache has applied ``revision`` (for consistent reads after writes).
        Raises TimeoutError (the API answers 504) if it does not get there in time."""
        if self.revision >= revision:
            return
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while self.revision < revision:
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise TimeoutError(f"cache of {self.prefix} did not reach revision {revision} in time")
            waiter: asyncio.Future[None] = loop.create_future()
            self._revision_waiters.add(waiter)
            # Progress made by other prefixes' writes wakes no one: look again soon.
            handle = loop.call_later(min(remaining, 0.05), _set_done, waiter)
            try:
                await waiter
            finally:
                handle.cancel()
                self._revision_waiters.discard(waiter)

    def _wake_revision_waiters(self) -> None:
        for waiter in self._revision_waiters:
            _set_done(waiter)
        self._revision_waiters.clear()

    def get(self, key: str) -> Entry | None:
        return self._entries.get(key)

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
        newest).  Raises CompactedError when revision is older than the history and
        FutureRevisionError when it is newer than the cache (wait_for_revision first)."""
        current = self.revision
        if revision <= 0:
            revision = current
        elif revision > current:
            raise FutureRevisionError(revision, current)
        elif revision < self._history_start:
            raise CompactedError(revision, self._history_start)
        keys = self._keys
        low = bisect.bisect_left(keys, prefix)
        if start_after is not None and start_after >= prefix:
            low = bisect.bisect_right(keys, start_after)
        end = prefix_end(prefix)
        high = bisect.bisect_left(keys, end) if end is not None else len(keys)
        if revision >= self._applied:
            if predicate is None:
                stop = high if limit <= 0 else min(high, low + limit)
                entries = self._entries
                return CacheList([entries[k] for k in keys[low:stop]], revision, stop < high, high - stop)
            candidates = (self._entries[k] for k in keys[low:high])
            found, more = _take(candidates, predicate, limit)
            return CacheList(found, revision, more, None if more else 0)
        return self._list_snapshot(prefix, predicate, limit, start_after, revision, keys[low:high])

    def _list_snapshot(
        self,
        prefix: str,
        predicate: Predicate,
        limit: int,
        start_after: str | None,
        revision: int,
        current_keys: list[str],
    ) -> CacheList:
        """The list as of an older revision: the current entries with every change made
        after ``revision`` rolled back (the first such change of a key holds its old entry)."""
        before: dict[str, Entry | None] = {}
        for _kind, entry, prev in self._history.since(revision):
            before.setdefault(entry[KEY], prev)
        entries = self._entries
        end = prefix_end(prefix)
        gone = sorted(
            key
            for key, old in before.items()
            if old is not None
            and key not in entries
            and key.startswith(prefix)
            and (start_after is None or key > start_after)
            and (end is None or key < end)
        )
        candidates = (
            before[key] if key in before else entries[key] for key in heapq.merge(current_keys, gone)
        )
        found, more = _take((e for e in candidates if e is not None), predicate, limit)
        return CacheList(found, revision, more, None if more else 0)

    # -- watch -----------------------------------------------------------------------------

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
        return self._watch(prefix, revision, predicate, bookmark_interval)

    async def _watch(
        self, prefix: str, revision: int, predicate: Predicate, bookmark_interval: float | None
    ) -> AsyncIterator[CacheEvent]:
        watcher = self.open_watch(prefix, revision, predicate=predicate,
                                  bookmark_interval=bookmark_interval)
        try:
            while True:
                event = watcher.pop()
                if event is not None:
                    yield event
                elif watcher.done:
                    return
                else:
                    await watcher.wait()
        finally:
            watcher.close()

    def open_watch(
        self,
        prefix: str,
        revision: int,
        *,
        predicate: Predicate = None,
        bookmark_interval: float | None = None,
    ) -> CacheWatcher:
        """``watch`` without the iterator: a registered watcher to pull events from
        (``pop``/``wait``) and ``close`` when done.  Raises CompactedError at once if
        revision is older than the history."""
        if self._stopped:
            raise RuntimeError(f"cacher of {self.prefix} is stopped")
        if revision < self._history_start:
            raise CompactedError(revision, self._history_start)
        watcher = CacheWatcher(prefix, predicate, revision, self._watcher_buffer, self,
                               bookmark_interval)
        for kind, entry, prev in self._history.since(revision):
            if entry[KEY].startswith(prefix):
                if predicate is None:
                    seen: str | None = kind
                else:
                    before = attrs_of(prev) if kind == "MODIFIED" and prev is not None else None
                    seen = select(kind, attrs_of(entry), before, predicate)
                if seen is not None:
                    watcher.buffer.append(CacheEvent(seen, entry, entry[REVISION]))
        watcher.limit += len(watcher.buffer)  # the backlog does not count against the limit
        self._watchers.setdefault(prefix, {})[watcher] = None
        return watcher

    def unregister(self, watcher: CacheWatcher) -> None:
        """Forget a watcher (idempotent); it receives no more events."""
        group = self._watchers.get(watcher.prefix)
        if group is not None:
            group.pop(watcher, None)
            if not group:
                del self._watchers[watcher.prefix]

    def _end_watchers(self, error: BaseException | None) -> None:
        for group in list(self._watchers.values()):
            for watcher in list(group):
                watcher.end(error)
                self.unregister(watcher)


def _take(candidates, predicate: Predicate, limit: int) -> tuple[list[Entry], bool]:
    """Up to ``limit`` (0: all) entries matching predicate; and whether more match."""
    found: list[Entry] = []
    for entry in candidates:
        if predicate is not None and not predicate(attr_dict(entry[LABELS]), attr_dict(entry[FIELDS])):
            continue
        if limit > 0 and len(found) >= limit:
            return found, True
        found.append(entry)
    return found, False


def _shared_strings(attrs: dict[str, str]) -> AttrItems:
    """The stored form of attrs (``attr_items``), with interned strings: thousands of pods
    share a namespace, a node name, a phase and their labels, so each such string is kept
    once."""
    if not attrs:
        return ()
    items: list[str] = []
    for name, value in attrs.items():
        items.append(sys.intern(name) if type(name) is str else name)
        items.append(sys.intern(value) if type(value) is str else value)
    return tuple(items)


def _set_done(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)
