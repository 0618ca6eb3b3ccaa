"""One pod's reconciliation against the runtime (upstream kubelet's ``SyncPod``,
``SyncTerminatingPod`` and ``SyncTerminatedPod``): a thin async shell around the pure
planning (pod_actions.py) and status (pod_status.py).

``sync(pod)`` reads what the runtime has for the pod, plans, and acts: a sandbox (volumes set
up first), image pulls by imagePullPolicy with ImagePullBackOff, each container's environment,
mounts and config, create + start + postStart, kills for failed liveness probes.  What could not
be done is remembered as the container's waiting reason (ErrImagePull, ImagePullBackOff,
CreateContainerConfigError, RunContainerError ...) and reported as an Event, and the next sync
tries again.  It returns the status to post and when to sync again.

``terminate(pod, grace)`` runs preStop hooks and stops every container within the grace
period, then stops the sandbox; ``cleanup(uid)`` removes everything the pod left (containers,
sandboxes, volumes, its directory).  ``fail(pod, reason, message)`` fails a pod from
outside its sync, as activeDeadlineSeconds does from inside (eviction.py evicts this way).
"""

from __future__ import annotations

import asyncio
import calendar
import contextlib
import logging
import os
import shutil
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pybernetes.client.errors import ApiError, ConnectionFailed
from pybernetes.kubelet import container_config as cc
from pybernetes.kubelet.backoff import Backoff
from pybernetes.kubelet.envvars import EnvError, container_env, referenced_sources, service_env
from pybernetes.kubelet.lifecycle import run_hook
from pybernetes.kubelet.pod_actions import compute_pod_actions, pod_is_done
from pybernetes.kubelet.pod_status import pod_status
from pybernetes.kubelet.prober_manager import RunningContainer
from pybernetes.kubelet.runtime.protocol import (
    ContainerState,
    ContainerStatus,
    DNSConfig,
    PodSandboxStatus,
    Runtime,
    RuntimeError_,
    SandboxState,
)
from pybernetes.kubelet.volumes.common import VolumeError

log = logging.getLogger(__name__)

Obj = dict[str, Any]
RESYNC = 10.0  # seconds between syncs of a pod when nothing happens
START_SLOTS = max(2, 2 * (os.cpu_count() or 1))  # pods brought up at once
MESSAGE_LIMIT = 4096  # bytes of a termination message
FALLBACK_LINES = 80
FALLBACK_BYTES = 2048
# What makes a container's configuration impossible (CreateContainerConfigError): its env
# (missing ConfigMaps, Secrets, keys) or its mounts (the volume manager's errors).
CONFIG_ERRORS: tuple[type[Exception], ...] = (EnvError, VolumeError)
REFRESH_PERIOD = 10.0  # seconds between re-projections of a running pod's configMap/secret volumes


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def pull_policy(container: Obj) -> str:
    policy = container.get("imagePullPolicy")
    if policy:
        return policy
    image = container.get("image", "")
    tag = image.rsplit("/", 1)[-1]
    return "Always" if "@" not in image and (":" not in tag or tag.endswith(":latest")) else "IfNotPresent"


@dataclass
class Lookups:
    """What a pod's containers read from the API: ConfigMaps, Secrets (None when missing)
    and the Services for the environment."""

    configmap: Callable[[str, str], Awaitable[Obj | None]]
    secret: Callable[[str, str], Awaitable[Obj | None]]
    services: Callable[[], list[Obj]] = lambda: []
    pull_credentials: Callable[[Obj, str], Awaitable[dict | None]] | None = None


@dataclass
class PodState:
    """What the kubelet remembers about one pod between syncs."""

    waiting: dict[str, tuple[str, str]] = field(default_factory=dict)
    messages: dict[str, str] = field(default_factory=dict)  # container id -> termination message
    failure: tuple[str, str] | None = None
    failure_grace: float | None = None  # the containers' grace period then, if not the pod's (an eviction: 1 s)
    first_seen: float = field(default_factory=time.time)
    volumes: dict[str, str] | None = None  # volume name -> host path, once set up
    refreshed: float = 0.0


@dataclass
class SyncResult:
    status: Obj
    next_sync: float = RESYNC


class PodSyncer:
    def __init__(self, runtime: Runtime, lookups: Lookups, *, node_name: str, node_ip: str, pods_dir: Path,
                 logs_root: Path, recorder: Any = None, volumes: Any = None, probes: Any = None,
                 dns: Callable[[Obj], DNSConfig | None] | None = None,
                 allocatable: Callable[[], dict[str, str]] = dict, restart_backoff: Backoff | None = None,
                 pull_backoff: Backoff | None = None, start_slots: int = START_SLOTS,
                 cluster_domain: str = "cluster.local") -> None:
        self.runtime = runtime
        self.cluster_domain = cluster_domain
        self.lookups = lookups
        self.node_name = node_name
        self.node_ip = node_ip
        self.pods_dir = Path(pods_dir)
        self.logs_root = Path(logs_root)
        self.recorder = recorder
        self.volumes = volumes
        self.probes = probes
        self.dns = dns or (lambda pod: None)
        self.allocatable = allocatable
        self.restart_backoff = restart_backoff or Backoff()
        self.pull_backoff = pull_backoff or Backoff()
        self.states: dict[str, PodState] = {}
        self._pull_failed_at: dict[tuple[str, str], float] = {}  # (pod uid, image) -> when its pull failed
        # Bringing pods up (sandbox, container starts) is CPU-bound work in the runtime's own
        # processes; a few at a time, first come first served, lets a burst of pods come up
        # one after another instead of all of them at the end.
        self.start_slots = asyncio.Semaphore(start_slots)

    # -- reading the runtime --------------------------------------------------------------------

    async def runtime_view(self, uid: str) -> tuple[list[PodSandboxStatus], dict[str, list[ContainerStatus]]]:
        """The pod's sandboxes (newest first) and its containers by name (newest first)."""
        sandboxes = await self.runtime.list_pod_sandboxes(uid)
        sandboxes.sort(key=lambda s: s.created_at, reverse=True)
        history: dict[str, list[ContainerStatus]] = {}
        for sandbox in sandboxes:
            for status in await self.runtime.list_containers(sandbox.id):
                history.setdefault(status.config.name, []).append(status)
        for found in history.values():
            found.sort(key=lambda s: (s.config.attempt, s.created_at), reverse=True)
        return sandboxes, history

    def _event(self, pod: Obj, type_: str, reason: str, message: str, field_path: str | None = None) -> None:
        if self.recorder is not None:
            self.recorder.event(pod, type_, reason, message, **({"field_path": field_path} if field_path else {}))

    def _ready(self, uid: str, history: dict[str, list[ContainerStatus]]) -> Callable[[str], bool]:
        def ready(name: str) -> bool:
            found = history.get(name)
            if not found or found[0].state is not ContainerState.RUNNING:
                return False
            return self.probes.readiness(uid, name) if self.probes is not None else True
        return ready

    def _started(self, uid: str, history: dict[str, list[ContainerStatus]]) -> Callable[[str], bool]:
        def started(name: str) -> bool:
            found = history.get(name)
            if not found or found[0].state is not ContainerState.RUNNING:
                return False
            return self.probes.started(uid, name) if self.probes is not None else True
        return started

    def _liveness(self, uid: str) -> Callable[[str], str | None]:
        if self.probes is None:
            return lambda name: None
        return lambda name: self.probes.liveness_failed(uid, name)

    # -- sync -----------------------------------------------------------------------------------

    async def sync(self, pod: Obj) -> SyncResult:
        meta, spec = pod.get("metadata") or {}, pod.get("spec") or {}
        uid = meta.get("uid", "")
        state = self.states.setdefault(uid, PodState())
        sandboxes, history = await self.runtime_view(uid)
        current = sandboxes[0] if sandboxes else None
        phase = (pod.get("status") or {}).get("phase")
        deadline = spec.get("activeDeadlineSeconds")
        if deadline is not None and state.failure is None and phase not in ("Succeeded", "Failed"):
            started_at = _parse_time((pod.get("status") or {}).get("startTime")) or state.first_seen
            if time.time() - started_at >= int(deadline):
                state.failure = ("DeadlineExceeded", "Pod was active on the node longer than the specified deadline")
                self._event(pod, "Normal", "DeadlineExceeded", state.failure[1])
        if state.failure is not None or phase in ("Succeeded", "Failed"):
            grace = _grace(pod) if state.failure_grace is None else state.failure_grace
            await self._stop_all(pod, sandboxes, history, grace=grace)
            sandboxes, history = await self.runtime_view(uid)
            return SyncResult(self._status(pod, state, sandboxes, history, terminating=True), RESYNC)
        current_history = {name: [s for s in found if current is not None and s.sandbox_id == current.id]
                           for name, found in history.items()}
        current_history = {k: v for k, v in current_history.items() if v}
        counts = {name: found[0].config.attempt + 1 for name, found in history.items()}
        actions = compute_pod_actions(pod, current, current_history, backoff=self.restart_backoff,
                                      liveness_failed=self._liveness(uid), started=self._started(uid, current_history),
                                      restart_counts=counts)
        for name, why in actions.waiting.items():
            state.waiting[name] = why
        if actions.init_failed and current is not None:  # restartPolicy Never: the pod has failed
            await self.runtime.stop_pod_sandbox(current.id)
            sandboxes, history = await self.runtime_view(uid)
            return SyncResult(self._status(pod, state, sandboxes, history), RESYNC)
        if actions.kill_all:
            await self._stop_all(pod, sandboxes, history, grace=_grace(pod))
        for container_id, why in actions.kill.items():
            self._event(pod, "Normal", "Killing", why)
            await self._kill(pod, container_id, history)
        next_sync = RESYNC
        starts = []
        for start in actions.start:  # images first, outside the start slots (a slow pull holds none)
            delay = await self._pull(pod, state, start.container, _field_path(pod, start.container["name"]))
            if delay:
                next_sync = min(next_sync, delay)
            else:
                starts.append(start)
            if start.init and start.container.get("restartPolicy") != "Always":
                break
        if actions.create_sandbox or starts:
            async with self.start_slots:
                if actions.create_sandbox:
                    current = await self._create_sandbox(pod, state, actions.sandbox_attempt)
                if current is not None and starts:
                    volumes = await self._volumes(pod, state)
                    if volumes is None:
                        next_sync = 2.0
                    for start in starts if volumes is not None else []:
                        delay = await self._start(pod, state, current, start.container, start.restart_count, volumes)
                        if delay:
                            next_sync = min(next_sync, delay)
        for name in actions.waiting:
            key = (uid, name)
            found = history.get(name)
            since = found[0].finished_at / 1e9 if found and found[0].finished_at else 0.0
            left = self.restart_backoff.remaining(key, since)
            if left:
                next_sync = min(next_sync, left + 0.05)
        sandboxes, history = await self.runtime_view(uid)
        await self._read_messages(pod, history, state)
        self._update_probes(pod, sandboxes, history)
        await self._refresh_volumes(pod, state)
        if pod_is_done(pod, {n: [s for s in f if s.sandbox_id == sandboxes[0].id] for n, f in history.items()}
                       if sandboxes else {}):
            for sandbox in sandboxes:
                if sandbox.state is SandboxState.READY:
                    await self.runtime.stop_pod_sandbox(sandbox.id)
            sandboxes, history = await self.runtime_view(uid)
        return SyncResult(self._status(pod, state, sandboxes, history), next_sync)

    def fail(self, pod: Obj, reason: str, message: str, *, grace: float | None = None,
             event: str = "Warning") -> bool:
        """Fail the pod from outside its sync (the eviction manager): its next sync kills its
        containers within ``grace`` (None: the pod's own grace period) and posts phase Failed
        with ``reason``/``message``; an event ``reason`` is recorded now.
        False when the pod has already failed or was never synced here (nothing changes)."""
        state = self.states.get((pod.get("metadata") or {}).get("uid", ""))
        if state is None or state.failure is not None:
            return False
        state.failure, state.failure_grace = (reason, message), grace
        self._event(pod, event, reason, message)
        return True

    def has_failed(self, uid: str) -> bool:
        state = self.states.get(uid)
        return state is not None and state.failure is not None

    def _update_probes(self, pod: Obj, sandboxes: list[PodSandboxStatus],
                       history: dict[str, list[ContainerStatus]]) -> None:
        """Tell the prober which containers run now (a new id restarts their probes)."""
        if self.probes is None:
            return
        running = {name: RunningContainer(found[0].id, found[0].started_at / 1e9)
                   for name, found in history.items() if found[0].state is ContainerState.RUNNING}
        ip = sandboxes[0].ip if sandboxes and sandboxes[0].ip else self.node_ip
        self.probes.update_pod(pod, ip, running)

    def _status(self, pod: Obj, state: PodState, sandboxes: list[PodSandboxStatus],
                history: dict[str, list[ContainerStatus]], terminating: bool = False) -> Obj:
        uid = (pod.get("metadata") or {}).get("uid", "")
        current = sandboxes[0] if sandboxes else None
        waiting = {name: why for name, why in state.waiting.items()
                   if not history.get(name) or history[name][0].state is not ContainerState.RUNNING}
        return pod_status(pod, sandbox=current, history=history, waiting=waiting, ready=self._ready(uid, history),
                          started=self._started(uid, history), runtime_name=self.runtime.name, node_ip=self.node_ip,
                          now=_now(), messages=state.messages, terminating=terminating, failure=state.failure)

    async def _create_sandbox(self, pod: Obj, state: PodState, attempt: int) -> PodSandboxStatus | None:
        config = cc.sandbox_config(pod, attempt=attempt, logs_root=str(self.logs_root), dns=self.dns(pod),
                                   cluster_domain=self.cluster_domain)
        try:
            sandbox_id = await self.runtime.run_pod_sandbox(config)
            return await self.runtime.pod_sandbox_status(sandbox_id)
        except RuntimeError_ as exc:
            message = f"Failed to create pod sandbox: {exc.message}"
            self._event(pod, "Warning", "FailedCreatePodSandBox", message)
            for container in (pod.get("spec") or {}).get("containers") or []:
                state.waiting[container["name"]] = ("ContainerCreating", "")
            return None

    async def _volumes(self, pod: Obj, state: PodState) -> dict[str, str] | None:
        """The pod's volumes, set up (None, with a FailedMount event, when one cannot be)."""
        if self.volumes is None:
            return {}
        try:
            state.volumes = await self.volumes.setup(pod)
            state.refreshed = time.monotonic()
            return state.volumes
        except VolumeError as exc:
            self._event(pod, "Warning", exc.reason, exc.message)
        except (ApiError, ConnectionFailed) as exc:
            self._event(pod, "Warning", "FailedMount", f"MountVolume.SetUp failed: {exc}")
        for container in _all_containers(pod):
            state.waiting.setdefault(container["name"], ("ContainerCreating", ""))
        return None

    async def _refresh_volumes(self, pod: Obj, state: PodState) -> None:
        """Bring configMap, secret, downwardAPI and projected volumes up to date (upstream's
        periodic re-projection), every REFRESH_PERIOD seconds of a running pod."""
        if self.volumes is None or state.volumes is None or time.monotonic() - state.refreshed < REFRESH_PERIOD:
            return
        state.refreshed = time.monotonic()
        try:
            await self.volumes.refresh(pod)
        except (VolumeError, ApiError, ConnectionFailed) as exc:
            log.warning("pod %s: refreshing volumes failed: %s", (pod.get("metadata") or {}).get("name"), exc)

    def _pod_dir(self, uid: str) -> Path:
        return self.pods_dir / uid

    async def _start(self, pod: Obj, state: PodState, sandbox: PodSandboxStatus, container: Obj,
                     restart_count: int, volumes: dict[str, str]) -> float:
        """Configure, create and start one container (its image is present); the seconds
        before a retry makes sense when it could not (0 when it started)."""
        uid = (pod.get("metadata") or {}).get("uid", "")
        name = container["name"]
        path = _field_path(pod, name)
        try:
            env = await self._environment(pod, container)
            mounts = self.volumes.mounts(pod, container, volumes, dict(env)) if self.volumes is not None else []
        except CONFIG_ERRORS as exc:
            message = getattr(exc, "message", None) or str(exc)
            state.waiting[name] = ("CreateContainerConfigError", message)
            self._event(pod, "Warning", "Failed", f"Error: {message}", path)
            return 2.0
        message_file = self._pod_dir(uid) / "containers" / name / f"{restart_count}.termination-log"
        message_file.parent.mkdir(parents=True, exist_ok=True)
        message_file.write_bytes(b"")
        config = cc.container_config(pod, container, restart_count=restart_count, env=env, mounts=mounts,
                                     termination_log=str(message_file))
        try:
            container_id = await self.runtime.create_container(sandbox.id, config)
        except RuntimeError_ as exc:
            reason = exc.reason if exc.reason in ("CreateContainerConfigError", "CreateContainerError") \
                else "CreateContainerError"
            state.waiting[name] = (reason, exc.message)
            self._event(pod, "Warning", "Failed", f"Error: {exc.message}", path)
            return 2.0
        self._event(pod, "Normal", "Created", f"Created container {name}", path)
        try:
            await self.runtime.start_container(container_id)
        except RuntimeError_ as exc:
            state.waiting[name] = ("RunContainerError", exc.message)
            self._event(pod, "Warning", "Failed", f"Error: {exc.message}", path)
            self.restart_backoff.next((uid, name))
            with contextlib.suppress(RuntimeError_):
                await self.runtime.remove_container(container_id)
            return self.restart_backoff.delay((uid, name))
        state.waiting.pop(name, None)
        self._event(pod, "Normal", "Started", f"Started container {name}", path)
        if restart_count > 0:
            self.restart_backoff.next((uid, name))
        post_start = ((container.get("lifecycle") or {}).get("postStart"))
        if post_start:
            error = await run_hook(post_start, runtime=self.runtime, container_id=container_id, container=container,
                                   pod_ip=sandbox.ip or self.node_ip, limit_seconds=_grace(pod))
            if error:
                self._event(pod, "Warning", "FailedPostStartHook", error, path)
                await self.runtime.stop_container(container_id, _grace(pod))
        return 0.0

    async def _pull(self, pod: Obj, state: PodState, container: Obj, path: str) -> float:
        uid = (pod.get("metadata") or {}).get("uid", "")
        image, name = container.get("image", ""), container["name"]
        policy = pull_policy(container)
        present = await self.runtime.image_status(image) is not None
        if policy == "Never":
            if present:
                return 0.0
            message = f'Container image "{image}" is not present with pull policy of Never'
            state.waiting[name] = ("ErrImageNeverPull", message)
            self._event(pod, "Warning", "ErrImageNeverPull", message, path)
            return 5.0
        if present and policy == "IfNotPresent":
            return 0.0
        key = (uid, image)
        previous = state.waiting.get(name)
        if previous and previous[0] in ("ErrImagePull", "ImagePullBackOff"):
            left = self.pull_backoff.remaining(key, self._pull_failed_at.get(key, 0.0))
            if left > 0:
                message = f'Back-off pulling image "{image}"'
                state.waiting[name] = ("ImagePullBackOff", message)
                self._event(pod, "Normal", "BackOff", message, path)
                return left + 0.05
        self._event(pod, "Normal", "Pulling", f'Pulling image "{image}"', path)
        began = time.monotonic()
        try:
            auth = await self.lookups.pull_credentials(pod, image) if self.lookups.pull_credentials else None
            await self.runtime.pull_image(image, auth)
        except RuntimeError_ as exc:
            message = f'Failed to pull image "{image}": {exc.message}'
            state.waiting[name] = ("ErrImagePull", message)
            self._event(pod, "Warning", "Failed", message, path)
            self._event(pod, "Warning", "Failed", "Error: ErrImagePull", path)
            self.pull_backoff.next(key)
            self._pull_failed_at[key] = time.time()
            return self.pull_backoff.delay(key) + 0.05
        self.pull_backoff.reset(key)
        self._event(pod, "Normal", "Pulled", f'Successfully pulled image "{image}" in '
                    f"{time.monotonic() - began:.3f}s", path)
        return 0.0

    async def _environment(self, pod: Obj, container: Obj) -> list[tuple[str, str]]:
        meta, spec = pod.get("metadata") or {}, pod.get("spec") or {}
        namespace = meta.get("namespace", "")
        names_cm, names_secret = referenced_sources(container)
        configmaps = {n: await self.lookups.configmap(namespace, n) for n in names_cm}
        secrets = {n: await self.lookups.secret(namespace, n) for n in names_secret}
        services = service_env(self.lookups.services(), namespace, spec.get("enableServiceLinks", True) is not False)
        env, warnings = container_env(pod, container, services=services, configmaps=configmaps, secrets=secrets,
                                      allocatable=self.allocatable())
        for warning in warnings:
            self._event(pod, "Warning", "InvalidEnvironmentVariableNames", warning)
        return env

    async def _read_messages(self, pod: Obj, history: dict[str, list[ContainerStatus]], state: PodState) -> None:
        """Termination messages of containers that exited since the last sync."""
        uid = (pod.get("metadata") or {}).get("uid", "")
        by_name = {c.get("name"): c for c in _all_containers(pod)}
        for name, found in history.items():
            for status in found[:2]:
                if status.state is not ContainerState.EXITED or status.id in state.messages:
                    continue
                path = self._pod_dir(uid) / "containers" / name / f"{status.config.attempt}.termination-log"
                message = ""
                with contextlib.suppress(OSError):
                    message = path.read_bytes()[:MESSAGE_LIMIT].decode("utf-8", "replace")
                container = by_name.get(name) or {}
                if not message and status.exit_code != 0 and \
                        container.get("terminationMessagePolicy") == "FallbackToLogsOnError" and status.log_path:
                    message = _log_tail(Path(status.log_path))
                state.messages[status.id] = message

    # -- stopping -------------------------------------------------------------------------------

    async def _kill(self, pod: Obj, container_id: str, history: dict[str, list[ContainerStatus]],
                    grace: float | None = None) -> None:
        status = next((s for found in history.values() for s in found if s.id == container_id), None)
        if status is None or status.state is ContainerState.EXITED:
            return
        if status.state is ContainerState.CREATED:
            with contextlib.suppress(RuntimeError_):
                await self.runtime.stop_container(container_id, 0)
            return
        uid = (pod.get("metadata") or {}).get("uid", "")
        grace = _grace(pod) if grace is None else grace
        if self.probes is not None:
            probe_grace = self.probes.probe_grace(uid, status.config.name)
            if probe_grace is not None and self.probes.liveness_failed(uid, status.config.name):
                grace = probe_grace
        began = time.monotonic()
        container = next((c for c in _all_containers(pod) if c.get("name") == status.config.name), {})
        pre_stop = (container.get("lifecycle") or {}).get("preStop")
        if pre_stop and grace > 0:  # as upstream: no time, no hook (a forced kill, an eviction)
            sandbox_ip = ""
            with contextlib.suppress(RuntimeError_):
                sandbox_ip = (await self.runtime.pod_sandbox_status(status.sandbox_id)).ip
            try:
                error = await asyncio.wait_for(
                    run_hook(pre_stop, runtime=self.runtime, container_id=container_id, container=container,
                             pod_ip=sandbox_ip or self.node_ip, limit_seconds=max(grace, 1)), max(grace, 0.001))
            except TimeoutError:
                error = f"preStop hook did not finish within the grace period of {grace:g}s"
            if error:
                self._event(pod, "Warning", "FailedPreStopHook", error, _field_path(pod, status.config.name))
        left = max(0.0, grace - (time.monotonic() - began))
        with contextlib.suppress(RuntimeError_):
            await self.runtime.stop_container(container_id, left)

    async def _stop_all(self, pod: Obj, sandboxes: list[PodSandboxStatus],
                        history: dict[str, list[ContainerStatus]], grace: float) -> None:
        """Stop the pod's containers (in parallel, the regular ones before the sidecars, as
        upstream) within ``grace``, then its sandboxes."""
        spec = pod.get("spec") or {}
        sidecars = {c["name"] for c in spec.get("initContainers") or [] if c.get("restartPolicy") == "Always"}
        running = [s for found in history.values() for s in found
                   if s.state in (ContainerState.RUNNING, ContainerState.CREATED)]
        began = time.monotonic()
        first = [s for s in running if s.config.name not in sidecars]
        await asyncio.gather(*(self._kill(pod, s.id, history, grace) for s in first))
        left = max(0.0, grace - (time.monotonic() - began))
        await asyncio.gather(*(self._kill(pod, s.id, history, left) for s in running if s.config.name in sidecars))
        for sandbox in sandboxes:
            if sandbox.state is SandboxState.READY:
                with contextlib.suppress(RuntimeError_):
                    await self.runtime.stop_pod_sandbox(sandbox.id)

    async def terminate(self, pod: Obj, grace: float) -> Obj:
        """Stop the pod for its deletion; the final status (every container terminated)."""
        uid = (pod.get("metadata") or {}).get("uid", "")
        state = self.states.setdefault(uid, PodState())
        sandboxes, history = await self.runtime_view(uid)
        await self._stop_all(pod, sandboxes, history, grace)
        sandboxes, history = await self.runtime_view(uid)
        await self._read_messages(pod, history, state)
        if self.probes is not None:
            self.probes.remove_pod(uid)
        return self._status(pod, state, sandboxes, history, terminating=True)

    async def cleanup(self, uid: str) -> None:
        """Remove all the pod left behind: containers, sandboxes, volumes, its directory."""
        sandboxes, _ = await self.runtime_view(uid)
        for sandbox in sandboxes:
            with contextlib.suppress(RuntimeError_):
                await self.runtime.remove_pod_sandbox(sandbox.id)
        if self.probes is not None:
            self.probes.remove_pod(uid)
        if self.volumes is not None:
            await self.volumes.teardown(uid)
        shutil.rmtree(self._pod_dir(uid), ignore_errors=True)
        self.states.pop(uid, None)
        self.restart_backoff.forget(lambda key: key[0] != uid)
        self.pull_backoff.forget(lambda key: key[0] != uid)
        for key in [k for k in self._pull_failed_at if k[0] == uid]:
            del self._pull_failed_at[key]


def _all_containers(pod: Obj) -> list[Obj]:
    spec = pod.get("spec") or {}
    return [*(spec.get("initContainers") or []), *(spec.get("containers") or [])]


def _grace(pod: Obj) -> float:
    meta, spec = pod.get("metadata") or {}, pod.get("spec") or {}
    if meta.get("deletionGracePeriodSeconds") is not None:
        return float(meta["deletionGracePeriodSeconds"])
    grace = spec.get("terminationGracePeriodSeconds")
    return float(grace) if grace is not None else 30.0


def _field_path(pod: Obj, name: str) -> str:
    spec = pod.get("spec") or {}
    for kind in ("initContainers", "containers"):
        for container in spec.get(kind) or []:
            if container.get("name") == name:
                return f"spec.{kind}{{{name}}}"
    return ""


def _parse_time(text: str | None) -> float | None:
    if not text:
        return None
    try:
        return float(calendar.timegm(time.strptime(text, "%Y-%m-%dT%H:%M:%SZ")))
    except ValueError:
        return None


def _log_tail(path: Path) -> str:
    """The last lines of a CRI log (content only), for FallbackToLogsOnError."""
    try:
        with open(path, "rb") as f:
            f.seek(0, 2)
            size = f.tell()
            f.seek(max(0, size - 64 * 1024))
            raw = f.read().splitlines()[-FALLBACK_LINES:]
    except OSError:
        return ""
    lines = []
    for record in raw:
        parts = record.split(b" ", 3)
        lines.append(parts[3] if len(parts) == 4 else record)
    return b"\n".join(lines)[-FALLBACK_BYTES:].decode("utf-8", "replace")
