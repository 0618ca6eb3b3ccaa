"""The TTL-after-finished controller: finished Jobs with ttlSecondsAfterFinished are deleted
(Foreground) once their TTL has passed on the controller's clock, and not before."""

from __future__ import annotations

import time
from typing import Any

from pybernetes.client.errors import NotFound
from pybernetes.controllers.base import FakeClock
from pybernetes.controllers.podutil import format_time

JOBS = ("batch", "v1", "jobs")
NS = "default"


def job(name: str, ttl: int | None) -> dict[str, Any]:
    spec: dict[str, Any] = {"template": {"spec": {"restartPolicy": "Never",
                                                  "containers": [{"name": "c", "image": "busybox"}]}}}
    if ttl is not None:
        spec["ttlSecondsAfterFinished"] = ttl
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": name, "namespace": NS}, "spec": spec}


async def finish(cluster: Any, name: str, at: float, outcome: str = "Complete") -> None:
    obj = await cluster.client.get(JOBS, name, NS)
    stamp = format_time(at)
    obj["status"] = {"startTime": stamp, "conditions": [
        {"type": outcome, "status": "True", "lastTransitionTime": stamp, "lastProbeTime": stamp}]}
    if outcome == "Complete":
        obj["status"]["completionTime"] = stamp
    await cluster.client.update_status(JOBS, obj, NS)


async def deleting(cluster: Any, name: str) -> bool:
    """Gone, or being deleted in the foreground (no garbage collector runs here)."""
    try:
        obj = await cluster.client.get(JOBS, name, NS)
    except NotFound:
        return True
    if obj["metadata"].get("deletionTimestamp"):
        assert "foregroundDeletion" in obj["metadata"].get("finalizers", [])
        return True
    return False


async def settle(cluster: Any, ctl: Any, key: str) -> None:
    before = ctl.syncs
    ctl.enqueue(key)
    await cluster.wait_for(lambda: ctl.syncs > before and len(ctl.queue) == 0 and not ctl.queue.processing,
                           message=f"a sync of {key}")


async def test_finished_job_is_deleted_after_its_ttl(cluster: Any) -> None:
    finished_at = float(int(time.time()))
    clock = FakeClock(finished_at)
    cm = await cluster.start("ttlafterfinished", clock=clock)
    ctl = cm.controllers["ttlafterfinished"]
    await cluster.client.create(JOBS, job("short", 100), NS)
    await cluster.client.create(JOBS, job("failed", 100), NS)
    await cluster.client.create(JOBS, job("keep", None), NS)
    await cluster.client.create(JOBS, job("running", 0), NS)
    for name in ("short", "keep"):
        await finish(cluster, name, finished_at)
    await finish(cluster, "failed", finished_at, "Failed")

    clock.set(finished_at + 60)
    for name in ("short", "failed", "keep", "running"):
        await settle(cluster, ctl, f"{NS}/{name}")
    for name in ("short", "failed", "keep", "running"):
        assert not await deleting(cluster, name), name

    clock.set(finished_at + 101)
    await settle(cluster, ctl, f"{NS}/short")
    await settle(cluster, ctl, f"{NS}/failed")
    await cluster.wait_for(lambda: deleting(cluster, "short"), message="short deleted")
    await cluster.wait_for(lambda: deleting(cluster, "failed"), message="failed deleted")
    await settle(cluster, ctl, f"{NS}/keep")
    await settle(cluster, ctl, f"{NS}/running")
    assert not await deleting(cluster, "keep")  # no TTL
    assert not await deleting(cluster, "running")  # not finished


async def test_ttl_zero_deletes_at_once_on_the_real_clock(cluster: Any) -> None:
    await cluster.start("ttlafterfinished")
    await cluster.client.create(JOBS, job("now", 0), NS)
    await finish(cluster, "now", time.time())
    await cluster.wait_for(lambda: deleting(cluster, "now"), message="job deleted")


async def test_expired_job_goes_and_a_raised_ttl_keeps_a_job(cluster: Any) -> None:
    finished_at = float(int(time.time()))
    clock = FakeClock(finished_at + 50)
    cm = await cluster.start("ttlafterfinished", clock=clock)
    ctl = cm.controllers["ttlafterfinished"]
    await cluster.client.create(JOBS, job("extended", 10), NS)
    await finish(cluster, "extended", finished_at)
    await cluster.wait_for(lambda: deleting(cluster, "extended"), message="expired job deleted")
    # a second job whose TTL is raised before it expires survives
    await cluster.client.create(JOBS, job("raised", 100), NS)
    await finish(cluster, "raised", finished_at)
    obj = await cluster.client.get(JOBS, "raised", NS)
    obj["spec"]["ttlSecondsAfterFinished"] = 1000
    await cluster.client.update(JOBS, obj, NS)
    clock.set(finished_at + 200)
    await settle(cluster, ctl, f"{NS}/raised")
    assert not await deleting(cluster, "raised")
