"""hostPath volumes (and hostPath PersistentVolumes): the node's own path, handed over as it is
after upstream's type check.

Types: ``""`` (no check), ``DirectoryOrCreate`` (an empty directory, mode 0755, is made when
nothing is there), ``Directory``, ``FileOrCreate`` (an empty file, mode 0644, when nothing is
there; its directory must exist), ``File``, ``Socket``, ``CharDevice``, ``BlockDevice``.  The
checks follow symbolic links, as upstream's do.  Failures carry upstream's wording, e.g.
``hostPath type check failed: /data is not a directory``; the data is never touched.
"""

from __future__ import annotations

import os
import stat

TYPES = ("", "DirectoryOrCreate", "Directory", "FileOrCreate", "File", "Socket", "CharDevice",
         "BlockDevice")

_CHECKS = {
    "Directory": (stat.S_ISDIR, "directory"),
    "File": (stat.S_ISREG, "file"),
    "Socket": (stat.S_ISSOCK, "socket file"),
    "CharDevice": (stat.S_ISCHR, "character device"),
    "BlockDevice": (stat.S_ISBLK, "block device"),
}


class HostPathError(ValueError):
    pass


def _stat(path: str) -> os.stat_result | None:
    try:
        return os.stat(path)
    except OSError:
        return None


def check_host_path(path: str, path_type: str | None) -> None:
    """Check (and for the *OrCreate types make) ``path``; HostPathError when it does not fit."""
    path_type = path_type or ""
    if path_type == "":
        return
    if path_type == "DirectoryOrCreate":
        if _stat(path) is None:
            try:
                os.makedirs(path, mode=0o755, exist_ok=True)
            except OSError as exc:
                raise HostPathError(f"mkdir {path}: {exc.strerror}") from None
        path_type = "Directory"
    elif path_type == "FileOrCreate":
        if _stat(path) is None and not os.path.lexists(path):
            try:
                fd = os.open(path, os.O_CREAT | os.O_WRONLY | os.O_CLOEXEC, 0o644)
                os.close(fd)
            except OSError as exc:
                raise HostPathError(f"open {path}: {exc.strerror}") from None
        path_type = "File"
    check = _CHECKS.get(path_type)
    if check is None:
        raise HostPathError(f"{path_type} is an invalid volume type")
    test, description = check
    st = _stat(path)
    if st is None or not test(st.st_mode):
        raise HostPathError(f"hostPath type check failed: {path} is not a {description}")
