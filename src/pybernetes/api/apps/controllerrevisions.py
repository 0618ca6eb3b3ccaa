"""apps/v1 controllerrevisions: immutable snapshots of a workload's template (data required
and immutable, revision non-negative), with the CONTROLLER REVISION table."""

from __future__ import annotations

from typing import Any

from pybernetes.api.groupcommon import AGE, check_immutable, int_of, non_negative
from pybernetes.api.printing import age
from pybernetes.api.resource import ResourceDef
from pybernetes.api.strategy import Column, Strategy
from pybernetes.machinery.errors import FieldError, required

Obj = dict[str, Any]


def controller_name(obj: Obj) -> str:
    """``statefulset.apps/web`` for the controlling owner, ``<none>`` without one."""
    for ref in (obj.get("metadata") or {}).get("ownerReferences") or []:
        if isinstance(ref, dict) and ref.get("controller") is True:
            api_version = str(ref.get("apiVersion", ""))
            group = api_version.rsplit("/", 1)[0] if "/" in api_version else ""
            kind = str(ref.get("kind", ""))
            name = str(ref.get("name", ""))
            group_kind = f"{kind}.{group}" if group else kind
            return f"{group_kind.lower()}/{name}" if group_kind else name
    return "<none>"


class ControllerRevisionStrategy(Strategy):
    status_fields = ()
    has_generation = False

    def validate(self, obj: Obj) -> list[FieldError]:
        errs: list[FieldError] = []
        if obj.get("data") is None:
            errs.append(required("data", "data is mandatory"))
        non_negative(obj, "revision", "revision", errs)
        return errs

    def validate_update(self, new: Obj, old: Obj) -> list[FieldError]:
        errs: list[FieldError] = []
        check_immutable(new.get("data"), old.get("data"), "data", errs)
        return errs

    def columns(self) -> list[Column]:
        return [
            Column("Controller", description="Controller of the object"),
            Column("Revision", "integer", description="Revision indicates the revision of the state "
                   "represented by Data."),
            AGE,
        ]

    def cells(self, obj: Obj, now: float) -> list[Any]:
        return [controller_name(obj), int_of(obj.get("revision")), age(obj, now)]


CONTROLLERREVISIONS = ResourceDef(
    group="apps",
    version="v1",
    resource="controllerrevisions",
    kind="ControllerRevision",
    singular="controllerrevision",
    namespaced=True,
    strategy=ControllerRevisionStrategy(),
)
