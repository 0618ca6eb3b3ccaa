"""In-process watch fan-out of a storage backend: ordered, and never blocks the writer.

A backend calls ``WatchHub.publish(event)`` right after a write commits (synchronously, so
events are published in revision order).  Each watcher is a ``HubWatch`` async iterator:

* it first *catches up* by reading the backend's log (``read_events``) from its start
  revision, in batches, then goes *live*: published events are appended to its buffer;
* a live watcher whose buffer is full (a slow consumer) is not ended and does not slow the
  writer: its buffer is dropped and it goes back to catching up from the log, where the
  dropped events still are (unless compaction removed them: then it raises CompactedError);
* ``progress()`` tells the consumer the revision up to which it has seen every event under
  its prefix (the cacher uses it to know it is current even when no event of its own came).

``read_events`` must be synchronous, so that "read up to the current revision, then go
live" happens with no publish in between.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable

from pybernetes.storage.interface import CompactedError, WatchEvent

# (prefix, after_revision, limit) -> events under prefix with revision > after_revision,
# in revision order, at most limit of them.
ReadEvents = Callable[[str, int, int], list[WatchEvent]]


class HubWatch:
    """One storage watch: an async iterator of WatchEvent (see the module docstring)."""

    __slots__ = ("_hub", "prefix", "floor", "pos", "local", "buffer", "live", "waiter", "done")

    def __init__(self, hub: WatchHub, prefix: str, revision: int) -> None:
        self._hub = hub
        self.prefix = prefix
        self.floor = revision  # events at or below this are never yielded
        self.pos = revision  # every event <= pos is yielded, in ``local`` or in ``buffer``
        self.local: deque[WatchEvent] = deque()  # read from the log while catching up
        self.buffer: deque[WatchEvent] = deque()  # published while live
        self.live = False
        self.waiter: asyncio.Future[None] | None = None
        self.done = False

    def __aiter__(self) -> HubWatch:
        return self

    async def __anext__(self) -> WatchEvent:
        while True:
            if self.local:
                return self.local.popleft()
            if self.buffer:
                event = self.buffer.popleft()
                if event.revision > self.floor:
                    return event
                continue
            if self.done or self._hub.closed:
                self._stop()
                raise StopAsyncIteration
            if not self.live:
                self._catch_up()
                continue
            self.waiter = asyncio.get_running_loop().create_future()
            try:
                await self.waiter
            finally:
                self.waiter = None

    def _catch_up(self) -> None:
        hub = self._hub
        if self.pos < hub.compacted:
            self._stop()
            raise CompactedError(self.pos, hub.compacted)
        batch = hub.read_events(self.prefix, self.pos, hub.batch) if self.pos < hub.revision else []
        if batch:
            self.local.extend(batch)
            self.pos = batch[-1].revision
        if len(batch) < hub.batch:
            self.pos = max(self.pos, hub.revision)
            self.live = True
            hub.add_live(self)

    def progress(self) -> int:
        """Every event under the prefix with a revision up to this one has been yielded."""
        if self.local:
            return self.local[0].revision - 1
        if self.buffer:
            return self.buffer[0].revision - 1
        if self.live:
            return max(self._hub.revision, self.floor)
        return self.pos

    def wake(self) -> None:
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _stop(self) -> None:
        self.done = True
        self.live = False
        self._hub.remove_live(self)

    async def aclose(self) -> None:
        """Stop watching (a pending ``__anext__`` in another task ends)."""
        self._stop()
        self.local.clear()
        self.buffer.clear()
        self.wake()


class WatchHub:
    """The live watchers of one backend and the fan-out of its committed writes."""

    def __init__(
        self,
        read_events: ReadEvents,
        *,
        revision: int = 0,
        compacted: int = 0,
        buffer_limit: int = 10_000,
        batch: int = 1_000,
    ) -> None:
        self.read_events = read_events
        self.revision = revision  # the newest published revision
        self.compacted = compacted
        self.buffer_limit = max(1, buffer_limit)
        self.batch = max(1, batch)
        self.live: dict[HubWatch, None] = {}  # an ordered set
        self._by_prefix: dict[str, dict[HubWatch, None]] = {}  # live, prefix ending in "/"
        self._other: dict[HubWatch, None] = {}  # live, any other prefix
        self.closed = False

    def watch(self, prefix: str, revision: int) -> HubWatch:
        return HubWatch(self, prefix, revision)

    # The live watchers are also indexed by prefix, so that publishing a key looks up the
    # groups of its "/"-ended prefixes (a few dict lookups) instead of testing every
    # watcher (a cacher per resource: dozens).  Other prefixes are tested one by one.

    def add_live(self, watcher: HubWatch) -> None:
        self.live[watcher] = None
        prefix = watcher.prefix
        if prefix.endswith("/"):
            self._by_prefix.setdefault(prefix, {})[watcher] = None
        else:
            self._other[watcher] = None

    def remove_live(self, watcher: HubWatch) -> None:
        if watcher not in self.live:
            return
        del self.live[watcher]
        prefix = watcher.prefix
        group = self._by_prefix.get(prefix)
        if group is not None:
            group.pop(watcher, None)
            if not group:
                del self._by_prefix[prefix]
        self._other.pop(watcher, None)

    def publish(self, event: WatchEvent) -> None:
        """Hand a committed event to every live watcher of its key (call in revision order)."""
        self.revision = event.revision
        key = event.key
        fallen_behind: list[HubWatch] | None = None
        groups = self._by_prefix
        if groups:
            slash = key.find("/")
            while slash >= 0:
                group = groups.get(key[: slash + 1])
                if group is not None:
                    for watcher in group:
                        if not self._deliver(watcher, event):
                            fallen_behind = (fallen_behind or []) + [watcher]
                slash = key.find("/", slash + 1)
        for watcher in self._other:
            if key.startswith(watcher.prefix) and not self._deliver(watcher, event):
                fallen_behind = (fallen_behind or []) + [watcher]
        if fallen_behind:
            for watcher in fallen_behind:
                watcher.live = False
                self.remove_live(watcher)

    def _deliver(self, watcher: HubWatch, event: WatchEvent) -> bool:
        """Append to a live watcher's buffer; False if it is full (it must catch up again)."""
        buffer = watcher.buffer
        delivered = len(buffer) < self.buffer_limit
        if delivered:
            buffer.append(event)
            watcher.pos = event.revision
        else:
            # Too slow: forget the buffer, read it again from the log later.
            watcher.pos = buffer[0].revision - 1
            buffer.clear()
        watcher.wake()
        return delivered

    def close(self) -> None:
        self.closed = True
        for watcher in list(self.live):
            watcher.wake()
        self.live.clear()
        self._by_prefix.clear()
        self._other.clear()
