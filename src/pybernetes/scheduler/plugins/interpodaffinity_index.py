"""An index of the pods on the snapshot's nodes for InterPodAffinity, kept across cycles —
pure, no I/O.

Without it, PreFilter and PreScore look at every pod on every node in every cycle: with ten
thousand placed pods that is milliseconds per pod.  The index is refreshed from the node
table's row stamps (nodetable.py): only the rows that changed since the previous cycle are
looked at, and on those only the pods that came, went or changed are re-indexed.  It answers:

- ``pods_matching(term)``: the (pod, its node's labels) pairs an incoming pod's term may match —
  found through one of the term selector's equality requirements (label key, value), or every
  pod when the selector has none; the caller still checks the whole term.
- ``terms_matching(pod, kind)``: the interned terms of existing pods — ``kind`` is
  "required_anti_affinity", "required_affinity", "preferred_affinity" or
  "preferred_anti_affinity" — that may match the incoming pod, each with the node labels of
  every existing pod holding it (once per occurrence); found through the incoming pod's labels.

Pods are keyed by object identity within a node (an updated pod is a new object).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from pybernetes.machinery.selectors import DOUBLE_EQUALS, EQUALS, IN, LabelSelector
from pybernetes.scheduler.plugins.interpodaffinity_terms import AffinityTerm, TermCache

Obj = dict[str, Any]
Labels = dict[str, str]
KINDS = ("required_anti_affinity", "required_affinity", "preferred_affinity", "preferred_anti_affinity")


def equality_pairs(selector: LabelSelector) -> list[tuple[str, str]] | None:
    """The (key, value) pairs of one equality requirement of ``selector`` (a pod it matches has
    one of them), [] when it matches nothing, None when it has no equality requirement."""
    if selector.matches_nothing:
        return []
    for req in selector.requirements:
        if req.operator in (IN, EQUALS, DOUBLE_EQUALS):
            return [(req.key, value) for value in req.values]
    return None


class _Placed:
    """One pod object placed on a node: the entries it added to the index, to take back."""

    __slots__ = ("pod", "labels", "node_labels", "terms")

    def __init__(self, pod: Obj, labels: Labels, node_labels: Labels, terms: list[tuple[str, AffinityTerm]]):
        self.pod = pod
        self.labels = labels
        self.node_labels = node_labels
        self.terms = terms


class PodIndex:
    """See the module docstring."""

    def __init__(self, terms: TermCache) -> None:
        self._term_cache = terms
        self._table: Any = None
        self._versions: Any = None
        self._rows: list[dict[int, _Placed]] = []  # per row: id(pod) -> placed
        self._by_pair: dict[tuple[str, str], dict[int, _Placed]] = {}  # (label key, value) -> pods
        self._all: dict[int, _Placed] = {}
        # kind -> (key, value) of one equality requirement -> term -> {id(pod): placed}
        self._terms_by_pair: dict[str, dict[tuple[str, str], dict[AffinityTerm, dict[int, _Placed]]]] = {
            kind: {} for kind in KINDS}
        # kind -> term -> pods, for terms without an equality requirement
        self._terms_unindexed: dict[str, dict[AffinityTerm, dict[int, _Placed]]] = {kind: {} for kind in KINDS}
        self._pairs_of: dict[AffinityTerm, list[tuple[str, str]] | None] = {}

    # -- refresh --------------------------------------------------------------------------------

    def refresh(self, table: Any) -> None:
        """Bring the index in step with ``table``'s rows."""
        versions = table.versions
        if table is not self._table or self._versions is None or len(self._versions) != len(versions):
            self._reset()
            self._rows = [{} for _ in range(table.n)]
            changed: Any = range(table.n)
        else:
            import numpy as np  # noqa: PLC0415 - the table's arrays are numpy's
            changed = np.flatnonzero(versions != self._versions).tolist()
        infos = table.infos
        for row in changed:
            self._sync_row(row, infos[row])
        self._table, self._versions = table, versions.copy()

    def _reset(self) -> None:
        self._by_pair.clear()
        self._all.clear()
        for kind in KINDS:
            self._terms_by_pair[kind].clear()
            self._terms_unindexed[kind].clear()

    def _sync_row(self, row: int, info: Any) -> None:
        placed = self._rows[row]
        node_labels = info.labels
        current = {id(entry.pod): entry.pod for entry in info.pods.values()}
        for pid in [pid for pid, p in placed.items()
                    if current.get(pid) is not p.pod or p.node_labels is not node_labels]:
            self._remove(placed.pop(pid), pid)
        for pid, pod in current.items():
            if pid not in placed:
                placed[pid] = self._add(pod, node_labels, pid)

    def _add(self, pod: Obj, node_labels: Labels, pid: int) -> _Placed:
        meta = pod.get("metadata") or {}
        labels = meta.get("labels") or {}
        terms = self._term_cache.get(pod)
        held = [(kind, term) for kind in KINDS for term in getattr(terms, kind)]
        placed = _Placed(pod, labels, node_labels, held)
        self._all[pid] = placed
        for pair in labels.items():
            self._by_pair.setdefault(pair, {})[pid] = placed
        for kind, term in held:
            for bucket in self._term_buckets(kind, term):
                bucket.setdefault(term, {})[pid] = placed
        return placed

    def _remove(self, placed: _Placed, pid: int) -> None:
        self._all.pop(pid, None)
        for pair in placed.labels.items():
            pods = self._by_pair.get(pair)
            if pods is not None:
                pods.pop(pid, None)
                if not pods:
                    del self._by_pair[pair]
        for kind, term in placed.terms:
            for bucket in self._term_buckets(kind, term):
                holders = bucket.get(term)
                if holders is not None:
                    holders.pop(pid, None)
                    if not holders:
                        del bucket[term]

    def _term_buckets(self, kind: str, term: AffinityTerm) -> list[dict[AffinityTerm, dict[int, _Placed]]]:
        pairs = self._pairs_of.get(term, ...)
        if pairs is ...:
            if len(self._pairs_of) > 100_000:
                self._pairs_of.clear()
            pairs = self._pairs_of[term] = equality_pairs(term.selector)
        if pairs is None:
            return [self._terms_unindexed[kind]]
        by_pair = self._terms_by_pair[kind]
        return [by_pair.setdefault(pair, {}) for pair in pairs]

    # -- queries --------------------------------------------------------------------------------

    def pods_matching(self, term: AffinityTerm) -> Iterator[tuple[Obj, Labels]]:
        """Candidate (pod, node labels) for ``term`` (each pod once; check the term itself)."""
        pairs = equality_pairs(term.selector)
        if pairs is None:
            for placed in self._all.values():
                yield placed.pod, placed.node_labels
            return
        seen: set[int] = set()
        for pair in pairs:
            for pid, placed in (self._by_pair.get(pair) or {}).items():
                if pid not in seen:
                    seen.add(pid)
                    yield placed.pod, placed.node_labels

    def terms_matching(self, pod: Obj, kind: str) -> Iterator[tuple[AffinityTerm, list[Labels]]]:
        """Candidate existing terms of ``kind`` for the incoming ``pod`` (each once), with the
        node labels of each occurrence of the term on an existing pod."""
        labels = (pod.get("metadata") or {}).get("labels") or {}
        seen: set[int] = set()
        by_pair = self._terms_by_pair[kind]
        buckets = [by_pair[pair] for pair in labels.items() if pair in by_pair]
        buckets.append(self._terms_unindexed[kind])
        for bucket in buckets:
            for term, holders in bucket.items():
                if id(term) in seen:
                    continue
                seen.add(id(term))
                occurrences = []
                for placed in holders.values():
                    n = sum(1 for k, t in placed.terms if k == kind and t is term)
                    occurrences.extend([placed.node_labels] * n)
                yield term, occurrences
