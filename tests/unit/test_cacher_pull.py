"""The watch cache's pull API (``Cacher.open_watch``): events without a task or generator per
watch, a future to wait on only while idle, bookmarks, closing; and the encode-once line of
a plain JSON watch event."""

from __future__ import annotations

import asyncio
import time

import orjson
import pytest

from pybernetes.apiserver.watch import json_line
from pybernetes.storage.cacher import KEY, Cacher
from pybernetes.storage.interface import CompactedError
from pybernetes.storage.memory import MemoryStorage

PREFIX = "/registry/configmaps/"


def attrs(obj):
    return dict(obj["metadata"].get("labels") or {}), {"metadata.name": obj["metadata"]["name"]}


def cm(name: str) -> bytes:
    return orjson.dumps({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}})


async def settle(watcher) -> None:
    """Until the watcher has something to pop or has ended."""
    while not watcher.buffer and not watcher.done:
        await asyncio.wait_for(watcher.wait(), 5)


async def applied(cacher, count: int) -> None:
    """Until the cache holds ``count`` objects (polled, with a deadline)."""
    deadline = time.monotonic() + 5
    while len(cacher.list(PREFIX).entries) < count:
        assert time.monotonic() < deadline, "the cache did not get the writes in time"
        await asyncio.sleep(0.005)


@pytest.fixture
async def cacher():
    store = MemoryStorage()
    cacher = Cacher(store, PREFIX, attrs, history=3, watcher_buffer=2)
    await cacher.start()
    yield cacher
    await cacher.stop()
    await store.close()


async def test_pop_wait_and_close(cacher):
    store = cacher._storage
    watcher = cacher.open_watch(PREFIX, cacher.revision)
    assert watcher.pop() is None and not watcher.done
    waiter = watcher.wait()
    created = await store.create(PREFIX + "ns/a", cm("a"))
    await asyncio.wait_for(waiter, 5)
    event = watcher.pop()
    assert event.type == "ADDED" and event.revision == created.mod_revision
    assert watcher.pop() is None
    pending = watcher.wait()
    watcher.close()  # wakes a pending wait, forgets the watcher
    assert pending.done() and watcher.done
    assert cacher._watchers == {}
    watcher.close()  # idempotent


async def test_backlog_from_history_and_too_old_revision(cacher):
    store = cacher._storage
    start = cacher.revision
    for name in ("a", "b"):
        await store.create(PREFIX + f"ns/{name}", cm(name))
    await applied(cacher, 2)
    watcher = cacher.open_watch(PREFIX, start)
    assert [watcher.pop().entry[KEY] for _ in range(2)] == [PREFIX + "ns/a", PREFIX + "ns/b"]
    watcher.close()
    for name in ("c", "d", "e"):
        await store.create(PREFIX + f"ns/{name}", cm(name))
    await applied(cacher, 5)
    with pytest.raises(CompactedError):
        cacher.open_watch(PREFIX, start)  # older than the 3 events kept


async def test_a_full_queue_ends_the_watcher_with_compacted(cacher):
    store = cacher._storage
    watcher = cacher.open_watch(PREFIX, cacher.revision)
    for name in ("a", "b", "c"):
        await store.create(PREFIX + f"ns/{name}", cm(name))
    while not watcher.done:
        await asyncio.wait_for(watcher.wait(), 5)
    with pytest.raises(CompactedError):
        watcher.pop()
    assert cacher._watchers == {}


async def test_bookmark_is_popped_after_an_idle_interval(cacher):
    watcher = cacher.open_watch(PREFIX, cacher.revision, bookmark_interval=0.02)
    await asyncio.wait_for(watcher.wait(), 5)
    event = watcher.pop()
    assert event.type == "BOOKMARK" and event.revision == cacher.revision
    assert watcher.pop() is None
    watcher.close()


async def test_one_event_is_encoded_once_for_all_watchers(cacher):
    store = cacher._storage
    watchers = [cacher.open_watch(PREFIX, cacher.revision) for _ in range(3)]
    await store.create(PREFIX + "ns/a", cm("a"))
    for watcher in watchers:
        await settle(watcher)
    lines = [json_line(w.pop()) for w in watchers]
    assert lines[0] is lines[1] is lines[2]
    assert orjson.loads(lines[0])["object"]["metadata"]["name"] == "a"
    for watcher in watchers:
        watcher.close()
