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

Images: ``pull_image`` knows every reference unless ``images`` was given, a set of the
references that exist (others fail with ErrImagePull, as a registry's 404 would).  A pod IP
comes from ``pod_cidr`` in order.  ``exec_sync`` answers ``exec_results[tuple(command)]``
(default: exit 0, no output).
"""

from __future__ import annotations

import asyncio
import hashlib
import ipaddress
import itertools
import time
from dataclasses import dataclass, field, replace

from pybernetes.kubelet.runtime.protocol import (
    ContainerConfig,
    ContainerState,
    ContainerStatus,
    ExecResult,
    Image,
    NotFound,
    PodSandboxConfig,
    PodSandboxStatus,
    RuntimeError_,
    SandboxState,
)

EXIT_AFTER = "sim.pybernetes.io/exit-after"
EXIT_CODE = "sim.pybernetes.io/exit-code"
IGNORE_SIGTERM = "sim.pybernetes.io/ignore-sigterm"
VERSION = "0.1.0"


def _now() -> int:
    return time.time_ns()


def image_id(ref: str) -> str:
    """A stable made-up image id for a reference."""
    return "sha256:" + hashlib.sha256(ref.encode()).hexdigest()


@dataclass(slots=True)
class _Sandbox:
    status: PodSandboxStatus
    containers: set[str] = field(default_factory=set)


@dataclass(slots=True)
class _Container:
    status: ContainerStatus
    exit_task: asyncio.Task[None] | None = None
    exited: asyncio.Event = field(default_factory=asyncio.Event)


class SimulatedRuntime:
    name = "simulated"

    def __init__(self, *, pod_cidr: str = "10.244.0.0/24", images: set[str] | None = None) -> None:
        self._hosts = ipaddress.ip_network(pod_cidr).hosts()
        next(self._hosts, None)  # the first address is the bridge's
        self._ids = itertools.count(1)
        self._sandboxes: dict[str, _Sandbox] = {}
        self._containers: dict[str, _Container] = {}
        self._known = images
        self._images: dict[str, Image] = {}  # id -> image
        self.exec_results: dict[tuple[str, ...], ExecResult] = {}

    def _new_id(self, kind: str) -> str:
        return hashlib.sha256(f"{kind}-{next(self._ids)}-{time.time_ns()}".encode()).hexdigest()

    async def version(self) -> str:
        return VERSION

    # -- sandboxes -------------------------------------------------------------------------------

    async def run_pod_sandbox(self, config: PodSandboxConfig) -> str:
        sandbox_id = self._new_id("sandbox")
        ip = "" if config.host_network else str(next(self._hosts, "") or "")
        if not config.host_network and not ip:
            raise RuntimeError_("CreatePodSandboxError", "no free address left in the pod CIDR")
        status = PodSandboxStatus(sandbox_id, config, SandboxState.READY, _now(), ip)
        self._sandboxes[sandbox_id] = _Sandbox(status)
        return sandbox_id

    async def stop_pod_sandbox(self, sandbox_id: str) -> None:
        sandbox = self._sandboxes.get(sandbox_id)
        if sandbox is None:
            return
        for container_id in list(sandbox.containers):
            await self.stop_container(container_id, 0)
        sandbox.status.state = SandboxState.NOTREADY

    async def remove_pod_sandbox(self, sandbox_id: str) -> None:
        sandbox = self._sandboxes.get(sandbox_id)
        if sandbox is None:
            return
        await self.stop_pod_sandbox(sandbox_id)
        for container_id in list(sandbox.containers):
            await self.remove_container(container_id)
        del self._sandboxes[sandbox_id]

    async def pod_sandbox_status(self, sandbox_id: str) -> PodSandboxStatus:
        sandbox = self._sandboxes.get(sandbox_id)
        if sandbox is None:
            raise NotFound("pod sandbox", sandbox_id)
        return replace(sandbox.status)

    async def list_pod_sandboxes(self) -> list[PodSandboxStatus]:
        return [replace(s.status) for s in self._sandboxes.values()]

    # -- containers ------------------------------------------------------------------------------

    async def create_container(self, sandbox_id: str, config: ContainerConfig) -> str:
        sandbox = self._sandboxes.get(sandbox_id)
        if sandbox is None:
            raise NotFound("pod sandbox", sandbox_id)
        if sandbox.status.state is not SandboxState.READY:
            raise RuntimeError_("CreateContainerError", f"pod sandbox {sandbox_id!r} is not ready")
        image = await self.image_status(config.image)
        if image is None:
            raise RuntimeError_("CreateContainerError", f"image {config.image!r} is not present")
        container_id = self._new_id("container")
        log_dir = sandbox.status.config.log_directory
        log_path = f"{log_dir}/{config.log_path}" if log_dir and config.log_path else ""
        self._containers[container_id] = _Container(ContainerStatus(
            container_id, sandbox_id, config, ContainerState.CREATED, _now(), image_ref=image.id, log_path=log_path))
        sandbox.containers.add(container_id)
        return container_id

    def _get(self, container_id: str) -> _Container:
        container = self._containers.get(container_id)
        if container is None:
            raise NotFound("container", container_id)
        return container

    async def start_container(self, container_id: str) -> None:
        container = self._get(container_id)
        status = container.status
        if status.state is not ContainerState.CREATED:
            raise RuntimeError_("RunContainerError", f"container {container_id!r} is {status.state.value}, "
                                "not created")
        status.state = ContainerState.RUNNING
        status.started_at = _now()
        after = status.config.annotations.get(EXIT_AFTER)
        if after is not None:
            code = int(status.config.annotations.get(EXIT_CODE, "0"))
            container.exit_task = asyncio.get_running_loop().create_task(
                self._exit_later(container, float(after), code), name=f"sim-exit/{container_id[:12]}")

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
        status.finished_at = _now()
        container.exited.set()

    async def stop_container(self, container_id: str, grace_seconds: float) -> None:
        container = self._get(container_id)
        status = container.status
        if status.state is ContainerState.CREATED:
            status.state = ContainerState.EXITED
            status.finished_at = _now()
            return
        if status.state is not ContainerState.RUNNING:
            return
        if status.config.annotations.get(IGNORE_SIGTERM) == "true":
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
        del self._containers[container_id]
        sandbox = self._sandboxes.get(container.status.sandbox_id)
        if sandbox is not None:
            sandbox.containers.discard(container_id)

    async def container_status(self, container_id: str) -> ContainerStatus:
        return replace(self._get(container_id).status)

    async def list_containers(self, sandbox_id: str | None = None) -> list[ContainerStatus]:
        return [replace(c.status) for c in self._containers.values()
                if sandbox_id is None or c.status.sandbox_id == sandbox_id]

    async def exec_sync(self, container_id: str, command: list[str], limit_seconds: float) -> ExecResult:
        container = self._get(container_id)
        if container.status.state is not ContainerState.RUNNING:
            raise RuntimeError_("ExecError", f"container {container_id!r} is not running")
        return self.exec_results.get(tuple(command), ExecResult(0, b"", b""))

    # -- images ----------------------------------------------------------------------------------

    async def pull_image(self, ref: str, auth: dict[str, str] | None = None) -> str:
        if self._known is not None and ref not in self._known:
            raise RuntimeError_("ErrImagePull", f"failed to pull image {ref!r}: not found")
        ident = image_id(ref)
        image = self._images.setdefault(ident, Image(ident, size=1 << 20))
        if ref not in image.repo_tags:
            image.repo_tags.append(ref)
        return ident

    async def image_status(self, ref: str) -> Image | None:
        image = self._images.get(ref) or self._images.get(image_id(ref))
        return replace(image, repo_tags=list(image.repo_tags)) if image is not None else None

    async def list_images(self) -> list[Image]:
        return [replace(i, repo_tags=list(i.repo_tags)) for i in self._images.values()]

    async def remove_image(self, ref: str) -> None:
        image = await self.image_status(ref)
        if image is None:
            return
        if any(c.status.image_ref == image.id for c in self._containers.values()):
            raise RuntimeError_("ImageInUse", f"image {ref!r} is used by a container")
        self._images.pop(image.id, None)
