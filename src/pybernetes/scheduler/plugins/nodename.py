"""NodeName: the Filter plugin that keeps a pod which names its node (``spec.nodeName``) to
that node (upstream's nodename plugin).  Other nodes are rejected as
UnschedulableAndUnresolvable, "node(s) didn't match the requested node name".  ``filter_table``
passes only the named node's row."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

from pybernetes.scheduler.framework import SUCCESS, ClusterEvent, CycleState, NodeInfo, Plugin, Status
from pybernetes.scheduler.nodetable import NodeTable

ERR_REASON = "node(s) didn't match the requested node name"


def fits(pod: dict[str, Any], node_info: NodeInfo) -> bool:
    wanted = (pod.get("spec") or {}).get("nodeName")
    return not wanted or wanted == node_info.name


class NodeName(Plugin):
    name = "NodeName"
    node_pods_matter = False  # its Filter looks at the node, never at the pods on it

    # One shared rejection (plugin set, so the runtime never mutates it).
    _REJECT = Status.unresolvable(ERR_REASON, plugin="NodeName")

    def filter(self, state: CycleState, pod: dict[str, Any], node_info: NodeInfo) -> Status:
        wanted = (pod.get("spec") or {}).get("nodeName")
        if not wanted or wanted == node_info.name:
            return SUCCESS
        return self._REJECT

    def filter_table(self, state: CycleState, pod: dict[str, Any], table: NodeTable) -> np.ndarray | bool:
        wanted = (pod.get("spec") or {}).get("nodeName")
        return table.rows_named((wanted,)) if wanted else True

    def events_to_register(self) -> Iterable[ClusterEvent]:
        return (ClusterEvent("Node", "Add"),)
