"""The one contract suite every container runtime backend passes (kubelet/runtime/protocol.py).

A backend's test module subclasses ``RuntimeContract`` (whose name does not start with "Test",
so it is not collected by itself) and provides these fixtures:

- ``runtime``: a fresh backend, cleaned up by the fixture;
- ``image``: a reference ``pull_image`` can pull;
- ``missing_image``: a reference that does not exist anywhere;
- ``sleeper``: ``sleeper(name) -> ContainerConfig`` for a container that runs until stopped;
- ``exiter``: ``exiter(name, code) -> ContainerConfig`` for one that exits by itself with
  ``code`` soon after it starts;
- ``stubborn``: ``stubborn(name) -> ContainerConfig`` for one that ignores SIGTERM.
"""

from __future__ import annotations

import asyncio
import time

import pytest

from pybernetes.kubelet.runtime.protocol import (
    ContainerState,
    NotFound,
    PodSandboxConfig,
    Runtime,
    RuntimeError_,
    SandboxState,
)


def sandbox_config(name: str = "web-0", **kw) -> PodSandboxConfig:
    return PodSandboxConfig(name=name, namespace="default", uid=f"uid-{name}", hostname=name, **kw)


async def wait_state(runtime: Runtime, container_id: str, state: ContainerState, within: float = 10.0):
    deadline = time.monotonic() + within
    while True:
        status = await runtime.container_status(container_id)
        if status.state is state:
            return status
        if time.monotonic() > deadline:
            pytest.fail(f"container stayed {status.state} instead of {state}")
        await asyncio.sleep(0.02)


class RuntimeContract:
    async def test_it_is_a_runtime_with_a_version(self, runtime) -> None:
        assert isinstance(runtime, Runtime)
        assert runtime.name and await runtime.version()

    async def test_sandbox_lifecycle(self, runtime) -> None:
        before = time.time_ns()
        sandbox = await runtime.run_pod_sandbox(sandbox_config())
        status = await runtime.pod_sandbox_status(sandbox)
        assert status.state is SandboxState.READY and status.created_at >= before
        assert status.config.name == "web-0" and status.config.uid == "uid-web-0" and status.ip
        assert [s.id for s in await runtime.list_pod_sandboxes()] == [sandbox]
        await runtime.stop_pod_sandbox(sandbox)
        assert (await runtime.pod_sandbox_status(sandbox)).state is SandboxState.NOTREADY
        await runtime.stop_pod_sandbox(sandbox)  # idempotent
        await runtime.remove_pod_sandbox(sandbox)
        with pytest.raises(NotFound):
            await runtime.pod_sandbox_status(sandbox)
        await runtime.remove_pod_sandbox(sandbox)  # idempotent
        await runtime.stop_pod_sandbox("no-such-sandbox")  # unknown ids too
        assert await runtime.list_pod_sandboxes() == []

    async def test_two_sandboxes_get_different_addresses(self, runtime) -> None:
        a = await runtime.run_pod_sandbox(sandbox_config("a"))
        b = await runtime.run_pod_sandbox(sandbox_config("b"))
        ips = {(await runtime.pod_sandbox_status(s)).ip for s in (a, b)}
        assert len(ips) == 2
        for sandbox in (a, b):
            await runtime.remove_pod_sandbox(sandbox)

    async def test_container_lifecycle(self, runtime, image, sleeper) -> None:
        image_id = await runtime.pull_image(image)
        sandbox = await runtime.run_pod_sandbox(sandbox_config())
        container = await runtime.create_container(sandbox, sleeper("main"))
        status = await runtime.container_status(container)
        assert status.state is ContainerState.CREATED and status.created_at > 0 and status.started_at == 0
        assert status.sandbox_id == sandbox and status.config.name == "main" and status.image_ref == image_id
        await runtime.start_container(container)
        status = await runtime.container_status(container)
        assert status.state is ContainerState.RUNNING and status.started_at >= status.created_at
        assert [c.id for c in await runtime.list_containers(sandbox)] == [container]
        assert await runtime.list_containers("another-sandbox") == []
        await runtime.stop_container(container, 5)
        status = await wait_state(runtime, container, ContainerState.EXITED)
        assert status.finished_at >= status.started_at and status.exit_code != 0  # terminated by a signal
        await runtime.remove_container(container)
        with pytest.raises(NotFound):
            await runtime.container_status(container)
        await runtime.remove_pod_sandbox(sandbox)

    async def test_a_container_that_exits_by_itself(self, runtime, image, exiter) -> None:
        await runtime.pull_image(image)
        sandbox = await runtime.run_pod_sandbox(sandbox_config())
        for code in (0, 3):
            container = await runtime.create_container(sandbox, exiter(f"job-{code}", code))
            await runtime.start_container(container)
            status = await wait_state(runtime, container, ContainerState.EXITED)
            assert status.exit_code == code
            assert status.reason == ("Completed" if code == 0 else "Error")
        await runtime.remove_pod_sandbox(sandbox)

    async def test_stop_kills_a_container_that_ignores_sigterm_after_the_grace_period(
            self, runtime, image, stubborn) -> None:
        await runtime.pull_image(image)
        sandbox = await runtime.run_pod_sandbox(sandbox_config())
        container = await runtime.create_container(sandbox, stubborn("stubborn"))
        await runtime.start_container(container)
        await asyncio.sleep(0.2)  # let it install its SIGTERM handler (a fixed pause: nothing to poll)
        started = time.monotonic()
        await runtime.stop_container(container, 0.5)
        status = await wait_state(runtime, container, ContainerState.EXITED)
        assert time.monotonic() - started >= 0.45  # it got its grace period
        assert status.exit_code == 137  # then SIGKILL
        await runtime.remove_pod_sandbox(sandbox)

    async def test_removing_a_sandbox_removes_its_containers(self, runtime, image, sleeper) -> None:
        await runtime.pull_image(image)
        sandbox = await runtime.run_pod_sandbox(sandbox_config())
        container = await runtime.create_container(sandbox, sleeper("main"))
        await runtime.start_container(container)
        await runtime.remove_pod_sandbox(sandbox)
        with pytest.raises(NotFound):
            await runtime.container_status(container)
        assert await runtime.list_containers() == []

    async def test_unknown_ids_and_wrong_states(self, runtime, image, sleeper) -> None:
        with pytest.raises(NotFound):
            await runtime.container_status("nope")
        with pytest.raises(NotFound):
            await runtime.start_container("nope")
        with pytest.raises(NotFound):
            await runtime.create_container("no-sandbox", sleeper("x"))
        await runtime.pull_image(image)
        sandbox = await runtime.run_pod_sandbox(sandbox_config())
        container = await runtime.create_container(sandbox, sleeper("main"))
        await runtime.start_container(container)
        with pytest.raises(RuntimeError_):
            await runtime.start_container(container)  # already running
        await runtime.remove_container(container)  # forced, while running
        await runtime.stop_pod_sandbox(sandbox)
        with pytest.raises(RuntimeError_):
            await runtime.create_container(sandbox, sleeper("late"))  # the sandbox is stopped
        await runtime.remove_pod_sandbox(sandbox)

    async def test_images(self, runtime, image, missing_image, sleeper) -> None:
        assert await runtime.image_status(image) is None
        image_id = await runtime.pull_image(image)
        assert image_id.startswith("sha256:")
        status = await runtime.image_status(image)
        assert status is not None and status.id == image_id and image in status.repo_tags
        assert image_id in [i.id for i in await runtime.list_images()]
        with pytest.raises(RuntimeError_) as err:
            await runtime.pull_image(missing_image)
        assert err.value.reason == "ErrImagePull"
        sandbox = await runtime.run_pod_sandbox(sandbox_config())
        with pytest.raises(RuntimeError_):
            await runtime.create_container(sandbox, sleeper("x", image=missing_image))
        await runtime.remove_pod_sandbox(sandbox)
        await runtime.remove_image(image)
        assert await runtime.image_status(image) is None

    async def test_listings_filter_by_pod_and_by_sandbox(self, runtime, image, sleeper) -> None:
        await runtime.pull_image(image)
        a = await runtime.run_pod_sandbox(sandbox_config("a"))
        b = await runtime.run_pod_sandbox(sandbox_config("b"))
        in_a = await runtime.create_container(a, sleeper("main"))
        in_b = await runtime.create_container(b, sleeper("main"))
        assert [s.id for s in await runtime.list_pod_sandboxes("uid-a")] == [a]
        assert await runtime.list_pod_sandboxes("uid-none") == []
        assert [c.id for c in await runtime.list_containers(a)] == [in_a]
        assert {c.id for c in await runtime.list_containers()} == {in_a, in_b}
        for sandbox in (a, b):
            await runtime.remove_pod_sandbox(sandbox)
        assert await runtime.list_pod_sandboxes("uid-a") == []

    async def test_stats_and_log_reopening(self, runtime, image, sleeper) -> None:
        await runtime.pull_image(image)
        sandbox = await runtime.run_pod_sandbox(sandbox_config())
        container = await runtime.create_container(sandbox, sleeper("main"))
        await runtime.start_container(container)
        stats = await runtime.container_stats(container)
        assert stats.id == container and stats.timestamp > 0 and stats.cpu_usage_ns >= 0
        net = await runtime.pod_sandbox_stats(sandbox)
        assert net.id == sandbox and net.rx_bytes >= 0
        await runtime.reopen_container_log(container)  # harmless on a running container
        with pytest.raises(NotFound):
            await runtime.container_stats("no-such-container")
        with pytest.raises(NotFound):
            await runtime.pod_sandbox_stats("no-such-sandbox")
        await runtime.remove_pod_sandbox(sandbox)
