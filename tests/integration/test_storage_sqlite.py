"""The storage contract suite against SQLiteStorage, plus what only a file can show:
persistence across reopening, and no acknowledged write lost when the process is SIGKILLed."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "unit"))

from storage_contract import StorageContract, collect  # noqa: E402

from pybernetes.storage.interface import (  # noqa: E402
    KeyExistsError,
    KeyNotFoundError,
    RevisionConflictError,
    WatchEvent,
)
from pybernetes.storage.memory import MemoryStorage  # noqa: E402
from pybernetes.storage.sqlite import SQLiteStorage  # noqa: E402

CHILD = Path(__file__).with_name("storage_crash_child.py")


class TestSQLiteStorage(StorageContract):
    @pytest.fixture
    async def make_storage(self, tmp_path):
        made: list[SQLiteStorage] = []

        async def make(**options) -> SQLiteStorage:
            store = await SQLiteStorage.open(tmp_path / f"store{len(made)}.db", **options)
            made.append(store)
            return store

        yield make
        for store in made:
            await store.close()


async def test_reopen_keeps_values_revision_and_compaction(tmp_path):
    path = tmp_path / "store.db"
    store = await SQLiteStorage.open(path)
    a = await store.create("/r/a", b"1")
    a = await store.update("/r/a", b"2", expected_revision=a.mod_revision)
    await store.create("/r/b", b"x")
    gone = await store.delete("/r/b")
    await store.compact(gone.mod_revision)
    await store.close()

    store = await SQLiteStorage.open(path)
    try:
        assert await store.current_revision() == gone.mod_revision
        assert await store.compacted_revision() == gone.mod_revision
        assert await store.get("/r/a") == a
        assert await store.get("/r/b") is None
        c = await store.create("/r/c", b"c")
        assert c.mod_revision == gone.mod_revision + 1
        watch = store.watch("/r/", gone.mod_revision)
        try:
            [event] = await collect(watch, 1)
        finally:
            await watch.aclose()
        assert event.key == "/r/c"
    finally:
        await store.close()


async def test_wal_stays_small_and_compaction_removes_history(tmp_path):
    path = tmp_path / "store.db"
    wal = tmp_path / "store.db-wal"
    store = await SQLiteStorage.open(path, checkpoint_every=200)
    try:
        kv = await store.create("/r/k", b"v" * 500)
        for i in range(6_000):
            kv = await store.update("/r/k", b"%d" % i + b"v" * 500, expected_revision=kv.mod_revision)
            await asyncio.sleep(0)  # as a server does between requests: checkpoints progress
        # Without the WAL starting over after checkpoints it would hold every commit (~60 MB).
        assert wal.stat().st_size < 10 * 2**20
        await store.compact(kv.mod_revision)
        rows = store._conn.execute("SELECT COUNT(*) FROM kv").fetchone()[0]
        assert rows == 1
        assert (await store.get("/r/k")).value.startswith(b"5999v")
    finally:
        await store.close()
    assert not wal.exists() or wal.stat().st_size == 0  # closing checkpoints and truncates the WAL


def test_no_acknowledged_write_is_lost_when_the_process_is_killed(tmp_path):
    path = tmp_path / "crash.db"
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    child = subprocess.Popen(
        [sys.executable, str(CHILD), str(path)], stdout=subprocess.PIPE, text=True, env=env
    )
    acknowledged: list[tuple[str, int, str]] = []
    try:
        deadline = time.monotonic() + 30
        assert child.stdout is not None
        while len(acknowledged) < 3_000 and time.monotonic() < deadline:
            line = child.stdout.readline()
            if not line:
                break
            key, revision, value = line.split()
            acknowledged.append((key, int(revision), value))
        child.send_signal(signal.SIGKILL)  # mid-stream: it is still writing
        child.wait(timeout=10)
        # Lines written before the kill but not read yet were acknowledged too.
        for line in child.stdout.read().splitlines():
            parts = line.split()
            if len(parts) == 3:
                acknowledged.append((parts[0], int(parts[1]), parts[2]))
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
        if child.stdout is not None:
            child.stdout.close()
    assert child.returncode == -signal.SIGKILL
    assert len(acknowledged) >= 3_000

    asyncio.run(check_acknowledged(path, acknowledged))


async def check_acknowledged(path: Path, acknowledged: list[tuple[str, int, str]]) -> None:
    store = await SQLiteStorage.open(path)
    try:
        latest: dict[str, tuple[int, str]] = {}
        for key, revision, value in acknowledged:
            latest[key] = (revision, value)
        # Every acknowledged revision is at or below the reopened store's revision ...
        assert await store.current_revision() >= acknowledged[-1][1]
        # ... and every acknowledged write is there: the last one of each key as its value,
        # the earlier ones in the key's history (a list at that revision).
        for key, (revision, value) in latest.items():
            kv = await store.get(key)
            assert kv is not None, key
            assert kv.mod_revision >= revision
            if kv.mod_revision == revision:
                assert kv.value == value.encode()
        for key, revision, value in acknowledged:
            page = await store.list(key, revision=revision)
            assert [(kv.key, kv.mod_revision, kv.value) for kv in page.items] == [
                (key, revision, value.encode())
            ]
        # The reopened store goes on from where the killed one stopped.
        kv = await store.create("/crash/after", b"x")
        assert kv.mod_revision > acknowledged[-1][1]
    finally:
        await store.close()


# -- the two backends agree on random histories ------------------------------------------

KEYS = ["/r/a/1", "/r/a/2", "/r/b/1", "/r/bb/1", "/s/x"]
operation = st.one_of(
    st.tuples(st.just("create"), st.sampled_from(KEYS), st.binary(max_size=8)),
    st.tuples(st.just("update"), st.sampled_from(KEYS), st.binary(max_size=8)),
    st.tuples(st.just("stale_update"), st.sampled_from(KEYS), st.binary(max_size=8)),
    st.tuples(st.just("delete"), st.sampled_from(KEYS), st.just(b"")),
    st.tuples(st.just("compact"), st.just(""), st.just(b"")),
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=st.lists(operation, max_size=40), prefix=st.sampled_from(["/r/", "/r/a/", "/r/b", ""]))
def test_sqlite_and_memory_agree(tmp_path, ops, prefix):
    asyncio.run(_agree(tmp_path / f"agree-{time.monotonic_ns()}.db", ops, prefix))


async def _apply(store, op, key, value):
    try:
        if op == "create":
            return await store.create(key, value)
        if op == "delete":
            return await store.delete(key)
        current = await store.get(key)
        expected = current.mod_revision if current else 1
        if op == "stale_update":
            expected -= 1
        if op == "compact":
            return await store.compact(max(0, await store.current_revision() - 2))
        return await store.update(key, value, expected_revision=expected)
    except (KeyExistsError, KeyNotFoundError, RevisionConflictError) as exc:
        return type(exc).__name__


async def _agree(path: Path, ops, prefix: str) -> None:
    memory, sqlite = MemoryStorage(), await SQLiteStorage.open(path)
    try:
        for op, key, value in ops:
            assert await _apply(memory, op, key, value) == await _apply(sqlite, op, key, value)
        current = await memory.current_revision()
        assert current == await sqlite.current_revision()
        compacted = await memory.compacted_revision()
        assert compacted == await sqlite.compacted_revision()
        for revision in range(compacted, current + 1):
            for limit in (0, 2):
                pages = [await s.list(prefix, revision=revision, limit=limit) for s in (memory, sqlite)]
                assert pages[0] == pages[1]
        # The same events from the compacted revision on, up to a last write under the prefix.
        end = [await s.create(prefix + "~end", b"") for s in (memory, sqlite)]
        assert end[0] == end[1]
        assert await _events(memory, prefix, compacted, end[0].mod_revision) == await _events(
            sqlite, prefix, compacted, end[0].mod_revision
        )
    finally:
        await memory.close()
        await sqlite.close()


async def _events(store, prefix: str, after: int, last: int) -> list[WatchEvent]:
    watch = store.watch(prefix, after)
    try:
        events = []
        while not events or events[-1].revision < last:
            events.append(await asyncio.wait_for(watch.__anext__(), 5))
        return events
    finally:
        await watch.aclose()
