"""The Job controller's failure paths against a real API server, NodeSim playing the kubelet:
backoffLimit (with the exponential backoff shrunk through ``job_backoff_base``),
backoffLimitPerIndex and maxFailedIndexes, activeDeadlineSeconds on a FakeClock, and the
podFailurePolicy actions FailJob, Ignore and FailIndex — FailureTarget before Failed, the
right counts, active pods deleted, and no job-tracking finalizer left behind; plus
podReplacementPolicy (TerminatingOrFailed / Failed and status.terminating), the finalizer
clean-up of pods whose Job is deleted, and a job whose pods the API rejects (FailedCreate
events) while other jobs are still served."""

from __future__ import annotations

import time

from test_job import (
    FINALIZER,
    JOBS,
    NS,
    PODS,
    active_pods,
    assert_finalizers_gone,
    conditions,
    event_reasons,
    finished,
    get_job,
    index_of,
    job_manifest,
    job_pods,
)

from pybernetes.controllers.base import FakeClock

FAST_BACKOFF = {"job_backoff_base": 0.02}


async def fail_active(client, node, name: str, exit_code: int = 1) -> int:
    failed = 0
    for pod in await active_pods(client, name):
        await node.mark_failed(pod, exit_code=exit_code)
        failed += 1
    return failed


async def test_backoff_limit_exceeded(cluster) -> None:
    await cluster.start("job", options=FAST_BACKOFF)
    client, node = cluster.client, cluster.node
    await client.create(JOBS, job_manifest("flaky", backoffLimit=2))
    created: set[str] = set()

    async def keep_failing():
        for pod in await active_pods(client, "flaky"):
            created.add(pod["metadata"]["uid"])
            await node.mark_failed(pod, exit_code=1)
        return await finished(client, "flaky", "Failed")

    done = await cluster.wait_for(keep_failing, message="job failed")
    assert len(created) == 3  # the first pod and two retries
    status = done["status"]
    assert status["failed"] == 3 and not status.get("succeeded") and not status.get("active")
    conds = conditions(done)
    assert conds["FailureTarget"]["reason"] == "BackoffLimitExceeded"
    assert conds["Failed"]["reason"] == "BackoffLimitExceeded"
    assert conds["Failed"]["message"] == "Job has reached the specified backoff limit"
    assert "completionTime" not in status
    await assert_finalizers_gone(client, "flaky")

    async def warning():
        return ("Warning", "BackoffLimitExceeded", "Job has reached the specified backoff limit") in (
            await event_reasons(client, "flaky"))

    await cluster.wait_for(warning, message="BackoffLimitExceeded event")


async def test_failed_pod_replaced_after_backoff(cluster) -> None:
    # A 2 s base backoff: the replacement must not appear before it has passed (less the up
    # to 1 s that NodeSim's whole-second finishedAt loses).
    await cluster.start("job", options={"job_backoff_base": 2.0})
    client, node = cluster.client, cluster.node
    await client.create(JOBS, job_manifest("retry", backoffLimit=3))
    (pod,) = await cluster.wait_for(lambda: active_pods(client, "retry"), message="first pod")
    await node.mark_failed(pod, exit_code=7)
    failed_at = time.time()
    (again,) = await cluster.wait_for(lambda: active_pods(client, "retry"), message="replacement")
    assert time.time() - failed_at >= 1.0
    await node.mark_succeeded(again)
    done = await cluster.wait_for(lambda: finished(client, "retry"), message="complete")
    assert done["status"]["failed"] == 1 and done["status"]["succeeded"] == 1
    await assert_finalizers_gone(client, "retry")


async def test_backoff_limit_per_index(cluster) -> None:
    await cluster.start("job", options=FAST_BACKOFF)
    client, node = cluster.client, cluster.node
    await client.create(JOBS, job_manifest("perindex", completions=3, parallelism=3, completionMode="Indexed",
                                           backoffLimitPerIndex=1))
    failure_counts: list[str] = []

    async def index_one_always_fails():
        for pod in await active_pods(client, "perindex"):
            if index_of(pod) == 1:
                failure_counts.append(pod["metadata"]["annotations"]["batch.kubernetes.io/job-index-failure-count"])
                await node.mark_failed(pod, exit_code=3)
            else:
                await node.mark_succeeded(pod)
        return await finished(client, "perindex", "Failed")

    done = await cluster.wait_for(index_one_always_fails, message="job failed with a failed index")
    assert failure_counts == ["0", "1"]  # one retry of index 1, carrying its failure count
    status = done["status"]
    assert status["failedIndexes"] == "1" and status["completedIndexes"] == "0,2"
    assert status["failed"] == 2 and status["succeeded"] == 2
    assert conditions(done)["Failed"]["reason"] == "FailedIndexes"
    assert conditions(done)["FailureTarget"]["message"] == "Job has failed indexes"
    await assert_finalizers_gone(client, "perindex")


async def test_max_failed_indexes_exceeded(cluster) -> None:
    await cluster.start("job", options=FAST_BACKOFF)
    client, node = cluster.client, cluster.node
    cluster.node.auto_run(NS)
    await client.create(JOBS, job_manifest("maxfail", completions=4, parallelism=4, completionMode="Indexed",
                                           backoffLimitPerIndex=0, maxFailedIndexes=1))

    async def running(n: int):
        pods = [p for p in await active_pods(client, "maxfail") if (p.get("status") or {}).get("phase") == "Running"]
        return pods if len(pods) == n else None

    pods = await cluster.wait_for(lambda: running(4), message="4 running")
    for pod in pods:
        if index_of(pod) in (0, 1):
            await node.mark_failed(pod, exit_code=1)
    done = await cluster.wait_for(lambda: finished(client, "maxfail", "Failed"), message="failed")
    assert conditions(done)["Failed"]["reason"] == "MaxFailedIndexesExceeded"
    status = done["status"]
    assert status["failedIndexes"] == "0,1" or status["failedIndexes"] == "0-1"
    assert status["failed"] == 4  # two failed, two deleted while the job failed
    assert not status.get("active") and status["terminating"] == 0
    await assert_finalizers_gone(client, "maxfail")


async def test_active_deadline_seconds(cluster) -> None:
    clock = FakeClock(time.time())
    await cluster.start("job", clock=clock)
    client, node = cluster.client, cluster.node
    node.auto_run(NS)
    await client.create(JOBS, job_manifest("slow", parallelism=2, completions=4, activeDeadlineSeconds=30))

    async def running():
        pods = [p for p in await active_pods(client, "slow") if (p.get("status") or {}).get("phase") == "Running"]
        return len(pods) == 2

    await cluster.wait_for(running, message="2 running")
    job = await get_job(client, "slow")
    assert job["status"]["active"] == 2 or job["status"].get("active") is not None
    clock.advance(31)
    # The controller's own timer runs on the loop's time; nudge it with a job update.
    await client.patch(JOBS, "slow", {"metadata": {"annotations": {"nudge": "1"}}}, NS)
    done = await cluster.wait_for(lambda: finished(client, "slow", "Failed"), message="deadline exceeded")
    conds = conditions(done)
    assert conds["FailureTarget"]["reason"] == "DeadlineExceeded"
    assert conds["Failed"]["reason"] == "DeadlineExceeded"
    assert conds["Failed"]["message"] == "Job was active longer than specified deadline"
    status = done["status"]
    assert not status.get("active") and status["failed"] == 2 and status["terminating"] == 0
    assert await job_pods(client, "slow") == []  # deleted, finalizers removed
    reasons = [r for _, r, _ in await event_reasons(client, "slow")]
    assert "DeadlineExceeded" in reasons or await cluster.wait_for(
        lambda: _has_reason(client, "slow", "DeadlineExceeded"), message="DeadlineExceeded event")


async def _has_reason(client, name: str, reason: str) -> bool:
    return reason in [r for _, r, _ in await event_reasons(client, name)]


def failure_policy(*rules: dict) -> dict:
    return {"rules": list(rules)}


async def test_pod_failure_policy_fail_job(cluster) -> None:
    await cluster.start("job", options=FAST_BACKOFF)
    client, node = cluster.client, cluster.node
    await client.create(JOBS, job_manifest("fatal", backoffLimit=6, parallelism=1, completions=1,
                                           podFailurePolicy=failure_policy(
                                               {"action": "FailJob",
                                                "onExitCodes": {"containerName": "c", "operator": "In",
                                                                "values": [42]}})))
    (pod,) = await cluster.wait_for(lambda: active_pods(client, "fatal"), message="pod")
    await node.mark_failed(pod, exit_code=42)
    done = await cluster.wait_for(lambda: finished(client, "fatal", "Failed"), message="failed by policy")
    conds = conditions(done)
    assert conds["FailureTarget"]["reason"] == "PodFailurePolicy"
    assert conds["Failed"]["reason"] == "PodFailurePolicy"
    assert conds["Failed"]["message"] == (
        f"Container c for pod {NS}/{pod['metadata']['name']} failed with exit code 42 matching FailJob rule at index 0")
    assert done["status"]["failed"] == 1
    assert len(await job_pods(client, "fatal")) == 1  # no retry despite backoffLimit 6
    await assert_finalizers_gone(client, "fatal")


async def test_pod_failure_policy_ignore_and_count(cluster) -> None:
    await cluster.start("job", options=FAST_BACKOFF)
    client, node = cluster.client, cluster.node
    await client.create(JOBS, job_manifest("tolerant", backoffLimit=0, podFailurePolicy=failure_policy(
        {"action": "Ignore", "onExitCodes": {"operator": "In", "values": [3, 4]}},
        {"action": "Count", "onExitCodes": {"operator": "NotIn", "values": [3, 4]}})))
    exits = iter([3, 4])
    uids: set[str] = set()

    async def ignored_failures():
        for pod in await active_pods(client, "tolerant"):
            if pod["metadata"]["uid"] not in uids:
                uids.add(pod["metadata"]["uid"])
                code = next(exits, None)
                if code is None:
                    return pod
                await node.mark_failed(pod, exit_code=code)
        return None

    last = await cluster.wait_for(ignored_failures, message="two ignored failures replaced")
    job = await get_job(client, "tolerant")
    assert not job["status"].get("failed") and not conditions(job).get("Failed")
    await node.mark_failed(last, exit_code=1)  # counted: backoffLimit 0 is exceeded
    done = await cluster.wait_for(lambda: finished(client, "tolerant", "Failed"), message="failed")
    assert done["status"]["failed"] == 1
    assert conditions(done)["Failed"]["reason"] == "BackoffLimitExceeded"
    assert len(await job_pods(client, "tolerant")) == 3
    await assert_finalizers_gone(client, "tolerant")


async def test_pod_failure_policy_fail_index(cluster) -> None:
    await cluster.start("job", options=FAST_BACKOFF)
    client, node = cluster.client, cluster.node
    await client.create(JOBS, job_manifest(
        "failidx", completions=2, parallelism=2, completionMode="Indexed", backoffLimitPerIndex=5,
        podFailurePolicy=failure_policy({"action": "FailIndex", "onExitCodes": {"operator": "In", "values": [5]}})))

    async def two():
        pods = await active_pods(client, "failidx")
        return pods if len(pods) == 2 else None

    pods = await cluster.wait_for(two, message="2 pods")
    for pod in pods:
        if index_of(pod) == 0:
            await node.mark_failed(pod, exit_code=5)
        else:
            await node.mark_succeeded(pod)
    done = await cluster.wait_for(lambda: finished(client, "failidx", "Failed"), message="failed index")
    status = done["status"]
    assert status["failedIndexes"] == "0" and status["completedIndexes"] == "1"
    assert status["failed"] == 1 and status["succeeded"] == 1
    assert conditions(done)["Failed"]["reason"] == "FailedIndexes"
    assert len(await job_pods(client, "failidx")) == 2  # index 0 was not retried
    await assert_finalizers_gone(client, "failidx")


async def test_finalizers_removed_when_job_deleted(cluster) -> None:
    await cluster.start("job")
    client = cluster.client
    await client.create(JOBS, job_manifest("gone", parallelism=2, completions=2))

    async def two_with_finalizer():
        pods = await job_pods(client, "gone")
        return len(pods) == 2 and all(FINALIZER in p["metadata"].get("finalizers", []) for p in pods)

    await cluster.wait_for(two_with_finalizer, message="2 tracked pods")
    await client.delete(JOBS, "gone", NS, propagation_policy="Orphan")

    async def released():
        pods = (await client.list(PODS, NS, label_selector="job-name=gone"))["items"]
        return len(pods) == 2 and all(FINALIZER not in (p["metadata"].get("finalizers") or []) for p in pods)

    await cluster.wait_for(released, message="finalizers removed from the orphaned pods")


async def test_pod_replacement_policy(cluster) -> None:
    await cluster.start("job", options=FAST_BACKOFF)
    client, node = cluster.client, cluster.node
    # TerminatingOrFailed (the default): a pod being deleted is a failure, replaced at once.
    await client.create(JOBS, job_manifest("eager", backoffLimit=3))
    (pod,) = await cluster.wait_for(lambda: active_pods(client, "eager"), message="pod")
    await node.mark_running(pod)
    await client.delete(PODS, pod["metadata"]["name"], NS)
    (again,) = await cluster.wait_for(lambda: active_pods(client, "eager"), message="replacement")
    assert again["metadata"]["uid"] != pod["metadata"]["uid"]

    async def counted():
        job = await get_job(client, "eager")
        return job["status"].get("failed") == 1 and job["status"].get("active") == 1

    await cluster.wait_for(counted, message="deleted pod counted as failed")

    # Failed: a terminating pod is not replaced until it has failed.
    await client.create(JOBS, job_manifest("patient", backoffLimit=3, podReplacementPolicy="Failed"))
    (pod,) = await cluster.wait_for(lambda: active_pods(client, "patient"), message="pod")
    await node.mark_running(pod)
    await client.delete(PODS, pod["metadata"]["name"], NS)

    async def terminating():
        job = await get_job(client, "patient")
        return job["status"].get("terminating") == 1 and not job["status"].get("active")

    await cluster.wait_for(terminating, message="status.terminating 1")
    assert await active_pods(client, "patient") == []
    assert len(await job_pods(client, "patient")) == 1
    await node.mark_failed(pod, exit_code=137)  # the kubelet finishes it
    (again,) = await cluster.wait_for(lambda: active_pods(client, "patient"), message="replacement after failure")
    await node.mark_succeeded(again)
    done = await cluster.wait_for(lambda: finished(client, "patient"), message="complete")
    assert done["status"]["failed"] == 1 and done["status"]["succeeded"] == 1
    await assert_finalizers_gone(client, "patient")


async def test_failed_creates_are_reported_and_other_jobs_served(cluster) -> None:
    await cluster.start("job")
    client, node = cluster.client, cluster.node
    # Pods of this Indexed job get the hostname "<job>-<index>": 64 characters, not a valid
    # DNS label, so the API server rejects every pod the controller tries to create.
    bad = "x" * 62
    await client.create(JOBS, job_manifest(bad, completions=1, completionMode="Indexed"))

    async def failed_create():
        return [m for t, r, m in await event_reasons(client, bad) if t == "Warning" and r == "FailedCreate"]

    (message, *_) = await cluster.wait_for(failed_create, message="FailedCreate event")
    assert message.startswith("Error creating: ")
    await client.create(JOBS, job_manifest("fine"))
    (pod,) = await cluster.wait_for(lambda: active_pods(client, "fine"), message="the other job's pod")
    await node.mark_succeeded(pod)
    await cluster.wait_for(lambda: finished(client, "fine"), message="the other job completes")
    assert await job_pods(client, bad) == []
