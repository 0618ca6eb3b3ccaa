"""persistentVolumeClaim (and generic ephemeral) volumes: the claim's bound PersistentVolume
resolved to a path on this node.

The claim must exist, not be being deleted, and be Bound to a PV whose claimRef names it; the
PV must be a ``hostPath`` (type-checked like a hostPath volume) or a ``local`` volume (its path
must exist) whose node affinity admits this node.  Anything else is a FailedMount error:

- ``persistentvolumeclaim "x" not found`` / ``... is being deleted`` / ``... is not bound``;
- ``persistentvolume "pv" not found``;
- ``MountVolume.NodeAffinity check failed for volume "pv" : no matching NodeSelectorTerms``;
- ``MountVolume.NewMounter initialization failed for volume "pv" : path "/p" does not exist``;
- ``MountVolume.SetUp failed for volume "pv" : hostPath type check failed: ...``.

``readOnly`` comes from the pod's claim source.  A generic ephemeral volume's claim is
``<pod name>-<volume name>`` and must be owned by the pod.  Volumes provisioned by the
local-path provisioner are made (mode 0777, so any container user can write) when missing.
"""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from pybernetes.client.errors import NotFound
from pybernetes.client.rest import RestClient
from pybernetes.kubelet.volumes.common import FAILED_MOUNT, Obj, VolumeError, d, lst, meta, setup_failed
from pybernetes.kubelet.volumes.hostpath import HostPathError, check_host_path
from pybernetes.kubelet.volumes.localpath import PROVISIONED_BY, PROVISIONER_NAME
from pybernetes.machinery.nodeaffinity import NodeSelector

PVCS = ("", "v1", "persistentvolumeclaims")
PVS = ("", "v1", "persistentvolumes")


@dataclass(frozen=True, slots=True)
class ClaimVolume:
    path: str
    readonly: bool
    pv_name: str
    kind: str  # "hostPath" | "local"


def _failed(message: str) -> VolumeError:
    return VolumeError(FAILED_MOUNT, message)


def claim_name_of(pod: Obj, volume: Obj) -> tuple[str, bool]:
    """(claim name, readOnly) of a persistentVolumeClaim or ephemeral volume."""
    if volume.get("persistentVolumeClaim") is not None:
        source = d(volume["persistentVolumeClaim"])
        return str(source.get("claimName") or ""), source.get("readOnly") is True
    return f"{meta(pod).get('name') or ''}-{volume.get('name') or ''}", False


def _check_claim(pod: Obj, volume: Obj, claim: Obj, name: str) -> str:
    """The claim's PV name, or VolumeError."""
    if volume.get("ephemeral") is not None:
        owners = [o for o in lst(meta(claim).get("ownerReferences")) if d(o).get("controller") is True]
        if not owners or d(owners[0]).get("uid") != meta(pod).get("uid"):
            raise _failed(f"PVC {meta(pod).get('namespace')}/{name} was not created for pod "
                          f"{meta(pod).get('namespace')}/{meta(pod).get('name')} (pod is not owner)")
    if meta(claim).get("deletionTimestamp"):
        raise _failed(f'persistentvolumeclaim "{name}" is being deleted')
    pv_name = str(d(claim.get("spec")).get("volumeName") or "")
    if d(claim.get("status")).get("phase") != "Bound" or not pv_name:
        raise _failed(f'persistentvolumeclaim "{name}" is not bound')
    return pv_name


def resolve_pv(pv: Obj, claim: Obj, node: Obj | None, readonly: bool) -> ClaimVolume:
    """The host path of ``pv`` for ``claim`` on ``node`` (pure but for the file checks)."""
    name = str(meta(pv).get("name") or "")
    ref = d(d(pv.get("spec")).get("claimRef"))
    if ref.get("uid") and ref.get("uid") != meta(claim).get("uid"):
        raise _failed(f"found PV object {name} but it has a ClaimRef that points to PVC "
                      f"{ref.get('namespace')}/{ref.get('name')}, not {meta(claim).get('namespace')}/"
                      f"{meta(claim).get('name')}")
    spec = d(pv.get("spec"))
    required = d(d(spec.get("nodeAffinity")).get("required"))
    if required and node is not None and not NodeSelector.lenient(required).matches_node(node):
        raise _failed(f'MountVolume.NodeAffinity check failed for volume "{name}" : '
                      "no matching NodeSelectorTerms")
    if spec.get("hostPath") is not None:
        source = d(spec["hostPath"])
        path = str(source.get("path") or "")
        if d(meta(pv).get("annotations")).get(PROVISIONED_BY) == PROVISIONER_NAME and not os.path.exists(path):
            try:
                os.makedirs(path, exist_ok=True)
                os.chmod(path, 0o777)
            except OSError as exc:
                raise setup_failed(name, f"mkdir {path}: {exc.strerror}") from None
        try:
            check_host_path(path, source.get("type"))
        except HostPathError as exc:
            raise setup_failed(name, str(exc)) from None
        return ClaimVolume(path, readonly, name, "hostPath")
    if spec.get("local") is not None:
        path = str(d(spec["local"]).get("path") or "")
        if not os.path.exists(path):
            raise _failed(f'MountVolume.NewMounter initialization failed for volume "{name}" : '
                          f'path "{path}" does not exist')
        return ClaimVolume(path, readonly, name, "local")
    kinds = [k for k in spec if k not in ("capacity", "accessModes", "claimRef", "persistentVolumeReclaimPolicy",
                                          "storageClassName", "mountOptions", "volumeMode", "nodeAffinity",
                                          "volumeAttributesClassName")]
    raise setup_failed(name, f"volume plugin {kinds[0] if kinds else 'of this volume'} is not supported by "
                             "this node (hostPath and local PersistentVolumes are)")


async def resolve_claim(client: RestClient, pod: Obj, volume: Obj,
                        node: Callable[[], Awaitable[Obj | None]]) -> ClaimVolume:
    namespace = str(meta(pod).get("namespace") or "default")
    name, readonly = claim_name_of(pod, volume)
    try:
        claim = await client.get(PVCS, name, namespace)
    except NotFound:
        raise _failed(f'persistentvolumeclaim "{name}" not found') from None
    pv_name = _check_claim(pod, volume, claim, name)
    try:
        pv = await client.get(PVS, pv_name)
    except NotFound:
        raise _failed(f'persistentvolume "{pv_name}" not found') from None
    node_obj = await node() if d(d(pv.get("spec")).get("nodeAffinity")).get("required") else None
    return resolve_pv(pv, claim, node_obj, readonly)
