"""NodePorts: the PreFilter/Filter plugin that keeps a pod off nodes where the host ports it
asks for are taken (upstream's nodeports plugin).

PreFilter collects the pod's host ports once — those of its containers and of its
restartable ("sidecar") init containers, with hostPort > 0, an empty hostIP read as 0.0.0.0
and an empty protocol as TCP — and skips Filter for pods without any.  Filter checks them
against ``NodeInfo.used_ports`` as upstream's HostPortInfo.CheckConflict does: a wanted
0.0.0.0 port conflicts with the same protocol/port on any IP; a wanted specific IP conflicts
with the same protocol/port on that IP or on 0.0.0.0.  A conflict is Unschedulable,
"node(s) didn't have free ports for the requested pod ports".  ``filter_table`` checks only
the nodes with host ports in use (nodetable.py).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

from pybernetes.scheduler.framework import (
    SUCCESS,
    ClusterEvent,
    CycleState,
    NodeInfo,
    Plugin,
    PreFilterResult,
    Status,
)
from pybernetes.scheduler.nodetable import NodeTable, sparse_filter
from pybernetes.scheduler.resources import host_ports

ERR_REASON = "node(s) didn't have free ports for the requested pod ports"
STATE_KEY = "PreFilterNodePorts"
ALL_IPS = "0.0.0.0"

Port = tuple[str, str, int]  # (hostIP, protocol, hostPort)


pod_host_ports = host_ports  # the ports a pod holds while it runs (resources.host_ports)


def ports_conflict(wanted: Iterable[Port], used: dict[Port, int]) -> bool:
    """Whether any wanted port conflicts with ``used`` (keys sanitized (ip, protocol, port))."""
    if not used:
        return False
    for ip, protocol, port in wanted:
        if ip == ALL_IPS:
            for _ip, u_protocol, u_port in used:
                if u_port == port and u_protocol == protocol:
                    return True
        elif (ip, protocol, port) in used or (ALL_IPS, protocol, port) in used:
            return True
    return False


class NodePorts(Plugin):
    name = "NodePorts"

    _REJECT = Status.unschedulable(ERR_REASON, plugin="NodePorts")

    def pre_filter(self, state: CycleState, pod: dict[str, Any], nodes: list[NodeInfo]
                   ) -> tuple[PreFilterResult | None, Status]:
        ports = pod_host_ports(pod)
        if not ports:
            return None, Status.skip()
        state.write(STATE_KEY, ports)
        return None, SUCCESS

    def filter(self, state: CycleState, pod: dict[str, Any], node_info: NodeInfo) -> Status:
        used = node_info.used_ports
        if not used:
            return SUCCESS
        wanted = state.get(STATE_KEY)
        if wanted is None:  # PreFilter not enabled in this profile: compute once, keep for the cycle
            wanted = pod_host_ports(pod)
            state.write(STATE_KEY, wanted)
        if ports_conflict(wanted, used):
            return self._REJECT
        return SUCCESS

    def filter_table(self, state: CycleState, pod: dict[str, Any], table: NodeTable) -> np.ndarray | bool:
        return sparse_filter(self.filter, state, pod, table, table.port_rows)

    def events_to_register(self) -> Iterable[ClusterEvent]:
        # v1.32 with queueing hints: a pod deleted (frees ports) or a node added.
        return (ClusterEvent("Pod", "Delete"), ClusterEvent("Node", "Add"))
