"""Fixtures for scheduler tests: a real API server in process, Node objects (no kubelets,
as upstream's scheduler_perf), and a ``Scheduler`` with a chosen configuration.

``sched.start(config=None)`` runs a scheduler (default configuration unless given) on the
test's event loop; it is stopped and everything removed at teardown.  ``vols`` creates
StorageClasses, PersistentVolumes, claims (bound or not), nodes and pods with volumes for the
volume plugins' tests, and deletes them at the end.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from pybernetes.client.errors import NotFound
from pybernetes.client.kubeconfig import Config
from pybernetes.client.rest import RestClient

PODS = ("", "v1", "pods")
NODES = ("", "v1", "nodes")


def node(name: str, *, cpu: str = "4", memory: str = "8Gi", pods: str = "110", labels: dict | None = None,
         taints: list | None = None, unschedulable: bool = False) -> dict:
    return {"apiVersion": "v1", "kind": "Node",
            "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name, **(labels or {})}},
            "spec": {**({"taints": taints} if taints else {}), **({"unschedulable": True} if unschedulable else {})}}


def pod(name: str, *, cpu: str | None = None, memory: str | None = None, labels: dict | None = None,
        namespace: str = "default", **spec: Any) -> dict:
    container: dict = {"name": "c", "image": "registry.k8s.io/pause:3.10"}
    requests = {k: v for k, v in (("cpu", cpu), ("memory", memory)) if v}
    if requests:
        container["resources"] = {"requests": requests}
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": namespace, "labels": labels or {"app": "x"}},
            "spec": {"containers": [container], **spec}}


class SchedulerCluster:
    def __init__(self, url: str, client: RestClient) -> None:
        self.url = url
        self.client = client
        self.schedulers: list[Any] = []

    async def start(self, config: Any = None) -> Any:
        from pybernetes.scheduler.config import default_config
        from pybernetes.scheduler.scheduler import Scheduler

        client = RestClient(Config(servers=[self.url], qps=5000, burst=10000))
        sched = Scheduler(client, config or default_config())
        sched.own_client = client
        self.schedulers.append(sched)
        await sched.start()
        return sched

    async def add_node(self, name: str, **kwargs: Any) -> dict:
        obj = node(name, **{k: v for k, v in kwargs.items() if k in ("labels", "taints", "unschedulable")})
        created = await self.client.create(NODES, obj)
        created["status"] = {
            "capacity": {"cpu": kwargs.get("cpu", "4"), "memory": kwargs.get("memory", "8Gi"),
                         "pods": kwargs.get("pods", "110")},
            "allocatable": {"cpu": kwargs.get("cpu", "4"), "memory": kwargs.get("memory", "8Gi"),
                            "pods": kwargs.get("pods", "110")},
            "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady"}]}
        return await self.client.update_status(NODES, created)

    async def add_pod(self, name: str, **kwargs: Any) -> dict:
        obj = pod(name, **kwargs)
        return await self.client.create(PODS, obj, obj["metadata"]["namespace"])

    async def node_of(self, name: str, namespace: str = "default") -> str | None:
        return ((await self.client.get(PODS, name, namespace)).get("spec") or {}).get("nodeName")

    async def wait_for(self, predicate: Callable[[], Any], timeout: float = 30.0, message: str = "") -> Any:  # noqa: ASYNC109
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            value = predicate()
            if inspect.isawaitable(value):
                value = await value
            if value:
                return value
            if loop.time() > deadline:
                pytest.fail(f"timed out after {timeout}s waiting for {message or predicate}: last {value!r}")
            await asyncio.sleep(0.05)

    async def wait_bound(self, *names: str, namespace: str = "default", timeout: float = 30.0) -> dict[str, str]:  # noqa: ASYNC109
        async def bound() -> dict[str, str] | None:
            out = {}
            for name in names:
                host = await self.node_of(name, namespace)
                if not host:
                    return None
                out[name] = host
            return out
        return await self.wait_for(bound, timeout, f"{names} bound")

    async def scheduled_condition(self, name: str, namespace: str = "default") -> dict | None:
        obj = await self.client.get(PODS, name, namespace)
        return next((c for c in (obj.get("status") or {}).get("conditions") or [] if c["type"] == "PodScheduled"),
                    None)

    async def close(self) -> None:
        for sched in reversed(self.schedulers):
            await sched.stop()
            await sched.own_client.close()
        await self.client.close()


@pytest.fixture
async def sched(tmp_path: Path, server_starter: Any) -> AsyncIterator[SchedulerCluster]:
    server, runner = await server_starter(tmp_path / "data")
    client = RestClient(Config(servers=[server.url], qps=5000, burst=10000))
    cluster = SchedulerCluster(server.url, client)
    try:
        yield cluster
    finally:
        try:
            await cluster.close()
        finally:
            await runner.cleanup()


PVCS = ("", "v1", "persistentvolumeclaims")
PVS = ("", "v1", "persistentvolumes")
CLASSES = ("storage.k8s.io", "v1", "storageclasses")


class Volumes:
    """Creates storage objects and pods for one test (the `vols` fixture) and deletes them all at
    the end."""

    def __init__(self, sched: Any) -> None:
        self.sched = sched
        self.client = sched.client
        self.created: list[tuple[tuple, str, str | None]] = []

    async def node(self, name: str, **kwargs: Any) -> dict:
        out = await self.sched.add_node(name, **kwargs)
        self.created.append((NODES, name, None))
        return out

    async def _create(self, res: tuple, obj: dict, namespace: str | None = None) -> dict:
        out = await self.client.create(res, obj, namespace)
        self.created.append((res, out["metadata"]["name"], namespace))
        return out

    async def storage_class(self, name: str, *, mode: str = "WaitForFirstConsumer",
                            provisioner: str = "kubernetes.io/no-provisioner") -> dict:
        return await self._create(CLASSES, {"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass",
                                            "metadata": {"name": name}, "provisioner": provisioner,
                                            "volumeBindingMode": mode})

    async def pv(self, name: str, *, sc: str, size: str = "1Gi", host: str | None = None,
                 modes: tuple = ("ReadWriteOnce",), claim: dict | None = None, labels: dict | None = None) -> dict:
        spec: dict = {"capacity": {"storage": size}, "accessModes": list(modes), "storageClassName": sc}
        if host:
            spec["local"] = {"path": "/mnt/disks/vol1"}
            spec["nodeAffinity"] = {"required": {"nodeSelectorTerms": [{"matchExpressions": [
                {"key": "kubernetes.io/hostname", "operator": "In", "values": [host]}]}]}}
        else:
            spec["csi"] = {"driver": "example.com/csi", "volumeHandle": name}
        if claim is not None:
            spec["claimRef"] = {"kind": "PersistentVolumeClaim", "apiVersion": "v1", "namespace": "default",
                                "name": claim["metadata"]["name"], "uid": claim["metadata"]["uid"]}
        return await self._create(PVS, {"apiVersion": "v1", "kind": "PersistentVolume",
                                        "metadata": {"name": name, "labels": labels or {}}, "spec": spec})

    async def pvc(self, name: str, *, sc: str, size: str = "1Gi", modes: tuple = ("ReadWriteOnce",)) -> dict:
        return await self._create(PVCS, {"apiVersion": "v1", "kind": "PersistentVolumeClaim",
                                         "metadata": {"name": name, "namespace": "default"},
                                         "spec": {"accessModes": list(modes), "storageClassName": sc,
                                                  "resources": {"requests": {"storage": size}}}}, "default")

    async def bind(self, claim_name: str, volume_name: str) -> None:
        """What the PV controller does last: the claim names its volume and is Bound."""
        claim = await self.client.get(PVCS, claim_name, "default")
        claim["spec"]["volumeName"] = volume_name
        claim = await self.client.update(PVCS, claim, "default")
        claim["status"] = {**(claim.get("status") or {}), "phase": "Bound"}
        await self.client.update_status(PVCS, claim, "default")

    async def bound_claim(self, name: str, volume: str, *, sc: str, host: str | None = None,
                          modes: tuple = ("ReadWriteOnce",), labels: dict | None = None) -> None:
        """A claim already bound to its volume (``labels`` on the volume)."""
        claim = await self.pvc(name, sc=sc, modes=modes)
        await self.pv(volume, sc=sc, host=host, modes=modes, claim=claim, labels=labels)
        await self.bind(name, volume)

    async def pod(self, name: str, *claims: str, **kwargs: Any) -> dict:
        volumes = [{"name": f"v{i}", "persistentVolumeClaim": {"claimName": c}} for i, c in enumerate(claims)]
        out = await self.sched.add_pod(name, volumes=volumes, **kwargs)
        self.created.append((PODS, name, "default"))
        return out

    async def rejected(self, name: str) -> dict:
        async def condition() -> dict | None:
            cond = await self.sched.scheduled_condition(name)
            return cond if cond and cond["status"] == "False" else None

        return await self.sched.wait_for(condition, message=f"{name} rejected")

    async def cleanup(self) -> None:
        for res, name, namespace in reversed(self.created):
            try:
                await self.client.delete(res, name, namespace, grace_period_seconds=0 if res == PODS else None)
            except NotFound:
                pass


@pytest.fixture
async def vols(sched: Any) -> AsyncIterator[Volumes]:
    volumes = Volumes(sched)
    try:
        yield volumes
    finally:
        await volumes.cleanup()

