"""The scheduling framework: statuses, cycle state, node info, the plugin interface and the
runner of a profile's extension points (upstream's pkg/scheduler/framework).

- ``Status`` — a plugin's answer: Success, Error, Unschedulable,
  UnschedulableAndUnresolvable, Wait or Skip, with reasons (shown to users in
  "0/5 nodes are available: 3 Insufficient cpu, ...") and the plugin that gave it.
  Plugins return statuses; they never raise for a verdict (a raise is an Error status).
- ``CycleState`` — what the plugins of one scheduling cycle share (PreFilter results read by
  Filter, PreScore by Score), cloned for preemption's what-if runs.
- ``NodeInfo`` — a node with the pods on it (bound and assumed) and what they add up to:
  requested resources (and the non-zero requests scoring uses), host ports, pods with
  (anti-)affinity, image sizes.  Plugins read it; only the cache changes it.
- ``Plugin`` — a plugin class names itself (``name``, upstream's name) and implements the
  methods of the extension points it serves: ``less`` (QueueSort), ``pre_enqueue``,
  ``pre_filter``, ``filter``, ``post_filter``, ``pre_score``, ``score`` (+
  ``normalize_score``), ``reserve``/``unreserve``, ``permit``, ``pre_bind``, ``bind``,
  ``post_bind``, and ``events_to_register`` (the cluster events that may make a pod it
  rejected schedulable).  Filter and Score are synchronous (CPU only); the binding cycle's
  points are coroutines.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    from pybernetes.scheduler.handle import Handle

Obj = dict[str, Any]

MAX_NODE_SCORE = 100
MIN_NODE_SCORE = 0


class Code(enum.IntEnum):
    SUCCESS = 0
    ERROR = 1
    UNSCHEDULABLE = 2
    UNSCHEDULABLE_AND_UNRESOLVABLE = 3
    WAIT = 4
    SKIP = 5


@dataclass(slots=True)
class Status:
    code: Code = Code.SUCCESS
    reasons: tuple[str, ...] = ()
    plugin: str = ""

    @classmethod
    def unschedulable(cls, *reasons: str, plugin: str = "") -> Status:
        return cls(Code.UNSCHEDULABLE, reasons, plugin)

    @classmethod
    def unresolvable(cls, *reasons: str, plugin: str = "") -> Status:
        return cls(Code.UNSCHEDULABLE_AND_UNRESOLVABLE, reasons, plugin)

    @classmethod
    def error(cls, message: str, plugin: str = "") -> Status:
        return cls(Code.ERROR, (message,), plugin)

    @classmethod
    def skip(cls) -> Status:
        return cls(Code.SKIP)

    @classmethod
    def wait(cls, plugin: str = "") -> Status:
        return cls(Code.WAIT, (), plugin)

    def is_success(self) -> bool:
        return self.code == Code.SUCCESS

    def is_skip(self) -> bool:
        return self.code == Code.SKIP

    def is_rejected(self) -> bool:
        """Unschedulable or UnschedulableAndUnresolvable: the pod does not fit (not an error)."""
        return self.code in (Code.UNSCHEDULABLE, Code.UNSCHEDULABLE_AND_UNRESOLVABLE)

    def message(self) -> str:
        return ", ".join(self.reasons)


SUCCESS = Status()


class CycleState:
    """Data the plugins of one scheduling cycle share, by key (a plugin uses its own name
    or ``"PreFilter" + name``).  ``clone`` copies the mapping and calls ``clone()`` on the
    values that have one (preemption tries removing pods on a copy)."""

    __slots__ = ("_data", "skip_filter_plugins", "skip_score_plugins")

    def __init__(self) -> None:
        self._data: dict[str, Any] = {}
        self.skip_filter_plugins: set[str] = set()
        self.skip_score_plugins: set[str] = set()

    def read(self, key: str) -> Any:
        """The value written under ``key`` (KeyError when absent)."""
        return self._data[key]

    def get(self, key: str, default: Any = None) -> Any:
        return self._data.get(key, default)

    def write(self, key: str, value: Any) -> None:
        self._data[key] = value

    def delete(self, key: str) -> None:
        self._data.pop(key, None)

    def clone(self) -> CycleState:
        out = CycleState()
        for key, value in self._data.items():
            copier = getattr(value, "clone", None)
            out._data[key] = copier() if callable(copier) else value
        out.skip_filter_plugins = set(self.skip_filter_plugins)
        out.skip_score_plugins = set(self.skip_score_plugins)
        return out


# -- node info --------------------------------------------------------------------------------


@dataclass(slots=True)
class PodEntry:
    """A pod on a node, with what NodeInfo keeps adding up (computed once)."""

    pod: Obj
    requests: dict[str, int]  # resource -> amount (cpu in millicores, memory in bytes ...)
    non_zero_cpu: int  # millicores, with upstream's default for pods that request nothing
    non_zero_memory: int  # bytes, likewise
    host_ports: tuple[tuple[str, str, int], ...]  # (hostIP, protocol, hostPort)
    has_affinity: bool
    has_required_anti_affinity: bool


@dataclass(slots=True)
class NodeInfo:
    """A node and the pods on it.  ``requested`` sums the pods' requests; ``allocatable``
    is the node's (resource -> amount, same units as requests, plus ``pods``)."""

    node: Obj
    name: str
    allocatable: dict[str, int] = field(default_factory=dict)
    pods: dict[str, PodEntry] = field(default_factory=dict)  # pod key (ns/name) -> entry
    requested: dict[str, int] = field(default_factory=dict)
    non_zero_cpu: int = 0
    non_zero_memory: int = 0
    used_ports: dict[tuple[str, str, int], int] = field(default_factory=dict)
    pods_with_affinity: int = 0
    pods_with_required_anti_affinity: int = 0
    images: dict[str, int] = field(default_factory=dict)  # image name -> size in bytes
    generation: int = 0

    @property
    def labels(self) -> dict[str, str]:
        return (self.node.get("metadata") or {}).get("labels") or {}

    @property
    def taints(self) -> list[Obj]:
        return (self.node.get("spec") or {}).get("taints") or []

    def pod_list(self) -> list[Obj]:
        return [entry.pod for entry in self.pods.values()]

    def add_entry(self, key: str, entry: PodEntry) -> None:
        if key in self.pods:
            self.remove(key)
        self.pods[key] = entry
        for res, amount in entry.requests.items():
            self.requested[res] = self.requested.get(res, 0) + amount
        self.non_zero_cpu += entry.non_zero_cpu
        self.non_zero_memory += entry.non_zero_memory
        for port in entry.host_ports:
            self.used_ports[port] = self.used_ports.get(port, 0) + 1
        self.pods_with_affinity += entry.has_affinity
        self.pods_with_required_anti_affinity += entry.has_required_anti_affinity
        self.generation += 1

    def remove(self, key: str) -> PodEntry | None:
        entry = self.pods.pop(key, None)
        if entry is None:
            return None
        for res, amount in entry.requests.items():
            left = self.requested.get(res, 0) - amount
            if left:
                self.requested[res] = left
            else:
                self.requested.pop(res, None)
        self.non_zero_cpu -= entry.non_zero_cpu
        self.non_zero_memory -= entry.non_zero_memory
        for port in entry.host_ports:
            count = self.used_ports.get(port, 0) - 1
            if count > 0:
                self.used_ports[port] = count
            else:
                self.used_ports.pop(port, None)
        self.pods_with_affinity -= entry.has_affinity
        self.pods_with_required_anti_affinity -= entry.has_required_anti_affinity
        self.generation += 1
        return entry

    def clone(self) -> NodeInfo:
        return NodeInfo(self.node, self.name, dict(self.allocatable), dict(self.pods), dict(self.requested),
                        self.non_zero_cpu, self.non_zero_memory, dict(self.used_ports), self.pods_with_affinity,
                        self.pods_with_required_anti_affinity, dict(self.images), self.generation)


# -- plugins ----------------------------------------------------------------------------------


@dataclass(slots=True)
class PreFilterResult:
    """PreFilter may narrow the nodes to evaluate (None: all of them)."""

    node_names: frozenset[str] | None = None


@dataclass(slots=True)
class PostFilterResult:
    """PostFilter (preemption) may nominate a node for the pod's next attempt."""

    nominated_node_name: str | None = None


@dataclass(slots=True, frozen=True)
class ClusterEvent:
    """A kind of change that may make rejected pods schedulable: resource ("Node", "Pod",
    "PersistentVolumeClaim" ...) and action ("Add", "Update", "Delete", or finer upstream
    labels like "UpdateNodeLabel", "UpdateNodeTaint", "UpdateNodeAllocatable")."""

    resource: str
    action: str


class Plugin:
    """Base of every plugin; subclasses set ``name`` and implement their extension points.

    ``__init__(args, handle)``: ``args`` is the plugin's pluginConfig args (a dict, already
    defaulted by the plugin's ``default_args``/checked by ``validate_args``), ``handle``
    gives the snapshot, client and recorder (scheduler/handle.py)."""

    name: ClassVar[str] = ""
    #: Whether the plugin's Filter verdict on a node can change when pods are added to or removed
    #: from it (preemption's dry runs re-run only those; the others' verdicts are known from the
    #: cycle's table forms).  True unless a plugin says otherwise.
    node_pods_matter: ClassVar[bool] = True

    def __init__(self, args: Obj | None = None, handle: Handle | None = None) -> None:
        self.args = dict(args or {})
        self.handle = handle

    @classmethod
    def default_args(cls) -> Obj:
        return {}

    @classmethod
    def validate_args(cls, args: Obj) -> list[str]:
        """Problems with ``args`` (empty when fine): shown at start-up, naming the plugin."""
        return []

    def events_to_register(self) -> Iterable[ClusterEvent]:
        return ()


def has_point(plugin: Plugin, method: str) -> bool:
    """Whether ``plugin`` implements the extension point method ``method``."""
    return callable(getattr(plugin, method, None))
