"""apps/v1 statefulsets: defaults (OrderedReady, RollingUpdate partition 0, PVC retention
Retain/Retain, replicas, history, claim templates), validation, the update rule that only
some spec fields may change, status checks and the table."""

from __future__ import annotations

from typing import Any

from pybernetes.api.apps.common import WorkloadStrategy, trailing_cells, validate_selector_and_template
from pybernetes.api.groupcommon import (
    AGE,
    CONTAINERS,
    IMAGES,
    dig,
    ensure,
    int_of,
    int_or_percent_value,
    non_negative,
    non_negative_fields,
    not_more_than_100_percent,
    strategy_status,
    validate_int_or_percent,
)
from pybernetes.api.podspec import default_pvc_spec
from pybernetes.api.resource import SCALE, ResourceDef, status_of
from pybernetes.api.strategy import Column
from pybernetes.machinery.errors import FieldError, forbidden_field, invalid_value, not_supported, required
from pybernetes.machinery.validation import is_dns1123_subdomain

Obj = dict[str, Any]

STATUS_COUNTERS = ("replicas", "readyReplicas", "currentReplicas", "updatedReplicas", "availableReplicas",
                   "observedGeneration", "collisionCount")
# Spec fields an update may change (everything else must stay as it was).
MUTABLE_SPEC = ("replicas", "template", "updateStrategy", "minReadySeconds", "ordinals",
                "revisionHistoryLimit", "persistentVolumeClaimRetentionPolicy")
UPDATE_FORBIDDEN = (
    "updates to statefulset spec for fields other than 'replicas', 'ordinals', 'template', "
    "'updateStrategy', 'revisionHistoryLimit', 'persistentVolumeClaimRetentionPolicy' and "
    "'minReadySeconds' are forbidden"
)


def default_statefulset(obj: Obj) -> None:
    spec = ensure(obj, "spec")
    if not spec.get("podManagementPolicy"):
        spec["podManagementPolicy"] = "OrderedReady"
    strategy = ensure(spec, "updateStrategy")
    if not strategy.get("type"):
        strategy["type"] = "RollingUpdate"
        if strategy.get("rollingUpdate") is None:
            strategy["rollingUpdate"] = {}
    rolling = strategy.get("rollingUpdate")
    if strategy["type"] == "RollingUpdate" and isinstance(rolling, dict) and rolling.get("partition") is None:
        rolling["partition"] = 0
    retention = ensure(spec, "persistentVolumeClaimRetentionPolicy")
    if not retention.get("whenDeleted"):
        retention["whenDeleted"] = "Retain"
    if not retention.get("whenScaled"):
        retention["whenScaled"] = "Retain"
    if spec.get("replicas") is None:
        spec["replicas"] = 1
    if spec.get("revisionHistoryLimit") is None:
        spec["revisionHistoryLimit"] = 10
    for claim in spec.get("volumeClaimTemplates") or []:
        if not isinstance(claim, dict):
            continue
        claim.setdefault("apiVersion", "v1")
        claim.setdefault("kind", "PersistentVolumeClaim")
        default_pvc_spec(ensure(claim, "spec"))
        status = ensure(claim, "status")
        if not status.get("phase"):
            status["phase"] = "Pending"


def with_claim_volumes(spec: Obj) -> Obj:
    """The spec with a volume per volumeClaimTemplate added to its pod template (a shallow
    copy), so mounts of the claims validate: upstream checks the template's volumes together
    with the claims the controller adds as volumes."""
    pod_spec = dig(spec, "template", "spec")
    volumes = pod_spec.get("volumes") if isinstance(pod_spec, dict) else None
    if not isinstance(pod_spec, dict) or not isinstance(volumes, list | None):
        return spec
    present = {v.get("name") for v in volumes or [] if isinstance(v, dict)}
    extra = [{"name": name, "persistentVolumeClaim": {"claimName": name}}
             for claim in spec.get("volumeClaimTemplates") or [] if isinstance(claim, dict)
             for name in [dig(claim, "metadata", "name")] if isinstance(name, str) and name and name not in present]
    if not extra:
        return spec
    return {**spec, "template": {**spec["template"], "spec": {**pod_spec, "volumes": [*(volumes or []), *extra]}}}


def validate_statefulset_spec(spec: Any, path: str = "spec") -> list[FieldError]:
    errs: list[FieldError] = []
    if not isinstance(spec, dict):
        return [required(path)]
    policy = spec.get("podManagementPolicy")
    if not policy:
        errs.append(required(f"{path}.podManagementPolicy"))
    elif policy not in ("OrderedReady", "Parallel"):
        errs.append(invalid_value(f"{path}.podManagementPolicy", policy, "must be 'OrderedReady' or 'Parallel'"))
    strategy = spec.get("updateStrategy") if isinstance(spec.get("updateStrategy"), dict) else {}
    kind, rolling = strategy.get("type"), strategy.get("rollingUpdate")
    spath = f"{path}.updateStrategy"
    if not kind:
        errs.append(required(spath))
    elif kind == "OnDelete":
        if rolling is not None:
            errs.append(invalid_value(f"{spath}.rollingUpdate", rolling,
                                      "only allowed for updateStrategy 'RollingUpdate'"))
    elif kind == "RollingUpdate":
        if isinstance(rolling, dict):
            non_negative(rolling, "partition", f"{spath}.rollingUpdate.partition", errs)
            max_unavailable = rolling.get("maxUnavailable")
            if max_unavailable is not None:
                # As upstream with the MaxUnavailableStatefulSet feature enabled (the issue asks
                # for maxUnavailable): a positive count or percent, at most 100%.
                mpath = f"{spath}.rollingUpdate.maxUnavailable"
                validate_int_or_percent(max_unavailable, mpath, errs)
                if int_or_percent_value(max_unavailable) == 0:
                    errs.append(invalid_value(mpath, max_unavailable, "cannot be 0"))
                not_more_than_100_percent(max_unavailable, mpath, errs)
    else:
        errs.append(invalid_value(spath, strategy, "must be 'RollingUpdate' or 'OnDelete'"))
    retention = spec.get("persistentVolumeClaimRetentionPolicy")
    if isinstance(retention, dict):
        for field in ("whenDeleted", "whenScaled"):
            value = retention.get(field)
            if value not in ("Retain", "Delete"):
                errs.append(not_supported(f"{path}.persistentVolumeClaimRetentionPolicy.{field}", value,
                                          ("Retain", "Delete")))
    if isinstance(spec.get("ordinals"), dict):
        non_negative(spec["ordinals"], "start", f"{path}.ordinals.start", errs)
    non_negative_fields(spec, ("replicas", "minReadySeconds", "revisionHistoryLimit"), path, errs)
    validate_selector_and_template(with_claim_volumes(spec), path, "statefulset", errs,
                                   deadline_error="activeDeadlineSeconds in StatefulSet is not Supported")
    for i, claim in enumerate(spec.get("volumeClaimTemplates") or []):
        name = dig(claim, "metadata", "name")
        npath = f"{path}.volumeClaimTemplates[{i}].metadata.name"
        if not name:
            errs.append(required(npath, "name or generateName is required"))
        elif isinstance(name, str):
            errs.extend(invalid_value(npath, name, msg) for msg in is_dns1123_subdomain(name))
    return errs


class StatefulSetStrategy(WorkloadStrategy):
    initial_status = {"replicas": 0, "availableReplicas": 0}
    status_counters = STATUS_COUNTERS
    replica_counters = ("readyReplicas", "currentReplicas", "updatedReplicas", "availableReplicas")
    ready_text = "status.readyReplicas"

    def default(self, obj: Obj) -> None:
        default_statefulset(obj)
        super().default(obj)

    def validate(self, obj: Obj) -> list[FieldError]:
        return validate_statefulset_spec(obj.get("spec"))

    def validate_update(self, new: Obj, old: Obj) -> list[FieldError]:
        new_spec = new.get("spec") if isinstance(new.get("spec"), dict) else {}
        old_spec = old.get("spec") if isinstance(old.get("spec"), dict) else {}
        fixed_new = {k: v for k, v in new_spec.items() if k not in MUTABLE_SPEC}
        fixed_old = {k: v for k, v in old_spec.items() if k not in MUTABLE_SPEC}
        if fixed_new != fixed_old:
            return [forbidden_field("spec", UPDATE_FORBIDDEN)]
        return []

    def columns(self) -> list[Column]:
        return [
            Column("Ready", description="Number of the pod with ready state"),
            AGE,
            CONTAINERS,
            IMAGES,
        ]

    def cells(self, obj: Obj, now: float) -> list[Any]:
        ready = int_of(strategy_status(obj).get("readyReplicas"))
        return [f"{ready}/{int_of(dig(obj, 'spec', 'replicas'))}", *trailing_cells(obj, now, selector=False)]


STATEFULSETS = ResourceDef(
    group="apps",
    version="v1",
    resource="statefulsets",
    kind="StatefulSet",
    singular="statefulset",
    namespaced=True,
    strategy=StatefulSetStrategy(),
    short_names=("sts",),
    categories=("all",),
    subresources=(status_of("StatefulSet", "apps"), SCALE),
)
