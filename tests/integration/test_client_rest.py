"""The REST client against the real in-process API server: verbs, discovery, errors, watch."""

from __future__ import annotations

import asyncio

import pytest

from pybernetes.api.registry import builtin_registry
from pybernetes.client.errors import AlreadyExists, Conflict, Expired, Invalid, NotFound
from pybernetes.client.kubeconfig import Config, load_kubeconfig
from pybernetes.client.rest import RestClient

REG = builtin_registry()
CONFIGMAPS = REG.get("", "v1", "configmaps")


def cm(name: str, labels: dict | None = None, **data: str) -> dict:
    return {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": name, "labels": labels or {}}, "data": data}


@pytest.fixture
async def client(api_server):
    async with RestClient(Config(servers=[api_server.url])) as c:
        yield c


async def test_discovery_resolves_group_version_resource_and_kind(client):
    deploy = await client.resource("apps/v1/deployments")
    assert (deploy.kind, deploy.namespaced) == ("Deployment", True)
    assert "scale" in deploy.subresources
    nodes = await client.resource(("", "v1", "nodes"))
    assert nodes.namespaced is False
    lease = await client.resource_for_kind("coordination.k8s.io/v1", "Lease")
    assert lease.resource == "leases"
    with pytest.raises(NotFound):
        await client.resource("apps/v1/nothings")


async def test_crud_with_typed_errors(client):
    created = await client.create(CONFIGMAPS, cm("a", x="1"))
    assert created["metadata"]["namespace"] == "default"
    with pytest.raises(AlreadyExists) as info:
        await client.create(CONFIGMAPS, cm("a"))
    assert info.value.code == 409 and info.value.details["name"] == "a"
    got = await client.get("v1/configmaps", "a", "default")
    assert got["data"] == {"x": "1"}
    got["data"]["x"] = "2"
    updated = await client.update(CONFIGMAPS, got)
    assert updated["data"]["x"] == "2"
    stale = dict(got, data={"x": "3"})  # still carries the old resourceVersion
    with pytest.raises(Conflict):
        await client.update(CONFIGMAPS, stale)
    with pytest.raises(NotFound) as nf:
        await client.get(CONFIGMAPS, "missing")
    assert nf.value.reason == "NotFound" and nf.value.status["kind"] == "Status"
    with pytest.raises(Invalid):
        await client.create(CONFIGMAPS, cm("Not_Valid"))
    await client.delete(CONFIGMAPS, "a")
    with pytest.raises(NotFound):
        await client.get(CONFIGMAPS, "a")


async def test_three_patch_types(client):
    await client.create(CONFIGMAPS, cm("p", a="1"))
    out = await client.patch(CONFIGMAPS, "p", {"data": {"b": "2"}})
    assert out["data"] == {"a": "1", "b": "2"}
    out = await client.patch(CONFIGMAPS, "p", [{"op": "remove", "path": "/data/a"}], patch_type="json")
    assert out["data"] == {"b": "2"}
    out = await client.patch(CONFIGMAPS, "p", {"metadata": {"labels": {"l": "v"}}}, patch_type="strategic")
    assert out["metadata"]["labels"] == {"l": "v"}
    with pytest.raises(ValueError):
        await client.patch(CONFIGMAPS, "p", {}, patch_type="nonsense")


async def test_list_pages_selectors_and_delete_collection(client):
    for i in range(7):
        await client.create(CONFIGMAPS, cm(f"c{i}", {"tier": "a" if i % 2 else "b"}))
    page = await client.list(CONFIGMAPS, "default", limit=3)
    assert len(page["items"]) == 3 and page["metadata"]["continue"]
    everything = await client.list_all(CONFIGMAPS, "default", page_size=3)
    names = {o["metadata"]["name"] for o in everything["items"]}
    assert {f"c{i}" for i in range(7)} <= names
    odd = await client.list(CONFIGMAPS, "default", label_selector="tier=a")
    assert sorted(o["metadata"]["name"] for o in odd["items"]) == ["c1", "c3", "c5"]
    await client.delete_collection(CONFIGMAPS, "default", label_selector="tier=a")
    left = await client.list(CONFIGMAPS, "default", label_selector="tier")
    assert sorted(o["metadata"]["name"] for o in left["items"]) == ["c0", "c2", "c4", "c6"]


async def test_watch_yields_events_in_order_and_ends_at_timeout(client):
    start = (await client.list(CONFIGMAPS, "default"))["metadata"]["resourceVersion"]
    events: list[tuple[str, str]] = []

    async def watch() -> None:
        async with client.watch(CONFIGMAPS, "default", resource_version=start, timeout_seconds=2) as w:
            async for etype, obj in w:
                events.append((etype, obj["metadata"]["name"]))
                if etype == "DELETED":
                    return

    task = asyncio.create_task(watch())
    await client.create(CONFIGMAPS, cm("w"))
    await client.patch(CONFIGMAPS, "w", {"data": {"k": "v"}})
    await client.delete(CONFIGMAPS, "w")
    await asyncio.wait_for(task, 10)
    assert events == [("ADDED", "w"), ("MODIFIED", "w"), ("DELETED", "w")]

    # A watch with nothing to say ends when the server's timeoutSeconds passes.
    rv = (await client.list(CONFIGMAPS, "default"))["metadata"]["resourceVersion"]
    seen = [e async for e in client.watch(CONFIGMAPS, "default", resource_version=rv, timeout_seconds=1)]
    assert seen == []


async def test_watch_bookmarks_move_the_resource_version(api_server, client):
    api_server.stores.bookmark_interval = 0.1
    await client.create(CONFIGMAPS, cm("b"))
    rv = (await client.list(CONFIGMAPS, "default"))["metadata"]["resourceVersion"]
    w = client.watch(CONFIGMAPS, "default", resource_version=rv, allow_watch_bookmarks=True,
                     timeout_seconds=10)
    async with w:
        async for etype, obj in w:
            if etype == "BOOKMARK":
                assert obj["metadata"]["resourceVersion"] == w.resource_version
                break


async def test_watch_from_a_too_old_resource_version_is_expired(server_starter, tmp_path):
    server, runner = await server_starter(tmp_path / "data")
    async with RestClient(Config(servers=[server.url])) as c:
        await c.create(CONFIGMAPS, cm("old"))
    await runner.cleanup()
    # A restarted server's watch cache begins at the newest revision.
    server, runner = await server_starter(tmp_path / "data")
    try:
        async with RestClient(Config(servers=[server.url])) as c:
            with pytest.raises(Expired) as info:
                async for _ in c.watch(CONFIGMAPS, "default", resource_version="1"):
                    pass
            assert info.value.code == 410
    finally:
        await runner.cleanup()


async def test_client_from_the_servers_kubeconfig(api_server, tmp_path):
    from pybernetes.cli.main import write_kubeconfig

    path = write_kubeconfig(tmp_path, "127.0.0.1", api_server.port)
    async with RestClient(load_kubeconfig(path)) as c:
        ns = await c.get("v1/namespaces", "kube-system")
        assert ns["metadata"]["name"] == "kube-system"


async def test_fails_over_to_the_next_server(api_server, unused_tcp_port):
    from pybernetes.client.flowcontrol import Backoff

    config = Config(servers=[f"http://127.0.0.1:{unused_tcp_port}", api_server.url])
    async with RestClient(config, retry_backoff=Backoff(0.01, 0.05)) as c:
        ns = await c.get("v1/namespaces", "default")
        assert ns["metadata"]["name"] == "default"
