"""Small, type-safe field checks shared by the strategies' validation code.

Objects reach the strategies as decoded JSON that may hold anything; these helpers read a
field as the type it should have and record a FieldError (instead of crashing) when it has
another.  Also: the quantity and resource-name checks upstream applies to resource lists.
"""

from __future__ import annotations

import re
from fractions import Fraction
from typing import Any

from pybernetes.machinery import validation as mv
from pybernetes.machinery.errors import (
    FieldError,
    duplicate,
    forbidden_field,
    invalid_value,
    not_supported,
    required,
)
from pybernetes.machinery.quantity import parse_quantity

Obj = dict[str, Any]
Errors = list[FieldError]

PROTOCOLS = ("SCTP", "TCP", "UDP")


def type_error(path: str, value: Any, type_name: str) -> FieldError:
    return FieldError("FieldValueTypeInvalid", path, f"must be of type {type_name}", value)


def as_dict(value: Any, path: str, errs: Errors) -> Obj:
    if value is None:
        return {}
    if isinstance(value, dict):
        return value
    errs.append(type_error(path, value, "object"))
    return {}


def as_list(value: Any, path: str, errs: Errors) -> list[Any]:
    if value is None:
        return []
    if isinstance(value, list):
        return value
    errs.append(type_error(path, value, "array"))
    return []


def dict_items(value: Any, path: str, errs: Errors) -> list[tuple[int, Obj]]:
    """(index, item) pairs of a list of objects; non-object items are reported."""
    out: list[tuple[int, Obj]] = []
    for i, item in enumerate(as_list(value, path, errs)):
        if isinstance(item, dict):
            out.append((i, item))
        else:
            errs.append(type_error(f"{path}[{i}]", item, "object"))
    return out


def as_str(value: Any, path: str, errs: Errors) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    errs.append(type_error(path, value, "string"))
    return ""


def as_int(value: Any, path: str, errs: Errors) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        if isinstance(value, float) and value.is_integer():
            return int(value)
        errs.append(type_error(path, value, "integer"))
        return None
    return value


def as_bool(value: Any, path: str, errs: Errors) -> bool | None:
    if value is None or isinstance(value, bool):
        return value
    errs.append(type_error(path, value, "boolean"))
    return None


def str_map(value: Any, path: str, errs: Errors) -> dict[str, str]:
    """A map of string to string (labels, data, nodeSelector ...)."""
    out: dict[str, str] = {}
    for key, item in as_dict(value, path, errs).items():
        if isinstance(item, str):
            out[key] = item
        else:
            errs.append(type_error(f"{path}[{key}]", item, "string"))
    return out


def check_name(value: str, path: str, rule: Any, errs: Errors) -> None:
    """Required + a machinery name rule (is_dns1123_label ...), one error per message."""
    if not value:
        errs.append(required(path))
        return
    for message in rule(value):
        errs.append(invalid_value(path, value, message))


def check_enum(value: Any, path: str, valid: tuple[str, ...], errs: Errors, *, needed: bool = False) -> None:
    if value is None or value == "":
        if needed:
            errs.append(required(path))
        return
    if value not in valid:
        errs.append(not_supported(path, value, valid))


def one_of(obj: Obj, kinds: tuple[str, ...] | list[str], path: str, what: str, errs: Errors) -> str | None:
    """Exactly one of ``kinds`` set in obj (a volume's source, a probe's handler ...): Required
    "must specify a <what> type" when none is, Forbidden "may not specify more than 1 <what>
    type" for each extra one; returns the first that is set, None when none is."""
    present = [k for k in kinds if obj.get(k) is not None]
    if not present:
        errs.append(required(path, f"must specify a {what} type"))
        return None
    for extra in present[1:]:
        errs.append(forbidden_field(f"{path}.{extra}", f"may not specify more than 1 {what} type"))
    return present[0]


def check_non_negative(value: Any, path: str, errs: Errors) -> None:
    number = as_int(value, path, errs)
    if number is not None and number < 0:
        errs.append(invalid_value(path, number, "must be greater than or equal to 0"))


def check_port(value: Any, path: str, errs: Errors, *, needed: bool = True) -> int | None:
    number = as_int(value, path, errs)
    if number is None or number == 0:
        if needed and (number is not None or value is None):
            errs.append(required(path))
        return None
    if not 1 <= number <= 65535:
        errs.append(invalid_value(path, number, "must be between 1 and 65535, inclusive"))
    return number


def check_int_or_named_port(value: Any, path: str, errs: Errors) -> None:
    """A probe's or a service's port: a number 1-65535 or an IANA_SVC_NAME."""
    if isinstance(value, bool) or value is None:
        errs.append(required(path))
    elif isinstance(value, int):
        check_port(value, path, errs)
    elif isinstance(value, str):
        if value.isdigit():
            check_port(int(value), path, errs)
            return
        for message in mv.is_valid_port_name(value):
            errs.append(invalid_value(path, value, message))
    else:
        errs.append(type_error(path, value, "integer or string"))


def check_port_entry(port: Obj, path: str, errs: Errors, *, many: bool, names: set[str]) -> None:
    """One of a service's or an endpoint subset's ports: a name (required when there are
    ``many``, a DNS label, unique among ``names``), a port 1-65535 and a protocol."""
    name = as_str(port.get("name"), f"{path}.name", errs)
    if many and not name:
        errs.append(required(f"{path}.name"))
    elif name:
        check_name(name, f"{path}.name", mv.is_dns1123_label, errs)
        if name in names:
            errs.append(duplicate(f"{path}.name", name))
        names.add(name)
    number = as_int(port.get("port"), f"{path}.port", errs)
    if number is None or not 1 <= number <= 65535:
        errs.append(invalid_value(f"{path}.port", port.get("port", 0), "must be between 1 and 65535, inclusive"))
    check_enum(port.get("protocol"), f"{path}.protocol", PROTOCOLS, errs, needed=True)


# -- resources and quantities ------------------------------------------------------------

_STANDARD_CONTAINER_RESOURCES = ("cpu", "memory", "ephemeral-storage")
_HUGEPAGES = re.compile(r"^hugepages-")


def parse_quantity_at(value: Any, path: str, errs: Errors) -> Fraction | None:
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        errs.append(type_error(path, value, "string"))
        return None
    try:
        return parse_quantity(str(value))
    except ValueError:
        errs.append(
            invalid_value(path, value, "quantities must match the regular expression "
                          "'^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'")
        )
        return None


def check_resource_name(name: str, path: str, errs: Errors, *, node: bool = False) -> bool:
    """Standard names (cpu, memory ...), hugepages-*, or fully qualified extended names; a
    node's capacity also counts pods and attachable volumes."""
    if name in _STANDARD_CONTAINER_RESOURCES or _HUGEPAGES.match(name):
        return True
    if node and (name == "pods" or name.startswith("attachable-volumes-")):
        return True
    messages = mv.is_qualified_name(name)
    if messages:
        for message in messages:
            errs.append(invalid_value(path, name, message))
        return False
    if "/" not in name:
        errs.append(invalid_value(path, name, "must be a standard resource type or fully qualified"))
        return False
    return True


def check_resource_list(value: Any, path: str, errs: Errors, *, node: bool = False) -> dict[str, Fraction]:
    """A ResourceList: valid names and non-negative quantities; returns parsed amounts."""
    amounts: dict[str, Fraction] = {}
    for name, raw in as_dict(value, path, errs).items():
        key_path = f"{path}[{name}]"
        if not check_resource_name(name, key_path, errs, node=node):
            continue
        amount = parse_quantity_at(raw, key_path, errs)
        if amount is None:
            continue
        if amount < 0:
            errs.append(invalid_value(key_path, raw, "must be greater than or equal to 0"))
            continue
        amounts[name] = amount
    return amounts


def overcommit_allowed(name: str) -> bool:
    """Native resources may be overcommitted; hugepages and extended resources may not."""
    if _HUGEPAGES.match(name):
        return False
    if "/" in name and not name.startswith("kubernetes.io/") and ".kubernetes.io/" not in name:
        return False
    return True


def check_resource_requirements(value: Any, path: str, errs: Errors) -> None:
    """requests and limits of a container: requests <= limits for each resource, and equal
    (with a limit) for resources that cannot be overcommitted."""
    resources = as_dict(value, path, errs)
    limits = check_resource_list(resources.get("limits"), f"{path}.limits", errs)
    requests = check_resource_list(resources.get("requests"), f"{path}.requests", errs)
    raw_requests = resources.get("requests") or {}
    raw_limits = resources.get("limits") or {}
    for name, request in requests.items():
        limit = limits.get(name)
        if limit is None:
            if not overcommit_allowed(name):
                errs.append(required(f"{path}.limits", "Limit must be set for non overcommitable resources"))
            continue
        if request != limit and not overcommit_allowed(name):
            errs.append(invalid_value(
                f"{path}.requests", str(raw_requests.get(name)), f"must be equal to {name} limit of {raw_limits.get(name)}"
            ))
        elif request > limit:
            errs.append(invalid_value(
                f"{path}.requests", str(raw_requests.get(name)),
                f"must be less than or equal to {name} limit of {raw_limits.get(name)}",
            ))


# -- ConfigMap and Secret keys -------------------------------------------------------------

_CONFIG_KEY = re.compile(r"^[-._a-zA-Z0-9]+$")


def config_key_errors(key: str) -> list[str]:
    """Upstream's IsConfigMapKey: the rule for keys of ConfigMaps, Secrets and projections."""
    messages: list[str] = []
    if len(key) > 253:
        messages.append("must be no more than 253 characters")
    if not _CONFIG_KEY.match(key):
        messages.append(
            "a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. "
            "'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')"
        )
    if key == ".":
        messages.append("must not be '.'")
    elif key == "..":
        messages.append("must not be '..'")
    elif key.startswith(".."):
        messages.append("must not start with '..'")
    return messages
