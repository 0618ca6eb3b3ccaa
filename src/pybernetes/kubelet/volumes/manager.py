"""The volume manager: a pod's volumes set up on this node before its containers start, kept
current while it runs, and removed after it is gone (upstream kubelet's volume manager and
the in-tree plugins emptyDir, hostPath, configMap, secret, downwardAPI, projected, and
persistentVolumeClaim / ephemeral over hostPath and local PVs).

The pod workers call:

- ``await setup(pod)`` -> {volume name: host path}.  Idempotent: volumes already set up are
  not touched again (after a restart the disk and the mount table tell what is there).  Every
  volume is tried; the first failure is raised as ``VolumeError("FailedMount", message)``
  (all of them in ``.errors``) and the volumes that worked stay set up.
- ``mounts(pod, container, volumes, env)`` -> the container's runtime ``Mount``s (subpath.py);
  ``VolumeError("CreateContainerConfigError", ...)`` for a bad volume mount.
- ``await refresh(pod)`` — configMap, secret, downwardAPI and projected volumes re-projected
  when their sources changed (atomic ``..data`` swap); failures are logged, the old files stay.
- ``await teardown(pod_uid)`` — every mount under the pod's directory undone (tmpfs, pinned
  subpaths), then its ``volumes`` and ``volume-subpaths`` directories removed, and the pod
  directory if nothing else is left in it.  Data of hostPath and PV volumes is never under it.
- ``pod_uids_on_disk()`` — pods with a directory here (orphans after a restart).
- ``empty_dirs(pod)`` — the pod's emptyDir directories with their medium (what the local
  storage eviction of eviction.py measures).

Layout: ``<pods dir>/<uid>/volumes/kubernetes.io~<plugin>/<name>``.  Secret, downwardAPI and
projected volumes are tmpfs mounts when running as root (never on disk); fsGroup is applied
(as root) to emptyDir, configMap, secret, downwardAPI, projected and local PV volumes.
ConfigMaps, Secrets, claims, PVs and the Node are read with GETs through the API.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import stat
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pybernetes.client.errors import ApiError, ConnectionFailed, NotFound
from pybernetes.client.rest import RestClient
from pybernetes.kubelet.runtime.protocol import Mount
from pybernetes.kubelet.volumes import mountutil, projected, pvc, subpath
from pybernetes.kubelet.volumes.atomic_writer import AtomicWriter, Payload
from pybernetes.kubelet.volumes.common import (
    CONFIG_MAP,
    DOWNWARD_API,
    EMPTY_DIR,
    FAILED_MOUNT,
    PROJECTED,
    SECRET,
    SUBPATHS_DIR,
    VOLUMES_DIR,
    Obj,
    VolumeError,
    check_pod_uid,
    d,
    is_root,
    lst,
    meta,
    pod_dir,
    pod_fs_group,
    pod_fs_group_policy,
    setup_failed,
    volume_dir,
)
from pybernetes.kubelet.volumes.configmap_secret import PayloadError, configmap_payload, secret_payload
from pybernetes.kubelet.volumes.downwardapi import DownwardAPIError, downward_payload, needs_allocatable
from pybernetes.kubelet.volumes.emptydir import EmptyDirError, make_dir, node_memory_bytes, setup_empty_dir
from pybernetes.kubelet.volumes.hostpath import HostPathError, check_host_path
from pybernetes.kubelet.volumes.ownership import set_volume_ownership

log = logging.getLogger(__name__)

CONFIGMAPS = ("", "v1", "configmaps")
SECRETS = ("", "v1", "secrets")
NODES = ("", "v1", "nodes")
SERVICEACCOUNTS = ("", "v1", "serviceaccounts")
NODE_TTL = 60.0
PROJECTED_KINDS = ("configMap", "secret", "downwardAPI", "projected")
PLUGIN_OF = {"configMap": CONFIG_MAP, "secret": SECRET, "downwardAPI": DOWNWARD_API, "projected": PROJECTED}


@dataclass(frozen=True, slots=True)
class EmptyDirVolume:
    """One emptyDir of a pod: its directory here and its medium ("" disk, "Memory")."""

    name: str
    path: Path
    medium: str


@dataclass
class _PodVolumes:
    paths: dict[str, str] = field(default_factory=dict)  # volumes set up: name -> host path
    size_limits: dict[str, int] = field(default_factory=dict)  # emptyDir name -> bytes
    tokens: dict[tuple[str, str], tuple[bytes, float]] = field(default_factory=dict)  # (vol, path) -> (token, renew at)


def _kind(volume: Obj) -> str:
    for key in ("emptyDir", "hostPath", "configMap", "secret", "downwardAPI", "projected",
                "persistentVolumeClaim", "ephemeral"):
        if volume.get(key) is not None:
            return key
    return next((k for k in volume if k != "name"), "")


def readonly_volumes(pod: Obj) -> set[str]:
    """Volumes every container gets read-only: configMap, secret, downwardAPI, projected, and
    claims with readOnly."""
    names = set()
    for volume in lst(d(pod.get("spec")).get("volumes")):
        volume = d(volume)
        kind = _kind(volume)
        if kind in PROJECTED_KINDS or (kind == "persistentVolumeClaim"
                                       and d(volume.get("persistentVolumeClaim")).get("readOnly") is True):
            names.add(str(volume.get("name") or ""))
    return names


class VolumeManager:
    def __init__(self, client: RestClient, pods_dir: Path, node_name: str, *, data_dir: Path,
                 root: bool | None = None) -> None:
        self.client = client
        self.pods_dir = Path(pods_dir)
        self.node_name = node_name
        self.data_dir = Path(data_dir)
        self.root = is_root() if root is None else root
        self._pods: dict[str, _PodVolumes] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self._node: Obj | None = None
        self._node_read_at = 0.0
        self._token_api: bool | None = None

    def _lock(self, uid: str) -> asyncio.Lock:
        lock = self._locks.get(uid)
        if lock is None:
            lock = self._locks[uid] = asyncio.Lock()
        return lock

    # -- reads through the API -----------------------------------------------------------------

    async def _get(self, res: tuple[str, str, str], namespace: str, name: str) -> Obj | None:
        try:
            return await self.client.get(res, name, namespace)
        except NotFound:
            return None

    async def _node_obj(self) -> Obj | None:
        now = time.monotonic()
        if self._node is None or now - self._node_read_at > NODE_TTL:
            try:
                self._node = await self.client.get(NODES, self.node_name)
                self._node_read_at = now
            except (ApiError, ConnectionFailed) as exc:
                log.debug("volumes: reading node %s: %s", self.node_name, exc)
        return self._node

    async def _allocatable(self) -> dict[str, Any]:
        node = await self._node_obj()
        allocatable = dict(d(d((node or {}).get("status")).get("allocatable")))
        allocatable.setdefault("cpu", str(os.cpu_count() or 1))
        allocatable.setdefault("memory", str(node_memory_bytes()))
        return allocatable

    async def token_api_available(self) -> bool:
        """Whether the API serves TokenRequest (serviceaccounts/token); asked once."""
        if self._token_api is None:
            try:
                res = await self.client.resource(SERVICEACCOUNTS)
                self._token_api = "token" in res.subresources
            except (ApiError, ConnectionFailed):
                return False
            if not self._token_api:
                log.warning("volumes: the API server has no TokenRequest API (serviceaccounts/token): "
                            "projected serviceAccountToken sources are skipped")
        return self._token_api

    # -- payloads ------------------------------------------------------------------------------

    async def _payload(self, pod: Obj, volume: Obj, kind: str, state: _PodVolumes) -> Payload:
        """The files of a configMap/secret/downwardAPI/projected volume now."""
        namespace = str(meta(pod).get("namespace") or "default")
        source = d(volume.get(kind))
        if kind == "configMap":
            return configmap_payload(source, await self._get(CONFIGMAPS, namespace, str(source.get("name") or "")))
        if kind == "secret":
            return secret_payload(source, await self._get(SECRETS, namespace, str(source.get("secretName") or "")))
        if kind == "downwardAPI":
            allocatable = await self._allocatable() if needs_allocatable(source.get("items"), pod) else {}
            return downward_payload(source.get("items"), pod, source.get("defaultMode"), allocatable)
        objects: dict[tuple[str, str], Obj | None] = {}
        for what, name in projected.wanted_objects(source):
            objects[(what, name)] = await self._get(CONFIGMAPS if what == "configmap" else SECRETS, namespace, name)
        needs_nodes = any(needs_allocatable(d(s.get("downwardAPI")).get("items"), pod)
                          for s in projected.sources_of(source) if s.get("downwardAPI") is not None)
        token_sources = projected.token_sources(source)
        token_api = bool(token_sources) and await self.token_api_available()
        tokens = await self._tokens(pod, str(volume.get("name") or ""), token_sources, state) if token_api else {}
        return projected.projected_payload(source, pod, objects,
                                           allocatable=await self._allocatable() if needs_nodes else {},
                                           token_api=token_api, tokens=tokens)

    async def _tokens(self, pod: Obj, volume: str, sources: list[Obj], state: _PodVolumes) -> dict[str, bytes]:
        """Service account tokens for the pod (TokenRequest), renewed at 80 % of their life."""
        namespace = str(meta(pod).get("namespace") or "default")
        account = str(d(pod.get("spec")).get("serviceAccountName") or "default")
        tokens: dict[str, bytes] = {}
        for source in sources:
            path = str(source.get("path") or "")
            cached = state.tokens.get((volume, path))
            if cached is not None and time.time() < cached[1]:
                tokens[path] = cached[0]
                continue
            seconds = int(source.get("expirationSeconds") or 3600)
            body = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
                    "spec": {"audiences": [source["audience"]] if source.get("audience") else [],
                             "expirationSeconds": seconds,
                             "boundObjectRef": {"apiVersion": "v1", "kind": "Pod",
                                                "name": meta(pod).get("name"), "uid": meta(pod).get("uid")}}}
            try:
                answer = await self.client.create(SERVICEACCOUNTS, body, namespace, subresource="token",
                                                  name=account)
            except ApiError as exc:
                raise PayloadError(f"failed to fetch token: {exc.message}") from None
            token = str(d(answer.get("status")).get("token") or "").encode()
            state.tokens[(volume, path)] = (token, time.time() + 0.8 * seconds)
            tokens[path] = token
        return tokens

    # -- setup ---------------------------------------------------------------------------------

    async def setup(self, pod: Obj) -> dict[str, str]:
        uid = check_pod_uid(str(meta(pod).get("uid") or ""))
        volumes = [d(v) for v in lst(d(pod.get("spec")).get("volumes"))]
        state = self._pods.get(uid)
        if state is not None and all(str(v.get("name") or "") in state.paths for v in volumes):
            return dict(state.paths)
        async with self._lock(uid):
            state = self._pods.setdefault(uid, _PodVolumes())
            errors: list[VolumeError] = []
            for volume in volumes:
                name = str(volume.get("name") or "")
                if name in state.paths:
                    continue
                try:
                    state.paths[name] = await self._setup_one(pod, uid, volume, state)
                except VolumeError as exc:
                    errors.append(exc)
                except OSError as exc:
                    log.warning("pod %s: volume %s: %s", uid, name, exc)
                    errors.append(setup_failed(name, exc.strerror or str(exc)))
            if errors:
                first = errors[0]
                first.errors = errors
                raise first
            return dict(state.paths)

    async def _setup_one(self, pod: Obj, uid: str, volume: Obj, state: _PodVolumes) -> str:
        name = str(volume.get("name") or "")
        kind = _kind(volume)
        fs_group = pod_fs_group(pod) if self.root else None
        policy = pod_fs_group_policy(pod)
        if kind == "emptyDir":
            path = volume_dir(self.pods_dir, uid, EMPTY_DIR, name)
            fresh = not path.exists()
            try:
                info = setup_empty_dir(path, d(volume.get("emptyDir")), root=self.root)
            except EmptyDirError as exc:
                raise setup_failed(name, str(exc)) from None
            if info.size_limit is not None:
                state.size_limits[name] = info.size_limit
            if fs_group is not None and (fresh or info.tmpfs):
                set_volume_ownership(path, fs_group, policy=policy)
            return str(path)
        if kind == "hostPath":
            source = d(volume.get("hostPath"))
            path = str(source.get("path") or "")
            try:
                check_host_path(path, source.get("type"))
            except HostPathError as exc:
                raise setup_failed(name, str(exc)) from None
            return path
        if kind in PROJECTED_KINDS:
            path = volume_dir(self.pods_dir, uid, PLUGIN_OF[kind], name)
            try:
                payload = await self._payload(pod, volume, kind, state)
            except (PayloadError, DownwardAPIError, projected.ProjectedError) as exc:
                raise setup_failed(name, str(exc)) from None
            await asyncio.to_thread(self._materialize, path, kind, payload, fs_group, name)
            return str(path)
        if kind in ("persistentVolumeClaim", "ephemeral"):
            claim = await pvc.resolve_claim(self.client, pod, volume, self._node_obj)
            if claim.kind == "local" and fs_group is not None:
                await asyncio.to_thread(set_volume_ownership, claim.path, fs_group, readonly=claim.readonly,
                                        policy=policy)
            return claim.path
        raise VolumeError(FAILED_MOUNT, f'MountVolume.SetUp failed for volume "{name}" : volume type '
                                        f'{kind or "(none)"} is not supported by this node')

    def _materialize(self, path: Path, kind: str, payload: Payload, fs_group: int | None, name: str,
                     setting_up: bool = True) -> None:
        """Create the volume directory (a tmpfs for secret/downwardAPI/projected as root) and
        write ``payload`` atomically; a refresh (``setting_up`` False) only writes."""
        make_dir(path)
        if setting_up and self.root and kind != "configMap" and not mountutil.is_mount_point(path):
            mountutil.mount_tmpfs(path)
        if fs_group is not None:
            st = os.stat(path)
            os.chown(path, -1, fs_group)
            os.chmod(path, stat.S_IMODE(st.st_mode) | stat.S_ISGID | 0o550)
        try:
            AtomicWriter(path, fs_group=fs_group).write(payload)
        except ValueError as exc:
            raise setup_failed(name, str(exc)) from None

    # -- containers ----------------------------------------------------------------------------

    def mounts(self, pod: Obj, container: Obj, volumes: dict[str, str], env: dict[str, str]) -> list[Mount]:
        uid = check_pod_uid(str(meta(pod).get("uid") or ""))
        subpaths_dir = pod_dir(self.pods_dir, uid) / SUBPATHS_DIR if self.root else None
        return subpath.make_mounts(pod, container, volumes, env, readonly_volumes=readonly_volumes(pod),
                                   subpaths_dir=subpaths_dir)

    def size_limits(self, pod_uid: str) -> dict[str, int]:
        """emptyDir sizeLimits of a pod (bytes), as set up (eviction.py enforces them)."""
        state = self._pods.get(pod_uid)
        return dict(state.size_limits) if state is not None else {}

    def empty_dirs(self, pod: Obj) -> list[EmptyDirVolume]:
        """The pod's emptyDir volumes from its spec, each with its directory on this node (it may
        not exist yet) and medium; read from the spec and the on-disk
        layout, so it holds for pods adopted after a restart too.  Bad names are left out."""
        uid = check_pod_uid(str(meta(pod).get("uid") or ""))
        out = []
        for volume in lst(d(pod.get("spec")).get("volumes")):
            volume = d(volume)
            source = volume.get("emptyDir")
            if source is None:
                continue
            name = str(volume.get("name") or "")
            try:
                path = volume_dir(self.pods_dir, uid, EMPTY_DIR, name)
            except ValueError:
                continue
            out.append(EmptyDirVolume(name, path, str(d(source).get("medium") or "")))
        return out

    # -- running pods --------------------------------------------------------------------------

    async def refresh(self, pod: Obj) -> None:
        uid = check_pod_uid(str(meta(pod).get("uid") or ""))
        state = self._pods.get(uid)
        if state is None:
            return
        fs_group = pod_fs_group(pod) if self.root else None
        async with self._lock(uid):
            for volume in lst(d(pod.get("spec")).get("volumes")):
                volume = d(volume)
                name = str(volume.get("name") or "")
                kind = _kind(volume)
                if kind not in PROJECTED_KINDS or name not in state.paths:
                    continue
                try:
                    payload = await self._payload(pod, volume, kind, state)
                    path = Path(state.paths[name])
                    await asyncio.to_thread(self._materialize, path, kind, payload, fs_group, name, False)
                except (PayloadError, DownwardAPIError, projected.ProjectedError, VolumeError,
                        ApiError, ConnectionFailed, OSError) as exc:
                    log.warning("pod %s/%s: refreshing volume %s failed (old contents kept): %s",
                                meta(pod).get("namespace"), meta(pod).get("name"), name, exc)

    # -- after the pod ----------------------------------------------------------------------

    async def teardown(self, pod_uid: str) -> None:
        uid = check_pod_uid(pod_uid)
        async with self._lock(uid):
            await asyncio.to_thread(self._remove_pod_dirs, uid)
            self._pods.pop(uid, None)
        self._locks.pop(uid, None)

    def _remove_pod_dirs(self, uid: str) -> None:
        directory = pod_dir(self.pods_dir, uid)
        if not directory.exists():
            return
        if self.root:
            mountutil.unmount_all_under(directory)
        left = mountutil.mounts_under(directory)
        if left:  # never delete through a mount
            raise OSError(f"pod {uid}: mounts remain under {directory}: {', '.join(left)}")
        for sub in (VOLUMES_DIR, SUBPATHS_DIR):
            target = directory / sub
            if target.is_dir() and not target.is_symlink():
                shutil.rmtree(target)
        with contextlib.suppress(OSError):
            directory.rmdir()  # only when empty: other parts of the agent keep files there too

    def pod_uids_on_disk(self) -> set[str]:
        try:
            entries = os.listdir(self.pods_dir)
        except FileNotFoundError:
            return set()
        uids = set()
        for name in entries:
            try:
                check_pod_uid(name)
            except ValueError:
                continue
            if (self.pods_dir / name).is_dir():
                uids.add(name)
        return uids
