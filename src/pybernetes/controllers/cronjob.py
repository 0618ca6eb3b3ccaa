"""The CronJob controller (upstream pkg/controller/cronjob, the v2 controller): starts Jobs on a
cron schedule.

Owns, per CronJob ``sync``:

- reconciling ``status.active`` with the Jobs it controls (SawCompletedJob, MissingJob,
  UnexpectedJob) and ``status.lastSuccessfulTime``;
- history: finished Jobs beyond ``successfulJobsHistoryLimit`` / ``failedJobsHistoryLimit``
  are deleted oldest first (SuccessfulDelete);
- scheduling: only the most recent missed activation is started (``cron_schedule``), in
  ``spec.timeZone``; ``startingDeadlineSeconds`` (MissSchedule when later than that), more
  than 100 misses (TooManyMissedTimes), ``suspend``, ``concurrencyPolicy`` Allow / Forbid
  (JobAlreadyActive) / Replace (active Jobs deleted, Background propagation);
- the Job: ``<cronjob>-<scheduled minutes since the epoch>`` (the name is the lock against
  starting one activation twice), the jobTemplate's labels, annotations and spec, the
  ``batch.kubernetes.io/cronjob-scheduled-timestamp`` annotation, a controller reference;
- requeueing itself for the next activation (``enqueue_after``, computed from
  ``self.clock``).  A FakeClock does not wake the work queue's real-time delays: a test that
  advances it enqueues the CronJob's key (``controller.enqueue(key)``) to make it look again.

A schedule that does not parse or an unknown time zone gives a Warning event
(UnparseableSchedule / UnknownTimeZone / InvalidSchedule) and no requeue until the object
changes.  ``kubectl create job --from=cronjob/x`` is client-side: it needs nothing here.
"""

from __future__ import annotations

import copy
import logging
from datetime import UTC, datetime
from typing import Any

from pybernetes.api.batch.cron import CronError, load_zone
from pybernetes.client.cache import object_of
from pybernetes.client.errors import AlreadyExists, ApiError, NotFound
from pybernetes.controllers.base import Controller, Obj, key_of
from pybernetes.controllers.cron_schedule import (
    TOO_MANY_MISSED,
    Schedule,
    format_go_rfc3339,
    most_recent_schedule_time,
)
from pybernetes.controllers.podutil import (
    controller_ref,
    format_time,
    get_condition,
    new_controller_ref,
    parse_time,
)

log = logging.getLogger(__name__)

JOBS = "batch/v1/jobs"
CRONJOBS = "batch/v1/cronjobs"
SCHEDULED_TIMESTAMP = "batch.kubernetes.io/cronjob-scheduled-timestamp"
OWNER_INDEX = "cronjob-controller-uid"
NEXT_SCHEDULE_DELTA = 0.1  # upstream wakes 100 ms after the activation time


# -- pure helpers ------------------------------------------------------------------------------


def job_finished_type(job: Obj) -> str | None:
    """"Complete" or "Failed" when the Job has that condition True, else None."""
    for type_ in ("Complete", "Failed"):
        cond = get_condition((job.get("status") or {}).get("conditions"), type_)
        if cond is not None and cond.get("status") == "True":
            return type_
    return None


def job_name(cronjob: Obj, scheduled: float) -> str:
    return f"{cronjob['metadata']['name']}-{int(scheduled) // 60}"


def job_from_template(cronjob: Obj, scheduled: float) -> Obj:
    """The Job for the activation at ``scheduled`` (CronError for an unknown time zone)."""
    spec = cronjob.get("spec") or {}
    template = spec.get("jobTemplate") or {}
    tmeta = template.get("metadata") or {}
    zone = load_zone(spec.get("timeZone") or "")
    annotations = dict(tmeta.get("annotations") or {})
    annotations[SCHEDULED_TIMESTAMP] = format_go_rfc3339(scheduled, zone)
    meta: Obj = {
        "name": job_name(cronjob, scheduled),
        "namespace": cronjob["metadata"].get("namespace"),
        "annotations": annotations,
        "ownerReferences": [new_controller_ref(cronjob, "batch/v1", "CronJob")],
    }
    if tmeta.get("labels"):
        meta["labels"] = dict(tmeta["labels"])
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": meta,
            "spec": copy.deepcopy(template.get("spec") or {})}


def job_reference(job: Obj) -> Obj:
    meta = job.get("metadata") or {}
    ref = {"kind": "Job", "namespace": meta.get("namespace"), "name": meta.get("name"),
           "uid": meta.get("uid"), "apiVersion": "batch/v1"}
    if meta.get("resourceVersion"):
        ref["resourceVersion"] = meta["resourceVersion"]
    return ref


def active_refs(cronjob: Obj) -> list[Obj]:
    return list((cronjob.get("status") or {}).get("active") or [])


def in_active_list(cronjob: Obj, uid: str | None) -> bool:
    return any(ref.get("uid") == uid for ref in active_refs(cronjob))


def remove_from_active(cronjob: Obj, uid: str | None) -> None:
    status = cronjob.setdefault("status", {})
    remaining = [ref for ref in active_refs(cronjob) if ref.get("uid") != uid]
    if remaining:
        status["active"] = remaining
    else:
        status.pop("active", None)


def _start_time_order(job: Obj) -> tuple[int, float, str]:
    """Oldest start first; Jobs that never started last; ties by name (upstream
    byJobStartTime)."""
    start = parse_time((job.get("status") or {}).get("startTime"))
    return (1, 0.0, job["metadata"]["name"]) if start is None else (0, start, job["metadata"]["name"])


def jobs_beyond_history(jobs: list[Obj], successful_limit: int | None,
                        failed_limit: int | None) -> list[Obj]:
    """Finished Jobs to delete: the oldest beyond each history limit (a None limit keeps all).
    Jobs already being deleted are neither counted nor returned."""
    doomed: list[Obj] = []
    for kind, limit in (("Complete", successful_limit), ("Failed", failed_limit)):
        if limit is None:
            continue
        finished = sorted((j for j in jobs if job_finished_type(j) == kind
                           and not j["metadata"].get("deletionTimestamp")), key=_start_time_order)
        excess = len(finished) - max(int(limit), 0)
        if excess > 0:
            doomed.extend(finished[:excess])
    return doomed


def earliest_time(cronjob: Obj) -> float:
    """Where counting activations starts: lastScheduleTime, else the creation time."""
    status = cronjob.get("status") or {}
    last = parse_time(status.get("lastScheduleTime"))
    if last is not None:
        return last
    return parse_time(cronjob["metadata"].get("creationTimestamp")) or 0.0


def next_requeue_delay(cronjob: Obj, schedule: Schedule, now: float) -> float | None:
    """Seconds until the activation after the most recent one (upstream
    nextScheduleTimeDuration); None when the schedule never fires again."""
    earliest = earliest_time(cronjob)
    try:
        recent, _missed = most_recent_schedule_time(schedule, earliest, now)
    except CronError:
        recent = now
    following = schedule.next_after(earliest if recent is None else recent)
    if following is None:
        return None
    return following + NEXT_SCHEDULE_DELTA - now


def rfc1123z(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).strftime("%a, %d %b %Y %H:%M:%S +0000")


def _uid(obj: Obj) -> str | None:
    return (obj.get("metadata") or {}).get("uid")


def _owner_index(job: Obj) -> list[str]:
    ref = controller_ref(job)
    if ref and ref.get("kind") == "CronJob" and str(ref.get("apiVersion", "")).startswith("batch/"):
        return [ref.get("uid") or ""]
    return []


# -- the controller ----------------------------------------------------------------------------


class CronJobController(Controller):
    name = "cronjob"
    component = "cronjob-controller"

    def setup(self) -> None:
        self.cronjobs = self.informer(CRONJOBS)
        self.cronjobs.add_event_handler(self.enqueue, lambda old, new: self.enqueue(new), None)
        self.jobs = self.informer(JOBS, indexers={OWNER_INDEX: _owner_index})
        self.jobs.add_event_handler(self._job_added, self._job_updated, self._job_deleted)

    # -- handlers: find the owning CronJob ------------------------------------------------------

    def _enqueue_owner(self, job: Obj) -> None:
        ref = controller_ref(job)
        if not ref or ref.get("kind") != "CronJob":
            return
        ns = (job.get("metadata") or {}).get("namespace")
        cronjob = self.cronjobs.indexer.get(f"{ns}/{ref.get('name')}")
        if cronjob is not None and _uid(cronjob) == ref.get("uid"):
            self.enqueue(cronjob)

    def _job_added(self, job: Obj) -> None:
        self._enqueue_owner(job)

    def _job_updated(self, old: Obj, new: Obj) -> None:
        if controller_ref(old) != controller_ref(new):
            self._enqueue_owner(old)
        self._enqueue_owner(new)

    def _job_deleted(self, item: Any) -> None:
        self._enqueue_owner(object_of(item))

    # -- sync ---------------------------------------------------------------------------------

    async def sync(self, key: str) -> None:
        cached = self.cronjobs.indexer.get(key)
        if cached is None:
            return
        cronjob = copy.deepcopy(cached)
        jobs = self.jobs.indexer.by_index(OWNER_INDEX, _uid(cronjob) or "")
        jobs = [j for j in jobs if (j.get("metadata") or {}).get("namespace") == cronjob["metadata"].get("namespace")]
        changed = await self._cleanup_finished_jobs(cronjob, jobs)
        error: BaseException | None = None
        requeue: float | None = None
        try:
            cronjob, requeue, synced_changed = await self._sync_cronjob(cronjob, jobs)
            changed = changed or synced_changed
        except _SyncFailed as failed:
            cronjob, error = failed.cronjob, failed.error
            changed = changed or failed.changed
        if changed:
            await self.client.update_status(CRONJOBS, cronjob)
        if requeue is not None:
            self.enqueue_after(key, requeue)
        elif error is not None:
            raise error

    async def _cleanup_finished_jobs(self, cronjob: Obj, jobs: list[Obj]) -> bool:
        spec = cronjob.get("spec") or {}
        successful, failed = spec.get("successfulJobsHistoryLimit"), spec.get("failedJobsHistoryLimit")
        changed = False
        for job in jobs_beyond_history(jobs, successful, failed):
            if await self._delete_job(cronjob, job):
                changed = True
        return changed

    async def _delete_job(self, cronjob: Obj, job: Obj) -> bool:
        meta = job["metadata"]
        try:
            await self.client.delete(JOBS, meta["name"], meta.get("namespace"), propagation_policy="Background")
        except NotFound:
            pass
        except ApiError as err:
            self.recorder.event(cronjob, "Warning", "FailedDelete", f"Deleted job: {err}")
            return False
        remove_from_active(cronjob, meta.get("uid"))
        self.recorder.event(cronjob, "Normal", "SuccessfulDelete", f"Deleted job {meta['name']}")
        return True

    async def _reconcile_active(self, cronjob: Obj, jobs: list[Obj]) -> tuple[Obj, bool]:
        """status.active and lastSuccessfulTime against the Jobs this CronJob controls."""
        changed = False
        children = set()
        status = cronjob.setdefault("status", {})
        for job in jobs:
            meta = job["metadata"]
            children.add(meta.get("uid"))
            found = in_active_list(cronjob, meta.get("uid"))
            finished = job_finished_type(job)
            if not found and finished is None:
                fresh = await self.client.get(CRONJOBS, cronjob["metadata"]["name"],
                                              cronjob["metadata"].get("namespace"))
                if in_active_list(fresh, meta.get("uid")):
                    cronjob, status = fresh, fresh.setdefault("status", {})
                    continue
                self.recorder.event(cronjob, "Warning", "UnexpectedJob",
                                    f"Saw a job that the controller did not create or forgot: {meta['name']}")
            elif found and finished is not None:
                remove_from_active(cronjob, meta.get("uid"))
                self.recorder.event(cronjob, "Normal", "SawCompletedJob",
                                    f"Saw completed job: {meta['name']}, condition: {finished}")
                changed = True
            elif finished == "Complete":
                done = (job.get("status") or {}).get("completionTime")
                last = parse_time(status.get("lastSuccessfulTime"))
                done_at = parse_time(done)
                if done and (last is None or (done_at is not None and done_at > last)):
                    status["lastSuccessfulTime"] = done
                    changed = True
        for ref in active_refs(cronjob):
            if ref.get("uid") in children:
                continue
            try:
                await self.client.get(JOBS, ref.get("name") or "", ref.get("namespace"))
            except NotFound:
                self.recorder.event(cronjob, "Normal", "MissingJob", f"Active job went missing: {ref.get('name')}")
                remove_from_active(cronjob, ref.get("uid"))
                changed = True
            except ApiError as err:
                raise _SyncFailed(cronjob, changed, err) from err
        return cronjob, changed

    def _schedule(self, cronjob: Obj) -> Schedule | None:
        """The parsed schedule, or None after a Warning event naming what is wrong."""
        spec = cronjob.get("spec") or {}
        text = str(spec.get("schedule") or "")
        zone = spec.get("timeZone")
        if zone is not None:
            try:
                load_zone(zone)
            except CronError as err:
                self.recorder.event(cronjob, "Warning", "UnknownTimeZone", f'invalid timeZone: "{zone}": {err}')
                return None
        if "TZ" in text:
            self.recorder.event(cronjob, "Warning", "UnsupportedSchedule",
                                f'CRON_TZ or TZ used in schedule "{text}" is not officially supported, see '
                                "https://kubernetes.io/docs/concepts/workloads/controllers/cron-jobs/ "
                                "for more details")
        try:
            return Schedule.from_spec(text, zone)
        except CronError as err:
            self.recorder.event(cronjob, "Warning", "UnparseableSchedule", f'unparseable schedule: "{text}" : {err}')
            return None

    def _report_skipped(self, cronjob: Obj, schedule: Schedule, now: float, deadline: float) -> None:
        """MissSchedule for an activation left out because it is older than the starting
        deadline (upstream folds the deadline into the search and says nothing; the event
        tells the user why no Job started)."""
        try:
            skipped, _missed = most_recent_schedule_time(schedule, earliest_time(cronjob), now)
        except CronError:
            return
        if skipped is not None and skipped + deadline < now:
            self.recorder.event(cronjob, "Warning", "MissSchedule",
                                f"Missed scheduled time to start a job: {rfc1123z(skipped)}")

    async def _sync_cronjob(self, cronjob: Obj, jobs: list[Obj]) -> tuple[Obj, float | None, bool]:
        """(the CronJob with its new status, requeue delay or None, whether status changed)."""
        now = self.clock.now()
        cronjob, changed = await self._reconcile_active(cronjob, jobs)
        spec = cronjob.get("spec") or {}
        if cronjob["metadata"].get("deletionTimestamp") or spec.get("suspend"):
            return cronjob, None, changed
        schedule = self._schedule(cronjob)
        if schedule is None:
            return cronjob, None, changed
        deadline = spec.get("startingDeadlineSeconds")
        earliest = earliest_time(cronjob)
        if deadline is not None:
            earliest = max(earliest, now - deadline)
        try:
            scheduled, missed = most_recent_schedule_time(schedule, earliest, now)
        except CronError as err:
            self.recorder.event(cronjob, "Warning", "InvalidSchedule", f"invalid schedule: {spec.get('schedule')} : {err}")
            return cronjob, None, changed
        if scheduled is None:
            if deadline is not None:
                self._report_skipped(cronjob, schedule, now, deadline)
            return cronjob, next_requeue_delay(cronjob, schedule, now), changed
        if missed > TOO_MANY_MISSED:
            self.recorder.event(cronjob, "Warning", "TooManyMissedTimes",
                                "too many missed start times. Set or decrease .spec.startingDeadlineSeconds "
                                "or check clock skew")
        if deadline is not None and scheduled + deadline < now:
            self.recorder.event(cronjob, "Warning", "MissSchedule",
                                f"Missed scheduled time to start a job: {rfc1123z(scheduled)}")
            return cronjob, next_requeue_delay(cronjob, schedule, now), changed
        name = job_name(cronjob, scheduled)
        status = cronjob.setdefault("status", {})
        if (any(ref.get("name") == name for ref in active_refs(cronjob))
                or parse_time(status.get("lastScheduleTime")) == scheduled):
            return cronjob, next_requeue_delay(cronjob, schedule, now), changed
        policy = spec.get("concurrencyPolicy") or "Allow"
        if policy == "Forbid" and active_refs(cronjob):
            self.recorder.event(cronjob, "Normal", "JobAlreadyActive",
                                "Not starting job because prior execution is running and concurrency policy is Forbid")
            return cronjob, next_requeue_delay(cronjob, schedule, now), changed
        if policy == "Replace":
            for ref in active_refs(cronjob):
                try:
                    job = await self.client.get(JOBS, ref.get("name") or "", ref.get("namespace"))
                except ApiError as err:
                    self.recorder.event(cronjob, "Warning", "FailedGet", f"Get job: {err}")
                    raise _SyncFailed(cronjob, changed, err) from err
                if not await self._delete_job(cronjob, job):
                    raise _SyncFailed(cronjob, changed, RuntimeError(
                        f"could not replace job {ref.get('namespace')}/{ref.get('name')}"))
                changed = True
        try:
            created = await self._create_job(cronjob, scheduled)
        except ApiError as err:
            raise _SyncFailed(cronjob, changed, err) from err
        if created is None:
            return cronjob, None, changed
        status = cronjob.setdefault("status", {})
        status["active"] = [*active_refs(cronjob), job_reference(created)]
        status["lastScheduleTime"] = format_time(scheduled)
        return cronjob, next_requeue_delay(cronjob, schedule, now), True

    async def _create_job(self, cronjob: Obj, scheduled: float) -> Obj | None:
        """Create the activation's Job; the Job to add to status.active (also one that already
        exists, is ours and is missing from it), or None when there is nothing to add."""
        job = job_from_template(cronjob, scheduled)
        namespace = cronjob["metadata"].get("namespace")
        try:
            created = await self.client.create(JOBS, job, namespace)
        except AlreadyExists:
            existing = await self.client.get(JOBS, job["metadata"]["name"], namespace)
            ref = controller_ref(existing)
            if not ref or ref.get("uid") != _uid(cronjob) or in_active_list(cronjob, _uid(existing)):
                return None
            log.info("cronjob %s: job %s already exists", key_of(cronjob), job["metadata"]["name"])
            return existing
        except ApiError as err:
            if not _namespace_terminating(err):
                self.recorder.event(cronjob, "Warning", "FailedCreate", f"Error creating job: {err}")
            raise
        self.recorder.event(cronjob, "Normal", "SuccessfulCreate", f"Created job {created['metadata']['name']}")
        return created


class _SyncFailed(Exception):
    """A sync step failed after the status may have changed: the status is still written,
    then ``error`` is raised so the key is retried with backoff."""

    def __init__(self, cronjob: Obj, changed: bool, error: BaseException) -> None:
        super().__init__(str(error))
        self.cronjob, self.changed, self.error = cronjob, changed, error


def _namespace_terminating(err: ApiError) -> bool:
    details = getattr(err, "details", None) or {}
    causes = details.get("causes") if isinstance(details, dict) else None
    return any(isinstance(c, dict) and c.get("type") == "NamespaceTerminating" for c in causes or ())
