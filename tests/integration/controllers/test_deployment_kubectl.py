"""`kubectl rollout status|history|undo|pause|resume|restart` (the real kubectl 1.32) against
the Deployment and ReplicaSet controllers, with a simulated node marking pods ready."""

from __future__ import annotations

from pathlib import Path

from kubectl_cli import kubectl_in_thread, needs_kubectl
from test_deployment import DEPLOYMENTS, NS, condition, deployment, live_pods, owned_rss, rolled_out

from pybernetes.controllers import deployment_util as du


async def kubectl(cluster, home: Path, *args: str, ok: bool = True):
    result = await kubectl_in_thread(cluster.url, home, "-n", NS, *args)
    if ok:
        assert result.returncode == 0, f"kubectl {' '.join(args)}: {result.stdout}{result.stderr}"
    return result


def images(pods: list[dict]) -> set[str]:
    return {p["spec"]["containers"][0]["image"] for p in pods}


@needs_kubectl
async def test_rollout_status_history_undo(cluster, tmp_path: Path) -> None:
    await cluster.start("deployment", "replicaset")
    cluster.node.auto_run(NS)
    body = deployment("web", 3)
    body["metadata"]["annotations"] = {"kubernetes.io/change-cause": "first"}
    created = await cluster.client.create(DEPLOYMENTS, body, NS)
    status = await kubectl(cluster, tmp_path, "rollout", "status", "deployment/web", "--timeout=60s")
    assert 'deployment "web" successfully rolled out' in status.stdout

    await kubectl(cluster, tmp_path, "set", "image", "deployment/web", "c=nginx:2")
    await kubectl(cluster, tmp_path, "annotate", "deployment/web", "kubernetes.io/change-cause=second",
                  "--overwrite")
    status = await kubectl(cluster, tmp_path, "rollout", "status", "deployment/web", "--timeout=60s")
    assert "successfully rolled out" in status.stdout
    assert images(await live_pods(cluster.client, "web")) == {"nginx:2"}
    rss = await owned_rss(cluster.client, created)
    first = next(rs for rs in rss if rs["metadata"]["annotations"][du.REVISION] == "1")

    history = await kubectl(cluster, tmp_path, "rollout", "history", "deployment/web")
    lines = [line.split() for line in history.stdout.splitlines()]
    assert ["1", "first"] in lines and ["2", "second"] in lines, history.stdout
    detail = await kubectl(cluster, tmp_path, "rollout", "history", "deployment/web", "--revision=1")
    assert "nginx:1" in detail.stdout

    undo = await kubectl(cluster, tmp_path, "rollout", "undo", "deployment/web")
    assert "rolled back" in undo.stdout
    await kubectl(cluster, tmp_path, "rollout", "status", "deployment/web", "--timeout=60s")
    d = await cluster.wait_for(lambda: rolled_out(cluster.client, "web", 3), message="rolled back")
    assert images(await live_pods(cluster.client, "web")) == {"nginx:1"}
    # The first ReplicaSet is back, as revision 3, remembering it was revision 1.
    back = next(rs for rs in await owned_rss(cluster.client, created)
                if rs["metadata"]["name"] == first["metadata"]["name"])
    assert back["spec"]["replicas"] == 3
    assert back["metadata"]["annotations"][du.REVISION] == "3"
    assert back["metadata"]["annotations"][du.REVISION_HISTORY] == "1"
    assert d["metadata"]["annotations"][du.REVISION] == "3"
    assert len(await owned_rss(cluster.client, created)) == 2
    history = await kubectl(cluster, tmp_path, "rollout", "history", "deployment/web")
    revisions = [line.split()[0] for line in history.stdout.splitlines()[2:] if line.strip()]
    assert revisions == ["2", "3"], history.stdout


@needs_kubectl
async def test_rollout_pause_resume_restart(cluster, tmp_path: Path) -> None:
    await cluster.start("deployment", "replicaset")
    cluster.node.auto_run(NS)
    created = await cluster.client.create(DEPLOYMENTS, deployment("app", 2), NS)
    await kubectl(cluster, tmp_path, "rollout", "status", "deployment/app", "--timeout=60s")

    await kubectl(cluster, tmp_path, "rollout", "pause", "deployment/app")
    await kubectl(cluster, tmp_path, "set", "image", "deployment/app", "c=nginx:2")

    async def paused() -> dict | None:
        d = await cluster.client.get(DEPLOYMENTS, "app", NS)
        cond = condition(d, du.PROGRESSING)
        s = d.get("status") or {}
        return d if cond and cond["reason"] == du.PAUSED and s.get("observedGeneration") == \
            d["metadata"]["generation"] else None
    await cluster.wait_for(paused, message="DeploymentPaused")
    assert len(await owned_rss(cluster.client, created)) == 1
    restart = await kubectl(cluster, tmp_path, "rollout", "restart", "deployment/app", ok=False)
    assert restart.returncode != 0 and "paused" in restart.stderr

    await kubectl(cluster, tmp_path, "rollout", "resume", "deployment/app")
    await kubectl(cluster, tmp_path, "rollout", "status", "deployment/app", "--timeout=60s")
    await cluster.wait_for(lambda: rolled_out(cluster.client, "app", 2), message="rollout after resume")
    assert images(await live_pods(cluster.client, "app")) == {"nginx:2"}

    await kubectl(cluster, tmp_path, "rollout", "restart", "deployment/app")
    await kubectl(cluster, tmp_path, "rollout", "status", "deployment/app", "--timeout=60s")
    d = await cluster.wait_for(lambda: rolled_out(cluster.client, "app", 2), message="restart rollout")
    assert "kubectl.kubernetes.io/restartedAt" in d["spec"]["template"]["metadata"]["annotations"]
    assert d["metadata"]["annotations"][du.REVISION] == "3"
    rss = await owned_rss(cluster.client, created)
    newest = next(rs for rs in rss if rs["metadata"]["annotations"][du.REVISION] == "3")
    assert newest["spec"]["replicas"] == 2
    pods = await live_pods(cluster.client, "app")
    assert len(pods) == 2 and all(
        p["metadata"]["labels"][du.HASH_LABEL] == newest["metadata"]["labels"][du.HASH_LABEL] for p in pods)


@needs_kubectl
async def test_rollout_status_reports_progress_deadline(cluster, tmp_path: Path) -> None:
    await cluster.start("deployment", "replicaset")  # no node: the pods never become ready
    await cluster.client.create(DEPLOYMENTS, deployment("stuck", 1, progressDeadlineSeconds=1), NS)
    result = await kubectl(cluster, tmp_path, "rollout", "status", "deployment/stuck", "--timeout=60s", ok=False)
    assert result.returncode != 0
    assert 'deployment "stuck" exceeded its progress deadline' in result.stderr
