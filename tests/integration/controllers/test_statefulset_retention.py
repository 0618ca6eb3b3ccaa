"""persistentVolumeClaimRetentionPolicy against a real API server with the garbage collector:
whenScaled=Delete makes condemned pods own their claims (deleted with them), whenDeleted=Delete
makes the set own them (deleted with the set); Retain leaves no owner; a pod whose old claim
is still going waits for it."""

from __future__ import annotations

from test_statefulset import NS, PODS, PVCS, STS, claim_names, get_or_none, stateful_set, wait_status

GC_OPTIONS = {"gc_discovery_interval": 2.0}


def owners(claim: dict) -> list[tuple[str, str, bool]]:
    return [(r["kind"], r["name"], bool(r.get("controller"))) for r in claim["metadata"].get("ownerReferences") or []]


async def test_when_scaled_delete_removes_claims_of_condemned_pods(cluster):
    await cluster.node.create_node("node-1")
    cluster.node.auto_run(NS)
    await cluster.start("statefulset", "garbagecollector", "pvc-protection", options=GC_OPTIONS)
    body = stateful_set("ws", 3, persistentVolumeClaimRetentionPolicy={"whenScaled": "Delete",
                                                                       "whenDeleted": "Retain"})
    await cluster.client.create(STS, body)
    await wait_status(cluster, "ws", readyReplicas=3)
    for i in range(3):
        assert owners(await cluster.client.get(PVCS, f"data-ws-{i}", NS)) == []
    await cluster.client.patch(STS, "ws", {"spec": {"replicas": 1}}, NS, patch_type="merge")

    async def only_first() -> bool:
        return await claim_names(cluster.client) == ["data-ws-0"]

    await cluster.wait_for(only_first, message="claims of ws-1 and ws-2 deleted with their pods")
    await wait_status(cluster, "ws", replicas=1, readyReplicas=1)
    assert owners(await cluster.client.get(PVCS, "data-ws-0", NS)) == []
    # Scaling up again makes fresh claims.
    await cluster.client.patch(STS, "ws", {"spec": {"replicas": 2}}, NS, patch_type="merge")
    await wait_status(cluster, "ws", replicas=2, readyReplicas=2)
    claim = await cluster.client.get(PVCS, "data-ws-1", NS)
    assert owners(claim) == []


async def test_when_deleted_delete_makes_the_set_own_claims(cluster):
    await cluster.node.create_node("node-1")
    cluster.node.auto_run(NS)
    await cluster.start("statefulset", "garbagecollector", "pvc-protection", options=GC_OPTIONS)
    body = stateful_set("wd", 2, persistentVolumeClaimRetentionPolicy={"whenScaled": "Retain",
                                                                       "whenDeleted": "Delete"})
    sts = await cluster.client.create(STS, body)
    await wait_status(cluster, "wd", readyReplicas=2)

    async def owned() -> bool:
        claims = [await cluster.client.get(PVCS, f"data-wd-{i}", NS) for i in range(2)]
        return all(owners(c) == [("StatefulSet", "wd", True)] for c in claims)

    await cluster.wait_for(owned, message="claims owned by the set")
    ref = (await cluster.client.get(PVCS, "data-wd-0", NS))["metadata"]["ownerReferences"][0]
    assert ref["uid"] == sts["metadata"]["uid"] and ref["apiVersion"] == "apps/v1"
    # Scale-down keeps claims under whenScaled=Retain.
    await cluster.client.patch(STS, "wd", {"spec": {"replicas": 1}}, NS, patch_type="merge")
    await wait_status(cluster, "wd", replicas=1, readyReplicas=1)
    assert await claim_names(cluster.client) == ["data-wd-0", "data-wd-1"]
    await cluster.client.delete(STS, "wd", NS)

    async def all_gone() -> bool:
        pods = (await cluster.client.list(PODS, NS))["items"]
        return not pods and await claim_names(cluster.client) == []

    await cluster.wait_for(all_gone, message="pods and claims deleted with the set")


async def test_delete_delete_moves_ownership_from_set_to_pod_on_scale_down(cluster):
    await cluster.node.create_node("node-1")
    # Pods deleted gracefully stay terminating: the claim owners can be seen before the GC acts.
    cluster.node.auto_run(NS, finish_deletions=False)
    await cluster.start("statefulset")
    body = stateful_set("dd", 2, persistentVolumeClaimRetentionPolicy={"whenScaled": "Delete",
                                                                       "whenDeleted": "Delete"})
    await cluster.client.create(STS, body)
    await wait_status(cluster, "dd", readyReplicas=2)

    async def set_owned() -> bool:
        claims = [await cluster.client.get(PVCS, f"data-dd-{i}", NS) for i in range(2)]
        return all(owners(c) == [("StatefulSet", "dd", True)] for c in claims)

    await cluster.wait_for(set_owned, message="claims owned by the set")
    await cluster.client.patch(STS, "dd", {"spec": {"replicas": 1}}, NS, patch_type="merge")

    async def pod_owned() -> dict | None:
        claim = await cluster.client.get(PVCS, "data-dd-1", NS)
        return claim if owners(claim) == [("Pod", "dd-1", True)] else None

    claim = await cluster.wait_for(pod_owned, message="data-dd-1 handed to pod dd-1")
    pod = await get_or_none(cluster.client, PODS, "dd-1")
    assert pod is not None and claim["metadata"]["ownerReferences"][0]["uid"] == pod["metadata"]["uid"]
    assert owners(await cluster.client.get(PVCS, "data-dd-0", NS)) == [("StatefulSet", "dd", True)]


async def test_new_pod_waits_for_stale_claim_of_previous_pod(cluster):
    await cluster.node.create_node("node-1")
    cluster.node.auto_run(NS)
    await cluster.start("statefulset", "pvc-protection")  # no garbage collector: the stale claim stays
    body = stateful_set("st", 1, persistentVolumeClaimRetentionPolicy={"whenScaled": "Delete",
                                                                       "whenDeleted": "Retain"})
    await cluster.client.create(STS, body)
    await wait_status(cluster, "st", readyReplicas=1)
    # A claim of an earlier st-1 (another uid) that the garbage collector has not removed yet.
    stale = {"apiVersion": "v1", "kind": "PersistentVolumeClaim",
             "metadata": {"name": "data-st-1", "namespace": NS,
                          "ownerReferences": [{"apiVersion": "v1", "kind": "Pod", "name": "st-1",
                                               "uid": "0f0f0f0f-old", "controller": True}]},
             "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}
    await cluster.client.create(PVCS, stale)
    await cluster.client.patch(STS, "st", {"spec": {"replicas": 2}}, NS, patch_type="merge")
    sts = await wait_status(cluster, "st", replicas=1, readyReplicas=1)
    assert sts["spec"]["replicas"] == 2
    assert await get_or_none(cluster.client, PODS, "st-1") is None
    await cluster.client.delete(PVCS, "data-st-1", NS)  # what the garbage collector would do
    await wait_status(cluster, "st", replicas=2, readyReplicas=2)
    claim = await cluster.client.get(PVCS, "data-st-1", NS)
    assert owners(claim) == []
