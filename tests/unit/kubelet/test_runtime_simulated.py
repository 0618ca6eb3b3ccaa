"""The simulated runtime passes the runtime contract (runtime_contract.py)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from runtime_contract import RuntimeContract  # noqa: E402

from pybernetes.kubelet.runtime.protocol import ContainerConfig  # noqa: E402
from pybernetes.kubelet.runtime.simulated import (  # noqa: E402
    EXIT_AFTER,
    EXIT_CODE,
    IGNORE_SIGTERM,
    SimulatedRuntime,
)

IMAGE = "registry.example/busybox:1.36"


class TestSimulatedRuntime(RuntimeContract):
    @pytest.fixture
    async def runtime(self):
        rt = SimulatedRuntime(images={IMAGE})
        yield rt
        for sandbox in await rt.list_pod_sandboxes():
            await rt.remove_pod_sandbox(sandbox.id)

    @pytest.fixture
    def image(self) -> str:
        return IMAGE

    @pytest.fixture
    def missing_image(self) -> str:
        return "registry.example/does-not-exist:1"

    @pytest.fixture
    def sleeper(self):
        return lambda name, image=IMAGE: ContainerConfig(name=name, image=image)

    @pytest.fixture
    def exiter(self):
        return lambda name, code: ContainerConfig(name=name, image=IMAGE,
                                                  annotations={EXIT_AFTER: "0.05", EXIT_CODE: str(code)})

    @pytest.fixture
    def stubborn(self):
        return lambda name: ContainerConfig(name=name, image=IMAGE, annotations={IGNORE_SIGTERM: "true"})


async def test_a_sandbox_cidr_runs_out() -> None:
    from runtime_contract import sandbox_config

    from pybernetes.kubelet.runtime.protocol import RuntimeError_

    rt = SimulatedRuntime(pod_cidr="10.0.0.0/30")  # two hosts: the bridge's, and one pod
    await rt.run_pod_sandbox(sandbox_config("a"))
    with pytest.raises(RuntimeError_) as err:
        await rt.run_pod_sandbox(sandbox_config("b"))
    assert err.value.reason == "CreatePodSandboxError"
    host = await rt.run_pod_sandbox(sandbox_config("h", host_network=True))
    assert (await rt.pod_sandbox_status(host)).ip == ""
