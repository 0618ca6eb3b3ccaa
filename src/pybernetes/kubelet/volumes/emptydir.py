"""emptyDir volumes: a directory that lives as long as the pod, under
``<pods dir>/<uid>/volumes/kubernetes.io~empty-dir/<name>``.

- medium ``""`` (the node's disk): a directory with mode 0777.  ``sizeLimit`` is parsed and
  recorded (``EmptyDir.size_limit``, see ``VolumeManager.size_limits``); as upstream, it is
  enforced by evicting the pod (kubelet/eviction.py).
- medium ``Memory``: a tmpfs mounted there, its size the ``sizeLimit`` or else the node's
  memory.  Mounting needs root: without root the volume falls back to the disk, with a warning
  (the ``process`` runtime runs unprivileged and isolates nothing anyway).
- ``HugePages`` media are refused (no huge page support on this node agent).

Setting up again is harmless: an existing directory is kept, a mounted tmpfs is not mounted
twice (after a restart the mount table tells).
"""

from __future__ import annotations

import logging
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pybernetes.kubelet.volumes import mountutil
from pybernetes.machinery.quantity import QuantityError, parse_quantity

log = logging.getLogger(__name__)

DIR_MODE = 0o777


class EmptyDirError(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class EmptyDir:
    path: Path
    medium: str
    size_limit: int | None  # bytes; None: no limit
    tmpfs: bool  # backed by a tmpfs mount


def node_memory_bytes() -> int:
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def size_limit_of(source: dict[str, Any]) -> int | None:
    raw = source.get("sizeLimit")
    if raw is None or raw == "":
        return None
    try:
        value = parse_quantity(raw)
    except (QuantityError, ValueError, TypeError):
        raise EmptyDirError(f"invalid sizeLimit {raw!r}") from None
    return max(0, math.ceil(value))


def make_dir(path: Path, mode: int = DIR_MODE) -> bool:
    """Create ``path`` (and its parents) with exactly ``mode``; False when it existed."""
    if path.is_dir():
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    path.mkdir(mode=mode)
    os.chmod(path, mode)  # not subject to the umask
    return True


def setup_empty_dir(path: Path, source: dict[str, Any], *, root: bool,
                    node_memory: int | None = None) -> EmptyDir:
    medium = source.get("medium") or ""
    limit = size_limit_of(source)
    if medium == "":
        make_dir(path)
        return EmptyDir(path, medium, limit, False)
    if medium == "Memory":
        make_dir(path)
        if not root:
            log.warning("emptyDir %s: medium Memory needs root to mount a tmpfs; using the disk", path)
            return EmptyDir(path, medium, limit, False)
        if not mountutil.is_mount_point(path):
            size = limit if limit else (node_memory or node_memory_bytes())
            mountutil.mount_tmpfs(path, size)  # its root: 1777, as upstream's
        return EmptyDir(path, medium, limit, True)
    if medium.startswith("HugePages"):
        raise EmptyDirError(f"medium {medium} is not supported on this node: it has no huge pages support")
    raise EmptyDirError(f"unknown storage medium {medium!r}")
