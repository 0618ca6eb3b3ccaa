"""Shared informers against the real in-process API server: list+watch, handlers in order,
indexes, resync, relist after 410 (a restarted server's watch cache), clean stop."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest
from aiohttp import web

from pybernetes.api.registry import builtin_registry
from pybernetes.apiserver.app import WATCHES, ServerConfig, build_app
from pybernetes.client.cache import DeletedFinalStateUnknown
from pybernetes.client.flowcontrol import Backoff
from pybernetes.client.informer import SharedInformer, SharedInformerFactory
from pybernetes.client.kubeconfig import Config
from pybernetes.client.rest import RestClient

REG = builtin_registry()
CONFIGMAPS = REG.get("", "v1", "configmaps")


def cm(name: str, ns: str = "default", **data: str) -> dict:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": ns},
            "data": data}


async def until(cond: Callable[[], bool], within: float = 10.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not cond():
        if loop.time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.01)


class Recorder:
    def __init__(self) -> None:
        self.events: list[tuple] = []

    def add(self, obj):
        self.events.append(("add", obj["metadata"]["name"]))

    def update(self, old, new):
        self.events.append(("update", old["metadata"]["name"], old["metadata"]["resourceVersion"],
                            new["metadata"]["resourceVersion"]))

    def delete(self, obj):
        if isinstance(obj, DeletedFinalStateUnknown):
            self.events.append(("tombstone", obj.key))
        else:
            self.events.append(("delete", obj["metadata"]["name"]))

    def names(self, kind: str) -> list[str]:
        return [e[1] for e in self.events if e[0] == kind]


@pytest.fixture
async def client(api_server):
    async with RestClient(Config(servers=[api_server.url])) as c:
        yield c


async def test_list_then_watch_in_order_with_indexes(api_server, client):
    await client.create(CONFIGMAPS, cm("pre"))
    await client.create("v1/namespaces", {"metadata": {"name": "other"}})
    by_key = {"by-data-key": lambda o: sorted((o.get("data") or {}).keys())}
    inf = SharedInformer(client, CONFIGMAPS, indexers=by_key)
    rec = Recorder()
    inf.add_event_handler(rec.add, rec.update, rec.delete)
    inf.start()
    try:
        assert await inf.wait_for_sync(10)
        assert "default/pre" in inf.indexer
        assert ("add", "pre") in rec.events
        rec.events.clear()
        await client.create(CONFIGMAPS, cm("x", k="1"))
        await client.patch(CONFIGMAPS, "x", {"data": {"j": "2"}})
        await client.delete(CONFIGMAPS, "x")
        await client.create(CONFIGMAPS, cm("y", "other", k="1"))
        await until(lambda: ("add", "y") in rec.events)
        kinds = [e[0] for e in rec.events if e[1] == "x"]
        assert kinds == ["add", "update", "delete"]
        upd = next(e for e in rec.events if e[0] == "update")
        assert int(upd[2]) < int(upd[3])  # the old object comes with the update
        assert [o["metadata"]["name"] for o in inf.indexer.by_namespace("other")] == ["y"]
        assert inf.indexer.index_keys("by-data-key", "k") == ["other/y"]
        assert inf.indexer.get("default/x") is None
        assert inf.last_sync_resource_version == inf.indexer.get("other/y")["metadata"]["resourceVersion"]
    finally:
        await inf.stop()
    assert len(inf._tasks) == 0
    await until(lambda: api_server.app[WATCHES].active == 0)


async def test_late_handler_gets_adds_and_resync_replays(client):
    await client.create(CONFIGMAPS, cm("r1"))
    inf = SharedInformer(client, CONFIGMAPS)
    inf.start()
    try:
        assert await inf.wait_for_sync(10)
        rec = Recorder()
        inf.add_event_handler(rec.add, rec.update, rec.delete, resync_period=0.1)
        await until(lambda: ("add", "r1") in rec.events)
        # A resync replays every cached object as an update with old == new.
        await until(lambda: any(e[0] == "update" and e[2] == e[3] for e in rec.events))
        assert await inf.wait_for_sync(1)
    finally:
        await inf.stop()


async def test_factory_shares_one_informer_per_resource(client):
    factory = SharedInformerFactory(client)
    a = factory.informer(CONFIGMAPS)
    assert factory.informer("v1/configmaps") is a
    assert factory.informer(CONFIGMAPS, namespace="kube-system") is not a
    factory.start()
    try:
        assert await factory.wait_for_cache_sync(10)
    finally:
        await factory.shutdown()


async def _serve(data_dir, port: int) -> web.AppRunner:
    app = build_app(ServerConfig(data_dir=data_dir, port=port, shutdown_timeout=1))
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=1, handle_signals=False)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    return runner


async def test_relists_after_410_with_tombstones(tmp_path, unused_tcp_port_factory):
    port, other_port = unused_tcp_port_factory(), unused_tcp_port_factory()
    data = tmp_path / "data"
    runner = await _serve(data, port)
    client = RestClient(Config(servers=[f"http://127.0.0.1:{port}"]), retry_backoff=Backoff(0.02, 0.1))
    inf = SharedInformer(client, CONFIGMAPS, namespace="default", backoff=Backoff(0.02, 0.1))
    rec = Recorder()
    inf.add_event_handler(rec.add, rec.update, rec.delete)
    try:
        for name in ("keep", "gone"):
            await client.create(CONFIGMAPS, cm(name))
        inf.start()
        assert await inf.wait_for_sync(10)
        await until(lambda: set(rec.names("add")) == {"keep", "gone"})
        await runner.cleanup()
        # Meanwhile, another server over the same store changes things.
        other = await _serve(data, other_port)
        async with RestClient(Config(servers=[f"http://127.0.0.1:{other_port}"])) as c2:
            await c2.delete(CONFIGMAPS, "gone")
            await c2.create(CONFIGMAPS, cm("new"))
            await c2.patch(CONFIGMAPS, "keep", {"data": {"v": "2"}})
        await other.cleanup()
        rec.events.clear()
        # The server comes back; its watch cache starts after the informer's resourceVersion.
        runner = await _serve(data, port)
        await until(lambda: ("add", "new") in rec.events, within=20)
        assert ("tombstone", "default/gone") in rec.events
        assert any(e[0] == "update" and e[1] == "keep" for e in rec.events)
        assert inf.lists == 2
        assert inf.indexer.get("default/keep")["data"] == {"v": "2"}
        assert sorted(inf.indexer.list_keys()) == ["default/keep", "default/new"]
    finally:
        await inf.stop()
        await client.close()
        await runner.cleanup()
