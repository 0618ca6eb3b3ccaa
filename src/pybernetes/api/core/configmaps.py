"""core/v1 configmaps and secrets: key/value data without spec or status; the
``immutable`` flag; secret types with their required keys; the 1 MiB size limit."""

from __future__ import annotations

import base64
import binascii
from typing import Any

import orjson

from pybernetes.api.fieldcheck import as_bool, as_dict, config_key_errors
from pybernetes.api.printing import CORE_AGE, age
from pybernetes.api.resource import ResourceDef
from pybernetes.api.strategy import Column, Strategy
from pybernetes.machinery.errors import (
    FieldError,
    forbidden_field,
    immutable,
    invalid_value,
    required,
    too_long,
)

Obj = dict[str, Any]

MAX_SIZE = 1024 * 1024  # upstream's MaxSecretSize, also the ConfigMap limit
_IMMUTABLE = "field is immutable when `immutable` is set"


def _check_keys(data: Obj, path: str, errs: list[FieldError]) -> None:
    for key in data:
        for message in config_key_errors(key):
            errs.append(invalid_value(f"{path}[{key}]", key, message))


def _decoded(value: Any, path: str, errs: list[FieldError]) -> bytes:
    """A base64 value of binaryData / Secret data (wire form)."""
    if not isinstance(value, str):
        errs.append(invalid_value(path, value, "must be a base64-encoded string"))
        return b""
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        errs.append(invalid_value(path, "<value omitted>", "illegal base64 data"))
        return b""


def _immutable_update(new: Obj, old: Obj, fields: tuple[str, ...]) -> list[FieldError]:
    errs: list[FieldError] = []
    if old.get("immutable") is True:
        if new.get("immutable") is not True:
            errs.append(forbidden_field("immutable", _IMMUTABLE))
        for field in fields:
            if (new.get(field) or {}) != (old.get(field) or {}):
                errs.append(forbidden_field(field, _IMMUTABLE))
    return errs


class ConfigMapStrategy(Strategy):
    status_fields = ()
    has_generation = False

    def validate(self, obj: Obj) -> list[FieldError]:
        errs: list[FieldError] = []
        as_bool(obj.get("immutable"), "immutable", errs)
        data = as_dict(obj.get("data"), "data", errs)
        binary = as_dict(obj.get("binaryData"), "binaryData", errs)
        _check_keys(data, "data", errs)
        _check_keys(binary, "binaryData", errs)
        size = 0
        for key, value in data.items():
            if not isinstance(value, str):
                errs.append(invalid_value(f"data[{key}]", value, "must be a string"))
                continue
            size += len(key) + len(value.encode())
        for key, value in binary.items():
            if key in data:
                errs.append(invalid_value(f"binaryData[{key}]", key, "duplicate of key present in data"))
            size += len(key) + len(_decoded(value, f"binaryData[{key}]", errs))
        if size > MAX_SIZE:
            errs.append(too_long("", "", MAX_SIZE))
        return errs

    def validate_update(self, new: Obj, old: Obj) -> list[FieldError]:
        return _immutable_update(new, old, ("data", "binaryData"))

    def columns(self) -> list[Column]:
        return [Column("Data", "integer", description="Data contains the configuration data."), CORE_AGE]

    def cells(self, obj: Obj, now: float) -> list[Any]:
        data, binary = obj.get("data"), obj.get("binaryData")
        count = (len(data) if isinstance(data, dict) else 0) + (len(binary) if isinstance(binary, dict) else 0)
        return [count, age(obj, now)]


SERVICE_ACCOUNT_TOKEN = "kubernetes.io/service-account-token"
# type -> keys of which at least one (any_of) or all (all_of) must be present in data.
_REQUIRED_KEYS: dict[str, tuple[str, tuple[str, ...]]] = {
    "kubernetes.io/dockercfg": ("all_of", (".dockercfg",)),
    "kubernetes.io/dockerconfigjson": ("all_of", (".dockerconfigjson",)),
    "kubernetes.io/basic-auth": ("any_of", ("username", "password")),
    "kubernetes.io/ssh-auth": ("all_of", ("ssh-privatekey",)),
    "kubernetes.io/tls": ("all_of", ("tls.crt", "tls.key")),
}
_JSON_KEYS = {"kubernetes.io/dockercfg": ".dockercfg", "kubernetes.io/dockerconfigjson": ".dockerconfigjson"}


class SecretStrategy(Strategy):
    status_fields = ()
    has_generation = False
    field_names = ("type",)

    def default(self, obj: Obj) -> None:
        if not obj.get("type"):
            obj["type"] = "Opaque"
        # v1 conversion: stringData is write-only and merged into data (it wins).
        string_data = obj.pop("stringData", None)
        if isinstance(string_data, dict) and string_data:
            data = obj.get("data")
            if not isinstance(data, dict):
                data = obj["data"] = {}
            for key, value in string_data.items():
                text = value if isinstance(value, str) else str(value)
                data[key] = base64.b64encode(text.encode()).decode()

    def validate(self, obj: Obj) -> list[FieldError]:
        errs: list[FieldError] = []
        as_bool(obj.get("immutable"), "immutable", errs)
        data = as_dict(obj.get("data"), "data", errs)
        _check_keys(data, "data", errs)
        decoded: dict[str, bytes] = {}
        for key, value in data.items():
            decoded[key] = _decoded(value, f"data[{key}]", errs)
        if sum(len(k) + len(v) for k, v in decoded.items()) > MAX_SIZE:
            errs.append(too_long("data", "", MAX_SIZE))
        secret_type = obj.get("type")
        if not isinstance(secret_type, str):
            errs.append(invalid_value("type", secret_type, "must be a string"))
            return errs
        if secret_type == SERVICE_ACCOUNT_TOKEN:
            annotations = (obj.get("metadata") or {}).get("annotations") or {}
            if not annotations.get("kubernetes.io/service-account.name"):
                errs.append(required("metadata.annotations[kubernetes.io/service-account.name]"))
        rule = _REQUIRED_KEYS.get(secret_type)
        if rule is not None:
            mode, keys = rule
            missing = [k for k in keys if k not in data]
            if (mode == "all_of" and missing) or (mode == "any_of" and len(missing) == len(keys)):
                errs.extend(required(f"data[{k}]") for k in missing)
        json_key = _JSON_KEYS.get(secret_type)
        if json_key and json_key in decoded:
            try:
                orjson.loads(decoded[json_key])
            except orjson.JSONDecodeError as exc:
                errs.append(invalid_value(f"data[{json_key}]", "<secret contents redacted>", str(exc)))
        return errs

    def validate_update(self, new: Obj, old: Obj) -> list[FieldError]:
        errs: list[FieldError] = []
        if new.get("type") != old.get("type"):
            errs.append(immutable("type", new.get("type")))
        errs.extend(_immutable_update(new, old, ("data",)))
        return errs

    def columns(self) -> list[Column]:
        return [
            Column("Type", description="Used to facilitate programmatic handling of secret data."),
            Column("Data", "integer", description="Data contains the secret data."),
            CORE_AGE,
        ]

    def cells(self, obj: Obj, now: float) -> list[Any]:
        data = obj.get("data")
        return [obj.get("type", ""), len(data) if isinstance(data, dict) else 0, age(obj, now)]

    def fields(self, obj: Obj) -> dict[str, str]:
        result = super().fields(obj)
        result["type"] = str(obj.get("type", ""))
        return result


CONFIGMAPS = ResourceDef(
    group="", version="v1", resource="configmaps", kind="ConfigMap", singular="configmap",
    namespaced=True, strategy=ConfigMapStrategy(), short_names=("cm",),
)
SECRETS = ResourceDef(
    group="", version="v1", resource="secrets", kind="Secret", singular="secret",
    namespaced=True, strategy=SecretStrategy(),
)
