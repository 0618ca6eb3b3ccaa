"""The CronJob controller's pure parts (controllers/cronjob.py): the Job it makes, which
finished Jobs history limits remove, the requeue delay, and the Warning events for schedules
or zones it cannot use."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest

from pybernetes.controllers.cron_schedule import Schedule
from pybernetes.controllers.cronjob import (
    SCHEDULED_TIMESTAMP,
    CronJobController,
    job_from_template,
    job_name,
    jobs_beyond_history,
    next_requeue_delay,
    rfc1123z,
)


def at(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()


def cronjob(**spec: Any) -> dict[str, Any]:
    return {"apiVersion": "batch/v1", "kind": "CronJob",
            "metadata": {"name": "cj", "namespace": "ns", "uid": "u-1", "creationTimestamp": "2024-01-01T00:00:00Z"},
            "spec": {"schedule": "*/5 * * * *",
                     "jobTemplate": {"metadata": {"labels": {"a": "b"}, "annotations": {"x": "y"}},
                                     "spec": {"backoffLimit": 2, "template": {"spec": {"containers": []}}}},
                     **spec}}


def test_job_from_template() -> None:
    t = at("2024-03-01T10:05:00Z")
    job = job_from_template(cronjob(), t)
    assert job_name(cronjob(), t) == f"cj-{int(t) // 60}" == job["metadata"]["name"]
    assert job["metadata"]["labels"] == {"a": "b"}
    assert job["metadata"]["annotations"] == {"x": "y", SCHEDULED_TIMESTAMP: "2024-03-01T10:05:00Z"}
    ref = job["metadata"]["ownerReferences"][0]
    assert (ref["kind"], ref["name"], ref["uid"], ref["controller"]) == ("CronJob", "cj", "u-1", True)
    assert job["spec"] == {"backoffLimit": 2, "template": {"spec": {"containers": []}}}
    zoned = job_from_template(cronjob(timeZone="Europe/Paris"), t)
    assert zoned["metadata"]["annotations"][SCHEDULED_TIMESTAMP] == "2024-03-01T11:05:00+01:00"


def finished(name: str, kind: str, start: str | None) -> dict[str, Any]:
    status: dict[str, Any] = {"conditions": [{"type": kind, "status": "True"}]}
    if start:
        status["startTime"] = start
    return {"metadata": {"name": name}, "status": status}


def test_history_limits_pick_the_oldest() -> None:
    jobs = [finished("s3", "Complete", "2024-01-03T00:00:00Z"), finished("s1", "Complete", "2024-01-01T00:00:00Z"),
            finished("s-none", "Complete", None), finished("s2", "Complete", "2024-01-02T00:00:00Z"),
            finished("f1", "Failed", "2024-01-01T00:00:00Z"), finished("f2", "Failed", "2024-01-02T00:00:00Z"),
            {"metadata": {"name": "running"}, "status": {}}]
    doomed = [j["metadata"]["name"] for j in jobs_beyond_history(jobs, 2, 1)]
    assert doomed == ["s1", "s2", "f1"]  # never-started jobs sort last
    assert jobs_beyond_history(jobs, None, None) == []
    assert [j["metadata"]["name"] for j in jobs_beyond_history(jobs, None, 0)] == ["f1", "f2"]


def test_requeue_delay_aims_just_after_the_next_activation() -> None:
    cj = cronjob(status=None)
    cj["status"] = {"lastScheduleTime": "2024-01-01T00:05:00Z"}
    sched = Schedule.from_spec("*/5 * * * *")
    assert next_requeue_delay(cj, sched, at("2024-01-01T00:06:00Z")) == pytest.approx(240.1)
    # an activation is due and not yet started: the one after it
    assert next_requeue_delay(cj, sched, at("2024-01-01T00:11:00Z")) == pytest.approx(240.1)
    assert next_requeue_delay(cj, Schedule.from_spec("0 0 30 2 *"), at("2024-01-01T00:06:00Z")) is None


def test_rfc1123z() -> None:
    assert rfc1123z(at("2024-01-02T03:04:05Z")) == "Tue, 02 Jan 2024 03:04:05 +0000"


class Recorder:
    def __init__(self) -> None:
        self.events: list[tuple[str, str, str]] = []

    def event(self, obj: dict[str, Any], type_: str, reason: str, message: str) -> None:
        self.events.append((type_, reason, message))


@pytest.mark.parametrize(("spec", "reason"), [
    ({"schedule": "61 * * * *"}, "UnparseableSchedule"),
    ({"schedule": "not a schedule"}, "UnparseableSchedule"),
    ({"timeZone": "Nowhere/Atlantis"}, "UnknownTimeZone"),
    ({"schedule": "TZ=UTC * * * * *", "timeZone": "UTC"}, "UnparseableSchedule"),
])
def test_unusable_schedules_give_warning_events(spec: dict[str, Any], reason: str) -> None:
    ctl = object.__new__(CronJobController)
    ctl.recorder = Recorder()  # type: ignore[assignment]
    assert ctl._schedule(cronjob(**spec)) is None
    assert ctl.recorder.events[-1][:2] == ("Warning", reason)  # type: ignore[attr-defined]


def test_tz_in_schedule_warns_but_still_parses() -> None:
    ctl = object.__new__(CronJobController)
    ctl.recorder = Recorder()  # type: ignore[assignment]
    assert ctl._schedule(cronjob(schedule="TZ=Asia/Tokyo 0 9 * * *")) is not None
    assert [r for _, r, _ in ctl.recorder.events] == ["UnsupportedSchedule"]  # type: ignore[attr-defined]
