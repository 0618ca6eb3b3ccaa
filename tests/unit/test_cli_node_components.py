"""The node agent's child processes: the proxy and the DNS server get the node's name, how to
reach the API server, the tables of the node's bridge and the bridge's address."""

from __future__ import annotations

import shutil
from types import SimpleNamespace

import pytest

from pybernetes.cli.agent import node_components
from pybernetes.cli.main import build_parser


def _args(*extra: str):
    return build_parser().parse_args(["agent", "--kubeconfig", "/k.yaml", "--cni-bridge", "br7", *extra])


def _argv(children, name: str) -> list[str]:
    (child,) = [c for c in children if c.name == name]
    return child.argv[child.argv.index("pybernetes.cli.main") + 1:]


@pytest.mark.skipif(shutil.which("nft") is None, reason="the proxy is left out without nft")
def test_a_runc_node_runs_its_proxy_and_dns_server() -> None:
    runtime = SimpleNamespace(name="runc", pod_cidr="10.42.3.0/24")
    children = node_components(_args("--proxy-metrics-port", "0"), "node-a", runtime)
    proxy = _argv(children, "proxy")
    assert proxy[:5] == ["proxy", "--kubeconfig", "/k.yaml", "--node-name", "node-a"]
    for flag, value in (("--table", "pybernetes-proxy-br7"), ("--netpol-table", "pybernetes-netpol-br7"),
                        ("--cluster-cidr", "10.42.0.0/16"), ("--metrics-port", "0")):
        assert proxy[proxy.index(flag) + 1] == value
    dns = _argv(children, "dns")
    for flag, value in (("--listen", "10.42.3.1:53"), ("--advertise", "10.42.3.1"), ("--node-name", "node-a"),
                        ("--pod-cidr", "10.42.3.0/24"), ("--cluster-domain", "cluster.local")):
        assert dns[dns.index(flag) + 1] == value


def test_the_children_can_be_left_out_and_need_a_bridge() -> None:
    runc = SimpleNamespace(name="runc", pod_cidr="10.42.3.0/24")
    assert node_components(_args("--disable-proxy", "--disable-dns"), "n", runc) == []
    assert [c.name for c in node_components(_args("--disable-proxy"), "n", runc)] == ["dns"]
    process = SimpleNamespace(name="process", pod_cidr="")
    assert node_components(_args(), "n", process) == []  # pods share the host's network
