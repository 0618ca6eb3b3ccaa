"""DaemonSet updates (upstream pkg/controller/daemon/update.go and util), pure.

- Which pods are up to date (``is_pod_updated``): the pod's ``controller-revision-hash``
  label is the current revision's hash, or its ``pod-template-generation`` label is the
  DaemonSet's template generation (the ``deprecated.daemonset.template.generation``
  annotation).
- ``maxUnavailable`` / ``maxSurge`` as counts or percents of the nodes that should run a
  daemon pod (percents round up); a configuration allowing neither means 1 unavailable.
- ``rolling_update``: which old pods to delete and on which nodes to create new pods now.
  Without surge, old available pods are deleted only while fewer than maxUnavailable nodes
  are unavailable (a node whose new pod is not yet available, whose pod is gone or
  terminating, or with more than one pod counts as unavailable; an old pod that is not
  available anyway may always be replaced).  With surge, a new pod is started beside an
  available old one on at most maxSurge nodes at a time (beside an unavailable old one at
  once), and an old pod is deleted once the new one on its node is available.
- OnDelete: nothing here; the manage loop only replaces pods deleted by hand.
"""

from __future__ import annotations

from typing import Any

from pybernetes.controllers.daemonset_nodes import DaemonPlacement
from pybernetes.controllers.history import REVISION_HASH_LABEL
from pybernetes.controllers.podutil import is_pod_available, is_pod_terminating, scaled_value

Obj = dict[str, Any]

TEMPLATE_GENERATION_LABEL = "pod-template-generation"
TEMPLATE_GENERATION_ANNOTATION = "deprecated.daemonset.template.generation"


def template_generation(ds: Obj) -> int | None:
    """The DaemonSet's template generation (None without a readable annotation)."""
    value = ((ds.get("metadata") or {}).get("annotations") or {}).get(TEMPLATE_GENERATION_ANNOTATION)
    try:
        return int(value) if value is not None else None
    except (TypeError, ValueError):
        return None


def is_pod_updated(pod: Obj, hash_: str, generation: int | None) -> bool:
    labels = (pod.get("metadata") or {}).get("labels") or {}
    if hash_ and labels.get(REVISION_HASH_LABEL) == hash_:
        return True
    return generation is not None and labels.get(TEMPLATE_GENERATION_LABEL) == str(generation)


def _rolling(ds: Obj) -> Obj | None:
    strategy = (ds.get("spec") or {}).get("updateStrategy") or {}
    if strategy.get("type", "RollingUpdate") != "RollingUpdate":
        return None
    rolling = strategy.get("rollingUpdate")
    return rolling if isinstance(rolling, dict) else None


def is_rolling_update(ds: Obj) -> bool:
    return ((ds.get("spec") or {}).get("updateStrategy") or {}).get("type", "RollingUpdate") == "RollingUpdate"


def max_unavailable(ds: Obj, desired: int) -> int:
    rolling = _rolling(ds)
    return 0 if rolling is None else scaled_value(rolling.get("maxUnavailable"), desired, True)


def max_surge(ds: Obj, desired: int) -> int:
    rolling = _rolling(ds)
    return 0 if rolling is None else scaled_value(rolling.get("maxSurge"), desired, True)


def allows_surge(ds: Obj) -> bool:
    """Whether the DaemonSet may run an extra pod on a node while updating."""
    try:
        return max_surge(ds, 1) != 0
    except ValueError:
        return False


def find_updated_pods_on_node(pods: list[Obj], hash_: str, generation: int | None
                              ) -> tuple[Obj | None, Obj | None, bool]:
    """(the new pod, the old pod, ok) among a node's pods that are not being deleted; not ok
    when there are two new or two old ones (the manage loop prunes them first)."""
    new = old = None
    for pod in pods:
        if is_pod_terminating(pod):
            continue
        if is_pod_updated(pod, hash_, generation):
            if new is not None:
                return None, None, False
            new = pod
        else:
            if old is not None:
                return None, None, False
            old = pod
    return new, old, True


def desired_counts(ds: Obj, nodes: list[Obj], node_to_pods: dict[str, list[Obj]],
                   placement: DaemonPlacement) -> tuple[int, int, int]:
    """(maxSurge, maxUnavailable, desired number scheduled); nodes that should run a pod and
    have none get an empty entry in ``node_to_pods``."""
    desired = 0
    for node in nodes:
        should_run, _ = placement.should_run(node)
        if not should_run:
            continue
        desired += 1
        node_to_pods.setdefault((node.get("metadata") or {}).get("name") or "", [])
    unavailable = max_unavailable(ds, desired)
    surge = max_surge(ds, desired)
    if desired > 0 and unavailable == 0 and surge == 0:
        unavailable = 1
    return surge, unavailable, desired


def rolling_update(ds: Obj, nodes: list[Obj], node_to_pods: dict[str, list[Obj]], hash_: str,
                   now: float) -> tuple[list[Obj], list[str]]:
    """(old pods to delete, nodes to create a new pod on) for one RollingUpdate step."""
    placement = DaemonPlacement(ds)
    node_to_pods = {k: list(v) for k, v in node_to_pods.items()}
    surge, unavailable, desired = desired_counts(ds, nodes, node_to_pods, placement)
    min_ready = int((ds.get("spec") or {}).get("minReadySeconds") or 0)
    generation = template_generation(ds)

    def available(pod: Obj) -> bool:
        return is_pod_available(pod, min_ready, now)

    if surge == 0:
        num_unavailable = 0
        replacements: list[Obj] = []
        candidates: list[Obj] = []
        for node_name in sorted(node_to_pods):
            new, old, ok = find_updated_pods_on_node(node_to_pods[node_name], hash_, generation)
            if not ok or (new is None) == (old is None):
                num_unavailable += 1  # the manage loop creates or prunes here first
            elif new is not None:
                if not available(new):
                    num_unavailable += 1
            elif not available(old):
                replacements.append(old)
                num_unavailable += 1
            elif num_unavailable < unavailable:
                candidates.append(old)
        room = max(0, min(unavailable - num_unavailable, len(candidates)))
        return replacements + candidates[:room], []

    by_name = {(n.get("metadata") or {}).get("name") or "": n for n in nodes}
    to_delete: list[Obj] = []
    should_not_run: list[Obj] = []
    candidate_nodes: list[str] = []
    allowed_nodes: list[str] = []
    num_surge = num_available = 0
    for node_name in sorted(node_to_pods):
        new, old, ok = find_updated_pods_on_node(node_to_pods[node_name], hash_, generation)
        if not ok:
            num_surge += 1
            continue
        if old is not None:
            num_available += available(old)
        elif new is not None:
            num_available += available(new)
        if old is None:
            continue
        node = by_name.get(node_name)
        if new is None:
            runs = node is not None and placement.should_run(node)[0]
            if not available(old):
                if not runs:
                    to_delete.append(old)
                else:
                    allowed_nodes.append(node_name)
            elif not runs:
                should_not_run.append(old)
            elif num_surge < surge:
                candidate_nodes.append(node_name)
        elif not available(new):
            num_surge += 1
        else:
            to_delete.append(old)
    deletable = min(num_available - desired, len(should_not_run))
    if deletable > 0:
        to_delete.extend(p for p in should_not_run[:deletable] if not is_pod_terminating(p))
    room = max(0, min(surge - num_surge, len(candidate_nodes)))
    return to_delete, allowed_nodes + candidate_nodes[:room]
