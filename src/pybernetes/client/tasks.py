"""Background tasks of client components: one named helper starts them all.

``TaskSet`` owns every long-running task a component starts (an informer's reflector, a
leader elector's renew loop, an event recorder's writer, a controller's workers).  Each
task has a name; when one ends with an exception its death is logged (it is never lost
silently as a never-retrieved task exception), and ``on_death`` (if given) is told.
``stop()`` cancels the tasks in reverse order of starting (what started last usually
depends on what started first) and waits for each to finish before cancelling the next.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Coroutine
from typing import Any

log = logging.getLogger(__name__)


class TaskSet:
    """Named background tasks, logged when they die, cancelled in order on ``stop()``."""

    def __init__(self, owner: str, *,
                 on_death: Callable[[str, BaseException], None] | None = None) -> None:
        self.owner = owner
        self._tasks: dict[asyncio.Task[Any], str] = {}  # insertion order = start order
        self._on_death = on_death
        self._stopping = False

    def start(self, name: str, coro: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        """Run ``coro`` as a task named ``owner/name``; it is forgotten when it ends."""
        if self._stopping:
            coro.close()
            raise RuntimeError(f"{self.owner}: cannot start {name!r} while stopping")
        full = f"{self.owner}/{name}"
        task = asyncio.get_running_loop().create_task(coro, name=full)
        self._tasks[task] = full
        task.add_done_callback(self._done)
        return task

    def _done(self, task: asyncio.Task[Any]) -> None:
        name = self._tasks.pop(task, task.get_name())
        if task.cancelled():
            log.debug("task %s cancelled", name)
            return
        exc = task.exception()
        if exc is None:
            log.debug("task %s finished", name)
            return
        log.error("task %s died: %r", name, exc, exc_info=exc)
        if self._on_death is not None:
            try:
                self._on_death(name, exc)
            except Exception:  # noqa: BLE001 - a callback must not break the loop
                log.exception("on_death callback of %s failed", self.owner)

    @property
    def names(self) -> list[str]:
        return list(self._tasks.values())

    def __len__(self) -> int:
        return len(self._tasks)

    async def stop(self, grace: float | None = 10.0) -> None:
        """Cancel every task, last started first, waiting for each before the next."""
        self._stopping = True
        try:
            while self._tasks:
                task = next(reversed(self._tasks))
                if task is asyncio.current_task():
                    self._tasks.pop(task, None)
                    continue
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await asyncio.wait_for(asyncio.shield(task), grace)
                if not task.done():
                    log.warning("task %s did not stop within %ss", self._tasks.get(task), grace)
                self._tasks.pop(task, None)
        finally:
            self._stopping = False

    async def wait(self) -> None:
        """Wait until every task has ended (for tests and supervisors)."""
        while self._tasks:
            await asyncio.wait(list(self._tasks))


async def wait_set(event: asyncio.Event, within: float | None = None) -> bool:
    """Whether ``event`` is set within ``within`` seconds (None: wait as long as it takes)."""
    try:
        async with asyncio.timeout(within):
            await event.wait()
    except TimeoutError:
        return False
    return True
