"""Unpacking one OCI/Docker image layer (a tar stream: plain or gzip'd; the image store opens
zstd'd ones with image_format.open_layer first) onto a directory that becomes an overlayfs
lower layer.

The layer is applied as overlayfs expects to see it:

- ``.wh.NAME`` (a whiteout: NAME of a lower layer is deleted) becomes a character device 0:0
  named NAME; ``.wh..wh..opq`` in a directory (it hides everything below it) becomes the xattr
  ``trusted.overlay.opaque=y`` on that directory.  Both need root: without it they are left out
  and listed in the ``skipped`` result, which the caller records beside the layer.
- Modes, mtimes, symlinks and hardlinks are kept; ownership and device nodes only as root.
- An entry whose path is absolute, contains ``..``, goes through a symlink, or a hardlink whose
  target lies outside the layer is refused with :class:`LayerError` (the caller discards the
  half-written directory).

Pure file-system code; nothing here knows about image stores or registries.
"""

from __future__ import annotations

import os
import posixpath
import shutil
import stat
import tarfile
from pathlib import Path
from typing import IO

WHITEOUT_PREFIX = ".wh."
OPAQUE_MARKER = ".wh..wh..opq"
OPAQUE_XATTR = "trusted.overlay.opaque"


class LayerError(Exception):
    """A layer cannot be unpacked safely (bad path, unsupported entry, broken tar)."""


def _clean(name: str) -> str:
    """The entry's path relative to the layer root, or LayerError if it escapes."""
    if name.startswith("/"):
        raise LayerError(f"layer entry {name!r} has an absolute path")
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise LayerError(f"layer entry {name!r} escapes the layer root ('..')")
    return "/".join(parts)


class _Unpacker:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.is_root = os.geteuid() == 0
        self.dirs: list[tuple[Path, tarfile.TarInfo]] = []
        self.opaque: list[Path] = []
        self.skipped: list[str] = []

    def path_of(self, rel: str) -> Path:
        """The host path of ``rel``, after checking no parent component is a symlink or a
        non-directory (creating missing parents)."""
        path = self.root
        parts = rel.split("/") if rel else []
        for part in parts[:-1]:
            path = path / part
            try:
                st = os.lstat(path)
            except FileNotFoundError:
                os.mkdir(path, 0o755)
                continue
            if stat.S_ISLNK(st.st_mode):
                raise LayerError(f"layer entry {rel!r} goes through the symlink {str(path.relative_to(self.root))!r}")
            if not stat.S_ISDIR(st.st_mode):
                raise LayerError(f"layer entry {rel!r}: {str(path.relative_to(self.root))!r} is not a directory")
        return path / parts[-1] if parts else path

    @staticmethod
    def _remove(path: Path) -> None:
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            return
        if stat.S_ISDIR(st.st_mode):
            shutil.rmtree(path)
        else:
            os.unlink(path)

    def _owner_time(self, path: Path, info: tarfile.TarInfo, *, is_link: bool = False) -> None:
        if self.is_root:
            os.lchown(path, info.uid, info.gid)
        if not is_link:
            os.chmod(path, info.mode & 0o7777)
        os.utime(path, (info.mtime, info.mtime), follow_symlinks=False)

    def entry(self, tar: tarfile.TarFile, info: tarfile.TarInfo) -> None:
        rel = _clean(info.name)
        base = posixpath.basename(rel)
        if base == OPAQUE_MARKER:
            parent = self.path_of(rel)  # checks the parents
            if self.is_root:
                self.opaque.append(parent.parent)
            else:
                self.skipped.append(f"opaque {posixpath.dirname(rel) or '/'}")
            return
        if base.startswith(WHITEOUT_PREFIX):
            if base[len(WHITEOUT_PREFIX):] in ("", ".", ".."):
                raise LayerError(f"layer entry {rel!r} is a whiteout without a name")
            target_rel = posixpath.join(posixpath.dirname(rel), base[len(WHITEOUT_PREFIX):])
            target = self.path_of(target_rel)
            if self.is_root:
                self._remove(target)
                os.mknod(target, stat.S_IFCHR | 0o000, os.makedev(0, 0))
            else:
                self.skipped.append(f"whiteout {target_rel}")
            return
        if not rel:  # the root directory itself
            if not info.isdir():
                raise LayerError(f"layer entry {info.name!r} replaces the layer root")
            self.dirs.append((self.root, info))
            return
        path = self.path_of(rel)
        if info.isdir():
            try:
                st = os.lstat(path)
                if not stat.S_ISDIR(st.st_mode):
                    os.unlink(path)
                    os.mkdir(path, 0o755)
            except FileNotFoundError:
                os.mkdir(path, 0o755)
            self.dirs.append((path, info))
            return
        self._remove(path)
        if info.isreg():
            src = tar.extractfile(info)
            assert src is not None
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as out:
                while chunk := src.read(1 << 20):
                    out.write(chunk)
            self._owner_time(path, info)
        elif info.issym():
            os.symlink(info.linkname, path)
            self._owner_time(path, info, is_link=True)
        elif info.islnk():
            target_rel = _clean(info.linkname)
            if not target_rel:
                raise LayerError(f"hardlink {rel!r} points at the layer root")
            target = self.path_of(target_rel)
            if not os.path.lexists(target):
                raise LayerError(f"hardlink {rel!r} points at {info.linkname!r}, not in the layer")
            os.link(target, path, follow_symlinks=False)
        elif info.ischr() or info.isblk() or info.isfifo():
            if info.isfifo():
                os.mkfifo(path, 0o600)
            elif self.is_root:
                kind = stat.S_IFCHR if info.ischr() else stat.S_IFBLK
                os.mknod(path, kind | 0o600, os.makedev(info.devmajor, info.devminor))
            else:
                self.skipped.append(f"device {rel}")
                return
            self._owner_time(path, info)
        else:
            raise LayerError(f"layer entry {rel!r} has an unsupported type {info.type!r}")

    def finish(self) -> None:
        for path in self.opaque:
            os.setxattr(path, OPAQUE_XATTR, b"y", follow_symlinks=False)
        # deepest first, so setting a parent's mtime is not undone by its children
        for path, info in sorted(self.dirs, key=lambda d: len(d[0].parts), reverse=True):
            self._owner_time(path, info)


def unpack_layer(stream: IO[bytes], dest: Path) -> list[str]:
    """Apply the layer tar read from ``stream`` (plain or gzip'd) onto the directory ``dest``
    (created if missing).  Returns what was skipped for want of root (whiteouts, opaque
    directories, device nodes), each as ``"whiteout PATH"``, ``"opaque DIR"``, ``"device PATH"``."""
    dest.mkdir(parents=True, exist_ok=True)
    unpacker = _Unpacker(dest)
    try:
        with tarfile.open(fileobj=stream, mode="r|*") as tar:
            for info in tar:
                unpacker.entry(tar, info)
    except (tarfile.TarError, EOFError, OSError) as exc:
        raise LayerError(f"cannot read layer: {exc}") from exc
    unpacker.finish()
    return unpacker.skipped
