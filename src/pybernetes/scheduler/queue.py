"""The scheduling queue: which pending pod the scheduler tries next (upstream's PriorityQueue in
pkg/scheduler/internal/queue).  Pure asyncio bookkeeping, no I/O.

Four places a pending pod can be:

- **active** — a heap ordered by the profile's QueueSort ``less`` (PrioritySort: priority, then
  the time the pod was queued); ``pop()`` takes the head, waiting when it is empty.
- **backoff** — pods that failed and wait ``initial_backoff * 2**(attempts-1)`` seconds (capped at
  ``max_backoff``) from the time they were re-queued; ``flush(now)`` moves the ones done to active.
- **unschedulable** — pods the plugins rejected; they return (to backoff while still backing off,
  else to active) only when a cluster event arrives that one of their rejecting plugins registered
  (``events_by_plugin``), when the pod itself changes in a way that may matter, or after
  ``unschedulable_timeout`` seconds (``flush``).
- **gated** — pods a PreEnqueue plugin refused (schedulingGates ...); kept aside and checked again
  when the pod is updated or an event its gating plugin registered arrives.

A popped pod is *in flight* until ``add_unschedulable`` (it failed) or ``done`` (call it when the
binding cycle ends, as upstream does, so that updates of the pod meanwhile don't queue it again).
An event arriving during its cycle means the rejection may already be stale, so
``add_unschedulable`` sends it to backoff rather than to unschedulable (upstream's
moveRequestCycle).  Nominated pods (preemptors waiting for victims to leave) are remembered per
node for the Filter of lower-priority pods.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from pybernetes.scheduler.framework import ClusterEvent, Status
from pybernetes.scheduler.nodeinfo import pod_key

Obj = dict[str, Any]

# Upstream's special events: everything matches them.
WILDCARD_EVENT = ClusterEvent("*", "*")
UNSCHEDULABLE_TIMEOUT = ClusterEvent("*", "UnschedulableTimeout")
FORCE_ACTIVATE = ClusterEvent("*", "ForceActivate")
ASSIGNED_POD_ADD = ClusterEvent("Pod", "Add")
ASSIGNED_POD_UPDATE = ClusterEvent("Pod", "Update")
ASSIGNED_POD_DELETE = ClusterEvent("Pod", "Delete")
NODE_ADD = ClusterEvent("Node", "Add")


class Closed(Exception):
    """The queue was closed: ``pop()`` has nothing more to give."""


@dataclass(slots=True, eq=False)
class QueuedPodInfo:
    """A pending pod and its scheduling history."""

    pod: Obj
    timestamp: float  # when (re-)queued; QueueSort's tie-breaker
    attempts: int = 0
    initial_attempt_timestamp: float | None = None  # the first pop
    unschedulable_plugins: set[str] = field(default_factory=set)
    pending_plugins: set[str] = field(default_factory=set)
    gated: bool = False
    gating_plugin: str = ""

    @property
    def key(self) -> str:
        return pod_key(self.pod)

    def priority(self) -> int:
        return int((self.pod.get("spec") or {}).get("priority") or 0)


def priority_then_timestamp(a: QueuedPodInfo, b: QueuedPodInfo) -> bool:
    """PrioritySort's order: higher priority first, then the earlier queued."""
    pa, pb = a.priority(), b.priority()
    return pa > pb or (pa == pb and a.timestamp < b.timestamp)


def priority_key(info: QueuedPodInfo) -> tuple[int, float]:
    """``priority_then_timestamp`` as a sort key."""
    return -info.priority(), info.timestamp


def action_matches(registered: str, happened: str) -> bool:
    """Whether a plugin registered for ``registered`` cares about ``happened``.  Upstream's actions
    are bit sets: "Update" is every Update* kind, "*"/"All" everything."""
    if registered == happened or registered in ("*", "All") or happened in ("*", "All"):
        return True
    if registered == "Update":
        return happened.startswith("Update")
    if happened == "Update":
        return registered.startswith("Update")
    return False


def event_matches(registered: ClusterEvent, happened: ClusterEvent) -> bool:
    if registered.resource not in ("*", happened.resource) and happened.resource != "*":
        return False
    return action_matches(registered.action, happened.action)


def is_pod_updated(old: Obj, new: Obj) -> bool:
    """Whether an update may change the pod's schedulability: anything but its status,
    resourceVersion, generation, managedFields and finalizers."""

    def strip(pod: Obj) -> Obj:
        out = {k: v for k, v in pod.items() if k != "status"}
        claims = (pod.get("status") or {}).get("resourceClaimStatuses")
        if claims:
            out["status"] = {"resourceClaimStatuses": claims}
        meta = dict(out.get("metadata") or {})
        for k in ("resourceVersion", "generation", "managedFields", "finalizers"):
            meta.pop(k, None)
        out["metadata"] = meta
        return out

    return strip(old) != strip(new)


def _nominated_node_name(pod: Obj) -> str:
    return (pod.get("status") or {}).get("nominatedNodeName") or ""


class _Item:
    """An active-heap entry (removed lazily: valid while ``queue._active[key] is self``)."""

    __slots__ = ("info", "seq", "less")

    def __init__(self, info: QueuedPodInfo, seq: int, less: Callable[[QueuedPodInfo, QueuedPodInfo], bool]):
        self.info, self.seq, self.less = info, seq, less

    def __lt__(self, other: _Item) -> bool:
        if self.less(self.info, other.info):
            return True
        if self.less(other.info, self.info):
            return False
        return self.seq < other.seq


class _KeyedItem:
    """An active-heap entry ordered by the QueueSort plugin's ``sort_key``, computed once when
    pushed (a pod that changes is pushed again), then the push order."""

    __slots__ = ("info", "key")

    def __init__(self, info: QueuedPodInfo, seq: int, sort_key: Callable[[QueuedPodInfo], Any]):
        self.info, self.key = info, (sort_key(info), seq)

    def __lt__(self, other: _KeyedItem) -> bool:
        return self.key < other.key


class SchedulingQueue:
    """The pending pods of a scheduler (see the module docstring)."""

    def __init__(self, less: Callable[[QueuedPodInfo, QueuedPodInfo], bool] | None = None,
                 pre_enqueue: Callable[[Obj], Status] | None = None, clock: Callable[[], float] = time.monotonic,
                 initial_backoff: float = 1.0, max_backoff: float = 10.0, unschedulable_timeout: float = 300.0,
                 events_by_plugin: Mapping[str, Iterable[ClusterEvent]] | None = None,
                 sort_key: Callable[[QueuedPodInfo], Any] | None = None) -> None:
        """``less`` orders the active pods (QueueSort); ``sort_key``, when given, is an
        equivalent key (a < b exactly when key(a) < key(b)) that the heap compares instead."""
        self._less = less or priority_then_timestamp
        self._sort_key = sort_key if sort_key is not None else (None if less else priority_key)
        self._pre_enqueue = pre_enqueue
        self.clock = clock
        self.initial_backoff = initial_backoff
        self.max_backoff = max_backoff
        self.unschedulable_timeout = unschedulable_timeout
        self.events_by_plugin = {name: frozenset(evs) for name, evs in (events_by_plugin or {}).items()}
        self._seq = itertools.count()
        self._active: dict[str, _Item | _KeyedItem] = {}
        self._active_heap: list[_Item | _KeyedItem] = []
        self._backoff: dict[str, tuple[float, int, QueuedPodInfo]] = {}
        self._backoff_heap: list[tuple[float, int, str]] = []
        self._unschedulable: dict[str, QueuedPodInfo] = {}
        self._gated: dict[str, QueuedPodInfo] = {}
        # Popped and not finished: key -> the latest pod seen during the cycle (None: deleted).
        self._in_flight: dict[str, Obj | None] = {}
        self._nominated: dict[str, dict[str, Obj]] = {}  # node -> pod key -> pod
        self._nominated_node: dict[str, str] = {}  # pod key -> node
        self.scheduling_cycle = 0
        self.move_request_cycle = -1
        self._closed = False
        self._wakeup: asyncio.Event | None = None

    # -- the places -------------------------------------------------------------------------

    def _push_active(self, info: QueuedPodInfo) -> None:
        info.gated = False
        info.gating_plugin = ""
        item = _KeyedItem(info, next(self._seq), self._sort_key) if self._sort_key is not None \
            else _Item(info, next(self._seq), self._less)
        self._active[info.key] = item
        heapq.heappush(self._active_heap, item)
        if len(self._active_heap) > 2 * len(self._active) + 64:
            self._active_heap = list(self._active.values())
            heapq.heapify(self._active_heap)
        if self._wakeup is not None:
            self._wakeup.set()

    def _push_backoff(self, info: QueuedPodInfo) -> None:
        expiry = self.backoff_expiry(info)
        seq = next(self._seq)
        self._backoff[info.key] = (expiry, seq, info)
        heapq.heappush(self._backoff_heap, (expiry, seq, info.key))
        if len(self._backoff_heap) > 2 * len(self._backoff) + 64:
            self._backoff_heap = [(e, s, k) for k, (e, s, _) in self._backoff.items()]
            heapq.heapify(self._backoff_heap)

    def _take(self, key: str) -> QueuedPodInfo | None:
        """Remove ``key`` from whichever place holds it."""
        item = self._active.pop(key, None)
        if item is not None:
            return item.info
        entry = self._backoff.pop(key, None)
        if entry is not None:
            return entry[2]
        info = self._unschedulable.pop(key, None)
        if info is not None:
            return info
        return self._gated.pop(key, None)

    def _enqueue(self, info: QueuedPodInfo) -> None:
        """Active, or gated when a PreEnqueue plugin says no."""
        if self._pre_enqueue is not None:
            status = self._pre_enqueue(info.pod)
            if not status.is_success():
                info.gated = True
                info.gating_plugin = status.plugin
                self._gated[info.key] = info
                return
        self._push_active(info)

    def _requeue(self, info: QueuedPodInfo) -> None:
        """Back from unschedulable: to backoff while backing off, else active (if not gated)."""
        if self.is_backing_off(info):
            self._push_backoff(info)
        else:
            self._enqueue(info)

    def backoff_duration(self, info: QueuedPodInfo) -> float:
        duration = self.initial_backoff
        for _ in range(1, info.attempts):
            duration *= 2
            if duration >= self.max_backoff:
                return self.max_backoff
        return min(duration, self.max_backoff)

    def backoff_expiry(self, info: QueuedPodInfo) -> float:
        return info.timestamp + self.backoff_duration(info)

    def is_backing_off(self, info: QueuedPodInfo, now: float | None = None) -> bool:
        if info.attempts == 0:
            return False
        return self.backoff_expiry(info) > (self.clock() if now is None else now)

    # -- pods from the informer (unassigned pods) ---------------------------------------------

    def add(self, pod: Obj) -> None:
        """A new pending pod."""
        self._take(pod_key(pod))  # a re-add replaces any stale copy
        self._update_nomination(None, pod)
        self._enqueue(QueuedPodInfo(pod, self.clock()))

    def update(self, old: Obj | None, new: Obj) -> None:
        """The pod changed: refresh it where it is; a change that may matter moves it out of
        unschedulable; a gated pod is checked again."""
        key = pod_key(new)
        self._update_nomination(old, new)
        if key in self._in_flight:
            self._in_flight[key] = new
            return
        item = self._active.get(key)
        if item is not None:
            del self._active[key]
            item.info.pod = new
            self._push_active(item.info)
            return
        entry = self._backoff.get(key)
        if entry is not None:
            entry[2].pod = new
            return
        info = self._gated.pop(key, None)
        if info is not None:
            info.pod = new
            self._enqueue(info)
            return
        info = self._unschedulable.get(key)
        if info is not None:
            moved = old is None or is_pod_updated(old, new)
            info.pod = new
            if moved:
                del self._unschedulable[key]
                self._requeue(info)
            return
        self._enqueue(QueuedPodInfo(new, self.clock()))

    def delete(self, pod: Obj) -> None:
        """The pod is gone (deleted, or bound and so no longer pending)."""
        key = pod_key(pod)
        self.delete_nominated(pod)
        if key in self._in_flight:
            self._in_flight[key] = None
        self._take(key)

    # -- the scheduling loop -------------------------------------------------------------------

    async def pop(self) -> QueuedPodInfo:
        """The next pod to schedule; waits until one is active.  Raises ``Closed`` once closed."""
        while True:
            if self._closed:
                raise Closed("scheduling queue closed")
            while self._active_heap:
                item = heapq.heappop(self._active_heap)
                info = item.info
                if self._active.get(info.key) is not item:
                    continue
                del self._active[info.key]
                self.scheduling_cycle += 1
                info.attempts += 1
                if info.initial_attempt_timestamp is None:
                    info.initial_attempt_timestamp = self.clock()
                info.unschedulable_plugins = set()
                info.pending_plugins = set()
                self._in_flight[info.key] = info.pod
                return info
            if self._wakeup is None:
                self._wakeup = asyncio.Event()
            self._wakeup.clear()
            await self._wakeup.wait()

    def close(self) -> None:
        self._closed = True
        if self._wakeup is not None:
            self._wakeup.set()

    def done(self, key: str) -> None:
        """The scheduling cycle of ``key`` finished (placed, or given up)."""
        self._in_flight.pop(key, None)

    def add_unschedulable(self, info: QueuedPodInfo, scheduling_cycle: int) -> None:
        """Back into the queue after a failed attempt begun in ``scheduling_cycle``: to
        unschedulable, or to backoff when an event arrived since that cycle began (the rejection
        may be stale) or no plugin rejected it (an error)."""
        key = info.key
        latest = self._in_flight.pop(key, info.pod)
        if latest is None:
            return  # deleted while being scheduled
        if key in self._active or key in self._backoff or key in self._unschedulable or key in self._gated:
            return  # already back (re-added meanwhile)
        changed = latest is not info.pod and is_pod_updated(info.pod, latest)
        info.pod = latest
        info.timestamp = self.clock()
        if (self.move_request_cycle >= scheduling_cycle or changed
                or not (info.unschedulable_plugins or info.pending_plugins)):
            self._push_backoff(info)
        else:
            self._unschedulable[key] = info

    def flush(self, now: float | None = None) -> None:
        """Periodic: backoff-completed pods to active; pods unschedulable for longer than
        ``unschedulable_timeout`` back to backoff/active."""
        now = self.clock() if now is None else now
        heap = self._backoff_heap
        while heap and heap[0][0] <= now:
            expiry, seq, key = heapq.heappop(heap)
            entry = self._backoff.get(key)
            if entry is None or entry[1] != seq:
                continue
            del self._backoff[key]
            self._enqueue(entry[2])
        stale = [info for info in self._unschedulable.values()
                 if now - info.timestamp > self.unschedulable_timeout]
        if stale:
            self._move(stale, UNSCHEDULABLE_TIMEOUT, None, now)

    # -- cluster events ------------------------------------------------------------------------

    def _interested(self, info: QueuedPodInfo, event: ClusterEvent) -> bool:
        if event.resource == "*" or event == WILDCARD_EVENT:
            return True
        plugins = info.unschedulable_plugins | info.pending_plugins
        if info.gated:
            plugins = {info.gating_plugin} if info.gating_plugin else set()
        if not plugins:
            return True
        for name in plugins:
            registered = self.events_by_plugin.get(name)
            if registered is None:
                return True  # a plugin that registered nothing is woken by everything
            if any(event_matches(r, event) for r in registered):
                return True
        return False

    def _move(self, infos: list[QueuedPodInfo], event: ClusterEvent,
              pre_check: Callable[[Obj], bool] | None, now: float) -> int:
        moved = 0
        for info in infos:
            if pre_check is not None and not pre_check(info.pod):
                continue
            key = info.key
            if info.gated:
                del self._gated[key]
                self._enqueue(info)
            else:
                del self._unschedulable[key]
                if self.is_backing_off(info, now):
                    self._push_backoff(info)
                else:
                    self._enqueue(info)
            moved += 1
        self.move_request_cycle = self.scheduling_cycle
        return moved

    def move_all_to_active_or_backoff(self, event: ClusterEvent,
                                      pre_check: Callable[[Obj], bool] | None = None) -> int:
        """A cluster event: move the unschedulable (and gated) pods one of whose rejecting plugins
        registered it; returns how many moved."""
        candidates = [i for i in self._unschedulable.values() if self._interested(i, event)]
        candidates += [i for i in self._gated.values() if self._interested(i, event)]
        return self._move(candidates, event, pre_check, self.clock())

    def assigned_pod_added(self, pod: Obj) -> int:
        return self.move_all_to_active_or_backoff(ASSIGNED_POD_ADD)

    def assigned_pod_updated(self, old: Obj | None, new: Obj) -> int:
        return self.move_all_to_active_or_backoff(ASSIGNED_POD_UPDATE)

    def assigned_pod_deleted(self, pod: Obj) -> int:
        return self.move_all_to_active_or_backoff(ASSIGNED_POD_DELETE)

    def node_added(self, node: Obj, pre_check: Callable[[Obj], bool] | None = None) -> int:
        return self.move_all_to_active_or_backoff(NODE_ADD, pre_check)

    # -- nominated pods ------------------------------------------------------------------------

    def add_nominated(self, pod: Obj, node_name: str) -> None:
        """``pod`` waits for room on ``node_name`` (preemption); lower-priority pods must leave it."""
        key = pod_key(pod)
        self.delete_nominated(pod)
        if node_name:
            self._nominated.setdefault(node_name, {})[key] = pod
            self._nominated_node[key] = node_name

    def delete_nominated(self, pod: Obj) -> None:
        key = pod_key(pod)
        node = self._nominated_node.pop(key, None)
        if node is not None:
            pods = self._nominated.get(node)
            if pods is not None:
                pods.pop(key, None)
                if not pods:
                    del self._nominated[node]

    def nominated_nodes(self) -> Collection[str]:
        """The names of the nodes some pod is nominated to."""
        return self._nominated.keys()

    def nominated_pods_for_node(self, node_name: str) -> list[Obj]:
        return list((self._nominated.get(node_name) or {}).values())

    def nominated_node(self, pod: Obj) -> str:
        return self._nominated_node.get(pod_key(pod), "")

    def _update_nomination(self, old: Obj | None, new: Obj) -> None:
        name = _nominated_node_name(new)
        key = pod_key(new)
        if name:
            self.add_nominated(new, name)
        elif (old is None or not _nominated_node_name(old)) and key in self._nominated_node:
            # No nominatedNodeName on either side: keep the in-memory nomination, newer pod.
            self.add_nominated(new, self._nominated_node[key])
        else:
            self.delete_nominated(new)

    # -- inspection ----------------------------------------------------------------------------

    def pending_counts(self) -> dict[str, int]:
        return {"active": len(self._active), "backoff": len(self._backoff),
                "unschedulable": len(self._unschedulable), "gated": len(self._gated)}

    def where(self, key: str) -> str | None:
        """"active", "backoff", "unschedulable", "gated", "in-flight" or None."""
        for name, place in (("active", self._active), ("backoff", self._backoff),
                            ("unschedulable", self._unschedulable), ("gated", self._gated),
                            ("in-flight", self._in_flight)):
            if key in place:
                return name
        return None

    def get(self, key: str) -> QueuedPodInfo | None:
        item = self._active.get(key)
        if item is not None:
            return item.info
        entry = self._backoff.get(key)
        if entry is not None:
            return entry[2]
        return self._unschedulable.get(key) or self._gated.get(key)

    def __len__(self) -> int:
        return len(self._active) + len(self._backoff) + len(self._unschedulable) + len(self._gated)
