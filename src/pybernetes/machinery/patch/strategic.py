"""Strategic merge patch (``application/strategic-merge-patch+json``), as upstream applies it
on the server (``StrategicMergeMapPatch`` with parallel lists merged and unmatched nulls
ignored).

How a field merges comes from its ``PatchMeta`` (see ``meta.py``): lists of objects with the
``merge`` strategy merge element by element on their merge key (``containers`` by ``name``,
``ports`` by ``containerPort``); lists of primitives with ``merge`` are unions; every other
list is replaced; objects merge recursively unless their strategy is ``replace``; ``null``
deletes a field.  Directives: ``$patch: replace|delete`` on an object, ``$patch:
delete|replace`` as a list element, ``$setElementOrder/<field>``,
``$deleteFromPrimitiveList/<field>`` and ``$retainKeys``.

With no metadata at all (``meta=None``: an unknown type) the patch is a JSON merge patch.
Neither input is mutated.  Errors carry upstream's codes and texts: malformed directive lists
are 400, content that contradicts ``$retainKeys`` and lists of lists are 422, other
malformed patches are the 500 upstream answers with the bare error text.
"""

from __future__ import annotations

from typing import Any

from pybernetes.machinery.errors import bad_request
from pybernetes.machinery.patch._json import deep_copy, json_equal
from pybernetes.machinery.patch._smp_common import (
    DELETE,
    DELETE_FROM_PRIMITIVE_LIST,
    DIRECTIVE,
    ERR_PRIMITIVE_LIST_FORMAT,
    ERR_RETAIN_KEYS_CONTENT,
    ERR_RETAIN_KEYS_FORMAT,
    ERR_SET_ELEMENT_ORDER_FORMAT,
    RETAIN_KEYS_DIRECTIVE,
    SET_ELEMENT_ORDER,
    bad_arg_type,
    bad_patch_type,
    clean,
    element_kind,
    extract_key,
    failed,
    field_of,
    find_by_key,
    kind_of,
    no_merge_key,
    unprocessable,
    value_key,
)
from pybernetes.machinery.patch._smp_order import (
    dedupe_scalars,
    normalize_order,
    partition_maps,
    partition_scalars,
    validate_set_order,
)
from pybernetes.machinery.patch.mergepatch import apply_merge_patch
from pybernetes.machinery.patch.meta import MERGE, REPLACE, PatchMeta


def apply_strategic_merge_patch(doc: Any, patch: Any, meta: PatchMeta | None) -> Any:
    """Apply the strategic merge patch ``patch`` to ``doc`` (a dict) described by ``meta``."""
    if not isinstance(patch, dict):
        raise bad_request("invalid JSON document")
    if meta is None:
        return apply_merge_patch(doc, patch)
    original = deep_copy(doc) if isinstance(doc, dict) else {}
    return _merge_map(original, deep_copy(patch), meta)


# ---------------------------------------------------------------------------------------
# maps
# ---------------------------------------------------------------------------------------


def _merge_map(original: dict[str, Any], patch: dict[str, Any], meta: PatchMeta | None) -> dict[str, Any]:
    if DIRECTIVE in patch:
        directive = patch[DIRECTIVE]
        if directive == REPLACE:
            del patch[DIRECTIVE]
            return clean(patch)[0]
        if directive == DELETE:
            return {}
        raise bad_patch_type(directive, patch)

    _apply_retain_keys(original, patch)
    _merge_ordered_lists(original, patch, meta)

    for raw_key, value in patch.items():
        key = raw_key
        is_delete_list = False
        if raw_key.startswith(DELETE_FROM_PRIMITIVE_LIST):
            key = extract_key(raw_key, DELETE_FROM_PRIMITIVE_LIST, ERR_PRIMITIVE_LIST_FORMAT)
            is_delete_list = True
        elif raw_key.startswith(SET_ELEMENT_ORDER):
            continue  # already handled (or malformed and rejected) by _merge_ordered_lists

        if value is None:
            original.pop(key, None)
            continue

        if key not in original or kind_of(original[key]) != kind_of(value):
            if not is_delete_list:
                cleaned, keep = clean(value)
                if keep:
                    original[key] = cleaned
                else:
                    original.pop(key, None)
            continue

        current = original[key]
        field = field_of(meta, key)
        strategy = field.strategy if field is not None else ""
        sub = field.elem if field is not None else None
        if isinstance(current, dict):
            if strategy == REPLACE:
                original[key] = clean(value)[0]
            else:
                original[key] = _merge_map(current, value, sub)
        elif isinstance(current, list):
            merge_key = field.merge_key if field is not None else ""
            original[key] = _merge_list_field(current, value, sub, strategy, merge_key, is_delete_list)
        else:
            original[key] = value
    return original


def _apply_retain_keys(original: dict[str, Any], patch: dict[str, Any]) -> None:
    if RETAIN_KEYS_DIRECTIVE not in patch:
        return
    retain = patch.pop(RETAIN_KEYS_DIRECTIVE)
    if not isinstance(retain, list):
        raise bad_request(ERR_RETAIN_KEYS_FORMAT)
    keep = {item for item in retain if isinstance(item, str)}
    for key, value in patch.items():
        if value is None or key.startswith(DELETE_FROM_PRIMITIVE_LIST) or key.startswith(SET_ELEMENT_ORDER):
            continue
        if key not in keep:
            raise unprocessable(ERR_RETAIN_KEYS_CONTENT)
    for key in [k for k in original if k not in keep]:
        del original[key]


# ---------------------------------------------------------------------------------------
# lists
# ---------------------------------------------------------------------------------------


def _merge_list_field(
    original: list[Any],
    patch: list[Any],
    meta: PatchMeta | None,
    strategy: str,
    merge_key: str,
    is_delete_list: bool,
) -> list[Any]:
    if strategy == MERGE:
        return _merge_list(original, patch, meta, merge_key, is_delete_list)
    return clean(patch)[0]


def _merge_list(
    original: list[Any], patch: list[Any], meta: PatchMeta | None, merge_key: str, is_delete_list: bool
) -> list[Any]:
    if not original and not patch:
        return original
    kind = element_kind(original, patch)
    if kind != "map":
        if is_delete_list:
            doomed = {value_key(v) for v in patch}
            return [v for v in original if value_key(v) not in doomed]
        merged = dedupe_scalars(original + patch)
    else:
        if not merge_key:
            raise failed("cannot merge lists without merge key")
        original, patch = _merge_special_elements(original, patch, merge_key)
        merged = _merge_elements(list(original), patch, meta, merge_key)
    if kind == "map":
        patch_items, server_only = partition_maps(merged, patch, merge_key)
    else:
        patch_items, server_only = partition_scalars(merged, patch)
    return normalize_order(patch_items, server_only, patch, original, merge_key, kind)


def _merge_special_elements(
    original: list[Any], patch: list[Any], merge_key: str
) -> tuple[list[Any], list[Any]]:
    """Apply ``$patch`` list elements: delete by merge key, or replace the whole list."""
    plain: list[Any] = []
    replace = False
    for item in patch:
        if DIRECTIVE not in item:
            plain.append(item)
            continue
        directive = item[DIRECTIVE]
        if directive == DELETE:
            if merge_key not in item:
                raise no_merge_key(item, merge_key)
            target = item[merge_key]
            original = [o for o in original if not (
                isinstance(o, dict) and merge_key in o and json_equal(o[merge_key], target)
            )]
        elif directive == REPLACE:
            replace = True
        elif directive == MERGE:
            raise failed("merging lists cannot yet be specified in the patch")
        else:
            raise bad_patch_type(directive, item)
    if replace:
        return [clean(p)[0] for p in plain], []
    return original, plain


def _merge_elements(
    original: list[Any], patch: list[Any], meta: PatchMeta | None, merge_key: str
) -> list[Any]:
    for item in patch:
        if merge_key not in item:
            raise no_merge_key(item, merge_key)
        index = find_by_key(original, merge_key, item[merge_key])
        if index >= 0:
            original[index] = _merge_map(original[index], item, meta)
        else:
            original.append(clean(item)[0])
    return original


# ---------------------------------------------------------------------------------------
# $setElementOrder
# ---------------------------------------------------------------------------------------


def _merge_ordered_lists(original: dict[str, Any], patch: dict[str, Any], meta: PatchMeta | None) -> None:
    """Merge every list that has a ``$setElementOrder/<field>`` and order it as told."""
    for directive_key in [k for k in patch if k.startswith(SET_ELEMENT_ORDER)]:
        order = patch.pop(directive_key)
        if not isinstance(order, list):
            raise bad_arg_type("[]interface {}", order)
        key = extract_key(directive_key, SET_ELEMENT_ORDER, ERR_SET_ELEMENT_ORDER_FORMAT)
        found_original = key in original
        found_patch = key in patch
        original_list: list[Any] = []
        patch_list: list[Any] = []
        if found_original:
            if not isinstance(original[key], list):
                raise bad_arg_type("[]interface {}", original[key])
            original_list = original[key]
        if found_patch:
            if not isinstance(patch[key], list):
                raise bad_arg_type("[]interface {}", patch[key])
            patch_list = patch[key]
        field = field_of(meta, key)
        strategy = field.strategy if field is not None else ""
        merge_key = field.merge_key if field is not None else ""
        sub = field.elem if field is not None else None
        validate_set_order(patch_list, order, merge_key)

        if found_original and not found_patch:
            merged = original_list
        elif found_patch and not found_original:
            merged = clean(patch_list)[0]
        elif found_original and found_patch:
            merged = _merge_list_field(original_list, patch_list, sub, strategy, merge_key, False)
        else:
            continue

        kind = element_kind(original_list, patch_list)
        if kind is None:
            original[key] = merged
            patch.pop(key, None)
            continue
        if merge_key:
            patch_items, server_only = partition_maps(merged, order, merge_key)
        else:
            patch_items, server_only = partition_scalars(merged, order)
        original[key] = normalize_order(patch_items, server_only, order, original_list, merge_key, kind)
        patch.pop(key, None)


