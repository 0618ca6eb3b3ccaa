"""Watch streams over real HTTP: event order, Table events, timeouts, 410, shutdown."""

from __future__ import annotations

import asyncio
import time

import aiohttp
import orjson

JSON = {"Content-Type": "application/json"}
CM_URL = "/api/v1/namespaces/default/configmaps"
TABLE_ACCEPT = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"


def configmap(name: str, **data: str) -> dict:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": data}


async def read_events(resp: aiohttp.ClientResponse, count: int, seconds: float = 10) -> list[dict]:
    events = []
    async with asyncio.timeout(seconds):
        while len(events) < count:
            line = await resp.content.readline()
            if not line:
                break
            events.append(orjson.loads(line))
    return events


async def test_watch_sees_added_modified_deleted_in_order_then_times_out(http):
    async with http.get(CM_URL) as resp:
        rv = (await resp.json())["metadata"]["resourceVersion"]
    params = {"watch": "true", "resourceVersion": rv, "timeoutSeconds": "2"}
    async with http.get(CM_URL, params=params) as watch:
        assert watch.status == 200
        assert watch.headers.get("Transfer-Encoding") == "chunked"
        async with http.post(CM_URL, data=orjson.dumps(configmap("w", a="1")), headers=JSON) as resp:
            created = await resp.json()
        patch = orjson.dumps({"data": {"a": "2"}})
        async with http.patch(f"{CM_URL}/w", data=patch,
                              headers={"Content-Type": "application/merge-patch+json"}) as resp:
            assert resp.status == 200
        async with http.delete(f"{CM_URL}/w") as resp:
            assert resp.status == 200
        events = await read_events(watch, 3)
        assert [e["type"] for e in events] == ["ADDED", "MODIFIED", "DELETED"]
        assert events[0]["object"]["metadata"]["uid"] == created["metadata"]["uid"]
        assert events[1]["object"]["data"] == {"a": "2"}
        revisions = [int(e["object"]["metadata"]["resourceVersion"]) for e in events]
        assert revisions == sorted(revisions)
        started = time.monotonic()
        rest = await watch.content.read()  # the stream ends at timeoutSeconds
        assert rest == b""
        assert time.monotonic() - started < 5


async def test_watch_without_resource_version_starts_with_current_state(http):
    for name in ("a", "b"):
        await http.post(CM_URL, data=orjson.dumps(configmap(name)), headers=JSON)
    params = {"watch": "1", "timeoutSeconds": "1"}
    async with http.get(CM_URL, params=params) as watch:
        events = await read_events(watch, 2)
    assert [(e["type"], e["object"]["metadata"]["name"]) for e in events] == [("ADDED", "a"), ("ADDED", "b")]


async def test_legacy_watch_path_and_label_selector(http):
    params = {"labelSelector": "app=x", "timeoutSeconds": "2", "resourceVersion": "0"}
    async with http.get("/api/v1/watch/namespaces/default/configmaps", params=params) as watch:
        other = configmap("other")
        await http.post(CM_URL, data=orjson.dumps(other), headers=JSON)
        mine = configmap("mine")
        mine["metadata"]["labels"] = {"app": "x"}
        await http.post(CM_URL, data=orjson.dumps(mine), headers=JSON)
        events = await read_events(watch, 1)
    assert [e["object"]["metadata"]["name"] for e in events] == ["mine"]


async def test_watch_as_table_for_kubectl_get_w(http):
    async with http.get(CM_URL) as resp:
        rv = (await resp.json())["metadata"]["resourceVersion"]
    params = {"watch": "true", "resourceVersion": rv, "timeoutSeconds": "2"}
    async with http.get(CM_URL, params=params, headers={"Accept": TABLE_ACCEPT}) as watch:
        await http.post(CM_URL, data=orjson.dumps(configmap("t")), headers=JSON)
        events = await read_events(watch, 1)
    table = events[0]["object"]
    assert events[0]["type"] == "ADDED" and table["kind"] == "Table"
    assert table["rows"][0]["cells"][0] == "t"
    assert table["rows"][0]["object"]["metadata"]["name"] == "t"


async def test_too_old_resource_version_is_a_410_error_event(tmp_path, server_starter):
    # A restarted server's watch cache begins at the store's current revision: an older
    # resourceVersion is too old for it.
    server, runner = await server_starter(tmp_path / "data")
    try:
        async with aiohttp.ClientSession(base_url=server.url) as session:
            for i in range(3):
                await session.post(CM_URL, data=orjson.dumps(configmap(f"o{i}")), headers=JSON)
    finally:
        await runner.cleanup()
    server, runner = await server_starter(tmp_path / "data")
    try:
        async with aiohttp.ClientSession(base_url=server.url) as session:
            params = {"watch": "true", "resourceVersion": "1", "timeoutSeconds": "5"}
            async with session.get(CM_URL, params=params) as watch:
                assert watch.status == 200
                events = await read_events(watch, 2)
            assert len(events) == 1 and events[0]["type"] == "ERROR"
            assert events[0]["object"]["code"] == 410 and events[0]["object"]["reason"] == "Expired"
            # the objects survived the restart
            async with session.get(CM_URL) as resp:
                assert len((await resp.json())["items"]) == 3
    finally:
        await runner.cleanup()


async def test_bad_watch_options_are_plain_errors(http):
    async with http.get(CM_URL, params={"watch": "true", "fieldSelector": "bogus=1"}) as resp:
        assert resp.status == 400
        assert "field label not supported" in (await resp.json())["message"]
    async with http.get(CM_URL, params={"watch": "true", "labelSelector": "a in ("}) as resp:
        assert resp.status == 400
    async with http.get(CM_URL, params={"watch": "true", "timeoutSeconds": "x"}) as resp:
        assert resp.status == 400


async def test_bookmarks_and_initial_events_end(http):
    params = {"watch": "true", "sendInitialEvents": "true", "allowWatchBookmarks": "true",
              "resourceVersionMatch": "NotOlderThan", "resourceVersion": "", "timeoutSeconds": "2"}
    await http.post(CM_URL, data=orjson.dumps(configmap("init")), headers=JSON)
    async with http.get(CM_URL, params=params) as watch:
        events = await read_events(watch, 2)
    assert [e["type"] for e in events] == ["ADDED", "BOOKMARK"]
    bookmark = events[1]["object"]
    assert bookmark["kind"] == "ConfigMap"
    assert bookmark["metadata"]["annotations"] == {"k8s.io/initial-events-end": "true"}
    assert int(bookmark["metadata"]["resourceVersion"]) >= int(events[0]["object"]["metadata"]["resourceVersion"])


async def test_server_shutdown_ends_watches_cleanly(tmp_path, server_starter):
    server, runner = await server_starter(tmp_path / "data")
    try:
        async with aiohttp.ClientSession(base_url=server.url) as session:
            async with session.get(CM_URL, params={"watch": "true"}) as watch:
                assert watch.status == 200
                started = time.monotonic()
                await runner.cleanup()
                rest = await asyncio.wait_for(watch.content.read(), 10)
                assert time.monotonic() - started < 5
                assert b"ERROR" not in rest
    finally:
        await runner.cleanup()
