"""The kubelet's pod status writer (upstream's status manager): pod workers hand it the status
each sync computed; it sends only what changed, one writer task draining a set of dirty pods
(so a burst of syncs of one pod costs one write), and for a pod whose deletion the kubelet has
finished it sends the final status and then deletes the pod object (grace period 0, with its
UID as precondition), as upstream's kubelet does.

The kubelet owns a pod's status: the last status sent is what the next sync starts from
(``latest``), so lastTransitionTimes and startTime hold even before the informer has seen the
write; fields others own (PodScheduled, nominatedNodeName ...) come from the API's copy.

Writes of different pods go out concurrently (``WRITERS`` at a time).  A write is a merge patch of ``status`` (lists such as conditions and containerStatuses are
replaced whole).  A failed write stays dirty and is retried with back-off; a pod that is gone
(404) is forgotten.
"""

from __future__ import annotations

import asyncio
import copy
import logging
from typing import Any

from pybernetes.client.errors import ApiError, ConnectionFailed, NotFound
from pybernetes.client.rest import RestClient

log = logging.getLogger(__name__)

Obj = dict[str, Any]
PODS = ("", "v1", "pods")
OWNED = ("phase", "conditions", "containerStatuses", "initContainerStatuses", "startTime", "podIP", "podIPs",
         "hostIP", "hostIPs", "reason", "message")
RETRY_INITIAL = 0.2
RETRY_CAP = 10.0
WRITERS = 8  # status writes in flight at once


class StatusManager:
    def __init__(self, client: RestClient) -> None:
        self.client = client
        self._sent: dict[str, Obj] = {}  # uid -> last status sent
        self._wanted: dict[str, tuple[Obj, Obj, bool]] = {}  # uid -> (pod, status, delete after)
        self._dirty: dict[str, None] = {}
        self._wake = asyncio.Event()
        self._slots = asyncio.Semaphore(WRITERS)
        self._inflight: set[asyncio.Task[None]] = set()
        self.writes = 0

    def latest(self, pod: Obj) -> Obj:
        """``pod`` with the kubelet-owned status fields as last computed (a copy)."""
        uid = (pod.get("metadata") or {}).get("uid", "")
        mine = self._wanted.get(uid, (None, self._sent.get(uid), False))[1]
        if not mine:
            return pod
        out = dict(pod)
        status = dict(pod.get("status") or {})
        for key in OWNED:
            if key in mine:
                status[key] = copy.deepcopy(mine[key])
        out["status"] = status
        return out

    def set(self, pod: Obj, status: Obj, *, delete: bool = False) -> None:
        uid = (pod.get("metadata") or {}).get("uid", "")
        if not delete and self._sent.get(uid) == status:
            self._wanted.pop(uid, None)
            return
        self._wanted[uid] = (pod, status, delete)
        self._dirty[uid] = None
        self._wake.set()

    def forget(self, uid: str) -> None:
        self._sent.pop(uid, None)
        self._wanted.pop(uid, None)
        self._dirty.pop(uid, None)

    def pending(self) -> int:
        return len(self._dirty)

    async def run(self) -> None:
        """Write dirty pods, up to ``WRITERS`` at once (a burst of new pods is not written one
        by one); one pod is never written twice at the same time."""
        delay = RETRY_INITIAL
        writing: set[str] = set()
        failed = False

        async def write(uid: str) -> None:
            nonlocal failed
            try:
                await self._write(uid)
            except (ApiError, ConnectionFailed) as exc:
                log.warning("pod %s: status write failed: %s", uid, exc)
                self._dirty[uid] = None
                failed = True
            finally:
                writing.discard(uid)
                self._slots.release()
                self._wake.set()

        while True:
            await self._wake.wait()
            self._wake.clear()
            for uid in [u for u in self._dirty if u not in writing]:
                if failed:
                    break
                await self._slots.acquire()
                del self._dirty[uid]
                writing.add(uid)
                task = asyncio.get_running_loop().create_task(write(uid), name=f"pod-status/{uid}")
                self._inflight.add(task)
                task.add_done_callback(self._inflight.discard)
            if failed:
                failed = False
                await asyncio.sleep(delay)
                delay = min(delay * 2, RETRY_CAP)
                self._wake.set()
            elif not self._dirty:
                delay = RETRY_INITIAL

    async def _write(self, uid: str) -> None:
        wanted = self._wanted.get(uid)
        if wanted is None:
            return
        pod, status, delete = wanted
        meta = pod.get("metadata") or {}
        name, namespace = meta.get("name", ""), meta.get("namespace", "")
        try:
            if self._sent.get(uid) != status:
                await self.client.patch(PODS, name, {"metadata": {"uid": uid}, "status": status}, namespace,
                                        subresource="status")
                self.writes += 1
                self._sent[uid] = status
            if delete:
                await self.client.delete(PODS, name, namespace, grace_period_seconds=0, preconditions={"uid": uid})
        except NotFound:
            self.forget(uid)
            return
        if self._wanted.get(uid) is wanted:
            del self._wanted[uid]
