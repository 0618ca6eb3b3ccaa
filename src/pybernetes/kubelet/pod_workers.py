"""Pod workers (upstream kubelet's podWorkers and PLEG): one asyncio task per pod bound to the
node, which syncs the pod whenever something about it changed — its object (informer events),
its containers (the relist below), a probe result, a back-off running out — and at least every
``pod_sync.RESYNC`` seconds.  Syncs of one pod never overlap; different pods sync concurrently.

A pod's life here, as upstream:

1. **sync** while it should run (pod_sync.PodSyncer.sync), posting each status;
2. **terminating** once it has a deletionTimestamp: its containers are stopped within the
   grace period, the final status is posted, and the pod object is deleted (grace 0);
3. **terminated** when the object is gone: everything it left is removed (containers,
   sandboxes, volumes, its directory) and the worker ends.  A pod removed from the API
   without a graceful deletion is stopped with a short grace period first.

The relist task lists the runtime's containers every ``relist_period`` seconds and wakes the
workers of pods whose containers changed state (how the kubelet sees a container exit).  After
the pods are first listed, ``adopt`` removes what the runtime has for pods that no longer
exist (the kubelet was down when they were deleted), and leaves the others' containers
running: the workers take them over.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field
from typing import Any

from pybernetes.client.tasks import TaskSet
from pybernetes.kubelet.pod_sync import PodSyncer
from pybernetes.kubelet.runtime.protocol import ContainerState, RuntimeError_
from pybernetes.kubelet.status_manager import StatusManager

log = logging.getLogger(__name__)

Obj = dict[str, Any]
FORCED_GRACE = 2.0  # seconds given to the containers of a pod deleted without a grace period
ERROR_RETRY = 2.0


@dataclass
class _Worker:
    pod: Obj
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    removed: bool = False
    terminated: bool = False
    task: asyncio.Task[None] | None = None


def _uid(pod: Obj) -> str:
    return (pod.get("metadata") or {}).get("uid", "")


def _desired(pod: Obj) -> tuple[Any, ...]:
    """What of a pod asks the kubelet to act: its spec, labels, annotations and deletion."""
    meta = pod.get("metadata") or {}
    return (pod.get("spec"), meta.get("labels"), meta.get("annotations"), meta.get("deletionTimestamp"),
            meta.get("deletionGracePeriodSeconds"))


class PodWorkers:
    def __init__(self, syncer: PodSyncer, status: StatusManager, *, relist_period: float = 1.0) -> None:
        self.syncer = syncer
        self.status = status
        self.relist_period = relist_period
        self._workers: dict[str, _Worker] = {}
        self._tasks = TaskSet("pod-workers")
        self._seen: dict[str, tuple[str, str]] = {}  # container id -> (state, pod uid)
        self.syncs = 0

    # -- from the informer --------------------------------------------------------------------------

    def update(self, pod: Obj) -> None:
        """A pod was added or changed.  A change of its status alone (mostly the kubelet's own
        writes coming back) does not wake its worker, as upstream's pod config does not."""
        uid = _uid(pod)
        worker = self._workers.get(uid)
        if worker is None:
            worker = self._workers[uid] = _Worker(pod)
            meta = pod.get("metadata") or {}
            worker.task = self._tasks.start(f"pod/{meta.get('namespace')}/{meta.get('name')}", self._work(uid))
        else:
            changed = _desired(worker.pod) != _desired(pod)
            worker.pod = pod
            if not changed:
                return
        worker.wake.set()

    def delete(self, pod: Obj) -> None:
        worker = self._workers.get(_uid(pod))
        if worker is not None:
            worker.removed = True
            worker.wake.set()

    def wake(self, uid: str) -> None:
        worker = self._workers.get(uid)
        if worker is not None:
            worker.wake.set()

    def known(self) -> set[str]:
        return set(self._workers)

    def pod(self, uid: str) -> Obj | None:
        worker = self._workers.get(uid)
        return worker.pod if worker is not None else None

    def container_running(self, container_id: str) -> bool:
        """As the last relist saw it."""
        seen = self._seen.get(container_id)
        return seen is not None and seen[0] == ContainerState.RUNNING.value

    def running_containers(self) -> list[str]:
        return [cid for cid, (state, _) in self._seen.items() if state == ContainerState.RUNNING.value]

    # -- running ------------------------------------------------------------------------------------

    def start(self) -> None:
        self._tasks.start("relist", self._relist_loop())

    async def stop(self) -> None:
        """Stop the workers; the containers keep running (a restarted kubelet adopts them)."""
        await self._tasks.stop(grace=2.0)

    async def adopt(self, pods: list[Obj]) -> list[str]:
        """After the first list: remove what the runtime holds for pods that no longer exist;
        returns their UIDs."""
        alive = {_uid(p) for p in pods} | set(self._workers)
        gone = {s.config.uid for s in await self.syncer.runtime.list_pod_sandboxes()} - alive
        for uid in sorted(gone):
            log.info("pod %s no longer exists: removing its containers", uid)
            await self.syncer.cleanup(uid)
        return sorted(gone)

    async def _work(self, uid: str) -> None:
        worker = self._workers[uid]
        while True:
            worker.wake.clear()
            pod = self.status.latest(worker.pod)
            next_sync: float | None = None
            try:
                if worker.removed:
                    if not worker.terminated:
                        grace = (pod.get("metadata") or {}).get("deletionGracePeriodSeconds")
                        await self.syncer.terminate(pod, min(float(grace), FORCED_GRACE) if grace is not None
                                                    else FORCED_GRACE)
                    await self.syncer.cleanup(uid)
                    self.status.forget(uid)
                    del self._workers[uid]
                    return
                if (pod.get("metadata") or {}).get("deletionTimestamp"):
                    if not worker.terminated:
                        grace = float((pod.get("metadata") or {}).get("deletionGracePeriodSeconds") or 0)
                        status = await self.syncer.terminate(pod, grace)
                        worker.terminated = True
                        self.status.set(pod, status, delete=True)
                else:
                    result = await self.syncer.sync(pod)
                    self.syncs += 1
                    self.status.set(pod, result.status)
                    next_sync = result.next_sync
            except asyncio.CancelledError:
                raise
            except Exception:  # one pod's failure must not stop its worker: log it, try again
                log.exception("pod %s: sync failed", uid)
                next_sync = ERROR_RETRY
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(worker.wake.wait(), next_sync)

    # -- the relist (PLEG) ----------------------------------------------------------------------------

    async def relist(self) -> None:
        sandboxes = {s.id: s.config.uid for s in await self.syncer.runtime.list_pod_sandboxes()}
        seen: dict[str, tuple[str, str]] = {}
        for status in await self.syncer.runtime.list_containers():
            uid = sandboxes.get(status.sandbox_id, "")
            seen[status.id] = (status.state.value, uid)
            if self._seen.get(status.id) != seen[status.id]:
                self.wake(uid)
        for container_id, (_, uid) in self._seen.items():
            if container_id not in seen:
                self.wake(uid)
        self._seen = seen

    async def _relist_loop(self) -> None:
        while True:
            try:
                await self.relist()
            except RuntimeError_ as exc:
                log.warning("relist failed: %s", exc)
            await asyncio.sleep(self.relist_period)
