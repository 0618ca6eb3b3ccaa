"""Thin Linux system-call shell for the runc runtime (no subprocesses): mount/umount, and the
pod's namespaces held as bind-mounted nsfs files.

Why in-process: ``ip netns add`` and friends are a fork+exec each (milliseconds) for what is a
couple of system calls.  Namespace work happens in a *dedicated short-lived thread*: network,
IPC and UTS namespaces are per thread in Linux, so a thread may ``unshare`` them, bind-mount
``/proc/thread-self/ns/<kind>`` onto a file (which keeps the namespace alive with no process
in it, as ``ip netns add`` does) and then end, leaving the rest of the process untouched.  The
same trick reads a namespace's interface counters (``setns`` into it, read
``/proc/thread-self/net/dev``).

Everything here is blocking and fast (microseconds to a millisecond); callers in asyncio code
run the namespace functions through ``run_in_thread``.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import errno
import fcntl
import os
import socket
import struct
import threading
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")

CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWNET = 0x40000000
CLONE_NEWPID = 0x20000000
NAMESPACE_FLAGS = {"net": CLONE_NEWNET, "ipc": CLONE_NEWIPC, "uts": CLONE_NEWUTS}

MS_RDONLY = 0x1
MS_NOSUID = 0x2
MS_NODEV = 0x4
MS_NOEXEC = 0x8
MS_BIND = 0x1000
MNT_DETACH = 0x2

SIOCGIFFLAGS = 0x8913
SIOCSIFFLAGS = 0x8914
IFF_UP = 0x1

_libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
_libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p]
_libc.umount2.argtypes = [ctypes.c_char_p, ctypes.c_int]
_libc.unshare.argtypes = [ctypes.c_int]
_libc.setns.argtypes = [ctypes.c_int, ctypes.c_int]
_libc.sethostname.argtypes = [ctypes.c_char_p, ctypes.c_size_t]


def _check(result: int, what: str) -> None:
    if result != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def mount(source: str, target: str | Path, fstype: str | None, flags: int = 0, data: str | None = None) -> None:
    _check(_libc.mount(source.encode(), os.fsencode(target), fstype.encode() if fstype else None, flags,
                       data.encode() if data is not None else None), f"mount {fstype or 'bind'} on {target}")


def umount(target: str | Path, *, detach: bool = True) -> bool:
    """Unmount ``target`` (lazily by default); False when it was not mounted or is missing."""
    if _libc.umount2(os.fsencode(target), MNT_DETACH if detach else 0) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.EINVAL, errno.ENOENT):
        return False
    raise OSError(err, f"umount {target}: {os.strerror(err)}")


def is_mountpoint(path: str | Path) -> bool:
    """True when ``path`` is the target of a mount.  A directory on another device than its
    parent's is one (an overlay or tmpfs: one stat each, no matter how many mounts the node
    has); otherwise /proc/self/mountinfo decides, as a bind mount shows no device change."""
    path = os.path.abspath(path)
    with contextlib.suppress(OSError):
        if os.stat(path).st_dev != os.stat(os.path.dirname(path)).st_dev:
            return True
    return path in mount_targets([path])


def mount_targets(paths: Iterable[str | Path]) -> set[str]:
    """Those of ``paths`` that are targets of mounts, from one read of /proc/self/mountinfo."""
    wanted = {os.fsencode(os.path.abspath(p)).replace(b"\\", b"\\134").replace(b" ", b"\\040"): os.path.abspath(p)
              for p in paths}
    found: set[str] = set()
    with open("/proc/self/mountinfo", "rb") as mountinfo:
        for line in mountinfo:
            target = line.split(b" ", 5)[4]
            if target in wanted:
                found.add(wanted[target])
    return found


def mount_overlay(lower: list[Path], upper: Path, work: Path, target: Path) -> None:
    """An overlayfs at ``target``; ``lower`` lowest layer first (as ImageStore.unpack gives)."""
    lowerdir = ":".join(str(p) for p in reversed(lower))
    data = f"lowerdir={lowerdir},upperdir={upper},workdir={work}"
    if len(data) >= 4000:
        raise OSError(errno.E2BIG, f"overlay options for {len(lower)} layers exceed a page ({len(data)} bytes)")
    mount("overlay", target, "overlay", 0, data)


def mount_tmpfs(target: Path, size: str = "64m", mode: str = "1777") -> None:
    mount("shm", target, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, f"mode={mode},size={size}")


def run_in_thread(func: Callable[[], T]) -> T:
    """Run ``func`` in a new thread that ends afterwards (so namespace changes die with it) and
    return its result or raise its exception.  Blocking: call through asyncio.to_thread."""
    box: dict[str, object] = {}

    def target() -> None:
        try:
            box["result"] = func()
        except BaseException as exc:  # noqa: BLE001 - re-raised in the caller
            box["error"] = exc

    thread = threading.Thread(target=target, name="pyb-ns", daemon=True)
    thread.start()
    thread.join()
    if "error" in box:
        raise box["error"]  # type: ignore[misc]
    return box["result"]  # type: ignore[return-value]


def _bind_namespace(kind: str, path: Path) -> None:
    path.touch(mode=0o444, exist_ok=True)
    mount(f"/proc/thread-self/ns/{kind}", path, None, MS_BIND)


def _loopback_up() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        request = struct.pack("16sH14x", b"lo", 0)
        flags = struct.unpack("16sH14x", fcntl.ioctl(sock.fileno(), SIOCGIFFLAGS, request))[1]
        fcntl.ioctl(sock.fileno(), SIOCSIFFLAGS, struct.pack("16sH14x", b"lo", flags | IFF_UP))


def create_namespaces(paths: dict[str, Path], hostname: str = "") -> None:
    """New namespaces of the kinds in ``paths`` ("net", "ipc", "uts"), each kept alive by a bind
    mount on its path; a new network namespace gets its loopback up, a new UTS namespace the
    hostname.  Runs in a thread of its own; on failure nothing is left mounted."""

    def work() -> None:
        flags = 0
        for kind in paths:
            flags |= NAMESPACE_FLAGS[kind]
        _check(_libc.unshare(flags), "unshare")
        if "uts" in paths and hostname:
            raw = hostname.encode()
            _check(_libc.sethostname(raw, len(raw)), "sethostname")
        if "net" in paths:
            _loopback_up()
        done: list[Path] = []
        try:
            for kind, path in paths.items():
                _bind_namespace(kind, path)
                done.append(path)
        except BaseException:
            for path in done:
                remove_namespace(path)
            raise

    run_in_thread(work)


def remove_namespace(path: Path) -> None:
    """Unmount and delete a namespace file (idempotent)."""
    with contextlib.suppress(OSError):
        umount(path)
    with contextlib.suppress(FileNotFoundError):
        path.unlink()


def read_net_dev(netns: Path) -> dict[str, list[int]]:
    """``/proc/net/dev`` inside the network namespace at ``netns``: {interface: [16 counters]}
    (rx bytes, packets, errs, drop, fifo, frame, compressed, multicast, then tx's eight)."""

    def work() -> dict[str, list[int]]:
        fd = os.open(netns, os.O_RDONLY | os.O_CLOEXEC)
        try:
            _check(_libc.setns(fd, CLONE_NEWNET), "setns")
        finally:
            os.close(fd)
        with open("/proc/thread-self/net/dev") as dev:
            lines = dev.read().splitlines()[2:]
        out = {}
        for line in lines:
            name, _, counters = line.partition(":")
            out[name.strip()] = [int(v) for v in counters.split()]
        return out

    return run_in_thread(work)


def process_start_time(pid: int) -> int:
    """The process' start time in clock ticks since boot (field 22 of /proc/<pid>/stat), or 0
    when there is no such process; with the pid it names one process for good."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            data = stat.read()
    except (FileNotFoundError, ProcessLookupError):
        return 0
    return int(data[data.rindex(b")") + 2:].split()[19])


def pidfd_for(pid: int, start_time: int) -> int | None:
    """A pidfd for the process (pid, start time), or None when it is gone (or the pid reused)."""
    if pid <= 0:
        return None
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        return None
    if start_time and process_start_time(pid) != start_time:
        os.close(fd)
        return None
    return fd
