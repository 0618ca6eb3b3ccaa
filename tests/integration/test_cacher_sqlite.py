"""The watch cache over the SQLite store: start from a file with data, follow writes,
serve a snapshot list and a watch from a past revision, and restart from the file."""

from __future__ import annotations

import asyncio

import orjson

from pybernetes.storage.cacher import KEY, VALUE, Cacher
from pybernetes.storage.sqlite import SQLiteStorage

PREFIX = "/registry/configmaps/"


def configmap(name: str, value: str) -> bytes:
    return orjson.dumps(
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": "ns"}, "data": {"v": value}}
    )


def attrs(obj):
    return obj["metadata"].get("labels") or {}, {"metadata.name": obj["metadata"]["name"]}


async def test_cacher_over_sqlite(tmp_path):
    path = tmp_path / "store.db"
    store = await SQLiteStorage.open(path)
    for i in range(50):
        await store.create(f"{PREFIX}ns/cm{i:03d}", configmap(f"cm{i:03d}", "0"))
    cacher = Cacher(store, PREFIX, attrs)
    await cacher.start()
    try:
        assert len(cacher.list(PREFIX).entries) == 50
        start = cacher.revision
        watch = cacher.watch(PREFIX, start)
        kv = await store.get(f"{PREFIX}ns/cm007")
        kv = await store.update(kv.key, configmap("cm007", "1"), expected_revision=kv.mod_revision)
        gone = await store.delete(f"{PREFIX}ns/cm008")
        await cacher.wait_for_revision(gone.mod_revision)
        events = [await asyncio.wait_for(watch.__anext__(), 5) for _ in range(2)]
        await watch.aclose()
        assert [(e.type, e.revision) for e in events] == [("MODIFIED", kv.mod_revision), ("DELETED", gone.mod_revision)]
        snapshot = cacher.list(PREFIX, revision=start, limit=10, start_after=f"{PREFIX}ns/cm005")
        assert [e[KEY].rsplit("/", 1)[1] for e in snapshot.entries] == [f"cm{i:03d}" for i in range(6, 16)]
        assert orjson.loads(snapshot.entries[1][VALUE])["data"]["v"] == "0"
        now = cacher.list(PREFIX)
        assert len(now.entries) == 49
        assert orjson.loads(cacher.get(kv.key)[VALUE])["metadata"]["resourceVersion"] == str(kv.mod_revision)
    finally:
        await cacher.stop()
        await store.close()

    store = await SQLiteStorage.open(path)
    cacher = Cacher(store, PREFIX, attrs)
    await cacher.start()
    try:
        assert len(cacher.list(PREFIX).entries) == 49
        assert cacher.revision == gone.mod_revision
    finally:
        await cacher.stop()
        await store.close()
