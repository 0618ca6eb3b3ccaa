"""The one contract suite every Storage implementation passes.

A backend's test module subclasses ``StorageContract`` (whose name does not start with
"Test", so it is not collected by itself) and provides the fixture ``make_storage``: an async
factory ``await make_storage(**options)`` returning a fresh, empty store, closed by the
fixture at the end.  Options every backend accepts: ``watch_buffer_limit``.
"""

from __future__ import annotations

import asyncio
import contextlib
import time

import orjson
import pytest

from pybernetes.storage.interface import (
    CompactedError,
    FutureRevisionError,
    KeyExistsError,
    KeyNotFoundError,
    RevisionConflictError,
    WatchEvent,
)


async def collect(watch, count: int, within: float = 5.0) -> list[WatchEvent]:
    """The next ``count`` events of a watch, failing if they do not come in time."""
    events: list[WatchEvent] = []

    async def take() -> None:
        async for event in watch:
            events.append(event)
            if len(events) >= count:
                return

    try:
        await asyncio.wait_for(take(), within)
    except TimeoutError:
        pytest.fail(f"watch gave {len(events)} of {count} events: {events}")
    return events


async def first_event_error(watch) -> BaseException | None:
    try:
        await asyncio.wait_for(watch.__anext__(), 2.0)
    except (CompactedError, FutureRevisionError, StopAsyncIteration, TimeoutError) as exc:
        return exc
    return None


class StorageContract:
    @pytest.fixture
    async def store(self, make_storage):
        return await make_storage()

    # -- revisions and CRUD --------------------------------------------------------------

    async def test_revisions_are_global_and_increase_with_every_write(self, store):
        start = await store.current_revision()
        a = await store.create("/r/a", b"1")
        b = await store.create("/r/b", b"2")
        a2 = await store.update("/r/a", b"3", expected_revision=a.mod_revision)
        gone = await store.delete("/r/b")
        revisions = [a.mod_revision, b.mod_revision, a2.mod_revision, gone.mod_revision]
        assert revisions == sorted(set(revisions))
        assert revisions[0] > start
        assert await store.current_revision() == gone.mod_revision

    async def test_create_then_get(self, store):
        kv = await store.create("/r/ns/a", b'{"x":1}')
        assert kv.key == "/r/ns/a" and kv.value == b'{"x":1}'
        assert kv.create_revision == kv.mod_revision
        assert await store.get("/r/ns/a") == kv
        assert await store.get("/r/ns/missing") is None

    async def test_create_existing_key_fails(self, store):
        await store.create("/r/a", b"1")
        with pytest.raises(KeyExistsError):
            await store.create("/r/a", b"2")
        assert (await store.get("/r/a")).value == b"1"

    async def test_create_after_delete_is_a_new_object(self, store):
        first = await store.create("/r/a", b"1")
        await store.delete("/r/a")
        again = await store.create("/r/a", b"2")
        assert again.create_revision == again.mod_revision > first.mod_revision
        assert (await store.get("/r/a")).value == b"2"

    async def test_update_compares_and_swaps(self, store):
        kv = await store.create("/r/a", b"1")
        new = await store.update("/r/a", b"2", expected_revision=kv.mod_revision)
        assert new.mod_revision > kv.mod_revision
        assert new.create_revision == kv.create_revision
        with pytest.raises(RevisionConflictError) as err:
            await store.update("/r/a", b"3", expected_revision=kv.mod_revision)
        assert err.value.actual == new.mod_revision and err.value.expected == kv.mod_revision
        assert (await store.get("/r/a")).value == b"2"
        # Lists at the update's revision and just before it see one version each.
        assert (await store.list("/r/")).items == [new]
        assert (await store.list("/r/", revision=new.mod_revision - 1)).items == [kv]

    async def test_update_missing_or_deleted_key_fails(self, store):
        with pytest.raises(KeyNotFoundError):
            await store.update("/r/a", b"1", expected_revision=1)
        kv = await store.create("/r/a", b"1")
        await store.delete("/r/a")
        with pytest.raises(KeyNotFoundError):
            await store.update("/r/a", b"2", expected_revision=kv.mod_revision)

    async def test_update_with_a_revision_the_key_never_had_fails(self, store):
        kv = await store.create("/r/a", b"1")
        other = await store.create("/r/b", b"1")
        with pytest.raises(RevisionConflictError):
            await store.update("/r/a", b"2", expected_revision=other.mod_revision)
        assert (await store.get("/r/a")) == kv

    async def test_delete(self, store):
        kv = await store.create("/r/a", b"last")
        with pytest.raises(RevisionConflictError):
            await store.delete("/r/a", expected_revision=kv.mod_revision + 100)
        gone = await store.delete("/r/a", expected_revision=kv.mod_revision)
        assert gone.value == b"last" and gone.mod_revision > kv.mod_revision
        assert gone.create_revision == kv.create_revision
        assert await store.get("/r/a") is None
        with pytest.raises(KeyNotFoundError):
            await store.delete("/r/a")

    # -- guaranteed_update -----------------------------------------------------------------

    async def test_guaranteed_update_applies_the_mutation(self, store):
        await store.create("/r/a", b"1")
        kv = await store.guaranteed_update("/r/a", lambda cur: cur.value + b"2")
        assert kv.value == b"12" and (await store.get("/r/a")) == kv

    async def test_guaranteed_update_no_change_returns_current(self, store):
        kv = await store.create("/r/a", b"1")
        assert await store.guaranteed_update("/r/a", lambda cur: None) == kv
        assert await store.current_revision() == kv.mod_revision

    async def test_guaranteed_update_missing_key(self, store):
        with pytest.raises(KeyNotFoundError):
            await store.guaranteed_update("/r/a", lambda cur: b"x")
        kv = await store.guaranteed_update(
            "/r/a", lambda cur: b"created" if cur is None else b"bad", create_if_missing=True
        )
        assert kv.value == b"created"

    async def test_guaranteed_update_mutation_errors_propagate(self, store):
        await store.create("/r/a", b"1")

        def refuse(cur):
            raise ValueError("no")

        with pytest.raises(ValueError):
            await store.guaranteed_update("/r/a", refuse)
        assert (await store.get("/r/a")).value == b"1"

    async def test_concurrent_updates_of_one_key_one_wins_the_loser_retries(self, store):
        await store.create("/r/list", b"[]")
        both_read = asyncio.Barrier(2)
        calls: list[str] = []

        def appender(name: str):
            async def mutate(cur):
                calls.append(name)
                items = orjson.loads(cur.value)
                if len(calls) <= 2:
                    await both_read.wait()  # both have read the same revision
                return orjson.dumps([*items, name])

            return mutate

        # Direct compare-and-swap: the second writer with the same expected revision loses.
        base = await store.get("/r/list")
        results = await asyncio.gather(
            store.update("/r/list", b"[]", expected_revision=base.mod_revision),
            store.update("/r/list", b"[]", expected_revision=base.mod_revision),
            return_exceptions=True,
        )
        assert sum(isinstance(r, RevisionConflictError) for r in results) == 1

        await asyncio.gather(
            store.guaranteed_update("/r/list", appender("a")),
            store.guaranteed_update("/r/list", appender("b")),
        )
        final = orjson.loads((await store.get("/r/list")).value)
        assert sorted(final) == ["a", "b"]
        assert len(calls) == 3  # the loser read again and mutated once more

    # -- watch ---------------------------------------------------------------------------

    async def test_watch_from_a_revision_sees_every_later_event_in_order(self, store):
        start = await store.current_revision()
        a = await store.create("/r/ns/a", b"a1")
        await store.create("/other/x", b"not mine")
        a2 = await store.update("/r/ns/a", b"a2", expected_revision=a.mod_revision)
        b = await store.create("/r/ns/b", b"b1")
        gone = await store.delete("/r/ns/a")
        watch = store.watch("/r/", start)
        try:
            history = await collect(watch, 4)
            # Live events follow the history without a gap.
            c = await store.create("/r/ns/c", b"c1")
            await store.create("/other/y", b"not mine")
            b2 = await store.update("/r/ns/b", b"b2", expected_revision=b.mod_revision)
            live = await collect(watch, 2)
        finally:
            await watch.aclose()
        assert [(e.type, e.key, e.value, e.revision, e.prev_value) for e in history + live] == [
            ("ADDED", "/r/ns/a", b"a1", a.mod_revision, None),
            ("MODIFIED", "/r/ns/a", b"a2", a2.mod_revision, b"a1"),
            ("ADDED", "/r/ns/b", b"b1", b.mod_revision, None),
            ("DELETED", "/r/ns/a", b"a2", gone.mod_revision, b"a2"),
            ("ADDED", "/r/ns/c", b"c1", c.mod_revision, None),
            ("MODIFIED", "/r/ns/b", b"b2", b2.mod_revision, b"b1"),
        ]

    async def test_watch_prefix_does_not_match_longer_siblings(self, store):
        start = await store.current_revision()
        await store.create("/r/ns10/a", b"x")
        mine = await store.create("/r/ns1/a", b"y")
        watch = store.watch("/r/ns1/", start)
        try:
            [event] = await collect(watch, 1)
        finally:
            await watch.aclose()
        assert event.key == "/r/ns1/a" and event.revision == mine.mod_revision

    async def test_many_concurrent_writers_are_seen_in_revision_order(self, store):
        start = await store.current_revision()
        watch = store.watch("/r/", start)

        async def writer(n: int) -> list[int]:
            revs = []
            kv = await store.create(f"/r/w{n}", b"0")
            revs.append(kv.mod_revision)
            for i in range(5):
                await asyncio.sleep(0)
                kv = await store.update(f"/r/w{n}", b"%d" % i, expected_revision=kv.mod_revision)
                revs.append(kv.mod_revision)
            return revs

        try:
            written = sum(await asyncio.gather(*(writer(n) for n in range(20))), [])
            events = await collect(watch, len(written))
        finally:
            await watch.aclose()
        seen = [e.revision for e in events]
        assert seen == sorted(written)

    async def test_slow_watcher_catches_up_without_losing_events(self, make_storage):
        store = await make_storage(watch_buffer_limit=5)
        start = await store.current_revision()
        watch = store.watch("/r/", start)
        try:
            first = await store.create("/r/k", b"0")
            [event] = await collect(watch, 1)  # live now
            assert event.revision == first.mod_revision
            kv = first
            for i in range(50):  # far more than the buffer while nobody reads
                kv = await store.update("/r/k", b"%d" % (i + 1), expected_revision=kv.mod_revision)
            events = await collect(watch, 50)
        finally:
            await watch.aclose()
        assert [e.value for e in events] == [b"%d" % (i + 1) for i in range(50)]
        assert [e.revision for e in events] == sorted({e.revision for e in events})

    async def test_watch_from_a_compacted_revision_fails(self, store):
        kv = await store.create("/r/a", b"1")
        kv = await store.update("/r/a", b"2", expected_revision=kv.mod_revision)
        kv = await store.update("/r/a", b"3", expected_revision=kv.mod_revision)
        await store.compact(kv.mod_revision - 1)
        assert await store.compacted_revision() == kv.mod_revision - 1
        err = await first_event_error(store.watch("/r/", kv.mod_revision - 2))
        assert isinstance(err, CompactedError)
        # From the compacted revision itself, every later event is still there.
        watch = store.watch("/r/", kv.mod_revision - 1)
        try:
            [event] = await collect(watch, 1)
        finally:
            await watch.aclose()
        assert (event.type, event.value, event.prev_value) == ("MODIFIED", b"3", b"2")

    async def test_watch_ends_when_closed(self, store):
        watch = store.watch("/r/", await store.current_revision())
        task = asyncio.ensure_future(watch.__anext__())
        await asyncio.sleep(0)
        await watch.aclose()
        with pytest.raises(StopAsyncIteration):
            await asyncio.wait_for(task, 2.0)

    # -- list ----------------------------------------------------------------------------

    async def test_list_prefix_in_key_order(self, store):
        for key in ["/r/b/2", "/r/a/1", "/r/b/1", "/r/bb/1", "/s/a"]:
            await store.create(key, key.encode())
        result = await store.list("/r/b/")
        assert [kv.key for kv in result.items] == ["/r/b/1", "/r/b/2"]
        assert result.revision == await store.current_revision() and not result.more
        everything = await store.list("/r/")
        assert [kv.key for kv in everything.items] == ["/r/a/1", "/r/b/1", "/r/b/2", "/r/bb/1"]

    async def test_list_at_an_old_revision(self, store):
        a = await store.create("/r/a", b"a1")
        b = await store.create("/r/b", b"b1")
        old = await store.current_revision()
        await store.update("/r/a", b"a2", expected_revision=a.mod_revision)
        await store.delete("/r/b")
        await store.create("/r/c", b"c1")
        then = await store.list("/r/", revision=old)
        assert [(kv.key, kv.value, kv.mod_revision) for kv in then.items] == [
            ("/r/a", b"a1", a.mod_revision),
            ("/r/b", b"b1", b.mod_revision),
        ]
        assert then.revision == old
        now = await store.list("/r/")
        assert [(kv.key, kv.value) for kv in now.items] == [("/r/a", b"a2"), ("/r/c", b"c1")]

    async def test_list_at_compacted_or_future_revision_fails(self, store):
        a = await store.create("/r/a", b"1")
        a = await store.update("/r/a", b"2", expected_revision=a.mod_revision)
        await store.compact(a.mod_revision)
        with pytest.raises(CompactedError):
            await store.list("/r/", revision=a.mod_revision - 1)
        assert [kv.value for kv in (await store.list("/r/", revision=a.mod_revision)).items] == [b"2"]
        with pytest.raises(FutureRevisionError):
            await store.list("/r/", revision=a.mod_revision + 10)

    async def test_list_pages_are_a_consistent_snapshot(self, store):
        for i in range(10):
            await store.create(f"/r/k{i}", b"v0")
        pages, start_after, revision = [], None, 0
        while True:
            page = await store.list("/r/", limit=3, start_after=start_after, revision=revision)
            pages.append(page)
            revision = page.revision
            # Writes between pages must not show up in later pages.
            await store.create(f"/r/k{len(pages)}x", b"new")
            kv = await store.get("/r/k9")
            await store.update("/r/k9", b"v1", expected_revision=kv.mod_revision)
            if not page.more:
                break
            start_after = page.items[-1].key
        assert [len(p.items) for p in pages] == [3, 3, 3, 1]
        assert [p.more for p in pages] == [True, True, True, False]
        items = [kv for p in pages for kv in p.items]
        assert [kv.key for kv in items] == [f"/r/k{i}" for i in range(10)]
        assert {kv.value for kv in items} == {b"v0"}

    # -- compaction ------------------------------------------------------------------------

    async def test_compaction_keeps_current_values_and_revisions_keep_growing(self, store):
        a = await store.create("/r/a", b"1")
        a = await store.update("/r/a", b"2", expected_revision=a.mod_revision)
        await store.create("/r/b", b"x")
        gone = await store.delete("/r/b")
        await store.compact(gone.mod_revision)
        assert await store.get("/r/a") == a
        assert await store.get("/r/b") is None
        assert [kv.key for kv in (await store.list("/r/")).items] == ["/r/a"]
        again = await store.create("/r/b", b"y")
        assert again.mod_revision == gone.mod_revision + 1
        with pytest.raises(FutureRevisionError):
            await store.compact(again.mod_revision + 5)

    async def test_watch_latency_is_not_polling(self, store):
        """A live watcher hears about a write within a few milliseconds (no polling loop)."""
        watch = store.watch("/r/", await store.current_revision())
        try:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(watch.__anext__(), 0.01)  # now live and waiting
            started = time.perf_counter()
            await store.create("/r/fast", b"1")
            [event] = await collect(watch, 1)
            assert event.key == "/r/fast"
            assert time.perf_counter() - started < 0.2
        finally:
            await watch.aclose()
