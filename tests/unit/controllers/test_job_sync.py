"""The pure Job sync core (job_sync) and its bookkeeping helpers (job_status): counting,
two-phase tracking, terminal conditions, manage plans, backoff and deadlines."""

from __future__ import annotations

import itertools

from pybernetes.controllers import job_status as js
from pybernetes.controllers.job_indexes import COMPLETION_INDEX, INDEX_FAILURE_COUNT
from pybernetes.controllers.job_status import BackoffRecord
from pybernetes.controllers.job_sync import JobSync, clean_uncounted, tidy_status
from pybernetes.controllers.podutil import format_time

NOW = 1_700_000_000.0
_uids = itertools.count(1)


def job(**spec) -> dict:
    base = {"parallelism": 1, "completions": 1, "backoffLimit": 6, "completionMode": "NonIndexed",
            "suspend": False, "podReplacementPolicy": "TerminatingOrFailed",
            "template": {"spec": {"restartPolicy": "Never", "containers": [{"name": "c"}]}}}
    base.update(spec)
    return {"metadata": {"name": "j", "namespace": "ns", "uid": "job-uid"}, "spec": base, "status": {}}


def pod(phase: str = "Running", *, index: int | None = None, finalizer: bool = True, ready: bool = False,
        exit_code: int | None = None, deleting: bool = False, finished_at: float = NOW - 100,
        annotations: dict | None = None) -> dict:
    meta: dict = {"name": f"p{next(_uids)}", "namespace": "ns", "annotations": dict(annotations or {})}
    meta["uid"] = "uid-" + meta["name"]
    if finalizer:
        meta["finalizers"] = [js.TRACKING_FINALIZER]
    if index is not None:
        meta["annotations"][COMPLETION_INDEX] = str(index)
    if deleting:
        meta["deletionTimestamp"] = format_time(NOW - 1)
    status: dict = {"phase": phase, "conditions": [{"type": "Ready", "status": "True" if ready else "False"}]}
    if phase in ("Succeeded", "Failed"):
        code = exit_code if exit_code is not None else (0 if phase == "Succeeded" else 1)
        status["containerStatuses"] = [{"name": "c", "state": {"terminated": {
            "exitCode": code, "finishedAt": format_time(finished_at)}}}]
    return {"metadata": meta, "status": status, "spec": {}}


def assessed(j: dict, pods: list[dict], **kw) -> JobSync:
    sync = JobSync(j, pods, kw.pop("now", NOW), **kw)
    sync.assess()
    return sync


# -- job_status helpers -----------------------------------------------------------------------


def test_backoff_delay_doubles_and_caps() -> None:
    assert [js.backoff_delay(n, 10) for n in range(0, 8)] == [0, 10, 20, 40, 80, 160, 320, 360]
    assert js.backoff_delay(40, 10) == 360
    assert js.remaining_backoff(2, NOW - 5, NOW, 10) == 15
    assert js.remaining_backoff(2, NOW - 25, NOW, 10) == 0
    assert js.remaining_backoff(0, None, NOW, 10) == 0


def test_backoff_record_counts_failures_after_last_success() -> None:
    rec = js.next_backoff_record(BackoffRecord(), [], [pod("Failed", finished_at=NOW - 10)])
    assert rec == BackoffRecord(1, NOW - 10)
    rec = js.next_backoff_record(rec, [], [pod("Failed", finished_at=NOW - 5), pod("Failed", finished_at=NOW - 7)])
    assert rec == BackoffRecord(3, NOW - 5)
    rec = js.next_backoff_record(rec, [pod("Succeeded", finished_at=NOW - 4)], [pod("Failed", finished_at=NOW - 6),
                                                                              pod("Failed", finished_at=NOW - 2)])
    assert rec == BackoffRecord(1, NOW - 2)
    assert js.next_backoff_record(rec, [pod("Succeeded")], []) == BackoffRecord()
    assert rec.remaining(NOW, 10) == 8


def test_finished_time_sources() -> None:
    assert js.finished_time(pod("Failed", finished_at=NOW - 7)) == NOW - 7
    unready = pod("Running")
    unready["status"]["conditions"][0]["lastTransitionTime"] = format_time(NOW - 9)
    assert js.finished_time(unready) == NOW - 9
    deleting = pod("Running", ready=True)
    deleting["metadata"].update(deletionTimestamp=format_time(NOW + 30), deletionGracePeriodSeconds=30)
    assert js.finished_time(deleting) == NOW  # when the deletion began, not when the grace ends


def test_pod_failed_and_terminating() -> None:
    deleting = pod("Running", deleting=True)
    assert js.is_pod_failed(deleting, job()) and js.is_terminating(deleting)
    assert not js.is_pod_failed(deleting, job(podReplacementPolicy="Failed"))
    assert not js.is_pod_failed(pod("Succeeded", deleting=True), job())
    assert js.is_pod_failed(pod("Failed"), job(podFailurePolicy={"rules": []}))


def test_on_failure_restarts_and_deadline() -> None:
    j = job(backoffLimit=2)
    j["spec"]["template"]["spec"]["restartPolicy"] = "OnFailure"
    p = pod("Running")
    p["status"]["containerStatuses"] = [{"name": "c", "restartCount": 2}]
    assert js.past_backoff_limit_on_failure(j, [p])
    p["status"]["containerStatuses"][0]["restartCount"] = 1
    assert not js.past_backoff_limit_on_failure(j, [p])
    d = job(activeDeadlineSeconds=30)
    assert js.deadline_remaining(d, NOW) is None
    d["status"]["startTime"] = format_time(NOW - 10)
    assert js.deadline_remaining(d, NOW) == 20
    d["spec"]["suspend"] = True
    assert js.deadline_remaining(d, NOW) is None


def test_ensure_condition_and_removal_rank() -> None:
    conds, changed = js.ensure_condition([], "Suspended", "False", "JobResumed", "Job resumed", NOW)
    assert conds == [] and not changed
    conds, changed = js.ensure_condition(conds, "Suspended", "True", "JobSuspended", "Job suspended", NOW)
    assert changed and conds[0]["status"] == "True"
    again, changed = js.ensure_condition(conds, "Suspended", "True", "JobSuspended", "Job suspended", NOW + 5)
    assert not changed and again == conds
    flipped, changed = js.ensure_condition(conds, "Suspended", "False", "JobResumed", "Job resumed", NOW + 5)
    assert changed and flipped[0]["lastTransitionTime"] == format_time(NOW + 5)
    pending = pod("Pending")
    unready = pod("Running")
    unready["spec"]["nodeName"] = "n"
    ready = pod("Running", ready=True)
    ready["spec"]["nodeName"] = "n"
    assert js.rank_for_removal([ready, unready, pending]) == [pending, unready, ready]


# -- counting and two-phase tracking ------------------------------------------------------------


def test_creates_parallelism_pods_up_to_remaining_completions() -> None:
    sync = assessed(job(parallelism=3, completions=4), [])
    assert len(sync.manage_plan().create) == 3
    j = job(parallelism=3, completions=4)
    j["status"]["succeeded"] = 2
    sync = assessed(j, [pod("Running")])
    assert sync.manage_plan().create == [None]
    assert sync.status["startTime"] == format_time(NOW)


def test_two_phase_tracking_of_a_succeeded_pod() -> None:
    j = job(parallelism=2, completions=2)
    done, running = pod("Succeeded"), pod("Running")
    sync = assessed(j, [done, running])
    assert sync.succeeded == 1 and sync.finished_condition is None
    plan = sync.track()
    assert sync.status["uncountedTerminatedPods"]["succeeded"] == [done["metadata"]["uid"]]
    assert plan.remove_finalizer == [done] and not plan.reached_max
    # Phase 2: the finalizer is gone, so the uid moves into the counter.
    plan.uids_with_finalizer.discard(done["metadata"]["uid"])
    assert clean_uncounted(sync.status, plan.uids_with_finalizer)
    assert sync.status["succeeded"] == 1 and sync.status["uncountedTerminatedPods"]["succeeded"] == []
    assert not sync.enact_finished()


def test_pods_in_flight_or_without_finalizer_are_not_recounted() -> None:
    j = job(parallelism=2, completions=3)
    j["status"]["succeeded"] = 1
    counted = pod("Succeeded", finalizer=False)
    in_flight = pod("Succeeded")
    sync = assessed(j, [counted, in_flight], expected_removals=frozenset({in_flight["metadata"]["uid"]}))
    assert sync.succeeded == 1
    assert sync.track().remove_finalizer == []


def test_complete_after_all_counted() -> None:
    j = job(parallelism=1, completions=1)
    j["status"]["succeeded"] = 1
    sync = assessed(j, [pod("Succeeded", finalizer=False)])
    sync.active = 0
    assert sync.is_complete()
    sync.finished_condition = sync.success_condition()
    sync.track()
    types = [c["type"] for c in sync.status["conditions"]]
    assert types == ["SuccessCriteriaMet"]
    assert sync.enact_finished()
    conds = {c["type"]: c for c in sync.status["conditions"]}
    assert conds["Complete"]["reason"] == "CompletionsReached" and sync.status["completionTime"]


def test_backoff_limit_exceeded_goes_through_failure_target() -> None:
    j = job(backoffLimit=1)
    j["status"] = {"failed": 1}
    failing = pod("Failed")
    sync = assessed(j, [failing])
    assert sync.failed == 2
    assert sync.finished_condition["type"] == "FailureTarget"
    assert sync.finished_condition["reason"] == "BackoffLimitExceeded"
    plan = sync.track()
    assert [c["type"] for c in sync.status["conditions"]] == ["FailureTarget"]
    assert sync.status["uncountedTerminatedPods"]["failed"] == [failing["metadata"]["uid"]]
    assert not sync.enact_finished()  # still uncounted
    plan.uids_with_finalizer.clear()
    clean_uncounted(sync.status, plan.uids_with_finalizer)
    assert sync.enact_finished()
    conds = {c["type"]: c for c in sync.status["conditions"]}
    assert conds["Failed"]["message"] == "Job has reached the specified backoff limit"
    assert "completionTime" not in sync.status
    # The next sync reads the FailureTarget back as the Failed condition.
    again = assessed({**j, "status": {"conditions": [conds["FailureTarget"]]}}, [])
    assert again.finished_condition["type"] == "Failed"


def test_terminal_condition_waits_for_terminating_pods() -> None:
    j = job(activeDeadlineSeconds=10)
    j["status"]["startTime"] = format_time(NOW - 11)
    sync = assessed(j, [pod("Running", deleting=True)])
    assert sync.finished_condition["reason"] == "DeadlineExceeded"
    sync.track()
    assert not sync.enact_finished()  # uncounted + terminating
    j2 = job(activeDeadlineSeconds=10)
    j2["status"]["startTime"] = format_time(NOW - 4)
    sync = assessed(j2, [pod("Running")])
    assert sync.finished_condition is None and sync.requeue_after == 6


def test_pod_failure_policy_fail_job_and_ignore() -> None:
    policy = {"rules": [{"action": "FailJob", "onExitCodes": {"operator": "In", "values": [42]}},
                        {"action": "Ignore", "onExitCodes": {"operator": "In", "values": [3]}}]}
    j = job(podFailurePolicy=policy, backoffLimit=0, podReplacementPolicy="Failed")
    ignored = pod("Failed", exit_code=3)
    sync = assessed(j, [ignored])
    assert sync.failed == 0 and sync.finished_condition is None
    sync.track()
    assert sync.status["uncountedTerminatedPods"]["failed"] == []  # ignored: never counted
    fatal = pod("Failed", exit_code=42)
    sync = assessed(job(podFailurePolicy=policy, podReplacementPolicy="Failed"), [fatal])
    assert sync.finished_condition["reason"] == "PodFailurePolicy"
    assert "exit code 42 matching FailJob rule at index 0" in sync.finished_condition["message"]


def test_backoff_delays_replacement() -> None:
    j = job()
    sync = assessed(j, [pod("Failed", finished_at=NOW - 3)], backoff_base=10)
    plan = sync.manage_plan()
    assert plan.create == [] and plan.delay == 7
    sync = assessed(job(), [pod("Failed", finished_at=NOW - 30)], backoff_base=10)
    assert sync.manage_plan().create == [None]


def test_suspend_deletes_every_active_pod() -> None:
    pods = [pod("Running"), pod("Pending"), pod("Succeeded")]
    sync = assessed(job(parallelism=3, completions=5, suspend=True), pods)
    assert sorted(p["metadata"]["name"] for p in sync.manage_plan().delete) == sorted(
        p["metadata"]["name"] for p in pods[:2])
    assert "startTime" not in sync.status
    assert sync.set_suspended(True) and sync.status["conditions"][0]["reason"] == "JobSuspended"


def test_resume_restarts_start_time() -> None:
    j = job()
    j["status"] = {"startTime": format_time(NOW - 500),
                   "conditions": [{"type": "Suspended", "status": "True", "reason": "JobSuspended",
                                   "message": "Job suspended"}]}
    sync = assessed(j, [])
    assert sync.set_suspended(False)
    assert sync.status["startTime"] == format_time(NOW)


# -- indexed ----------------------------------------------------------------------------------


def test_indexed_pending_indexes_and_duplicates() -> None:
    j = job(completionMode="Indexed", completions=6, parallelism=4)
    j["status"]["completedIndexes"] = "0"
    first, dup = pod("Running", index=2, ready=True), pod("Pending", index=2)
    sync = assessed(j, [first, dup, pod("Succeeded", index=1), pod("Running", index=9)])
    assert str(sync.succeeded_indexes) == "0-1" and sync.succeeded == 2
    plan = sync.manage_plan()
    assert dup in plan.delete and first not in plan.delete and len(plan.delete) == 2  # dup + index 9
    sync.active_pods = [first]
    sync.active = 1
    assert sync.first_pending_indexes(3) == [3, 4, 5]
    sync.track()
    assert sync.status["completedIndexes"] == "0-1" and sync.status["succeeded"] == 2


def test_backoff_limit_per_index_delays_and_fails_index() -> None:
    j = job(completionMode="Indexed", completions=3, parallelism=3, backoffLimitPerIndex=1, backoffLimit=2**31 - 1)
    first_failure = pod("Failed", index=1, finished_at=NOW - 1, annotations={INDEX_FAILURE_COUNT: "0"})
    sync = assessed(j, [pod("Running", index=0), first_failure, pod("Running", index=2)], backoff_base=10)
    assert sync.failed_indexes.total() == 0
    assert sync.delayed_per_index == {1: first_failure}
    plan = sync.manage_plan()
    assert plan.create == [] and plan.delay == 9  # index 1 waits for its own backoff
    assert sync.new_index_failure_counts(1) == (1, 0)
    assert sync.track().remove_finalizer == []  # kept until the replacement exists
    second = pod("Failed", index=1, annotations={INDEX_FAILURE_COUNT: "1"})
    sync = assessed(j, [pod("Succeeded", index=0), second, pod("Succeeded", index=2)])
    assert str(sync.failed_indexes) == "1"
    assert sync.finished_condition["reason"] == "FailedIndexes"
    sync.track()
    assert sync.status["failedIndexes"] == "1" and sync.status["completedIndexes"] == "0,2"


def test_max_failed_indexes_and_success_policy() -> None:
    j = job(completionMode="Indexed", completions=4, parallelism=4, backoffLimitPerIndex=0, maxFailedIndexes=1)
    sync = assessed(j, [pod("Failed", index=0), pod("Failed", index=3), pod("Running", index=1)])
    assert sync.finished_condition["reason"] == "MaxFailedIndexesExceeded"
    sp = job(completionMode="Indexed", completions=4, parallelism=4,
             successPolicy={"rules": [{"succeededIndexes": "0"}]})
    sync = assessed(sp, [pod("Succeeded", index=0), pod("Running", index=1)])
    assert sync.finished_condition["type"] == "SuccessCriteriaMet"
    sync.track()
    assert sync.finished_condition["type"] == "Complete" and sync.finished_condition["reason"] == "SuccessPolicy"


def test_tidy_status_drops_empty_fields() -> None:
    status = {"active": 0, "succeeded": 0, "failed": 2, "ready": 0, "terminating": 0,
              "uncountedTerminatedPods": {"succeeded": [], "failed": []}, "completedIndexes": "",
              "failedIndexes": None, "conditions": []}
    assert tidy_status(status) == {"failed": 2, "ready": 0, "terminating": 0, "uncountedTerminatedPods": {}}
