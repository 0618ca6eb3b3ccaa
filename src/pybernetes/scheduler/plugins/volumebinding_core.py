"""The pure part of the VolumeBinding plugin (upstream's volumebinding binder.go, minus the
API calls): which claims a pod uses, how they are classified, what one node offers them,
and the assume cache.  No I/O; the plugin (volumebinding.py) feeds it listed objects.

- ``pod_claim_volumes(pod)``: the claim names of the pod's volumes, in order, without
  duplicates — ``persistentVolumeClaim.claimName``, and for a generic ephemeral volume the
  claim ``<pod name>-<volume name>`` (flagged, as it must be owned by the pod).
- A claim is *fully bound* when ``spec.volumeName`` is set and the binding is complete: the
  ``pv.kubernetes.io/bind-completed`` annotation (upstream's test) or ``status.phase`` Bound.
- A claim that is not fully bound is *delayed* (the scheduler picks its volume) when it has
  no ``spec.volumeName`` and its StorageClass exists with volumeBindingMode
  WaitForFirstConsumer; any other unbound claim is *immediate* (the PV controller binds it).
- ``pv_fits_node``: a PV's ``spec.nodeAffinity.required`` against the node's labels, as
  upstream's CheckNodeAffinity (which builds a node of labels only: a matchFields term on
  ``metadata.name`` never matches; terms that do not parse are dropped).
- ``find_pod_volumes``: one node's answer for the pod — bound claims' PVs must fit the node;
  each delayed claim (smallest request first) takes the smallest matching free PV that fits
  the node (each PV once per pod), else is provisioned if its class has a real provisioner
  whose allowedTopologies (if any) match the node.  Returns the ``PodVolumes`` to bind or the
  conflict reasons.
- ``AssumeCache``: PVs/PVCs changed in memory at Reserve (claimRef set, selected-node
  annotated) so the next pods see them taken.  An assumption holds while the listed object
  still has the resourceVersion it was made from; a newer version (our write landing, or
  anyone's) or Unreserve ends it.
"""

from __future__ import annotations

from collections.abc import Container
from dataclasses import dataclass, field
from typing import Any

import orjson

from pybernetes.machinery.nodeaffinity import NodeSelector
from pybernetes.machinery.volumematch import (
    claim_storage_class,
    find_matching_volume,
    is_volume_bound_to_claim,
    requested_storage,
)

Obj = dict[str, Any]

ANN_SELECTED_NODE = "volume.kubernetes.io/selected-node"
ANN_BIND_COMPLETED = "pv.kubernetes.io/bind-completed"
ANN_BOUND_BY_CONTROLLER = "pv.kubernetes.io/bound-by-controller"
NO_PROVISIONER = "kubernetes.io/no-provisioner"
WAIT_FOR_FIRST_CONSUMER = "WaitForFirstConsumer"
HOSTNAME_LABEL = "kubernetes.io/hostname"

ERR_NODE_CONFLICT = "node(s) had volume node affinity conflict"
ERR_BIND_CONFLICT = "node(s) didn't find available persistent volumes to bind"
ERR_NOT_ENOUGH_SPACE = "node(s) did not have enough free storage"
ERR_PV_NOT_EXIST = "node(s) unavailable due to one or more pvc(s) bound to non-existent pv(s)"
ERR_UNBOUND_IMMEDIATE = "pod has unbound immediate PersistentVolumeClaims"


class VolumeBindingError(Exception):
    """Something that is an Error status (not a verdict): a missing class, a bad object."""


def _meta(obj: Obj) -> Obj:
    return obj.get("metadata") or {}


def _spec(obj: Obj) -> Obj:
    return obj.get("spec") or {}


def annotations(obj: Obj) -> dict[str, str]:
    return _meta(obj).get("annotations") or {}


def claim_key(claim: Obj) -> str:
    meta = _meta(claim)
    return f"{meta.get('namespace') or ''}/{meta.get('name') or ''}"


def resource_version(obj: Obj | None) -> int:
    """``metadata.resourceVersion`` as an integer (0 when unset or not a number)."""
    text = _meta(obj or {}).get("resourceVersion")
    try:
        return int(text) if text else 0
    except (TypeError, ValueError):
        return 0


# -- the pod's claims -------------------------------------------------------------------------


def pod_claim_volumes(pod: Obj) -> list[tuple[str, bool]]:
    """(claim name, from an ephemeral volume) for each claim the pod's volumes use."""
    volumes = (pod.get("spec") or {}).get("volumes")
    if not volumes:
        return []
    out: list[tuple[str, bool]] = []
    for vol in volumes:
        pvc = vol.get("persistentVolumeClaim")
        if pvc is not None:
            out.append((str(pvc.get("claimName") or ""), False))
        elif vol.get("ephemeral") is not None:
            out.append((f"{_meta(pod).get('name') or ''}-{vol.get('name') or ''}", True))
    if len(out) > 1:
        seen: set[str] = set()
        out = [c for c in out if not (c[0] in seen or seen.add(c[0]))]  # type: ignore[func-returns-value]
    return out


def controlled_by(obj: Obj, owner: Obj) -> bool:
    """Whether ``owner`` is ``obj``'s controller (an ownerReference with controller: true and
    the owner's uid)."""
    uid = _meta(owner).get("uid")
    for ref in _meta(obj).get("ownerReferences") or ():
        if ref.get("controller") and ref.get("uid") == uid:
            return True
    return False


def is_fully_bound(claim: Obj) -> bool:
    if not _spec(claim).get("volumeName"):
        return False
    return ANN_BIND_COMPLETED in annotations(claim) or (claim.get("status") or {}).get("phase") == "Bound"


def is_delay_binding(claim: Obj, classes: dict[str, Obj]) -> bool:
    """Whether the claim's class is WaitForFirstConsumer (no class / unknown class: no).
    Raises VolumeBindingError when the class has no volumeBindingMode."""
    name = claim_storage_class(claim)
    if not name:
        return False
    cls = classes.get(name)
    if cls is None:
        return False
    mode = cls.get("volumeBindingMode")
    if not mode:
        raise VolumeBindingError(f'VolumeBindingMode not set for StorageClass "{name}"')
    return mode == WAIT_FOR_FIRST_CONSUMER


# -- node affinity ------------------------------------------------------------------------------

_SELECTORS: dict[bytes, NodeSelector] = {}
_SELECTORS_MAX = 4096


def pv_selector(pv: Obj) -> NodeSelector | None:
    """The PV's required node affinity, parsed (cached by content); None: no constraint."""
    required = (_spec(pv).get("nodeAffinity") or {}).get("required")
    if required is None:
        return None
    key = orjson.dumps(required, option=orjson.OPT_SORT_KEYS)
    selector = _SELECTORS.get(key)
    if selector is None:
        if len(_SELECTORS) >= _SELECTORS_MAX:
            _SELECTORS.clear()
        selector = _SELECTORS[key] = NodeSelector.lenient(required)
    return selector


def pv_fits_node(pv: Obj, labels: dict[str, str]) -> bool:
    selector = pv_selector(pv)
    return selector is None or selector.matches(labels, "")


def local_pv_node_names(pv: Obj) -> set[str] | None:
    """The node names a PV's affinity pins it to through ``kubernetes.io/hostname In``
    (upstream GetLocalPersistentVolumeNodeNames, hostname label read as node name); None when
    it does not pin (a term without such an expression can match other nodes)."""
    required = (_spec(pv).get("nodeAffinity") or {}).get("required")
    terms = (required or {}).get("nodeSelectorTerms") or []
    result: set[str] = set()
    for term in terms:
        names: set[str] | None = None
        for expr in (term or {}).get("matchExpressions") or ():
            if expr.get("key") == HOSTNAME_LABEL and expr.get("operator") == "In":
                values = {str(v) for v in expr.get("values") or ()}
                names = values if names is None else names & values
        if names is None:
            return None
        result |= names
    return result or None


def topology_allows(storage_class: Obj, labels: dict[str, str]) -> bool:
    """The class's allowedTopologies against node labels (upstream MatchTopologySelectorTerms):
    no terms allow all; a term matches when each of its expressions' key has one of its values."""
    terms = storage_class.get("allowedTopologies") or []
    if not terms:
        return True
    for term in terms:
        exprs = (term or {}).get("matchLabelExpressions") or []
        if not exprs:
            continue
        if all(labels.get(e.get("key")) in (e.get("values") or ()) for e in exprs):
            return True
    return False


# -- one node's answer --------------------------------------------------------------------------


@dataclass(slots=True)
class PodVolumes:
    """What Reserve assumes and PreBind writes for the chosen node."""

    static_bindings: list[tuple[Obj, Obj]] = field(default_factory=list)  # (pv, claim)
    dynamic_provisions: list[Obj] = field(default_factory=list)  # claims to provision


@dataclass(slots=True)
class VolumeState:
    """PreFilter's findings, read by Filter, Reserve, PreBind and Unreserve (one per cycle;
    ``clone`` shares it, as upstream's stateData does)."""

    claims: list[Obj]  # the pod's claims (as seen at PreFilter)
    bound: list[tuple[Obj, Obj | None]]  # fully bound claims and their PV (None: missing)
    delayed: list[Obj]  # WaitForFirstConsumer claims without a volume
    volumes_by_class: dict[str, list[Obj]]
    classes: dict[str, Obj]
    by_node: dict[str, PodVolumes] = field(default_factory=dict)
    all_bound: bool = False

    def clone(self) -> VolumeState:
        return self


def find_pod_volumes(state: VolumeState, node_name: str, labels: dict[str, str]
                     ) -> tuple[PodVolumes | None, list[str]]:
    """The volumes the pod would bind/provision on this node, or the conflict reasons.
    Raises VolumeBindingError for errors (a claim to provision without a class ...)."""
    bound_ok = pvs_found = unbound_ok = True
    volumes = PodVolumes()

    def verdict() -> tuple[PodVolumes | None, list[str]]:
        reasons = [reason for ok, reason in ((bound_ok, ERR_NODE_CONFLICT), (unbound_ok, ERR_BIND_CONFLICT),
                                             (pvs_found, ERR_PV_NOT_EXIST)) if not ok]
        return (None, reasons) if reasons else (volumes, [])

    for _claim, pv in state.bound:
        if pv is None:
            pvs_found = False
            break
        if not pv_fits_node(pv, labels):
            bound_ok = False
            break
    if not state.delayed:
        return verdict()
    to_match: list[Obj] = []
    to_provision: list[Obj] = []
    for claim in state.delayed:
        selected = annotations(claim).get(ANN_SELECTED_NODE)
        if selected is None:
            to_match.append(claim)
        elif selected != node_name:
            unbound_ok = False  # provisioning was already started for another node
            return verdict()
        else:
            to_provision.append(claim)
    if to_match:
        chosen: set[str] = set()

        def fits(pv: Any) -> bool:
            return pv_fits_node(pv, labels)

        for claim in sorted(to_match, key=requested_storage):
            pv = find_matching_volume(claim, state.volumes_by_class.get(claim_storage_class(claim), ()),
                                      excluded=chosen, volume_ok=fits)
            if pv is None:
                unbound_ok = False
                to_provision.append(claim)
                continue
            chosen.add(_meta(pv).get("name"))
            volumes.static_bindings.append((pv, claim))
    if to_provision:
        unbound_ok = _can_provision(to_provision, state.classes, labels)
        if unbound_ok:
            volumes.dynamic_provisions.extend(to_provision)
    return verdict()


def _can_provision(claims: list[Obj], classes: dict[str, Obj], labels: dict[str, str]) -> bool:
    for claim in claims:
        name = claim_storage_class(claim)
        if not name:
            raise VolumeBindingError(f'no class for claim "{claim_key(claim)}"')
        cls = classes.get(name)
        if cls is None:
            raise VolumeBindingError(f'failed to find storage class "{name}"')
        provisioner = cls.get("provisioner") or ""
        if not provisioner or provisioner == NO_PROVISIONER:
            return False
        if not topology_allows(cls, labels):
            return False
    return True


# -- binding ------------------------------------------------------------------------------------


def claim_reference(claim: Obj) -> Obj:
    meta = _meta(claim)
    ref: Obj = {"kind": "PersistentVolumeClaim", "namespace": meta.get("namespace") or "",
                "name": meta.get("name") or "", "apiVersion": "v1"}
    for src, dst in (("uid", "uid"), ("resourceVersion", "resourceVersion")):
        if meta.get(src):
            ref[dst] = meta[src]
    return ref


def bind_volume_to_claim(pv: Obj, claim: Obj) -> tuple[Obj, bool]:
    """A copy of ``pv`` bound to ``claim`` (claimRef, and the bound-by-controller annotation
    when the PV was not pre-bound to it), and whether anything changed (upstream
    GetBindVolumeToClaim).  ``pv`` is not changed."""
    spec = _spec(pv)
    ref = spec.get("claimRef") or {}
    meta = _meta(claim)
    pre_bound = is_volume_bound_to_claim(pv, claim)
    new_spec, new_meta, dirty = spec, _meta(pv), False
    if not ref or ref.get("name") != meta.get("name") or (ref.get("namespace") or "") != \
            (meta.get("namespace") or "") or (ref.get("uid") or "") != (meta.get("uid") or ""):
        new_spec = {**spec, "claimRef": claim_reference(claim)}
        dirty = True
    if not pre_bound and ANN_BOUND_BY_CONTROLLER not in (new_meta.get("annotations") or {}):
        new_meta = {**new_meta, "annotations": {**(new_meta.get("annotations") or {}),
                                                ANN_BOUND_BY_CONTROLLER: "yes"}}
        dirty = True
    if not dirty:
        return pv, False
    return {**pv, "metadata": new_meta, "spec": new_spec}, True


def with_selected_node(claim: Obj, node_name: str) -> Obj:
    """A copy of ``claim`` annotated with the node chosen for provisioning."""
    meta = _meta(claim)
    return {**claim, "metadata": {**meta, "annotations": {**(meta.get("annotations") or {}),
                                                          ANN_SELECTED_NODE: node_name}}}


class AssumeCache:
    """Objects changed in memory ahead of the API, by key (PV name, or namespace/name of a
    claim); see the module docstring."""

    def __init__(self) -> None:
        self._assumed: dict[str, tuple[int, Obj]] = {}

    def assume(self, key: str, obj: Obj, base: Obj) -> None:
        """``obj`` stands for ``key`` while the listed object is still ``base``'s version."""
        self._assumed[key] = (resource_version(base), obj)

    def restore(self, key: str) -> None:
        self._assumed.pop(key, None)

    def get(self, key: str, listed: Obj | None) -> Obj | None:
        """The assumed object for ``key`` if it still holds, else ``listed``."""
        entry = self._assumed.get(key)
        if entry is None:
            return listed
        if listed is None or resource_version(listed) > entry[0]:
            del self._assumed[key]
            return listed
        return entry[1]

    def retain(self, keys: Container[str]) -> None:
        """Forget the assumptions about keys not in ``keys`` (objects that are gone)."""
        for key in [k for k in self._assumed if k not in keys]:
            del self._assumed[key]

    def __contains__(self, key: object) -> bool:
        return key in self._assumed

    def __len__(self) -> int:
        return len(self._assumed)
