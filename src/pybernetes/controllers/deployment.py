"""The Deployment controller: rolls a Deployment's pod template out through ReplicaSets
(upstream's pkg/controller/deployment, v1.32).

One sync of ``namespace/name``, as upstream's syncDeployment:

1. a Deployment selecting everything gets a SelectingAll Warning and nothing else;
2. it claims its ReplicaSets (adoption and release by selector, ``refmanager.claim``);
3. a Deployment being deleted only gets its status written;
4. a pause or resume is recorded in the Progressing condition (DeploymentPaused /
   DeploymentResumed);
5. a paused Deployment, or a change of spec.replicas, is *scaled*: proportionally across
   its active ReplicaSets during a rollout (``deployment_rolling.plan_scale``);
6. otherwise it rolls out: RollingUpdate (new ReplicaSet up within maxSurge, old ones down
   while ``replicas - maxUnavailable`` stay available) or Recreate (old ReplicaSets to 0,
   wait for their pods to be gone, then the new one), then cleans up ReplicaSets beyond
   revisionHistoryLimit once complete, and writes status with the Progressing, Available
   and ReplicaFailure conditions (``deployment_progress``).

The new ReplicaSet is ``<name>-<pod-template-hash>``; the hash is the template's (with
status.collisionCount), its label is on the ReplicaSet's selector, template and labels.  A
ReplicaSet whose template (ignoring that label) is the Deployment's is reused — that is how
``kubectl rollout undo`` (a client-side template patch) brings an old ReplicaSet back,
raising its revision annotation and keeping the old ones in revision-history.

The pure decisions live in deployment_util, deployment_rolling and deployment_progress;
this module reads the informer caches and makes the API calls.
"""

from __future__ import annotations

import copy
import logging
from typing import Any

from pybernetes.client.cache import object_of
from pybernetes.client.errors import AlreadyExists, ApiError, Forbidden, NotFound
from pybernetes.controllers import deployment_progress as dp
from pybernetes.controllers import deployment_rolling as dr
from pybernetes.controllers import deployment_util as du
from pybernetes.controllers.base import Controller, Obj, key_of
from pybernetes.controllers.podutil import controller_ref, selector_matches
from pybernetes.controllers.refmanager import claim, uid_precondition

log = logging.getLogger(__name__)

DEPLOYMENTS = ("apps", "v1", "deployments")
REPLICASETS = ("apps", "v1", "replicasets")
PODS = ("", "v1", "pods")
DEADLINE_SLACK = 0.05  # seconds past a progress deadline to look again


class InvalidDeployment(Exception):
    """A Deployment the controller cannot act on (reported as a Warning, not retried)."""


class DeploymentController(Controller):
    name = "deployment"
    component = "deployment-controller"
    default_workers = 5

    def setup(self) -> None:
        self.deployments = self.informer(DEPLOYMENTS)
        self.replicasets = self.informer(REPLICASETS)
        self.pods = self.informer(PODS)
        self.deployments.add_event_handler(self.enqueue, lambda old, new: self.enqueue(new),
                                           lambda obj: self.enqueue(object_of(obj)))
        self.replicasets.add_event_handler(self._rs_added, self._rs_updated, self._rs_deleted)
        self.pods.add_event_handler(None, None, self._pod_deleted)

    # -- event handlers (they only enqueue) ------------------------------------------------------

    def _owner_of(self, obj: Obj, kind: str, informer: Any) -> Obj | None:
        ref = controller_ref(obj)
        if ref is None or ref.get("kind") != kind:
            return None
        ns = (obj.get("metadata") or {}).get("namespace")
        owner = informer.indexer.get(f"{ns}/{ref.get('name')}")
        if owner is None or (owner.get("metadata") or {}).get("uid") != ref.get("uid"):
            return None
        return owner

    def _matching_deployments(self, rs: Obj) -> list[Obj]:
        meta = rs.get("metadata") or {}
        labels = meta.get("labels") or {}
        return [d for d in self.deployments.indexer.by_namespace(meta.get("namespace") or "")
                if _selector_usable((d.get("spec") or {}).get("selector"))
                and selector_matches((d.get("spec") or {}).get("selector"), labels)]

    def _rs_added(self, rs: Obj) -> None:
        owner = self._owner_of(rs, "Deployment", self.deployments)
        if owner is not None:
            self.enqueue(owner)
            return
        if controller_ref(rs) is None:
            for d in self._matching_deployments(rs):
                self.enqueue(d)

    def _rs_updated(self, old: Obj, cur: Obj) -> None:
        if (old.get("metadata") or {}).get("resourceVersion") == (cur.get("metadata") or {}).get("resourceVersion"):
            return
        old_ref, cur_ref = controller_ref(old), controller_ref(cur)
        if old_ref != cur_ref and old_ref is not None:
            owner = self._owner_of(old, "Deployment", self.deployments)
            if owner is not None:
                self.enqueue(owner)
        if cur_ref is not None:
            owner = self._owner_of(cur, "Deployment", self.deployments)
            if owner is not None:
                self.enqueue(owner)
            return
        if old_ref != cur_ref or (old.get("metadata") or {}).get("labels") != (cur.get("metadata") or {}).get("labels"):
            for d in self._matching_deployments(cur):
                self.enqueue(d)

    def _rs_deleted(self, item: Any) -> None:
        owner = self._owner_of(object_of(item), "Deployment", self.deployments)
        if owner is not None:
            self.enqueue(owner)

    def _pod_deleted(self, item: Any) -> None:
        """A Recreate rollout waits for the old pods to be gone."""
        pod = object_of(item)
        rs = self._owner_of(pod, "ReplicaSet", self.replicasets)
        if rs is None:
            return
        d = self._owner_of(rs, "Deployment", self.deployments)
        if d is not None and du.is_recreate(d):
            self.enqueue(d)

    # -- the sync ----------------------------------------------------------------------------

    async def sync(self, key: str) -> None:
        cached = self.deployments.indexer.get(key)
        if cached is None:
            return
        d = copy.deepcopy(cached)
        try:
            await self._sync(key, d)
        except InvalidDeployment as exc:
            self.recorder.event(cached, "Warning", "InvalidDeployment", str(exc))

    async def _sync(self, key: str, d: Obj) -> None:
        meta = d.get("metadata") or {}
        if not _selector_usable((d.get("spec") or {}).get("selector")):
            self.recorder.event(d, "Warning", "SelectingAll",
                                "This deployment is selecting all pods. A non-empty selector is required.")
            status = d.setdefault("status", {})
            if du.int_of(status.get("observedGeneration")) < du.int_of(meta.get("generation")):
                status["observedGeneration"] = meta.get("generation")
                await self._write_status(d)
            return
        try:
            du.max_surge(d)
            du.max_unavailable(d)
        except ValueError as exc:
            raise InvalidDeployment(f"invalid rolling update parameters: {exc}") from None
        rss = await self._claim_replica_sets(d)
        if meta.get("deletionTimestamp"):
            new_rs, old = await self._new_and_old(d, rss, create=False)
            await self._sync_status(d, [*old, new_rs], new_rs)
            return
        await self._check_paused(d)
        if (d.get("spec") or {}).get("paused"):
            await self._scale_and_status(d, rss)
            return
        new_rs, old = await self._new_and_old(d, rss, create=False)
        if dr.is_scaling_event(d, new_rs, old):
            await self._scale_and_status(d, rss)
            return
        if du.is_recreate(d):
            await self._rollout_recreate(key, d, rss)
        else:
            await self._rollout_rolling(key, d, rss)

    # -- ReplicaSets -------------------------------------------------------------------------

    async def _claim_replica_sets(self, d: Obj) -> list[Obj]:
        ns = (d.get("metadata") or {}).get("namespace") or ""
        candidates = self.replicasets.indexer.by_namespace(ns)
        owned = await claim(self.client, REPLICASETS, d, du.DEPLOYMENT_KIND,
                            (d.get("spec") or {}).get("selector"), candidates,
                            can_adopt=uid_precondition(self.client, DEPLOYMENTS, d))
        return [copy.deepcopy(rs) for rs in owned]

    async def _new_and_old(self, d: Obj, rss: list[Obj], create: bool) -> tuple[Obj | None, list[Obj]]:
        """The new ReplicaSet (created when ``create``; its revision synced) and every other
        (upstream getAllReplicaSetsAndSyncRevision)."""
        old = du.old_replica_sets(du.find_new_replica_set(d, rss), rss)
        new_rs = await self._new_replica_set(d, rss, old, create)
        if new_rs is not None:
            old = du.old_replica_sets(new_rs, old)
        return new_rs, old

    async def _new_replica_set(self, d: Obj, rss: list[Obj], old: list[Obj], create: bool) -> Obj | None:
        existing = du.find_new_replica_set(d, rss)
        new_revision = du.max_revision(old) + 1
        if existing is not None:
            rs = copy.deepcopy(existing)
            changed = du.set_new_replica_set_annotations(d, rs, new_revision, exists=True)
            if changed or du.min_ready_seconds(rs) != du.min_ready_seconds(d):
                rs.setdefault("spec", {})["minReadySeconds"] = du.min_ready_seconds(d)
                return await self.client.update(REPLICASETS, rs)
            needs_update = du.set_deployment_revision(d, du.annotations(rs).get(du.REVISION, ""))
            if du.has_progress_deadline(d) and du.get_condition(d.get("status"), du.PROGRESSING) is None:
                du.set_deployment_condition(d.setdefault("status", {}), du.new_condition(
                    du.PROGRESSING, "True", du.FOUND_NEW_RS,
                    f'Found new replica set "{rs["metadata"]["name"]}"', self.clock.now()))
                needs_update = True
            if needs_update:
                await self._write_status(d)
            return rs
        if not create:
            return None
        new_rs = du.new_replica_set(d, 0, new_revision)
        size = dr.new_rs_new_replicas(d, [*old, new_rs], new_rs)
        new_rs["spec"]["replicas"] = size
        name = new_rs["metadata"]["name"]
        ns = new_rs["metadata"]["namespace"]
        already = False
        try:
            created = await self.client.create(REPLICASETS, new_rs, ns)
        except AlreadyExists:
            found = await self.client.get(REPLICASETS, name, ns)
            ref = controller_ref(found)
            if ref is not None and ref.get("uid") == d["metadata"].get("uid") and du.equal_ignore_hash(
                    (found.get("spec") or {}).get("template"), (d.get("spec") or {}).get("template")):
                created, already = found, True
            else:
                status = d.setdefault("status", {})
                status["collisionCount"] = du.int_of(status.get("collisionCount")) + 1
                await self._write_status(d)
                log.info("deployment %s: hash collision with replica set %s; collisionCount %d",
                         key_of(d), name, status["collisionCount"])
                raise
        except Forbidden:
            raise  # e.g. the namespace is being deleted: retried, no condition
        except ApiError as exc:
            msg = f'Failed to create new replica set "{name}": {exc.message}'
            if du.has_progress_deadline(d):
                du.set_deployment_condition(d.setdefault("status", {}), du.new_condition(
                    du.PROGRESSING, "False", du.FAILED_RS_CREATE, msg, self.clock.now()))
                try:
                    await self._write_status(d)
                except ApiError:
                    pass
            self.recorder.event(d, "Warning", du.FAILED_RS_CREATE, msg)
            raise
        if not already and size > 0:
            self.recorder.event(d, "Normal", "ScalingReplicaSet",
                                f"Scaled up replica set {name} from 0 to {size}")
        needs_update = du.set_deployment_revision(d, str(new_revision))
        if not already and du.has_progress_deadline(d):
            du.set_deployment_condition(d.setdefault("status", {}), du.new_condition(
                du.PROGRESSING, "True", du.NEW_RS_CREATED, f'Created new replica set "{name}"',
                self.clock.now()))
            needs_update = True
        if needs_update:
            await self._write_status(d)
        return created

    async def _scale(self, d: Obj, rs: Obj, size: int) -> Obj:
        """Set ``rs`` to ``size`` replicas (and its desired-/max-replicas annotations); the
        updated ReplicaSet.  A ScalingReplicaSet event when the size changed."""
        desired = du.spec_replicas(d)
        max_replicas = desired + du.max_surge(d)
        current = du.spec_replicas(rs)
        if current == size and not du.replicas_annotations_need_update(rs, desired, max_replicas):
            return rs
        updated = copy.deepcopy(rs)
        updated.setdefault("spec", {})["replicas"] = size
        du.set_replicas_annotations(updated, desired, max_replicas)
        result = await self.client.update(REPLICASETS, updated)
        if current != size:
            direction = "up" if size > current else "down"
            self.recorder.event(d, "Normal", "ScalingReplicaSet",
                                f"Scaled {direction} replica set {rs['metadata']['name']} from {current} to {size}")
        return result

    async def _apply(self, d: Obj, steps: list[dr.Step], rss: list[Obj]) -> list[Obj]:
        """Apply scaling steps in order; ``rss`` with the updated ReplicaSets in place."""
        by_name = {rs["metadata"]["name"]: rs for rs in rss if rs is not None}
        for rs, size in steps:
            current = by_name.get(rs["metadata"]["name"], rs)
            by_name[rs["metadata"]["name"]] = await self._scale(d, current, size)
        return [by_name[rs["metadata"]["name"]] if rs is not None else None for rs in rss]

    async def _cleanup(self, d: Obj, old: list[Obj]) -> None:
        for rs in dr.plan_cleanup(d, old):
            meta = rs["metadata"]
            try:
                await self.client.delete(REPLICASETS, meta["name"], meta.get("namespace"),
                                         preconditions={"uid": meta.get("uid")})
            except NotFound:
                continue

    # -- status --------------------------------------------------------------------------------

    async def _write_status(self, d: Obj) -> None:
        """Write ``d``'s status (and annotations); ``d`` becomes what the API answered."""
        result = await self.client.update_status(DEPLOYMENTS, d)
        d.clear()
        d.update(result)

    async def _sync_status(self, d: Obj, all_rss: list[Obj | None], new_rs: Obj | None) -> None:
        status = dp.calculate_status(d, [rs for rs in all_rss if rs is not None], new_rs, self.clock.now())
        if dp.status_changed(d.get("status"), status):
            d["status"] = status
            await self._write_status(d)

    async def _sync_rollout_status(self, key: str, d: Obj, all_rss: list[Obj | None], new_rs: Obj | None) -> None:
        now = self.clock.now()
        rss = [rs for rs in all_rss if rs is not None]
        status = dp.rollout_status(d, rss, new_rs, now)
        if not dp.status_changed(d.get("status"), status):
            after = dp.requeue_after(d, status, now)
            if after is not None:
                # Within a second of the deadline: look again just after it (upstream requeues
                # rate-limited, which spins until the second has passed).
                self.enqueue_after(key, after if after >= 1.0 else after + DEADLINE_SLACK)
            return
        d["status"] = status
        await self._write_status(d)

    async def _check_paused(self, d: Obj) -> None:
        cond = dp.paused_condition(d, self.clock.now())
        if cond is not None:
            du.set_deployment_condition(d.setdefault("status", {}), cond)
            await self._write_status(d)

    # -- the three ways a sync goes ------------------------------------------------------------

    async def _scale_and_status(self, d: Obj, rss: list[Obj]) -> None:
        """A paused Deployment or a replicas change (upstream's sync)."""
        new_rs, old = await self._new_and_old(d, rss, create=False)
        everyone = await self._apply(d, dr.plan_scale(d, new_rs, old), [*old, new_rs])
        new_rs = everyone[-1]
        old = [rs for rs in everyone[:-1] if rs is not None]
        if (d.get("spec") or {}).get("paused"):
            await self._cleanup(d, old)
        await self._sync_status(d, everyone, new_rs)

    async def _rollout_rolling(self, key: str, d: Obj, rss: list[Obj]) -> None:
        new_rs, old = await self._new_and_old(d, rss, create=True)
        assert new_rs is not None
        everyone = [*old, new_rs]
        steps = dr.plan_new_replica_set(d, everyone, new_rs)
        if not steps:
            steps = dr.plan_old_replica_sets(d, everyone, old, new_rs)
        if steps:
            everyone = await self._apply(d, steps, everyone)
            await self._sync_rollout_status(key, d, everyone, everyone[-1])
            return
        if dp.deployment_complete(d, d.get("status") or {}):
            await self._cleanup(d, old)
        await self._sync_rollout_status(key, d, everyone, new_rs)

    async def _rollout_recreate(self, key: str, d: Obj, rss: list[Obj]) -> None:
        new_rs, old = await self._new_and_old(d, rss, create=False)
        everyone: list[Obj | None] = [*old, new_rs]
        steps = dr.plan_recreate_scale_down(old)
        if steps:
            everyone = await self._apply(d, steps, everyone)
            await self._sync_rollout_status(key, d, everyone, new_rs)
            return
        ns = (d.get("metadata") or {}).get("namespace") or ""
        selector = (d.get("spec") or {}).get("selector")
        pods = [p for p in self.pods.indexer.by_namespace(ns)
                if selector_matches(selector, (p.get("metadata") or {}).get("labels"))]
        if dr.old_pods_running(new_rs, old, dr.pods_by_replica_set(rss, pods)):
            await self._sync_rollout_status(key, d, everyone, new_rs)
            return
        if new_rs is None:
            new_rs, old = await self._new_and_old(d, rss, create=True)
            everyone = [*old, new_rs]
        assert new_rs is not None
        if du.spec_replicas(new_rs) != du.spec_replicas(d):
            everyone = await self._apply(d, [(new_rs, du.spec_replicas(d))], everyone)
            new_rs = everyone[-1]
        if dp.deployment_complete(d, d.get("status") or {}):
            await self._cleanup(d, old)
        await self._sync_rollout_status(key, d, everyone, new_rs)


def _selector_usable(selector: Any) -> bool:
    """A selector that selects something in particular (not empty, not missing)."""
    return isinstance(selector, dict) and bool(selector.get("matchLabels") or selector.get("matchExpressions"))

