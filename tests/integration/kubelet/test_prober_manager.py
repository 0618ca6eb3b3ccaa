"""ProbeManager against real containers of the process runtime: a Python HTTP server in a pod
on its own loopback address, with a tcpSocket startup probe, an httpGet readiness probe on a
named port and an exec liveness probe; the test plays the pod worker (it restarts the
container when liveness fails) and sees readiness reset and come back."""

from __future__ import annotations

import asyncio
import socket
import sys
import time
from pathlib import Path

import pytest

from pybernetes.kubelet.prober_manager import ProbeManager, RunningContainer
from pybernetes.kubelet.probes import ProbeKind
from pybernetes.kubelet.runtime.process import ProcessRuntime
from pybernetes.kubelet.runtime.protocol import ContainerConfig, ContainerState, PodSandboxConfig

IMAGE = "host/python:1"
SCALE = 0.05  # periodSeconds 1 -> 50 ms


async def until(condition, deadline: float = 15.0) -> None:
    end = time.monotonic() + deadline
    while not condition():
        if time.monotonic() > end:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.01)


@pytest.fixture
async def runtime(tmp_path: Path):
    rt = ProcessRuntime(tmp_path / "runtime", images={IMAGE})
    try:
        yield rt
    finally:
        for sandbox in await rt.list_pod_sandboxes():
            await rt.remove_pod_sandbox(sandbox.id)


def free_port(host: str) -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


async def test_probes_drive_readiness_and_liveness_of_real_processes(runtime: ProcessRuntime, tmp_path: Path) -> None:
    await runtime.pull_image(IMAGE)
    sandbox = await runtime.run_pod_sandbox(PodSandboxConfig(name="web", namespace="ns", uid="uid-web"))
    pod_ip = (await runtime.pod_sandbox_status(sandbox)).ip
    port = free_port(pod_ip)
    work = tmp_path / "www"
    work.mkdir()
    (work / "alive").write_text("yes")
    spec = {
        "name": "web",
        "ports": [{"name": "http", "containerPort": port}],
        "env": [{"name": "MARK", "value": "alive"}],
        "startupProbe": {"tcpSocket": {"port": "http"}, "periodSeconds": 1, "failureThreshold": 200},
        "readinessProbe": {"httpGet": {"port": "http", "path": "/ready"}, "periodSeconds": 1},
        "livenessProbe": {"exec": {"command": ["test", "-f", "$(MARK)"]}, "periodSeconds": 1,
                          "failureThreshold": 2, "terminationGracePeriodSeconds": 1},
    }
    pod = {"metadata": {"name": "web", "namespace": "ns", "uid": "uid-web"}, "spec": {"containers": [spec]}}
    config = ContainerConfig(name="web", image=IMAGE, working_dir=str(work), command=[
        sys.executable, "-m", "http.server", str(port), "--bind", pod_ip])

    async def start() -> RunningContainer:
        container_id = await runtime.create_container(sandbox, config)
        await runtime.start_container(container_id)
        return RunningContainer(container_id, time.time())

    changes: list[str] = []
    manager = ProbeManager(runtime, changes.append, period_scale=SCALE, jitter=False)
    try:
        first = await start()
        manager.update_pod(pod, pod_ip, {"web": first})
        await until(lambda: manager.started("uid-web", "web"))
        await until(lambda: any(e.kind is ProbeKind.READINESS for e in manager.events()))
        assert not manager.readiness("uid-web", "web")  # 404 until the file exists

        (work / "ready").write_text("ok")
        await until(lambda: manager.readiness("uid-web", "web"))
        assert "uid-web" in changes

        (work / "alive").unlink()
        await until(lambda: manager.liveness_failed("uid-web", "web") is not None)
        assert manager.liveness_failed("uid-web", "web") == "Container web failed liveness probe"
        liveness = [e for e in manager.events() if e.kind is ProbeKind.LIVENESS]
        assert liveness and liveness[0].message.startswith("Liveness probe failed")

        # the pod worker kills the container with the probe's grace period and starts it again
        await runtime.stop_container(first.container_id, manager.probe_grace("uid-web", "web") or 30)
        (work / "alive").write_text("yes")
        second = await start()
        manager.update_pod(pod, pod_ip, {"web": second})
        assert not manager.readiness("uid-web", "web") and not manager.started("uid-web", "web")
        assert manager.liveness_failed("uid-web", "web") is None
        await until(lambda: manager.readiness("uid-web", "web"))
        assert (await runtime.container_status(first.container_id)).state is ContainerState.EXITED

        manager.remove_pod("uid-web")
        await until(lambda: not [t for t in asyncio.all_tasks() if t.get_name().startswith("probe/")])
    finally:
        await manager.stop()
