"""Helpers shared by the non-core API groups' strategies (apps, batch, policy, networking ...).

metav1.LabelSelector matching and printing as upstream's ``LabelSelectorAsSelector`` and
``FormatLabelSelector`` do, IntOrString percentages of rolling updates and budgets, the
non-negative checks of status counters, the "field is immutable" comparison, and the table
helpers every workload printer uses.  Pure functions over wire-shaped dicts.
"""

from __future__ import annotations

import re
from typing import Any

from pybernetes.api.strategy import Column
from pybernetes.machinery.errors import FieldError, immutable, invalid_value, required
from pybernetes.machinery.validation import validate_label_selector
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

def selector_matches(selector: Any, labels: Any) -> bool:
    """Whether a metav1.LabelSelector dict selects ``labels`` (a None selector selects
    nothing, an empty one everything, as LabelSelectorAsSelector)."""
    if not isinstance(selector, dict):
        return False
    labels = labels if isinstance(labels, dict) else {}
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expr in selector.get("matchExpressions") or []:
        if not isinstance(expr, dict):
            return False
        key, op, values = expr.get("key"), expr.get("operator"), expr.get("values") or []
        if op == "In":
            if key not in labels or labels[key] not in values:
                return False
        elif op == "NotIn":
            if key in labels and labels[key] in values:
                return False
        elif op == "Exists":
            if key not in labels:
                return False
        elif op == "DoesNotExist":
            if key in labels:
                return False
        else:
            return False
    return True


def selector_is_empty(selector: Any) -> bool:
    return isinstance(selector, dict) and not selector.get("matchLabels") and not selector.get(
        "matchExpressions"
    )


def selector_string(selector: Any) -> str:
    """labels.Selector.String() of LabelSelectorAsSelector: requirements sorted by key;
    "" for a None or empty selector."""
    if not isinstance(selector, dict):
        return ""
    parts: list[tuple[str, str]] = []
    for key, value in (selector.get("matchLabels") or {}).items():
        parts.append((str(key), f"{key}={value}"))
    for expr in selector.get("matchExpressions") or []:
        if not isinstance(expr, dict):
            continue
        key, op = str(expr.get("key", "")), expr.get("operator")
        values = ",".join(sorted(str(v) for v in expr.get("values") or []))
        if op == "In":
            parts.append((key, f"{key} in ({values})"))
        elif op == "NotIn":
            parts.append((key, f"{key} notin ({values})"))
        elif op == "Exists":
            parts.append((key, key))
        elif op == "DoesNotExist":
            parts.append((key, f"!{key}"))
    parts.sort(key=lambda p: p[0])
    return ",".join(text for _, text in parts)


def format_label_selector(selector: Any) -> str:
    """metav1.FormatLabelSelector: the selector string, ``<none>`` when it selects all/none."""
    return selector_string(selector) or "<none>"


def format_labels(labels: Any) -> str:
    """labels.FormatLabels: sorted ``k=v`` pairs, ``<none>`` when empty."""
    if not isinstance(labels, dict) or not labels:
        return "<none>"
    return ",".join(f"{k}={labels[k]}" for k in sorted(labels))


def validate_workload_selector(
    selector: Any, template_labels: Any, path: str, kind_word: str, errs: Errors
) -> None:
    """Upstream's selector checks of ReplicaSets, Deployments, DaemonSets, StatefulSets:
    required, valid, not empty, and matching the pod template's labels."""
    if selector is None:
        errs.append(required(f"{path}.selector"))
        return
    if not isinstance(selector, dict):
        errs.append(invalid_value(f"{path}.selector", selector, "invalid label selector"))
        return
    errs.extend(validate_label_selector(selector, f"{path}.selector"))
    if selector_is_empty(selector):
        errs.append(invalid_value(f"{path}.selector", selector, f"empty selector is invalid for {kind_word}"))
        return
    if not selector_matches(selector, template_labels):
        errs.append(
            invalid_value(
                f"{path}.template.metadata.labels",
                template_labels if isinstance(template_labels, dict) else {},
                "`selector` does not match template `labels`",
            )
        )


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
