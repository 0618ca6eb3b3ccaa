"""nodeipam_cidrset: subnets handed out round-robin, occupied, released; option parsing."""

from __future__ import annotations

import pytest

from pybernetes.controllers.nodeipam_cidrset import CidrRangeFull, CidrSet, parse_cluster_cidrs


def test_allocates_in_order_and_fills_up() -> None:
    s = CidrSet("10.42.0.0/22", 24)
    assert [s.allocate_next() for _ in range(4)] == ["10.42.0.0/24", "10.42.1.0/24", "10.42.2.0/24", "10.42.3.0/24"]
    with pytest.raises(CidrRangeFull):
        s.allocate_next()
    s.release("10.42.1.0/24")
    assert s.allocate_next() == "10.42.1.0/24"


def test_released_subnets_are_not_reused_at_once() -> None:
    s = CidrSet("10.42.0.0/16", 24)
    first = s.allocate_next()
    s.release(first)
    assert s.allocate_next() == "10.42.1.0/24"


def test_occupy_marks_held_subnets() -> None:
    s = CidrSet("10.42.0.0/22", 24)
    s.occupy("10.42.0.0/24")
    s.occupy("10.42.2.0/23")  # a larger CIDR covers two subnets
    assert s.used == 3
    assert s.allocate_next() == "10.42.1.0/24"
    with pytest.raises(ValueError, match="out the range"):
        s.occupy("192.168.0.0/24")


def test_ipv6_and_bad_sizes() -> None:
    s = CidrSet("fd42::/56", 64)
    assert s.allocate_next() == "fd42::/64" and s.allocate_next() == "fd42:0:0:1::/64"
    with pytest.raises(ValueError):
        CidrSet("10.42.0.0/16", 8)
    with pytest.raises(ValueError):
        CidrSet("10.0.0.0/8", 28)


def test_parse_options() -> None:
    (v4,) = parse_cluster_cidrs(None)
    assert str(v4.cluster) == "10.42.0.0/16" and v4.mask_size == 24
    v4, v6 = parse_cluster_cidrs("10.42.0.0/16,fd42::/48")
    assert (v4.family, v6.family, v6.mask_size) == ("IPv4", "IPv6", 64)
    (only,) = parse_cluster_cidrs(["10.1.0.0/16"], 26)
    assert only.mask_size == 26
    with pytest.raises(ValueError):
        parse_cluster_cidrs("10.0.0.0/16,10.1.0.0/16")
