"""Mounts the volume plugins make, through the kernel's mount(2)/umount2(2) (libc via ctypes: no
``mount`` binary, no shell), and the mount table read from ``/proc/self/mountinfo``.

- ``mount_tmpfs(path, size)`` — a tmpfs for emptyDir medium Memory and for the secret,
  downwardAPI and projected volumes (upstream backs those with memory, so secrets never
  reach a disk); ``nosuid,nodev``.
- ``bind_fd(fd, target)`` — bind-mounts an already opened file or directory (through
  ``/proc/self/fd/N``) onto ``target``: how a subPath is pinned (subpath.py).
- ``mounts_under(path)`` / ``unmount_all_under(path)`` — every mount point at or below a
  directory, deepest first, so a pod's teardown unmounts everything before it removes a file.

All need root (CAP_SYS_ADMIN); callers check ``common.is_root()`` first.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import os
from pathlib import Path

MS_NOSUID = 0x2
MS_NODEV = 0x4
MS_BIND = 0x1000
MNT_DETACH = 0x2
UMOUNT_NOFOLLOW = 0x8

_libc: ctypes.CDLL | None = None


def _lib() -> ctypes.CDLL:
    global _libc
    if _libc is None:
        _libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        _libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong,
                                ctypes.c_char_p]
        _libc.umount2.argtypes = [ctypes.c_char_p, ctypes.c_int]
    return _libc


def _check(result: int, what: str, path: str | Path) -> None:
    if result != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}", str(path))


def mount(source: str, target: str | Path, fstype: str | None, flags: int, data: str | None) -> None:
    _check(_lib().mount(source.encode(), os.fsencode(target), fstype.encode() if fstype else None,
                        flags, data.encode() if data else None), "mount", target)


def umount(target: str | Path, *, detach: bool = False) -> None:
    flags = UMOUNT_NOFOLLOW | (MNT_DETACH if detach else 0)
    _check(_lib().umount2(os.fsencode(target), flags), "umount", target)


def mount_tmpfs(path: str | Path, size: int | None = None, mode: int | None = None) -> None:
    options = []
    if size:
        options.append(f"size={int(size)}")
    if mode is not None:
        options.append(f"mode={mode:o}")
    mount("tmpfs", path, "tmpfs", MS_NOSUID | MS_NODEV, ",".join(options) or None)


def bind_fd(fd: int, target: str | Path) -> None:
    mount(f"/proc/self/fd/{fd}", target, None, MS_BIND, None)


def _unescape(field: str) -> str:
    """mountinfo escapes space, tab, newline and backslash as \\ooo."""
    if "\\" not in field:
        return field
    out, i = [], 0
    while i < len(field):
        if field[i] == "\\" and i + 3 < len(field) and field[i + 1:i + 4].isdigit():
            out.append(chr(int(field[i + 1:i + 4], 8)))
            i += 4
        else:
            out.append(field[i])
            i += 1
    return "".join(out)


def mount_points(mountinfo: str | None = None) -> list[tuple[str, str]]:
    """(mount point, file system type) of every mount, in mountinfo order."""
    if mountinfo is None:
        with open("/proc/self/mountinfo", encoding="utf-8", errors="surrogateescape") as f:
            mountinfo = f.read()
    found = []
    for line in mountinfo.splitlines():
        fields = line.split(" ")
        if len(fields) < 5:
            continue
        try:
            sep = fields.index("-", 6)
        except ValueError:
            continue
        fstype = fields[sep + 1] if sep + 1 < len(fields) else ""
        found.append((_unescape(fields[4]), fstype))
    return found


def mounts_under(path: str | Path, mountinfo: str | None = None) -> list[str]:
    """Mount points at or below ``path``, deepest first (each listed once)."""
    base = os.path.normpath(str(path))
    prefix = base.rstrip("/") + "/"
    seen: dict[str, None] = {}
    for point, _ in mount_points(mountinfo):
        if point == base or point.startswith(prefix):
            seen[point] = None
    return sorted(seen, key=lambda p: (p.count("/"), p), reverse=True)


def is_mount_point(path: str | Path, mountinfo: str | None = None) -> bool:
    base = os.path.normpath(str(path))
    return any(point == base for point, _ in mount_points(mountinfo))


def fs_type(path: str | Path) -> str:
    """The file system type of the mount exactly at ``path`` ("" when none is)."""
    base = os.path.normpath(str(path))
    kinds = [kind for point, kind in mount_points() if point == base]
    return kinds[-1] if kinds else ""


def unmount_all_under(path: str | Path) -> None:
    """Unmount every mount at or below ``path`` (stacked mounts too); lazily when busy.
    Raises OSError when one stays."""
    for _ in range(8):
        points = mounts_under(path)
        if not points:
            return
        for point in points:
            try:
                umount(point)
            except OSError as exc:
                if exc.errno == errno.EINVAL:  # no longer a mount point
                    continue
                if exc.errno == errno.EBUSY:
                    umount(point, detach=True)
                    continue
                raise
    left = mounts_under(path)
    if left:
        raise OSError(errno.EBUSY, f"mounts remain under {path}: {', '.join(left)}")
