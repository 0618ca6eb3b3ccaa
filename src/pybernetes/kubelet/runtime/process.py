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
- Images and the bookkeeping come from ``tracking.TrackedRuntime``: references listed in
  ``images`` can be "pulled"; others fail with ErrImagePull.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import os
import shutil
import signal
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pybernetes.kubelet.runtime.protocol import (
    ContainerConfig,
    ContainerState,
    ContainerStats,
    ContainerStatus,
    ExecResult,
    PodSandboxConfig,
    PodSandboxStatus,
    RuntimeError_,
    SandboxState,
)
from pybernetes.kubelet.runtime.tracking import TrackedRuntime, now_ns

log = logging.getLogger(__name__)

VERSION = "0.1.0"
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def _exit_code(returncode: int) -> int:
    return 128 - returncode if returncode < 0 else returncode


def _open_log(path: str) -> Any:
    """The container's log file, appended to (closed when the container has exited)."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    return open(path, "ab")  # noqa: SIM115 - closed by ProcessRuntime._wait


def _cri_line(stream: str, line: bytes) -> bytes:
    stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ").encode()
    return stamp + b" " + stream.encode() + b" F " + line.rstrip(b"\n") + b"\n"


def _proc_figures(pid: int) -> tuple[int, int] | None:
    """(CPU time in ns, resident bytes) of a process, from /proc; None when it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        with open(f"/proc/{pid}/statm") as f:
            pages = int(f.read().split()[1])
    except (OSError, IndexError, ValueError):
        return None
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) * 1_000_000_000 // ticks, pages * os.sysconf("SC_PAGE_SIZE")


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


class ProcessRuntime(TrackedRuntime):
    name = "process"

    def __init__(self, root: str | os.PathLike[str], *, images: set[str] | None = None) -> None:
        super().__init__(images)
        self.root = Path(root)
        self._addresses = (f"127.0.{n // 250 + 1}.{n % 250 + 2}" for n in itertools.count())

    async def version(self) -> str:
        return VERSION

    # -- sandboxes -------------------------------------------------------------------------------

    async def run_pod_sandbox(self, config: PodSandboxConfig) -> str:
        sandbox_id = self._new_id("sandbox")
        directory = self.root / "sandboxes" / sandbox_id
        directory.mkdir(parents=True)
        ip = "" if config.host_network else next(self._addresses)
        self._add_sandbox(_Sandbox(PodSandboxStatus(sandbox_id, config, SandboxState.READY, now_ns(), ip), directory))
        return sandbox_id

    def _sandbox_removed(self, sandbox: _Sandbox) -> None:
        shutil.rmtree(sandbox.directory, ignore_errors=True)

    # -- containers ------------------------------------------------------------------------------

    async def create_container(self, sandbox_id: str, config: ContainerConfig) -> str:
        sandbox, image = await self._creatable(sandbox_id, config)
        log_dir = sandbox.status.config.log_directory or str(sandbox.directory)
        log_path = str(Path(log_dir) / config.log_path) if config.log_path else ""
        return self._record_container(sandbox, config, image, log_path, _Container)

    def _environment(self, config: ContainerConfig) -> dict[str, str]:
        env = {"PATH": DEFAULT_PATH, "HOSTNAME": ""}
        env.update(config.env)
        return env

    async def start_container(self, container_id: str) -> None:
        container = self._startable(container_id)
        status = container.status
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
        status.started_at = now_ns()
        loop = asyncio.get_running_loop()
        if status.log_path:
            container.logfile = _open_log(status.log_path)
            container.pumps = [loop.create_task(self._pump(process.stdout, "stdout", container)),  # type: ignore[arg-type]
                               loop.create_task(self._pump(process.stderr, "stderr", container))]  # type: ignore[arg-type]
        container.waiter = loop.create_task(self._wait(container), name=f"container/{container_id[:12]}")

    @staticmethod
    async def _pump(stream: asyncio.StreamReader, name: str, container: _Container) -> None:
        async for line in stream:
            container.logfile.write(_cri_line(name, line))  # the current file: reopening replaces it
            container.logfile.flush()

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
        status.finished_at = now_ns()

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
            status.finished_at = now_ns()
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
        self._forget_container(container_id)

    async def reopen_container_log(self, container_id: str) -> None:
        container = self._get(container_id)
        status = container.status
        if status.state is not ContainerState.RUNNING or container.logfile is None:
            return
        old, container.logfile = container.logfile, _open_log(status.log_path)
        old.close()

    async def container_stats(self, container_id: str) -> ContainerStats:
        """CPU time and resident memory of the container's main process, from /proc (its
        children are not counted: there is no cgroup here)."""
        container = self._get(container_id)
        stats = ContainerStats(container_id, now_ns())
        process = container.process
        if process is None or process.returncode is not None:
            return stats
        figures = _proc_figures(process.pid)
        if figures is not None:
            stats.cpu_usage_ns, stats.rss_bytes = figures
            stats.memory_usage_bytes = stats.memory_working_set_bytes = stats.rss_bytes
        return stats

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
