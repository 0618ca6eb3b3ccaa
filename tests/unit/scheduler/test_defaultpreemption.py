"""DefaultPreemption: eligibility, victim selection with reprieves and PodDisruptionBudgets, the
choice among candidate nodes, the API calls that evict the victims, and upstream's messages —
run through a real Framework (NodeResourcesFit as the Filter) with a fake client and recorder."""

from __future__ import annotations

import pytest

from pybernetes.client.errors import NotFound
from pybernetes.scheduler.config import Profile
from pybernetes.scheduler.framework import Code, CycleState, Status
from pybernetes.scheduler.handle import Handle, Snapshot
from pybernetes.scheduler.nodeinfo import node_info_of
from pybernetes.scheduler.plugins.defaultpreemption import DefaultPreemption, split_by_pdb_violation
from pybernetes.scheduler.plugins.noderesourcesfit import NodeResourcesFit
from pybernetes.scheduler.runtime import Framework


def node(name: str, cpu: str = "4") -> dict:
    alloc = {"cpu": cpu, "memory": "16Gi", "pods": "32"}
    return {"metadata": {"name": name}, "status": {"allocatable": alloc, "capacity": alloc}}


def pod(name: str, cpu: str, prio: int = 0, *, node_name: str = "", start: str = "2024-01-01T00:00:00Z",
        labels: dict | None = None, ns: str = "default", **spec: object) -> dict:
    out = {"metadata": {"name": name, "namespace": ns, "uid": f"uid-{name}", "labels": labels or {}},
           "spec": {"priority": prio, "containers": [{"name": "c", "image": "x",
                                                      "resources": {"requests": {"cpu": cpu}}}], **spec},
           "status": {"startTime": start}}
    if node_name:
        out["spec"]["nodeName"] = node_name
    return out


def pdb(name: str, labels: dict, allowed: int, ns: str = "default") -> dict:
    return {"metadata": {"name": name, "namespace": ns}, "spec": {"selector": {"matchLabels": labels}},
            "status": {"disruptionsAllowed": allowed}}


class FakeClient:
    def __init__(self, missing: tuple[str, ...] = ()) -> None:
        self.calls: list[tuple] = []
        self.missing = missing

    async def patch(self, res, name, body, namespace=None, *, patch_type="merge", subresource=None):
        self.calls.append(("patch", name, namespace, patch_type, subresource, body))
        return {}

    async def delete(self, res, name, namespace=None, **params):
        self.calls.append(("delete", res, name, namespace, params))
        if name in self.missing:
            raise NotFound(404, "NotFound", f'pods "{name}" not found')
        return {}


class FakeRecorder:
    def __init__(self) -> None:
        self.events: list[tuple] = []

    def event(self, obj, type_, reason, message):
        self.events.append((obj["metadata"]["name"], type_, reason, message))


def setup(nodes: dict[str, list[dict]], pdbs: list[dict] = (), args: dict | None = None, missing=()):
    infos = [node_info_of(node(n), pods) for n, pods in nodes.items()]
    client, recorder = FakeClient(missing), FakeRecorder()
    handle = Handle(Snapshot(infos), client=client, recorder=recorder,
                    objects={"policy/v1/poddisruptionbudgets": list(pdbs)})
    profile = Profile("default-scheduler", 0, {"preFilter": [("NodeResourcesFit", 0)],
                                               "filter": [("NodeResourcesFit", 0)],
                                               "postFilter": [("DefaultPreemption", 0)]},
                      {"DefaultPreemption": args or {}})
    classes = {"NodeResourcesFit": NodeResourcesFit, "DefaultPreemption": DefaultPreemption}
    fw = Framework(profile, classes.__getitem__, handle)
    return fw, handle, client, recorder


async def preempt(fw: Framework, incoming: dict) -> tuple[str | None, Status, dict[str, Status]]:
    state = CycleState()
    nodes = fw.handle.snapshot.node_infos
    _, status = fw.run_pre_filter(state, incoming, nodes)
    assert status.is_success()
    statuses = {}
    for info in nodes:
        status = fw.run_filter(state, incoming, info)
        assert not status.is_success(), f"{incoming['metadata']['name']} fits {info.name} without preemption"
        statuses[info.name] = status
    nominated, status = await fw.run_post_filter(state, incoming, statuses)
    return nominated, status, statuses


def deleted(client: FakeClient) -> list[str]:
    return [c[2] for c in client.calls if c[0] == "delete"]


# (nodes with their pods, PDBs, incoming pod, expected node, expected victims)
CASES = {
    "lowest priority pod suffices": (
        {"n1": [pod("a", "2", 1, node_name="n1"), pod("b", "2", 5, node_name="n1")]},
        [], pod("p", "2", 10), "n1", ["a"]),
    "reprieve: the higher-priority victim stays": (
        {"n1": [pod("a", "1", 1, node_name="n1"), pod("b", "1", 2, node_name="n1"),
                pod("c", "2", 3, node_name="n1")]},
        [], pod("p", "2", 10), "n1", ["a", "b"]),
    "equal/higher priority pods are never victims": (
        {"n1": [pod("a", "3", 10, node_name="n1"), pod("b", "1", 1, node_name="n1")],
         "n2": [pod("c", "3", 2, node_name="n2"), pod("d", "1", 20, node_name="n2")]},
        [], pod("p", "2", 10), "n2", ["c"]),
    "lowest top victim priority wins": (
        {"n1": [pod("a", "4", 5, node_name="n1")], "n2": [pod("b", "4", 3, node_name="n2")]},
        [], pod("p", "3", 10), "n2", ["b"]),
    "fewer victims on tie of priorities": (
        {"n1": [pod("a", "2", 3, node_name="n1"), pod("b", "2", 3, node_name="n1")],
         "n2": [pod("c", "4", 3, node_name="n2")]},
        [], pod("p", "4", 10), "n2", ["c"]),
    "smaller priority sum wins": (
        {"n1": [pod("a", "2", 3, node_name="n1"), pod("b", "2", 3, node_name="n1")],
         "n2": [pod("c", "2", 3, node_name="n2"), pod("d", "2", 1, node_name="n2")]},
        [], pod("p", "4", 10), "n2", ["c", "d"]),
    "latest start of top victims wins": (
        {"n1": [pod("a", "4", 3, node_name="n1", start="2024-01-01T00:00:00Z")],
         "n2": [pod("b", "4", 3, node_name="n2", start="2024-06-01T00:00:00Z")]},
        [], pod("p", "4", 10), "n2", ["b"]),
    "node without PDB violation preferred": (
        {"n1": [pod("a", "4", 1, node_name="n1", labels={"app": "db"})],
         "n2": [pod("b", "4", 5, node_name="n2", labels={"app": "web"})]},
        [pdb("db", {"app": "db"}, 0)], pod("p", "4", 10), "n2", ["b"]),
    "PDB with allowed disruptions is no violation": (
        {"n1": [pod("a", "4", 1, node_name="n1", labels={"app": "db"})],
         "n2": [pod("b", "4", 5, node_name="n2", labels={"app": "web"})]},
        [pdb("db", {"app": "db"}, 1)], pod("p", "4", 10), "n1", ["a"]),
    "PDB in another namespace does not protect": (
        {"n1": [pod("a", "4", 1, node_name="n1", labels={"app": "db"})],
         "n2": [pod("b", "4", 5, node_name="n2", labels={"app": "web"})]},
        [pdb("db", {"app": "db"}, 0, ns="other")], pod("p", "4", 10), "n1", ["a"]),
    "PDB-protected victim reprieved first": (
        {"n1": [pod("a", "2", 1, node_name="n1", labels={"app": "db"}),
                pod("b", "2", 1, node_name="n1", labels={"app": "web"})]},
        [pdb("db", {"app": "db"}, 0)], pod("p", "2", 10), "n1", ["b"]),
    "violating node chosen when it is the only candidate": (
        {"n1": [pod("a", "4", 1, node_name="n1", labels={"app": "db"})]},
        [pdb("db", {"app": "db"}, 0)], pod("p", "4", 10), "n1", ["a"]),
}


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
async def test_preemption_picks_node_and_victims(case):
    nodes, pdbs, incoming, want_node, want_victims = case
    fw, _, client, recorder = setup(nodes, pdbs)
    nominated, status, _ = await preempt(fw, incoming)
    assert status.is_success(), status
    assert nominated == want_node
    assert sorted(deleted(client)) == sorted(want_victims)
    assert sorted(e[0] for e in recorder.events) == sorted(want_victims)


async def test_eviction_calls_condition_delete_and_event():
    fw, handle, client, recorder = setup({"n1": [pod("a", "4", 1, node_name="n1")]})
    nominated, status, _ = await preempt(fw, pod("p", "4", 10))
    assert nominated == "n1" and status.code == Code.SUCCESS
    patch, delete = client.calls
    assert patch[:5] == ("patch", "a", "default", "strategic", "status")
    assert patch[5] == {"status": {"conditions": [{
        "type": "DisruptionTarget", "status": "True", "reason": "PreemptionByScheduler",
        "message": "default-scheduler: preempting to accommodate a higher priority pod"}]}}
    assert delete == ("delete", ("", "v1", "pods"), "a", "default", {})
    assert recorder.events == [("a", "Normal", "Preempted", "Preempted by pod uid-p on node n1")]
    # the snapshot is untouched by the what-ifs
    assert list(handle.snapshot.get("n1").pods) == ["default/a"]


async def test_victim_already_gone_is_fine():
    fw, _, client, _ = setup({"n1": [pod("a", "4", 1, node_name="n1")]}, missing=("a",))
    nominated, status, _ = await preempt(fw, pod("p", "4", 10))
    assert (nominated, status.is_success()) == ("n1", True)


async def test_preemption_policy_never():
    fw, _, client, _ = setup({"n1": [pod("a", "4", 1, node_name="n1")]})
    nominated, status, _ = await preempt(fw, pod("p", "4", 10, preemptionPolicy="Never"))
    assert nominated is None
    assert (status.code, status.message()) == (Code.UNSCHEDULABLE, "not eligible due to preemptionPolicy=Never.")
    assert client.calls == []


async def test_not_eligible_while_victim_terminates_on_nominated_node():
    victim = pod("a", "4", 1, node_name="n1")
    victim["metadata"]["deletionTimestamp"] = "2024-01-01T00:00:00Z"
    victim["status"]["conditions"] = [{"type": "DisruptionTarget", "status": "True",
                                       "reason": "PreemptionByScheduler"}]
    fw, _, client, _ = setup({"n1": [victim]})
    incoming = pod("p", "4", 10)
    incoming["status"]["nominatedNodeName"] = "n1"
    nominated, status, _ = await preempt(fw, incoming)
    assert nominated is None
    assert status.message() == "not eligible due to a terminating pod on the nominated node."
    assert client.calls == []
    # a pod being deleted for another reason does not block preemption
    victim["status"]["conditions"] = []
    fw, _, client, _ = setup({"n1": [victim]})
    nominated, status, _ = await preempt(fw, incoming)
    assert nominated == "n1"


async def test_no_victims_message():
    fw, _, client, _ = setup({f"n{i}": [pod(f"a{i}", "4", 10, node_name=f"n{i}")] for i in range(3)})
    nominated, status, _ = await preempt(fw, pod("p", "4", 10))
    assert nominated is None and status.code == Code.UNSCHEDULABLE
    assert status.message() == "0/3 nodes are available: 3 No preemption victims found for incoming pod."
    assert client.calls == []


async def test_mixed_message_with_unresolvable_and_still_too_big():
    fw, _, _, _ = setup({"n1": [pod("a", "4", 30, node_name="n1")], "n2": [pod("b", "1", 1, node_name="n2")],
                         "n3": []})
    incoming = pod("p", "8", 20)
    state = CycleState()
    nodes = fw.handle.snapshot.node_infos
    fw.run_pre_filter(state, incoming, nodes)
    statuses = {info.name: fw.run_filter(state, incoming, info) for info in nodes}
    statuses["n3"] = Status.unresolvable("node(s) had untolerated taint {k: v}")
    nominated, status = await fw.run_post_filter(state, incoming, statuses)
    assert nominated is None
    assert status.message() == ("0/3 nodes are available: 1 Insufficient cpu, 1 No preemption victims found "
                                "for incoming pod, 1 Preemption is not helpful for scheduling.")


async def test_all_unresolvable_is_not_helpful():
    fw, _, _, _ = setup({"n1": [pod("a", "4", 1, node_name="n1")]})
    state = CycleState()
    incoming = pod("p", "4", 10)
    fw.run_pre_filter(state, incoming, fw.handle.snapshot.node_infos)
    nominated, status = await fw.run_post_filter(state, incoming, {"n1": Status.unresolvable("x")})
    assert nominated is None
    assert status.message() == "0/1 nodes are available: 1 Preemption is not helpful for scheduling."


async def test_candidate_limit():
    nodes = {f"n{i}": [pod(f"a{i}", "4", 1, node_name=f"n{i}")] for i in range(5)}
    fw, _, _, _ = setup(nodes, args={"minCandidateNodesPercentage": 0, "minCandidateNodesAbsolute": 2})
    plugin = fw.plugins["DefaultPreemption"]
    assert plugin.candidate_count(5)[1] == 2
    state = CycleState()
    incoming = pod("p", "4", 10)
    infos = fw.handle.snapshot.node_infos
    fw.run_pre_filter(state, incoming, infos)
    statuses = {info.name: fw.run_filter(state, incoming, info) for info in infos}
    candidates, _ = plugin.find_candidates(state, incoming, infos, statuses)
    assert len(candidates) == 2
    assert DefaultPreemption.default_args() == {"minCandidateNodesPercentage": 10, "minCandidateNodesAbsolute": 100}
    default = DefaultPreemption()
    assert default.candidate_count(2000)[1] == 200
    assert default.candidate_count(50) == (0, 50)


def test_validate_args():
    assert DefaultPreemption.validate_args(DefaultPreemption.default_args()) == []
    assert DefaultPreemption.validate_args({"minCandidateNodesPercentage": 101, "minCandidateNodesAbsolute": 1}) \
        == ["minCandidateNodesPercentage is not in the range [0, 100]"]
    assert DefaultPreemption.validate_args({"minCandidateNodesPercentage": 0, "minCandidateNodesAbsolute": 0}) \
        == ["both minCandidateNodesPercentage and minCandidateNodesAbsolute cannot be zero"]


def test_pdb_split_counts_disruptions_and_skips_disrupted():
    pods = [pod(n, "1", 1, labels={"app": "db"}) for n in ("a", "b", "c")]
    budget = pdb("db", {"app": "db"}, 1)
    violating, clean = split_by_pdb_violation(pods, [budget])
    assert [p["metadata"]["name"] for p in clean] == ["a"]
    assert [p["metadata"]["name"] for p in violating] == ["b", "c"]
    budget["status"]["disruptedPods"] = {"a": "2024-01-01T00:00:00Z"}
    violating, clean = split_by_pdb_violation(pods, [budget])
    assert [p["metadata"]["name"] for p in clean] == ["a", "b"]
    empty = {**budget, "spec": {"selector": {}}}
    assert split_by_pdb_violation(pods, [empty]) == ([], pods)


async def test_waiting_victim_is_rejected_not_deleted():
    import asyncio

    fw, handle, client, recorder = setup({"n1": [pod("a", "4", 1, node_name="n1")]})
    waiter = asyncio.get_running_loop().create_future()
    handle.waiting_pods["uid-a"] = waiter
    nominated, status, _ = await preempt(fw, pod("p", "4", 10))
    assert nominated == "n1" and status.is_success()
    assert deleted(client) == []
    assert recorder.events == [("a", "Normal", "Preempted", "Preempted by pod uid-p on node n1")]
    verdict = waiter.result()
    assert (verdict.code, verdict.reasons, verdict.plugin) == (Code.UNSCHEDULABLE, ("preempted",),
                                                               "DefaultPreemption")


async def test_lower_priority_nominations_on_the_chosen_node_are_cleared() -> None:
    fw, handle, client, _ = setup({"n1": [pod("a", "4", 1, node_name="n1")]})
    waiting_low = pod("low", "1", 5)
    waiting_high = pod("high", "1", 50)
    handle.nominated_pods = lambda node_name: [waiting_low, waiting_high] if node_name == "n1" else []
    nominated, status, _ = await preempt(fw, pod("p", "3", 10))
    assert (nominated, status.is_success()) == ("n1", True)
    clears = [c for c in client.calls if c[0] == "patch" and c[5] == {"status": {"nominatedNodeName": None}}]
    assert [(c[1], c[4]) for c in clears] == [("low", "status")]  # not the higher-priority one
