"""The DaemonSet controller against a real API server, with NodeSim playing the nodes: one pod
per eligible node as nodes are added, labelled, tainted and removed (with the pod GC, the pod
of a removed node goes); nodeSelector and node affinity; the default tolerations; revisions,
labels and status counts (minReadySeconds on a fake clock); failed pods replaced; duplicate
pods pruned; unbound pods of removed nodes deleted; failed creates warned about while other
DaemonSets are served."""

from __future__ import annotations

import time
from typing import Any

from pybernetes.controllers.base import FakeClock
from pybernetes.controllers.daemonset_nodes import target_node_name

DS = ("apps", "v1", "daemonsets")
PODS = ("", "v1", "pods")
NODES = ("", "v1", "nodes")
REVISIONS = ("apps", "v1", "controllerrevisions")
EVENTS = ("", "v1", "events")
NS = "default"


def daemon_set(name: str, *, pod_spec: dict[str, Any] | None = None, strategy: dict[str, Any] | None = None,
               min_ready: int = 0) -> dict:
    spec: dict[str, Any] = {"containers": [{"name": "c", "image": "agent:1"}], **(pod_spec or {})}
    body: dict[str, Any] = {
        "apiVersion": "apps/v1", "kind": "DaemonSet",
        "metadata": {"name": name, "namespace": NS},
        "spec": {"selector": {"matchLabels": {"app": name}}, "minReadySeconds": min_ready,
                 "template": {"metadata": {"labels": {"app": name}}, "spec": spec}},
    }
    if strategy is not None:
        body["spec"]["updateStrategy"] = strategy
    return body


async def pods_of(client, app: str, *, active_only: bool = True) -> list[dict]:
    items = (await client.list(PODS, NS, label_selector=f"app={app}"))["items"]
    if active_only:
        items = [p for p in items if not p["metadata"].get("deletionTimestamp")]
    return items


async def pods_by_node(client, app: str) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {}
    for pod in await pods_of(client, app):
        out.setdefault(target_node_name(pod) or "", []).append(pod)
    return out


def on_nodes(nodes: set[str]):
    """A predicate maker: exactly one active pod on each of ``nodes`` and none elsewhere."""
    def check(by_node: dict[str, list[dict]]) -> bool:
        return set(by_node) == nodes and all(len(v) == 1 for v in by_node.values())
    return check


async def wait_pods_on(cluster, app: str, nodes: set[str], message: str = "") -> dict[str, list[dict]]:
    check = on_nodes(nodes)

    async def ready() -> dict[str, list[dict]] | None:
        by_node = await pods_by_node(cluster.client, app)
        return by_node if check(by_node) else None

    return await cluster.wait_for(ready, message=message or f"one pod on each of {sorted(nodes)}")


async def wait_status(cluster, name: str, **expected: int) -> dict:
    async def matches() -> dict | None:
        ds = await cluster.client.get(DS, name, NS)
        st = ds.get("status") or {}
        if st.get("observedGeneration") != ds["metadata"]["generation"]:
            return None
        return ds if all(int(st.get(k) or 0) == v for k, v in expected.items()) else None

    return await cluster.wait_for(matches, message=f"status {expected}")


async def events_for(client, name: str) -> list[dict]:
    return [e for e in (await client.list(EVENTS, NS))["items"] if e["involvedObject"].get("name") == name]


async def test_one_pod_per_node_as_nodes_come_and_go(cluster) -> None:
    node = cluster.node
    client = cluster.client
    for name in ("n1", "n2"):
        await node.create_node(name)
    await cluster.start("daemonset")
    node.auto_run(NS)
    ds = await client.create(DS, daemon_set("agent"))
    assert ds["metadata"]["annotations"]["deprecated.daemonset.template.generation"] == "1"
    by_node = await wait_pods_on(cluster, "agent", {"n1", "n2"})
    (rev,) = (await client.list(REVISIONS, NS))["items"]
    assert rev["revision"] == 1 and rev["metadata"]["ownerReferences"][0]["uid"] == ds["metadata"]["uid"]
    assert rev["data"]["spec"]["template"]["$patch"] == "replace"
    assert rev["data"]["spec"]["template"]["spec"]["containers"][0]["image"] == "agent:1"
    hash_ = rev["metadata"]["labels"]["controller-revision-hash"]
    assert rev["metadata"]["name"] == f"agent-{hash_}"
    for name, (pod,) in by_node.items():
        meta, spec = pod["metadata"], pod["spec"]
        assert meta["generateName"] == "agent-"
        assert meta["labels"] == {"app": "agent", "controller-revision-hash": hash_, "pod-template-generation": "1"}
        assert meta["ownerReferences"][0]["kind"] == "DaemonSet" and meta["ownerReferences"][0]["controller"]
        assert spec["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"] == {
            "nodeSelectorTerms": [{"matchFields": [{"key": "metadata.name", "operator": "In", "values": [name]}]}]}
        keys = {(t["key"], t["effect"]) for t in spec["tolerations"]}
        assert keys == {("node.kubernetes.io/not-ready", "NoExecute"), ("node.kubernetes.io/unreachable", "NoExecute"),
                        ("node.kubernetes.io/disk-pressure", "NoSchedule"),
                        ("node.kubernetes.io/memory-pressure", "NoSchedule"),
                        ("node.kubernetes.io/pid-pressure", "NoSchedule"),
                        ("node.kubernetes.io/unschedulable", "NoSchedule")}
    await wait_status(cluster, "agent", desiredNumberScheduled=2, currentNumberScheduled=2, numberReady=2,
                      numberAvailable=2, updatedNumberScheduled=2, numberUnavailable=0, numberMisscheduled=0)

    await node.create_node("n3")
    await wait_pods_on(cluster, "agent", {"n1", "n2", "n3"}, "a pod for the new node")
    await wait_status(cluster, "agent", desiredNumberScheduled=3, currentNumberScheduled=3, numberReady=3)

    # A removed node: its bound pod is left to the pod garbage collector, it is not counted,
    # and no pod is made for it again.
    await client.delete(NODES, "n3")
    await wait_status(cluster, "agent", desiredNumberScheduled=2, currentNumberScheduled=2, numberReady=2,
                      numberAvailable=2, numberMisscheduled=0)
    by_node = await pods_by_node(client, "agent")
    assert len(by_node.get("n3", [])) == 1 and by_node["n3"][0]["spec"]["nodeName"] == "n3"
    created = [e for e in await events_for(client, "agent") if e["reason"] == "SuccessfulCreate"]
    assert sum(e.get("count", 1) for e in created) == 3
    assert all(e["source"]["component"] == "daemonset-controller" for e in created)


async def test_unbound_pods_of_a_removed_node_are_deleted(cluster) -> None:
    for name in ("n1", "n2"):
        await cluster.node.create_node(name)
    await cluster.start("daemonset")
    await cluster.client.create(DS, daemon_set("agent"))
    await wait_pods_on(cluster, "agent", {"n1", "n2"})  # Pending: nothing binds them
    await cluster.client.delete(NODES, "n2")
    await wait_pods_on(cluster, "agent", {"n1"}, "the unbound pod of n2 deleted")
    await wait_status(cluster, "agent", desiredNumberScheduled=1, currentNumberScheduled=1, numberReady=0,
                      numberUnavailable=1)


async def test_taints_no_schedule_and_no_execute(cluster) -> None:
    node, client = cluster.node, cluster.client
    for name in ("a", "b"):
        await node.create_node(name)
    await cluster.start("daemonset")
    node.auto_run(NS)
    await client.create(DS, daemon_set("plain"))
    tolerant = daemon_set("tolerant", pod_spec={"tolerations": [
        {"key": "dedicated", "operator": "Exists", "effect": "NoExecute"},
        {"key": "dedicated", "operator": "Equal", "value": "gpu", "effect": "NoSchedule"}]})
    await client.create(DS, tolerant)
    await wait_pods_on(cluster, "plain", {"a", "b"})
    await wait_pods_on(cluster, "tolerant", {"a", "b"})
    # A node born with an untolerated NoSchedule taint gets no new pod.
    await node.create_node("c", taints=[{"key": "dedicated", "value": "gpu", "effect": "NoSchedule"}])
    await node.create_node("d", taints=[{"key": "dedicated", "value": "other", "effect": "NoSchedule"}])
    await wait_pods_on(cluster, "tolerant", {"a", "b", "c"}, "the tolerated taint lets a pod onto c")
    # NoSchedule on a running node: the pod stays (and is counted as misscheduled).
    await client.patch(NODES, "a", {"spec": {"taints": [{"key": "dedicated", "value": "x", "effect": "NoSchedule"}]}})
    await wait_status(cluster, "plain", desiredNumberScheduled=1, currentNumberScheduled=1, numberMisscheduled=1)
    assert set(await pods_by_node(client, "plain")) == {"a", "b"}
    # NoExecute: the pod goes unless tolerated.
    await client.patch(NODES, "b", {"spec": {"taints": [{"key": "dedicated", "value": "x", "effect": "NoExecute"}]}})
    await wait_pods_on(cluster, "plain", {"a"}, "the pod evicted from b by NoExecute")
    await wait_status(cluster, "plain", desiredNumberScheduled=0, currentNumberScheduled=0, numberMisscheduled=1)
    assert set(await pods_by_node(client, "tolerant")) == {"a", "b", "c"}
    # The taints go: pods come back.
    for name in ("a", "b", "d"):
        await client.patch(NODES, name, {"spec": {"taints": None}})
    await wait_pods_on(cluster, "plain", {"a", "b", "d"}, "pods back once untainted (c still tainted)")
    await wait_status(cluster, "plain", desiredNumberScheduled=3, currentNumberScheduled=3, numberMisscheduled=0)
    # The default tolerations: an unschedulable (cordoned) node keeps and still gets daemon pods.
    await client.patch(NODES, "d", {"spec": {"unschedulable": True, "taints": [
        {"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule"}]}})
    await node.create_node("e", taints=[{"key": "node.kubernetes.io/not-ready", "effect": "NoExecute"}])
    await wait_pods_on(cluster, "plain", {"a", "b", "d", "e"}, "default tolerations honoured")


async def test_node_selector_and_node_affinity(cluster) -> None:
    node, client = cluster.node, cluster.client
    await node.create_node("ssd-a", labels={"disk": "ssd", "zone": "a"})
    await node.create_node("hdd-a", labels={"disk": "hdd", "zone": "a"})
    await node.create_node("ssd-b", labels={"disk": "ssd", "zone": "b"})
    await cluster.start("daemonset")
    node.auto_run(NS)
    await client.create(DS, daemon_set("by-selector", pod_spec={"nodeSelector": {"disk": "ssd"}}))
    affinity = {"nodeAffinity": {
        "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
            {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["a"]},
                                  {"key": "disk", "operator": "NotIn", "values": ["ssd"]}]},
            {"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["ssd-b"]}]}]},
        "preferredDuringSchedulingIgnoredDuringExecution": [
            {"weight": 1, "preference": {"matchExpressions": [{"key": "zone", "operator": "Exists"}]}}]}}
    await client.create(DS, daemon_set("by-affinity", pod_spec={"affinity": affinity}))
    await wait_pods_on(cluster, "by-selector", {"ssd-a", "ssd-b"})
    by_node = await wait_pods_on(cluster, "by-affinity", {"hdd-a", "ssd-b"})
    pod_affinity = by_node["hdd-a"][0]["spec"]["affinity"]["nodeAffinity"]
    assert pod_affinity["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"] == [
        {"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["hdd-a"]}]}]
    assert pod_affinity["preferredDuringSchedulingIgnoredDuringExecution"] == \
        affinity["nodeAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"]
    # Labels change: pods follow.
    await client.patch(NODES, "hdd-a", {"metadata": {"labels": {"disk": "ssd"}}})
    await wait_pods_on(cluster, "by-selector", {"ssd-a", "ssd-b", "hdd-a"}, "a pod once the label matches")
    await wait_pods_on(cluster, "by-affinity", {"ssd-b"}, "the pod removed once the affinity fails")
    await client.patch(NODES, "ssd-a", {"metadata": {"labels": {"disk": None}}})
    await wait_pods_on(cluster, "by-selector", {"ssd-b", "hdd-a"}, "the pod removed once the label goes")
    await wait_status(cluster, "by-selector", desiredNumberScheduled=2, currentNumberScheduled=2,
                      numberMisscheduled=0, numberReady=2)


async def test_failed_pods_are_replaced_and_duplicates_pruned(cluster) -> None:
    node, client = cluster.node, cluster.client
    await node.create_node("n1")
    await cluster.start("daemonset")
    node.auto_run(NS)
    # Two matching orphans bound to n1 before the DaemonSet exists: it adopts both and keeps
    # the oldest (by creation time, then name).  (OnDelete: with RollingUpdate the adopted pod,
    # not of the current revision, would be replaced too.)
    for name in ("agent-aaa", "agent-zzz"):
        await client.create(PODS, {"apiVersion": "v1", "kind": "Pod",
                                   "metadata": {"name": name, "namespace": NS, "labels": {"app": "agent"}},
                                   "spec": {"nodeName": "n1", "containers": [{"name": "c", "image": "agent:1"}]}})
    ctrl = cluster.manager.controllers["daemonset"]
    await cluster.wait_for(lambda: len(ctrl.pods.indexer.list()) == 2, message="the orphans in the cache")
    ds = await client.create(DS, daemon_set("agent", strategy={"type": "OnDelete"}))
    by_node = await wait_pods_on(cluster, "agent", {"n1"}, "the duplicate pruned")
    (kept,) = by_node["n1"]
    assert kept["metadata"]["name"] == "agent-aaa"
    assert kept["metadata"]["ownerReferences"][0]["uid"] == ds["metadata"]["uid"]

    await node.mark_failed(kept)

    async def replaced() -> bool:
        pods = (await pods_by_node(client, "agent")).get("n1", [])
        return len(pods) == 1 and pods[0]["metadata"]["name"] not in ("agent-aaa", "agent-zzz") \
            and pods[0]["status"].get("phase") == "Running"

    await cluster.wait_for(replaced, message="the failed pod replaced")
    reasons = {e["reason"]: e for e in await events_for(client, "agent")}
    assert reasons["FailedDaemonPod"]["type"] == "Warning"
    assert reasons["FailedDaemonPod"]["message"] == \
        f"Found failed daemon pod {NS}/agent-aaa on node n1, will try to kill it"
    assert reasons["SuccessfulDelete"]["message"].startswith("Deleted pod: agent-")
    await wait_status(cluster, "agent", desiredNumberScheduled=1, currentNumberScheduled=1, numberReady=1,
                      numberAvailable=1)


async def test_failed_creates_warn_and_other_daemonsets_are_served(cluster) -> None:
    node, client = cluster.node, cluster.client
    for name in ("n1", "n2", "n3"):
        await node.create_node(name)
    await cluster.start("daemonset")
    # A template finalizer without a domain passes DaemonSet validation but not the pod's.
    broken = daemon_set("broken")
    broken["spec"]["template"]["metadata"]["finalizers"] = ["not-qualified"]
    await client.create(DS, broken)
    await client.create(DS, daemon_set("fine"))

    async def warning() -> dict | None:
        return next((e for e in await events_for(client, "broken")
                     if e["reason"] == "FailedCreate" and e["type"] == "Warning"), None)

    event = await cluster.wait_for(warning, message="FailedCreate event")
    assert event["message"].startswith("Error creating: ") and "finalizers" in event["message"]
    await wait_pods_on(cluster, "fine", {"n1", "n2", "n3"}, "the other DaemonSet still served")
    assert await pods_of(client, "broken") == []
    await wait_status(cluster, "broken", desiredNumberScheduled=3, currentNumberScheduled=0, numberUnavailable=3)
    fixed = await client.get(DS, "broken", NS)
    fixed["spec"]["template"]["metadata"].pop("finalizers")
    await client.update(DS, fixed)
    await wait_pods_on(cluster, "broken", {"n1", "n2", "n3"}, "pods once the template is fixed")


async def test_pods_of_a_removed_node_end_with_the_pod_gc(cluster) -> None:
    """The whole story of a removed node: the DaemonSet stops counting it and makes no pod for
    it; the pod garbage collector deletes the pod that was bound to it."""
    node, client = cluster.node, cluster.client
    for name in ("n1", "n2"):
        await node.create_node(name)
    await cluster.start("daemonset", "podgc", options={"podgc_interval": 0.2, "podgc_orphan_quarantine": 0})
    node.auto_run(NS)
    await client.create(DS, daemon_set("agent"))
    await wait_pods_on(cluster, "agent", {"n1", "n2"})
    await wait_status(cluster, "agent", desiredNumberScheduled=2, numberReady=2)
    await client.delete(NODES, "n2")
    await wait_pods_on(cluster, "agent", {"n1"}, "the pod of n2 collected")
    await wait_status(cluster, "agent", desiredNumberScheduled=1, currentNumberScheduled=1, numberReady=1,
                      numberMisscheduled=0)
    assert set(await pods_by_node(client, "agent")) == {"n1"}


async def test_many_nodes_at_once_and_min_ready_seconds(cluster) -> None:
    node, client = cluster.node, cluster.client
    names = {f"w{i:02d}" for i in range(24)}
    for name in sorted(names):
        await node.create_node(name)
    clock = FakeClock(time.time())
    await cluster.start("daemonset", clock=clock)
    node.auto_run(NS)
    await client.create(DS, daemon_set("agent", min_ready=30))
    await wait_pods_on(cluster, "agent", names)
    await wait_status(cluster, "agent", desiredNumberScheduled=24, currentNumberScheduled=24, numberReady=24,
                      numberAvailable=0, numberUnavailable=24)
    created = [e for e in await events_for(client, "agent") if e["reason"] == "SuccessfulCreate"]
    assert sum(e.get("count", 1) for e in created) == 24  # expectations: no pod made twice
    clock.advance(31)
    await client.patch(DS, "agent", {"metadata": {"labels": {"poke": "1"}}}, NS)  # any event: a sync
    await wait_status(cluster, "agent", numberReady=24, numberAvailable=24, numberUnavailable=0)
