"""The DNS server publishes itself as an endpoint of Service kube-system/kube-dns.

``dns_slice(...)`` (pure) is the EndpointSlice ``kube-system/kube-dns-<node>``: labelled
kubernetes.io/service-name=kube-dns and endpointslice.kubernetes.io/managed-by=pybernetes-dns,
one ready and serving endpoint (the advertise address, nodeName), ports dns/UDP, dns-tcp/TCP
and metrics/TCP, owned by the Node when its uid is known (the garbage collector then removes
the slice with the node).

``SlicePublisher.run()`` creates or updates that slice, retrying API errors with backoff;
while the Node does not exist it looks again every few seconds to add the owner reference;
``kick()`` (called when the informer sees the slice deleted or changed by someone else)
makes it write again.  ``remove()`` deletes the slice it wrote (a uid precondition keeps
it from deleting a successor's).
"""

from __future__ import annotations

import asyncio
import copy
import ipaddress
import logging
from typing import Any

from pybernetes.client.errors import AlreadyExists, ApiError, Conflict, ConnectionFailed, NotFound
from pybernetes.client.flowcontrol import Backoff
from pybernetes.client.rest import RestClient

log = logging.getLogger(__name__)

Obj = dict[str, Any]
NAMESPACE = "kube-system"
SERVICE = "kube-dns"
MANAGER = "pybernetes-dns"
SERVICE_NAME_LABEL = "kubernetes.io/service-name"
MANAGED_BY_LABEL = "endpointslice.kubernetes.io/managed-by"
SLICES = "discovery.k8s.io/v1/endpointslices"
NODES = "/v1/nodes"
NODE_RECHECK = (2.0, 30.0)  # looking for the Node: first delay, cap
REMOVE_TIMEOUT = 5.0  # seconds a clean stop spends deleting the slice


def slice_name(node_name: str) -> str:
    return f"{SERVICE}-{node_name}"


def dns_slice(node_name: str, address: str, dns_port: int, metrics_port: int | None,
              node_uid: str | None = None) -> Obj:
    family = "IPv6" if ipaddress.ip_address(address).version == 6 else "IPv4"
    ports = [{"name": "dns", "protocol": "UDP", "port": dns_port},
             {"name": "dns-tcp", "protocol": "TCP", "port": dns_port}]
    if metrics_port is not None:
        ports.append({"name": "metrics", "protocol": "TCP", "port": metrics_port})
    meta: Obj = {"name": slice_name(node_name), "namespace": NAMESPACE,
                 "labels": {SERVICE_NAME_LABEL: SERVICE, MANAGED_BY_LABEL: MANAGER}}
    if node_uid:
        meta["ownerReferences"] = [{"apiVersion": "v1", "kind": "Node", "name": node_name, "uid": node_uid}]
    return {
        "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice", "metadata": meta,
        "addressType": family,
        "endpoints": [{"addresses": [address], "nodeName": node_name,
                       "conditions": {"ready": True, "serving": True, "terminating": False}}],
        "ports": ports,
    }


def matches(current: Obj, desired: Obj) -> bool:
    """Whether the slice in the API already says what ``desired`` says."""
    meta, want = current.get("metadata") or {}, desired["metadata"]
    labels = meta.get("labels") or {}
    if any(labels.get(k) != v for k, v in want["labels"].items()):
        return False
    if "ownerReferences" in want and meta.get("ownerReferences") != want["ownerReferences"]:
        return False
    return all(current.get(f) == desired[f] for f in ("addressType", "endpoints", "ports"))


class SlicePublisher:
    def __init__(self, client: RestClient, node_name: str, address: str, dns_port: int,
                 metrics_port: int | None) -> None:
        self.client = client
        self.node_name = node_name
        self.address = address
        self.dns_port = dns_port
        self.metrics_port = metrics_port
        self.name = slice_name(node_name)
        self.uid: str | None = None  # of the slice last written
        self.attempted = False  # a create was sent (it may have landed even if cancelled)
        self.node_uid: str | None = None
        self.writes = 0
        self.published = asyncio.Event()
        self._kick = asyncio.Event()

    def desired(self) -> Obj:
        return dns_slice(self.node_name, self.address, self.dns_port, self.metrics_port, self.node_uid)

    def kick(self) -> None:
        self._kick.set()

    def observe(self, obj: Obj, deleted: bool = False) -> None:
        """An informer event about an EndpointSlice: write again if ours was changed or removed."""
        meta = obj.get("metadata") or {}
        if meta.get("namespace") != NAMESPACE or meta.get("name") != self.name or self.uid is None:
            return
        if deleted or not matches(obj, self.desired()):
            self.kick()

    async def run(self) -> None:
        backoff = Backoff(initial=0.5, cap=30.0, jitter=0.5)
        node_backoff = Backoff(initial=NODE_RECHECK[0], cap=NODE_RECHECK[1], jitter=0.2)
        while True:
            self._kick.clear()
            try:
                await self.ensure()
                backoff.reset()
            except (ApiError, ConnectionFailed, OSError) as exc:
                delay = backoff.next()
                log.warning("dns: publishing EndpointSlice %s/%s failed (%s); retrying in %.1fs",
                            NAMESPACE, self.name, exc, delay)
                await asyncio.sleep(delay)
                continue
            wait = None if self.node_uid else node_backoff.next()
            try:
                async with asyncio.timeout(wait):
                    await self._kick.wait()
            except TimeoutError:
                pass

    async def ensure(self) -> None:
        """Write the slice unless the API already holds it as desired."""
        if self.node_uid is None:
            try:
                node = await self.client.get(NODES, self.node_name)
                self.node_uid = (node.get("metadata") or {}).get("uid")
            except NotFound:
                pass
        desired = self.desired()
        try:
            current: Obj | None = await self.client.get(SLICES, self.name, NAMESPACE)
        except NotFound:
            current = None
        if current is not None and current.get("addressType") != desired["addressType"]:
            await self.client.delete(SLICES, self.name, NAMESPACE)  # addressType is immutable
            current = None
        if current is None:
            self.attempted = True
            try:
                written = await self.client.create(SLICES, desired, NAMESPACE)
            except AlreadyExists:
                raise Conflict(409, "AlreadyExists", "created meanwhile; trying again") from None
        elif matches(current, desired):
            written = current
        else:
            body = copy.deepcopy(current)
            meta = body.setdefault("metadata", {})
            meta.setdefault("labels", {}).update(desired["metadata"]["labels"])
            if "ownerReferences" in desired["metadata"]:
                meta["ownerReferences"] = desired["metadata"]["ownerReferences"]
            for field in ("endpoints", "ports"):
                body[field] = desired[field]
            written = await self.client.update(SLICES, body, NAMESPACE)
        if written is not current:
            self.writes += 1
        self.uid = (written.get("metadata") or {}).get("uid")
        self.published.set()

    async def remove(self) -> None:
        """Delete the slice this publisher wrote (if it still is that one; by name when a
        create was cut short before its answer told the uid)."""
        if self.uid is None and not self.attempted:
            return
        preconditions = {"uid": self.uid} if self.uid else None
        try:
            async with asyncio.timeout(REMOVE_TIMEOUT):
                await self.client.delete(SLICES, self.name, NAMESPACE, preconditions=preconditions)
        except NotFound:
            pass
        except (ApiError, ConnectionFailed, OSError, TimeoutError) as exc:
            log.warning("dns: could not delete EndpointSlice %s/%s: %s", NAMESPACE, self.name, exc)
        self.uid = None
        self.attempted = False
