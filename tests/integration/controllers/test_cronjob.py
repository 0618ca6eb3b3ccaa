"""The CronJob controller against a real API server, on a fake clock.

The clock starts at the CronJob's creation time; a test moves it with ``clock.set`` and then
enqueues the CronJob's key (the work queue's delays run on real time, so the controller
looks again only when told).  Job status is written by the test through the status
subresource (no Job controller runs here).
"""

from __future__ import annotations

import time
import zoneinfo
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from kubectl_cli import kubectl_in_thread, needs_kubectl

from pybernetes.controllers.base import FakeClock
from pybernetes.controllers.podutil import format_time, parse_time

JOBS = ("batch", "v1", "jobs")
CRONJOBS = ("batch", "v1", "cronjobs")
EVENTS = ("", "v1", "events")
NS = "default"


def cronjob(name: str, schedule: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": name, "namespace": NS},
        "spec": {
            "schedule": schedule,
            "jobTemplate": {
                "metadata": {"labels": {"app": name}, "annotations": {"team": "batch"}},
                "spec": {"template": {"spec": {
                    "restartPolicy": "Never", "containers": [{"name": "c", "image": "busybox"}]}}},
            },
            **spec,
        },
    }


class Harness:
    def __init__(self, cluster: Any, clock: FakeClock) -> None:
        self.cluster, self.clock = cluster, clock
        self.ctl = cluster.manager.controllers["cronjob"]

    async def create(self, obj: dict[str, Any]) -> float:
        """Create the CronJob; its creation time (epoch seconds)."""
        created = await self.cluster.client.create(CRONJOBS, obj, NS)
        born = parse_time(created["metadata"]["creationTimestamp"])
        assert born is not None
        return born

    async def at(self, moment: float, name: str) -> None:
        """Move the clock to ``moment`` and wait until the controller has synced ``name``
        with it."""
        self.clock.set(moment)
        before = self.ctl.syncs
        self.ctl.enqueue(f"{NS}/{name}")
        queue = self.ctl.queue
        await self.cluster.wait_for(lambda: self.ctl.syncs > before and len(queue) == 0 and not queue.processing,
                                    message=f"a sync of {name}")

    async def jobs(self) -> dict[str, dict[str, Any]]:
        items = (await self.cluster.client.list(JOBS, NS))["items"]
        return {j["metadata"]["name"]: j for j in items if not j["metadata"].get("deletionTimestamp")}

    async def cronjob(self, name: str) -> dict[str, Any]:
        return await self.cluster.client.get(CRONJOBS, name, NS)

    async def events(self, name: str) -> list[tuple[str, str, str]]:
        items = (await self.cluster.client.list(EVENTS, NS))["items"]
        return [(e["type"], e["reason"], e["message"]) for e in items
                if e["involvedObject"].get("name") == name and e["involvedObject"].get("kind") == "CronJob"]

    async def wait_event(self, name: str, reason: str) -> tuple[str, str, str]:
        async def found() -> Any:
            return next((e for e in await self.events(name) if e[1] == reason), None)
        return await self.cluster.wait_for(found, message=f"event {reason} on {name}")

    async def finish(self, name: str, outcome: str = "Complete", started: float | None = None) -> None:
        job = await self.cluster.client.get(JOBS, name, NS)
        now = format_time(time.time())
        job["status"] = {
            "startTime": format_time(started) if started is not None else now,
            "conditions": [{"type": outcome, "status": "True", "lastTransitionTime": now,
                            "lastProbeTime": now}],
        }
        if outcome == "Complete":
            job["status"]["completionTime"] = now
            job["status"]["succeeded"] = 1
        else:
            job["status"]["failed"] = 1
        await self.cluster.client.update_status(JOBS, job, NS)


async def harness(cluster: Any) -> Harness:
    clock = FakeClock(time.time())
    await cluster.start("cronjob", clock=clock)
    return Harness(cluster, clock)


def minute_after(t: float, every: int = 1) -> float:
    """The first activation of ``*/every * * * *`` after ``t``."""
    step = 60 * every
    return (int(t) // step + 1) * step


def active_names(cj: dict[str, Any]) -> list[str]:
    return sorted(ref["name"] for ref in (cj.get("status") or {}).get("active") or [])


async def test_jobs_start_at_schedule_times_with_names_labels_and_owner(cluster: Any) -> None:
    h = await harness(cluster)
    born = await h.create(cronjob("tick", "*/5 * * * *"))
    first = minute_after(born, 5)
    await h.at(first - 10, "tick")
    assert await h.jobs() == {}
    await h.at(first + 1, "tick")
    name = f"tick-{int(first) // 60}"
    jobs = await cluster.wait_for(h.jobs, message="the first job")
    assert list(jobs) == [name]
    job = jobs[name]
    assert job["metadata"]["labels"]["app"] == "tick"
    assert job["metadata"]["annotations"]["team"] == "batch"
    stamp = datetime.fromtimestamp(first, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert job["metadata"]["annotations"]["batch.kubernetes.io/cronjob-scheduled-timestamp"] == stamp
    owner = job["metadata"]["ownerReferences"][0]
    cj = await h.cronjob("tick")
    assert owner["kind"] == "CronJob" and owner["name"] == "tick" and owner["controller"] is True
    assert owner["uid"] == cj["metadata"]["uid"]
    assert active_names(cj) == [name]
    assert parse_time(cj["status"]["lastScheduleTime"]) == first
    assert ("Normal", "SuccessfulCreate", f"Created job {name}") in await h.events("tick")

    # the same activation is not started twice; the next one is (Allow: both active)
    await h.at(first + 120, "tick")
    assert list(await h.jobs()) == [name]
    second = first + 300
    await h.at(second + 2, "tick")
    await cluster.wait_for(lambda: h.jobs(), message="jobs")
    cj = await cluster.wait_for(lambda: _with_active(h, "tick", 2), message="two active jobs")
    assert active_names(cj) == sorted([name, f"tick-{int(second) // 60}"])


async def _with_active(h: Harness, name: str, count: int) -> Any:
    cj = await h.cronjob(name)
    return cj if len(active_names(cj)) == count else None


async def test_time_zone_sets_activation_and_annotation(cluster: Any) -> None:
    h = await harness(cluster)
    born = await h.create(cronjob("tokyo", "0 * * * *", timeZone="Asia/Tokyo"))
    hour = (int(born) // 3600 + 1) * 3600  # Tokyo is a whole-hour offset from UTC
    await h.at(hour + 5, "tokyo")
    jobs = await cluster.wait_for(h.jobs, message="the job")
    job = jobs[f"tokyo-{hour // 60}"]
    local = datetime.fromtimestamp(hour, UTC).astimezone(zoneinfo.ZoneInfo("Asia/Tokyo"))
    assert job["metadata"]["annotations"]["batch.kubernetes.io/cronjob-scheduled-timestamp"] == \
        local.strftime("%Y-%m-%dT%H:%M:%S+09:00")


async def test_only_the_most_recent_missed_time_starts_and_too_many_warns(cluster: Any) -> None:
    h = await harness(cluster)
    born = await h.create(cronjob("late", "* * * * *"))
    now = born + 3 * 3600 + 30  # 180 activations missed
    await h.at(now, "late")
    jobs = await cluster.wait_for(h.jobs, message="a job")
    assert list(jobs) == [f"late-{int(now) // 60}"]
    kind, _, message = await h.wait_event("late", "TooManyMissedTimes")
    assert kind == "Warning" and "startingDeadlineSeconds" in message


async def test_starting_deadline_skips_late_activations(cluster: Any) -> None:
    h = await harness(cluster)
    born = await h.create(cronjob("strict", "*/10 * * * *", startingDeadlineSeconds=30))
    due = minute_after(born, 10)
    await h.at(due + 45, "strict")  # 45 s late, 30 allowed
    kind, _, _ = await h.wait_event("strict", "MissSchedule")
    assert kind == "Warning"
    assert await h.jobs() == {}
    assert not (await h.cronjob("strict")).get("status", {}).get("lastScheduleTime")
    nxt = due + 600
    await h.at(nxt + 20, "strict")  # within the deadline
    jobs = await cluster.wait_for(h.jobs, message="the on-time job")
    assert list(jobs) == [f"strict-{int(nxt) // 60}"]


async def test_forbid_skips_while_active_then_starts_after_completion(cluster: Any) -> None:
    h = await harness(cluster)
    born = await h.create(cronjob("solo", "* * * * *", concurrencyPolicy="Forbid"))
    t1 = minute_after(born)
    await h.at(t1 + 1, "solo")
    first = f"solo-{int(t1) // 60}"
    await cluster.wait_for(h.jobs, message="the first job")
    await cluster.wait_for(lambda: _with_active(h, "solo", 1), message="active job")
    await h.at(t1 + 61, "solo")
    await h.wait_event("solo", "JobAlreadyActive")
    assert list(await h.jobs()) == [first]
    await h.finish(first)
    second = f"solo-{int(t1) // 60 + 1}"
    # the job's completion makes the controller look again: it sees the completed job and
    # starts the activation it had to skip
    jobs = await cluster.wait_for(lambda: _has_job(h, second), message="the skipped activation's job")
    assert set(jobs) == {first, second}
    await h.wait_event("solo", "SawCompletedJob")
    cj = await cluster.wait_for(lambda: _status_has(h, "solo", "lastSuccessfulTime"), message="lastSuccessfulTime")
    assert active_names(cj) == [second]


async def _has_job(h: Harness, name: str) -> Any:
    jobs = await h.jobs()
    return jobs if name in jobs else None


async def _status_has(h: Harness, name: str, field: str) -> Any:
    cj = await h.cronjob(name)
    return cj if (cj.get("status") or {}).get(field) else None


async def test_replace_deletes_the_running_job(cluster: Any) -> None:
    h = await harness(cluster)
    born = await h.create(cronjob("swap", "* * * * *", concurrencyPolicy="Replace"))
    t1 = minute_after(born)
    await h.at(t1 + 1, "swap")
    first, second = f"swap-{int(t1) // 60}", f"swap-{int(t1) // 60 + 1}"
    await cluster.wait_for(lambda: _with_active(h, "swap", 1), message="active job")
    await h.at(t1 + 61, "swap")
    jobs = await cluster.wait_for(lambda: _has_job(h, second), message="the replacement")
    assert first not in jobs
    assert ("Normal", "SuccessfulDelete", f"Deleted job {first}") in await h.events("swap")
    cj = await cluster.wait_for(lambda: _with_active(h, "swap", 1), message="one active job")
    assert active_names(cj) == [second]


async def test_history_limits_delete_oldest_finished_jobs(cluster: Any) -> None:
    h = await harness(cluster)
    await h.create(cronjob("hist", "0 0 1 1 *", suspend=True, successfulJobsHistoryLimit=1,
                           failedJobsHistoryLimit=1))
    cj = await h.cronjob("hist")
    owner = {"apiVersion": "batch/v1", "kind": "CronJob", "name": "hist", "uid": cj["metadata"]["uid"],
             "controller": True, "blockOwnerDeletion": True}
    base = time.time() - 10_000
    outcomes = [("hist-1", "Complete"), ("hist-2", "Complete"), ("hist-3", "Complete"),
                ("hist-4", "Failed"), ("hist-5", "Failed")]
    for i, (name, outcome) in enumerate(outcomes):
        job = cronjob("x", "* * * * *")["spec"]["jobTemplate"]
        await cluster.client.create(JOBS, {"apiVersion": "batch/v1", "kind": "Job",
                                           "metadata": {"name": name, "namespace": NS, "ownerReferences": [owner]},
                                           "spec": job["spec"]}, NS)
        await h.finish(name, outcome, started=base + i * 100)
    await cluster.wait_for(lambda: _names_are(h, {"hist-3", "hist-5"}), message="history trimmed")
    deleted = {m for _, r, m in await h.events("hist") if r == "SuccessfulDelete"}
    assert deleted == {"Deleted job hist-1", "Deleted job hist-2", "Deleted job hist-4"}


async def _names_are(h: Harness, names: set[str]) -> bool:
    return set(await h.jobs()) == names


async def test_suspend_starts_nothing_until_resumed(cluster: Any) -> None:
    h = await harness(cluster)
    born = await h.create(cronjob("nap", "* * * * *", suspend=True))
    t1 = minute_after(born)
    await h.at(t1 + 150, "nap")
    assert await h.jobs() == {}
    cj = await h.cronjob("nap")
    cj["spec"]["suspend"] = False
    await cluster.client.update(CRONJOBS, cj, NS)  # the update is seen and synced
    jobs = await cluster.wait_for(h.jobs, message="a job after resuming")
    assert list(jobs) == [f"nap-{int(t1) // 60 + 2}"]


async def test_a_schedule_that_never_fires_warns_and_others_still_run(cluster: Any) -> None:
    h = await harness(cluster)
    born = await h.create(cronjob("never", "0 0 30 2 *"))  # valid syntax, no such day
    await h.create(cronjob("fine", "* * * * *"))
    t1 = minute_after(born)
    await h.at(t1 + 1, "never")
    kind, _, message = await h.wait_event("never", "InvalidSchedule")
    assert kind == "Warning" and "0 0 30 2 *" in message
    await h.at(t1 + 1, "fine")
    jobs = await cluster.wait_for(h.jobs, message="the other cronjob's job")
    assert list(jobs) == [f"fine-{int(t1) // 60}"]


async def test_deleted_active_job_is_dropped_from_status(cluster: Any) -> None:
    h = await harness(cluster)
    born = await h.create(cronjob("gone", "0 0 1 1 *"))
    t1 = minute_after(born)
    await h.at(t1 + 1, "gone")  # nothing due; just to have the status written below synced
    cj = await h.cronjob("gone")
    cj["status"] = {"active": [{"kind": "Job", "apiVersion": "batch/v1", "namespace": NS, "name": "gone-1",
                                "uid": "00000000-0000-0000-0000-000000000001"}]}
    await cluster.client.update_status(CRONJOBS, cj, NS)
    await h.wait_event("gone", "MissingJob")
    await cluster.wait_for(lambda: _with_active(h, "gone", 0), message="active list emptied")


@needs_kubectl
async def test_kubectl_create_job_from_cronjob(cluster: Any, tmp_path: Path) -> None:
    await harness(cluster)
    await cluster.client.create(CRONJOBS, cronjob("manual", "0 0 1 1 *"), NS)
    result = await kubectl_in_thread(cluster.url, tmp_path, "create", "job", "--from=cronjob/manual", "by-hand",
                                     "-n", NS)
    assert result.returncode == 0, result.stderr
    assert "job.batch/by-hand created" in result.stdout
    job = await cluster.client.get(JOBS, "by-hand", NS)
    assert job["metadata"]["annotations"]["cronjob.kubernetes.io/instantiate"] == "manual"
    owner = job["metadata"]["ownerReferences"][0]
    cj = await cluster.client.get(CRONJOBS, "manual", NS)
    assert owner["kind"] == "CronJob" and owner["uid"] == cj["metadata"]["uid"]
    assert job["spec"]["template"]["spec"]["containers"][0]["image"] == "busybox"
