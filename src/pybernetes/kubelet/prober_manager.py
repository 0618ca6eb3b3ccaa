"""The kubelet's probe workers (upstream's prober manager and workers, kubelet v1.32): one
asyncio task per running container and probe kind, the results the pod workers read, and the
probe events they post.

The pod workers tell the manager what runs (``update_pod`` with the running containers and
their ids, ``remove_pod``) and read ``readiness``, ``started``, ``liveness_failed`` and
``probe_grace``; ``on_change(pod_uid)`` is called when a result of the pod changes.

- **Which containers:** the pod's containers and its restartable (sidecar) init containers
  that declare probes, while they run.  A new container id for a name (a restart) resets that
  container's workers and results (readiness back to False); a container that stopped loses
  its workers and results.
- **Initial results** as upstream: readiness False, liveness success, startup unknown.  A
  container without a startup probe is started at once; one without a readiness probe is
  ready once started.  Liveness and readiness workers wait until the container has started.
- **Timing:** a worker's first attempt comes after initialDelaySeconds from the container's
  start (and, while the manager is younger than the period, after a random part of the period,
  as upstream spreads probes after a kubelet restart); then every periodSeconds.  Each attempt
  runs within timeoutSeconds.  An attempt that errored (unknown) is retried up to 3 times and
  then not counted.
- **Thresholds:** a result is recorded after successThreshold successes or failureThreshold
  failures in a row.  A startup probe stops once it succeeded (and triggers an immediate
  readiness attempt).  A liveness or startup failure past the threshold stops that worker until
  the container is replaced: ``liveness_failed`` then gives upstream's reason ("Container web
  failed liveness probe") so the pod worker kills the container, with the probe's
  terminationGracePeriodSeconds (``probe_grace``) when set.
- **Deletion:** once the pod has a deletionTimestamp, liveness and startup report success
  and stop (a quiet shutdown); readiness goes on.
- **Events:** every failed attempt gives a ``ProbeEvent`` (``Readiness probe failed: HTTP
  probe failed with statuscode: 500``), a warning ("... probe warning: ...") or an error
  ("... probe errored and resulted in unknown state: ..."); ``events()`` drains them and
  ``on_event`` receives each one.

``period_scale`` multiplies initial delays and periods (tests run probes every few tens of ms);
``jitter=False`` drops the random first delay.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import enum
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from pybernetes.kubelet.probes import ProbeKind, ProbeResult, ProbeTiming, run_probe, timing
from pybernetes.kubelet.runtime.protocol import Runtime

log = logging.getLogger(__name__)

Obj = dict[str, Any]
MAX_RETRIES = 3  # attempts of a probe that errored, as upstream's maxProbeRetries
MAX_EVENTS = 1000


@dataclass(frozen=True, slots=True)
class RunningContainer:
    container_id: str
    started_at: float  # time.time() seconds


class ProbeEvent(NamedTuple):
    pod_uid: str
    container_name: str
    kind: ProbeKind
    message: str  # "Liveness probe failed: ...", for a Warning event

    @property
    def reason(self) -> str:
        """The event's reason: ProbeWarning for a warning, else Unhealthy."""
        return "ProbeWarning" if " probe warning: " in self.message else "Unhealthy"


class _Result(enum.Enum):
    UNKNOWN = "unknown"
    SUCCESS = "success"
    FAILURE = "failure"


_INITIAL = {ProbeKind.READINESS: _Result.FAILURE, ProbeKind.LIVENESS: _Result.SUCCESS,
            ProbeKind.STARTUP: _Result.UNKNOWN}


@dataclass(eq=False)
class _Container:
    """One running instance of a container (its id) with its probes' workers and results."""

    name: str
    spec: Obj
    container_id: str
    started_at: float
    probes: dict[ProbeKind, tuple[Obj, ProbeTiming]]
    results: dict[ProbeKind, _Result] = field(default_factory=dict)
    failed: dict[ProbeKind, str] = field(default_factory=dict)  # kind -> kill reason
    started: asyncio.Event = field(default_factory=asyncio.Event)
    triggers: dict[ProbeKind, asyncio.Event] = field(default_factory=dict)
    tasks: dict[ProbeKind, asyncio.Task[None]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for kind in self.probes:
            self.results[kind] = _INITIAL[kind]
            self.triggers[kind] = asyncio.Event()
        if ProbeKind.STARTUP not in self.probes:
            self.started.set()

    def cancel(self) -> None:
        for task in self.tasks.values():
            task.cancel()


@dataclass(eq=False)
class _Pod:
    pod: Obj
    pod_ip: str
    containers: dict[str, _Container] = field(default_factory=dict)


def _probed_containers(pod: Obj) -> dict[str, Obj]:
    """The containers whose probes run: regular containers and sidecar init containers."""
    spec = pod.get("spec") or {}
    chosen = {c["name"]: c for c in spec.get("initContainers") or [] if c.get("restartPolicy") == "Always"}
    chosen.update({c["name"]: c for c in spec.get("containers") or []})
    return chosen


class ProbeManager:
    def __init__(self, runtime: Runtime, on_change: Callable[[str], None], *,
                 clock: Callable[[], float] = time.monotonic, period_scale: float = 1.0, jitter: bool = True,
                 on_event: Callable[[ProbeEvent], None] | None = None) -> None:
        self._runtime = runtime
        self._on_change = on_change
        self._on_event = on_event
        self._clock = clock
        self._scale = period_scale
        self._jitter = jitter
        self._start = clock()
        self._pods: dict[str, _Pod] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._events: collections.deque[ProbeEvent] = collections.deque(maxlen=MAX_EVENTS)

    # -- what runs -------------------------------------------------------------------------------

    def update_pod(self, pod: Obj, pod_ip: str, containers: dict[str, RunningContainer]) -> None:
        """The pod and its running containers (name -> id and start), as the pod worker sees
        them now; call it from the event loop whenever they change."""
        uid = (pod.get("metadata") or {}).get("uid", "")
        entry = self._pods.get(uid)
        if entry is None:
            entry = self._pods[uid] = _Pod(pod, pod_ip)
        entry.pod, entry.pod_ip = pod, pod_ip
        deleting = bool((pod.get("metadata") or {}).get("deletionTimestamp"))
        specs = _probed_containers(pod)
        for name in list(entry.containers):
            current = entry.containers[name]
            running = containers.get(name)
            if running is None or running.container_id != current.container_id or name not in specs:
                current.cancel()
                del entry.containers[name]
        for name, running in containers.items():
            spec = specs.get(name)
            if spec is None or name in entry.containers:
                continue
            probes = {kind: (spec[kind.field], timing(spec[kind.field], kind))
                      for kind in ProbeKind if isinstance(spec.get(kind.field), dict)}
            container = entry.containers[name] = _Container(name, spec, running.container_id, running.started_at,
                                                             probes)
            for kind in probes:
                task = asyncio.get_running_loop().create_task(
                    self._run(uid, container, kind), name=f"probe/{kind.value}/{self._pod_name(pod)}/{name}")
                container.tasks[kind] = task
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
        if deleting:
            for container in entry.containers.values():
                self._quiet_shutdown(container)

    def remove_pod(self, pod_uid: str) -> None:
        """Stops the pod's workers and forgets its results."""
        entry = self._pods.pop(pod_uid, None)
        if entry is not None:
            for container in entry.containers.values():
                container.cancel()

    async def stop(self) -> None:
        for uid in list(self._pods):
            self.remove_pod(uid)
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    # -- results ---------------------------------------------------------------------------------

    def _container(self, pod_uid: str, name: str) -> _Container | None:
        entry = self._pods.get(pod_uid)
        return entry.containers.get(name) if entry is not None else None

    def started(self, pod_uid: str, container_name: str) -> bool:
        """True once the startup probe succeeded, or at once without one (False for a container
        the manager does not know as running)."""
        container = self._container(pod_uid, container_name)
        return container is not None and container.started.is_set()

    def readiness(self, pod_uid: str, container_name: str) -> bool:
        """The container is started and its readiness probe has succeeded (or it has none)."""
        container = self._container(pod_uid, container_name)
        if container is None or not container.started.is_set():
            return False
        return container.results.get(ProbeKind.READINESS, _Result.SUCCESS) is _Result.SUCCESS

    def liveness_failed(self, pod_uid: str, container_name: str) -> str | None:
        """Why the current container must be killed (its liveness or startup probe failed
        failureThreshold times), else None."""
        container = self._container(pod_uid, container_name)
        if container is None:
            return None
        for kind in (ProbeKind.LIVENESS, ProbeKind.STARTUP):
            if container.results.get(kind) is _Result.FAILURE:
                return container.failed.get(kind) or f"Container {container_name} failed {kind.value} probe"
        return None

    def probe_grace(self, pod_uid: str, container_name: str) -> int | None:
        """The failed probe's terminationGracePeriodSeconds (the liveness probe's when none failed)."""
        container = self._container(pod_uid, container_name)
        if container is None:
            return None
        kind = ProbeKind.STARTUP if container.results.get(ProbeKind.STARTUP) is _Result.FAILURE else ProbeKind.LIVENESS
        probe = container.probes.get(kind)
        return probe[1].termination_grace if probe is not None else None

    def events(self) -> list[ProbeEvent]:
        """The probe events since the last call (oldest first)."""
        drained = list(self._events)
        self._events.clear()
        return drained

    # -- workers ---------------------------------------------------------------------------------

    @staticmethod
    def _pod_name(pod: Obj) -> str:
        meta = pod.get("metadata") or {}
        return f"{meta.get('namespace', '')}/{meta.get('name', '')}"

    def _quiet_shutdown(self, container: _Container) -> None:
        for kind in (ProbeKind.LIVENESS, ProbeKind.STARTUP):
            if kind in container.probes:
                task = container.tasks.pop(kind, None)
                if task is not None:
                    task.cancel()
                container.results[kind] = _Result.SUCCESS
                container.failed.pop(kind, None)
        container.started.set()

    def _set(self, uid: str, container: _Container, kind: ProbeKind, result: _Result) -> None:
        if container.results.get(kind) is result:
            return
        container.results[kind] = result
        if kind is ProbeKind.STARTUP and result is _Result.SUCCESS:
            container.started.set()
            trigger = container.triggers.get(ProbeKind.READINESS)
            if trigger is not None:
                trigger.set()
        try:
            self._on_change(uid)
        except Exception:  # a broken callback must not end the worker
            log.exception("probe result callback failed for pod %s", uid)

    def _event(self, uid: str, container: _Container, kind: ProbeKind, result: ProbeResult) -> None:
        if result.success is None:
            message = f"{kind.label} probe errored and resulted in unknown state: {result.message}"
        elif result.warning:
            message = f"{kind.label} probe warning: {result.message}"
        elif not result.success:
            message = f"{kind.label} probe failed: {result.message}"
        else:
            return
        event = ProbeEvent(uid, container.name, kind, message)
        self._events.append(event)
        if self._on_event is not None:
            try:
                self._on_event(event)
            except Exception:  # nor a broken event sink
                log.exception("probe event callback failed for pod %s", uid)

    async def _attempt(self, uid: str, container: _Container, kind: ProbeKind) -> ProbeResult:
        entry = self._pods.get(uid) or _Pod({}, "")
        probe, spec_timing = container.probes[kind]
        result = ProbeResult(None)
        for _ in range(MAX_RETRIES):
            try:
                result = await run_probe(probe, kind=kind, pod=entry.pod, container=container.spec,
                                         pod_ip=entry.pod_ip, container_id=container.container_id,
                                         runtime=self._runtime, limit_seconds=spec_timing.timeout)
            except Exception as exc:  # a probe bug is an errored attempt, not a dead worker
                log.exception("%s probe of %s in pod %s", kind.value, container.name, uid)
                result = ProbeResult(None, str(exc) or type(exc).__name__)
            if result.success is not None:
                break
        return result

    async def _run(self, uid: str, container: _Container, kind: ProbeKind) -> None:
        _, spec_timing = container.probes[kind]
        period = spec_timing.period * self._scale
        if kind is not ProbeKind.STARTUP:
            await container.started.wait()
        if self._jitter and self._clock() - self._start < period:
            await asyncio.sleep(random.random() * period)
        delay = container.started_at + spec_timing.initial_delay * self._scale - time.time()
        if delay > 0:
            await asyncio.sleep(delay)
        loop = asyncio.get_running_loop()
        trigger = container.triggers[kind]
        last, run = _Result.UNKNOWN, 0
        tick = loop.time()
        while True:
            trigger.clear()
            result = await self._attempt(uid, container, kind)
            self._event(uid, container, kind, result)
            if result.success is not None:
                outcome = _Result.SUCCESS if result.success else _Result.FAILURE
                run = run + 1 if outcome is last else 1
                last = outcome
                threshold = spec_timing.success_threshold if result.success else spec_timing.failure_threshold
                if run >= threshold:
                    if outcome is _Result.FAILURE and kind is not ProbeKind.READINESS:
                        container.failed[kind] = f"Container {container.name} failed {kind.value} probe"
                    self._set(uid, container, kind, outcome)
                    if kind is not ProbeKind.READINESS and (outcome is _Result.FAILURE or kind is ProbeKind.STARTUP):
                        return  # on hold until a new container (or started: startup is done)
            now = loop.time()
            tick += period
            if tick <= now:  # an attempt outlasted the period: skip the missed ticks, as a Go ticker
                tick = now + period - (now - tick) % period
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout_at(tick):
                    await trigger.wait()
