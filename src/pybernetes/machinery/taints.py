"""Taints and tolerations as upstream's v1helper toleration helpers match them, pure functions
over wire-shaped dicts; used by the scheduler (TaintToleration, NodeUnschedulable,
PodTopologySpread's nodeTaintsPolicy) and by the DaemonSet controller.

Matching, as upstream's ``Toleration.ToleratesTaint``:

- a toleration with an effect only matches taints of that effect (no effect: every effect);
- a toleration with a key only matches taints with that key (no key: every key; with
  operator Exists that is "tolerate everything");
- operator Exists matches any value; Equal (or no operator) the identical value (missing
  values count as ""); any other operator matches nothing.

``CompiledTolerations`` parses a pod's tolerations once (per scheduling cycle) into tuples and
remembers its verdict per distinct (key, value, effect) taint, so checking a node's taints in
Filter/Score is a dict lookup per taint.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

Obj = dict[str, Any]

NO_SCHEDULE, PREFER_NO_SCHEDULE, NO_EXECUTE = "NoSchedule", "PreferNoSchedule", "NoExecute"
DO_NOT_SCHEDULE_EFFECTS = (NO_SCHEDULE, NO_EXECUTE)
TAINT_NODE_UNSCHEDULABLE = "node.kubernetes.io/unschedulable"


def toleration_tolerates(toleration: Obj, taint: Obj) -> bool:
    """Whether one toleration tolerates one taint (upstream's ToleratesTaint)."""
    effect = toleration.get("effect") or ""
    if effect and effect != (taint.get("effect") or ""):
        return False
    key = toleration.get("key") or ""
    if key and key != (taint.get("key") or ""):
        return False
    operator = toleration.get("operator") or ""
    if operator == "Exists":
        return True
    if operator in ("", "Equal"):
        return (toleration.get("value") or "") == (taint.get("value") or "")
    return False


def tolerations_tolerate(tolerations: Iterable[Obj] | None, taint: Obj) -> bool:
    """Whether any of ``tolerations`` tolerates ``taint`` (upstream's TolerationsTolerateTaint)."""
    return any(isinstance(t, dict) and toleration_tolerates(t, taint) for t in tolerations or ())


def find_untolerated_taint(taints: Iterable[Obj] | None, tolerations: Iterable[Obj] | None,
                           effects: tuple[str, ...] = DO_NOT_SCHEDULE_EFFECTS) -> Obj | None:
    """The first taint whose effect is one of ``effects`` that no toleration tolerates, or None
    (upstream's FindMatchingUntoleratedTaint with a filter on the effect)."""
    tolerations = list(tolerations or ())
    for taint in taints or ():
        if isinstance(taint, dict) and taint.get("effect") in effects \
                and not tolerations_tolerate(tolerations, taint):
            return taint
    return None


def pod_tolerations(pod: Obj) -> list[Obj]:
    return [t for t in (pod.get("spec") or {}).get("tolerations") or () if isinstance(t, dict)]


class CompiledTolerations:
    """A pod's tolerations parsed once: ``tolerates(taint)`` answers from a per-taint memo.

    ``effects`` keeps only the tolerations that can match a taint of one of those effects
    (e.g. PreferNoSchedule for scoring); tolerations with an unknown operator are dropped
    (they tolerate nothing)."""

    __slots__ = ("_terms", "_memo", "tolerates_everything")

    def __init__(self, tolerations: Iterable[Obj] | None, effects: tuple[str, ...] | None = None) -> None:
        terms: list[tuple[str, str, bool, str]] = []  # (key, effect, exists, value)
        everything = False
        for tol in tolerations or ():
            if not isinstance(tol, dict):
                continue
            effect = tol.get("effect") or ""
            if effects is not None and effect and effect not in effects:
                continue
            operator = tol.get("operator") or ""
            if operator not in ("", "Equal", "Exists"):
                continue
            key = tol.get("key") or ""
            exists = operator == "Exists"
            if exists and not key and not effect:
                everything = True
            terms.append((key, effect, exists, tol.get("value") or ""))
        self._terms = tuple(terms)
        self._memo: dict[tuple[str, str, str], bool] = {}
        self.tolerates_everything = everything

    @classmethod
    def of_pod(cls, pod: Obj, effects: tuple[str, ...] | None = None) -> CompiledTolerations:
        return cls((pod.get("spec") or {}).get("tolerations"), effects)

    def tolerates_taint(self, key: str, value: str, effect: str) -> bool:
        """Whether some toleration tolerates the taint (key, value, effect); memoized."""
        memo_key = (key, value, effect)
        known = self._memo.get(memo_key)
        if known is not None:
            return known
        verdict = False
        for t_key, t_effect, exists, t_value in self._terms:
            if t_effect and t_effect != effect:
                continue
            if t_key and t_key != key:
                continue
            if exists or t_value == value:
                verdict = True
                break
        self._memo[memo_key] = verdict
        return verdict

    def tolerates(self, taint: Obj) -> bool:
        return self.tolerates_taint(taint.get("key") or "", taint.get("value") or "", taint.get("effect") or "")

    def first_untolerated(self, taints: Iterable[Obj] | None,
                          effects: tuple[str, ...] = DO_NOT_SCHEDULE_EFFECTS) -> Obj | None:
        """The first taint of ``taints`` with one of ``effects`` not tolerated, or None."""
        if self.tolerates_everything:
            return None
        for taint in taints or ():
            effect = taint.get("effect")
            if effect in effects and not self.tolerates_taint(taint.get("key") or "", taint.get("value") or "",
                                                              effect):
                return taint
        return None

    def count_untolerated(self, taints: Iterable[Obj] | None, effect: str = PREFER_NO_SCHEDULE) -> int:
        """How many taints of ``taints`` with ``effect`` are not tolerated."""
        if self.tolerates_everything:
            return 0
        count = 0
        for taint in taints or ():
            if taint.get("effect") == effect and not self.tolerates_taint(taint.get("key") or "",
                                                                          taint.get("value") or "", effect):
                count += 1
        return count

    def clone(self) -> CompiledTolerations:
        """Shared: the tolerations do not change with preemption's what-ifs."""
        return self
