"""VolumeZone: the PreFilter/Filter plugin that keeps a pod in the zone and region of the
PersistentVolumes its claims are bound to (upstream's volumezone plugin, v1.32).

- PreFilter: a pod without ``persistentVolumeClaim`` volumes is skipped at once, listing
  nothing (generic ephemeral volumes are not looked at, as upstream).  For each claim, in
  order — all rejections UnschedulableAndUnresolvable, with upstream's texts:

  - an empty claim name: "PersistentVolumeClaim had no name";
  - a missing claim: ``persistentvolumeclaim "NAME" not found``;
  - an unbound claim (no ``spec.volumeName``): without a class "PersistentVolumeClaim had
    no pv name and storageClass name"; a missing class ``storageclass.storage.k8s.io "NAME"
    not found``; a class without volumeBindingMode ``VolumeBindingMode not set for
    StorageClass "NAME"``; a WaitForFirstConsumer class: the claim is left to VolumeBinding
    (skipped); any other mode: "PersistentVolume had no name";
  - a bound claim whose PV is missing: ``persistentvolume "NAME" not found``.

  From each bound PV come its topology labels among the beta and GA zone and region keys; a
  value may name several zones joined by ``__`` (upstream's LabelMultiZoneDelimiter); a value
  with an empty part is ignored, as upstream ignores labels it cannot parse.  No labels at
  all: Skip.  Otherwise the (PV, key, values) triples are kept in the cycle state.
- Filter: a node with none of the four topology labels passes (a single-zone cluster whose
  nodes are not labelled).  Otherwise, for every triple, the node's value under the PV's key —
  or, for a beta key the node lacks, under the GA key it became (upstream's
  translateToGALabel) — must be one of the values, else "node(s) had no available volume
  zone" (UnschedulableAndUnresolvable).  Without a PreFilter run (the point disabled) Filter
  works the triples out once per cycle itself.
- Events: Node Add/UpdateNodeLabel, PersistentVolumeClaim and PersistentVolume Add/Update,
  StorageClass Add (v1.32 with queueing hints).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any, NamedTuple

from pybernetes.machinery.volumematch import claim_storage_class
from pybernetes.scheduler.framework import (
    SUCCESS,
    ClusterEvent,
    CycleState,
    NodeInfo,
    Plugin,
    PreFilterResult,
    Status,
)

log = logging.getLogger(__name__)

Obj = dict[str, Any]

STATE_KEY = "PreFilterVolumeZone"
PVCS = "v1/persistentvolumeclaims"
PVS = "v1/persistentvolumes"
CLASSES = "storage.k8s.io/v1/storageclasses"

BETA_ZONE = "failure-domain.beta.kubernetes.io/zone"
BETA_REGION = "failure-domain.beta.kubernetes.io/region"
ZONE = "topology.kubernetes.io/zone"
REGION = "topology.kubernetes.io/region"
TOPOLOGY_LABELS = (BETA_ZONE, BETA_REGION, ZONE, REGION)
GA_LABEL = {BETA_ZONE: ZONE, BETA_REGION: REGION}
MULTI_ZONE_DELIMITER = "__"
WAIT_FOR_FIRST_CONSUMER = "WaitForFirstConsumer"

ERR_CONFLICT = "node(s) had no available volume zone"
ERR_NO_CLAIM_NAME = "PersistentVolumeClaim had no name"
ERR_NO_PV_NOR_CLASS = "PersistentVolumeClaim had no pv name and storageClass name"
ERR_NO_PV_NAME = "PersistentVolume had no name"


class PVTopology(NamedTuple):
    """One topology label of a bound PV: the key and the values it allows."""

    pv_name: str
    key: str
    values: frozenset[str]


def label_zones_to_set(value: str) -> frozenset[str]:
    """The zones of a label value ``"a__b"`` (each part trimmed); ValueError for an empty part."""
    zones = [part.strip() for part in value.split(MULTI_ZONE_DELIMITER)]
    if any(not zone for zone in zones):
        raise ValueError(f'"{MULTI_ZONE_DELIMITER}" separated list ("{value}") must not contain an empty string')
    return frozenset(zones)


def pv_topologies(pv: Obj) -> list[PVTopology]:
    """The topology labels of ``pv`` (unparsable values left out)."""
    meta = pv.get("metadata") or {}
    labels = meta.get("labels")
    if not labels:
        return []
    out: list[PVTopology] = []
    for key in TOPOLOGY_LABELS:
        value = labels.get(key)
        if value is None:
            continue
        try:
            values = label_zones_to_set(str(value))
        except ValueError as exc:
            log.info("PV %s: ignoring topology label %s=%s: %s", meta.get("name"), key, value, exc)
            continue
        out.append(PVTopology(str(meta.get("name") or ""), key, values))
    return out


def node_fits(topologies: Iterable[PVTopology], labels: dict[str, str]) -> bool:
    """Whether a node with ``labels`` is in every zone/region the topologies allow (a node
    with no topology label at all fits anything)."""
    if not any(key in labels for key in TOPOLOGY_LABELS):
        return True
    for topo in topologies:
        value = labels.get(topo.key)
        if value is None:
            value = labels.get(GA_LABEL.get(topo.key, topo.key))
        if value is None or value not in topo.values:
            return False
    return True


def claim_names(pod: Obj) -> list[str]:
    """The claim names of the pod's ``persistentVolumeClaim`` volumes, in order, once each."""
    volumes = (pod.get("spec") or {}).get("volumes")
    if not volumes:
        return []
    out: list[str] = []
    for vol in volumes:
        source = vol.get("persistentVolumeClaim")
        if source is not None:
            name = str(source.get("claimName") or "")
            if name not in out:
                out.append(name)
    return out


def _name(obj: Obj) -> str:
    return (obj.get("metadata") or {}).get("name") or ""


class VolumeZone(Plugin):
    name = "VolumeZone"
    node_pods_matter = False  # its Filter looks at the node, never at the pods on it

    _SKIP = Status.skip()

    def events_to_register(self) -> Iterable[ClusterEvent]:
        return (ClusterEvent("StorageClass", "Add"),
                ClusterEvent("Node", "Add"), ClusterEvent("Node", "UpdateNodeLabel"),
                ClusterEvent("PersistentVolumeClaim", "Add"), ClusterEvent("PersistentVolumeClaim", "Update"),
                ClusterEvent("PersistentVolume", "Add"), ClusterEvent("PersistentVolume", "Update"))

    def pre_filter(self, state: CycleState, pod: Obj, nodes: list[NodeInfo]
                   ) -> tuple[PreFilterResult | None, Status]:
        spec = pod.get("spec")
        if not spec or not spec.get("volumes"):
            return None, self._SKIP
        topologies, status = self.pod_topologies(pod)
        if status is not None:
            return None, status
        if not topologies:
            return None, self._SKIP
        state.write(STATE_KEY, topologies)
        return None, SUCCESS

    def pod_topologies(self, pod: Obj) -> tuple[tuple[PVTopology, ...], Status | None]:
        """The topologies of the PVs bound to the pod's claims, or the status rejecting it."""
        names = claim_names(pod)
        if not names:
            return (), None
        handle = self.handle
        namespace = (pod.get("metadata") or {}).get("namespace") or ""
        claims = {_name(c): c for c in handle.list(PVCS, namespace)}
        pvs: dict[str, Obj] | None = None
        classes: dict[str, Obj] | None = None
        out: list[PVTopology] = []
        for claim_name in names:
            if not claim_name:
                return (), self._reject(ERR_NO_CLAIM_NAME)
            claim = claims.get(claim_name)
            if claim is None:
                return (), self._reject(f'persistentvolumeclaim "{claim_name}" not found')
            pv_name = (claim.get("spec") or {}).get("volumeName")
            if not pv_name:
                class_name = claim_storage_class(claim)
                if not class_name:
                    return (), self._reject(ERR_NO_PV_NOR_CLASS)
                if classes is None:
                    classes = {_name(c): c for c in handle.list(CLASSES)}
                storage_class = classes.get(class_name)
                if storage_class is None:
                    return (), self._reject(f'storageclass.storage.k8s.io "{class_name}" not found')
                mode = storage_class.get("volumeBindingMode")
                if not mode:
                    return (), self._reject(f'VolumeBindingMode not set for StorageClass "{class_name}"')
                if mode == WAIT_FOR_FIRST_CONSUMER:
                    continue  # VolumeBinding picks its volume
                return (), self._reject(ERR_NO_PV_NAME)
            if pvs is None:
                pvs = {_name(v): v for v in handle.list(PVS)}
            pv = pvs.get(pv_name)
            if pv is None:
                return (), self._reject(f'persistentvolume "{pv_name}" not found')
            out.extend(pv_topologies(pv))
        return tuple(out), None

    def filter(self, state: CycleState, pod: Obj, node_info: NodeInfo) -> Status:
        spec = pod.get("spec")
        if not spec or not spec.get("volumes"):
            return SUCCESS
        topologies = state.get(STATE_KEY)
        if topologies is None:  # PreFilter not enabled in this profile: work it out once
            topologies, status = self.pod_topologies(pod)
            if status is not None:
                return status
            state.write(STATE_KEY, topologies)
        if not topologies or node_fits(topologies, node_info.labels):
            return SUCCESS
        return Status.unresolvable(ERR_CONFLICT, plugin=self.name)

    def _reject(self, message: str) -> Status:
        return Status.unresolvable(message, plugin=self.name)
