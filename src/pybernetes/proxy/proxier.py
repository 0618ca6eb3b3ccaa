"""The service proxy of a node: Services and EndpointSlices from the API, programmed into
nftables (or another ``ProxyBackend``).

``Proxier(client, options, backend=None, informers=None)`` watches Services, EndpointSlices and
its own Node through a ``SharedInformerFactory`` (pass one to share the caches with the
network-policy enforcer of the same process).  ``start()`` sets the sysctls it needs, serves
metrics and health, and starts the sync loop: once the caches are filled it makes a full sync,
then an incremental one for each batch of changes, at most one per ``min_sync_period`` (a burst
of changes coalesces into one sync).  Every ``sync_period`` it checks the table for drift (gone
or changed by someone else: the next sync is a full one).  A failed incremental sync falls back
to a full one; a failed full sync is logged and retried with backoff: the proxy never gives up.
``stop(cleanup=True)`` stops it all and deletes its table.

Node ports answer on ``nodeport_addresses`` (IPs, or CIDRs matched against the Node's and the
node's interface addresses); by default on the Node's InternalIPs.  A loopback node-port or
LoadBalancer address turns on ``route_localnet`` (and the table masquerades such traffic).

After a committed sync that changed UDP service ports, the flows it made stale are deleted from
conntrack (conntrack.py, with the ``conntrack`` tool, in ``netns`` when given one), as upstream
does (the changes of a failed sync wait for the next committed one).  A failure of the tool is
logged, never fatal; without the tool (logged once) or with ``conntrack=None`` nothing is
deleted, nor with the simulated backend, which has no kernel flows.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import time
from dataclasses import dataclass, field
from typing import Any

import orjson

from pybernetes.client.cache import object_of
from pybernetes.client.flowcontrol import Backoff
from pybernetes.client.informer import SharedInformer, SharedInformerFactory
from pybernetes.client.rest import RestClient
from pybernetes.client.tasks import TaskSet, wait_set
from pybernetes.proxy import metrics as metrics_mod
from pybernetes.proxy.backend import ProxyBackend, SyncError
from pybernetes.proxy.conntrack import Conntrack, ConntrackError, stale_flows
from pybernetes.proxy.model import PortName, PortView
from pybernetes.proxy.nft import Nft, write_sysctl
from pybernetes.proxy.nftables import NftablesBackend, sctp_supported
from pybernetes.proxy.rules import RenderConfig
from pybernetes.proxy.tracker import ChangeTracker, ProxyState, refresh

log = logging.getLogger(__name__)

SERVICES = "v1/services"
ENDPOINT_SLICES = "discovery.k8s.io/v1/endpointslices"
NODES = "v1/nodes"


@dataclass
class ProxierOptions:
    node_name: str
    table: str = "pybernetes-proxy"
    cluster_cidr: str = ""  # the pods' addresses; "" : unknown (no masquerading of outsiders)
    nodeport_addresses: list[str] = field(default_factory=list)  # IPs or CIDRs; []: InternalIPs
    min_sync_period: float = 0.1
    sync_period: float = 30.0  # drift checks
    metrics_host: str = "127.0.0.1"
    metrics_port: int | None = 0  # /metrics (and /healthz); 0: any free port, None: no server
    healthz_port: int | None = None  # a separate /healthz server (None: only on the metrics one)
    healthz_timeout: float | None = None  # default: 2 x sync_period
    netns: str | None = None  # program a named network namespace (tests)
    masquerade_bit: int = 14
    stale_grace: float = 1.0  # seconds before unused chains are deleted
    sysctls: bool = True  # set ip_forward, bridge-nf-call-iptables, route_localnet
    conntrack: str | None = "conntrack"  # the tool that deletes stale UDP flows; None: never delete


def nodeport_ips(entries: list[str], node_addresses: list[tuple[str, str]],
                 interface_addresses: list[str]) -> tuple[str, ...]:
    """The IPv4 addresses node ports answer on (see the module doc)."""
    if not entries:
        return tuple(sorted({ip for kind, ip in node_addresses if kind == "InternalIP" and _v4(ip)}))
    candidates = [ip for _, ip in node_addresses if _v4(ip)] + [ip for ip in interface_addresses if _v4(ip)]
    out: set[str] = set()
    for entry in entries:
        if entry == "primary":
            out.update(ip for kind, ip in node_addresses if kind == "InternalIP" and _v4(ip))
            continue
        try:
            network = ipaddress.ip_network(entry, strict=False)
        except ValueError:
            log.warning("nodeport address %r is neither an IP nor a CIDR; ignored", entry)
            continue
        if network.version != 4:
            continue
        if network.prefixlen == 32:
            out.add(str(network.network_address))
        else:
            out.update(ip for ip in candidates if ipaddress.IPv4Address(ip) in network)
    return tuple(sorted(out, key=lambda ip: int(ipaddress.IPv4Address(ip))))


def _v4(ip: str) -> bool:
    try:
        return isinstance(ipaddress.ip_address(ip), ipaddress.IPv4Address)
    except ValueError:
        return False


class Proxier:
    def __init__(self, client: RestClient, options: ProxierOptions, backend: ProxyBackend | None = None,
                 informers: SharedInformerFactory | None = None) -> None:
        self.client = client
        self.options = options
        self.backend: ProxyBackend = backend or NftablesBackend(
            Nft(netns=options.netns), table=options.table, stale_grace=options.stale_grace)
        self._own_factory = informers is None
        self.informers = informers or SharedInformerFactory(client)
        self.tracker = ChangeTracker(options.node_name)
        self.state = ProxyState()
        self.metrics = metrics_mod.ProxyMetrics()
        self.health = metrics_mod.Health(options.healthz_timeout or 2 * options.sync_period)
        self.tasks = TaskSet(f"proxy[{options.node_name}]")
        self.metrics_port: int | None = None
        self.healthz_port: int | None = None
        self.syncs = 0  # successful syncs (tests wait on it)
        self.last_error = ""
        self._runners: list[Any] = []
        self._listeners: list[tuple[SharedInformer, Any]] = []
        self._pending = asyncio.Event()
        self._need_full = True
        self._last_sync = float("-inf")
        self._node_addresses: list[tuple[str, str]] = []
        self._interface_addresses: list[str] = []
        self._sctp = True
        self._route_localnet = False
        self._logged: set[tuple] = set()
        self._synced = asyncio.Event()
        self.conntrack: Conntrack | None = Conntrack(options.conntrack, options.netns) \
            if options.conntrack and isinstance(self.backend, NftablesBackend) else None
        self.flows_deleted = 0  # stale UDP conntrack entries deleted (tests)
        self._udp_before: dict[PortName, PortView | None] = {}  # UDP ports as last cleaned up

    # -- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        options = self.options
        if isinstance(self.backend, NftablesBackend):
            self._sctp = sctp_supported()
            if not self._sctp:
                log.warning("this kernel has no SCTP connection tracking: SCTP service ports are skipped")
        if options.sysctls:
            await self._sysctl("net.ipv4.ip_forward", "1")
            await self._sysctl("net.bridge.bridge-nf-call-iptables", "1")
        self._interface_addresses = await self._interfaces()
        services = self.informers.informer(SERVICES)
        slices = self.informers.informer(ENDPOINT_SLICES)
        nodes = self.informers.informer(NODES, field_selector=f"metadata.name={options.node_name}")
        for informer, handlers in (
                (services, (self._service_event, self._service_update, self._service_delete)),
                (slices, (self._slice_event, self._slice_update, self._slice_delete)),
                (nodes, (self._node_event, self._node_update, self._node_delete))):
            self._listeners.append((informer, informer.add_event_handler(*handlers)))
        if options.metrics_port is not None:
            runner, self.metrics_port = await metrics_mod.serve(options.metrics_host, options.metrics_port,
                                                                self.metrics, self.health)
            self._runners.append(runner)
        if options.healthz_port is not None:
            runner, self.healthz_port = await metrics_mod.serve(options.metrics_host, options.healthz_port,
                                                                None, self.health)
            self._runners.append(runner)
        self.informers.start()
        self.tasks.start("sync", self._sync_loop())

    async def stop(self, cleanup: bool = True) -> None:
        await self.tasks.stop()
        for informer, listener in self._listeners:
            informer.remove_event_handler(listener)
        self._listeners.clear()
        if self._own_factory:
            await self.informers.shutdown()
        for runner in self._runners:
            await runner.cleanup()
        self._runners.clear()
        if cleanup:
            try:
                await self.backend.cleanup()
            except Exception:  # noqa: BLE001 - stopping must finish
                log.exception("could not remove the proxy's table")

    async def wait_synced(self, within: float | None = None) -> bool:
        """Whether the first full sync succeeded within ``within`` seconds."""
        return await wait_set(self._synced, within)

    # -- informer events ---------------------------------------------------------------------

    def _changed(self, service: bool) -> None:
        (self.metrics.service_changes if service else self.metrics.endpoint_changes).inc()
        (self.metrics.service_pending if service else self.metrics.endpoint_pending).inc()
        self.metrics.last_queued.set(time.time())
        self.health.queued()
        self._pending.set()

    def _service_event(self, obj: dict) -> None:
        if self.tracker.service_updated(obj):
            self._changed(True)

    def _service_update(self, _old: dict, new: dict) -> None:
        self._service_event(new)

    def _service_delete(self, obj: Any) -> None:
        if self.tracker.service_deleted(object_of(obj)):
            self._changed(True)

    def _slice_event(self, obj: dict) -> None:
        if self.tracker.slice_updated(obj):
            self._changed(False)

    def _slice_update(self, _old: dict, new: dict) -> None:
        self._slice_event(new)

    def _slice_delete(self, obj: Any) -> None:
        if self.tracker.slice_deleted(object_of(obj)):
            self._changed(False)

    def _node_event(self, obj: dict) -> None:
        if (obj.get("metadata") or {}).get("name") != self.options.node_name:
            return
        addresses = [(a.get("type", ""), a.get("address", "")) for a in
                     (obj.get("status") or {}).get("addresses") or [] if isinstance(a, dict)]
        self.health.node_eligible = not (obj.get("metadata") or {}).get("deletionTimestamp")
        if addresses != self._node_addresses:
            self._node_addresses = addresses
            self.health.queued()
            self._pending.set()

    def _node_update(self, _old: dict, new: dict) -> None:
        self._node_event(new)

    def _node_delete(self, obj: Any) -> None:
        self._node_addresses = []
        self.health.node_eligible = False
        self._pending.set()

    # -- syncing -----------------------------------------------------------------------------

    def render_config(self) -> RenderConfig:
        options = self.options
        return RenderConfig(
            table=options.table, node_name=options.node_name, cluster_cidr=options.cluster_cidr,
            nodeport_ips=nodeport_ips(options.nodeport_addresses, self._node_addresses,
                                      self._interface_addresses),
            node_ips=tuple(sorted({ip for kind, ip in self._node_addresses
                                   if kind in ("InternalIP", "ExternalIP") and _v4(ip)})),
            masquerade_bit=options.masquerade_bit, sctp=self._sctp)

    async def _wait_for_caches(self) -> None:
        while not await self.informers.wait_for_cache_sync(within=30.0):
            log.info("proxy: waiting for the Service, EndpointSlice and Node caches")

    async def _sync_loop(self) -> None:
        loop = asyncio.get_running_loop()
        await self._wait_for_caches()
        self._pending.set()
        backoff = Backoff(initial=0.5, cap=30.0, jitter=0.2)
        period = self.options.min_sync_period
        next_check = loop.time() + self.options.sync_period
        retry_at: float | None = None
        while True:
            now = loop.time()
            deadlines = [next_check]
            garbage = self.backend.garbage_due_in()
            garbage_at = None if garbage is None else now + garbage
            if garbage_at is not None:
                deadlines.append(garbage_at)
            if retry_at is not None:
                deadlines.append(retry_at)
            elif self._pending.is_set():
                deadlines.append(self._last_sync + period)  # a burst of changes coalesces
            timeout = min(deadlines) - now
            if timeout > 0:
                if retry_at is None and not self._pending.is_set():
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(timeout):
                            await self._pending.wait()
                else:
                    await asyncio.sleep(timeout)
            now = loop.time()
            if now >= next_check:
                next_check = now + self.options.sync_period
                await self._check_drift()
            if retry_at is not None and now >= retry_at:
                retry_at = None
                self._pending.set()
            if retry_at is None and self._pending.is_set() and now >= self._last_sync + period:
                self._pending.clear()
                self._last_sync = now
                if await self.sync_once():
                    backoff.reset()
                else:
                    retry_at = loop.time() + backoff.next()
            elif garbage_at is not None and now >= garbage_at and retry_at is None:
                try:
                    await self.backend.collect_garbage()
                except Exception as exc:  # noqa: BLE001 - a SyncError, or anything: resync
                    self.metrics.failures.inc()
                    log.warning("deleting unused chains failed (%s); a full sync follows", exc)
                    self._need_full = True
                    self._pending.set()

    async def _check_drift(self) -> None:
        self._interface_addresses = await self._interfaces()
        try:
            drifted = await self.backend.check_drift()
        except Exception as exc:  # noqa: BLE001 - reading the table back may fail like anything else
            log.warning("checking the proxy's table failed: %s", exc)
            drifted = True
        if drifted:
            self.metrics.drift.inc()
            self._need_full = True
            self.health.queued()
            self._pending.set()

    async def sync_once(self) -> bool:
        """One sync of everything that changed (a full one when needed); whether it worked.
        Nothing it meets ends the sync loop: an unexpected error is logged, and a full sync
        follows."""
        try:
            return await self._sync_once()
        except Exception:  # noqa: BLE001 - the proxy never stops syncing
            self.metrics.failures.inc()
            self._need_full = True
            log.exception("proxy sync failed unexpectedly (a full sync follows)")
            return False

    async def _sync_once(self) -> bool:
        changed = refresh(self.tracker, self.state, before=self._udp_before)
        self.metrics.service_pending.set(0)
        self.metrics.endpoint_pending.set(0)
        self._log_conflicts(changed)
        config = self.render_config()
        if not config.nodeport_ips and ("nodeports", ()) not in self._logged:
            self._logged.add(("nodeports", ()))
            log.warning("no node-port addresses yet (the Node %s has no InternalIP): node ports do not answer",
                        self.options.node_name)
        await self._ensure_route_localnet(config, changed)
        full = self._need_full
        start = time.perf_counter()
        try:
            if not full:
                try:
                    result = await self.backend.sync(self.state, config, changed)
                except SyncError as exc:
                    self.metrics.failures.inc()
                    log.warning("incremental sync failed (%s); trying a full sync", exc)
                    full = True
            if full:
                result = await self.backend.sync(self.state, config, None)
        except Exception as exc:  # noqa: BLE001 - the proxy never exits: log and retry
            self.metrics.failures.inc()
            self._need_full = True
            self.last_error = str(exc)
            log.error("proxy sync failed (will retry): %s", exc)
            return False
        self._need_full = False
        self.last_error = ""
        if self._udp_before:
            await self._clear_stale_flows()
        seconds = time.perf_counter() - start
        self.metrics.observe(result.full, seconds)
        self.metrics.last.set(time.time())
        self.metrics.set_objects(self.backend.counts())
        self.health.updated()
        self.syncs += 1
        self._synced.set()
        log.debug("proxy sync (%s, %d operations) took %.1f ms", "full" if result.full else "partial",
                  result.operations, seconds * 1000)
        return True

    def _log_conflicts(self, changed: set) -> None:
        for claim, winner, losers in self.state.conflicts(changed or None):
            key = (claim, winner, tuple(losers))
            if key in self._logged:
                continue
            self._logged.add(key)
            where = f"node port {claim[2]}/{claim[1]}" if claim[0] == "nodeport" else \
                f"{claim[0]}:{claim[2]}/{claim[1]}"
            log.warning("%s is claimed by several services: %s keeps it, not %s", where, winner,
                        ", ".join(map(str, losers)))
        for name, problems in list(self.tracker.problems.items()):
            key = ("problems", name, tuple(problems))
            if key not in self._logged:
                self._logged.add(key)
                log.warning("service %s: %s", name, "; ".join(problems))

    async def _clear_stale_flows(self) -> None:
        """Delete the UDP flows the committed sync made stale (see the module doc)."""
        conntrack = self.conntrack
        if conntrack is not None and not conntrack.available():
            log.warning("%s is not installed (Debian package conntrack): stale UDP flows to services "
                        "are not deleted", conntrack.binary)
            self.conntrack = conntrack = None
        before, self._udp_before = self._udp_before, {}
        if conntrack is None:
            return
        flows = stale_flows(before, {name: self.state.ports.get(name) for name in before})
        try:
            deleted = await conntrack.delete(flows)
        except ConntrackError as exc:
            log.warning("deleting stale UDP conntrack entries failed: %s", exc.message)
            return
        self.flows_deleted += deleted
        if deleted:
            log.debug("deleted %d stale UDP conntrack entries (%d filters)", deleted, len(flows))

    async def _ensure_route_localnet(self, config: RenderConfig, changed: set) -> None:
        if self._route_localnet or not self.options.sysctls:
            return
        loopback = [ip for ip in config.nodeport_ips if ipaddress.IPv4Address(ip).is_loopback]
        names = changed if not self._need_full else self.state.ports.keys()
        for name in names:
            view = self.state.ports.get(name)
            if view is not None:
                loopback.extend(ip for ip in view.service.lb_ips + view.service.external_ips
                                if ipaddress.IPv4Address(ip).is_loopback)
        if loopback:
            self._route_localnet = await self._sysctl("net.ipv4.conf.all.route_localnet", "1")

    # -- the node ----------------------------------------------------------------------------

    async def _exec(self, *argv: str) -> tuple[int, bytes]:
        prefix = ["ip", "netns", "exec", self.options.netns] if self.options.netns else []
        try:
            process = await asyncio.create_subprocess_exec(
                *prefix, *argv, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL)
        except OSError:
            return 127, b""
        out, _ = await process.communicate()
        return process.returncode or 0, out

    async def _sysctl(self, name: str, value: str) -> bool:
        if self.options.netns is None:
            ok = write_sysctl(name, value)
        else:
            ok = (await self._exec("sysctl", "-qw", f"{name}={value}"))[0] == 0
        if not ok:
            log.warning("could not set %s=%s", name, value)
        return ok

    async def _interfaces(self) -> list[str]:
        code, out = await self._exec("ip", "-j", "-4", "addr", "show")
        if code != 0:
            return []
        try:
            links = orjson.loads(out or b"[]")
        except orjson.JSONDecodeError:
            return []
        return [info.get("local", "") for link in links for info in link.get("addr_info") or []
                if info.get("family") == "inet" and info.get("local")]
