"""The scheduler against a real API server with Node objects: pods are bound through
pods/binding, spread by the default plugins, and pods that fit nowhere stay Pending with
upstream's reason and message until a cluster event lets them in."""

from __future__ import annotations

PODS = ("", "v1", "pods")

EVENTS = ("", "v1", "events")


async def _events(sched, name: str, reason: str) -> list[dict]:
    return [e for e in (await sched.client.list(EVENTS, "default"))["items"]
            if e["involvedObject"]["name"] == name and e["reason"] == reason]


async def test_pods_are_bound_and_spread_with_a_scheduled_event(sched) -> None:
    for n in ("node-a", "node-b", "node-c"):
        await sched.add_node(n)
    await sched.start()
    names = [f"p{i}" for i in range(6)]
    for name in names:
        await sched.add_pod(name, cpu="500m", memory="256Mi")
    placed = await sched.wait_bound(*names)
    assert sorted(placed.values()).count("node-a") == 2  # LeastAllocated + balance: 2 per node
    assert set(placed.values()) == {"node-a", "node-b", "node-c"}
    events = await sched.wait_for(lambda: _events(sched, "p0", "Scheduled"), message="a Scheduled event")
    assert events[0]["message"] == f"Successfully assigned default/p0 to {placed['p0']}"
    assert events[0]["source"]["component"] == "default-scheduler"


async def test_unschedulable_pod_gets_reason_message_and_moves_on_node_add(sched) -> None:
    await sched.add_node("small-1", cpu="1")
    await sched.add_node("small-2", cpu="1")
    await sched.add_node("tainted", cpu="8", taints=[{"key": "dedicated", "value": "gpu", "effect": "NoSchedule"}])
    await sched.start()
    await sched.add_pod("big", cpu="2")

    async def rejected() -> dict | None:
        cond = await sched.scheduled_condition("big")
        return cond if cond and cond["status"] == "False" else None

    cond = await sched.wait_for(rejected, message="PodScheduled=False")
    assert cond["reason"] == "Unschedulable"
    assert cond["message"] == ("0/3 nodes are available: 1 node(s) had untolerated taint {dedicated: gpu}, "
                               "2 Insufficient cpu. preemption: 0/3 nodes are available: "
                               "1 Preemption is not helpful for scheduling, "
                               "2 No preemption victims found for incoming pod.")
    events = await sched.wait_for(lambda: _events(sched, "big", "FailedScheduling"), message="FailedScheduling")
    assert events[0]["type"] == "Warning" and events[0]["message"] == cond["message"]
    # Another pod still schedules meanwhile: the impossible one does not stall the queue.
    await sched.add_pod("small", cpu="100m")
    await sched.wait_bound("small")
    await sched.add_node("big-node", cpu="4")
    placed = await sched.wait_bound("big")
    assert placed["big"] == "big-node"


async def test_node_selector_taints_and_unschedulable_nodes(sched) -> None:
    await sched.add_node("gpu", labels={"accel": "gpu"}, taints=[{"key": "gpu", "operator": "Exists",
                                                                  "effect": "NoSchedule"}])
    await sched.add_node("cordoned", labels={"accel": "gpu"}, unschedulable=True)
    await sched.add_node("plain")
    await sched.start()
    await sched.add_pod("wants-gpu", nodeSelector={"accel": "gpu"},
                        tolerations=[{"key": "gpu", "operator": "Exists", "effect": "NoSchedule"}])
    await sched.add_pod("no-toleration", nodeSelector={"accel": "gpu"})
    assert (await sched.wait_bound("wants-gpu"))["wants-gpu"] == "gpu"

    async def rejected() -> dict | None:
        cond = await sched.scheduled_condition("no-toleration")
        return cond if cond and cond["status"] == "False" else None

    cond = await sched.wait_for(rejected, message="no-toleration rejected")
    assert cond["message"] == ("0/3 nodes are available: 1 node(s) didn't match Pod's node affinity/selector, "
                               "1 node(s) had untolerated taint {gpu: }, 1 node(s) were unschedulable. "
                               "preemption: 0/3 nodes are available: 3 Preemption is not helpful for scheduling.")


async def test_required_anti_affinity_places_one_per_node(sched) -> None:
    for n in ("n1", "n2", "n3"):
        await sched.add_node(n)
    await sched.start()
    anti = {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
        {"labelSelector": {"matchLabels": {"app": "db"}}, "topologyKey": "kubernetes.io/hostname"}]}}
    for i in range(4):
        await sched.add_pod(f"db-{i}", labels={"app": "db"}, affinity=anti)
    await sched.wait_for(lambda: _count_bound(sched, 3), message="three db pods bound")
    pods = (await sched.client.list(PODS, "default"))["items"]
    hosts = [p["spec"].get("nodeName") for p in pods if p["spec"].get("nodeName")]
    assert sorted(hosts) == ["n1", "n2", "n3"]
    pending = [p for p in pods if not p["spec"].get("nodeName")]
    assert len(pending) == 1
    cond = await sched.wait_for(lambda: sched.scheduled_condition(pending[0]["metadata"]["name"]))
    assert "didn't match pod anti-affinity rules" in cond["message"]


async def _count_bound(sched, n: int) -> bool:
    pods = (await sched.client.list(PODS, "default"))["items"]
    return sum(1 for p in pods if p["spec"].get("nodeName")) >= n


async def test_topology_spread_across_zones(sched) -> None:
    for i, zone in enumerate(["a", "a", "b", "b", "c"]):
        await sched.add_node(f"z{zone}-{i}", labels={"topology.kubernetes.io/zone": zone})
    await sched.start()
    spread = [{"maxSkew": 1, "topologyKey": "topology.kubernetes.io/zone", "whenUnsatisfiable": "DoNotSchedule",
               "labelSelector": {"matchLabels": {"app": "web"}}}]
    names = [f"web-{i}" for i in range(6)]
    for name in names:
        await sched.add_pod(name, labels={"app": "web"}, topologySpreadConstraints=spread)
    placed = await sched.wait_bound(*names)
    zones = [host.split("-")[0] for host in placed.values()]
    assert sorted(zones.count(z) for z in ("za", "zb", "zc")) == [2, 2, 2]
