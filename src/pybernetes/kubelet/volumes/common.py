"""What every volume plugin shares: the error the pod workers report, the on-disk layout of a
pod's volumes (upstream's ``<pods dir>/<pod uid>/volumes/kubernetes.io~<plugin>/<name>``), and
the small readers of wire-shaped dicts the plugins use.

``VolumeError(reason, message)``: ``reason`` is what the pod's status and events show —
``FailedMount`` for a volume that cannot be set up (the pod stays ContainerCreating; the event's
message in upstream's shape, e.g. ``MountVolume.SetUp failed for volume "cfg" : configmap "x"
not found``) or ``CreateContainerConfigError`` for a volume mount a container cannot get (a bad
subPath, a volume that does not exist).
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

Obj = dict[str, Any]

FAILED_MOUNT = "FailedMount"
CREATE_CONTAINER_CONFIG_ERROR = "CreateContainerConfigError"

# The plugin directories under <pods dir>/<uid>/volumes/, as upstream names them.
EMPTY_DIR = "kubernetes.io~empty-dir"
CONFIG_MAP = "kubernetes.io~configmap"
SECRET = "kubernetes.io~secret"
DOWNWARD_API = "kubernetes.io~downward-api"
PROJECTED = "kubernetes.io~projected"
PLUGIN_DIRS = (EMPTY_DIR, CONFIG_MAP, SECRET, DOWNWARD_API, PROJECTED)

VOLUMES_DIR = "volumes"
SUBPATHS_DIR = "volume-subpaths"

_UID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


class VolumeError(Exception):
    """A volume could not be given to a pod or a container; ``reason`` and ``message`` as the
    pod's status and events show them.  ``errors`` holds every failure of one ``setup`` (the
    first is this one)."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message
        self.errors: list[VolumeError] = [self]


def setup_failed(volume: str, detail: str) -> VolumeError:
    """A FailedMount error in upstream's shape for a volume whose SetUp failed."""
    return VolumeError(FAILED_MOUNT, f'MountVolume.SetUp failed for volume "{volume}" : {detail}')


def config_error(message: str) -> VolumeError:
    return VolumeError(CREATE_CONTAINER_CONFIG_ERROR, message)


def is_root() -> bool:
    return os.geteuid() == 0


def check_pod_uid(uid: str) -> str:
    """A pod uid is used as one path component: refuse anything else (never ``..`` or ``/``)."""
    if not isinstance(uid, str) or not _UID.match(uid) or uid in (".", ".."):
        raise ValueError(f"invalid pod uid {uid!r}")
    return uid


def pod_dir(pods_dir: Path, uid: str) -> Path:
    return pods_dir / check_pod_uid(uid)


def volume_dir(pods_dir: Path, uid: str, plugin: str, name: str) -> Path:
    if not name or "/" in name or name in (".", ".."):
        raise ValueError(f"invalid volume name {name!r}")
    return pod_dir(pods_dir, uid) / VOLUMES_DIR / plugin / name


def d(value: Any) -> Obj:
    """``value`` when it is a dict, else an empty dict (lenient readers of wire objects)."""
    return value if isinstance(value, dict) else {}


def lst(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def meta(obj: Obj) -> Obj:
    return d(obj.get("metadata"))


def pod_fs_group(pod: Obj) -> int | None:
    group = d(d(pod.get("spec")).get("securityContext")).get("fsGroup")
    return group if isinstance(group, int) and not isinstance(group, bool) and group >= 0 else None


def pod_fs_group_policy(pod: Obj) -> str:
    policy = d(d(pod.get("spec")).get("securityContext")).get("fsGroupChangePolicy")
    return policy if policy in ("OnRootMismatch", "Always") else "Always"


def mode_of(value: Any, default: int) -> int:
    """A file mode field (defaultMode, items[].mode): an int 0..0777, else ``default``."""
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 0o777:
        return value
    return default


DEFAULT_MODE = 0o644
