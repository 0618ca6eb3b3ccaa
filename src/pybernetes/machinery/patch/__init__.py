"""Patches applied to wire-shaped objects: JSON patch (RFC 6902), JSON merge patch (RFC 7386)
and Kubernetes strategic merge patch, plus the ``PatchMeta`` protocol that drives the latter.

Every function returns a new document and leaves its inputs untouched; a patch that cannot be
applied raises ``StatusError`` with the code and message upstream answers.
"""

from pybernetes.machinery.patch.jsonpatch import apply_json_patch
from pybernetes.machinery.patch.mergepatch import apply_merge_patch, create_merge_patch
from pybernetes.machinery.patch.meta import DictPatchMeta, FieldMeta, PatchMeta, parse_strategies
from pybernetes.machinery.patch.strategic import apply_strategic_merge_patch

__all__ = [
    "DictPatchMeta",
    "FieldMeta",
    "PatchMeta",
    "apply_json_patch",
    "apply_merge_patch",
    "apply_strategic_merge_patch",
    "create_merge_patch",
    "parse_strategies",
]
