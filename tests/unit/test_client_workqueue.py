"""The work queue: dedup, never one item twice at once, dirty re-adds, delays, rate limits."""

from __future__ import annotations

import asyncio

import pytest

from pybernetes.client.workqueue import (
    BucketRateLimiter,
    DelayingQueue,
    ItemExponentialFailureRateLimiter,
    RateLimitingQueue,
    ShutDown,
    WorkQueue,
    default_controller_rate_limiter,
)


async def test_adds_are_deduplicated_and_ordered():
    q = WorkQueue()
    for item in ("a", "b", "a", "c", "b"):
        q.add(item)
    assert len(q) == 3
    assert [await q.get() for _ in range(3)] == ["a", "b", "c"]


async def test_an_item_readded_while_processing_waits_for_done():
    q = WorkQueue()
    q.add("k")
    item = await q.get()
    q.add("k")  # dirty: not handed to a second worker
    assert len(q) == 0
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.05):
            await q.get()
    q.done(item)
    assert len(q) == 1 and await q.get() == "k"


async def test_workers_never_process_one_key_at_once():
    q = WorkQueue()
    active: set[str] = set()
    overlap: list[str] = []
    processed: list[str] = []
    enough = asyncio.Event()

    async def worker():
        while True:
            try:
                key = await q.get()
            except ShutDown:
                return
            if key in active:
                overlap.append(key)
            active.add(key)
            await asyncio.sleep(0)
            if len(processed) < 200:
                q.add(key)  # re-added while being processed
            processed.append(key)
            if len(processed) >= 200:
                enough.set()
            active.discard(key)
            q.done(key)

    for i in range(5):
        q.add(f"k{i % 3}")
    workers = [asyncio.create_task(worker()) for _ in range(4)]
    await asyncio.wait_for(enough.wait(), 5)
    await q.shutdown_with_drain()
    await asyncio.wait_for(asyncio.gather(*workers), 5)
    assert overlap == []


async def test_shutdown_hands_out_what_is_queued_then_raises():
    q = WorkQueue()
    q.add("x")
    waiter = WorkQueue()
    blocked = asyncio.create_task(waiter.get())
    await asyncio.sleep(0)
    q.shutdown()
    waiter.shutdown()
    assert await q.get() == "x"
    with pytest.raises(ShutDown):
        await q.get()
    with pytest.raises(ShutDown):
        await asyncio.wait_for(blocked, 1)
    q.add("y")  # ignored after shutdown
    assert len(q) == 0


async def test_add_after_waits_and_keeps_the_earliest():
    q = DelayingQueue()
    loop = asyncio.get_running_loop()
    start = loop.time()
    q.add_after("late", 0.2)
    q.add_after("late", 0.05)  # brought forward
    q.add_after("late", 1.0)  # a later time does not push it back
    assert q.waiting == 1 and len(q) == 0
    assert await asyncio.wait_for(q.get(), 2) == "late"
    assert 0.04 <= loop.time() - start < 0.5
    q.add_after("never", 10)
    q.shutdown()
    assert q.waiting == 0


def test_exponential_per_item_backoff():
    limiter = ItemExponentialFailureRateLimiter(0.005, 1000)
    delays = [limiter.when("a") for _ in range(5)]
    assert delays == [0.005, 0.01, 0.02, 0.04, 0.08]
    assert limiter.when("b") == 0.005
    for _ in range(40):
        limiter.when("a")
    assert limiter.when("a") == 1000
    assert limiter.num_requeues("a") == 46
    limiter.forget("a")
    assert limiter.when("a") == 0.005


def test_default_rate_limiter_is_max_of_item_and_bucket():
    limiter = default_controller_rate_limiter()
    delays = [limiter.when(f"item{i}") for i in range(100)]
    assert all(d == 0.005 for d in delays)  # the burst of 100 covers them
    over = limiter.when("one-more")
    assert 0.09 <= over <= 0.11  # the 101st waits for a token at 10 qps
    bucket = BucketRateLimiter(10, 1)
    assert bucket.when("a") == 0 and bucket.when("a") > 0


async def test_rate_limited_requeue_and_forget():
    q = RateLimitingQueue(ItemExponentialFailureRateLimiter(0.01, 1))
    q.add_rate_limited("k")
    q.add_rate_limited("k")
    assert q.num_requeues("k") == 2
    assert await asyncio.wait_for(q.get(), 1) == "k"
    q.done("k")
    q.forget("k")
    assert q.num_requeues("k") == 0
    q.shutdown()
