"""The node IPAM controller (upstream pkg/controller/nodeipam, the range allocator): every
Node gets ``spec.podCIDR``/``spec.podCIDRs`` — one subnet per cluster CIDR (IPv4, IPv6 or
both) — and its subnets are free again once the Node is deleted.

Options: ``cluster_cidr`` (default ``10.42.0.0/16``, as k3s; a list or a comma-separated
pair for dual-stack), ``node_cidr_mask_size`` (default 24 for IPv4, 64 for IPv6),
``node_cidr_mask_size_ipv4`` and ``node_cidr_mask_size_ipv6``.

Keys are node names.  Before its workers start the controller marks the subnets existing
Nodes hold as used.  ``sync`` occupies the subnets of a Node that has them, allocates and
patches new ones for a Node without, and releases those of a Node that is gone.  A full range
records the Event ``CIDRNotAvailable`` on the Node and the sync is retried with backoff.
"""

from __future__ import annotations

import logging
from typing import ClassVar

from pybernetes.client.errors import ApiError, NotFound
from pybernetes.controllers.base import Controller, Obj
from pybernetes.controllers.nodeipam_cidrset import CidrRangeFull, CidrSet, parse_cluster_cidrs

log = logging.getLogger(__name__)

NODES = "/v1/nodes"


def node_pod_cidrs(node: Obj) -> list[str]:
    spec = node.get("spec") or {}
    cidrs = [c for c in spec.get("podCIDRs") or () if c]
    if not cidrs and spec.get("podCIDR"):
        cidrs = [spec["podCIDR"]]
    return cidrs


def node_ref(name: str) -> Obj:
    """The reference upstream's node events use (its uid is the node's name, which is what
    ``kubectl describe node`` looks events up by)."""
    return {"kind": "Node", "apiVersion": "v1", "name": name, "uid": name}


class NodeIpamController(Controller):
    name: ClassVar[str] = "nodeipam"
    component: ClassVar[str] = "node-ipam-controller"
    default_workers = 1

    def setup(self) -> None:
        opts = self.options
        self.cidr_sets: list[CidrSet] = parse_cluster_cidrs(
            opts.get("cluster_cidr"), opts.get("node_cidr_mask_size"),
            opts.get("node_cidr_mask_size_ipv4"), opts.get("node_cidr_mask_size_ipv6"))
        self.held: dict[str, list[str]] = {}  # node name -> the subnets this controller counts as its
        self.nodes = self.informer(NODES)
        self.nodes.add_event_handler(self.enqueue, self._node_updated, self._node_deleted)

    def _node_updated(self, old: Obj, new: Obj) -> None:
        if node_pod_cidrs(old) != node_pod_cidrs(new) or not node_pod_cidrs(new):
            self.enqueue(new)

    def _node_deleted(self, item: object) -> None:
        key = getattr(item, "key", None) or item["metadata"]["name"]  # type: ignore[index]
        self.enqueue(key)

    async def run(self, workers: int) -> None:
        await self.wait_for_sync()
        for node in self.nodes.indexer.list():
            self._occupy(node)
        await super().run(workers)

    # -- the sets ---------------------------------------------------------------------------

    def _set_for(self, cidr: str) -> CidrSet | None:
        return next((s for s in self.cidr_sets if s.contains(cidr)), None)

    def _occupy(self, node: Obj) -> bool:
        """Mark the node's subnets used; False (and a Warning event) when one lies outside
        every cluster CIDR."""
        name = node["metadata"]["name"]
        cidrs = node_pod_cidrs(node)
        if self.held.get(name) == cidrs:
            return True
        self._release(name)
        outside = [c for c in cidrs if self._set_for(c) is None]
        for cidr in cidrs:
            cidr_set = self._set_for(cidr)
            if cidr_set is not None:
                cidr_set.occupy(cidr)
        self.held[name] = cidrs
        if outside:
            self.recorder.event(node_ref(name), "Warning", "CIDROutOfRange",
                                f"Node {name} has pod CIDR {', '.join(outside)} outside the cluster CIDR "
                                f"{', '.join(str(s.cluster) for s in self.cidr_sets)}")
            return False
        return True

    def _release(self, name: str) -> None:
        for cidr in self.held.pop(name, ()):
            cidr_set = self._set_for(cidr)
            if cidr_set is not None:
                cidr_set.release(cidr)

    # -- sync -------------------------------------------------------------------------------

    async def sync(self, key: str) -> None:
        node = self.nodes.indexer.get(key)
        if node is None:
            self._release(key)
            return
        if node_pod_cidrs(node):
            self._occupy(node)
            return
        cidrs = self.held.get(key)
        if not cidrs:
            cidrs = self._allocate(key)
            self.held[key] = cidrs
        await self._patch(key, cidrs)

    def _allocate(self, name: str) -> list[str]:
        cidrs: list[str] = []
        for cidr_set in self.cidr_sets:
            try:
                cidrs.append(cidr_set.allocate_next())
            except CidrRangeFull:
                for taken in cidrs:
                    self._set_for(taken).release(taken)  # type: ignore[union-attr]
                self.recorder.event(node_ref(name), "Normal", "CIDRNotAvailable",
                                    f"Node {name} status is now: CIDRNotAvailable")
                raise
        return cidrs

    async def _patch(self, name: str, cidrs: list[str]) -> None:
        patch = {"spec": {"podCIDR": cidrs[0], "podCIDRs": cidrs}}
        try:
            await self.client.patch(NODES, name, patch, patch_type="strategic")
        except NotFound:
            self._release(name)
        except ApiError as exc:
            self.recorder.event(node_ref(name), "Normal", "CIDRAssignmentFailed",
                                f"Node {name} status is now: CIDRAssignmentFailed")
            if exc.code in (400, 422):
                # The node got subnets of its own meanwhile: ours go back; the next sync
                # occupies the node's.
                self._release(name)
            raise
        else:
            log.info("node %s: pod CIDRs %s", name, ", ".join(cidrs))
