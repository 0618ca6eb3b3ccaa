"""Generic store reads over MemoryStorage: get, list (selectors, pagination, resourceVersion
semantics) and watch (initial state, from a revision, selectors, bookmarks, 410)."""

from __future__ import annotations

import asyncio
import base64

import orjson
from store_suite import (
    WIDGETS,
    MemoryBackend,
    StoreFixtures,
    W,
    opts,
    raises,
    widget,
)

from pybernetes.apiserver import store_read
from pybernetes.storage.cacher import VALUE


def names(page) -> list[str]:
    return [orjson.loads(e[VALUE])["metadata"]["name"] for e in page.entries]


async def next_event(iterator, wait: float = 5.0):
    return await asyncio.wait_for(iterator.__anext__(), wait)


class GetListSuite(StoreFixtures):
    async def test_get(self, stores):
        w = stores.for_resource(WIDGETS)
        created = await w.create("default", widget("a"), W())
        assert await w.get("default", "a") == created
        assert (await w.get("default", "a", "0"))["metadata"]["name"] == "a"
        err = await raises(w.get("default", "zz"), 404, "NotFound")
        assert err.message == 'widgets.example.com "zz" not found'
        assert err.details == {"name": "zz", "group": "example.com", "kind": "widgets"}
        err = await raises(w.get("default", "a/b"), 400)
        assert err.message.startswith('Name parameter invalid: "a/b"')
        await raises(w.get("default", "a", "abc"), 400)

    async def test_selectors(self, stores):
        w = stores.for_resource(WIDGETS)
        for name, color, team in (("a", "red", "x"), ("b", "blue", "x"), ("c", "red", "y")):
            body = widget(name, color=color)
            body["metadata"]["labels"] = {"team": team}
            await w.create("default", body, W())
        await w.create("kube-system", widget("d", ns="kube-system", color="red"), W())
        assert names(await w.list("default", opts(label_selector="team=x"))) == ["a", "b"]
        assert names(await w.list("default", opts(label_selector="team in (y),!missing"))) == ["c"]
        assert names(await w.list("default", opts(field_selector="spec.color=red"))) == ["a", "c"]
        assert names(await w.list("default", opts(field_selector="metadata.name!=a"))) == ["b", "c"]
        assert names(await w.list(None, opts(field_selector="spec.color=red"))) == ["a", "c", "d"]
        assert names(await w.list(None, opts(field_selector="metadata.namespace=kube-system"))) == ["d"]
        err = await raises(w.list("default", opts(field_selector="spec.size=1")), 400, "BadRequest")
        assert err.message.endswith("field label not supported: spec.size")
        await raises(w.list("default", opts(label_selector="team in (")), 400)

    async def test_pagination_is_a_consistent_snapshot(self, stores):
        w = stores.for_resource(WIDGETS)
        for i in range(5):
            await w.create("default", widget(f"w{i}"), W())
        first = await w.list("default", opts(limit=2))
        assert names(first) == ["w0", "w1"] and first.continue_token
        assert first.remaining_item_count == 3
        token = orjson.loads(base64.urlsafe_b64decode(first.continue_token + "=="))
        assert token == {"v": "meta.k8s.io/v1", "rv": int(first.resource_version), "start": "default/w1\u0000"}
        await w.create("default", widget("w15"), W())  # after the snapshot: not in this list
        await w.delete("default", "w3", {}, W())  # deleted after: still in this list
        second = await w.list("default", opts(limit=2, continue_token=first.continue_token))
        assert names(second) == ["w2", "w3"]
        assert second.resource_version == first.resource_version
        third = await w.list("default", opts(limit=2, continue_token=second.continue_token))
        assert names(third) == ["w4"] and not third.continue_token
        assert third.remaining_item_count is None
        everything = await w.list("default", opts(limit=2, resource_version="0"))
        assert len(everything.entries) == 5 and not everything.continue_token  # limit ignored

    async def test_bad_and_expired_continue_tokens(self, stores):
        w = stores.for_resource(WIDGETS)
        err = await raises(w.list("default", opts(continue_token="!!notbase64")), 400, "BadRequest")
        assert err.message.startswith("continue key is not valid")
        escape = base64.urlsafe_b64encode(b'{"v":"meta.k8s.io/v1","rv":5,"start":"../pods/x\\u0000"}').decode()
        await raises(w.list("default", opts(continue_token=escape)), 400)

    async def test_expired_continue_token(self, small_stores):
        sw = small_stores.for_resource(WIDGETS)
        for i in range(3):
            await sw.create("default", widget(f"w{i}"), W())
        first = await sw.list("default", opts(limit=1))
        for i in range(3, 10):
            await sw.create("default", widget(f"w{i}"), W())
        assert len((await sw.list("default", opts())).entries) == 10  # the cache caught up
        err = await raises(sw.list("default", opts(continue_token=first.continue_token, limit=1)), 410, "Expired")
        assert err.message == store_read.CONTINUE_TOO_OLD
        err = await raises(
            sw.list("default", opts(resource_version=first.resource_version, resource_version_match="Exact")), 410
        )
        assert err.message.startswith(f"too old resource version: {first.resource_version} (")

    async def test_resource_version_semantics(self, stores, monkeypatch):
        w = stores.for_resource(WIDGETS)
        await w.create("default", widget("a"), W())
        rv_one = int((await w.list("default", opts())).resource_version)
        await w.create("default", widget("b"), W())
        latest = await w.list("default", opts())
        assert names(latest) == ["a", "b"]
        exact = await w.list("default", opts(resource_version=str(rv_one), resource_version_match="Exact"))
        assert names(exact) == ["a"] and exact.resource_version == str(rv_one)
        not_older = await w.list("default", opts(resource_version=str(rv_one)))
        assert names(not_older) == ["a", "b"]
        monkeypatch.setattr(store_read, "WAIT_FOR_REVISION_SECONDS", 0.2)
        err = await raises(w.list("default", opts(resource_version="999999")), 504, "Timeout")
        assert err.message.startswith("Timeout: Too large resource version: 999999")
        err = await raises(w.list("default", opts(resource_version_match="Exact")), 422, "Invalid")
        assert "resourceVersionMatch is forbidden unless resourceVersion is provided" in err.message

    async def test_reads_see_prior_writes(self, stores):
        w = stores.for_resource(WIDGETS)
        for i in range(20):
            await w.create("default", widget(f"x{i}"), W())
            assert len((await w.list("default", opts())).entries) == i + 1
            await w.get("default", f"x{i}")


class WatchSuite(StoreFixtures):
    async def test_initial_state_then_changes(self, stores):
        w = stores.for_resource(WIDGETS)
        await w.create("default", widget("a"), W())
        events = w.watch("default", opts())
        first = await next_event(events)
        assert first.type == "ADDED" and orjson.loads(first.entry[VALUE])["metadata"]["name"] == "a"
        await w.patch("default", "a", "application/merge-patch+json", b'{"spec":{"size":2}}', W())
        second = await next_event(events)
        assert second.type == "MODIFIED" and orjson.loads(second.entry[VALUE])["spec"]["size"] == 2
        await w.delete("default", "a", {}, W())
        assert (await next_event(events)).type == "DELETED"
        await events.aclose()

    async def test_from_resource_version_and_selectors(self, stores):
        w = stores.for_resource(WIDGETS)
        created = await w.create("default", widget("a"), W())
        events = w.watch("default", opts(resource_version=created["metadata"]["resourceVersion"],
                                         field_selector="spec.color=red"))
        await w.create("default", widget("b", color="blue"), W())
        await w.create("default", widget("c", color="red"), W())
        event = await next_event(events)
        assert event.type == "ADDED" and orjson.loads(event.entry[VALUE])["metadata"]["name"] == "c"
        await events.aclose()
        single = w.watch("default", opts(resource_version="0"), name="b")
        event = await next_event(single)
        assert orjson.loads(event.entry[VALUE])["metadata"]["name"] == "b"
        await w.create("default", widget("d"), W())
        await w.patch("default", "b", "application/merge-patch+json", b'{"spec":{"size":7}}', W())
        event = await next_event(single)
        assert event.type == "MODIFIED" and orjson.loads(event.entry[VALUE])["metadata"]["name"] == "b"
        await single.aclose()

    async def test_too_old_resource_version_is_expired(self, small_stores):
        w = small_stores.for_resource(WIDGETS)
        for i in range(6):
            await w.create("default", widget(f"w{i}"), W())
        await w.list("default", opts())  # the cache caught up
        events = w.watch("default", opts(resource_version="1"))
        err = await raises(next_event(events), 410, "Expired")
        assert err.message.startswith("too old resource version: 1 (")

    async def test_bookmarks_and_initial_events_end(self, stores):
        stores.bookmark_interval = 0.05
        w = stores.for_resource(WIDGETS)
        await w.create("default", widget("a"), W())
        events = w.watch("default", opts(send_initial_events=True, allow_bookmarks=True,
                                         resource_version_match="NotOlderThan"))
        first = await next_event(events)
        assert first.type == "ADDED"
        marker = await next_event(events)
        assert marker.type == "BOOKMARK"
        meta = orjson.loads(marker.entry[VALUE])["metadata"]
        assert meta["annotations"] == {"k8s.io/initial-events-end": "true"}
        bookmark = await next_event(events)
        assert bookmark.type == "BOOKMARK" and bookmark.revision >= marker.revision
        await events.aclose()
        plain = w.watch("default", opts(resource_version="0"))
        assert (await next_event(plain)).type == "ADDED"
        try:
            await asyncio.wait_for(plain.__anext__(), 0.3)
            raise AssertionError("no event expected without allowWatchBookmarks")
        except TimeoutError:
            pass
        await plain.aclose()


class TestGetListMemory(MemoryBackend, GetListSuite):
    pass


class TestWatchMemory(MemoryBackend, WatchSuite):
    pass
