"""SchedulingGates: the PreEnqueue plugin that holds back pods carrying
``spec.schedulingGates`` (upstream's schedulinggates plugin).

A gated pod is not queued for scheduling; its status says "waiting for scheduling gates: [a b]"
(the gate names in order, space-separated in brackets, as upstream prints a Go string slice).
Removing the last gate (a pod update) lets it in.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from pybernetes.scheduler.framework import SUCCESS, ClusterEvent, Plugin, Status


class SchedulingGates(Plugin):
    name = "SchedulingGates"

    def pre_enqueue(self, pod: dict[str, Any]) -> Status:
        gates = (pod.get("spec") or {}).get("schedulingGates") or ()
        if not gates:
            return SUCCESS
        names = [str(g.get("name") or "") if isinstance(g, dict) else str(g) for g in gates]
        return Status.unresolvable(f"waiting for scheduling gates: [{' '.join(names)}]", plugin=self.name)

    def events_to_register(self) -> Iterable[ClusterEvent]:
        # The pod's own update that removes its last gate (v1.32 with queueing hints).
        return (ClusterEvent("Pod", "UpdatePodSchedulingGatesEliminated"),)
