"""PrioritySort: the default QueueSort plugin (upstream's queuesort.PrioritySort).

Pods with a higher ``spec.priority`` (the value the Priority admission resolved from the
PriorityClass; none counts as 0) are scheduled first; among equal priorities the pod queued
earlier goes first.
"""

from __future__ import annotations

from typing import Any

from pybernetes.scheduler.framework import Plugin


def pod_priority(pod: dict[str, Any]) -> int:
    """``spec.priority``, 0 when unset (upstream's corev1helpers.PodPriority)."""
    priority = (pod.get("spec") or {}).get("priority")
    return int(priority) if priority is not None else 0


class PrioritySort(Plugin):
    name = "PrioritySort"

    def less(self, a: Any, b: Any) -> bool:
        """Whether queued pod ``a`` goes before ``b`` (each has ``.pod`` and ``.timestamp``)."""
        pa, pb = pod_priority(a.pod), pod_priority(b.pod)
        return pa > pb or (pa == pb and a.timestamp < b.timestamp)

    def sort_key(self, info: Any) -> tuple[int, float]:
        """``less`` as a key: the queue computes it once per pod instead of comparing twice."""
        return -pod_priority(info.pod), info.timestamp
