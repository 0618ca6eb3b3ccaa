"""DaemonSet updates against a real API server: RollingUpdate never has more than
maxUnavailable nodes without a ready daemon pod (checked by a watcher on every pod event),
maxSurge starts new pods beside the old ones without any node going unavailable, OnDelete
replaces only pods deleted by hand; revisions are numbered, reused on rollback and pruned to
revisionHistoryLimit; ``kubectl rollout status|history|undo`` work on DaemonSets."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from kubectl_cli import kubectl_in_thread, needs_kubectl
from test_daemonset import DS, NS, PODS, REVISIONS, daemon_set, pods_by_node, wait_pods_on, wait_status

from pybernetes.controllers.daemonset_nodes import target_node_name


class PodWatcher:
    """Follows the DaemonSet's pods event by event and records the worst moments: nodes
    without a ready pod that is not being deleted, nodes with two live pods, live pods."""

    def __init__(self, client: Any, app: str, nodes: set[str]) -> None:
        self.client = client
        self.app = app
        self.nodes = nodes
        self.pods: dict[str, dict] = {}
        self.max_unavailable = 0
        self.max_doubled = 0
        self.max_live = 0
        self.events = 0
        self._task: asyncio.Task | None = None

    async def start(self) -> None:
        listing = await self.client.list(PODS, NS, label_selector=f"app={self.app}")
        for pod in listing["items"]:
            self.pods[pod["metadata"]["uid"]] = pod
        self._measure()
        rv = listing["metadata"]["resourceVersion"]
        self._task = asyncio.create_task(self._run(rv))

    async def _run(self, rv: str) -> None:
        async for kind, pod in self.client.watch(PODS, NS, resource_version=rv, label_selector=f"app={self.app}",
                                                timeout_seconds=120):
            if kind == "DELETED":
                self.pods.pop(pod["metadata"]["uid"], None)
            elif kind in ("ADDED", "MODIFIED"):
                self.pods[pod["metadata"]["uid"]] = pod
            self.events += 1
            self._measure()

    def _measure(self) -> None:
        live: dict[str, list[dict]] = {}
        for pod in self.pods.values():
            if not pod["metadata"].get("deletionTimestamp"):
                live.setdefault(target_node_name(pod) or "", []).append(pod)
        unavailable = sum(1 for n in self.nodes if not any(_ready(p) for p in live.get(n, [])))
        self.max_unavailable = max(self.max_unavailable, unavailable)
        self.max_doubled = max(self.max_doubled, sum(1 for v in live.values() if len(v) > 1))
        self.max_live = max(self.max_live, sum(len(v) for v in live.values()))

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task


def _ready(pod: dict) -> bool:
    return any(c.get("type") == "Ready" and c.get("status") == "True"
               for c in (pod.get("status") or {}).get("conditions") or [])


async def set_image(client, name: str, image: str) -> None:
    await client.patch(DS, name, {"spec": {"template": {"spec": {"containers": [{"name": "c", "image": image}]}}}},
                       NS, patch_type="strategic")


async def all_on_image(client, app: str, image: str, nodes: set[str]) -> bool:
    by_node = await pods_by_node(client, app)
    return set(by_node) == nodes and all(
        len(v) == 1 and v[0]["spec"]["containers"][0]["image"] == image and _ready(v[0]) for v in by_node.values())


async def test_rolling_update_keeps_max_unavailable_and_prunes_history(cluster) -> None:
    node, client = cluster.node, cluster.client
    nodes = {f"n{i}" for i in range(5)}
    for name in sorted(nodes):
        await node.create_node(name)
    await cluster.start("daemonset")
    node.auto_run(NS)
    body = daemon_set("agent", strategy={"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "40%"}})
    body["spec"]["revisionHistoryLimit"] = 1
    await client.create(DS, body)
    await wait_pods_on(cluster, "agent", nodes)
    await wait_status(cluster, "agent", numberReady=5, numberAvailable=5, updatedNumberScheduled=5)
    watcher = PodWatcher(client, "agent", nodes)
    await watcher.start()
    try:
        await set_image(client, "agent", "agent:2")
        await cluster.wait_for(lambda: all_on_image(client, "agent", "agent:2", nodes), message="rolled to agent:2")
        ds = await wait_status(cluster, "agent", desiredNumberScheduled=5, updatedNumberScheduled=5,
                               numberAvailable=5, numberUnavailable=0)
    finally:
        await watcher.stop()
    assert watcher.max_unavailable <= 2, watcher.max_unavailable  # 40% of 5, rounded up
    assert watcher.max_unavailable >= 1 and watcher.max_doubled == 0
    assert ds["metadata"]["annotations"]["deprecated.daemonset.template.generation"] == "2"
    for (pod,) in (await pods_by_node(client, "agent")).values():
        assert pod["metadata"]["labels"]["pod-template-generation"] == "2"

    async def revisions() -> list[tuple[int, str]]:
        items = (await client.list(REVISIONS, NS))["items"]
        return sorted((r["revision"], r["data"]["spec"]["template"]["spec"]["containers"][0]["image"])
                      for r in items)

    await cluster.wait_for(lambda: _eq(revisions(), [(1, "agent:1"), (2, "agent:2")]), message="two revisions")
    await set_image(client, "agent", "agent:3")
    await cluster.wait_for(lambda: all_on_image(client, "agent", "agent:3", nodes), message="rolled to agent:3")
    await cluster.wait_for(lambda: _eq(revisions(), [(2, "agent:2"), (3, "agent:3")]),
                           message="revision 1 pruned (revisionHistoryLimit 1)")
    # Back to agent:2: its revision is reused with the next number.
    await set_image(client, "agent", "agent:2")
    await cluster.wait_for(lambda: all_on_image(client, "agent", "agent:2", nodes), message="rolled back")
    await cluster.wait_for(lambda: _eq(revisions(), [(3, "agent:3"), (4, "agent:2")]), message="revision reused")


async def _eq(awaitable, expected) -> bool:
    return (await awaitable) == expected


async def test_rolling_update_with_max_surge(cluster) -> None:
    node, client = cluster.node, cluster.client
    nodes = {"n1", "n2", "n3", "n4"}
    for name in sorted(nodes):
        await node.create_node(name)
    await cluster.start("daemonset")
    node.auto_run(NS)
    await client.create(DS, daemon_set("agent", strategy={
        "type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}}))
    await wait_pods_on(cluster, "agent", nodes)
    await wait_status(cluster, "agent", numberReady=4, numberAvailable=4)
    watcher = PodWatcher(client, "agent", nodes)
    await watcher.start()
    try:
        await set_image(client, "agent", "agent:2")
        await cluster.wait_for(lambda: all_on_image(client, "agent", "agent:2", nodes), message="surged to agent:2")
        await wait_status(cluster, "agent", updatedNumberScheduled=4, numberAvailable=4, numberUnavailable=0)
    finally:
        await watcher.stop()
    assert watcher.max_unavailable == 0
    assert watcher.max_doubled == 1  # surged, one node at a time
    assert watcher.max_live == 5


async def test_on_delete_replaces_only_pods_deleted_by_hand(cluster) -> None:
    node, client = cluster.node, cluster.client
    for name in ("n1", "n2"):
        await node.create_node(name)
    await cluster.start("daemonset")
    node.auto_run(NS)
    await client.create(DS, daemon_set("agent", strategy={"type": "OnDelete"}))
    before = await wait_pods_on(cluster, "agent", {"n1", "n2"})
    await wait_status(cluster, "agent", numberReady=2, updatedNumberScheduled=2)
    await set_image(client, "agent", "agent:2")
    await wait_status(cluster, "agent", desiredNumberScheduled=2, currentNumberScheduled=2, updatedNumberScheduled=0)
    now = await pods_by_node(client, "agent")
    assert {k: v[0]["metadata"]["uid"] for k, v in now.items()} == \
        {k: v[0]["metadata"]["uid"] for k, v in before.items()}
    await client.delete(PODS, before["n1"][0]["metadata"]["name"], NS)

    async def replaced() -> dict | None:
        by_node = await pods_by_node(client, "agent")
        pods = by_node.get("n1", [])
        if len(pods) == 1 and pods[0]["metadata"]["uid"] != before["n1"][0]["metadata"]["uid"]:
            return by_node
        return None

    by_node = await cluster.wait_for(replaced, message="n1's pod replaced")
    new = by_node["n1"][0]
    assert new["spec"]["containers"][0]["image"] == "agent:2"
    assert new["metadata"]["labels"]["pod-template-generation"] == "2"
    assert new["metadata"]["labels"]["controller-revision-hash"] != \
        before["n1"][0]["metadata"]["labels"]["controller-revision-hash"]
    assert by_node["n2"][0]["metadata"]["uid"] == before["n2"][0]["metadata"]["uid"]
    assert by_node["n2"][0]["spec"]["containers"][0]["image"] == "agent:1"
    await wait_status(cluster, "agent", updatedNumberScheduled=1, numberReady=2)


@needs_kubectl
async def test_kubectl_rollout_status_history_and_undo(cluster, tmp_path) -> None:
    node, client = cluster.node, cluster.client
    for name in ("n1", "n2"):
        await node.create_node(name)
    await cluster.start("daemonset")
    node.auto_run(NS)

    async def kubectl(*args: str) -> str:
        result = await kubectl_in_thread(cluster.url, tmp_path, "-n", NS, *args)
        assert result.returncode == 0, result.stderr
        return result.stdout

    await client.create(DS, daemon_set("agent"))
    out = await kubectl("rollout", "status", "daemonset/agent", "--timeout=30s")
    assert 'daemon set "agent" successfully rolled out' in out
    await set_image(client, "agent", "agent:2")
    await kubectl("rollout", "status", "daemonset/agent", "--timeout=30s")
    history = await kubectl("rollout", "history", "daemonset/agent")
    assert [line.split()[0] for line in history.splitlines()[2:] if line.strip()] == ["1", "2"]
    await kubectl("rollout", "undo", "daemonset/agent")
    await cluster.wait_for(lambda: all_on_image(client, "agent", "agent:1", {"n1", "n2"}), message="undone")
    await kubectl("rollout", "status", "daemonset/agent", "--timeout=30s")
    history = await kubectl("rollout", "history", "daemonset/agent")
    assert [line.split()[0] for line in history.splitlines()[2:] if line.strip()] == ["2", "3"]
