"""The pure planning and status of a pod (pod_actions.py, pod_status.py, backoff.py, envvars.py,
container_config.py): what to start, kill or wait for, and the phase and conditions upstream
would report, for the cases the integration tests do not reach cheaply."""

from __future__ import annotations

from pybernetes.kubelet import container_config as cc
from pybernetes.kubelet.backoff import Backoff
from pybernetes.kubelet.envvars import expand, service_env
from pybernetes.kubelet.pod_actions import compute_pod_actions, pod_is_done
from pybernetes.kubelet.pod_status import pod_status
from pybernetes.kubelet.runtime.protocol import (
    ContainerConfig,
    ContainerState,
    ContainerStatus,
    DNSConfig,
    PodSandboxConfig,
    PodSandboxStatus,
    SandboxState,
)

NOW = "2026-11-26T00:00:00Z"


class Clock:
    def __init__(self, t: float = 1000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def make_pod(containers, init=(), policy="Always", **spec) -> dict:
    return {"metadata": {"name": "p", "namespace": "ns", "uid": "u1"},
            "spec": {"restartPolicy": policy, "containers": [dict(c) for c in containers],
                     "initContainers": [dict(c) for c in init], **spec}, "status": {}}


def sandbox(state=SandboxState.READY, attempt=0) -> PodSandboxStatus:
    return PodSandboxStatus("sb", PodSandboxConfig(name="p", namespace="ns", uid="u1", attempt=attempt), state, 1,
                            "10.0.0.5")


def instance(name, state, *, exit_code=0, attempt=0, finished=0.0, spec=None) -> ContainerStatus:
    annotations = {cc.CONTAINER_HASH: cc.container_hash(spec)} if spec is not None else {}
    return ContainerStatus(f"{name}-{attempt}", "sb", ContainerConfig(name=name, image="i", attempt=attempt,
                                                                      annotations=annotations),
                           state, 1, started_at=1, finished_at=int(finished * 1e9), exit_code=exit_code,
                           reason="Completed" if exit_code == 0 else "Error")


def plan(pod, sb, history, backoff=None, liveness=None, started=True):
    return compute_pod_actions(pod, sb, history, backoff=backoff or Backoff(clock=Clock()),
                               liveness_failed=lambda n: (liveness or {}).get(n),
                               started=lambda n: started)


MAIN = {"name": "main", "image": "i"}


def test_a_new_pod_gets_a_sandbox_and_its_first_init_container_only() -> None:
    pod = make_pod([MAIN], init=[{"name": "a", "image": "i"}, {"name": "b", "image": "i"}])
    actions = plan(pod, None, {})
    assert actions.create_sandbox and not actions.kill_all
    assert [s.container["name"] for s in actions.start] == ["a"]


def test_init_containers_run_in_order_then_the_containers() -> None:
    pod = make_pod([MAIN], init=[{"name": "a", "image": "i"}, {"name": "b", "image": "i"}])
    running_a = plan(pod, sandbox(), {"a": [instance("a", ContainerState.RUNNING)]})
    assert running_a.start == []
    after_a = plan(pod, sandbox(), {"a": [instance("a", ContainerState.EXITED)]})
    assert [s.container["name"] for s in after_a.start] == ["b"]
    after_b = plan(pod, sandbox(), {"a": [instance("a", ContainerState.EXITED)],
                                    "b": [instance("b", ContainerState.EXITED)]})
    assert [s.container["name"] for s in after_b.start] == ["main"]


def test_a_failed_init_container_fails_a_never_pod_and_restarts_otherwise() -> None:
    failed = {"a": [instance("a", ContainerState.EXITED, exit_code=1)]}
    never = plan(make_pod([MAIN], init=[{"name": "a", "image": "i"}], policy="Never"), sandbox(), failed)
    assert never.init_failed == "a" and never.start == []
    always = plan(make_pod([MAIN], init=[{"name": "a", "image": "i"}]), sandbox(), failed)
    assert [(s.container["name"], s.restart_count) for s in always.start] == [("a", 1)]


def test_a_sidecar_must_have_started_before_the_next_init_container() -> None:
    sidecar = {"name": "side", "image": "i", "restartPolicy": "Always"}
    pod = make_pod([MAIN], init=[sidecar, {"name": "b", "image": "i"}])
    history = {"side": [instance("side", ContainerState.RUNNING)]}
    assert plan(pod, sandbox(), history, started=False).start == []
    assert [s.container["name"] for s in plan(pod, sandbox(), history, started=True).start] == ["b"]


def test_crash_loop_back_off_doubles_and_caps() -> None:
    clock = Clock(1000.0)
    backoff = Backoff(initial=10, cap=40, clock=clock)
    pod = make_pod([MAIN])
    exited = {"main": [instance("main", ContainerState.EXITED, exit_code=2, finished=1000.0)]}
    first = plan(pod, sandbox(), exited, backoff)
    assert [s.restart_count for s in first.start] == [1]  # the first restart is at once
    backoff.next(("u1", "main"))
    second = plan(pod, sandbox(), exited, backoff)
    assert second.start == [] and second.waiting["main"][0] == "CrashLoopBackOff"
    assert "back-off 10s restarting failed container=main pod=p_ns(u1)" == second.waiting["main"][1]
    assert [backoff.next(("u1", "main")) for _ in range(3)] == [20, 40, 40]
    clock.t += 10_000  # long after the last failure: forgotten
    assert backoff.next(("u1", "main")) == 10


def test_restart_policies() -> None:
    ok = {"main": [instance("main", ContainerState.EXITED, exit_code=0)]}
    bad = {"main": [instance("main", ContainerState.EXITED, exit_code=1)]}
    assert plan(make_pod([MAIN], policy="OnFailure"), sandbox(), ok).start == []
    assert len(plan(make_pod([MAIN], policy="OnFailure"), sandbox(), bad).start) == 1
    assert plan(make_pod([MAIN], policy="Never"), sandbox(), bad).start == []
    assert pod_is_done(make_pod([MAIN], policy="Never"), bad)
    assert not pod_is_done(make_pod([MAIN], policy="OnFailure"), bad)
    assert not pod_is_done(make_pod([MAIN]), ok)


def test_liveness_failures_and_spec_changes_kill_and_restart() -> None:
    pod = make_pod([MAIN])
    running = {"main": [instance("main", ContainerState.RUNNING, spec=MAIN)]}
    sick = plan(pod, sandbox(), running, liveness={"main": "Container main failed liveness probe"})
    assert sick.kill == {"main-0": "Container main failed liveness probe, will be restarted"}
    assert [s.restart_count for s in sick.start] == [1]
    changed = plan(make_pod([{"name": "main", "image": "j"}]), sandbox(), running)
    assert "definition changed" in changed.kill["main-0"]
    assert plan(pod, sandbox(), running).kill == {}


def test_a_dead_sandbox_is_replaced_and_its_containers_killed() -> None:
    pod = make_pod([MAIN])
    actions = plan(pod, sandbox(SandboxState.NOTREADY, attempt=2), {"main": [instance("main", ContainerState.RUNNING)]})
    assert actions.create_sandbox and actions.kill_all and actions.sandbox_attempt == 3


def status_of(pod, history, waiting=None, ready=True, started=True, terminating=False, sb=None):
    return pod_status(pod, sandbox=sb or sandbox(), history=history, waiting=waiting or {},
                      ready=lambda n: ready, started=lambda n: started, runtime_name="runc", node_ip="192.0.2.1",
                      now=NOW, terminating=terminating)


def test_phases() -> None:
    pod = make_pod([MAIN])
    assert status_of(pod, {})["phase"] == "Pending"
    assert status_of(pod, {"main": [instance("main", ContainerState.RUNNING)]})["phase"] == "Running"
    done = {"main": [instance("main", ContainerState.EXITED, exit_code=0)]}
    failed = {"main": [instance("main", ContainerState.EXITED, exit_code=1)]}
    assert status_of(make_pod([MAIN], policy="Never"), done)["phase"] == "Succeeded"
    assert status_of(make_pod([MAIN], policy="Never"), failed)["phase"] == "Failed"
    assert status_of(make_pod([MAIN], policy="OnFailure"), failed)["phase"] == "Running"
    crash = status_of(pod, failed, waiting={"main": ("CrashLoopBackOff", "back-off")})
    assert crash["phase"] == "Running"
    entry = crash["containerStatuses"][0]
    assert entry["state"] == {"waiting": {"reason": "CrashLoopBackOff", "message": "back-off"}}
    assert entry["lastState"]["terminated"]["exitCode"] == 1
    assert status_of(pod, failed, terminating=True)["phase"] == "Failed"  # a deleted pod's end


def test_a_terminal_phase_never_goes_back() -> None:
    pod = make_pod([MAIN], policy="Never")
    pod["status"] = {"phase": "Succeeded"}
    assert status_of(pod, {"main": [instance("main", ContainerState.RUNNING)]})["phase"] == "Succeeded"


def test_conditions_keep_their_transition_time_and_name_the_unready() -> None:
    pod = make_pod([MAIN, {"name": "other", "image": "i"}])
    history = {"main": [instance("main", ContainerState.RUNNING)]}
    first = status_of(pod, history, ready=False)
    by_type = {c["type"]: c for c in first["conditions"]}
    assert by_type["Ready"]["status"] == "False" and by_type["Ready"]["reason"] == "ContainersNotReady"
    assert by_type["Ready"]["message"] == "containers with unready status: [main other]"
    assert by_type["PodReadyToStartContainers"]["status"] == "True"
    pod["status"] = dict(first)
    later = pod_status(pod, sandbox=sandbox(), history=history, waiting={}, ready=lambda n: False,
                       started=lambda n: True, runtime_name="runc", node_ip="192.0.2.1", now="2026-11-26T01:00:00Z")
    assert {c["type"]: c["lastTransitionTime"] for c in later["conditions"]} == \
        {c["type"]: c["lastTransitionTime"] for c in first["conditions"]}
    assert first["podIP"] == "10.0.0.5" and first["hostIP"] == "192.0.2.1"
    assert first["containerStatuses"][0]["containerID"] == "runc://main-0"


def test_initializing_pods_report_pod_initializing() -> None:
    pod = make_pod([MAIN], init=[{"name": "a", "image": "i"}])
    status = status_of(pod, {"a": [instance("a", ContainerState.RUNNING)]})
    assert status["phase"] == "Pending"
    assert status["containerStatuses"][0]["state"]["waiting"]["reason"] == "PodInitializing"
    init = {c["type"]: c for c in status["conditions"]}["Initialized"]
    assert init["status"] == "False" and init["message"] == "containers with incomplete status: [a]"


def test_service_variables_and_expansion() -> None:
    services = [{"metadata": {"name": "web-api", "namespace": "ns"},
                 "spec": {"clusterIP": "10.43.0.9", "ports": [{"name": "http", "port": 80, "protocol": "TCP"}]}},
                {"metadata": {"name": "headless", "namespace": "ns"}, "spec": {"clusterIP": "None"}},
                {"metadata": {"name": "kubernetes", "namespace": "default"},
                 "spec": {"clusterIP": "10.43.0.1", "ports": [{"name": "https", "port": 443}]}},
                {"metadata": {"name": "elsewhere", "namespace": "other"}, "spec": {"clusterIP": "10.43.0.7"}}]
    env = service_env(services, "ns")
    assert env["WEB_API_SERVICE_HOST"] == "10.43.0.9" and env["WEB_API_SERVICE_PORT_HTTP"] == "80"
    assert env["WEB_API_PORT"] == "tcp://10.43.0.9:80" and env["WEB_API_PORT_80_TCP_ADDR"] == "10.43.0.9"
    assert env["KUBERNETES_SERVICE_HOST"] == "10.43.0.1"
    assert not any(k.startswith(("HEADLESS", "ELSEWHERE")) for k in env)
    assert set(service_env(services, "ns", enable_service_links=False)) == {
        k for k in env if k.startswith("KUBERNETES")}
    assert expand("$(A)-$(B)-$$(A)-$(", {"A": "1"}) == "1-$(B)-$(A)-$("
    missing: set[str] = set()
    assert expand("x/$(A)/$(B)", {"A": "1"}, missing) == "x/1/" and missing == {"B"}


def test_container_resources_and_dns() -> None:
    container = {"name": "c", "resources": {"requests": {"cpu": "250m"}, "limits": {"cpu": "500m", "memory": "64Mi"}}}
    res = cc.resources(container)
    assert (res.cpu_shares, res.cpu_quota, res.cpu_period, res.memory_limit) == (256, 50_000, 100_000, 64 << 20)
    assert cc.resources({"name": "c"}).cpu_shares == 2
    host = DNSConfig(["192.0.2.53"], ["corp.example"], ["edns0"])
    pod = make_pod([container], dnsConfig={"options": [{"name": "ndots", "value": "2"}]})
    cluster = cc.dns_config(pod, host, ["10.43.0.10"])
    assert cluster.servers == ["10.43.0.10"]
    assert cluster.searches[:3] == ["ns.svc.cluster.local", "svc.cluster.local", "cluster.local"]
    assert cluster.options == ["ndots:2"]
    assert cc.dns_config(pod, host, []).servers == ["192.0.2.53"]  # no cluster DNS yet: the node's
    none = cc.dns_config(make_pod([container], dnsPolicy="None", dnsConfig={"nameservers": ["1.1.1.1"]}), host, [])
    assert none.servers == ["1.1.1.1"] and none.searches == []


def test_a_pod_with_a_subdomain_knows_its_fully_qualified_name_and_host_aliases() -> None:
    pod = make_pod([{"name": "c"}], hostname="web-0", subdomain="web",
                   hostAliases=[{"ip": "10.9.9.9", "hostnames": ["a.local", "b.local"]}])
    config = cc.sandbox_config(pod, attempt=0, logs_root="/logs", dns=None, cluster_domain="example.org")
    assert config.hostname == "web-0"
    assert config.hostname_fqdn == "web-0.web.ns.svc.example.org"
    assert config.host_aliases == [("10.9.9.9", ["a.local", "b.local"])]
    assert cc.sandbox_config(make_pod([{"name": "c"}]), attempt=0, logs_root="/l", dns=None).hostname_fqdn == ""
