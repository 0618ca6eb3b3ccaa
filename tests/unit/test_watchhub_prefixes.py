"""WatchHub's prefix index: a published key reaches exactly the live watchers whose prefix
it starts with, whether the prefix ends in "/" (looked up) or not (tested one by one), and
a watcher that stops is forgotten by the index."""

from __future__ import annotations

import asyncio

from pybernetes.storage.interface import WatchEvent
from pybernetes.storage.watchhub import WatchHub

PREFIXES = ["", "/", "/registry/", "/registry/pods/", "/registry/pods/ns1/", "/registry/pods/ns",
            "/registry/pod", "/registry/podtemplates/", "/other/"]


async def live_watches(hub: WatchHub) -> dict[str, object]:
    watches = {prefix: hub.watch(prefix, 0) for prefix in PREFIXES}
    for watch in watches.values():
        task = asyncio.ensure_future(watch.__anext__())
        await asyncio.sleep(0)  # it catches up (nothing to read) and goes live
        task.cancel()
    assert len(hub.live) == len(PREFIXES)
    return watches


async def test_published_keys_reach_every_matching_prefix_and_no_other():
    hub = WatchHub(lambda prefix, after, limit: [])
    watches = await live_watches(hub)
    for revision, key in enumerate(["/registry/pods/ns1/a", "/registry/pods/ns2/b",
                                    "/registry/podtemplates/ns1/t", "/other/x", "/registryx"], 1):
        hub.publish(WatchEvent("ADDED", key, b"{}", revision))
        for prefix, watch in watches.items():
            got = [event.key for event in watch.buffer]
            assert (key in got) == key.startswith(prefix), (prefix, key)


async def test_stopped_watchers_leave_the_index():
    hub = WatchHub(lambda prefix, after, limit: [])
    watches = await live_watches(hub)
    for watch in watches.values():
        await watch.aclose()
    assert hub.live == {} and hub._by_prefix == {} and hub._other == {}
    hub.publish(WatchEvent("ADDED", "/registry/pods/ns1/a", b"{}", 1))
    assert all(not watch.buffer for watch in watches.values())


async def test_a_full_buffer_drops_the_watcher_back_to_catching_up():
    hub = WatchHub(lambda prefix, after, limit: [], buffer_limit=1)
    watches = await live_watches(hub)
    hub.publish(WatchEvent("ADDED", "/registry/pods/ns1/a", b"{}", 1))
    hub.publish(WatchEvent("ADDED", "/registry/pods/ns1/b", b"{}", 2))
    pods = watches["/registry/pods/"]
    assert not pods.live and pods not in hub.live and not pods.buffer
    assert pods not in hub._by_prefix.get("/registry/pods/", {})
    assert watches["/other/"].live
