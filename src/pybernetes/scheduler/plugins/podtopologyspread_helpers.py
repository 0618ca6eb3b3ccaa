"""Pure helpers of the PodTopologySpread plugin (upstream's podtopologyspread/common.go and
the bits of helper/ and nodeaffinity it uses) — no I/O.

- ``Constraint``: one topology spread constraint with its selector parsed (``matchLabelKeys``
  merged in), ``minDomains`` defaulted to 1, and the node inclusion policies
  (``nodeAffinityPolicy`` Honor, ``nodeTaintsPolicy`` Ignore by default) as booleans;
  ``constraints_for`` keeps those of one ``whenUnsatisfiable`` action.
- ``default_selector``: the selector of the cluster default constraints, built from the
  Services selecting the pod and the ReplicationController / ReplicaSet / StatefulSet that
  controls it (upstream helper.DefaultSelector).
- ``required_affinity`` / ``has_untolerated_do_not_schedule_taint``: the node inclusion
  policies, over the shared ``machinery/nodeaffinity`` and ``machinery/taints`` helpers.

Counting pods per domain lives in ``podtopologyspread_counts``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from pybernetes.machinery.nodeaffinity import RequiredNodeAffinity
from pybernetes.machinery.selectors import (
    EQUALS,
    LabelSelector,
    Requirement,
    SelectorParseError,
    label_selector_from_dict,
)
from pybernetes.machinery.taints import find_untolerated_taint

if TYPE_CHECKING:
    from pybernetes.scheduler.handle import Handle

Obj = dict[str, Any]

DO_NOT_SCHEDULE = "DoNotSchedule"
SCHEDULE_ANYWAY = "ScheduleAnyway"
HONOR = "Honor"
IGNORE = "Ignore"
LABEL_HOSTNAME = "kubernetes.io/hostname"
LABEL_ZONE = "topology.kubernetes.io/zone"


class Constraint:
    """A topology spread constraint ready to evaluate (immutable once built)."""

    __slots__ = ("max_skew", "key", "selector", "min_domains", "honor_affinity", "honor_taints")

    def __init__(self, max_skew: int, key: str, selector: LabelSelector, min_domains: int = 1,
                 honor_affinity: bool = True, honor_taints: bool = False) -> None:
        self.max_skew = max_skew
        self.key = key
        self.selector = selector
        self.min_domains = min_domains
        self.honor_affinity = honor_affinity
        self.honor_taints = honor_taints

    def with_selector(self, selector: LabelSelector) -> Constraint:
        return Constraint(self.max_skew, self.key, selector, self.min_domains, self.honor_affinity,
                          self.honor_taints)

    def __repr__(self) -> str:
        return (f"Constraint(maxSkew={self.max_skew}, key={self.key!r}, selector={self.selector!r}, "
                f"minDomains={self.min_domains}, honorAffinity={self.honor_affinity}, "
                f"honorTaints={self.honor_taints})")


def _merge_match_label_keys(selector: LabelSelector, keys: list[str], pod_labels: Mapping[str, str]
                            ) -> LabelSelector:
    """The pod's values of ``matchLabelKeys`` ANDed with the selector.  Like upstream, a nil
    selector (matches nothing) has no requirements to keep, so only the pod's values remain."""
    pairs = [Requirement(k, EQUALS, (pod_labels[k],)) for k in keys if k in pod_labels]
    if not pairs:
        return selector
    if selector.matches_nothing:
        return LabelSelector(pairs)
    return LabelSelector(pairs + list(selector.requirements))


def constraints_for(raw: list[Obj], pod_labels: Mapping[str, str], action: str) -> list[Constraint]:
    """The constraints of ``raw`` whose whenUnsatisfiable is ``action``.  Raises
    ``SelectorParseError`` for an invalid labelSelector (the pod's PreFilter then errors)."""
    out: list[Constraint] = []
    for c in raw:
        if c.get("whenUnsatisfiable") != action:
            continue
        # A nil labelSelector matches nothing (upstream LabelSelectorAsSelector(nil)).
        selector = label_selector_from_dict(c.get("labelSelector"), nil_matches_nothing=True)
        keys = c.get("matchLabelKeys") or []
        if keys:
            selector = _merge_match_label_keys(selector, keys, pod_labels)
        min_domains = c.get("minDomains")
        out.append(Constraint(
            int(c.get("maxSkew") or 0), str(c.get("topologyKey") or ""), selector,
            int(min_domains) if min_domains is not None else 1,
            (c.get("nodeAffinityPolicy") or HONOR) == HONOR,
            (c.get("nodeTaintsPolicy") or IGNORE) == HONOR))
    return out


def node_has_all_keys(labels: Mapping[str, str], constraints: list[Constraint]) -> bool:
    for c in constraints:
        if c.key not in labels:
            return False
    return True


# -- the default selector ---------------------------------------------------------------------

_CONTROLLER_KINDS = {("v1", "ReplicationController"): "v1/replicationcontrollers",
                     ("apps/v1", "ReplicaSet"): "apps/v1/replicasets",
                     ("apps/v1", "StatefulSet"): "apps/v1/statefulsets"}


def _named(items: list[Obj], name: str) -> Obj | None:
    for item in items:
        if (item.get("metadata") or {}).get("name") == name:
            return item
    return None


def default_selector(pod: Obj, handle: Handle | None) -> LabelSelector:
    """Selector of the pod's "siblings": the union of the selectors of the Services in its
    namespace whose selector matches it, plus the selector of its controlling
    ReplicationController, ReplicaSet or StatefulSet.  Empty when there is none."""
    if handle is None:
        return LabelSelector.everything()
    meta = pod.get("metadata") or {}
    namespace = meta.get("namespace") or ""
    pod_labels = meta.get("labels") or {}
    label_set: dict[str, str] = {}
    for service in handle.list("v1/services", namespace):
        wanted = (service.get("spec") or {}).get("selector")
        if not wanted:  # a Service without a selector selects nothing
            continue
        if all(pod_labels.get(k) == v for k, v in wanted.items()):
            label_set.update(wanted)
    requirements = [Requirement(k, EQUALS, (v,)) for k, v in label_set.items()]
    owner = next((ref for ref in meta.get("ownerReferences") or () if ref.get("controller")), None)
    if owner is not None:
        resource = _CONTROLLER_KINDS.get((owner.get("apiVersion") or "", owner.get("kind") or ""))
        if resource is not None:
            controller = _named(handle.list(resource, namespace), owner.get("name") or "")
            spec = (controller or {}).get("spec") or {}
            if controller is None:
                pass
            elif resource == "v1/replicationcontrollers":
                label_set.update(spec.get("selector") or {})
                requirements = [Requirement(k, EQUALS, (v,)) for k, v in label_set.items()]
            else:
                try:
                    extra = label_selector_from_dict(spec.get("selector"), nil_matches_nothing=True)
                except SelectorParseError:
                    extra = None
                if extra is not None and not extra.matches_nothing:
                    requirements = requirements + list(extra.requirements)
    return LabelSelector(requirements)


# -- node inclusion policies -------------------------------------------------------------------


def required_affinity(pod: Obj) -> RequiredNodeAffinity:
    """The pod's nodeSelector and required node affinity (shared ``machinery/nodeaffinity``)."""
    return RequiredNodeAffinity.of_pod(pod)


def asks_nothing(affinity: RequiredNodeAffinity) -> bool:
    """True when the pod has neither a nodeSelector nor required node affinity."""
    return not affinity.selector_pairs and affinity.affinity is None


def has_untolerated_do_not_schedule_taint(taints: list[Obj], tolerations: list[Obj]) -> bool:
    """A NoSchedule or NoExecute taint of the node that the pod's tolerations do not tolerate."""
    return bool(taints) and find_untolerated_taint(taints, tolerations) is not None
