"""The scheduler's configuration file: KubeSchedulerConfiguration v1 (upstream v1.32 shape),
read from YAML or JSON, defaulted, validated and resolved into ``SchedulerConfig``.

- Defaults as upstream: parallelism 16, percentageOfNodesToScore 0 (adaptive), backoff 1 s
  doubling to 10 s, one profile "default-scheduler", leader election on a kube-system/
  kube-scheduler lease (15 s / 10 s / 2 s), and upstream's multiPoint default plugin set
  restricted to the plugins our registry has (``NOT_YET`` names the others).
- A profile's ``plugins`` is merged into the defaults as upstream merges them (a name in
  ``disabled`` drops that default, ``"*"`` drops them all, an enabled default is re-configured
  in place), then ``multiPoint`` is expanded to every extension point the plugin class
  implements unless that point disables it; a plugin also enabled at the point itself keeps
  that entry.  Order per point: those re-configured entries, then multiPoint plugins, then
  the point's other plugins.
- ``Profile.points`` maps each extension point (the configuration's names: ``queueSort``,
  ``preEnqueue``, ``preFilter``, ``filter``, ``postFilter``, ``preScore``, ``score``,
  ``reserve``, ``permit``, ``preBind``, ``bind``, ``postBind``; ``POINTS`` gives each one's
  plugin method) to ``[(plugin, weight)]``; weights only exist at ``score`` (unset or 0 means
  1), other points carry 0.  ``Profile.plugin_args`` holds each plugin's ``default_args()`` updated with
  its pluginConfig args (top-level keys).
- Every problem is collected and raised together as ``ConfigError``, each naming its field
  path and plugin.
"""

from __future__ import annotations

import copy
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from pybernetes.scheduler.framework import Plugin
from pybernetes.scheduler.registry import IN_TREE, RegistryError, default_registry

Obj = dict[str, Any]

API_VERSION = "kubescheduler.config.k8s.io/v1"
KIND = "KubeSchedulerConfiguration"
DEFAULT_SCHEDULER_NAME = "default-scheduler"
MIN_WEIGHT, MAX_WEIGHT = 1, 100

POINTS: dict[str, str] = {
    "preEnqueue": "pre_enqueue",
    "queueSort": "less",
    "preFilter": "pre_filter",
    "filter": "filter",
    "postFilter": "post_filter",
    "preScore": "pre_score",
    "score": "score",
    "reserve": "reserve",
    "permit": "permit",
    "preBind": "pre_bind",
    "bind": "bind",
    "postBind": "post_bind",
}

UPSTREAM_DEFAULT_PLUGINS: tuple[tuple[str, int | None], ...] = (
    ("SchedulingGates", None),
    ("PrioritySort", None),
    ("NodeUnschedulable", None),
    ("NodeName", None),
    ("TaintToleration", 3),
    ("NodeAffinity", 2),
    ("NodePorts", None),
    ("NodeResourcesFit", 1),
    ("VolumeRestrictions", None),
    ("NodeVolumeLimits", None),
    ("VolumeBinding", None),
    ("VolumeZone", None),
    ("PodTopologySpread", 2),
    ("InterPodAffinity", 2),
    ("DefaultPreemption", None),
    ("NodeResourcesBalancedAllocation", 1),
    ("ImageLocality", 1),
    ("DefaultBinder", None),
)

DEFAULT_PLUGINS = tuple(p for p in UPSTREAM_DEFAULT_PLUGINS if p[0] in IN_TREE)
NOT_YET = tuple(name for name, _ in UPSTREAM_DEFAULT_PLUGINS if name not in IN_TREE)

_TOP_FIELDS = {"apiVersion", "kind", "parallelism", "percentageOfNodesToScore", "podInitialBackoffSeconds",
               "podMaxBackoffSeconds", "profiles", "leaderElection", "clientConnection", "healthzBindAddress",
               "metricsBindAddress", "enableProfiling", "enableContentionProfiling", "extenders",
               "delayCacheUntilActive", "debuggingConfiguration"}
_PROFILE_FIELDS = {"schedulerName", "percentageOfNodesToScore", "plugins", "pluginConfig"}
_LEADER_FIELDS = {"leaderElect", "leaseDuration", "renewDeadline", "retryPeriod", "resourceLock",
                  "resourceName", "resourceNamespace"}
_JITTER = 1.2


class ConfigError(ValueError):
    """The configuration is invalid; ``problems`` lists every problem found."""

    def __init__(self, problems: list[str], source: str = "") -> None:
        self.problems = list(problems)
        where = f" {source}" if source else ""
        super().__init__(f"invalid scheduler configuration{where}:\n" + "\n".join(f"  - {p}" for p in problems))


@dataclass
class LeaderElection:
    leader_elect: bool = True
    lease_duration: float = 15.0
    renew_deadline: float = 10.0
    retry_period: float = 2.0
    resource_lock: str = "leases"
    resource_namespace: str = "kube-system"
    resource_name: str = "kube-scheduler"


@dataclass
class Profile:
    scheduler_name: str
    percentage_of_nodes_to_score: int
    points: dict[str, list[tuple[str, int]]]
    plugin_args: dict[str, Obj]
    plugin_classes: dict[str, type[Plugin]] = field(default_factory=dict)

    def enabled(self, point: str) -> list[str]:
        return [name for name, _ in self.points.get(point, ())]

    def plugin_names(self) -> list[str]:
        """Every plugin the profile uses, once, in first-use order."""
        seen: dict[str, None] = {}
        for entries in self.points.values():
            for name, _ in entries:
                seen.setdefault(name)
        return list(seen)


@dataclass
class SchedulerConfig:
    profiles: list[Profile]
    parallelism: int = 16
    percentage_of_nodes_to_score: int = 0
    pod_initial_backoff_seconds: float = 1
    pod_max_backoff_seconds: float = 10
    leader_election: LeaderElection = field(default_factory=LeaderElection)

    def profile(self, scheduler_name: str) -> Profile | None:
        for p in self.profiles:
            if p.scheduler_name == scheduler_name:
                return p
        return None


def nodes_to_find(num_all_nodes: int, percentage: int) -> int:
    """How many feasible nodes a cycle looks for (upstream's numFeasibleNodesToFind): all of
    them below 100 nodes or at 100%; 0 means adaptive, 50% minus 1% per 125 nodes, at least
    5%; never fewer than 100 nodes."""
    if num_all_nodes < 100 or percentage >= 100:
        return num_all_nodes
    if percentage <= 0:
        percentage = max(50 - num_all_nodes // 125, 5)
    return max(num_all_nodes * percentage // 100, 100)


# -- small readers ------------------------------------------------------------------------------


_DURATION = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)")
_UNIT = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_duration(value: Any) -> float:
    """Seconds of a Go duration string ("15s", "1m30s", "500ms") or a number of seconds."""
    if isinstance(value, bool):
        raise ValueError("must be a duration")
    if isinstance(value, int | float):
        return float(value)
    if not isinstance(value, str) or not value:
        raise ValueError("must be a duration such as \"15s\"")
    text, sign = value, 1.0
    if text[0] in "+-":
        sign, text = (-1.0 if text[0] == "-" else 1.0), text[1:]
    if text == "0":
        return 0.0
    pos, total = 0, 0.0
    for m in _DURATION.finditer(text):
        if m.start() != pos:
            break
        total += float(m.group(1)) * _UNIT[m.group(2)]
        pos = m.end()
    if pos != len(text) or pos == 0:
        raise ValueError(f"invalid duration {value!r}")
    return sign * total


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


class _Reader:
    """Collects problems while reading the document."""

    def __init__(self) -> None:
        self.problems: list[str] = []

    def add(self, msg: str) -> None:
        self.problems.append(msg)

    def mapping(self, v: Any, path: str) -> Obj:
        if v is None:
            return {}
        if not isinstance(v, dict):
            self.add(f"{path}: must be an object")
            return {}
        return v

    def listing(self, v: Any, path: str) -> list[Any]:
        if v is None:
            return []
        if not isinstance(v, list):
            self.add(f"{path}: must be a list")
            return []
        return v

    def unknown(self, obj: Obj, allowed: set[str], path: str) -> None:
        for key in obj:
            if key not in allowed:
                where = f"{path}." if path else ""
                self.add(f'{where}{key}: unknown field "{key}"')

    def integer(self, obj: Obj, key: str, path: str, default: int | None) -> int | None:
        v = obj.get(key)
        if v is None:
            return default
        if not _is_int(v):
            self.add(f"{path}: must be an integer, got {v!r}")
            return default
        return v

    def percentage(self, obj: Obj, path: str) -> int | None:
        v = self.integer(obj, "percentageOfNodesToScore", path, None)
        if v is not None and not 0 <= v <= 100:
            self.add(f"{path}: Invalid value: {v}: not in valid range [0-100]")
            return None
        return v


# -- plugin sets ----------------------------------------------------------------------------------


def _plugin_set(r: _Reader, raw: Any, path: str) -> tuple[list[tuple[str, int | None, str]], list[str]]:
    """([(name, weight or None, path)], disabled names) of a PluginSet."""
    ps = r.mapping(raw, path)
    r.unknown(ps, {"enabled", "disabled"}, path)
    enabled: list[tuple[str, int | None, str]] = []
    for i, entry in enumerate(r.listing(ps.get("enabled"), f"{path}.enabled")):
        epath = f"{path}.enabled[{i}]"
        entry = r.mapping(entry, epath)
        r.unknown(entry, {"name", "weight"}, epath)
        name = entry.get("name")
        if not isinstance(name, str) or not name:
            r.add(f"{epath}.name: Required value: a plugin name")
            continue
        weight = entry.get("weight")
        if weight is not None:
            if not _is_int(weight):
                r.add(f"{epath}.weight: plugin {name!r}: weight must be an integer, got {weight!r}")
                weight = None
            elif weight == 0:
                weight = None
            elif not MIN_WEIGHT <= weight <= MAX_WEIGHT:
                r.add(f"{epath}.weight: plugin {name!r}: Invalid value: {weight}: "
                      f"weight must be in the range [{MIN_WEIGHT}-{MAX_WEIGHT}]")
                weight = None
        enabled.append((name, weight, epath))
    disabled: list[str] = []
    for i, entry in enumerate(r.listing(ps.get("disabled"), f"{path}.disabled")):
        dpath = f"{path}.disabled[{i}]"
        entry = r.mapping(entry, dpath)
        r.unknown(entry, {"name"}, dpath)
        name = entry.get("name")
        if not isinstance(name, str) or not name:
            r.add(f"{dpath}.name: Required value: a plugin name (or \"*\")")
            continue
        disabled.append(name)
    return enabled, disabled


def _merge_multipoint(custom_enabled: list[tuple[str, int | None, str]],
                      disabled: list[str]) -> list[tuple[str, int | None, str]]:
    """Upstream's merge of the custom multiPoint set into the default one."""
    out: list[tuple[str, int | None, str]] = []
    used: set[int] = set()
    by_name = {entry[0]: (i, entry) for i, entry in enumerate(custom_enabled)}
    if "*" not in disabled:
        for name, weight in DEFAULT_PLUGINS:
            if name in disabled:
                continue
            if name in by_name:
                i, entry = by_name[name]
                used.add(i)
                out.append(entry)
            else:
                out.append((name, weight, "(default)"))
    out.extend(entry for i, entry in enumerate(custom_enabled) if i not in used)
    return out


class _ProfileBuilder:
    def __init__(self, r: _Reader, registry: Any, index: int, raw: Obj, global_pct: int) -> None:
        self.r, self.registry, self.index = r, registry, index
        self.path = f"profiles[{index}]"
        self.raw = raw
        self.global_pct = global_pct
        self.classes: dict[str, type[Plugin]] = {}
        self.bad: set[str] = set()

    def cls(self, name: str, path: str) -> type[Plugin] | None:
        if name in self.classes:
            return self.classes[name]
        if name in self.bad:
            return None
        if name not in self.registry:
            self.bad.add(name)
            self.r.add(f"{path}: unknown plugin {name!r}")
            return None
        try:
            self.classes[name] = self.registry.load(name)
        except RegistryError as exc:
            self.bad.add(name)
            self.r.add(f"{path}: {exc}")
            return None
        return self.classes[name]

    def build(self) -> Profile:
        r, path, raw = self.r, self.path, self.raw
        r.unknown(raw, _PROFILE_FIELDS, path)
        name = raw.get("schedulerName", DEFAULT_SCHEDULER_NAME)
        if not isinstance(name, str) or not name:
            r.add(f"{path}.schedulerName: Required value")
            name = ""
        pct = r.percentage(raw, f"{path}.percentageOfNodesToScore")
        plugins = r.mapping(raw.get("plugins"), f"{path}.plugins")
        r.unknown(plugins, {"multiPoint", *POINTS}, f"{path}.plugins")
        mp_enabled, mp_disabled = _plugin_set(r, plugins.get("multiPoint"), f"{path}.plugins.multiPoint")
        multipoint = _merge_multipoint(mp_enabled, mp_disabled)
        for mp_name, _, mp_path in multipoint:
            self.cls(mp_name, mp_path if mp_path != "(default)" else f"{path}.plugins.multiPoint")
        points = {point: self._point(point, plugins.get(point), multipoint) for point in POINTS}
        self._check_points(points)
        args = self._args(points)
        return Profile(name, self.global_pct if pct is None else pct, points, args, dict(self.classes))

    def _point(self, point: str, raw: Any, multipoint: list[tuple[str, int | None, str]]) -> list[tuple[str, int]]:
        r, method = self.r, POINTS[point]
        ppath = f"{self.path}.plugins.{point}"
        enabled, disabled = _plugin_set(r, raw, ppath)
        specific: list[tuple[str, int | None]] = []
        seen: set[str] = set()
        for name, weight, epath in enabled:
            cls = self.cls(name, epath)
            if cls is None:
                continue
            if not callable(getattr(cls, method, None)):
                r.add(f"{epath}: plugin {name!r} does not implement the {point} extension point")
                continue
            if name in seen:
                r.add(f"{epath}: plugin {name!r} is enabled twice at {point}")
                continue
            seen.add(name)
            specific.append((name, weight))
        overridden: set[str] = set()
        expanded: list[tuple[str, int | None]] = []
        if "*" not in disabled:
            done: set[str] = set()
            for name, weight, mpath in multipoint:
                cls = self.classes.get(name)
                if cls is None or not callable(getattr(cls, method, None)) or name in disabled:
                    continue
                if name in seen:
                    overridden.add(name)
                    continue
                if name in done:
                    r.add(f"{mpath}: plugin {name!r} is enabled twice in multiPoint")
                    continue
                done.add(name)
                expanded.append((name, weight))
        ordered = ([e for e in specific if e[0] in overridden] + expanded
                   + [e for e in specific if e[0] not in overridden])
        if point != "score":
            return [(name, 0) for name, _ in ordered]
        return [(name, weight or 1) for name, weight in ordered]

    def _check_points(self, points: dict[str, list[tuple[str, int]]]) -> None:
        ppath = f"{self.path}.plugins"
        sorts = points["queueSort"]
        if not sorts:
            self.r.add(f"{ppath}.queueSort: no queue sort plugin is enabled")
        elif len(sorts) > 1:
            self.r.add(f"{ppath}.queueSort: only one queue sort plugin can be enabled, got "
                       + ", ".join(n for n, _ in sorts))
        if not points["bind"]:
            self.r.add(f"{ppath}.bind: at least one bind plugin is needed")

    def _args(self, points: dict[str, list[tuple[str, int]]]) -> dict[str, Obj]:
        r = self.r
        given: dict[str, tuple[Obj, str]] = {}
        for j, entry in enumerate(r.listing(self.raw.get("pluginConfig"), f"{self.path}.pluginConfig")):
            cpath = f"{self.path}.pluginConfig[{j}]"
            entry = r.mapping(entry, cpath)
            r.unknown(entry, {"name", "args"}, cpath)
            name = entry.get("name")
            if not isinstance(name, str) or not name:
                r.add(f"{cpath}.name: Required value: a plugin name")
                continue
            if name in given:
                r.add(f"{cpath}: Duplicate value: {name!r} (repeated config for plugin {name!r})")
                continue
            args = entry.get("args")
            if args is None:
                args = {}
            if not isinstance(args, dict):
                r.add(f"{cpath}.args: plugin {name!r}: args must be an object")
                continue
            given[name] = (args, cpath)
        names = [n for entries in points.values() for n, _ in entries]
        names += [n for n in given if n not in names]
        out: dict[str, Obj] = {}
        for name in dict.fromkeys(names):
            cls = self.cls(name, given[name][1] if name in given else f"{self.path}.plugins")
            if cls is None:
                continue
            merged = copy.deepcopy(cls.default_args() or {})
            if name in given:
                args, cpath = given[name]
                merged.update(copy.deepcopy(args))
                try:
                    problems = cls.validate_args(merged)
                except Exception as exc:  # a plugin's validator must not crash start-up silently
                    problems = [f"validating args raised {type(exc).__name__}: {exc}"]
                for problem in problems:
                    r.add(f"{cpath}.args: plugin {name!r}: {problem}")
            out[name] = merged
        return out


# -- the document -----------------------------------------------------------------------------------


def parse_config(doc: Any, registry: Any = None, source: str = "") -> SchedulerConfig:
    """A ``SchedulerConfig`` from a decoded KubeSchedulerConfiguration document (raises
    ``ConfigError`` listing every problem).  ``registry`` defaults to the default registry."""
    r = _Reader()
    if registry is None:
        try:
            registry = default_registry()
        except RegistryError as exc:
            raise ConfigError([str(exc)], source) from exc
    if not isinstance(doc, dict):
        raise ConfigError([f"the document must be a {KIND} object"], source)
    if doc.get("apiVersion") != API_VERSION:
        r.add(f"apiVersion: Unsupported value: {doc.get('apiVersion')!r}: supported values: \"{API_VERSION}\"")
    if doc.get("kind") != KIND:
        r.add(f"kind: Unsupported value: {doc.get('kind')!r}: supported values: \"{KIND}\"")
    r.unknown(doc, _TOP_FIELDS, "")
    if doc.get("extenders"):
        r.add("extenders: scheduler extenders are not supported; use a plugin instead")
    parallelism = r.integer(doc, "parallelism", "parallelism", 16)
    if parallelism is not None and parallelism <= 0:
        r.add(f"parallelism: Invalid value: {parallelism}: should be an integer value greater than zero")
    pct = r.percentage(doc, "percentageOfNodesToScore")
    initial = r.integer(doc, "podInitialBackoffSeconds", "podInitialBackoffSeconds", 1) or 0
    maximum = r.integer(doc, "podMaxBackoffSeconds", "podMaxBackoffSeconds", 10) or 0
    if initial <= 0:
        r.add(f"podInitialBackoffSeconds: Invalid value: {initial}: must be greater than 0")
    if maximum < initial:
        r.add(f"podMaxBackoffSeconds: Invalid value: {maximum}: must be greater than or equal to "
              "PodInitialBackoffSeconds")
    leader = _leader_election(r, doc.get("leaderElection"))
    raw_profiles = r.listing(doc.get("profiles"), "profiles") or [{}]
    profiles: list[Profile] = []
    names: dict[str, int] = {}
    for i, raw in enumerate(raw_profiles):
        raw = r.mapping(raw, f"profiles[{i}]")
        profile = _ProfileBuilder(r, registry, i, raw, pct or 0).build()
        if profile.scheduler_name and profile.scheduler_name in names:
            r.add(f"profiles[{i}].schedulerName: Duplicate value: {profile.scheduler_name!r} "
                  f"(also profiles[{names[profile.scheduler_name]}].schedulerName)")
        names.setdefault(profile.scheduler_name, i)
        profiles.append(profile)
    _check_common_queue_sort(r, profiles)
    if r.problems:
        raise ConfigError(r.problems, source)
    return SchedulerConfig(profiles, parallelism or 16, pct or 0, initial, maximum, leader)


def _check_common_queue_sort(r: _Reader, profiles: list[Profile]) -> None:
    if not profiles:
        return
    first = profiles[0]
    canon = first.enabled("queueSort")
    canon_args = {n: first.plugin_args.get(n) for n in canon}
    for i, p in enumerate(profiles[1:], 1):
        mine = p.enabled("queueSort")
        if mine != canon:
            r.add(f"profiles[{i}].plugins.queueSort: Invalid value: {mine}: must be the same for all profiles "
                  f"(profiles[0] uses {canon})")
        elif {n: p.plugin_args.get(n) for n in mine} != canon_args:
            r.add(f"profiles[{i}].pluginConfig: queueSort plugin args must be the same for all profiles")


def _leader_election(r: _Reader, raw: Any) -> LeaderElection:
    le = LeaderElection()
    obj = r.mapping(raw, "leaderElection")
    r.unknown(obj, _LEADER_FIELDS, "leaderElection")
    if "leaderElect" in obj:
        if isinstance(obj["leaderElect"], bool):
            le.leader_elect = obj["leaderElect"]
        else:
            r.add(f"leaderElection.leaderElect: must be a boolean, got {obj['leaderElect']!r}")
    for key, attr in (("leaseDuration", "lease_duration"), ("renewDeadline", "renew_deadline"),
                      ("retryPeriod", "retry_period")):
        if obj.get(key) is not None:
            try:
                setattr(le, attr, parse_duration(obj[key]))
            except ValueError as exc:
                r.add(f"leaderElection.{key}: {exc}")
    for key, attr in (("resourceLock", "resource_lock"), ("resourceName", "resource_name"),
                      ("resourceNamespace", "resource_namespace")):
        if key in obj:
            if isinstance(obj[key], str):
                setattr(le, attr, obj[key])
            else:
                r.add(f"leaderElection.{key}: must be a string, got {obj[key]!r}")
    if le.leader_elect:
        for key, value in (("leaseDuration", le.lease_duration), ("renewDeadline", le.renew_deadline),
                           ("retryPeriod", le.retry_period)):
            if value <= 0:
                r.add(f"leaderElection.{key}: Invalid value: {value}s: must be greater than zero")
        if le.lease_duration <= le.renew_deadline:
            r.add("leaderElection.leaseDuration: Invalid value: "
                  f"{le.lease_duration}s: LeaseDuration must be greater than RenewDeadline")
        if le.renew_deadline <= _JITTER * le.retry_period:
            r.add("leaderElection.renewDeadline: Invalid value: "
                  f"{le.renew_deadline}s: RenewDeadline must be greater than retryPeriod*JitterFactor")
        if le.resource_lock != "leases":
            r.add(f"leaderElection.resourceLock: Invalid value: {le.resource_lock!r}: "
                  'resourceLock value must be "leases"')
        for key, value in (("resourceName", le.resource_name), ("resourceNamespace", le.resource_namespace)):
            if not value:
                r.add(f"leaderElection.{key}: Required value")
    return le


def load_config(path: str | Path, registry: Any = None) -> SchedulerConfig:
    """Read, default and validate the configuration file at ``path`` (YAML or JSON)."""
    source = str(path)
    try:
        text = Path(path).read_text()
    except OSError as exc:
        raise ConfigError([f"cannot read the file: {exc}"], source) from exc
    try:
        doc = json.loads(text) if source.endswith(".json") else yaml.safe_load(text)
    except (ValueError, yaml.YAMLError) as exc:
        raise ConfigError([f"cannot decode the file: {exc}"], source) from exc
    return parse_config(doc, registry, source)


def default_config(registry: Any = None) -> SchedulerConfig:
    """The configuration used when no file is given: upstream's defaults."""
    return parse_config({"apiVersion": API_VERSION, "kind": KIND}, registry, "(defaults)")
