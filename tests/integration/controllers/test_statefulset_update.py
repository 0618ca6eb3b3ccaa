"""StatefulSet updates against a real API server: RollingUpdate with a partition (only ordinals
at or above it, highest first, one at a time), maxUnavailable, OnDelete, revision history
(roll back reuses the old ControllerRevision, revisionHistoryLimit prunes), minReadySeconds."""

from __future__ import annotations

import asyncio
import contextlib

from test_statefulset import NS, PODS, REVISIONS, STS, is_ready, stateful_set, wait_status

from pybernetes.controllers.podutil import parse_time


class ReadyWatcher:
    """Tracks, from a watch, how many of a set's pods are Running and Ready (the minimum seen
    once all were ready) and the order in which pods were deleted."""

    def __init__(self, client, app: str) -> None:
        self.client = client
        self.app = app
        self.ready: set[str] = set()
        self.min_ready = 0
        self.deleted: list[str] = []
        self._gone: set[str] = set()
        self.task: asyncio.Task | None = None

    async def start(self) -> None:
        listing = await self.client.list(PODS, NS, label_selector=f"app={self.app}")
        self.ready = {p["metadata"]["name"] for p in listing["items"] if is_ready(p)}
        self.min_ready = len(self.ready)
        self.task = asyncio.create_task(self._run(listing["metadata"]["resourceVersion"]))

    async def _run(self, rv: str) -> None:
        async for kind, pod in self.client.watch(PODS, NS, resource_version=rv, label_selector=f"app={self.app}",
                                                 timeout_seconds=120):
            name, uid = pod["metadata"]["name"], pod["metadata"]["uid"]
            if kind == "DELETED" or pod["metadata"].get("deletionTimestamp"):
                if uid not in self._gone:
                    self._gone.add(uid)
                    self.deleted.append(name)
                self.ready.discard(name)
            elif is_ready(pod):
                self.ready.add(name)
            else:
                self.ready.discard(name)
            self.min_ready = min(self.min_ready, len(self.ready))

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self.task


async def images(client, app: str) -> dict[str, str]:
    items = (await client.list(PODS, NS, label_selector=f"app={app}"))["items"]
    return {p["metadata"]["name"]: p["spec"]["containers"][0]["image"] for p in items
            if not p["metadata"].get("deletionTimestamp")}


async def set_image(client, name: str, image: str, **spec) -> None:
    patch = {"spec": {"template": {"spec": {"containers": [{"name": "c", "image": image}]}}, **spec}}
    await client.patch(STS, name, patch, NS, patch_type="strategic")


async def test_rolling_update_with_partition_then_all_highest_first(cluster):
    await cluster.node.create_node("node-1")
    cluster.node.auto_run(NS)
    await cluster.start("statefulset")
    await cluster.client.create(STS, stateful_set("web", 3, claims=False))
    first = await wait_status(cluster, "web", readyReplicas=3, updatedReplicas=3)
    old_rev = first["status"]["currentRevision"]
    await set_image(cluster.client, "web", "db:2", updateStrategy={"type": "RollingUpdate",
                                                                    "rollingUpdate": {"partition": 2}})
    sts = await wait_status(cluster, "web", readyReplicas=3, updatedReplicas=1, currentReplicas=2)
    assert sts["status"]["currentRevision"] == old_rev != sts["status"]["updateRevision"]
    assert await images(cluster.client, "web") == {"web-0": "db:1", "web-1": "db:1", "web-2": "db:2"}
    new_rev = sts["status"]["updateRevision"]
    pod2 = await cluster.client.get(PODS, "web-2", NS)
    assert pod2["metadata"]["labels"]["controller-revision-hash"] == new_rev

    watcher = ReadyWatcher(cluster.client, "web")
    await watcher.start()
    try:
        await cluster.client.patch(STS, "web", {"spec": {"updateStrategy": {"rollingUpdate": {"partition": 0}}}},
                                   NS, patch_type="strategic")
        sts = await wait_status(cluster, "web", readyReplicas=3, updatedReplicas=3, currentReplicas=3)
    finally:
        await watcher.stop()
    assert sts["status"]["currentRevision"] == sts["status"]["updateRevision"] == new_rev
    assert await images(cluster.client, "web") == {"web-0": "db:2", "web-1": "db:2", "web-2": "db:2"}
    assert watcher.deleted == ["web-1", "web-0"]
    assert watcher.min_ready == 2  # one at a time

    # Roll back: the old revision is reused with a new number, no third revision.
    await set_image(cluster.client, "web", "db:1")
    sts = await wait_status(cluster, "web", readyReplicas=3, updatedReplicas=3, currentReplicas=3)
    assert sts["status"]["updateRevision"] == old_rev
    revs = {r["metadata"]["name"]: r["revision"] for r in (await cluster.client.list(REVISIONS, NS))["items"]}
    assert revs == {old_rev: 3, new_rev: 2}


async def test_max_unavailable_updates_several_at_once(cluster):
    await cluster.node.create_node("node-1")
    cluster.node.auto_run(NS)
    await cluster.start("statefulset")
    body = stateful_set("mu", 4, claims=False, policy="Parallel",
                        updateStrategy={"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 2}})
    await cluster.client.create(STS, body)
    await wait_status(cluster, "mu", readyReplicas=4)
    watcher = ReadyWatcher(cluster.client, "mu")
    await watcher.start()
    try:
        await set_image(cluster.client, "mu", "db:2")
        await wait_status(cluster, "mu", readyReplicas=4, updatedReplicas=4, currentReplicas=4)
    finally:
        await watcher.stop()
    assert set(watcher.deleted) == {"mu-0", "mu-1", "mu-2", "mu-3"}
    assert watcher.deleted[:2] in (["mu-3", "mu-2"], ["mu-2", "mu-3"])
    assert watcher.min_ready == 2  # never more than 2 unavailable, and the budget was used


async def test_on_delete_updates_only_deleted_pods(cluster):
    await cluster.node.create_node("node-1")
    cluster.node.auto_run(NS)
    await cluster.start("statefulset")
    await cluster.client.create(STS, stateful_set("od", 3, claims=False, updateStrategy={"type": "OnDelete"}))
    await wait_status(cluster, "od", readyReplicas=3)
    await set_image(cluster.client, "od", "db:2")
    sts = await wait_status(cluster, "od", readyReplicas=3, updatedReplicas=0, currentReplicas=3)
    assert sts["status"]["currentRevision"] != sts["status"]["updateRevision"]
    assert await images(cluster.client, "od") == {"od-0": "db:1", "od-1": "db:1", "od-2": "db:1"}
    await cluster.client.delete(PODS, "od-1", NS)
    await wait_status(cluster, "od", readyReplicas=3, updatedReplicas=1, currentReplicas=2)
    assert await images(cluster.client, "od") == {"od-0": "db:1", "od-1": "db:2", "od-2": "db:1"}


async def test_revision_history_limit_prunes_unused_revisions(cluster):
    await cluster.node.create_node("node-1")
    cluster.node.auto_run(NS)
    await cluster.start("statefulset")
    await cluster.client.create(STS, stateful_set("h", 1, claims=False, revisionHistoryLimit=1))
    await wait_status(cluster, "h", readyReplicas=1)
    for version in (2, 3, 4):
        await set_image(cluster.client, "h", f"db:{version}")
        await wait_status(cluster, "h", readyReplicas=1, updatedReplicas=1, currentReplicas=1)

    async def pruned() -> list | None:
        revs = (await cluster.client.list(REVISIONS, NS))["items"]
        return revs if len(revs) == 2 else None

    revs = await cluster.wait_for(pruned, message="2 revisions left (live + 1 of history)")
    assert sorted(r["revision"] for r in revs) == [3, 4]


async def test_min_ready_seconds_gates_ordered_creation(cluster):
    await cluster.node.create_node("node-1")
    cluster.node.auto_run(NS)
    await cluster.start("statefulset")
    await cluster.client.create(STS, stateful_set("slow", 2, claims=False, minReadySeconds=1))
    await wait_status(cluster, "slow", readyReplicas=1, replicas=1, availableReplicas=0)
    await wait_status(cluster, "slow", readyReplicas=2, availableReplicas=2)
    pods = {n: await cluster.client.get(PODS, n, NS) for n in ("slow-0", "slow-1")}
    ready0 = next(c for c in pods["slow-0"]["status"]["conditions"] if c["type"] == "Ready")["lastTransitionTime"]
    # slow-1 was created only once slow-0 had been ready for minReadySeconds.
    assert parse_time(pods["slow-1"]["metadata"]["creationTimestamp"]) - parse_time(ready0) >= 1
