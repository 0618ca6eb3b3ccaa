"""The cluster DNS component: ``DnsService(client, DnsOptions)`` with ``start()`` / ``stop()``.

It watches Services, EndpointSlices and Namespaces (shared informers) into a
``RecordIndex``, serves DNS on every ``listen`` address over UDP and TCP (``DnsServer``),
forwards other names to the node's resolvers (``Forwarder``), answers SERVFAIL for cluster
names until the caches have synced (``start()`` waits up to ``sync_timeout`` for that),
publishes itself as an endpoint of kube-system/kube-dns (``SlicePublisher``) when given an
``advertise_address`` and removes that EndpointSlice on stop, and serves /metrics
(Prometheus, CoreDNS names), /health and /ready over HTTP on (metrics_host, metrics_port).

Bound addresses (tests listen on port 0): ``dns_addresses`` and ``metrics_address``.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import socket
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from pybernetes.client.cache import object_of
from pybernetes.client.informer import SharedInformerFactory
from pybernetes.client.rest import RestClient
from pybernetes.client.tasks import TaskSet
from pybernetes.dns.forward import Address, Forwarder, read_resolv_conf, without_loops
from pybernetes.dns.handler import QueryHandler
from pybernetes.dns.metrics import DnsMetrics
from pybernetes.dns.publish import SlicePublisher
from pybernetes.dns.records import RecordIndex
from pybernetes.dns.server import DnsServer, bind_socket

log = logging.getLogger(__name__)

SERVICES = "/v1/services"
NAMESPACES = "/v1/namespaces"
SLICES = "discovery.k8s.io/v1/endpointslices"


def parse_address(text: str, default_port: int = 53) -> Address:
    """``host``, ``host:port``, ``[v6]:port`` or a bare IPv6 address as (host, port)."""
    text = text.strip()
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        return host, int(rest[1:]) if rest.startswith(":") else default_port
    if text.count(":") == 1:
        host, port = text.split(":")
        return host, int(port)
    return text, default_port


@dataclass
class DnsOptions:
    listen: list[Address] = field(default_factory=lambda: [("127.0.0.1", 53)])
    cluster_domain: str = "cluster.local"
    ttl: int = 5
    upstreams: list[Address] | None = None  # None: the nameservers of resolv_conf
    resolv_conf: str = "/etc/resolv.conf"
    advertise_address: str | None = None  # None: publish no EndpointSlice
    node_name: str | None = None  # None: this host's name
    metrics_host: str = "127.0.0.1"
    metrics_port: int | None = 9153  # 0: ephemeral; None: no HTTP server
    service_cidr: str | None = None  # its reverse zone is answered here (NXDOMAIN when unknown)
    pod_cidr: str | None = None  # likewise
    forward_timeout: float = 2.0  # per upstream attempt
    forward_max_ttl: int = 30
    tcp_idle_timeout: float = 10.0
    sync_timeout: float = 10.0  # start() waits this long for the caches

    def validate(self) -> None:
        """Raise ValueError naming the first option that makes no sense."""
        if not self.listen:
            raise ValueError("dns: at least one listen address is needed")
        for name, addresses in (("listen", self.listen), ("upstreams", self.upstreams or [])):
            for host, port in addresses:
                _check_ip(name, host)
                if not isinstance(port, int) or not 0 <= port <= 65535:
                    raise ValueError(f"dns: {name} port {port!r} is not a port number")
        domain = self.cluster_domain.strip(".")
        if not domain or any(not label or len(label) > 63 for label in domain.split(".")):
            raise ValueError(f"dns: cluster domain {self.cluster_domain!r} is not a domain name")
        if self.ttl < 0 or self.ttl > 3600:
            raise ValueError(f"dns: ttl {self.ttl} is outside 0..3600")
        if self.advertise_address is not None:
            _check_ip("advertise address", self.advertise_address)
        for name, cidr in (("service CIDR", self.service_cidr), ("pod CIDR", self.pod_cidr)):
            if cidr is not None:
                try:
                    ipaddress.ip_network(cidr, strict=False)
                except ValueError:
                    raise ValueError(f"dns: {name} {cidr!r} is not a CIDR") from None
        if self.metrics_port is not None and not 0 <= self.metrics_port <= 65535:
            raise ValueError(f"dns: metrics port {self.metrics_port!r} is not a port number")


def _check_ip(what: str, text: str) -> None:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        raise ValueError(f"dns: {what} {text!r} is not an IP address") from None


class DnsService:
    def __init__(self, client: RestClient, options: DnsOptions | None = None) -> None:
        self.client = client
        self.options = opts = options or DnsOptions()
        opts.validate()
        self.metrics = DnsMetrics()
        cidrs = [c for c in (opts.service_cidr, opts.pod_cidr) if c]
        self.records = RecordIndex(opts.cluster_domain, opts.ttl, cidrs)
        self.forwarder = Forwarder([], timeout=opts.forward_timeout, max_ttl=opts.forward_max_ttl,
                                   metrics=self.metrics)
        self.handler = QueryHandler(self.records, self.forwarder, self.metrics, ready=self.has_synced)
        self.server = DnsServer(self.handler, opts.listen, idle_timeout=opts.tcp_idle_timeout)
        self.node_name = (opts.node_name or socket.gethostname()).lower()
        self.publisher: SlicePublisher | None = None
        self.metrics_address: Address | None = None
        self._factory = SharedInformerFactory(client)
        self._tasks = TaskSet("dns")
        self._runner: web.AppRunner | None = None
        self._synced = asyncio.Event()
        self._started = False

    # -- lifecycle ---------------------------------------------------------------------------

    @property
    def dns_addresses(self) -> list[Address]:
        return list(self.server.addresses)

    def has_synced(self) -> bool:
        return self._synced.is_set()

    async def start(self) -> None:
        if self._started:
            return
        self._started = True
        opts = self.options
        try:
            self._watch()
            await self.server.start()
            upstreams = opts.upstreams if opts.upstreams is not None else read_resolv_conf(opts.resolv_conf)
            self.forwarder.upstreams = without_loops(upstreams, self.server.addresses)
            if not self.forwarder.upstreams:
                log.warning("dns: no upstream resolvers: names outside the cluster get SERVFAIL")
            if opts.metrics_port is not None:
                await self._serve_http(opts.metrics_host, opts.metrics_port)
            self._tasks.start("sync", self._wait_synced())
            if opts.advertise_address:
                self.publisher = SlicePublisher(self.client, self.node_name, opts.advertise_address,
                                                self._advertised_port(),
                                                self.metrics_address[1] if self.metrics_address else None)
                self._tasks.start("publish", self.publisher.run())
            try:
                async with asyncio.timeout(opts.sync_timeout):
                    await self._synced.wait()
            except TimeoutError:
                log.warning("dns: serving before the caches synced (SERVFAIL for cluster names until then)")
        except BaseException:
            await self.stop()
            raise
        log.info("dns: serving %s on %s", opts.cluster_domain,
                 ", ".join(f"{h}:{p}" for h, p in self.server.addresses))

    def _advertised_port(self) -> int:
        for host, port in self.server.addresses:
            if host == self.options.advertise_address:
                return port
        return self.server.addresses[0][1]

    async def stop(self) -> None:
        """Remove the published EndpointSlice, then stop serving and watching."""
        await self._tasks.stop(grace=5)
        if self.publisher is not None:
            await self.publisher.remove()
        await self.server.stop()
        if self._runner is not None:
            with contextlib.suppress(Exception):
                await self._runner.cleanup()
            self._runner = None
        await self._factory.shutdown()
        self._started = False

    async def _wait_synced(self) -> None:
        await self._factory.wait_for_cache_sync()
        self._synced.set()
        log.info("dns: caches synced (%d services)", self.records.service_count)

    # -- informers ---------------------------------------------------------------------------

    def _watch(self) -> None:
        records = self.records
        services = self._factory.informer(SERVICES)
        services.add_event_handler(on_add=records.set_service, on_update=lambda _old, new: records.set_service(new),
                                   on_delete=lambda obj: records.delete_service(object_of(obj)))
        slices = self._factory.informer(SLICES)
        slices.add_event_handler(on_add=self._slice_set, on_update=lambda _old, new: self._slice_set(new),
                                 on_delete=self._slice_deleted)
        namespaces = self._factory.informer(NAMESPACES)
        namespaces.add_event_handler(on_add=records.set_namespace,
                                     on_update=lambda _old, new: records.set_namespace(new),
                                     on_delete=lambda obj: records.delete_namespace(object_of(obj)))
        self._factory.start()

    def _slice_set(self, obj: dict[str, Any]) -> None:
        self.records.set_slice(obj)
        if self.publisher is not None:
            self.publisher.observe(obj)

    def _slice_deleted(self, item: Any) -> None:
        obj = object_of(item)
        self.records.delete_slice(obj)
        if self.publisher is not None:
            self.publisher.observe(obj, deleted=True)

    # -- HTTP: metrics, health, readiness -----------------------------------------------------

    async def _serve_http(self, host: str, port: int) -> None:
        async def metrics(_request: web.Request) -> web.Response:
            return web.Response(body=self.metrics.exposition(),
                                headers={"Content-Type": "text/plain; version=0.0.4; charset=utf-8"})

        async def health(_request: web.Request) -> web.Response:
            return web.Response(text="OK")

        async def ready(_request: web.Request) -> web.Response:
            if self.has_synced():
                return web.Response(text="OK")
            return web.Response(status=503, text="caches not synced")

        app = web.Application()
        app.router.add_get("/metrics", metrics)
        app.router.add_get("/health", health)
        app.router.add_get("/ready", ready)
        runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=1)
        await runner.setup()
        self._runner = runner
        # bound like the DNS sockets (IP_FREEBIND): the bridge address appears with the first pod
        sock = bind_socket(host, port, socket.SOCK_STREAM)
        site = web.SockSite(runner, sock)
        await site.start()
        self.metrics_address = (host, runner.addresses[0][1])
