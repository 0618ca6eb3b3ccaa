"""podFailurePolicy rule matching and successPolicy rules (job_policy)."""

from __future__ import annotations

from pybernetes.controllers.job_indexes import Intervals
from pybernetes.controllers.job_policy import match_pod_failure_policy, match_success_policy


def failed_pod(*codes: tuple[str, int], init: tuple[str, int] | None = None, conditions=None) -> dict:
    def status(name, code):
        return {"name": name, "state": {"terminated": {"exitCode": code}}}
    st = {"phase": "Failed", "containerStatuses": [status(n, c) for n, c in codes],
          "conditions": conditions or []}
    if init:
        st["initContainerStatuses"] = [status(*init)]
    return {"metadata": {"name": "p", "namespace": "ns"}, "status": st}


def policy(*rules):
    return {"rules": list(rules)}


def test_no_policy_or_no_match_counts() -> None:
    assert match_pod_failure_policy(None, failed_pod(("c", 1))).count_failed
    m = match_pod_failure_policy(policy({"action": "Ignore", "onExitCodes": {"operator": "In", "values": [2]}}),
                                 failed_pod(("c", 1)))
    assert m.count_failed and m.action is None


def test_exit_codes_in_not_in_and_container_name() -> None:
    rules = policy(
        {"action": "FailJob", "onExitCodes": {"containerName": "main", "operator": "In", "values": [42]}},
        {"action": "Ignore", "onExitCodes": {"operator": "NotIn", "values": [1, 42]}},
    )
    m = match_pod_failure_policy(rules, failed_pod(("side", 0), ("main", 42)))
    assert m.action == "FailJob" and m.count_failed
    assert m.fail_job_message == ("Container main for pod ns/p failed with exit code 42 matching FailJob rule "
                                  "at index 0")
    # 42 in a container not named "main" does not match rule 0; NotIn [1, 42] does not match 42.
    assert match_pod_failure_policy(rules, failed_pod(("side", 42))).action is None
    m = match_pod_failure_policy(rules, failed_pod(("side", 7)))
    assert m.action == "Ignore" and not m.count_failed
    # Exit code 0 never matches, even NotIn.
    assert match_pod_failure_policy(rules, failed_pod(("side", 0))).action is None


def test_init_containers_and_running_containers() -> None:
    rules = policy({"action": "Count", "onExitCodes": {"operator": "In", "values": [3]}})
    assert match_pod_failure_policy(rules, failed_pod(init=("init", 3))).action == "Count"
    running = {"metadata": {}, "status": {"containerStatuses": [{"name": "c", "state": {"running": {}}}]}}
    assert match_pod_failure_policy(rules, running).action is None


def test_pod_conditions_and_fail_index() -> None:
    rules = policy(
        {"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget", "status": "True"}]},
        {"action": "FailIndex", "onExitCodes": {"operator": "In", "values": [5]}},
        {"action": "FailJob", "onPodConditions": [{"type": "ConfigIssue"}]},
    )
    disrupted = failed_pod(("c", 5), conditions=[{"type": "DisruptionTarget", "status": "True"}])
    assert match_pod_failure_policy(rules, disrupted).action == "Ignore"
    m = match_pod_failure_policy(rules, failed_pod(("c", 5)))
    assert m.fails_index and m.count_failed
    m = match_pod_failure_policy(rules, failed_pod(("c", 1), conditions=[{"type": "ConfigIssue", "status": "True"}]))
    assert m.fail_job_message == "Pod ns/p has condition ConfigIssue matching FailJob rule at index 2"
    not_true = failed_pod(("c", 1), conditions=[{"type": "DisruptionTarget", "status": "False"}])
    assert match_pod_failure_policy(rules, not_true).action is None


def test_success_policy_rules() -> None:
    assert match_success_policy(None, 5, Intervals.parse("0-4", 5)) == ("", False)
    by_indexes = {"rules": [{"succeededIndexes": "0,2"}]}
    assert match_success_policy(by_indexes, 5, Intervals.parse("0,1", 5)) == ("", False)
    assert match_success_policy(by_indexes, 5, Intervals.parse("0-2", 5)) == ("Matched rules at index 0", True)
    with_count = {"rules": [{"succeededIndexes": "x"}, {"succeededIndexes": "1-4", "succeededCount": 2}]}
    assert match_success_policy(with_count, 5, Intervals.parse("0-1", 5)) == ("", False)
    assert match_success_policy(with_count, 5, Intervals.parse("0-2", 5)) == ("Matched rules at index 1", True)
    count_only = {"rules": [{"succeededCount": 3}]}
    assert not match_success_policy(count_only, 5, Intervals.parse("0,4", 5))[1]
    assert match_success_policy(count_only, 5, Intervals.parse("0,2,4", 5))[1]
    assert not match_success_policy(count_only, 5, Intervals())[1]
