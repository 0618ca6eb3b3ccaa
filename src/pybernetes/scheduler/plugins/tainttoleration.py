"""TaintToleration: Filter and Score by node taints and pod tolerations (upstream's
tainttoleration plugin).

- Filter: the first NoSchedule or NoExecute taint of the node that no toleration of the pod
  tolerates rejects the node as UnschedulableAndUnresolvable,
  "node(s) had untolerated taint {key: value}".
- PreScore/Score: the number of PreferNoSchedule taints the pod does not tolerate;
  NormalizeScore reverses it onto 0..100 (fewest intolerable taints: 100).

The pod's tolerations are compiled once per cycle (taints.CompiledTolerations, in the cycle
state: by the first Filter call, since upstream gives this plugin no PreFilter, and by
PreScore), and verdicts are memoized per distinct taint, so a Filter call is a few dict
lookups.  Rejection statuses are memoized per taint too.  The table forms decide only the
nodes that have taints one by one (nodetable.py); every other node passes and counts 0.
When no node has a taint, PreScore skips the plugin: every node would score the same.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

from pybernetes.machinery.taints import DO_NOT_SCHEDULE_EFFECTS, PREFER_NO_SCHEDULE, CompiledTolerations
from pybernetes.scheduler.framework import (
    MAX_NODE_SCORE,
    SUCCESS,
    ClusterEvent,
    CycleState,
    NodeInfo,
    Plugin,
    Status,
)
from pybernetes.scheduler.nodetable import NodeTable, sparse_filter
from pybernetes.scheduler.plugins.nodeaffinity import normalize_scores, normalize_table

Obj = dict[str, Any]

FILTER_KEY = "FilterTaintToleration"
PRE_SCORE_KEY = "PreScoreTaintToleration"
_PREFER = (PREFER_NO_SCHEDULE,)


def untolerated_reason(taint: Obj) -> str:
    return f"node(s) had untolerated taint {{{taint.get('key') or ''}: {taint.get('value') or ''}}}"


class _FilterState:
    """A pod's compiled tolerations and its rejection statuses by taint (key, value)."""

    __slots__ = ("tolerations", "rejections")

    def __init__(self, pod: Obj) -> None:
        self.tolerations = CompiledTolerations.of_pod(pod)
        self.rejections: dict[tuple[str, str], Status] = {}

    def clone(self) -> _FilterState:
        return self


class TaintToleration(Plugin):
    name = "TaintToleration"
    node_pods_matter = False  # its Filter looks at the node, never at the pods on it

    def filter(self, state: CycleState, pod: Obj, node_info: NodeInfo) -> Status:
        taints = (node_info.node.get("spec") or {}).get("taints")
        if not taints:
            return SUCCESS
        fs = state.get(FILTER_KEY)
        if fs is None:
            fs = _FilterState(pod)
            state.write(FILTER_KEY, fs)
        taint = fs.tolerations.first_untolerated(taints, DO_NOT_SCHEDULE_EFFECTS)
        if taint is None:
            return SUCCESS
        key = (taint.get("key") or "", taint.get("value") or "")
        status = fs.rejections.get(key)
        if status is None:
            status = Status.unresolvable(untolerated_reason(taint), plugin=self.name)
            fs.rejections[key] = status
        return status

    def filter_table(self, state: CycleState, pod: Obj, table: NodeTable) -> np.ndarray | bool:
        return sparse_filter(self.filter, state, pod, table, table.tainted_rows)

    def pre_score(self, state: CycleState, pod: Obj, nodes: list[NodeInfo]) -> Status:
        snapshot = getattr(self.handle, "snapshot", None)
        if snapshot is not None and len(snapshot) and not len(snapshot.table.tainted_rows):
            return Status.skip()  # no node has a taint: every node would score the same
        state.write(PRE_SCORE_KEY, CompiledTolerations.of_pod(pod, _PREFER))
        return SUCCESS

    def score(self, state: CycleState, pod: Obj, node_info: NodeInfo) -> tuple[int, Status]:
        taints = (node_info.node.get("spec") or {}).get("taints")
        if not taints:
            return 0, SUCCESS
        tolerations = state.get(PRE_SCORE_KEY)
        if tolerations is None:
            return 0, Status.error(f'reading "{PRE_SCORE_KEY}" from cycleState: not found', plugin=self.name)
        return tolerations.count_untolerated(taints, PREFER_NO_SCHEDULE), SUCCESS

    def score_table(self, state: CycleState, pod: Obj, table: NodeTable, rows: np.ndarray) -> np.ndarray | None:
        """Counts (non-zero only on tainted nodes), then NormalizeScore reversed."""
        tolerations = state.get(PRE_SCORE_KEY)
        if tolerations is None:
            return None
        tainted = table.tainted_rows
        if not len(tainted):  # no node has taints: every count is 0, every score the maximum
            return np.full(len(rows), MAX_NODE_SCORE, np.int64)
        counts = np.zeros(len(rows), np.int64)
        if len(tainted):
            infos = table.infos
            for i in np.flatnonzero(np.isin(rows, tainted)).tolist():
                taints = (infos[int(rows[i])].node.get("spec") or {}).get("taints") or ()
                counts[i] = tolerations.count_untolerated(taints, PREFER_NO_SCHEDULE)
        return normalize_table(counts, reverse=True)

    def normalize_score(self, state: CycleState, pod: Obj, scores: dict[str, int]) -> Status:
        normalize_scores(scores, reverse=True)
        return SUCCESS

    def events_to_register(self) -> Iterable[ClusterEvent]:
        # v1.32 with queueing hints: a node added or its taints changed, or the pod gained
        # tolerations.
        return (ClusterEvent("Node", "Add"), ClusterEvent("Node", "UpdateNodeTaint"),
                ClusterEvent("Pod", "UpdatePodTolerations"))
