"""NodeResourcesBalancedAllocation: the PreScore/Score plugin that favours nodes whose
resources would be used evenly with the pod on them (upstream's BalancedAllocation).

For each resource of ``resources`` (default cpu and memory; every weight must be 1) the
fraction requested/allocatable with the pod's requests added (its real requests, not the
non-zero defaults: upstream scores this plugin with ``useRequested``), capped at 1;
resources the node lacks, and scalar resources the pod does not request, are left out.
The score is (1 - standard deviation of the fractions) * 100, truncated: with two fractions
the deviation is |a - b| / 2, with more the population standard deviation, with fewer 0.
As upstream v1.32, pods that request nothing are scored too (the best-effort skip came in
v1.33).  PreScore computes the pod's side once; Score is a short loop over it;
``score_table`` scores all nodes at once in the same float arithmetic when every node has
every resource scored (otherwise it leaves the nodes to ``score``).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from pybernetes.scheduler.framework import MAX_NODE_SCORE, SUCCESS, CycleState, NodeInfo, Plugin, Status
from pybernetes.scheduler.nodetable import NodeTable
from pybernetes.scheduler.plugins.noderesourcesfit import DEFAULT_RESOURCES, default_resources, score_entries

Obj = dict[str, Any]

NAME = "NodeResourcesBalancedAllocation"
PRE_SCORE_KEY = "PreScore" + NAME


class NodeResourcesBalancedAllocation(Plugin):
    name = NAME

    def __init__(self, args: Obj | None = None, handle: Any = None) -> None:
        super().__init__(args, handle)
        self.resources = default_resources(self.args.get("resources"))
        self._last: tuple[Any, Any] = (None, None)  # (state, entries) of the last PreScore

    @classmethod
    def default_args(cls) -> Obj:
        return {"resources": [dict(r) for r in DEFAULT_RESOURCES]}

    @classmethod
    def validate_args(cls, args: Obj) -> list[str]:
        errors = []
        seen: set[str] = set()
        resources = args.get("resources") or ()
        if not isinstance(resources, list):
            return ["resources: Invalid value: must be a list"]
        for i, spec in enumerate(resources):
            if not isinstance(spec, dict) or not spec.get("name"):
                errors.append(f"resources[{i}].name: Required value")
                continue
            if spec["name"] in seen:
                errors.append(f'resources[{i}].name: Duplicate value: "{spec["name"]}"')
            seen.add(spec["name"])
            weight = spec.get("weight", 1)
            if weight != 1:
                errors.append(f"resources[{i}].weight: Invalid value: {weight}: must be 1")
        return errors

    def pre_score(self, state: CycleState, pod: Obj, nodes: list[NodeInfo]) -> Status:
        entries = score_entries(pod, self.resources, True)
        state.write(PRE_SCORE_KEY, entries)
        self._last = (state, entries)
        return SUCCESS

    def score(self, state: CycleState, pod: Obj, node_info: NodeInfo) -> tuple[int, Status]:
        last = self._last
        entries = last[1] if last[0] is state else state.get(PRE_SCORE_KEY)
        if entries is None:
            entries = score_entries(pod, self.resources, True)
            state.write(PRE_SCORE_KEY, entries)
            self._last = (state, entries)
        allocatable = node_info.allocatable
        requested = node_info.requested
        fractions = []
        for _kind, name, request, _weight in entries:
            alloc = allocatable.get(name, 0)
            if not alloc:
                continue
            fraction = (requested.get(name, 0) + request) / alloc
            fractions.append(fraction if fraction < 1 else 1.0)
        n = len(fractions)
        if n == 2:
            std = abs((fractions[0] - fractions[1]) / 2)
        elif n > 2:
            mean = sum(fractions) / n
            std = math.sqrt(sum((f - mean) * (f - mean) for f in fractions) / n)
        else:
            std = 0.0
        return int((1 - std) * MAX_NODE_SCORE), SUCCESS

    def score_table(self, state: CycleState, pod: Obj, table: NodeTable, rows: np.ndarray) -> np.ndarray | None:
        last = self._last
        entries = last[1] if last[0] is state else state.get(PRE_SCORE_KEY)
        if entries is None:
            return None
        fractions = []
        for _kind, name, request, _weight in entries:
            alloc = table.alloc(name)[rows]
            if not alloc.all():  # some node lacks it: their fraction count differs, per node
                return None
            fractions.append(np.minimum((table.requested(name)[rows] + request) / alloc, 1.0))
        n = len(fractions)
        if n == 2:
            std = np.abs((fractions[0] - fractions[1]) / 2)
        elif n > 2:
            mean = sum(fractions) / n
            std = np.sqrt(sum((f - mean) * (f - mean) for f in fractions) / n)
        else:
            std = np.zeros(len(rows))
        return ((1 - std) * MAX_NODE_SCORE).astype(np.int64)
