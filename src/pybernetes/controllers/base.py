"""The controller base: informers in, keys through a work queue, ``sync(key)`` out.

Owns what every controller shares (DESIGN.md principle 4, upstream's controller pattern):

- ``ControllerContext`` — the client, the manager's one ``SharedInformerFactory`` (informers
  are shared by every controller of a manager), the clock, per-controller options, and one
  ``EventRecorder`` per event source (component).
- ``Controller`` — a subclass names itself (``name``: the ``--controllers`` name;
  ``component``: the event source), registers informers and handlers in ``setup()`` (the
  handlers only enqueue keys) and reconciles one key in ``async def sync(key)``.  ``run()``
  waits for the controller's informers to sync, then runs its workers: a sync that raises is
  logged and retried with per-key exponential backoff (the queue's rate limiter); one that
  returns forgets the key's failures.  The work queue never hands one key to two workers.
- The clock: controllers read time only through ``self.clock.now()`` (epoch seconds), so
  tests can drive deadlines and schedules with a ``FakeClock``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol

from pybernetes.client.errors import ApiError, Conflict, NotFound
from pybernetes.client.events import EventRecorder
from pybernetes.client.informer import SharedInformer, SharedInformerFactory
from pybernetes.client.rest import ResourceArg, RestClient
from pybernetes.client.tasks import TaskSet
from pybernetes.client.workqueue import RateLimitingQueue, ShutDown, default_controller_rate_limiter
from pybernetes.machinery import meta
from pybernetes.machinery.meta import clone as meta_clone

log = logging.getLogger(__name__)

Obj = dict[str, Any]


def key_of(obj: Obj | str) -> str:
    """``namespace/name`` (or ``name`` for cluster-scoped objects); a key stays a key."""
    return obj if isinstance(obj, str) else meta.key_of(obj)


def split_key(key: str) -> tuple[str | None, str]:
    """``(namespace, name)``; namespace None for a cluster-scoped key."""
    ns, name = meta.split_key(key)
    return ns or None, name


class RetryLater(Exception):
    """A sync that cannot finish yet (e.g. its cache lags its own writes): retried with
    backoff like any failure, but logged quietly — it is expected, not an error."""


class Clock(Protocol):
    def now(self) -> float: ...


class RealClock:
    """Wall-clock time in epoch seconds."""

    def now(self) -> float:
        return time.time()


class FakeClock:
    """A clock that moves only when told (tests)."""

    def __init__(self, start: float | None = None) -> None:
        self._now = time.time() if start is None else float(start)

    def now(self) -> float:
        return self._now

    def advance(self, seconds: float) -> None:
        self._now += seconds

    def set(self, moment: float) -> None:
        self._now = float(moment)


@dataclass
class ControllerContext:
    client: RestClient
    informers: SharedInformerFactory
    clock: Clock = field(default_factory=RealClock)
    options: dict[str, Any] = field(default_factory=dict)
    _recorders: dict[str, EventRecorder] = field(default_factory=dict)

    def recorder(self, component: str) -> EventRecorder:
        rec = self._recorders.get(component)
        if rec is None:
            rec = self._recorders[component] = EventRecorder(self.client, component)
        return rec

    async def close(self) -> None:
        for rec in self._recorders.values():
            await rec.stop()


class Controller:
    """Subclass: set ``name`` and ``component``, override ``setup`` and ``sync``."""

    name: ClassVar[str] = ""
    component: ClassVar[str] = ""
    default_workers: ClassVar[int] = 5

    def __init__(self, ctx: ControllerContext) -> None:
        self.ctx = ctx
        self.client = ctx.client
        self.clock = ctx.clock
        self.options = ctx.options
        self.recorder = ctx.recorder(self.component or self.name)
        self.queue = RateLimitingQueue(default_controller_rate_limiter(), name=self.name)
        self._informers: list[SharedInformer] = []
        self._tasks = TaskSet(f"controller[{self.name}]")
        self.syncs = 0  # completed syncs (metrics and tests)
        self.sync_errors = 0
        self.setup()

    # -- for subclasses ----------------------------------------------------------------------

    def setup(self) -> None:
        """Register informers (``self.informer``) and their handlers."""

    async def sync(self, key: str) -> None:
        raise NotImplementedError

    def informer(self, res: ResourceArg, **kwargs: Any) -> SharedInformer:
        """The manager's shared informer for ``res`` (this controller waits for its sync)."""
        inf = self.ctx.informers.informer(res, **kwargs)
        if inf not in self._informers:
            self._informers.append(inf)
        return inf

    def enqueue(self, obj_or_key: Obj | str) -> None:
        self.queue.add(key_of(obj_or_key))

    def enqueue_after(self, obj_or_key: Obj | str, delay: float) -> None:
        key = key_of(obj_or_key)
        if delay <= 0:
            self.queue.add(key)
        else:
            self.queue.add_after(key, delay)

    async def write_status(self, res: ResourceArg, obj: Obj, status: Obj, *,
                           merge: Callable[[Obj, Obj], Obj] | None = None) -> Obj | None:
        """PUT ``status`` through the status subresource of ``obj`` (a cached object: it is
        copied).  On a conflict, read the object once more and retry (only while it is the same
        object, by uid), with ``merge(fresh_status, status)`` when given; a second conflict
        raises (the sync is retried).  The object as written, or None when it is gone."""
        meta = obj.get("metadata") or {}
        body = meta_clone(obj)
        body["status"] = status
        for attempt in range(2):
            try:
                return await self.client.update_status(res, body)
            except NotFound:
                return None
            except Conflict:
                if attempt:
                    raise
                try:
                    body = await self.client.get(res, meta.get("name") or "", meta.get("namespace"))
                except NotFound:
                    return None
                if (body.get("metadata") or {}).get("uid") != meta.get("uid"):
                    return None
                body["status"] = merge(body.get("status") or {}, status) if merge else status
        return None

    # -- running -----------------------------------------------------------------------------

    @property
    def informers(self) -> list[SharedInformer]:
        return list(self._informers)

    async def wait_for_sync(self, within: float | None = None) -> bool:
        results = await asyncio.gather(*(inf.wait_for_sync(within) for inf in self._informers))
        return all(results)

    async def run(self, workers: int) -> None:
        """Wait for this controller's informers, then run ``workers`` workers until cancelled."""
        await self.wait_for_sync()
        log.info("controller %s: caches synced, starting %d workers", self.name, workers)
        for i in range(max(1, workers)):
            self._tasks.start(f"worker-{i}", self._worker())
        try:
            await asyncio.Event().wait()
        finally:
            self.queue.shutdown()
            await self._tasks.stop(grace=5.0)

    async def _worker(self) -> None:
        while True:
            try:
                key = await self.queue.get()
            except ShutDown:
                return
            await self.process(key)

    async def process(self, key: Hashable) -> None:
        try:
            await self.sync(str(key))
        except asyncio.CancelledError:
            self.queue.done(key)
            raise
        except Exception as exc:  # noqa: BLE001 - a failing key is retried, never kills a worker
            self.sync_errors += 1
            if isinstance(exc, RetryLater | Conflict) or (isinstance(exc, ApiError) and exc.code in (404, 409)):
                log.debug("controller %s: sync %s: %s (retrying)", self.name, key, exc)
            else:
                log.warning("controller %s: sync %s failed (retrying): %r", self.name, key, exc,
                            exc_info=not isinstance(exc, ApiError))
            self.queue.add_rate_limited(key)
        else:
            self.syncs += 1
            self.queue.forget(key)
        self.queue.done(key)

    async def stop(self) -> None:
        self.queue.shutdown()
        await self._tasks.stop(grace=5.0)
