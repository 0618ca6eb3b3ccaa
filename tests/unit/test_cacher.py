"""The watch cache over MemoryStorage: entries, lists (current, at a revision, paginated,
filtered), watches (history, predicates, slow watchers, bookmarks) and wait_for_revision."""

from __future__ import annotations

import asyncio
import contextlib

import orjson
import pytest

from pybernetes.storage.cacher import KEY, REVISION, VALUE, CacheEvent, Cacher, fields_of, labels_of
from pybernetes.storage.interface import CompactedError, FutureRevisionError
from pybernetes.storage.memory import MemoryStorage

PREFIX = "/registry/pods/"


def pod(name: str, namespace: str = "ns", *, labels: dict | None = None, node: str = "", rv: str = "") -> bytes:
    meta = {"name": name, "namespace": namespace, "labels": labels or {}}
    if rv:
        meta["resourceVersion"] = rv
    return orjson.dumps({"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": {"nodeName": node}})


def pod_attrs(obj):
    meta = obj["metadata"]
    return dict(meta.get("labels") or {}), {
        "metadata.name": meta["name"],
        "metadata.namespace": meta.get("namespace", ""),
        "spec.nodeName": obj.get("spec", {}).get("nodeName", ""),
    }


def key(name: str, namespace: str = "ns") -> str:
    return f"{PREFIX}{namespace}/{name}"


def rv_of(value: bytes) -> str:
    return orjson.loads(value)["metadata"]["resourceVersion"]


def app_is(app: str):
    return lambda labels, fields: labels.get("app") == app


async def events_of(watch, count: int, within: float = 5.0) -> list[CacheEvent]:
    got: list[CacheEvent] = []

    async def take() -> None:
        async for event in watch:
            got.append(event)
            if len(got) >= count:
                return

    try:
        await asyncio.wait_for(take(), within)
    except TimeoutError:
        pytest.fail(f"watch gave {len(got)} of {count} events: {got}")
    return got


@pytest.fixture
async def store():
    store = MemoryStorage()
    yield store
    await store.close()


@pytest.fixture
async def make_cacher(store):
    made: list[Cacher] = []

    async def make(**options) -> Cacher:
        cacher = Cacher(store, PREFIX, pod_attrs, **options)
        await cacher.start()
        made.append(cacher)
        return cacher

    yield make
    for cacher in made:
        await cacher.stop()


async def test_start_loads_existing_objects_with_resource_versions(store, make_cacher):
    a = await store.create(key("a"), pod("a", labels={"app": "web"}, rv="999"))
    await store.create("/registry/services/ns/a", b"{}")  # another resource
    cacher = await make_cacher()
    entry = cacher.get(key("a"))
    assert entry[REVISION] == a.mod_revision
    assert rv_of(entry[VALUE]) == str(a.mod_revision)
    assert labels_of(entry) == {"app": "web"} and fields_of(entry)["metadata.name"] == "a"
    assert cacher.get("/registry/services/ns/a") is None
    assert cacher.revision == await store.current_revision()


async def test_writes_reach_the_cache_and_keep_bytes_with_resource_version(store, make_cacher):
    cacher = await make_cacher()
    kv = await store.create(key("a"), pod("a"))
    await cacher.wait_for_revision(kv.mod_revision)
    kv = await store.update(key("a"), pod("a", node="n1"), expected_revision=kv.mod_revision)
    await cacher.wait_for_revision(kv.mod_revision)
    entry = cacher.get(key("a"))
    assert fields_of(entry)["spec.nodeName"] == "n1" and rv_of(entry[VALUE]) == str(kv.mod_revision)
    gone = await store.delete(key("a"))
    await cacher.wait_for_revision(gone.mod_revision)
    assert cacher.get(key("a")) is None


async def test_list_prefix_order_predicate_and_pages(store, make_cacher):
    for name in ["c", "a", "b", "d"]:
        await store.create(key(name), pod(name, labels={"app": "web" if name in "ab" else "db"}))
    await store.create(key("z", "other"), pod("z", "other"))
    await store.create(key("x", "ns2"), pod("x", "ns2"))
    cacher = await make_cacher()
    everything = cacher.list(PREFIX)
    assert [e[KEY] for e in everything.entries] == [key(n) for n in "abcd"] + [key("x", "ns2"), key("z", "other")]
    assert everything.revision == cacher.revision and not everything.more
    assert [e[KEY] for e in cacher.list(f"{PREFIX}ns/").entries] == [key(n) for n in "abcd"]
    assert [e[KEY] for e in cacher.list(PREFIX, predicate=app_is("web")).entries] == [key("a"), key("b")]

    page = cacher.list(f"{PREFIX}ns/", limit=3)
    assert [e[KEY] for e in page.entries] == [key(n) for n in "abc"]
    assert page.more and page.remaining == 1
    page = cacher.list(f"{PREFIX}ns/", limit=3, start_after=page.entries[-1][KEY], revision=page.revision)
    assert [e[KEY] for e in page.entries] == [key("d")] and not page.more and page.remaining == 0

    page = cacher.list(PREFIX, predicate=app_is("db"), limit=1)
    assert [e[KEY] for e in page.entries] == [key("c")] and page.more
    page = cacher.list(PREFIX, predicate=app_is("db"), limit=1, start_after=key("c"))
    assert [e[KEY] for e in page.entries] == [key("d")] and not page.more


async def test_list_at_an_older_revision_is_a_snapshot(store, make_cacher):
    a = await store.create(key("a"), pod("a"))
    b = await store.create(key("b"), pod("b"))
    cacher = await make_cacher()
    old = cacher.revision
    await store.update(key("a"), pod("a", node="n1"), expected_revision=a.mod_revision)
    await store.delete(key("b"))
    c = await store.create(key("c"), pod("c"))
    await cacher.wait_for_revision(c.mod_revision)

    then = cacher.list(PREFIX, revision=old)
    assert [(e[KEY], e[REVISION], fields_of(e)["spec.nodeName"]) for e in then.entries] == [
        (key("a"), a.mod_revision, ""),
        (key("b"), b.mod_revision, ""),
    ]
    assert then.revision == old
    first = cacher.list(PREFIX, revision=old, limit=1)
    assert [e[KEY] for e in first.entries] == [key("a")] and first.more
    rest = cacher.list(PREFIX, revision=old, limit=1, start_after=key("a"))
    assert [e[KEY] for e in rest.entries] == [key("b")] and not rest.more
    now = cacher.list(PREFIX)
    assert [e[KEY] for e in now.entries] == [key("a"), key("c")]
    with pytest.raises(FutureRevisionError):
        cacher.list(PREFIX, revision=cacher.revision + 5)


async def test_revision_older_than_the_history_is_too_old(store, make_cacher):
    kv = await store.create(key("a"), pod("a"))
    cacher = await make_cacher(history=3)
    start = cacher.revision
    for i in range(5):
        kv = await store.update(key("a"), pod("a", node=f"n{i}"), expected_revision=kv.mod_revision)
    await cacher.wait_for_revision(kv.mod_revision)
    with pytest.raises(CompactedError):
        cacher.list(PREFIX, revision=start)
    watch = cacher.watch(PREFIX, start)
    with pytest.raises(CompactedError):
        await watch.__anext__()
    # The newest three changes are still there.
    recent = cacher.watch(PREFIX, kv.mod_revision - 3)
    got = await events_of(recent, 3)
    await recent.aclose()
    assert [fields_of(e.entry)["spec.nodeName"] for e in got] == ["n2", "n3", "n4"]


async def test_watch_from_a_revision_in_order_with_deleted_resource_version(store, make_cacher):
    cacher = await make_cacher()
    start = cacher.revision
    a = await store.create(key("a"), pod("a"))
    a2 = await store.update(key("a"), pod("a", node="n1"), expected_revision=a.mod_revision)
    watch = cacher.watch(PREFIX, start)
    got = await events_of(watch, 2)
    await store.create("/registry/services/ns/a", b"{}")
    gone = await store.delete(key("a"))
    got += await events_of(watch, 1)
    await watch.aclose()
    assert [(e.type, e.revision, e.entry[REVISION], rv_of(e.entry[VALUE])) for e in got] == [
        ("ADDED", a.mod_revision, a.mod_revision, str(a.mod_revision)),
        ("MODIFIED", a2.mod_revision, a2.mod_revision, str(a2.mod_revision)),
        ("DELETED", gone.mod_revision, gone.mod_revision, str(gone.mod_revision)),
    ]
    assert fields_of(got[2].entry)["spec.nodeName"] == "n1"  # the last state, as deleted


async def test_watch_namespace_prefix(store, make_cacher):
    cacher = await make_cacher()
    watch = cacher.watch(f"{PREFIX}ns1/", cacher.revision)
    await store.create(key("a", "ns10"), pod("a", "ns10"))
    mine = await store.create(key("a", "ns1"), pod("a", "ns1"))
    [event] = await events_of(watch, 1)
    await watch.aclose()
    assert event.revision == mine.mod_revision


async def test_predicate_turns_moves_into_and_out_of_the_selection_into_added_and_deleted(store, make_cacher):
    cacher = await make_cacher()
    watch = cacher.watch(PREFIX, cacher.revision, predicate=app_is("web"))
    a = await store.create(key("a"), pod("a", labels={"app": "db"}))  # not selected
    a = await store.update(key("a"), pod("a", labels={"app": "web"}), expected_revision=a.mod_revision)
    a = await store.update(key("a"), pod("a", labels={"app": "web"}, node="n"), expected_revision=a.mod_revision)
    a = await store.update(key("a"), pod("a", labels={"app": "db"}), expected_revision=a.mod_revision)
    await store.delete(key("a"))  # no longer selected: not seen
    b = await store.create(key("b"), pod("b", labels={"app": "web"}))
    got = await events_of(watch, 4)
    await watch.aclose()
    assert [(e.type, e.entry[KEY]) for e in got] == [
        ("ADDED", key("a")),
        ("MODIFIED", key("a")),
        ("DELETED", key("a")),
        ("ADDED", key("b")),
    ]
    assert labels_of(got[2].entry) == {"app": "db"}  # leaving the selection sends the new state
    assert got[3].revision == b.mod_revision


async def test_slow_watcher_is_ended_without_blocking_writers_or_others(store, make_cacher):
    cacher = await make_cacher(watcher_buffer=5)
    slow = cacher.watch(PREFIX, cacher.revision)
    fast = cacher.watch(PREFIX, cacher.revision)
    slow_first = asyncio.ensure_future(slow.__anext__())
    fast_first = asyncio.ensure_future(fast.__anext__())
    kv = await store.create(key("a"), pod("a"))
    assert (await slow_first).type == "ADDED" and (await fast_first).type == "ADDED"
    received: list[int] = []
    all_received = asyncio.Event()

    async def consume_fast() -> None:
        async for event in fast:
            received.append(event.revision)
            if len(received) == 20:
                all_received.set()

    consumer = asyncio.ensure_future(consume_fast())
    for i in range(20):  # nobody reads ``slow``; ``fast`` keeps up
        kv = await store.update(key("a"), pod("a", node=f"n{i}"), expected_revision=kv.mod_revision)
        await cacher.wait_for_revision(kv.mod_revision)
        for _ in range(3):
            await asyncio.sleep(0)
    await asyncio.wait_for(all_received.wait(), 5)
    assert received[-1] == kv.mod_revision
    consumer.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await consumer
    with pytest.raises(CompactedError):
        async for _ in slow:
            pass


async def test_bookmarks_tell_the_newest_revision_when_idle(store, make_cacher):
    cacher = await make_cacher()
    watch = cacher.watch(PREFIX, cacher.revision, predicate=app_is("web"), bookmark_interval=0.05)
    await store.create(key("a"), pod("a", labels={"app": "db"}))  # skipped by the predicate
    other = await store.create("/registry/services/ns/s", b"{}")  # progress from elsewhere
    await cacher.wait_for_revision(other.mod_revision)
    event = await asyncio.wait_for(watch.__anext__(), 5)
    await watch.aclose()
    assert event.type == "BOOKMARK" and event.entry[KEY] == "" and event.entry[VALUE] == b""
    assert event.revision == other.mod_revision


async def test_wait_for_revision_follows_writes_to_other_prefixes_and_times_out(store, make_cacher):
    cacher = await make_cacher()
    other = await store.create("/registry/services/ns/s", b"{}")
    await asyncio.wait_for(cacher.wait_for_revision(other.mod_revision), 1)
    assert cacher.revision >= other.mod_revision
    assert cacher.list(PREFIX, revision=other.mod_revision).revision == other.mod_revision
    with pytest.raises(TimeoutError):
        await cacher.wait_for_revision(other.mod_revision + 10, timeout=0.1)


async def test_relists_when_the_storage_watch_falls_too_far_behind(make_cacher):
    store = MemoryStorage(watch_buffer_limit=2)
    try:
        kv = await store.create(key("a"), pod("a"))
        cacher = Cacher(store, PREFIX, pod_attrs)
        await cacher.start()
        watch = cacher.watch(PREFIX, cacher.revision)
        # Let the cacher's storage watch go live, then write more than its buffer holds
        # and compact the log before it reads again: it must relist.
        await cacher.wait_for_revision(kv.mod_revision)
        for _ in range(3):
            await asyncio.sleep(0)
        for i in range(5):
            kv = await store.update(key("a"), pod("a", node=f"n{i}"), expected_revision=kv.mod_revision)
        await store.compact(kv.mod_revision)
        await cacher.wait_for_revision(kv.mod_revision)
        assert fields_of(cacher.get(key("a")))["spec.nodeName"] == "n4"
        with pytest.raises(CompactedError):
            async for _ in watch:
                pass
        await cacher.stop()
    finally:
        await store.close()


async def test_stop_ends_watches(store, make_cacher):
    cacher = await make_cacher()
    watch = cacher.watch(PREFIX, cacher.revision)
    pending = asyncio.ensure_future(watch.__anext__())
    await asyncio.sleep(0)
    await cacher.stop()
    with pytest.raises(StopAsyncIteration):
        await asyncio.wait_for(pending, 2)
    with contextlib.suppress(Exception):
        await watch.aclose()
