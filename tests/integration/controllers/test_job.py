"""The Job controller against a real API server, NodeSim playing the kubelet: NonIndexed
jobs with completions and parallelism, Indexed jobs (names, index annotation/label,
JOB_COMPLETION_INDEX, hostname, completedIndexes), the success policy, suspend and resume —
each finishing with the right counts and with the job-tracking finalizer gone from every
finished pod."""

from __future__ import annotations

from typing import Any

JOBS = ("batch", "v1", "jobs")
PODS = ("", "v1", "pods")
EVENTS = ("", "v1", "events")
NS = "default"
FINALIZER = "batch.kubernetes.io/job-tracking"


def job_manifest(name: str, **spec: Any) -> dict:
    pod_spec = {"restartPolicy": "Never", "containers": [{"name": "c", "image": "busybox"}]}
    pod_spec.update(spec.pop("pod_spec", {}))
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": name, "namespace": NS},
            "spec": {"template": {"spec": pod_spec}, **spec}}


async def job_pods(client, name: str) -> list[dict]:
    items = (await client.list(PODS, NS, label_selector=f"batch.kubernetes.io/job-name={name}"))["items"]
    return sorted(items, key=lambda p: p["metadata"].get("creationTimestamp", ""))


def is_active(pod: dict) -> bool:
    return (not pod["metadata"].get("deletionTimestamp")
            and (pod.get("status") or {}).get("phase") not in ("Succeeded", "Failed"))


async def active_pods(client, name: str) -> list[dict]:
    return [p for p in await job_pods(client, name) if is_active(p)]


async def get_job(client, name: str) -> dict:
    return await client.get(JOBS, name, NS)


def conditions(job: dict) -> dict[str, dict]:
    return {c["type"]: c for c in (job.get("status") or {}).get("conditions") or []}


def condition_true(job: dict, kind: str) -> bool:
    cond = conditions(job).get(kind)
    return cond is not None and cond["status"] == "True"


async def finished(client, name: str, kind: str = "Complete") -> dict | None:
    job = await get_job(client, name)
    return job if condition_true(job, kind) else None


async def event_reasons(client, name: str) -> list[tuple[str, str, str]]:
    items = (await client.list(EVENTS, NS))["items"]
    return [(e["type"], e["reason"], e["message"]) for e in items
            if e["involvedObject"].get("name") == name and e["involvedObject"].get("kind") == "Job"]


async def assert_finalizers_gone(client, name: str) -> None:
    for pod in await job_pods(client, name):
        assert FINALIZER not in (pod["metadata"].get("finalizers") or []), pod["metadata"]["name"]


def index_of(pod: dict) -> int:
    return int(pod["metadata"]["annotations"]["batch.kubernetes.io/job-completion-index"])

async def test_non_indexed_completions_with_parallelism(cluster) -> None:
    await cluster.start("job")
    client, node = cluster.client, cluster.node
    job = await client.create(JOBS, job_manifest("batch", completions=5, parallelism=2))
    uid = job["metadata"]["uid"]
    most_active = 0

    async def run_pods_to_success():
        nonlocal most_active
        active = await active_pods(client, "batch")
        most_active = max(most_active, len(active))
        for pod in active:
            assert FINALIZER in pod["metadata"]["finalizers"]
            await node.mark_succeeded(pod)
        return await finished(client, "batch")

    done = await cluster.wait_for(run_pods_to_success, message="job complete")
    assert most_active == 2
    status = done["status"]
    assert status["succeeded"] == 5 and not status.get("failed") and not status.get("active")
    assert status.get("ready") == 0 and status.get("terminating") == 0
    assert not (status.get("uncountedTerminatedPods") or {}).get("succeeded")
    assert status["startTime"] and status["completionTime"]
    conds = conditions(done)
    assert conds["SuccessCriteriaMet"]["reason"] == "CompletionsReached"
    assert conds["Complete"]["reason"] == "CompletionsReached"
    assert conds["Complete"]["message"] == "Reached expected number of succeeded pods"
    pods = await job_pods(client, "batch")
    assert len(pods) == 5
    for pod in pods:
        meta = pod["metadata"]
        assert meta["generateName"] == "batch-"
        assert meta["labels"]["batch.kubernetes.io/controller-uid"] == uid
        assert meta["labels"]["controller-uid"] == uid
        assert meta["labels"]["job-name"] == "batch"
        assert meta["ownerReferences"][0]["kind"] == "Job" and meta["ownerReferences"][0]["controller"]
    await assert_finalizers_gone(client, "batch")

    async def completed_event():
        reasons = [r for _, r, _ in await event_reasons(client, "batch")]
        return "Completed" in reasons and reasons.count("SuccessfulCreate") >= 1

    await cluster.wait_for(completed_event, message="Completed and SuccessfulCreate events")


async def test_parallel_job_without_completions_finishes_on_first_success(cluster) -> None:
    await cluster.start("job")
    client, node = cluster.client, cluster.node
    await client.create(JOBS, job_manifest("workq", parallelism=3))

    async def three():
        return len(await active_pods(client, "workq")) == 3

    await cluster.wait_for(three, message="3 workers")
    first, *rest = await active_pods(client, "workq")
    await node.mark_succeeded(first)

    async def status_counts():
        job = await get_job(client, "workq")
        return job["status"].get("succeeded") == 1 and job["status"].get("active") == 2

    await cluster.wait_for(status_counts, message="one succeeded, two still active")
    assert len(await job_pods(client, "workq")) == 3  # no replacement after a success
    for pod in rest:
        await node.mark_succeeded(pod)
    done = await cluster.wait_for(lambda: finished(client, "workq"), message="complete")
    assert done["status"]["succeeded"] == 3
    await assert_finalizers_gone(client, "workq")


async def test_indexed_job(cluster) -> None:
    await cluster.start("job")
    client, node = cluster.client, cluster.node
    await client.create(JOBS, job_manifest("idx", completions=5, parallelism=3, completionMode="Indexed"))
    seen: dict[int, dict] = {}

    async def run_pods_to_success():
        active = await active_pods(client, "idx")
        assert len(active) <= 3
        for pod in active:
            seen[index_of(pod)] = pod
            await node.mark_succeeded(pod)
        return await finished(client, "idx")

    done = await cluster.wait_for(run_pods_to_success, message="indexed job complete")
    assert done["status"]["completedIndexes"] == "0-4"
    assert done["status"]["succeeded"] == 5
    assert sorted(seen) == [0, 1, 2, 3, 4]
    for index, pod in seen.items():
        meta = pod["metadata"]
        assert meta["name"].startswith(f"idx-{index}-") and meta["generateName"] == f"idx-{index}-"
        assert meta["annotations"]["batch.kubernetes.io/job-completion-index"] == str(index)
        assert meta["labels"]["batch.kubernetes.io/job-completion-index"] == str(index)
        assert pod["spec"]["hostname"] == f"idx-{index}"
        env = {e["name"]: e for e in pod["spec"]["containers"][0]["env"]}
        assert env["JOB_COMPLETION_INDEX"]["valueFrom"]["fieldRef"]["fieldPath"] == (
            "metadata.annotations['batch.kubernetes.io/job-completion-index']")
    await assert_finalizers_gone(client, "idx")


async def test_indexed_job_replaces_a_failed_index(cluster) -> None:
    await cluster.start("job", options={"job_backoff_base": 0.05})
    client, node = cluster.client, cluster.node
    await client.create(JOBS, job_manifest("redo", completions=2, parallelism=2, completionMode="Indexed",
                                           backoffLimit=3))

    async def two():
        return len(await active_pods(client, "redo")) == 2

    await cluster.wait_for(two, message="two pods")
    by_index = {index_of(p): p for p in await active_pods(client, "redo")}
    await node.mark_failed(by_index[1], exit_code=2)
    await node.mark_succeeded(by_index[0])

    async def replacement():
        return [p for p in await active_pods(client, "redo") if index_of(p) == 1]

    (again,) = await cluster.wait_for(replacement, message="index 1 recreated")
    await node.mark_succeeded(again)
    done = await cluster.wait_for(lambda: finished(client, "redo"), message="complete")
    assert done["status"]["completedIndexes"] == "0,1" or done["status"]["completedIndexes"] == "0-1"
    assert done["status"]["succeeded"] == 2 and done["status"]["failed"] == 1
    await assert_finalizers_gone(client, "redo")


async def test_success_policy(cluster) -> None:
    await cluster.start("job")
    client, node = cluster.client, cluster.node
    cluster.node.auto_run(NS)
    await client.create(JOBS, job_manifest(
        "leader", completions=4, parallelism=4, completionMode="Indexed",
        successPolicy={"rules": [{"succeededIndexes": "0"}]}))

    async def four_running():
        pods = await active_pods(client, "leader")
        return pods if len(pods) == 4 and all((p.get("status") or {}).get("phase") == "Running" for p in pods) else None

    pods = await cluster.wait_for(four_running, message="4 running pods")
    leader = next(p for p in pods if index_of(p) == 0)
    await node.mark_succeeded(leader)
    done = await cluster.wait_for(lambda: finished(client, "leader"), message="complete by success policy")
    conds = conditions(done)
    assert conds["SuccessCriteriaMet"]["reason"] == "SuccessPolicy"
    assert conds["SuccessCriteriaMet"]["message"] == "Matched rules at index 0"
    assert conds["Complete"]["reason"] == "SuccessPolicy"
    status = done["status"]
    assert status["completedIndexes"] == "0" and status["succeeded"] == 1
    # As upstream, lingering pods removed after the success criteria are met are not failures.
    assert not status.get("failed") and not status.get("active") and status["terminating"] == 0, status
    assert await active_pods(client, "leader") == []
    await assert_finalizers_gone(client, "leader")


async def test_suspend_and_resume(cluster) -> None:
    await cluster.start("job")
    client, node = cluster.client, cluster.node
    node.auto_run(NS)
    await client.create(JOBS, job_manifest("nap", completions=2, parallelism=2, suspend=True))

    async def suspended_condition():
        job = await get_job(client, "nap")
        cond = conditions(job).get("Suspended")
        return job if cond and cond["status"] == "True" else None

    job = await cluster.wait_for(suspended_condition, message="Suspended=True")
    assert conditions(job)["Suspended"]["reason"] == "JobSuspended"
    assert job["status"].get("startTime") is None
    assert await job_pods(client, "nap") == []

    await client.patch(JOBS, "nap", {"spec": {"suspend": False}}, NS)

    async def running(n: int):
        pods = [p for p in await active_pods(client, "nap") if (p.get("status") or {}).get("phase") == "Running"]
        return pods if len(pods) == n else None

    await cluster.wait_for(lambda: running(2), message="2 running after resume")
    job = await get_job(client, "nap")
    assert conditions(job)["Suspended"]["status"] == "False"
    assert conditions(job)["Suspended"]["reason"] == "JobResumed"
    first_start = job["status"]["startTime"]
    assert first_start

    await client.patch(JOBS, "nap", {"spec": {"suspend": True}}, NS)

    async def emptied():
        job = await get_job(client, "nap")
        pods = await job_pods(client, "nap")
        return not pods and job["status"].get("active", 0) == 0 and conditions(job)["Suspended"]["status"] == "True"

    await cluster.wait_for(emptied, message="active pods deleted on suspend")
    job = await get_job(client, "nap")
    assert not job["status"].get("failed")  # pods deleted by suspend are not failures

    await client.patch(JOBS, "nap", {"spec": {"suspend": False}}, NS)
    pods = await cluster.wait_for(lambda: running(2), message="pods recreated after the second resume")
    for pod in pods:
        await node.mark_succeeded(pod)
    done = await cluster.wait_for(lambda: finished(client, "nap"), message="complete")
    assert done["status"]["succeeded"] == 2 and not done["status"].get("failed")
    await assert_finalizers_gone(client, "nap")

    async def suspend_events():
        reasons = [r for _, r, _ in await event_reasons(client, "nap")]
        return reasons.count("Suspended") >= 1 and reasons.count("Resumed") >= 1 and "SuccessfulDelete" in reasons

    await cluster.wait_for(suspend_events, message="Suspended, Resumed and SuccessfulDelete events")
