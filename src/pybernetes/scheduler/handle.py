"""What the framework gives its plugins (upstream's framework.Handle): the cycle's snapshot
of nodes, listers of the objects some plugins need (services, replica sets, claims,
namespaces ...), the API client for the binding cycle, and the event recorder.

Tests build one from plain lists: ``Handle(Snapshot([node_info_of(...)]), objects={...})``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pybernetes.scheduler.framework import NodeInfo, Status
from pybernetes.scheduler.nodetable import NodeTable

Obj = dict[str, Any]


class Snapshot:
    """The nodes as one scheduling cycle sees them (the cache refreshes it per cycle)."""

    def __init__(self, node_infos: list[NodeInfo] | None = None) -> None:
        self.node_infos: list[NodeInfo] = list(node_infos or [])
        self._by_name = {info.name: info for info in self.node_infos}
        self._table: NodeTable | None = None

    @property
    def table(self) -> NodeTable:
        """The nodes as columns, row i = ``node_infos[i]`` (built on first use)."""
        if self._table is None:
            self._table = NodeTable.of(self.node_infos)
        return self._table

    # Whether the table follows every change of the nodes through row stamps (the cache's
    # snapshot: a NodeInfo is replaced, never changed in place).  A plain Snapshot's NodeInfos
    # may be changed in place (tests do), which its table would not see.
    tracks_changes = False

    def incremental_table(self, nodes: object) -> NodeTable | None:
        """The table, for state kept across cycles that follows its row stamps — only when it
        tracks changes and ``nodes`` are this snapshot's nodes (else None: recompute)."""
        if self.tracks_changes and nodes is self.node_infos:
            return self.table
        return None

    def get(self, name: str) -> NodeInfo | None:
        return self._by_name.get(name)

    def with_affinity(self) -> list[NodeInfo]:
        """Nodes with at least one pod that has pod affinity or anti-affinity."""
        return [info for info in self.node_infos if info.pods_with_affinity]

    def with_required_anti_affinity(self) -> list[NodeInfo]:
        return [info for info in self.node_infos if info.pods_with_required_anti_affinity]

    def __len__(self) -> int:
        return len(self.node_infos)


class Handle:
    """``objects`` maps a resource ("v1/services", "apps/v1/replicasets", "v1/namespaces",
    "v1/persistentvolumeclaims" ...) to its objects, or ``lister(resource, namespace)``
    returns them (informer caches in the scheduler)."""

    def __init__(self, snapshot: Snapshot | None = None, *, client: Any = None, recorder: Any = None,
                 objects: dict[str, list[Obj]] | None = None,
                 lister: Callable[[str, str | None], list[Obj]] | None = None, parallelism: int = 16) -> None:
        self.snapshot = snapshot or Snapshot()
        self.client = client
        self.recorder = recorder
        self.parallelism = parallelism
        self._objects = objects or {}
        self._lister = lister
        self.waiting_pods: dict[str, Any] = {}  # pod uid -> future of its Permit verdict
        # The pods nominated to a node (the scheduler sets it to its queue's; upstream's PodNominator).
        self.nominated_pods: Callable[[str], list[Obj]] = lambda _node: []

    def allow_waiting_pod(self, uid: str) -> bool:
        """A Permit plugin lets a waiting pod go on to binding (False: no such pod waits)."""
        return self._settle(uid, Status())

    def reject_waiting_pod(self, uid: str, plugin: str, message: str) -> bool:
        return self._settle(uid, Status.unschedulable(message, plugin=plugin))

    def _settle(self, uid: str, status: Status) -> bool:
        waiter = self.waiting_pods.get(uid)
        if waiter is None or waiter.done():
            return False
        waiter.set_result(status)
        return True

    def list(self, resource: str, namespace: str | None = None) -> list[Obj]:
        """Objects of ``resource`` (in ``namespace``, or all); never modify them."""
        if self._lister is not None:
            return self._lister(resource, namespace)
        items = self._objects.get(resource) or []
        if namespace is None:
            return list(items)
        return [o for o in items if (o.get("metadata") or {}).get("namespace") == namespace]

    def namespace_labels(self, name: str) -> dict[str, str] | None:
        """The labels of namespace ``name`` (None when it does not exist)."""
        for ns in self.list("v1/namespaces"):
            if (ns.get("metadata") or {}).get("name") == name:
                return (ns.get("metadata") or {}).get("labels") or {}
        return None
