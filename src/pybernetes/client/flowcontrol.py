"""Token buckets and backoff: the client's flow control.

``TokenBucket`` (rate per second, burst) is client-go's flowcontrol token bucket: the REST
client waits on it before every request (default 50 QPS / 100 burst) and the work queue's
overall limiter is one (10 QPS / 100 burst).  ``reserve()`` takes a token now, possibly
going into debt, and says how long to wait for it — what golang.org/x/time/rate's
Reservation does.  ``Backoff`` is an exponential backoff with jitter and a cap.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable


class TokenBucket:
    def __init__(self, qps: float, burst: int, *, clock: Callable[[], float] = time.monotonic) -> None:
        if qps <= 0 or burst <= 0:
            raise ValueError("qps and burst must be positive")
        self.qps = float(qps)
        self.burst = int(burst)
        self._clock = clock
        self._tokens = float(burst)
        self._last = clock()

    def _refill(self) -> float:
        now = self._clock()
        elapsed = now - self._last
        if elapsed > 0:
            self._tokens = min(float(self.burst), self._tokens + elapsed * self.qps)
            self._last = now
        return now

    def reserve(self) -> float:
        """Take one token; the seconds to wait until it is really available (0 if now)."""
        self._refill()
        self._tokens -= 1.0
        if self._tokens >= 0:
            return 0.0
        return -self._tokens / self.qps

    def try_accept(self) -> bool:
        """Take a token only if one is available now."""
        self._refill()
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return True
        return False

    async def acquire(self) -> None:
        """Wait for a token (callers are served in the order they asked)."""
        delay = self.reserve()
        if delay > 0:
            await asyncio.sleep(delay)

    @property
    def tokens(self) -> float:
        self._refill()
        return self._tokens


class Backoff:
    """Exponential backoff: ``initial``, doubled (times ``factor``) per step up to ``cap``,
    with up to ``jitter`` x the delay added at random; ``reset()`` starts again."""

    def __init__(self, initial: float = 0.8, cap: float = 30.0, factor: float = 2.0,
                 jitter: float = 1.0) -> None:
        self.initial = initial
        self.cap = cap
        self.factor = factor
        self.jitter = jitter
        self._next = initial

    def next(self) -> float:
        delay = self._next
        self._next = min(self.cap, self._next * self.factor)
        if self.jitter:
            delay += random.random() * self.jitter * delay
        return min(delay, self.cap * (1 + self.jitter))

    def reset(self) -> None:
        self._next = self.initial
