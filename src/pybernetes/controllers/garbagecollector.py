"""The garbage collector: deletes objects whose owners are gone, as upstream's
pkg/controller/garbagecollector (v1.32).

Owns the collector's I/O around the pure graph (``gc_graph``):

- *monitors*: one shared informer per listable, watchable, deletable resource found by
  discovery (refreshed every ``gc_discovery_interval`` seconds, default 30, to pick up new
  resources); their handlers only put changes on the graph-changes queue.
- the *graph builder*: one task applying those changes (and the collector's virtual
  deletes) to the ``Graph``; it never makes an API call, it only fills the two work queues.
- *attempt to delete* workers (``self.queue``, keyed by uid): an object whose owners are all
  gone (verified by a live GET of each owner: a 404 or another uid means gone) is deleted
  with the policy its own finalizers imply (Background by default); one with some owners
  left gets the dangling references removed by a patch; an owner being deleted in the
  foreground gets its dependents deleted and loses its foregroundDeletion finalizer once no
  dependent with blockOwnerDeletion=true is left.
- *attempt to orphan* workers (``self.orphan_queue``): an owner being deleted with the
  orphan finalizer gets the references to it removed from every dependent, then the
  finalizer removed.

After a restart the graph is built from the initial lists: a dependent whose owner is not
listed gets a virtual owner node, verified by a GET, and the dependent is collected.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from pybernetes.client.cache import object_of
from pybernetes.client.discovery import AGGREGATED_ACCEPT, ApiResource
from pybernetes.client.errors import ApiError, Conflict, NotFound
from pybernetes.client.informer import SharedInformer
from pybernetes.client.rest import RestClient
from pybernetes.client.workqueue import RateLimitingQueue, ShutDown, default_controller_rate_limiter
from pybernetes.controllers import gc_graph as g
from pybernetes.controllers.base import Controller, Obj
from pybernetes.machinery.meta import finalizer_patch

log = logging.getLogger(__name__)

DEFAULT_DISCOVERY_INTERVAL = 30.0
SYNC_TIMEOUT = 60.0  # seconds to wait for the monitors' first lists
FINALIZER_ATTEMPTS = 5


async def fetch_preferred_resources(client: RestClient) -> list[ApiResource]:
    """Every resource the server serves, preferred version first (aggregated discovery, or
    the legacy documents when the server answers those)."""
    docs: list[Obj] = []
    legacy: list[ApiResource] = []
    for root in ("/api", "/apis"):
        ctype, doc = await client.send("GET", root, accept=AGGREGATED_ACCEPT)
        if "as=APIGroupDiscoveryList" in ctype:
            docs.append(doc or {})
            continue
        doc = doc or {}
        if root == "/api":
            gvs = [("", v) for v in doc.get("versions") or []]
        else:
            gvs = []
            for group in doc.get("groups") or []:
                preferred = (group.get("preferredVersion") or {}).get("version")
                versions = [v.get("version") for v in group.get("versions") or []]
                ordered = ([preferred] if preferred else []) + [v for v in versions if v != preferred]
                gvs.extend((group.get("name") or "", v) for v in ordered if v)
        for group, version in gvs:
            path = f"/apis/{group}/{version}" if group else f"/api/{version}"
            try:
                _, listing = await client.send("GET", path)
            except NotFound:
                continue
            legacy.extend(g.resources_from_list(group, version, listing or {}))
    return g.preferred_resources(docs, legacy)


class RestMappingError(Exception):
    """An apiVersion/kind the server does not serve (yet): retried."""


class InvalidOwnerScope(Exception):
    """A cluster-scoped object names a namespaced owner kind: never resolves, not retried."""


class GarbageCollector(Controller):
    name = "garbagecollector"
    component = "garbage-collector-controller"
    default_workers = 20  # upstream's --concurrent-gc-syncs

    def setup(self) -> None:
        self.graph = g.Graph()
        self.orphan_queue = RateLimitingQueue(default_controller_rate_limiter(), name="garbagecollector-orphan")
        self.graph_changes: asyncio.Queue[g.Change] = asyncio.Queue()
        self.monitors: dict[tuple[str, str, str], tuple[SharedInformer, Any]] = {}
        self.discovery_interval = float(self.options.get("gc_discovery_interval", DEFAULT_DISCOVERY_INTERVAL))
        self.graph_changes_processed = 0

    # -- monitors ----------------------------------------------------------------------------

    def _handlers(self) -> tuple[Any, Any, Any]:
        put = self.graph_changes.put_nowait

        def on_add(obj: Obj) -> None:
            put(g.Change("add", obj))

        def on_update(old: Obj, new: Obj) -> None:
            put(g.Change("update", new, old))

        def on_delete(item: Any) -> None:
            put(g.Change("delete", object_of(item)))

        return on_add, on_update, on_delete

    async def sync_monitors(self) -> list[SharedInformer]:
        """Watch every deletable resource discovery lists now; the new informers."""
        resources = g.gc_resources(await fetch_preferred_resources(self.client))
        wanted = {r.gvr: r for r in resources}
        started: list[SharedInformer] = []
        for gvr, res in wanted.items():
            if gvr in self.monitors:
                continue
            inf = self.ctx.informers.informer(res)
            listener = inf.add_event_handler(*self._handlers())
            self.monitors[gvr] = (inf, listener)
            if inf not in self._informers:
                self._informers.append(inf)
            if not inf.started:
                inf.start()
            started.append(inf)
        for gvr in [k for k in self.monitors if k not in wanted]:
            inf, listener = self.monitors.pop(gvr)
            inf.remove_event_handler(listener)  # the resource is gone from discovery
        return started

    async def _discovery_loop(self) -> None:
        while True:
            await asyncio.sleep(self.discovery_interval)
            try:
                new = await self.sync_monitors()
            except Exception as exc:  # noqa: BLE001 - discovery fails now and then; try later
                log.warning("garbage collector: discovery failed: %r", exc)
                continue
            if new:
                log.info("garbage collector: watching %d new resources", len(new))

    # -- running -----------------------------------------------------------------------------

    async def run(self, workers: int) -> None:
        self._tasks.start("graph-builder", self._graph_builder())
        while True:
            try:
                await self.sync_monitors()
                break
            except Exception as exc:  # noqa: BLE001 - the API may not answer yet
                log.warning("garbage collector: discovery failed (retrying): %r", exc)
                await asyncio.sleep(1.0)
        if not await self.wait_for_sync(SYNC_TIMEOUT):
            log.warning("garbage collector: not every monitor synced within %ss", SYNC_TIMEOUT)
        log.info("garbage collector: %d monitors, starting %d workers", len(self.monitors), workers)
        self._tasks.start("discovery", self._discovery_loop())
        for i in range(max(1, workers)):
            self._tasks.start(f"delete-worker-{i}", self._worker_loop(self.queue, self._attempt_to_delete))
            self._tasks.start(f"orphan-worker-{i}", self._worker_loop(self.orphan_queue, self._attempt_to_orphan))
        try:
            await asyncio.Event().wait()
        finally:
            self.queue.shutdown()
            self.orphan_queue.shutdown()
            for inf, listener in self.monitors.values():
                inf.remove_event_handler(listener)
            await self._tasks.stop(grace=5.0)

    async def stop(self) -> None:
        self.orphan_queue.shutdown()
        await super().stop()

    async def _graph_builder(self) -> None:
        while True:
            change = await self.graph_changes.get()
            try:
                actions = self.graph.process(change)
            except Exception:  # noqa: BLE001 - one bad object must not stop the graph
                log.exception("garbage collector: processing %s failed", change.type)
                continue
            self.graph_changes_processed += 1
            for uid in actions.attempt_to_delete:
                self.queue.add(uid)
            for uid in actions.attempt_to_delete_later:
                self.queue.add_rate_limited(uid)
            for uid in actions.attempt_to_orphan:
                self.orphan_queue.add(uid)
            for dependent, ref in actions.invalid_namespace:
                self._report_invalid_namespace(dependent, ref)

    def _report_invalid_namespace(self, dependent: g.Identity, ref: Obj) -> None:
        owner = g.owner_identity(ref, dependent.namespace)
        involved = {"apiVersion": dependent.api_version, "kind": dependent.kind,
                    "metadata": {"name": dependent.name, "namespace": dependent.namespace,
                                 "uid": dependent.uid}}
        self.recorder.event(involved, "Warning", "OwnerRefInvalidNamespace",
                            f'ownerRef {owner} does not exist in namespace "{dependent.namespace}"')

    async def _worker_loop(self, queue: RateLimitingQueue, attempt: Any) -> None:
        while True:
            try:
                uid = await queue.get()
            except ShutDown:
                return
            try:
                requeue = await attempt(str(uid))
            except asyncio.CancelledError:
                queue.done(uid)
                raise
            except Exception as exc:  # noqa: BLE001 - retried with backoff
                self.sync_errors += 1
                level = logging.DEBUG if isinstance(exc, ApiError | RestMappingError) else logging.WARNING
                log.log(level, "garbage collector: %s: %r (retrying)", uid, exc)
                requeue = True
            if requeue:
                queue.add_rate_limited(uid)
            else:
                self.syncs += 1
                queue.forget(uid)
            queue.done(uid)

    async def sync(self, key: str) -> None:
        """One attempt to delete the object with uid ``key`` (the work-queue item)."""
        if await self._attempt_to_delete(key):
            raise RuntimeError(f"object {key} is not observed yet")

    # -- API helpers -------------------------------------------------------------------------

    async def _api_resource(self, api_version: str, kind: str) -> ApiResource:
        try:
            return await self.client.resource_for_kind(api_version, kind)
        except NotFound as exc:
            raise RestMappingError(str(exc)) from None

    async def _get(self, ident: g.Identity) -> tuple[ApiResource, Obj]:
        res = await self._api_resource(ident.api_version, ident.kind)
        if res.namespaced and not ident.namespace:
            raise InvalidOwnerScope(f"{ident}: a namespaced kind without a namespace")
        return res, await self.client.get(res, ident.name, ident.namespace if res.namespaced else None)

    async def _patch(self, res: ApiResource, ident: g.Identity, strategic: Obj, merge: Any) -> None:
        """A strategic-merge patch, or (resources without one) the JSON merge patch ``merge``
        computes from the live object."""
        ns = ident.namespace if res.namespaced else None
        try:
            await self.client.patch(res, ident.name, strategic, ns, patch_type="strategic")
        except ApiError as exc:
            if exc.code != 415:
                raise
            _, live = await self._get(ident)
            await self.client.patch(res, ident.name, merge(live), ns, patch_type="merge")

    async def _remove_finalizer(self, ident: g.Identity, finalizer: str) -> None:
        for _ in range(FINALIZER_ATTEMPTS):
            try:
                res, live = await self._get(ident)
            except NotFound:
                return
            if (live.get("metadata") or {}).get("uid") != ident.uid:
                return
            patch = finalizer_patch(live, finalizer, add=False)
            if patch is None:
                return
            try:
                await self.client.patch(res, ident.name, patch, ident.namespace if res.namespaced else None,
                                        patch_type="merge")
                return
            except NotFound:
                return
            except Conflict:
                continue
        raise Conflict(409, "Conflict", f"removing {finalizer} from {ident}: too many conflicts")

    def _virtual_delete(self, ident: g.Identity) -> None:
        self.graph_changes.put_nowait(g.Change("delete", virtual=True, identity=ident))

    # -- attempt to delete -------------------------------------------------------------------

    async def _attempt_to_delete(self, uid: str) -> bool:
        """One attempt; whether to requeue it (rate limited)."""
        node = self.graph.nodes.get(uid)
        if node is None:
            return False  # removed from the graph meanwhile
        try:
            done = await self._attempt_to_delete_item(node)
        except InvalidOwnerScope:
            if not node.observed:  # a namespaced owner kind named by cluster-scoped dependents
                for dep in self.graph.dependents_of(node):
                    if not dep.identity.namespace:
                        for ref in dep.owners:
                            if ref.get("uid") == node.uid:
                                self._report_invalid_namespace(dep.identity, ref)
            return False  # it will not resolve by retrying: the dependents are left alone
        if not done:
            return False  # a virtual delete was queued
        current = self.graph.nodes.get(uid)
        return current is not None and not current.observed

    async def _attempt_to_delete_item(self, node: g.Node) -> bool:
        """Upstream's attemptToDeleteItem; False when it queued a virtual delete."""
        if node.being_deleted and not node.deleting_dependents:
            return True  # on its way out: its dependents are handled when it goes
        try:
            res, latest = await self._get(node.identity)
        except NotFound:
            self._virtual_delete(node.identity)
            return False
        if (latest.get("metadata") or {}).get("uid") != node.uid:
            self._virtual_delete(node.identity)
            return False
        if node.deleting_dependents:
            await self._process_deleting_dependents(node)
            return True
        refs = g.owner_refs(latest)
        if not refs:
            return True
        owners = {ref["uid"]: await self._live_owner(ref, node) for ref in refs}
        classified = g.classify_references(refs, owners)
        deps = self.graph.dependents_of(node)
        decision = g.decide_delete(latest, classified, bool(deps), any(d.deleting_dependents for d in deps))
        ns = node.identity.namespace if res.namespaced else None
        if decision.action == "remove_refs":
            log.info("garbage collector: removing dangling owner references %s from %s",
                     decision.remove_uids, node.identity)
            try:
                await self._patch(res, node.identity, g.remove_refs_patch(node.uid, decision.remove_uids),
                                  lambda live: g.remove_refs_merge_patch(live, decision.remove_uids))
            except NotFound:
                pass
        elif decision.action == "delete":
            if decision.unblock_first:
                await self.client.patch(res, node.identity.name, g.unblock_refs_merge_patch(latest), ns,
                                        patch_type="merge")
            log.info("garbage collector: deleting %s (propagation %s)", node.identity, decision.policy)
            try:
                await self.client.delete(res, node.identity.name, ns, propagation_policy=decision.policy,
                                         preconditions={"uid": node.uid})
            except NotFound:
                pass
        return True

    async def _live_owner(self, ref: Obj, node: g.Node) -> Obj | None:
        """The owner ``ref`` names, or None when it is gone (upstream's isDangling)."""
        absent = self.graph.absent_owners
        if g.owner_identity(ref, "") in absent:
            return None
        in_namespace = g.owner_identity(ref, node.identity.namespace)
        if in_namespace in absent:
            return None
        res = await self._api_resource(ref.get("apiVersion") or "", ref.get("kind") or "")
        if res.namespaced and not node.identity.namespace:
            self._report_invalid_namespace(node.identity, ref)
            raise InvalidOwnerScope(f"{node.identity} is cluster-scoped but names the namespaced owner {ref}")
        key = in_namespace if res.namespaced else g.owner_identity(ref, "")
        try:
            owner = await self.client.get(res, ref.get("name") or "", key.namespace or None)
        except NotFound:
            absent.add(key)
            return None
        if (owner.get("metadata") or {}).get("uid") != ref["uid"]:
            absent.add(key)
            return None
        return owner

    async def _process_deleting_dependents(self, node: g.Node) -> None:
        blocking = self.graph.blocking_dependents(node)
        if not blocking:
            log.info("garbage collector: removing %s from %s", g.FOREGROUND_FINALIZER, node.identity)
            await self._remove_finalizer(node.identity, g.FOREGROUND_FINALIZER)
            return
        for dep in blocking:
            if not dep.deleting_dependents:
                self.queue.add(dep.uid)

    # -- attempt to orphan -------------------------------------------------------------------

    async def _attempt_to_orphan(self, uid: str) -> bool:
        owner = self.graph.nodes.get(uid)
        if owner is None:
            return False
        deps = self.graph.dependents_of(owner)
        results = await asyncio.gather(*(self._orphan_one(dep, owner.uid) for dep in deps),
                                       return_exceptions=True)
        failures = [r for r in results if isinstance(r, BaseException)]
        if failures:
            raise RuntimeError(f"orphaning the dependents of {owner.identity} failed: {failures[0]!r}")
        await self._remove_finalizer(owner.identity, g.ORPHAN_FINALIZER)
        return False

    async def _orphan_one(self, dep: g.Node, owner_uid: str) -> None:
        try:
            res = await self._api_resource(dep.identity.api_version, dep.identity.kind)
            await self._patch(res, dep.identity, g.remove_refs_patch(dep.uid, [owner_uid]),
                              lambda live: g.remove_refs_merge_patch(live, [owner_uid]))
        except NotFound:
            pass
