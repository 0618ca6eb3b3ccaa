"""The Deployment controller against a real API server, with the ReplicaSet controller and a
simulated node marking pods Running+Ready: rollout, rolling update within maxUnavailable
(watched), Recreate, proportional scaling, pause, history clean-up, progress deadline,
adoption and bad input."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from pybernetes.controllers import deployment_util as du

DEPLOYMENTS = ("apps", "v1", "deployments")
REPLICASETS = ("apps", "v1", "replicasets")
PODS = ("", "v1", "pods")
EVENTS = ("", "v1", "events")
NS = "default"


def deployment(name: str, replicas: int = 3, image: str = "nginx:1", *, strategy: dict | None = None,
               app: str | None = None, **spec: Any) -> dict:
    app = app or name
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": name, "namespace": NS},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": app}},
                     "strategy": strategy or {"type": "RollingUpdate",
                                              "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}},
                     "template": {"metadata": {"labels": {"app": app}},
                                  "spec": {"containers": [{"name": "c", "image": image}]}},
                     **spec}}


async def owned_rss(client, d: dict) -> list[dict]:
    items = (await client.list(REPLICASETS, NS))["items"]
    uid = d["metadata"]["uid"]
    return [rs for rs in items if any(r.get("uid") == uid and r.get("controller")
                                      for r in rs["metadata"].get("ownerReferences") or ())]


async def live_pods(client, app: str) -> list[dict]:
    items = (await client.list(PODS, NS, label_selector=f"app={app}"))["items"]
    return [p for p in items if not p["metadata"].get("deletionTimestamp")]


def condition(d: dict, type_: str) -> dict | None:
    return du.get_condition(d.get("status"), type_)


async def rolled_out(client, name: str, replicas: int) -> dict | None:
    """The Deployment when its rollout is complete, as kubectl rollout status judges it."""
    d = await client.get(DEPLOYMENTS, name, NS)
    s = d.get("status") or {}
    cond = condition(d, du.PROGRESSING)
    if (s.get("observedGeneration", 0) >= d["metadata"]["generation"] and s.get("updatedReplicas") == replicas
            and s.get("replicas") == replicas and s.get("availableReplicas") == replicas
            and cond is not None and cond["reason"] == du.NEW_RS_AVAILABLE):
        return d
    return None


async def events_for(client, name: str) -> list[dict]:
    items = (await client.list(EVENTS, NS))["items"]
    return [e for e in items if e["involvedObject"].get("name") == name]


async def test_rollout_creates_replica_set_and_pods(cluster) -> None:
    await cluster.start("deployment", "replicaset")
    cluster.node.auto_run(NS)
    created = await cluster.client.create(DEPLOYMENTS, deployment("web", 3), NS)
    d = await cluster.wait_for(lambda: rolled_out(cluster.client, "web", 3), message="rollout")
    assert d["metadata"]["annotations"][du.REVISION] == "1"
    assert condition(d, du.AVAILABLE)["reason"] == du.MIN_AVAILABLE
    [rs] = await owned_rss(cluster.client, created)
    hash_ = rs["metadata"]["labels"][du.HASH_LABEL]
    assert rs["metadata"]["name"] == f"web-{hash_}"
    assert rs["spec"]["selector"]["matchLabels"] == {"app": "web", du.HASH_LABEL: hash_}
    ann = rs["metadata"]["annotations"]
    assert (ann[du.REVISION], ann[du.DESIRED_REPLICAS], ann[du.MAX_REPLICAS]) == ("1", "3", "4")
    pods = await live_pods(cluster.client, "web")
    assert len(pods) == 3 and all(p["metadata"]["labels"][du.HASH_LABEL] == hash_ for p in pods)
    evs = await cluster.wait_for(lambda: events_for(cluster.client, "web"), message="events")
    assert any(e["reason"] == "ScalingReplicaSet" and e["message"] == f"Scaled up replica set web-{hash_} from 0 to 3"
               for e in evs)


async def test_rolling_update_never_below_min_available(cluster) -> None:
    """A watcher of the pods checks, at every event of the rollout, that at least
    replicas - maxUnavailable pods are Ready and not terminating, and at most
    replicas + maxSurge exist."""
    await cluster.start("deployment", "replicaset")
    cluster.node.auto_run(NS)
    replicas = 8  # maxSurge 25% -> 2, maxUnavailable 25% -> 2
    await cluster.client.create(DEPLOYMENTS, deployment("roll", replicas), NS)
    await cluster.wait_for(lambda: rolled_out(cluster.client, "roll", replicas), message="first rollout")
    listing = await cluster.client.list(PODS, NS, label_selector="app=roll")
    pods = {p["metadata"]["name"]: p for p in listing["items"]}
    violations: list[str] = []
    seen_new = set()

    async def watch() -> None:
        async for kind, pod in cluster.client.watch(PODS, NS, label_selector="app=roll",
                                                    resource_version=listing["metadata"]["resourceVersion"]):
            name = pod["metadata"]["name"]
            if kind == "DELETED":
                pods.pop(name, None)
            else:
                pods[name] = pod
            ready = [p for p in pods.values() if not p["metadata"].get("deletionTimestamp") and any(
                c["type"] == "Ready" and c["status"] == "True" for c in (p.get("status") or {}).get("conditions") or ())]
            alive = [p for p in pods.values() if not p["metadata"].get("deletionTimestamp")]
            for p in alive:
                if p["spec"]["containers"][0]["image"] == "nginx:2":
                    seen_new.add(p["metadata"]["name"])
            if len(ready) < replicas - 2:
                violations.append(f"only {len(ready)} ready after {kind} {name}")
            if len(alive) > replicas + 2:
                violations.append(f"{len(alive)} pods after {kind} {name}")

    watcher = asyncio.create_task(watch())
    try:
        await cluster.client.patch(DEPLOYMENTS, "roll", {"spec": {"template": {"spec": {"containers": [
            {"name": "c", "image": "nginx:2"}]}}}}, NS, patch_type="strategic")
        d = await cluster.wait_for(lambda: rolled_out(cluster.client, "roll", replicas), message="second rollout")
        await cluster.wait_for(lambda: len([p for p in pods.values() if not p["metadata"].get("deletionTimestamp")])
                               == replicas, message="old pods gone")
    finally:
        watcher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watcher
    assert not violations, violations
    assert len(seen_new) >= replicas
    assert d["metadata"]["annotations"][du.REVISION] == "2"
    rss = await owned_rss(cluster.client, d)
    by_rev = {rs["metadata"]["annotations"][du.REVISION]: rs for rs in rss}
    assert by_rev["1"]["spec"]["replicas"] == 0 and by_rev["2"]["spec"]["replicas"] == replicas
    live = await live_pods(cluster.client, "roll")
    assert {p["spec"]["containers"][0]["image"] for p in live} == {"nginx:2"}


async def test_recreate_scales_old_to_zero_before_new(cluster) -> None:
    await cluster.start("deployment", "replicaset")
    cluster.node.auto_run(NS)
    await cluster.client.create(DEPLOYMENTS, deployment("rec", 3, strategy={"type": "Recreate"}), NS)
    await cluster.wait_for(lambda: rolled_out(cluster.client, "rec", 3), message="first rollout")
    listing = await cluster.client.list(PODS, NS, label_selector="app=rec")
    pods = {p["metadata"]["name"]: p for p in listing["items"]}
    mixed: list[str] = []

    async def watch() -> None:
        async for kind, pod in cluster.client.watch(PODS, NS, label_selector="app=rec",
                                                    resource_version=listing["metadata"]["resourceVersion"]):
            if kind == "DELETED":
                pods.pop(pod["metadata"]["name"], None)
            else:
                pods[pod["metadata"]["name"]] = pod
            images = {p["spec"]["containers"][0]["image"] for p in pods.values()}
            if len(images) > 1:
                mixed.append(f"{kind} {pod['metadata']['name']}: {sorted(images)}")

    watcher = asyncio.create_task(watch())
    try:
        await cluster.client.patch(DEPLOYMENTS, "rec", {"spec": {"template": {"spec": {"containers": [
            {"name": "c", "image": "nginx:2"}]}}}}, NS, patch_type="strategic")
        await cluster.wait_for(lambda: rolled_out(cluster.client, "rec", 3), message="recreate rollout")
        await cluster.wait_for(lambda: len(pods) == 3, message="three pods")
    finally:
        watcher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watcher
    assert not mixed, mixed  # old and new pods never existed at the same time
    assert {p["spec"]["containers"][0]["image"] for p in pods.values()} == {"nginx:2"}


async def test_proportional_scaling_during_a_stuck_rollout(cluster) -> None:
    """10 replicas (maxSurge 3, maxUnavailable 2) rolled to an image whose pods never become
    ready, then scaled to 15: the 5 extra replicas are spread 3 to the old and 2 to the new
    ReplicaSet, as upstream's documentation describes."""
    await cluster.start("deployment", "replicaset")
    strategy = {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 3, "maxUnavailable": 2}}
    created = await cluster.client.create(DEPLOYMENTS, deployment("prop", 10, strategy=strategy), NS)
    sim = cluster.node

    async def mark_good() -> int:
        n = 0
        for p in await live_pods(cluster.client, "prop"):
            if p["spec"]["containers"][0]["image"] == "nginx:1" and (p.get("status") or {}).get("phase") != "Running":
                await sim.mark_running(p)
                n += 1
        return n

    async def all_ready() -> dict | None:
        await mark_good()
        return await rolled_out(cluster.client, "prop", 10)
    await cluster.wait_for(all_ready, message="first rollout")
    await cluster.client.patch(DEPLOYMENTS, "prop", {"spec": {"template": {"spec": {"containers": [
        {"name": "c", "image": "broken:1"}]}}}}, NS, patch_type="strategic")

    async def stuck() -> list | None:
        await mark_good()
        rss = await owned_rss(cluster.client, created)
        sizes = sorted(rs["spec"]["replicas"] for rs in rss)
        return rss if sizes == [5, 8] else None
    await cluster.wait_for(stuck, message="old 8 / new 5")
    await cluster.client.patch(DEPLOYMENTS, "prop", {"spec": {"replicas": 15}}, NS)

    async def spread() -> dict | None:
        rss = await owned_rss(cluster.client, created)
        by_image = {rs["spec"]["template"]["spec"]["containers"][0]["image"]: rs["spec"]["replicas"] for rs in rss}
        return by_image if by_image == {"nginx:1": 11, "broken:1": 7} else None
    await cluster.wait_for(spread, message="proportional spread 11/7")
    for rs in await owned_rss(cluster.client, created):
        assert rs["metadata"]["annotations"][du.DESIRED_REPLICAS] == "15"
        assert rs["metadata"]["annotations"][du.MAX_REPLICAS] == "18"


async def test_progress_deadline_exceeded(cluster) -> None:
    await cluster.start("deployment", "replicaset")  # no node: pods never become ready
    await cluster.client.create(DEPLOYMENTS, deployment("slow", 2, progressDeadlineSeconds=1), NS)

    async def timed_out() -> dict | None:
        d = await cluster.client.get(DEPLOYMENTS, "slow", NS)
        cond = condition(d, du.PROGRESSING)
        return cond if cond is not None and cond["reason"] == du.TIMED_OUT else None
    cond = await cluster.wait_for(timed_out, timeout=30, message="ProgressDeadlineExceeded")
    d = await cluster.client.get(DEPLOYMENTS, "slow", NS)
    [rs] = await owned_rss(cluster.client, d)
    assert cond["status"] == "False"
    assert cond["message"] == f'ReplicaSet "{rs["metadata"]["name"]}" has timed out progressing.'
    assert condition(d, du.AVAILABLE)["status"] == "False"


async def test_pause_scales_but_does_not_roll_and_resume_rolls(cluster) -> None:
    await cluster.start("deployment", "replicaset")
    cluster.node.auto_run(NS)
    created = await cluster.client.create(DEPLOYMENTS, deployment("pz", 2), NS)
    await cluster.wait_for(lambda: rolled_out(cluster.client, "pz", 2), message="first rollout")
    await cluster.client.patch(DEPLOYMENTS, "pz", {"spec": {"paused": True}}, NS)

    async def paused() -> dict | None:
        d = await cluster.client.get(DEPLOYMENTS, "pz", NS)
        cond = condition(d, du.PROGRESSING)
        return d if cond and cond["reason"] == du.PAUSED else None
    d = await cluster.wait_for(paused, message="DeploymentPaused")
    assert condition(d, du.PROGRESSING)["status"] == "Unknown"
    await cluster.client.patch(DEPLOYMENTS, "pz", {"spec": {"replicas": 4, "template": {"spec": {"containers": [
        {"name": "c", "image": "nginx:2"}]}}}}, NS, patch_type="strategic")

    async def scaled() -> dict | None:
        d = await cluster.client.get(DEPLOYMENTS, "pz", NS)
        s = d.get("status") or {}
        return d if s.get("observedGeneration") == d["metadata"]["generation"] and s.get("availableReplicas") == 4 \
            else None
    await cluster.wait_for(scaled, message="scaled while paused")
    rss = await owned_rss(cluster.client, created)
    assert len(rss) == 1 and rss[0]["spec"]["replicas"] == 4  # no new ReplicaSet while paused
    await cluster.client.patch(DEPLOYMENTS, "pz", {"spec": {"paused": False}}, NS)
    d = await cluster.wait_for(lambda: rolled_out(cluster.client, "pz", 4), message="rollout after resume")
    assert d["metadata"]["annotations"][du.REVISION] == "2"
    assert {p["spec"]["containers"][0]["image"] for p in await live_pods(cluster.client, "pz")} == {"nginx:2"}


async def test_revision_history_limit_cleans_old_replica_sets(cluster) -> None:
    await cluster.start("deployment", "replicaset")
    cluster.node.auto_run(NS)
    created = await cluster.client.create(DEPLOYMENTS, deployment("hist", 1, revisionHistoryLimit=1), NS)
    for i in range(2, 5):
        await cluster.client.patch(DEPLOYMENTS, "hist", {"spec": {"template": {"spec": {"containers": [
            {"name": "c", "image": f"nginx:{i}"}]}}}}, NS, patch_type="strategic")
        await cluster.wait_for(lambda: rolled_out(cluster.client, "hist", 1), message=f"rollout {i}")

    async def trimmed() -> list | None:
        rss = await owned_rss(cluster.client, created)
        return rss if len(rss) == 2 else None
    rss = await cluster.wait_for(trimmed, message="only the new and one old ReplicaSet")
    assert sorted(rs["metadata"]["annotations"][du.REVISION] for rs in rss) == ["3", "4"]


async def test_adopts_orphan_replica_set(cluster) -> None:
    await cluster.start("deployment")
    template = deployment("adopt", 2)["spec"]["template"]
    orphan = {"apiVersion": "apps/v1", "kind": "ReplicaSet",
              "metadata": {"name": "adopt-orphan", "namespace": NS, "labels": {"app": "adopt"}},
              "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "adopt"}}, "template": template}}
    await cluster.client.create(REPLICASETS, orphan, NS)
    created = await cluster.client.create(DEPLOYMENTS, deployment("adopt", 2), NS)

    async def adopted() -> dict | None:
        rs = await cluster.client.get(REPLICASETS, "adopt-orphan", NS)
        refs = rs["metadata"].get("ownerReferences") or []
        return rs if refs and refs[0]["uid"] == created["metadata"]["uid"] else None
    rs = await cluster.wait_for(adopted, message="adoption")
    assert rs["metadata"]["ownerReferences"][0]["kind"] == "Deployment"
    # Its template equals the Deployment's: it is the new ReplicaSet, no other is created.
    d = await cluster.wait_for(lambda: _annotated(cluster.client, "adopt"), message="revision")
    assert len(await owned_rss(cluster.client, d)) == 1
    assert rs["metadata"]["name"] == "adopt-orphan"


async def test_replica_set_that_cannot_be_created_is_reported_and_others_served(cluster) -> None:
    """A Deployment name so long that its ReplicaSet's name is invalid:
    Progressing=False ReplicaSetCreateError; another Deployment still rolls out meanwhile."""
    await cluster.start("deployment", "replicaset")
    cluster.node.auto_run(NS)
    long_name = "x" * 250
    await cluster.client.create(DEPLOYMENTS, deployment(long_name, 1, app="long"), NS)
    await cluster.client.create(DEPLOYMENTS, deployment("fine", 2), NS)

    async def failed() -> dict | None:
        d = await cluster.client.get(DEPLOYMENTS, long_name, NS)
        cond = condition(d, du.PROGRESSING)
        return cond if cond and cond["reason"] == du.FAILED_RS_CREATE else None
    cond = await cluster.wait_for(failed, message="ReplicaSetCreateError")
    assert cond["status"] == "False" and cond["message"].startswith("Failed to create new replica set")
    # (The Warning event is recorded too, but an Event named after so long an object is itself
    # invalid, upstream as here.)
    await cluster.wait_for(lambda: rolled_out(cluster.client, "fine", 2), message="the other deployment")


async def _annotated(client, name: str) -> dict | None:
    d = await client.get(DEPLOYMENTS, name, NS)
    return d if (d["metadata"].get("annotations") or {}).get(du.REVISION) == "1" else None


async def test_hash_collision_bumps_collision_count(cluster) -> None:
    """A foreign ReplicaSet already holds the name <deploy>-<hash>: the controller counts a
    collision (status.collisionCount) and names its ReplicaSet with the next hash."""
    from pybernetes.controllers.history import compute_hash

    await cluster.start("deployment", "replicaset")
    cluster.node.auto_run(NS)
    created = await cluster.client.create(DEPLOYMENTS, deployment("coll", 1, paused=True), NS)
    template = created["spec"]["template"]
    squatter = {"apiVersion": "apps/v1", "kind": "ReplicaSet",
                "metadata": {"name": f"coll-{compute_hash(template, None)}", "namespace": NS,
                             "labels": {"other": "x"}},
                "spec": {"replicas": 0, "selector": {"matchLabels": {"other": "x"}},
                         "template": {"metadata": {"labels": {"other": "x"}}, "spec": template["spec"]}}}
    await cluster.client.create(REPLICASETS, squatter, NS)
    await cluster.client.patch(DEPLOYMENTS, "coll", {"spec": {"paused": False}}, NS)
    d = await cluster.wait_for(lambda: rolled_out(cluster.client, "coll", 1), message="rollout")
    assert d["status"]["collisionCount"] == 1
    [rs] = await owned_rss(cluster.client, created)
    assert rs["metadata"]["name"] == f"coll-{compute_hash(template, 1)}"


async def test_min_ready_seconds_is_passed_on_and_delays_availability(cluster) -> None:
    await cluster.start("deployment", "replicaset")
    cluster.node.auto_run(NS)
    created = await cluster.client.create(DEPLOYMENTS, deployment("mrs", 2, minReadySeconds=3), NS)
    seen: list[tuple[int, int]] = []

    async def done() -> dict | None:
        d = await cluster.client.get(DEPLOYMENTS, "mrs", NS)
        s = d.get("status") or {}
        seen.append((s.get("readyReplicas", 0), s.get("availableReplicas", 0)))
        return await rolled_out(cluster.client, "mrs", 2)
    await cluster.wait_for(done, message="rollout with minReadySeconds")
    assert (2, 0) in seen  # ready before available
    [rs] = await owned_rss(cluster.client, created)
    assert rs["spec"]["minReadySeconds"] == 3
    await cluster.client.patch(DEPLOYMENTS, "mrs", {"spec": {"minReadySeconds": 1}}, NS)

    async def updated() -> bool:
        [rs] = await owned_rss(cluster.client, created)
        return rs["spec"]["minReadySeconds"] == 1
    await cluster.wait_for(updated, message="minReadySeconds updated on the ReplicaSet")


async def _set_rs_status(client, rs: dict, available: int) -> None:
    n = rs["spec"]["replicas"]
    rs = dict(rs)
    rs["status"] = {"replicas": n, "fullyLabeledReplicas": n, "readyReplicas": available,
                    "availableReplicas": available, "observedGeneration": rs["metadata"]["generation"]}
    await client.update_status(REPLICASETS, rs)


async def test_rolling_steps_driven_by_replica_set_status(cluster) -> None:
    """The Deployment controller alone (the test plays the ReplicaSet controller by writing
    ReplicaSet status): maxSurge 1, maxUnavailable 0 over 4 replicas goes one pod at a time,
    the old ReplicaSet shrinking only once a new pod is available."""
    await cluster.start("deployment")
    strategy = {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}}
    created = await cluster.client.create(DEPLOYMENTS, deployment("step", 4, strategy=strategy), NS)

    async def rss_by_image() -> dict[str, dict]:
        return {rs["spec"]["template"]["spec"]["containers"][0]["image"]: rs
                for rs in await owned_rss(cluster.client, created)}
    first = (await cluster.wait_for(rss_by_image, message="first ReplicaSet"))["nginx:1"]
    assert first["spec"]["replicas"] == 4
    await _set_rs_status(cluster.client, first, 4)
    await cluster.wait_for(lambda: rolled_out(cluster.client, "step", 4), message="first rollout")
    await cluster.client.patch(DEPLOYMENTS, "step", {"spec": {"template": {"spec": {"containers": [
        {"name": "c", "image": "nginx:2"}]}}}}, NS, patch_type="strategic")

    async def pair() -> tuple[int, int] | None:
        rss = await rss_by_image()
        if "nginx:2" not in rss:
            return None
        return rss["nginx:1"]["spec"]["replicas"], rss["nginx:2"]["spec"]["replicas"]
    sequence = [await cluster.wait_for(pair, message="new ReplicaSet")]
    assert sequence[0] == (4, 1)  # no old pod goes before a new one is available
    while sequence[-1] != (0, 4):
        for rs in (await rss_by_image()).values():
            await _set_rs_status(cluster.client, rs, rs["spec"]["replicas"])
        before = sequence[-1]
        sequence.append(await cluster.wait_for(lambda b=before: _changed(pair, b), message=f"a step after {before}"))
    # Never more than replicas + maxSurge pods; old ones go only as new ones became available
    # (the statuses written make ``before``'s new replicas available); one pod per round.
    assert all(old + new <= 5 for old, new in sequence), sequence
    assert all(after[0] >= 4 - before[1] for before, after in zip(sequence, sequence[1:], strict=False)), sequence
    assert [p for p in sequence if sum(p) == 5] == [(4, 1), (3, 2), (2, 3), (1, 4)], sequence
    for rs in (await rss_by_image()).values():
        await _set_rs_status(cluster.client, rs, rs["spec"]["replicas"])
    d = await cluster.wait_for(lambda: rolled_out(cluster.client, "step", 4), message="second rollout")
    assert d["metadata"]["annotations"][du.REVISION] == "2"


async def _changed(pair, before):
    now = await pair()
    return now if now is not None and now != before else None


async def test_releases_replica_set_whose_labels_stop_matching(cluster) -> None:
    await cluster.start("deployment")
    created = await cluster.client.create(DEPLOYMENTS, deployment("rel", 1), NS)

    async def one_rs() -> dict | None:
        rss = await owned_rss(cluster.client, created)
        return rss[0] if rss else None
    rs = await cluster.wait_for(one_rs, message="ReplicaSet")
    await cluster.client.patch(REPLICASETS, rs["metadata"]["name"],
                               {"metadata": {"labels": {"app": "elsewhere"}}}, NS)

    async def released() -> bool:
        fresh = await cluster.client.get(REPLICASETS, rs["metadata"]["name"], NS)
        return not fresh["metadata"].get("ownerReferences")
    await cluster.wait_for(released, message="ReplicaSet released")
    # The Deployment makes itself a new ReplicaSet (the old name is taken: a collision).
    d = await cluster.wait_for(lambda: _owning_one(cluster.client, created), message="a new ReplicaSet")
    assert d["metadata"]["name"] != rs["metadata"]["name"]


async def _owning_one(client, d: dict) -> dict | None:
    rss = await owned_rss(client, d)
    return rss[0] if len(rss) == 1 else None
