"""The pod garbage collector (upstream pkg/controller/podgc): a periodic sweep over every pod.

Owns, each pass (every ``podgc_interval`` seconds, default 20 — one fixed work-queue key
requeued with ``enqueue_after``):

- terminated pods (Succeeded/Failed) beyond ``terminated_pod_gc_threshold`` (default 12500;
  0 turns this off) are deleted, evicted pods first, then oldest first;
- terminating pods on a node that is not Ready and carries the
  ``node.kubernetes.io/out-of-service`` taint are force-deleted;
- orphaned pods — bound to a node that no longer exists — once the node has stayed missing
  for ``podgc_orphan_quarantine`` seconds (default 40, measured on ``self.clock``) and a
  fresh GET confirms it is gone: marked Failed with a ``DisruptionTarget`` condition (reason
  DeletionByPodGC), then force-deleted (grace period 0);
- terminating pods that were never scheduled (no nodeName: no kubelet will finish them) are
  marked Failed and force-deleted.

"Mark Failed" is a strategic-merge patch of the pod's status (phase Failed and the condition)
sent only when the pod is not already Succeeded/Failed, as upstream's apply of the status.
The choice of pods is pure (module functions); the controller makes the calls.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from pybernetes.client.errors import ApiError, NotFound
from pybernetes.controllers.base import Controller, Obj, key_of
from pybernetes.controllers.podutil import format_time, get_condition, parse_time

log = logging.getLogger(__name__)

PODS = "/v1/pods"
NODES = "/v1/nodes"
SWEEP_KEY = "podgc"
OUT_OF_SERVICE_TAINT = "node.kubernetes.io/out-of-service"
DEFAULT_INTERVAL = 20.0
DEFAULT_THRESHOLD = 12500
DEFAULT_QUARANTINE = 40.0
PARALLEL_DELETES = 20


# -- which pods ----------------------------------------------------------------------------------


def _phase(pod: Obj) -> str:
    return (pod.get("status") or {}).get("phase") or ""


def _node_name(pod: Obj) -> str:
    return (pod.get("spec") or {}).get("nodeName") or ""


def is_terminated(pod: Obj) -> bool:
    return _phase(pod) in ("Succeeded", "Failed")


def is_terminating(pod: Obj) -> bool:
    return bool((pod.get("metadata") or {}).get("deletionTimestamp"))


def _eviction_then_age(pod: Obj) -> tuple[int, float, str]:
    evicted = _phase(pod) == "Failed" and (pod.get("status") or {}).get("reason") == "Evicted"
    meta = pod.get("metadata") or {}
    return (0 if evicted else 1, parse_time(meta.get("creationTimestamp")) or 0.0, meta.get("name") or "")


def terminated_beyond_threshold(pods: list[Obj], threshold: int) -> list[Obj]:
    """The terminated pods to delete so that ``threshold`` remain: evicted ones first, then the
    oldest (ties by name)."""
    if threshold <= 0:
        return []
    terminated = [p for p in pods if is_terminated(p)]
    excess = len(terminated) - threshold
    if excess <= 0:
        return []
    return sorted(terminated, key=_eviction_then_age)[:excess]


def node_ready(node: Obj) -> bool:
    cond = get_condition((node.get("status") or {}).get("conditions"), "Ready")
    return cond is not None and cond.get("status") == "True"


def out_of_service_terminating(pods: list[Obj], nodes: dict[str, Obj]) -> list[Obj]:
    """Terminating pods on nodes that are not Ready and are tainted out-of-service."""
    chosen = []
    for pod in pods:
        node = nodes.get(_node_name(pod))
        if not is_terminating(pod) or node is None or node_ready(node):
            continue
        if any(t.get("key") == OUT_OF_SERVICE_TAINT for t in (node.get("spec") or {}).get("taints") or ()):
            chosen.append(pod)
    return sorted(chosen, key=_eviction_then_age)


def unscheduled_terminating(pods: list[Obj]) -> list[Obj]:
    return [p for p in pods if is_terminating(p) and not _node_name(p)]


def missing_nodes(pods: list[Obj], nodes: dict[str, Obj]) -> set[str]:
    """Node names pods are bound to that the node cache does not have."""
    return {name for p in pods if (name := _node_name(p)) and name not in nodes}


def disruption_condition(now: float) -> Obj:
    return {"type": "DisruptionTarget", "status": "True", "reason": "DeletionByPodGC",
            "message": "PodGC: node no longer exists", "lastTransitionTime": format_time(now)}


# -- the controller ------------------------------------------------------------------------------


class PodGCController(Controller):
    name = "podgc"
    component = "pod-garbage-collector"
    default_workers = 1

    def setup(self) -> None:
        self.pods = self.informer(PODS)
        self.nodes = self.informer(NODES)
        self.interval = float(self.options.get("podgc_interval", DEFAULT_INTERVAL))
        self.threshold = int(self.options.get("terminated_pod_gc_threshold", DEFAULT_THRESHOLD))
        self.quarantine = float(self.options.get("podgc_orphan_quarantine", DEFAULT_QUARANTINE))
        self._missing_since: dict[str, float] = {}  # node name -> when first seen missing
        self._limit = asyncio.Semaphore(PARALLEL_DELETES)
        self.passes = 0  # completed sweeps (tests and metrics)
        self.enqueue(SWEEP_KEY)

    async def sync(self, key: str) -> None:
        if key != SWEEP_KEY:
            return
        try:
            await self.sweep()
        finally:
            self.enqueue_after(SWEEP_KEY, self.interval)

    async def sweep(self) -> None:
        pods = self.pods.indexer.list()
        nodes = {n["metadata"]["name"]: n for n in self.nodes.indexer.list()}
        await self._each(self._delete, terminated_beyond_threshold(pods, self.threshold))
        await self._each(self._fail_and_delete, out_of_service_terminating(pods, nodes))
        gone = await self._deleted_nodes(pods, nodes)
        orphans = [p for p in pods if _node_name(p) in gone]
        if orphans:
            condition = disruption_condition(self.clock.now())
            await self._each(lambda pod: self._fail_and_delete(pod, condition), orphans)
        await self._each(self._fail_and_delete, unscheduled_terminating(pods))
        self.passes += 1

    async def _deleted_nodes(self, pods: list[Obj], nodes: dict[str, Obj]) -> set[str]:
        """Nodes missing for the whole quarantine and confirmed gone by the API server."""
        now = self.clock.now()
        missing = missing_nodes(pods, nodes)
        for name in list(self._missing_since):
            if name not in missing:
                del self._missing_since[name]
        gone: set[str] = set()
        for name in sorted(missing):
            since = self._missing_since.setdefault(name, now)
            if now - since < self.quarantine:
                continue
            try:
                await self.client.get(NODES, name)
            except NotFound:
                gone.add(name)
            except ApiError as err:
                log.warning("podgc: cannot check node %s: %s", name, err)
            else:
                del self._missing_since[name]  # it exists after all (the cache lagged)
        return gone

    async def _each(self, action: Any, pods: list[Obj]) -> None:
        async def one(pod: Obj) -> None:
            async with self._limit:
                try:
                    await action(pod)
                except NotFound:
                    pass
                except ApiError as err:
                    log.warning("podgc: %s: %s", key_of(pod), err)
        await asyncio.gather(*(one(p) for p in pods))

    async def _delete(self, pod: Obj) -> None:
        meta = pod["metadata"]
        log.info("podgc: deleting terminated pod %s", key_of(pod))
        await self.client.delete(PODS, meta["name"], meta.get("namespace"), grace_period_seconds=0)

    async def _fail_and_delete(self, pod: Obj, condition: Obj | None = None) -> None:
        meta = pod["metadata"]
        log.info("podgc: force deleting pod %s", key_of(pod))
        if not is_terminated(pod):
            status: Obj = {"phase": "Failed"}
            if condition is not None:
                status["conditions"] = [condition]
            await self.client.patch(PODS, meta["name"], {"status": status}, meta.get("namespace"),
                                    patch_type="strategic", subresource="status")
        await self.client.delete(PODS, meta["name"], meta.get("namespace"), grace_period_seconds=0)
