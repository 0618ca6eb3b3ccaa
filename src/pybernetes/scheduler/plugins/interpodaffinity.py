"""The InterPodAffinity plugin (upstream pkg/scheduler/framework/plugins/interpodaffinity):
required pod affinity and anti-affinity (PreFilter + Filter, with the AddPod/RemovePod
extensions preemption uses) and preferred terms (PreScore + Score + NormalizeScore).

PreFilter counts, per topology pair (topologyKey, value), over the cycle's snapshot:
existing pods whose required anti-affinity terms match the incoming pod, existing pods that
match all the incoming pod's required affinity terms, and existing pods matching each of its
required anti-affinity terms.  Filter is then a few dict lookups per node.  The incoming pod's
namespaceSelector is unrolled into namespace names (handle.list("v1/namespaces")); existing
pods' namespace selectors are matched against the labels of the incoming pod's namespace.
Terms live in interpodaffinity_terms (parsed once per pod object).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

from pybernetes.scheduler.framework import (
    MAX_NODE_SCORE,
    SUCCESS,
    ClusterEvent,
    CycleState,
    NodeInfo,
    Plugin,
    PodEntry,
    PreFilterResult,
    Status,
)
from pybernetes.scheduler.nodetable import NodeTable
from pybernetes.scheduler.plugins.interpodaffinity_index import PodIndex
from pybernetes.scheduler.plugins.interpodaffinity_terms import (
    AffinityTerm,
    Pair,
    PodIdentity,
    PodTerms,
    TermCache,
    matches_all,
    update_counts,
)

Obj = dict[str, Any]

NAME = "InterPodAffinity"
PRE_FILTER_STATE_KEY = "PreFilter" + NAME
PRE_SCORE_STATE_KEY = "PreScore" + NAME

ERR_REASON_AFFINITY_RULES_NOT_MATCH = "node(s) didn't match pod affinity rules"
ERR_REASON_ANTI_AFFINITY_RULES_NOT_MATCH = "node(s) didn't match pod anti-affinity rules"
ERR_REASON_EXISTING_ANTI_AFFINITY_RULES_NOT_MATCH = "node(s) didn't satisfy existing pods anti-affinity rules"

_AFFINITY_REJECT = Status.unresolvable(ERR_REASON_AFFINITY_RULES_NOT_MATCH, plugin=NAME)
_ANTI_REJECT = Status.unschedulable(ERR_REASON_ANTI_AFFINITY_RULES_NOT_MATCH, plugin=NAME)
_EXISTING_ANTI_REJECT = Status.unschedulable(ERR_REASON_EXISTING_ANTI_AFFINITY_RULES_NOT_MATCH, plugin=NAME)

_NO_LABELS: dict[str, str] = {}

MIN_HARD_POD_AFFINITY_WEIGHT = 0
MAX_HARD_POD_AFFINITY_WEIGHT = 100


def _unique_keys(terms: list[AffinityTerm]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(t.topology_key for t in terms))


def _matched_keys(affinity_terms: list[AffinityTerm], anti_terms: list[AffinityTerm], identity: PodIdentity
                  ) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The topology keys an existing pod of ``identity`` counts for: every affinity term's when
    it matches all of them, and each matching anti-affinity term's."""
    namespace, labels = identity.namespace, identity.labels
    affinity_keys: tuple[str, ...] = ()
    if affinity_terms and all(t.matches_meta(namespace, labels) for t in affinity_terms):
        affinity_keys = tuple(t.topology_key for t in affinity_terms)
    anti_keys = tuple(t.topology_key for t in anti_terms if t.matches_meta(namespace, labels))
    return affinity_keys, anti_keys


def _positive_by_code(counts: dict[Pair, int], key: str, codes: np.ndarray, index: dict[str, int]) -> np.ndarray:
    """Per row: whether the count of (key, the row's value of key) is positive (False where
    the row has no such label)."""
    positive = np.zeros(len(index) + 1, bool)  # the extra slot: code -1
    for (k, value), count in counts.items():
        if k == key and count > 0:
            code = index.get(value)
            if code is not None:
                positive[code] = True
    return positive[codes]


def _aggregate(errors: list[str]) -> str:
    return errors[0] if len(errors) == 1 else "[" + ", ".join(errors) + "]"


class PreFilterState:
    """What Filter reads: the three topology-pair counters and the incoming pod's required
    terms (namespace selectors unrolled).  ``clone`` copies the counters (preemption adds and
    removes pods on a clone)."""

    __slots__ = ("pod", "affinity_terms", "anti_affinity_terms", "namespace_labels", "existing_anti_affinity_counts",
                 "affinity_counts", "anti_affinity_counts", "affinity_keys", "anti_affinity_keys", "matches_itself")

    def __init__(self, pod: Obj, affinity_terms: list[AffinityTerm], anti_affinity_terms: list[AffinityTerm],
                 namespace_labels: dict[str, str] | None) -> None:
        self.pod = pod
        self.affinity_terms = affinity_terms
        self.anti_affinity_terms = anti_affinity_terms
        self.namespace_labels = namespace_labels
        self.existing_anti_affinity_counts: dict[Pair, int] = {}
        self.affinity_counts: dict[Pair, int] = {}
        self.anti_affinity_counts: dict[Pair, int] = {}
        self.affinity_keys = _unique_keys(affinity_terms)
        self.anti_affinity_keys = _unique_keys(anti_affinity_terms)
        # The first pod of a group with affinity to itself may go where its topology keys exist.
        self.matches_itself = matches_all(affinity_terms, pod)

    def clone(self) -> PreFilterState:
        out = PreFilterState.__new__(PreFilterState)
        out.pod = self.pod
        out.affinity_terms = self.affinity_terms
        out.anti_affinity_terms = self.anti_affinity_terms
        out.namespace_labels = self.namespace_labels
        out.existing_anti_affinity_counts = dict(self.existing_anti_affinity_counts)
        out.affinity_counts = dict(self.affinity_counts)
        out.anti_affinity_counts = dict(self.anti_affinity_counts)
        out.affinity_keys = self.affinity_keys
        out.anti_affinity_keys = self.anti_affinity_keys
        out.matches_itself = self.matches_itself
        return out

    def update_with_pod(self, other: Obj, other_terms: PodTerms, node_labels: dict[str, str], multiplier: int) -> None:
        """Account for ``other`` appearing on (1) or leaving (-1) a node with ``node_labels``."""
        for term in other_terms.required_anti_affinity:
            if term.matches(self.pod, self.namespace_labels):
                update_counts(self.existing_anti_affinity_counts, node_labels, term.topology_key, multiplier)
        if matches_all(self.affinity_terms, other):
            for term in self.affinity_terms:
                update_counts(self.affinity_counts, node_labels, term.topology_key, multiplier)
        for term in self.anti_affinity_terms:
            if term.matches(other, None):
                update_counts(self.anti_affinity_counts, node_labels, term.topology_key, multiplier)


class PreScoreState:
    """topologyKey -> value -> summed weight; read-only after PreScore (clone shares it)."""

    __slots__ = ("topology_score",)

    def __init__(self, topology_score: dict[str, dict[str, int]]) -> None:
        self.topology_score = topology_score

    def clone(self) -> PreScoreState:
        return self


class InterPodAffinity(Plugin):
    name = NAME

    def __init__(self, args: Obj | None = None, handle: Any = None) -> None:
        super().__init__(args, handle)
        merged = {**self.default_args(), **self.args}
        self.hard_pod_affinity_weight = int(merged["hardPodAffinityWeight"])
        self.ignore_preferred_terms_of_existing_pods = bool(merged["ignorePreferredTermsOfExistingPods"])
        self._terms = TermCache()
        self._index = PodIndex(self._terms)

    @classmethod
    def default_args(cls) -> Obj:
        return {"hardPodAffinityWeight": 1, "ignorePreferredTermsOfExistingPods": False}

    @classmethod
    def validate_args(cls, args: Obj) -> list[str]:
        problems: list[str] = []
        weight = args.get("hardPodAffinityWeight", 1)
        if isinstance(weight, bool) or not isinstance(weight, int):
            problems.append(f"hardPodAffinityWeight: Invalid value: {weight!r}: must be an integer")
        elif not MIN_HARD_POD_AFFINITY_WEIGHT <= weight <= MAX_HARD_POD_AFFINITY_WEIGHT:
            problems.append(f"hardPodAffinityWeight: Invalid value: {weight}: not in valid range "
                            f"[{MIN_HARD_POD_AFFINITY_WEIGHT}, {MAX_HARD_POD_AFFINITY_WEIGHT}]")
        ignore = args.get("ignorePreferredTermsOfExistingPods", False)
        if not isinstance(ignore, bool):
            problems.append(f"ignorePreferredTermsOfExistingPods: Invalid value: {ignore!r}: must be a boolean")
        return problems

    def events_to_register(self) -> Iterable[ClusterEvent]:
        return (ClusterEvent("Pod", "Add"), ClusterEvent("Pod", "UpdatePodLabel"), ClusterEvent("Pod", "Delete"),
                ClusterEvent("Node", "Add"), ClusterEvent("Node", "UpdateNodeLabel"))

    # -- helpers ------------------------------------------------------------------------------

    def _node_lists(self, nodes: list[NodeInfo]) -> list[NodeInfo]:
        snapshot = getattr(self.handle, "snapshot", None)
        if snapshot is not None and len(snapshot):
            return snapshot.node_infos
        return nodes

    def _namespace_labels(self, namespace: str) -> dict[str, str] | None:
        if self.handle is None:
            return None
        return self.handle.namespace_labels(namespace)

    def _unroll_namespaces(self, terms: list[AffinityTerm]) -> list[AffinityTerm]:
        """Upstream mergeAffinityTermNamespacesIfNotEmpty for each of the incoming pod's terms."""
        out = []
        namespaces: list[Obj] | None = None
        for term in terms:
            selector = term.namespace_selector
            if selector.empty or selector.matches_nothing:
                out.append(term)
                continue
            if namespaces is None:
                namespaces = self.handle.list("v1/namespaces") if self.handle is not None else []
            names = frozenset((ns.get("metadata") or {}).get("name") or "" for ns in namespaces
                              if selector.matches((ns.get("metadata") or {}).get("labels") or {}))
            out.append(term.with_namespaces(names))
        return out

    # -- PreFilter / Filter --------------------------------------------------------------------

    def pre_filter(self, state: CycleState, pod: Obj, nodes: list[NodeInfo]
                   ) -> tuple[PreFilterResult | None, Status]:
        terms = self._terms.get(pod)
        if terms.errors:
            return None, Status.unresolvable(f"parsing pod: {_aggregate(terms.errors)}", plugin=NAME)
        try:
            affinity_terms = self._unroll_namespaces(terms.required_affinity)
            anti_terms = self._unroll_namespaces(terms.required_anti_affinity)
        except Exception as err:  # a lister failing is an error of this attempt, not a verdict
            return None, Status.error(f"listing namespaces: {err}", plugin=NAME)
        snapshot = getattr(self.handle, "snapshot", None)
        if (not affinity_terms and not anti_terms and snapshot is not None and len(snapshot)
                and not snapshot.with_required_anti_affinity()):
            return None, Status.skip()  # nothing to count: no terms, no existing anti-affinity
        meta = pod.get("metadata") or {}
        namespace = meta.get("namespace") or ""
        s = PreFilterState(pod, affinity_terms, anti_terms, self._namespace_labels(namespace))
        all_nodes = self._node_lists(nodes)
        index = self._index_for(all_nodes)
        if index is not None:
            self._count_from_index(index, s, pod, affinity_terms, anti_terms)
        else:
            self._count_by_scan(s, pod, all_nodes, affinity_terms, anti_terms)
        existing = s.existing_anti_affinity_counts
        if not existing and not affinity_terms and not anti_terms:
            return None, Status.skip()
        state.write(PRE_FILTER_STATE_KEY, s)
        return None, SUCCESS

    def _count_by_scan(self, s: PreFilterState, pod: Obj, all_nodes: list[NodeInfo],
                       affinity_terms: list[AffinityTerm], anti_terms: list[AffinityTerm]) -> None:
        """PreFilter's three counters by looking at every pod on every node (the nodes are not
        the snapshot's: no node table to index)."""
        anti_nodes = [info for info in all_nodes if info.pods_with_required_anti_affinity]
        # Existing pods whose required anti-affinity terms match the incoming pod (each distinct
        # interned term is matched once per cycle).
        existing = s.existing_anti_affinity_counts
        ns_labels = s.namespace_labels
        record = self._terms.record
        cached = self._terms.items
        verdicts: dict[AffinityTerm, bool] = {}
        for info in anti_nodes:
            labels = (info.node.get("metadata") or {}).get("labels")
            if not labels:
                continue
            for entry in info.pods.values():
                if not entry.has_required_anti_affinity:
                    continue
                other = entry.pod
                rec = cached.get(id(other))
                if rec is None or rec.pod is not other:
                    rec = record(other)
                for term in rec.terms.required_anti_affinity:
                    verdict = verdicts.get(term)
                    if verdict is None:
                        verdict = verdicts[term] = term.matches(pod, ns_labels)
                    if verdict:
                        value = labels.get(term.topology_key)
                        if value is not None:
                            pair = (term.topology_key, value)
                            total = existing.get(pair, 0) + 1
                            if total:
                                existing[pair] = total
                            else:
                                del existing[pair]

        # Existing pods matching the incoming pod's required affinity / anti-affinity terms: per
        # distinct (namespace, labels) of existing pods, the topology keys to count.
        if affinity_terms or anti_terms:
            affinity_counts = s.affinity_counts
            anti_counts = s.anti_affinity_counts
            plans: dict[PodIdentity, tuple[tuple[dict[Pair, int], str], ...]] = {}
            for info in all_nodes:
                pods = info.pods
                if not pods:
                    continue
                labels = (info.node.get("metadata") or {}).get("labels")
                if not labels:
                    continue
                for entry in pods.values():
                    other = entry.pod
                    rec = cached.get(id(other))
                    if rec is None or rec.pod is not other:
                        rec = record(other)
                    plan = plans.get(rec.identity)
                    if plan is None:
                        keys = _matched_keys(affinity_terms, anti_terms, rec.identity)
                        plan = plans[rec.identity] = tuple(
                            [(affinity_counts, key) for key in keys[0]] + [(anti_counts, key) for key in keys[1]])
                    for counts, key in plan:
                        value = labels.get(key)
                        if value is not None:
                            pair = (key, value)
                            counts[pair] = counts.get(pair, 0) + 1

    def _index_for(self, nodes: Any) -> PodIndex | None:
        """The pod index, refreshed, when ``nodes`` are the snapshot's nodes (None otherwise:
        the counters are then taken by a scan)."""
        snapshot = getattr(self.handle, "snapshot", None)
        table = snapshot.incremental_table(nodes) if snapshot is not None and len(snapshot) else None
        if table is None:
            return None
        self._index.refresh(table)
        return self._index

    @staticmethod
    def _count_from_index(index: PodIndex, s: PreFilterState, pod: Obj, affinity_terms: list[AffinityTerm],
                          anti_terms: list[AffinityTerm]) -> None:
        """PreFilter's three counters from the pod index: only the pods and terms that can match."""
        existing = s.existing_anti_affinity_counts
        for term, occurrences in index.terms_matching(pod, "required_anti_affinity"):
            if term.matches(pod, s.namespace_labels):
                key = term.topology_key
                for node_labels in occurrences:
                    value = node_labels.get(key)
                    if value is not None:
                        existing[(key, value)] = existing.get((key, value), 0) + 1
        if affinity_terms:
            counts = s.affinity_counts
            for other, node_labels in index.pods_matching(affinity_terms[0]):
                meta = other.get("metadata") or {}
                namespace, labels = meta.get("namespace") or "", meta.get("labels") or {}
                if all(t.matches_meta(namespace, labels) for t in affinity_terms):
                    for term in affinity_terms:
                        value = node_labels.get(term.topology_key)
                        if value is not None:
                            pair = (term.topology_key, value)
                            counts[pair] = counts.get(pair, 0) + 1
        counts = s.anti_affinity_counts
        for term in anti_terms:
            key = term.topology_key
            for other, node_labels in index.pods_matching(term):
                meta = other.get("metadata") or {}
                if term.matches_meta(meta.get("namespace") or "", meta.get("labels") or {}):
                    value = node_labels.get(key)
                    if value is not None:
                        counts[(key, value)] = counts.get((key, value), 0) + 1

    def filter(self, state: CycleState, pod: Obj, node_info: NodeInfo) -> Status:
        s = state.get(PRE_FILTER_STATE_KEY)
        if s is None:
            return Status.error(f'reading "{PRE_FILTER_STATE_KEY}" from cycleState: not found', plugin=NAME)
        labels = (node_info.node.get("metadata") or {}).get("labels") or _NO_LABELS
        keys = s.affinity_keys
        if keys:
            counts = s.affinity_counts
            pods_exist = True
            for key in keys:
                value = labels.get(key)
                if value is None:
                    return _AFFINITY_REJECT  # every topology key must exist on the node
                if counts.get((key, value), 0) <= 0:
                    pods_exist = False
            if not pods_exist and (counts or not s.matches_itself):
                return _AFFINITY_REJECT
        counts = s.anti_affinity_counts
        if counts:
            for key in s.anti_affinity_keys:
                value = labels.get(key)
                if value is not None and counts.get((key, value), 0) > 0:
                    return _ANTI_REJECT
        counts = s.existing_anti_affinity_counts
        if counts:
            for pair in labels.items():
                if pair in counts and counts[pair] > 0:
                    return _EXISTING_ANTI_REJECT
        return SUCCESS

    def filter_table(self, state: CycleState, pod: Obj, table: NodeTable) -> np.ndarray | bool | None:
        """``filter`` for every node at once, from the table's label codes."""
        s = state.get(PRE_FILTER_STATE_KEY)
        if s is None:
            return None  # the per-node form reports the missing state
        passing = np.ones(table.n, bool)
        keys = s.affinity_keys
        if keys:
            counts = s.affinity_counts
            labelled = np.ones(table.n, bool)
            pods_exist = np.ones(table.n, bool)
            for key in keys:
                codes, index = table.label_codes(key)
                labelled &= codes >= 0
                pods_exist &= _positive_by_code(counts, key, codes, index)
            passing &= labelled
            if counts or not s.matches_itself:
                passing &= pods_exist
        counts = s.anti_affinity_counts
        if counts:
            for key in s.anti_affinity_keys:
                codes, index = table.label_codes(key)
                passing &= ~_positive_by_code(counts, key, codes, index)
        counts = s.existing_anti_affinity_counts
        for (key, value), count in counts.items():
            if count > 0:
                codes, index = table.label_codes(key)
                code = index.get(value)
                if code is not None:
                    passing &= codes != code
        return passing

    def add_pod(self, state: CycleState, pod: Obj, pod_to_add: PodEntry, node_info: NodeInfo) -> Status:
        return self._update(state, pod_to_add, node_info, 1)

    def remove_pod(self, state: CycleState, pod: Obj, pod_to_remove: PodEntry, node_info: NodeInfo) -> Status:
        return self._update(state, pod_to_remove, node_info, -1)

    def _update(self, state: CycleState, entry: PodEntry, node_info: NodeInfo, multiplier: int) -> Status:
        s = state.get(PRE_FILTER_STATE_KEY)
        if s is None:
            return Status.error(f'reading "{PRE_FILTER_STATE_KEY}" from cycleState: not found', plugin=NAME)
        s.update_with_pod(entry.pod, self._terms.get(entry.pod), node_info.labels, multiplier)
        return SUCCESS

    # -- PreScore / Score ----------------------------------------------------------------------

    def pre_score(self, state: CycleState, pod: Obj, nodes: list[NodeInfo]) -> Status:
        if not nodes:
            return Status.skip()
        affinity = (pod.get("spec") or {}).get("affinity") or {}
        has_constraints = bool(
            ((affinity.get("podAffinity") or {}).get("preferredDuringSchedulingIgnoredDuringExecution"))
            or ((affinity.get("podAntiAffinity") or {}).get("preferredDuringSchedulingIgnoredDuringExecution")))
        if self.ignore_preferred_terms_of_existing_pods and not has_constraints:
            return Status.skip()
        snapshot = getattr(self.handle, "snapshot", None)
        if not has_constraints and snapshot is not None and len(snapshot) and not snapshot.with_affinity():
            return Status.skip()  # no terms of its own, no existing pod with any
        terms = self._terms.get(pod)
        if terms.errors:
            return Status.error(f"failed to parse pod: {_aggregate(terms.errors)}", plugin=NAME)
        try:
            preferred = self._unroll_namespaces(terms.preferred_affinity)
            preferred_anti = self._unroll_namespaces(terms.preferred_anti_affinity)
        except Exception as err:
            return Status.error(f"listing namespaces: {err}", plugin=NAME)
        ns_labels = self._namespace_labels((pod.get("metadata") or {}).get("namespace") or "")
        snapshot = getattr(self.handle, "snapshot", None)
        index = self._index_for(snapshot.node_infos) if snapshot is not None else None
        if index is not None:
            scores, touched = self._score_from_index(index, pod, ns_labels, preferred, preferred_anti)
        else:
            scores, touched = self._score_by_scan(pod, nodes, ns_labels, preferred, preferred_anti, has_constraints)
        if not touched:
            return Status.skip()
        state.write(PRE_SCORE_STATE_KEY, PreScoreState(scores))
        return SUCCESS

    def _score_by_scan(self, pod: Obj, nodes: list[NodeInfo], ns_labels: dict[str, str] | None,
                       preferred: list[AffinityTerm], preferred_anti: list[AffinityTerm], has_constraints: bool
                       ) -> tuple[dict[str, dict[str, int]], bool]:
        """PreScore's topology scores by looking at the pods of the nodes (no node table)."""
        snapshot = getattr(self.handle, "snapshot", None)
        if has_constraints:
            node_list = self._node_lists(nodes)
        elif snapshot is not None and len(snapshot):
            node_list = snapshot.with_affinity()
        else:
            node_list = [info for info in nodes if info.pods_with_affinity]

        scores: dict[str, dict[str, int]] = {}
        touched = False
        hard_weight = self.hard_pod_affinity_weight
        get_terms = self._terms.get
        # (term, weight to add) pairs of the incoming pod, tried on every existing pod.
        own = [(t, t.weight) for t in preferred] + [(t, -t.weight) for t in preferred_anti]
        for info in node_list:
            labels = info.labels
            if not labels:
                continue
            for entry in info.pods.values():
                if own:
                    pmeta = entry.pod.get("metadata") or {}
                    pns = pmeta.get("namespace") or ""
                    plabels = pmeta.get("labels") or {}
                    for term, weight in own:
                        if term.matches_meta(pns, plabels):
                            value = labels.get(term.topology_key)
                            if value is not None:
                                by_value = scores.setdefault(term.topology_key, {})
                                by_value[value] = by_value.get(value, 0) + weight
                                touched = True
                if not entry.has_affinity:
                    continue
                existing = get_terms(entry.pod)
                for group, weight_of in ((existing.required_affinity if hard_weight > 0 else (), 0),
                                         (existing.preferred_affinity, 1), (existing.preferred_anti_affinity, -1)):
                    for term in group:
                        if term.matches(pod, ns_labels):
                            value = labels.get(term.topology_key)
                            if value is not None:
                                weight = hard_weight if weight_of == 0 else term.weight * weight_of
                                by_value = scores.setdefault(term.topology_key, {})
                                by_value[value] = by_value.get(value, 0) + weight
                                touched = True
        return scores, touched

    def _score_from_index(self, index: PodIndex, pod: Obj, ns_labels: dict[str, str] | None,
                          preferred: list[AffinityTerm], preferred_anti: list[AffinityTerm]
                          ) -> tuple[dict[str, dict[str, int]], bool]:
        """PreScore's topology scores from the pod index: the incoming pod's preferred terms
        against the pods that may match them, and the existing pods' terms that may match it."""
        scores: dict[str, dict[str, int]] = {}
        touched = False

        def add(key: str, value: str | None, weight: int) -> None:
            nonlocal touched
            if value is not None:
                by_value = scores.setdefault(key, {})
                by_value[value] = by_value.get(value, 0) + weight
                touched = True

        for term, weight in [(t, t.weight) for t in preferred] + [(t, -t.weight) for t in preferred_anti]:
            for other, node_labels in index.pods_matching(term):
                meta = other.get("metadata") or {}
                if node_labels and term.matches_meta(meta.get("namespace") or "", meta.get("labels") or {}):
                    add(term.topology_key, node_labels.get(term.topology_key), weight)
        hard_weight = self.hard_pod_affinity_weight
        kinds = [("preferred_affinity", 1), ("preferred_anti_affinity", -1)]
        if hard_weight > 0:
            kinds.insert(0, ("required_affinity", 0))
        for kind, sign in kinds:
            for term, occurrences in index.terms_matching(pod, kind):
                if not term.matches(pod, ns_labels):
                    continue
                weight = hard_weight if sign == 0 else term.weight * sign
                for node_labels in occurrences:
                    if node_labels:
                        add(term.topology_key, node_labels.get(term.topology_key), weight)
        return scores, touched

    def score(self, state: CycleState, pod: Obj, node_info: NodeInfo) -> tuple[int, Status]:
        s = state.get(PRE_SCORE_STATE_KEY)
        if s is None:
            return 0, Status.error(f'failed to read "{PRE_SCORE_STATE_KEY}" from cycleState: not found', plugin=NAME)
        labels = node_info.labels
        total = 0
        for key, by_value in s.topology_score.items():
            value = labels.get(key)
            if value is not None:
                total += by_value.get(value, 0)
        return total, SUCCESS

    def normalize_score(self, state: CycleState, pod: Obj, scores: dict[str, int]) -> Status:
        s = state.get(PRE_SCORE_STATE_KEY)
        if s is None:
            return Status.error(f'failed to read "{PRE_SCORE_STATE_KEY}" from cycleState: not found', plugin=NAME)
        if not s.topology_score or not scores:
            return SUCCESS
        low = min(scores.values())
        spread = max(scores.values()) - low
        for node_name, raw in scores.items():
            scores[node_name] = int(float(MAX_NODE_SCORE) * (float(raw - low) / float(spread))) if spread > 0 else 0
        return SUCCESS
