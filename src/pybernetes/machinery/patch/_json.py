"""Small helpers shared by the patch modules: deep copy and equality of JSON values, and the
names Go's encoding/json uses for JSON value kinds (they appear in upstream's messages)."""

from __future__ import annotations

from typing import Any


def deep_copy(value: Any) -> Any:
    """Copy a JSON value (dicts, lists, scalars) so the copy shares no container."""
    if isinstance(value, dict):
        return {k: deep_copy(v) if isinstance(v, dict | list) else v for k, v in value.items()}
    if isinstance(value, list):
        return [deep_copy(v) if isinstance(v, dict | list) else v for v in value]
    return value


def json_equal(a: Any, b: Any) -> bool:
    """Structural equality of JSON values: booleans are never numbers, 1 == 1.0."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if isinstance(a, dict):
        if not isinstance(b, dict) or len(a) != len(b):
            return False
        for key, value in a.items():
            if key not in b or not json_equal(value, b[key]):
                return False
        return True
    if isinstance(a, list):
        if not isinstance(b, list) or len(a) != len(b):
            return False
        return all(json_equal(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, int | float) and isinstance(b, int | float):
        return a == b
    if type(a) is not type(b):
        return False
    return a == b


def json_kind(value: Any) -> str:
    """The kind name Go's encoding/json uses in its errors (object, array, string, ...)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, dict):
        return "object"
    if isinstance(value, list):
        return "array"
    if isinstance(value, str):
        return "string"
    return "number"


def go_repr(value: Any) -> str:
    """Render a decoded JSON value as Go's ``%v`` prints an unstructured value
    (``map[a:1 b:[x y]]``) — used where upstream's messages embed the offending value."""
    if value is None:
        return "<nil>"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        inner = " ".join(f"{k}:{go_repr(value[k])}" for k in sorted(value))
        return f"map[{inner}]"
    if isinstance(value, list):
        return "[" + " ".join(go_repr(v) for v in value) + "]"
    return str(value)
