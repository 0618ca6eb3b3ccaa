"""The node agent evicts pods over their local storage limits (kubelet/eviction.py) against a
real API server: an emptyDir past its sizeLimit (simulated runtime) and a container whose logs
pass its ephemeral-storage limit (process runtime) end Failed / Evicted (no DisruptionTarget
condition, as upstream) with a Warning event, killed at once whatever their grace period,
never started again, while a neighbour keeps running; and the walk that measures a volume
does not cross into another mount."""

from __future__ import annotations

import functools
import os
import sys
from pathlib import Path

import pytest

from pybernetes.client.kubeconfig import Config
from pybernetes.client.rest import RestClient
from pybernetes.kubelet.agent import NodeAgent
from pybernetes.kubelet.eviction import disk_usage
from pybernetes.kubelet.runtime.process import ProcessRuntime
from pybernetes.kubelet.runtime.protocol import ContainerState
from pybernetes.kubelet.runtime.simulated import SimulatedRuntime
from pybernetes.kubelet.volumes import mountutil

PODS = ("", "v1", "pods")
EVENTS = ("", "v1", "events")
NODE = "node-ev"
MI = 1024 * 1024
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "support"))
import async_poll  # noqa: E402

poll = functools.partial(async_poll.poll, within=15.0, interval=0.05)


def pod(name: str, containers: list[dict], **spec) -> dict:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": "default"},
            "spec": {"nodeName": NODE, "containers": containers, **spec}}


def scratch_pod(name: str) -> dict:
    return pod(name, [{"name": "main", "image": "busybox:1"}],
               volumes=[{"name": "scratch", "emptyDir": {"sizeLimit": "1Mi"}}], terminationGracePeriodSeconds=60)


@pytest.fixture
async def client(api_server):
    async with RestClient(Config(servers=[api_server.url])) as c:
        yield c


async def status_of(client, name: str) -> dict:
    return (await client.get(PODS, name, "default")).get("status") or {}


async def wait_phase(client, name: str, phase: str) -> dict:
    async def reached():
        status = await status_of(client, name)
        return status if status.get("phase") == phase else None

    return await poll(reached, what=f"pod {name} {phase}")


async def evicted_event(client, name: str) -> dict:
    async def found():
        events = (await client.list(EVENTS, "default"))["items"]
        return next((e for e in events if e.get("reason") == "Evicted"
                     and e["involvedObject"].get("name") == name), None)

    return await poll(found, what=f"the Evicted event of {name}")


def assert_evicted(status: dict, message: str) -> None:
    assert status["phase"] == "Failed"
    assert status["reason"] == "Evicted" and status["message"] == message
    assert not any(c["type"] == "DisruptionTarget" for c in status["conditions"])  # as upstream
    for entry in status["containerStatuses"]:
        assert "terminated" in entry["state"], entry


async def test_an_empty_dir_past_its_size_limit_evicts_its_pod_only(client, tmp_path) -> None:
    runtime = SimulatedRuntime()
    agent = NodeAgent(client, NODE, runtime, str(tmp_path), relist_period=0.05, eviction_interval=0.1)
    await agent.start()
    try:
        hog = await client.create(PODS, scratch_pod("hog"), "default")
        calm = await client.create(PODS, scratch_pod("calm"), "default")
        await wait_phase(client, "hog", "Running")
        await wait_phase(client, "calm", "Running")
        volumes = tmp_path / "agent" / "pods"
        suffix = Path("volumes") / "kubernetes.io~empty-dir" / "scratch"
        (volumes / calm["metadata"]["uid"] / suffix / "small").write_bytes(os.urandom(64 * 1024))
        (volumes / hog["metadata"]["uid"] / suffix / "big").write_bytes(os.urandom(2 * MI))

        message = 'Usage of EmptyDir volume "scratch" exceeds the limit "1Mi". '
        status = await wait_phase(client, "hog", "Failed")
        assert_evicted(status, message)
        event = await evicted_event(client, "hog")
        assert event["type"] == "Warning" and event["message"] == message
        assert (await client.get(PODS, "hog", "default"))["metadata"]["uid"] == hog["metadata"]["uid"]  # not deleted

        # the kubelet goes on syncing and measuring: the evicted pod stays down, the neighbour up
        checks, syncs = agent.eviction.checks, agent.workers.syncs
        agent.workers.wake(hog["metadata"]["uid"])
        agent.workers.wake(calm["metadata"]["uid"])

        async def later():
            return agent.workers.syncs >= syncs + 2 and agent.eviction.checks >= checks + 5

        await poll(later, what="more syncs and eviction checks")
        assert agent.eviction.evictions == 1
        hog_sandboxes = {s.id for s in await runtime.list_pod_sandboxes(hog["metadata"]["uid"])}
        assert all(c.state is not ContainerState.RUNNING for c in await runtime.list_containers()
                   if c.sandbox_id in hog_sandboxes)
        status = await status_of(client, "hog")
        assert status["phase"] == "Failed" and status["containerStatuses"][0]["restartCount"] == 0
        calm_status = await status_of(client, "calm")
        assert calm_status["phase"] == "Running" and not calm_status.get("reason")
        assert not any(c["type"] == "DisruptionTarget" for c in calm_status["conditions"])
    finally:
        await agent.stop()


async def test_a_container_logging_past_its_limit_is_killed_at_once(client, tmp_path) -> None:
    runtime = ProcessRuntime(tmp_path / "rt", images={"host/shell:1"})
    agent = NodeAgent(client, NODE, runtime, str(tmp_path), relist_period=0.05, eviction_interval=0.1)
    await agent.start()
    try:
        # ignores SIGTERM and asks for 60 s of grace: only the eviction's grace period (1 s) ends it soon
        script = "trap '' TERM; yes 0123456789 | head -n 30000; exec sleep 120"
        container = {"name": "chatty", "image": "host/shell:1", "command": ["sh", "-c", script],
                     "resources": {"limits": {"ephemeral-storage": "100Ki"}}}
        await client.create(PODS, pod("chatty", [container], terminationGracePeriodSeconds=60), "default")
        status = await wait_phase(client, "chatty", "Failed")
        message = "Pod ephemeral local storage usage exceeds the total limit of containers 100Ki. "
        assert_evicted(status, message)
        assert status["containerStatuses"][0]["state"]["terminated"]["exitCode"] != 0
        event = await evicted_event(client, "chatty")
        assert event["type"] == "Warning" and event["message"] == message
    finally:
        await agent.stop()
        for sandbox in await runtime.list_pod_sandboxes():
            await runtime.remove_pod_sandbox(sandbox.id)


@pytest.mark.skipif(os.geteuid() != 0, reason="mounting a tmpfs needs root")
def test_the_measuring_walk_does_not_cross_into_another_mount(tmp_path) -> None:
    volume = tmp_path / "volume"
    inner = volume / "mounted"
    inner.mkdir(parents=True)
    (volume / "own").write_bytes(os.urandom(64 * 1024))
    before = disk_usage(volume)
    mountutil.mount_tmpfs(inner, 8 * MI)
    try:
        (inner / "big").write_bytes(os.urandom(4 * MI))
        assert disk_usage(inner) >= 4 * MI
        assert disk_usage(volume) <= before  # the mount point itself now shows the mount's root
    finally:
        mountutil.umount(inner, detach=True)
