"""Local ephemeral storage eviction: the part of upstream kubelet's eviction manager that
enforces emptyDir ``sizeLimit`` and ``ephemeral-storage`` limits (its ``localStorageEviction``,
with LocalStorageCapacityIsolation on, as by default).  Node-pressure eviction (memory, disk,
PID thresholds) is not here.

**The pure core**, ``local_storage_violations(pod, usage)``, takes a pod and a ``StorageUsage``
record (bytes used by each of its disk emptyDirs and by each container) and returns
``(reason, message)`` for the first rule the pod breaks, in upstream's order, else None:

1. an emptyDir that is not ``medium: Memory`` uses more than its ``sizeLimit`` (a limit of 0 is
   no limit): ``Usage of EmptyDir volume "<name>" exceeds the limit "<sizeLimit>". ``;
2. the pod uses more than its ephemeral-storage limit — upstream's ``PodLimits``: the sum over
   the containers (and sidecars) that declare a limit, at least the largest init container's
   (plus the sidecars started before it), plus ``spec.overhead`` when not zero; it exists as
   soon as one container declares one.  The pod's use is its disk emptyDirs' plus its
   containers': ``Pod ephemeral local storage usage exceeds the total limit of containers
   <limit>. ``;
3. a container of ``spec.containers`` uses more than its own (non-zero) limit:
   ``Container <name> exceeded its local ephemeral storage limit "<limit>". ``.

Using exactly the limit is allowed.  Critical pods (mirror pods, priority at least
system-cluster-critical's) are never evicted, as upstream.  The reason is ``Evicted``.  As in
upstream, these evictions set no ``DisruptionTarget`` condition (only node-pressure evictions
do), so a Job's podFailurePolicy counts them as ordinary failures.

**The shell**, ``LocalStorageEviction.check()``, which the agent runs every
``--eviction-interval`` seconds (``INTERVAL``, 10 s, upstream's housekeeping period), measures
each active pod that has something to enforce — its disk emptyDirs
(``VolumeManager.empty_dirs``) and, when a limit needs them, its containers' writable layers
(the runtime's ``fs_used_bytes``) plus their log directories — with directory walks in a thread
(``disk_usage``: each inode's blocks once however many hard links it has, never into another
mount), and hands a violating pod to ``PodSyncer.fail``: an ``Evicted`` Warning event now, then
its worker kills its containers with upstream's immediate eviction grace period (1 s) and
posts phase Failed with ``reason: Evicted`` and the message.  The pod object stays (its controller
replaces it) and is never started again.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import stat
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

from pybernetes.kubelet.runtime.protocol import ContainerState, RuntimeError_
from pybernetes.machinery.quantity import (
    QuantityError,
    canonical_quantity,
    format_quantity,
    parse_quantity_full,
)

log = logging.getLogger(__name__)

Obj = dict[str, Any]
Violation = tuple[str, str]

INTERVAL = 10.0  # seconds between measurements (upstream's eviction monitoring interval)
GRACE = 1.0  # seconds the containers of an evicted pod get (upstream's immediateEvictionGracePeriodSeconds)
EPHEMERAL_STORAGE = "ephemeral-storage"
REASON = "Evicted"
EMPTY_DIR_MESSAGE = "Usage of EmptyDir volume {name} exceeds the limit {limit}. "
POD_MESSAGE = "Pod ephemeral local storage usage exceeds the total limit of containers {limit}. "
CONTAINER_MESSAGE = "Container {name} exceeded its local ephemeral storage limit {limit}. "
CRITICAL_PRIORITY = 2_000_000_000  # system-cluster-critical; system-node-critical is above
MIRROR_ANNOTATION = "kubernetes.io/config.mirror"


@dataclass
class StorageUsage:
    """Bytes a pod uses: per disk emptyDir volume (by name) and per container (by name: its
    writable layer plus its logs).  A volume or container not measured is absent."""

    empty_dirs: dict[str, int] = field(default_factory=dict)
    containers: dict[str, int] = field(default_factory=dict)


# -- the pure core ------------------------------------------------------------------------------


def _d(value: Any) -> Obj:
    return value if isinstance(value, dict) else {}


def _l(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _quoted(text: str) -> str:
    """As Go's %q prints a plain string."""
    return json.dumps(text)


def _quantity(text: Any) -> tuple[Fraction, str] | None:
    """(value, format) of a quantity field; None when absent or not a quantity."""
    if text is None or text == "":
        return None
    try:
        value, fmt, _ = parse_quantity_full(text)
    except (QuantityError, ValueError):
        return None
    return value, fmt


def _limit(container: Obj) -> tuple[Fraction, str] | None:
    return _quantity(_d(_d(container.get("resources")).get("limits")).get(EPHEMERAL_STORAGE))


def _is_sidecar(container: Obj) -> bool:
    return container.get("restartPolicy") == "Always"


def _add(total: tuple[Fraction, str] | None, more: tuple[Fraction, str] | None) -> tuple[Fraction, str] | None:
    """A sum of quantities keeps the format of its first term, as upstream's Add."""
    if more is None:
        return total
    return more if total is None else (total[0] + more[0], total[1])


def pod_storage_limit(pod: Obj) -> tuple[Fraction, str] | None:
    """The pod's ephemeral-storage limit (value, format) as upstream's ``PodLimits``; None when
    no container declares one."""
    spec = _d(pod.get("spec"))
    total: tuple[Fraction, str] | None = None
    for container in _l(spec.get("containers")):
        total = _add(total, _limit(_d(container)))
    sidecars: tuple[Fraction, str] | None = None
    largest_init: tuple[Fraction, str] | None = None
    for container in _l(spec.get("initContainers")):
        container = _d(container)
        limit = _limit(container)
        if _is_sidecar(container):
            total = _add(total, limit)
            sidecars = _add(sidecars, limit)
            use = sidecars
        else:
            use = _add(limit, sidecars)
        if use is not None and (largest_init is None or use[0] > largest_init[0]):
            largest_init = use
    if largest_init is not None and (total is None or largest_init[0] > total[0]):
        total = largest_init
    overhead = _quantity(_d(spec.get("overhead")).get(EPHEMERAL_STORAGE))
    if total is not None and total[0] != 0 and overhead is not None:
        total = (total[0] + overhead[0], total[1])
    return total


def is_critical(pod: Obj) -> bool:
    """Upstream's IsCriticalPod as far as the API shows it: a mirror (static) pod or a priority
    of system-cluster-critical or more."""
    if MIRROR_ANNOTATION in _d(_d(pod.get("metadata")).get("annotations")):
        return True
    priority = _d(pod.get("spec")).get("priority")
    return isinstance(priority, int) and not isinstance(priority, bool) and priority >= CRITICAL_PRIORITY


def disk_empty_dirs(pod: Obj) -> list[tuple[str, Obj]]:
    """(name, emptyDir source) of the pod's emptyDirs that are not in memory."""
    out = []
    for volume in _l(_d(pod.get("spec")).get("volumes")):
        volume = _d(volume)
        if volume.get("emptyDir") is None:
            continue
        source = _d(volume.get("emptyDir"))
        if source.get("medium") != "Memory":
            out.append((str(volume.get("name") or ""), source))
    return out


def has_storage_limits(pod: Obj) -> bool:
    """Whether the pod has anything to enforce (a disk emptyDir sizeLimit or an
    ephemeral-storage limit): pods without are never measured."""
    for _, source in disk_empty_dirs(pod):
        limit = _quantity(source.get("sizeLimit"))
        if limit is not None and limit[0] > 0:
            return True
    return pod_storage_limit(pod) is not None


def needs_containers(pod: Obj) -> bool:
    """Whether a rule reads the containers' use (the pod limit or a container's)."""
    return pod_storage_limit(pod) is not None


def _violation(message: str) -> Violation:
    return REASON, message


def local_storage_violations(pod: Obj, usage: StorageUsage) -> Violation | None:
    """(reason, message) of the first local storage rule ``pod`` breaks with
    ``usage``, else None (see the module docstring)."""
    if is_critical(pod):
        return None
    volumes = disk_empty_dirs(pod)
    for name, source in volumes:
        limit = _quantity(source.get("sizeLimit"))
        used = usage.empty_dirs.get(name)
        if used is not None and limit is not None and limit[0] > 0 and used > limit[0]:
            return _violation(EMPTY_DIR_MESSAGE.format(name=_quoted(name),
                                                       limit=_quoted(canonical_quantity(source["sizeLimit"]))))
    pod_limit = pod_storage_limit(pod)
    if pod_limit is not None:
        total = sum(usage.empty_dirs.get(name, 0) for name, _ in volumes) + sum(usage.containers.values())
        if total > pod_limit[0]:
            return _violation(POD_MESSAGE.format(limit=format_quantity(pod_limit[0], pod_limit[1])))
    for container in _l(_d(pod.get("spec")).get("containers")):
        container = _d(container)
        limit = _limit(container)
        name = str(container.get("name") or "")
        used = usage.containers.get(name)
        if limit is None or limit[0] <= 0 or used is None:  # upstream: Value() != 0
            continue
        if used > limit[0]:
            text = _d(_d(container.get("resources")).get("limits"))[EPHEMERAL_STORAGE]
            return _violation(CONTAINER_MESSAGE.format(name=name, limit=_quoted(canonical_quantity(text))))
    return None


# -- measuring ----------------------------------------------------------------------------------


def disk_usage(root: Path | str) -> int:
    """Bytes of disk under ``root`` (``du -x`` style): allocated blocks of every file and
    directory, an inode with several hard links counted once, nothing under another mount
    (another device); 0 when ``root`` does not exist.  Blocking: run it in a thread."""
    try:
        top = os.lstat(root)
    except OSError:
        return 0
    device = top.st_dev
    total = top.st_blocks * 512
    seen: set[int] = set()
    pending = [os.fspath(root)] if stat.S_ISDIR(top.st_mode) else []
    while pending:
        directory = pending.pop()
        try:
            entries = os.scandir(directory)
        except OSError:
            continue  # gone, or unreadable
        with entries:
            for entry in entries:
                try:
                    info = entry.stat(follow_symlinks=False)
                except OSError:
                    continue
                if info.st_dev != device:
                    continue  # a mount point: its file system is not this volume's
                is_dir = stat.S_ISDIR(info.st_mode)
                if not is_dir and info.st_nlink > 1:
                    if info.st_ino in seen:
                        continue
                    seen.add(info.st_ino)
                total += info.st_blocks * 512
                if is_dir:
                    pending.append(entry.path)
    return total


def _active(pod: Obj) -> bool:
    meta = _d(pod.get("metadata"))
    return not meta.get("deletionTimestamp") and _d(pod.get("status")).get("phase") not in ("Succeeded", "Failed")


class LocalStorageEviction:
    """The eviction loop for this node's pods.  ``syncer``: the PodSyncer (``fail``,
    ``has_failed``, ``runtime_view``, ``runtime``); ``volumes``: the VolumeManager
    (``empty_dirs``); ``pods``: the pods of the node now; ``wake``: wakes a pod's worker."""

    def __init__(self, syncer: Any, volumes: Any, pods: Callable[[], Iterable[Obj]],
                 wake: Callable[[str], None]) -> None:
        self.syncer = syncer
        self.volumes = volumes
        self.pods = pods
        self.wake = wake
        self.checks = 0  # rounds done
        self.evictions = 0

    async def check(self) -> list[str]:
        """Measure every active pod with limits and evict those over them; their UIDs.  One
        pod's failure (a measurement, an eviction) is logged and does not stop the others'."""
        evicted = []
        self.checks += 1
        for pod in list(self.pods()):
            uid = str(_d(pod.get("metadata")).get("uid") or "")
            if not uid or not _active(pod) or self.syncer.has_failed(uid) or not has_storage_limits(pod):
                continue
            try:
                if await self._check_pod(pod, uid):
                    evicted.append(uid)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("eviction: checking pod %s failed", uid)
        return evicted

    async def _check_pod(self, pod: Obj, uid: str) -> bool:
        found = local_storage_violations(pod, await self.measure(pod))
        if found is None:
            return False
        reason, message = found
        meta = _d(pod.get("metadata"))
        log.info("eviction: evicting pod %s/%s: %s", meta.get("namespace"), meta.get("name"), message)
        if not self.syncer.fail(pod, reason, message, grace=GRACE):
            return False
        self.evictions += 1
        self.wake(uid)
        return True

    async def measure(self, pod: Obj) -> StorageUsage:
        usage = StorageUsage()
        for volume in self.volumes.empty_dirs(pod):
            if volume.medium != "Memory" and volume.path.is_dir():
                usage.empty_dirs[volume.name] = await asyncio.to_thread(disk_usage, volume.path)
        if needs_containers(pod):
            usage.containers = await self._containers(str(_d(pod.get("metadata")).get("uid") or ""))
        return usage

    async def _containers(self, uid: str) -> dict[str, int]:
        """Per container name: the writable layer of its current instance (a running one, else
        the newest, as upstream's stats) plus its log directory (every instance, rotated files)."""
        _, history = await self.syncer.runtime_view(uid)
        out: dict[str, int] = {}
        for name, instances in history.items():
            current = next((s for s in instances if s.state is ContainerState.RUNNING), instances[0])
            layer = 0
            try:
                layer = (await self.syncer.runtime.container_stats(current.id)).fs_used_bytes
            except (RuntimeError_, OSError) as exc:
                log.debug("eviction: no stats of container %s: %s", current.id, exc)
            logs = 0
            log_path = next((s.log_path for s in instances if s.log_path), "")
            if log_path:
                logs = await asyncio.to_thread(disk_usage, Path(log_path).parent)
            out[name] = layer + logs
        return out
