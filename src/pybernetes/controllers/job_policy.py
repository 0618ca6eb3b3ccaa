"""A Job's policies as pure decisions: ``spec.podFailurePolicy`` (which rule a failed pod
matches, and so whether the failure counts, fails the job, fails only its index, or is
ignored) and ``spec.successPolicy`` (whether the succeeded indexes of an Indexed Job already
make it successful).  Upstream's pod_failure_policy.go and success_policy.go.

Rules are tried in order; the first that matches decides:

- ``onExitCodes``: the first terminated container (app containers, then init containers) with
  a non-zero exit code, optionally only the container ``containerName``, whose code is ``In``
  (or ``NotIn``) the listed values;
- ``onPodConditions``: a pod condition with that type and status (e.g. ``DisruptionTarget``).

Actions: ``FailJob`` (the job fails, with a message naming pod, container and rule),
``FailIndex`` (the index fails at once; backoffLimitPerIndex), ``Ignore`` (not counted against
any limit), ``Count`` (counted as usual).  A failure no rule matches is counted.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pybernetes.controllers.job_indexes import Intervals

Obj = dict[str, Any]

FAIL_JOB = "FailJob"
FAIL_INDEX = "FailIndex"
IGNORE = "Ignore"
COUNT = "Count"


@dataclass(frozen=True, slots=True)
class FailureMatch:
    """What the pod failure policy says about one failed pod."""

    count_failed: bool = True          # counts against backoffLimit / backoffLimitPerIndex
    action: str | None = None          # the matching rule's action (None: no rule matched)
    fail_job_message: str | None = None  # set for FailJob

    @property
    def fails_index(self) -> bool:
        return self.action == FAIL_INDEX


NO_MATCH = FailureMatch()


def _exit_code_matches(code: int, requirement: Obj) -> bool:
    values = requirement.get("values") or []
    operator = requirement.get("operator")
    if operator == "In":
        return code in values
    if operator == "NotIn":
        return code not in values
    return False


def _matching_container(statuses: list[Obj] | None, requirement: Obj) -> Obj | None:
    wanted = requirement.get("containerName")
    for status in statuses or ():
        terminated = ((status or {}).get("state") or {}).get("terminated")
        if not isinstance(terminated, dict):
            continue  # still running or waiting: no exit code yet
        if wanted and status.get("name") != wanted:
            continue
        code = terminated.get("exitCode")
        if isinstance(code, int) and code != 0 and _exit_code_matches(code, requirement):
            return status
    return None


def match_on_exit_codes(pod_status: Obj, requirement: Obj) -> Obj | None:
    """The container status (app containers first, then init containers) the rule matches."""
    return (_matching_container(pod_status.get("containerStatuses"), requirement)
            or _matching_container(pod_status.get("initContainerStatuses"), requirement))


def match_on_pod_conditions(pod_status: Obj, patterns: list[Obj]) -> Obj | None:
    for cond in pod_status.get("conditions") or ():
        for pattern in patterns:
            if cond.get("type") == pattern.get("type") and cond.get("status") == (pattern.get("status") or "True"):
                return cond
    return None


def match_pod_failure_policy(policy: Obj | None, pod: Obj) -> FailureMatch:
    """The decision of ``policy`` for the failed ``pod`` (counted when no rule matches)."""
    if not policy:
        return NO_MATCH
    status = pod.get("status") or {}
    meta = pod.get("metadata") or {}
    for index, rule in enumerate(policy.get("rules") or ()):
        action = rule.get("action")
        if rule.get("onExitCodes") is not None:
            container = match_on_exit_codes(status, rule["onExitCodes"])
            if container is None:
                continue
            if action == FAIL_JOB:
                code = container["state"]["terminated"].get("exitCode")
                return FailureMatch(True, FAIL_JOB, (
                    f"Container {container.get('name')} for pod {meta.get('namespace')}/{meta.get('name')} "
                    f"failed with exit code {code} matching {action} rule at index {index}"))
        elif rule.get("onPodConditions") is not None:
            cond = match_on_pod_conditions(status, rule["onPodConditions"])
            if cond is None:
                continue
            if action == FAIL_JOB:
                return FailureMatch(True, FAIL_JOB, (
                    f"Pod {meta.get('namespace')}/{meta.get('name')} has condition {cond.get('type')} "
                    f"matching {action} rule at index {index}"))
        else:
            continue
        if action == IGNORE:
            return FailureMatch(False, IGNORE)
        if action in (FAIL_INDEX, COUNT):
            return FailureMatch(True, action)
        # An unknown action: as upstream, the rule matches but decides nothing; try the next.
    return NO_MATCH


# -- success policy --------------------------------------------------------------------------


def _rule_indexes_met(required: Intervals, succeeded: Intervals, succeeded_count: int | None) -> bool:
    contained = required.overlap(succeeded)
    return contained == required.total() or (succeeded_count is not None and contained >= succeeded_count)


def match_success_policy(policy: Obj | None, completions: int, succeeded: Intervals) -> tuple[str, bool]:
    """(message, met): whether a rule of ``policy`` is satisfied by the ``succeeded`` indexes."""
    if not policy or not succeeded.total():
        return "", False
    for index, rule in enumerate(policy.get("rules") or ()):
        count = rule.get("succeededCount")
        count = count if isinstance(count, int) else None
        if rule.get("succeededIndexes") is not None:
            required = Intervals.parse(str(rule["succeededIndexes"]), completions)
            if not required.total():
                continue  # a rule that does not parse never matches
            if _rule_indexes_met(required, succeeded, count):
                return f"Matched rules at index {index}", True
        elif count is not None and succeeded.total() >= count:
            return f"Matched rules at index {index}", True
    return "", False
