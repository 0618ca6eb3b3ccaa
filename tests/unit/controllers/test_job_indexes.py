"""Completion-index intervals and the per-index pod fields of Indexed Jobs (job_indexes)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pybernetes.controllers import job_indexes as ix
from pybernetes.controllers.job_indexes import Intervals


@pytest.mark.parametrize(("text", "completions", "expected"), [
    ("", 10, ""),
    ("0", 10, "0"),
    ("1,3-5,7", 10, "1,3-5,7"),
    ("1,2,3", 10, "1-3"),
    ("0-2,3-4", 10, "0-4"),
    ("3-12", 10, "3-9"),        # clipped at completions
    ("12,14", 10, ""),          # beyond completions
    ("a,2,x-3,5", 10, "2,5"),   # bad pieces skipped
    ("5-3,6", 10, "6"),         # reversed interval skipped
    ("4,2", 10, "4"),           # out of order skipped
])
def test_parse_and_format(text: str, completions: int, expected: str) -> None:
    assert str(Intervals.parse(text, completions)) == expected


def test_membership_total_merge_overlap() -> None:
    a = Intervals.parse("1,3-5,9", 20)
    assert a.total() == 5 and a.has(4) and not a.has(2) and 9 in a and not a.has(10)
    assert a.indexes() == [1, 3, 4, 5, 9]
    b = a.with_indexes([2, 6, 12])
    assert str(b) == "1-6,9,12"
    assert str(a) == "1,3-5,9"  # unchanged
    assert str(a.merge(Intervals.parse("0,8-10", 20))) == "0-1,3-5,8-10"
    assert a.overlap(Intervals.parse("0-3,5-9", 20)) == 4
    assert Intervals.of([3, 1, 2, 1]) == Intervals.parse("1-3", 5)


@given(st.sets(st.integers(min_value=0, max_value=60)))
def test_round_trip(indexes: set[int]) -> None:
    intervals = Intervals.of(indexes)
    assert intervals.indexes() == sorted(indexes)
    assert Intervals.parse(str(intervals), 61) == intervals
    assert intervals.total() == len(indexes)


def pod(annotations=None, labels=None) -> dict:
    return {"metadata": {"annotations": annotations or {}, "labels": labels or {}}}


def test_completion_index_of_pods() -> None:
    assert ix.completion_index(pod({ix.COMPLETION_INDEX: "3"})) == 3
    assert ix.completion_index(pod(labels={ix.COMPLETION_INDEX: "4"})) == 4
    assert ix.completion_index(pod({ix.COMPLETION_INDEX: "-1"})) is None
    assert ix.completion_index(pod({ix.COMPLETION_INDEX: "x"})) is None
    assert ix.completion_index(pod()) is None
    assert ix.valid_index(pod({ix.COMPLETION_INDEX: "5"}), 5) is None
    assert ix.valid_index(pod({ix.COMPLETION_INDEX: "4"}), 5) == 4


def test_names_env_and_stamps() -> None:
    assert ix.generate_name_for_index("job", 3) == "job-3-"
    long = ix.generate_name_for_index("j" * 70, 12)
    assert len(long) == ix.MAX_GENERATED_NAME_LENGTH and long.endswith("-12-")
    template = {"metadata": {}, "spec": {"initContainers": [{"name": "i"}],
                                         "containers": [{"name": "a"}, {"name": "b", "env": [
                                             {"name": "JOB_COMPLETION_INDEX", "value": "mine"}]}]}}
    ix.add_completion_index_env(template)
    ix.add_completion_index_env(template)  # idempotent
    init_env = template["spec"]["initContainers"][0]["env"]
    assert init_env == [{"name": "JOB_COMPLETION_INDEX", "valueFrom": {"fieldRef": {
        "apiVersion": "v1", "fieldPath": "metadata.annotations['batch.kubernetes.io/job-completion-index']"}}}]
    assert len(template["spec"]["containers"][0]["env"]) == 1
    assert template["spec"]["containers"][1]["env"] == [{"name": "JOB_COMPLETION_INDEX", "value": "mine"}]
    ix.stamp_index(template, "job", 2)
    assert template["metadata"]["annotations"][ix.COMPLETION_INDEX] == "2"
    assert template["metadata"]["labels"][ix.COMPLETION_INDEX] == "2"
    assert template["spec"]["hostname"] == "job-2"
    ix.stamp_failure_counts(template, 2, 0)
    assert template["metadata"]["annotations"][ix.INDEX_FAILURE_COUNT] == "2"
    assert ix.INDEX_IGNORED_FAILURE_COUNT not in template["metadata"]["annotations"]
    ix.stamp_failure_counts(template, 2, 1)
    assert ix.failure_counts(template) == (2, 1) and ix.absolute_failure_count(template) == 3
