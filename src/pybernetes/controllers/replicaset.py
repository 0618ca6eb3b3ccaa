"""The ReplicaSet controller (``replicaset``), and the shell it shares with the
ReplicationController controller (``ReplicaSetLikeController``, parametrised by resource
and kind).

Keeps the number of active pods of each owner at ``spec.replicas``, as upstream v1.32's
replicaset controller does:

- pod events enqueue the owner named by the pod's controller reference; an orphan pod wakes
  every owner in its namespace whose selector matches it (it may be adopted); a label or
  controller-reference change wakes the old owner and the new ones;
- expectations (``UIDTrackingExpectations``): a sync that created or deleted pods does not
  act again until the informer has seen those creations/deletions (or 5 minutes passed);
- ``sync``: claim the active pods (adopt matching orphans, release owned pods that no
  longer match: ``refmanager.claim``), create missing pods in slow-start batches (1, 2, 4,
  ... at most ``burst_replicas`` = 500 per sync; a batch with a failure ends the run) from
  the template with generateName ``<owner>-`` and a controller reference, or delete the
  surplus in upstream's order (``replicaset_core.pods_to_delete``); then write the status
  through the status subresource when it changed, and look again after minReadySeconds
  while availableReplicas lags;
- Events as upstream words them: SuccessfulCreate "Created pod: x", SuccessfulDelete
  "Deleted pod: x", FailedCreate "Error creating: ...", FailedDelete "Error deleting: ...";
  a failed create or delete also sets the ReplicaFailure condition, and the sync is retried
  with backoff (other owners are served meanwhile).

The decisions themselves are pure functions in ``replicaset_core``.
Options (in ``ctx.options[<controller name>]``, else ``ctx.options``): ``burst_replicas``
(500), ``max_concurrent_writes`` (32: pod creates/deletes in flight at once — each needs its
own HTTP/1.1 connection, where client-go multiplexes a batch on one HTTP/2 connection).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, ClassVar

from pybernetes.client.cache import object_of
from pybernetes.client.errors import ApiError, NotFound, ServerTimeout
from pybernetes.client.expectations import UIDTrackingExpectations
from pybernetes.controllers import replicaset_core as core
from pybernetes.controllers.base import Controller, Obj, key_of, split_key
from pybernetes.controllers.podutil import controller_ref, is_pod_ready, new_controller_ref, pod_from_template
from pybernetes.controllers.refmanager import claim, owners_of_update, uid_precondition
from pybernetes.machinery.meta import clone, is_being_deleted
from pybernetes.machinery.selectors import SelectorParseError, label_selector_from_dict

log = logging.getLogger(__name__)

PODS = "/v1/pods"
POD_OWNER_INDEX = "replicaset-pods-by-owner"  # shared by the ReplicaSet and RC controllers
ORPHAN = "orphan/"
MAX_CONCURRENT_WRITES = 32


def pod_owner_index(pod: Obj) -> list[str]:
    """A pod's controller uid, or ``orphan/<namespace>`` for a pod without a controller."""
    ref = controller_ref(pod)
    if ref is not None:
        return [str(ref.get("uid") or "")]
    return [ORPHAN + ((pod.get("metadata") or {}).get("namespace") or "")]


def _group(api_version: str) -> str:
    return api_version.rpartition("/")[0]


class ReplicaSetLikeController(Controller):
    """The shared shell: subclasses set the resource, kind and how to read the selector."""

    resource: ClassVar[str] = "apps/v1/replicasets"
    api_version: ClassVar[str] = "apps/v1"
    kind: ClassVar[str] = "ReplicaSet"
    default_workers = 5

    # -- what differs between ReplicaSets and ReplicationControllers ---------------------------

    def selector_of(self, owner: Obj) -> Obj | None:
        """The owner's selector as a metav1 LabelSelector."""
        return (owner.get("spec") or {}).get("selector")

    # -- set-up and event handlers ------------------------------------------------------------

    def setup(self) -> None:
        own = self.options.get(self.name)
        opts = own if isinstance(own, dict) else {}
        self.burst_replicas = int(opts.get("burst_replicas", self.options.get("burst_replicas",
                                                                              core.BURST_REPLICAS)))
        # In-flight pod writes of this controller at once: over HTTP/1.1 each needs its own
        # connection (client-go multiplexes them on HTTP/2); a batch of 256 must not open 256.
        self.write_slots = asyncio.Semaphore(int(opts.get("max_concurrent_writes", self.options.get(
            "max_concurrent_writes", MAX_CONCURRENT_WRITES))))
        self.expectations = UIDTrackingExpectations()
        self.owner_ref_kind = {"apiVersion": self.api_version, "kind": self.kind}
        self.owners = self.informer(self.resource)
        self.owners.add_event_handler(self._owner_added, self._owner_updated, self._owner_deleted)
        self.pods = self.informer(PODS, indexers={POD_OWNER_INDEX: pod_owner_index})
        self.pods.add_event_handler(self._pod_added, self._pod_updated, self._pod_deleted)

    def _owner_added(self, owner: Obj) -> None:
        self.enqueue(owner)

    def _owner_updated(self, old: Obj, new: Obj) -> None:
        if (old.get("metadata") or {}).get("uid") != (new.get("metadata") or {}).get("uid"):
            self._owner_deleted(old)  # replaced under the same name
        self.enqueue(new)

    def _owner_deleted(self, item: Any) -> None:
        owner = object_of(item)
        key = key_of(owner)
        self.expectations.delete_expectations(key)
        self.enqueue(key)

    def _resolve(self, namespace: str, ref: Obj | None) -> Obj | None:
        """The owner a controller reference names, if it is one of ours and still the same."""
        if ref is None or ref.get("kind") != self.kind or _group(ref.get("apiVersion") or "") != _group(
                self.api_version):
            return None
        owner = self.owners.indexer.get(f"{namespace}/{ref.get('name')}")
        if owner is None or (owner.get("metadata") or {}).get("uid") != ref.get("uid"):
            return None
        return owner

    def _matching_owners(self, pod: Obj) -> list[Obj]:
        ns = (pod.get("metadata") or {}).get("namespace") or ""
        return core.matching_owners(pod, self.owners.indexer.by_namespace(ns), self.selector_of)

    def _pod_added(self, pod: Obj) -> None:
        meta = pod.get("metadata") or {}
        if meta.get("deletionTimestamp"):
            self._pod_deleted(pod)  # already going: not a creation to observe
            return
        ref = controller_ref(pod)
        if ref is not None:
            owner = self._resolve(meta.get("namespace") or "", ref)
            if owner is not None:
                key = key_of(owner)
                self.expectations.creation_observed(key)
                self.enqueue(key)
            return
        for owner in self._matching_owners(pod):
            self.enqueue(owner)

    def _pod_updated(self, old: Obj, cur: Obj) -> None:
        old_meta, cur_meta = old.get("metadata") or {}, cur.get("metadata") or {}
        if old_meta.get("resourceVersion") == cur_meta.get("resourceVersion"):
            return  # a resync
        labels_changed = (old_meta.get("labels") or {}) != (cur_meta.get("labels") or {})
        if cur_meta.get("deletionTimestamp"):
            self._pod_deleted(cur)
            if labels_changed:
                self._pod_deleted(old)
            return
        previous, owner, candidates = owners_of_update(old, cur, self._resolve, self._matching_owners)
        if previous is not None:
            self.enqueue(previous)
        if owner is not None:
            self.enqueue(owner)
            min_ready = int((owner.get("spec") or {}).get("minReadySeconds") or 0)
            if min_ready > 0 and is_pod_ready(cur) and not is_pod_ready(old):
                self.enqueue_after(owner, min_ready + 1.0)
        for candidate in candidates:
            self.enqueue(candidate)

    def _pod_deleted(self, item: Any) -> None:
        pod = object_of(item)
        ref = controller_ref(pod)
        if ref is None:
            return
        owner = self._resolve((pod.get("metadata") or {}).get("namespace") or "", ref)
        if owner is None:
            return
        key = key_of(owner)
        self.expectations.deletion_observed(key, key_of(pod))
        self.enqueue(key)

    # -- the sync -----------------------------------------------------------------------------

    async def sync(self, key: str) -> None:
        owner = self.owners.indexer.get(key)
        if owner is None:
            self.expectations.delete_expectations(key)
            return
        needs_sync = self.expectations.satisfied(key)
        selector = self.selector_of(owner)
        try:
            label_selector_from_dict(selector or {})
        except SelectorParseError as exc:
            self.recorder.event(owner, "Warning", "InvalidSelector", f"invalid selector: {exc}")
            return
        uid = (owner.get("metadata") or {}).get("uid") or ""
        ns, _ = split_key(key)
        candidates = core.active_pods(self._owned_or_orphan(uid, ns or ""))
        pods = await claim(self.client, PODS, owner, self.owner_ref_kind, selector, candidates,
                           can_adopt=uid_precondition(self.client, self.resource, owner))
        manage_error: Exception | None = None
        if needs_sync and not is_being_deleted(owner):
            manage_error = await self._manage_replicas(key, owner, pods)
        template_labels = (((owner.get("spec") or {}).get("template") or {}).get("metadata") or {}).get(
            "labels") or {}
        status = core.calculate_status(owner, pods, template_labels,
                                       None if manage_error is None else str(manage_error), self.clock.now())
        updated = await self._write_status(owner, status)
        if manage_error is not None:
            raise manage_error
        if updated is not None:
            delay = core.availability_requeue(updated)
            if delay is not None:
                self.enqueue_after(key, delay)

    def _owned_or_orphan(self, uid: str, namespace: str) -> list[Obj]:
        indexer = self.pods.indexer
        owned = indexer.by_index(POD_OWNER_INDEX, uid) if uid else []
        return owned + indexer.by_index(POD_OWNER_INDEX, ORPHAN + namespace)

    async def _manage_replicas(self, key: str, owner: Obj, pods: list[Obj]) -> Exception | None:
        spec = owner.get("spec") or {}
        desired = int(spec.get("replicas") if spec.get("replicas") is not None else 1)
        diff = core.replica_diff(len(pods), desired, self.burst_replicas)
        if diff > 0:
            self.expectations.expect_creations(key, diff)
            created, error = await self._create_pods(owner, diff)
            for _ in range(diff - created):  # never sent: no creation will be observed
                self.expectations.creation_observed(key)
            return error
        if diff < 0:
            related = self._related_pods(owner)
            victims = core.pods_to_delete(pods, related, -diff, self.clock.now())
            self.expectations.expect_deletions(key, [key_of(p) for p in victims])
            results = await asyncio.gather(*(self._delete_pod(owner, p) for p in victims),
                                           return_exceptions=True)
            error = None
            for pod, result in zip(victims, results, strict=True):
                if isinstance(result, BaseException):
                    self.expectations.deletion_observed(key, key_of(pod))
                    if not isinstance(result, NotFound) and error is None:
                        error = result if isinstance(result, Exception) else RuntimeError(str(result))
            return error
        return None

    async def _create_pods(self, owner: Obj, count: int) -> tuple[int, Exception | None]:
        """Create ``count`` pods in slow-start batches; (how many were sent, first error)."""
        template = (owner.get("spec") or {}).get("template") or {}
        meta = owner.get("metadata") or {}
        ref = new_controller_ref(owner, self.api_version, self.kind)
        body = pod_from_template(template, namespace=meta.get("namespace") or "", owner_ref=ref,
                                 generate_name=core.pod_name_prefix(meta.get("name") or ""))
        sent = 0
        for size in core.slow_start_batches(count):
            results = await asyncio.gather(*(self._create_pod(owner, body) for _ in range(size)),
                                           return_exceptions=True)
            errors = [r for r in results if isinstance(r, BaseException)]
            sent += size - len(errors)
            if errors:
                first = errors[0]
                return sent, first if isinstance(first, Exception) else RuntimeError(str(first))
        return sent, None

    async def _create_pod(self, owner: Obj, body: Obj) -> None:
        if not (body.get("metadata") or {}).get("labels"):
            error = RuntimeError("unable to create pods, no labels")
            self.recorder.event(owner, "Warning", "FailedCreate", f"Error creating: {error}")
            raise error
        try:
            async with self.write_slots:
                pod = await self.client.create(PODS, clone(body))
        except ServerTimeout:
            return  # the pod may well exist: the informer will tell
        except ApiError as exc:
            if _namespace_terminating(exc):
                return  # the namespace is going away: nothing to report
            self.recorder.event(owner, "Warning", "FailedCreate", f"Error creating: {exc.message}")
            raise
        self.recorder.event(owner, "Normal", "SuccessfulCreate",
                            f"Created pod: {(pod.get('metadata') or {}).get('name')}")

    async def _delete_pod(self, owner: Obj, pod: Obj) -> None:
        meta = pod.get("metadata") or {}
        try:
            async with self.write_slots:
                await self.client.delete(PODS, meta.get("name") or "", meta.get("namespace"))
        except NotFound:
            raise
        except ApiError as exc:
            self.recorder.event(owner, "Warning", "FailedDelete", f"Error deleting: {exc.message}")
            raise
        self.recorder.event(owner, "Normal", "SuccessfulDelete", f"Deleted pod: {meta.get('name')}")

    def _related_pods(self, owner: Obj) -> list[Obj]:
        """Pods of this owner and of its siblings (owners with the same controller), for the
        co-location rank (upstream getIndirectlyRelatedPods)."""
        ns = (owner.get("metadata") or {}).get("namespace") or ""
        parent = controller_ref(owner)
        owners = [owner]
        if parent is not None:
            owners = [o for o in self.owners.indexer.by_namespace(ns)
                      if (controller_ref(o) or {}).get("uid") == parent.get("uid")] or [owner]
        seen: dict[str, Obj] = {}
        for o in owners:
            for pod in self.pods.indexer.by_index(POD_OWNER_INDEX, (o.get("metadata") or {}).get("uid") or ""):
                seen[(pod.get("metadata") or {}).get("uid") or key_of(pod)] = pod
        return list(seen.values())

    async def _write_status(self, owner: Obj, status: Obj) -> Obj | None:
        """PUT the status subresource when it changed; the owner as it now is (None when it
        is gone)."""
        if not core.status_needs_update(owner, status):
            return owner
        return await self.write_status(self.resource, owner, core.with_observed_generation(owner, status))

def _namespace_terminating(exc: ApiError) -> bool:
    causes = (exc.details or {}).get("causes") or []
    if any(isinstance(c, dict) and c.get("reason") == "NamespaceTerminating" for c in causes):
        return True
    return exc.code == 403 and "because it is being terminated" in exc.message


class ReplicaSetController(ReplicaSetLikeController):
    name: ClassVar[str] = "replicaset"
    component: ClassVar[str] = "replicaset-controller"
