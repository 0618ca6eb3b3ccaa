"""Counting matching pods per topology domain for PodTopologySpread, fast over thousands of
nodes — pure, no I/O.

- ``count_matching``: the pods on a node, of one namespace, matching a selector, not being
  deleted (upstream countPodsMatchSelector).
- ``CountMemo``: per (namespace, selector) and node, the count, reused while the node's pod
  map is the same object at the same generation (NodeInfo bumps its generation on every pod
  added or removed; the memo holds the map, so its identity cannot be recycled).  It also
  keeps ``DomainCounter``s.
- ``DomainCounter``: the per-domain totals of one (namespace, selector, topology key, keys a
  node must carry), kept across cycles.  The cache's snapshot keeps unchanged NodeInfo objects
  from one cycle to the next, so a refresh recounts only the nodes that changed: those whose
  row stamp in the snapshot's node table changed (one array comparison), or — for a node list
  without a table — those that differ from the previous list by identity or generation.
- ``accumulate_counts``: PreFilter's and PreScore's per-domain counts over the nodes: from a
  DomainCounter for constraints without an inclusion policy to evaluate, else by a scan
  (nodeAffinityPolicy Honor with a pod that has node affinity, nodeTaintsPolicy Honor).
"""

from __future__ import annotations

from itertools import compress
from operator import attrgetter, is_not, ne
from typing import Any

import numpy as np

from pybernetes.machinery.nodeaffinity import RequiredNodeAffinity
from pybernetes.machinery.selectors import LabelSelector
from pybernetes.scheduler.framework import NodeInfo
from pybernetes.scheduler.plugins.podtopologyspread_helpers import (
    Constraint,
    asks_nothing,
    has_untolerated_do_not_schedule_taint,
)

Obj = dict[str, Any]
_generation = attrgetter("generation")


def count_matching(info: NodeInfo, selector: LabelSelector, namespace: str) -> int:
    """Pods on ``info`` in ``namespace`` matching ``selector``, skipping pods being deleted."""
    count = 0
    matches = selector.matches
    for entry in info.pods.values():
        meta = entry.pod.get("metadata") or {}
        if meta.get("deletionTimestamp") or (meta.get("namespace") or "") != namespace:
            continue
        if matches(meta.get("labels") or {}):
            count += 1
    return count


def _lru_get(store: dict, key: Any, limit: int, make: Any) -> Any:
    value = store.pop(key, None)
    if value is None:
        value = make()
        while len(store) >= limit:
            store.pop(next(iter(store)))
    store[key] = value  # most recently used last
    return value


class CountMemo:
    """Remembered per-node counts and per-domain counters (see the module docstring); keeps
    the ``max_selectors`` most recently used of each."""

    __slots__ = ("_tables", "_counters", "max_selectors")

    def __init__(self, max_selectors: int = 32) -> None:
        self._tables: dict[tuple[str, LabelSelector], dict[str, tuple[Any, int, int]]] = {}
        self._counters: dict[tuple[str, LabelSelector, str, tuple[str, ...]], DomainCounter] = {}
        self.max_selectors = max_selectors

    def table(self, namespace: str, selector: LabelSelector) -> dict[str, tuple[Any, int, int]]:
        return _lru_get(self._tables, (namespace, selector), self.max_selectors, dict)

    def counter(self, namespace: str, selector: LabelSelector, key: str, required: tuple[str, ...]
                ) -> DomainCounter:
        return _lru_get(self._counters, (namespace, selector, key, required), self.max_selectors,
                        lambda: DomainCounter(namespace, selector, key, required))

    @staticmethod
    def count(table: dict[str, tuple[Any, int, int]], info: NodeInfo, selector: LabelSelector,
              namespace: str) -> int:
        hit = table.get(info.name)
        if hit is not None and hit[0] is info.pods and hit[1] == info.generation:
            return hit[2]
        value = count_matching(info, selector, namespace)
        table[info.name] = (info.pods, info.generation, value)
        return value


class DomainCounter:
    """Totals per domain of one constraint shape, refreshed incrementally.  A node lacking
    one of ``required`` keys contributes to no domain; otherwise its domain is its value of
    ``key`` ("" when it has none) and every such domain exists, even with 0 pods."""

    __slots__ = ("namespace", "selector", "key", "required", "nodes", "generations", "values", "counts",
                 "totals", "members", "table", "versions")

    def __init__(self, namespace: str, selector: LabelSelector, key: str, required: tuple[str, ...]) -> None:
        self.namespace = namespace
        self.selector = selector
        self.key = key
        self.required = frozenset(required)
        self.nodes: list[NodeInfo] = []
        self.generations: list[int] = []
        self.values: list[str | None] = []  # per node position: its domain (None: not counted)
        self.counts: list[int] = []
        self.totals: dict[str, int] = {}
        self.members: dict[str, int] = {}  # domain -> nodes in it (a domain goes with its last node)
        self.table: Any = None  # the node table of the last refresh, and its row stamps then
        self.versions: Any = None

    def _domain_of(self, info: NodeInfo) -> str | None:
        labels = (info.node.get("metadata") or {}).get("labels") or {}
        if self.required and not labels.keys() >= self.required:
            return None
        return labels.get(self.key, "")

    def _add(self, value: str | None, count: int) -> None:
        if value is not None:
            self.totals[value] = self.totals.get(value, 0) + count
            self.members[value] = self.members.get(value, 0) + 1

    def _subtract(self, value: str | None, count: int) -> None:
        if value is None:
            return
        left = self.members[value] - 1
        if left:
            self.members[value] = left
            self.totals[value] -= count
        else:
            del self.members[value]
            del self.totals[value]

    def refresh(self, nodes: list[NodeInfo], memo: CountMemo, node_table: Any = None) -> dict[str, int]:
        """The totals over ``nodes`` (the caller copies them before changing anything).
        ``node_table``: the NodeTable whose rows are ``nodes``, if there is one."""
        table = memo.table(self.namespace, self.selector)
        n = len(nodes)
        generations: list[int] = []
        if node_table is not None and node_table.n == n:
            versions = node_table.versions
            if self.table is node_table and self.versions is not None and len(self.versions) == n:
                changed: Any = np.flatnonzero(versions != self.versions).tolist()
            else:
                changed = range(n)
                self.values, self.counts = [None] * n, [0] * n
                self.totals, self.members = {}, {}
            self.table, self.versions = node_table, versions.copy()
        else:
            self.table = self.versions = None
            generations = list(map(_generation, nodes))
            if n != len(self.nodes) or not self.generations:
                changed = range(n)
                self.values, self.counts = [None] * n, [0] * n
                self.totals, self.members = {}, {}
            else:
                moved = set(compress(range(n), map(is_not, nodes, self.nodes)))
                moved.update(compress(range(n), map(ne, generations, self.generations)))
                changed = sorted(moved)
        values, counts = self.values, self.counts
        for i in changed:
            info = nodes[i]
            self._subtract(values[i], counts[i])
            value = self._domain_of(info)
            count = MemoCount(table, info, self.selector, self.namespace) if value is not None else 0
            values[i], counts[i] = value, count
            self._add(value, count)
        if self.table is None:
            self.nodes = list(nodes)
        self.generations = generations
        return self.totals


MemoCount = CountMemo.count


def accumulate_counts(nodes: list[NodeInfo], plan: list[tuple[Constraint, dict[str, int]]], memo: CountMemo,
                      namespace: str, required_keys: list[str], affinity: RequiredNodeAffinity,
                      tolerations: list[Obj], known_domains_only: bool, node_table: Any = None) -> None:
    """Add to each ``plan`` entry's domain counts the pods on ``nodes`` matching its
    constraint.  Nodes lacking one of ``required_keys`` are skipped; a constraint skips the
    nodes its inclusion policies exclude; a missing key is the domain "" (as upstream).
    ``known_domains_only`` (PreScore): only domains already in the counts are added to."""
    plain_affinity = asks_nothing(affinity)
    required = tuple(required_keys)
    scan = []
    for c, counts in plan:
        if (c.honor_affinity and not plain_affinity) or c.honor_taints:
            scan.append((c, counts))
            continue
        totals = memo.counter(namespace, c.selector, c.key, required).refresh(nodes, memo, node_table)
        if known_domains_only:
            for value in counts:
                counts[value] += totals.get(value, 0)
        else:
            for value, count in totals.items():
                counts[value] = counts.get(value, 0) + count
    if not scan:
        return
    check_affinity = not plain_affinity and any(c.honor_affinity for c, _ in scan)
    check_taints = any(c.honor_taints for c, _ in scan)
    tables = [(c.key, c.selector, memo.table(namespace, c.selector), counts, c.honor_affinity, c.honor_taints)
              for c, counts in scan]
    needed = frozenset(required_keys)
    for info in nodes:
        labels = (info.node.get("metadata") or {}).get("labels") or {}
        if needed and not labels.keys() >= needed:
            continue
        affinity_ok = affinity.matches_node(info.node) if check_affinity else True
        taints_ok = (not has_untolerated_do_not_schedule_taint(info.taints, tolerations)
                     if check_taints else True)
        for key, selector, table, counts, honor_affinity, honor_taints in tables:
            if (honor_affinity and not affinity_ok) or (honor_taints and not taints_ok):
                continue
            value = labels.get(key, "")
            if known_domains_only and value not in counts:
                continue
            counts[value] = counts.get(value, 0) + MemoCount(table, info, selector, namespace)
