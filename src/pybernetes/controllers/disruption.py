"""The disruption controller (upstream pkg/controller/disruption): the status of every
PodDisruptionBudget — currentHealthy, desiredHealthy, expectedPods, disruptionsAllowed,
observedGeneration, the disruptedPods the eviction API recorded (dropped once deleted or
after 2 minutes), and the DisruptionAllowed condition.

Keys are PDB keys; a pod change enqueues the budgets selecting it.  ``sync`` finds the
budget's pods, and — for maxUnavailable and percentage minAvailable — the scale of their
controllers, found as upstream does: ReplicationController, Deployment (through its
ReplicaSet), ReplicaSet, StatefulSet from the caches, any other kind through its scale
subresource.  ``disruption_core`` computes the status.  A budget whose status cannot be
computed (a pod with no controller found, a bad percentage) gets the fail-safe status:
disruptionsAllowed 0, DisruptionAllowed False with reason SyncFailed and the error.
Events come from the component "controllermanager", as upstream.

Also as upstream: a pod the eviction API marked with the condition DisruptionTarget=True but
that was not deleted within 2 minutes gets that condition set back to False (queue keys
``stale-pod:<namespace>/<name>``).
"""

from __future__ import annotations

import logging
from typing import Any, ClassVar

from pybernetes.client.cache import object_of
from pybernetes.client.errors import ApiError, Conflict, NotFound
from pybernetes.controllers.base import Controller, Obj, key_of, split_key
from pybernetes.controllers.disruption_core import (
    BudgetError,
    count_healthy,
    desired_healthy,
    disrupted_pods,
    failed_status,
    needs_scale,
    new_status,
)
from pybernetes.controllers.podutil import (
    controller_ref,
    format_time,
    parse_time,
    pod_condition,
    selector_matches,
)
from pybernetes.machinery.meta import clone

log = logging.getLogger(__name__)

PODS = "/v1/pods"
PDBS = "policy/v1/poddisruptionbudgets"
RCS = "/v1/replicationcontrollers"
REPLICASETS = "apps/v1/replicasets"
DEPLOYMENTS = "apps/v1/deployments"
STATEFULSETS = "apps/v1/statefulsets"
FAILED_SYNC_RETRY = 30.0  # seconds before a budget that failed to compute is tried again
STALE_POD_TIMEOUT = 120.0  # seconds a DisruptionTarget pod has to be deleted
STALE_POD_PREFIX = "stale-pod:"


def _group(api_version: str | None) -> str:
    group, _, _ = (api_version or "").rpartition("/")
    return group


def _replicas(obj: Obj) -> int:
    value = (obj.get("spec") or {}).get("replicas")
    return 1 if value is None else int(value)


class DisruptionController(Controller):
    name: ClassVar[str] = "disruption"
    component: ClassVar[str] = "controllermanager"

    def setup(self) -> None:
        self.pdbs = self.informer(PDBS)
        self.pods = self.informer(PODS)
        self.rcs = self.informer(RCS)
        self.replicasets = self.informer(REPLICASETS)
        self.deployments = self.informer(DEPLOYMENTS)
        self.statefulsets = self.informer(STATEFULSETS)
        self.pdbs.add_event_handler(self.enqueue, lambda old, new: self.enqueue(new),
                                    lambda obj: self.enqueue(object_of(obj)))
        self.pods.add_event_handler(self._pod_changed, lambda old, new: self._pod_updated(old, new),
                                    lambda obj: self._pod_changed(object_of(obj)))

    # -- handlers ---------------------------------------------------------------------------

    def _budgets_for(self, pod: Obj) -> list[str]:
        meta = pod.get("metadata") or {}
        labels = meta.get("labels") or {}
        return [key_of(b) for b in self.pdbs.indexer.by_namespace(meta.get("namespace") or "")
                if selector_matches((b.get("spec") or {}).get("selector"), labels)]

    def _pod_changed(self, pod: Obj) -> None:
        for key in self._budgets_for(pod):
            self.enqueue(key)
        self._check_stale_disruption(pod)

    def _check_stale_disruption(self, pod: Obj) -> None:
        since = _disruption_target_since(pod)
        if since is not None:
            self.enqueue_after(STALE_POD_PREFIX + key_of(pod), since + STALE_POD_TIMEOUT - self.clock.now())

    def _pod_updated(self, old: Obj, new: Obj) -> None:
        self._check_stale_disruption(new)
        keys = set(self._budgets_for(new))
        if (old.get("metadata") or {}).get("labels") != (new.get("metadata") or {}).get("labels"):
            keys.update(self._budgets_for(old))
        for key in keys:
            self.enqueue(key)

    # -- controllers' scale -----------------------------------------------------------------

    def _cached(self, informer: Any, ns: str, ref: Obj) -> Obj | None:
        obj = informer.indexer.get(f"{ns}/{ref.get('name')}")
        if obj is None or obj["metadata"].get("uid") != ref.get("uid"):
            return None
        return obj

    async def _scale_of(self, ref: Obj, ns: str) -> tuple[str, int] | None:
        """(uid, replicas) of the controller ``ref`` names, None when no finder knows it."""
        kind, group = ref.get("kind"), _group(ref.get("apiVersion"))
        if kind == "ReplicationController" and group == "":
            rc = self._cached(self.rcs, ns, ref)
            if rc is not None:
                return rc["metadata"]["uid"], _replicas(rc)
        if kind == "ReplicaSet" and group == "apps":
            rs = self._cached(self.replicasets, ns, ref)
            if rs is not None:
                owner = controller_ref(rs)
                if owner is not None and owner.get("kind") == "Deployment" and _group(owner.get("apiVersion")) == "apps":
                    deployment = self._cached(self.deployments, ns, owner)
                    if deployment is None:
                        return None
                    return deployment["metadata"]["uid"], _replicas(deployment)
                return rs["metadata"]["uid"], _replicas(rs)
        if kind == "StatefulSet" and group == "apps":
            sts = self._cached(self.statefulsets, ns, ref)
            if sts is not None:
                return sts["metadata"]["uid"], _replicas(sts)
        return await self._scale_subresource(ref, ns)

    async def _scale_subresource(self, ref: Obj, ns: str) -> tuple[str, int] | None:
        try:
            resource = await self.client.resource_for_kind(ref.get("apiVersion") or "", ref.get("kind") or "")
        except NotFound:
            return None
        if "scale" not in (resource.subresources or ("scale",)):
            raise BudgetError(f"{resource.resource}.{resource.group} does not implement the scale subresource")
        try:
            scale = await self.client.get(resource, ref.get("name") or "", ns, subresource="scale")
        except NotFound:
            return None
        if (scale.get("metadata") or {}).get("uid") != ref.get("uid"):
            return None
        return ref["uid"], int((scale.get("spec") or {}).get("replicas") or 0)

    async def expected_scale(self, budget: Obj, pods: list[Obj]) -> tuple[int, list[str]]:
        """The sum of the replicas of the pods' controllers, and the pods without one."""
        scales: dict[str, int] = {}
        unmanaged: list[str] = []
        for pod in pods:
            ref = controller_ref(pod)
            if ref is None:
                unmanaged.append(pod["metadata"]["name"])
                continue
            if ref.get("uid") in scales:
                continue
            found = await self._scale_of(ref, pod["metadata"]["namespace"])
            if found is None:
                raise BudgetError(f'found no controllers for pod "{pod["metadata"]["name"]}"')
            scales[found[0]] = found[1]
        return sum(scales.values()), unmanaged

    # -- sync -------------------------------------------------------------------------------

    async def sync(self, key: str) -> None:
        if key.startswith(STALE_POD_PREFIX):
            await self._sync_stale_pod(key[len(STALE_POD_PREFIX):])
            return
        budget = self.pdbs.indexer.get(key)
        if budget is None:
            return
        try:
            await self._try_sync(key, budget)
        except Conflict:
            raise
        except (BudgetError, ApiError) as exc:
            log.info("disruption: budget %s failed to sync: %s", key, exc)
            failed = failed_status(budget, str(exc), self.clock.now())
            if failed is not None:
                await self.client.update_status(PDBS, failed)
            self.enqueue_after(key, FAILED_SYNC_RETRY)

    async def _try_sync(self, key: str, budget: Obj) -> None:
        ns, _ = split_key(key)
        spec = budget.get("spec") or {}
        selector = spec.get("selector")
        pods = [p for p in self.pods.indexer.by_namespace(ns or "")
                if selector_matches(selector, (p.get("metadata") or {}).get("labels"))]
        if not pods:
            self.recorder.event(budget, "Normal", "NoPods", "No matching pods found")
        scale: int | None = None
        if needs_scale(spec):
            try:
                scale, unmanaged = await self.expected_scale(budget, pods)
            except BudgetError as exc:
                self.recorder.event(budget, "Warning", "CalculateExpectedPodCountFailed",
                                    f"Failed to calculate the number of expected pods: {exc}")
                raise
            if unmanaged:
                self.recorder.event(
                    budget, "Warning", "UnmanagedPods",
                    f"Pods selected by this PodDisruptionBudget (selector: {selector}) were found to be "
                    "unmanaged. As a result, the status of the PDB cannot be calculated correctly, which "
                    "may result in undefined behavior. To account for these pods please set "
                    '".spec.minAvailable" field of the PDB to an integer value.')
        try:
            expected, desired = desired_healthy(spec, len(pods), scale)
        except BudgetError as exc:
            self.recorder.event(budget, "Warning", "CalculateExpectedPodCountFailed",
                                f"Failed to calculate the number of expected pods: {exc}")
            raise
        now = self.clock.now()
        disrupted, recheck, overdue = disrupted_pods(pods, budget, now)
        for pod in overdue:
            self.recorder.event(pod, "Warning", "NotDeleted",
                                f"Pod was expected by PDB {key} to be deleted but it wasn't")
        healthy = count_healthy(pods, disrupted, now)
        updated = new_status(budget, healthy, desired, expected, disrupted, now)
        if updated is not None:
            await self.client.update_status(PDBS, updated)
        if recheck is not None:
            self.enqueue_after(key, max(0.0, recheck - now))

    async def _sync_stale_pod(self, key: str) -> None:
        pod = self.pods.indexer.get(key)
        if pod is None:
            return
        since = _disruption_target_since(pod)
        if since is None:
            return
        now = self.clock.now()
        if since + STALE_POD_TIMEOUT > now:
            self.enqueue_after(STALE_POD_PREFIX + key, since + STALE_POD_TIMEOUT - now)
            return
        new = clone(pod)
        for cond in new["status"]["conditions"]:
            if cond.get("type") == "DisruptionTarget":
                cond["status"] = "False"
                cond["lastTransitionTime"] = format_time(now)
        await self.client.update_status(PODS, new)


def _disruption_target_since(pod: Obj) -> float | None:
    """When a live pod was marked DisruptionTarget=True (None when it is not, or is going)."""
    if (pod.get("metadata") or {}).get("deletionTimestamp"):
        return None
    cond = pod_condition(pod, "DisruptionTarget")
    if cond is None or cond.get("status") != "True":
        return None
    return parse_time(cond.get("lastTransitionTime")) or 0.0
