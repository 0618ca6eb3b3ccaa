"""The embedded store: an append-only revision log in one SQLite file.

Open it with ``storage = await SQLiteStorage.open(path)``; ``await storage.close()`` at the end.

Layout (table ``kv``): every write is one row whose ``id`` is the revision it made.

* create: ``create_revision`` 0 (meaning "this row's id"), ``prev_revision`` the id of the
  key's previous row (a tombstone) or 0;
* update: ``prev_revision`` = the id of the row it replaces, ``create_revision`` copied;
* delete: a tombstone row (``deleted`` 1, empty value) whose ``prev_revision`` is the deleted
  row, so a DELETED event's last value is found through it.

The UNIQUE index on ``(key, prev_revision)`` is the compare-and-swap: two writers that read
the same latest row cannot both append after it, even from two processes.  Each row's
successor is the row whose ``prev_revision`` is its id, so the same index also answers "the
latest row of a key" and "the row of a key as of revision R".

The file is in WAL mode with ``synchronous=NORMAL``: a commit is a write() into the WAL, no
fsync, and survives the process being killed (only an OS crash may lose the last commits).
Automatic checkpoints are off on the writer's connection (they would block the event loop
for tens of milliseconds): every ``checkpoint_every`` commits a background thread checkpoints
with its own connection while writes go on, then once more while writes wait (a few
milliseconds: only the frames written meanwhile), so that the next write starts the WAL
again from its beginning and the file stays small.  Reads never wait.

Statements run directly on the event loop: a single-row transaction takes tens of
microseconds, less than a hop to a thread would, and running them synchronously makes each
operation atomic with respect to other asyncio tasks.  After a commit, the write is published
to this process's watchers (``WatchHub``) in revision order; other processes writing the same
file are not seen by them (one API server process owns a file).

Compaction deletes rows superseded at or below a revision and tombstones at or below it (never
the newest row, so revisions never go back), and records that revision in table ``meta``.
``open(..., compact_interval=s)`` compacts every s seconds to the revision of s seconds ago.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sqlite3
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor

from pybernetes.storage import common
from pybernetes.storage.interface import (
    CompactedError,
    FutureRevisionError,
    KeyExistsError,
    KeyNotFoundError,
    KeyValue,
    ListResult,
    Mutation,
    RevisionConflictError,
    WatchEvent,
)
from pybernetes.storage.watchhub import HubWatch, WatchHub

log = logging.getLogger(__name__)

SCHEMA = """
CREATE TABLE IF NOT EXISTS kv (
    id INTEGER PRIMARY KEY,
    key TEXT NOT NULL,
    create_revision INTEGER NOT NULL,
    prev_revision INTEGER NOT NULL,
    deleted INTEGER NOT NULL,
    value BLOB NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS kv_key_prev ON kv (key, prev_revision);
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
"""

SELECT_LATEST = (
    "SELECT id, create_revision, deleted, value FROM kv WHERE key = ? ORDER BY prev_revision DESC LIMIT 1"
)
INSERT = "INSERT INTO kv (key, create_revision, prev_revision, deleted, value) VALUES (?, ?, ?, ?, ?)"
# A create in one statement: a row after the key's latest row if that is a tombstone (or
# after nothing), no row if the key is live.
INSERT_NEW = """
INSERT INTO kv (key, create_revision, prev_revision, deleted, value)
SELECT ?1, 0, IFNULL(latest.id, 0), 0, ?2
FROM (SELECT 1) LEFT JOIN (
    SELECT id, deleted FROM kv WHERE key = ?1 ORDER BY prev_revision DESC LIMIT 1
) AS latest
WHERE latest.deleted IS NULL OR latest.deleted = 1
"""
# The live rows under a key range as of a revision: not a tombstone, and no successor yet.
SELECT_RANGE = """
SELECT id, key, create_revision, value FROM kv
WHERE key >= ? AND key < ? AND key > ? AND id <= ? AND deleted = 0
  AND NOT EXISTS (SELECT 1 FROM kv AS n WHERE n.key = kv.key AND n.prev_revision = kv.id AND n.id <= ?)
ORDER BY key LIMIT ?
"""
SELECT_EVENTS = """
SELECT n.id, n.key, n.create_revision, n.deleted, n.value, p.value FROM kv AS n
LEFT JOIN kv AS p ON p.id = n.prev_revision
WHERE n.id > ? AND n.key >= ? AND n.key < ? ORDER BY n.id LIMIT ?
"""
COMPACT_CHUNK = """
DELETE FROM kv WHERE id > ? AND id <= ? AND id < ? AND (
    deleted = 1
    OR EXISTS (SELECT 1 FROM kv AS n WHERE n.key = kv.key AND n.prev_revision = kv.id AND n.id <= ?)
)
"""
KEY_MAX = "\U0010ffff"
CHECKPOINT_EVERY = 1_000  # commits between background checkpoints (~10 MB of WAL)
COMPACT_CHUNK_ROWS = 5_000


class SQLiteStorage:
    """The Storage protocol over one SQLite file (see the module docstring)."""

    def __init__(
        self, conn: sqlite3.Connection, path: str, *, watch_buffer_limit: int, checkpoint_every: int
    ) -> None:
        self._conn = conn
        self.path = path
        revision = conn.execute("SELECT IFNULL(MAX(id), 0) FROM kv").fetchone()[0]
        row = conn.execute("SELECT value FROM meta WHERE name = 'compacted'").fetchone()
        compacted = row[0] if row else 0
        self._hub = WatchHub(
            self._read_events,
            revision=max(revision, compacted),
            compacted=compacted,
            buffer_limit=watch_buffer_limit,
        )
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sqlite-checkpoint")
        self._checkpoint_conn: sqlite3.Connection | None = None
        self._checkpoint_every = max(1, checkpoint_every)
        self._checkpointing: asyncio.Task[None] | None = None
        self._write_gate: asyncio.Future[None] | None = None  # set while writes must wait
        self._commits_since_checkpoint = 0
        self._compactor: asyncio.Task[None] | None = None
        self._closed = False

    @classmethod
    async def open(
        cls,
        path: str | os.PathLike[str],
        *,
        compact_interval: float | None = None,
        watch_buffer_limit: int = 10_000,
        checkpoint_every: int = CHECKPOINT_EVERY,
    ) -> SQLiteStorage:
        """Open (creating if needed) the store in file ``path``."""
        path = os.fspath(path)
        conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA wal_autocheckpoint=0")
        conn.execute("PRAGMA busy_timeout=5000")
        conn.execute("PRAGMA cache_size=-4000")  # KiB: the watch cache serves reads
        conn.executescript(SCHEMA)
        storage = cls(conn, path, watch_buffer_limit=watch_buffer_limit, checkpoint_every=checkpoint_every)
        if compact_interval:
            storage._compactor = asyncio.create_task(storage._compact_periodically(compact_interval))
        return storage

    # -- reads ---------------------------------------------------------------------------

    async def get(self, key: str) -> KeyValue | None:
        row = self._conn.execute(SELECT_LATEST, (key,)).fetchone()
        if row is None or row[2]:
            return None
        rev, created, _, value = row
        return KeyValue(key, value, rev, created or rev)

    async def list(
        self, prefix: str, *, limit: int = 0, start_after: str | None = None, revision: int = 0
    ) -> ListResult:
        revision = self._read_revision(revision)
        end = common.prefix_end(prefix) or KEY_MAX
        sql_limit = limit + 1 if limit > 0 else -1
        rows = self._conn.execute(
            SELECT_RANGE, (prefix, end, start_after or "", revision, revision, sql_limit)
        ).fetchall()
        more = limit > 0 and len(rows) > limit
        if more:
            rows = rows[:limit]
        items = [KeyValue(key, value, rev, created or rev) for rev, key, created, value in rows]
        return ListResult(items, revision, more)

    def _read_revision(self, revision: int) -> int:
        current = self._hub.revision
        if revision <= 0:
            return current
        if revision > current:
            raise FutureRevisionError(revision, current)
        if revision < self._hub.compacted:
            raise CompactedError(revision, self._hub.compacted)
        return revision

    async def current_revision(self) -> int:
        return self._hub.revision

    async def compacted_revision(self) -> int:
        return self._hub.compacted

    # -- writes --------------------------------------------------------------------------

    def _append(self, key: str, created: int, prev: int, deleted: int, value: bytes) -> int:
        """Insert one row (its own transaction); its id is the new revision."""
        if self._closed:
            raise RuntimeError("storage is closed")
        rev = self._conn.execute(INSERT, (key, created, prev, deleted, value)).lastrowid
        assert rev is not None
        self._committed()
        return rev

    def _committed(self) -> None:
        self._commits_since_checkpoint += 1
        if self._commits_since_checkpoint >= self._checkpoint_every and self._checkpointing is None:
            self._commits_since_checkpoint = 0
            self._checkpointing = asyncio.create_task(self._checkpoint_cycle())

    async def _gate(self) -> None:
        while self._write_gate is not None:
            await asyncio.shield(self._write_gate)

    async def create(self, key: str, value: bytes) -> KeyValue:
        if self._write_gate is not None:
            await self._gate()
        if self._closed:
            raise RuntimeError("storage is closed")
        try:
            cursor = self._conn.execute(INSERT_NEW, (key, value))
        except sqlite3.IntegrityError:  # another process appended after the same row
            raise KeyExistsError(key) from None
        if cursor.rowcount != 1:
            raise KeyExistsError(key)
        rev = cursor.lastrowid
        assert rev is not None
        self._committed()
        self._hub.publish(WatchEvent("ADDED", key, value, rev))
        return KeyValue(key, value, rev, rev)

    async def update(self, key: str, value: bytes, *, expected_revision: int) -> KeyValue:
        if self._write_gate is not None:
            await self._gate()
        row = self._conn.execute(SELECT_LATEST, (key,)).fetchone()
        if row is None or row[2]:
            raise KeyNotFoundError(key)
        current, created, _, old_value = row
        if current != expected_revision:
            raise RevisionConflictError(key, expected_revision, current)
        created = created or current
        try:
            rev = self._append(key, created, current, 0, value)
        except sqlite3.IntegrityError:
            raise self._conflict(key, expected_revision) from None
        self._hub.publish(WatchEvent("MODIFIED", key, value, rev, old_value))
        return KeyValue(key, value, rev, created)

    async def delete(self, key: str, *, expected_revision: int | None = None) -> KeyValue:
        if self._write_gate is not None:
            await self._gate()
        row = self._conn.execute(SELECT_LATEST, (key,)).fetchone()
        if row is None or row[2]:
            raise KeyNotFoundError(key)
        current, created, _, old_value = row
        if expected_revision is not None and current != expected_revision:
            raise RevisionConflictError(key, expected_revision, current)
        created = created or current
        try:
            rev = self._append(key, created, current, 1, b"")
        except sqlite3.IntegrityError:
            raise self._conflict(key, current if expected_revision is None else expected_revision) from None
        self._hub.publish(WatchEvent("DELETED", key, old_value, rev, old_value))
        return KeyValue(key, old_value, rev, created)

    def _conflict(self, key: str, expected: int) -> Exception:
        row = self._conn.execute(SELECT_LATEST, (key,)).fetchone()
        if row is None or row[2]:
            return KeyNotFoundError(key)
        return RevisionConflictError(key, expected, row[0])

    async def guaranteed_update(
        self, key: str, mutate: Mutation, *, create_if_missing: bool = False
    ) -> KeyValue | None:
        return await common.guaranteed_update(self, key, mutate, create_if_missing=create_if_missing)

    # -- watch ---------------------------------------------------------------------------

    def watch(self, prefix: str, revision: int) -> AsyncIterator[WatchEvent]:
        """A ``HubWatch``: also has ``progress()`` and ``aclose()``."""
        watcher: HubWatch = self._hub.watch(prefix, revision)
        return watcher

    def _read_events(self, prefix: str, after: int, limit: int) -> list[WatchEvent]:
        end = common.prefix_end(prefix) or KEY_MAX
        events: list[WatchEvent] = []
        for rev, key, created, deleted, value, prev_value in self._conn.execute(
            SELECT_EVENTS, (after, prefix, end, limit)
        ):
            if deleted:
                events.append(WatchEvent("DELETED", key, prev_value or b"", rev, prev_value))
            elif created == 0:
                events.append(WatchEvent("ADDED", key, value, rev))
            else:
                events.append(WatchEvent("MODIFIED", key, value, rev, prev_value))
        return events

    # -- compaction ------------------------------------------------------------------------

    async def compact(self, revision: int) -> None:
        hub = self._hub
        if revision > hub.revision:
            raise FutureRevisionError(revision, hub.revision)
        if revision <= hub.compacted:
            return
        # From now on, reads older than ``revision`` fail, before any row goes.
        hub.compacted = revision
        self._conn.execute(
            "INSERT INTO meta (name, value) VALUES ('compacted', ?) "
            "ON CONFLICT (name) DO UPDATE SET value = excluded.value",
            (revision,),
        )
        first, newest = self._conn.execute("SELECT IFNULL(MIN(id), 1) - 1, IFNULL(MAX(id), 0) FROM kv").fetchone()
        # Rows kept by an earlier compaction may be superseded now, so every chunk from the
        # first row is looked at; chunks keep the event loop responsive.
        for lo, hi in self._chunks(first, revision):
            self._conn.execute(COMPACT_CHUNK, (lo, hi, newest, revision))
            await asyncio.sleep(0)

    @staticmethod
    def _chunks(start: int, stop: int) -> list[tuple[int, int]]:
        return [(lo, min(lo + COMPACT_CHUNK_ROWS, stop)) for lo in range(start, stop, COMPACT_CHUNK_ROWS)]

    async def _compact_periodically(self, interval: float) -> None:
        target = self._hub.revision
        while True:
            await asyncio.sleep(interval)
            try:
                await self.compact(target)
            except Exception:
                log.exception("compaction to revision %d failed", target)
            target = self._hub.revision

    # -- checkpoints and shutdown ----------------------------------------------------------

    async def _checkpoint_cycle(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            revision = self._hub.revision
            complete = await loop.run_in_executor(self._executor, self._checkpoint)  # writes go on
            if complete and self._hub.revision == revision:
                return  # nothing was written meanwhile: the WAL starts over at the next write
            gate: asyncio.Future[None] = loop.create_future()
            self._write_gate = gate
            try:
                await loop.run_in_executor(self._executor, self._checkpoint)  # writes wait
            finally:
                self._write_gate = None
                gate.set_result(None)
        except Exception as exc:
            log.warning("WAL checkpoint failed: %s", exc)
        finally:
            self._checkpointing = None

    def _checkpoint(self) -> bool:
        """Copy the WAL into the database file (in the checkpoint thread); True if all of it."""
        if self._checkpoint_conn is None:
            self._checkpoint_conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            self._checkpoint_conn.execute("PRAGMA busy_timeout=5000")
        busy, frames, copied = self._checkpoint_conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        return not busy and frames == copied

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._hub.close()
        if self._compactor is not None:
            self._compactor.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._compactor
        if self._checkpointing is not None:
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await self._checkpointing
        self._executor.shutdown(wait=True)
        if self._checkpoint_conn is not None:
            self._checkpoint_conn.close()
        with contextlib.suppress(sqlite3.Error):
            self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        self._conn.close()
