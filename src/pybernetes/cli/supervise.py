"""Child processes of ``pybernetes server`` / ``up``: start them, restart them, stop them.

One Python process uses one core, so the all-in-one modes run each component (controller
manager, later the scheduler and the node agent) as its own OS process (DESIGN.md
principle 1).  ``Supervised`` starts a command, and when it exits while it should be
running — a controller manager exits non-zero when it loses its lease, as upstream's does —
starts it again after a backoff (1 s doubling to 30 s, reset after a minute of running).
``stop`` sends SIGTERM, waits, then SIGKILLs; the child is never left behind: it runs in
its own session (a terminal's Ctrl-C reaches only the parent, which stops it in order) and
gets SIGTERM from the kernel if the parent dies without stopping it (PR_SET_PDEATHSIG).
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import signal
import sys

log = logging.getLogger(__name__)

RESTART_INITIAL = 1.0
RESTART_CAP = 30.0
HEALTHY_AFTER = 60.0  # seconds of running that reset the restart backoff
STOP_GRACE = 10.0


PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    """In the child before exec: SIGTERM when the parent process dies (Linux)."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    except (OSError, AttributeError):
        pass


def python_command(*args: str) -> list[str]:
    """``pybernetes ARGS`` run by this interpreter (works from a virtualenv or a checkout)."""
    return [sys.executable, "-m", "pybernetes.cli.main", *args]


class Supervised:
    def __init__(self, name: str, argv: list[str]) -> None:
        self.name = name
        self.argv = argv
        self.process: asyncio.subprocess.Process | None = None
        self.restarts = 0
        self._task: asyncio.Task[None] | None = None
        self._stopping = False

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name=f"supervise/{self.name}")

    async def _run(self) -> None:
        delay = RESTART_INITIAL
        loop = asyncio.get_running_loop()
        while not self._stopping:
            started = loop.time()
            self.process = await asyncio.create_subprocess_exec(*self.argv, start_new_session=True,
                                                                preexec_fn=_die_with_parent)
            log.info("%s started (pid %d)", self.name, self.process.pid)
            code = await self.process.wait()
            if self._stopping:
                return
            if loop.time() - started > HEALTHY_AFTER:
                delay = RESTART_INITIAL
            log.warning("%s exited with status %s; restarting in %.0fs", self.name, code, delay)
            self.restarts += 1
            await asyncio.sleep(delay)
            delay = min(delay * 2, RESTART_CAP)

    async def stop(self) -> None:
        self._stopping = True
        proc = self.process
        if proc is not None and proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(proc.wait(), STOP_GRACE)
            except TimeoutError:
                log.warning("%s did not stop within %ss: killing it", self.name, STOP_GRACE)
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                await proc.wait()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        proc = self.process  # one started while the task was being cancelled
        if proc is not None and proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()
