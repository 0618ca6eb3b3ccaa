"""taints: toleration matching as upstream's ToleratesTaint, and the compiled, memoized form
agreeing with it."""

from __future__ import annotations

import pytest

from pybernetes.machinery.taints import (
    CompiledTolerations,
    find_untolerated_taint,
    toleration_tolerates,
    tolerations_tolerate,
)

TAINT = {"key": "dedicated", "value": "user1", "effect": "NoSchedule"}

CASES = [
    ("Equal same value", {"key": "dedicated", "operator": "Equal", "value": "user1", "effect": "NoSchedule"}, True),
    ("no operator means Equal", {"key": "dedicated", "value": "user1", "effect": "NoSchedule"}, True),
    ("Equal other value", {"key": "dedicated", "operator": "Equal", "value": "user2", "effect": "NoSchedule"}, False),
    ("Equal missing value", {"key": "dedicated", "operator": "Equal", "effect": "NoSchedule"}, False),
    ("Exists any value", {"key": "dedicated", "operator": "Exists", "effect": "NoSchedule"}, True),
    ("Exists other key", {"key": "other", "operator": "Exists"}, False),
    ("empty effect matches all effects", {"key": "dedicated", "operator": "Exists"}, True),
    ("other effect", {"key": "dedicated", "operator": "Exists", "effect": "NoExecute"}, False),
    ("empty key with Exists matches everything", {"operator": "Exists"}, True),
    ("empty key with Equal compares the value only", {"operator": "Equal", "value": "user1"}, True),
    ("unknown operator tolerates nothing", {"key": "dedicated", "operator": "Gt", "value": "user1"}, False),
]


@pytest.mark.parametrize(("title", "toleration", "want"), CASES, ids=[c[0] for c in CASES])
def test_toleration_matching(title: str, toleration: dict, want: bool) -> None:
    assert toleration_tolerates(toleration, TAINT) is want
    assert tolerations_tolerate([toleration], TAINT) is want
    compiled = CompiledTolerations([toleration])
    assert compiled.tolerates(TAINT) is want
    assert compiled.tolerates(TAINT) is want  # memoized answer is the same


def test_find_untolerated_taint_filters_by_effect() -> None:
    taints = [{"key": "a", "value": "1", "effect": "PreferNoSchedule"},
              {"key": "b", "value": "2", "effect": "NoExecute"},
              {"key": "c", "value": "3", "effect": "NoSchedule"}]
    assert find_untolerated_taint(taints, []) == taints[1]
    assert find_untolerated_taint(taints, [{"key": "b", "operator": "Exists"}]) == taints[2]
    assert find_untolerated_taint(taints, [{"operator": "Exists"}]) is None
    compiled = CompiledTolerations([{"key": "b", "operator": "Exists"}])
    assert compiled.first_untolerated(taints) == taints[2]
    assert compiled.count_untolerated(taints, "PreferNoSchedule") == 1
    assert CompiledTolerations([{"operator": "Exists"}]).tolerates_everything


def test_effect_filtered_compilation_keeps_only_relevant_tolerations() -> None:
    tolerations = [{"key": "a", "operator": "Exists", "effect": "NoSchedule"},
                   {"key": "b", "operator": "Exists"}]
    compiled = CompiledTolerations(tolerations, ("PreferNoSchedule",))
    assert not compiled.tolerates({"key": "a", "effect": "PreferNoSchedule"})
    assert compiled.tolerates({"key": "b", "effect": "PreferNoSchedule"})
