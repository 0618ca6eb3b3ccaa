"""``pybernetes proxy`` and ``pybernetes dns``: the node's service proxy with its NetworkPolicy
enforcer (proxy/), and a cluster DNS server (dns/).  The node agent runs one of each on its node
(cli/agent.py); both can run alone against any API server.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from typing import Any

from pybernetes.cli.common import add_client_flags, client_config, duration, serve_until_signalled


def add_proxy_flags(parser: argparse.ArgumentParser) -> None:
    add_client_flags(parser)
    parser.add_argument("--node-name", default=None, help="this node's name (default: the host's name)")
    parser.add_argument("--cluster-cidr", default="", help="the pods' addresses: traffic from elsewhere to a "
                                                          "ClusterIP is masqueraded (default: none)")
    parser.add_argument("--nodeport-addresses", default="",
                        help="IPs or CIDRs node ports answer on, comma-separated (default: the Node's InternalIPs)")
    parser.add_argument("--table", default="pybernetes-proxy", help="the services' nftables table (ip family)")
    parser.add_argument("--netpol-table", default="pybernetes-netpol", help="NetworkPolicy's nftables table")
    parser.add_argument("--disable-network-policy", action="store_true", help="do not enforce NetworkPolicy")
    parser.add_argument("--min-sync-period", type=duration, default=0.1, metavar="DURATION",
                        help="the least time between two syncs (changes in between coalesce)")
    parser.add_argument("--sync-period", type=duration, default=30.0, metavar="DURATION",
                        help="how often the tables are checked for drift")
    parser.add_argument("--metrics-port", type=int, default=10249, help="/metrics on 127.0.0.1 (0: any, -1: none)")
    parser.add_argument("--healthz-port", type=int, default=10256, help="/healthz on 127.0.0.1 (0: any, -1: none)")
    parser.add_argument("--cleanup", action="store_true", help="remove the tables and exit")


def address(text: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[v6]:PORT``; the port defaults to 53)."""
    host, sep, port = text.rpartition(":")
    if not sep or "]" in port or (host.count(":") and not host.startswith("[")):
        host, port = text, "53"
    host = host.strip("[]")
    if not host or not port.isdigit() or not 0 <= int(port) < 65536:
        raise argparse.ArgumentTypeError(f"invalid address {text!r} (want HOST:PORT)")
    return host, int(port)


def add_dns_flags(parser: argparse.ArgumentParser) -> None:
    add_client_flags(parser)
    parser.add_argument("--listen", type=address, action="append", default=None, metavar="HOST:PORT",
                        help="where to answer over UDP and TCP (repeatable; default 127.0.0.1:53); an "
                             "address that does not exist yet is taken when it appears")
    parser.add_argument("--advertise", default=None, metavar="IP",
                        help="publish this address as an endpoint of kube-system/kube-dns (default: none)")
    parser.add_argument("--node-name", default=None, help="the node this server runs on (default: the host's name)")
    parser.add_argument("--cluster-domain", default="cluster.local")
    parser.add_argument("--ttl", type=int, default=5, help="TTL of the cluster's records (seconds)")
    parser.add_argument("--upstream", type=address, action="append", default=None, metavar="HOST:PORT",
                        help="resolvers for other names (repeatable; default: the nameservers of /etc/resolv.conf)")
    parser.add_argument("--service-cidr", default="10.43.0.0/16", help="its reverse zone is answered here")
    parser.add_argument("--pod-cidr", default="", help="its reverse zone is answered here too")
    parser.add_argument("--metrics-port", type=int, default=9153,
                        help="/metrics, /health and /ready (0: any free port; -1: none)")


def run_dns(args: argparse.Namespace) -> int:
    from pybernetes.client.kubeconfig import ConfigError
    from pybernetes.dns.service import DnsOptions, DnsService

    logging.basicConfig(level=getattr(logging, args.log_level.upper()),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        config = client_config(args, "dns")
    except (ConfigError, OSError, ValueError) as exc:
        print(f"pybernetes dns: {exc}", file=sys.stderr)
        return 2
    options = DnsOptions(listen=args.listen or [("127.0.0.1", 53)], cluster_domain=args.cluster_domain,
                         ttl=args.ttl, upstreams=args.upstream, advertise_address=args.advertise,
                         node_name=args.node_name, service_cidr=args.service_cidr or None,
                         metrics_host=args.advertise or "127.0.0.1", pod_cidr=args.pod_cidr or None,
                         metrics_port=None if args.metrics_port < 0 else args.metrics_port)
    try:
        options.validate()
        return serve_until_signalled("dns", config, lambda client: DnsService(client, options))
    except (OSError, ValueError) as exc:
        print(f"pybernetes dns: {exc}", file=sys.stderr)
        return 1


class NodeNetwork:
    """What ``pybernetes proxy`` runs: the service proxy and the NetworkPolicy enforcer over one
    informer factory (services, slices, the node; pods, namespaces, policies), the enforcer's
    metrics on the proxy's /metrics.  ``netns`` (tests) programs a named network namespace
    instead of the host."""

    def __init__(self, client: Any, args: argparse.Namespace, node_name: str, netns: str | None = None) -> None:
        from pybernetes.client.informer import SharedInformerFactory
        from pybernetes.proxy.metrics import NetpolMetrics
        from pybernetes.proxy.netpol import NetworkPolicyEnforcer
        from pybernetes.proxy.nft import Nft
        from pybernetes.proxy.proxier import Proxier, ProxierOptions

        informers = SharedInformerFactory(client)
        options = ProxierOptions(
            node_name=node_name, table=args.table, cluster_cidr=args.cluster_cidr,
            nodeport_addresses=[a.strip() for a in args.nodeport_addresses.split(",") if a.strip()],
            min_sync_period=args.min_sync_period, sync_period=args.sync_period,
            metrics_port=None if args.metrics_port < 0 else args.metrics_port,
            healthz_port=None if args.healthz_port < 0 else args.healthz_port, netns=netns)
        self.proxier = Proxier(client, options, informers=informers)
        self.enforcer = None if args.disable_network_policy else NetworkPolicyEnforcer(
            client, node_name, nft=Nft(netns=netns), table=args.netpol_table, informers=informers,
            min_sync_period=args.min_sync_period, metrics=NetpolMetrics(self.proxier.metrics.registry))

    async def start(self) -> None:
        await self.proxier.start()  # sets ip_forward and bridge-nf-call-iptables, which policies need too
        if self.enforcer is not None:
            await self.enforcer.start()

    async def stop(self) -> None:
        if self.enforcer is not None:
            await self.enforcer.stop(cleanup=True)
        await self.proxier.stop(cleanup=True)


def run_proxy(args: argparse.Namespace) -> int:
    import socket

    from pybernetes.client.kubeconfig import ConfigError
    from pybernetes.proxy.nft import Nft

    logging.basicConfig(level=getattr(logging, args.log_level.upper()),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if not Nft.available():
        print("pybernetes proxy: nft is not installed (Debian package nftables)", file=sys.stderr)
        return 2
    if args.cleanup:
        async def cleanup() -> None:
            for table in (args.table, args.netpol_table):
                if await Nft().delete_table("ip", table):
                    print(f"deleted table ip {table}")

        asyncio.run(cleanup())
        return 0
    try:
        config = client_config(args, "proxy")
    except (ConfigError, OSError, ValueError) as exc:
        print(f"pybernetes proxy: {exc}", file=sys.stderr)
        return 2
    node_name = (args.node_name or socket.gethostname()).lower()
    try:
        return serve_until_signalled("proxy", config, lambda client: NodeNetwork(client, args, node_name))
    except OSError as exc:
        print(f"pybernetes proxy: {exc}", file=sys.stderr)
        return 1


