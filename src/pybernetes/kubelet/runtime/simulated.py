"""A simulated container runtime: sandboxes and containers that exist only in memory (the
``simulated`` backend of DESIGN.md: many nodes of pods on one machine, for scale tests and for
testing the kubelet's logic without root).  It keeps the runtime contract
(protocol.py) exactly, so the same kubelet code drives it and the real backends.

What a container does is told by its annotations (nothing runs):

- ``sim.pybernetes.io/exit-after``: seconds after start at which it exits by itself
  (absent: it runs until stopped);
- ``sim.pybernetes.io/exit-code``: that exit's code (default 0; non-zero gives reason Error,
  0 reason Completed);
- ``sim.pybernetes.io/ignore-sigterm``: "true" makes a stop wait the whole grace period, then
  kill (exit code 137), as a process that ignores SIGTERM; otherwise a stop exits at once
  with 143 (terminated by SIGTERM).

The annotations are read from the container's config, else from its pod sandbox's (the pod's
annotations) as ``<annotation>.<container name>``, then ``<annotation>`` for every container.

Images and the bookkeeping come from ``tracking.TrackedRuntime`` (every reference can be
pulled unless ``images`` lists the ones that exist).  A pod IP comes from ``pod_cidr`` in
order.  ``exec_sync`` answers ``exec_results[tuple(command)]``
(default: exit 0, no output).
"""

from __future__ import annotations

import asyncio
import ipaddress
from dataclasses import dataclass, field

from pybernetes.kubelet.runtime.protocol import (
    ContainerConfig,
    ContainerState,
    ContainerStatus,
    ExecResult,
    PodSandboxConfig,
    PodSandboxStatus,
    RuntimeError_,
    SandboxState,
)
from pybernetes.kubelet.runtime.tracking import TrackedRuntime, now_ns

EXIT_AFTER = "sim.pybernetes.io/exit-after"
EXIT_CODE = "sim.pybernetes.io/exit-code"
IGNORE_SIGTERM = "sim.pybernetes.io/ignore-sigterm"
VERSION = "0.1.0"


@dataclass(slots=True)
class _Sandbox:
    status: PodSandboxStatus
    containers: set[str] = field(default_factory=set)


@dataclass(slots=True)
class _Container:
    status: ContainerStatus
    exit_task: asyncio.Task[None] | None = None
    exited: asyncio.Event = field(default_factory=asyncio.Event)


class SimulatedRuntime(TrackedRuntime):
    name = "simulated"
    image_size = 1 << 20

    def __init__(self, *, pod_cidr: str = "10.244.0.0/24", images: set[str] | None = None) -> None:
        super().__init__(images)
        self._hosts = ipaddress.ip_network(pod_cidr).hosts()
        next(self._hosts, None)  # the first address is the bridge's
        self.exec_results: dict[tuple[str, ...], ExecResult] = {}

    async def version(self) -> str:
        return VERSION

    # -- sandboxes -------------------------------------------------------------------------------

    async def run_pod_sandbox(self, config: PodSandboxConfig) -> str:
        sandbox_id = self._new_id("sandbox")
        ip = "" if config.host_network else str(next(self._hosts, "") or "")
        if not config.host_network and not ip:
            raise RuntimeError_("CreatePodSandboxError", "no free address left in the pod CIDR")
        status = PodSandboxStatus(sandbox_id, config, SandboxState.READY, now_ns(), ip)
        self._add_sandbox(_Sandbox(status))
        return sandbox_id

    # -- containers ------------------------------------------------------------------------------

    async def create_container(self, sandbox_id: str, config: ContainerConfig) -> str:
        sandbox, image = await self._creatable(sandbox_id, config)
        log_dir = sandbox.status.config.log_directory
        log_path = f"{log_dir}/{config.log_path}" if log_dir and config.log_path else ""
        return self._record_container(sandbox, config, image, log_path, _Container)

    async def start_container(self, container_id: str) -> None:
        container = self._startable(container_id)
        status = container.status
        status.state = ContainerState.RUNNING
        status.started_at = now_ns()
        after = self._behaviour(status, EXIT_AFTER)
        if after is not None:
            code = int(self._behaviour(status, EXIT_CODE) or "0")
            container.exit_task = asyncio.get_running_loop().create_task(
                self._exit_later(container, float(after), code), name=f"sim-exit/{container_id[:12]}")

    def _behaviour(self, status: ContainerStatus, key: str) -> str | None:
        """A behaviour annotation of the container (see the module docstring)."""
        if key in status.config.annotations:
            return status.config.annotations[key]
        sandbox = self._sandboxes.get(status.sandbox_id)
        pod = sandbox.status.config.annotations if sandbox is not None else {}
        return pod.get(f"{key}.{status.config.name}", pod.get(key))

    async def _exit_later(self, container: _Container, after: float, code: int) -> None:
        await asyncio.sleep(after)
        self._exit(container, code, "Completed" if code == 0 else "Error")

    @staticmethod
    def _exit(container: _Container, code: int, reason: str) -> None:
        status = container.status
        if status.state is not ContainerState.RUNNING:
            return
        status.state = ContainerState.EXITED
        status.exit_code = code
        status.reason = reason
        status.finished_at = now_ns()
        container.exited.set()

    async def stop_container(self, container_id: str, grace_seconds: float) -> None:
        container = self._get(container_id)
        status = container.status
        if status.state is ContainerState.CREATED:
            status.state = ContainerState.EXITED
            status.finished_at = now_ns()
            return
        if status.state is not ContainerState.RUNNING:
            return
        if self._behaviour(status, IGNORE_SIGTERM) == "true":
            try:
                await asyncio.wait_for(container.exited.wait(), max(0.0, grace_seconds))
            except TimeoutError:
                self._exit(container, 137, "Error")  # SIGKILL after the grace period
        else:
            self._exit(container, 143, "Error")  # SIGTERM
        if container.exit_task is not None:
            container.exit_task.cancel()

    async def remove_container(self, container_id: str) -> None:
        container = self._get(container_id)
        if container.status.state is ContainerState.RUNNING:
            self._exit(container, 137, "Error")
        if container.exit_task is not None:
            container.exit_task.cancel()
        self._forget_container(container_id)

    async def exec_sync(self, container_id: str, command: list[str], limit_seconds: float) -> ExecResult:
        container = self._get(container_id)
        if container.status.state is not ContainerState.RUNNING:
            raise RuntimeError_("ExecError", f"container {container_id!r} is not running")
        return self.exec_results.get(tuple(command), ExecResult(0, b"", b""))
