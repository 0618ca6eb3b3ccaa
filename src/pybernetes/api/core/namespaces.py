"""core/v1 namespaces: the tenancy boundary (cluster-scoped; +status)."""

from __future__ import annotations

from typing import Any

from pybernetes.api.printing import CORE_AGE, age
from pybernetes.api.resource import ResourceDef, Subresource, status_of
from pybernetes.api.strategy import Column, Strategy
from pybernetes.machinery import validation as mv
from pybernetes.machinery.errors import FieldError, invalid_value

Obj = dict[str, Any]

NAME_LABEL = "kubernetes.io/metadata.name"
KUBERNETES_FINALIZER = "kubernetes"


class NamespaceStrategy(Strategy):
    has_generation = False
    field_names = ("status.phase",)

    @staticmethod
    def name_rule(name: str) -> list[str]:
        return mv.is_dns1123_label(name)

    def default(self, obj: Obj) -> None:
        meta = obj.get("metadata")
        if isinstance(meta, dict) and isinstance(meta.get("name"), str) and meta["name"]:
            labels = meta.get("labels")
            if not isinstance(labels, dict):
                labels = meta["labels"] = {}
            labels[NAME_LABEL] = meta["name"]

    def prepare_for_create(self, obj: Obj) -> None:
        obj["status"] = {"phase": "Active"}
        spec = obj.get("spec")
        if not isinstance(spec, dict):
            spec = obj["spec"] = {}
        finalizers = spec.get("finalizers")
        if not isinstance(finalizers, list):
            finalizers = []
        if KUBERNETES_FINALIZER not in finalizers:
            finalizers.append(KUBERNETES_FINALIZER)
        spec["finalizers"] = finalizers

    def prepare_for_update(self, new: Obj, old: Obj) -> None:
        super().prepare_for_update(new, old)
        # spec.finalizers change only through the finalize subresource.
        new["spec"] = dict(new.get("spec") or {}) if isinstance(new.get("spec"), dict) else {}
        old_spec = old.get("spec") or {}
        if "finalizers" in old_spec:
            new["spec"]["finalizers"] = old_spec["finalizers"]
        else:
            new["spec"].pop("finalizers", None)

    def validate(self, obj: Obj) -> list[FieldError]:
        errs: list[FieldError] = []
        spec = obj.get("spec")
        if isinstance(spec, dict):
            for i, finalizer in enumerate(spec.get("finalizers") or []):
                errs.extend(_validate_finalizer(finalizer, f"spec.finalizers[{i}]"))
        return errs

    def validate_status_update(self, new: Obj, old: Obj) -> list[FieldError]:
        phase = (new.get("status") or {}).get("phase", "")
        deleting = bool((new.get("metadata") or {}).get("deletionTimestamp"))
        if not deleting and phase != "Active":
            return [invalid_value("status.Phase", phase, "may only be 'Active' if `deletionTimestamp` is empty")]
        if deleting and phase != "Terminating":
            return [invalid_value("status.Phase", phase, "may only be 'Terminating' if `deletionTimestamp` is not empty")]
        return []

    def columns(self) -> list[Column]:
        return [
            Column("Status", description="The status of the namespace"),
            CORE_AGE,
        ]

    def cells(self, obj: Obj, now: float) -> list[Any]:
        return [(obj.get("status") or {}).get("phase", ""), age(obj, now)]

    def fields(self, obj: Obj) -> dict[str, str]:
        result = super().fields(obj)
        result["status.phase"] = str((obj.get("status") or {}).get("phase", ""))
        return result


def _validate_finalizer(finalizer: Any, path: str) -> list[FieldError]:
    if not isinstance(finalizer, str):
        return [invalid_value(path, finalizer, "must be a string")]
    if "/" not in finalizer and finalizer != KUBERNETES_FINALIZER:
        return [invalid_value(path, finalizer, "name is neither a standard finalizer name nor is it fully qualified")]
    return [invalid_value(path, finalizer, m) for m in mv.is_qualified_name(finalizer)]


NAMESPACES = ResourceDef(
    group="",
    version="v1",
    resource="namespaces",
    kind="Namespace",
    singular="namespace",
    namespaced=False,
    strategy=NamespaceStrategy(),
    short_names=("ns",),
    subresources=(status_of("Namespace"), Subresource("finalize", "Namespace", verbs=("update",))),
)
