"""Which container runtime the agent runs, and how it is put together (``pybernetes agent
--runtime``): ``runc`` (the default as root when runc and conmon are installed: real
containers, pulls through the node's image store from registries), ``process`` (containers
as plain host processes — the fallback without root, with a warning), ``simulated`` (nothing
runs; for scale tests).

Also the pull secrets of a pod: its ``imagePullSecrets`` of type
``kubernetes.io/dockerconfigjson`` (or the legacy ``dockercfg``) read from the API and matched
to the image's registry as upstream's credential keyring does (registry_auth.py).
"""

from __future__ import annotations

import base64
import json
import logging
import os
import shutil
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from pybernetes.kubelet.runtime.images import ImageStore
from pybernetes.kubelet.runtime.process import ProcessRuntime
from pybernetes.kubelet.runtime.protocol import Image, Runtime
from pybernetes.kubelet.runtime.registry import load_config, pull
from pybernetes.kubelet.runtime.registry_auth import credentials_for
from pybernetes.kubelet.runtime.simulated import SimulatedRuntime

log = logging.getLogger(__name__)

Obj = dict[str, Any]
DEFAULT_POD_CIDR = "10.88.0.0/16"
DOCKER_CONFIG_KEYS = {"kubernetes.io/dockerconfigjson": ".dockerconfigjson", "kubernetes.io/dockercfg": ".dockercfg"}


def runc_unavailable() -> str:
    """"" when this host can run the runc runtime, else why not."""
    if os.geteuid() != 0:
        return "the runc runtime needs root"
    for binary in ("runc", "conmon"):
        if shutil.which(binary) is None:
            return f"{binary} is not installed"
    return ""


def choose(name: str) -> str:
    """The runtime ``auto`` means here."""
    if name != "auto":
        return name
    return "runc" if not runc_unavailable() else "process"


def image_store(data_dir: Path) -> ImageStore:
    return ImageStore(Path(data_dir) / "images")


def registry_puller(store: ImageStore, data_dir: Path) -> Callable[[str, dict | None], Awaitable[Image]]:
    """Pulls into ``store`` with ``<data dir>/registries.yaml`` (mirrors, auth, TLS), read at
    each pull so an edit takes effect without a restart."""
    async def puller(ref: str, auth: dict | None) -> Image:
        return await pull(store, ref, auth=auth, config=load_config(data_dir))
    return puller


def build(name: str, data_dir: Path, *, pod_cidr: str = "", bridge: str = "pyb0") -> Runtime:
    """The runtime called ``name`` (after ``choose``) with its state under ``data_dir``."""
    data_dir = Path(data_dir)
    if name == "runc":
        from pybernetes.kubelet.runtime.runc import RuncRuntime

        store = image_store(data_dir)
        return RuncRuntime(data_dir / "agent" / "runc", store, pod_cidr=pod_cidr or DEFAULT_POD_CIDR,
                           puller=registry_puller(store, data_dir), bridge=bridge)
    if name == "process":
        log.warning("the process runtime runs containers as plain host processes, without any isolation")
        return ProcessRuntime(data_dir / "agent" / "process")
    if name == "simulated":
        return SimulatedRuntime()
    raise ValueError(f"unknown runtime {name!r}")


def docker_configs(secrets: list[Obj]) -> list[dict]:
    """The decoded dockerconfigjson / dockercfg documents of pull secrets (others skipped)."""
    out = []
    for secret in secrets:
        key = DOCKER_CONFIG_KEYS.get(secret.get("type", ""))
        raw = (secret.get("data") or {}).get(key or "")
        if not raw:
            continue
        try:
            out.append(json.loads(base64.b64decode(raw)))
        except (ValueError, TypeError):
            log.warning("secret %s: %s is not valid JSON", (secret.get("metadata") or {}).get("name"), key)
    return out


async def pull_credentials(pod: Obj, image: str, secret: Callable[[str, str], Awaitable[Obj | None]]) -> dict | None:
    """The credentials of the pod's imagePullSecrets for ``image``'s registry, if any."""
    namespace = (pod.get("metadata") or {}).get("namespace", "")
    names = [ref.get("name", "") for ref in (pod.get("spec") or {}).get("imagePullSecrets") or []]
    found = [s for s in [await secret(namespace, name) for name in names if name] if s is not None]
    return credentials_for(image, docker_configs(found)) if found else None
