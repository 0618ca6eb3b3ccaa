"""fsGroup: a pod's volumes handed to its supplementary group, as upstream's
SetVolumeOwnership does for the volume types that support ownership management (emptyDir,
configMap, secret, downwardAPI, projected, local PVs — not hostPath).

Every file and directory below the volume gets the group ``fs_group``; files gain ``rw`` for
the group (``r`` only for read-only volumes), directories also ``x`` and the setgid bit, so
what containers create later inherits the group.  Symbolic links get the group but no mode
change and are never followed: the walk is ``os.fwalk`` (file descriptors, no path lookups
through links) and modes change with ``fchmodat(AT_SYMLINK_NOFOLLOW)``.  With
``fsGroupChangePolicy: OnRootMismatch`` nothing is walked when the volume's root already has
the group and those bits.  Only root can do this; callers check.
"""

from __future__ import annotations

import contextlib
import os
import stat
from pathlib import Path

RW_MASK = 0o660
RO_MASK = 0o440
EXEC_MASK = 0o110


def _mask(is_dir: bool, readonly: bool) -> int:
    mask = RO_MASK if readonly else RW_MASK
    if is_dir:
        mask |= stat.S_ISGID | EXEC_MASK
    return mask


def root_matches(path: str | Path, fs_group: int, readonly: bool = False) -> bool:
    """The root of the volume already has the group and the bits (OnRootMismatch's test)."""
    try:
        st = os.stat(path)
    except OSError:
        return False
    mask = _mask(True, readonly)
    return st.st_gid == fs_group and stat.S_IMODE(st.st_mode) & mask == mask


def _change(name: str, dir_fd: int | None, fs_group: int, readonly: bool) -> None:
    st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    if st.st_gid != fs_group:
        os.chown(name, -1, fs_group, dir_fd=dir_fd, follow_symlinks=False)
    if stat.S_ISLNK(st.st_mode):
        return
    mode = stat.S_IMODE(st.st_mode)
    wanted = mode | _mask(stat.S_ISDIR(st.st_mode), readonly)
    if wanted != mode:
        with contextlib.suppress(NotImplementedError):  # became a symlink meanwhile: leave it
            os.chmod(name, wanted, dir_fd=dir_fd, follow_symlinks=False)


def set_volume_ownership(path: str | Path, fs_group: int | None, *, readonly: bool = False,
                         policy: str = "Always") -> bool:
    """Apply ``fs_group`` below ``path``; False when nothing was to do (no group, or
    OnRootMismatch with a matching root)."""
    if fs_group is None:
        return False
    if policy == "OnRootMismatch" and root_matches(path, fs_group, readonly):
        return False
    _change(str(path), None, fs_group, readonly)
    for _dirpath, dirnames, filenames, dir_fd in os.fwalk(str(path), follow_symlinks=False):
        for name in (*dirnames, *filenames):
            with contextlib.suppress(FileNotFoundError):
                _change(name, dir_fd, fs_group, readonly)
    return True
