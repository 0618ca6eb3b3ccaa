"""The atomic writer: a configMap, secret, downwardAPI or projected volume's files replaced all
at once, so a container never reads half of an update (upstream's AtomicWriter layout, which
applications rely on).

Inside the volume directory::

    ..2026_01_02_03_04_05.1234567/   the current files (a new directory per change)
    ..data -> ..2026_01_02_03_04_05.1234567
    key -> ..data/key                one link per top-level name of the payload

An update writes a fresh timestamped directory, points a new ``..data_tmp`` link at it and
renames that over ``..data`` (one atomic rename switches every file), adds the links of new
top-level names, removes those of vanished ones, and deletes the old directory.  A payload
equal to what is there (contents and modes) writes nothing.

``Payload`` = {relative path: ``FileProjection(data, mode)``}.  Paths must be relative, free of
``..`` components, not start with ``..``, at most 4096 bytes with 255-byte segments; anything
else is refused (``ValueError``) before any file is touched.  With ``fs_group`` every file
written gets that group and ``g+r``, every directory ``g+rx`` and setgid (fsGroup, read-only
flavour, as upstream applies to these volumes).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import stat
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

DATA_LINK = "..data"
DATA_TMP_LINK = "..data_tmp"
MAX_PATH = 4096
MAX_SEGMENT = 255
DIR_MODE = 0o755


@dataclass(frozen=True, slots=True)
class FileProjection:
    data: bytes
    mode: int = 0o644


Payload = dict[str, FileProjection]


def validate_path(path: str) -> str:
    """The cleaned relative path, or ValueError in upstream's words."""
    if not path:
        raise ValueError("invalid path: must not be empty")
    if len(path.encode()) > MAX_PATH:
        raise ValueError(f"invalid path: must be less than or equal to {MAX_PATH} characters")
    if os.path.isabs(path):
        raise ValueError(f"invalid path: must be relative path: {path}")
    parts = [p for p in path.split("/") if p not in ("", ".")]
    if not parts:
        raise ValueError(f"invalid path: must not be empty: {path}")
    for part in parts:
        if len(part.encode()) > MAX_SEGMENT:
            raise ValueError(f"invalid path: segments must be less than or equal to {MAX_SEGMENT} characters")
        if part == "..":
            raise ValueError(f"invalid path: must not contain '..': {path}")
    if parts[0].startswith(".."):
        raise ValueError(f"invalid path: must not start with '..': {path}")
    return "/".join(parts)


def validate_payload(payload: Payload) -> Payload:
    cleaned: Payload = {}
    for path, projection in payload.items():
        cleaned[validate_path(path)] = projection
    return cleaned


class AtomicWriter:
    def __init__(self, target_dir: str | Path, *, fs_group: int | None = None) -> None:
        self.target = Path(target_dir)
        self.fs_group = fs_group

    def _expected_mode(self, mode: int) -> int:
        return mode | 0o440 if self.fs_group is not None else mode

    def current_dir(self) -> Path | None:
        """The timestamped directory ``..data`` points at (None before the first write)."""
        try:
            name = os.readlink(self.target / DATA_LINK)
        except OSError:
            return None
        if "/" in name or not name.startswith(".."):
            return None
        return self.target / name

    @staticmethod
    def _files_of(directory: Path) -> dict[str, Path]:
        found: dict[str, Path] = {}
        for root, _dirs, files in os.walk(directory):
            for name in files:
                full = Path(root) / name
                found[str(full.relative_to(directory))] = full
        return found

    def _unchanged(self, current: Path, payload: Payload) -> bool:
        files = self._files_of(current)
        if set(files) != set(payload):
            return False
        for rel, projection in payload.items():
            try:
                st = os.lstat(files[rel])
                if not stat.S_ISREG(st.st_mode) or stat.S_IMODE(st.st_mode) != self._expected_mode(projection.mode):
                    return False
                if files[rel].read_bytes() != projection.data:
                    return False
            except OSError:
                return False
        return True

    def _own(self, path: Path, is_dir: bool) -> None:
        if self.fs_group is None:
            return
        os.chown(path, -1, self.fs_group, follow_symlinks=False)
        if is_dir:
            os.chmod(path, stat.S_IMODE(os.lstat(path).st_mode) | 0o550 | stat.S_ISGID)

    def _write_dir(self, payload: Payload) -> Path:
        stamp = time.strftime("..%Y_%m_%d_%H_%M_%S.", time.gmtime())
        ts_dir = Path(tempfile.mkdtemp(prefix=stamp, dir=self.target))
        try:
            os.chmod(ts_dir, DIR_MODE)
            self._own(ts_dir, True)
            for rel, projection in sorted(payload.items()):
                full = ts_dir / rel
                parent = full.parent
                missing = []
                while parent != ts_dir and not parent.exists():
                    missing.append(parent)
                    parent = parent.parent
                for directory in reversed(missing):
                    directory.mkdir(mode=DIR_MODE)
                    os.chmod(directory, DIR_MODE)
                    self._own(directory, True)
                fd = os.open(full, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                             projection.mode)
                try:
                    view = memoryview(projection.data)
                    while view:
                        view = view[os.write(fd, view):]
                    if self.fs_group is not None:
                        os.fchown(fd, -1, self.fs_group)
                    os.fchmod(fd, self._expected_mode(projection.mode))
                finally:
                    os.close(fd)
        except BaseException:
            shutil.rmtree(ts_dir, ignore_errors=True)
            raise
        return ts_dir

    def write(self, payload: Payload) -> bool:
        """Make the volume show exactly ``payload``; True when anything was written."""
        payload = validate_payload(payload)
        self.target.mkdir(parents=True, exist_ok=True)
        current = self.current_dir()
        old_names = self._visible_names()
        new_names = {rel.split("/", 1)[0] for rel in payload}
        changed = current is None or not self._unchanged(current, payload)
        if changed:
            ts_dir = self._write_dir(payload)
            tmp_link = self.target / DATA_TMP_LINK
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp_link)
            os.symlink(ts_dir.name, tmp_link)
            os.replace(tmp_link, self.target / DATA_LINK)
        for name in sorted(new_names):
            link = self.target / name
            want = f"{DATA_LINK}/{name}"
            try:
                if os.readlink(link) == want:
                    continue
            except OSError:
                pass
            if link.is_dir() and not link.is_symlink():
                shutil.rmtree(link)
            tmp = self.target / f"..{name}.tmp"
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            os.symlink(want, tmp)
            os.replace(tmp, link)
        for name in old_names - new_names:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.target / name)
        if changed:
            self._remove_stale_dirs()
        return changed

    def _remove_stale_dirs(self) -> None:
        """Every timestamped directory but the current one (the old one, and any a crash
        left behind)."""
        current = self.current_dir()
        for name in os.listdir(self.target):
            path = self.target / name
            if name.startswith("..") and name not in (DATA_LINK, DATA_TMP_LINK) \
                    and (current is None or name != current.name) \
                    and path.is_dir() and not path.is_symlink():
                shutil.rmtree(path, ignore_errors=True)

    def _visible_names(self) -> set[str]:
        try:
            entries = os.listdir(self.target)
        except FileNotFoundError:
            return set()
        return {n for n in entries if not n.startswith("..") and (self.target / n).is_symlink()}

    def read(self) -> dict[str, bytes]:
        """The files the volume shows now (tests and diagnostics)."""
        current = self.current_dir()
        if current is None:
            return {}
        return {rel: path.read_bytes() for rel, path in self._files_of(current).items()}
