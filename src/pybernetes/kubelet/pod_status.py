"""A pod's status from what the runtime reports (pure), as upstream kubelet's
``generateAPIPodStatus`` and ``getPhase``:

- **containerStatuses / initContainerStatuses:** the newest instance's state (waiting with the
  reason the kubelet gave — ContainerCreating, PodInitializing, CrashLoopBackOff, ErrImagePull,
  ImagePullBackOff, CreateContainerConfigError, RunContainerError —, running, or terminated with
  exit code, reason and message), the previous instance as ``lastState``, ``restartCount``,
  ``ready``, ``started``, ``image``, ``imageID``, ``containerID`` (``<runtime>://<id>``).
- **phase:** Pending while initializing or any container waits for its first start; Running
  while any runs (or will restart); Succeeded/Failed once no container will run again (a
  deleted pod's containers count as never restarting); a failed init container fails a
  restartPolicy Never pod.  A terminal phase never goes back.
- **conditions:** PodReadyToStartContainers, Initialized, ContainersReady and Ready, with
  upstream's reasons and messages; a condition keeps its lastTransitionTime while its status
  holds; conditions the kubelet does not own (PodScheduled, DisruptionTarget ...) are kept.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from pybernetes.kubelet.pod_actions import is_sidecar
from pybernetes.kubelet.runtime.protocol import (
    ContainerState,
    ContainerStatus,
    PodSandboxStatus,
    SandboxState,
)

Obj = dict[str, Any]

KUBELET_CONDITIONS = ("PodReadyToStartContainers", "Initialized", "ContainersReady", "Ready")
TERMINAL = ("Succeeded", "Failed")


def rfc3339(ns: int) -> str:
    return datetime.fromtimestamp(ns / 1e9, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _terminated(status: ContainerStatus, runtime_name: str, message: str = "") -> Obj:
    out: Obj = {"exitCode": status.exit_code, "reason": status.reason or ("Completed" if status.exit_code == 0 else "Error"),
                "startedAt": rfc3339(status.started_at) if status.started_at else None,
                "finishedAt": rfc3339(status.finished_at) if status.finished_at else None,
                "containerID": f"{runtime_name}://{status.id}"}
    text = message or status.message
    if text:
        out["message"] = text
    return out


def container_status(container: Obj, history: list[ContainerStatus], *, waiting: tuple[str, str] | None,
                     ready: bool, started: bool, runtime_name: str, messages: dict[str, str],
                     default_waiting: str = "ContainerCreating") -> Obj:
    """One entry of containerStatuses.  ``messages``: termination messages by container id."""
    name = container.get("name", "")
    out: Obj = {"name": name, "image": container.get("image", ""), "imageID": "", "ready": False,
                "restartCount": 0, "started": False, "state": {}, "lastState": {}}
    latest = history[0] if history else None
    if latest is None:
        reason, message = waiting or (default_waiting, "")
        out["state"] = {"waiting": {"reason": reason, **({"message": message} if message else {})}}
        return out
    out["restartCount"] = latest.config.attempt
    out["imageID"] = latest.image_digest or latest.image_ref  # containerd: the repo digest, else the image id
    out["containerID"] = f"{runtime_name}://{latest.id}"
    previous = history[1] if len(history) > 1 else None
    if latest.state is ContainerState.RUNNING:
        out["state"] = {"running": {"startedAt": rfc3339(latest.started_at or latest.created_at)}}
        out["ready"] = ready
        out["started"] = started
        if previous is not None and previous.state is ContainerState.EXITED:
            out["lastState"] = {"terminated": _terminated(previous, runtime_name, messages.get(previous.id, ""))}
    elif latest.state is ContainerState.EXITED and waiting is not None:
        # about to restart (or in back-off): waiting, with the exit as lastState
        reason, message = waiting
        out["state"] = {"waiting": {"reason": reason, **({"message": message} if message else {})}}
        out["lastState"] = {"terminated": _terminated(latest, runtime_name, messages.get(latest.id, ""))}
    elif latest.state is ContainerState.EXITED:
        out["state"] = {"terminated": _terminated(latest, runtime_name, messages.get(latest.id, ""))}
        if previous is not None and previous.state is ContainerState.EXITED:
            out["lastState"] = {"terminated": _terminated(previous, runtime_name, messages.get(previous.id, ""))}
    else:  # created, not started yet
        reason, message = waiting or (default_waiting, "")
        out["state"] = {"waiting": {"reason": reason, **({"message": message} if message else {})}}
        if previous is not None and previous.state is ContainerState.EXITED:
            out["lastState"] = {"terminated": _terminated(previous, runtime_name, messages.get(previous.id, ""))}
    return out


def _phase(pod: Obj, init_statuses: list[Obj], statuses: list[Obj], terminating: bool) -> str:
    spec = pod.get("spec") or {}
    policy = "Never" if terminating else (spec.get("restartPolicy") or "Always")
    pending_init = failed_init = 0
    for container, status in zip(spec.get("initContainers") or [], init_statuses, strict=False):
        state, last = status["state"], status["lastState"]
        if is_sidecar(container):
            if "running" in state and status.get("started"):
                continue
            pending_init += 1
            continue
        if "terminated" in state:
            if state["terminated"]["exitCode"] != 0:
                failed_init += 1
        elif "waiting" in state and "terminated" in last and last["terminated"]["exitCode"] != 0:
            failed_init += 1
        else:
            pending_init += 1
    running = waiting = stopped = succeeded = 0
    for status in statuses:
        state, last = status["state"], status["lastState"]
        if "running" in state:
            running += 1
        elif "terminated" in state:
            stopped += 1
            succeeded += state["terminated"]["exitCode"] == 0
        elif "waiting" in state and "terminated" in last:
            stopped += 1
        else:
            waiting += 1
    ever_ran = running + stopped > 0
    if failed_init and policy == "Never" and not ever_ran:
        return "Failed"
    if (pending_init or failed_init) and not ever_ran:
        return "Pending"
    if waiting:
        return "Pending"
    if running:
        return "Running"
    if stopped:
        if policy == "Always":
            return "Running"
        if stopped == succeeded:
            return "Succeeded"
        return "Failed" if policy == "Never" else "Running"
    return "Pending"


def _condition(previous: dict[str, Obj], kind: str, ok: bool, now: str, reason: str = "", message: str = "") -> Obj:
    status = "True" if ok else "False"
    old = previous.get(kind)
    since = old["lastTransitionTime"] if old and old.get("status") == status and old.get("lastTransitionTime") else now
    out: Obj = {"type": kind, "status": status, "lastProbeTime": None, "lastTransitionTime": since}
    if not ok and reason:
        out["reason"] = reason
        out["message"] = message
    return out


def pod_status(pod: Obj, *, sandbox: PodSandboxStatus | None, history: dict[str, list[ContainerStatus]],
               waiting: dict[str, tuple[str, str]], ready: Callable[[str], bool], started: Callable[[str], bool],
               runtime_name: str, node_ip: str, now: str, messages: dict[str, str] | None = None,
               terminating: bool = False, failure: tuple[str, str] | None = None) -> Obj:
    """The status to post.  ``history``: each container's instances over all the pod's
    sandboxes, newest first; ``failure``: (reason, message) of a pod-level failure (such as
    DeadlineExceeded), which makes the phase Failed."""
    spec, old = pod.get("spec") or {}, pod.get("status") or {}
    messages = messages or {}
    init_statuses, statuses = [], []
    init_done = True
    for container in spec.get("initContainers") or []:
        name = container["name"]
        found = history.get(name, [])
        status = container_status(container, found, waiting=waiting.get(name), ready=ready(name),
                                  started=started(name), runtime_name=runtime_name, messages=messages)
        init_statuses.append(status)
        if is_sidecar(container):
            init_done = init_done and status["started"]
        else:
            term = status["state"].get("terminated")
            init_done = init_done and bool(term) and term["exitCode"] == 0
    ran = any(history.get(c["name"]) for c in spec.get("containers") or [])
    init_done = init_done or ran
    for container in spec.get("containers") or []:
        name = container["name"]
        found = history.get(name, [])
        statuses.append(container_status(container, found, waiting=waiting.get(name), ready=ready(name), started=started(name),
                                         runtime_name=runtime_name, messages=messages,
                                         default_waiting="ContainerCreating" if init_done else "PodInitializing"))
    phase = _phase(pod, init_statuses, statuses, terminating)
    if failure is not None:
        phase = "Failed"
    if old.get("phase") in TERMINAL:
        phase = old["phase"]
    previous = {c.get("type"): c for c in old.get("conditions") or []}
    network = sandbox is not None and sandbox.state is SandboxState.READY
    unready = [s["name"] for s in [*statuses, *(s for s, c in zip(init_statuses, spec.get("initContainers") or [],
                                                                  strict=False) if is_sidecar(c))] if not s["ready"]]
    incomplete = [s["name"] for s, c in zip(init_statuses, spec.get("initContainers") or [], strict=False)
                  if not (s["started"] if is_sidecar(c) else
                          (s["state"].get("terminated") or {}).get("exitCode", 1) == 0)]
    if phase in TERMINAL:
        unready_reason = "PodCompleted"
    else:
        unready_reason = "ContainersNotReady"
    not_ready_message = f"containers with unready status: [{' '.join(unready)}]"
    containers_ready = not unready and phase not in TERMINAL
    conditions = [
        _condition(previous, "PodReadyToStartContainers", network and phase not in TERMINAL, now),
        _condition(previous, "Initialized", init_done or not incomplete, now, "ContainersNotInitialized",
                   f"containers with incomplete status: [{' '.join(incomplete)}]"),
        _condition(previous, "Ready", containers_ready, now, unready_reason, not_ready_message),
        _condition(previous, "ContainersReady", containers_ready, now, unready_reason, not_ready_message),
    ]
    if phase in TERMINAL and (init_done or not incomplete):
        for cond in conditions[2:]:
            cond.pop("message", None)
    conditions.extend(c for c in old.get("conditions") or [] if c.get("type") not in KUBELET_CONDITIONS)
    order = {"PodReadyToStartContainers": 0, "Initialized": 1, "Ready": 2, "ContainersReady": 3, "PodScheduled": 4}
    conditions.sort(key=lambda c: order.get(c.get("type"), 5))
    status: Obj = {"phase": phase, "conditions": conditions, "hostIP": node_ip,
                   "hostIPs": [{"ip": node_ip}] if node_ip else [],
                   "startTime": old.get("startTime") or now, "containerStatuses": statuses}
    if init_statuses:
        status["initContainerStatuses"] = init_statuses
    ip = node_ip if spec.get("hostNetwork") else (sandbox.ip if sandbox is not None else "")
    if ip:
        status["podIP"] = ip
        status["podIPs"] = [{"ip": ip}] + [{"ip": a} for a in (sandbox.additional_ips if sandbox else [])]
    elif old.get("podIP"):
        status["podIP"], status["podIPs"] = old["podIP"], old.get("podIPs") or [{"ip": old["podIP"]}]
    if old.get("qosClass"):
        status["qosClass"] = old["qosClass"]
    if failure is not None:
        status["reason"], status["message"] = failure
    elif old.get("reason") and phase in TERMINAL:
        status["reason"], status["message"] = old["reason"], old.get("message", "")
    return status
