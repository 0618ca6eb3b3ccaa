"""The node agent (upstream's kubelet, wired together): it registers its Node, posts the
Node's status every ``status_period`` seconds (node_status.py: capacity, allocatable,
addresses, nodeInfo, the four conditions), renews its Lease in ``kube-node-lease`` every
``lease_period`` seconds (40 s duration, owned by the Node so it goes with it), and runs the
pods bound to it: an informer of those pods alone (field selector ``spec.nodeName``) feeds the
pod workers (pod_workers.py), which sync each pod through the runtime (pod_sync.py) and post
its status (status_manager.py).  Services come from an informer too (the containers'
environment); ConfigMaps and Secrets are read when a container starts.  Every
``eviction_interval`` seconds the local storage eviction (eviction.py) measures the pods with
emptyDir sizeLimits or ephemeral-storage limits and evicts those over them.

A conflict on a write is retried from a fresh read; a failed period is logged and the next one
tries again (an unreachable API server never stops the agent).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pybernetes.client.errors import AlreadyExists, ApiError, Conflict, ConnectionFailed, NotFound
from pybernetes.client.events import EventRecorder
from pybernetes.client.informer import SharedInformer
from pybernetes.client.rest import RestClient
from pybernetes.client.tasks import TaskSet
from pybernetes.kubelet import runtimes, stats
from pybernetes.kubelet.container_config import dns_config, read_resolv_conf
from pybernetes.kubelet.eviction import INTERVAL as EVICTION_INTERVAL
from pybernetes.kubelet.eviction import LocalStorageEviction
from pybernetes.kubelet.log_resolver import LogResolver
from pybernetes.kubelet.logs import ContainerLogManager
from pybernetes.kubelet.node_status import HostFigures, node_status
from pybernetes.kubelet.pod_sync import Lookups, PodSyncer
from pybernetes.kubelet.pod_workers import PodWorkers
from pybernetes.kubelet.prober_manager import ProbeEvent, ProbeManager
from pybernetes.kubelet.runtime.images import ImageStore
from pybernetes.kubelet.runtime.protocol import Runtime, RuntimeError_
from pybernetes.kubelet.server import KubeletServer
from pybernetes.kubelet.stats import Rates
from pybernetes.kubelet.status_manager import StatusManager
from pybernetes.kubelet.volumes.localpath import LocalPathReclaimer
from pybernetes.kubelet.volumes.manager import VolumeManager

log = logging.getLogger(__name__)

Obj = dict[str, Any]
NODES = ("", "v1", "nodes")
PODS = ("", "v1", "pods")
SERVICES = ("", "v1", "services")
CONFIGMAPS = ("", "v1", "configmaps")
SECRETS = ("", "v1", "secrets")
LEASES = ("coordination.k8s.io", "v1", "leases")
LEASE_NAMESPACE = "kube-node-lease"
LEASE_DURATION = 40
POD_CIDR_WAIT = 5.0  # seconds the agent waits for node IPAM to give its Node a podCIDR
IMAGE_GC_PERIOD = 300.0
IMAGE_MIN_AGE = 120.0  # seconds an image is kept after its last use (upstream imageMinimumGCAge)
WRITE_ATTEMPTS = 5


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def _micro_now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class NodeAgent:
    def __init__(self, client: RestClient, node_name: str, runtime: Runtime, data_dir: str, *,
                 status_period: float = 10.0, lease_period: float = 10.0,
                 host: Callable[[], HostFigures] | None = None, run_pods: bool = True,
                 relist_period: float = 1.0, cluster_dns: list[str] | None = None,
                 cluster_domain: str = "cluster.local", node_ip: str | None = None, server_address: str | None = None,
                 server_port: int = 0, log_rotation_period: float = 10.0,
                 log_rotation: ContainerLogManager | None = None, pod_cidr_given: bool = True,
                 image_gc_period: float = IMAGE_GC_PERIOD, eviction_interval: float = EVICTION_INTERVAL) -> None:
        self.client = client
        self.node_name = node_name
        self.runtime = runtime
        self.data_dir = data_dir
        self.status_period = status_period
        self.lease_period = lease_period
        read = host or (lambda: HostFigures.read(data_dir))
        # --node-ip: the address the node reports (and its server listens on), else the host's
        self._host = (lambda: dataclasses.replace(read(), address=node_ip)) if node_ip else read
        self._tasks = TaskSet(f"agent/{node_name}")
        self.node_uid = ""
        self.run_pods = run_pods
        self.cluster_dns_given = list(cluster_dns or [])  # --cluster-dns; [] = kube-system/kube-dns's ClusterIP
        self.cluster_domain = cluster_domain
        self.allocatable: dict[str, str] = {}
        self.recorder = EventRecorder(client, "kubelet", host=node_name)
        self.status_manager = StatusManager(client)
        self.pods = SharedInformer(client, PODS, field_selector=f"spec.nodeName={node_name}")
        self.services = SharedInformer(client, SERVICES)
        root = Path(data_dir) / "agent"
        root.mkdir(parents=True, exist_ok=True)
        figures = self._host()
        resolv = read_resolv_conf()
        self.syncer = PodSyncer(
            runtime, Lookups(configmap=self._configmap, secret=self._secret, services=self.services.indexer.list,
                             pull_credentials=lambda pod, image: runtimes.pull_credentials(pod, image, self._secret)),
            node_name=node_name, node_ip=figures.address, pods_dir=root / "pods", logs_root=root / "logs" / "pods",
            recorder=self.recorder,
            dns=lambda pod: dns_config(pod, resolv, self.cluster_dns(), self.cluster_domain),
            allocatable=lambda: self.allocatable, cluster_domain=cluster_domain)
        self.volumes = VolumeManager(client, root / "pods", node_name, data_dir=root)
        self.syncer.volumes = self.volumes
        self.reclaimer = LocalPathReclaimer(client, node_name, claim_in_use=self._claim_in_use)
        self.workers = PodWorkers(self.syncer, self.status_manager, relist_period=relist_period)
        self.probes = ProbeManager(runtime, self.workers.wake, on_event=self._probe_event)
        self.syncer.probes = self.probes
        self.log_rotation = log_rotation or ContainerLogManager(runtime)
        self.log_rotation_period = log_rotation_period
        self.server = KubeletServer(LogResolver(self._find_pod, self.syncer, self.log_rotation,
                                                self.workers.container_running),
                                    host=server_address or figures.address, port=server_port,
                                    pods=lambda: [p for p in map(self.workers.pod, self.workers.known()) if p],
                                    stats=self.stats_summary)
        self._rates = Rates()
        self.server_port = 0
        self.pod_cidr_given = pod_cidr_given
        self.image_gc_period = image_gc_period
        self.eviction_interval = eviction_interval
        self.eviction = LocalStorageEviction(self.syncer, self.volumes, self._pods_now, self.workers.wake)

    def cluster_dns(self) -> list[str]:
        """The nameservers of ClusterFirst pods: ``--cluster-dns`` if given, else the ClusterIP
        of the Service kube-system/kube-dns (the API server creates it); none (pods then get the
        node's resolvers, as upstream without a cluster DNS) when neither exists."""
        if self.cluster_dns_given:
            return self.cluster_dns_given
        service = self.services.indexer.get("kube-system/kube-dns")
        ip = ((service or {}).get("spec") or {}).get("clusterIP")
        return [ip] if ip and ip != "None" else []

    async def start(self) -> None:
        if self.run_pods:
            self.server_port = await self.server.start()
        await self.register()
        await self.renew_lease()
        self._tasks.start("node-status", self._every(self.status_period, self.update_status))
        self._tasks.start("node-lease", self._every(self.lease_period, self.renew_lease))
        if self.run_pods:
            await self.start_pods()

    async def start_pods(self) -> None:
        await self._adopt_pod_cidr()
        self.services.start()
        self.pods.add_event_handler(on_add=self.workers.update, on_update=lambda old, new: self.workers.update(new),
                                    on_delete=self.workers.delete)
        self.pods.start()
        await self.services.wait_for_sync()
        await self.pods.wait_for_sync()
        await self.workers.adopt(self.pods.indexer.list())
        self._tasks.start("pod-status", self.status_manager.run())
        self._tasks.start("log-rotation", self._every(self.log_rotation_period, self.rotate_logs))
        self._tasks.start("local-path-reclaimer", self.reclaimer.run())
        self._tasks.start("local-storage-eviction", self._every(self.eviction_interval, self.eviction.check))
        if isinstance(getattr(self.runtime, "images", None), ImageStore):
            self._tasks.start("image-gc", self._every(self.image_gc_period, self.collect_images))
        self.workers.start()

    async def stop(self) -> None:
        await self.workers.stop()
        await self.probes.stop()
        await self._tasks.stop(grace=2.0)
        await self.server.stop()
        await self.pods.stop()
        await self.services.stop()
        await self.recorder.stop()

    async def _adopt_pod_cidr(self, within: float = POD_CIDR_WAIT) -> None:
        """Give the runtime the Node's spec.podCIDR (node IPAM assigns it) unless a CIDR was
        configured; a node without one after ``within`` seconds keeps the runtime's default."""
        if self.pod_cidr_given or not hasattr(self.runtime, "pod_cidr"):
            return
        deadline = time.monotonic() + within
        while True:
            try:
                cidr = ((await self.client.get(NODES, self.node_name)).get("spec") or {}).get("podCIDR")
            except (ApiError, ConnectionFailed):
                cidr = None
            if cidr:
                self.runtime.pod_cidr = cidr
                return
            if time.monotonic() > deadline:
                log.warning("node %s has no podCIDR: pods get addresses from %s", self.node_name,
                            self.runtime.pod_cidr)
                return
            await asyncio.sleep(0.25)

    async def collect_images(self) -> None:
        """Image garbage collection (upstream's every 5 minutes): unused images go, least
        recently used first, while the image file system is above its high-water mark."""
        store: ImageStore = self.runtime.images  # type: ignore[attr-defined]
        in_use = {c.image_ref for c in await self.runtime.list_containers()}
        removed = await asyncio.to_thread(store.gc_unused, in_use, min_age=IMAGE_MIN_AGE)
        if removed:
            log.info("image GC removed %s", removed)

    def _claim_in_use(self, namespace: str, claim: str) -> bool:
        """A pod of this node that has not finished still mounts the claim (a claim can be
        deleted under it: its local-path data must wait)."""
        for pod in self.pods.indexer.list():
            meta, spec = pod.get("metadata") or {}, pod.get("spec") or {}
            if meta.get("namespace") != namespace or (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
                continue
            for volume in spec.get("volumes") or []:
                name = (volume.get("persistentVolumeClaim") or {}).get("claimName")
                if volume.get("ephemeral") is not None:
                    name = f"{meta.get('name')}-{volume.get('name')}"
                if name == claim:
                    return True
        return False

    def _pods_now(self) -> list[Obj]:
        """The node's pods, each with the status the kubelet last computed for it."""
        return [self.status_manager.latest(p) for p in map(self.workers.pod, self.workers.known()) if p]

    def _find_pod(self, namespace: str, name: str) -> Obj | None:
        return self.pods.indexer.get(f"{namespace}/{name}")

    def _probe_event(self, event: ProbeEvent) -> None:
        pod = self.workers.pod(event.pod_uid)
        if pod is not None:
            self.recorder.event(pod, "Warning", event.reason, event.message,
                                field_path=f"spec.containers{{{event.container_name}}}")

    async def stats_summary(self) -> Obj:
        """Resource usage of the node and its pods (the server's /stats/summary)."""
        return await stats.collect(self.runtime, self.node_name, self._host, self.workers.pod, self._rates)

    async def rotate_logs(self) -> None:
        """Rotate the logs of running containers that outgrew their size (logs.py)."""
        for container_id in self.workers.running_containers():
            try:
                status = await self.runtime.container_status(container_id)
            except RuntimeError_:
                continue
            if status.log_path:
                await self.log_rotation.rotate_if_needed(container_id, Path(status.log_path))

    async def _configmap(self, namespace: str, name: str) -> Obj | None:
        try:
            return await self.client.get(CONFIGMAPS, name, namespace)
        except NotFound:
            return None

    async def _secret(self, namespace: str, name: str) -> Obj | None:
        try:
            return await self.client.get(SECRETS, name, namespace)
        except NotFound:
            return None

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
            status = node_status(self._host(), self.node_name, self.runtime.name, version, _now(), previous,
                                 kubelet_port=self.server_port or 10250)
            node["status"] = {**(node.get("status") or {}), **status}
            self.allocatable = dict(status.get("allocatable") or {})
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
