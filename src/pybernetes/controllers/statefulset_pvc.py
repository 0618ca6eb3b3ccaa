"""A StatefulSet's PersistentVolumeClaims, the pure part (upstream pkg/controller/statefulset
stateful_set_utils.go and stateful_pod_control.go, v1.32).

- ``claims_for(set, ordinal)``: the claims a pod of ``ordinal`` needs, one per
  volumeClaimTemplate, named ``<template>-<set>-<ordinal>``, in the set's namespace, labelled
  with the template's labels plus the set's selector matchLabels.
- The retention policy (``spec.persistentVolumeClaimRetentionPolicy``, Retain/Retain by
  default) is carried by controller ownerReferences on the claims, as upstream does it:

  ==========  ==========  ===============================================================
  whenScaled  whenDeleted  claim owners
  ==========  ==========  ===============================================================
  Retain      Retain       none of ours
  Retain      Delete       the set
  Delete      Retain       the pod, only once its ordinal is out of range (condemned)
  Delete      Delete       the set while the ordinal is in range, else the pod
  ==========  ==========  ===============================================================

  so the garbage collector deletes the claims with their owner.  A claim holding a reference
  to a previous set or pod of the same name (another uid) is left alone (``is_stale``: a new
  pod must wait until the old claim is gone); a claim controlled by something else loses our
  references and gets no new ones.
- ``claim_owner_refs_up_to_date`` / ``desired_owner_refs``: the check and the fix.
"""

from __future__ import annotations

from typing import Any

from pybernetes.controllers.podutil import new_controller_ref
from pybernetes.machinery.meta import clone, owner_references

Obj = dict[str, Any]

SET_KIND = {"apiVersion": "apps/v1", "kind": "StatefulSet"}
POD_KIND = {"apiVersion": "v1", "kind": "Pod"}
RETAIN = "Retain"
DELETE = "Delete"


def claim_name(template_name: str, set_name: str, ordinal: int) -> str:
    return f"{template_name}-{set_name}-{ordinal}"


def claim_templates(sts: Obj) -> list[Obj]:
    return [t for t in (sts.get("spec") or {}).get("volumeClaimTemplates") or [] if isinstance(t, dict)]


def template_name(template: Obj) -> str:
    return (template.get("metadata") or {}).get("name") or ""


def claims_for(sts: Obj, ordinal: int) -> dict[str, Obj]:
    """template name -> the claim (a new PVC body) a pod of ``ordinal`` mounts."""
    meta = sts.get("metadata") or {}
    selector_labels = ((sts.get("spec") or {}).get("selector") or {}).get("matchLabels") or {}
    out: dict[str, Obj] = {}
    for template in claim_templates(sts):
        tname = template_name(template)
        tmeta = template.get("metadata") or {}
        labels = dict(tmeta.get("labels") or {})
        labels.update(selector_labels)
        cmeta: Obj = {"name": claim_name(tname, meta.get("name") or "", ordinal),
                      "namespace": meta.get("namespace")}
        if labels:
            cmeta["labels"] = labels
        if tmeta.get("annotations"):
            cmeta["annotations"] = dict(tmeta["annotations"])
        if tmeta.get("finalizers"):
            cmeta["finalizers"] = list(tmeta["finalizers"])
        out[tname] = {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": cmeta,
                      "spec": clone(template.get("spec") or {})}
    return out


def retention_policy(sts: Obj) -> tuple[str, str]:
    """(whenScaled, whenDeleted); anything unknown counts as Retain, as upstream treats it."""
    policy = (sts.get("spec") or {}).get("persistentVolumeClaimRetentionPolicy") or {}
    scaled = policy.get("whenScaled") if policy.get("whenScaled") in (RETAIN, DELETE) else RETAIN
    deleted = policy.get("whenDeleted") if policy.get("whenDeleted") in (RETAIN, DELETE) else RETAIN
    return scaled, deleted


# -- owner references -------------------------------------------------------------------------


def _uid(obj: Obj) -> str:
    return (obj.get("metadata") or {}).get("uid") or ""


def _matches_ref(ref: Obj, obj: Obj, kind: Obj) -> bool:
    """Same apiVersion, kind and name (the uid is not compared)."""
    return (ref.get("apiVersion") == kind["apiVersion"] and ref.get("kind") == kind["kind"]
            and ref.get("name") == (obj.get("metadata") or {}).get("name"))


def _has_owner_ref(claim: Obj, owner: Obj) -> bool:
    uid = _uid(owner)
    return bool(uid) and any(ref.get("uid") == uid for ref in owner_references(claim))


def _has_stale_owner_ref(claim: Obj, obj: Obj, kind: Obj) -> bool:
    """A reference naming ``obj`` but with another uid (``obj`` without a uid — a pod not yet
    created — makes any reference by its name stale)."""
    for ref in owner_references(claim):
        if _matches_ref(ref, obj, kind):
            return ref.get("uid") != _uid(obj)
    return False


def has_unexpected_controller(claim: Obj, sts: Obj, pod: Obj) -> bool:
    """Whether, under a policy that deletes claims, the claim is controlled by something
    other than this set and pod (or by an old set/pod of the same name)."""
    if retention_policy(sts) == (RETAIN, RETAIN):
        return False
    for ref in owner_references(claim):
        if _matches_ref(ref, sts, SET_KIND):
            if ref.get("uid") != _uid(sts):
                return True
            continue
        if _matches_ref(ref, pod, POD_KIND):
            if ref.get("uid") != _uid(pod):
                return True
            continue
        if ref.get("controller") is True:
            return True
    return False


def _has_non_controller_owner(claim: Obj, sts: Obj, pod: Obj) -> bool:
    uids = {_uid(sts), _uid(pod)} - {""}
    return any(ref.get("uid") in uids and ref.get("controller") is not True for ref in owner_references(claim))


def claim_owner_refs_up_to_date(claim: Obj, sts: Obj, pod: Obj, in_range: bool) -> bool:
    """Whether the claim's ownerReferences already say what the retention policy wants
    (``in_range``: the pod's ordinal is within the set's ordinals).  Claims in an unknown
    state (stale references) count as up to date: they are not to be touched."""
    if _has_stale_owner_ref(claim, sts, SET_KIND) or _has_stale_owner_ref(claim, pod, POD_KIND):
        return True
    if has_unexpected_controller(claim, sts, pod):
        return not (_has_owner_ref(claim, sts) or _has_owner_ref(claim, pod))
    if _has_non_controller_owner(claim, sts, pod):
        return False
    want_set, want_pod = wanted_owners(sts, in_range)
    return _has_owner_ref(claim, sts) == want_set and _has_owner_ref(claim, pod) == want_pod


def wanted_owners(sts: Obj, in_range: bool) -> tuple[bool, bool]:
    """(the set should own the claim, the pod should own it)."""
    scaled, deleted = retention_policy(sts)
    scaled_down = not in_range
    if scaled == RETAIN:
        return deleted == DELETE, False
    if deleted == RETAIN:
        return False, scaled_down
    return not scaled_down, scaled_down


def desired_owner_refs(claim: Obj, sts: Obj, pod: Obj, in_range: bool) -> list[Obj]:
    """The claim's ownerReferences as the retention policy wants them: references to this set
    and pod scrubbed, then controller references added as ``wanted_owners`` says (none when
    another controller holds the claim)."""
    unexpected = has_unexpected_controller(claim, sts, pod)
    refs = [dict(r) for r in owner_references(claim)
            if not (_matches_ref(r, sts, SET_KIND) or _matches_ref(r, pod, POD_KIND))]
    if unexpected:
        return refs
    want_set, want_pod = wanted_owners(sts, in_range)
    if want_set and _uid(sts):
        refs.append(new_controller_ref(sts, SET_KIND["apiVersion"], SET_KIND["kind"]))
    if want_pod and _uid(pod):
        refs.append(new_controller_ref(pod, POD_KIND["apiVersion"], POD_KIND["kind"]))
    return refs


def claim_update(claim: Obj, sts: Obj, pod: Obj, in_range: bool) -> Obj | None:
    """A copy of ``claim`` with its ownerReferences fixed, or None when nothing changes."""
    if claim_owner_refs_up_to_date(claim, sts, pod, in_range):
        return None
    refs = desired_owner_refs(claim, sts, pod, in_range)
    if refs == owner_references(claim):
        return None
    updated = clone(claim)
    if refs:
        updated["metadata"]["ownerReferences"] = refs
    else:
        updated["metadata"].pop("ownerReferences", None)
    return updated


def is_stale(claim: Obj | None, sts: Obj, pod: Obj) -> bool:
    """Whether an existing claim still belongs to an earlier pod of this name (so the new pod
    must wait until the garbage collector removed it).  Never under whenScaled=Retain."""
    if claim is None or retention_policy(sts)[0] == RETAIN:
        return False
    return _has_stale_owner_ref(claim, pod, POD_KIND)
