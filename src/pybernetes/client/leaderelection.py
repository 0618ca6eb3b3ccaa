"""Leader election on coordination.k8s.io/v1 Leases, as client-go's leaderelection package.

Owns ``LeaderElector``: candidates race to hold one Lease (``namespace/name``).  A
candidate tries every ``retry_period`` (jittered by 1.2) to acquire it: create it if
missing, or take it when its holder has not renewed it for ``lease_duration`` — measured
on the candidate's own clock from when it last saw the record change, never from the
record's timestamps (clock skew).  Taking it over bumps ``leaseTransitions`` and sets
``acquireTime``; every write sets ``renewTime`` and is a compare-and-swap on
resourceVersion.  The leader renews every ``retry_period``; if it cannot renew within
``renew_deadline`` it stops leading: its ``on_started_leading`` task is cancelled and
``on_stopped_leading`` called, and ``run()`` returns (the caller usually exits, as
upstream's components do).  Defaults: 15 s lease, 10 s renew deadline, 2 s retry.
With ``release_on_cancel`` a cancelled leader gives the lease up at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import math
import random
from collections.abc import Awaitable, Callable
from typing import Any

from pybernetes.client.errors import AlreadyExists, ApiError, Conflict, NotFound
from pybernetes.client.rest import RestClient
from pybernetes.client.tasks import TaskSet
from pybernetes.machinery.meta import now_rfc3339_micro

log = logging.getLogger(__name__)

LEASES = ("coordination.k8s.io", "v1", "leases")
JITTER_FACTOR = 1.2
RELEASE_ATTEMPTS = 3  # conflicts tolerated while giving the lease up
Obj = dict[str, Any]


async def _call(func: Callable[..., Any] | None, *args: Any) -> None:
    if func is None:
        return
    try:
        result = func(*args)
        if inspect.isawaitable(result):
            await result
    except asyncio.CancelledError:
        raise
    except Exception:
        log.exception("leader election callback %r failed", func)


class LeaderElector:
    def __init__(self, client: RestClient, *, name: str, identity: str,
                 namespace: str = "kube-system",
                 on_started_leading: Callable[[], Awaitable[Any]],
                 on_stopped_leading: Callable[[], Any] | None = None,
                 on_new_leader: Callable[[str], None] | None = None,
                 lease_duration: float = 15.0, renew_deadline: float = 10.0,
                 retry_period: float = 2.0, release_on_cancel: bool = False) -> None:
        if lease_duration <= renew_deadline:
            raise ValueError("lease_duration must be greater than renew_deadline")
        if renew_deadline <= JITTER_FACTOR * retry_period:
            raise ValueError("renew_deadline must be greater than retry_period*1.2")
        if not identity:
            raise ValueError("identity must not be empty")
        self.client = client
        self.name = name
        self.namespace = namespace
        self.identity = identity
        self.on_started_leading = on_started_leading
        self.on_stopped_leading = on_stopped_leading
        self.on_new_leader = on_new_leader
        self.lease_duration = lease_duration
        self.renew_deadline = renew_deadline
        self.retry_period = retry_period
        self.release_on_cancel = release_on_cancel
        self._observed: Obj | None = None  # the lease's spec as last seen
        self._observed_rv: str | None = None
        self._observed_at = 0.0  # loop time when the spec last changed
        self._reported_leader: str | None = None
        self._leading = False
        self._tasks = TaskSet(f"leader-election[{namespace}/{name}]")

    @property
    def leader(self) -> str:
        """The holder last observed ("" when none)."""
        return (self._observed or {}).get("holderIdentity") or ""

    def is_leader(self) -> bool:
        return self._leading

    # -- one attempt -------------------------------------------------------------------------

    def _record(self, old: Obj | None) -> Obj:
        now = now_rfc3339_micro()
        spec: Obj = {"holderIdentity": self.identity,
                     "leaseDurationSeconds": max(1, math.ceil(self.lease_duration)),
                     "acquireTime": now, "renewTime": now, "leaseTransitions": 0}
        if old is not None:
            transitions = int(old.get("leaseTransitions") or 0)
            if old.get("holderIdentity") == self.identity:
                spec["acquireTime"] = old.get("acquireTime") or now
                spec["leaseTransitions"] = transitions
            else:
                spec["leaseTransitions"] = transitions + 1
        return spec

    def _observe(self, lease: Obj) -> None:
        spec = lease.get("spec") or {}
        if spec != self._observed:
            self._observed = dict(spec)
            self._observed_at = asyncio.get_running_loop().time()
        self._observed_rv = (lease.get("metadata") or {}).get("resourceVersion")
        holder = spec.get("holderIdentity") or ""
        if holder != self._reported_leader:
            self._reported_leader = holder
            if holder and self.on_new_leader is not None:
                try:
                    self.on_new_leader(holder)  # a plain function: it must not block
                except Exception:
                    log.exception("on_new_leader callback failed")

    async def try_acquire_or_renew(self) -> bool:
        """One attempt: whether this candidate holds the lease afterwards."""
        now = asyncio.get_running_loop().time()
        try:
            lease = await self.client.get(LEASES, self.name, self.namespace)
        except NotFound:
            lease = None
        if lease is None:
            body = {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                    "metadata": {"name": self.name, "namespace": self.namespace},
                    "spec": self._record(None)}
            try:
                created = await self.client.create(LEASES, body, self.namespace)
            except (AlreadyExists, Conflict):
                return False
            self._observe(created)
            return True
        self._observe(lease)
        spec = lease.get("spec") or {}
        holder = spec.get("holderIdentity") or ""
        if holder and holder != self.identity and self._observed_at + self.lease_duration > now:
            return False  # someone else holds a lease that has not expired
        lease = {**lease, "spec": self._record(spec)}
        try:
            updated = await self.client.update(LEASES, lease, self.namespace)
        except Conflict:
            return False
        self._observe(updated)
        return True

    async def _attempt(self) -> bool:
        try:
            async with asyncio.timeout(self.renew_deadline):
                return await self.try_acquire_or_renew()
        except TimeoutError:
            log.info("%s: attempt timed out", self._tasks.owner)
        except (ApiError, ConnectionError) as exc:
            log.info("%s: attempt failed: %s", self._tasks.owner, exc)
        return False

    # -- the loops -------------------------------------------------------------------------

    async def _acquire(self) -> None:
        while True:
            if await self._attempt():
                return
            period = self.retry_period * (1 + random.random() * JITTER_FACTOR)
            await asyncio.sleep(period)

    async def _renew(self) -> None:
        """Renew until a renewal does not succeed within the renew deadline."""
        loop = asyncio.get_running_loop()
        while True:
            deadline = loop.time() + self.renew_deadline
            while True:
                if await self._attempt():
                    break
                if loop.time() + self.retry_period >= deadline:
                    log.warning("%s: failed to renew the lease within %.1fs; stopping leading",
                                self._tasks.owner, self.renew_deadline)
                    return
                await asyncio.sleep(self.retry_period)
            await asyncio.sleep(self.retry_period)

    async def run(self) -> None:
        """Acquire, lead while renewing, return when leadership is lost.  Cancelling it
        stops leading (and releases the lease if ``release_on_cancel``)."""
        try:
            await self._acquire()
            self._leading = True
            log.info("%s: %s became leader", self._tasks.owner, self.identity)
            self._tasks.start("leading", self.on_started_leading())
            await self._renew()
        finally:
            was_leading, self._leading = self._leading, False
            await self._tasks.stop()
            if was_leading and self.release_on_cancel:
                with contextlib.suppress(Exception):
                    await asyncio.shield(self._release())
            await _call(self.on_stopped_leading)

    async def _release(self) -> None:
        """Give the lease up: no holder, a 1 s duration, so the next candidate takes it.

        A renewal cut short by the cancellation may have landed without being seen, leaving
        the observed resourceVersion stale: on a conflict the lease is read again and
        released if it is still ours."""
        if self._observed is None or self._observed.get("holderIdentity") != self.identity:
            return
        async with asyncio.timeout(self.renew_deadline):
            for _ in range(RELEASE_ATTEMPTS):
                now = now_rfc3339_micro()
                lease = {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                         "metadata": {"name": self.name, "namespace": self.namespace,
                                      "resourceVersion": self._observed_rv},
                         "spec": {"holderIdentity": "", "leaseDurationSeconds": 1, "acquireTime": now,
                                  "renewTime": now,
                                  "leaseTransitions": int(self._observed.get("leaseTransitions") or 0)}}
                try:
                    await self.client.update(LEASES, lease, self.namespace)
                    return
                except Conflict:
                    self._observe(await self.client.get(LEASES, self.name, self.namespace))
                    if self._observed.get("holderIdentity") != self.identity:
                        return
