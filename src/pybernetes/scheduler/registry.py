"""The plugin registry: which plugin classes the scheduler can build, by plugin name.

- ``IN_TREE`` maps each in-tree plugin's upstream name to ``"module:Class"``; its module is
  imported only when the plugin is first loaded, so a profile pays only for what it uses.
- Third-party plugins come from installed distributions through the entry-point group
  ``pybernetes.scheduler.plugins``: the entry point's name is the plugin name, its value the
  class (``"package.module:Class"``).  A third-party name equal to an in-tree name, or two
  distributions registering one name differently, is an error: the scheduler refuses to start
  rather than guess which one was meant.
- ``load(name)`` returns the class (a subclass of ``framework.Plugin`` whose ``name`` is
  ``name``); an unknown name raises ``UnknownPluginError`` naming it and the known plugins.
"""

from __future__ import annotations

import importlib
import importlib.metadata
from collections.abc import Iterable, Mapping
from typing import Any

from pybernetes.scheduler.framework import Plugin

ENTRY_POINT_GROUP = "pybernetes.scheduler.plugins"

_PLUGINS = "pybernetes.scheduler.plugins"

IN_TREE: dict[str, str] = {
    "PrioritySort": f"{_PLUGINS}.prioritysort:PrioritySort",
    "SchedulingGates": f"{_PLUGINS}.schedulinggates:SchedulingGates",
    "NodeName": f"{_PLUGINS}.nodename:NodeName",
    "NodeUnschedulable": f"{_PLUGINS}.nodeunschedulable:NodeUnschedulable",
    "NodePorts": f"{_PLUGINS}.nodeports:NodePorts",
    "NodeAffinity": f"{_PLUGINS}.nodeaffinity:NodeAffinity",
    "TaintToleration": f"{_PLUGINS}.tainttoleration:TaintToleration",
    "NodeResourcesFit": f"{_PLUGINS}.noderesourcesfit:NodeResourcesFit",
    "VolumeRestrictions": f"{_PLUGINS}.volumerestrictions:VolumeRestrictions",
    "VolumeBinding": f"{_PLUGINS}.volumebinding:VolumeBinding",
    "VolumeZone": f"{_PLUGINS}.volumezone:VolumeZone",
    "NodeResourcesBalancedAllocation":
        f"{_PLUGINS}.noderesourcesbalancedallocation:NodeResourcesBalancedAllocation",
    "ImageLocality": f"{_PLUGINS}.imagelocality:ImageLocality",
    "InterPodAffinity": f"{_PLUGINS}.interpodaffinity:InterPodAffinity",
    "PodTopologySpread": f"{_PLUGINS}.podtopologyspread:PodTopologySpread",
    "DefaultBinder": f"{_PLUGINS}.defaultbinder:DefaultBinder",
    "DefaultPreemption": f"{_PLUGINS}.defaultpreemption:DefaultPreemption",
}


class RegistryError(Exception):
    """The set of registered plugins is inconsistent (name clashes, broken entry points)."""


class UnknownPluginError(RegistryError, LookupError):
    """No plugin of that name is registered."""

    def __init__(self, name: str, known: Iterable[str]) -> None:
        self.name = name
        super().__init__(f"unknown scheduler plugin {name!r}; known plugins: {', '.join(sorted(known))}")


class PluginLoadError(RegistryError):
    """A registered plugin could not be imported or is not a proper plugin class."""


def _target(spec: str) -> tuple[str, str]:
    module, sep, attr = spec.partition(":")
    if not sep or not module or not attr:
        raise PluginLoadError(f"plugin reference {spec!r} is not of the form 'module:Class'")
    return module, attr


def _resolve(spec: str) -> Any:
    module_name, attr = _target(spec)
    obj: Any = importlib.import_module(module_name)
    for part in attr.split("."):
        obj = getattr(obj, part)
    return obj


class Registry:
    """Plugin name -> class, from ``in_tree`` ("module:Class" strings) and third-party entry
    points (``entry_points``: EntryPoint objects; None discovers the installed ones).
    Raises ``RegistryError`` at construction when a name is registered twice."""

    def __init__(self, in_tree: Mapping[str, str] | None = None,
                 entry_points: Iterable[importlib.metadata.EntryPoint] | None = None) -> None:
        self.in_tree: dict[str, str] = dict(IN_TREE if in_tree is None else in_tree)
        if entry_points is None:
            entry_points = importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)
        self.third_party: dict[str, importlib.metadata.EntryPoint] = {}
        problems: list[str] = []
        for ep in entry_points:
            if ep.name in self.in_tree:
                problems.append(f"third-party plugin {ep.name!r} ({ep.value}) clashes with the in-tree "
                                f"plugin of that name ({self.in_tree[ep.name]})")
                continue
            seen = self.third_party.get(ep.name)
            if seen is not None and seen.value != ep.value:
                problems.append(f"third-party plugin {ep.name!r} is registered twice: {seen.value} and {ep.value}")
                continue
            self.third_party[ep.name] = ep
        if problems:
            raise RegistryError(f"entry points of group {ENTRY_POINT_GROUP!r}: " + "; ".join(problems))
        self._loaded: dict[str, type[Plugin]] = {}

    def names(self) -> list[str]:
        """Every registered plugin name (in-tree first, then third-party), not importing any."""
        return [*self.in_tree, *self.third_party]

    def __contains__(self, name: object) -> bool:
        return name in self.in_tree or name in self.third_party

    def is_in_tree(self, name: str) -> bool:
        return name in self.in_tree

    def load(self, name: str) -> type[Plugin]:
        """The plugin class registered as ``name`` (imported on first use, then cached)."""
        cls = self._loaded.get(name)
        if cls is not None:
            return cls
        if name in self.in_tree:
            spec, origin = self.in_tree[name], "in-tree"
        elif name in self.third_party:
            spec, origin = self.third_party[name].value, f"entry point {ENTRY_POINT_GROUP}"
        else:
            raise UnknownPluginError(name, self.names())
        try:
            obj = _resolve(spec)
        except PluginLoadError:
            raise
        except Exception as exc:  # ImportError, AttributeError, or the module failing at import
            raise PluginLoadError(f"scheduler plugin {name!r} ({origin}, {spec}) cannot be loaded: "
                                  f"{type(exc).__name__}: {exc}") from exc
        if not (isinstance(obj, type) and issubclass(obj, Plugin)):
            raise PluginLoadError(f"scheduler plugin {name!r} ({spec}) is not a subclass of "
                                  "pybernetes.scheduler.framework.Plugin")
        if obj.name != name:
            raise PluginLoadError(f"scheduler plugin {name!r} ({spec}) names itself {obj.name!r}; "
                                  "the class's name must equal its registered name")
        self._loaded[name] = obj
        return obj


_default: Registry | None = None


def default_registry() -> Registry:
    """The registry of the in-tree plugins and the installed entry points (built once)."""
    global _default
    if _default is None:
        _default = Registry()
    return _default


def reset_default_registry() -> None:
    """Forget the cached registry (after installing a plugin package, in tests)."""
    global _default
    _default = None


def load(name: str) -> type[Plugin]:
    """The plugin class registered as ``name`` in the default registry."""
    return default_registry().load(name)
