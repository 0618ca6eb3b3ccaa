"""The node's part in controller tests: Node objects and pod status, set through the API.

There is no kubelet or scheduler in these tests.  ``NodeSim`` creates Nodes, binds pods
(to the node their daemon affinity names, else to its default node), and writes pod status
as a kubelet would report it: Running with a Ready condition, Succeeded, Failed with an exit
code.  ``auto_run`` does this for every new pod, and finishes graceful deletions (a bound pod
deleted with a grace period keeps its deletionTimestamp until its kubelet deletes it with
grace 0).
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import itertools
import time
from datetime import UTC, datetime
from typing import Any

from pybernetes.client.errors import ApiError, Conflict, NotFound
from pybernetes.client.rest import RestClient
from pybernetes.client.tasks import TaskSet

Obj = dict[str, Any]
PODS = ("", "v1", "pods")
NODES = ("", "v1", "nodes")


def rfc3339(epoch: float | None = None) -> str:
    return datetime.fromtimestamp(int(time.time() if epoch is None else epoch), UTC).strftime(
        "%Y-%m-%dT%H:%M:%SZ")


def _daemon_node(pod: Obj) -> str | None:
    """The node a DaemonSet pod's required affinity pins it to (matchFields metadata.name)."""
    terms = ((((pod.get("spec") or {}).get("affinity") or {}).get("nodeAffinity") or {})
             .get("requiredDuringSchedulingIgnoredDuringExecution") or {}).get("nodeSelectorTerms") or []
    for term in terms:
        for field in term.get("matchFields") or ():
            if field.get("key") == "metadata.name" and field.get("operator") == "In" and field.get("values"):
                return field["values"][0]
    return None


class NodeSim:
    def __init__(self, client: RestClient, *, default_node: str = "node-1") -> None:
        self.client = client
        self.default_node = default_node
        self._tasks = TaskSet("node-sim")
        self._ips = (str(ipaddress.ip_address("10.42.0.0") + i) for i in itertools.count(2))

    # -- nodes --------------------------------------------------------------------------------

    async def create_node(self, name: str, labels: dict[str, str] | None = None,
                          taints: list[Obj] | None = None, ready: bool = True) -> Obj:
        node: Obj = {
            "apiVersion": "v1", "kind": "Node",
            "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name, **(labels or {})}},
            "spec": {"taints": taints} if taints else {},
        }
        created = await self.client.create(NODES, node)
        created["status"] = {
            "capacity": {"cpu": "4", "memory": "8Gi", "pods": "110"},
            "allocatable": {"cpu": "4", "memory": "8Gi", "pods": "110"},
            "conditions": [{"type": "Ready", "status": "True" if ready else "False",
                            "reason": "KubeletReady" if ready else "KubeletNotReady",
                            "lastHeartbeatTime": rfc3339(), "lastTransitionTime": rfc3339()}],
            "addresses": [{"type": "InternalIP", "address": "127.0.0.1"},
                          {"type": "Hostname", "address": name}],
        }
        return await self.client.update_status(NODES, created)

    # -- pods ---------------------------------------------------------------------------------

    async def _pod(self, pod_or_name: Obj | str, namespace: str | None) -> Obj:
        if isinstance(pod_or_name, dict):
            meta = pod_or_name["metadata"]
            return await self.client.get(PODS, meta["name"], meta.get("namespace"))
        return await self.client.get(PODS, pod_or_name, namespace or "default")

    async def bind(self, pod: Obj, node: str | None = None) -> None:
        """Bind ``pod`` (pods/binding) to ``node``, its daemon node, or the default node."""
        if (pod.get("spec") or {}).get("nodeName"):
            return
        target = node or _daemon_node(pod) or self.default_node
        meta = pod["metadata"]
        binding = {"apiVersion": "v1", "kind": "Binding",
                   "metadata": {"name": meta["name"], "namespace": meta["namespace"]},
                   "target": {"apiVersion": "v1", "kind": "Node", "name": target}}
        await self.client.create(PODS, binding, meta["namespace"], subresource="binding", name=meta["name"])

    async def set_pod_phase(self, pod_or_name: Obj | str, namespace: str | None = None, *,
                            phase: str = "Running", ready: bool = True, exit_code: int | None = None,
                            reason: str | None = None, bind: bool = True,
                            ready_since: float | None = None) -> Obj:
        """Write the status a kubelet would for ``phase`` (retrying on conflicts)."""
        for _ in range(20):
            pod = await self._pod(pod_or_name, namespace)
            if bind and not (pod.get("spec") or {}).get("nodeName"):
                with contextlib.suppress(ApiError):
                    await self.bind(pod)
                pod = await self._pod(pod, None)
            pod["status"] = self._status(pod, phase, ready, exit_code, reason, ready_since)
            try:
                return await self.client.update_status(PODS, pod)
            except Conflict:
                continue
        raise RuntimeError("could not set pod status: too many conflicts")

    def _status(self, pod: Obj, phase: str, ready: bool, exit_code: int | None, reason: str | None,
                ready_since: float | None) -> Obj:
        now = rfc3339()
        old = pod.get("status") or {}
        running = phase == "Running"
        is_ready = running and ready
        ip = old.get("podIP") or next(self._ips)
        containers = []
        for c in (pod.get("spec") or {}).get("containers") or []:
            if running:
                state: Obj = {"running": {"startedAt": now}}
            elif phase in ("Succeeded", "Failed"):
                code = exit_code if exit_code is not None else (0 if phase == "Succeeded" else 1)
                state = {"terminated": {"exitCode": code, "reason": reason or (
                    "Completed" if code == 0 else "Error"), "startedAt": now, "finishedAt": now}}
            else:
                state = {"waiting": {"reason": "ContainerCreating"}}
            containers.append({"name": c["name"], "image": c.get("image", ""), "imageID": "",
                               "ready": is_ready, "restartCount": 0, "started": running, "state": state})
        ready_time = rfc3339(ready_since) if ready_since is not None else now
        old_ready = next((c for c in old.get("conditions") or [] if c.get("type") == "Ready"), None)
        if old_ready and old_ready.get("status") == ("True" if is_ready else "False") and ready_since is None:
            ready_time = old_ready.get("lastTransitionTime") or ready_time
        status: Obj = {
            "phase": phase,
            "conditions": [
                {"type": "PodScheduled", "status": "True", "lastTransitionTime": now},
                {"type": "Initialized", "status": "True", "lastTransitionTime": now},
                {"type": "ContainersReady", "status": "True" if is_ready else "False", "lastTransitionTime": ready_time},
                {"type": "Ready", "status": "True" if is_ready else "False", "lastTransitionTime": ready_time},
            ],
            "hostIP": "127.0.0.1", "hostIPs": [{"ip": "127.0.0.1"}],
            "podIP": ip, "podIPs": [{"ip": ip}],
            "startTime": old.get("startTime") or now,
            "containerStatuses": containers,
        }
        if reason and phase not in ("Succeeded", "Failed"):
            status["reason"] = reason
        return status

    async def mark_running(self, pod: Obj | str, namespace: str | None = None, *, ready: bool = True) -> Obj:
        return await self.set_pod_phase(pod, namespace, phase="Running", ready=ready)

    async def mark_ready(self, pod: Obj | str, namespace: str | None = None, ready: bool = True) -> Obj:
        return await self.set_pod_phase(pod, namespace, phase="Running", ready=ready)

    async def mark_succeeded(self, pod: Obj | str, namespace: str | None = None) -> Obj:
        return await self.set_pod_phase(pod, namespace, phase="Succeeded", exit_code=0)

    async def mark_failed(self, pod: Obj | str, namespace: str | None = None, *, exit_code: int = 1,
                          reason: str | None = None) -> Obj:
        return await self.set_pod_phase(pod, namespace, phase="Failed", exit_code=exit_code, reason=reason)

    async def finish_deletion(self, pod: Obj) -> None:
        """What a kubelet does once a pod's containers stopped: delete it with grace 0."""
        meta = pod["metadata"]
        with contextlib.suppress(NotFound, Conflict):
            await self.client.delete(PODS, meta["name"], meta["namespace"], grace_period_seconds=0,
                                     preconditions={"uid": meta["uid"]})

    # -- the automatic kubelet ----------------------------------------------------------------

    def auto_run(self, namespace: str | None = None, *, ready: bool = True, node_name: str | None = None,
                 finish_deletions: bool = True) -> None:
        """From now on, mark every pod (in ``namespace``, or all) Running (+Ready) as it
        appears, and finish graceful deletions."""
        if node_name:
            self.default_node = node_name
        self._tasks.start(f"auto-{namespace or 'all'}", self._auto(namespace, ready, finish_deletions))

    async def _auto(self, namespace: str | None, ready: bool, finish_deletions: bool) -> None:
        rv: str | None = None
        while True:
            try:
                if rv is None:
                    listing = await self.client.list(PODS, namespace)
                    rv = listing["metadata"]["resourceVersion"]
                    for pod in listing.get("items") or []:
                        await self._handle(pod, ready, finish_deletions)
                async for kind, pod in self.client.watch(PODS, namespace, resource_version=rv,
                                                        timeout_seconds=300):
                    rv = (pod.get("metadata") or {}).get("resourceVersion") or rv
                    if kind in ("ADDED", "MODIFIED"):
                        await self._handle(pod, ready, finish_deletions)
            except asyncio.CancelledError:
                raise
            except ApiError as exc:
                if exc.code == 410:
                    rv = None
                await asyncio.sleep(0.05)
            except Exception:  # noqa: BLE001 - keep the simulated kubelet alive
                await asyncio.sleep(0.05)

    async def _handle(self, pod: Obj, ready: bool, finish_deletions: bool) -> None:
        meta = pod.get("metadata") or {}
        try:
            if meta.get("deletionTimestamp"):
                if finish_deletions:
                    await self.finish_deletion(pod)
                return
            phase = (pod.get("status") or {}).get("phase")
            if phase in (None, "", "Pending"):
                await self.set_pod_phase(pod, phase="Running", ready=ready)
        except NotFound:
            return

    async def stop(self) -> None:
        await self._tasks.stop(grace=2.0)
