"""kubelet.runtime.spawn: helper commands run to their end from the event loop."""

from __future__ import annotations

import asyncio
import os
import time

import pytest

from pybernetes.kubelet.runtime import spawn


def test_runs_a_command_with_stdin_env_and_both_streams() -> None:
    script = 'read line; echo "out:$line:$GREETING"; echo err >&2; exit 3'
    done = asyncio.run(spawn.run(["/bin/sh", "-c", script], stdin=b"hello\n", env={"GREETING": "hi"}))
    assert done == spawn.Completed(3, b"out:hello:hi\n", b"err\n")


def test_merge_stderr_folds_it_into_stdout() -> None:
    done = asyncio.run(spawn.run(["/bin/sh", "-c", "echo a; echo b >&2"], merge_stderr=True))
    assert done.returncode == 0 and sorted(done.stdout.split()) == [b"a", b"b"] and done.stderr == b""


def test_without_stdin_the_child_reads_end_of_file() -> None:
    done = asyncio.run(spawn.run(["/bin/cat"], within=5))
    assert done == spawn.Completed(0, b"", b"")


def test_a_missing_binary_is_an_oserror() -> None:
    with pytest.raises(OSError):
        asyncio.run(spawn.run(["/nonexistent/binary"]))


def test_a_command_over_its_time_is_killed_and_reaped(tmp_path) -> None:
    pid_file = tmp_path / "pid"
    began = time.monotonic()
    with pytest.raises(spawn.CommandTimeout):
        asyncio.run(spawn.run(["/bin/sh", "-c", f"echo $$ > {pid_file}; exec sleep 30"], within=0.5))
    assert time.monotonic() - began < 10
    pid = int(pid_file.read_text())
    with pytest.raises(ProcessLookupError):  # killed and reaped: no zombie left behind
        os.kill(pid, 0)


def test_commands_run_side_by_side_while_the_loop_stays_free() -> None:
    async def main() -> tuple[list[spawn.Completed], int]:
        ticks = 0

        async def tick() -> None:
            nonlocal ticks
            while True:
                ticks += 1
                await asyncio.sleep(0.01)

        ticker = asyncio.create_task(tick())
        results = await asyncio.gather(*(spawn.run(["/bin/sh", "-c", f"sleep 0.3; echo {i}"]) for i in range(4)))
        ticker.cancel()
        return results, ticks

    began = time.monotonic()
    results, ticks = asyncio.run(main())
    assert [r.stdout for r in results] == [b"0\n", b"1\n", b"2\n", b"3\n"]
    assert time.monotonic() - began < 1.0  # four 0.3 s commands at once, not one after another
    assert ticks >= 10


def test_slow_user_commands_never_hold_up_the_runtimes_own() -> None:
    async def main() -> float:
        slow = [asyncio.create_task(spawn.run(["/bin/sleep", "1.5"], user_code=True)) for _ in range(spawn.THREADS)]
        await asyncio.sleep(0.2)  # every thread of the user-code pool busy
        began = time.monotonic()
        done = await spawn.run(["/bin/echo", "ok"])
        took = time.monotonic() - began
        assert done.stdout == b"ok\n"
        await asyncio.gather(*slow)
        return took

    assert asyncio.run(main()) < 1.0
