"""Shared pieces of strategic merge patch: directive names, upstream's error texts and codes,
and how list elements are compared (scalars by JSON identity, maps by merge key)."""

from __future__ import annotations

from typing import Any

from pybernetes.machinery.errors import StatusError, bad_request
from pybernetes.machinery.patch._json import go_repr, json_equal
from pybernetes.machinery.patch.meta import FieldMeta, PatchMeta

DIRECTIVE = "$patch"
DELETE = "delete"
RETAIN_KEYS_DIRECTIVE = "$retainKeys"
DELETE_FROM_PRIMITIVE_LIST = "$deleteFromPrimitiveList"
SET_ELEMENT_ORDER = "$setElementOrder"

REJECTED = "the server rejected our request due to an error in our request"

ERR_PRIMITIVE_LIST_FORMAT = "invalid patch format of primitive list"
ERR_RETAIN_KEYS_FORMAT = "invalid patch format of retainKeys"
ERR_SET_ELEMENT_ORDER_FORMAT = "invalid patch format of setElementOrder list"
ERR_RETAIN_KEYS_CONTENT = "patch content doesn't match retainKeys list"
ERR_LIST_OF_LISTS = "lists of lists are not supported"


def unprocessable(detail: str) -> StatusError:
    return StatusError(422, "Invalid", REJECTED, {"causes": [{"message": detail}]})


def failed(detail: str) -> StatusError:
    """An error upstream does not classify: answered as a 500 carrying the bare text."""
    return StatusError(500, "InternalError", detail)


def go_type(value: Any) -> str:
    if value is None:
        return "<nil>"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, dict):
        return "map[string]interface {}"
    if isinstance(value, list):
        return "[]interface {}"
    if isinstance(value, str):
        return "string"
    if isinstance(value, int):
        return "int64"
    return "float64"


def bad_arg_type(expected: str, actual: Any) -> StatusError:
    return failed(f"expected a {expected}, but received a {go_type(actual)}")


def no_merge_key(item: dict[str, Any], merge_key: str) -> StatusError:
    return failed(f"map: {go_repr(item)} does not contain declared merge key: {merge_key}")


def bad_patch_type(directive: Any, item: dict[str, Any]) -> StatusError:
    return failed(f"unknown patch type: {go_repr(directive)} in map: {go_repr(item)}")


def value_key(value: Any) -> Any:
    """A hashable identity for a scalar (booleans are not numbers, 1 is not "1")."""
    if isinstance(value, bool):
        return ("b", value)
    if isinstance(value, int | float):
        return ("n", value)
    if isinstance(value, str):
        return ("s", value)
    if value is None:
        return ("z", None)
    return ("j", repr(value))


def kind_of(value: Any) -> str:
    if isinstance(value, dict):
        return "map"
    if isinstance(value, list):
        return "slice"
    if value is None:
        return "nil"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, str):
        return "string"
    return "number"


def element_kind(*lists: list[Any]) -> str | None:
    """The common kind of the elements of ``lists`` (None when all are empty)."""
    found: str | None = None
    for items in lists:
        for item in items:
            item_kind = kind_of(item)
            if found is None:
                if item_kind == "slice":
                    raise unprocessable(ERR_LIST_OF_LISTS)
                found = item_kind
            elif item_kind != found:
                raise failed(f"list element types are not identical: {go_repr(list(lists))}")
    return found


def is_directive_key(key: str) -> bool:
    return (
        key == DIRECTIVE
        or key == RETAIN_KEYS_DIRECTIVE
        or key.startswith(SET_ELEMENT_ORDER + "/")
        or key.startswith(DELETE_FROM_PRIMITIVE_LIST + "/")
    )


def clean(value: Any) -> tuple[Any, bool]:
    """A patch value taken as is: drop maps that carry ``$patch`` and leftover directive keys
    and nulls inside maps (upstream drops them when it decodes into the typed object).
    Returns (value, keep)."""
    if isinstance(value, dict):
        if DIRECTIVE in value:
            return None, False
        result = {}
        for key, item in value.items():
            if item is None or is_directive_key(key):
                continue
            cleaned, keep = clean(item)
            if keep:
                result[key] = cleaned
        return result, True
    if isinstance(value, list):
        out = []
        for item in value:
            cleaned, keep = clean(item)
            if keep:
                out.append(cleaned)
        return out, True
    return value, True


def extract_key(key: str, prefix: str, error: str) -> str:
    head, sep, rest = key.partition("/")
    if not sep or head != prefix:
        raise bad_request(error)
    return rest


def field_of(meta: PatchMeta | None, name: str) -> FieldMeta | None:
    return meta.field(name) if meta is not None else None


def merge_key_value(item: Any, merge_key: str) -> Any:
    if not isinstance(item, dict):
        raise bad_arg_type("map[string]interface {}", item)
    if merge_key not in item:
        raise no_merge_key(item, merge_key)
    return item[merge_key]


def find_by_key(items: list[Any], merge_key: str, value: Any) -> int:
    for index, item in enumerate(items):
        if not isinstance(item, dict):
            raise failed(f"value for key {index} is not a map.")
        if merge_key in item and json_equal(item[merge_key], value):
            return index
    return -1
