"""The ReplicationController controller against a real API server: the ReplicaSet behaviour
on core/v1 ReplicationControllers — scaling, map selectors adopting and releasing, deleted
pods replaced, status with minReadySeconds, FailedCreate with ReplicaFailure."""

from __future__ import annotations

from typing import Any

RC = ("", "v1", "replicationcontrollers")
PODS = ("", "v1", "pods")
EVENTS = ("", "v1", "events")
NS = "default"


def controller(name: str, replicas: int, *, min_ready: int = 0,
               template_meta: dict[str, Any] | None = None) -> dict:
    return {
        "apiVersion": "v1", "kind": "ReplicationController",
        "metadata": {"name": name, "namespace": NS},
        "spec": {"replicas": replicas, "minReadySeconds": min_ready, "selector": {"app": name},
                 "template": {"metadata": {"labels": {"app": name}, **(template_meta or {})},
                              "spec": {"containers": [{"name": "c", "image": "nginx"}]}}},
    }


async def pods_of(client, app: str) -> list[dict]:
    items = (await client.list(PODS, NS, label_selector=f"app={app}"))["items"]
    return [p for p in items if not p["metadata"].get("deletionTimestamp")]


async def status_of(client, name: str) -> dict:
    return (await client.get(RC, name, NS)).get("status") or {}


async def test_rc_scales_and_owns_its_pods(cluster) -> None:
    await cluster.start("replicationcontroller")
    client = cluster.client
    rc = await client.create(RC, controller("web", 3))

    async def count(n: int) -> bool:
        return len(await pods_of(client, "web")) == n

    await cluster.wait_for(lambda: count(3), message="3 pods")
    for pod in await pods_of(client, "web"):
        assert pod["metadata"]["generateName"] == "web-"
        (ref,) = pod["metadata"]["ownerReferences"]
        assert (ref["apiVersion"], ref["kind"], ref["uid"], ref["controller"]) == (
            "v1", "ReplicationController", rc["metadata"]["uid"], True)
    await client.patch(RC, "web", {"spec": {"replicas": 1}}, NS)
    await cluster.wait_for(lambda: count(1), message="1 pod")

    async def settled() -> bool:
        st = await status_of(client, "web")
        return st.get("replicas") == 1 and st.get("observedGeneration") == 2

    await cluster.wait_for(settled, message="status replicas 1, generation observed")

    async def worded() -> bool:
        events = [e for e in (await client.list(EVENTS, NS))["items"] if e["involvedObject"]["name"] == "web"]
        return (any(e["reason"] == "SuccessfulCreate" and e["message"].startswith("Created pod: web-")
                    for e in events)
                and any(e["reason"] == "SuccessfulDelete" for e in events)
                and all(e["source"]["component"] == "replication-controller" for e in events))

    await cluster.wait_for(worded, message="events from replication-controller")


async def test_rc_adopts_releases_and_replaces(cluster) -> None:
    await cluster.start("replicationcontroller")
    client = cluster.client
    await client.create(PODS, {"apiVersion": "v1", "kind": "Pod",
                               "metadata": {"name": "stray", "namespace": NS, "labels": {"app": "rc"}},
                               "spec": {"containers": [{"name": "c", "image": "nginx"}]}})
    rc = await client.create(RC, controller("rc", 2))
    uid = rc["metadata"]["uid"]

    async def owned() -> list[dict] | None:
        pods = await pods_of(client, "rc")
        mine = [p for p in pods if any(r["uid"] == uid for r in p["metadata"].get("ownerReferences") or [])]
        return mine if len(pods) == 2 and len(mine) == 2 else None

    pods = await cluster.wait_for(owned, message="stray pod adopted")
    assert "stray" in [p["metadata"]["name"] for p in pods]
    await client.patch(PODS, "stray", {"metadata": {"labels": {"app": "gone"}}}, NS)

    async def released() -> bool:
        return not (await client.get(PODS, "stray", NS))["metadata"].get("ownerReferences")

    await cluster.wait_for(released, message="stray pod released")
    pods = await cluster.wait_for(owned, message="replacement after release")
    victim = pods[0]["metadata"]["name"]
    await client.delete(PODS, victim, NS)

    async def replaced() -> bool:
        mine = await owned()
        return bool(mine) and victim not in [p["metadata"]["name"] for p in mine]

    await cluster.wait_for(replaced, message="deleted pod replaced")


async def test_rc_status_available_after_min_ready_seconds(cluster) -> None:
    await cluster.start("replicationcontroller")
    await cluster.node.create_node("node-1")
    cluster.node.auto_run(NS, ready=True)
    client = cluster.client
    await client.create(RC, controller("avail", 2, min_ready=2))
    seen_waiting = False

    async def available() -> bool:
        nonlocal seen_waiting
        st = await status_of(client, "avail")
        if st.get("readyReplicas") == 2 and (st.get("availableReplicas") or 0) < 2:
            seen_waiting = True
        return st.get("availableReplicas") == 2

    await cluster.wait_for(available, message="availableReplicas 2")
    st = await status_of(client, "avail")
    assert st["replicas"] == 2 and st["readyReplicas"] == 2 and st["fullyLabeledReplicas"] == 2
    assert seen_waiting


async def test_rc_failed_create(cluster) -> None:
    await cluster.start("replicationcontroller")
    client = cluster.client
    await client.create(RC, controller("bad", 1, template_meta={"finalizers": ["not-qualified"]}))

    async def failure() -> dict | None:
        st = await status_of(client, "bad")
        return next((c for c in st.get("conditions") or [] if c["type"] == "ReplicaFailure"), None)

    cond = await cluster.wait_for(failure, message="ReplicaFailure on the RC")
    assert cond["reason"] == "FailedCreate" and cond["status"] == "True"

    async def warning() -> bool:
        return any(e["involvedObject"]["name"] == "bad" and e["reason"] == "FailedCreate"
                   and e["type"] == "Warning" and e["message"].startswith("Error creating: ")
                   for e in (await client.list(EVENTS, NS))["items"])

    await cluster.wait_for(warning, message="FailedCreate event")
