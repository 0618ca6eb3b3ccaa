"""Pure decisions of the PersistentVolume binder (upstream pkg/controller/volume/persistentvolume,
``syncClaim`` / ``syncVolume``): no I/O, wire-shaped dicts in, plans and new objects out.

- ``decide_claim`` — what one claim needs: bind it to a volume (the one it names, or the best
  match from ``machinery.volumematch``), stay Pending (with the event upstream records), wait
  for its first consumer (WaitForFirstConsumer), hand it to an external provisioner, get the
  default StorageClass assigned (upstream's retroactive default class), or be marked Lost.
- ``decide_volume`` — what one volume needs: phase Available / Bound, let the claim side
  finish a binding, be released and reclaimed (Retain, Delete, Recycle) once its claim is
  gone, or be unbound when its claim went to another volume.
- The steps of a binding, each a pure "new object or None when nothing changes":
  ``bind_volume`` (claimRef + bound-by-controller), ``volume_status`` (phase),
  ``bind_claim`` (volumeName + bind-completed / bound-by-controller), ``claim_status``
  (phase, capacity, access modes), ``unbind_volume``, ``claim_with_provisioner`` and
  ``claim_with_class``.

Nothing here mutates its arguments (they come from informer caches).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

from pybernetes.machinery.volumematch import (
    BETA_STORAGE_CLASS_ANNOTATION,
    access_modes_satisfied,
    claim_storage_class,
    find_matching_volume,
    is_volume_bound_to_claim,
    requested_storage,
    volume_capacity,
    volume_modes_match,
    volume_storage_class,
)

Obj = dict[str, Any]

BIND_COMPLETED = "pv.kubernetes.io/bind-completed"
BOUND_BY_CONTROLLER = "pv.kubernetes.io/bound-by-controller"
PROVISIONED_BY = "pv.kubernetes.io/provisioned-by"
SELECTED_NODE = "volume.kubernetes.io/selected-node"
STORAGE_PROVISIONER = "volume.kubernetes.io/storage-provisioner"
BETA_STORAGE_PROVISIONER = "volume.beta.kubernetes.io/storage-provisioner"
DEFAULT_CLASS_ANNOTATIONS = ("storageclass.kubernetes.io/is-default-class",
                             "storageclass.beta.kubernetes.io/is-default-class")
NO_PROVISIONER = "kubernetes.io/no-provisioner"
WAIT_FOR_FIRST_CONSUMER = "WaitForFirstConsumer"
NORMAL, WARNING = "Normal", "Warning"

# claim actions
BIND = "bind"  # bind plan.volume and the claim (both sides)
PENDING = "pending"  # claim phase Pending
LOST = "lost"  # claim phase Lost
WAIT = "wait-for-first-consumer"  # Pending, the WaitForFirstConsumer event (once)
PROVISION = "provision"  # annotate the claim for plan.provisioner
ASSIGN_CLASS = "assign-class"  # set spec.storageClassName to plan.storage_class

# volume reclaim outcomes
RETAIN = "retain"
DELETE = "delete"  # delete the PV object
EXTERNAL = "external"  # left to the provisioner that made it


@dataclass(frozen=True)
class Note:
    """An event to record: about the claim or the volume of the sync."""

    about: str  # "claim" | "volume"
    type: str
    reason: str
    message: str


@dataclass
class ClaimPlan:
    action: str
    volume: Obj | None = None
    provisioner: str = ""
    storage_class: str = ""
    notes: list[Note] = field(default_factory=list)


@dataclass
class VolumePlan:
    phase: str | None = None  # the phase to write (None: leave it)
    message: str = ""
    reclaim: str = ""  # "", RETAIN, DELETE, EXTERNAL
    unbind: bool = False
    enqueue_claim: bool = False
    notes: list[Note] = field(default_factory=list)


# -- small readers ---------------------------------------------------------------------------------


def _d(value: Any) -> Obj:
    return value if isinstance(value, dict) else {}


def annotations(obj: Obj) -> Obj:
    return _d(_d(obj.get("metadata")).get("annotations"))


def has_annotation(obj: Obj, name: str) -> bool:
    return name in annotations(obj)


def claim_ref(pv: Obj) -> Obj | None:
    ref = _d(pv.get("spec")).get("claimRef")
    return ref if isinstance(ref, dict) else None


def claim_key_of_ref(ref: Obj) -> str:
    return f"{ref.get('namespace') or ''}/{ref.get('name') or ''}"


def volume_phase(pv: Obj) -> str:
    return str(_d(pv.get("status")).get("phase") or "")


def claim_phase(claim: Obj) -> str:
    return str(_d(claim.get("status")).get("phase") or "")


def _name(obj: Obj) -> str:
    return str(_d(obj.get("metadata")).get("name") or "")


def _uid(obj: Obj) -> str:
    return str(_d(obj.get("metadata")).get("uid") or "")


def is_delay_binding(storage_class: Obj | None) -> bool:
    return storage_class is not None and storage_class.get("volumeBindingMode") == WAIT_FOR_FIRST_CONSUMER


def default_storage_class(classes: list[Obj]) -> Obj | None:
    """The default StorageClass; with several, the newest (ties: by name), as upstream."""
    defaults = [c for c in classes
                if any(str(annotations(c).get(a, "")).lower() == "true" for a in DEFAULT_CLASS_ANNOTATIONS)]
    if not defaults:
        return None
    newest = max(str(_d(c.get("metadata")).get("creationTimestamp") or "") for c in defaults)
    return sorted((c for c in defaults if str(_d(c.get("metadata")).get("creationTimestamp") or "") == newest),
                  key=_name)[0]


def volume_mismatch(pv: Obj, claim: Obj) -> str:
    """Why ``pv`` cannot serve ``claim`` (upstream checkVolumeSatisfyClaim); "" when it can."""
    if _d(pv.get("metadata")).get("deletionTimestamp"):
        return f"the volume is being deleted {_name(pv)!r}"
    if volume_capacity(pv) < requested_storage(claim):
        return "requested PV is too small"
    if volume_storage_class(pv) != claim_storage_class(claim):
        return "storageClassName does not match"
    if not volume_modes_match(claim, pv):
        return "incompatible volumeMode"
    if not access_modes_satisfied(claim, pv):
        return "incompatible accessMode"
    return ""


def prebound_to(claim: Obj, volumes: list[Obj]) -> list[Obj]:
    return [v for v in volumes if is_volume_bound_to_claim(v, claim)]


# -- claims ----------------------------------------------------------------------------------------


def decide_claim(claim: Obj, *, volume: Obj | None, volumes: list[Obj], storage_class: Obj | None,
                 default_class: str = "") -> ClaimPlan:
    """The plan for ``claim``.  ``volume``: the PV its spec.volumeName names (None when unset
    or missing); ``volumes``: every PV; ``storage_class``: the claim's StorageClass (None when
    it has none or it does not exist); ``default_class``: the default class's name ("" none)."""
    if has_annotation(claim, BIND_COMPLETED):
        return _decide_bound_claim(claim, volume)
    volume_name = str(_d(claim.get("spec")).get("volumeName") or "")
    if volume_name:
        return _decide_prebound_claim(claim, volume_name, volume)
    return _decide_unbound_claim(claim, volumes, storage_class, default_class)


def _decide_unbound_claim(claim: Obj, volumes: list[Obj], storage_class: Obj | None,
                          default_class: str) -> ClaimPlan:
    delay = is_delay_binding(storage_class)
    waiting = delay and not has_annotation(claim, SELECTED_NODE)
    # A claim waiting for its first consumer binds only to a volume pre-bound to it (by a user,
    # or by the scheduler's VolumeBinding PreBind); the scheduler picks any other.
    candidates = prebound_to(claim, volumes) if waiting else volumes
    match = find_matching_volume(claim, candidates)
    if match is not None:
        return ClaimPlan(BIND, volume=match)
    spec = _d(claim.get("spec"))
    if default_class and spec.get("storageClassName") is None \
            and not has_annotation(claim, BETA_STORAGE_CLASS_ANNOTATION):
        return ClaimPlan(ASSIGN_CLASS, storage_class=default_class)
    class_name = claim_storage_class(claim)
    if waiting:
        return ClaimPlan(WAIT, notes=[Note("claim", NORMAL, "WaitForFirstConsumer",
                                           "waiting for first consumer to be created before binding")])
    if not class_name:
        return ClaimPlan(PENDING, notes=[Note(
            "claim", NORMAL, "FailedBinding",
            "no persistent volumes available for this claim and no storage class is set")])
    if storage_class is None:
        return ClaimPlan(PENDING, notes=[Note(
            "claim", WARNING, "ProvisioningFailed", f'storageclass.storage.k8s.io "{class_name}" not found')])
    provisioner = str(storage_class.get("provisioner") or "")
    if not provisioner or provisioner == NO_PROVISIONER:
        return ClaimPlan(PENDING, notes=[Note(
            "claim", WARNING, "ProvisioningFailed", f"no volume plugin matched name: {provisioner}")])
    plan = ClaimPlan(PROVISION, provisioner=provisioner)
    if claim_with_provisioner(claim, provisioner) is not None:
        plan.notes.append(Note(
            "claim", NORMAL, "ExternalProvisioning",
            f"Waiting for a volume to be created either by the external provisioner '{provisioner}' "
            "or manually by the system administrator. If volume creation is delayed, please verify "
            "that the provisioner is running and correctly registered."))
    return plan


def _decide_prebound_claim(claim: Obj, volume_name: str, volume: Obj | None) -> ClaimPlan:
    """A claim that names its volume and whose binding is not complete."""
    if volume is None:
        return ClaimPlan(PENDING)  # the user asked for a volume that does not exist (yet)
    if claim_ref(volume) is None:
        reason = volume_mismatch(volume, claim)
        if reason:
            return ClaimPlan(PENDING, notes=[Note(
                "claim", WARNING, "VolumeMismatch", f"Cannot bind to requested volume {volume_name!r}: {reason}")])
        return ClaimPlan(BIND, volume=volume)
    if is_volume_bound_to_claim(volume, claim):
        return ClaimPlan(BIND, volume=volume)
    return ClaimPlan(PENDING, notes=[Note(
        "claim", WARNING, "FailedBinding", f"volume {volume_name!r} already bound to a different claim.")])


def _decide_bound_claim(claim: Obj, volume: Obj | None) -> ClaimPlan:
    """A claim whose binding completed once."""
    lost = claim_phase(claim) == "Lost"
    if not _d(claim.get("spec")).get("volumeName"):
        return _lost(lost, "ClaimLost", "Bound claim has lost reference to PersistentVolume. Data on the volume is lost!")
    if volume is None:
        return _lost(lost, "ClaimLost", "Bound claim has lost its PersistentVolume. Data on the volume is lost!")
    ref = claim_ref(volume)
    if ref is None or (ref.get("uid") or "") == _uid(claim):
        return ClaimPlan(BIND, volume=volume)
    return _lost(lost, "ClaimMisbound", "Two claims are bound to the same volume, this one is bound incorrectly")


def _lost(already: bool, reason: str, message: str) -> ClaimPlan:
    return ClaimPlan(LOST, notes=[] if already else [Note("claim", WARNING, reason, message)])


# -- volumes ---------------------------------------------------------------------------------------


def claim_matches_ref(pv: Obj, claim: Obj | None) -> bool:
    """True when ``claim`` is the claim the volume's claimRef means (uid checked when set)."""
    ref = claim_ref(pv)
    if ref is None or claim is None:
        return False
    return not ref.get("uid") or ref.get("uid") == _uid(claim)


def decide_volume(pv: Obj, claim: Obj | None) -> VolumePlan:
    """The plan for ``pv``; ``claim`` is the claim its claimRef names, None when that claim is
    gone (not found, or another claim of that name: a different uid)."""
    ref = claim_ref(pv)
    if ref is None:
        return VolumePlan(phase="Available")
    if not ref.get("uid"):
        # pre-bound (by a user) to a claim that has not bound yet: the claim's sync does it
        return VolumePlan(phase="Available", enqueue_claim=True)
    if claim is None or not claim_matches_ref(pv, claim):
        return release(pv)
    claim_volume = str(_d(claim.get("spec")).get("volumeName") or "")
    if not claim_volume:
        if not volume_modes_match(claim, pv):
            return VolumePlan(notes=[
                Note("volume", WARNING, "VolumeMismatch", "Cannot bind PersistentVolume to requested "
                     f"PersistentVolumeClaim {_name(claim)!r} due to incompatible volumeMode."),
                Note("claim", WARNING, "VolumeMismatch", f"Cannot bind PersistentVolume {_name(pv)!r} to "
                     "requested PersistentVolumeClaim due to incompatible volumeMode.")])
        # bound on this side only (by this controller, the scheduler or a user): the claim's
        # sync completes the binding
        return VolumePlan(enqueue_claim=True)
    if claim_volume == _name(pv):
        return VolumePlan(phase="Bound")
    # the claim went to another volume
    if has_annotation(pv, PROVISIONED_BY) and _reclaim_policy(pv) == "Delete":
        return release(pv)  # provisioned for that claim, now unneeded
    return VolumePlan(phase="Available", unbind=True)


def _reclaim_policy(pv: Obj) -> str:
    return str(_d(pv.get("spec")).get("persistentVolumeReclaimPolicy") or "Retain")


def release(pv: Obj) -> VolumePlan:
    """A volume whose claim is gone: Released, then what its reclaim policy says.  A Failed
    volume stays Failed (so the user sees what went wrong)."""
    phase = volume_phase(pv)
    failed = phase == "Failed"
    policy = _reclaim_policy(pv)
    if policy == "Retain":
        return VolumePlan(phase=None if failed else "Released", reclaim=RETAIN)
    if policy == "Delete":
        if has_annotation(pv, PROVISIONED_BY):
            return VolumePlan(phase=None if failed else "Released", reclaim=EXTERNAL)
        return VolumePlan(phase=None if failed else "Released", reclaim=DELETE, notes=[Note(
            "volume", NORMAL, "VolumeDelete", "the volume's claim is gone and its reclaim policy is Delete: "
            "deleting the PersistentVolume")])
    if policy == "Recycle":
        message = "No recycler plugin found for the volume!"
        notes = [] if failed else [Note("volume", WARNING, "VolumeFailedRecycle", message)]
        return VolumePlan(phase="Failed", message=message, notes=notes)
    message = f"Volume has unrecognized PersistentVolumeReclaimPolicy {policy!r}"
    return VolumePlan(phase="Failed", message=message,
                      notes=[] if failed else [Note("volume", WARNING, "VolumeUnknownReclaimPolicy", message)])


# -- the steps of a binding (new object, or None when nothing changes) -------------------------------


def _with_annotation(obj: Obj, name: str, value: str) -> None:
    meta = obj.setdefault("metadata", {})
    if not isinstance(meta.get("annotations"), dict):
        meta["annotations"] = {}
    meta["annotations"][name] = value


def claim_reference(claim: Obj) -> Obj:
    meta = _d(claim.get("metadata"))
    ref: Obj = {"kind": "PersistentVolumeClaim", "apiVersion": "v1",
                "namespace": meta.get("namespace") or "", "name": meta.get("name") or ""}
    for key in ("uid", "resourceVersion"):
        if meta.get(key):
            ref[key] = meta[key]
    return ref


def bind_volume(pv: Obj, claim: Obj) -> Obj | None:
    """``pv`` with a claimRef to ``claim`` (and bound-by-controller when the controller chose
    the pair); None when it already points there."""
    ref = claim_ref(pv)
    meta = _d(claim.get("metadata"))
    chosen_here = not is_volume_bound_to_claim(pv, claim)
    same = ref is not None and ref.get("name") == meta.get("name") \
        and (ref.get("namespace") or "") == (meta.get("namespace") or "") \
        and (ref.get("uid") or "") == (meta.get("uid") or "")
    mark = chosen_here and not has_annotation(pv, BOUND_BY_CONTROLLER)
    if same and not mark:
        return None
    new = copy.deepcopy(pv)
    if not same:
        new.setdefault("spec", {})["claimRef"] = claim_reference(claim)
    if mark:
        _with_annotation(new, BOUND_BY_CONTROLLER, "yes")
    return new


def unbind_volume(pv: Obj) -> Obj:
    """``pv`` set free: claimRef removed when the controller bound it, else (pre-bound by a
    user) only the claim's uid is dropped."""
    new = copy.deepcopy(pv)
    if has_annotation(new, BOUND_BY_CONTROLLER):
        new["spec"].pop("claimRef", None)
        notes = new["metadata"]["annotations"]
        del notes[BOUND_BY_CONTROLLER]
        if not notes:
            del new["metadata"]["annotations"]
    else:
        ref = new["spec"]["claimRef"]
        ref.pop("uid", None)
        ref.pop("resourceVersion", None)
    return new


def volume_status(pv: Obj, phase: str, message: str = "") -> Obj | None:
    """The volume's status with ``phase`` (and ``message``); None when already so."""
    status = _d(pv.get("status"))
    if status.get("phase") == phase and (status.get("message") or "") == message:
        return None
    new = copy.deepcopy(status)
    new["phase"] = phase
    if message:
        new["message"] = message
    else:
        new.pop("message", None)
    return new


def bind_claim(claim: Obj, pv: Obj) -> Obj | None:
    """``claim`` with spec.volumeName and the binding annotations; None when already so."""
    name = _name(pv)
    chosen_here = _d(claim.get("spec")).get("volumeName") != name
    mark = chosen_here and not has_annotation(claim, BOUND_BY_CONTROLLER)
    complete = not has_annotation(claim, BIND_COMPLETED)
    if not (chosen_here or mark or complete):
        return None
    new = copy.deepcopy(claim)
    new.setdefault("spec", {})["volumeName"] = name
    if mark:
        _with_annotation(new, BOUND_BY_CONTROLLER, "yes")
    if complete:
        _with_annotation(new, BIND_COMPLETED, "yes")
    return new


def claim_status(claim: Obj, phase: str, pv: Obj | None = None) -> Obj | None:
    """The claim's status in ``phase``; capacity and access modes come from ``pv`` when given
    (Bound) and are cleared otherwise.  None when already so."""
    status = _d(claim.get("status"))
    new = copy.deepcopy(status)
    new["phase"] = phase
    if pv is not None:
        spec = _d(pv.get("spec"))
        new["accessModes"] = list(spec.get("accessModes") or [])
        new["capacity"] = copy.deepcopy(_d(spec.get("capacity")))
    else:
        new.pop("accessModes", None)
        new.pop("capacity", None)
    return None if new == status else new


def claim_with_provisioner(claim: Obj, provisioner: str) -> Obj | None:
    """``claim`` annotated for an external provisioner; None when already so."""
    notes = annotations(claim)
    if notes.get(STORAGE_PROVISIONER) == provisioner and notes.get(BETA_STORAGE_PROVISIONER) == provisioner:
        return None
    new = copy.deepcopy(claim)
    _with_annotation(new, STORAGE_PROVISIONER, provisioner)
    _with_annotation(new, BETA_STORAGE_PROVISIONER, provisioner)
    return new


def claim_with_class(claim: Obj, class_name: str) -> Obj:
    new = copy.deepcopy(claim)
    new.setdefault("spec", {})["storageClassName"] = class_name
    return new
