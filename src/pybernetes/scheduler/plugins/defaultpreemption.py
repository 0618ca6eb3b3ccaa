"""DefaultPreemption: the PostFilter plugin that makes room for a pod no node fits by evicting
lower-priority pods (upstream's defaultpreemption plugin and framework/preemption evaluator).

After every node rejected the pod, it:

1. checks the pod may preempt (not ``preemptionPolicy: Never``; not already waiting for a
   lower-priority victim to terminate on its nominated node);
2. dry-runs each node whose rejection preemption might resolve (Unschedulable, not
   UnschedulableAndUnresolvable): removes every lower-priority pod on a copy of the node, checks
   the pod then fits, and reprieves as many of those victims as it can (PodDisruptionBudget-
   protected ones first, then by importance), stopping after enough candidates;
3. picks the best candidate (fewest PDB violations, lowest top victim priority, smallest
   priority sum, fewest victims, latest-started top victims, then the first);
4. evicts that node's victims (a DisruptionTarget condition, then a graceful delete, and a
   "Preempted" event), clears the nomination of lower-priority pods nominated to that node (the
   room they waited for goes to this pod), and nominates the node for the pod.

Arguments: ``minCandidateNodesPercentage`` (10) and ``minCandidateNodesAbsolute`` (100).
"""

from __future__ import annotations

import logging
import random
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pybernetes.client.errors import ApiError
from pybernetes.machinery.selectors import label_selector_from_dict
from pybernetes.scheduler.framework import (
    SUCCESS,
    Code,
    CycleState,
    NodeInfo,
    Plugin,
    PodEntry,
    PostFilterResult,
    Status,
)

log = logging.getLogger(__name__)

Obj = dict[str, Any]
PODS = ("", "v1", "pods")
PDBS = "policy/v1/poddisruptionbudgets"
MAX_INT32 = 2**31 - 1

NOT_HELPFUL = "Preemption is not helpful for scheduling"
NO_VICTIMS = "No preemption victims found for incoming pod"
NEVER_MSG = "not eligible due to preemptionPolicy=Never."
TERMINATING_MSG = "not eligible due to a terminating pod on the nominated node."


def priority(pod: Obj) -> int:
    value = (pod.get("spec") or {}).get("priority")
    return int(value) if value is not None else 0


_START_TIMES: dict[str, float] = {}  # startTime text -> epoch seconds (candidates compare many)


def start_time(pod: Obj) -> float:
    """status.startTime as epoch seconds; now when the pod has not started (as upstream)."""
    text = (pod.get("status") or {}).get("startTime")
    if text:
        value = _START_TIMES.get(text)
        if value is not None:
            return value
        try:
            value = datetime.fromisoformat(str(text).replace("Z", "+00:00")).timestamp()
        except ValueError:
            return time.time()
        if len(_START_TIMES) > 4096:
            _START_TIMES.clear()
        _START_TIMES[text] = value
        return value
    return time.time()


def more_important(a: Obj, b: Obj) -> bool:
    """Higher priority first; on equal priority, the pod that started earlier."""
    pa, pb = priority(a), priority(b)
    if pa != pb:
        return pa > pb
    return start_time(a) < start_time(b)


def importance_key(pod: Obj) -> tuple[int, float]:
    return (-priority(pod), start_time(pod))


def terminating_by_preemption(pod: Obj) -> bool:
    if not (pod.get("metadata") or {}).get("deletionTimestamp"):
        return False
    return any(c.get("type") == "DisruptionTarget" and c.get("reason") == "PreemptionByScheduler"
               for c in (pod.get("status") or {}).get("conditions") or ())


@dataclass(slots=True)
class Candidate:
    """A node where the pod fits once ``victims`` (most important first) are gone."""

    node: str
    victims: list[Obj] = field(default_factory=list)
    pdb_violations: int = 0


class DefaultPreemption(Plugin):
    name = "DefaultPreemption"

    @classmethod
    def default_args(cls) -> Obj:
        return {"minCandidateNodesPercentage": 10, "minCandidateNodesAbsolute": 100}

    @classmethod
    def validate_args(cls, args: Obj) -> list[str]:
        errors = []
        pct = args.get("minCandidateNodesPercentage", 10)
        absolute = args.get("minCandidateNodesAbsolute", 100)
        if not isinstance(pct, int) or isinstance(pct, bool) or not 0 <= pct <= 100:
            errors.append("minCandidateNodesPercentage is not in the range [0, 100]")
        if not isinstance(absolute, int) or isinstance(absolute, bool) or absolute < 0:
            errors.append("minCandidateNodesAbsolute is not in the range [0, inf)")
        if pct == 0 and absolute == 0:
            errors.append("both minCandidateNodesPercentage and minCandidateNodesAbsolute cannot be zero")
        return errors

    def __init__(self, args: Obj | None = None, handle: Any = None) -> None:
        super().__init__({**self.default_args(), **(args or {})}, handle)
        self.framework: Any = None  # set by the Framework after construction
        self.random = random.Random()

    # -- PostFilter ----------------------------------------------------------------------------

    async def post_filter(self, state: CycleState, pod: Obj, statuses: dict[str, Status]
                          ) -> tuple[PostFilterResult | None, Status]:
        eligible, why = self.eligible(pod, statuses)
        if not eligible:
            return None, Status.unschedulable(why)
        nodes = list(self.handle.snapshot.node_infos) if self.handle is not None else []
        if not nodes:
            return None, Status.error("no nodes available")
        candidates, node_statuses = self.find_candidates(state, pod, nodes, statuses)
        if not candidates:
            histogram: Counter[str] = Counter()
            for node in nodes:
                status = node_statuses.get(node.name)
                for reason in (status.reasons if status is not None else (NOT_HELPFUL,)):
                    histogram[reason] += 1
            parts = sorted(f"{count} {reason}" for reason, count in histogram.items())
            return None, Status.unschedulable(f"0/{len(nodes)} nodes are available: {', '.join(parts)}.")
        best = self.select_candidate(candidates)
        status = await self.prepare_candidate(best, pod)
        if not status.is_success():
            return None, status
        return PostFilterResult(best.node), SUCCESS

    def eligible(self, pod: Obj, statuses: dict[str, Status]) -> tuple[bool, str]:
        spec = pod.get("spec") or {}
        if spec.get("preemptionPolicy") == "Never":
            return False, NEVER_MSG
        nominated = (pod.get("status") or {}).get("nominatedNodeName")
        if nominated:
            status = statuses.get(nominated)
            if status is not None and status.code == Code.UNSCHEDULABLE_AND_UNRESOLVABLE:
                return True, ""
            info = self.handle.snapshot.get(nominated) if self.handle is not None else None
            if info is not None:
                mine = priority(pod)
                for entry in info.pods.values():
                    if priority(entry.pod) < mine and terminating_by_preemption(entry.pod):
                        return False, TERMINATING_MSG
        return True, ""

    # -- dry run -------------------------------------------------------------------------------

    def candidate_count(self, total: int) -> tuple[int, int]:
        """(offset, how many candidates to find) among ``total`` potential nodes."""
        want = total * int(self.args["minCandidateNodesPercentage"]) // 100
        want = max(want, int(self.args["minCandidateNodesAbsolute"]))
        want = min(want, total)
        offset = self.random.randrange(total) if want < total and total else 0
        return offset, want

    def find_candidates(self, state: CycleState, pod: Obj, nodes: list[NodeInfo], statuses: dict[str, Status]
                        ) -> tuple[list[Candidate], dict[str, Status]]:
        potential = [n for n in nodes
                     if (s := statuses.get(n.name)) is None or s.code != Code.UNSCHEDULABLE_AND_UNRESOLVABLE]
        node_statuses: dict[str, Status] = {}
        if not potential:
            return [], node_statuses
        pdbs = self.handle.list(PDBS) if self.handle is not None else []
        offset, want = self.candidate_count(len(potential))
        clean: list[Candidate] = []
        violating: list[Candidate] = []
        # The dry runs change the state only through PreFilter's AddPod/RemovePod extensions: when
        # none is in play for this pod, one copy serves them all.
        shared = None if self.framework.has_add_pod_extensions(state) else state.clone()
        # Only the filters whose verdict depends on the node's pods run again in the dry runs,
        # on the nodes the others let through (their verdicts cannot change).
        plan = self.framework.pods_filters(state)
        rows = self.handle.snapshot.table.row_of if plan is not None and self.handle is not None else {}
        for i in range(len(potential)):
            info = potential[(offset + i) % len(potential)]
            trial = state.clone() if shared is None else shared
            filters = None
            if plan is not None:
                row = rows.get(info.name)
                if row is not None and (plan[1] is None or plan[1][row]):
                    filters = plan[0]
            victims, violations, status = self.select_victims(trial, pod, info.clone(), pdbs, filters)
            if status.is_success() and victims:
                (violating if violations else clean).append(Candidate(info.name, victims, violations))
                if len(clean) + len(violating) >= want:
                    break
            elif status.is_success():
                status = Status.error(f"expected at least one victim pod on node {info.name!r}")
            node_statuses[info.name] = status
        return clean + violating, node_statuses

    def select_victims(self, state: CycleState, pod: Obj, info: NodeInfo, pdbs: list[Obj],
                       filters: list[Any] | None = None) -> tuple[list[Obj], int, Status]:
        """On a copy of the node (and state): the victims, how many violate a PDB, and whether
        the pod fits with them gone.  ``filters``: the only filters whose verdict can change
        (``Framework.pods_filters``), None for all."""
        fw = self.framework
        mine = priority(pod)
        removed: list[tuple[str, PodEntry]] = []
        for key, entry in list(info.pods.items()):
            if priority(entry.pod) < mine:
                info.remove(key)
                status = fw.run_remove_pod(state, pod, entry, info)
                if not status.is_success():
                    return [], 0, status
                removed.append((key, entry))
        if not removed:
            return [], 0, Status.unresolvable(NO_VICTIMS)
        status = fw.run_filter(state, pod, info, filters)
        if not status.is_success():
            return [], 0, status  # the others pass here: the first failure is the whole chain's
        removed.sort(key=lambda item: importance_key(item[1].pod))
        entries = {id(entry.pod): (key, entry) for key, entry in removed}
        violating, clean = split_by_pdb_violation([entry.pod for _, entry in removed], pdbs)
        victims: list[Obj] = []
        violations = 0

        def reprieve(victim: Obj) -> tuple[bool, Status]:
            key, entry = entries[id(victim)]
            info.add_entry(key, entry)
            status = fw.run_add_pod(state, pod, entry, info)
            if not status.is_success():
                return False, status
            fits = fw.run_filter(state, pod, info, filters).is_success()
            if not fits:
                info.remove(key)
                status = fw.run_remove_pod(state, pod, entry, info)
                if not status.is_success():
                    return False, status
                victims.append(victim)
            return fits, SUCCESS

        for victim in violating:
            fits, status = reprieve(victim)
            if not status.is_success():
                return [], 0, status
            if not fits:
                violations += 1
        for victim in clean:
            fits, status = reprieve(victim)
            if not status.is_success():
                return [], 0, status
        if violating and clean:
            victims.sort(key=importance_key)
        return victims, violations, SUCCESS

    # -- choosing ------------------------------------------------------------------------------

    @staticmethod
    def select_candidate(candidates: list[Candidate]) -> Candidate:
        """Upstream's pickOneNodeForPreemption, criteria in order; ties go to the first."""
        criteria = (
            lambda c: -c.pdb_violations,
            lambda c: -priority(c.victims[0]),
            lambda c: -sum(abs(priority(v)) + MAX_INT32 + 1 for v in c.victims),
            lambda c: -len(c.victims),
            lambda c: earliest_start_of_top(c.victims),
        )
        left = list(candidates)
        for score in criteria:
            if len(left) == 1:
                break
            scores = [score(c) for c in left]
            best = max(scores)
            left = [c for c, s in zip(left, scores, strict=True) if s == best]
        return left[0]

    # -- acting --------------------------------------------------------------------------------

    async def prepare_candidate(self, candidate: Candidate, pod: Obj) -> Status:
        client = self.handle.client if self.handle is not None else None
        recorder = getattr(self.handle, "recorder", None)
        spec = pod.get("spec") or {}
        uid = (pod.get("metadata") or {}).get("uid", "")
        message = f"{spec.get('schedulerName') or 'default-scheduler'}: preempting to accommodate a higher priority pod"
        for victim in candidate.victims:
            meta = victim.get("metadata") or {}
            waiting = getattr(self.handle, "waiting_pods", {}).get(meta.get("uid", ""))
            if waiting is not None:
                self.handle.reject_waiting_pod(meta.get("uid", ""), self.name, "preempted")
            else:
                status = await self._evict(client, victim, message)
                if not status.is_success():
                    return status
            if recorder is not None:
                recorder.event(victim, "Normal", "Preempted", f"Preempted by pod {uid} on node {candidate.node}")
        mine = priority(pod)
        own = (pod.get("metadata") or {}).get("uid")
        for other in self.handle.nominated_pods(candidate.node) if self.handle is not None else ():
            if priority(other) < mine and (other.get("metadata") or {}).get("uid") != own:
                await self._clear_nomination(client, other)
        return SUCCESS

    @staticmethod
    async def _clear_nomination(client: Any, pod: Obj) -> None:
        """status.nominatedNodeName removed (upstream's ClearNominatedNodeName); the queue
        follows through the pod's update.  A failure is logged: the pod keeps waiting."""
        meta = pod.get("metadata") or {}
        try:
            await client.patch(PODS, meta.get("name", ""), {"status": {"nominatedNodeName": None}},
                               meta.get("namespace"), patch_type="merge", subresource="status")
        except ApiError as exc:
            if getattr(exc, "code", None) != 404:
                log.warning("could not clear the nomination of %s/%s: %s", meta.get("namespace"),
                            meta.get("name"), exc)

    @staticmethod
    async def _evict(client: Any, victim: Obj, message: str) -> Status:
        """A DisruptionTarget condition on ``victim``, then a graceful delete (gone already: fine)."""
        meta = victim.get("metadata") or {}
        name, namespace = meta.get("name", ""), meta.get("namespace")
        if client is None:
            return Status.error("preemption needs an API client")
        condition = {"type": "DisruptionTarget", "status": "True", "reason": "PreemptionByScheduler",
                     "message": message}
        try:
            if not has_condition(victim, condition):
                await client.patch(PODS, name, {"status": {"conditions": [condition]}}, namespace,
                                   patch_type="strategic", subresource="status")
            await client.delete(PODS, name, namespace)
        except ApiError as exc:
            if getattr(exc, "code", None) != 404:
                return Status.error(f"preempting pod {namespace}/{name}: {exc}")
            log.info("victim pod %s/%s is already deleted", namespace, name)
        return SUCCESS


def has_condition(pod: Obj, condition: Obj) -> bool:
    for c in (pod.get("status") or {}).get("conditions") or ():
        if all(c.get(k) == v for k, v in condition.items()):
            return True
    return False


def earliest_start_of_top(victims: list[Obj]) -> float:
    """The earliest start time among the highest-priority victims."""
    top = max(priority(v) for v in victims)
    return min(start_time(v) for v in victims if priority(v) == top)


def split_by_pdb_violation(pods: list[Obj], pdbs: list[Obj]) -> tuple[list[Obj], list[Obj]]:
    """(pods whose eviction would exceed some PDB's disruptionsAllowed, the others), keeping order;
    each eviction uses up an allowed disruption of every PDB selecting the pod."""
    allowed = [int((pdb.get("status") or {}).get("disruptionsAllowed") or 0) for pdb in pdbs]
    selectors = []
    for pdb in pdbs:
        try:
            selectors.append(label_selector_from_dict((pdb.get("spec") or {}).get("selector"),
                                                      nil_matches_nothing=True))
        except ValueError:
            selectors.append(None)
    violating: list[Obj] = []
    clean: list[Obj] = []
    for pod in pods:
        meta = pod.get("metadata") or {}
        labels = meta.get("labels") or {}
        violated = False
        for i, pdb in enumerate(pdbs):
            selector = selectors[i]
            if (pdb.get("metadata") or {}).get("namespace") != meta.get("namespace"):
                continue
            if selector is None or selector.empty or not selector.matches(labels):
                continue
            if meta.get("name") in ((pdb.get("status") or {}).get("disruptedPods") or {}):
                continue
            allowed[i] -= 1
            if allowed[i] < 0:
                violated = True
        (violating if violated else clean).append(pod)
    return violating, clean
