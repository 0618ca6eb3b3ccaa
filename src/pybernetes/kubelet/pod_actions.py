"""What to do to make a pod's containers match its spec (pure), as upstream kubelet's
``computePodActions``: given what the runtime has for the pod, say whether to (re)create the
sandbox, which containers to kill and which to start, and why the others wait.

- **Sandbox:** none, or not ready → a new one (attempt + 1) and every old container killed;
  except a pod with restartPolicy Never whose containers already ran, which is left to finish.
- **Init containers** run one at a time, in order, each to success before the next; a failed
  one is restarted (unless restartPolicy Never: the pod fails).  Restartable init containers
  (sidecars, restartPolicy Always) are started in order too, the next one waiting until the
  sidecar has started, and are restarted whenever they exit, for the pod's whole life.
- **Containers** start when the init containers are done (or once any container ever ran);
  exited ones restart as restartPolicy says (Always; OnFailure when the exit code is not 0).
- **Kills:** a running container whose liveness or startup probe failed, or whose spec changed
  (its hash), is killed and then started again when its restart policy allows.
- **Back-off:** a container that should restart but failed less than its back-off delay ago
  waits with reason CrashLoopBackOff (``backoff.Backoff`` keyed by pod UID and container name).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pybernetes.kubelet.backoff import Backoff
from pybernetes.kubelet.container_config import CONTAINER_HASH, container_hash
from pybernetes.kubelet.runtime.protocol import (
    ContainerState,
    ContainerStatus,
    PodSandboxStatus,
    SandboxState,
)

Obj = dict[str, Any]


@dataclass(slots=True)
class StartContainer:
    container: Obj
    init: bool
    restart_count: int


@dataclass(slots=True)
class PodActions:
    create_sandbox: bool = False
    sandbox_attempt: int = 0
    kill_all: bool = False
    kill: dict[str, str] = field(default_factory=dict)  # container id -> why
    start: list[StartContainer] = field(default_factory=list)
    waiting: dict[str, tuple[str, str]] = field(default_factory=dict)  # name -> (reason, message)
    init_failed: str = ""  # the name of an init container that failed for good (restartPolicy Never)


def should_restart(policy: str, exit_code: int) -> bool:
    return policy == "Always" or (policy == "OnFailure" and exit_code != 0)


def restart_count(history: list[ContainerStatus]) -> int:
    """The restart count of the next instance of a container (history newest first)."""
    if not history:
        return 0
    return history[0].config.attempt + 1


def _pod_label(pod: Obj) -> str:
    meta = pod.get("metadata") or {}
    return f"{meta.get('name', '')}_{meta.get('namespace', '')}({meta.get('uid', '')})"


def is_sidecar(container: Obj) -> bool:
    return container.get("restartPolicy") == "Always"


class _Planner:
    def __init__(self, pod: Obj, history: dict[str, list[ContainerStatus]], backoff: Backoff,
                 liveness_failed: Callable[[str], str | None], started: Callable[[str], bool],
                 restart_counts: dict[str, int]) -> None:
        self.pod = pod
        self.restart_counts = restart_counts
        self.uid = (pod.get("metadata") or {}).get("uid", "")
        self.policy = (pod.get("spec") or {}).get("restartPolicy") or "Always"
        self.history = history
        self.backoff = backoff
        self.liveness_failed = liveness_failed
        self.started = started
        self.actions = PodActions()

    def latest(self, name: str) -> ContainerStatus | None:
        found = self.history.get(name)
        return found[0] if found else None

    def start(self, container: Obj, init: bool) -> None:
        name = container["name"]
        count = max(self.restart_counts.get(name, 0), restart_count(self.history.get(name, [])))
        self.actions.start.append(StartContainer(container, init, count))

    def restart_after_exit(self, container: Obj, latest: ContainerStatus, init: bool) -> None:
        """Start an exited container again unless it is in back-off."""
        key = (self.uid, container["name"])
        since = latest.finished_at / 1e9 if latest.finished_at else 0.0
        if self.backoff.remaining(key, since) > 0:
            delay = int(self.backoff.delay(key))
            self.actions.waiting[container["name"]] = (
                "CrashLoopBackOff",
                f"back-off {_duration(delay)} restarting failed container={container['name']} pod={_pod_label(self.pod)}")
            return
        self.start(container, init)

    def check_running(self, container: Obj, latest: ContainerStatus, policy: str) -> bool:
        """Kill a running container that failed its liveness probe or whose spec changed; True
        when it was marked for a kill."""
        why = self.liveness_failed(container["name"])
        if why is not None and should_restart(policy, 1):
            why = f"{why}, will be restarted"
        if why is None and latest.config.annotations.get(CONTAINER_HASH, "") not in ("", container_hash(container)):
            why = f"Container {container['name']} definition changed, will be restarted"
        if why is None:
            return False
        self.actions.kill[latest.id] = why
        if should_restart(policy, 1):
            self.start(container, False)
        return True

    def init_phase(self, init_containers: list[Obj]) -> bool:
        """Plan the init containers; True when all are done (sidecars started)."""
        for container in init_containers:
            latest = self.latest(container["name"])
            if is_sidecar(container):
                if latest is None:
                    self.start(container, True)
                    return False
                if latest.state is ContainerState.EXITED:
                    self.restart_after_exit(container, latest, True)
                    return False
                if latest.state is ContainerState.RUNNING and self.started(container["name"]):
                    continue
                return False
            if latest is None:
                self.start(container, True)
                return False
            if latest.state is not ContainerState.EXITED:
                return False
            if latest.exit_code == 0:
                continue
            if self.policy == "Never":
                self.actions.init_failed = container["name"]
                return False
            self.restart_after_exit(container, latest, True)
            return False
        return True

    def sidecars(self, init_containers: list[Obj]) -> None:
        """After the init phase: keep the sidecars running."""
        for container in init_containers:
            if not is_sidecar(container):
                continue
            latest = self.latest(container["name"])
            if latest is None:
                self.start(container, True)
            elif latest.state is ContainerState.EXITED:
                self.restart_after_exit(container, latest, True)
            elif latest.state is ContainerState.RUNNING:
                self.check_running(container, latest, "Always")

    def containers(self, containers: list[Obj]) -> None:
        for container in containers:
            latest = self.latest(container["name"])
            if latest is None:
                self.start(container, False)
            elif latest.state is ContainerState.EXITED:
                if should_restart(self.policy, latest.exit_code):
                    self.restart_after_exit(container, latest, False)
            elif latest.state is ContainerState.RUNNING:
                self.check_running(container, latest, self.policy)
            elif latest.state is ContainerState.CREATED:
                self.start(container, False)


def compute_pod_actions(pod: Obj, sandbox: PodSandboxStatus | None, history: dict[str, list[ContainerStatus]],
                        *, backoff: Backoff, liveness_failed: Callable[[str], str | None],
                        started: Callable[[str], bool], restart_counts: dict[str, int] | None = None) -> PodActions:
    """``history``: the containers of the pod's current sandbox by name, newest first;
    ``restart_counts``: the next restart count of each container over all the pod's sandboxes."""
    spec = pod.get("spec") or {}
    init_containers = list(spec.get("initContainers") or [])
    containers = list(spec.get("containers") or [])
    planner = _Planner(pod, history, backoff, liveness_failed, started, restart_counts or {})
    actions = planner.actions
    ran = any(history.get(c["name"]) for c in containers)
    if sandbox is None or sandbox.state is not SandboxState.READY:
        if sandbox is not None and planner.policy == "Never" and ran:
            return actions  # the pod is finishing; nothing restarts it
        actions.create_sandbox = True
        actions.sandbox_attempt = sandbox.config.attempt + 1 if sandbox is not None else 0
        actions.kill_all = sandbox is not None
        # a new sandbox runs the init containers again from the first (restart counts go on)
        if init_containers:
            planner.start(init_containers[0], True)
        else:
            for container in containers:
                planner.start(container, False)
        return actions
    if ran or planner.init_phase(init_containers):
        planner.sidecars(init_containers)
        planner.containers(containers)
    return actions


def pod_is_done(pod: Obj, history: dict[str, list[ContainerStatus]]) -> bool:
    """True when no container will run again: restartPolicy Never with every container exited,
    or OnFailure with every container exited 0 (upstream's terminal phases)."""
    spec = pod.get("spec") or {}
    policy = spec.get("restartPolicy") or "Always"
    if policy == "Always":
        return False
    for container in spec.get("containers") or []:
        found = history.get(container["name"])
        if not found or found[0].state is not ContainerState.EXITED:
            return False
        if policy == "OnFailure" and found[0].exit_code != 0:
            return False
    return True


def _duration(seconds: int) -> str:
    """Go's time.Duration formatting for whole seconds: 10s, 1m20s, 5m0s."""
    if seconds < 60:
        return f"{seconds}s"
    return f"{seconds // 60}m{seconds % 60}s"
