"""DefaultBinder: the Bind plugin that binds a pod to its chosen node through the API
(upstream's defaultbinder): POST a v1 Binding to the pod's ``binding`` subresource.

The Binding names the pod (namespace, name and uid) and targets the node; the API server sets
``spec.nodeName`` and the PodScheduled condition.  Any failure (the pod is gone, already bound,
the server unreachable ...) comes back as an Error status carrying the API's message, so the
scheduler forgets its assumption and retries the pod.
"""

from __future__ import annotations

from typing import Any

from pybernetes.client.errors import ApiError
from pybernetes.scheduler.framework import SUCCESS, CycleState, Plugin, Status

Obj = dict[str, Any]

PODS = ("", "v1", "pods")


def binding_for(pod: Obj, node_name: str) -> Obj:
    """The v1 Binding of ``pod`` to ``node_name`` (a new dict; ``pod`` is not changed)."""
    meta = pod.get("metadata") or {}
    binding_meta: Obj = {"name": meta.get("name", ""), "namespace": meta.get("namespace") or "default"}
    if meta.get("uid"):
        binding_meta["uid"] = meta["uid"]
    return {"apiVersion": "v1", "kind": "Binding", "metadata": binding_meta,
            "target": {"apiVersion": "v1", "kind": "Node", "name": node_name}}


class DefaultBinder(Plugin):
    name = "DefaultBinder"

    async def bind(self, state: CycleState, pod: Obj, node_name: str) -> Status:
        client = getattr(self.handle, "client", None)
        if client is None:
            return Status.error("DefaultBinder has no API client to bind with", plugin=self.name)
        binding = binding_for(pod, node_name)
        meta = binding["metadata"]
        try:
            await client.create(PODS, binding, meta["namespace"], subresource="binding", name=meta["name"])
        except ApiError as exc:
            return Status.error(exc.message or str(exc), plugin=self.name)
        except Exception as exc:  # connection failures and the like: an Error status, never a raise
            return Status.error(f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__,
                                plugin=self.name)
        return SUCCESS
