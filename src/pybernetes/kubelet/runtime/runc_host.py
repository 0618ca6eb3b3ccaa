"""Host-side helpers of the runc runtime (runc.py): what the node offers containers (its
capability bounding set, its device nodes), files read out of an image's unpacked layers, a
writable layer's disk usage, the files a sandbox gives its containers (/etc/hostname,
/etc/hosts, /etc/resolv.conf), localhost seccomp profiles, the PID-namespace holder of pods that share their process
namespace, and whether this host can run the runtime at all.

The holder: a PID namespace dies with its init, and the containers of a pod with
shareProcessNamespace must be able to come and go, so the namespace gets an init of its own —
a small Python process (``-I -S``, a few MB) that unshares CLONE_NEWPID, forks the namespace's
PID 1 and exits; that PID 1 only reaps orphans until it is killed with the sandbox.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import stat
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pybernetes.kubelet.runtime import kernel, ocispec
from pybernetes.kubelet.runtime.protocol import ContainerConfig, PodSandboxConfig, RuntimeError_
from pybernetes.kubelet.runtime.runc_state import hosts_file, resolv_conf

HOLDER = r"""
import ctypes, os, signal, sys
libc = ctypes.CDLL(None, use_errno=True)
if libc.unshare(0x20000000) != 0:
    sys.stderr.write("unshare(CLONE_NEWPID): " + os.strerror(ctypes.get_errno()) + "\n")
    sys.exit(1)
pid = os.fork()
if pid:
    sys.stdout.write("%d\n" % pid)
    sys.stdout.flush()
    os._exit(0)
def reap(*_):
    try:
        while os.waitpid(-1, os.WNOHANG)[0] > 0:
            pass
    except ChildProcessError:
        pass
signal.signal(signal.SIGCHLD, reap)
signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
null = os.open("/dev/null", os.O_RDWR)
for fd in (0, 1, 2):
    os.dup2(null, fd)
os.chdir("/")
while True:
    signal.pause()
"""


@dataclass(slots=True)
class ImageInfo:
    id: str
    layers: list[Path]
    config: dict[str, Any]
    passwd: str
    group: str
    repo_digests: list[str]


def layer_file(layers: list[Path], name: str) -> str:
    """A regular file of the image (top-most layer first); "" when absent or whited out."""
    for layer in reversed(layers):
        path = layer / name
        try:
            info = path.lstat()
        except (FileNotFoundError, NotADirectoryError):
            continue
        return path.read_text(errors="replace") if stat.S_ISREG(info.st_mode) else ""
    return ""


def host_caps() -> list[str]:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("CapBnd:"):
                return ocispec.caps_from_mask(int(line.split()[1], 16))
    return list(ocispec.DEFAULT_CAPABILITIES)


def host_devices() -> list[dict[str, Any]]:
    """The host's device nodes, for privileged containers (as containerd lists them)."""
    out: list[dict[str, Any]] = []
    skip = {"pts", "shm", "fd", "mqueue", ".lxc", ".udev", "console"}
    for directory, dirs, files in os.walk("/dev"):
        dirs[:] = [d for d in dirs if d not in skip]
        for name in files:
            path = os.path.join(directory, name)
            if name in skip:
                continue
            with contextlib.suppress(OSError):
                info = os.lstat(path)
                kind = "c" if stat.S_ISCHR(info.st_mode) else "b" if stat.S_ISBLK(info.st_mode) else ""
                if kind:
                    out.append({"path": path, "type": kind, "major": os.major(info.st_rdev),
                                "minor": os.minor(info.st_rdev), "fileMode": stat.S_IMODE(info.st_mode),
                                "uid": info.st_uid, "gid": info.st_gid})
    return out


def present(path: str) -> bool:
    return bool(path) and os.path.lexists(path)


def dir_usage(path: Path) -> int:
    total = 0
    for directory, _, files in os.walk(path):
        for name in files:
            with contextlib.suppress(OSError):
                total += os.lstat(os.path.join(directory, name)).st_blocks * 512
    return total


async def start_pid_holder() -> list[int]:
    """Start a PID namespace's holder (see the module docstring): [pid, start time]."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-I", "-S", "-c", HOLDER, stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, start_new_session=True)
    line = await process.stdout.readline()  # type: ignore[union-attr]
    _, err = await process.communicate()
    if process.returncode != 0 or not line.strip().isdigit():
        raise RuntimeError_("CreatePodSandboxError", "cannot start the PID namespace's init: "
                            + err.decode(errors="replace").strip())
    pid = int(line)
    return [pid, kernel.process_start_time(pid)]


def write_pod_files(directory: Path, config: PodSandboxConfig, ip: str, hostname: str) -> None:
    """The sandbox's /etc/hostname, /etc/hosts (the node's for hostNetwork pods) and
    /etc/resolv.conf (from its DNS config, else the node's)."""
    (directory / "hostname").write_text(hostname + "\n")
    if config.host_network:
        text = Path("/etc/hosts").read_text()
        if config.host_aliases:  # upstream appends hostAliases to the node's file too
            text = text.rstrip("\n") + "\n" + hosts_file("", "", host_aliases=config.host_aliases).split(
                "ip6-allrouters\n", 1)[1]
        (directory / "hosts").write_text(text)
    else:
        (directory / "hosts").write_text(hosts_file(ip, hostname, config.hostname_fqdn, config.host_aliases))
    if config.dns is not None:
        (directory / "resolv.conf").write_text(resolv_conf(config.dns))
    else:
        shutil.copyfile("/etc/resolv.conf", directory / "resolv.conf")


def localhost_profile(config: ContainerConfig, seccomp_root: Path) -> dict[str, Any] | None:
    """The JSON of a ``localhost/<profile>`` seccomp profile (relative to ``seccomp_root``, as
    the kubelet's seccomp directory, or absolute); None for other profiles."""
    profile = config.security.seccomp or ""
    if config.security.privileged or not profile.lower().startswith("localhost/"):
        return None
    name = profile.split("/", 1)[1]
    path = Path(name) if name.startswith("/") else seccomp_root / name
    if not name.startswith("/") and not path.resolve().is_relative_to(seccomp_root.resolve()):
        raise RuntimeError_("CreateContainerError", f"seccomp profile {name!r} is outside {seccomp_root}")
    try:
        return json.loads(path.read_bytes())
    except (OSError, ValueError) as exc:
        raise RuntimeError_("CreateContainerError", f"failed to load seccomp profile {str(path)!r}: {exc}") from exc


def available() -> str:
    """"" when this host can run the runc runtime, else why not."""
    if os.geteuid() != 0:
        return "the runc runtime needs root"
    for binary in ("runc", "conmon"):
        if shutil.which(binary) is None:
            return f"{binary} is not installed"
    return ""
