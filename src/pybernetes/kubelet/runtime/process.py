"""The ``process`` container runtime: containers as plain host processes, with no isolation —
for machines where pybernetes has no root (DESIGN.md), with a clear warning when chosen.  It
keeps the runtime contract (protocol.py) like the other backends.

- A sandbox is a directory under ``root`` (its containers' logs and working files) and a
  loopback address of its own (127.0.<n>.<m>, so pods have distinct IPs on one host; they
  share the host's network, so two pods cannot listen on the same port).  hostNetwork
  sandboxes report no address of their own.
- A container is a process started in its own session (so a stop reaches its children): the
  container's command and args (there is no image filesystem here, so an image's ENTRYPOINT
  cannot be used: a container without a command fails with RunContainerError), its env on top
  of a minimal PATH, its working directory (default: the sandbox's directory).  Its stdout and
  stderr go to its log file in the CRI format (``<RFC 3339 time> stdout|stderr F <line>``)
  when a log path is set.
- Stop: SIGTERM to the session, SIGKILL after the grace period.  Exit codes as a shell reports
  them: 128 + signal for a process ended by a signal.
- Images: references listed in ``images`` can be "pulled" (recorded); others fail with
  ErrImagePull.  (Real images come with the image store.)
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import itertools
import logging
import os
import shutil
import signal
import time
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

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
from pybernetes.kubelet.runtime.simulated import image_id

log = logging.getLogger(__name__)

VERSION = "0.1.0"
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def _now() -> int:
    return time.time_ns()


def _exit_code(returncode: int) -> int:
    return 128 - returncode if returncode < 0 else returncode


def _open_log(path: str) -> Any:
    """The container's log file, appended to (closed when the container has exited)."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    return open(path, "ab")  # noqa: SIM115 - closed by ProcessRuntime._wait


def _cri_line(stream: str, line: bytes) -> bytes:
    stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ").encode()
    return stamp + b" " + stream.encode() + b" F " + line.rstrip(b"\n") + b"\n"


@dataclass(slots=True)
class _Sandbox:
    status: PodSandboxStatus
    directory: Path
    containers: set[str] = field(default_factory=set)


@dataclass(slots=True)
class _Container:
    status: ContainerStatus
    process: asyncio.subprocess.Process | None = None
    waiter: asyncio.Task[None] | None = None
    pumps: list[asyncio.Task[None]] = field(default_factory=list)
    logfile: Any = None


class ProcessRuntime:
    name = "process"

    def __init__(self, root: str | os.PathLike[str], *, images: set[str] | None = None) -> None:
        self.root = Path(root)
        self._known = images
        self._sandboxes: dict[str, _Sandbox] = {}
        self._containers: dict[str, _Container] = {}
        self._images: dict[str, Image] = {}
        self._ids = itertools.count(1)
        self._addresses = (f"127.0.{n // 250 + 1}.{n % 250 + 2}" for n in itertools.count())

    def _new_id(self, kind: str) -> str:
        return hashlib.sha256(f"{kind}-{os.getpid()}-{next(self._ids)}-{time.time_ns()}".encode()).hexdigest()

    async def version(self) -> str:
        return VERSION

    # -- sandboxes -------------------------------------------------------------------------------

    async def run_pod_sandbox(self, config: PodSandboxConfig) -> str:
        sandbox_id = self._new_id("sandbox")
        directory = self.root / "sandboxes" / sandbox_id
        directory.mkdir(parents=True)
        ip = "" if config.host_network else next(self._addresses)
        self._sandboxes[sandbox_id] = _Sandbox(
            PodSandboxStatus(sandbox_id, config, SandboxState.READY, _now(), ip), directory)
        return sandbox_id

    async def stop_pod_sandbox(self, sandbox_id: str) -> None:
        sandbox = self._sandboxes.get(sandbox_id)
        if sandbox is None:
            return
        await asyncio.gather(*(self.stop_container(c, 0) for c in list(sandbox.containers)))
        sandbox.status.state = SandboxState.NOTREADY

    async def remove_pod_sandbox(self, sandbox_id: str) -> None:
        sandbox = self._sandboxes.get(sandbox_id)
        if sandbox is None:
            return
        await self.stop_pod_sandbox(sandbox_id)
        for container_id in list(sandbox.containers):
            await self.remove_container(container_id)
        del self._sandboxes[sandbox_id]
        shutil.rmtree(sandbox.directory, ignore_errors=True)

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
        log_dir = sandbox.status.config.log_directory or str(sandbox.directory)
        log_path = str(Path(log_dir) / config.log_path) if config.log_path else ""
        self._containers[container_id] = _Container(ContainerStatus(
            container_id, sandbox_id, config, ContainerState.CREATED, _now(), image_ref=image.id, log_path=log_path))
        sandbox.containers.add(container_id)
        return container_id

    def _get(self, container_id: str) -> _Container:
        container = self._containers.get(container_id)
        if container is None:
            raise NotFound("container", container_id)
        return container

    def _environment(self, config: ContainerConfig) -> dict[str, str]:
        env = {"PATH": DEFAULT_PATH, "HOSTNAME": ""}
        env.update(config.env)
        return env

    async def start_container(self, container_id: str) -> None:
        container = self._get(container_id)
        status = container.status
        if status.state is not ContainerState.CREATED:
            raise RuntimeError_("RunContainerError", f"container {container_id!r} is {status.state.value}, "
                                "not created")
        config = status.config
        argv = [*config.command, *config.args]
        if not config.command:
            raise RuntimeError_("RunContainerError", "the process runtime needs a command: it has no image "
                                "filesystem to take an entrypoint from")
        sandbox = self._sandboxes[status.sandbox_id]
        env = self._environment(config)
        env["HOSTNAME"] = sandbox.status.config.hostname or sandbox.status.config.name
        piped = asyncio.subprocess.PIPE if status.log_path else asyncio.subprocess.DEVNULL
        try:
            process = await asyncio.create_subprocess_exec(
                *argv, cwd=config.working_dir or str(sandbox.directory), env=env, start_new_session=True,
                stdin=asyncio.subprocess.DEVNULL, stdout=piped, stderr=piped)
        except OSError as exc:
            raise RuntimeError_("RunContainerError", f"starting {argv[0]!r}: {exc.strerror or exc}") from exc
        container.process = process
        status.state = ContainerState.RUNNING
        status.started_at = _now()
        loop = asyncio.get_running_loop()
        if status.log_path:
            container.logfile = _open_log(status.log_path)
            container.pumps = [loop.create_task(self._pump(process.stdout, "stdout", container.logfile)),  # type: ignore[arg-type]
                               loop.create_task(self._pump(process.stderr, "stderr", container.logfile))]  # type: ignore[arg-type]
        container.waiter = loop.create_task(self._wait(container), name=f"container/{container_id[:12]}")

    @staticmethod
    async def _pump(stream: asyncio.StreamReader, name: str, logfile: Any) -> None:
        async for line in stream:
            logfile.write(_cri_line(name, line))
            logfile.flush()

    async def _wait(self, container: _Container) -> None:
        assert container.process is not None
        returncode = await container.process.wait()
        if container.pumps:
            await asyncio.gather(*container.pumps, return_exceptions=True)
        if container.logfile is not None:
            container.logfile.close()
        status = container.status
        status.state = ContainerState.EXITED
        status.exit_code = _exit_code(returncode)
        status.reason = "Completed" if returncode == 0 else "Error"
        status.finished_at = _now()

    def _signal(self, container: _Container, sig: int) -> None:
        process = container.process
        if process is None or process.returncode is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, sig)

    async def stop_container(self, container_id: str, grace_seconds: float) -> None:
        container = self._get(container_id)
        status = container.status
        if status.state is ContainerState.CREATED:
            status.state = ContainerState.EXITED
            status.finished_at = _now()
            return
        if status.state is not ContainerState.RUNNING or container.waiter is None:
            return
        self._signal(container, signal.SIGTERM)
        try:
            await asyncio.wait_for(asyncio.shield(container.waiter), max(0.0, grace_seconds))
        except TimeoutError:
            self._signal(container, signal.SIGKILL)
            await container.waiter

    async def remove_container(self, container_id: str) -> None:
        container = self._get(container_id)
        if container.status.state is ContainerState.RUNNING:
            self._signal(container, signal.SIGKILL)
            if container.waiter is not None:
                await container.waiter
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
        sandbox = self._sandboxes[container.status.sandbox_id]
        config = container.status.config
        try:
            process = await asyncio.create_subprocess_exec(
                *command, cwd=config.working_dir or str(sandbox.directory), env=self._environment(config),
                start_new_session=True, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE)
        except OSError as exc:
            raise RuntimeError_("ExecError", f"starting {command[0]!r}: {exc.strerror or exc}") from exc
        try:
            out, err = await asyncio.wait_for(process.communicate(), limit_seconds)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            await process.wait()
            raise RuntimeError_("ExecError", f"command timed out after {limit_seconds}s") from None
        return ExecResult(_exit_code(process.returncode or 0), out, err)

    # -- images ----------------------------------------------------------------------------------

    async def pull_image(self, ref: str, auth: dict[str, str] | None = None) -> str:
        if self._known is not None and ref not in self._known:
            raise RuntimeError_("ErrImagePull", f"failed to pull image {ref!r}: not found")
        ident = image_id(ref)
        image = self._images.setdefault(ident, Image(ident))
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
