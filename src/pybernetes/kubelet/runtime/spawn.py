"""Short-lived helper commands (runc, CNI plugins, nft) run from the agent's event loop.

``asyncio.create_subprocess_exec`` under uvloop forks the whole agent (libuv calls ``fork()``):
the kernel copies the page tables of a 50 MB Python process and the agent then takes a
copy-on-write fault on every page it touches until the child has exec'd — about 5 ms of CPU per
command here, against about 1 ms for the standard library's ``subprocess.Popen``, which spawns
with ``vfork()``.  A pod start runs several commands, so in a burst of pod starts this is a
large share of the node's CPU.  ``run`` therefore spawns with ``subprocess.run`` on a small
pool of threads of its own (the pool also bounds how many such commands run at once) and
awaits it.

Long-running or interactive children (conmon, ``runc exec`` with a stream) do not use this.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

THREADS = max(4, 2 * (os.cpu_count() or 1))

_pool: ThreadPoolExecutor | None = None


@dataclass(frozen=True, slots=True)
class Completed:
    returncode: int
    stdout: bytes
    stderr: bytes


class CommandTimeout(Exception):
    """The command ran longer than allowed; it has been killed and reaped."""


def _executor() -> ThreadPoolExecutor:
    global _pool
    if _pool is None:
        _pool = ThreadPoolExecutor(THREADS, thread_name_prefix="spawn")
    return _pool


def _run(argv: Sequence[str], stdin: bytes | None, env: Mapping[str, str] | None, timeout: float | None,
         merge_stderr: bool) -> Completed:
    try:
        done = subprocess.run(list(argv), input=stdin, env=None if env is None else dict(env), timeout=timeout,
                              stdin=subprocess.DEVNULL if stdin is None else None, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT if merge_stderr else subprocess.PIPE, check=False)
    except subprocess.TimeoutExpired:  # subprocess.run has killed and reaped it
        raise CommandTimeout(f"{argv[0]} timed out after {timeout}s") from None
    return Completed(done.returncode, done.stdout or b"", done.stderr or b"")


async def run(argv: Sequence[str], *, stdin: bytes | None = None, env: Mapping[str, str] | None = None,
              within: float | None = None, merge_stderr: bool = False) -> Completed:
    """Run ``argv`` to its end: its exit code, stdout and stderr (stderr folded into stdout with
    ``merge_stderr``).  OSError when it cannot be started; CommandTimeout after ``within`` seconds."""
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(_executor(), _run, argv, stdin, env, within, merge_stderr)
