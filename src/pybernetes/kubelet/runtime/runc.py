"""The ``runc`` container runtime: real Linux containers for the kubelet (root only).

A **sandbox** (a pod) is a set of namespaces held without a process: a network namespace
(``<netns_dir>/pyb-<id12>``, /run/netns by default, so ``ip netns`` sees it), an IPC and a UTS
namespace (files in the sandbox's directory), each created in-process and kept alive by a bind
mount of its nsfs file (kernel.py) — no "pause" container.  The UTS namespace gets the pod's
hostname; the network namespace its loopback and then CNI (cni.py: bridge + host-local on the
pod CIDR, portmap when the pod has hostPorts), which gives the pod IP.  hostNetwork pods keep
the host's network and UTS namespaces (IP "").  A pod sharing its process namespace gets a
tiny holder process as that PID namespace's init (it only reaps orphans), since a PID
namespace cannot outlive its init.  The sandbox's directory also holds its /etc/hostname,
/etc/hosts and /etc/resolv.conf (from PodSandboxConfig.dns, else the host's), and a 64 MiB
tmpfs for /dev/shm, all bind-mounted into its containers (runc_host.py).  Stopping a sandbox
stops its containers, runs CNI DEL and removes the network namespace (idempotent); removing it
also takes the IPC/UTS namespaces, /dev/shm, the PID holder and the pod's cgroup.

A **container** is an OCI bundle (``containers/<id>``): an overlayfs root of the image's
unpacked layers under an upper/work directory of its own, and config.json (ocispec.py) with
cgroupsPath ``<pod cgroup>/<id>`` (the cgroupfs driver; ``<cgroup_root>/pod<uid>`` unless the
sandbox names a cgroup_parent).  ``create_container`` prepares the bundle; ``start_container``
runs it under conmon (conmon.py), so a missing executable is a RunContainerError on start, as
with containerd.  The end of a container is read from conmon's exit file, and its reason is
OOMKilled when the cgroup counted an OOM kill (or conmon saw one), else Completed or Error.

State is one JSON file per sandbox and container (runc_state.py): a new RuncRuntime on the same
root (a restarted kubelet) lists the same sandboxes and containers, running ones still running
under their conmon.  Removal takes everything away: the runc state, conmon's files, the overlay
mount and directories, the cgroups, the namespaces and the CNI allocation.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import shutil
import signal
import socket
import time
from collections.abc import Awaitable, Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from pybernetes.kubelet.runtime import cni, kernel, ocispec
from pybernetes.kubelet.runtime.cgroups import Layout
from pybernetes.kubelet.runtime.conmon import Monitor, Started
from pybernetes.kubelet.runtime.image_format import repo_digest_for
from pybernetes.kubelet.runtime.images import ImageStore
from pybernetes.kubelet.runtime.masquerade import NodeMasquerade
from pybernetes.kubelet.runtime.protocol import (
    ContainerConfig,
    ContainerState,
    ContainerStats,
    ContainerStatus,
    ExecResult,
    Image,
    NotFound,
    PodSandboxConfig,
    PodSandboxStats,
    PodSandboxStatus,
    RuntimeError_,
    SandboxState,
)
from pybernetes.kubelet.runtime.runc_host import (
    ImageInfo,
    available,
    dir_usage,
    host_caps,
    host_devices,
    layer_file,
    localhost_profile,
    present,
    start_pid_holder,
    write_pod_files,
)
from pybernetes.kubelet.runtime.runc_state import (
    ContainerRecord,
    SandboxRecord,
    container_from,
    load_all,
    sandbox_from,
    write_json,
)

__all__ = ["RuncRuntime", "available"]

log = logging.getLogger(__name__)
now_ns = time.time_ns

VERSION = "0.1.0"
TOUCH_EVERY = 60.0  # seconds: how fresh an image's "last used" (for image GC) is kept
Puller = Callable[[str, "dict[str, str] | None"], Awaitable[Image]]
def _sweep(directory: Path) -> None:
    """Remove a directory the runtime has no record of, unmounting what is mounted under it
    first (deepest first), so a cut-short creation or removal leaves nothing behind."""
    prefix = os.fsencode(os.path.abspath(directory)) + b"/"
    with open("/proc/self/mountinfo", "rb") as mountinfo:
        targets = [line.split(b" ", 5)[4] for line in mountinfo]
    for target in sorted((t for t in targets if t.startswith(prefix)), key=len, reverse=True):
        kernel.umount(os.fsdecode(target.replace(b"\\040", b" ").replace(b"\\134", b"\\")))
    shutil.rmtree(directory, ignore_errors=True)


class RuncRuntime:
    """See the module docstring.  ``root`` holds all state; ``images`` the node's image store;
    ``puller(ref, auth) -> Image`` pulls images that are not present (None: only images in the
    store can be used)."""

    name = "runc"

    def __init__(self, root: Path | str, images: ImageStore, *, pod_cidr: str = "10.88.0.0/16",
                 puller: Puller | None = None, cni_bin_dir: str = "/usr/lib/cni", bridge: str = "pyb0",
                 network_name: str = "pybernetes", netns_dir: str | Path = "/run/netns",
                 cgroup_root: str = "/pybernetes", runc: str = "runc", conmon: str = "conmon",
                 seccomp_root: str | Path | None = None, mtu: int = 0) -> None:
        self.root = Path(root)
        self.images = images
        self.pod_cidr = pod_cidr
        self.puller = puller
        self.bridge = bridge
        self.network_name = network_name
        self.netns_dir = Path(netns_dir)
        self.cgroup_root = "/" + cgroup_root.strip("/")
        self.seccomp_root = Path(seccomp_root) if seccomp_root else self.root / "seccomp"
        self.mtu = mtu
        self.cni = cni.CniRunner(cni_bin_dir)
        # one masquerade rule for the node in nftables, else the bridge plugin's per-pod ipMasq
        self.masquerade = NodeMasquerade(bridge) if NodeMasquerade.available() else None
        self.cgroups = Layout.detect()
        for sub in ("sandboxes", "containers", "cni"):
            (self.root / sub).mkdir(parents=True, exist_ok=True, mode=0o711)
        self.monitor = Monitor(self.root / "runc", self.root / "exits", runc=runc, conmon=conmon)
        self._host_caps = host_caps()
        self._host_devices: list[dict[str, Any]] | None = None
        self._image_cache: dict[str, ImageInfo] = {}
        self._touched: dict[str, float] = {}  # image id -> monotonic time of the last touch
        self._runc_version = ""
        self._sandboxes: dict[str, SandboxRecord] = {}
        self._containers: dict[str, ContainerRecord] = {}
        self._load()

    # -- persistence --------------------------------------------------------------------------------

    def _load(self) -> None:
        for data in load_all(self.root / "sandboxes", "sandbox.json"):
            if data.get("incomplete"):  # its creation or its removal was cut short
                _sweep(Path(data["directory"]))
                kernel.remove_namespace(self.netns_dir / f"pyb-{data['id'][:12]}")
                continue
            record = sandbox_from(data)
            self._sandboxes[record.status.id] = record
        for data in load_all(self.root / "containers", "container.json"):
            if data.get("incomplete"):
                _sweep(Path(data["directory"]))
                continue
            record = container_from(data)
            if record.status.state is ContainerState.CREATED:
                started = self.monitor.adopt(record.status.id, record.bundle)
                if started is not None:
                    self._started(record, started, (record.bundle / "pidfile").stat().st_mtime_ns)
            self._containers[record.status.id] = record
            sandbox = self._sandboxes.get(record.status.sandbox_id)
            if sandbox is not None:
                sandbox.containers.add(record.status.id)

    def _save_sandbox(self, record: SandboxRecord) -> None:
        write_json(record.directory / "sandbox.json", record)

    def _save_container(self, record: ContainerRecord) -> None:
        write_json(record.bundle / "container.json", record)

    async def version(self) -> str:
        if not self._runc_version:
            code, out = await self.monitor.runc_command("--version")
            first = out.splitlines()[0] if code == 0 and out else "runc"
            self._runc_version = f"{VERSION} ({first})"
        return self._runc_version

    # -- sandboxes ----------------------------------------------------------------------------------

    async def run_pod_sandbox(self, config: PodSandboxConfig) -> str:
        sandbox_id = secrets.token_hex(32)
        directory = self.root / "sandboxes" / sandbox_id
        (directory / "ns").mkdir(parents=True)
        hostname = socket.gethostname() if config.host_network else (config.hostname or config.name)
        namespaces = {"ipc": str(directory / "ns" / "ipc")}
        netns = ""
        if not config.host_network:
            self.netns_dir.mkdir(parents=True, exist_ok=True)
            netns = str(self.netns_dir / f"pyb-{sandbox_id[:12]}")
            namespaces.update(uts=str(directory / "ns" / "uts"), net=netns)
        uid = config.uid or sandbox_id
        owns_parent = not config.cgroup_parent
        record = SandboxRecord(
            PodSandboxStatus(sandbox_id, config, SandboxState.NOTREADY, now_ns()), directory, netns, namespaces,
            config.cgroup_parent or f"{self.cgroup_root}/pod{uid}", owns_parent)
        self._sandboxes[sandbox_id] = record
        self._save_sandbox(record)
        try:
            await asyncio.to_thread(kernel.create_namespaces, {k: Path(v) for k, v in namespaces.items()},
                                    "" if config.host_network else hostname)
            if config.share_process_namespace:
                record.pid_holder = await start_pid_holder()
            (directory / "shm").mkdir()
            kernel.mount_tmpfs(directory / "shm")
            if netns:
                await self._network_up(record)
            write_pod_files(record.directory, config, record.status.ip, hostname)
        except BaseException as exc:
            await self._teardown_sandbox(record)
            if isinstance(exc, RuntimeError_):
                raise RuntimeError_("CreatePodSandboxError", f"failed to create pod sandbox: {exc.message}") from exc
            if isinstance(exc, OSError):
                raise RuntimeError_("CreatePodSandboxError", f"failed to create pod sandbox: {exc}") from exc
            raise
        record.status.state = SandboxState.READY
        self._save_sandbox(record)
        return sandbox_id

    async def _network_up(self, record: SandboxRecord) -> None:
        config = record.status.config
        if self.masquerade is not None:
            await self.masquerade.ensure(self.pod_cidr)
        conflist = cni.pod_network(name=self.network_name, bridge=self.bridge, subnet=self.pod_cidr,
                                   data_dir=str(self.root / "cni" / "networks"),
                                   host_ports=any(p.host_port for p in config.port_mappings), mtu=self.mtu,
                                   ip_masq=self.masquerade is None)
        args = cni.cni_args(config.namespace, config.name, config.uid, record.status.id)
        rt_config = cni.runtime_config(config.port_mappings)
        record.cni = {"conflist": conflist, "args": args, "runtime_config": rt_config, "result": None}
        self._save_sandbox(record)  # a crash from here on still knows to run DEL
        result = await self.cni.add(conflist, record.status.id, record.netns, args=args, rt_config=rt_config)
        record.cni["result"] = result
        record.status.ip, record.status.additional_ips = cni.pod_ip(result)

    async def _network_down(self, record: SandboxRecord) -> None:
        if record.cni is not None:
            netns = record.netns if present(record.netns) else ""
            await self.cni.delete(record.cni["conflist"], record.status.id, netns, args=record.cni["args"],
                                  rt_config=record.cni["runtime_config"], prev_result=record.cni["result"])
            record.cni = None
            self._save_sandbox(record)
        if record.netns:
            await asyncio.to_thread(kernel.remove_namespace, Path(record.netns))

    async def stop_pod_sandbox(self, sandbox_id: str) -> None:
        record = self._sandboxes.get(sandbox_id)
        if record is None:
            return
        record.containers &= set(self._containers)  # ids whose records are gone (a removal cut short)
        await asyncio.gather(*(self.stop_container(c, 0) for c in list(record.containers)))
        try:
            await self._network_down(record)
        except RuntimeError_ as exc:
            raise RuntimeError_("StopPodSandboxError", f"failed to tear down the pod network: {exc.message}") from exc
        if record.status.state is not SandboxState.NOTREADY:
            record.status.state = SandboxState.NOTREADY
            self._save_sandbox(record)

    async def remove_pod_sandbox(self, sandbox_id: str) -> None:
        record = self._sandboxes.get(sandbox_id)
        if record is None:
            return
        await self.stop_pod_sandbox(sandbox_id)
        for container_id in list(record.containers):
            with contextlib.suppress(NotFound):
                await self.remove_container(container_id)
        await self._teardown_sandbox(record)

    async def _teardown_sandbox(self, record: SandboxRecord) -> None:
        """Release everything of a sandbox without containers (also a half-created one)."""
        with contextlib.suppress(RuntimeError_):
            await self._network_down(record)
        if record.netns:  # even when CNI DEL failed
            kernel.remove_namespace(Path(record.netns))
        if record.pid_holder:
            pid, start = record.pid_holder
            if Monitor.signal(pid, start, signal.SIGKILL):
                await Monitor.wait(pid, start, 5)
        for kind, path in record.namespaces.items():
            if kind != "net":
                kernel.remove_namespace(Path(path))
        kernel.umount(record.directory / "shm")
        if record.owns_cgroup_parent:  # another sandbox of the pod (a later attempt) may still use it
            self.cgroups.remove_if_empty(record.cgroup_parent)
        if kernel.mount_targets([record.directory / "shm", *record.namespaces.values()]):
            raise RuntimeError_("RemovePodSandboxError", f"sandbox {record.status.id[:12]} still has mounts")
        shutil.rmtree(record.directory, ignore_errors=True)
        self._sandboxes.pop(record.status.id, None)
        if self.masquerade is not None and record.netns:  # the last pod network takes the node's rule
            await self.masquerade.drop(lambda: any(s.netns for s in self._sandboxes.values()))

    async def pod_sandbox_status(self, sandbox_id: str) -> PodSandboxStatus:
        record = self._sandboxes.get(sandbox_id)
        if record is None:
            raise NotFound("pod sandbox", sandbox_id)
        return replace(record.status)

    async def list_pod_sandboxes(self, pod_uid: str | None = None) -> list[PodSandboxStatus]:
        return [replace(s.status) for s in self._sandboxes.values()
                if pod_uid is None or s.status.config.uid == pod_uid]

    async def pod_sandbox_stats(self, sandbox_id: str) -> PodSandboxStats:
        record = self._sandboxes.get(sandbox_id)
        if record is None:
            raise NotFound("pod sandbox", sandbox_id)
        stats = PodSandboxStats(sandbox_id, now_ns())
        if present(record.netns):
            for name, counters in (await asyncio.to_thread(kernel.read_net_dev, Path(record.netns))).items():
                if name != "lo" and len(counters) >= 11:
                    stats.rx_bytes += counters[0]
                    stats.rx_errors += counters[2]
                    stats.tx_bytes += counters[8]
                    stats.tx_errors += counters[10]
        return stats

    # -- containers ---------------------------------------------------------------------------------

    def _get(self, container_id: str) -> ContainerRecord:
        record = self._containers.get(container_id)
        if record is None:
            raise NotFound("container", container_id)
        return record

    async def _image_info(self, ref: str) -> ImageInfo | None:
        image = await asyncio.to_thread(self.images.get, ref)
        if image is None:
            return None
        info = self._image_cache.get(image.id)
        if info is None or not all(layer.is_dir() for layer in info.layers):  # new, or its layers were collected
            layers = await asyncio.to_thread(self.images.unpack, image.id)
            info = ImageInfo(image.id, layers, self.images.config(image.id), layer_file(layers, "etc/passwd"),
                              layer_file(layers, "etc/group"), list(image.repo_digests))
            self._image_cache[image.id] = info
        elif info.repo_digests != image.repo_digests:  # pulled under another repository since
            info = self._image_cache[image.id] = replace(info, repo_digests=list(image.repo_digests))
        return info

    async def create_container(self, sandbox_id: str, config: ContainerConfig) -> str:
        sandbox = self._sandboxes.get(sandbox_id)
        if sandbox is None:
            raise NotFound("pod sandbox", sandbox_id)
        if sandbox.status.state is not SandboxState.READY:
            raise RuntimeError_("CreateContainerError", f"pod sandbox {sandbox_id!r} is not ready")
        image = await self._image_info(config.image)
        if image is None:
            raise RuntimeError_("CreateContainerError", f"image {config.image!r} is not present")
        pconf = sandbox.status.config
        image_user = str(image.config.get("User") or "")
        ocispec.check_run_as_non_root(config, image_user, f"{pconf.name}_{pconf.namespace}({pconf.uid})")
        user = ocispec.resolve_user(config, image_user, image.passwd, image.group)
        if time.monotonic() - self._touched.get(image.id, -TOUCH_EVERY) >= TOUCH_EVERY:
            with contextlib.suppress(NotFound, OSError):  # for image GC: last used now (to the minute)
                await asyncio.to_thread(self.images.touch, image.id)
                self._touched[image.id] = time.monotonic()
        if config.security.privileged and self._host_devices is None:
            self._host_devices = await asyncio.to_thread(host_devices)
        container_id = secrets.token_hex(32)
        bundle = self.root / "containers" / container_id
        cgroup = f"{sandbox.cgroup_parent}/{container_id}"
        namespaces = {k: v for k, v in sandbox.namespaces.items()}
        if sandbox.pid_holder:
            namespaces["pid"] = f"/proc/{sandbox.pid_holder[0]}/ns/pid"
        etc = {f"/etc/{name}": str(sandbox.directory / name) for name in ("hostname", "hosts", "resolv.conf")}
        facts = ocispec.Sandbox(hostname=(sandbox.directory / "hostname").read_text().strip(),
                                namespaces=namespaces, etc_files=etc, shm=str(sandbox.directory / "shm"),
                                cgroup_v2=self.cgroups.v2)
        spec = ocispec.build_spec(config, image.config, rootfs=str(bundle / "rootfs"), user=user, sandbox=facts,
                                  cgroups_path=cgroup, host_caps=self._host_caps, host_devices=self._host_devices,
                                  localhost_profile=localhost_profile(config, self.seccomp_root))
        log_dir = pconf.log_directory or str(sandbox.directory / "logs")
        log_path = str(Path(log_dir) / config.log_path) if config.log_path else ""
        record = ContainerRecord(ContainerStatus(container_id, sandbox_id, config, ContainerState.CREATED, now_ns(),
                                                 image_ref=image.id, log_path=log_path,
                                                 image_digest=repo_digest_for(config.image, image.repo_digests)),
                                 bundle, cgroup, shares_pid_namespace=bool(sandbox.pid_holder))
        try:
            for sub in ("rootfs", "upper", "work"):
                (bundle / sub).mkdir(parents=True)
            kernel.mount_overlay(image.layers, bundle / "upper", bundle / "work", bundle / "rootfs")
            write_json(bundle / "config.json", spec)
            self._save_container(record)
        except BaseException as exc:
            self._remove_bundle(bundle)
            if isinstance(exc, OSError):
                raise RuntimeError_("CreateContainerError", f"preparing the root file system: {exc}") from exc
            raise
        self._containers[container_id] = record
        sandbox.containers.add(container_id)
        return container_id

    @staticmethod
    def _remove_bundle(bundle: Path) -> None:
        kernel.umount(bundle / "rootfs")
        if kernel.is_mountpoint(bundle / "rootfs"):
            raise RuntimeError_("RemoveContainerError", f"{bundle / 'rootfs'} is still mounted")
        shutil.rmtree(bundle, ignore_errors=True)

    async def start_container(self, container_id: str) -> None:
        record = self._get(container_id)
        status = record.status
        if status.state is not ContainerState.CREATED:
            raise RuntimeError_("RunContainerError", f"container {container_id!r} is {status.state.value}, not created")
        if not kernel.is_mountpoint(record.bundle / "rootfs"):  # e.g. after a reboot
            image = await self._image_info(status.image_ref)
            if image is None:
                raise RuntimeError_("RunContainerError", f"image {status.image_ref} is gone")
            kernel.mount_overlay(image.layers, record.bundle / "upper", record.bundle / "work", record.bundle / "rootfs")
        if status.log_path:
            Path(status.log_path).parent.mkdir(parents=True, exist_ok=True)
        try:
            started = await self.monitor.run(container_id, record.bundle, name=status.config.name,
                                             log_path=status.log_path, tty=status.config.tty)
        except RuntimeError_ as exc:
            status.state, status.exit_code, status.finished_at = ContainerState.EXITED, 128, now_ns()
            status.reason, status.message = "StartError", exc.message
            self._save_container(record)
            raise
        self._started(record, started, now_ns())

    def _started(self, record: ContainerRecord, started: Started, at: int) -> None:
        record.pid, record.pid_start = started.pid, started.pid_start
        record.monitor_pid, record.monitor_start = started.monitor_pid, started.monitor_start
        record.status.state, record.status.started_at = ContainerState.RUNNING, at
        self._save_container(record)

    def _refresh(self, record: ContainerRecord) -> None:
        """Notice the end of a running container (conmon's exit file), with its reason."""
        status = record.status
        if status.state is not ContainerState.RUNNING:
            return
        ended = self.monitor.exit_code(status.id, record.bundle)
        if ended is None:
            if Monitor.alive(record.monitor_pid, record.monitor_start) or Monitor.alive(record.pid, record.pid_start):
                return
            ended = self.monitor.exit_code(status.id, record.bundle)  # written just before conmon ended?
        if ended is None:
            code, finished, message = 255, now_ns(), "the container's monitor ended without recording its exit"
        else:
            (code, finished), message = ended, ""
        oom = self.cgroups.oom_kills(record.cgroup) > 0 or Monitor.oom_reported(record.bundle)
        status.state, status.exit_code, status.finished_at = ContainerState.EXITED, code, max(finished, status.started_at)
        status.reason = "OOMKilled" if oom and code != 0 else ("Completed" if code == 0 else "Error")
        status.message = message
        self._save_container(record)

    def _kill(self, record: ContainerRecord, sig: int) -> None:
        Monitor.signal(record.pid, record.pid_start, sig)
        if sig == signal.SIGKILL and record.shares_pid_namespace:  # its processes outlive its init there
            for pid in self.cgroups.pids(record.cgroup):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)

    async def _wait_ended(self, record: ContainerRecord) -> None:
        """Wait for conmon to record the end of a container whose process has ended."""
        await Monitor.wait(record.pid, record.pid_start, 10)
        await Monitor.wait(record.monitor_pid, record.monitor_start, 10)
        self._refresh(record)

    async def stop_container(self, container_id: str, grace_seconds: float) -> None:
        record = self._get(container_id)
        status = record.status
        self._refresh(record)
        if status.state is ContainerState.CREATED:
            status.state, status.finished_at = ContainerState.EXITED, now_ns()
            self._save_container(record)
            return
        if status.state is not ContainerState.RUNNING:
            return
        self._kill(record, signal.SIGTERM)
        if not await Monitor.wait(record.pid, record.pid_start, max(0.0, grace_seconds)):
            self._kill(record, signal.SIGKILL)
        await self._wait_ended(record)

    async def remove_container(self, container_id: str) -> None:
        record = self._get(container_id)
        self._refresh(record)
        if record.status.state is ContainerState.RUNNING:
            self._kill(record, signal.SIGKILL)
            await self._wait_ended(record)
        await self.monitor.delete(container_id)
        failed = self.cgroups.remove(record.cgroup)
        if failed:
            log.warning("container %s: cgroups left: %s", container_id[:12], "; ".join(failed))
        self._remove_bundle(record.bundle)
        with contextlib.suppress(FileNotFoundError):
            (self.monitor.exits_dir / container_id).unlink()
        with contextlib.suppress(FileNotFoundError):
            (self.monitor.attach_dir / container_id).unlink()
        self._containers.pop(container_id, None)
        sandbox = self._sandboxes.get(record.status.sandbox_id)
        if sandbox is not None:
            sandbox.containers.discard(container_id)

    async def container_status(self, container_id: str) -> ContainerStatus:
        record = self._get(container_id)
        self._refresh(record)
        return replace(record.status)

    async def list_containers(self, sandbox_id: str | None = None) -> list[ContainerStatus]:
        out = []
        for record in list(self._containers.values()):
            if sandbox_id is None or record.status.sandbox_id == sandbox_id:
                self._refresh(record)
                out.append(replace(record.status))
        return out

    async def exec_sync(self, container_id: str, command: list[str], limit_seconds: float) -> ExecResult:
        record = self._get(container_id)
        self._refresh(record)
        if record.status.state is not ContainerState.RUNNING:
            raise RuntimeError_("ExecError", f"container {container_id!r} is not running")
        if not command:
            raise RuntimeError_("ExecError", "no command to run")
        return await self.monitor.exec(container_id, command, limit_seconds)

    async def reopen_container_log(self, container_id: str) -> None:
        record = self._get(container_id)
        self._refresh(record)
        if record.status.state is ContainerState.RUNNING:
            self.monitor.reopen_log(record.bundle)

    async def container_stats(self, container_id: str) -> ContainerStats:
        record = self._get(container_id)
        usage = self.cgroups.usage(record.cgroup)
        fs_used = await asyncio.to_thread(dir_usage, record.bundle / "upper")
        return ContainerStats(container_id, now_ns(), usage.cpu_ns, usage.memory_bytes, usage.working_set_bytes,
                              usage.rss_bytes, fs_used)

    # -- images -------------------------------------------------------------------------------------

    async def pull_image(self, ref: str, auth: dict[str, str] | None = None) -> str:
        if self.puller is not None:
            return (await self.puller(ref, auth)).id
        image = await asyncio.to_thread(self.images.get, ref)
        if image is None:
            raise RuntimeError_("ErrImagePull", f"image {ref!r} not present and no registry configured")
        return image.id

    async def image_status(self, ref: str) -> Image | None:
        return await asyncio.to_thread(self.images.get, ref)

    async def list_images(self) -> list[Image]:
        return await asyncio.to_thread(self.images.list)

    async def remove_image(self, ref: str) -> None:
        image = await self.image_status(ref)
        if image is None:
            return
        if any(c.status.image_ref == image.id for c in self._containers.values()):
            raise RuntimeError_("ImageInUse", f"image {ref!r} is used by a container")
        with contextlib.suppress(NotFound):
            await asyncio.to_thread(self.images.remove, ref)
        if await self.image_status(image.id) is None:
            self._image_cache.pop(image.id, None)

