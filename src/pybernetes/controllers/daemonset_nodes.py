"""Which nodes a DaemonSet's pods belong on (upstream's NodeShouldRunDaemonPod and the
scheduling helpers it uses), as pure functions over wire-shaped dicts.

- The tolerations every daemon pod gets (``add_daemon_tolerations``): not-ready and
  unreachable NoExecute, disk-/memory-/pid-pressure and unschedulable NoSchedule, and
  network-unavailable NoSchedule for hostNetwork pods; a toleration the template already has
  with the same key, operator, value and effect is replaced by the default one.
- Taints and tolerations (``tolerates``, ``untolerated_taint``), node selectors and required
  node affinity (``nodeSelectorTerms`` ORed; in a term, ``matchExpressions`` on labels and
  ``matchFields`` on ``metadata.name`` ANDed; an empty or unparsable term matches nothing).
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

from pybernetes.machinery.selectors import (
    DOES_NOT_EXIST,
    EXISTS,
    GREATER_THAN,
    IN,
    LESS_THAN,
    NOT_IN,
    LabelSelector,
    Requirement,
    SelectorParseError,
)

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

_OPERATORS = {"In": IN, "NotIn": NOT_IN, "Exists": EXISTS, "DoesNotExist": DOES_NOT_EXIST,
              "Gt": GREATER_THAN, "Lt": LESS_THAN}


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


def toleration_tolerates(toleration: Obj, taint: Obj) -> bool:
    """Upstream Toleration.ToleratesTaint: effect and key match when set; operator Exists
    matches any value, Equal (or empty) the same value."""
    effect = toleration.get("effect") or ""
    if effect and effect != taint.get("effect"):
        return False
    key = toleration.get("key") or ""
    if key and key != taint.get("key"):
        return False
    operator = toleration.get("operator") or "Equal"
    if operator == "Exists":
        return True
    if operator == "Equal":
        return (toleration.get("value") or "") == (taint.get("value") or "")
    return False


def tolerates(tolerations: list[Obj] | None, taint: Obj) -> bool:
    return any(isinstance(t, dict) and toleration_tolerates(t, taint) for t in tolerations or ())


def untolerated_taint(taints: list[Obj] | None, tolerations: list[Obj] | None,
                      effects: tuple[str, ...]) -> Obj | None:
    """The first taint with one of ``effects`` that no toleration tolerates."""
    for taint in taints or ():
        if isinstance(taint, dict) and taint.get("effect") in effects and not tolerates(tolerations, taint):
            return taint
    return None


# -- node selectors and affinity -------------------------------------------------------------


class _Term:
    """One parsed nodeSelectorTerm."""

    __slots__ = ("labels", "name_in", "name_not_in")

    def __init__(self, labels: LabelSelector | None, name_in: list[str], name_not_in: list[str]) -> None:
        self.labels = labels
        self.name_in = name_in
        self.name_not_in = name_not_in

    def matches(self, node_labels: dict[str, str], node_name: str) -> bool:
        if self.labels is None and not self.name_in and not self.name_not_in:
            return False
        if self.labels is not None and not self.labels.matches(node_labels):
            return False
        if any(node_name != name for name in self.name_in):
            return False
        return not any(node_name == name for name in self.name_not_in)


def parse_term(term: Any) -> _Term | None:
    """A nodeSelectorTerm, or None when it does not parse (upstream drops such terms)."""
    if not isinstance(term, dict):
        return None
    labels: LabelSelector | None = None
    expressions = term.get("matchExpressions") or []
    try:
        if expressions:
            reqs = []
            for expr in expressions:
                op = _OPERATORS.get(expr.get("operator")) if isinstance(expr, dict) else None
                if op is None:
                    return None
                reqs.append(Requirement.new(str(expr.get("key") or ""), op, list(expr.get("values") or [])))
            labels = LabelSelector(reqs)
    except (SelectorParseError, TypeError):
        return None
    name_in: list[str] = []
    name_not_in: list[str] = []
    for expr in term.get("matchFields") or []:
        if not isinstance(expr, dict) or expr.get("key") != NODE_NAME_FIELD:
            return None
        values = expr.get("values") or []
        if len(values) != 1:
            return None
        if expr.get("operator") == "In":
            name_in.append(str(values[0]))
        elif expr.get("operator") == "NotIn":
            name_not_in.append(str(values[0]))
        else:
            return None
    return _Term(labels, name_in, name_not_in)


def required_terms(pod_spec: Obj) -> list[_Term] | None:
    """The parsed required node-affinity terms (None when the pod has no required affinity)."""
    required = (((pod_spec.get("affinity") or {}).get("nodeAffinity") or {})
                .get("requiredDuringSchedulingIgnoredDuringExecution"))
    if required is None:
        return None
    terms = [parse_term(t) for t in (required or {}).get("nodeSelectorTerms") or []]
    return [t for t in terms if t is not None]


def node_fits(node: Obj, node_selector: dict[str, str] | None, terms: list[_Term] | None) -> bool:
    """A node's labels and name against a pod's nodeSelector and required affinity terms."""
    meta = node.get("metadata") or {}
    labels = meta.get("labels") or {}
    for key, value in (node_selector or {}).items():
        if labels.get(key) != value:
            return False
    if terms is None:
        return True
    name = meta.get("name") or ""
    return any(term.matches(labels, name) for term in terms)


# -- a DaemonSet's placement ------------------------------------------------------------------


class DaemonPlacement:
    """A DaemonSet's placement rules, parsed once for checking many nodes."""

    __slots__ = ("node_name", "node_selector", "terms", "tolerations")

    def __init__(self, ds: Obj) -> None:
        spec = ((ds.get("spec") or {}).get("template") or {}).get("spec") or {}
        self.node_name = spec.get("nodeName") or ""
        selector = spec.get("nodeSelector")
        self.node_selector = selector if isinstance(selector, dict) else None
        self.terms = required_terms(spec)
        self.tolerations = add_daemon_tolerations({"tolerations": copy.deepcopy(spec.get("tolerations")),
                                                   "hostNetwork": spec.get("hostNetwork")})["tolerations"]

    def should_run(self, node: Obj) -> tuple[bool, bool]:
        """(should run: a pod should be created when there is none; should continue running:
        an existing pod may stay)."""
        name = (node.get("metadata") or {}).get("name") or ""
        if self.node_name and self.node_name != name:
            return False, False
        if not node_fits(node, self.node_selector, self.terms):
            return False, False
        taints = (node.get("spec") or {}).get("taints")
        if untolerated_taint(taints, self.tolerations, (NO_EXECUTE, NO_SCHEDULE)) is not None:
            return False, untolerated_taint(taints, self.tolerations, (NO_EXECUTE,)) is None
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
