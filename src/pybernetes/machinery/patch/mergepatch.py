"""JSON merge patch (RFC 7386) for ``application/merge-patch+json`` PATCH requests.

A patch object is merged key by key into the target: ``null`` deletes a key, an object merges
recursively, anything else (lists included) replaces.  A patch that is not an object replaces
the whole target.  ``create_merge_patch`` computes the patch that turns one document into
another (the inverse operation; used for three-way merges and tests).  Inputs are never
mutated.
"""

from __future__ import annotations

from typing import Any

from pybernetes.machinery.patch._json import deep_copy, json_equal


def apply_merge_patch(doc: Any, patch: Any) -> Any:
    """Return ``doc`` with the RFC 7386 merge patch ``patch`` applied."""
    if not isinstance(patch, dict):
        return deep_copy(patch)
    if not isinstance(doc, dict):
        doc = {}
    result = dict(doc)
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        elif isinstance(value, dict):
            result[key] = apply_merge_patch(result.get(key), value)
        else:
            result[key] = deep_copy(value)
    # Untouched values are shared with ``doc``: copy them so the result owns its containers.
    for key, value in result.items():
        if key not in patch and isinstance(value, dict | list):
            result[key] = deep_copy(value)
    return result


def create_merge_patch(original: Any, modified: Any) -> Any:
    """The merge patch that turns ``original`` into ``modified``.

    Null values inside ``modified`` cannot be expressed by RFC 7386 (null means delete) and
    are treated as absent.
    """
    if not isinstance(original, dict) or not isinstance(modified, dict):
        return deep_copy(modified)
    patch: dict[str, Any] = {}
    for key in original:
        if key not in modified or modified[key] is None:
            patch[key] = None
    for key, new in modified.items():
        if new is None:
            continue
        if key not in original:
            patch[key] = _without_nulls(new)
            continue
        old = original[key]
        if isinstance(old, dict) and isinstance(new, dict):
            sub = create_merge_patch(old, new)
            if sub:
                patch[key] = sub
        elif not json_equal(old, new):
            patch[key] = _without_nulls(new)
    return patch


def _without_nulls(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_nulls(v) for k, v in value.items() if v is not None}
    return deep_copy(value)
