"""The container runtime interface the kubelet drives: CRI-shaped (upstream's
k8s.io/cri-api RuntimeService and ImageService), as an async Python protocol with plain
dataclasses, so every backend (``runc``, ``process``, ``simulated``) is interchangeable and
passes one contract suite (tests/unit/kubelet/runtime_contract.py).

A pod is a *sandbox* (its network namespace and shared IPC/UTS, or the host's for
hostNetwork pods) holding *containers*; the kubelet creates the sandbox, then creates and
starts containers in it, and tears down in the reverse order.  As CRI:

- ``run_pod_sandbox`` returns a new sandbox id; ``stop_pod_sandbox`` stops its containers and
  releases its network (idempotent, also for unknown ids); ``remove_pod_sandbox`` removes it and
  its containers (idempotent); ``pod_sandbox_status`` raises ``NotFound`` for unknown ids.
- ``create_container`` returns a container id in state CREATED; ``start_container`` moves it to
  RUNNING; it becomes EXITED when its process ends or ``stop_container`` stops it (SIGTERM,
  then SIGKILL after ``grace_seconds``); ``remove_container`` removes it whatever its state
  (CRI's forced removal); unknown ids raise ``NotFound``.
- Timestamps are nanoseconds since the epoch (CRI's int64), 0 when not reached.
- Images: ``pull_image`` returns the image's id (its config digest); ``image_status`` gives
  None for an image that is not present.

Failures a pod status reports carry upstream's reasons: ``RuntimeError_(reason, message)``
with reasons such as ``ErrImagePull``, ``RunContainerError``, ``CreateContainerError``.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable


class SandboxState(enum.Enum):
    READY = "SANDBOX_READY"
    NOTREADY = "SANDBOX_NOTREADY"


class ContainerState(enum.Enum):
    CREATED = "CONTAINER_CREATED"
    RUNNING = "CONTAINER_RUNNING"
    EXITED = "CONTAINER_EXITED"
    UNKNOWN = "CONTAINER_UNKNOWN"


class RuntimeError_(Exception):  # noqa: N801 - not the builtin RuntimeError
    """A runtime call failed for a reason the pod's status reports (``reason`` as upstream's
    kubelet names it: ErrImagePull, RunContainerError, CreateContainerError ...)."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(f"{reason}: {message}")
        self.reason = reason
        self.message = message


class NotFound(RuntimeError_):
    def __init__(self, what: str, ident: str) -> None:
        super().__init__("NotFound", f"{what} {ident!r} not found")


@dataclass(slots=True)
class PortMapping:
    container_port: int
    host_port: int
    protocol: str = "TCP"  # TCP, UDP, SCTP
    host_ip: str = ""


@dataclass(slots=True)
class DNSConfig:
    servers: list[str] = field(default_factory=list)
    searches: list[str] = field(default_factory=list)
    options: list[str] = field(default_factory=list)


@dataclass(slots=True)
class PodSandboxConfig:
    name: str
    namespace: str
    uid: str
    attempt: int = 0
    hostname: str = ""
    host_network: bool = False
    log_directory: str = ""
    dns: DNSConfig | None = None
    port_mappings: list[PortMapping] = field(default_factory=list)
    labels: dict[str, str] = field(default_factory=dict)
    annotations: dict[str, str] = field(default_factory=dict)
    cgroup_parent: str = ""
    share_process_namespace: bool = False  # shareProcessNamespace: the containers share one PID namespace
    hostname_fqdn: str = ""  # <hostname>.<subdomain>.<namespace>.svc.<domain> when the pod has a subdomain
    host_aliases: list[tuple[str, list[str]]] = field(default_factory=list)  # spec.hostAliases: (ip, names)


@dataclass(slots=True)
class PodSandboxStatus:
    id: str
    config: PodSandboxConfig
    state: SandboxState
    created_at: int  # ns since the epoch
    ip: str = ""  # the pod's IP ("" for hostNetwork pods: the node's)
    additional_ips: list[str] = field(default_factory=list)


@dataclass(slots=True)
class Mount:
    container_path: str
    host_path: str
    readonly: bool = False
    propagation: str = "private"  # private, rslave, rshared


@dataclass(slots=True)
class Resources:
    cpu_shares: int = 0
    cpu_quota: int = 0  # microseconds per period; 0: none
    cpu_period: int = 0
    memory_limit: int = 0  # bytes; 0: none
    pids_limit: int = 0
    oom_score_adj: int = 0  # the QoS class' score; runtimes never apply a negative one (the node cannot lower it)


@dataclass(slots=True)
class SecurityContext:
    run_as_user: int | None = None
    run_as_group: int | None = None
    supplemental_groups: list[int] = field(default_factory=list)
    privileged: bool = False
    readonly_rootfs: bool = False
    no_new_privileges: bool = False  # allowPrivilegeEscalation: false
    run_as_non_root: bool = False  # refuse (CreateContainerConfigError) when the user would be root
    add_capabilities: list[str] = field(default_factory=list)
    drop_capabilities: list[str] = field(default_factory=list)
    seccomp: str = "RuntimeDefault"  # RuntimeDefault, Unconfined, or localhost/<profile>


@dataclass(slots=True)
class ContainerConfig:
    name: str
    image: str  # the image reference the pod names (resolved by pull_image first)
    attempt: int = 0
    command: list[str] = field(default_factory=list)  # empty: the image's ENTRYPOINT
    args: list[str] = field(default_factory=list)  # empty (with no command): the image's CMD
    working_dir: str = ""
    env: list[tuple[str, str]] = field(default_factory=list)
    mounts: list[Mount] = field(default_factory=list)
    log_path: str = ""  # relative to the sandbox's log_directory
    tty: bool = False
    stdin: bool = False
    resources: Resources = field(default_factory=Resources)
    security: SecurityContext = field(default_factory=SecurityContext)
    labels: dict[str, str] = field(default_factory=dict)
    annotations: dict[str, str] = field(default_factory=dict)


@dataclass(slots=True)
class ContainerStatus:
    id: str
    sandbox_id: str
    config: ContainerConfig
    state: ContainerState
    created_at: int
    started_at: int = 0
    finished_at: int = 0
    exit_code: int = 0
    reason: str = ""  # Completed, Error, OOMKilled ...
    message: str = ""
    image_ref: str = ""  # the image id it runs
    image_digest: str = ""  # ``repo@sha256:<manifest>`` it runs as, "" for an image without one (imported)
    log_path: str = ""  # absolute


@dataclass(slots=True)
class Image:
    id: str  # sha256:<config digest>
    repo_tags: list[str] = field(default_factory=list)
    repo_digests: list[str] = field(default_factory=list)
    size: int = 0
    user: str = ""  # the image config's User ("" = root)


@dataclass(slots=True)
class ContainerStats:
    """A container's usage as CRI's ContainerStats (figures read from its cgroup and root fs)."""

    id: str
    timestamp: int  # ns since the epoch
    cpu_usage_ns: int = 0  # cumulative CPU time
    memory_usage_bytes: int = 0
    memory_working_set_bytes: int = 0  # usage less inactive file pages
    rss_bytes: int = 0
    fs_used_bytes: int = 0  # the writable layer


@dataclass(slots=True)
class PodSandboxStats:
    """A sandbox's network usage (its namespace's interfaces, summed)."""

    id: str
    timestamp: int
    rx_bytes: int = 0
    tx_bytes: int = 0
    rx_errors: int = 0
    tx_errors: int = 0


@dataclass(slots=True)
class ExecResult:
    exit_code: int
    stdout: bytes
    stderr: bytes


@runtime_checkable
class Runtime(Protocol):
    """A container runtime backend (see the module docstring for the contract)."""

    name: str

    async def version(self) -> str: ...

    # -- sandboxes -------------------------------------------------------------------------------

    async def run_pod_sandbox(self, config: PodSandboxConfig) -> str: ...

    async def stop_pod_sandbox(self, sandbox_id: str) -> None: ...

    async def remove_pod_sandbox(self, sandbox_id: str) -> None: ...

    async def pod_sandbox_status(self, sandbox_id: str) -> PodSandboxStatus: ...

    async def list_pod_sandboxes(self, pod_uid: str | None = None) -> list[PodSandboxStatus]:
        """All sandboxes, or those of one pod (CRI's filter by the pod UID label)."""
        ...

    # -- containers ------------------------------------------------------------------------------

    async def create_container(self, sandbox_id: str, config: ContainerConfig) -> str: ...

    async def start_container(self, container_id: str) -> None: ...

    async def stop_container(self, container_id: str, grace_seconds: float) -> None: ...

    async def remove_container(self, container_id: str) -> None: ...

    async def container_status(self, container_id: str) -> ContainerStatus: ...

    async def list_containers(self, sandbox_id: str | None = None) -> list[ContainerStatus]: ...

    async def exec_sync(self, container_id: str, command: list[str], limit_seconds: float) -> ExecResult: ...

    async def reopen_container_log(self, container_id: str) -> None:
        """Start writing the container's output to a new file at its log path (after the
        kubelet renamed the old one for rotation); a no-op for a container not running."""
        ...

    async def container_stats(self, container_id: str) -> ContainerStats: ...

    async def pod_sandbox_stats(self, sandbox_id: str) -> PodSandboxStats: ...

    # -- images ----------------------------------------------------------------------------------

    async def pull_image(self, ref: str, auth: dict[str, str] | None = None) -> str: ...

    async def image_status(self, ref: str) -> Image | None: ...

    async def list_images(self) -> list[Image]: ...

    async def remove_image(self, ref: str) -> None: ...
