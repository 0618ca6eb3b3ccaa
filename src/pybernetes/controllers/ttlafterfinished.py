"""The TTL-after-finished controller (upstream pkg/controller/ttlafterfinished): deletes a
Job ``spec.ttlSecondsAfterFinished`` seconds after it finished.

Owns: which Jobs need cleaning up (a TTL and a Complete or Failed condition that is True,
not already being deleted), when (the finishing condition's lastTransitionTime + TTL, read
against ``self.clock``; a Job not yet expired is requeued after the remaining time), and the
deletion itself: the Job is read again from the API server (the cache may be stale, e.g. the
TTL was just raised), checked again, and deleted with Foreground propagation and a
precondition on that fresh object's uid and resourceVersion — so a Job that was replaced or
changed in between is not deleted on old information (the conflict is retried).
"""

from __future__ import annotations

import logging

from pybernetes.client.errors import NotFound
from pybernetes.controllers.base import Controller, Obj, key_of
from pybernetes.controllers.podutil import get_condition, parse_time

log = logging.getLogger(__name__)

JOBS = "batch/v1/jobs"


def finish_time(job: Obj) -> float | None:
    """When the Job finished: the lastTransitionTime of its True Complete/Failed condition."""
    for cond in (job.get("status") or {}).get("conditions") or ():
        if isinstance(cond, dict) and cond.get("type") in ("Complete", "Failed") and cond.get("status") == "True":
            return parse_time(cond.get("lastTransitionTime"))
    return None


def is_finished(job: Obj) -> bool:
    conds = (job.get("status") or {}).get("conditions")
    return any((c := get_condition(conds, t)) is not None and c.get("status") == "True"
               for t in ("Complete", "Failed"))


def needs_cleanup(job: Obj) -> bool:
    return ((job.get("spec") or {}).get("ttlSecondsAfterFinished") is not None and is_finished(job)
            and not (job.get("metadata") or {}).get("deletionTimestamp"))


def time_left(job: Obj, now: float) -> float | None:
    """Seconds until the Job expires (<= 0: expired); None when it needs no cleanup or its
    finish time is unknown."""
    if not needs_cleanup(job):
        return None
    finished = finish_time(job)
    if finished is None:
        return None
    if finished > now:
        log.warning("job %s finished in the future (clock skew?); cleanup deferred", key_of(job))
    return finished + float(job["spec"]["ttlSecondsAfterFinished"]) - now


class TTLAfterFinishedController(Controller):
    name = "ttlafterfinished"
    component = "ttl-after-finished-controller"

    def setup(self) -> None:
        self.jobs = self.informer(JOBS)
        self.jobs.add_event_handler(self._maybe_enqueue, lambda old, new: self._maybe_enqueue(new), None)

    def _maybe_enqueue(self, job: Obj) -> None:
        if needs_cleanup(job):
            self.enqueue(job)

    async def sync(self, key: str) -> None:
        cached = self.jobs.indexer.get(key)
        if cached is None:
            return
        left = time_left(cached, self.clock.now())
        if left is None:
            return
        if left > 0:
            self.enqueue_after(key, left)
            return
        meta = cached["metadata"]
        try:
            fresh = await self.client.get(JOBS, meta["name"], meta.get("namespace"))
        except NotFound:
            return
        left = time_left(fresh, self.clock.now())
        if left is None:
            return
        if left > 0:
            self.enqueue_after(key, left)
            return
        fmeta = fresh["metadata"]
        log.info("ttl-after-finished: deleting job %s", key)
        try:
            await self.client.delete(JOBS, fmeta["name"], fmeta.get("namespace"), propagation_policy="Foreground",
                                     preconditions={"uid": fmeta.get("uid"),
                                                    "resourceVersion": fmeta.get("resourceVersion")})
        except NotFound:
            return
