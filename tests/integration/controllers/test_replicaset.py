"""The ReplicaSet controller against a real API server: scaling both ways (expectations: no
over-creation, bursts), the deletion order, adoption and release, replacement of deleted
pods, status counts with minReadySeconds, and a FailedCreate (Warning event + ReplicaFailure
condition) that does not stop other ReplicaSets being served."""

from __future__ import annotations

from typing import Any

from pybernetes.client.errors import NotFound

RS = ("apps", "v1", "replicasets")
PODS = ("", "v1", "pods")
EVENTS = ("", "v1", "events")
NS = "default"


def replica_set(name: str, replicas: int, *, labels: dict[str, str] | None = None, min_ready: int = 0,
                template_meta: dict[str, Any] | None = None) -> dict:
    labels = labels or {"app": name}
    meta = {"labels": dict(labels), **(template_meta or {})}
    return {
        "apiVersion": "apps/v1", "kind": "ReplicaSet",
        "metadata": {"name": name, "namespace": NS},
        "spec": {"replicas": replicas, "minReadySeconds": min_ready,
                 "selector": {"matchLabels": dict(labels)},
                 "template": {"metadata": meta,
                              "spec": {"containers": [{"name": "c", "image": "nginx"}]}}},
    }


async def pods_of(client, app: str, *, active_only: bool = True) -> list[dict]:
    items = (await client.list(PODS, NS, label_selector=f"app={app}"))["items"]
    if active_only:
        items = [p for p in items if not p["metadata"].get("deletionTimestamp")]
    return items


async def scale(client, name: str, replicas: int) -> None:
    await client.patch(RS, name, {"spec": {"replicas": replicas}}, NS)


async def events_for(client, name: str) -> list[dict]:
    items = (await client.list(EVENTS, NS))["items"]
    return [e for e in items if e["involvedObject"].get("name") == name]


async def test_scale_up_and_down_with_owned_generated_pods(cluster) -> None:
    await cluster.start("replicaset")
    client = cluster.client
    rs = await client.create(RS, replica_set("web", 3))

    async def count(n: int) -> bool:
        return len(await pods_of(client, "web")) == n

    await cluster.wait_for(lambda: count(3), message="3 pods")
    for pod in await pods_of(client, "web"):
        meta = pod["metadata"]
        assert meta["generateName"] == "web-" and meta["name"].startswith("web-")
        (ref,) = meta["ownerReferences"]
        assert ref == {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web",
                       "uid": rs["metadata"]["uid"], "controller": True, "blockOwnerDeletion": True}
        assert pod["spec"]["containers"][0]["image"] == "nginx"

    async def status_is(replicas: int) -> bool:
        cur = await client.get(RS, "web", NS)
        st = cur.get("status") or {}
        return (st.get("replicas") == replicas and st.get("observedGeneration") == cur["metadata"]["generation"])

    await cluster.wait_for(lambda: status_is(3), message="status.replicas 3")
    await scale(client, "web", 5)
    await cluster.wait_for(lambda: count(5), message="5 pods")
    await scale(client, "web", 1)
    await cluster.wait_for(lambda: count(1), message="scaled down to 1")
    await cluster.wait_for(lambda: status_is(1), message="status.replicas 1")
    assert len(await pods_of(client, "web", active_only=False)) == 1  # unbound pods go at once

    async def events_worded() -> bool:
        events = await events_for(client, "web")
        created = [e for e in events if e["reason"] == "SuccessfulCreate"]
        deleted = [e for e in events if e["reason"] == "SuccessfulDelete"]
        return (created and deleted and all(e["message"].startswith("Created pod: web-") for e in created)
                and all(e["message"].startswith("Deleted pod: web-") for e in deleted)
                and all(e["source"]["component"] == "replicaset-controller" for e in events))

    await cluster.wait_for(events_worded, message="SuccessfulCreate/SuccessfulDelete events")


async def test_no_over_creation_across_bursts(cluster) -> None:
    cm = await cluster.start("replicaset", options={"replicaset": {"burst_replicas": 20}})
    client = cluster.client
    await client.create(RS, replica_set("burst", 70))

    async def settled() -> bool:
        cur = await client.get(RS, "burst", NS)
        return (cur.get("status") or {}).get("replicas") == 70

    await cluster.wait_for(settled, timeout=60, message="status.replicas 70")
    ctl = cm.controllers["replicaset"]
    await cluster.wait_for(lambda: len(ctl.queue) == 0, message="queue drained")
    assert len(await pods_of(client, "burst")) == 70
    # Scaling down past the burst: deletions are capped per sync too, yet reach the target.
    await scale(client, "burst", 5)

    async def five() -> bool:
        return len(await pods_of(client, "burst")) == 5

    await cluster.wait_for(five, timeout=60, message="5 pods left")


async def test_scale_down_deletes_the_least_valuable_pods_first(cluster) -> None:
    await cluster.start("replicaset")
    client, node = cluster.client, cluster.node
    await node.create_node("node-1")
    await client.create(RS, replica_set("rank", 3))

    async def three() -> list[dict] | None:
        pods = await pods_of(client, "rank")
        return pods if len(pods) == 3 else None

    pods = await cluster.wait_for(three, message="3 pods")
    keeper, not_ready, pending = pods
    await node.mark_running(keeper, ready=True)
    await node.mark_running(not_ready, ready=False)
    # ``pending`` stays unassigned and Pending: it goes first, then the one not ready.
    await scale(client, "rank", 2)

    async def gone(pod: dict) -> bool:
        try:
            await client.get(PODS, pod["metadata"]["name"], NS)
        except NotFound:
            return True
        return False

    await cluster.wait_for(lambda: gone(pending), message="the pending pod deleted")
    await scale(client, "rank", 1)

    async def marked(pod: dict) -> bool:
        try:
            cur = await client.get(PODS, pod["metadata"]["name"], NS)
        except NotFound:
            return True
        return bool(cur["metadata"].get("deletionTimestamp"))

    await cluster.wait_for(lambda: marked(not_ready), message="the not-ready pod deleted")
    cur = await client.get(PODS, keeper["metadata"]["name"], NS)
    assert not cur["metadata"].get("deletionTimestamp")


async def test_adoption_release_and_replacement(cluster) -> None:
    await cluster.start("replicaset")
    client = cluster.client
    orphan = {"apiVersion": "v1", "kind": "Pod",
              "metadata": {"name": "orphan", "namespace": NS, "labels": {"app": "adopt"}},
              "spec": {"containers": [{"name": "c", "image": "nginx"}]}}
    await client.create(PODS, orphan)
    rs = await client.create(RS, replica_set("adopt", 2))
    uid = rs["metadata"]["uid"]

    async def owned() -> list[dict] | None:
        pods = await pods_of(client, "adopt")
        mine = [p for p in pods if any(r.get("uid") == uid for r in p["metadata"].get("ownerReferences") or [])]
        return mine if len(pods) == 2 and len(mine) == 2 else None

    pods = await cluster.wait_for(owned, message="the orphan adopted and one pod created")
    assert "orphan" in [p["metadata"]["name"] for p in pods]

    # Release: a pod whose labels no longer match loses its controller reference and is replaced.
    await client.patch(PODS, "orphan", {"metadata": {"labels": {"app": "elsewhere"}}}, NS)

    async def released() -> bool:
        pod = await client.get(PODS, "orphan", NS)
        return not pod["metadata"].get("ownerReferences")

    await cluster.wait_for(released, message="the relabelled pod released")
    await cluster.wait_for(owned, message="a replacement created")

    # Replacement: a pod deleted by hand comes back as a new one.
    victim = (await owned())[0]
    await client.delete(PODS, victim["metadata"]["name"], NS)

    async def replaced() -> bool:
        pods = await owned()
        return bool(pods) and victim["metadata"]["name"] not in [p["metadata"]["name"] for p in pods]

    await cluster.wait_for(replaced, message="the deleted pod replaced")


async def test_status_counts_and_available_after_min_ready_seconds(cluster) -> None:
    await cluster.start("replicaset")
    client, node = cluster.client, cluster.node
    await node.create_node("node-1")
    node.auto_run(NS, ready=True)
    await client.create(RS, replica_set("avail", 3, min_ready=2))
    seen_ready_not_available = False

    async def status() -> dict:
        return (await client.get(RS, "avail", NS)).get("status") or {}

    async def all_available() -> bool:
        nonlocal seen_ready_not_available
        st = await status()
        if st.get("readyReplicas") == 3 and (st.get("availableReplicas") or 0) < 3:
            seen_ready_not_available = True
        return st.get("availableReplicas") == 3

    await cluster.wait_for(all_available, message="availableReplicas 3 after minReadySeconds")
    st = await status()
    assert st["replicas"] == 3 and st["fullyLabeledReplicas"] == 3 and st["readyReplicas"] == 3
    assert seen_ready_not_available, "pods counted available before minReadySeconds passed"

    # A pod relabelled so that it still matches the selector but not the whole template.
    rs = replica_set("partial", 1, labels={"app": "partial"},
                     template_meta={"labels": {"app": "partial", "tier": "web"}})
    await client.create(RS, rs)

    async def one_pod() -> list[dict] | None:
        pods = await pods_of(client, "partial")
        return pods if len(pods) == 1 else None

    (pod,) = await cluster.wait_for(one_pod, message="the partial pod")
    await client.patch(PODS, pod["metadata"]["name"], {"metadata": {"labels": {"tier": None}}}, NS)

    async def partially_labeled() -> bool:
        st = (await client.get(RS, "partial", NS)).get("status") or {}
        return st.get("replicas") == 1 and not st.get("fullyLabeledReplicas")

    await cluster.wait_for(partially_labeled, message="fullyLabeledReplicas 0")


async def test_failed_create_warns_and_sets_replica_failure(cluster) -> None:
    await cluster.start("replicaset")
    client = cluster.client
    # A template finalizer without a domain passes ReplicaSet validation (template metadata
    # carries only labels and annotations checks) but the pod create is rejected (422).
    await client.create(RS, replica_set("broken", 2, template_meta={"finalizers": ["not-qualified"]}))
    await client.create(RS, replica_set("fine", 2))

    async def failure_condition() -> dict | None:
        st = (await client.get(RS, "broken", NS)).get("status") or {}
        return next((c for c in st.get("conditions") or [] if c["type"] == "ReplicaFailure"), None)

    cond = await cluster.wait_for(failure_condition, message="ReplicaFailure condition")
    assert cond["status"] == "True" and cond["reason"] == "FailedCreate"
    assert "finalizers" in cond["message"]

    async def warning() -> dict | None:
        return next((e for e in await events_for(client, "broken")
                     if e["reason"] == "FailedCreate" and e["type"] == "Warning"), None)

    event = await cluster.wait_for(warning, message="FailedCreate event")
    assert event["message"].startswith("Error creating: ")
    assert await pods_of(client, "broken") == []

    async def fine_served() -> bool:
        return len(await pods_of(client, "fine")) == 2

    await cluster.wait_for(fine_served, message="the other ReplicaSet still served")

    # Fixing the template clears the condition and creates the pods.
    fixed = await client.get(RS, "broken", NS)
    fixed["spec"]["template"]["metadata"].pop("finalizers")
    await client.update(RS, fixed)

    async def recovered() -> bool:
        st = (await client.get(RS, "broken", NS)).get("status") or {}
        return st.get("replicas") == 2 and not st.get("conditions")

    await cluster.wait_for(recovered, timeout=45, message="condition cleared after the fix")


async def test_expectations_hold_back_a_sync_whose_creations_are_not_seen_yet(cluster) -> None:
    cm = await cluster.start("replicaset")
    client = cluster.client
    ctl = cm.controllers["replicaset"]
    await client.create(RS, replica_set("expect", 0))

    async def observed() -> bool:
        return ((await client.get(RS, "expect", NS)).get("status") or {}).get("observedGeneration") == 1

    await cluster.wait_for(observed, message="first status")
    # Hold back the pod informer's watch events: the cache lags behind the API.
    held: list[tuple[str, dict]] = []
    apply = ctl.pods._apply
    ctl.pods._apply = lambda etype, obj: held.append((etype, obj))
    try:
        await scale(client, "expect", 4)

        async def created() -> bool:
            return len(await pods_of(client, "expect")) == 4

        await cluster.wait_for(created, message="4 pods created")
        assert ctl.pods.indexer.by_index("replicaset-pods-by-owner", "orphan/" + NS) == []
        await ctl.sync(f"{NS}/expect")  # the cache shows no pod, but 4 creations are expected
        await ctl.sync(f"{NS}/expect")
        assert len(await pods_of(client, "expect")) == 4
    finally:
        ctl.pods._apply = apply
        for etype, obj in held:
            apply(etype, obj)

    async def status_four() -> bool:
        return ((await client.get(RS, "expect", NS)).get("status") or {}).get("replicas") == 4

    await cluster.wait_for(status_four, message="status.replicas 4")
    assert len(await pods_of(client, "expect")) == 4
