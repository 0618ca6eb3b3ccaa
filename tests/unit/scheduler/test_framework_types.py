"""The framework's shared types: statuses, cycle state cloning, NodeInfo bookkeeping."""

from __future__ import annotations

from pybernetes.scheduler.framework import Code, CycleState, Status
from pybernetes.scheduler.handle import Handle, Snapshot
from pybernetes.scheduler.nodeinfo import node_info_of, pod_entry, pod_key
from pybernetes.scheduler.resources import non_zero_requests, pod_requests

NODE = {"metadata": {"name": "n1", "labels": {"zone": "a"}},
        "status": {"allocatable": {"cpu": "4", "memory": "8Gi", "pods": "110"},
                   "images": [{"names": ["docker.io/library/nginx:1.27", "nginx:1.27"], "sizeBytes": 1000}]}}


def _pod(name: str, cpu: str | None = None, host_port: int | None = None, **spec) -> dict:
    container: dict = {"name": "c", "image": "nginx"}
    if cpu:
        container["resources"] = {"requests": {"cpu": cpu, "memory": "1Gi"}}
    if host_port:
        container["ports"] = [{"containerPort": 80, "hostPort": host_port}]
    return {"metadata": {"name": name, "namespace": "ns"}, "spec": {"containers": [container], **spec}}


def test_status_kinds() -> None:
    assert Status().is_success()
    s = Status.unschedulable("Insufficient cpu", plugin="NodeResourcesFit")
    assert s.is_rejected() and s.code == Code.UNSCHEDULABLE and s.message() == "Insufficient cpu"
    assert Status.unresolvable("x").code == Code.UNSCHEDULABLE_AND_UNRESOLVABLE
    assert not Status.error("boom").is_rejected()
    assert Status.skip().is_skip()


def test_cycle_state_clone_copies_values_that_can_clone() -> None:
    class Counts:
        def __init__(self, n: int) -> None:
            self.n = n

        def clone(self) -> Counts:
            return Counts(self.n)

    state = CycleState()
    state.write("counts", Counts(1))
    state.write("plain", [1])
    copy = state.clone()
    copy.read("counts").n = 5
    assert state.read("counts").n == 1
    assert copy.read("plain") is state.read("plain")
    assert state.get("missing", 7) == 7


def test_requests_count_init_containers_sidecars_and_overhead() -> None:
    pod = _pod("p", cpu="500m", overhead={"cpu": "100m"},
               initContainers=[{"name": "init", "resources": {"requests": {"cpu": "2"}}},
                               {"name": "side", "restartPolicy": "Always", "resources": {"requests": {"cpu": "250m"}}}])
    # containers 500m + sidecar 250m = 750m; the init peak is 2000m (before the sidecar starts)
    assert pod_requests(pod)["cpu"] == 2000 + 100
    assert non_zero_requests(_pod("empty")) == (100, 200 * 1024 * 1024)


def test_node_info_adds_and_removes_pods() -> None:
    info = node_info_of(NODE, [_pod("a", cpu="1", host_port=8080)])
    assert info.allocatable == {"cpu": 4000, "memory": 8 * 1024**3, "pods": 110}
    assert info.requested == {"cpu": 1000, "memory": 1024**3, "pods": 1}
    assert info.used_ports == {("0.0.0.0", "TCP", 8080): 1}
    assert info.images["nginx:1.27"] == 1000
    generation = info.generation
    clone = info.clone()
    info.add_entry(pod_key(_pod("b", cpu="500m")), pod_entry(_pod("b", cpu="500m")))
    assert info.requested["cpu"] == 1500 and info.generation > generation
    assert clone.requested["cpu"] == 1000
    info.remove("ns/a")
    assert info.requested == {"cpu": 500, "memory": 1024**3, "pods": 1} and not info.used_ports


def test_handle_lists_and_namespace_labels() -> None:
    handle = Handle(Snapshot([node_info_of(NODE)]), objects={
        "v1/namespaces": [{"metadata": {"name": "team", "labels": {"env": "prod"}}}],
        "v1/services": [{"metadata": {"name": "s", "namespace": "team"}}, {"metadata": {"name": "t", "namespace": "x"}}]})
    assert handle.snapshot.get("n1").name == "n1"
    assert [s["metadata"]["name"] for s in handle.list("v1/services", "team")] == ["s"]
    assert handle.namespace_labels("team") == {"env": "prod"}
    assert handle.namespace_labels("gone") is None
