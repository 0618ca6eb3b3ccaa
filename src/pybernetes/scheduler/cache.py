"""The scheduler's cache of nodes and the pods on them (upstream's pkg/scheduler/internal/cache),
and the per-cycle ``Snapshot`` it keeps up to date cheaply.

Pods arrive from the informer (``add_pod``/``update_pod``/``remove_pod``: bound pods) and from
the scheduler itself: ``assume_pod`` puts a pod on its chosen node at once, so the next cycle
sees the decision before the binding lands; ``finish_binding`` starts the assumed pod's expiry
clock; ``forget_pod`` undoes an assumption whose binding failed; the informer's ``add_pod``
confirms it.  An assumed pod whose binding finished but that the informer never confirmed is
dropped by ``cleanup_expired`` after ``ttl`` seconds (0: never, upstream 1.32's default).

Terminated pods (Succeeded/Failed) hold no resources: they are not counted, and a pod that
terminates leaves its node (upstream's pod informer filters them out).  Pods bound to a node
the cache has not seen yet are kept aside and attached when the node arrives; a removed node's
pods are kept aside likewise until they are removed.

``snapshot()`` returns the one ``Snapshot`` the cache maintains (as upstream's UpdateSnapshot,
updated in place): only the nodes changed since the previous call are cloned again, so with
thousands of nodes and one pod placed per cycle a snapshot costs O(changed nodes).  Unchanged
``NodeInfo`` objects are the same objects across snapshots; the node order is stable (the order
nodes were added).  Only the scheduling cycle reads the snapshot; the cache's own NodeInfos are
never handed out.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pybernetes.scheduler.framework import NodeInfo, PodEntry
from pybernetes.scheduler.handle import Snapshot
from pybernetes.scheduler.nodeinfo import node_info_of, pod_entry, pod_key
from pybernetes.scheduler.nodetable import NodeTable

Obj = dict[str, Any]


class CacheError(Exception):
    """An operation the cache's state does not allow (assuming twice, forgetting a pod that was
    not assumed ...)."""


def node_name_of(pod: Obj) -> str:
    return (pod.get("spec") or {}).get("nodeName") or ""


def is_terminated(pod: Obj) -> bool:
    return (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed")


@dataclass(slots=True)
class _PodState:
    pod: Obj
    node: str
    assumed: bool = False
    binding_finished: bool = False
    deadline: float | None = None


class _Members:
    """An unordered list of NodeInfos kept by name: add, replace and remove in O(1)."""

    __slots__ = ("items", "index")

    def __init__(self) -> None:
        self.items: list[NodeInfo] = []
        self.index: dict[str, int] = {}

    def put(self, name: str, info: NodeInfo | None) -> None:
        pos = self.index.get(name)
        if info is not None:
            if pos is None:
                self.index[name] = len(self.items)
                self.items.append(info)
            else:
                self.items[pos] = info
        elif pos is not None:
            last = self.items.pop()
            del self.index[name]
            if pos < len(self.items):
                self.items[pos] = last
                self.index[last.name] = pos


class CacheSnapshot(Snapshot):
    """A ``Snapshot`` the cache updates in place, with the nodes that have pods with
    (anti-)affinity kept in step in O(1) per changed node."""

    tracks_changes = True

    def __init__(self) -> None:
        super().__init__([])
        self._index: dict[str, int] = {}
        self._affinity = _Members()
        self._anti_affinity = _Members()
        self.generation = 0  # bumped on every update that changed something
        self._table = NodeTable()  # kept in step by SchedulerCache.snapshot()

    def with_affinity(self) -> list[NodeInfo]:
        return self._affinity.items

    def with_required_anti_affinity(self) -> list[NodeInfo]:
        return self._anti_affinity.items

    def _track(self, name: str, old: NodeInfo | None, new: NodeInfo | None) -> None:
        """Keep the (anti-)affinity lists in step with node ``name`` going from ``old`` to ``new``."""
        if (old is not None and old.pods_with_affinity) or (new is not None and new.pods_with_affinity):
            self._affinity.put(name, new if new is not None and new.pods_with_affinity else None)
        if ((old is not None and old.pods_with_required_anti_affinity)
                or (new is not None and new.pods_with_required_anti_affinity)):
            self._anti_affinity.put(name, new if new is not None and new.pods_with_required_anti_affinity
                                    else None)


class SchedulerCache:
    """Nodes and the pods on them, bound and assumed (see the module docstring)."""

    def __init__(self, ttl: float = 0.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl = ttl
        self.clock = clock
        self._nodes: dict[str, NodeInfo] = {}  # insertion order = snapshot order
        self._pods: dict[str, _PodState] = {}  # pod key -> state
        self._assumed: set[str] = set()
        self._orphans: dict[str, dict[str, PodEntry]] = {}  # unknown node -> pod key -> entry
        # Node names changed since the last snapshot, in the order first changed (new nodes append
        # to the snapshot's list in the order they were added).
        self._dirty: dict[str, None] = {}
        self._removed: set[str] = set()  # node names removed since the last snapshot
        self._snapshot = CacheSnapshot()

    # -- pods ----------------------------------------------------------------------------------

    def _attach(self, key: str, pod: Obj, node: str) -> None:
        entry = pod_entry(pod)
        info = self._nodes.get(node)
        if info is None:
            self._orphans.setdefault(node, {})[key] = entry
            return
        info.add_entry(key, entry)
        self._dirty[node] = None

    def _detach(self, key: str, node: str) -> None:
        info = self._nodes.get(node)
        if info is not None:
            if info.remove(key) is not None:
                self._dirty[node] = None
            return
        orphans = self._orphans.get(node)
        if orphans is not None:
            orphans.pop(key, None)
            if not orphans:
                del self._orphans[node]

    def assume_pod(self, pod: Obj) -> None:
        """Put ``pod`` (with spec.nodeName set to the chosen node) on its node now."""
        key = pod_key(pod)
        node = node_name_of(pod)
        if not node:
            raise CacheError(f"pod {key} has no nodeName to assume")
        if key in self._pods:
            raise CacheError(f"pod {key} is in the cache, so can't be assumed")
        self._attach(key, pod, node)
        self._pods[key] = _PodState(pod, node, assumed=True)
        self._assumed.add(key)

    def finish_binding(self, pod: Obj, now: float | None = None) -> None:
        """The binding request of an assumed pod finished; its expiry clock starts."""
        state = self._pods.get(pod_key(pod))
        if state is None or not state.assumed:
            return
        state.binding_finished = True
        if self.ttl > 0:
            state.deadline = (self.clock() if now is None else now) + self.ttl

    def forget_pod(self, pod: Obj) -> None:
        """Undo an assumption (the binding failed)."""
        key = pod_key(pod)
        state = self._pods.get(key)
        if state is None:
            return
        if not state.assumed:
            raise CacheError(f"pod {key} was not assumed, so can't be forgotten")
        node = node_name_of(pod)
        if node and node != state.node:
            raise CacheError(f"pod {key} was assumed on {state.node} but forgotten on {node}")
        self._detach(key, state.node)
        del self._pods[key]
        self._assumed.discard(key)

    def add_pod(self, pod: Obj) -> None:
        """The informer saw a bound pod: confirm an assumed one (moving it if it landed elsewhere),
        or add it."""
        key = pod_key(pod)
        node = node_name_of(pod)
        if not node:
            return
        if is_terminated(pod):
            self.remove_pod(pod)
            return
        state = self._pods.get(key)
        info = self._nodes.get(node)
        assumed = info.pods.get(key) if state is not None and state.assumed and state.node == node and info else None
        if assumed is not None:
            # Confirmation where it was assumed: the informer's pod replaces the assumed copy; what
            # it adds up to was computed from the same (immutable) spec fields, so it is kept.
            info.add_entry(key, PodEntry(pod, assumed.requests, assumed.non_zero_cpu,  # type: ignore[union-attr]
                                         assumed.non_zero_memory, assumed.host_ports, assumed.has_affinity,
                                         assumed.has_required_anti_affinity))
            self._dirty[node] = None
            self._pods[key] = _PodState(pod, node)
            self._assumed.discard(key)
            return
        if state is not None:
            # Confirmation of an assumed pod elsewhere, or a repeated add: the informer's pod wins.
            self._detach(key, state.node)
        self._attach(key, pod, node)
        self._pods[key] = _PodState(pod, node)
        self._assumed.discard(key)

    def update_pod(self, old: Obj | None, new: Obj) -> None:
        """A bound pod changed: recount it (a terminated pod leaves its node)."""
        key = pod_key(new)
        if is_terminated(new) or not node_name_of(new):
            self.remove_pod(new)
            return
        state = self._pods.get(key)
        if state is None or state.assumed:
            self.add_pod(new)
            return
        self._detach(key, state.node)
        self._attach(key, new, node_name_of(new))
        state.pod, state.node = new, node_name_of(new)

    def remove_pod(self, pod: Obj) -> None:
        key = pod_key(pod)
        state = self._pods.pop(key, None)
        if state is None:
            return
        self._detach(key, state.node)
        self._assumed.discard(key)

    def is_assumed(self, key: str) -> bool:
        return key in self._assumed

    def get_pod(self, key: str) -> Obj | None:
        state = self._pods.get(key)
        return state.pod if state is not None else None

    def cleanup_expired(self, now: float | None = None) -> list[str]:
        """Drop assumed pods whose binding finished more than ``ttl`` ago without the informer
        confirming them; returns their keys."""
        if self.ttl <= 0 or not self._assumed:
            return []
        now = self.clock() if now is None else now
        expired = [key for key in self._assumed
                   if self._pods[key].binding_finished and self._pods[key].deadline is not None
                   and self._pods[key].deadline < now]
        for key in expired:
            state = self._pods.pop(key)
            self._detach(key, state.node)
            self._assumed.discard(key)
        return expired

    # -- nodes ---------------------------------------------------------------------------------

    def add_node(self, node: Obj) -> None:
        name = (node.get("metadata") or {}).get("name") or ""
        info = self._nodes.get(name)
        if info is not None:
            self.update_node(None, node)
            return
        info = node_info_of(node)
        for key, entry in (self._orphans.pop(name, None) or {}).items():
            info.add_entry(key, entry)
        self._nodes[name] = info
        self._dirty[name] = None

    def update_node(self, old: Obj | None, new: Obj) -> None:
        name = (new.get("metadata") or {}).get("name") or ""
        info = self._nodes.get(name)
        if info is None:
            self.add_node(new)
            return
        fresh = node_info_of(new)
        info.node = new
        info.allocatable = fresh.allocatable
        info.images = fresh.images
        info.generation += 1
        self._dirty[name] = None

    def remove_node(self, node: Obj) -> None:
        """The node is gone; its pods wait aside until they are removed (or the node returns)."""
        name = (node.get("metadata") or {}).get("name") or ""
        info = self._nodes.pop(name, None)
        if info is None:
            return
        if info.pods:
            self._orphans[name] = dict(info.pods)
        self._dirty.pop(name, None)
        self._removed.add(name)

    def node_count(self) -> int:
        return len(self._nodes)

    def pod_count(self) -> int:
        return len(self._pods)

    def node_info(self, name: str) -> NodeInfo | None:
        """The cache's own NodeInfo of ``name`` (read only; tests and debugging)."""
        return self._nodes.get(name)

    # -- snapshot ------------------------------------------------------------------------------

    def snapshot(self) -> Snapshot:
        """The nodes as of now, for one scheduling cycle (updated in place; see the docstring)."""
        snap = self._snapshot
        if not self._dirty and not self._removed:
            return snap
        by_name = snap._by_name
        for name in self._removed:
            old = by_name.pop(name, None)
            if old is not None:
                snap._track(name, old, None)
        for name in self._dirty:
            info = self._nodes.get(name)
            if info is None:
                continue
            old = by_name.get(name)
            if old is not None and old.generation == info.generation and old.node is info.node:
                continue
            clone = info.clone()
            by_name[name] = clone
            snap._track(name, old, clone)
            if old is None and not self._removed:
                snap._index[name] = len(snap.node_infos)
                snap.node_infos.append(clone)
                snap._table.append(clone)
            elif old is not None:
                row = snap._index[name]
                snap.node_infos[row] = clone
                if not self._removed:
                    snap._table.set_row(row, clone)
        self._dirty.clear()
        if self._removed:  # rare: rebuild the list and table, in the cache's (stable) node order
            snap.node_infos = [by_name[name] for name in self._nodes]
            snap._index = {name: i for i, name in enumerate(self._nodes)}
            snap._table = NodeTable.of(snap.node_infos)
            self._removed.clear()
        snap.generation += 1
        return snap

    def dump(self) -> dict[str, Any]:
        """A summary for debugging: nodes with their pod keys, assumed pods, waiting pods."""
        return {"nodes": {name: sorted(info.pods) for name, info in self._nodes.items()},
                "assumed": sorted(self._assumed),
                "waiting": {name: sorted(pods) for name, pods in self._orphans.items()}}
