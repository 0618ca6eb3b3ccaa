"""core/v1 serviceaccounts: identities for pods (no spec/status), SECRETS AGE table."""

from __future__ import annotations

from typing import Any

from pybernetes.api.fieldcheck import as_bool, dict_items
from pybernetes.api.printing import CORE_AGE, age
from pybernetes.api.resource import ResourceDef
from pybernetes.api.strategy import Column, Strategy
from pybernetes.machinery.errors import FieldError, required

Obj = dict[str, Any]


class ServiceAccountStrategy(Strategy):
    status_fields = ()
    has_generation = False

    def validate(self, obj: Obj) -> list[FieldError]:
        errs: list[FieldError] = []
        as_bool(obj.get("automountServiceAccountToken"), "automountServiceAccountToken", errs)
        for key in ("secrets", "imagePullSecrets"):
            for i, ref in dict_items(obj.get(key), key, errs):
                if key == "imagePullSecrets" and not ref.get("name"):
                    errs.append(required(f"{key}[{i}].name"))
        return errs

    def columns(self) -> list[Column]:
        return [
            Column("Secrets", "integer", description="Secrets is a list of the secrets in the same namespace "
                   "that pods running using this ServiceAccount are allowed to use."),
            CORE_AGE,
        ]

    def cells(self, obj: Obj, now: float) -> list[Any]:
        secrets = obj.get("secrets")
        return [len(secrets) if isinstance(secrets, list) else 0, age(obj, now)]


SERVICEACCOUNTS = ResourceDef(
    group="", version="v1", resource="serviceaccounts", kind="ServiceAccount",
    singular="serviceaccount", namespaced=True, strategy=ServiceAccountStrategy(), short_names=("sa",),
)
