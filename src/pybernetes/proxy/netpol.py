"""The NetworkPolicy enforcer of one node: informers in, nftables out (the async shell).

``NetworkPolicyEnforcer(client, node_name, nft=Nft(), table=..., informers=None,
min_sync_period=0.1, metrics=None)`` watches Pods (all namespaces), Namespaces and
NetworkPolicies through shared informers (its own factory, or one it is given and shares), and
keeps the table ``ip <table>`` equal to ``netpol_rules.build(netpol_model.compute(...))``:

- The first sync, a sync after a failure, and a sync after the table went missing (checked
  every ``drift_check_period`` seconds) recreate the whole table in one transaction; any other
  sync applies only the difference to what the table holds.
- Syncs are rate-limited (at most one per ``min_sync_period``); informer updates that change
  nothing policies look at (a pod's conditions, a policy's status) cause none.
- Bad input never stops it: problems of a policy are logged once (and kept in ``errors``), the
  rest is applied; a failed transaction is retried with backoff after a full resync.
- ``stop(cleanup=True)`` ends its tasks (through a TaskSet) and removes the table.

Its counters (``syncs``, ``full_syncs``, ``sync_failures``, ``last_sync_seconds``, ``rules``,
``isolated``) are also Prometheus metrics when it is given a ``NetpolMetrics`` (metrics.py);
``pybernetes proxy`` registers them on the service proxy's registry.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from pybernetes.client.flowcontrol import Backoff
from pybernetes.client.informer import SharedInformer, SharedInformerFactory
from pybernetes.client.rest import RestClient
from pybernetes.client.tasks import TaskSet, wait_set
from pybernetes.proxy.metrics import NetpolMetrics
from pybernetes.proxy.netpol_model import PodInfo, compute_from, namespace_labels, pod_digest, safe_pod_info
from pybernetes.proxy.netpol_rules import DEFAULT_TABLE, FAMILY, Ruleset, build, diff_script, full_script
from pybernetes.proxy.nft import Nft, NftError

log = logging.getLogger(__name__)

Obj = dict[str, Any]
PODS = ("", "v1", "pods")
NAMESPACES = ("", "v1", "namespaces")
NETWORKPOLICIES = ("networking.k8s.io", "v1", "networkpolicies")


def _policy_digest(obj: Obj) -> Any:
    return obj.get("spec")


def _namespace_digest(obj: Obj) -> Any:
    return namespace_labels(obj)


class NetworkPolicyEnforcer:
    def __init__(self, client: RestClient, node_name: str, nft: Nft | None = None, table: str = DEFAULT_TABLE,
                 informers: SharedInformerFactory | None = None, min_sync_period: float = 0.1,
                 drift_check_period: float = 10.0, metrics: NetpolMetrics | None = None) -> None:
        self.client = client
        self.node_name = node_name
        self.nft = nft if nft is not None else Nft()
        self.table = table
        self.min_sync_period = min_sync_period
        self.drift_check_period = drift_check_period
        self.metrics = metrics
        self._own_factory = informers is None
        self.informers = informers if informers is not None else SharedInformerFactory(client)
        self._tasks = TaskSet(f"netpol[{node_name}]")
        self._dirty = asyncio.Event()
        self._synced = asyncio.Event()
        self._listeners: list[tuple[SharedInformer, Any]] = []
        self._applied: Ruleset | None = None  # what the table holds; None: unknown (full sync next)
        self._backoff = Backoff(initial=0.5, cap=30.0)
        self.errors: dict[str, list[str]] = {}  # policy key -> problems (not enforced parts)
        self.syncs = 0  # transactions applied (metrics and tests)
        self.full_syncs = 0
        self.sync_failures = 0
        self.last_sync_seconds = 0.0
        self.rules = 0
        self.isolated = (0, 0)  # pods isolated for (ingress, egress)
        self._pods = self._namespaces = self._policies = None
        self._pod_infos: dict[tuple[str, str, str], PodInfo | None] = {}  # (ns, name, rv) -> parsed

    # -- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        """Start the informers (a shared factory's too) and the sync loop; returns at once
        (``wait_for_sync`` tells when the table first matches the cluster)."""
        self._pods = self._watch(PODS, pod_digest)
        self._namespaces = self._watch(NAMESPACES, _namespace_digest)
        self._policies = self._watch(NETWORKPOLICIES, _policy_digest)
        self.informers.start()
        self._tasks.start("sync", self._run())

    def _watch(self, res: tuple[str, str, str], digest: Any) -> SharedInformer:
        inf = self.informers.informer(res)

        def on_update(old: Obj, new: Obj) -> None:
            if digest(old) != digest(new):
                self._dirty.set()

        listener = inf.add_event_handler(lambda _obj: self._dirty.set(), on_update,
                                         lambda _obj: self._dirty.set())
        self._listeners.append((inf, listener))
        return inf

    async def wait_for_sync(self, within: float | None = None) -> bool:
        """Whether the table matched the cluster once within ``within`` seconds."""
        return await wait_set(self._synced, within)

    async def stop(self, cleanup: bool = True) -> None:
        await self._tasks.stop()
        for inf, listener in self._listeners:
            inf.remove_event_handler(listener)
        self._listeners.clear()
        if self._own_factory:
            await self.informers.shutdown()
        if cleanup:
            try:
                await self.nft.delete_table(FAMILY, self.table)
            except OSError as exc:
                log.warning("netpol: could not remove table %s: %s", self.table, exc)
        self._applied = None

    # -- the loop ----------------------------------------------------------------------------

    async def _run(self) -> None:
        for inf in (self._pods, self._namespaces, self._policies):
            assert inf is not None
            await inf.wait_for_sync()
        self._dirty.set()
        last = 0.0
        next_check = time.monotonic() + self.drift_check_period
        while True:
            try:
                async with asyncio.timeout(max(next_check - time.monotonic(), 0.001)):
                    await self._dirty.wait()
            except TimeoutError:
                pass
            if time.monotonic() >= next_check:
                next_check = time.monotonic() + self.drift_check_period
                if self._applied is not None and not await self._table_present():
                    log.warning("netpol: table %s %s is gone; recreating it", FAMILY, self.table)
                    self._applied = None
                    self._dirty.set()
            if not self._dirty.is_set():
                continue
            wait = last + self.min_sync_period - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)  # rate limit: changes meanwhile join this sync
            self._dirty.clear()
            last = time.monotonic()
            try:
                await self.sync()
                self._backoff.reset()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - keep enforcing; retry with a full sync
                self.sync_failures += 1
                if self.metrics is not None:
                    self.metrics.failures.inc()
                self._applied = None
                delay = self._backoff.next()
                log.error("netpol: sync failed (%s); retrying in %.1fs", getattr(exc, "message", exc), delay)
                await asyncio.sleep(delay)
                self._dirty.set()

    async def _table_present(self) -> bool:
        try:
            return await self.nft.table_exists(FAMILY, self.table)
        except OSError:
            return True

    def desired(self) -> Ruleset:
        """The ruleset for what the informers hold now (and ``errors`` updated)."""
        assert self._pods and self._namespaces and self._policies
        model = compute_from(self._read_pods(), self._namespaces.indexer.list(),
                             self._policies.indexer.list(), self.node_name)
        for key, problems in model.errors.items():
            if self.errors.get(key) != problems:
                log.warning("netpol: NetworkPolicy %s is partly not enforced: %s", key, "; ".join(problems))
        self.errors = model.errors
        self.isolated = (len(model.ingress), len(model.egress))
        return build(model)

    def _read_pods(self) -> list[PodInfo | None]:
        """Every cached pod as the model reads it, parsing only those that changed."""
        assert self._pods
        known, fresh = self._pod_infos, {}
        for obj in self._pods.indexer.list():
            meta = obj.get("metadata") or {}
            key = (meta.get("namespace") or "", meta.get("name") or "", meta.get("resourceVersion") or "")
            fresh[key] = known[key] if key in known and key[2] else safe_pod_info(obj)
        self._pod_infos = fresh
        return list(fresh.values())

    async def sync(self) -> None:
        """Make the table match the informers' view now: a difference when the table is known,
        else the whole table."""
        started = time.monotonic()
        wanted = self.desired()
        applied = 0
        full = self._applied is None
        if self._applied is not None:
            script = diff_script(self.table, self._applied, wanted)
            if script:
                try:
                    await self.nft.apply(script)
                    applied += 1
                except NftError as exc:
                    log.warning("netpol: incremental update refused (%s); recreating the table", exc.message)
                    self._applied = None
                    full = True
        if self._applied is None:
            await self.nft.apply(full_script(self.table, wanted))
            applied += 1
            self.full_syncs += 1
        self.syncs += applied
        self._applied = wanted
        self.rules = wanted.rule_count
        self.last_sync_seconds = time.monotonic() - started
        if self.metrics is not None:
            self.metrics.synced(applied, full, self.last_sync_seconds, self.rules, self.isolated, len(self.errors))
        self._synced.set()
