"""The StatefulSet controller (``statefulset``): pods with stable names, storage and order, as
upstream v1.32's pkg/controller/statefulset does it.

- Event handlers only enqueue: StatefulSet changes; pod events for the owning set (an orphan
  pod wakes the sets of its namespace whose selector matches; a pod turning ready wakes its
  set again after minReadySeconds); a claim deleted wakes the sets whose claims it may be
  (a new pod waits for the claim of an earlier pod of its name to go).
- ``sync``: claim the ControllerRevisions and the pods (adopt matching orphans named
  ``<set>-<ordinal>``, release the others), find or create the update revision (an equal
  older revision is rolled forward with a new number; a name clash bumps
  ``status.collisionCount``) and the current one, plan the sync
  (``statefulset_plan.plan_sync``) and carry it out: claims are created before their pod,
  the retention policy is kept in the claims' ownerReferences, deletions use the pod's uid
  as a precondition.  Under OrderedReady the units run one after another, under Parallel in
  slow-start batches (1, 2, 4, ...); a failing call stops the sync, which is retried.
- Then the status (replicas, readyReplicas, currentReplicas, updatedReplicas,
  availableReplicas, revisions, observedGeneration, collisionCount) is written when it
  changed, and revisions beyond revisionHistoryLimit that no pod uses are deleted.
- Events on the set: SuccessfulCreate / FailedCreate ("create Pod web-0 in StatefulSet web
  successful", "create Claim data-web-0 Pod web-0 in StatefulSet web success"),
  SuccessfulDelete / FailedDelete, SuccessfulUpdate / FailedUpdate, RecreatingFailedPod,
  RecreatingTerminatedPod; Warning InvalidSelector for a selector that cannot be read.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, ClassVar

from pybernetes.client.cache import object_of
from pybernetes.client.errors import AlreadyExists, ApiError, Conflict, NotFound
from pybernetes.controllers import statefulset_core as core
from pybernetes.controllers.base import Controller, Obj, key_of
from pybernetes.controllers.history import (
    CONTROLLER_REVISIONS,
    create_revision,
    max_revision,
    new_revision,
    sort_revisions,
)
from pybernetes.controllers.podutil import controller_ref, is_pod_ready, pod_ready_time, selector_matches
from pybernetes.controllers.refmanager import claim, owners_of_update, uid_precondition
from pybernetes.controllers.statefulset_plan import (
    CREATE,
    CREATE_CLAIMS,
    DELETE,
    UPDATE_CLAIMS,
    UPDATE_POD,
    Action,
    Plan,
    plan_sync,
)
from pybernetes.controllers.statefulset_pvc import (
    SET_KIND,
    claim_templates,
    claim_update,
    claims_for,
    template_name,
)
from pybernetes.machinery.meta import clone
from pybernetes.machinery.selectors import SelectorParseError, label_selector_from_dict

log = logging.getLogger(__name__)

STATEFULSETS = "apps/v1/statefulsets"
PODS = "/v1/pods"
CLAIMS = "/v1/persistentvolumeclaims"
REVISIONS = CONTROLLER_REVISIONS
OWNER_INDEX = "statefulset-by-owner"
ORPHAN = "orphan/"


def owner_index(obj: Obj) -> list[str]:
    """An object's controller uid, or ``orphan/<namespace>`` when it has none."""
    ref = controller_ref(obj)
    if ref is not None:
        return [str(ref.get("uid") or "")]
    return [ORPHAN + ((obj.get("metadata") or {}).get("namespace") or "")]


def _name(obj: Obj) -> str:
    return (obj.get("metadata") or {}).get("name") or ""


def _slow_start(count: int) -> list[int]:
    sizes, size, left = [], 1, count
    while left > 0:
        sizes.append(min(size, left))
        left -= sizes[-1]
        size *= 2
    return sizes


class StatefulSetController(Controller):
    name: ClassVar[str] = "statefulset"
    component: ClassVar[str] = "statefulset-controller"
    default_workers = 5

    def setup(self) -> None:
        self.sets = self.informer(STATEFULSETS)
        self.sets.add_event_handler(self._set_added, self._set_updated, self._set_deleted)
        self.pods = self.informer(PODS, indexers={OWNER_INDEX: owner_index})
        self.pods.add_event_handler(self._pod_added, self._pod_updated, self._pod_deleted)
        self.revisions = self.informer(REVISIONS, indexers={OWNER_INDEX: owner_index})
        self.claims = self.informer(CLAIMS)
        self.claims.add_event_handler(None, self._claim_updated, self._claim_deleted)

    # -- events -------------------------------------------------------------------------------

    def _set_added(self, sts: Obj) -> None:
        self.enqueue(sts)

    def _set_updated(self, old: Obj, cur: Obj) -> None:
        self.enqueue(cur)

    def _set_deleted(self, item: Any) -> None:
        self.enqueue(key_of(object_of(item)))

    def _resolve(self, namespace: str, ref: Obj | None) -> Obj | None:
        if ref is None or ref.get("kind") != "StatefulSet":
            return None
        sts = self.sets.indexer.get(f"{namespace}/{ref.get('name')}")
        if sts is None or (sts.get("metadata") or {}).get("uid") != ref.get("uid"):
            return None
        return sts

    def _selecting(self, pod: Obj) -> list[Obj]:
        meta = pod.get("metadata") or {}
        return [s for s in self.sets.indexer.by_namespace(meta.get("namespace") or "")
                if selector_matches((s.get("spec") or {}).get("selector"), meta.get("labels") or {})]

    def _pod_added(self, pod: Obj) -> None:
        meta = pod.get("metadata") or {}
        if meta.get("deletionTimestamp"):
            self._pod_deleted(pod)
            return
        sts = self._resolve(meta.get("namespace") or "", controller_ref(pod))
        if sts is not None:
            self.enqueue(sts)
        elif controller_ref(pod) is None:
            for sts in self._selecting(pod):
                self.enqueue(sts)

    def _pod_updated(self, old: Obj, cur: Obj) -> None:
        if (old.get("metadata") or {}).get("resourceVersion") == (cur.get("metadata") or {}).get("resourceVersion"):
            return
        previous, current, adopters = owners_of_update(old, cur, self._resolve, self._selecting)
        if previous is not None:
            self.enqueue(previous)
        if current is not None:
            self.enqueue(current)
            min_ready = core.min_ready_seconds(current)
            if min_ready > 0 and is_pod_ready(cur) and not is_pod_ready(old):
                self.enqueue_after(current, min_ready + 0.05)
        for sts in adopters:
            self.enqueue(sts)

    def _pod_deleted(self, item: Any) -> None:
        pod = object_of(item)
        sts = self._resolve((pod.get("metadata") or {}).get("namespace") or "", controller_ref(pod))
        if sts is not None:
            self.enqueue(sts)

    def _claim_sets(self, claim_obj: Obj) -> list[Obj]:
        meta = claim_obj.get("metadata") or {}
        name = meta.get("name") or ""
        return [s for s in self.sets.indexer.by_namespace(meta.get("namespace") or "")
                if any(name.startswith(f"{template_name(t)}-{_name(s)}-") for t in claim_templates(s))]

    def _claim_updated(self, old: Obj, cur: Obj) -> None:
        if (old.get("metadata") or {}).get("ownerReferences") != (cur.get("metadata") or {}).get("ownerReferences"):
            for sts in self._claim_sets(cur):
                self.enqueue(sts)

    def _claim_deleted(self, item: Any) -> None:
        for sts in self._claim_sets(object_of(item)):
            self.enqueue(sts)

    # -- the sync -----------------------------------------------------------------------------

    async def sync(self, key: str) -> None:
        sts = self.sets.indexer.get(key)
        if sts is None:
            return
        try:
            label_selector_from_dict((sts.get("spec") or {}).get("selector"))
        except (SelectorParseError, TypeError, ValueError, AttributeError) as exc:
            self.recorder.event(sts, "Warning", "InvalidSelector", f"invalid selector: {exc}")
            return  # not transient: wait for the set to change
        revisions = await self._claim_revisions(sts)
        pods = await self._claim_pods(sts)
        current, update, collision = await self._find_revisions(sts, revisions)
        ns = (sts.get("metadata") or {}).get("namespace") or ""
        claims = {_name(c): c for c in self.claims.indexer.by_namespace(ns)}
        now = self.clock.now()
        plan = plan_sync(sts, pods, claims, current, update, now)
        if plan.blocked:
            log.debug("statefulset %s: %s", key, plan.blocked)
        error: Exception | None = None
        try:
            await self._execute(sts, plan, claims)
        except Exception as exc:  # noqa: BLE001 - the status is still written, then the sync retried
            error = exc
        status = self._new_status(sts, plan, current, update, collision)
        try:
            await self._write_status(sts, status)
            await self._truncate_history(sts, pods, revisions, current, update)
        except Exception:
            if error is None:
                raise
            log.debug("statefulset %s: status/history update failed after an error", key, exc_info=True)
        if error is not None:
            raise error
        self._requeue_for_availability(key, sts, pods, status, now)

    def _requeue_for_availability(self, key: str, sts: Obj, pods: list[Obj], status: Obj, now: float) -> None:
        """With minReadySeconds, look again when the next ready pod becomes available."""
        min_ready = core.min_ready_seconds(sts)
        if min_ready <= 0 or status.get("availableReplicas") == core.replicas_of(sts):
            return
        waits = [since + min_ready - now for p in pods if core.is_running_and_ready(p)
                 for since in [pod_ready_time(p)] if since is not None and since + min_ready > now]
        self.enqueue_after(key, (min(waits) + 0.05) if waits else float(min_ready))

    # -- ownership ----------------------------------------------------------------------------

    def _candidates(self, informer: Any, sts: Obj) -> list[Obj]:
        meta = sts.get("metadata") or {}
        idx = informer.indexer
        return idx.by_index(OWNER_INDEX, meta.get("uid") or "") + idx.by_index(
            OWNER_INDEX, ORPHAN + (meta.get("namespace") or ""))

    async def _claim_revisions(self, sts: Obj) -> list[Obj]:
        return await claim(self.client, REVISIONS, sts, SET_KIND, (sts.get("spec") or {}).get("selector"),
                           self._candidates(self.revisions, sts),
                           can_adopt=uid_precondition(self.client, STATEFULSETS, sts))

    async def _claim_pods(self, sts: Obj) -> list[Obj]:
        """The set's pods: matching its selector and named ``<set>-<ordinal>``; owned pods
        that are neither are released."""
        uid = (sts.get("metadata") or {}).get("uid")
        members, strangers = [], []
        for pod in self._candidates(self.pods, sts):
            (members if core.is_member(sts, pod) else strangers).append(pod)
        owned = await claim(self.client, PODS, sts, SET_KIND, (sts.get("spec") or {}).get("selector"), members,
                            can_adopt=uid_precondition(self.client, STATEFULSETS, sts))
        for pod in strangers:
            if (controller_ref(pod) or {}).get("uid") != uid or (sts.get("metadata") or {}).get("deletionTimestamp"):
                continue
            meta = pod.get("metadata") or {}
            patch = {"metadata": {"ownerReferences": [{"$patch": "delete", "uid": uid}], "uid": meta.get("uid")}}
            try:
                await self.client.patch(PODS, meta.get("name") or "", patch, meta.get("namespace"),
                                        patch_type="strategic")
            except NotFound:
                continue
        return owned

    # -- revisions ----------------------------------------------------------------------------

    async def _find_revisions(self, sts: Obj, revisions: list[Obj]) -> tuple[Obj, Obj, int]:
        """(current revision, update revision, collision count) — upstream
        getStatefulSetRevisions."""
        revisions = sort_revisions(revisions)
        collision = int((sts.get("status") or {}).get("collisionCount") or 0)
        labels = dict((((sts.get("spec") or {}).get("template") or {}).get("metadata") or {}).get("labels") or {})
        number = max_revision(revisions) + 1
        candidate = new_revision(sts, SET_KIND, core.revision_data(sts), number, collision, labels)
        equal = [r for r in revisions if core.same_data(r, candidate)]
        if equal and revisions[-1] is equal[-1]:
            update = revisions[-1]
        elif equal:
            rolled = clone(equal[-1])
            rolled["revision"] = number
            update = await self.client.update(REVISIONS, rolled)
        else:
            holder = [collision]
            update = await create_revision(self.client, candidate, holder)
            collision = holder[0]
        wanted = (sts.get("status") or {}).get("currentRevision")
        current = next((r for r in revisions if _name(r) == wanted), None) if wanted else None
        return current or update, update, collision

    async def _truncate_history(self, sts: Obj, pods: list[Obj], revisions: list[Obj], current: Obj,
                                update: Obj) -> None:
        live = {_name(current), _name(update)} | {core.pod_revision(p) for p in pods}
        for rev in core.revisions_to_prune(sts, sort_revisions(revisions), live):
            try:
                await self.client.delete(REVISIONS, _name(rev), (rev.get("metadata") or {}).get("namespace"))
            except NotFound:
                continue

    # -- carrying out the plan ------------------------------------------------------------------

    async def _execute(self, sts: Obj, plan: Plan, claims: dict[str, Obj]) -> None:
        for phase in plan.phases:
            if plan.monotonic:
                for unit in phase.units:
                    await self._run_unit(sts, unit, claims)
                continue
            pos = 0
            for size in _slow_start(len(phase.units)):
                batch, pos = phase.units[pos:pos + size], pos + size
                results = await asyncio.gather(*(self._run_unit(sts, u, claims) for u in batch),
                                               return_exceptions=True)
                errors = [r for r in results if isinstance(r, BaseException)]
                if errors:
                    first = errors[0]
                    raise first if isinstance(first, Exception) else RuntimeError(str(first))

    async def _run_unit(self, sts: Obj, unit: list[Action], claims: dict[str, Obj]) -> None:
        for action in unit:
            if action.kind == DELETE:
                await self._delete_pod(sts, action)
            elif action.kind == CREATE:
                await self._create_pod(sts, action.pod, claims)
            elif action.kind == CREATE_CLAIMS:
                await self._create_claims(sts, action.pod, claims)
            elif action.kind == UPDATE_POD:
                await self._update_pod(sts, action, claims)
            elif action.kind == UPDATE_CLAIMS:
                await self._write_claims(sts, action.pod, action.claims)

    def _pod_event(self, verb: str, sts: Obj, pod: Obj, error: Exception | None = None) -> None:
        reason = verb.capitalize()
        if error is None:
            self.recorder.event(sts, "Normal", f"Successful{reason}",
                                f"{verb} Pod {_name(pod)} in StatefulSet {_name(sts)} successful")
        else:
            self.recorder.event(sts, "Warning", f"Failed{reason}",
                                f"{verb} Pod {_name(pod)} in StatefulSet {_name(sts)} failed error: {_message(error)}")

    def _claim_event(self, verb: str, sts: Obj, pod: Obj, claim_obj: Obj, error: Exception | None = None) -> None:
        reason = verb.capitalize()
        if error is None:
            self.recorder.event(sts, "Normal", f"Successful{reason}",
                                f"{verb} Claim {_name(claim_obj)} Pod {_name(pod)} in StatefulSet {_name(sts)} success")
        else:
            self.recorder.event(sts, "Warning", f"Failed{reason}",
                                f"{verb} Claim {_name(claim_obj)} for Pod {_name(pod)} in StatefulSet "
                                f"{_name(sts)} failed error: {_message(error)}")

    async def _delete_pod(self, sts: Obj, action: Action) -> None:
        pod = action.pod
        meta = pod.get("metadata") or {}
        ns = meta.get("namespace")
        if action.reason == "failed":
            self.recorder.event(sts, "Warning", "RecreatingFailedPod",
                                f"StatefulSet {ns}/{_name(sts)} is recreating failed Pod {_name(pod)}")
        elif action.reason == "succeeded":
            self.recorder.event(sts, "Normal", "RecreatingTerminatedPod",
                                f"StatefulSet {ns}/{_name(sts)} is recreating terminated Pod {_name(pod)}")
        try:
            await self.client.delete(PODS, _name(pod), ns, preconditions={"uid": meta.get("uid")})
        except NotFound:
            return
        except ApiError as exc:
            self._pod_event("delete", sts, pod, exc)
            raise
        self._pod_event("delete", sts, pod)

    async def _create_claims(self, sts: Obj, pod: Obj, claims: dict[str, Obj]) -> None:
        """Create the pod's claims that do not exist yet (before the pod); a claim that is
        being deleted is an error (the pod must not start on storage about to vanish)."""
        problems: list[str] = []
        for wanted in claims_for(sts, core.ordinal_of(pod)).values():
            name = _name(wanted)
            existing = claims.get(name)
            if existing is not None:
                if (existing.get("metadata") or {}).get("deletionTimestamp"):
                    problems.append(f"pvc {name} is being deleted")
                continue
            try:
                claims[name] = await self.client.create(CLAIMS, wanted)
            except AlreadyExists:
                try:
                    claims[name] = await self.client.get(CLAIMS, name, (wanted.get("metadata") or {}).get("namespace"))
                except NotFound:
                    problems.append(f"failed to create PVC {name}: it vanished")
                continue
            except ApiError as exc:
                self._claim_event("create", sts, pod, wanted, exc)
                problems.append(f"failed to create PVC {name}: {_message(exc)}")
                continue
            self._claim_event("create", sts, pod, wanted)
        if problems:
            raise RuntimeError("; ".join(problems))

    async def _create_pod(self, sts: Obj, pod: Obj, claims: dict[str, Obj]) -> None:
        try:
            await self._create_claims(sts, pod, claims)
        except RuntimeError as exc:
            self._pod_event("create", sts, pod, exc)
            raise
        try:
            created = await self.client.create(PODS, pod)
        except AlreadyExists:
            raise  # the informer has not caught up (or the old pod is still going): retry
        except ApiError as exc:
            self._pod_event("create", sts, pod, exc)
            raise
        self._pod_event("create", sts, pod)
        fixes = [u for c in claims_for(sts, core.ordinal_of(pod)).values()
                 if (existing := claims.get(_name(c))) is not None
                 and (u := claim_update(existing, sts, created, True)) is not None]
        await self._write_claims(sts, created, fixes)

    async def _update_pod(self, sts: Obj, action: Action, claims: dict[str, Obj]) -> None:
        pod = clone(action.pod)
        changed = False
        if not core.identity_matches(sts, pod):
            core.update_identity(sts, pod)
            changed = True
        if not core.storage_matches(sts, pod):
            core.update_storage(sts, pod)
            await self._create_claims(sts, pod, claims)
            changed = True
        await self._write_claims(sts, pod, action.claims)
        if not changed:
            return
        try:
            await self.client.update(PODS, pod)
        except ApiError as exc:
            self._pod_event("update", sts, pod, exc)
            raise
        self._pod_event("update", sts, pod)

    async def _write_claims(self, sts: Obj, pod: Obj, updated: list[Obj]) -> None:
        """PUT claims whose ownerReferences the retention policy changed."""
        for body in updated:
            try:
                await self.client.update(CLAIMS, body)
            except NotFound:
                continue
            except Conflict:
                raise
            except ApiError as exc:
                self._claim_event("update", sts, pod, body, exc)
                raise

    # -- status -------------------------------------------------------------------------------

    def _new_status(self, sts: Obj, plan: Plan, current: Obj, update: Obj, collision: int) -> Obj:
        status = dict(plan.status)
        status["observedGeneration"] = int((sts.get("metadata") or {}).get("generation") or 0)
        status["currentRevision"] = _name(current)
        status["updateRevision"] = _name(update)
        status["collisionCount"] = collision
        core.complete_rolling_update(sts, status)
        conditions = (sts.get("status") or {}).get("conditions")
        if conditions:
            status["conditions"] = clone(conditions)
        return status

    async def _write_status(self, sts: Obj, status: Obj) -> None:
        if core.status_differs(sts, status):
            await self.write_status(STATEFULSETS, sts, status)

def _message(error: BaseException) -> str:
    return error.message if isinstance(error, ApiError) else str(error)

