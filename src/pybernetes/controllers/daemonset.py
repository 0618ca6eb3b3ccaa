"""The DaemonSet controller (``daemonset``): one daemon pod on every node that should run it,
as upstream v1.32's pkg/controller/daemon does.

- Event handlers only enqueue: DaemonSet changes; pod events for the owning DaemonSet (an
  orphan pod wakes every DaemonSet in its namespace whose selector matches it; a pod that
  turns ready wakes its DaemonSet again after minReadySeconds); ControllerRevision events
  likewise; a node added wakes the DaemonSets that should run on it, a node whose labels,
  taints or conditions changed wakes those whose verdict for it (should run / may keep
  running) changed, a node deleted wakes those that had it.
- ``sync``: claim the pods and ControllerRevisions (adopt matching orphans, release
  non-matching ones), construct the template history (the current revision, created when
  missing, duplicates removed, its number above every old one; a name clash bumps
  ``status.collisionCount``), then — once earlier creations and deletions have been seen
  (expectations) — the manage loop (``daemonset_core.manage``), the RollingUpdate step
  (``daemonset_update.rolling_update``; OnDelete has none) and the pruning of old revisions
  beyond revisionHistoryLimit; finally the status counters.
- Pods are created in slow-start batches (1, 2, 4, ... at most ``burst_replicas`` = 250 per
  sync), each pinned to its node by a required node affinity (the scheduler binds it), and
  deleted with Events SuccessfulCreate/SuccessfulDelete (FailedCreate/FailedDelete on
  errors, and the sync is retried with backoff).  Failed daemon pods are deleted and
  recreated with a per-node backoff (Event FailedDaemonPod).
- Pods bound to a node that was deleted are neither counted nor replaced; deleting them is
  the pod garbage collector's job (upstream PodGC).  Pods never bound whose node is gone are
  deleted here.

Options (``ctx.options["daemonset"]``): ``burst_replicas``.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, ClassVar

from pybernetes.client.cache import object_of
from pybernetes.client.errors import ApiError, NotFound, ServerTimeout
from pybernetes.client.expectations import ControllerExpectations
from pybernetes.controllers import daemonset_core as core
from pybernetes.controllers import daemonset_history as hist
from pybernetes.controllers.base import Controller, Obj, key_of
from pybernetes.controllers.daemonset_nodes import DaemonPlacement
from pybernetes.controllers.daemonset_update import is_rolling_update, rolling_update
from pybernetes.controllers.history import REVISION_HASH_LABEL, create_revision
from pybernetes.controllers.podutil import controller_ref, is_pod_ready, new_controller_ref, selector_matches
from pybernetes.controllers.refmanager import claim, owners_of_update, uid_precondition
from pybernetes.machinery.meta import clone, is_being_deleted
from pybernetes.machinery.selectors import SelectorParseError, label_selector_from_dict

log = logging.getLogger(__name__)

DAEMONSETS = "apps/v1/daemonsets"
PODS = "/v1/pods"
NODES = "/v1/nodes"
REVISIONS = "apps/v1/controllerrevisions"
OWNER_INDEX = "daemonset-by-owner"
ORPHAN = "orphan/"
KIND = hist.DAEMONSET_KIND
BACKOFF_GC_INTERVAL = 60.0


def owner_index(obj: Obj) -> list[str]:
    """An object's controller uid, or ``orphan/<namespace>`` when it has no controller."""
    ref = controller_ref(obj)
    if ref is not None:
        return [str(ref.get("uid") or "")]
    return [ORPHAN + ((obj.get("metadata") or {}).get("namespace") or "")]


def _true_conditions(node: Obj) -> set[str]:
    return {c.get("type") for c in (node.get("status") or {}).get("conditions") or []
            if isinstance(c, dict) and c.get("status") == "True"}


def node_update_matters(old: Obj, cur: Obj) -> bool:
    """Whether a node update may change where daemon pods belong (labels, spec — taints,
    unschedulable — or which conditions are true); heartbeats do not."""
    if _true_conditions(old) != _true_conditions(cur):
        return True
    if ((old.get("metadata") or {}).get("labels") or {}) != ((cur.get("metadata") or {}).get("labels") or {}):
        return True
    return (old.get("spec") or {}) != (cur.get("spec") or {})


class DaemonSetController(Controller):
    name: ClassVar[str] = "daemonset"
    component: ClassVar[str] = "daemonset-controller"
    default_workers = 2

    def setup(self) -> None:
        opts = self.options.get(self.name) if isinstance(self.options.get(self.name), dict) else {}
        self.burst_replicas = int(opts.get("burst_replicas", core.BURST_REPLICAS))
        self.expectations = ControllerExpectations()
        self.backoff = core.FailedPodBackoff()
        self._last_backoff_gc = 0.0
        self.daemonsets = self.informer(DAEMONSETS)
        self.daemonsets.add_event_handler(self._ds_added, self._ds_updated, self._ds_deleted)
        self.pods = self.informer(PODS, indexers={OWNER_INDEX: owner_index})
        self.pods.add_event_handler(self._pod_added, self._pod_updated, self._pod_deleted)
        self.revisions = self.informer(REVISIONS, indexers={OWNER_INDEX: owner_index})
        self.revisions.add_event_handler(self._rev_added, self._rev_updated, self._rev_deleted)
        self.nodes = self.informer(NODES)
        self.nodes.add_event_handler(self._node_added, self._node_updated, self._node_deleted)

    # -- DaemonSet events ---------------------------------------------------------------------

    def _ds_added(self, ds: Obj) -> None:
        self.enqueue(ds)

    def _ds_updated(self, old: Obj, cur: Obj) -> None:
        if (old.get("metadata") or {}).get("uid") != (cur.get("metadata") or {}).get("uid"):
            self._ds_deleted(old)
        self.enqueue(cur)

    def _ds_deleted(self, item: Any) -> None:
        key = key_of(object_of(item))
        self.expectations.delete_expectations(key)
        self.enqueue(key)

    def _resolve(self, namespace: str, ref: Obj | None) -> Obj | None:
        if ref is None or ref.get("kind") != "DaemonSet":
            return None
        ds = self.daemonsets.indexer.get(f"{namespace}/{ref.get('name')}")
        if ds is None or (ds.get("metadata") or {}).get("uid") != ref.get("uid"):
            return None
        return ds

    def _selecting(self, obj: Obj) -> list[Obj]:
        meta = obj.get("metadata") or {}
        ns, labels = meta.get("namespace") or "", meta.get("labels") or {}
        return [ds for ds in self.daemonsets.indexer.list()
                if (ds.get("metadata") or {}).get("namespace") == ns
                and _has_selector(ds) and selector_matches((ds.get("spec") or {}).get("selector"), labels)]

    # -- pod events ---------------------------------------------------------------------------

    def _pod_added(self, pod: Obj) -> None:
        meta = pod.get("metadata") or {}
        if meta.get("deletionTimestamp"):
            self._pod_deleted(pod)
            return
        ref = controller_ref(pod)
        if ref is not None:
            ds = self._resolve(meta.get("namespace") or "", ref)
            if ds is not None:
                self.expectations.creation_observed(key_of(ds))
                self.enqueue(ds)
            return
        for ds in self._selecting(pod):
            self.enqueue(ds)

    def _pod_updated(self, old: Obj, cur: Obj) -> None:
        old_meta, cur_meta = old.get("metadata") or {}, cur.get("metadata") or {}
        if old_meta.get("resourceVersion") == cur_meta.get("resourceVersion"):
            return
        if cur_meta.get("deletionTimestamp"):
            self._pod_deleted(cur)
            if (old_meta.get("labels") or {}) != (cur_meta.get("labels") or {}):
                self._pod_deleted(old)
            return
        previous, ds, candidates = owners_of_update(old, cur, self._resolve, self._selecting)
        if previous is not None:
            self.enqueue(previous)
        if ds is not None:
            self.enqueue(ds)
            min_ready = int((ds.get("spec") or {}).get("minReadySeconds") or 0)
            if min_ready > 0 and is_pod_ready(cur) and not is_pod_ready(old):
                self.enqueue_after(ds, min_ready + 1.0)
        for candidate in candidates:
            self.enqueue(candidate)

    def _pod_deleted(self, item: Any) -> None:
        pod = object_of(item)
        ds = self._resolve((pod.get("metadata") or {}).get("namespace") or "", controller_ref(pod))
        if ds is not None:
            self.expectations.deletion_observed(key_of(ds))
            self.enqueue(ds)

    # -- ControllerRevision events --------------------------------------------------------------

    def _rev_added(self, rev: Obj) -> None:
        meta = rev.get("metadata") or {}
        ref = controller_ref(rev)
        if ref is not None:
            ds = self._resolve(meta.get("namespace") or "", ref)
            if ds is not None and meta.get("deletionTimestamp"):
                self.enqueue(ds)
            return
        for ds in self._selecting(rev):
            self.enqueue(ds)

    def _rev_updated(self, old: Obj, cur: Obj) -> None:
        if (old.get("metadata") or {}).get("resourceVersion") == (cur.get("metadata") or {}).get("resourceVersion"):
            return
        previous, ds, candidates = owners_of_update(old, cur, self._resolve, self._selecting)
        for owner in (previous, ds, *candidates):
            if owner is not None:
                self.enqueue(owner)

    def _rev_deleted(self, item: Any) -> None:
        rev = object_of(item)
        ds = self._resolve((rev.get("metadata") or {}).get("namespace") or "", controller_ref(rev))
        if ds is not None:
            self.enqueue(ds)

    # -- node events --------------------------------------------------------------------------

    def _node_added(self, node: Obj) -> None:
        for ds in self.daemonsets.indexer.list():
            if DaemonPlacement(ds).should_run(node)[0]:
                self.enqueue(ds)

    def _node_updated(self, old: Obj, cur: Obj) -> None:
        if not node_update_matters(old, cur):
            return
        for ds in self.daemonsets.indexer.list():
            placement = DaemonPlacement(ds)
            if placement.should_run(old) != placement.should_run(cur):
                self.enqueue(ds)

    def _node_deleted(self, item: Any) -> None:
        node = object_of(item)
        for ds in self.daemonsets.indexer.list():
            if any(DaemonPlacement(ds).should_run(node)):
                self.enqueue(ds)

    # -- the sync -----------------------------------------------------------------------------

    async def sync(self, key: str) -> None:
        ds = self.daemonsets.indexer.get(key)
        if ds is None:
            self.expectations.delete_expectations(key)
            return
        now = self.clock.now()
        if now - self._last_backoff_gc > BACKOFF_GC_INTERVAL:
            self.backoff.gc(now)
            self._last_backoff_gc = now
        nodes = self.nodes.indexer.list()
        if not _has_selector(ds):
            self.recorder.event(ds, "Warning", "SelectingAll",
                                "This daemon set is selecting all pods. A non-empty selector is required.")
            return
        try:
            label_selector_from_dict((ds.get("spec") or {}).get("selector"))
        except SelectorParseError as exc:
            self.recorder.event(ds, "Warning", "InvalidSelector", f"invalid selector: {exc}")
            return
        if is_being_deleted(ds):
            return  # its pods and revisions may be going: no status can be trusted
        cur, old, collision = await self._construct_history(ds)
        hash_ = hist.revision_hash(cur)
        if not self.expectations.satisfied(key):
            await self._update_status(key, ds, nodes, hash_, False, collision)
            return
        error: Exception | None = None
        try:
            await self._update(key, ds, nodes, hash_, old)
        except Exception as exc:  # noqa: BLE001 - the status is still written, then the sync retried
            error = exc
        try:
            await self._update_status(key, ds, nodes, hash_, True, collision)
        except Exception:
            if error is None:
                raise
            log.debug("daemonset %s: status update failed after an error", key, exc_info=True)
        if error is not None:
            raise error

    async def _claimed_pods(self, ds: Obj) -> list[Obj]:
        meta = ds.get("metadata") or {}
        idx = self.pods.indexer
        candidates = idx.by_index(OWNER_INDEX, meta.get("uid") or "") + idx.by_index(
            OWNER_INDEX, ORPHAN + (meta.get("namespace") or ""))
        return await claim(self.client, PODS, ds, KIND, (ds.get("spec") or {}).get("selector"), candidates,
                           can_adopt=uid_precondition(self.client, DAEMONSETS, ds))

    async def _update(self, key: str, ds: Obj, nodes: list[Obj], hash_: str, old: list[Obj]) -> None:
        now = self.clock.now()
        plan = core.manage(ds, nodes, core.group_by_node(await self._claimed_pods(ds)), hash_, now, self.backoff)
        for type_, reason, message in plan.events:
            self.recorder.event(ds, type_, reason, message)
        if plan.requeue_after is not None:
            self.enqueue_after(key, plan.requeue_after)
        await self._sync_nodes(key, ds, plan.delete, plan.create, hash_)
        if self.expectations.satisfied(key) and is_rolling_update(ds):
            node_to_pods = core.group_by_node(await self._claimed_pods(ds))
            to_delete, to_create = rolling_update(ds, nodes, node_to_pods, hash_, now)
            await self._sync_nodes(key, ds, to_delete, to_create, hash_)
        await self._cleanup_history(ds, old)

    async def _sync_nodes(self, key: str, ds: Obj, to_delete: list[Obj], to_create: list[str], hash_: str) -> None:
        """Create a pod on each of ``to_create`` and delete ``to_delete`` (each at most
        burst_replicas), expecting to see them."""
        creates = to_create[:self.burst_replicas]
        deletes = to_delete[:self.burst_replicas]
        self.expectations.set_expectations(key, len(creates), len(deletes))
        errors: list[BaseException] = []
        template = core.pod_template(ds, hash_)
        ref = new_controller_ref(ds, KIND["apiVersion"], KIND["kind"])
        pos = 0
        for size in core.slow_start_batches(len(creates)):
            batch, pos = creates[pos:pos + size], pos + size
            results = await asyncio.gather(*(self._create_pod(ds, core.daemon_pod(ds, template, n, ref))
                                             for n in batch), return_exceptions=True)
            failed = [r for r in results if isinstance(r, BaseException)]
            for result in results:
                if result is not True:  # failed, or not sent: no creation to observe
                    self.expectations.creation_observed(key)
            errors.extend(failed)
            if failed and len(creates) > pos:
                self.expectations.lower_expectations(key, len(creates) - pos, 0)
                break
        results = await asyncio.gather(*(self._delete_pod(ds, pod) for pod in deletes), return_exceptions=True)
        for result in results:
            if isinstance(result, BaseException):
                self.expectations.deletion_observed(key)
                if not isinstance(result, NotFound):
                    errors.append(result)
        if errors:
            first = errors[0]
            raise first if isinstance(first, Exception) else RuntimeError(str(first))

    async def _create_pod(self, ds: Obj, body: Obj) -> bool:
        """Create one pod; False when it was not sent because its namespace is going away."""
        try:
            pod = await self.client.create(PODS, body)
        except ServerTimeout:
            return True  # it may well exist: the informer will tell
        except ApiError as exc:
            if _namespace_terminating(exc):
                return False
            self.recorder.event(ds, "Warning", "FailedCreate", f"Error creating: {exc.message}")
            raise
        self.recorder.event(ds, "Normal", "SuccessfulCreate",
                            f"Created pod: {(pod.get('metadata') or {}).get('name')}")
        return True

    async def _delete_pod(self, ds: Obj, pod: Obj) -> None:
        meta = pod.get("metadata") or {}
        try:
            await self.client.delete(PODS, meta.get("name") or "", meta.get("namespace"))
        except NotFound:
            raise
        except ApiError as exc:
            self.recorder.event(ds, "Warning", "FailedDelete", f"Error deleting: {exc.message}")
            raise
        self.recorder.event(ds, "Normal", "SuccessfulDelete", f"Deleted pod: {meta.get('name')}")

    # -- history ------------------------------------------------------------------------------

    async def _construct_history(self, ds: Obj) -> tuple[Obj, list[Obj], int | None]:
        """(the current revision, the old ones, the collision count now in force)."""
        meta = ds.get("metadata") or {}
        ns = meta.get("namespace") or ""
        idx = self.revisions.indexer
        candidates = idx.by_index(OWNER_INDEX, meta.get("uid") or "") + idx.by_index(OWNER_INDEX, ORPHAN + ns)
        revs = await claim(self.client, REVISIONS, ds, KIND, (ds.get("spec") or {}).get("selector"), candidates,
                           can_adopt=uid_precondition(self.client, DAEMONSETS, ds))
        labelled = []
        for rev in revs:
            rmeta = rev.get("metadata") or {}
            if REVISION_HASH_LABEL not in (rmeta.get("labels") or {}):
                rev = clone(rev)
                rev["metadata"].setdefault("labels", {})[REVISION_HASH_LABEL] = rmeta.get("name") or ""
                rev = await self.client.update(REVISIONS, rev)
            labelled.append(rev)
        current, old = hist.split_revisions(ds, labelled)
        number = hist.next_revision_number(old)
        collision = (ds.get("status") or {}).get("collisionCount")
        if not current:
            holder = [int(collision or 0)]
            cur = await create_revision(self.client, hist.snapshot(ds, number, collision), holder)
            if holder[0] != int(collision or 0):
                collision = holder[0]
                await self._store_collision_count(ds, collision)
            return cur, old, collision
        cur, duplicates = hist.pick_current(current)
        for dup in duplicates:
            await self._relabel_pods(ds, hist.revision_hash(cur))
            try:
                await self.client.delete(REVISIONS, (dup.get("metadata") or {}).get("name") or "", ns)
            except NotFound:
                pass
        if int(cur.get("revision") or 0) < number:
            updated = clone(cur)
            updated["revision"] = number
            cur = await self.client.update(REVISIONS, updated)
        return cur, old, collision

    async def _store_collision_count(self, ds: Obj, collision: int) -> None:
        meta = ds.get("metadata") or {}
        fresh = await self.client.get(DAEMONSETS, meta.get("name") or "", meta.get("namespace"))
        status = fresh.setdefault("status", {})
        if int(status.get("collisionCount") or 0) < collision:
            status["collisionCount"] = collision
            await self.client.update_status(DAEMONSETS, fresh)

    async def _relabel_pods(self, ds: Obj, hash_: str) -> None:
        for pod in await self._claimed_pods(ds):
            pmeta = pod.get("metadata") or {}
            if (pmeta.get("labels") or {}).get(REVISION_HASH_LABEL) != hash_:
                patch = {"metadata": {"labels": {REVISION_HASH_LABEL: hash_}}}
                try:
                    await self.client.patch(PODS, pmeta.get("name") or "", patch, pmeta.get("namespace"),
                                            patch_type="strategic")
                except NotFound:
                    continue

    async def _cleanup_history(self, ds: Obj, old: list[Obj]) -> None:
        if len(old) <= hist.history_limit(ds):
            return
        live = [p for pods in core.group_by_node(await self._claimed_pods(ds), True).values() for p in pods]
        for rev in hist.revisions_to_prune(ds, old, live):
            rmeta = rev.get("metadata") or {}
            try:
                await self.client.delete(REVISIONS, rmeta.get("name") or "", rmeta.get("namespace"))
            except NotFound:
                continue

    # -- status -------------------------------------------------------------------------------

    async def _update_status(self, key: str, ds: Obj, nodes: list[Obj], hash_: str, observe: bool,
                             collision: int | None) -> None:
        node_to_pods = core.group_by_node(await self._claimed_pods(ds))
        counts = core.calculate_status(ds, nodes, node_to_pods, hash_, self.clock.now())
        old_collision = (ds.get("status") or {}).get("collisionCount")
        if core.status_needs_update(ds, counts) or (collision is not None and collision != old_collision):
            status = core.new_status(ds, counts, observe, collision)
            await self._write_status(ds, status)
        min_ready = int((ds.get("spec") or {}).get("minReadySeconds") or 0)
        if min_ready > 0 and counts["numberReady"] != counts["numberAvailable"]:
            self.enqueue_after(key, float(min_ready))

    async def _write_status(self, ds: Obj, status: Obj) -> None:
        """PUT the status subresource, never lowering a collision count someone else raised."""
        def keep_collisions(fresh: Obj, ours: Obj) -> Obj:
            merged = dict(ours)
            if fresh.get("collisionCount") is not None and int(fresh["collisionCount"]) > int(
                    ours.get("collisionCount") or 0):
                merged["collisionCount"] = fresh["collisionCount"]
            return merged
        await self.write_status(DAEMONSETS, ds, status, merge=keep_collisions)

def _has_selector(ds: Obj) -> bool:
    selector = (ds.get("spec") or {}).get("selector")
    return isinstance(selector, dict) and bool(selector.get("matchLabels") or selector.get("matchExpressions"))


def _namespace_terminating(exc: ApiError) -> bool:
    causes = (exc.details or {}).get("causes") or []
    if any(isinstance(c, dict) and c.get("reason") == "NamespaceTerminating" for c in causes):
        return True
    return exc.code == 403 and "because it is being terminated" in exc.message
