"""The node agent's presence in the cluster (upstream kubelet's node registration, node status
updates and node lease): it registers its Node, posts the Node's status every
``status_period`` seconds (node_status.py: capacity, allocatable, addresses, nodeInfo, the four
conditions), and renews its Lease in ``kube-node-lease`` every ``lease_period`` seconds (40 s
duration, owned by the Node so it goes with it).  Pods are not run yet: the pod workers come
next (docs/kubelet.md).

A conflict on a write is retried from a fresh read; a failed period is logged and the next one
tries again (an unreachable API server never stops the agent).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from pybernetes.client.errors import AlreadyExists, ApiError, Conflict, ConnectionFailed, NotFound
from pybernetes.client.rest import RestClient
from pybernetes.client.tasks import TaskSet
from pybernetes.kubelet.node_status import HostFigures, node_status
from pybernetes.kubelet.runtime.protocol import Runtime

log = logging.getLogger(__name__)

Obj = dict[str, Any]
NODES = ("", "v1", "nodes")
LEASES = ("coordination.k8s.io", "v1", "leases")
LEASE_NAMESPACE = "kube-node-lease"
LEASE_DURATION = 40
WRITE_ATTEMPTS = 5


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def _micro_now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class NodeAgent:
    def __init__(self, client: RestClient, node_name: str, runtime: Runtime, data_dir: str, *,
                 status_period: float = 10.0, lease_period: float = 10.0,
                 host: Callable[[], HostFigures] | None = None) -> None:
        self.client = client
        self.node_name = node_name
        self.runtime = runtime
        self.data_dir = data_dir
        self.status_period = status_period
        self.lease_period = lease_period
        self._host = host or (lambda: HostFigures.read(data_dir))
        self._tasks = TaskSet(f"agent/{node_name}")
        self.node_uid = ""

    async def start(self) -> None:
        await self.register()
        await self.renew_lease()
        self._tasks.start("node-status", self._every(self.status_period, self.update_status))
        self._tasks.start("node-lease", self._every(self.lease_period, self.renew_lease))

    async def stop(self) -> None:
        await self._tasks.stop(grace=2.0)

    async def _every(self, period: float, action: Callable[[], Any]) -> None:
        while True:
            await asyncio.sleep(period)
            try:
                await action()
            except (ApiError, ConnectionFailed) as exc:
                log.warning("node %s: %s failed: %s", self.node_name, getattr(action, "__name__", action), exc)

    # -- the Node -----------------------------------------------------------------------------------

    async def register(self) -> Obj:
        """Create the Node (an existing one is taken over), then post its status."""
        host = self._host()
        labels = {"kubernetes.io/hostname": self.node_name, "kubernetes.io/os": "linux",
                  "kubernetes.io/arch": host.architecture}
        try:
            node = await self.client.create(NODES, {"apiVersion": "v1", "kind": "Node",
                                                    "metadata": {"name": self.node_name, "labels": labels}})
        except AlreadyExists:
            node = await self.client.get(NODES, self.node_name)
        self.node_uid = (node.get("metadata") or {}).get("uid") or ""
        return await self.update_status()

    async def update_status(self) -> Obj:
        version = await self.runtime.version()
        for attempt in range(WRITE_ATTEMPTS):
            node = await self.client.get(NODES, self.node_name)
            previous = (node.get("status") or {}).get("conditions")
            status = node_status(self._host(), self.node_name, self.runtime.name, version, _now(), previous)
            node["status"] = {**(node.get("status") or {}), **status}
            try:
                return await self.client.update_status(NODES, node)
            except Conflict:
                if attempt == WRITE_ATTEMPTS - 1:
                    raise
        raise AssertionError("unreachable")

    # -- the Lease ----------------------------------------------------------------------------------

    async def renew_lease(self) -> Obj:
        spec = {"holderIdentity": self.node_name, "leaseDurationSeconds": LEASE_DURATION,
                "renewTime": _micro_now()}
        for attempt in range(WRITE_ATTEMPTS):
            try:
                lease = await self.client.get(LEASES, self.node_name, LEASE_NAMESPACE)
            except NotFound:
                meta: Obj = {"name": self.node_name, "namespace": LEASE_NAMESPACE}
                if self.node_uid:
                    meta["ownerReferences"] = [{"apiVersion": "v1", "kind": "Node", "name": self.node_name,
                                                "uid": self.node_uid}]
                try:
                    return await self.client.create(LEASES, {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                                                             "metadata": meta, "spec": spec}, LEASE_NAMESPACE)
                except AlreadyExists:
                    continue
            lease["spec"] = {**(lease.get("spec") or {}), **spec}
            try:
                return await self.client.update(LEASES, lease, LEASE_NAMESPACE)
            except Conflict:
                if attempt == WRITE_ATTEMPTS - 1:
                    raise
        raise AssertionError("unreachable")
