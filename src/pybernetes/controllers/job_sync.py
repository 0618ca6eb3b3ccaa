"""The pure core of one Job sync (upstream's syncJob, manageJob and
trackJobStatusAndRemoveFinalizers without the API calls).

``JobSync`` is built from a copy of the Job, the pods it owns (from the cache), the clock's
``now``, the pods whose finalizer removal is in flight, and the job's backoff record.  The
controller shell (``job.py``) calls, in order:

1. ``assess()`` — counts and the finishing condition, if any: an existing FailureTarget or
   SuccessCriteriaMet, a podFailurePolicy FailJob match, backoffLimit (or OnFailure restarts),
   activeDeadlineSeconds, maxFailedIndexes / failed indexes, the success policy;
2. ``manage_plan()`` when the job is not finishing — pods to delete (suspend, excess,
   duplicate indexes) or to create (how many, which indexes), or how long to back off;
3. ``track()`` — the two-phase pod accounting: finished pods still holding the
   ``batch.kubernetes.io/job-tracking`` finalizer go into ``status.uncountedTerminatedPods``
   (or ``completedIndexes``), together with the interim FailureTarget / SuccessCriteriaMet
   condition; the shell writes that status, then removes the finalizers, then
   ``clean_uncounted`` moves the UIDs into the succeeded/failed counters and ``enact_finished``
   adds Complete or Failed once nothing is uncounted and nothing is terminating.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pybernetes.controllers.job_indexes import (
    Intervals,
    absolute_failure_count,
    completion_index,
    failure_counts,
    pod_indexes,
    valid_index,
)
from pybernetes.controllers.job_policy import match_pod_failure_policy, match_success_policy
from pybernetes.controllers.job_status import (
    MAX_BACKOFF,
    BackoffRecord,
    deadline_remaining,
    ensure_condition,
    find_condition,
    finished_time,
    has_backoff_limit_per_index,
    has_tracking_finalizer,
    is_indexed,
    is_pod_failed,
    is_suspended,
    is_terminating,
    new_condition,
    next_backoff_record,
    only_replace_failed_pods,
    past_backoff_limit_on_failure,
    phase,
    rank_for_removal,
    remaining_backoff,
    uid,
)
from pybernetes.controllers.podutil import format_time, is_pod_active, is_pod_ready

Obj = dict[str, Any]

MAX_UNCOUNTED_PODS = 500
MAX_POD_CREATE_DELETE_PER_SYNC = 500
COMPLETIONS_REACHED = ("CompletionsReached", "Reached expected number of succeeded pods")


@dataclass
class ManagePlan:
    delete: list[Obj] = field(default_factory=list)      # remove their finalizer, then delete
    create: list[int | None] = field(default_factory=list)  # one entry per pod: index or None
    delay: float = 0.0                                    # back off: sync again after this


@dataclass
class TrackPlan:
    remove_finalizer: list[Obj]
    uids_with_finalizer: set[str]
    reached_max: bool


class JobSync:
    def __init__(self, job: Obj, pods: list[Obj], now: float, *, expected_removals: frozenset[str] = frozenset(),
                 backoff: BackoffRecord | None = None, backoff_base: float = 10.0,
                 backoff_max: float = MAX_BACKOFF) -> None:
        self.job = job
        self.spec: Obj = job.get("spec") or {}
        self.status: Obj = job.setdefault("status", {})
        unc = self.status.get("uncountedTerminatedPods") or {}
        self.status["uncountedTerminatedPods"] = {"succeeded": list(unc.get("succeeded") or []),
                                                  "failed": list(unc.get("failed") or [])}
        self.uncounted_succeeded = set(self.status["uncountedTerminatedPods"]["succeeded"])
        self.uncounted_failed = set(self.status["uncountedTerminatedPods"]["failed"])
        self.pods = pods
        self.now = now
        self.expected_removals = expected_removals
        self.backoff = backoff or BackoffRecord()
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self.indexed = is_indexed(job)
        self.completions: int | None = self.spec.get("completions")
        self.active_pods = [p for p in pods if is_pod_active(p)]
        self.active = len(self.active_pods)
        self.ready = sum(1 for p in self.active_pods if is_pod_ready(p))
        self.terminating = sum(1 for p in pods if is_terminating(p))
        self.finished_condition: Obj | None = None
        self.succeeded = 0
        self.failed = 0
        self.prev_succeeded_indexes = Intervals()
        self.succeeded_indexes = Intervals()
        self.failed_indexes: Intervals | None = None
        self.delayed_per_index: dict[int, Obj] = {}
        self.new_backoff = self.backoff
        self.requeue_after: float | None = None  # activeDeadlineSeconds timer

    # -- helpers -------------------------------------------------------------------------------

    def _countable(self, pod: Obj, skip: set[str]) -> bool:
        """Holds the finalizer, is not in ``skip``, no removal in flight, valid index."""
        pid = uid(pod)
        if not has_tracking_finalizer(pod) or pid in skip or pid in self.expected_removals:
            return False
        return not self.indexed or valid_index(pod, self.completions or 0) is not None

    def _fails(self, pod: Obj) -> bool:
        return is_pod_failed(pod, self.job)

    def _policy(self, pod: Obj):
        return match_pod_failure_policy(self.spec.get("podFailurePolicy"), pod)

    def _failure_condition(self, reason: str, message: str) -> Obj:
        # 1.32 delays the terminal condition: FailureTarget first, Failed once pods are gone.
        return new_condition("FailureTarget", "True", reason, message, self.now)

    # -- 1. assess --------------------------------------------------------------------------

    def assess(self) -> None:
        new_succeeded = [p for p in self.pods if self._countable(p, self.uncounted_succeeded)
                         and phase(p) == "Succeeded"]
        new_failed = [p for p in self.pods if self._countable(p, self.uncounted_failed) and self._fails(p)]
        counted_failed = sum(1 for p in new_failed if self._policy(p).count_failed)
        self.succeeded = int(self.status.get("succeeded") or 0) + len(new_succeeded) + len(self.uncounted_succeeded)
        self.failed = int(self.status.get("failed") or 0) + counted_failed + len(self.uncounted_failed)
        if self.status.get("startTime") is None and not is_suspended(self.job):
            self.status["startTime"] = format_time(self.now)
        self.new_backoff = next_backoff_record(self.backoff, new_succeeded, new_failed)

        criteria_met = find_condition(self.job, "SuccessCriteriaMet")
        if criteria_met is not None and criteria_met.get("status") == "True":
            self.finished_condition = dict(criteria_met)
        else:
            target = find_condition(self.job, "FailureTarget")
            if target is not None and target.get("status") == "True":
                self.finished_condition = new_condition("Failed", "True", target.get("reason", ""),
                                                        target.get("message", ""), self.now)
            elif self.spec.get("podFailurePolicy") is not None:
                for pod in self.pods:
                    if self._fails(pod):
                        message = self._policy(pod).fail_job_message
                        if message is not None:
                            self.finished_condition = new_condition("FailureTarget", "True", "PodFailurePolicy",
                                                                    message, self.now)
                            break
        if self.finished_condition is None:
            backoff_limit = self.spec.get("backoffLimit")
            backoff_limit = 6 if backoff_limit is None else int(backoff_limit)
            if self.failed > backoff_limit or past_backoff_limit_on_failure(self.job, self.pods):
                self.finished_condition = self._failure_condition(
                    "BackoffLimitExceeded", "Job has reached the specified backoff limit")
            else:
                remaining = deadline_remaining(self.job, self.now)
                if remaining is not None and remaining <= 0:
                    self.finished_condition = self._failure_condition(
                        "DeadlineExceeded", "Job was active longer than specified deadline")
                elif remaining is not None:
                    self.requeue_after = remaining
        if self.indexed:
            self._assess_indexes()

    def _assess_indexes(self) -> None:
        completions = int(self.completions or 0)
        self.prev_succeeded_indexes = Intervals.parse(self.status.get("completedIndexes"), completions)
        fresh = [valid_index(p, completions) for p in self.pods
                 if phase(p) == "Succeeded" and has_tracking_finalizer(p)]
        self.succeeded_indexes = self.prev_succeeded_indexes.with_indexes(i for i in fresh if i is not None)
        self.succeeded = self.succeeded_indexes.total()
        if has_backoff_limit_per_index(self.job):
            self.failed_indexes = self._calculate_failed_indexes(completions)
            if self.finished_condition is None:
                max_failed = self.spec.get("maxFailedIndexes")
                failed_total = self.failed_indexes.total()
                if max_failed is not None and failed_total > int(max_failed):
                    self.finished_condition = self._failure_condition(
                        "MaxFailedIndexesExceeded", "Job has exceeded the specified maximal number of failed indexes")
                elif failed_total > 0 and failed_total + self.succeeded_indexes.total() >= completions:
                    self.finished_condition = self._failure_condition("FailedIndexes", "Job has failed indexes")
            self.delayed_per_index = self._pods_with_delayed_deletion(completions)
        if self.finished_condition is None:
            message, met = match_success_policy(self.spec.get("successPolicy"), completions, self.succeeded_indexes)
            if met:
                self.finished_condition = new_condition("SuccessCriteriaMet", "True", "SuccessPolicy", message,
                                                        self.now)

    def _index_failed(self, pod: Obj) -> bool:
        counted = False
        if self._fails(pod):
            match = self._policy(pod)
            if match.fails_index:
                return True
            counted = match.count_failed
        return counted and failure_counts(pod)[0] >= int(self.spec.get("backoffLimitPerIndex") or 0)

    def _calculate_failed_indexes(self, completions: int) -> Intervals:
        previous = Intervals.parse(self.status.get("failedIndexes"), completions)
        fresh = []
        for pod in self.pods:
            if has_tracking_finalizer(pod) and self._index_failed(pod):
                index = valid_index(pod, completions)
                if index is not None:
                    fresh.append(index)
        return previous.with_indexes(fresh)

    def _pods_with_delayed_deletion(self, completions: int) -> dict[int, Obj]:
        """Per index, the last failed pod whose finalizer stays until its replacement exists
        (the replacement inherits its failure counts)."""
        active = pod_indexes(self.active_pods)
        out: dict[int, Obj] = {}
        for pod in self.pods:
            if not self._countable(pod, set()) or not self._fails(pod):
                continue
            index = valid_index(pod, completions)
            if index is None or index in active or self.succeeded_indexes.has(index) or (
                    self.failed_indexes is not None and self.failed_indexes.has(index)):
                continue
            last = out.get(index)
            if last is None or (absolute_failure_count(last) <= absolute_failure_count(pod)
                                and finished_time(pod) >= finished_time(last)):
                out[index] = pod
        return out

    # -- 2. manage ----------------------------------------------------------------------------

    def _removal_candidates(self, rm_at_least: int) -> list[Obj]:
        pods = self.active_pods
        remove: list[Obj] = []
        if self.indexed:
            completions = int(self.completions or 0)
            keep_by_index: dict[int, Obj] = {}
            rest = []
            for pod in rank_for_removal(pods)[::-1]:  # best first: keep the best of each index
                index = valid_index(pod, completions)
                failed_index = index is not None and self.failed_indexes is not None and self.failed_indexes.has(index)
                if index is None or index in keep_by_index or failed_index:
                    remove.append(pod)
                else:
                    keep_by_index[index] = pod
                    rest.append(pod)
            pods = rest
        if len(remove) < rm_at_least:
            remove.extend(rank_for_removal(pods)[:rm_at_least - len(remove)])
        return remove

    def manage_plan(self) -> ManagePlan:
        if is_suspended(self.job):
            return ManagePlan(delete=self._removal_candidates(self.active))
        parallelism = int(self.spec.get("parallelism") or 0)
        if self.completions is None:
            want = self.active if self.succeeded > 0 else parallelism
        else:
            want = max(0, min(int(self.completions) - self.succeeded, parallelism))
        delete = self._removal_candidates(max(0, self.active - want))[:MAX_POD_CREATE_DELETE_PER_SYNC]
        if delete:
            return ManagePlan(delete=delete)
        terminating = self.terminating if only_replace_failed_pods(self.job) else 0
        diff = want - terminating - self.active
        if diff <= 0:
            return ManagePlan()
        if not has_backoff_limit_per_index(self.job):
            remaining = self.new_backoff.remaining(self.now, self.backoff_base, self.backoff_max)
            if remaining > 0:
                return ManagePlan(delay=remaining)
        diff = min(diff, MAX_POD_CREATE_DELETE_PER_SYNC)
        if not self.indexed:
            return ManagePlan(create=[None] * diff)
        indexes = self.first_pending_indexes(diff)
        if has_backoff_limit_per_index(self.job):
            now_ok, wait = [], None
            for index in indexes:
                last = self.delayed_per_index.get(index)
                left = 0.0 if last is None else remaining_backoff(
                    absolute_failure_count(last) + 1, finished_time(last), self.now, self.backoff_base, self.backoff_max)
                if left <= 0:
                    now_ok.append(index)
                elif wait is None or left < wait:
                    wait = left
            if not now_ok and wait:
                return ManagePlan(delay=wait)
            indexes = now_ok
        return ManagePlan(create=list(indexes))

    def first_pending_indexes(self, count: int) -> list[int]:
        completions = int(self.completions or 0)
        taken = self.succeeded_indexes.with_indexes(pod_indexes(self.active_pods))
        if self.failed_indexes is not None:
            taken = taken.merge(self.failed_indexes)
        if only_replace_failed_pods(self.job):
            taken = taken.with_indexes(pod_indexes(p for p in self.pods if is_terminating(p)))
        out: list[int] = []
        candidate = 0
        while candidate < completions and len(out) < count:
            if not taken.has(candidate):
                out.append(candidate)
            candidate += 1
        return out

    def new_index_failure_counts(self, index: int) -> tuple[int, int]:
        """The failure counts a new pod of ``index`` carries (from the pod it replaces)."""
        replaced = self.delayed_per_index.get(index)
        if replaced is None:
            return 0, 0
        failed, ignored = failure_counts(replaced)
        if self._policy(replaced).count_failed:
            failed += 1
        else:
            ignored += 1
        return failed, ignored

    def is_complete(self) -> bool:
        if self.completions is None:
            return self.succeeded > 0 and self.active == 0
        return self.succeeded >= int(self.completions) and self.active == 0

    def success_condition(self) -> Obj:
        return new_condition("SuccessCriteriaMet", "True", *COMPLETIONS_REACHED, self.now)

    def set_suspended(self, suspended: bool) -> bool:
        """The Suspended condition for the spec's suspend; whether it changed (on resume the
        start time restarts, so activeDeadlineSeconds counts continuous activity)."""
        conditions = self.status.get("conditions") or []
        if suspended:
            conditions, changed = ensure_condition(conditions, "Suspended", "True", "JobSuspended",
                                                   "Job suspended", self.now)
        else:
            conditions, changed = ensure_condition(conditions, "Suspended", "False", "JobResumed",
                                                   "Job resumed", self.now)
            if changed:
                self.status["startTime"] = format_time(self.now)
        if changed:
            self.status["conditions"] = conditions
        return changed

    # -- 3. track -------------------------------------------------------------------------------

    def _can_remove_finalizer(self, pod: Obj, failed: bool) -> bool:
        if (self.job.get("metadata") or {}).get("deletionTimestamp") or self.finished_condition is not None:
            return True
        if phase(pod) == "Succeeded":
            return True
        if not failed:
            return False
        if has_backoff_limit_per_index(self.job):
            index = completion_index(pod)
            delayed = self.delayed_per_index.get(index) if index is not None else None
            if delayed is not None and uid(delayed) == uid(pod):
                return False
        return True

    def track(self) -> TrackPlan:
        """Add finished pods to the uncounted lists / completed indexes, add the interim
        condition, and pick the pods whose finalizer goes (mutates the status)."""
        unc = self.status["uncountedTerminatedPods"]
        pods = self.pods
        if self.indexed:
            pods = sorted(pods, key=lambda p: (completion_index(p) is None, completion_index(p) or 0))
        with_finalizer = {uid(p) for p in pods if has_tracking_finalizer(p) and uid(p) not in self.expected_removals}
        clean_uncounted(self.status, with_finalizer)
        completions = int(self.completions or 0)
        finishing_failed = self.finished_condition is not None and self.finished_condition["type"] != "SuccessCriteriaMet"
        remove: list[Obj] = []
        new_indexes: list[int] = []
        reached_max = False
        for pod in pods:
            pid = uid(pod)
            if not has_tracking_finalizer(pod) or pid in self.expected_removals:
                continue
            failed = self._fails(pod)
            if not self._can_remove_finalizer(pod, failed):
                continue
            remove.append(pod)
            if phase(pod) == "Succeeded" and pid not in self.uncounted_failed:
                if self.indexed:
                    index = valid_index(pod, completions)
                    if index is not None and not self.prev_succeeded_indexes.has(index):
                        new_indexes.append(index)
                elif pid not in self.uncounted_succeeded:
                    unc["succeeded"].append(pid)
            elif failed or finishing_failed:
                # When the job is finishing, every pod not yet terminal is a failure.
                valid = not self.indexed or valid_index(pod, completions) is not None
                if pid not in self.uncounted_failed and valid and self._policy(pod).count_failed:
                    unc["failed"].append(pid)
            if len(new_indexes) + len(unc["succeeded"]) + len(unc["failed"]) >= MAX_UNCOUNTED_PODS:
                reached_max = True
                break
        if self.indexed:
            self.succeeded_indexes = self.succeeded_indexes.with_indexes(new_indexes)
            self.status["succeeded"] = self.succeeded_indexes.total()
            self.status["completedIndexes"] = str(self.succeeded_indexes)
            if self.failed_indexes is not None:
                self.status["failedIndexes"] = str(self.failed_indexes)
        cond = self.finished_condition
        if cond is not None and cond["type"] == "FailureTarget":
            self.status["conditions"] = [*(self.status.get("conditions") or []), cond]
            self.finished_condition = new_condition("Failed", "True", cond["reason"], cond["message"], self.now)
        elif cond is not None and cond["type"] == "SuccessCriteriaMet":
            if find_condition(self.job, "SuccessCriteriaMet") is None:
                self.status["conditions"] = [*(self.status.get("conditions") or []), cond]
            self.finished_condition = new_condition("Complete", "True", cond.get("reason", ""),
                                                    cond.get("message", ""), self.now)
        return TrackPlan(remove, with_finalizer, reached_max)

    def enact_finished(self) -> bool:
        """Add the terminal condition when no pod is uncounted or terminating."""
        cond = self.finished_condition
        if cond is None:
            return False
        unc = self.status["uncountedTerminatedPods"]
        if unc["succeeded"] or unc["failed"] or self.terminating > 0:
            return False
        conditions, _ = ensure_condition(self.status.get("conditions") or [], cond["type"], cond["status"],
                                         cond.get("reason", ""), cond.get("message", ""), self.now)
        self.status["conditions"] = conditions
        if cond["type"] == "Complete":
            self.status["completionTime"] = format_time(self.now)
        return True


def clean_uncounted(status: Obj, with_finalizer: set[str]) -> bool:
    """Move uncounted UIDs whose pod no longer holds the finalizer into the counters."""
    unc = status["uncountedTerminatedPods"]
    changed = False
    for field_name in ("succeeded", "failed"):
        keep = [u for u in unc[field_name] if u in with_finalizer]
        if len(keep) != len(unc[field_name]):
            status[field_name] = int(status.get(field_name) or 0) + len(unc[field_name]) - len(keep)
            unc[field_name] = keep
            changed = True
    return changed


def tidy_status(status: Obj) -> Obj:
    """The status as the API shows it: zero counters of omitempty fields and empty lists
    left out (``ready`` and ``terminating`` stay, as upstream's pointers)."""
    out = dict(status)
    for key in ("active", "succeeded", "failed"):
        if not out.get(key):
            out.pop(key, None)
    unc = out.get("uncountedTerminatedPods")
    if isinstance(unc, dict):
        out["uncountedTerminatedPods"] = {k: list(v) for k, v in unc.items() if v}
    for key in ("completedIndexes", "conditions"):
        if not out.get(key):
            out.pop(key, None)
    if out.get("failedIndexes") is None:
        out.pop("failedIndexes", None)
    return out
