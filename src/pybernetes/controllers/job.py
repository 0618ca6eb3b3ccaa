"""The Job controller (``job``, events from ``job-controller``): runs pods until a Job's
completions succeed, as upstream v1.32's pkg/controller/job does.

The decisions are pure (``job_sync``, ``job_status``, ``job_policy``, ``job_indexes``); this
module is the shell around them:

- informers on jobs and pods; pod events enqueue the owning job (an orphan pod wakes the
  jobs whose selector matches it), observe creation/deletion expectations and finalizer
  removals; a pod still holding ``batch.kubernetes.io/job-tracking`` whose job is gone or
  finished is queued (``pod:<ns>/<name>``) to have the finalizer removed;
- ``sync``: claim pods (adopt/release), assess, then either delete the active pods of a
  finishing job (keeping their finalizers) or manage the pod count (suspend deletes active
  pods; create pods in slow-start batches — Indexed pods named ``<job>-<index>-xxxxx`` with
  the completion-index annotation/label, ``JOB_COMPLETION_INDEX`` and hostname — or wait out
  the failure backoff), and then the two-phase tracking: write the newly finished pods into
  ``status.uncountedTerminatedPods`` (with the interim FailureTarget / SuccessCriteriaMet
  condition), remove their finalizers, write the counters and, once nothing is uncounted or
  terminating, Complete or Failed;
- a cache that lags behind a status this controller wrote is not acted on (the job's update
  event comes back with the fresh object), so a pod is never counted twice.

Options: ``job_backoff_base`` (seconds, default 10) — the first pod-failure backoff, doubled
per consecutive failure up to 6 minutes.  Time comes only from ``self.clock.now()``.
"""

from __future__ import annotations

import asyncio
import copy
import logging
from typing import Any

from pybernetes.client.cache import object_of
from pybernetes.client.errors import ApiError, Forbidden, NotFound
from pybernetes.client.expectations import ControllerExpectations
from pybernetes.controllers import job_indexes as ix
from pybernetes.controllers.base import Controller, Obj, key_of
from pybernetes.controllers.job_status import (
    TRACKING_FINALIZER,
    BackoffRecord,
    has_tracking_finalizer,
    is_finished,
    is_indexed,
    is_suspended,
    remove_finalizer_patch,
    uid,
)
from pybernetes.controllers.job_sync import JobSync, ManagePlan, clean_uncounted, tidy_status
from pybernetes.controllers.podutil import (
    controller_ref,
    is_pod_ready,
    new_controller_ref,
    pod_from_template,
    selector_matches,
)
from pybernetes.controllers.refmanager import claim, uid_precondition

log = logging.getLogger(__name__)

JOBS = "batch/v1/jobs"
PODS = "/v1/pods"
JOB_KIND = {"apiVersion": "batch/v1", "kind": "Job"}
POD_OWNER_INDEX = "job-pods-by-owner"
ORPHAN_PREFIX = "pod:"
OWN_MANAGER = "kubernetes.io/job-controller"
SLOW_START_INITIAL_BATCH = 1


def pod_owner_index(pod: Obj) -> list[str]:
    """``uid:<job uid>`` for a pod controlled by a Job, ``orphan:<ns>`` for one without a
    controller (it may be adopted)."""
    ref = controller_ref(pod)
    if ref is None:
        return ["orphan:" + str((pod.get("metadata") or {}).get("namespace") or "")]
    if ref.get("kind") == "Job":
        return ["uid:" + str(ref.get("uid") or "")]
    return []


def _resource_version(obj: Obj) -> int:
    rv = str((obj.get("metadata") or {}).get("resourceVersion") or "")
    return int(rv) if rv.isdigit() else 0


class JobController(Controller):
    name = "job"
    component = "job-controller"
    default_workers = 5

    def setup(self) -> None:
        self.expectations = ControllerExpectations()
        self.removals_in_flight: dict[str, set[str]] = {}  # job key -> pod uids
        self.backoff_records: dict[str, BackoffRecord] = {}
        self.written_versions: dict[str, int] = {}
        self.backoff_base = float(self.options.get("job_backoff_base", 10.0))
        self.jobs = self.informer(JOBS)
        self.jobs.add_event_handler(self._on_job_add, self._on_job_update, self._on_job_delete)
        self.pods = self.informer(PODS, indexers={POD_OWNER_INDEX: pod_owner_index})
        self.pods.add_event_handler(self._on_pod_add, self._on_pod_update, self._on_pod_delete)

    # -- lookups -------------------------------------------------------------------------------

    def _resolve(self, namespace: str, ref: Obj) -> Obj | None:
        if ref.get("kind") != "Job":
            return None
        job = self.jobs.indexer.get(f"{namespace}/{ref.get('name')}")
        if job is None or uid(job) != ref.get("uid"):
            return None
        return job

    def _jobs_selecting(self, pod: Obj) -> list[Obj]:
        meta = pod.get("metadata") or {}
        labels = meta.get("labels") or {}
        return [job for job in self.jobs.indexer.by_namespace(meta.get("namespace") or "")
                if selector_matches((job.get("spec") or {}).get("selector"), labels)]

    def _enqueue_orphan(self, pod: Obj) -> None:
        self.queue.add(ORPHAN_PREFIX + key_of(pod))

    def _cleanup_finalizers(self, job: Obj) -> None:
        for pod in self.pods.indexer.by_index(POD_OWNER_INDEX, "uid:" + uid(job)):
            if has_tracking_finalizer(pod):
                self._enqueue_orphan(pod)

    def _removal_observed(self, job_key: str, pod_uid: str) -> None:
        pending = self.removals_in_flight.get(job_key)
        if pending is not None:
            pending.discard(pod_uid)
            if not pending:
                del self.removals_in_flight[job_key]

    # -- job events ----------------------------------------------------------------------------

    def _on_job_add(self, job: Obj) -> None:
        self.enqueue(job)
        if is_finished(job):
            self._cleanup_finalizers(job)

    def _on_job_update(self, old: Obj, new: Obj) -> None:
        self.enqueue(new)
        if is_finished(new):
            self._cleanup_finalizers(new)

    def _on_job_delete(self, item: Any) -> None:
        job = object_of(item)
        self.enqueue(job)
        self._cleanup_finalizers(job)

    # -- pod events ----------------------------------------------------------------------------

    def _owner_for_event(self, pod: Obj) -> Obj | None:
        """The pod's active job; queues the pod for finalizer removal when its job is gone or
        finished."""
        ref = controller_ref(pod)
        job = self._resolve((pod.get("metadata") or {}).get("namespace") or "", ref) if ref else None
        if job is None or is_finished(job):
            if has_tracking_finalizer(pod) and (ref is None or ref.get("kind") == "Job"):
                self._enqueue_orphan(pod)
            return None
        return job

    def _on_pod_add(self, pod: Obj) -> None:
        if (pod.get("metadata") or {}).get("deletionTimestamp"):
            self._on_pod_delete(pod, final=False)
            return
        if controller_ref(pod) is None:
            if has_tracking_finalizer(pod):
                self._enqueue_orphan(pod)
            for job in self._jobs_selecting(pod):
                self.enqueue(job)
            return
        job = self._owner_for_event(pod)
        if job is not None:
            self.expectations.creation_observed(key_of(job))
            self.enqueue(job)

    def _on_pod_update(self, old: Obj, new: Obj) -> None:
        old_meta, new_meta = old.get("metadata") or {}, new.get("metadata") or {}
        if old_meta.get("resourceVersion") == new_meta.get("resourceVersion"):
            return
        if new_meta.get("deletionTimestamp"):
            self._on_pod_delete(new, final=False)
            return
        finalizer_removed = has_tracking_finalizer(old) and not has_tracking_finalizer(new)
        old_ref, new_ref = controller_ref(old), controller_ref(new)
        if old_ref != new_ref and old_ref is not None:
            previous = self._resolve(old_meta.get("namespace") or "", old_ref)
            if previous is not None:
                if finalizer_removed:
                    self._removal_observed(key_of(previous), uid(new))
                self.enqueue(previous)
        if new_ref is not None:
            job = self._owner_for_event(new)
            if job is not None:
                if finalizer_removed:
                    self._removal_observed(key_of(job), uid(new))
                self.enqueue(job)
            return
        if has_tracking_finalizer(new):
            self._enqueue_orphan(new)
        if old_meta.get("labels") != new_meta.get("labels") or old_ref != new_ref:
            for job in self._jobs_selecting(new):
                self.enqueue(job)

    def _on_pod_delete(self, item: Any, final: bool = True) -> None:
        pod = object_of(item)
        ref = controller_ref(pod)
        if ref is None:
            if has_tracking_finalizer(pod) and not final:
                self._enqueue_orphan(pod)
            return
        job = self._resolve((pod.get("metadata") or {}).get("namespace") or "", ref)
        if job is None or is_finished(job):
            if has_tracking_finalizer(pod) and not final:
                self._enqueue_orphan(pod)
            return
        job_key = key_of(job)
        self.expectations.deletion_observed(job_key)
        if final or not has_tracking_finalizer(pod):
            self._removal_observed(job_key, uid(pod))
        self.enqueue(job)

    # -- sync ----------------------------------------------------------------------------------

    async def sync(self, key: str) -> None:
        if key.startswith(ORPHAN_PREFIX):
            await self._sync_orphan_pod(key[len(ORPHAN_PREFIX):])
        else:
            await self._sync_job(key)

    async def _sync_orphan_pod(self, pod_key: str) -> None:
        """Remove the tracking finalizer of a pod no running Job accounts for."""
        pod = self.pods.indexer.get(pod_key)
        if pod is None or not has_tracking_finalizer(pod):
            return
        ref = controller_ref(pod)
        if ref is not None:
            if ref.get("kind") != "Job" or ref.get("apiVersion") != "batch/v1":
                return
            job = self._resolve((pod.get("metadata") or {}).get("namespace") or "", ref)
            if job is not None and not is_finished(job):
                return
            if job is not None and (job.get("spec") or {}).get("managedBy") not in (None, OWN_MANAGER):
                return
        await self._remove_finalizer(pod)

    async def _remove_finalizer(self, pod: Obj) -> None:
        meta = pod.get("metadata") or {}
        try:
            await self.client.patch(PODS, meta.get("name", ""), remove_finalizer_patch(), meta.get("namespace"),
                                    patch_type="strategic")
        except NotFound:
            pass

    async def _sync_job(self, key: str) -> None:
        cached = self.jobs.indexer.get(key)
        if cached is None:
            self.expectations.delete_expectations(key)
            self.removals_in_flight.pop(key, None)
            self.backoff_records.pop(key, None)
            self.written_versions.pop(key, None)
            return
        if (cached.get("spec") or {}).get("managedBy") not in (None, OWN_MANAGER):
            return
        if is_finished(cached):
            self.backoff_records.pop(key, None)
            return
        if _resource_version(cached) < self.written_versions.get(key, 0):
            return  # the cache has not seen our last status write yet; its event will requeue
        job = copy.deepcopy(cached)
        if (job.get("spec") or {}).get("completionMode") not in (None, "NonIndexed", "Indexed"):
            self.recorder.event(job, "Warning", "UnknownCompletionMode",
                                "Skipped Job sync because completion mode is unknown")
            return
        satisfied = self.expectations.satisfied(key)
        pods = await self._pods_for_job(job)
        original_status = tidy_status(copy.deepcopy(job.get("status") or {}))
        sync = JobSync(job, pods, self.clock.now(),
                       expected_removals=frozenset(self.removals_in_flight.get(key, ())),
                       backoff=self.backoff_records.get(key), backoff_base=self.backoff_base)
        sync.assess()
        if sync.requeue_after is not None:
            self.enqueue_after(key, sync.requeue_after)
        manage_error: Exception | None = None
        if sync.finished_condition is not None:
            deleted, deleted_ready, manage_error = await self._delete_pods(job, sync.active_pods,
                                                                           remove_finalizer=False)
            if deleted != sync.active or not satisfied:
                sync.finished_condition = None  # pods may still appear or hold finalizers
            sync.active -= deleted
            sync.terminating += deleted
            sync.ready -= deleted_ready
        else:
            managed = False
            if satisfied and not (job.get("metadata") or {}).get("deletionTimestamp"):
                manage_error = await self._manage(key, job, sync)
                managed = True
            if sync.is_complete():
                sync.finished_condition = sync.success_condition()
            elif managed and sync.set_suspended(is_suspended(job)):
                if is_suspended(job):
                    self.recorder.event(job, "Normal", "Suspended", "Job suspended")
                else:
                    self.recorder.event(job, "Normal", "Resumed", "Job resumed")
        sync.status["active"] = sync.active
        sync.status["ready"] = sync.ready
        sync.status["terminating"] = sync.terminating
        await self._track(key, sync, original_status)
        if manage_error is not None:
            raise manage_error

    async def _pods_for_job(self, job: Obj) -> list[Obj]:
        meta = job.get("metadata") or {}
        selector = (job.get("spec") or {}).get("selector")
        owned = self.pods.indexer.by_index(POD_OWNER_INDEX, "uid:" + uid(job))
        orphans = [p for p in self.pods.indexer.by_index(POD_OWNER_INDEX, "orphan:" + (meta.get("namespace") or ""))
                   if selector_matches(selector, (p.get("metadata") or {}).get("labels") or {})]
        owned_uids = {uid(p) for p in owned}
        pods = await claim(self.client, PODS, job, JOB_KIND, selector, owned + orphans,
                           can_adopt=uid_precondition(self.client, JOBS, job))
        out = []
        for pod in pods:
            if uid(pod) not in owned_uids and not has_tracking_finalizer(pod):
                # An adopted pod is tracked as if it had the finalizer (as upstream).
                pod = copy.deepcopy(pod)
                pod["metadata"].setdefault("finalizers", []).append(TRACKING_FINALIZER)
            out.append(pod)
        return out

    # -- acting on pods ------------------------------------------------------------------------

    async def _delete_pods(self, job: Obj, pods: list[Obj], *, remove_finalizer: bool
                           ) -> tuple[int, int, Exception | None]:
        """Delete ``pods`` (first removing their finalizer when asked): (deleted, deleted
        ready, the first error)."""
        key = key_of(job)

        async def delete(pod: Obj) -> Exception | None:
            meta = pod["metadata"]
            try:
                if remove_finalizer and has_tracking_finalizer(pod):
                    await self._remove_finalizer(pod)
                await self.client.delete(PODS, meta["name"], meta.get("namespace"),
                                         preconditions={"uid": meta.get("uid")})
            except NotFound:
                if remove_finalizer:
                    self.expectations.deletion_observed(key)
                return None
            except ApiError as exc:
                if remove_finalizer:
                    self.expectations.deletion_observed(key)
                self.recorder.event(job, "Warning", "FailedDelete", f"Error deleting: {exc.message}")
                return exc
            self.recorder.event(job, "Normal", "SuccessfulDelete", f"Deleted pod: {meta['name']}")
            return None

        results = await asyncio.gather(*(delete(p) for p in pods))
        errors = [e for e in results if e is not None]
        deleted = len(pods) - len(errors)
        deleted_ready = sum(1 for p, e in zip(pods, results, strict=True) if e is None and is_pod_ready(p))
        return deleted, deleted_ready, errors[0] if errors else None

    async def _manage(self, key: str, job: Obj, sync: JobSync) -> Exception | None:
        plan: ManagePlan = sync.manage_plan()
        if plan.delay > 0:
            self.enqueue_after(key, plan.delay)
            return None
        if plan.delete:
            self.expectations.expect_deletions(key, len(plan.delete))
            removed, removed_ready, err = await self._delete_pods(job, plan.delete, remove_finalizer=True)
            sync.active -= removed
            sync.terminating += removed
            sync.ready -= removed_ready
            return err
        if plan.create:
            return await self._create_pods(key, job, sync, plan.create)
        return None

    def _pod_for(self, job: Obj, template: Obj, index: int | None, sync: JobSync) -> Obj:
        meta = job["metadata"]
        generate_name = f"{meta['name']}-"
        if index is not None:
            template = copy.deepcopy(template)
            ix.stamp_index(template, meta["name"], index)
            if sync.spec.get("backoffLimitPerIndex") is not None:
                ix.stamp_failure_counts(template, *sync.new_index_failure_counts(index))
            generate_name = ix.generate_name_for_index(meta["name"], index)
        return pod_from_template(template, namespace=meta["namespace"],
                                 owner_ref=new_controller_ref(job, "batch/v1", "Job"),
                                 generate_name=generate_name)

    async def _create_pods(self, key: str, job: Obj, sync: JobSync, indexes: list[int | None]) -> Exception | None:
        template = copy.deepcopy((job.get("spec") or {}).get("template") or {})
        if is_indexed(job):
            ix.add_completion_index_env(template)
        tmeta = template.setdefault("metadata", {})
        finalizers = tmeta.setdefault("finalizers", [])
        if TRACKING_FINALIZER not in finalizers:
            finalizers.append(TRACKING_FINALIZER)
        self.expectations.expect_creations(key, len(indexes))
        sync.active += len(indexes)
        namespace = job["metadata"]["namespace"]
        first_error: Exception | None = None

        async def create(index: int | None) -> Exception | None:
            try:
                created = await self.client.create(PODS, self._pod_for(job, template, index, sync), namespace)
            except ApiError as exc:
                self.expectations.creation_observed(key)
                sync.active -= 1
                if isinstance(exc, Forbidden) and "being terminated" in exc.message:
                    return None  # the namespace is going away: nothing more to create
                self.recorder.event(job, "Warning", "FailedCreate", f"Error creating: {exc.message}")
                return exc
            self.recorder.event(job, "Normal", "SuccessfulCreate",
                                f"Created pod: {created['metadata']['name']}")
            return None

        pending = list(indexes)
        batch = min(len(pending), SLOW_START_INITIAL_BATCH)
        while pending:
            current, pending = pending[:batch], pending[batch:]
            errors = [e for e in await asyncio.gather(*(create(i) for i in current)) if e is not None]
            if errors:
                first_error = first_error or errors[0]
                for _ in pending:  # skipped: not expected any more
                    self.expectations.creation_observed(key)
                sync.active -= len(pending)
                break
            batch = min(2 * batch, len(pending))
        return first_error

    # -- status tracking -----------------------------------------------------------------------

    async def _write_status(self, key: str, sync: JobSync) -> None:
        body = dict(sync.job)
        body["status"] = tidy_status(sync.status)
        updated = await self.client.update_status(JOBS, body)
        self.written_versions[key] = _resource_version(updated)
        # Keep working on our own copy of the status, with the server's metadata.
        sync.job["metadata"] = updated.get("metadata") or sync.job.get("metadata")

    async def _track(self, key: str, sync: JobSync, original_status: Obj) -> None:
        plan = sync.track()
        if tidy_status(sync.status) != original_status:
            await self._write_status(key, sync)
            self.backoff_records[key] = sync.new_backoff
        flush = False
        removal_error: Exception | None = None
        if plan.remove_finalizer:
            in_flight = self.removals_in_flight.setdefault(key, set())
            in_flight.update(uid(p) for p in plan.remove_finalizer)

            async def remove(pod: Obj) -> Exception | None:
                try:
                    await self._remove_finalizer(pod)
                except ApiError as exc:
                    self._removal_observed(key, uid(pod))
                    return exc
                return None

            results = await asyncio.gather(*(remove(p) for p in plan.remove_finalizer))
            for pod, err in zip(plan.remove_finalizer, results, strict=True):
                if err is None:
                    plan.uids_with_finalizer.discard(uid(pod))
                elif removal_error is None:
                    removal_error = err
        if clean_uncounted(sync.status, plan.uids_with_finalizer):
            flush = True
        if removal_error is not None:
            if flush:
                await self._write_status(key, sync)
            raise removal_error
        finished = not plan.reached_max and sync.enact_finished()
        if flush or finished:
            await self._write_status(key, sync)
            if finished:
                self._record_finished(sync)

    def _record_finished(self, sync: JobSync) -> None:
        cond = sync.finished_condition or {}
        job = sync.job
        if cond.get("type") == "Complete":
            completions = sync.spec.get("completions")
            if completions is not None and int(sync.status.get("succeeded") or 0) > int(completions):
                self.recorder.event(job, "Warning", "TooManySucceededPods",
                                    "Too many succeeded pods running after completion count reached")
            self.recorder.event(job, "Normal", "Completed", "Job completed")
        else:
            self.recorder.event(job, "Warning", cond.get("reason", ""), cond.get("message", ""))
