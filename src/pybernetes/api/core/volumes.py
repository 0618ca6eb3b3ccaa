"""core/v1 persistentvolumes (cluster-scoped) and persistentvolumeclaims, both with
status: defaults (reclaim policy, volume mode, phase Pending), validation, the fields an
update may change, and the CAPACITY / ACCESS MODES tables."""

from __future__ import annotations

import copy
import time
from typing import Any

from pybernetes.api.fieldcheck import as_dict, as_list, as_str, check_enum, one_of, parse_quantity_at
from pybernetes.api.pod_defaults import default_pvc_spec
from pybernetes.api.printing import CORE_AGE, age, format_time
from pybernetes.api.resource import ResourceDef, status_of
from pybernetes.api.strategy import Column, Strategy
from pybernetes.machinery import validation as mv
from pybernetes.machinery.errors import (
    FieldError,
    forbidden_field,
    immutable,
    invalid_value,
    not_supported,
    required,
)

Obj = dict[str, Any]

ACCESS_MODES = ("ReadOnlyMany", "ReadWriteMany", "ReadWriteOnce", "ReadWriteOncePod")
_MODE_ABBREVIATIONS = (("ReadWriteOnce", "RWO"), ("ReadOnlyMany", "ROX"), ("ReadWriteMany", "RWX"),
                       ("ReadWriteOncePod", "RWOP"))
RECLAIM_POLICIES = ("Delete", "Recycle", "Retain")
VOLUME_MODES = ("Block", "Filesystem")
PV_SOURCES = (
    "gcePersistentDisk", "awsElasticBlockStore", "hostPath", "glusterfs", "nfs", "rbd", "iscsi",
    "cinder", "cephfs", "fc", "flocker", "flexVolume", "azureFile", "vsphereVolume", "quobyte",
    "azureDisk", "photonPersistentDisk", "portworxVolume", "scaleIO", "local", "storageos", "csi",
)
STORAGE_CLASS_ANNOTATION = "volume.beta.kubernetes.io/storage-class"
def _d(value: Any) -> Obj:
    return value if isinstance(value, dict) else {}


def access_modes_text(modes: Any) -> str:
    modes = modes if isinstance(modes, list) else []
    return ",".join(short for mode, short in _MODE_ABBREVIATIONS if mode in modes)


def _storage_class(obj: Obj) -> str:
    annotations = _d(_d(obj.get("metadata")).get("annotations"))
    if STORAGE_CLASS_ANNOTATION in annotations:
        return str(annotations[STORAGE_CLASS_ANNOTATION])
    return str(_d(obj.get("spec")).get("storageClassName") or "")


def _validate_access_modes(value: Any, path: str, errs: list[FieldError], detail: str = "") -> None:
    modes = as_list(value, path, errs)
    if not modes:
        errs.append(required(path, detail))
    for mode in modes:
        if mode not in ACCESS_MODES:
            errs.append(not_supported(path, mode, ACCESS_MODES))
    if "ReadWriteOncePod" in modes and len(modes) > 1:
        errs.append(forbidden_field(path, "may not use ReadWriteOncePod with other access modes"))


def _check_storage_size(value: Any, path: str, errs: list[FieldError]) -> None:
    amount = parse_quantity_at(value, path, errs)
    if amount is not None and amount <= 0:
        errs.append(invalid_value(path, str(value), "must be greater than zero"))


def _check_storage_class_name(spec: Obj, errs: list[FieldError]) -> None:
    storage_class = as_str(spec.get("storageClassName"), "spec.storageClassName", errs)
    if storage_class:
        errs.extend(invalid_value("spec.storageClassName", storage_class, m)
                    for m in mv.is_dns1123_subdomain(storage_class))


def _phase_transition(new: Obj, old: Obj | None) -> None:
    status = new.get("status")
    if not isinstance(status, dict):
        return
    old_phase = _d((old or {}).get("status")).get("phase")
    if old is None or status.get("phase") != old_phase:
        status["lastPhaseTransitionTime"] = format_time(time.time())


class PersistentVolumeStrategy(Strategy):
    has_generation = False

    @staticmethod
    def name_rule(name: str) -> list[str]:
        return []  # upstream allows any path-segment name for PVs

    def default(self, obj: Obj) -> None:
        spec = obj.get("spec")
        if isinstance(spec, dict):
            if not spec.get("persistentVolumeReclaimPolicy"):
                spec["persistentVolumeReclaimPolicy"] = "Retain"
            if not spec.get("volumeMode"):
                spec["volumeMode"] = "Filesystem"
            if isinstance(spec.get("hostPath"), dict):
                spec["hostPath"].setdefault("type", "")

    def prepare_for_create(self, obj: Obj) -> None:
        obj["status"] = {"phase": "Pending"}
        _phase_transition(obj, None)

    def validate(self, obj: Obj) -> list[FieldError]:
        errs: list[FieldError] = []
        spec = as_dict(obj.get("spec"), "spec", errs)
        capacity = as_dict(spec.get("capacity"), "spec.capacity", errs)
        if not capacity:
            errs.append(required("spec.capacity"))
        elif set(capacity) != {"storage"}:
            errs.append(not_supported("spec.capacity", capacity, ("storage",)))
        else:
            _check_storage_size(capacity["storage"], "spec.capacity[storage]", errs)
        _validate_access_modes(spec.get("accessModes"), "spec.accessModes", errs)
        check_enum(spec.get("persistentVolumeReclaimPolicy"), "spec.persistentVolumeReclaimPolicy",
                   RECLAIM_POLICIES, errs)
        check_enum(spec.get("volumeMode"), "spec.volumeMode", VOLUME_MODES, errs)
        kind = one_of(spec, PV_SOURCES, "spec", "volume", errs)
        if kind is not None:
            source = as_dict(spec.get(kind), f"spec.{kind}", errs)
            if kind in ("hostPath", "local") and not as_str(source.get("path"), f"spec.{kind}.path", errs):
                errs.append(required(f"spec.{kind}.path"))
            if kind == "local" and spec.get("nodeAffinity") is None:
                errs.append(required("spec.nodeAffinity", "Local volume requires node affinity"))
            if kind == "csi":
                if not source.get("driver"):
                    errs.append(required("spec.csi.driver"))
                if not source.get("volumeHandle"):
                    errs.append(required("spec.csi.volumeHandle"))
            if kind == "nfs":
                if not source.get("server"):
                    errs.append(required("spec.nfs.server"))
                if not source.get("path"):
                    errs.append(required("spec.nfs.path"))
        _check_storage_class_name(spec, errs)
        return errs

    def validate_update(self, new: Obj, old: Obj) -> list[FieldError]:
        errs: list[FieldError] = []
        new_spec, old_spec = _d(new.get("spec")), _d(old.get("spec"))
        if {k: new_spec.get(k) for k in PV_SOURCES} != {k: old_spec.get(k) for k in PV_SOURCES}:
            errs.append(forbidden_field("spec.persistentvolumesource",
                                        "spec.persistentvolumesource is immutable after creation"))
        if new_spec.get("volumeMode") != old_spec.get("volumeMode"):
            errs.append(immutable("spec.volumeMode", new_spec.get("volumeMode")))
        if old_spec.get("nodeAffinity") is not None and new_spec.get("nodeAffinity") != old_spec.get("nodeAffinity"):
            errs.append(forbidden_field("spec.nodeAffinity", "field is immutable once set"))
        return errs

    def prepare_for_status_update(self, new: Obj, old: Obj) -> None:
        super().prepare_for_status_update(new, old)
        _phase_transition(new, old)

    def validate_status_update(self, new: Obj, old: Obj) -> list[FieldError]:
        phase = _d(new.get("status")).get("phase")
        if phase not in (None, "", "Pending", "Available", "Bound", "Released", "Failed"):
            return [not_supported("status.phase", phase, ("Available", "Bound", "Failed", "Pending", "Released"))]
        return []

    def columns(self) -> list[Column]:
        return [
            Column("Capacity", description="capacity is the description of the persistent volume's resources "
                   "and capacity."),
            Column("Access Modes", description="accessModes contains all ways the volume can be mounted."),
            Column("Reclaim Policy", description="persistentVolumeReclaimPolicy defines what happens to a "
                   "persistent volume when released from its claim."),
            Column("Status", description="phase indicates if a volume is available, bound to a claim, or "
                   "released by a claim."),
            Column("Claim", description="claimRef is part of a bi-directional binding between "
                   "PersistentVolume and PersistentVolumeClaim."),
            Column("StorageClass", description="storageClassName is the name of StorageClass to which this "
                   "persistent volume belongs."),
            Column("VolumeAttributesClass", description="Name of VolumeAttributesClass to which this "
                   "persistent volume belongs."),
            Column("Reason", description="reason is a brief CamelCase string that describes any failure."),
            CORE_AGE,
            Column("VolumeMode", priority=1, description="volumeMode defines if a volume is intended to be "
                   "used with a formatted filesystem or to remain in raw block state."),
        ]

    def cells(self, obj: Obj, now: float) -> list[Any]:
        spec, status, meta = _d(obj.get("spec")), _d(obj.get("status")), _d(obj.get("metadata"))
        claim = ""
        if isinstance(spec.get("claimRef"), dict):
            claim = f"{spec['claimRef'].get('namespace', '')}/{spec['claimRef'].get('name', '')}"
        phase = "Terminating" if meta.get("deletionTimestamp") else str(status.get("phase") or "")
        return [
            str(_d(spec.get("capacity")).get("storage", "0")),
            access_modes_text(spec.get("accessModes")),
            str(spec.get("persistentVolumeReclaimPolicy") or ""),
            phase,
            claim,
            _storage_class(obj),
            spec.get("volumeAttributesClassName") or "<unset>",
            str(status.get("reason") or ""),
            age(obj, now),
            spec.get("volumeMode") or "<unset>",
        ]


class PersistentVolumeClaimStrategy(Strategy):
    has_generation = False

    def default(self, obj: Obj) -> None:
        if isinstance(obj.get("spec"), dict):
            default_pvc_spec(obj["spec"])

    def prepare_for_create(self, obj: Obj) -> None:
        obj["status"] = {"phase": "Pending"}

    def validate(self, obj: Obj) -> list[FieldError]:
        errs: list[FieldError] = []
        spec = as_dict(obj.get("spec"), "spec", errs)
        _validate_access_modes(spec.get("accessModes"), "spec.accessModes", errs,
                               "at least 1 access mode is required")
        requests = as_dict(_d(spec.get("resources")).get("requests"), "spec.resources.requests", errs)
        if "storage" not in requests:
            errs.append(required("spec.resources[storage]"))
        else:
            _check_storage_size(requests["storage"], "spec.resources[storage]", errs)
        check_enum(spec.get("volumeMode"), "spec.volumeMode", VOLUME_MODES, errs)
        _check_storage_class_name(spec, errs)
        if spec.get("selector") is not None:
            errs.extend(mv.validate_label_selector(spec.get("selector"), "spec.selector"))
        return errs

    def validate_update(self, new: Obj, old: Obj) -> list[FieldError]:
        new_spec, old_spec = copy.deepcopy(_d(new.get("spec"))), copy.deepcopy(_d(old.get("spec")))
        errs: list[FieldError] = []
        new_requests = _d(_d(new_spec.get("resources")).get("requests"))
        old_requests = _d(_d(old_spec.get("resources")).get("requests"))
        resized = new_requests != old_requests
        if resized and old_spec.get("volumeName") and "storage" in new_requests and "storage" in old_requests:
            errs_q: list[FieldError] = []
            new_size = parse_quantity_at(new_requests["storage"], "spec.resources.requests.storage", errs_q)
            old_size = parse_quantity_at(old_requests["storage"], "spec.resources.requests.storage", errs_q)
            if new_size is not None and old_size is not None and new_size < old_size:
                errs.append(forbidden_field("spec.resources.requests.storage",
                                            "field can not be less than previous value"))
        # Binding fills volumeName and storageClassName once; requests may change when bound.
        if not old_spec.get("volumeName"):
            if new_spec.get("volumeName") is None:  # still unbound: nothing to compare
                new_spec.pop("volumeName", None)
                old_spec.pop("volumeName", None)
            else:
                old_spec["volumeName"] = new_spec["volumeName"]
        if old_spec.get("storageClassName") is None:
            old_spec["storageClassName"] = new_spec.get("storageClassName")
            if new_spec.get("storageClassName") is None:
                new_spec.pop("storageClassName", None)
                old_spec.pop("storageClassName", None)
        if old_spec.get("volumeName"):
            for spec in (new_spec, old_spec):
                if isinstance(spec.get("resources"), dict):
                    spec["resources"] = {k: v for k, v in spec["resources"].items() if k != "requests"}
        if new_spec != old_spec:
            errs.append(forbidden_field("spec", "spec is immutable after creation except resources.requests "
                                                "and volumeAttributesClassName for bound claims"))
        return errs

    def columns(self) -> list[Column]:
        return [
            Column("Status", description="phase represents the current phase of PersistentVolumeClaim."),
            Column("Volume", description="volumeName is the binding reference to the PersistentVolume "
                   "backing this claim."),
            Column("Capacity", description="capacity represents the actual resources of the underlying volume."),
            Column("Access Modes", description="accessModes contains the actual access modes the volume "
                   "backing the PVC has."),
            Column("StorageClass", description="storageClassName is the name of the StorageClass required by "
                   "the claim."),
            Column("VolumeAttributesClass", description="volumeAttributesClassName may be used to set the "
                   "VolumeAttributesClass used by this claim."),
            CORE_AGE,
            Column("VolumeMode", priority=1, description="volumeMode defines what type of volume is required "
                   "by the claim."),
        ]

    def cells(self, obj: Obj, now: float) -> list[Any]:
        spec, status, meta = _d(obj.get("spec")), _d(obj.get("status")), _d(obj.get("metadata"))
        phase = "Terminating" if meta.get("deletionTimestamp") else str(status.get("phase") or "")
        capacity = modes = ""
        if spec.get("volumeName"):
            modes = access_modes_text(status.get("accessModes"))
            capacity = str(_d(status.get("capacity")).get("storage", "0"))
        return [
            phase,
            str(spec.get("volumeName") or ""),
            capacity,
            modes,
            _storage_class(obj),
            spec.get("volumeAttributesClassName") or "<unset>",
            age(obj, now),
            spec.get("volumeMode") or "<unset>",
        ]


PERSISTENTVOLUMES = ResourceDef(
    group="", version="v1", resource="persistentvolumes", kind="PersistentVolume",
    singular="persistentvolume", namespaced=False, strategy=PersistentVolumeStrategy(),
    short_names=("pv",), subresources=(status_of("PersistentVolume"),),
)
PERSISTENTVOLUMECLAIMS = ResourceDef(
    group="", version="v1", resource="persistentvolumeclaims", kind="PersistentVolumeClaim",
    singular="persistentvolumeclaim", namespaced=True, strategy=PersistentVolumeClaimStrategy(),
    short_names=("pvc",), subresources=(status_of("PersistentVolumeClaim"),),
)
