"""Helper commands (runc, CNI plugins, ``runc exec`` for probes and hooks) run to their end
from the agent's event loop.

``asyncio.create_subprocess_exec`` under uvloop forks the whole agent (libuv calls ``fork()``):
the kernel copies the page tables of a 50 MB Python process and the agent then takes a
copy-on-write fault on every page it touches until the child has exec'd — about 5 ms of CPU per
command here, against about 1 ms for the standard library's ``subprocess.Popen``, which spawns
with ``vfork()``.  A pod start runs several commands, and every exec probe one, so in a burst
of pod starts this is a large share of the node's CPU.  ``run`` therefore spawns with
``subprocess.run`` on threads of its own and awaits it.  Commands whose time is the user's
(``user_code=True``: exec probes and hooks, up to their timeouts) get a pool apart, so slow ones
never hold up the runtime's own commands.

Children that outlive the call (conmon) do not use this.
"""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

THREADS = 16  # per pool; threads are started only when needed

_pools: dict[bool, ThreadPoolExecutor] = {}


@dataclass(frozen=True, slots=True)
class Completed:
    returncode: int
    stdout: bytes
    stderr: bytes


class CommandTimeout(Exception):
    """The command ran longer than allowed; it has been killed and reaped."""


def _executor(user_code: bool) -> ThreadPoolExecutor:
    pool = _pools.get(user_code)
    if pool is None:
        pool = _pools[user_code] = ThreadPoolExecutor(THREADS, thread_name_prefix="exec" if user_code else "spawn")
    return pool


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
              within: float | None = None, merge_stderr: bool = False, user_code: bool = False) -> Completed:
    """Run ``argv`` to its end: its exit code, stdout and stderr (stderr folded into stdout with
    ``merge_stderr``).  OSError when it cannot be started; CommandTimeout after ``within`` seconds."""
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(_executor(user_code), _run, argv, stdin, env, within, merge_stderr)
