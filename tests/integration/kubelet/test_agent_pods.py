"""The node agent runs the pods bound to it (simulated and process runtimes, against a real API
server): status with phases, conditions and container states, restarts with CrashLoopBackOff,
init containers in order, graceful deletion ending with the pod object deleted, environment
from ConfigMaps/Secrets/the downward API, CreateContainerConfigError and ErrImagePull, and a
restarted agent adopting running containers."""

from __future__ import annotations

import functools
import sys
from pathlib import Path

import pytest

from pybernetes.client.errors import NotFound
from pybernetes.client.kubeconfig import Config
from pybernetes.client.rest import RestClient
from pybernetes.kubelet import pod_sync
from pybernetes.kubelet.agent import NodeAgent
from pybernetes.kubelet.backoff import Backoff
from pybernetes.kubelet.runtime.process import ProcessRuntime
from pybernetes.kubelet.runtime.simulated import EXIT_AFTER, EXIT_CODE, SimulatedRuntime

PODS = ("", "v1", "pods")
NODE = "node-a"
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "support"))
import async_poll  # noqa: E402

poll = functools.partial(async_poll.poll, within=15.0, interval=0.05)


def read_text(path: str) -> str:
    file = Path(path)
    return file.read_text() if file.exists() else ""


def pod(name: str, containers: list[dict], **spec) -> dict:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": "default"},
            "spec": {"nodeName": NODE, "containers": containers, **spec}}


async def status_of(client, name):
    try:
        return (await client.get(PODS, name, "default")).get("status") or {}
    except NotFound:
        return None


@pytest.fixture
async def client(api_server):
    async with RestClient(Config(servers=[api_server.url])) as c:
        yield c


@pytest.fixture
async def sim_agent(client, tmp_path):
    runtime = SimulatedRuntime()
    agent = NodeAgent(client, NODE, runtime, str(tmp_path), relist_period=0.05)
    agent.syncer.restart_backoff = Backoff(initial=0.3, cap=1.2)
    await agent.start()
    yield agent
    await agent.stop()


def container_state(status, name):
    entry = next(s for s in status.get("containerStatuses") or [] if s["name"] == name)
    return entry


async def test_a_pod_runs_and_reports_its_status(client, sim_agent) -> None:
    await client.create(PODS, pod("web", [{"name": "main", "image": "busybox:1"}, {"name": "side", "image": "busybox:1"}]),
                        "default")

    async def running():
        status = await status_of(client, "web")
        return status if status and status.get("phase") == "Running" and \
            all(s["ready"] for s in status.get("containerStatuses") or [{"ready": False}]) else None

    status = await poll(running, what="Running")
    conditions = {c["type"]: c["status"] for c in status["conditions"]}
    assert conditions == {"PodReadyToStartContainers": "True", "Initialized": "True", "Ready": "True",
                          "ContainersReady": "True"}  # no PodScheduled: no scheduler placed it
    main = container_state(status, "main")
    assert "running" in main["state"] and main["restartCount"] == 0 and main["started"] is True
    assert main["containerID"].startswith("simulated://") and main["imageID"].startswith("sha256:")
    assert status["podIP"].startswith("10.244.") and status["hostIP"] and status["startTime"]


async def test_a_crashing_container_restarts_with_back_off(client, sim_agent) -> None:
    crash = {"name": "crash", "image": "busybox:1", "env": [{"name": "X", "value": "1"}]}
    manifest = pod("crasher", [crash])
    manifest["metadata"]["annotations"] = {EXIT_AFTER: "0.05", EXIT_CODE: "3"}
    await client.create(PODS, manifest, "default")

    async def looping():
        status = await status_of(client, "crasher")
        if not status or not status.get("containerStatuses"):
            return None
        entry = container_state(status, "crash")
        waiting = entry["state"].get("waiting") or {}
        return entry if waiting.get("reason") == "CrashLoopBackOff" and entry["restartCount"] >= 2 else None

    entry = await poll(looping, what="CrashLoopBackOff")
    assert entry["lastState"]["terminated"]["exitCode"] == 3
    assert entry["lastState"]["terminated"]["reason"] == "Error"
    assert "back-off" in entry["state"]["waiting"]["message"]
    status = await status_of(client, "crasher")
    assert status["phase"] == "Running"
    ready = next(c for c in status["conditions"] if c["type"] == "Ready")
    assert ready["status"] == "False" and ready["reason"] == "ContainersNotReady"


async def test_init_containers_run_in_order_before_the_containers(client, sim_agent) -> None:
    manifest = pod("init", [{"name": "main", "image": "busybox:1"}],
                   initContainers=[{"name": "first", "image": "busybox:1"}, {"name": "second", "image": "busybox:1"}])
    manifest["metadata"]["annotations"] = {f"{EXIT_AFTER}.first": "0.2", f"{EXIT_AFTER}.second": "0.2"}
    await client.create(PODS, manifest, "default")

    async def initializing():
        status = await status_of(client, "init")
        return status if status and status.get("initContainerStatuses") else None

    status = await poll(initializing, what="init container statuses")
    assert status["phase"] == "Pending"
    init = {c["type"]: c for c in status["conditions"]}["Initialized"]
    assert init["status"] == "False" and init["reason"] == "ContainersNotInitialized"
    assert container_state(status, "main")["state"]["waiting"]["reason"] == "PodInitializing"

    async def running():
        status = await status_of(client, "init")
        return status if status and status.get("phase") == "Running" else None

    status = await poll(running, what="Running")
    first, second = status["initContainerStatuses"]
    assert first["state"]["terminated"]["reason"] == "Completed"
    assert second["state"]["terminated"]["reason"] == "Completed"
    assert first["state"]["terminated"]["finishedAt"] <= second["state"]["terminated"]["startedAt"]
    runtime = sim_agent.runtime
    started = {c.config.name: c.started_at for c in await runtime.list_containers()}
    assert started["first"] < started["second"] < started["main"]


async def test_restart_policy_never_ends_the_pod(client, sim_agent) -> None:
    manifest = pod("job", [{"name": "a", "image": "busybox:1"}, {"name": "b", "image": "busybox:1"}],
                   restartPolicy="Never")
    manifest["metadata"]["annotations"] = {EXIT_AFTER: "0.05", f"{EXIT_CODE}.b": "1"}
    await client.create(PODS, manifest, "default")

    async def done():
        status = await status_of(client, "job")
        return status if status and status.get("phase") in ("Succeeded", "Failed") else None

    status = await poll(done, what="a terminal phase")
    assert status["phase"] == "Failed"
    assert container_state(status, "a")["state"]["terminated"]["exitCode"] == 0
    assert container_state(status, "b")["state"]["terminated"]["exitCode"] == 1
    ready = {c["type"]: c for c in status["conditions"]}["Ready"]
    assert ready["status"] == "False" and ready["reason"] == "PodCompleted"
    # the sandbox is stopped, nothing restarts
    sandboxes = await sim_agent.runtime.list_pod_sandboxes()
    assert all(s.state.value == "SANDBOX_NOTREADY" for s in sandboxes if s.config.name == "job")


async def test_graceful_deletion_stops_the_containers_then_deletes_the_pod(client, sim_agent) -> None:
    await client.create(PODS, pod("doomed", [{"name": "main", "image": "busybox:1"}], terminationGracePeriodSeconds=5),
                        "default")

    async def running():
        status = await status_of(client, "doomed")
        return status and status.get("phase") == "Running"

    await poll(running, what="Running")
    deleted = await client.delete(PODS, "doomed", "default")
    assert deleted["metadata"]["deletionTimestamp"]  # graceful: the kubelet finishes it

    async def gone():
        return await status_of(client, "doomed") is None

    await poll(gone, what="the pod object deleted by the kubelet")

    async def cleaned():
        return not [s for s in await sim_agent.runtime.list_pod_sandboxes() if s.config.name == "doomed"]

    await poll(cleaned, what="sandbox removed")
    assert not [c for c in await sim_agent.runtime.list_containers() if c.config.labels.get(
        "io.kubernetes.pod.name") == "doomed"]


async def test_environment_from_configmaps_secrets_and_the_downward_api(client, tmp_path) -> None:
    runtime = SimulatedRuntime()
    agent = NodeAgent(client, NODE, runtime, str(tmp_path), relist_period=0.05)
    await agent.start()
    try:
        await client.create(("", "v1", "configmaps"), {"metadata": {"name": "cfg"}, "data": {"MODE": "fast",
                                                                                        "LEVEL": "3"}}, "default")
        await client.create(("", "v1", "secrets"), {"metadata": {"name": "creds"}, "data": {"token": "czNjcjN0"}},
                            "default")
        env = [{"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "creds", "key": "token"}}},
               {"name": "POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
               {"name": "MEM", "valueFrom": {"resourceFieldRef": {"resource": "limits.memory", "divisor": "1Mi"}}},
               {"name": "GREETING", "value": "mode=$(MODE) pod=$(POD) $$(MODE)"}]
        container = {"name": "main", "image": "busybox:1", "env": env, "envFrom": [{"configMapRef": {"name": "cfg"}}],
                     "resources": {"limits": {"memory": "64Mi"}}}
        await client.create(PODS, pod("envy", [container]), "default")

        async def started():
            return [c for c in await runtime.list_containers() if c.config.name == "main"
                    and c.config.labels.get("io.kubernetes.pod.name") == "envy"]

        (found,) = await poll(started, what="the container")
        values = dict(found.config.env)
        assert values["MODE"] == "fast" and values["LEVEL"] == "3" and values["TOKEN"] == "s3cr3t"
        assert values["POD"] == "envy" and values["MEM"] == "64"
        assert values["GREETING"] == "mode=fast pod=envy $(MODE)"
        assert found.config.resources.memory_limit == 64 << 20
    finally:
        await agent.stop()


async def test_a_missing_configmap_is_a_create_container_config_error(client, sim_agent) -> None:
    container = {"name": "main", "image": "busybox:1",
                 "env": [{"name": "X", "valueFrom": {"configMapKeyRef": {"name": "absent", "key": "k"}}}]}
    await client.create(PODS, pod("broken", [container]), "default")

    async def waiting():
        status = await status_of(client, "broken")
        if not status or not status.get("containerStatuses"):
            return None
        state = container_state(status, "main")["state"].get("waiting") or {}
        return state if state.get("reason") == "CreateContainerConfigError" else None

    state = await poll(waiting, what="CreateContainerConfigError")
    assert state["message"] == 'configmap "absent" not found'
    await client.create(("", "v1", "configmaps"), {"metadata": {"name": "absent"}, "data": {"k": "v"}}, "default")

    async def running():
        status = await status_of(client, "broken")
        return status and status.get("phase") == "Running"

    await poll(running, what="Running once the ConfigMap exists")


async def test_an_image_that_cannot_be_pulled_backs_off(client, tmp_path) -> None:
    runtime = SimulatedRuntime(images={"busybox:1"})
    agent = NodeAgent(client, NODE, runtime, str(tmp_path), relist_period=0.05)
    agent.syncer.pull_backoff = Backoff(initial=0.5, cap=2)
    await agent.start()
    try:
        await client.create(PODS, pod("nopull", [{"name": "main", "image": "nosuch/image:1"},
                                                  {"name": "ok", "image": "busybox:1"}]), "default")
        reasons = set()

        async def backing_off():
            status = await status_of(client, "nopull")
            if status and status.get("containerStatuses"):
                entry = container_state(status, "main")
                waiting = entry["state"].get("waiting") or {}
                reasons.add(waiting.get("reason"))
                if waiting.get("reason") in ("ErrImagePull", "ImagePullBackOff"):
                    assert "nosuch/image:1" in waiting["message"]
            return {"ErrImagePull", "ImagePullBackOff"} <= reasons

        await poll(backing_off, what="ErrImagePull then ImagePullBackOff")
        status = await status_of(client, "nopull")
        assert status["phase"] == "Pending"
        assert "running" in container_state(status, "ok")["state"]  # the other container is not affected
    finally:
        await agent.stop()


async def test_a_restarted_agent_adopts_running_containers(client, tmp_path) -> None:
    runtime = SimulatedRuntime()
    agent = NodeAgent(client, NODE, runtime, str(tmp_path), relist_period=0.05)
    await agent.start()
    await client.create(PODS, pod("kept", [{"name": "main", "image": "busybox:1"}]), "default")
    await client.create(PODS, pod("dropped", [{"name": "main", "image": "busybox:1"}]), "default")

    async def both_running():
        statuses = [await status_of(client, n) for n in ("kept", "dropped")]
        return all(s and s.get("phase") == "Running" for s in statuses)

    await poll(both_running, what="both pods Running")
    before = {c.id for c in await runtime.list_containers() if c.config.labels.get("io.kubernetes.pod.name") == "kept"}
    await agent.stop()  # the kubelet goes down; the runtime keeps the containers
    await client.delete(PODS, "dropped", "default", grace_period_seconds=0)
    agent = NodeAgent(client, NODE, runtime, str(tmp_path), relist_period=0.05)
    await agent.start()
    try:
        assert not [s for s in await runtime.list_pod_sandboxes() if s.config.name == "dropped"]
        for _ in range(3):
            await agent.workers.relist()
        after = {c.id for c in await runtime.list_containers() if c.config.labels.get("io.kubernetes.pod.name") == "kept"}
        assert after == before  # no duplicates, no restarts
        status = await status_of(client, "kept")
        assert container_state(status, "main")["restartCount"] == 0 and status["phase"] == "Running"
    finally:
        await agent.stop()


async def test_containers_run_as_host_processes_with_the_process_runtime(client, tmp_path) -> None:
    runtime = ProcessRuntime(tmp_path / "rt", images={"host/shell:1"})
    agent = NodeAgent(client, NODE, runtime, str(tmp_path), relist_period=0.05)
    await agent.start()
    try:
        container = {"name": "main", "image": "host/shell:1", "command": ["sh", "-c", "echo hello from $POD; sleep 30"],
                     "env": [{"name": "POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}]}
        await client.create(PODS, pod("proc", [container]), "default")

        async def running():
            status = await status_of(client, "proc")
            return status if status and status.get("phase") == "Running" else None

        status = await poll(running, what="Running")
        assert status["podIP"].startswith("127.0.")
        (found,) = [c for c in await runtime.list_containers() if c.config.name == "main"]

        async def logged():
            return "hello from proc" in read_text(found.log_path)

        await poll(logged, what="the container's log line")
        assert found.log_path.endswith("/main/0.log") and "default_proc_" in found.log_path
        await client.delete(PODS, "proc", "default", grace_period_seconds=1)

        async def gone():
            return await status_of(client, "proc") is None

        await poll(gone, what="the pod deleted")
    finally:
        await agent.stop()
        for sandbox in await runtime.list_pod_sandboxes():
            await runtime.remove_pod_sandbox(sandbox.id)


def test_pull_policy_defaults() -> None:
    assert pod_sync.pull_policy({"image": "busybox"}) == "Always"
    assert pod_sync.pull_policy({"image": "busybox:latest"}) == "Always"
    assert pod_sync.pull_policy({"image": "busybox:1.36"}) == "IfNotPresent"
    assert pod_sync.pull_policy({"image": "reg:5000/busybox"}) == "Always"
    assert pod_sync.pull_policy({"image": "busybox@sha256:" + "a" * 64}) == "IfNotPresent"
    assert pod_sync.pull_policy({"image": "busybox", "imagePullPolicy": "Never"}) == "Never"


async def test_a_claim_is_in_use_while_a_pod_of_the_node_that_has_not_finished_mounts_it(client, tmp_path) -> None:
    agent = NodeAgent(client, NODE, SimulatedRuntime(), str(tmp_path))
    using = pod("user", [{"name": "c", "image": "i"}],
                volumes=[{"name": "d", "persistentVolumeClaim": {"claimName": "data"}},
                         {"name": "scratch", "ephemeral": {"volumeClaimTemplate": {"spec": {}}}}])
    using["metadata"]["uid"] = "u1"
    agent.pods.indexer.update(using)
    assert agent._claim_in_use("default", "data")
    assert agent._claim_in_use("default", "user-scratch")  # a generic ephemeral volume's claim
    assert not agent._claim_in_use("other", "data") and not agent._claim_in_use("default", "else")
    finished = {**using, "status": {"phase": "Succeeded"}}
    agent.pods.indexer.update(finished)
    assert not agent._claim_in_use("default", "data")
