"""NodeAffinity: Filter and Score by a pod's node selector and node affinity (upstream's
nodeaffinity plugin).

- PreFilter parses ``spec.nodeSelector`` and the required node affinity once per pod
  (nodeselector.RequiredNodeAffinity, kept in the cycle state) and skips Filter when the pod
  has neither and the plugin no addedAffinity.  When every required term pins
  ``metadata.name In [...]``, it narrows the nodes to the union over terms of each term's
  intersection (a PreFilterResult); when that union is empty the pod is rejected as
  UnschedulableAndUnresolvable, "pod affinity terms conflict".
- Filter: a node outside the plugin's ``addedAffinity.requiredDuringScheduling...`` gets
  "node(s) didn't match scheduler-enforced node affinity"; a node the pod's selector or
  required terms do not match gets "node(s) didn't match Pod's node affinity/selector"
  (both UnschedulableAndUnresolvable).
- PreScore/Score: the sum of the weights of the preferred terms (the pod's and the
  addedAffinity's) the node matches; NormalizeScore scales to 0..100 (the best node gets 100).
  PreScore skips Score when there are no preferred terms at all.

Args (NodeAffinityArgs): ``addedAffinity`` — a NodeAffinity (required and preferred terms)
applied to every pod of the profile.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

from pybernetes.machinery.nodeaffinity import (
    NodeSelector,
    NodeSelectorError,
    PreferredSchedulingTerms,
    RequiredNodeAffinity,
    match_fields_node_names,
    preferred_affinity_of,
    required_affinity_of,
)
from pybernetes.scheduler.framework import (
    MAX_NODE_SCORE,
    SUCCESS,
    ClusterEvent,
    CycleState,
    NodeInfo,
    Plugin,
    PreFilterResult,
    Status,
)

Obj = dict[str, Any]

ERR_REASON_POD = "node(s) didn't match Pod's node affinity/selector"
ERR_REASON_ENFORCED = "node(s) didn't match scheduler-enforced node affinity"
ERR_REASON_CONFLICT = "pod affinity terms conflict"

PRE_FILTER_KEY = "PreFilterNodeAffinity"
PRE_SCORE_KEY = "PreScoreNodeAffinity"

_REQUIRED = "requiredDuringSchedulingIgnoredDuringExecution"
_PREFERRED = "preferredDuringSchedulingIgnoredDuringExecution"
_NO_TERMS = PreferredSchedulingTerms(())


def normalize_scores(scores: dict[str, int], reverse: bool = False) -> None:
    """Upstream's DefaultNormalizeScore: scale to 0..MAX_NODE_SCORE by the highest score
    (integer division); ``reverse`` flips it.  All zero: 0 (or MAX when reversed)."""
    highest = max(scores.values(), default=0)
    if highest <= 0:
        if reverse:
            for name in scores:
                scores[name] = MAX_NODE_SCORE
        return
    for name, value in scores.items():
        value = MAX_NODE_SCORE * value // highest
        scores[name] = MAX_NODE_SCORE - value if reverse else value


def normalize_table(scores: np.ndarray, reverse: bool = False) -> np.ndarray:
    """``normalize_scores`` over an array of scores (a new array)."""
    highest = int(scores.max()) if len(scores) else 0
    if highest <= 0:
        return np.full(len(scores), MAX_NODE_SCORE, np.int64) if reverse else scores.copy()
    out = MAX_NODE_SCORE * scores // highest
    return MAX_NODE_SCORE - out if reverse else out


def _parse_added(added: Any) -> tuple[NodeSelector | None, PreferredSchedulingTerms | None]:
    """addedAffinity parsed strictly (raises NodeSelectorError naming the bad field)."""
    if added is None:
        return None, None
    if not isinstance(added, dict):
        raise NodeSelectorError("addedAffinity: must be an object")
    required = added.get(_REQUIRED)
    selector = NodeSelector.strict(required, f"addedAffinity.{_REQUIRED}.nodeSelectorTerms") \
        if required is not None else None
    preferred = added.get(_PREFERRED)
    terms = PreferredSchedulingTerms.strict(preferred, f"addedAffinity.{_PREFERRED}") if preferred else None
    return selector, terms


class NodeAffinity(Plugin):
    name = "NodeAffinity"
    node_pods_matter = False  # its Filter looks at the node, never at the pods on it

    _REJECT_POD = Status.unresolvable(ERR_REASON_POD, plugin="NodeAffinity")
    _REJECT_ENFORCED = Status.unresolvable(ERR_REASON_ENFORCED, plugin="NodeAffinity")

    def __init__(self, args: Obj | None = None, handle: Any = None) -> None:
        super().__init__(args, handle)
        self.added_required, self.added_preferred = _parse_added(self.args.get("addedAffinity"))

    @classmethod
    def validate_args(cls, args: Obj) -> list[str]:
        try:
            _parse_added((args or {}).get("addedAffinity"))
        except NodeSelectorError as exc:
            return [str(exc)]
        return []

    # -- filtering -----------------------------------------------------------------------------

    def pre_filter(self, state: CycleState, pod: Obj, nodes: list[NodeInfo]
                   ) -> tuple[PreFilterResult | None, Status]:
        spec = pod.get("spec") or {}
        required = required_affinity_of(spec)
        if required is None and self.added_required is None and spec.get("nodeSelector") is None:
            return None, Status.skip()
        state.write(PRE_FILTER_KEY, RequiredNodeAffinity.of_pod(pod))
        if required is None:
            return None, SUCCESS
        names = match_fields_node_names(required)
        if names is None:
            return None, SUCCESS
        if not names:
            return None, Status.unresolvable(ERR_REASON_CONFLICT, plugin=self.name)
        return PreFilterResult(frozenset(names)), SUCCESS

    def filter(self, state: CycleState, pod: Obj, node_info: NodeInfo) -> Status:
        meta = node_info.node.get("metadata") or {}
        labels = meta.get("labels") or {}
        name = node_info.name
        if self.added_required is not None and not self.added_required.matches(labels, name):
            return self._REJECT_ENFORCED
        required = state.get(PRE_FILTER_KEY)
        if required is None:  # PreFilter not enabled: parse once, keep for the cycle
            required = RequiredNodeAffinity.of_pod(pod)
            state.write(PRE_FILTER_KEY, required)
        if required.matches(labels, name):
            return SUCCESS
        return self._REJECT_POD

    # -- scoring -------------------------------------------------------------------------------

    def _preferred_terms(self, pod: Obj) -> PreferredSchedulingTerms | None:
        """The pod's preferred terms plus the added ones; None when there are none at all.
        Raises NodeSelectorError when the pod's terms do not parse."""
        preferred = preferred_affinity_of(pod.get("spec") or {})
        pod_terms = PreferredSchedulingTerms.strict(preferred) if preferred is not None else None
        if pod_terms is None:
            return self.added_preferred
        if self.added_preferred is None:
            return pod_terms
        return self.added_preferred + pod_terms

    def pre_score(self, state: CycleState, pod: Obj, nodes: list[NodeInfo]) -> Status:
        try:
            terms = self._preferred_terms(pod)
        except NodeSelectorError as exc:
            return Status.error(str(exc), plugin=self.name)
        if terms is None:
            return Status.skip()
        state.write(PRE_SCORE_KEY, terms)
        return SUCCESS

    def score(self, state: CycleState, pod: Obj, node_info: NodeInfo) -> tuple[int, Status]:
        terms = state.get(PRE_SCORE_KEY)
        if terms is None:  # PreScore not enabled
            try:
                terms = self._preferred_terms(pod) or _NO_TERMS
            except NodeSelectorError as exc:
                return 0, Status.error(str(exc), plugin=self.name)
            state.write(PRE_SCORE_KEY, terms)
        if not terms.terms:
            return 0, SUCCESS
        meta = node_info.node.get("metadata") or {}
        return terms.score(meta.get("labels") or {}, node_info.name), SUCCESS

    def normalize_score(self, state: CycleState, pod: Obj, scores: dict[str, int]) -> Status:
        normalize_scores(scores)
        return SUCCESS

    def events_to_register(self) -> Iterable[ClusterEvent]:
        # v1.32 with queueing hints: a node added or its labels changed.
        return (ClusterEvent("Node", "Add"), ClusterEvent("Node", "UpdateNodeLabel"))
