"""The process runtime passes the runtime contract (runtime_contract.py), and writes its
containers' output as CRI log lines."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from runtime_contract import RuntimeContract, sandbox_config, wait_state  # noqa: E402

from pybernetes.kubelet.runtime.process import ProcessRuntime  # noqa: E402
from pybernetes.kubelet.runtime.protocol import ContainerConfig, ContainerState, RuntimeError_  # noqa: E402

IMAGE = "host/shell:1"


@pytest.fixture
async def process_runtime(tmp_path: Path):
    rt = ProcessRuntime(tmp_path / "runtime", images={IMAGE})
    yield rt
    for sandbox in await rt.list_pod_sandboxes():  # nothing may outlive the test
        await rt.remove_pod_sandbox(sandbox.id)


class TestProcessRuntime(RuntimeContract):
    @pytest.fixture
    def runtime(self, process_runtime):
        return process_runtime

    @pytest.fixture
    def image(self) -> str:
        return IMAGE

    @pytest.fixture
    def missing_image(self) -> str:
        return "host/none:1"

    @pytest.fixture
    def sleeper(self):
        return lambda name, image=IMAGE: ContainerConfig(name=name, image=image, command=["sleep", "3600"])

    @pytest.fixture
    def exiter(self):
        return lambda name, code: ContainerConfig(name=name, image=IMAGE,
                                                  command=["sh", "-c", f"sleep 0.05; exit {code}"])

    @pytest.fixture
    def stubborn(self):
        return lambda name: ContainerConfig(name=name, image=IMAGE,
                                            command=["sh", "-c", "trap '' TERM; sleep 3600 & wait"])


def _lines(path: Path) -> list[str]:
    return path.read_text().splitlines()


async def test_output_goes_to_the_log_in_cri_format_and_exec_runs_in_the_container(process_runtime) -> None:
    rt = process_runtime
    await rt.pull_image(IMAGE)
    sandbox = await rt.run_pod_sandbox(sandbox_config("logs"))
    config = ContainerConfig(name="c", image=IMAGE, log_path="c/0.log", env=[("GREETING", "hello")],
                             command=["sh", "-c", 'echo "$GREETING out"; echo err >&2; sleep 3600'])
    container = await rt.create_container(sandbox, config)
    await rt.start_container(container)
    log_path = Path((await rt.container_status(container)).log_path)
    result = await rt.exec_sync(container, ["sh", "-c", "echo $GREETING; exit 4"], 5)
    assert (result.exit_code, result.stdout) == (4, b"hello\n")
    await rt.stop_container(container, 2)
    await wait_state(rt, container, ContainerState.EXITED)
    lines = _lines(log_path)
    stamp = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+Z"
    assert any(re.fullmatch(stamp + " stdout F hello out", line) for line in lines), lines
    assert any(re.fullmatch(stamp + " stderr F err", line) for line in lines), lines
    await rt.remove_pod_sandbox(sandbox)


async def test_a_command_that_is_not_there_is_a_run_container_error(process_runtime) -> None:
    rt = process_runtime
    await rt.pull_image(IMAGE)
    sandbox = await rt.run_pod_sandbox(sandbox_config("bad"))
    for config in (ContainerConfig(name="a", image=IMAGE, command=["/no/such/binary"]),
                   ContainerConfig(name="b", image=IMAGE)):
        container = await rt.create_container(sandbox, config)
        with pytest.raises(RuntimeError_) as err:
            await rt.start_container(container)
        assert err.value.reason == "RunContainerError"
    await rt.remove_pod_sandbox(sandbox)
