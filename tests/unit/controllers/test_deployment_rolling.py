"""The Deployment controller's planners: rolling steps within maxSurge/maxUnavailable,
Recreate, proportional scaling, history clean-up; and its status and conditions."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from test_deployment_util import T0, deployment, rs

from pybernetes.controllers import deployment_progress as dp
from pybernetes.controllers import deployment_rolling as dr
from pybernetes.controllers import deployment_util as du
from pybernetes.controllers.podutil import format_time


def sizes(steps) -> list[tuple[str, int]]:
    return [(r["metadata"]["name"], n) for r, n in steps]


def annotated(r: dict, desired: int, max_replicas: int) -> dict:
    du.set_replicas_annotations(r, desired, max_replicas)
    return r


# -- RollingUpdate -------------------------------------------------------------------------------


def test_new_replica_set_grows_within_surge() -> None:
    d = deployment(10)  # surge 3, unavailable 2
    old, new = rs("old", 10), rs("new", 0)
    assert sizes(dr.plan_new_replica_set(d, [old, new], new)) == [("new", 3)]
    assert dr.plan_new_replica_set(d, [old, rs("new", 3)], rs("new", 3)) == []  # 13 pods: at the cap
    old5, new3 = rs("old", 5), rs("new", 3)
    assert sizes(dr.plan_new_replica_set(d, [old5, new3], new3)) == [("new", 8)]
    new12 = rs("new", 12)
    assert sizes(dr.plan_new_replica_set(d, [new12], new12)) == [("new", 10)]  # above spec: down


def test_old_replica_sets_keep_min_available() -> None:
    d = deployment(10)
    old, new = rs("old", 10), rs("new", 3, available=0)
    # 13 pods, 8 must stay available, 3 new ones not yet available: 2 old ones may go.
    assert sizes(dr.plan_old_replica_sets(d, [old, new], [old], new)) == [("old", 8)]
    old8 = rs("old", 8)
    assert dr.plan_old_replica_sets(d, [old8, new], [old8], new) == []  # now nothing may
    new = rs("new", 3, available=3)
    assert sizes(dr.plan_old_replica_sets(d, [old, new], [old], new)) == [("old", 5)]
    # A status not caught up with an earlier scale-down does not count extra available pods.
    old_stale = rs("old", 5)
    old_stale["status"]["availableReplicas"] = 10
    new8 = rs("new", 8, available=4)
    assert sizes(dr.plan_old_replica_sets(d, [old_stale, new8], [old_stale], new8)) == [("old", 4)]


def test_unhealthy_old_replicas_go_first() -> None:
    d = deployment(10)
    older = rs("older", 4, created=T0, available=1)
    old = rs("old", 6, created=T0 + 1)
    new = rs("new", 3, created=T0 + 2, available=0)
    # maxScaledDown = 13 - 8 - 3 = 2: two of the three unavailable replicas of "older" go.
    steps = dr.plan_old_replica_sets(d, [older, old, new], [older, old], new)
    assert sizes(steps) == [("older", 2)]


def test_max_unavailable_zero_waits_for_new_pods() -> None:
    d = deployment(4, surge=1, unavailable=0)
    old, new = rs("old", 4), rs("new", 1, available=0)
    assert dr.plan_old_replica_sets(d, [old, new], [old], new) == []
    new = rs("new", 1, available=1)
    assert sizes(dr.plan_old_replica_sets(d, [old, new], [old], new)) == [("old", 3)]


# -- Recreate --------------------------------------------------------------------------------------


def test_recreate_waits_for_old_pods() -> None:
    old, done = rs("old", 3), rs("done", 0)
    assert sizes(dr.plan_recreate_scale_down([old, done])) == [("old", 0)]
    old0 = rs("old", 0)
    old0["status"]["replicas"] = 0
    pod = {"metadata": {"ownerReferences": [{"uid": "uid-old", "controller": True, "kind": "ReplicaSet"}]},
           "status": {"phase": "Running"}}
    by_rs = dr.pods_by_replica_set([old0], [pod])
    assert dr.old_pods_running(None, [old0], by_rs)
    pod["status"]["phase"] = "Succeeded"
    assert not dr.old_pods_running(None, [old0], by_rs)
    assert dr.old_pods_running(None, [rs("old", 0, available=0) | {"status": {"replicas": 2}}], {})


# -- scaling ---------------------------------------------------------------------------------------


def test_proportional_scaling_as_the_docs_example() -> None:
    # 10 replicas, maxSurge 3, maxUnavailable 2, mid-rollout (old 8, new 5), scaled to 15.
    d = deployment(15, surge=3, unavailable=2)
    d["status"]["replicas"] = 13
    old = annotated(rs("old", 8, created=T0), 10, 13)
    new = annotated(rs("new", 5, created=T0 + 1, available=0), 10, 13)
    assert dr.is_scaling_event(d, new, [old])
    assert sorted(sizes(dr.plan_scale(d, new, [old]))) == [("new", 7), ("old", 11)]
    # And back down to 10 from 18 (old 11, new 7): old loses 3, new 2.
    d = deployment(10, surge=3, unavailable=2)
    old = annotated(rs("old", 11, created=T0), 15, 18)
    new = annotated(rs("new", 7, created=T0 + 1, available=0), 15, 18)
    assert sorted(sizes(dr.plan_scale(d, new, [old]))) == [("new", 5), ("old", 8)]


def test_scaling_one_active_or_saturated() -> None:
    d = deployment(6)
    only = annotated(rs("only", 3), 3, 4)
    assert sizes(dr.plan_scale(d, only, [rs("gone", 0)])) == [("only", 6)]
    assert dr.is_scaling_event(d, only, [])
    assert not dr.is_scaling_event(deployment(3), only, [])
    new = annotated(rs("new", 6), 6, 8)
    old = rs("old", 2)
    assert sizes(dr.plan_scale(d, new, [old])) == [("old", 0)]  # saturated new: old to 0
    # Nothing active at all: the new one gets everything.
    assert sizes(dr.plan_scale(d, rs("new", 0), [rs("old", 0)])) == [("new", 6)]
    assert sizes(dr.plan_scale(deployment(0), only, [])) == [("only", 0)]


def test_cleanup_respects_history_limit() -> None:
    d = deployment(revisionHistoryLimit=1)
    r1, r2, r3 = rs("r1", 0, revision=1), rs("r2", 0, revision=2), rs("r3", 2, revision=3)
    for r in (r1, r2):
        r["status"] = {"replicas": 0}
    assert [r["metadata"]["name"] for r in dr.plan_cleanup(d, [r3, r2, r1])] == ["r1", "r2"][:2]
    # r3 still has replicas: it is never deleted, even beyond the limit.
    assert dr.plan_cleanup(deployment(revisionHistoryLimit=0), [r3]) == []
    assert dr.plan_cleanup(deployment(), [r1, r2]) == []  # no limit set here
    r1["metadata"]["generation"] = 2  # a status that has not seen the latest spec
    assert [r["metadata"]["name"] for r in dr.plan_cleanup(d, [r1, r2, r3])] == ["r2"]


# -- status and conditions -------------------------------------------------------------------------


def test_status_counts_and_available_condition() -> None:
    d = deployment(10)
    old = rs("old", 5, available=5)
    old["status"]["readyReplicas"] = 5
    new = rs("new", 8, available=2)
    new["status"]["replicas"] = 6
    status = dp.calculate_status(d, [old, new], new, T0)
    assert {k: status[k] for k in ("replicas", "updatedReplicas", "availableReplicas", "unavailableReplicas",
                                   "readyReplicas", "observedGeneration")} == {
        "replicas": 11, "updatedReplicas": 6, "availableReplicas": 7, "unavailableReplicas": 6,
        "readyReplicas": 5, "observedGeneration": 1}
    assert du.get_condition(status, du.AVAILABLE)["reason"] == du.MIN_UNAVAILABLE  # 7 < 10 - 2
    new["status"]["availableReplicas"] = 3
    assert du.get_condition(dp.calculate_status(d, [old, new], new, T0), du.AVAILABLE)["status"] == "True"


def test_progress_conditions() -> None:
    d = deployment(2, progressDeadlineSeconds=60)
    new = rs("web-abc", 2, available=1)
    du.set_deployment_condition(d["status"], du.new_condition(du.PROGRESSING, "True", du.NEW_RS_CREATED,
                                                              "created", T0))
    status = dp.rollout_status(d, [new], new, T0 + 10)
    cond = du.get_condition(status, du.PROGRESSING)
    assert (cond["reason"], cond["message"]) == (du.REPLICA_SET_UPDATED, 'ReplicaSet "web-abc" is progressing.')
    # No progress for longer than the deadline: timed out.
    d["status"] = status
    assert dp.requeue_after(d, status, T0 + 20) == 50
    late = dp.rollout_status(d, [new], new, T0 + 71)
    cond = du.get_condition(late, du.PROGRESSING)
    assert (cond["status"], cond["reason"]) == ("False", du.TIMED_OUT)
    assert cond["message"] == 'ReplicaSet "web-abc" has timed out progressing.'
    # Complete.
    d["status"] = late
    new = rs("web-abc", 2)
    done = dp.rollout_status(d, [new], new, T0 + 80)
    cond = du.get_condition(done, du.PROGRESSING)
    assert (cond["status"], cond["reason"]) == ("True", du.NEW_RS_AVAILABLE)
    assert cond["message"] == 'ReplicaSet "web-abc" has successfully progressed.'
    assert dp.requeue_after(d | {"status": done}, done, T0 + 90) is None


def test_replica_failure_condition_is_copied() -> None:
    d = deployment(1)
    new = rs("new", 1, available=0)
    new["status"]["conditions"] = [{"type": "ReplicaFailure", "status": "True", "reason": "FailedCreate",
                                    "message": "quota", "lastTransitionTime": format_time(T0)}]
    cond = du.get_condition(dp.rollout_status(d, [new], new, T0), du.REPLICA_FAILURE)
    assert (cond["reason"], cond["message"]) == ("FailedCreate", "quota")


def test_paused_and_resumed_conditions() -> None:
    d = deployment(progressDeadlineSeconds=600, paused=True)
    cond = dp.paused_condition(d, T0)
    assert (cond["status"], cond["reason"], cond["message"]) == ("Unknown", du.PAUSED, "Deployment is paused")
    du.set_deployment_condition(d["status"], cond)
    assert dp.paused_condition(d, T0) is None
    d["spec"]["paused"] = False
    assert dp.paused_condition(d, T0)["reason"] == du.RESUMED
    assert dp.paused_condition(deployment(paused=True), T0) is None  # no deadline: no condition


def test_status_changed_ignores_absent_zeros() -> None:
    assert not dp.status_changed({"replicas": 0}, {"replicas": 0, "readyReplicas": 0, "conditions": []})
    assert dp.status_changed({"replicas": 1}, {"replicas": 2})


# -- properties ------------------------------------------------------------------------------------

@st.composite
def rollouts(draw):
    replicas = draw(st.integers(1, 40))
    surge = draw(st.sampled_from([0, 1, 3, "10%", "25%", "50%"]))
    unavailable = draw(st.sampled_from([0, 1, 2, "10%", "25%", "100%"]))
    if du.scaled_value(surge, replicas, True) == 0 and du.scaled_value(unavailable, replicas, False) == 0:
        surge = 1
    d = deployment(replicas, surge=surge, unavailable=unavailable)
    olds = []
    for i in range(draw(st.integers(1, 3))):
        size = draw(st.integers(0, replicas))
        olds.append(rs(f"old{i}", size, created=T0 + i, available=draw(st.integers(0, size))))
    new_size = draw(st.integers(0, replicas))
    new = rs("new", new_size, created=T0 + 10, available=draw(st.integers(0, new_size)))
    return d, olds, new


@settings(max_examples=300, deadline=None)
@given(rollouts())
def test_rolling_steps_keep_the_bounds(case) -> None:
    d, olds, new = case
    replicas = du.spec_replicas(d)
    everyone = [*olds, new]
    total = du.total_spec_replicas(everyone)
    # Scaling the new ReplicaSet up never goes past replicas + maxSurge (nor past replicas).
    for _rs, size in dr.plan_new_replica_set(d, everyone, new):
        assert size <= replicas
        if size > du.spec_replicas(new):
            assert total - du.spec_replicas(new) + size <= replicas + du.max_surge(d)
    # Scaling old ones down never leaves fewer than replicas - maxUnavailable available pods
    # (counting what was available before), unless there were fewer to begin with.
    min_available = replicas - du.max_unavailable(d)
    available_before = sum(min(du.status_count(r, "availableReplicas"), du.spec_replicas(r)) for r in everyone)
    sizes = {r["metadata"]["name"]: du.spec_replicas(r) for r in everyone}
    for rs_, size in dr.plan_old_replica_sets(d, everyone, olds, new):
        assert 0 <= size <= sizes[rs_["metadata"]["name"]]
        sizes[rs_["metadata"]["name"]] = size
    available_after = sum(min(du.status_count(r, "availableReplicas"), sizes[r["metadata"]["name"]])
                          for r in everyone)
    assert available_after >= min(min_available, available_before)
