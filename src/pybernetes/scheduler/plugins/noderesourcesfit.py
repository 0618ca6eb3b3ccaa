"""NodeResourcesFit: the PreFilter/Filter/PreScore/Score plugin that keeps a pod off nodes
without room for its requests and scores the nodes that have room (upstream's
noderesources Fit plugin with its resource-allocation scorers).

PreFilter computes the pod's requests once (``resources.pod_requests``: containers, init and
sidecar containers, overhead) and keeps only what Filter must check: cpu, memory,
ephemeral-storage and the scalar resources (extended, hugepages-* ...) the pod asks for,
minus the extended resources named in ``ignoredResources`` or whose domain is in
``ignoredResourceGroups``.  Filter compares them with allocatable minus requested and
reports every shortage, as upstream: "Too many pods", "Insufficient cpu", "Insufficient
memory", "Insufficient ephemeral-storage", "Insufficient <resource>" (Unschedulable).

Score (``scoringStrategy``): for each resource of ``resources`` (default cpu and memory,
weight 1) the node's requested amount with the pod's added — for cpu and memory the
*non-zero* requests (100m / 200Mi for containers that ask for none) — against allocatable;
resources the node does not have, and scalar resources the pod does not ask for, are left
out.  ``LeastAllocated`` scores (allocatable - requested) * 100 / allocatable,
``MostAllocated`` requested * 100 / allocatable (requested capped at allocatable),
``RequestedToCapacityRatio`` a piecewise-linear ``shape`` of utilisation (0..100) to score
(0..10, scaled to 0..100); the weighted mean of the resources, integer arithmetic as
upstream.  PreScore computes the pod's side once; Score is a short loop over it.

``filter_table``/``score_table`` give the same verdicts and scores for all nodes at once from
the snapshot's columns (nodetable.py), in the same integer (and, for the ratio's final
rounding, float) arithmetic.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

from pybernetes.scheduler.framework import (
    MAX_NODE_SCORE,
    SUCCESS,
    ClusterEvent,
    Code,
    CycleState,
    NodeInfo,
    Plugin,
    PreFilterResult,
    Status,
)
from pybernetes.scheduler.nodetable import NodeTable
from pybernetes.scheduler.resources import (
    CPU,
    EPHEMERAL,
    MEMORY,
    PODS,
    is_extended_resource,
    is_qualified_name,
    is_scalar_resource,
    non_zero_requests,
    pod_requests,
)

Obj = dict[str, Any]

NAME = "NodeResourcesFit"
PRE_FILTER_KEY = "PreFilter" + NAME
PRE_SCORE_KEY = "PreScore" + NAME
TOO_MANY_PODS = "Too many pods"
LEAST_ALLOCATED = "LeastAllocated"
MOST_ALLOCATED = "MostAllocated"
REQUESTED_TO_CAPACITY_RATIO = "RequestedToCapacityRatio"
STRATEGIES = (LEAST_ALLOCATED, MOST_ALLOCATED, REQUESTED_TO_CAPACITY_RATIO)
MAX_UTILIZATION = 100
MAX_CUSTOM_PRIORITY_SCORE = 10
DEFAULT_RESOURCES = ({"name": CPU, "weight": 1}, {"name": MEMORY, "weight": 1})

# kinds of a score entry: which node figure the pod's request is added to
KIND_CPU, KIND_MEMORY, KIND_REQUESTED = 0, 1, 2

ScoreEntry = tuple[int, str, int, int]  # (kind, resource, pod request, weight)


# -- shared with NodeResourcesBalancedAllocation ----------------------------------------------


def default_resources(resources: Any) -> list[Obj]:
    """``resources`` args with upstream's defaults: cpu and memory when empty, weight 1 when 0."""
    if not resources:
        return [dict(r) for r in DEFAULT_RESOURCES]
    out = []
    for spec in resources:
        spec = dict(spec) if isinstance(spec, dict) else {"name": spec}
        if not spec.get("weight"):
            spec["weight"] = 1
        out.append(spec)
    return out


def score_entries(pod: Obj, resources: list[Obj], use_requested: bool) -> tuple[ScoreEntry, ...]:
    """The pod's side of a resource-allocation score, one entry per resource that can count:
    cpu and memory against the node's non-zero requests (or its requests when
    ``use_requested``), ephemeral-storage and scalar resources against its requests; scalar
    resources the pod does not request and names that are neither are left out (upstream
    scores them as absent)."""
    requests = pod_requests(pod)
    nz_cpu, nz_memory = (requests.get(CPU, 0), requests.get(MEMORY, 0)) if use_requested \
        else non_zero_requests(pod)
    out: list[ScoreEntry] = []
    for spec in resources:
        name = spec.get("name") or ""
        weight = int(spec.get("weight") or 1)
        if name == CPU:
            out.append((KIND_REQUESTED if use_requested else KIND_CPU, name, nz_cpu, weight))
        elif name == MEMORY:
            out.append((KIND_REQUESTED if use_requested else KIND_MEMORY, name, nz_memory, weight))
        elif name == EPHEMERAL:
            out.append((KIND_REQUESTED, name, requests.get(name, 0), weight))
        elif is_scalar_resource(name) and requests.get(name, 0):
            out.append((KIND_REQUESTED, name, requests[name], weight))
    return tuple(out)


def _go_div(numerator: int, denominator: int) -> int:
    """Integer division truncating toward zero, as Go's."""
    q = abs(numerator) // abs(denominator)
    return q if (numerator >= 0) == (denominator > 0) else -q


def broken_linear(shape: list[tuple[int, int]], p: int) -> int:
    """Upstream's BuildBrokenLinearFunction: ``shape`` is [(utilization, score)] increasing."""
    prev_u, prev_s = shape[0]
    if p <= prev_u:
        return prev_s
    for u, s in shape[1:]:
        if p <= u:
            return prev_s + _go_div((s - prev_s) * (p - prev_u), u - prev_u)
        prev_u, prev_s = u, s
    return prev_s


def _validate_resources(resources: Any, path: str) -> list[str]:
    errors = []
    if resources is None:
        return errors
    if not isinstance(resources, list):
        return [f"{path}: Invalid value: must be a list"]
    for i, spec in enumerate(resources):
        if not isinstance(spec, dict) or not spec.get("name"):
            errors.append(f"{path}[{i}].name: Required value")
            continue
        weight = spec.get("weight", 1)
        if not isinstance(weight, int) or isinstance(weight, bool) or weight <= 0 or weight > 100:
            errors.append(f"{path}[{i}].weight: Invalid value: {weight}: resource weight of "
                          f"{spec['name']} not in valid range (0, 100]")
    return errors


def _validate_label_name(value: Any, path: str) -> list[str]:
    if not isinstance(value, str) or not is_qualified_name(value):
        return [f"{path}: Invalid value: {value!r}: must be a qualified name"]
    return []


def _validate_shape(shape: Any, path: str) -> list[str]:
    if not shape:
        return [f"{path}: Required value: at least one point must be specified"]
    if not isinstance(shape, list) or not all(isinstance(p, dict) for p in shape):
        return [f"{path}: Invalid value: must be a list of {{utilization, score}}"]
    errors = []
    points = [(p.get("utilization", 0), p.get("score", 0)) for p in shape]
    for i in range(1, len(points)):
        if not isinstance(points[i][0], int) or not isinstance(points[i - 1][0], int):
            break
        if points[i - 1][0] >= points[i][0]:
            errors.append(f"{path}[{i}].utilization: Invalid value: {points[i][0]}: "
                          "utilization values must be sorted in increasing order")
            break
    for i, (u, s) in enumerate(points):
        if not isinstance(u, int) or isinstance(u, bool) or not 0 <= u <= MAX_UTILIZATION:
            errors.append(f"{path}[{i}].utilization: Invalid value: {u}: not in valid range [0, 100]")
        if not isinstance(s, int) or isinstance(s, bool) or not 0 <= s <= MAX_CUSTOM_PRIORITY_SCORE:
            errors.append(f"{path}[{i}].score: Invalid value: {s}: not in valid range [0, 10]")
    return errors


# -- the plugin -------------------------------------------------------------------------------


class NodeResourcesFit(Plugin):
    name = NAME

    def __init__(self, args: Obj | None = None, handle: Any = None) -> None:
        merged = self.default_args()
        merged.update(args or {})
        super().__init__(merged, handle)
        self.ignored_resources = frozenset(merged.get("ignoredResources") or ())
        self.ignored_groups = frozenset(merged.get("ignoredResourceGroups") or ())
        strategy = dict(merged.get("scoringStrategy") or {})
        self.strategy = strategy.get("type") or LEAST_ALLOCATED
        self.resources = default_resources(strategy.get("resources"))
        ratio = strategy.get("requestedToCapacityRatio") or {}
        scale = MAX_NODE_SCORE // MAX_CUSTOM_PRIORITY_SCORE
        self.shape = [(int(p.get("utilization", 0)), int(p.get("score", 0)) * scale)
                      for p in ratio.get("shape") or ()]
        if self.strategy == MOST_ALLOCATED:
            self._scorer = self._score_most
        elif self.strategy == REQUESTED_TO_CAPACITY_RATIO:
            self._scorer = self._score_ratio
            # the raw function at each integer utilisation, precomputed
            self._shape_table = [broken_linear(self.shape, p) if self.shape else 0
                                 for p in range(MAX_UTILIZATION + 1)]
        else:
            self._scorer = self._score_least
        self.score = self._scorer  # type: ignore[method-assign]  # skip one call per node
        # (state, value) of the last PreFilter / PreScore: Filter and Score of that cycle
        # find their value without a CycleState lookup (a clone is another state: looked up)
        self._last_filter: tuple[Any, Any] = (None, None)
        self._last_score: tuple[Any, Any] = (None, None)

    @classmethod
    def default_args(cls) -> Obj:
        resources = [dict(r) for r in DEFAULT_RESOURCES]
        return {"scoringStrategy": {"type": LEAST_ALLOCATED, "resources": resources}}

    @classmethod
    def validate_args(cls, args: Obj) -> list[str]:
        errors: list[str] = []
        for i, res in enumerate(args.get("ignoredResources") or ()):
            errors += _validate_label_name(res, f"ignoredResources[{i}]")
        for i, group in enumerate(args.get("ignoredResourceGroups") or ()):
            path = f"ignoredResourceGroups[{i}]"
            if isinstance(group, str) and "/" in group:
                errors.append(f"{path}: Invalid value: {group!r}: resource group name can't contain '/'")
            else:
                errors += _validate_label_name(group, path)
        strategy = args.get("scoringStrategy")
        if strategy is not None:
            if not isinstance(strategy, dict):
                return [*errors, "scoringStrategy: Invalid value: must be an object"]
            kind = strategy.get("type") or LEAST_ALLOCATED
            if kind not in STRATEGIES:
                errors.append(f'scoringStrategy.type: Unsupported value: "{kind}": supported values: '
                              + ", ".join(f'"{s}"' for s in STRATEGIES))
            errors += _validate_resources(strategy.get("resources"), "scoringStrategy.resources")
            ratio = strategy.get("requestedToCapacityRatio")
            if ratio is not None or kind == REQUESTED_TO_CAPACITY_RATIO:
                errors += _validate_shape((ratio or {}).get("shape"), "scoringStrategy.shape")
        return errors

    def events_to_register(self) -> Iterable[ClusterEvent]:
        return (ClusterEvent("Pod", "Delete"), ClusterEvent("Node", "Add"),
                ClusterEvent("Node", "UpdateNodeAllocatable"))

    # -- filter -------------------------------------------------------------------------------

    def checks_of(self, pod: Obj) -> tuple[tuple[str, int, str], ...]:
        """(resource, amount, reason) for each resource Filter must find room for."""
        requests = pod_requests(pod)
        out = []
        for name in (CPU, MEMORY, EPHEMERAL):
            amount = requests.get(name, 0)
            if amount > 0:
                out.append((name, amount, "Insufficient " + name))
        for name, amount in requests.items():
            if amount <= 0 or name in (CPU, MEMORY, EPHEMERAL, PODS) or not is_scalar_resource(name):
                continue
            if is_extended_resource(name) and (
                    name in self.ignored_resources
                    or (self.ignored_groups and name.split("/", 1)[0] in self.ignored_groups)):
                continue
            out.append((name, amount, "Insufficient " + name))
        return tuple(out)

    def pre_filter(self, state: CycleState, pod: Obj, nodes: list[NodeInfo]
                   ) -> tuple[PreFilterResult | None, Status]:
        checks = self.checks_of(pod)
        state.write(PRE_FILTER_KEY, checks)
        self._last_filter = (state, checks)
        return None, SUCCESS

    def filter(self, state: CycleState, pod: Obj, node_info: NodeInfo) -> Status:
        last = self._last_filter
        if last[0] is state:  # the cycle PreFilter just ran for: skip the state lookup
            checks = last[1]
        else:
            checks = state.get(PRE_FILTER_KEY)
            if checks is None:
                return Status.error(f'error reading "{PRE_FILTER_KEY}" from cycleState: not found', NAME)
        allocatable = node_info.allocatable
        reasons = None
        if len(node_info.pods) >= allocatable.get("pods", 0):
            reasons = [TOO_MANY_PODS]
        if checks:
            requested = node_info.requested
            for name, amount, reason in checks:
                if amount > allocatable.get(name, 0) - requested.get(name, 0):
                    if reasons is None:
                        reasons = [reason]
                    else:
                        reasons.append(reason)
        if reasons is None:
            return SUCCESS
        return Status(Code.UNSCHEDULABLE, tuple(reasons), NAME)

    def filter_table(self, state: CycleState, pod: Obj, table: NodeTable) -> np.ndarray | bool | None:
        last = self._last_filter
        checks = last[1] if last[0] is state else state.get(PRE_FILTER_KEY)
        if checks is None:
            return None  # the per-node form reports the missing state
        passing = table.requested(PODS) < table.alloc(PODS)
        for name, amount, _reason in checks:
            passing &= table.alloc(name) - table.requested(name) >= amount
        return passing

    def statuses_table(self, state: CycleState, pod: Obj, table: NodeTable, rows: np.ndarray) -> list[Status]:
        """``filter``'s status for each of ``rows`` (rows it rejects): one Status per distinct
        set of shortages, the shortages found with the table's columns."""
        last = self._last_filter
        checks = last[1] if last[0] is state else state.get(PRE_FILTER_KEY)
        if checks is None:
            return [self.filter(state, pod, table.infos[row]) for row in rows.tolist()]
        reasons = [TOO_MANY_PODS] + [reason for _name, _amount, reason in checks]
        code = (table.requested(PODS)[rows] >= table.alloc(PODS)[rows]).astype(np.int64)
        for bit, (name, amount, _reason) in enumerate(checks, start=1):
            short = table.alloc(name)[rows] - table.requested(name)[rows] < amount
            code |= short.astype(np.int64) << bit
        by_code: dict[int, Status] = {}
        out = []
        for value in code.tolist():
            status = by_code.get(value)
            if status is None:
                found = tuple(reason for bit, reason in enumerate(reasons) if value >> bit & 1)
                status = by_code[value] = Status(Code.UNSCHEDULABLE, found, NAME) if found else SUCCESS
            out.append(status)
        return out

    # -- score --------------------------------------------------------------------------------

    def pre_score(self, state: CycleState, pod: Obj, nodes: list[NodeInfo]) -> Status:
        entries = score_entries(pod, self.resources, False)
        state.write(PRE_SCORE_KEY, entries)
        self._last_score = (state, entries)
        return SUCCESS

    def _entries(self, state: CycleState, pod: Obj) -> tuple[ScoreEntry, ...]:
        entries = state.get(PRE_SCORE_KEY)
        if entries is None:
            entries = score_entries(pod, self.resources, False)
            state.write(PRE_SCORE_KEY, entries)
        self._last_score = (state, entries)
        return entries

    def score(self, state: CycleState, pod: Obj, node_info: NodeInfo) -> tuple[int, Status]:
        return self._scorer(state, pod, node_info)

    def score_table(self, state: CycleState, pod: Obj, table: NodeTable, rows: np.ndarray) -> np.ndarray:
        last = self._last_score
        entries = last[1] if last[0] is state else self._entries(state, pod)
        if self.strategy == LEAST_ALLOCATED:
            fast = self._least_allocated_table(entries, table, rows)
            if fast is not None:
                return fast
        total = np.zeros(len(rows), np.int64)
        weights = np.zeros(len(rows), np.int64)
        ratio = self.strategy == REQUESTED_TO_CAPACITY_RATIO
        shape = np.array(self._shape_table, np.int64) if ratio else None
        for kind, name, request, weight in entries:
            alloc = table.alloc(name)[rows]
            if kind == KIND_CPU:
                used = table.nz_cpu[rows] + request
            elif kind == KIND_MEMORY:
                used = table.nz_memory[rows] + request
            else:
                used = table.requested(name)[rows] + request
            has = alloc > 0
            safe = np.where(has, alloc, 1)
            if self.strategy == MOST_ALLOCATED:
                part = np.minimum(used, alloc) * MAX_NODE_SCORE // safe * weight
                counted = has
            elif ratio:
                value = shape[np.minimum(used * MAX_UTILIZATION // safe, MAX_UTILIZATION)]  # type: ignore[index]
                counted = has & (value > 0)
                part = value * weight
            else:
                part = (alloc - used) * MAX_NODE_SCORE // safe * weight
                part[used > alloc] = 0
                counted = has
            total += np.where(counted, part, 0)
            weights += counted * weight
        safe_weights = np.maximum(weights, 1)
        if ratio:
            scores = np.floor(total / safe_weights + 0.5).astype(np.int64)
        else:
            scores = total // safe_weights
        return np.where(weights > 0, scores, 0)

    @staticmethod
    def _least_allocated_table(entries: tuple[ScoreEntry, ...], table: NodeTable, rows: np.ndarray
                               ) -> np.ndarray | None:
        """LeastAllocated when every row has every scored resource (the usual case): fewer
        array operations; None otherwise (the general form handles missing resources)."""
        total: Any = 0
        weights = 0
        for kind, name, request, weight in entries:
            alloc = table.alloc(name)[rows]
            if not alloc.all():
                return None
            if kind == KIND_CPU:
                used = table.nz_cpu[rows] + request
            elif kind == KIND_MEMORY:
                used = table.nz_memory[rows] + request
            else:
                used = table.requested(name)[rows] + request
            total = total + np.maximum(alloc - used, 0) * MAX_NODE_SCORE // alloc * weight
            weights += weight
        if not weights:
            return np.zeros(len(rows), np.int64)
        return total // weights

    def _score_least(self, state: CycleState, pod: Obj, node_info: NodeInfo) -> tuple[int, Status]:
        allocatable = node_info.allocatable
        total = weights = 0
        last = self._last_score
        entries = last[1] if last[0] is state else self._entries(state, pod)
        for kind, name, request, weight in entries:
            alloc = allocatable.get(name, 0)
            if not alloc:
                continue
            if kind == KIND_CPU:
                used = node_info.non_zero_cpu + request
            elif kind == KIND_MEMORY:
                used = node_info.non_zero_memory + request
            else:
                used = node_info.requested.get(name, 0) + request
            if used <= alloc:
                total += (alloc - used) * MAX_NODE_SCORE // alloc * weight
            weights += weight
        return (total // weights if weights else 0), SUCCESS

    def _score_most(self, state: CycleState, pod: Obj, node_info: NodeInfo) -> tuple[int, Status]:
        allocatable = node_info.allocatable
        total = weights = 0
        last = self._last_score
        entries = last[1] if last[0] is state else self._entries(state, pod)
        for kind, name, request, weight in entries:
            alloc = allocatable.get(name, 0)
            if not alloc:
                continue
            if kind == KIND_CPU:
                used = node_info.non_zero_cpu + request
            elif kind == KIND_MEMORY:
                used = node_info.non_zero_memory + request
            else:
                used = node_info.requested.get(name, 0) + request
            if used > alloc:
                used = alloc
            total += used * MAX_NODE_SCORE // alloc * weight
            weights += weight
        return (total // weights if weights else 0), SUCCESS

    def _score_ratio(self, state: CycleState, pod: Obj, node_info: NodeInfo) -> tuple[int, Status]:
        allocatable = node_info.allocatable
        table = self._shape_table
        total = weights = 0
        last = self._last_score
        entries = last[1] if last[0] is state else self._entries(state, pod)
        for kind, name, request, weight in entries:
            alloc = allocatable.get(name, 0)
            if not alloc:
                continue
            if kind == KIND_CPU:
                used = node_info.non_zero_cpu + request
            elif kind == KIND_MEMORY:
                used = node_info.non_zero_memory + request
            else:
                used = node_info.requested.get(name, 0) + request
            value = table[MAX_UTILIZATION] if used > alloc else table[used * MAX_UTILIZATION // alloc]
            if value > 0:
                total += value * weight
                weights += weight
        if not weights:
            return 0, SUCCESS
        return int(total / weights + 0.5), SUCCESS
