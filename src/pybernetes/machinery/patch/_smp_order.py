"""Element order of merged lists, as upstream's strategic merge patch decides it: patch items
in patch (or ``$setElementOrder``) order, server-only items in live order, interleaved by the
live order where both are known; and the check that a patch list agrees with its
``$setElementOrder`` list."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pybernetes.machinery.patch._json import go_repr, json_equal
from pybernetes.machinery.patch._smp_common import (
    DELETE,
    DIRECTIVE,
    SET_ELEMENT_ORDER,
    bad_arg_type,
    failed,
    find_by_key,
    merge_key_value,
    value_key,
)


def dedupe_scalars(items: list[Any]) -> list[Any]:
    seen: set[Any] = set()
    out = []
    for item in items:
        key = value_key(item)
        if key not in seen:
            seen.add(key)
            out.append(item)
    return out


def partition_scalars(items: list[Any], by: list[Any]) -> tuple[list[Any], list[Any]]:
    present = {value_key(v) for v in by}
    inside = [v for v in items if value_key(v) in present]
    outside = [v for v in items if value_key(v) not in present]
    return inside, outside


def partition_maps(items: list[Any], by: list[Any], merge_key: str) -> tuple[list[Any], list[Any]]:
    inside, outside = [], []
    for item in items:
        value = merge_key_value(item, merge_key)
        (inside if find_by_key(by, merge_key, value) >= 0 else outside).append(item)
    return inside, outside


def index_fn(order: list[Any], merge_key: str, kind: str) -> Callable[[Any], int]:
    """A function giving an element's position in ``order`` (-1 when absent)."""
    positions: dict[Any, int] = {}
    for i, item in enumerate(order):
        if kind == "map":
            value = item.get(merge_key) if isinstance(item, dict) else None
        else:
            value = item
        positions.setdefault(value_key(value), i)

    def index(item: Any) -> int:
        value = item.get(merge_key) if kind == "map" and isinstance(item, dict) else item
        return positions.get(value_key(value), -1)

    return index


def sort_by(items: list[Any], order: list[Any], merge_key: str, kind: str) -> list[Any]:
    doomed: list[Any] = []
    if kind == "map":
        for item in items:
            merge_key_value(item, merge_key)
        for item in order:
            merge_key_value(item, merge_key)
        doomed = [i for i in items if i.get(DIRECTIVE) == DELETE]
        items = [i for i in items if i.get(DIRECTIVE) != DELETE]
    index = index_fn(order, merge_key, kind)
    size = len(order)

    def position(item: Any) -> int:
        found = index(item)
        return found if found >= 0 else size

    return sorted(items, key=position) + doomed


def normalize_order(
    patch_items: list[Any],
    server_only: list[Any],
    patch_order: list[Any],
    server_order: list[Any],
    merge_key: str,
    kind: str,
) -> list[Any]:
    """Order patch items as the patch (or $setElementOrder) says and server-only items as the
    live list has them, then interleave them by the live order where both are known."""
    right = sort_by(patch_items, patch_order, merge_key, kind)
    left = sort_by(server_only, server_order, merge_key, kind)
    index = index_fn(server_order, merge_key, kind)
    out: list[Any] = []
    i = j = 0
    while i < len(left) or j < len(right):
        if j >= len(right):
            out.append(left[i])
            i += 1
        elif i >= len(left):
            out.append(right[j])
            j += 1
        else:
            li, ri = index(left[i]), index(right[j])
            if li >= 0 and ri >= 0 and li < ri:
                out.append(left[i])
                i += 1
            else:
                out.append(right[j])
                j += 1
    return out


def validate_set_order(patch_list: list[Any], order: list[Any], merge_key: str) -> None:
    """The patch list's elements must appear in the order list, in the same relative order."""
    if not order or not patch_list:
        return
    if merge_key:
        for item in patch_list:
            if not isinstance(item, dict):
                raise bad_arg_type("map[string]interface {}", item)
        kept = [i for i in patch_list if i.get(DIRECTIVE) != DELETE]
    else:
        kept = list(patch_list)
    p = s = 0
    while p < len(kept) and s < len(order):
        item = kept[p]
        if isinstance(item, dict) and DIRECTIVE in item:
            p += 1
            continue
        if merge_key:
            same = json_equal(merge_key_value(item, merge_key), merge_key_value(order[s], merge_key))
        else:
            same = value_key(item) == value_key(order[s])
        if same:
            p += 1
        s += 1
    if p < len(kept):
        raise failed(
            f"The order in patch list:\n{go_repr(patch_list)}\n doesn't match "
            f"{SET_ELEMENT_ORDER} list:\n{go_repr(order)}\n"
        )
