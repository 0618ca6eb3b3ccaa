"""The controllers' work queue: deduplicating, never one item twice at once, rate limited.

Owns client-go's workqueue semantics for asyncio:

- ``WorkQueue``: ``add`` puts an item in once however often it is added before a worker
  takes it (the dirty set); ``get`` hands it to one worker and marks it processing; an
  item added again while processing is kept aside and queued again only at ``done`` — so
  no item is ever processed by two workers at once.  ``shutdown`` makes ``get`` raise
  ``ShutDown`` once the queue is empty (items already queued are still handed out);
  ``shutdown_with_drain`` also waits for the items in processing to be done.
- ``DelayingQueue.add_after(item, delay)``: added when the delay passes (a timer per
  waiting item; adding it again sooner brings it forward).
- ``RateLimitingQueue.add_rate_limited(item)``: added after the rate limiter's delay;
  ``forget`` clears the item's failure history; ``num_requeues`` tells it.
- Rate limiters: per-item exponential (5 ms doubling to 1000 s), a token bucket
  (10 QPS, 100 burst) and the max of both, ``default_controller_rate_limiter()`` as
  client-go's DefaultControllerRateLimiter.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Hashable
from typing import Protocol

from pybernetes.client.flowcontrol import TokenBucket


class ShutDown(Exception):
    """The queue is shut down and empty."""


class RateLimiter(Protocol):
    def when(self, item: Hashable) -> float: ...
    def forget(self, item: Hashable) -> None: ...
    def num_requeues(self, item: Hashable) -> int: ...


class ItemExponentialFailureRateLimiter:
    """base * 2^failures per item, capped."""

    def __init__(self, base: float = 0.005, cap: float = 1000.0) -> None:
        self.base = base
        self.cap = cap
        self._failures: dict[Hashable, int] = {}

    def when(self, item: Hashable) -> float:
        exp = self._failures.get(item, 0)
        self._failures[item] = exp + 1
        if exp > 60:  # 2^60 * anything sensible is past the cap
            return self.cap
        return min(self.base * (2 ** exp), self.cap)

    def forget(self, item: Hashable) -> None:
        self._failures.pop(item, None)

    def num_requeues(self, item: Hashable) -> int:
        return self._failures.get(item, 0)


class BucketRateLimiter:
    """One token bucket for all items: the overall rate of retries."""

    def __init__(self, qps: float = 10.0, burst: int = 100) -> None:
        self.bucket = TokenBucket(qps, burst)

    def when(self, item: Hashable) -> float:
        return self.bucket.reserve()

    def forget(self, item: Hashable) -> None:
        pass

    def num_requeues(self, item: Hashable) -> int:
        return 0


class MaxOfRateLimiter:
    """The longest delay of several limiters (every one is asked, so each counts)."""

    def __init__(self, *limiters: RateLimiter) -> None:
        self.limiters = limiters

    def when(self, item: Hashable) -> float:
        return max(limiter.when(item) for limiter in self.limiters)

    def forget(self, item: Hashable) -> None:
        for limiter in self.limiters:
            limiter.forget(item)

    def num_requeues(self, item: Hashable) -> int:
        return max(limiter.num_requeues(item) for limiter in self.limiters)


def default_controller_rate_limiter() -> MaxOfRateLimiter:
    return MaxOfRateLimiter(ItemExponentialFailureRateLimiter(0.005, 1000.0), BucketRateLimiter(10.0, 100))


class WorkQueue:
    def __init__(self, name: str = "") -> None:
        self.name = name
        self._queue: deque[Hashable] = deque()
        self._dirty: set[Hashable] = set()
        self._processing: set[Hashable] = set()
        self._shutting_down = False
        self._wakeup = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()

    def add(self, item: Hashable) -> None:
        if self._shutting_down or item in self._dirty:
            return
        self._dirty.add(item)
        if item in self._processing:
            return  # queued again when its worker is done
        self._queue.append(item)
        self._wakeup.set()

    async def get(self) -> Hashable:
        """The next item (now marked processing; call ``done`` after).  Raises ``ShutDown``
        when the queue is shut down and empty."""
        while not self._queue:
            if self._shutting_down:
                raise ShutDown(self.name)
            self._wakeup.clear()
            await self._wakeup.wait()
        item = self._queue.popleft()
        self._processing.add(item)
        self._idle.clear()
        self._dirty.discard(item)
        if self._queue:
            self._wakeup.set()  # let another waiting worker take the next one
        return item

    def done(self, item: Hashable) -> None:
        self._processing.discard(item)
        if item in self._dirty:
            self._queue.append(item)
            self._wakeup.set()
        if not self._processing:
            self._idle.set()

    def __len__(self) -> int:
        return len(self._queue)

    @property
    def processing(self) -> frozenset[Hashable]:
        return frozenset(self._processing)

    @property
    def shutting_down(self) -> bool:
        return self._shutting_down

    def shutdown(self) -> None:
        self._shutting_down = True
        self._wakeup.set()

    async def shutdown_with_drain(self) -> None:
        """Shut down, then wait until every item being processed is done."""
        self.shutdown()
        await self._idle.wait()


class DelayingQueue(WorkQueue):
    def __init__(self, name: str = "") -> None:
        super().__init__(name)
        self._waiting: dict[Hashable, tuple[float, asyncio.TimerHandle]] = {}

    def add_after(self, item: Hashable, delay: float) -> None:
        if self._shutting_down:
            return
        if delay <= 0:
            self.add(item)
            return
        loop = asyncio.get_running_loop()
        ready = loop.time() + delay
        current = self._waiting.get(item)
        if current is not None:
            if current[0] <= ready:
                return
            current[1].cancel()
        self._waiting[item] = (ready, loop.call_at(ready, self._ready, item))

    def _ready(self, item: Hashable) -> None:
        self._waiting.pop(item, None)
        self.add(item)

    @property
    def waiting(self) -> int:
        return len(self._waiting)

    def shutdown(self) -> None:
        for _, handle in self._waiting.values():
            handle.cancel()
        self._waiting.clear()
        super().shutdown()


class RateLimitingQueue(DelayingQueue):
    def __init__(self, rate_limiter: RateLimiter | None = None, name: str = "") -> None:
        super().__init__(name)
        self.rate_limiter = rate_limiter or default_controller_rate_limiter()

    def add_rate_limited(self, item: Hashable) -> None:
        self.add_after(item, self.rate_limiter.when(item))

    def forget(self, item: Hashable) -> None:
        self.rate_limiter.forget(item)

    def num_requeues(self, item: Hashable) -> int:
        return self.rate_limiter.num_requeues(item)
