"""The StatefulSet controller against a real API server, NodeSim playing the node: pods come up
in order under OrderedReady (checked by a watcher), keep their names and claims across
deletion, scale down from the highest ordinal, all at once under Parallel; ordinals.start;
failed pods recreated; status, revisions and events."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

STS = ("apps", "v1", "statefulsets")
PODS = ("", "v1", "pods")
PVCS = ("", "v1", "persistentvolumeclaims")
REVISIONS = ("apps", "v1", "controllerrevisions")
EVENTS = ("", "v1", "events")
NS = "default"


def stateful_set(name: str, replicas: int = 3, *, policy: str = "OrderedReady", claims: bool = True,
                 image: str = "db:1", **spec: Any) -> dict:
    body: dict[str, Any] = {
        "apiVersion": "apps/v1", "kind": "StatefulSet",
        "metadata": {"name": name, "namespace": NS},
        "spec": {
            "serviceName": name, "replicas": replicas, "podManagementPolicy": policy,
            "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name}},
                         "spec": {"containers": [{"name": "c", "image": image,
                                                  "volumeMounts": [{"name": "data", "mountPath": "/data"}]
                                                  if claims else []}]}},
            **spec,
        },
    }
    if claims:
        body["spec"]["volumeClaimTemplates"] = [{
            "metadata": {"name": "data", "labels": {"tier": "storage"}},
            "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}},
        }]
    return body


async def pod_names(client, app: str, *, active_only: bool = True) -> list[str]:
    items = (await client.list(PODS, NS, label_selector=f"app={app}"))["items"]
    if active_only:
        items = [p for p in items if not p["metadata"].get("deletionTimestamp")]
    return sorted(p["metadata"]["name"] for p in items)


async def claim_names(client) -> list[str]:
    return sorted(c["metadata"]["name"] for c in (await client.list(PVCS, NS))["items"])


async def get_or_none(client, res, name: str) -> dict | None:
    try:
        return await client.get(res, name, NS)
    except Exception:  # noqa: BLE001 - NotFound
        return None


async def wait_status(cluster, name: str, **expected: Any) -> dict:
    async def matches() -> dict | None:
        sts = await cluster.client.get(STS, name, NS)
        st = sts.get("status") or {}
        if st.get("observedGeneration") != sts["metadata"]["generation"]:
            return None
        return sts if all((st.get(k) or 0) == v for k, v in expected.items()) else None

    return await cluster.wait_for(matches, message=f"status {expected}")


async def events_for(client, name: str) -> list[dict]:
    items = (await client.list(EVENTS, NS))["items"]
    return [e for e in items if e["involvedObject"].get("name") == name]


def is_ready(pod: dict) -> bool:
    st = pod.get("status") or {}
    return st.get("phase") == "Running" and any(
        c.get("type") == "Ready" and c.get("status") == "True" for c in st.get("conditions") or [])


class PodWatcher:
    """Records, from a watch, each pod's creation and whether its predecessor was then
    Running and Ready."""

    def __init__(self, client) -> None:
        self.client = client
        self.ready: set[str] = set()
        self.created: list[str] = []
        self.violations: list[str] = []
        self.task: asyncio.Task | None = None

    async def start(self) -> None:
        rv = (await self.client.list(PODS, NS))["metadata"]["resourceVersion"]
        self.task = asyncio.create_task(self._run(rv))

    async def _run(self, rv: str) -> None:
        async for kind, pod in self.client.watch(PODS, NS, resource_version=rv, timeout_seconds=120):
            name = pod["metadata"]["name"]
            set_name, _, ordinal = name.rpartition("-")
            if kind == "ADDED":
                self.created.append(name)
                prev = f"{set_name}-{int(ordinal) - 1}"
                if int(ordinal) > 0 and prev not in self.ready:
                    self.violations.append(f"{name} created while {prev} was not Running and Ready")
            if kind in ("ADDED", "MODIFIED") and is_ready(pod) and not pod["metadata"].get("deletionTimestamp"):
                self.ready.add(name)
            else:
                self.ready.discard(name)

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self.task


async def test_ordered_ready_creates_pods_one_at_a_time_in_order(cluster):
    await cluster.node.create_node("node-1")
    await cluster.start("statefulset")
    watcher = PodWatcher(cluster.client)
    await watcher.start()
    try:
        await cluster.client.create(STS, stateful_set("web"))
        for ordinal in range(3):
            name = f"web-{ordinal}"
            await cluster.wait_for(lambda n=name: get_or_none(cluster.client, PODS, n), message=f"{name} created")
            # The controller has seen the pod (status counts it) and still created no successor.
            await wait_status(cluster, "web", replicas=ordinal + 1)
            assert await pod_names(cluster.client, "web") == [f"web-{i}" for i in range(ordinal + 1)]
            pod = await cluster.client.get(PODS, name, NS)
            # Storage: the claim exists and the pod mounts it; identity labels and hostname.
            assert pod["spec"]["volumes"][0] == {"name": "data",
                                                 "persistentVolumeClaim": {"claimName": f"data-web-{ordinal}"}}
            labels = pod["metadata"]["labels"]
            assert labels["statefulset.kubernetes.io/pod-name"] == name
            assert labels["apps.kubernetes.io/pod-index"] == str(ordinal)
            assert labels["controller-revision-hash"].startswith("web-")
            assert pod["spec"]["hostname"] == name and pod["spec"]["subdomain"] == "web"
            pvc = await cluster.client.get(PVCS, f"data-web-{ordinal}", NS)
            assert pvc["metadata"]["labels"] == {"tier": "storage", "app": "web"}
            assert not pvc["metadata"].get("ownerReferences")  # Retain/Retain
            # Running but not ready blocks too.
            await cluster.node.mark_running(pod, ready=False)
            await wait_status(cluster, "web", replicas=ordinal + 1, readyReplicas=ordinal)
            assert len(await pod_names(cluster.client, "web")) == ordinal + 1
            await cluster.node.mark_running(pod, ready=True)
        sts = await wait_status(cluster, "web", replicas=3, readyReplicas=3, availableReplicas=3,
                                currentReplicas=3, updatedReplicas=3)
        assert sts["status"]["currentRevision"] == sts["status"]["updateRevision"]
        assert watcher.created == ["web-0", "web-1", "web-2"]
        assert watcher.violations == []
        events = await events_for(cluster.client, "web")
        messages = {e["message"] for e in events if e["reason"] == "SuccessfulCreate"}
        assert "create Pod web-0 in StatefulSet web successful" in messages
        assert "create Claim data-web-2 Pod web-2 in StatefulSet web success" in messages
    finally:
        await watcher.stop()


async def test_deleted_pod_comes_back_with_same_name_and_claim(cluster):
    await cluster.node.create_node("node-1")
    cluster.node.auto_run(NS)
    await cluster.start("statefulset")
    await cluster.client.create(STS, stateful_set("db", 3))
    await wait_status(cluster, "db", readyReplicas=3)
    old = await cluster.client.get(PODS, "db-1", NS)
    claim_uid = (await cluster.client.get(PVCS, "data-db-1", NS))["metadata"]["uid"]
    await cluster.client.delete(PODS, "db-1", NS)

    async def recreated() -> dict | None:
        pod = await get_or_none(cluster.client, PODS, "db-1")
        return pod if pod and pod["metadata"]["uid"] != old["metadata"]["uid"] and is_ready(pod) else None

    pod = await cluster.wait_for(recreated, message="db-1 recreated")
    assert pod["spec"]["volumes"][0]["persistentVolumeClaim"]["claimName"] == "data-db-1"
    assert (await cluster.client.get(PVCS, "data-db-1", NS))["metadata"]["uid"] == claim_uid
    assert await claim_names(cluster.client) == ["data-db-0", "data-db-1", "data-db-2"]


async def test_scale_down_removes_highest_ordinal_first_one_at_a_time(cluster):
    await cluster.node.create_node("node-1")
    cluster.node.auto_run(NS, finish_deletions=False)  # terminating pods stay until we finish them
    await cluster.start("statefulset")
    await cluster.client.create(STS, stateful_set("web", 4))
    await wait_status(cluster, "web", readyReplicas=4)
    await cluster.client.patch(STS, "web", {"spec": {"replicas": 1}}, NS, patch_type="merge")
    deleted_order = []
    for expected in ("web-3", "web-2", "web-1"):
        async def terminating() -> list[dict]:
            items = (await cluster.client.list(PODS, NS, label_selector="app=web"))["items"]
            return [p for p in items if p["metadata"].get("deletionTimestamp")]

        going = await cluster.wait_for(terminating, message=f"{expected} terminating")
        assert [p["metadata"]["name"] for p in going] == [expected]
        deleted_order.append(expected)
        await cluster.node.finish_deletion(going[0])
        await cluster.wait_for(lambda n=expected: _absent(cluster.client, n), message=f"{expected} gone")
    await wait_status(cluster, "web", replicas=1, readyReplicas=1)
    assert await pod_names(cluster.client, "web") == ["web-0"]
    # Retain: claims stay.
    assert await claim_names(cluster.client) == [f"data-web-{i}" for i in range(4)]
    reasons = [e["message"] for e in await events_for(cluster.client, "web") if e["reason"] == "SuccessfulDelete"]
    assert "delete Pod web-3 in StatefulSet web successful" in reasons


async def _absent(client, name: str) -> bool:
    return await get_or_none(client, PODS, name) is None


async def test_parallel_creates_and_deletes_all_at_once(cluster):
    await cluster.node.create_node("node-1")
    await cluster.start("statefulset")
    await cluster.client.create(STS, stateful_set("par", 4, policy="Parallel"))
    # No pod is ever marked ready, yet all four exist.
    names = await cluster.wait_for(lambda: _names_if(cluster.client, "par", 4), message="4 pods")
    assert names == ["par-0", "par-1", "par-2", "par-3"]
    await cluster.client.patch(STS, "par", {"spec": {"replicas": 1}}, NS, patch_type="merge")
    # Unready pods deleted together (pending unbound pods go at once).
    await cluster.wait_for(lambda: _names_if(cluster.client, "par", 1), message="scaled to 1")
    assert await pod_names(cluster.client, "par") == ["par-0"]


async def _names_if(client, app: str, count: int) -> list[str] | None:
    names = await pod_names(client, app)
    return names if len(names) == count else None


async def test_ordinals_start(cluster):
    await cluster.node.create_node("node-1")
    cluster.node.auto_run(NS)
    await cluster.start("statefulset")
    await cluster.client.create(STS, stateful_set("shard", 3, ordinals={"start": 5}))
    await wait_status(cluster, "shard", readyReplicas=3)
    assert await pod_names(cluster.client, "shard") == ["shard-5", "shard-6", "shard-7"]
    assert await claim_names(cluster.client) == ["data-shard-5", "data-shard-6", "data-shard-7"]
    pod = await cluster.client.get(PODS, "shard-6", NS)
    assert pod["metadata"]["labels"]["apps.kubernetes.io/pod-index"] == "6"
    # Moving the start: new ordinals come, the old ones go (highest first).
    await cluster.client.patch(STS, "shard", {"spec": {"ordinals": {"start": 0}, "replicas": 2}}, NS,
                               patch_type="merge")
    await cluster.wait_for(lambda: _names_if(cluster.client, "shard", 2), message="start 0")
    await wait_status(cluster, "shard", replicas=2, readyReplicas=2)
    assert await pod_names(cluster.client, "shard") == ["shard-0", "shard-1"]


async def test_failed_pod_is_recreated(cluster):
    await cluster.node.create_node("node-1")
    cluster.node.auto_run(NS)
    await cluster.start("statefulset")
    await cluster.client.create(STS, stateful_set("job", 2, claims=False))
    await wait_status(cluster, "job", readyReplicas=2)
    old = await cluster.client.get(PODS, "job-0", NS)
    await cluster.node.mark_failed(old)

    async def replaced() -> dict | None:
        pod = await get_or_none(cluster.client, PODS, "job-0")
        return pod if pod and pod["metadata"]["uid"] != old["metadata"]["uid"] and is_ready(pod) else None

    await cluster.wait_for(replaced, message="job-0 recreated")
    reasons = {e["reason"] for e in await events_for(cluster.client, "job")}
    assert "RecreatingFailedPod" in reasons


async def test_adopts_orphans_and_owns_revisions(cluster):
    await cluster.node.create_node("node-1")
    cluster.node.auto_run(NS)
    orphan = {"apiVersion": "v1", "kind": "Pod",
              "metadata": {"name": "adopt-0", "namespace": NS, "labels": {"app": "adopt"}},
              "spec": {"containers": [{"name": "c", "image": "db:1"}]}}
    stranger = {"apiVersion": "v1", "kind": "Pod",
                "metadata": {"name": "adopt-x", "namespace": NS, "labels": {"app": "adopt"}},
                "spec": {"containers": [{"name": "c", "image": "db:1"}]}}
    await cluster.client.create(PODS, orphan)
    await cluster.client.create(PODS, stranger)
    await cluster.start("statefulset")
    sts = await cluster.client.create(STS, stateful_set("adopt", 2, claims=False))
    await wait_status(cluster, "adopt", replicas=2, readyReplicas=2)

    async def adopted() -> dict | None:
        # The adopted pod lacks a revision label, so the rolling update may replace it:
        # it is the set's either way, but may be briefly absent in between.
        pod = await get_or_none(cluster.client, PODS, "adopt-0")
        refs = (pod or {}).get("metadata", {}).get("ownerReferences") or []
        return pod if refs and refs[0]["uid"] == sts["metadata"]["uid"] else None

    await cluster.wait_for(adopted, message="adopt-0 owned by the set")
    assert not (await cluster.client.get(PODS, "adopt-x", NS))["metadata"].get("ownerReferences")
    revs = (await cluster.client.list(REVISIONS, NS))["items"]
    assert len(revs) == 1 and revs[0]["metadata"]["ownerReferences"][0]["uid"] == sts["metadata"]["uid"]
    assert revs[0]["data"]["spec"]["template"]["$patch"] == "replace"
    assert revs[0]["revision"] == 1


async def test_bad_claim_template_warns_and_other_sets_are_served(cluster):
    await cluster.node.create_node("node-1")
    cluster.node.auto_run(NS)
    await cluster.start("statefulset")
    bad = stateful_set("bad", 1)
    bad["spec"]["volumeClaimTemplates"][0]["spec"] = {"accessModes": ["ReadWriteOnce"]}  # no storage request
    await cluster.client.create(STS, bad)
    await cluster.client.create(STS, stateful_set("good", 2))

    async def warned() -> list[dict]:
        return [e for e in await events_for(cluster.client, "bad")
                if e["type"] == "Warning" and e["reason"] == "FailedCreate"]

    events = await cluster.wait_for(warned, message="FailedCreate events for the bad set")
    assert any(e["message"].startswith("create Claim data-bad-0 for Pod bad-0 in StatefulSet bad failed error:")
               for e in events)
    await wait_status(cluster, "good", readyReplicas=2)
    assert await get_or_none(cluster.client, PODS, "bad-0") is None
