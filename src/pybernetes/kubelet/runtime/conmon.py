"""The process shell of the runc runtime: containers run by ``runc`` under ``conmon`` (CRI-O's
container monitor, Debian package ``conmon``), exec through ``runc exec``.

Why conmon: each container gets a small C process that is its parent.  It reaps it, writes its
stdout/stderr to the log file in the CRI format (``-l k8s-file:PATH``), reopens that file when
told to through its ``ctl`` FIFO (log rotation), records an OOM kill, and writes the exit code
to ``<exit dir>/<id>`` (and ``<bundle>/persist/exit``) when the container ends.  conmon
double-forks away from its caller, so containers and their monitors outlive a kubelet restart,
and a later kubelet reads their end from those files: no child of the kubelet, no reaper.

Protocol (conmon API version 1): conmon runs ``runc create``; on the pipe whose fd is in
``_OCI_SYNCPIPE`` it writes one JSON line, ``{"data": <container pid>}`` or ``{"data": -1,
"message": "<runc's error>"}``; then the process is started as ``runc start`` would, by
reading runc's exec FIFO in-process (one Go process less per container; ``runc start`` when
the FIFO is not where runc 1.x keeps it).  The exit file holds the
exit code (128 + signal for a process ended by a signal).

Processes are named by (pid, start time) — /proc/<pid>/stat field 22 — so a reused pid is never
signalled by mistake; waits and signals use pidfds.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import shutil
import signal
import stat
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from pybernetes.kubelet.runtime import kernel, spawn
from pybernetes.kubelet.runtime.protocol import ExecResult, RuntimeError_

CREATE_TIMEOUT = 60.0
REOPEN_LOGS = b"2 0 0\n"
_LOGRUS_MSG = re.compile(r'msg="((?:[^"\\]|\\.)*)"')


@dataclass(slots=True)
class Started:
    pid: int
    pid_start: int
    monitor_pid: int
    monitor_start: int


def runc_message(text: str) -> str:
    """runc's error out of its log line(s) (logrus text or JSON), unescaped."""
    messages = []
    for line in text.splitlines():
        line = line.strip()
        if not line:
            continue
        if line.startswith("{"):
            with contextlib.suppress(ValueError):
                entry = json.loads(line)
                if entry.get("level") in ("error", "fatal"):
                    messages.append(str(entry.get("msg", "")))
                continue
        match = _LOGRUS_MSG.search(line)
        if match:
            messages.append(match.group(1).encode().decode("unicode_escape", errors="replace"))
        else:
            messages.append(line)
    return "; ".join(m for m in messages if m) or text.strip()


def _runc_failure(log_file: Path) -> str:
    """runc's own error from its --log file ("" when it logged none)."""
    try:
        text = log_file.read_text()
    except OSError:
        return ""
    return runc_message(text) if text.strip() else ""


def _is_fifo(path: Path) -> bool:
    try:
        return stat.S_ISFIFO(path.lstat().st_mode)
    except OSError:
        return False


def _release_init(fifo: Path) -> bytes:
    """Open runc's exec FIFO (blocking until the init opens its end) and read it to the end."""
    fd = os.open(fifo, os.O_RDONLY | os.O_CLOEXEC)
    try:
        chunks = []
        while chunk := os.read(fd, 64):
            chunks.append(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


def _read_int(path: Path) -> int | None:
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return None


async def _wait_readable(fd: int, within: float | None) -> bool:
    """Wait until ``fd`` is readable (a pidfd: the process ended); False after ``within`` s."""
    loop = asyncio.get_running_loop()
    ready = loop.create_future()
    loop.add_reader(fd, lambda: ready.done() or ready.set_result(None))
    try:
        await asyncio.wait_for(ready, within)
        return True
    except TimeoutError:
        return False
    finally:
        loop.remove_reader(fd)


class Monitor:
    """Runs containers under conmon with runc (``runc_root`` is runc's state directory)."""

    def __init__(self, runc_root: Path, exits_dir: Path, *, runc: str = "runc", conmon: str = "conmon",
                 attach_dir: Path | None = None) -> None:
        self.runc_root = runc_root
        self.exits_dir = exits_dir
        self.runc = shutil.which(runc) or runc
        self.conmon = shutil.which(conmon) or conmon
        self.attach_dir = attach_dir or exits_dir.parent / "attach"
        for directory in (runc_root, exits_dir, self.attach_dir):
            directory.mkdir(parents=True, exist_ok=True, mode=0o700)

    # -- start ------------------------------------------------------------------------------------

    async def run(self, cid: str, bundle: Path, *, name: str, log_path: str, tty: bool = False) -> Started:
        """conmon + ``runc create`` + ``runc start``; RuntimeError_("RunContainerError") with
        runc's message when the container cannot be created (a missing executable ...)."""
        (bundle / "persist").mkdir(exist_ok=True)
        if (self.runc_root / cid).exists():  # a start cut short (a kubelet crash): begin again
            await self.runc_command("delete", "--force", cid)
        for stale in ("pidfile", "conmon.pid", "ctl", "winsz", "persist/exit", "persist/oom", "oom"):
            with contextlib.suppress(FileNotFoundError):
                (bundle / stale).unlink()
        with contextlib.suppress(FileNotFoundError):
            (self.exits_dir / cid).unlink()
        argv = [self.conmon, "--api-version", "1", "-c", cid, "-u", cid, "-n", name, "-r", self.runc,
                "-b", str(bundle), "-p", str(bundle / "pidfile"), "-P", str(bundle / "conmon.pid"),
                "--exit-dir", str(self.exits_dir), "--persist-dir", str(bundle / "persist"),
                "--socket-dir-path", str(self.attach_dir), "--log-level", "error",
                "-l", f"k8s-file:{log_path}" if log_path else "none:",
                "--runtime-arg", f"--root={self.runc_root}", "--runtime-arg", f"--log={bundle / 'runc.log'}"]
        if tty:
            argv.append("-t")
        read_fd, write_fd = os.pipe2(os.O_CLOEXEC)
        try:
            # the standard library's Popen, not the event loop's subprocess: uvloop (the agent's
            # loop) does not pass ``pass_fds`` on, and conmon reports through that pipe
            process = await asyncio.to_thread(
                subprocess.Popen, argv, pass_fds=(write_fd,), env={**os.environ, "_OCI_SYNCPIPE": str(write_fd)},
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True,
                cwd=bundle)  # conmon writes its "oom" marker into its working directory
        except OSError as exc:
            os.close(read_fd)
            os.close(write_fd)
            raise RuntimeError_("RunContainerError", f"cannot run conmon: {exc.strerror or exc}") from exc
        os.close(write_fd)
        try:
            line = await asyncio.wait_for(self._read_line(read_fd), CREATE_TIMEOUT)
        except TimeoutError:
            line = b""
        finally:
            os.close(read_fd)
        _, err = await asyncio.to_thread(process.communicate)
        try:
            reply = json.loads(line)
        except ValueError:
            raise RuntimeError_("RunContainerError", "conmon did not report the container: "
                                + (err.decode(errors="replace").strip() or "no reply")) from None
        pid = int(reply.get("data", -1))
        if pid <= 0:
            raise RuntimeError_("RunContainerError", runc_message(str(reply.get("message", ""))))
        monitor_pid = _read_int(bundle / "conmon.pid") or 0
        started = Started(pid, kernel.process_start_time(pid), monitor_pid, kernel.process_start_time(monitor_pid))
        await self._start(cid, started)
        return started

    async def _start(self, cid: str, started: Started) -> None:
        """What ``runc start`` does, without a Go process: the created container's init waits
        to open runc's exec FIFO for writing; reading it lets the init exec the process, and
        removing it marks the container started.  Falls back to ``runc start``."""
        fifo = self.runc_root / cid / "exec.fifo"
        if not _is_fifo(fifo):
            code, out = await self.runc_command("start", cid)
            if code != 0:
                await self.runc_command("delete", "--force", cid)
                raise RuntimeError_("RunContainerError", runc_message(out))
            return
        release = asyncio.ensure_future(asyncio.to_thread(_release_init, fifo))
        deadline = time.monotonic() + CREATE_TIMEOUT
        while not release.done():
            await asyncio.wait({release}, timeout=0.25)
            if not release.done() and (not self.alive(started.pid, started.pid_start)
                                       or time.monotonic() > deadline):
                # the init is gone (or stuck): a writer of our own ends the blocked open
                with contextlib.suppress(OSError):
                    os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK | os.O_CLOEXEC))
                await asyncio.wait({release}, timeout=5)
                break
        data = release.result() if release.done() else b""
        with contextlib.suppress(FileNotFoundError):
            fifo.unlink()
        if not data:
            await self.runc_command("delete", "--force", cid)
            raise RuntimeError_("RunContainerError", "the container's init process ended before it was started")

    @staticmethod
    async def _read_line(fd: int) -> bytes:
        loop = asyncio.get_running_loop()
        os.set_blocking(fd, False)
        data = b""
        while b"\n" not in data:
            ready = loop.create_future()
            loop.add_reader(fd, lambda ready=ready: ready.done() or ready.set_result(None))
            try:
                await ready
            finally:
                loop.remove_reader(fd)
            try:
                chunk = os.read(fd, 65536)
            except BlockingIOError:
                continue
            if not chunk:
                break
            data += chunk
        return data.partition(b"\n")[0]

    async def runc_command(self, *args: str, within: float = 60.0) -> tuple[int, str]:
        try:
            done = await spawn.run([self.runc, f"--root={self.runc_root}", *args], within=within, merge_stderr=True)
        except spawn.CommandTimeout:
            return -1, f"runc {args[0]} timed out"
        return done.returncode, done.stdout.decode(errors="replace")

    # -- state ------------------------------------------------------------------------------------

    def exit_code(self, cid: str, bundle: Path) -> tuple[int, int] | None:
        """(exit code, finished at ns) once conmon has recorded the end, else None."""
        for path in (self.exits_dir / cid, bundle / "persist" / "exit"):
            code = _read_int(path)
            if code is not None:
                return code, path.stat().st_mtime_ns
        return None

    def adopt(self, cid: str, bundle: Path) -> Started | None:
        """A container whose start was cut short after runc started it (its exec FIFO gone):
        its processes from conmon's pid files; None when it was not started."""
        pid, monitor = _read_int(bundle / "pidfile"), _read_int(bundle / "conmon.pid")
        if not pid or not monitor or not (self.runc_root / cid).exists() or _is_fifo(self.runc_root / cid / "exec.fifo"):
            return None
        return Started(pid, kernel.process_start_time(pid), monitor, kernel.process_start_time(monitor))

    @staticmethod
    def oom_reported(bundle: Path) -> bool:
        return (bundle / "persist" / "oom").exists() or (bundle / "oom").exists()

    @staticmethod
    def alive(pid: int, start: int) -> bool:
        return pid > 0 and kernel.process_start_time(pid) == start

    @staticmethod
    def signal(pid: int, start: int, sig: int) -> bool:
        """Send ``sig`` to the process (pid, start time); False when it is gone."""
        fd = kernel.pidfd_for(pid, start)
        if fd is None:
            return False
        try:
            signal.pidfd_send_signal(fd, sig)
            return True
        except ProcessLookupError:
            return False
        finally:
            os.close(fd)

    @staticmethod
    async def wait(pid: int, start: int, within: float | None) -> bool:
        """Wait for the process (pid, start time) to end; False if it still runs after ``within`` s."""
        fd = kernel.pidfd_for(pid, start)
        if fd is None:
            return True
        try:
            return await _wait_readable(fd, within)
        finally:
            os.close(fd)

    async def delete(self, cid: str) -> None:
        """Forget the container in runc (it removes its cgroups); idempotent."""
        if (self.runc_root / cid).exists():
            code, out = await self.runc_command("delete", "--force", cid)
            if code != 0 and "does not exist" not in out and (self.runc_root / cid).exists():
                raise RuntimeError_("RemoveContainerError", runc_message(out))

    def reopen_log(self, bundle: Path) -> None:
        try:
            fd = os.open(bundle / "ctl", os.O_WRONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        except OSError:  # no FIFO, or no reader: conmon is gone
            return
        try:
            os.write(fd, REOPEN_LOGS)
        except OSError:
            pass
        finally:
            os.close(fd)

    # -- exec -------------------------------------------------------------------------------------

    async def exec(self, cid: str, argv: list[str], limit_seconds: float) -> ExecResult:
        """``runc exec`` (the container's env, cwd and user); a timeout kills the process and
        raises RuntimeError_("ExecError"), as does a command runc cannot start."""
        with tempfile.TemporaryDirectory(prefix="exec-", dir=self.exits_dir.parent) as tmp:
            pid_file, log_file = Path(tmp, "pid"), Path(tmp, "log")
            argv_runc = [self.runc, f"--root={self.runc_root}", f"--log={log_file}", "--log-format=json", "exec",
                         f"--pid-file={pid_file}", cid, *argv]
            try:
                done = await spawn.run(argv_runc, within=max(limit_seconds, 0.001), user_code=True)
            except spawn.CommandTimeout:  # runc exec is killed; the command it started in the container too
                pid = _read_int(pid_file)
                if pid:
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGKILL)
                raise RuntimeError_("ExecError", f"command {argv!r} timed out after {limit_seconds}s") from None
            failure = _runc_failure(log_file)
        if failure:
            raise RuntimeError_("ExecError", failure)
        return ExecResult(done.returncode, done.stdout, done.stderr)
