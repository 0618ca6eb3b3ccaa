"""ResourceDef: what the API knows of one resource (upstream's APIResource + its registry).

The group modules (``pybernetes.api.core``, ``pybernetes.api.apps`` ...) each export
``RESOURCES: list[ResourceDef]``; ``pybernetes.api.registry`` collects them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pybernetes.api.strategy import Strategy

ALL_VERBS = ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")


@dataclass(frozen=True, slots=True)
class Subresource:
    """A subresource such as status, scale, binding, log, exec, eviction."""

    name: str
    kind: str  # the kind it takes and returns (Pod for pods/status, Scale for .../scale)
    group: str = ""  # the group of that kind ("autoscaling" for Scale, "" for core)
    version: str = "v1"
    verbs: tuple[str, ...] = ("get", "patch", "update")


@dataclass(frozen=True, slots=True)
class ResourceDef:
    group: str  # "" for core
    version: str
    resource: str  # plural, lower case: "pods"
    kind: str  # "Pod"
    singular: str  # "pod"
    namespaced: bool
    strategy: Strategy = field(default_factory=Strategy)
    short_names: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    subresources: tuple[Subresource, ...] = ()
    verbs: tuple[str, ...] = ALL_VERBS

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def list_kind(self) -> str:
        return self.kind + "List"

    @property
    def group_resource(self) -> str:
        """``deployments.apps`` / ``pods`` as upstream error messages name resources."""
        return f"{self.resource}.{self.group}" if self.group else self.resource

    def subresource(self, name: str) -> Subresource | None:
        for sub in self.subresources:
            if sub.name == name:
                return sub
        return None


# Common subresources.
STATUS = "status"


def status_of(kind: str, group: str = "", version: str = "v1") -> Subresource:
    return Subresource("status", kind, group, version)


SCALE = Subresource("scale", "Scale", "autoscaling", "v1")
