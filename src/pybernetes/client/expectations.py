"""Controller expectations: what a controller has asked for and not yet seen in its cache.

Owns client-go's ControllerExpectations: before creating N pods for a ReplicaSet the
controller calls ``expect_creations(key, N)``; its informer handlers call
``creation_observed(key)`` as the pods arrive; ``satisfied(key)`` is true when every
expected creation and deletion has been observed, when nothing is expected for the key,
or when the expectations are older than ``ttl`` (5 minutes: a watch event may have been
lost, so the controller syncs anyway).  ``UIDTrackingExpectations`` also remembers which
pods' deletions are expected, so a deletion is observed once per pod.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

EXPECTATIONS_TTL = 300.0  # seconds (upstream's ExpectationsTimeout)


@dataclass
class _Expectation:
    add: int
    delete: int
    timestamp: float

    def fulfilled(self) -> bool:
        return self.add <= 0 and self.delete <= 0


class ControllerExpectations:
    def __init__(self, ttl: float = EXPECTATIONS_TTL, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl = ttl
        self._clock = clock
        self._items: dict[str, _Expectation] = {}

    def get(self, key: str) -> tuple[int, int] | None:
        exp = self._items.get(key)
        return None if exp is None else (exp.add, exp.delete)

    def set_expectations(self, key: str, add: int, delete: int) -> None:
        self._items[key] = _Expectation(add, delete, self._clock())

    def expect_creations(self, key: str, adds: int) -> None:
        self.set_expectations(key, adds, 0)

    def expect_deletions(self, key: str, dels: int) -> None:
        self.set_expectations(key, 0, dels)

    def raise_expectations(self, key: str, add: int, delete: int) -> None:
        exp = self._items.get(key)
        if exp is not None:
            exp.add += add
            exp.delete += delete

    def lower_expectations(self, key: str, add: int, delete: int) -> None:
        exp = self._items.get(key)
        if exp is not None:
            exp.add -= add
            exp.delete -= delete

    def creation_observed(self, key: str) -> None:
        self.lower_expectations(key, 1, 0)

    def deletion_observed(self, key: str) -> None:
        self.lower_expectations(key, 0, 1)

    def expired(self, key: str) -> bool:
        exp = self._items.get(key)
        return exp is not None and self._clock() - exp.timestamp > self.ttl

    def satisfied(self, key: str) -> bool:
        """Whether the controller should sync ``key`` now."""
        exp = self._items.get(key)
        if exp is None:
            return True  # nothing expected (new object, or expectations were deleted)
        return exp.fulfilled() or self._clock() - exp.timestamp > self.ttl

    satisfied_expectations = satisfied

    def delete_expectations(self, key: str) -> None:
        self._items.pop(key, None)

    def __contains__(self, key: str) -> bool:
        return key in self._items


@dataclass
class UIDTrackingExpectations:
    """Expectations whose deletions are tracked by pod key (observing the same pod twice
    counts once), as upstream's UIDTrackingControllerExpectations."""

    expectations: ControllerExpectations = field(default_factory=ControllerExpectations)
    _uids: dict[str, set[str]] = field(default_factory=dict)

    def expect_deletions(self, key: str, deleted_keys: Iterable[str]) -> None:
        keys = set(deleted_keys)
        self._uids[key] = keys
        self.expectations.expect_deletions(key, len(keys))

    def deletion_observed(self, key: str, deleted_key: str) -> None:
        keys = self._uids.get(key)
        if keys is not None and deleted_key in keys:
            keys.discard(deleted_key)
            self.expectations.deletion_observed(key)

    def expected_deletions(self, key: str) -> frozenset[str]:
        return frozenset(self._uids.get(key, ()))

    def delete_expectations(self, key: str) -> None:
        self._uids.pop(key, None)
        self.expectations.delete_expectations(key)

    def __getattr__(self, name: str):  # the rest is ControllerExpectations'
        if name.startswith("_") or name == "expectations":
            raise AttributeError(name)
        return getattr(self.expectations, name)
