"""The disruption controller: PodDisruptionBudget status from the pods it selects and the
scale of their controllers (minAvailable / maxUnavailable as ints and percents), the
DisruptionAllowed condition, disruptedPods clean-up, and the fail-safe SyncFailed status."""

from __future__ import annotations

from pybernetes.controllers.base import FakeClock
from pybernetes.controllers.podutil import format_time

PODS = ("", "v1", "pods")
PDBS = ("policy", "v1", "poddisruptionbudgets")
REPLICASETS = ("apps", "v1", "replicasets")
DEPLOYMENTS = ("apps", "v1", "deployments")
EVENTS = ("", "v1", "events")
NS = "default"


def template(labels: dict[str, str]) -> dict:
    return {"metadata": {"labels": labels}, "spec": {"containers": [{"name": "c", "image": "nginx"}]}}


def owner_ref(obj: dict, kind: str, api_version: str = "apps/v1") -> dict:
    return {"apiVersion": api_version, "kind": kind, "name": obj["metadata"]["name"],
            "uid": obj["metadata"]["uid"], "controller": True}


async def make_pods(cluster, prefix: str, labels: dict[str, str], count: int, owner: dict | None = None,
                    ready: int | None = None) -> list[dict]:
    pods = []
    for i in range(count):
        meta = {"name": f"{prefix}-{i}", "labels": labels}
        if owner is not None:
            meta["ownerReferences"] = [owner]
        p = await cluster.client.create(PODS, {"metadata": meta, **{"spec": template(labels)["spec"]}}, NS)
        pods.append(await cluster.node.mark_running(p, ready=ready is None or i < ready))
    return pods


def pdb(name: str, labels: dict[str, str], **spec) -> dict:
    return {"apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "metadata": {"name": name},
            "spec": {"selector": {"matchLabels": labels}, **spec}}


async def status_is(cluster, name: str, **want):
    got = (await cluster.client.get(PDBS, name, NS)).get("status") or {}
    if all(got.get(k) == v for k, v in want.items()):
        return got
    return None


def condition(status: dict) -> dict:
    return next(c for c in status["conditions"] if c["type"] == "DisruptionAllowed")


async def test_min_available_int_follows_pod_health(cluster) -> None:
    await cluster.node.create_node("node-1")
    await cluster.start("disruption")
    pods = await make_pods(cluster, "web", {"app": "web"}, 3)
    budget = await cluster.client.create(PDBS, pdb("web", {"app": "web"}, minAvailable=2), NS)
    status = await cluster.wait_for(lambda: status_is(cluster, "web", currentHealthy=3, desiredHealthy=2,
                                                      expectedPods=3, disruptionsAllowed=1),
                                    message="3 healthy, 1 disruption allowed")
    assert status["observedGeneration"] == budget["metadata"]["generation"]
    cond = condition(status)
    assert (cond["status"], cond["reason"]) == ("True", "SufficientPods")

    await cluster.node.mark_ready(pods[0], ready=False)
    status = await cluster.wait_for(lambda: status_is(cluster, "web", currentHealthy=2, disruptionsAllowed=0),
                                    message="one unready: no disruption allowed")
    cond = condition(status)
    assert (cond["status"], cond["reason"]) == ("False", "InsufficientPods")

    # A change of spec is observed.
    current = await cluster.client.get(PDBS, "web", NS)
    current["spec"]["minAvailable"] = 1
    updated = await cluster.client.update(PDBS, current, NS)
    await cluster.wait_for(lambda: status_is(cluster, "web", desiredHealthy=1, disruptionsAllowed=1,
                                             observedGeneration=updated["metadata"]["generation"]),
                           message="the new minAvailable observed")


async def test_percentages_use_the_controllers_scale(cluster) -> None:
    await cluster.node.create_node("node-1")
    await cluster.start("disruption")
    rs_body = {"metadata": {"name": "rs"}, "spec": {"replicas": 4, "selector": {"matchLabels": {"app": "rs"}},
                                                    "template": template({"app": "rs"})}}
    rs = await cluster.client.create(REPLICASETS, rs_body, NS)
    await make_pods(cluster, "rs", {"app": "rs"}, 3, owner_ref(rs, "ReplicaSet"))
    await cluster.client.create(PDBS, pdb("rs-max", {"app": "rs"}, maxUnavailable="50%"), NS)
    # expectedPods is the ReplicaSet's 4 replicas; 50% of 4 may be unavailable: 2 must be healthy.
    await cluster.wait_for(lambda: status_is(cluster, "rs-max", expectedPods=4, desiredHealthy=2,
                                             currentHealthy=3, disruptionsAllowed=1),
                           message="maxUnavailable 50% of the ReplicaSet's scale")

    dep_body = {"metadata": {"name": "dep"}, "spec": {"replicas": 5, "selector": {"matchLabels": {"app": "dep"}},
                                                      "template": template({"app": "dep"})}}
    dep = await cluster.client.create(DEPLOYMENTS, dep_body, NS)
    owned_rs = {"metadata": {"name": "dep-abc", "ownerReferences": [owner_ref(dep, "Deployment")]},
                "spec": {"replicas": 5, "selector": {"matchLabels": {"app": "dep"}}, "template": template({"app": "dep"})}}
    owned_rs = await cluster.client.create(REPLICASETS, owned_rs, NS)
    await make_pods(cluster, "dep", {"app": "dep"}, 5, owner_ref(owned_rs, "ReplicaSet"), ready=4)
    await cluster.client.create(PDBS, pdb("dep-min", {"app": "dep"}, minAvailable="50%"), NS)
    # 50% of the Deployment's 5, rounded up: 3 must be healthy; 4 are.
    await cluster.wait_for(lambda: status_is(cluster, "dep-min", expectedPods=5, desiredHealthy=3,
                                             currentHealthy=4, disruptionsAllowed=1),
                           message="minAvailable 50% of the Deployment's scale")
    await cluster.client.create(PDBS, pdb("dep-max", {"app": "dep"}, maxUnavailable=1), NS)
    await cluster.wait_for(lambda: status_is(cluster, "dep-max", expectedPods=5, desiredHealthy=4,
                                             currentHealthy=4, disruptionsAllowed=0),
                           message="maxUnavailable 1 of the Deployment's scale")


async def test_missing_controller_fails_safe_and_unmanaged_pods_warn(cluster) -> None:
    await cluster.node.create_node("node-1")
    await cluster.start("disruption")
    ghost = {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "ghost", "uid": "0000-ghost", "controller": True}
    await make_pods(cluster, "orphan", {"app": "orphan"}, 2, ghost)
    await cluster.client.create(PDBS, pdb("orphan", {"app": "orphan"}, maxUnavailable=1), NS)

    async def failed():
        status = await status_is(cluster, "orphan", disruptionsAllowed=0)
        cond = status and next((c for c in status.get("conditions") or [] if c["type"] == "DisruptionAllowed"), None)
        return cond if cond and cond["reason"] == "SyncFailed" else None

    cond = await cluster.wait_for(failed, message="SyncFailed")
    assert cond["status"] == "False" and 'found no controllers for pod "orphan-' in cond["message"]

    await make_pods(cluster, "bare", {"app": "bare"}, 2)
    await cluster.client.create(PDBS, pdb("bare", {"app": "bare"}, maxUnavailable=1), NS)
    await cluster.wait_for(lambda: status_is(cluster, "bare", expectedPods=0, currentHealthy=2,
                                             disruptionsAllowed=0), message="unmanaged pods: no disruptions")

    async def warned() -> bool:
        events = (await cluster.client.list(EVENTS, NS))["items"]
        return any(e["reason"] == "UnmanagedPods" and e["involvedObject"]["name"] == "bare"
                   and e["source"]["component"] == "controllermanager" for e in events)

    await cluster.wait_for(warned, message="an UnmanagedPods event")


async def test_disrupted_pods_expire(cluster) -> None:
    clock = FakeClock(1_700_000_000.0)
    await cluster.node.create_node("node-1")
    await cluster.start("disruption", clock=clock)
    await make_pods(cluster, "d", {"app": "d"}, 3)
    await cluster.client.create(PDBS, pdb("d", {"app": "d"}, minAvailable=1), NS)
    await cluster.wait_for(lambda: status_is(cluster, "d", currentHealthy=3, disruptionsAllowed=2))
    # The eviction API recorded d-0 as being disrupted just now: it does not count as healthy.
    current = await cluster.client.get(PDBS, "d", NS)
    current["status"]["disruptedPods"] = {"d-0": format_time(clock.now()), "gone": format_time(clock.now())}
    await cluster.client.update_status(PDBS, current, NS)
    status = await cluster.wait_for(lambda: status_is(cluster, "d", currentHealthy=2, disruptionsAllowed=1),
                                    message="d-0 disrupted")
    assert status["disruptedPods"] == {"d-0": format_time(clock.now())}, "pods that are gone are dropped"
    # Two minutes later it was not deleted: it counts again and the entry goes.
    clock.advance(121)
    controller = cluster.manager.controllers["disruption"]
    controller.enqueue("default/d")
    status = await cluster.wait_for(lambda: status_is(cluster, "d", currentHealthy=3, disruptionsAllowed=2),
                                    message="d-0 healthy again")
    assert not status.get("disruptedPods")


async def test_stale_disruption_target_condition_is_cleared(cluster) -> None:
    clock = FakeClock(1_700_000_000.0)
    await cluster.node.create_node("node-1")
    await cluster.start("disruption", clock=clock)
    (p,) = await make_pods(cluster, "t", {"app": "t"}, 1)
    p["status"]["conditions"].append({"type": "DisruptionTarget", "status": "True", "reason": "EvictionByEvictionAPI",
                                      "lastTransitionTime": format_time(clock.now())})
    await cluster.client.update_status(PODS, p, NS)

    async def target_status():
        pod = await cluster.client.get(PODS, "t-0", NS)
        return next(c["status"] for c in pod["status"]["conditions"] if c["type"] == "DisruptionTarget")

    controller = cluster.manager.controllers["disruption"]
    before = controller.syncs
    controller.enqueue("stale-pod:default/t-0")
    await cluster.wait_for(lambda: controller.syncs > before, message="the pod looked at")
    assert await target_status() == "True", "not stale yet"
    clock.advance(121)
    controller.enqueue("stale-pod:default/t-0")
    await cluster.wait_for(lambda: _is(target_status(), "False"), message="DisruptionTarget cleared")


async def _is(awaitable, expected) -> bool:
    return await awaitable == expected
