"""The storage.k8s.io/v1 API group (storageclasses): reclaimPolicy Delete and
volumeBindingMode Immediate by default, provisioner required, and provisioner, parameters,
reclaimPolicy and volumeBindingMode fixed once created.  The table's NAME cell carries
`` (default)`` for the default class (see ``name_cell``)."""

from __future__ import annotations

from typing import Any

from pybernetes.api.groupcommon import AGE, check_immutable
from pybernetes.api.printing import age
from pybernetes.api.resource import ResourceDef
from pybernetes.api.strategy import Column, Strategy
from pybernetes.machinery.errors import FieldError, forbidden_field, invalid_value, not_supported, required
from pybernetes.machinery.validation import is_qualified_name

Obj = dict[str, Any]

MAX_PARAMETERS = 512
MAX_PARAMETERS_SIZE = 256 * 1024
DEFAULT_ANNOTATIONS = ("storageclass.kubernetes.io/is-default-class",
                       "storageclass.beta.kubernetes.io/is-default-class")


def is_default_class(obj: Obj) -> bool:
    annotations = (obj.get("metadata") or {}).get("annotations") or {}
    return any(annotations.get(key) == "true" for key in DEFAULT_ANNOTATIONS)


class StorageClassStrategy(Strategy):
    status_fields = ()
    has_generation = False

    def default(self, obj: Obj) -> None:
        if not obj.get("reclaimPolicy"):
            obj["reclaimPolicy"] = "Delete"
        if not obj.get("volumeBindingMode"):
            obj["volumeBindingMode"] = "Immediate"

    def validate(self, obj: Obj) -> list[FieldError]:
        errs: list[FieldError] = []
        provisioner = obj.get("provisioner")
        if not provisioner:
            errs.append(required("provisioner"))
        elif not isinstance(provisioner, str):
            errs.append(invalid_value("provisioner", provisioner, "must be a string"))
        else:
            errs.extend(invalid_value("provisioner", provisioner, m) for m in is_qualified_name(provisioner.lower()))
        params = obj.get("parameters")
        if params is not None:
            if not isinstance(params, dict):
                errs.append(invalid_value("parameters", params, "must be a map of strings"))
            else:
                if len(params) > MAX_PARAMETERS:
                    errs.append(FieldError("FieldValueTooLong", "parameters",
                                           f"Provisioner Parameters exceeded max allowed: may not be more than "
                                           f"{MAX_PARAMETERS} bytes"))
                size = 0
                for key, value in params.items():
                    if not key:
                        errs.append(invalid_value("parameters", key, "field can not be empty."))
                    size += len(key) + len(str(value))
                if size > MAX_PARAMETERS_SIZE:
                    errs.append(FieldError("FieldValueTooLong", "parameters",
                                           f"may not be more than {MAX_PARAMETERS_SIZE} bytes"))
        policy = obj.get("reclaimPolicy")
        if policy and policy not in ("Delete", "Retain"):
            errs.append(not_supported("reclaimPolicy", policy, ("Delete", "Retain")))
        mode = obj.get("volumeBindingMode")
        if not mode:
            errs.append(required("volumeBindingMode"))
        elif mode not in ("Immediate", "WaitForFirstConsumer"):
            errs.append(not_supported("volumeBindingMode", mode, ("Immediate", "WaitForFirstConsumer")))
        return errs

    def validate_update(self, new: Obj, old: Obj) -> list[FieldError]:
        errs: list[FieldError] = []
        if (new.get("parameters") or {}) != (old.get("parameters") or {}):
            errs.append(forbidden_field("parameters", "updates to parameters are forbidden."))
        if new.get("provisioner") != old.get("provisioner"):
            errs.append(forbidden_field("provisioner", "updates to provisioner are forbidden."))
        if new.get("reclaimPolicy") != old.get("reclaimPolicy"):
            errs.append(forbidden_field("reclaimPolicy", "updates to reclaimPolicy are forbidden."))
        check_immutable(new.get("volumeBindingMode"), old.get("volumeBindingMode"), "volumeBindingMode", errs)
        return errs

    def name_cell(self, obj: Obj) -> str:
        """The NAME cell as upstream prints it (``standard (default)``)."""
        name = str((obj.get("metadata") or {}).get("name", ""))
        return f"{name} (default)" if is_default_class(obj) else name

    def columns(self) -> list[Column]:
        return [
            Column("Provisioner", description="provisioner indicates the type of the provisioner."),
            Column("ReclaimPolicy", description="reclaimPolicy controls the reclaimPolicy for dynamically "
                   "provisioned PersistentVolumes of this storage class. Defaults to Delete."),
            Column("VolumeBindingMode", description="volumeBindingMode indicates how PersistentVolumeClaims "
                   "should be provisioned and bound.  When unset, VolumeBindingImmediate is used. This field "
                   "is only honored by servers that enable the VolumeScheduling feature."),
            Column("AllowVolumeExpansion", "boolean", description="allowVolumeExpansion shows whether the "
                   "storage class allow volume expand."),
            AGE,
        ]

    def cells(self, obj: Obj, now: float) -> list[Any]:
        return [
            str(obj.get("provisioner", "")),
            obj.get("reclaimPolicy") or "Delete",
            obj.get("volumeBindingMode") or "Immediate",
            obj.get("allowVolumeExpansion") is True,
            age(obj, now),
        ]


STORAGECLASSES = ResourceDef(
    group="storage.k8s.io",
    version="v1",
    resource="storageclasses",
    kind="StorageClass",
    singular="storageclass",
    namespaced=False,
    strategy=StorageClassStrategy(),
    short_names=("sc",),
)

RESOURCES: list[ResourceDef] = [STORAGECLASSES]
