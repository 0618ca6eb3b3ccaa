"""Token bucket and backoff (fake clock), and the TaskSet helper."""

from __future__ import annotations

import asyncio
import logging

import pytest

from pybernetes.client.flowcontrol import Backoff, TokenBucket
from pybernetes.client.tasks import TaskSet


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_token_bucket_burst_then_rate():
    clock = Clock()
    bucket = TokenBucket(50, 100, clock=clock)
    assert [bucket.reserve() for _ in range(100)] == [0.0] * 100
    assert bucket.reserve() == pytest.approx(0.02)
    assert bucket.reserve() == pytest.approx(0.04)  # the debt grows
    clock.now += 1.0  # 50 tokens back
    assert bucket.reserve() == 0.0
    assert TokenBucket(1, 1, clock=clock).try_accept()  # a full bucket at first


def test_try_accept_never_goes_into_debt():
    clock = Clock()
    bucket = TokenBucket(1, 2, clock=clock)
    assert bucket.try_accept() and bucket.try_accept()
    assert not bucket.try_accept()
    clock.now += 1.0
    assert bucket.try_accept()


def test_backoff_doubles_to_the_cap_and_resets():
    b = Backoff(initial=1, cap=5, jitter=0)
    assert [b.next() for _ in range(5)] == [1, 2, 4, 5, 5]
    b.reset()
    assert b.next() == 1
    jittered = Backoff(initial=1, cap=5, jitter=1.0)
    assert 1 <= jittered.next() <= 2


async def test_taskset_logs_deaths_and_stops_in_reverse_order(caplog):
    order: list[str] = []
    deaths: list[str] = []
    tasks = TaskSet("owner", on_death=lambda name, exc: deaths.append(name))

    async def forever(name: str) -> None:
        try:
            await asyncio.Event().wait()
        finally:
            order.append(name)

    async def boom() -> None:
        raise RuntimeError("bad")

    tasks.start("first", forever("first"))
    tasks.start("second", forever("second"))
    with caplog.at_level(logging.ERROR):
        died = tasks.start("dies", boom())
        with pytest.raises(RuntimeError):
            await died
        await asyncio.sleep(0)
    assert deaths == ["owner/dies"]
    assert "owner/dies died" in caplog.text
    assert tasks.names == ["owner/first", "owner/second"]
    await tasks.stop()
    assert order == ["second", "first"]
    assert len(tasks) == 0
