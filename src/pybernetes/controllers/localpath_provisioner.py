"""The local-path provisioner ("local-path-provisioner"): so that a PersistentVolumeClaim just
works on a fresh cluster, a default StorageClass whose volumes are directories on the node
the claim's first pod runs on (as k3s' local-path-provisioner; the node's half, deleting
released data, is kubelet/volumes/localpath.py).

- The StorageClass ``local-path`` (provisioner ``pybernetes.io/local-path``, volumeBindingMode
  WaitForFirstConsumer, reclaimPolicy Delete) is created when the controller starts and it is
  missing, marked default (``storageclass.kubernetes.io/is-default-class: "true"``) unless
  another default class exists.  It is never changed or re-created while running, so users may
  edit or delete it.  Option ``local_path_storage_class`` False: no class is created.
- A claim is provisioned when its class's provisioner is ``pybernetes.io/local-path``, the PV
  binder handed it to that provisioner (``volume.kubernetes.io/storage-provisioner``), the
  scheduler chose its node (``volume.kubernetes.io/selected-node``) and it is not bound.  The PV
  ``pvc-<claim uid>``: a hostPath (DirectoryOrCreate) at
  ``<storage dir>/pvc-<claim uid>_<namespace>_<name>`` — the controller cannot know a node's data
  directory, so the directory is the option ``local_path_dir`` (default
  ``/var/lib/pybernetes/storage``), recorded in each PV's path — pinned by node affinity to the
  node's ``kubernetes.io/hostname``, with the claim's request as capacity, its access modes, the
  class's reclaim policy and mount options, a claimRef (the binder then binds both sides), and
  the annotations ``pv.kubernetes.io/provisioned-by`` and ``pybernetes.io/local-path-node``.
- Events on the claim, as upstream's external provisioners record them: Provisioning,
  ProvisioningSucceeded, ProvisioningFailed (Block volumes, a missing node or request).
"""

from __future__ import annotations

import logging
from typing import Any, ClassVar

from pybernetes.client.cache import object_of
from pybernetes.client.errors import AlreadyExists
from pybernetes.controllers.base import Controller, Obj, RetryLater, key_of
from pybernetes.machinery.volumematch import claim_storage_class

log = logging.getLogger(__name__)

PVS = "/v1/persistentvolumes"
PVCS = "/v1/persistentvolumeclaims"
NODES = "/v1/nodes"
CLASSES = "storage.k8s.io/v1/storageclasses"

PROVISIONER_NAME = "pybernetes.io/local-path"
CLASS_NAME = "local-path"
DEFAULT_DIR = "/var/lib/pybernetes/storage"
PROVISIONED_BY = "pv.kubernetes.io/provisioned-by"
NODE_ANNOTATION = "pybernetes.io/local-path-node"
SELECTED_NODE = "volume.kubernetes.io/selected-node"
STORAGE_PROVISIONER = "volume.kubernetes.io/storage-provisioner"
BETA_STORAGE_PROVISIONER = "volume.beta.kubernetes.io/storage-provisioner"
DEFAULT_CLASS = "storageclass.kubernetes.io/is-default-class"
BETA_DEFAULT_CLASS = "storageclass.beta.kubernetes.io/is-default-class"
HOSTNAME_LABEL = "kubernetes.io/hostname"
CLASS_KEY = "storageclass:" + CLASS_NAME


def _d(value: Any) -> Obj:
    return value if isinstance(value, dict) else {}


def _annotations(obj: Obj) -> Obj:
    return _d(_d(obj.get("metadata")).get("annotations"))


def is_default(storage_class: Obj) -> bool:
    notes = _annotations(storage_class)
    return any(str(notes.get(a, "")).lower() == "true" for a in (DEFAULT_CLASS, BETA_DEFAULT_CLASS))


def storage_class_object(default: bool) -> Obj:
    meta: Obj = {"name": CLASS_NAME}
    if default:
        meta["annotations"] = {DEFAULT_CLASS: "true"}
    return {"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass", "metadata": meta,
            "provisioner": PROVISIONER_NAME, "reclaimPolicy": "Delete",
            "volumeBindingMode": "WaitForFirstConsumer"}


def volume_dir_name(namespace: str, name: str, uid: str) -> str:
    return f"pvc-{uid}_{namespace}_{name}"


def handed_to_us(claim: Obj) -> bool:
    notes = _annotations(claim)
    return PROVISIONER_NAME in (notes.get(STORAGE_PROVISIONER), notes.get(BETA_STORAGE_PROVISIONER))


def volume_for(claim: Obj, storage_class: Obj, node: Obj, storage_dir: str) -> Obj:
    """The PersistentVolume for ``claim`` on ``node`` (pure)."""
    meta = _d(claim.get("metadata"))
    spec = _d(claim.get("spec"))
    namespace, name, uid = str(meta.get("namespace") or ""), str(meta.get("name") or ""), str(meta.get("uid") or "")
    node_meta = _d(node.get("metadata"))
    hostname = _d(node_meta.get("labels")).get(HOSTNAME_LABEL) or node_meta.get("name")
    path = storage_dir.rstrip("/") + "/" + volume_dir_name(namespace, name, uid)
    pv_spec: Obj = {
        "capacity": {"storage": _d(_d(spec.get("resources")).get("requests"))["storage"]},
        "accessModes": list(spec.get("accessModes") or ["ReadWriteOnce"]),
        "persistentVolumeReclaimPolicy": storage_class.get("reclaimPolicy") or "Delete",
        "storageClassName": _d(storage_class.get("metadata")).get("name"),
        "volumeMode": "Filesystem",
        "hostPath": {"path": path, "type": "DirectoryOrCreate"},
        "nodeAffinity": {"required": {"nodeSelectorTerms": [{"matchExpressions": [
            {"key": HOSTNAME_LABEL, "operator": "In", "values": [hostname]}]}]}},
        "claimRef": {"kind": "PersistentVolumeClaim", "apiVersion": "v1", "namespace": namespace,
                     "name": name, "uid": uid, "resourceVersion": meta.get("resourceVersion") or ""},
    }
    if storage_class.get("mountOptions"):
        pv_spec["mountOptions"] = list(storage_class["mountOptions"])
    if not pv_spec["claimRef"]["resourceVersion"]:
        del pv_spec["claimRef"]["resourceVersion"]
    return {"apiVersion": "v1", "kind": "PersistentVolume",
            "metadata": {"name": f"pvc-{uid}",
                         "annotations": {PROVISIONED_BY: PROVISIONER_NAME,
                                         NODE_ANNOTATION: str(node_meta.get("name") or "")}},
            "spec": pv_spec}


class LocalPathProvisioner(Controller):
    name: ClassVar[str] = "local-path-provisioner"
    component: ClassVar[str] = PROVISIONER_NAME
    default_workers: ClassVar[int] = 2

    def setup(self) -> None:
        self.storage_dir = str(self.options.get("local_path_dir") or DEFAULT_DIR)
        self.make_class = self.options.get("local_path_storage_class", True) is not False
        self.claims = self.informer(PVCS)
        self.volumes = self.informer(PVS)
        self.classes = self.informer(CLASSES)
        self.nodes = self.informer(NODES)
        self.claims.add_event_handler(self._claim_changed, lambda old, new: self._claim_changed(new))
        self.volumes.add_event_handler(None, None, self._volume_deleted)
        self._failed_once: set[str] = set()  # claim uids given a ProvisioningFailed event
        if self.make_class:
            self.queue.add(CLASS_KEY)

    def _claim_changed(self, claim: Obj) -> None:
        if handed_to_us(claim) and not _d(claim.get("spec")).get("volumeName"):
            self.enqueue(claim)

    def _volume_deleted(self, item: Any) -> None:
        pv = object_of(item)
        ref = _d(_d(pv.get("spec")).get("claimRef"))
        if _annotations(pv).get(PROVISIONED_BY) == PROVISIONER_NAME and ref.get("name"):
            self.queue.add(f"{ref.get('namespace') or ''}/{ref['name']}")

    async def sync(self, key: str) -> None:
        if key == CLASS_KEY:
            await self._ensure_class()
            return
        claim = self.claims.indexer.get(key)
        if claim is None:
            return
        await self._provision(claim)

    async def _ensure_class(self) -> None:
        if self.classes.indexer.get(CLASS_NAME) is not None:
            return
        default = not any(is_default(c) for c in self.classes.indexer.list())
        try:
            await self.client.create(CLASSES, storage_class_object(default))
            log.info("local-path-provisioner: created StorageClass %s (default: %s)", CLASS_NAME, default)
        except AlreadyExists:
            pass

    def _fail(self, claim: Obj, message: str) -> None:
        uid = str(_d(claim.get("metadata")).get("uid") or "")
        if uid not in self._failed_once:
            self._failed_once.add(uid)
            self.recorder.event(claim, "Warning", "ProvisioningFailed", message)

    async def _provision(self, claim: Obj) -> None:
        meta = _d(claim.get("metadata"))
        spec = _d(claim.get("spec"))
        if meta.get("deletionTimestamp") or spec.get("volumeName") or not handed_to_us(claim):
            return
        node_name = _annotations(claim).get(SELECTED_NODE)
        class_name = claim_storage_class(claim)
        storage_class = self.classes.indexer.get(class_name) if class_name else None
        if not node_name or storage_class is None or storage_class.get("provisioner") != PROVISIONER_NAME:
            return
        pv_name = f"pvc-{meta.get('uid')}"
        if self.volumes.indexer.get(pv_name) is not None:
            return
        if spec.get("volumeMode") == "Block":
            self._fail(claim, f"failed to provision volume with StorageClass {class_name!r}: "
                              "local-path volumes support only volumeMode Filesystem")
            return
        if not _d(_d(spec.get("resources")).get("requests")).get("storage"):
            self._fail(claim, f"failed to provision volume with StorageClass {class_name!r}: "
                              "the claim requests no storage")
            return
        node = self.nodes.indexer.get(node_name)
        if node is None:
            self._fail(claim, f"failed to provision volume with StorageClass {class_name!r}: "
                              f'node "{node_name}" not found')
            raise RetryLater(f"node {node_name} of claim {key_of(claim)} not in the cache")
        pv = volume_for(claim, storage_class, node, self.storage_dir)
        self.recorder.event(claim, "Normal", "Provisioning",
                            f'External provisioner is provisioning volume for claim "{key_of(claim)}"')
        try:
            await self.client.create(PVS, pv)
        except AlreadyExists:
            return
        self._failed_once.discard(str(meta.get("uid") or ""))
        log.info("local-path-provisioner: provisioned %s for claim %s on node %s at %s", pv_name,
                 key_of(claim), node_name, pv["spec"]["hostPath"]["path"])
        self.recorder.event(claim, "Normal", "ProvisioningSucceeded",
                            f"Successfully provisioned volume {pv_name}")
