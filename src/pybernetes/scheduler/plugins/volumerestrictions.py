"""VolumeRestrictions: the PreFilter/Filter plugin for volumes that cannot be shared
(upstream's volumerestrictions plugin, v1.32).

- Disk conflicts (Filter, upstream isVolumeConflict): on one node, the same GCE PD (unless
  every mount is read-only), the same AWS EBS volume ID, the same iSCSI IQN (unless all
  read-only), or the same RBD image (a common Ceph monitor, same pool and image, unless all
  read-only) as a pod already there → Unschedulable, "node(s) had no available disk".
- ReadWriteOncePod: PreFilter looks up the pod's claims (a missing one is
  UnschedulableAndUnresolvable, ``persistentvolumeclaim "NAME" not found``) and counts the
  references that pods already placed in the cluster (any node, terminated pods excluded) make
  to its ReadWriteOncePod claims; Filter rejects every node while that count is above zero
  (Unschedulable, "node has pod using PersistentVolumeClaim with the same name and
  ReadWriteOncePod access mode"), so preemption may free the claim: its what-ifs adjust the
  count through ``add_pod``/``remove_pod``.
- PreFilter skips (no listing) pods with neither such disks nor claims, and pods whose claims
  are not ReadWriteOncePod and that have no such disks.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from pybernetes.scheduler.framework import (
    SUCCESS,
    ClusterEvent,
    CycleState,
    NodeInfo,
    Plugin,
    PodEntry,
    PreFilterResult,
    Status,
)

Obj = dict[str, Any]

STATE_KEY = "PreFilterVolumeRestrictions"
ERR_DISK_CONFLICT = "node(s) had no available disk"
ERR_RWOP_CONFLICT = "node has pod using PersistentVolumeClaim with the same name and ReadWriteOncePod access mode"
RWOP = "ReadWriteOncePod"
PVCS = "v1/persistentvolumeclaims"
_DISKS = ("gcePersistentDisk", "awsElasticBlockStore", "rbd", "iscsi")
_DISK_KEYS = frozenset(_DISKS)
_TERMINATED = ("Succeeded", "Failed")


def needs_restrictions_check(volume: Obj) -> bool:
    if _DISK_KEYS.isdisjoint(volume):  # the common case, cheaply
        return False
    return any(volume.get(kind) is not None for kind in _DISKS)


def is_volume_conflict(volume: Obj, pod: Obj) -> bool:
    """Whether ``volume`` (of the incoming pod) conflicts with a volume of ``pod``."""
    gce, ebs, iscsi, rbd = (volume.get(k) for k in ("gcePersistentDisk", "awsElasticBlockStore", "iscsi", "rbd"))
    for other in (pod.get("spec") or {}).get("volumes") or ():
        o_gce = other.get("gcePersistentDisk")
        if gce is not None and o_gce is not None and gce.get("pdName") == o_gce.get("pdName") \
                and not (gce.get("readOnly") and o_gce.get("readOnly")):
            return True
        o_ebs = other.get("awsElasticBlockStore")
        if ebs is not None and o_ebs is not None and ebs.get("volumeID") == o_ebs.get("volumeID"):
            return True
        o_iscsi = other.get("iscsi")
        if iscsi is not None and o_iscsi is not None and iscsi.get("iqn") == o_iscsi.get("iqn") \
                and not (iscsi.get("readOnly") and o_iscsi.get("readOnly")):
            return True
        o_rbd = other.get("rbd")
        if rbd is not None and o_rbd is not None \
                and set(rbd.get("monitors") or ()) & set(o_rbd.get("monitors") or ()) \
                and (rbd.get("pool") or "rbd") == (o_rbd.get("pool") or "rbd") \
                and rbd.get("image") == o_rbd.get("image") \
                and not (rbd.get("readOnly") and o_rbd.get("readOnly")):
            return True
    return False


def _claim_names(pod: Obj) -> list[str]:
    return [v["persistentVolumeClaim"].get("claimName") or "" for v in (pod.get("spec") or {}).get("volumes") or ()
            if v.get("persistentVolumeClaim") is not None]


@dataclass(slots=True)
class RestrictionsState:
    namespace: str
    rwop_claims: frozenset[str]  # the pod's ReadWriteOncePod claim names
    conflicts: int  # references to them by pods already placed

    def clone(self) -> RestrictionsState:
        return RestrictionsState(self.namespace, self.rwop_claims, self.conflicts)

    def references(self, pod: Obj) -> int:
        if not self.rwop_claims or ((pod.get("metadata") or {}).get("namespace") or "") != self.namespace:
            return 0
        if (pod.get("status") or {}).get("phase") in _TERMINATED:
            return 0
        return sum(1 for name in _claim_names(pod) if name in self.rwop_claims)


class VolumeRestrictions(Plugin):
    name = "VolumeRestrictions"

    _SKIP = Status.skip()
    _REJECT_DISK = Status.unschedulable(ERR_DISK_CONFLICT, plugin="VolumeRestrictions")
    _REJECT_RWOP = Status.unschedulable(ERR_RWOP_CONFLICT, plugin="VolumeRestrictions")

    def pre_filter(self, state: CycleState, pod: Obj, nodes: list[NodeInfo]
                   ) -> tuple[PreFilterResult | None, Status]:
        spec = pod.get("spec")
        volumes = spec.get("volumes") if spec else None
        if not volumes:
            return None, self._SKIP
        needs_check = False
        claims: list[str] = []
        for vol in volumes:
            pvc = vol.get("persistentVolumeClaim")
            if pvc is not None:
                claims.append(pvc.get("claimName") or "")
            elif not needs_check and needs_restrictions_check(vol):
                needs_check = True
        if not needs_check and not claims:
            return None, self._SKIP
        namespace = (pod.get("metadata") or {}).get("namespace") or ""
        rwop: set[str] = set()
        if claims:
            listed = {(c.get("metadata") or {}).get("name"): c for c in self.handle.list(PVCS, namespace)}
            for name in claims:
                pvc = listed.get(name)
                if pvc is None:
                    return None, Status.unresolvable(f'persistentvolumeclaim "{name}" not found', plugin=self.name)
                if RWOP in ((pvc.get("spec") or {}).get("accessModes") or ()):
                    rwop.add(name)
        st = RestrictionsState(namespace, frozenset(rwop), 0)
        if rwop:
            st.conflicts = self._used_count(st)
        if not needs_check and not st.conflicts:
            return None, self._SKIP
        state.write(STATE_KEY, st)
        return None, SUCCESS

    def _used_count(self, st: RestrictionsState) -> int:
        """How many of the pod's ReadWriteOncePod claims pods already placed use (each
        counted once: at most one pod can hold such a claim)."""
        used: set[str] = set()
        for info in self.handle.snapshot.node_infos:
            for entry in info.pods.values():
                if st.references(entry.pod):
                    used.update(n for n in _claim_names(entry.pod) if n in st.rwop_claims)
        return len(used)

    def add_pod(self, state: CycleState, pod: Obj, entry: PodEntry, node: NodeInfo) -> Status:
        st = state.get(STATE_KEY)
        if st is not None:
            st.conflicts += st.references(entry.pod)
        return SUCCESS

    def remove_pod(self, state: CycleState, pod: Obj, entry: PodEntry, node: NodeInfo) -> Status:
        st = state.get(STATE_KEY)
        if st is not None:
            st.conflicts -= st.references(entry.pod)
        return SUCCESS

    def filter(self, state: CycleState, pod: Obj, node_info: NodeInfo) -> Status:
        if node_info.pods:
            for vol in (pod.get("spec") or {}).get("volumes") or ():
                if not needs_restrictions_check(vol):
                    continue
                for entry in node_info.pods.values():
                    if is_volume_conflict(vol, entry.pod):
                        return self._REJECT_DISK
        st = state.get(STATE_KEY)
        if st is None:  # PreFilter not enabled in this profile: compute once for the cycle
            _, status = self.pre_filter(state, pod, [])
            if status.code and not status.is_skip():
                return status
            st = state.get(STATE_KEY)
            if st is None:
                st = RestrictionsState("", frozenset(), 0)
                state.write(STATE_KEY, st)
        if st.conflicts > 0:
            return self._REJECT_RWOP
        return SUCCESS

    def events_to_register(self) -> Iterable[ClusterEvent]:
        # v1.32 with queueing hints: a pod deleted (frees a disk or a claim), a node added,
        # a claim created (PreFilter needs it).
        return (ClusterEvent("Pod", "Delete"), ClusterEvent("Node", "Add"),
                ClusterEvent("PersistentVolumeClaim", "Add"))
