"""The real kubectl 1.32 against the StatefulSet controller: ``rollout status``, ``rollout
history`` (ControllerRevisions) and ``rollout undo`` (back to the previous revision, which the
controller reuses with a new number)."""

from __future__ import annotations

from pathlib import Path

from kubectl_cli import kubectl_in_thread, needs_kubectl
from test_statefulset import NS, PODS, REVISIONS, STS, stateful_set, wait_status
from test_statefulset_update import images, set_image


async def kubectl(cluster, home: Path, *args: str):
    result = await kubectl_in_thread(cluster.url, home, "-n", NS, *args)
    assert result.returncode == 0, f"kubectl {' '.join(args)}: {result.stdout}{result.stderr}"
    return result


@needs_kubectl
async def test_rollout_status_history_undo(cluster, tmp_path: Path) -> None:
    await cluster.node.create_node("node-1")
    cluster.node.auto_run(NS)
    await cluster.start("statefulset")
    await cluster.client.create(STS, stateful_set("web", 2, claims=False))
    out = await kubectl(cluster, tmp_path, "rollout", "status", "statefulset/web", "--timeout=60s")
    assert "partitioned roll out complete" in out.stdout or "roll out complete" in out.stdout
    await set_image(cluster.client, "web", "db:2")
    out = await kubectl(cluster, tmp_path, "rollout", "status", "sts/web", "--timeout=60s")
    assert "complete" in out.stdout
    assert await images(cluster.client, "web") == {"web-0": "db:2", "web-1": "db:2"}
    history = await kubectl(cluster, tmp_path, "rollout", "history", "sts/web")
    assert [line.split()[0] for line in history.stdout.splitlines()[2:] if line.strip()] == ["1", "2"]
    await kubectl(cluster, tmp_path, "rollout", "undo", "sts/web")
    await wait_status(cluster, "web", readyReplicas=2, updatedReplicas=2, currentReplicas=2)

    async def back() -> bool:
        return await images(cluster.client, "web") == {"web-0": "db:1", "web-1": "db:1"}

    await cluster.wait_for(back, message="pods back at db:1")
    revs = sorted(r["revision"] for r in (await cluster.client.list(REVISIONS, NS))["items"])
    assert revs == [2, 3]
    assert (await cluster.client.get(PODS, "web-0", NS))["spec"]["containers"][0]["image"] == "db:1"
