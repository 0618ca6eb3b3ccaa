"""Cgroups as the runc runtime sees them (cgroupfs driver): where a cgroup path lives on this
host, cgroup v1 (one hierarchy per controller, possibly with a v2 "unified" mount beside them:
the "hybrid" layout) or v2 (one hierarchy, /sys/fs/cgroup/cgroup.controllers exists); a
container's usage figures and OOM-kill count; its processes; and removing a pod's cgroups.

runc creates and configures a container's cgroups from the OCI spec (cgroupsPath, resources);
this module only reads them and removes what is left once the processes are gone.

- v1: cpu time from ``cpuacct.usage`` (ns); memory from ``memory.usage_in_bytes`` and
  ``memory.stat`` (``total_inactive_file``, ``total_rss``); OOM kills from the ``oom_kill`` line
  of ``memory.oom_control``.
- v2: ``cpu.stat`` ``usage_usec``; ``memory.current``, ``memory.stat`` (``inactive_file``,
  ``anon``); ``memory.events`` ``oom_kill``.

The working set is usage less inactive file pages (never negative), as the kubelet computes it.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path("/sys/fs/cgroup")
V1_CONTROLLERS = ("cpu", "cpuacct", "cpuset", "memory", "devices", "freezer", "blkio", "pids", "hugetlb",
                  "net_cls", "net_prio", "perf_event", "rdma", "misc")


@dataclass(frozen=True, slots=True)
class Usage:
    cpu_ns: int = 0
    memory_bytes: int = 0
    working_set_bytes: int = 0
    rss_bytes: int = 0


def _unescape(raw: str) -> str:
    return raw.replace("\\040", " ").replace("\\011", "\t").replace("\\012", "\n").replace("\\134", "\\")


@dataclass(slots=True)
class Layout:
    """The host's cgroup mounts: ``v2`` (unified only) or v1 ``controllers`` {name: mount point},
    plus ``hierarchies`` (every mount point, v1 named ones and the hybrid unified one too)."""

    v2: bool
    controllers: dict[str, Path] = field(default_factory=dict)
    hierarchies: list[Path] = field(default_factory=list)

    @classmethod
    def detect(cls, mountinfo: str | None = None, root: Path = ROOT) -> Layout:
        if mountinfo is None:
            if (root / "cgroup.controllers").exists():
                return cls(True, {}, [root])
            with open("/proc/self/mountinfo") as f:
                mountinfo = f.read()
        controllers: dict[str, Path] = {}
        hierarchies: list[Path] = []
        unified: Path | None = None
        for line in mountinfo.splitlines():
            left, _, right = line.partition(" - ")
            fields, rfields = left.split(), right.split()
            if len(fields) < 5 or len(rfields) < 3:
                continue
            fstype, options = rfields[0], rfields[2].split(",")
            mount_point = Path(_unescape(fields[4]))
            if fstype == "cgroup2":
                if mount_point == root:
                    return cls(True, {}, [root])
                unified = mount_point
            elif fstype == "cgroup":
                hierarchies.append(mount_point)
                for option in options:
                    if option in V1_CONTROLLERS:
                        controllers.setdefault(option, mount_point)
        if unified is not None:
            hierarchies.append(unified)
        return cls(False, controllers, hierarchies)

    # -- paths -------------------------------------------------------------------------------------

    def _dir(self, controller: str, cgroup_path: str) -> Path | None:
        base = self.hierarchies[0] if self.v2 else self.controllers.get(controller)
        return base / cgroup_path.lstrip("/") if base is not None else None

    def dirs(self, cgroup_path: str) -> list[Path]:
        """The directories of ``cgroup_path`` in every hierarchy (existing or not)."""
        return [h / cgroup_path.lstrip("/") for h in self.hierarchies]

    def exists(self, cgroup_path: str) -> bool:
        return any(d.is_dir() for d in self.dirs(cgroup_path))

    def file(self, controller: str, cgroup_path: str, name: str) -> Path | None:
        directory = self._dir(controller, cgroup_path)
        return directory / name if directory is not None else None

    # -- reading ----------------------------------------------------------------------------------

    def _read(self, controller: str, cgroup_path: str, name: str) -> str:
        path = self.file(controller, cgroup_path, name)
        if path is None:
            return ""
        try:
            return path.read_text()
        except OSError:
            return ""

    def _keyed(self, controller: str, cgroup_path: str, name: str) -> dict[str, int]:
        out: dict[str, int] = {}
        for line in self._read(controller, cgroup_path, name).splitlines():
            key, _, value = line.partition(" ")
            with contextlib.suppress(ValueError):
                out[key] = int(value)
        return out

    def _int(self, controller: str, cgroup_path: str, name: str) -> int:
        text = self._read(controller, cgroup_path, name).strip()
        try:
            return int(text)
        except ValueError:
            return 0

    def usage(self, cgroup_path: str) -> Usage:
        if self.v2:
            cpu = self._keyed("cpu", cgroup_path, "cpu.stat").get("usage_usec", 0) * 1000
            memory = self._int("memory", cgroup_path, "memory.current")
            stat = self._keyed("memory", cgroup_path, "memory.stat")
            inactive, rss = stat.get("inactive_file", 0), stat.get("anon", 0)
        else:
            cpu = self._int("cpuacct", cgroup_path, "cpuacct.usage")
            memory = self._int("memory", cgroup_path, "memory.usage_in_bytes")
            stat = self._keyed("memory", cgroup_path, "memory.stat")
            inactive = stat.get("total_inactive_file", stat.get("inactive_file", 0))
            rss = stat.get("total_rss", stat.get("rss", 0))
        return Usage(cpu, memory, max(0, memory - inactive), rss)

    def oom_kills(self, cgroup_path: str) -> int:
        """How many processes the kernel's OOM killer ended in this cgroup (0 when unknown)."""
        if self.v2:
            return self._keyed("memory", cgroup_path, "memory.events").get("oom_kill", 0)
        return self._keyed("memory", cgroup_path, "memory.oom_control").get("oom_kill", 0)

    def memory_limit(self, cgroup_path: str) -> int:
        if self.v2:
            text = self._read("memory", cgroup_path, "memory.max").strip()
            return 0 if text in ("", "max") else int(text)
        return self._int("memory", cgroup_path, "memory.limit_in_bytes")

    def pids(self, cgroup_path: str) -> list[int]:
        """The processes in the cgroup (and its descendants)."""
        out: set[int] = set()
        for directory in self.dirs(cgroup_path)[:1] if self.v2 else [
                d for d in (self._dir("pids", cgroup_path), self._dir("memory", cgroup_path)) if d]:
            for sub, _, files in os.walk(directory):
                if "cgroup.procs" in files:
                    with contextlib.suppress(OSError):
                        out.update(int(p) for p in Path(sub, "cgroup.procs").read_text().split())
        return sorted(out)

    # -- removal ----------------------------------------------------------------------------------

    def remove_if_empty(self, cgroup_path: str) -> bool:
        """Remove ``cgroup_path`` where it has no child cgroups and no processes (a pod's cgroup
        once its last sandbox is gone); True when it is gone everywhere."""
        for directory in self.dirs(cgroup_path):
            with contextlib.suppress(OSError):
                os.rmdir(directory)
        return not self.exists(cgroup_path)

    def remove(self, cgroup_path: str) -> list[str]:
        """Remove ``cgroup_path`` and its descendants in every hierarchy (deepest first); returns
        the directories that could not be removed (still holding processes)."""
        failed = []
        for top in self.dirs(cgroup_path):
            if not top.is_dir():
                continue
            for sub, _, _ in sorted(os.walk(top), key=lambda entry: -len(entry[0])):
                try:
                    os.rmdir(sub)
                except FileNotFoundError:
                    pass
                except OSError as exc:
                    failed.append(f"{sub}: {exc.strerror}")
        return failed
