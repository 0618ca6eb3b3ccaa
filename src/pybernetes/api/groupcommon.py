"""Helpers shared by the non-core API groups' strategies (apps, batch, policy, networking ...).

metav1.LabelSelector dicts read through ``machinery.selectors`` as upstream's
``LabelSelectorAsSelector`` does, IntOrString percentages of rolling updates and budgets, the
non-negative checks of status counters, the "field is immutable" comparison, and the table
helpers every workload printer uses.  Pure functions over wire-shaped dicts.
"""

from __future__ import annotations

import re
from typing import Any

from pybernetes.api.strategy import Column
from pybernetes.machinery.errors import FieldError, immutable, invalid_value
from pybernetes.machinery.selectors import LabelSelector, SelectorParseError, label_selector_from_dict
from pybernetes.machinery.validation_net import is_valid_percent

Obj = dict[str, Any]
Errors = list[FieldError]

NEGATIVE = "must be greater than or equal to 0"
AGE = Column("Age", description="CreationTimestamp is a timestamp representing the server time when "
             "this object was created. It is not guaranteed to be set in happens-before order across "
             "separate operations. Clients may not set this value. It is represented in RFC3339 form "
             "and is in UTC.")
CONTAINERS = Column("Containers", priority=1, description="Names of each container in the template.")
IMAGES = Column("Images", priority=1, description="Images referenced by each container in the template.")


# -- reading -------------------------------------------------------------------------------

def dig(obj: Any, *path: str) -> Any:
    """obj[path[0]][path[1]]... or None when any step is missing or not a dict."""
    for key in path:
        if not isinstance(obj, dict):
            return None
        obj = obj.get(key)
    return obj


def ensure(obj: Obj, *path: str) -> Obj:
    """The dict at ``path``, created (replacing a non-dict) as needed."""
    for key in path:
        value = obj.get(key)
        if not isinstance(value, dict):
            value = {}
            obj[key] = value
        obj = value
    return obj


def int_of(value: Any, default: int = 0) -> int:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return default
    return int(value)


def is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


# -- label selectors -----------------------------------------------------------------------
# One implementation of selector semantics: machinery.selectors.  These adapt it to how the
# API groups read a metav1.LabelSelector dict (upstream's LabelSelectorAsSelector: a nil
# selector selects nothing, an empty one everything).

def as_selector(selector: Any) -> LabelSelector | None:
    """LabelSelectorAsSelector of a metav1.LabelSelector dict (None selects nothing, ``{}``
    everything); None when the dict does not convert (an invalid selector)."""
    try:
        return label_selector_from_dict(selector, nil_matches_nothing=True)
    except SelectorParseError:
        return None


def selector_string(selector: Any) -> str:
    """labels.Selector.String() of LabelSelectorAsSelector: requirements sorted by key, ""
    for a None or empty selector, ``<error>`` for one that does not convert."""
    parsed = as_selector(selector)
    return "<error>" if parsed is None else str(parsed)


# -- numbers -------------------------------------------------------------------------------

def non_negative(obj: Any, field: str, path: str, errs: Errors) -> None:
    """A non-negative integer at obj[field] when present (``path`` is its full path)."""
    if not isinstance(obj, dict) or obj.get(field) is None:
        return
    value = obj[field]
    if not is_int(value):
        errs.append(invalid_value(path, value, "must be an integer"))
    elif value < 0:
        errs.append(invalid_value(path, value, NEGATIVE))


def non_negative_fields(obj: Any, fields: tuple[str, ...], path: str, errs: Errors) -> None:
    """``non_negative`` for each of ``fields`` of obj (``path`` is obj's own path)."""
    for field in fields:
        non_negative(obj, field, f"{path}.{field}", errs)


def positive(obj: Any, field: str, path: str, errs: Errors) -> None:
    if not isinstance(obj, dict) or obj.get(field) is None:
        return
    value = obj[field]
    if not is_int(value):
        errs.append(invalid_value(path, value, "must be an integer"))
    elif value <= 0:
        errs.append(invalid_value(path, value, "must be greater than 0"))


def not_greater(status: Obj, field: str, other: str, path: str, errs: Errors, other_text: str = "") -> None:
    """status[field] <= status[other], else upstream's "cannot be greater than ..."."""
    a, b = status.get(field), status.get(other)
    if is_int(a) and int_of(a) > int_of(b):
        errs.append(invalid_value(f"{path}.{field}", a, f"cannot be greater than {other_text or path + '.' + other}"))


def validate_int_or_percent(value: Any, path: str, errs: Errors) -> None:
    """ValidatePositiveIntOrPercent: a non-negative integer or a valid 'N%'."""
    if value is None:
        return
    if is_int(value):
        if value < 0:
            errs.append(invalid_value(path, value, NEGATIVE))
    elif isinstance(value, str):
        for msg in is_valid_percent(value):
            errs.append(invalid_value(path, value, msg))
    else:
        errs.append(invalid_value(path, value, "must be an integer or percentage (e.g '5%')"))


def int_or_percent_value(value: Any) -> int:
    """getIntOrPercentValue: the integer, or the number of a 'N%' (0 when unparsable)."""
    if is_int(value):
        return value
    if isinstance(value, str) and re.fullmatch(r"[0-9]+%", value):
        return int(value[:-1])
    return 0


def not_more_than_100_percent(value: Any, path: str, errs: Errors) -> None:
    if isinstance(value, str) and re.fullmatch(r"[0-9]+%", value) and int(value[:-1]) > 100:
        errs.append(invalid_value(path, value, "must not be greater than 100%"))


def int_or_string_text(value: Any) -> str:
    """intstr.String(): an int as decimal, a string as is."""
    if is_int(value):
        return str(value)
    return str(value)


# -- updates -------------------------------------------------------------------------------

def check_immutable(new: Any, old: Any, path: str, errs: Errors) -> None:
    """ValidateImmutableField (None and absent are the same)."""
    if new != old:
        errs.append(immutable(path, new))


def collision_count_update(new_status: Obj, old_status: Obj, errs: Errors) -> None:
    new_count, old_count = new_status.get("collisionCount"), old_status.get("collisionCount")
    if is_int(old_count) and (not is_int(new_count) or new_count < old_count):
        errs.append(invalid_value("status.collisionCount", new_count, "cannot be decremented"))


def strategy_status(obj: Obj) -> Obj:
    status = obj.get("status")
    return status if isinstance(status, dict) else {}
