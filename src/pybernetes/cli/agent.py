"""``pybernetes agent``: the node agent (kubelet/agent.py) with its runtime, and the node's
proxy and DNS server as its supervised child processes (cli/network.py)."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from pathlib import Path
from typing import Any

from pybernetes.cli.common import default_data_dir
from pybernetes.cli.supervise import Supervised, python_command


def _positive_seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a positive number of seconds: {text!r}")
    return value


def add_agent_flags(parser: argparse.ArgumentParser, *, standalone: bool) -> None:
    if standalone:
        target = parser.add_mutually_exclusive_group()
        target.add_argument("--server", metavar="URL", help="the API server (instead of a kubeconfig)")
        target.add_argument("--kubeconfig", metavar="FILE")
        parser.add_argument("--data-dir", type=Path, default=None)
        parser.add_argument("--log-level", default="info", choices=("debug", "info", "warning", "error", "critical"))
        parser.add_argument("--eviction-interval", type=_positive_seconds, default=10.0, metavar="SECONDS",
                            help="seconds between measurements of the pods' local storage (emptyDir "
                                 "sizeLimit, ephemeral-storage limits) for eviction")
    parser.add_argument("--node-name", default=None, help="default: this host's name")
    parser.add_argument("--node-ip", default=None,
                        help="the address the node reports (default: the host's; with up: 127.0.0.1)")
    parser.add_argument("--runtime", choices=("auto", "runc", "process", "simulated"), default="auto",
                        help="auto: runc as root when runc is installed, else process")
    parser.add_argument("--kubelet-port", type=int, default=10250,
                        help="port of the kubelet's server (logs), on the node's address")
    parser.add_argument("--pod-cidr", default="",
                        help="pod addresses of this node (default: the Node's spec.podCIDR, else 10.88.0.0/16)")
    parser.add_argument("--cni-bridge", default="pyb0", help="the pods' bridge on this node (runc runtime)")
    parser.add_argument("--cluster-dns", default="",
                        help="nameservers of ClusterFirst pods, comma-separated (default: the ClusterIP of "
                             "kube-system/kube-dns)")
    parser.add_argument("--cluster-domain", default="cluster.local", help="the cluster's DNS domain")
    parser.add_argument("--disable-proxy", action="store_true",
                        help="do not run the service proxy (nftables) on this node")
    parser.add_argument("--disable-dns", action="store_true",
                        help="do not run a cluster DNS server on this node")
    parser.add_argument("--proxy-cluster-cidr", default="10.42.0.0/16",
                        help="pod addresses of the cluster, for the proxy's masquerading (\"\": none)")
    parser.add_argument("--proxy-metrics-port", type=int, default=10249,
                        help="the proxy's /metrics on 127.0.0.1 (0: any free port)")
    parser.add_argument("--proxy-healthz-port", type=int, default=10256,
                        help="the proxy's /healthz on 127.0.0.1 (0: any free port)")
    parser.add_argument("--dns-metrics-port", type=int, default=9153,
                        help="the DNS server's /metrics, /health and /ready (0: any free port)")


def run_agent(args: argparse.Namespace) -> int:
    """``pybernetes agent``: the node agent (kubelet) with the chosen runtime."""
    import signal
    import socket

    import uvloop

    from pybernetes.client.component import wait_for_api
    from pybernetes.client.kubeconfig import Config, ConfigError, load_config, load_kubeconfig
    from pybernetes.client.rest import RestClient
    from pybernetes.kubelet import runtimes
    from pybernetes.kubelet.agent import NodeAgent

    logging.basicConfig(level=getattr(logging, args.log_level.upper()),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        if args.server:
            config = Config(servers=[args.server])
        else:
            config = load_kubeconfig(args.kubeconfig) if args.kubeconfig else load_config()
    except (ConfigError, OSError, ValueError) as exc:
        print(f"pybernetes agent: {exc}", file=sys.stderr)
        return 2
    config.user_agent = "pybernetes-agent"
    data_dir: Path = (args.data_dir or default_data_dir()).expanduser().resolve()
    (data_dir / "agent").mkdir(parents=True, exist_ok=True)
    node_name = (args.node_name or socket.gethostname()).lower()
    runtime = runtimes.build(runtimes.choose(args.runtime), data_dir, pod_cidr=args.pod_cidr, bridge=args.cni_bridge)

    async def main() -> int:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        children: list[Supervised] = []
        async with RestClient(config) as client:
            await wait_for_api(client)
            cluster_dns = [s.strip() for s in args.cluster_dns.split(",") if s.strip()]
            agent = NodeAgent(client, node_name, runtime, str(data_dir), node_ip=args.node_ip,
                              server_port=args.kubelet_port, pod_cidr_given=bool(args.pod_cidr),
                              cluster_dns=cluster_dns, cluster_domain=args.cluster_domain,
                              eviction_interval=getattr(args, "eviction_interval", 10.0))
            await agent.start()
            print(f"pybernetes agent: node {node_name} registered ({runtime.name} runtime)", flush=True)
            children = node_components(args, node_name, runtime)
            for child in children:
                child.start()
            try:
                await stop.wait()
            finally:
                for child in reversed(children):
                    await child.stop()
                await agent.stop()
        return 0

    return uvloop.run(main())


def _target_flags(args: argparse.Namespace) -> list[str]:
    """How the agent's children reach the API server: as the agent does."""
    if getattr(args, "server", None):
        return ["--server", args.server]
    if getattr(args, "kubeconfig", None):
        return ["--kubeconfig", str(args.kubeconfig)]
    return []


def node_components(args: argparse.Namespace, node_name: str, runtime: Any) -> list[Supervised]:
    """The node's service proxy and cluster DNS server, as supervised child processes of the
    agent.  Both need pods on a bridge (the runc runtime) and root for nftables; with the process
    or simulated runtime pods share the host's network and neither runs."""
    import ipaddress

    from pybernetes.proxy.nft import Nft

    if runtime.name != "runc":
        return []
    children: list[Supervised] = []
    common = [*_target_flags(args), "--node-name", node_name, "--log-level", args.log_level]
    if not args.disable_proxy:
        if Nft.available():
            children.append(Supervised("proxy", python_command(
                "proxy", *common, "--cluster-cidr", args.proxy_cluster_cidr,
                "--table", f"pybernetes-proxy-{args.cni_bridge}",
                "--netpol-table", f"pybernetes-netpol-{args.cni_bridge}",
                "--metrics-port", str(args.proxy_metrics_port), "--healthz-port", str(args.proxy_healthz_port))))
        else:
            logging.getLogger("pybernetes.agent").warning("nft is not installed: no service proxy on this node")
    if not args.disable_dns:
        # the pods' gateway (the bridge's address) is where their queries to kube-dns land
        gateway = str(next(ipaddress.ip_network(runtime.pod_cidr, strict=False).hosts()))
        children.append(Supervised("dns", python_command(
            "dns", *common, "--listen", f"{gateway}:53", "--advertise", gateway, "--pod-cidr", runtime.pod_cidr,
            "--cluster-domain", args.cluster_domain, "--metrics-port", str(args.dns_metrics_port))))
    return children


