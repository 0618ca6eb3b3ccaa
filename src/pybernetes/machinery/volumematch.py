"""Matching PersistentVolumeClaims to PersistentVolumes — pure helpers, no I/O.

Shared by the PersistentVolume binder controller and the scheduler's VolumeBinding plugin,
so that both choose the same volume for a claim.  The behaviour follows upstream's
``component-helpers/storage/volume`` helpers (``GetPersistentVolumeClaimClass``,
``IsVolumeBoundToClaim``, ``CheckAccessModes``, ``CheckVolumeModeMismatches`` and
``FindMatchingVolume``):

- a volume pre-bound to the claim (its ``spec.claimRef`` names the claim) wins when it fits
  (capacity, access modes, volume mode, not being deleted);
- otherwise the smallest *available* volume (no claimRef, not being deleted, phase neither
  Released nor Failed) of the claim's storage class whose capacity covers the request, whose
  access modes include the claim's, whose volume mode equals the claim's (Filesystem when
  unset) and whose labels satisfy the claim's ``spec.selector``.

Objects are wire-shaped dicts; nothing here mutates its arguments.  Unparsable quantities
count as 0 bytes (the API server's validation rejects them before they are stored).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping
from typing import Any

from pybernetes.machinery.quantity import parse_quantity, quantity_value
from pybernetes.machinery.selectors import SelectorParseError, label_selector_from_dict

BETA_STORAGE_CLASS_ANNOTATION = "volume.beta.kubernetes.io/storage-class"
VOLUME_MODE_FILESYSTEM = "Filesystem"
_UNAVAILABLE_PHASES = frozenset({"Released", "Failed"})

__all__ = [
    "BETA_STORAGE_CLASS_ANNOTATION",
    "access_modes_satisfied",
    "claim_storage_class",
    "find_matching_volume",
    "is_volume_bound_to_claim",
    "requested_storage",
    "volume_capacity",
    "volume_modes_match",
    "volume_storage_class",
]


def _section(obj: Mapping[str, Any] | None, name: str) -> Mapping[str, Any]:
    value = (obj or {}).get(name)
    return value if isinstance(value, Mapping) else {}


def _storage_class(obj: Mapping[str, Any]) -> str:
    # upstream reads the beta annotation first, then the field (they agree on valid objects)
    annotations = _section(_section(obj, "metadata"), "annotations")
    if BETA_STORAGE_CLASS_ANNOTATION in annotations:
        return str(annotations[BETA_STORAGE_CLASS_ANNOTATION] or "")
    return str(_section(obj, "spec").get("storageClassName") or "")


def claim_storage_class(claim: Mapping[str, Any]) -> str:
    """The claim's class: ``spec.storageClassName`` or the beta annotation
    ``volume.beta.kubernetes.io/storage-class`` (the annotation wins when both are set, as
    upstream's GetPersistentVolumeClaimClass); ``""`` when neither."""
    return _storage_class(claim)


def volume_storage_class(pv: Mapping[str, Any]) -> str:
    """The volume's class, read like ``claim_storage_class``."""
    return _storage_class(pv)


def _bytes(value: Any) -> int:
    if value is None:
        return 0
    try:
        return quantity_value(parse_quantity(value))
    except ValueError:
        return 0


def requested_storage(claim: Mapping[str, Any]) -> int:
    """Bytes requested by ``spec.resources.requests.storage`` (0 when unset)."""
    requests = _section(_section(_section(claim, "spec"), "resources"), "requests")
    return _bytes(requests.get("storage"))


def volume_capacity(pv: Mapping[str, Any]) -> int:
    """Bytes of ``spec.capacity.storage`` (0 when unset)."""
    return _bytes(_section(_section(pv, "spec"), "capacity").get("storage"))


def access_modes_satisfied(claim: Mapping[str, Any], pv: Mapping[str, Any]) -> bool:
    """True when every access mode the claim asks for is among the volume's."""
    offered = set(_section(pv, "spec").get("accessModes") or ())
    return all(mode in offered for mode in _section(claim, "spec").get("accessModes") or ())


def _volume_mode(spec: Mapping[str, Any]) -> str:
    return str(spec.get("volumeMode") or VOLUME_MODE_FILESYSTEM)


def volume_modes_match(claim: Mapping[str, Any], pv: Mapping[str, Any]) -> bool:
    """True when the claim's and the volume's volumeMode agree (Filesystem when unset)."""
    return _volume_mode(_section(claim, "spec")) == _volume_mode(_section(pv, "spec"))


def is_volume_bound_to_claim(pv: Mapping[str, Any], claim: Mapping[str, Any]) -> bool:
    """True when the volume's claimRef names the claim (namespace and name; the uids must
    agree too when both the claimRef and the claim carry one)."""
    ref = _section(pv, "spec").get("claimRef")
    if not isinstance(ref, Mapping):
        return False
    meta = _section(claim, "metadata")
    if ref.get("name") != meta.get("name") or (ref.get("namespace") or "") != (meta.get("namespace") or ""):
        return False
    ref_uid, claim_uid = ref.get("uid") or "", meta.get("uid") or ""
    return not (ref_uid and claim_uid and ref_uid != claim_uid)


def _being_deleted(pv: Mapping[str, Any]) -> bool:
    return bool(_section(pv, "metadata").get("deletionTimestamp"))


def find_matching_volume(
    claim: Mapping[str, Any],
    volumes: Iterable[Mapping[str, Any]],
    *,
    excluded: Collection[str] = (),
    volume_ok: Callable[[Mapping[str, Any]], bool] | None = None,
) -> dict | None:
    """The volume to bind ``claim`` to, or None (see the module docstring).

    ``excluded`` names volumes to skip (e.g. ones already assumed for other claims);
    ``volume_ok(pv)`` is an extra check a volume must pass (e.g. node affinity); when the
    volume pre-bound to the claim fails it, nothing matches (as upstream).  A claim whose
    selector cannot be parsed matches no volume.
    """
    selector_spec = _section(claim, "spec").get("selector")
    try:
        selector = label_selector_from_dict(selector_spec) if selector_spec is not None else None
    except SelectorParseError:
        return None
    requested = requested_storage(claim)
    wanted_class = claim_storage_class(claim)
    excluded_names = excluded if isinstance(excluded, (set, frozenset, dict)) else set(excluded)

    smallest: Mapping[str, Any] | None = None
    smallest_size = 0
    for pv in volumes:
        name = _section(pv, "metadata").get("name")
        if name in excluded_names:
            continue
        spec = _section(pv, "spec")
        has_ref = isinstance(spec.get("claimRef"), Mapping)
        bound_here = has_ref and is_volume_bound_to_claim(pv, claim)
        if has_ref and not bound_here:
            continue
        size = volume_capacity(pv)
        if size < requested or not volume_modes_match(claim, pv) or _being_deleted(pv):
            continue
        if not access_modes_satisfied(claim, pv):
            continue
        if bound_here:
            # as upstream: a pre-bound volume that fails the extra check (e.g. its node
            # affinity) means no match at all — the claim is not free to take another one
            if volume_ok is not None and not volume_ok(pv):
                return None
            return pv  # type: ignore[return-value]
        if _section(pv, "status").get("phase") in _UNAVAILABLE_PHASES:
            continue
        if selector is not None and not selector.matches(_section(_section(pv, "metadata"), "labels")):
            continue
        if volume_storage_class(pv) != wanted_class:
            continue
        if volume_ok is not None and not volume_ok(pv):
            continue
        if smallest is None or size < smallest_size:
            smallest, smallest_size = pv, size
    return smallest  # type: ignore[return-value]
