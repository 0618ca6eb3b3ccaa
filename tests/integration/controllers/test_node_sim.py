"""The simulated node the controller tests rely on: binding, status, graceful deletions."""

from __future__ import annotations

PODS = ("", "v1", "pods")


def _pod(name: str) -> dict:
    return {"metadata": {"name": name}, "spec": {"containers": [{"name": "c", "image": "busybox"}]}}


async def test_auto_run_binds_marks_ready_and_finishes_deletions(cluster) -> None:
    await cluster.node.create_node("node-1")
    cluster.node.auto_run("default")
    await cluster.client.create(PODS, _pod("p1"), "default")

    async def ready():
        pod = await cluster.client.get(PODS, "p1", "default")
        conds = {c["type"]: c["status"] for c in pod["status"].get("conditions") or []}
        return pod if pod["status"].get("phase") == "Running" and conds.get("Ready") == "True" else None

    pod = await cluster.wait_for(ready, message="p1 Running and Ready")
    assert pod["spec"]["nodeName"] == "node-1"
    assert pod["status"]["podIP"].startswith("10.42.")
    deleted = await cluster.client.delete(PODS, "p1", "default")
    assert deleted["metadata"].get("deletionTimestamp")  # bound: graceful

    async def gone():
        items = (await cluster.client.list(PODS, "default"))["items"]
        return not items

    await cluster.wait_for(gone, message="p1 deleted by the simulated kubelet")


async def test_phases_by_hand(cluster) -> None:
    await cluster.client.create(PODS, _pod("job-pod"), "default")
    done = await cluster.node.mark_failed("job-pod", "default", exit_code=3)
    assert done["status"]["phase"] == "Failed"
    assert done["status"]["containerStatuses"][0]["state"]["terminated"]["exitCode"] == 3
    await cluster.client.create(PODS, _pod("ok-pod"), "default")
    ok = await cluster.node.mark_succeeded("ok-pod", "default")
    assert ok["status"]["containerStatuses"][0]["state"]["terminated"]["reason"] == "Completed"
