"""Which nodes a DaemonSet's pods belong on (upstream's NodeShouldRunDaemonPod and the
scheduling helpers it uses), as pure functions over wire-shaped dicts.

- The tolerations every daemon pod gets (``add_daemon_tolerations``): not-ready and
  unreachable NoExecute, disk-/memory-/pid-pressure and unschedulable NoSchedule, and
  network-unavailable NoSchedule for hostNetwork pods; a toleration the template already has
  with the same key, operator, value and effect is replaced by the default one.
- Taints and tolerations, node selectors and required node affinity are matched by the shared
  ``machinery.taints`` and ``machinery.nodeaffinity`` (the scheduler's too, as upstream shares
  its component-helpers).
- ``DaemonPlacement``: a DaemonSet's placement rules parsed once; ``should_run(node)`` gives
  upstream's pair (should run, should continue running): a node that does not fit the node
  name, selector or affinity gets no pod and loses its pod; an untolerated NoSchedule taint
  means no new pod but an existing one stays; an untolerated NoExecute taint means the pod
  must go.
- A daemon pod's target node (``target_node_name``: spec.nodeName, else the required
  affinity's ``matchFields metadata.name In [node]``) and the affinity that pins a new pod to
  its node (``pin_to_node``: it replaces the required terms, the preferred ones stay).
"""

from __future__ import annotations

import copy
from typing import Any

from pybernetes.machinery.nodeaffinity import RequiredNodeAffinity
from pybernetes.machinery.taints import find_untolerated_taint

Obj = dict[str, Any]

NOT_READY = "node.kubernetes.io/not-ready"
UNREACHABLE = "node.kubernetes.io/unreachable"
DISK_PRESSURE = "node.kubernetes.io/disk-pressure"
MEMORY_PRESSURE = "node.kubernetes.io/memory-pressure"
PID_PRESSURE = "node.kubernetes.io/pid-pressure"
UNSCHEDULABLE = "node.kubernetes.io/unschedulable"
NETWORK_UNAVAILABLE = "node.kubernetes.io/network-unavailable"

NO_EXECUTE, NO_SCHEDULE = "NoExecute", "NoSchedule"
NODE_NAME_FIELD = "metadata.name"


# -- tolerations ---------------------------------------------------------------------------


def default_daemon_tolerations(host_network: bool = False) -> list[Obj]:
    """The tolerations the DaemonSet controller adds to every daemon pod."""
    tolerations = [{"key": NOT_READY, "operator": "Exists", "effect": NO_EXECUTE},
                   {"key": UNREACHABLE, "operator": "Exists", "effect": NO_EXECUTE}]
    for key in (DISK_PRESSURE, MEMORY_PRESSURE, PID_PRESSURE, UNSCHEDULABLE):
        tolerations.append({"key": key, "operator": "Exists", "effect": NO_SCHEDULE})
    if host_network:
        tolerations.append({"key": NETWORK_UNAVAILABLE, "operator": "Exists", "effect": NO_SCHEDULE})
    return tolerations


def _same_toleration(a: Obj, b: Obj) -> bool:
    return all(a.get(f) == b.get(f) for f in ("key", "operator", "value", "effect"))


def add_daemon_tolerations(pod_spec: Obj) -> Obj:
    """Add (or replace) the default daemon tolerations in ``pod_spec`` (in place; give it a
    copy); returns it."""
    tolerations = [t for t in pod_spec.get("tolerations") or [] if isinstance(t, dict)]
    for default in default_daemon_tolerations(bool(pod_spec.get("hostNetwork"))):
        for i, existing in enumerate(tolerations):
            if _same_toleration(existing, default):
                tolerations[i] = dict(default)
                break
        else:
            tolerations.append(dict(default))
    pod_spec["tolerations"] = tolerations
    return pod_spec


# -- a DaemonSet's placement ------------------------------------------------------------------


class DaemonPlacement:
    """A DaemonSet's placement rules, parsed once for checking many nodes."""

    __slots__ = ("node_name", "affinity", "tolerations")

    def __init__(self, ds: Obj) -> None:
        spec = ((ds.get("spec") or {}).get("template") or {}).get("spec") or {}
        self.node_name = spec.get("nodeName") or ""
        self.affinity = RequiredNodeAffinity.of_pod({"spec": spec})  # nodeSelector + required affinity
        self.tolerations = add_daemon_tolerations({"tolerations": copy.deepcopy(spec.get("tolerations")),
                                                   "hostNetwork": spec.get("hostNetwork")})["tolerations"]

    def should_run(self, node: Obj) -> tuple[bool, bool]:
        """(should run: a pod should be created when there is none; should continue running:
        an existing pod may stay)."""
        name = (node.get("metadata") or {}).get("name") or ""
        if self.node_name and self.node_name != name:
            return False, False
        if not self.affinity.matches_node(node):
            return False, False
        taints = (node.get("spec") or {}).get("taints")
        if find_untolerated_taint(taints, self.tolerations, (NO_EXECUTE, NO_SCHEDULE)) is not None:
            return False, find_untolerated_taint(taints, self.tolerations, (NO_EXECUTE,)) is None
        return True, True


def node_should_run(node: Obj, ds: Obj) -> tuple[bool, bool]:
    return DaemonPlacement(ds).should_run(node)


# -- daemon pods and their nodes -----------------------------------------------------------


def target_node_name(pod: Obj) -> str | None:
    """The node a daemon pod is for: its nodeName, else the single value of a required
    affinity ``matchFields metadata.name In`` (None when there is none or it is ambiguous)."""
    spec = pod.get("spec") or {}
    if spec.get("nodeName"):
        return spec["nodeName"]
    required = (((spec.get("affinity") or {}).get("nodeAffinity") or {})
                .get("requiredDuringSchedulingIgnoredDuringExecution")) or {}
    for term in required.get("nodeSelectorTerms") or []:
        for expr in (term or {}).get("matchFields") or []:
            if expr.get("key") == NODE_NAME_FIELD and expr.get("operator") == "In":
                values = expr.get("values") or []
                return str(values[0]) if len(values) == 1 else None
    return None


def pin_to_node(affinity: Obj | None, node_name: str) -> Obj:
    """A copy of ``affinity`` whose required node affinity is the single term
    ``matchFields metadata.name In [node_name]`` (other parts kept)."""
    out = copy.deepcopy(affinity) if isinstance(affinity, dict) else {}
    node_affinity = out.get("nodeAffinity")
    if not isinstance(node_affinity, dict):
        node_affinity = out["nodeAffinity"] = {}
    node_affinity["requiredDuringSchedulingIgnoredDuringExecution"] = {"nodeSelectorTerms": [
        {"matchFields": [{"key": NODE_NAME_FIELD, "operator": "In", "values": [node_name]}]}]}
    return out
