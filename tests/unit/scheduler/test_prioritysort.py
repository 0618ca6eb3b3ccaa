"""PrioritySort: higher priority first, then the earlier queued."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from pybernetes.scheduler.plugins.prioritysort import PrioritySort


@dataclass
class Queued:
    pod: dict
    timestamp: float


def queued(priority: int | None, timestamp: float) -> Queued:
    spec: dict = {"containers": [{"name": "c"}]}
    if priority is not None:
        spec["priority"] = priority
    return Queued({"metadata": {"name": "p"}, "spec": spec}, timestamp)


@pytest.mark.parametrize(("a", "b", "want"), [
    (queued(100, 2.0), queued(10, 1.0), True),   # higher priority first, even if later
    (queued(10, 1.0), queued(100, 2.0), False),
    (queued(10, 1.0), queued(10, 2.0), True),    # same priority: earlier first
    (queued(10, 2.0), queued(10, 1.0), False),
    (queued(None, 1.0), queued(0, 2.0), True),   # no priority counts as 0
    (queued(None, 1.0), queued(-5, 0.5), True),
    (queued(10, 1.0), queued(10, 1.0), False),
])
def test_less(a: Queued, b: Queued, want: bool) -> None:
    assert PrioritySort().less(a, b) is want


def test_sorting_a_list() -> None:
    import functools

    plugin = PrioritySort()
    items = [queued(0, 3.0), queued(5, 4.0), queued(5, 1.0), queued(None, 0.0)]
    ordered = sorted(items, key=functools.cmp_to_key(lambda x, y: -1 if plugin.less(x, y) else
                                                     (1 if plugin.less(y, x) else 0)))
    assert [(q.pod["spec"].get("priority"), q.timestamp) for q in ordered] == [(5, 1.0), (5, 4.0), (None, 0.0),
                                                                                (0, 3.0)]


def test_no_events() -> None:
    assert list(PrioritySort().events_to_register()) == []
