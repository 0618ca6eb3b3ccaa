"""Restart and pull back-off, as upstream kubelet's ``flowcontrol.Backoff``: per key, a delay
that starts at ``initial`` (10 s) and doubles at each failure up to ``cap`` (5 min), forgotten
once nothing failed for ``reset_after`` (10 min).  The crash-loop key is a pod's container
(CrashLoopBackOff); the pull key an image of a pod (ImagePullBackOff).  Pure: the clock is
passed in.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass

INITIAL = 10.0
CAP = 300.0
RESET_AFTER = 600.0


@dataclass(slots=True)
class _Entry:
    delay: float
    last: float  # when the delay was last set


class Backoff:
    def __init__(self, initial: float = INITIAL, cap: float = CAP, reset_after: float = RESET_AFTER,
                 clock: Callable[[], float] = time.time) -> None:
        self.initial = initial
        self.cap = cap
        self.reset_after = reset_after
        self.clock = clock
        self._entries: dict[Hashable, _Entry] = {}

    def remaining(self, key: Hashable, since: float) -> float:
        """Seconds still to wait after the failure at ``since`` (0: may try now)."""
        entry = self._entries.get(key)
        if entry is None:
            return 0.0
        left = since + entry.delay - self.clock()
        return left if left > 0 else 0.0

    def delay(self, key: Hashable) -> float:
        entry = self._entries.get(key)
        return entry.delay if entry is not None else 0.0

    def next(self, key: Hashable) -> float:
        """Record a failure (a restart or a failed pull): the delay before the next try."""
        now = self.clock()
        entry = self._entries.get(key)
        if entry is None or now - entry.last > self.reset_after:
            entry = self._entries[key] = _Entry(self.initial, now)
        else:
            entry.delay = min(entry.delay * 2, self.cap)
            entry.last = now
        return entry.delay

    def reset(self, key: Hashable) -> None:
        self._entries.pop(key, None)

    def forget(self, keep: Callable[[Hashable], bool] | Iterable[Hashable]) -> None:
        """Drop the entries of keys no longer wanted (pods gone)."""
        if callable(keep):
            doomed = [k for k in self._entries if not keep(k)]
        else:
            wanted = set(keep)
            doomed = [k for k in self._entries if k not in wanted]
        for key in doomed:
            del self._entries[key]
