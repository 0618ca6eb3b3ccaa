"""A container's volume mounts: ``volumeMounts`` turned into runtime ``Mount``s (host path,
container path, read-only, propagation), with ``subPath`` and ``subPathExpr`` made safe.

As upstream's kubelet (makeMounts):

- the volume must be one of the pod's (``cannot find volume "v" to mount into container
  "c"``);
- ``subPathExpr`` expands ``$(VAR)`` from the container's environment (``$$`` is a literal
  ``$``); a variable without a value is an error (``missing value for VAR``);
- the sub path must be relative (``error SubPath `/x` must not be an absolute path``) and
  free of ``..`` (``unable to provision SubPath `a/../b`: must not contain '..'``);
- a missing sub path is made as a directory with the volume root's mode; a path that leaves
  the volume through a symbolic link is refused (``failed to prepare subPath for volumeMount
  "m" of container "c"``) — the details stay in the node's log, not the pod's status;
- as root the sub path is pinned: opened component by component without following links and
  bind-mounted (through its file descriptor) at ``<pod dir>/volume-subpaths/<volume>/
  <container>/<index>``, which is what the container gets; so a container swapping a directory
  for a link after the check gains nothing.  Without root the checked path itself is used.
- ``mountPropagation``: None -> private, HostToContainer -> rslave, Bidirectional -> rshared
  (privileged containers only).

Every failure is a ``VolumeError("CreateContainerConfigError", ...)``.
"""

from __future__ import annotations

import contextlib
import logging
import os
import stat
from pathlib import Path

from pybernetes.kubelet.envvars import expand as expand_vars
from pybernetes.kubelet.runtime.protocol import Mount
from pybernetes.kubelet.volumes import mountutil
from pybernetes.kubelet.volumes.common import Obj, VolumeError, config_error, d

log = logging.getLogger(__name__)

PROPAGATION = {None: "private", "": "private", "None": "private", "HostToContainer": "rslave",
               "Bidirectional": "rshared"}


class SubPathEscape(OSError):
    pass


def expand(expr: str, env: dict[str, str]) -> str:
    """``$(VAR)`` expansion as upstream's ExpandContainerVolumeMounts does it: a reference to a
    variable that is unknown or empty is an error."""
    missing: set[str] = set()
    out = expand_vars(expr, env, missing)
    if missing:
        raise config_error(f"missing value for {', '.join(sorted(missing))}")
    return out


def _within(path: str, base: str) -> bool:
    return path == base or path.startswith(base.rstrip("/") + "/")


def _open_beneath(base: str, rel: str, *, make_dirs: bool = False, perm: int = 0o755) -> int:
    """An O_PATH descriptor of ``base/rel``, walking each component without following links
    (a link anywhere is refused); with ``make_dirs`` missing components become directories."""
    fd = os.open(base, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        for part in [p for p in rel.split("/") if p and p != "."]:
            try:
                nfd = os.open(part, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=fd)
            except FileNotFoundError:
                if not make_dirs:
                    raise
                with contextlib.suppress(FileExistsError):
                    os.mkdir(part, perm, dir_fd=fd)
                    os.chmod(part, perm, dir_fd=fd, follow_symlinks=False)
                nfd = os.open(part, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=fd)
            os.close(fd)
            fd = nfd
            if stat.S_ISLNK(os.fstat(fd).st_mode):
                raise SubPathEscape(f"{base}/{rel}: a symbolic link at {part!r}")
        return fd
    except BaseException:
        os.close(fd)
        raise


def resolve(volume_path: str, sub: str) -> tuple[str, str]:
    """(real volume root, real path relative to it) of ``volume_path/sub``, which must stay in
    the volume once symbolic links are followed."""
    base = os.path.realpath(volume_path)
    real = os.path.realpath(os.path.join(volume_path, sub))
    if not _within(real, base):
        raise SubPathEscape(f"subpath {real!r} not within volume path {base!r}")
    return base, os.path.relpath(real, base)


def prepare(volume_path: str, sub: str, target: Path | None) -> str:
    """The host path to mount for ``volume_path/sub`` (made when missing); ``target`` given
    (root): the pinned bind mount there."""
    base, rel = resolve(volume_path, sub)
    if not os.path.lexists(os.path.join(base, rel)):
        perm = stat.S_IMODE(os.stat(base).st_mode)
        os.close(_open_beneath(base, rel, make_dirs=True, perm=perm))
        base, rel = resolve(volume_path, sub)
    fd = _open_beneath(base, rel)
    try:
        if target is None:
            return os.path.join(base, rel) if rel != "." else base
        is_dir = stat.S_ISDIR(os.fstat(fd).st_mode)
        target.parent.mkdir(parents=True, exist_ok=True)
        if mountutil.is_mount_point(target):
            mountutil.umount(target, detach=True)
        if os.path.lexists(target) and (target.is_dir() and not target.is_symlink()) != is_dir:
            if target.is_dir() and not target.is_symlink():
                target.rmdir()
            else:
                target.unlink()
        if is_dir:
            target.mkdir(mode=0o750, exist_ok=True)
        elif not os.path.lexists(target):
            os.close(os.open(target, os.O_CREAT | os.O_WRONLY | os.O_CLOEXEC, 0o640))
        mountutil.bind_fd(fd, target)
        return str(target)
    finally:
        os.close(fd)


def make_mounts(pod: Obj, container: Obj, volumes: dict[str, str], env: dict[str, str], *,
                readonly_volumes: set[str], subpaths_dir: Path | None) -> list[Mount]:
    """The container's mounts; ``subpaths_dir`` (root only) is ``<pod dir>/volume-subpaths``."""
    privileged = d(container.get("securityContext")).get("privileged") is True
    container_name = str(container.get("name") or "")
    mounts: list[Mount] = []
    for index, vm in enumerate(container.get("volumeMounts") or []):
        vm = d(vm)
        name = str(vm.get("name") or "")
        host_path = volumes.get(name)
        if host_path is None:
            raise config_error(f'cannot find volume "{name}" to mount into container "{container_name}"')
        propagation_mode = vm.get("mountPropagation")
        if propagation_mode not in PROPAGATION:
            raise config_error(f"invalid mount propagation mode {propagation_mode!r}")
        if propagation_mode == "Bidirectional" and not privileged:
            raise config_error("Bidirectional mount propagation is available only to privileged containers")
        sub = str(vm.get("subPath") or "")
        if vm.get("subPathExpr"):
            sub = expand(str(vm["subPathExpr"]), env)
        if sub:
            if os.path.isabs(sub):
                raise config_error(f"error SubPath `{sub}` must not be an absolute path")
            if ".." in sub.split("/"):
                raise config_error(f"unable to provision SubPath `{sub}`: must not contain '..'")
            target = subpaths_dir / name / container_name / str(index) if subpaths_dir is not None else None
            try:
                host_path = prepare(host_path, sub, target)
            except (OSError, VolumeError) as exc:
                log.warning("pod %s/%s container %s: subPath %r of volume %s: %s",
                            (pod.get("metadata") or {}).get("namespace"), (pod.get("metadata") or {}).get("name"),
                            container_name, sub, name, exc)
                raise config_error(f'failed to prepare subPath for volumeMount "{name}" of container '
                                   f'"{container_name}"') from None
        mounts.append(Mount(container_path=str(vm.get("mountPath") or ""), host_path=host_path,
                            readonly=vm.get("readOnly") is True or name in readonly_volumes,
                            propagation=PROPAGATION[propagation_mode]))
    return mounts
