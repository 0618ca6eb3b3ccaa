"""The PodTopologySpread plugin (upstream pkg/scheduler/framework/plugins/podtopologyspread):
spread a pod's "siblings" evenly over topology domains (zones, hosts ...).

- Constraints come from ``pod.spec.topologySpreadConstraints``, or — when the pod has none —
  from the cluster default constraints (args ``defaultingType: System``: hostname maxSkew 3 and
  zone maxSkew 5, ScheduleAnyway; or ``List`` with ``defaultConstraints``), whose selector is
  built from the Services / controllers that select the pod.
- PreFilter counts, per DoNotSchedule constraint, the matching pods (same namespace, not
  being deleted) in each domain over all nodes that carry every topology key and pass the
  inclusion policies (nodeAffinityPolicy Honor: the pod's nodeSelector / required affinity;
  nodeTaintsPolicy Honor: no untolerated NoSchedule/NoExecute taint).  The state keeps, per
  constraint, the domain counts, the global minimum (0 while there are fewer domains than
  minDomains) and the largest count a domain may have to accept the pod; AddPod / RemovePod
  update it exactly (preemption's what-ifs) on a copy-on-write clone.
- Filter is a couple of lookups per constraint: a node without a topology key is
  UnschedulableAndUnresolvable ("... (missing required label)"); a domain whose count plus the
  pod itself exceeds the minimum by more than maxSkew is Unschedulable.  ``filter_table`` does
  the same for all nodes at once from the node table's label codes.
- PreScore / Score / NormalizeScore (ScheduleAnyway constraints): a node scores the sum over
  constraints of count-in-its-domain × log(number of domains + 2) + (maxSkew − 1); nodes missing
  a topology key are ignored (0) unless only system defaults apply; normalization reverses the
  scores so the least crowded domains get MAX_NODE_SCORE.
- Counting is incremental across cycles (``podtopologyspread_counts``): only the nodes that
  changed since the previous cycle are recounted.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import numpy as np

from pybernetes.machinery.errors import (
    FieldError,
    duplicate,
    forbidden_field,
    invalid_value,
    not_supported,
    required,
)
from pybernetes.machinery.nodeaffinity import RequiredNodeAffinity
from pybernetes.machinery.selectors import SelectorParseError
from pybernetes.machinery.validation import validate_label_name
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
from pybernetes.scheduler.plugins.podtopologyspread_counts import CountMemo, accumulate_counts
from pybernetes.scheduler.plugins.podtopologyspread_helpers import (
    DO_NOT_SCHEDULE,
    LABEL_HOSTNAME,
    LABEL_ZONE,
    SCHEDULE_ANYWAY,
    Constraint,
    constraints_for,
    default_selector,
    has_untolerated_do_not_schedule_taint,
    node_has_all_keys,
    required_affinity,
)

Obj = dict[str, Any]

NAME = "PodTopologySpread"
PRE_FILTER_KEY = "PreFilter" + NAME
PRE_SCORE_KEY = "PreScore" + NAME
REASON_CONSTRAINTS_NOT_MATCH = "node(s) didn't match pod topology spread constraints"
REASON_NODE_LABEL_NOT_MATCH = REASON_CONSTRAINTS_NOT_MATCH + " (missing required label)"
SYSTEM_DEFAULTING = "System"
LIST_DEFAULTING = "List"
SYSTEM_DEFAULT_CONSTRAINTS: tuple[Obj, ...] = (
    {"topologyKey": LABEL_HOSTNAME, "whenUnsatisfiable": SCHEDULE_ANYWAY, "maxSkew": 3},
    {"topologyKey": LABEL_ZONE, "whenUnsatisfiable": SCHEDULE_ANYWAY, "maxSkew": 5},
)
_NO_LIMIT = 1 << 62  # no eligible domain and minDomains <= 0: nothing to compare against


class SpreadState:
    """What PreFilter computed for Filter.  Per constraint ``i``: ``counts[i]`` (domain ->
    matching pods), ``mins[i]`` (smallest count, None without domains), ``limits[i]`` (a domain
    with more matching pods than this rejects the pod).  ``clone`` shares the maps until one
    side changes them (copy on write)."""

    __slots__ = ("constraints", "counts", "mins", "limits", "self_match", "namespace", "affinity",
                 "tolerations", "_hists", "_shared", "checks", "missing_label", "too_skewed")

    def __init__(self, constraints: list[Constraint], counts: list[dict[str, int]], self_match: list[int],
                 namespace: str, affinity: RequiredNodeAffinity, tolerations: list[Obj]) -> None:
        self.constraints = constraints
        self.counts = counts
        self.self_match = self_match
        self.namespace = namespace
        self.affinity = affinity
        self.tolerations = tolerations
        self.mins: list[int | None] = [min(c.values()) if c else None for c in counts]
        self._hists: list[dict[int, int] | None] = [None] * len(counts)
        self._shared = False
        self.limits: list[int] = []
        self.checks: tuple[tuple[str, dict[str, int], int], ...] = ()
        # Made once per cycle: Filter rejects many nodes and a Status costs more than the check.
        self.missing_label = Status.unresolvable(REASON_NODE_LABEL_NOT_MATCH, plugin=NAME)
        self.too_skewed = Status.unschedulable(REASON_CONSTRAINTS_NOT_MATCH, plugin=NAME)
        self._refresh()

    def min_match(self, i: int) -> int | None:
        """The global minimum of constraint ``i`` (0 while domains < minDomains)."""
        if len(self.counts[i]) < self.constraints[i].min_domains:
            return 0
        return self.mins[i]

    def _refresh(self) -> None:
        limits = []
        for i, c in enumerate(self.constraints):
            low = self.min_match(i)
            limits.append(_NO_LIMIT if low is None else c.max_skew + low - self.self_match[i])
        self.limits = limits
        self.checks = tuple((c.key, self.counts[i], limits[i]) for i, c in enumerate(self.constraints))

    def clone(self) -> SpreadState:
        other = SpreadState.__new__(SpreadState)
        for slot in SpreadState.__slots__:
            setattr(other, slot, getattr(self, slot))
        self._shared = other._shared = True
        return other

    def update(self, i: int, value: str, delta: int) -> None:
        """Add ``delta`` matching pods to domain ``value`` of constraint ``i``."""
        if self._shared:
            self.counts = [dict(c) for c in self.counts]
            self._hists = [dict(h) if h is not None else None for h in self._hists]
            self.mins = list(self.mins)
            self._shared = False
        counts = self.counts[i]
        hist = self._hists[i]
        if hist is None:  # built on first change: count -> number of domains with it
            hist = {}
            for n in counts.values():
                hist[n] = hist.get(n, 0) + 1
            self._hists[i] = hist
        old = counts.get(value)
        new = (old or 0) + delta
        if old is not None:
            left = hist[old] - 1
            if left:
                hist[old] = left
            else:
                del hist[old]
        counts[value] = new
        hist[new] = hist.get(new, 0) + 1
        self.mins[i] = min(hist)
        self._refresh()


class ScoreState:
    """What PreScore computed for Score/NormalizeScore (read-only, so clone shares it)."""

    __slots__ = ("constraints", "ignored", "counts", "weights", "namespace", "terms")

    def __init__(self, constraints: list[Constraint], ignored: set[str], counts: list[dict[str, int]],
                 weights: list[float], namespace: str, memo: CountMemo) -> None:
        self.constraints = constraints
        self.ignored = ignored
        self.counts = counts
        self.weights = weights
        self.namespace = namespace
        # Per constraint: (key, domain counts or None for hostname, weight, maxSkew - 1,
        # memo table and selector for the per-node hostname count).
        self.terms = tuple(
            (c.key, None if c.key == LABEL_HOSTNAME else counts[i], weights[i], c.max_skew - 1,
             memo.table(namespace, c.selector) if c.key == LABEL_HOSTNAME else None, c.selector)
            for i, c in enumerate(constraints))

    def clone(self) -> ScoreState:
        return self


class PodTopologySpread(Plugin):
    name = NAME

    def __init__(self, args: Obj | None = None, handle: Any = None) -> None:
        super().__init__(args, handle)
        defaulting = self.args.get("defaultingType") or SYSTEM_DEFAULTING
        self.system_defaulted = defaulting == SYSTEM_DEFAULTING
        if self.system_defaulted:
            self.default_constraints: list[Obj] = [dict(c) for c in SYSTEM_DEFAULT_CONSTRAINTS]
        else:
            self.default_constraints = list(self.args.get("defaultConstraints") or ())
        self._defaults_by_action: dict[str, list[Constraint]] = {}
        self._memo = CountMemo(32)

    # -- configuration ---------------------------------------------------------------------

    @classmethod
    def default_args(cls) -> Obj:
        return {"defaultingType": SYSTEM_DEFAULTING}

    @classmethod
    def validate_args(cls, args: Obj) -> list[str]:
        errors: list[FieldError] = []
        defaulting = args.get("defaultingType") or SYSTEM_DEFAULTING
        constraints = args.get("defaultConstraints") or []
        if defaulting not in (SYSTEM_DEFAULTING, LIST_DEFAULTING):
            errors.append(not_supported("defaultingType", defaulting, [SYSTEM_DEFAULTING, LIST_DEFAULTING]))
        elif defaulting == SYSTEM_DEFAULTING and constraints:
            errors.append(invalid_value("defaultingType", defaulting, "when .defaultConstraints are not empty"))
        if not isinstance(constraints, list):
            errors.append(invalid_value("defaultConstraints", constraints, "must be a list"))
            constraints = []
        seen: set[tuple[Any, Any]] = set()
        for i, c in enumerate(constraints):
            path = f"defaultConstraints[{i}]"
            if not isinstance(c, dict):
                errors.append(invalid_value(path, c, "must be an object"))
                continue
            skew = c.get("maxSkew")
            if not isinstance(skew, int) or isinstance(skew, bool) or skew <= 0:
                errors.append(invalid_value(f"{path}.maxSkew", skew if skew is not None else 0,
                                            "not in valid range (0, inf)"))
            key = c.get("topologyKey")
            if not key:
                errors.append(required(f"{path}.topologyKey", "can not be empty"))
            else:
                errors.extend(validate_label_name(key, f"{path}.topologyKey"))
            action = c.get("whenUnsatisfiable")
            if not action:
                errors.append(required(f"{path}.whenUnsatisfiable", "can not be empty"))
            elif action not in (DO_NOT_SCHEDULE, SCHEDULE_ANYWAY):
                errors.append(not_supported(f"{path}.whenUnsatisfiable", action,
                                            [DO_NOT_SCHEDULE, SCHEDULE_ANYWAY]))
            if c.get("labelSelector") is not None:
                errors.append(forbidden_field(f"{path}.labelSelector",
                                              "constraint must not define a selector, as they deduced for each pod"))
            pair = (key, action)
            if pair in seen:
                errors.append(duplicate(path, f"{{{key}, {action}}}"))
            seen.add(pair)
        return [e.error_text() for e in errors]

    def events_to_register(self) -> Iterable[ClusterEvent]:
        return [ClusterEvent("Pod", "Add"), ClusterEvent("Pod", "UpdatePodLabel"), ClusterEvent("Pod", "Delete"),
                ClusterEvent("Node", "Add"), ClusterEvent("Node", "Delete"),
                ClusterEvent("Node", "UpdateNodeLabel"), ClusterEvent("Node", "UpdateNodeTaint")]

    # -- constraints -----------------------------------------------------------------------

    def constraints(self, pod: Obj, action: str) -> list[Constraint]:
        """The pod's constraints of ``action``, or the default ones (with the selector of the
        pod's Services/controllers) when the pod declares none."""
        labels = (pod.get("metadata") or {}).get("labels") or {}
        own = (pod.get("spec") or {}).get("topologySpreadConstraints")
        if own:
            return constraints_for(own, labels, action)
        if not self.default_constraints:
            return []
        if any(c.get("matchLabelKeys") for c in self.default_constraints):
            found = constraints_for(self.default_constraints, labels, action)
        else:  # the same for every pod: parsed once per action
            found = self._defaults_by_action.get(action)
            if found is None:
                found = self._defaults_by_action[action] = constraints_for(self.default_constraints, {}, action)
        if not found:
            return []
        selector = default_selector(pod, self.handle)
        if selector.empty:
            return []
        return [c.with_selector(selector) for c in found]

    # -- PreFilter / Filter ------------------------------------------------------------------

    def pre_filter(self, state: CycleState, pod: Obj, nodes: list[NodeInfo]
                   ) -> tuple[PreFilterResult | None, Status]:
        try:
            constraints = self.constraints(pod, DO_NOT_SCHEDULE)
        except SelectorParseError as exc:
            return None, Status.error(f"get constraints from pod: {exc}", NAME)
        if not constraints:
            return None, Status.skip()
        meta = pod.get("metadata") or {}
        namespace = meta.get("namespace") or ""
        spec = pod.get("spec") or {}
        affinity = required_affinity(pod)
        tolerations = spec.get("tolerations") or []
        counts: list[dict[str, int]] = [{} for _ in constraints]
        accumulate_counts(nodes, list(zip(constraints, counts, strict=True)), self._memo, namespace,
                          [c.key for c in constraints], affinity, tolerations, False, self._table_of(nodes))
        pod_labels = meta.get("labels") or {}
        self_match = [1 if c.selector.matches(pod_labels) else 0 for c in constraints]
        state.write(PRE_FILTER_KEY, SpreadState(constraints, counts, self_match, namespace, affinity, tolerations))
        return None, SUCCESS

    def filter(self, state: CycleState, pod: Obj, node_info: NodeInfo) -> Status:
        s = state.get(PRE_FILTER_KEY)
        if s is None:
            return Status.error(f'reading "{PRE_FILTER_KEY}" from cycleState: not found', NAME)
        labels = (node_info.node.get("metadata") or {}).get("labels") or {}
        for key, counts, limit in s.checks:
            value = labels.get(key)
            if value is None:
                return s.missing_label
            if counts.get(value, 0) > limit:
                return s.too_skewed
        return SUCCESS

    def filter_table(self, state: CycleState, pod: Obj, table: NodeTable) -> np.ndarray | bool | None:
        s = state.get(PRE_FILTER_KEY)
        if s is None:
            return None  # the per-node form reports the missing state
        passing = None
        for key, counts, limit in s.checks:
            codes, index = table.label_codes(key)
            ok = codes >= 0
            if limit < _NO_LIMIT:
                per_value = np.zeros(len(index) + 1, np.int64)  # the extra slot: code -1
                for value, count in counts.items():
                    code = index.get(value)
                    if code is not None:
                        per_value[code] = count
                ok &= per_value[codes] <= limit
            passing = ok if passing is None else passing & ok
        return True if passing is None else passing

    def _table_of(self, nodes: list[NodeInfo]) -> NodeTable | None:
        """The snapshot's node table when ``nodes`` are the snapshot's nodes (counts then
        follow the table's row stamps)."""
        snapshot = getattr(self.handle, "snapshot", None)
        return snapshot.incremental_table(nodes) if snapshot is not None else None

    def add_pod(self, state: CycleState, pod: Obj, pod_to_add: PodEntry, node_info: NodeInfo) -> Status:
        return self._update(state, pod_to_add.pod, node_info, 1)

    def remove_pod(self, state: CycleState, pod: Obj, pod_to_remove: PodEntry, node_info: NodeInfo) -> Status:
        return self._update(state, pod_to_remove.pod, node_info, -1)

    def _update(self, state: CycleState, changed: Obj, node_info: NodeInfo, delta: int) -> Status:
        s: SpreadState | None = state.get(PRE_FILTER_KEY)
        if s is None:
            return Status.error(f'reading "{PRE_FILTER_KEY}" from cycleState: not found', NAME)
        meta = changed.get("metadata") or {}
        # Pods of other namespaces never count; pods being deleted were not counted.
        if (meta.get("namespace") or "") != s.namespace or meta.get("deletionTimestamp"):
            return SUCCESS
        labels = node_info.labels
        if not node_has_all_keys(labels, s.constraints):
            return SUCCESS
        pod_labels = meta.get("labels") or {}
        for i, c in enumerate(s.constraints):
            if not c.selector.matches(pod_labels):
                continue
            if c.honor_affinity and not s.affinity.matches_node(node_info.node):
                continue
            if c.honor_taints and has_untolerated_do_not_schedule_taint(node_info.taints, s.tolerations):
                continue
            s.update(i, labels[c.key], delta)
        return SUCCESS

    # -- PreScore / Score / NormalizeScore ---------------------------------------------------

    def pre_score(self, state: CycleState, pod: Obj, nodes: list[NodeInfo]) -> Status:
        all_nodes = self.handle.snapshot.node_infos if self.handle is not None else nodes
        if not nodes or not all_nodes:
            return Status.skip()
        spec = pod.get("spec") or {}
        # Nodes must carry every topology key unless only the system defaults apply: then a
        # node without a zone label still gets hostname spreading.
        require_all = bool(spec.get("topologySpreadConstraints")) or not self.system_defaulted
        try:
            constraints = self.constraints(pod, SCHEDULE_ANYWAY)
        except SelectorParseError as exc:
            return Status.error(f"obtaining pod's soft topology spread constraints: {exc}", NAME)
        if not constraints:
            return Status.skip()
        namespace = (pod.get("metadata") or {}).get("namespace") or ""
        ignored: set[str] = set()
        counts: list[dict[str, int]] = [{} for _ in constraints]
        keys = frozenset(c.key for c in constraints)
        # The candidates' domains (per-node hostname counts are taken in Score instead).
        domains = [(c.key, counts[i]) for i, c in enumerate(constraints) if c.key != LABEL_HOSTNAME]
        if require_all or domains:
            for info in nodes:
                labels = (info.node.get("metadata") or {}).get("labels") or {}
                if require_all and not labels.keys() >= keys:
                    ignored.add(info.name)
                    continue
                for key, domain_counts in domains:
                    domain_counts.setdefault(labels.get(key, ""), 0)
        weights = []
        for i, c in enumerate(constraints):
            size = len(nodes) - len(ignored) if c.key == LABEL_HOSTNAME else len(counts[i])
            weights.append(math.log(size + 2))
        plan = [(c, counts[i]) for i, c in enumerate(constraints) if c.key != LABEL_HOSTNAME]
        if plan:
            accumulate_counts(all_nodes, plan, self._memo, namespace,
                              [c.key for c in constraints] if require_all else [], required_affinity(pod),
                              spec.get("tolerations") or [], True, self._table_of(all_nodes))
        state.write(PRE_SCORE_KEY, ScoreState(constraints, ignored, counts, weights, namespace, self._memo))
        return SUCCESS

    def score(self, state: CycleState, pod: Obj, node_info: NodeInfo) -> tuple[int, Status]:
        s: ScoreState | None = state.get(PRE_SCORE_KEY)
        if s is None:
            return 0, Status.error(f'reading "{PRE_SCORE_KEY}" from cycleState: not found', NAME)
        if node_info.name in s.ignored:
            return 0, SUCCESS
        labels = (node_info.node.get("metadata") or {}).get("labels") or {}
        total = 0.0
        for key, counts, weight, base, table, selector in s.terms:
            value = labels.get(key)
            if value is None:
                continue
            if counts is None:
                matched = CountMemo.count(table, node_info, selector, s.namespace)
            else:
                matched = counts.get(value, 0)
            total += matched * weight + base
        return int(math.floor(total + 0.5)), SUCCESS  # Go's math.Round (total >= 0)

    def normalize_score(self, state: CycleState, pod: Obj, scores: dict[str, int]) -> Status:
        s: ScoreState | None = state.get(PRE_SCORE_KEY)
        if s is None:
            return SUCCESS
        ignored = s.ignored
        low, high = None, 0
        for name, value in scores.items():
            if name in ignored:
                continue
            if low is None or value < low:
                low = value
            if value > high:
                high = value
        for name, value in scores.items():
            if name in ignored:
                scores[name] = 0
            elif high == 0:
                scores[name] = MAX_NODE_SCORE
            else:
                scores[name] = MAX_NODE_SCORE * (high + (low or 0) - value) // high
        return SUCCESS
