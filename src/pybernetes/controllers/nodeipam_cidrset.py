"""Pure core of node IPAM: a ``CidrSet`` hands out the equal-sized subnets of one cluster
CIDR (upstream pkg/controller/nodeipam/ipam/cidrset), and ``parse_cluster_cidrs`` reads the
controller's options into one set per IP family.

Allocation walks the subnets round-robin from the one after the last handed out, so a subnet
just released is not handed out again at once; ``occupy`` marks subnets a node already holds
(a CIDR larger than the subnet size marks all it covers).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from typing import Any

Network = ipaddress.IPv4Network | ipaddress.IPv6Network

MAX_SUBNET_BITS = 16  # a cluster CIDR is split into at most 2**16 node subnets
DEFAULT_CLUSTER_CIDR = "10.42.0.0/16"
DEFAULT_MASK_IPV4 = 24
DEFAULT_MASK_IPV6 = 64


class CidrRangeFull(Exception):
    def __init__(self) -> None:
        super().__init__("CIDR allocation failed; there are no remaining CIDRs left to allocate in the accepted range")


class CidrSet:
    def __init__(self, cluster_cidr: str | Network, mask_size: int) -> None:
        self.cluster = ipaddress.ip_network(cluster_cidr, strict=False) if isinstance(cluster_cidr, str) \
            else cluster_cidr
        prefix = self.cluster.prefixlen
        if mask_size < prefix:
            raise ValueError(f"node CIDR mask size {mask_size} is smaller than the cluster CIDR's /{prefix}")
        if mask_size > self.cluster.max_prefixlen:
            raise ValueError(f"node CIDR mask size {mask_size} is too large for {self.cluster}")
        if mask_size - prefix > MAX_SUBNET_BITS:
            raise ValueError(f"node CIDR mask size {mask_size} splits {self.cluster} into more than "
                             f"2^{MAX_SUBNET_BITS} subnets")
        self.mask_size = mask_size
        self.count = 1 << (mask_size - prefix)
        self._shift = self.cluster.max_prefixlen - mask_size
        self._base = int(self.cluster.network_address)
        self._used: set[int] = set()
        self._next = 0

    @property
    def family(self) -> str:
        return "IPv6" if self.cluster.version == 6 else "IPv4"

    @property
    def used(self) -> int:
        return len(self._used)

    def _subnet(self, index: int) -> Network:
        address = ipaddress.ip_address(self._base + (index << self._shift))
        return ipaddress.ip_network(f"{address}/{self.mask_size}")

    def allocate_next(self) -> str:
        for step in range(self.count):
            index = (self._next + step) % self.count
            if index not in self._used:
                self._used.add(index)
                self._next = (index + 1) % self.count
                return str(self._subnet(index))
        raise CidrRangeFull()

    def _indices(self, cidr: str | Network) -> range:
        net = ipaddress.ip_network(cidr, strict=False) if isinstance(cidr, str) else cidr
        if net.version != self.cluster.version or not (
                net.subnet_of(self.cluster) or self.cluster.subnet_of(net)):  # type: ignore[arg-type]
            raise ValueError(f"cidr {net} is out the range of cluster cidr {self.cluster}")
        start = max(int(net.network_address), self._base)
        end = min(int(net.broadcast_address), int(self.cluster.broadcast_address))
        return range((start - self._base) >> self._shift, ((end - self._base) >> self._shift) + 1)

    def occupy(self, cidr: str | Network) -> None:
        self._used.update(self._indices(cidr))

    def release(self, cidr: str | Network) -> None:
        self._used.difference_update(self._indices(cidr))

    def contains(self, cidr: str) -> bool:
        try:
            net = ipaddress.ip_network(cidr, strict=False)
        except ValueError:
            return False
        return net.version == self.cluster.version and net.subnet_of(self.cluster)  # type: ignore[arg-type]


def _as_list(value: Any) -> list[str]:
    if value is None:
        return [DEFAULT_CLUSTER_CIDR]
    if isinstance(value, str):
        return [v.strip() for v in value.split(",") if v.strip()]
    return [str(v) for v in value]


def parse_cluster_cidrs(cluster_cidr: str | Sequence[str] | None, mask_size: int | None = None,
                        mask_size_ipv4: int | None = None, mask_size_ipv6: int | None = None) -> list[CidrSet]:
    """One CidrSet per cluster CIDR (at most two: one IPv4 and one IPv6, as upstream).  The
    subnet size of IPv4 is ``mask_size_ipv4`` or ``mask_size`` or 24; of IPv6
    ``mask_size_ipv6`` or (single-stack) ``mask_size`` or 64."""
    cidrs = _as_list(cluster_cidr)
    if not cidrs:
        raise ValueError("cluster_cidr is empty")
    if len(cidrs) > 2:
        raise ValueError(f"cluster_cidr {','.join(cidrs)}: at most two CIDRs (one per IP family)")
    nets = [ipaddress.ip_network(c, strict=False) for c in cidrs]
    if len(nets) == 2 and nets[0].version == nets[1].version:
        raise ValueError(f"cluster_cidr {','.join(cidrs)}: a dual-stack cluster needs one IPv4 and one IPv6 CIDR")
    sets = []
    for net in nets:
        if net.version == 4:
            size = mask_size_ipv4 or mask_size or DEFAULT_MASK_IPV4
        else:
            size = mask_size_ipv6 or (mask_size if len(nets) == 1 else None) or DEFAULT_MASK_IPV6
        sets.append(CidrSet(net, int(size)))
    return sets
