"""ProbeManager (kubelet/prober_manager.py) with a fake runtime whose exec answers come from a
table the test flips, and periods scaled down to tens of milliseconds: thresholds, startup
gating, initial delay, reset on restart, deletion, events, and tasks stopped on removal."""

from __future__ import annotations

import asyncio
import time

import pytest

from pybernetes.kubelet.prober_manager import ProbeEvent, ProbeManager, RunningContainer
from pybernetes.kubelet.probes import ProbeKind
from pybernetes.kubelet.runtime.protocol import ExecResult, RuntimeError_

SCALE = 0.02  # periodSeconds 1 -> 20 ms


class FakeRuntime:
    """exec_sync answers ``exit[command[-1]]`` (0 = success); records (time, container, name)."""

    def __init__(self) -> None:
        self.exit: dict[str, int | Exception] = {}
        self.calls: list[tuple[float, str, str]] = []

    async def exec_sync(self, container_id: str, command: list[str], limit_seconds: float) -> ExecResult:
        name = command[-1]
        self.calls.append((time.time(), container_id, name))
        answer = self.exit.get(name, 0)
        if isinstance(answer, Exception):
            raise answer
        return ExecResult(answer, f"{name} says {answer}".encode(), b"")

    def count(self, name: str, container_id: str | None = None) -> int:
        return sum(1 for _, cid, n in self.calls if n == name and container_id in (None, cid))


def exec_probe(name: str, **timing) -> dict:
    return {"exec": {"command": ["check", name]}, "periodSeconds": 1, **timing}


def make_pod(containers: list[dict], init: list[dict] | None = None, uid: str = "uid-1", **meta) -> dict:
    return {"metadata": {"name": "p", "namespace": "ns", "uid": uid, **meta},
            "spec": {"containers": containers, "initContainers": init or []}}


async def until(condition, deadline: float = 5.0) -> None:
    end = time.monotonic() + deadline
    while not condition():
        if time.monotonic() > end:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.005)


@pytest.fixture
async def setup():
    runtime = FakeRuntime()
    changes: list[str] = []
    manager = ProbeManager(runtime, changes.append, period_scale=SCALE, jitter=False)
    yield manager, runtime, changes
    await manager.stop()


def running(cid: str = "c1", started_at: float | None = None) -> RunningContainer:
    return RunningContainer(cid, time.time() if started_at is None else started_at)


async def test_without_probes_ready_and_started_once_running(setup) -> None:
    manager, _, _ = setup
    pod = make_pod([{"name": "a"}, {"name": "b"}])
    assert not manager.readiness("uid-1", "a") and not manager.started("uid-1", "a")
    manager.update_pod(pod, "10.0.0.1", {"a": running()})
    assert manager.readiness("uid-1", "a") and manager.started("uid-1", "a")
    assert not manager.readiness("uid-1", "b")  # not running
    assert manager.liveness_failed("uid-1", "a") is None and manager.probe_grace("uid-1", "a") is None


async def test_readiness_thresholds_and_events(setup) -> None:
    manager, runtime, changes = setup
    runtime.exit["ready"] = 1
    pod = make_pod([{"name": "web", "readinessProbe": exec_probe("ready", successThreshold=2, failureThreshold=2)}])
    manager.update_pod(pod, "10.0.0.1", {"web": running()})
    assert not manager.readiness("uid-1", "web")
    assert manager.started("uid-1", "web")
    await until(lambda: runtime.count("ready") >= 2)
    assert not manager.readiness("uid-1", "web") and changes == []
    events = manager.events()
    assert events[0] == ProbeEvent("uid-1", "web", ProbeKind.READINESS, "Readiness probe failed: ready says 1")
    assert events[0].reason == "Unhealthy"

    runtime.exit["ready"] = 0
    before = runtime.count("ready")
    await until(lambda: manager.readiness("uid-1", "web"))
    assert runtime.count("ready") >= before + 2  # successThreshold 2
    assert changes == ["uid-1"]
    runtime.exit["ready"] = 1
    await until(lambda: not manager.readiness("uid-1", "web"))
    assert changes == ["uid-1", "uid-1"]


async def test_startup_gates_liveness_and_readiness_then_stops(setup) -> None:
    manager, runtime, changes = setup
    runtime.exit["startup"] = 1
    pod = make_pod([{"name": "app", "startupProbe": exec_probe("startup", failureThreshold=1000),
                     "livenessProbe": exec_probe("live"), "readinessProbe": exec_probe("ready")}])
    manager.update_pod(pod, "10.0.0.1", {"app": running()})
    await until(lambda: runtime.count("startup") >= 3)
    assert runtime.count("live") == runtime.count("ready") == 0
    assert not manager.started("uid-1", "app") and not manager.readiness("uid-1", "app")
    runtime.exit["startup"] = 0
    await until(lambda: manager.readiness("uid-1", "app"))
    assert manager.started("uid-1", "app")
    await until(lambda: runtime.count("live") >= 2)
    startups = runtime.count("startup")
    await until(lambda: runtime.count("ready") >= 4)
    assert runtime.count("startup") == startups  # the startup probe stopped after its success
    assert manager.liveness_failed("uid-1", "app") is None


async def test_startup_failure_past_threshold_asks_for_a_kill_with_its_grace(setup) -> None:
    manager, runtime, changes = setup
    runtime.exit["startup"] = 1
    pod = make_pod([{"name": "app", "startupProbe": exec_probe("startup", failureThreshold=2,
                                                               terminationGracePeriodSeconds=7),
                     "livenessProbe": exec_probe("live", terminationGracePeriodSeconds=3)}])
    manager.update_pod(pod, "10.0.0.1", {"app": running()})
    await until(lambda: manager.liveness_failed("uid-1", "app") is not None)
    assert manager.liveness_failed("uid-1", "app") == "Container app failed startup probe"
    assert manager.probe_grace("uid-1", "app") == 7
    assert changes == ["uid-1"] and not manager.started("uid-1", "app")
    assert runtime.count("startup") == 2 and runtime.count("live") == 0


async def test_liveness_failure_holds_until_a_new_container_which_resets_results(setup) -> None:
    manager, runtime, changes = setup
    runtime.exit["live"] = 1
    pod = make_pod([{"name": "app", "livenessProbe": exec_probe("live", failureThreshold=3,
                                                                terminationGracePeriodSeconds=4),
                     "readinessProbe": exec_probe("ready")}])
    manager.update_pod(pod, "10.0.0.1", {"app": running("c1")})
    await until(lambda: manager.readiness("uid-1", "app"))
    await until(lambda: manager.liveness_failed("uid-1", "app") is not None)
    assert manager.liveness_failed("uid-1", "app") == "Container app failed liveness probe"
    assert manager.probe_grace("uid-1", "app") == 4
    assert runtime.count("live", "c1") == 3
    failed = [e for e in manager.events() if e.kind is ProbeKind.LIVENESS]
    assert len(failed) == 3 and failed[0].message == "Liveness probe failed: live says 1"
    await until(lambda: runtime.count("ready", "c1") >= runtime.count("live", "c1") + 3)
    assert runtime.count("live", "c1") == 3  # on hold: no more liveness attempts on c1

    runtime.exit["live"] = 0
    runtime.exit["ready"] = 1
    manager.update_pod(pod, "10.0.0.1", {"app": running("c2")})  # the pod worker restarted it
    assert manager.liveness_failed("uid-1", "app") is None
    assert not manager.readiness("uid-1", "app")  # readiness starts over as False
    await until(lambda: runtime.count("live", "c2") >= 2 and runtime.count("ready", "c2") >= 2)
    assert manager.liveness_failed("uid-1", "app") is None and not manager.readiness("uid-1", "app")


async def test_initial_delay_counts_from_the_container_start(setup) -> None:
    manager, runtime, _ = setup
    started = time.time()
    pod = make_pod([{"name": "app", "readinessProbe": exec_probe("ready", initialDelaySeconds=25)}])
    manager.update_pod(pod, "10.0.0.1", {"app": running(started_at=started)})
    await until(lambda: manager.readiness("uid-1", "app"))
    assert runtime.calls[0][0] - started >= 25 * SCALE
    # a container that started long ago is probed at once
    pod2 = make_pod([{"name": "app", "readinessProbe": exec_probe("ready2", initialDelaySeconds=25)}], uid="uid-2")
    begin = time.time()
    manager.update_pod(pod2, "10.0.0.2", {"app": running("c9", started_at=started - 100)})
    await until(lambda: manager.readiness("uid-2", "app"))
    assert next(t for t, _, n in runtime.calls if n == "ready2") - begin < 25 * SCALE


async def test_errored_attempts_are_not_counted(setup) -> None:
    manager, runtime, changes = setup
    runtime.exit["live"] = RuntimeError_("ExecError", "runtime hiccup")
    pod = make_pod([{"name": "app", "livenessProbe": exec_probe("live", failureThreshold=1)}])
    manager.update_pod(pod, "10.0.0.1", {"app": running()})
    await until(lambda: runtime.count("live") >= 9)  # three rounds of three tries
    assert manager.liveness_failed("uid-1", "app") is None and changes == []
    events = manager.events()
    assert events[0].message == "Liveness probe errored and resulted in unknown state: runtime hiccup"


async def test_sidecars_are_probed_plain_init_containers_are_not(setup) -> None:
    manager, runtime, _ = setup
    runtime.exit["init"] = runtime.exit["side"] = 1
    pod = make_pod([{"name": "main"}], init=[
        {"name": "setup", "readinessProbe": exec_probe("init")},
        {"name": "proxy", "restartPolicy": "Always", "readinessProbe": exec_probe("side", failureThreshold=1)}])
    manager.update_pod(pod, "10.0.0.1", {"setup": running("i1"), "proxy": running("s1"), "main": running("m1")})
    await until(lambda: runtime.count("side") >= 2)
    assert runtime.count("init") == 0
    assert not manager.readiness("uid-1", "proxy") and manager.readiness("uid-1", "main")
    assert not manager.readiness("uid-1", "setup")


async def test_deletion_silences_liveness(setup) -> None:
    manager, runtime, _ = setup
    runtime.exit["live"] = 1
    pod = make_pod([{"name": "app", "livenessProbe": exec_probe("live", failureThreshold=1000),
                     "readinessProbe": exec_probe("ready")}])
    manager.update_pod(pod, "10.0.0.1", {"app": running()})
    await until(lambda: runtime.count("live") >= 1)
    deleting = make_pod(pod["spec"]["containers"], deletionTimestamp="2025-01-01T00:00:00Z")
    manager.update_pod(deleting, "10.0.0.1", {"app": running()})
    lives = runtime.count("live")
    await until(lambda: runtime.count("ready") >= lives + 4)
    assert runtime.count("live") <= lives + 1 and manager.liveness_failed("uid-1", "app") is None


def probe_tasks(uid_part: str = "") -> list[asyncio.Task]:
    return [t for t in asyncio.all_tasks() if t.get_name().startswith("probe/") and uid_part in t.get_name()]


async def test_stopped_containers_and_removed_pods_stop_their_tasks(setup) -> None:
    manager, runtime, _ = setup
    pod = make_pod([{"name": "a", "readinessProbe": exec_probe("ra"), "livenessProbe": exec_probe("la")},
                    {"name": "b", "readinessProbe": exec_probe("rb")}])
    manager.update_pod(pod, "10.0.0.1", {"a": running("ca"), "b": running("cb")})
    assert sorted(t.get_name() for t in probe_tasks()) == [
        "probe/liveness/ns/p/a", "probe/readiness/ns/p/a", "probe/readiness/ns/p/b"]
    await until(lambda: manager.readiness("uid-1", "b"))
    manager.update_pod(pod, "10.0.0.1", {"a": running("ca")})  # b exited
    assert not manager.readiness("uid-1", "b")
    await until(lambda: [t.get_name() for t in probe_tasks()] and all(
        not t.get_name().endswith("/b") for t in probe_tasks()))
    calls = runtime.count("rb")
    manager.remove_pod("uid-1")
    await until(lambda: probe_tasks() == [])
    assert not manager.readiness("uid-1", "a") and runtime.count("rb") == calls


async def test_stop_cancels_every_worker() -> None:
    runtime = FakeRuntime()
    manager = ProbeManager(runtime, lambda uid: None, period_scale=SCALE)  # with the first-run jitter
    for n in range(5):
        pod = make_pod([{"name": "c", "readinessProbe": exec_probe("r")}], uid=f"u{n}")
        manager.update_pod(pod, "10.0.0.1", {"c": running(f"c{n}")})
    await until(lambda: all(manager.readiness(f"u{n}", "c") for n in range(5)))
    assert len(probe_tasks()) == 5
    await manager.stop()
    assert probe_tasks() == []


async def test_on_event_callback_and_a_broken_on_change_do_not_stop_workers() -> None:
    runtime = FakeRuntime()
    seen: list[ProbeEvent] = []

    def broken(uid: str) -> None:
        raise ValueError("boom")

    manager = ProbeManager(runtime, broken, period_scale=SCALE, jitter=False, on_event=seen.append)
    try:
        runtime.exit["ready"] = 1
        pod = make_pod([{"name": "c", "readinessProbe": exec_probe("ready", failureThreshold=1)}])
        manager.update_pod(pod, "10.0.0.1", {"c": running()})
        await until(lambda: len(seen) >= 1)
        runtime.exit["ready"] = 0
        await until(lambda: manager.readiness("uid-1", "c"))
        runtime.exit["ready"] = 1
        await until(lambda: not manager.readiness("uid-1", "c"))
        assert seen[0].message == "Readiness probe failed: ready says 1"
    finally:
        await manager.stop()
