"""NodeUnschedulable: the Filter plugin that keeps pods off cordoned nodes
(``node.spec.unschedulable``), unless the pod tolerates the
``node.kubernetes.io/unschedulable:NoSchedule`` taint (upstream's nodeunschedulable plugin).
A rejection is UnschedulableAndUnresolvable, "node(s) were unschedulable".  ``filter_table``
reads the table's ``unschedulable`` column."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

from pybernetes.machinery.taints import NO_SCHEDULE, TAINT_NODE_UNSCHEDULABLE, tolerations_tolerate
from pybernetes.scheduler.framework import SUCCESS, ClusterEvent, CycleState, NodeInfo, Plugin, Status
from pybernetes.scheduler.nodetable import NodeTable

ERR_REASON_UNSCHEDULABLE = "node(s) were unschedulable"

_UNSCHEDULABLE_TAINT = {"key": TAINT_NODE_UNSCHEDULABLE, "effect": NO_SCHEDULE}


def tolerates_unschedulable(pod: dict[str, Any]) -> bool:
    return tolerations_tolerate((pod.get("spec") or {}).get("tolerations"), _UNSCHEDULABLE_TAINT)


class NodeUnschedulable(Plugin):
    name = "NodeUnschedulable"
    node_pods_matter = False  # its Filter looks at the node, never at the pods on it

    _REJECT = Status.unresolvable(ERR_REASON_UNSCHEDULABLE, plugin="NodeUnschedulable")

    def filter(self, state: CycleState, pod: dict[str, Any], node_info: NodeInfo) -> Status:
        if not (node_info.node.get("spec") or {}).get("unschedulable"):
            return SUCCESS
        if tolerates_unschedulable(pod):
            return SUCCESS
        return self._REJECT

    def filter_table(self, state: CycleState, pod: dict[str, Any], table: NodeTable) -> np.ndarray | bool:
        cordoned = table.unschedulable
        if not cordoned.any() or tolerates_unschedulable(pod):
            return True
        return ~cordoned

    def events_to_register(self) -> Iterable[ClusterEvent]:
        # v1.32 with queueing hints: a node added or its taints/unschedulable changed, or the
        # pod gained tolerations.
        return (ClusterEvent("Node", "Add"), ClusterEvent("Node", "UpdateNodeTaint"),
                ClusterEvent("Pod", "UpdatePodTolerations"))
