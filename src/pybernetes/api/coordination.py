"""The coordination.k8s.io/v1 API group: leases (leader election, node heartbeats).

No status and no generation; a PUT of a missing lease creates it; updates need a
resourceVersion (upstream: AllowUnconditionalUpdate false).  The alpha fields ``strategy``
and ``preferredHolder`` (CoordinatedLeaderElection, off by default) are dropped unless the
stored object already has them.
"""

from __future__ import annotations

from typing import Any

from pybernetes.api.groupcommon import AGE, dig, is_int
from pybernetes.api.printing import age
from pybernetes.api.resource import ResourceDef
from pybernetes.api.strategy import Column, Strategy
from pybernetes.machinery.errors import FieldError, invalid_value

Obj = dict[str, Any]

GATED_FIELDS = ("strategy", "preferredHolder")
_MICRO_TIME_FIELDS = ("acquireTime", "renewTime")


def _drop_gated(spec: Any, old_spec: Any) -> None:
    if not isinstance(spec, dict):
        return
    for field in GATED_FIELDS:
        if field in spec and not (isinstance(old_spec, dict) and old_spec.get(field) is not None):
            del spec[field]


def validate_lease_spec(spec: Any, path: str = "spec") -> list[FieldError]:
    errs: list[FieldError] = []
    if spec is None:
        return errs
    if not isinstance(spec, dict):
        return [invalid_value(path, spec, "must be an object")]
    duration = spec.get("leaseDurationSeconds")
    if duration is not None and (not is_int(duration) or duration <= 0):
        errs.append(invalid_value(f"{path}.leaseDurationSeconds", duration, "must be greater than 0"))
    transitions = spec.get("leaseTransitions")
    if transitions is not None and (not is_int(transitions) or transitions < 0):
        errs.append(invalid_value(f"{path}.leaseTransitions", transitions, "must be greater than or equal to 0"))
    holder = spec.get("holderIdentity")
    if holder is not None and not isinstance(holder, str):
        errs.append(invalid_value(f"{path}.holderIdentity", holder, "must be a string"))
    for field in _MICRO_TIME_FIELDS:
        value = spec.get(field)
        if value is not None and not isinstance(value, str):
            errs.append(invalid_value(f"{path}.{field}", value, "must be an RFC 3339 time string"))
    return errs


class LeaseStrategy(Strategy):
    status_fields = ()
    has_generation = False
    allow_create_on_update = True
    allow_unconditional_update = False

    def prepare_for_create(self, obj: Obj) -> None:
        _drop_gated(obj.get("spec"), None)

    def prepare_for_update(self, new: Obj, old: Obj) -> None:
        _drop_gated(new.get("spec"), old.get("spec"))

    def validate(self, obj: Obj) -> list[FieldError]:
        return validate_lease_spec(obj.get("spec"))

    def columns(self) -> list[Column]:
        return [
            Column("Holder", description="holderIdentity contains the identity of the holder of a current "
                   "lease. If Coordinated Leader Election is used, the holder identity must be equal to the "
                   "elected LeaseCandidate.metadata.name field."),
            AGE,
        ]

    def cells(self, obj: Obj, now: float) -> list[Any]:
        holder = dig(obj, "spec", "holderIdentity")
        return [holder if isinstance(holder, str) else "", age(obj, now)]


LEASES = ResourceDef(
    group="coordination.k8s.io",
    version="v1",
    resource="leases",
    kind="Lease",
    singular="lease",
    namespaced=True,
    strategy=LeaseStrategy(),
)

RESOURCES: list[ResourceDef] = [LEASES]
