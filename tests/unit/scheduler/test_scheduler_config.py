"""KubeSchedulerConfiguration v1: defaults, merging of plugin sets, multiPoint expansion,
weights, args, and every validation error.

Most tests use a registry of stand-in plugin classes that implement the same extension points
as upstream's plugins, so they check the configuration logic alone; the last tests check the
real in-tree plugins against the same table.
"""

from __future__ import annotations

import json

import pytest

from pybernetes.scheduler import config as cfgmod
from pybernetes.scheduler.config import (
    API_VERSION,
    KIND,
    NOT_YET,
    POINTS,
    ConfigError,
    default_config,
    load_config,
    nodes_to_find,
    parse_config,
    parse_duration,
)
from pybernetes.scheduler.framework import Plugin
from pybernetes.scheduler.registry import IN_TREE, Registry

# upstream's plugins and the extension points each implements (v1.32)
UPSTREAM_POINTS = {
    "PrioritySort": {"queueSort"},
    "SchedulingGates": {"preEnqueue"},
    "NodeName": {"filter"},
    "NodeUnschedulable": {"filter"},
    "NodePorts": {"preFilter", "filter"},
    "NodeAffinity": {"preFilter", "filter", "preScore", "score"},
    "TaintToleration": {"filter", "preScore", "score"},
    "NodeResourcesFit": {"preFilter", "filter", "preScore", "score"},
    "NodeResourcesBalancedAllocation": {"preScore", "score"},
    "ImageLocality": {"score"},
    "InterPodAffinity": {"preFilter", "filter", "preScore", "score"},
    "PodTopologySpread": {"preFilter", "filter", "preScore", "score"},
    "DefaultBinder": {"bind"},
    "VolumeBinding": {"preFilter", "filter", "reserve", "preBind", "preScore", "score"},
    "VolumeRestrictions": {"preFilter", "filter"},
    "VolumeZone": {"preFilter", "filter"},
    "DefaultPreemption": {"postFilter"},
}

EXPECTED_DEFAULT_POINTS = {
    "preEnqueue": [("SchedulingGates", 0)],
    "queueSort": [("PrioritySort", 0)],
    "preFilter": [("NodeAffinity", 0), ("NodePorts", 0), ("NodeResourcesFit", 0), ("VolumeRestrictions", 0),
                  ("VolumeBinding", 0), ("VolumeZone", 0), ("PodTopologySpread", 0), ("InterPodAffinity", 0)],
    "filter": [("NodeUnschedulable", 0), ("NodeName", 0), ("TaintToleration", 0), ("NodeAffinity", 0),
               ("NodePorts", 0), ("NodeResourcesFit", 0), ("VolumeRestrictions", 0), ("VolumeBinding", 0),
               ("VolumeZone", 0), ("PodTopologySpread", 0), ("InterPodAffinity", 0)],
    "postFilter": [("DefaultPreemption", 0)],
    "preScore": [("TaintToleration", 0), ("NodeAffinity", 0), ("NodeResourcesFit", 0), ("VolumeBinding", 0),
                 ("PodTopologySpread", 0), ("InterPodAffinity", 0), ("NodeResourcesBalancedAllocation", 0)],
    "score": [("TaintToleration", 3), ("NodeAffinity", 2), ("NodeResourcesFit", 1), ("VolumeBinding", 1),
              ("PodTopologySpread", 2), ("InterPodAffinity", 2), ("NodeResourcesBalancedAllocation", 1),
              ("ImageLocality", 1)],
    "reserve": [("VolumeBinding", 0)],
    "permit": [],
    "preBind": [("VolumeBinding", 0)],
    "bind": [("DefaultBinder", 0)],
    "postBind": [],
}


def _method_stub(method: str):
    def fn(self, *args):
        raise AssertionError(f"{method} is not called while configuring")
    return fn


def make_plugin(name: str, points: set[str], defaults: dict | None = None, validator=None) -> type[Plugin]:
    attrs: dict = {"name": name}
    for point in points:
        attrs[POINTS[point]] = _method_stub(POINTS[point])
    if defaults is not None:
        attrs["default_args"] = classmethod(lambda cls: dict(defaults))
    if validator is not None:
        attrs["validate_args"] = classmethod(lambda cls, args: validator(args))
    return type(name, (Plugin,), attrs)


def _fit_validator(args: dict) -> list[str]:
    strategy = args.get("scoringStrategy") or {}
    if strategy.get("type") not in ("LeastAllocated", "MostAllocated", "RequestedToCapacityRatio"):
        return [f"scoringStrategy.type: Unsupported value: {strategy.get('type')!r}"]
    return []


class FakeRegistry:
    """Duck-typed registry of stand-in classes (what config needs: ``in`` and ``load``)."""

    def __init__(self, extra: dict[str, type[Plugin]] | None = None) -> None:
        self.classes = {name: make_plugin(name, points) for name, points in UPSTREAM_POINTS.items()}
        self.classes["NodeResourcesFit"] = make_plugin(
            "NodeResourcesFit", UPSTREAM_POINTS["NodeResourcesFit"],
            {"ignoredResources": [], "scoringStrategy": {"type": "LeastAllocated"}}, _fit_validator)
        self.classes.update(extra or {})
        self.loads: list[str] = []

    def __contains__(self, name: object) -> bool:
        return name in self.classes

    def load(self, name: str) -> type[Plugin]:
        self.loads.append(name)
        return self.classes[name]


def doc(**fields) -> dict:
    return {"apiVersion": API_VERSION, "kind": KIND, **fields}


def parse(reg=None, **fields):
    return parse_config(doc(**fields), reg or FakeRegistry())


def problems_of(reg=None, **fields) -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse(reg, **fields)
    return info.value.problems


# -- defaults ---------------------------------------------------------------------------------------


def test_upstream_default_list_and_not_yet():
    names = [n for n, _ in cfgmod.UPSTREAM_DEFAULT_PLUGINS]
    assert names[:4] == ["SchedulingGates", "PrioritySort", "NodeUnschedulable", "NodeName"]
    assert dict(cfgmod.UPSTREAM_DEFAULT_PLUGINS)["TaintToleration"] == 3
    assert set(NOT_YET) == set(names) - set(IN_TREE)
    assert "VolumeBinding" in names and "DefaultPreemption" in names
    assert not set(NOT_YET) & set(n for n, _ in cfgmod.DEFAULT_PLUGINS)


def test_defaults():
    reg = FakeRegistry()
    cfg = default_config(reg)
    assert (cfg.parallelism, cfg.percentage_of_nodes_to_score) == (16, 0)
    assert (cfg.pod_initial_backoff_seconds, cfg.pod_max_backoff_seconds) == (1, 10)
    le = cfg.leader_election
    assert (le.leader_elect, le.lease_duration, le.renew_deadline, le.retry_period) == (True, 15, 10, 2)
    assert (le.resource_namespace, le.resource_name, le.resource_lock) == ("kube-system", "kube-scheduler", "leases")
    [profile] = cfg.profiles
    assert profile.scheduler_name == "default-scheduler"
    assert profile.percentage_of_nodes_to_score == 0
    expected = {point: [e for e in entries if e[0] in IN_TREE] for point, entries in EXPECTED_DEFAULT_POINTS.items()}
    assert profile.points == expected
    assert list(profile.points) == list(POINTS)
    assert profile.plugin_args["NodeResourcesFit"] == {"ignoredResources": [],
                                                      "scoringStrategy": {"type": "LeastAllocated"}}
    assert profile.plugin_args["DefaultBinder"] == {}
    assert cfg.profile("default-scheduler") is profile and cfg.profile("other") is None


def test_empty_profiles_list_gets_the_default_profile_and_profile_fields_default():
    cfg = parse(profiles=[])
    assert [p.scheduler_name for p in cfg.profiles] == ["default-scheduler"]
    cfg = parse(percentageOfNodesToScore=30, profiles=[{"schedulerName": "a"}, {"schedulerName": "b",
                                                                                 "percentageOfNodesToScore": 70}])
    assert [(p.scheduler_name, p.percentage_of_nodes_to_score) for p in cfg.profiles] == [("a", 30), ("b", 70)]
    assert cfg.profiles[0].points == cfg.profiles[1].points


@pytest.mark.parametrize(("nodes", "pct", "expected"), [
    (50, 10, 50),          # fewer than 100 nodes: all
    (99, 0, 99),
    (1000, 100, 1000),     # 100%: all
    (1000, 0, 420),        # adaptive: 50 - 1000/125 = 42%
    (5000, 0, 500),        # 50 - 40 = 10%
    (6000, 0, 300),        # 50 - 48 = 2% -> at least 5%
    (150, 10, 100),        # never fewer than 100
    (1000, 30, 300),
])
def test_nodes_to_find(nodes, pct, expected):
    assert nodes_to_find(nodes, pct) == expected


# -- enabling, disabling, multiPoint, weights -------------------------------------------------


def test_disable_a_default_plugin_in_multipoint_removes_it_everywhere():
    cfg = parse(profiles=[{"plugins": {"multiPoint": {"disabled": [{"name": "TaintToleration"}]}}}])
    points = cfg.profiles[0].points
    assert all("TaintToleration" not in [n for n, _ in entries] for entries in points.values())
    assert "TaintToleration" not in cfg.profiles[0].plugin_args


def test_disable_at_one_point_keeps_the_plugin_elsewhere():
    cfg = parse(profiles=[{"plugins": {"score": {"disabled": [{"name": "NodeResourcesFit"}]}}}])
    p = cfg.profiles[0]
    assert "NodeResourcesFit" not in p.enabled("score")
    assert "NodeResourcesFit" in p.enabled("filter") and "NodeResourcesFit" in p.enabled("preScore")


def test_star_disables_every_default_at_a_point_and_enabled_ones_remain():
    cfg = parse(profiles=[{"plugins": {"score": {"disabled": [{"name": "*"}],
                                                 "enabled": [{"name": "ImageLocality", "weight": 7}]}}}])
    p = cfg.profiles[0]
    assert p.points["score"] == [("ImageLocality", 7)]
    assert p.points["filter"][0] == ("NodeUnschedulable", 0)
    assert p.enabled("filter") == [n for n, _ in EXPECTED_DEFAULT_POINTS["filter"] if n in IN_TREE]


def test_star_in_multipoint_disables_all_defaults():
    custom = [{"name": "PrioritySort"}, {"name": "NodeName"}, {"name": "DefaultBinder"}]
    cfg = parse(profiles=[{"plugins": {"multiPoint": {"disabled": [{"name": "*"}], "enabled": custom}}}])
    p = cfg.profiles[0]
    assert {point: p.enabled(point) for point in POINTS if p.points[point]} == {
        "queueSort": ["PrioritySort"], "filter": ["NodeName"], "bind": ["DefaultBinder"]}


def test_reconfiguring_a_default_in_multipoint_keeps_its_place_and_takes_the_weight():
    cfg = parse(profiles=[{"plugins": {"multiPoint": {"enabled": [{"name": "NodeAffinity", "weight": 9}]}}}])
    score = cfg.profiles[0].points["score"]
    assert score[1] == ("NodeAffinity", 9)
    assert [n for n, _ in score] == [n for n, _ in EXPECTED_DEFAULT_POINTS["score"] if n in IN_TREE]


def test_point_specific_entry_overrides_multipoint_and_comes_first():
    cfg = parse(profiles=[{"plugins": {"score": {"enabled": [{"name": "ImageLocality", "weight": 50}]}}}])
    score = cfg.profiles[0].points["score"]
    assert score[0] == ("ImageLocality", 50)
    assert [n for n, _ in score].count("ImageLocality") == 1


def test_new_plugin_at_a_point_goes_after_multipoint_plugins():
    extra = make_plugin("Custom", {"filter", "score"})
    reg = FakeRegistry({"Custom": extra})
    cfg = parse(reg, profiles=[{"plugins": {"filter": {"enabled": [{"name": "Custom"}]}}}])
    p = cfg.profiles[0]
    assert p.enabled("filter")[-1] == "Custom"
    assert "Custom" not in p.enabled("score")  # enabled at filter only, not multiPoint
    assert p.plugin_classes["Custom"] is extra


def test_new_multipoint_plugin_expands_to_every_point_it_implements():
    reg = FakeRegistry({"Custom": make_plugin("Custom", {"preFilter", "filter", "score", "reserve", "permit"})})
    cfg = parse(reg, profiles=[{"plugins": {"multiPoint": {"enabled": [{"name": "Custom", "weight": 4}]},
                                            "permit": {"disabled": [{"name": "Custom"}]}}}])
    p = cfg.profiles[0]
    assert p.enabled("preFilter")[-1] == "Custom" and p.enabled("filter")[-1] == "Custom"
    assert p.points["score"][-1] == ("Custom", 4)
    assert p.enabled("reserve") == ["VolumeBinding", "Custom"]
    assert p.enabled("permit") == []
    assert p.plugin_names()[0] == "SchedulingGates" and "Custom" in p.plugin_names()


def test_weights_unset_or_zero_mean_one():
    reg = FakeRegistry({"Custom": make_plugin("Custom", {"score"})})
    cfg = parse(reg, profiles=[{"plugins": {"score": {"enabled": [{"name": "Custom", "weight": 0}]}}}])
    assert cfg.profiles[0].points["score"][-1] == ("Custom", 1)


# -- args ---------------------------------------------------------------------------------------


def test_plugin_args_are_defaults_updated_with_given():
    cfg = parse(profiles=[{"pluginConfig": [
        {"name": "NodeResourcesFit", "args": {"scoringStrategy": {"type": "MostAllocated"}}},
        {"name": "VolumeBinding", "args": {"bindTimeoutSeconds": 30}},  # configured, not enabled: kept
    ]}])
    args = cfg.profiles[0].plugin_args
    assert args["NodeResourcesFit"] == {"ignoredResources": [], "scoringStrategy": {"type": "MostAllocated"}}
    assert args["VolumeBinding"] == {"bindTimeoutSeconds": 30}


def test_args_are_copies():
    given = {"scoringStrategy": {"type": "MostAllocated"}}
    cfg = parse(profiles=[{"pluginConfig": [{"name": "NodeResourcesFit", "args": given}]}])
    cfg.profiles[0].plugin_args["NodeResourcesFit"]["scoringStrategy"]["type"] = "x"
    assert given["scoringStrategy"]["type"] == "MostAllocated"


# -- validation ---------------------------------------------------------------------------------


def test_bad_api_version_and_kind():
    with pytest.raises(ConfigError) as info:
        parse_config({"apiVersion": "kubescheduler.config.k8s.io/v1beta3", "kind": "Other"}, FakeRegistry())
    assert info.value.problems == [
        "apiVersion: Unsupported value: 'kubescheduler.config.k8s.io/v1beta3': supported values: "
        '"kubescheduler.config.k8s.io/v1"',
        "kind: Unsupported value: 'Other': supported values: \"KubeSchedulerConfiguration\""]
    assert "invalid scheduler configuration" in str(info.value)


def test_unknown_plugin_names_every_one():
    problems = problems_of(profiles=[{"plugins": {
        "filter": {"enabled": [{"name": "NoSuchFilter"}]},
        "multiPoint": {"enabled": [{"name": "NoSuchMulti"}]}},
        "pluginConfig": [{"name": "NoSuchArgs", "args": {}}]}])
    assert "profiles[0].plugins.multiPoint.enabled[0]: unknown plugin 'NoSuchMulti'" in problems
    assert "profiles[0].plugins.filter.enabled[0]: unknown plugin 'NoSuchFilter'" in problems
    assert "profiles[0].pluginConfig[0]: unknown plugin 'NoSuchArgs'" in problems
    assert len(problems) == 3


def test_unknown_plugin_with_the_real_registry_names_it():
    reg = Registry(entry_points=[])
    problems = problems_of(reg, profiles=[{"plugins": {"multiPoint": {"disabled": [{"name": "*"}],
                                                                      "enabled": [{"name": "Bogus"}]}}}])
    assert problems[0] == "profiles[0].plugins.multiPoint.enabled[0]: unknown plugin 'Bogus'"


def test_plugin_enabled_at_a_point_it_does_not_implement():
    problems = problems_of(profiles=[{"plugins": {"score": {"enabled": [{"name": "NodeName"}]}}}])
    assert problems == ["profiles[0].plugins.score.enabled[0]: plugin 'NodeName' does not implement the "
                        "score extension point"]


def test_plugin_enabled_twice_at_a_point():
    problems = problems_of(profiles=[{"plugins": {"filter": {"enabled": [{"name": "NodeName"},
                                                                         {"name": "NodeName"}]}}}])
    assert problems == ["profiles[0].plugins.filter.enabled[1]: plugin 'NodeName' is enabled twice at filter"]


def test_duplicate_scheduler_names():
    problems = problems_of(profiles=[{"schedulerName": "a"}, {"schedulerName": "b"}, {"schedulerName": "a"}])
    assert problems == ["profiles[2].schedulerName: Duplicate value: 'a' (also profiles[0].schedulerName)"]


def test_empty_scheduler_name():
    assert problems_of(profiles=[{"schedulerName": ""}]) == ["profiles[0].schedulerName: Required value"]


def test_queue_sort_none_or_two():
    none = problems_of(profiles=[{"plugins": {"queueSort": {"disabled": [{"name": "*"}]}}}])
    assert none == ["profiles[0].plugins.queueSort: no queue sort plugin is enabled"]
    reg = FakeRegistry({"OtherSort": make_plugin("OtherSort", {"queueSort"})})
    two = problems_of(reg, profiles=[{"plugins": {"queueSort": {"enabled": [{"name": "OtherSort"}]}}}])
    assert two == ["profiles[0].plugins.queueSort: only one queue sort plugin can be enabled, got "
                   "PrioritySort, OtherSort"]


def test_queue_sort_must_be_common_to_all_profiles():
    reg = FakeRegistry({"OtherSort": make_plugin("OtherSort", {"queueSort"})})
    problems = problems_of(reg, profiles=[
        {"schedulerName": "a"},
        {"schedulerName": "b", "plugins": {"queueSort": {"disabled": [{"name": "*"}],
                                                         "enabled": [{"name": "OtherSort"}]}}}])
    assert problems == ["profiles[1].plugins.queueSort: Invalid value: ['OtherSort']: must be the same for all "
                        "profiles (profiles[0] uses ['PrioritySort'])"]


def test_queue_sort_args_must_be_common_to_all_profiles():
    reg = FakeRegistry()
    reg.classes["PrioritySort"] = make_plugin("PrioritySort", {"queueSort"}, {"x": 1})
    problems = problems_of(reg, profiles=[
        {"schedulerName": "a"}, {"schedulerName": "b", "pluginConfig": [{"name": "PrioritySort", "args": {"x": 2}}]}])
    assert problems == ["profiles[1].pluginConfig: queueSort plugin args must be the same for all profiles"]


def test_no_bind_plugin():
    problems = problems_of(profiles=[{"plugins": {"multiPoint": {"disabled": [{"name": "DefaultBinder"}]}}}])
    assert problems == ["profiles[0].plugins.bind: at least one bind plugin is needed"]


@pytest.mark.parametrize(("weight", "message"), [
    (101, "Invalid value: 101: weight must be in the range [1-100]"),
    (-1, "Invalid value: -1: weight must be in the range [1-100]"),
    ("3", "weight must be an integer, got '3'"),
])
def test_weights_out_of_range(weight, message):
    problems = problems_of(profiles=[{"plugins": {"score": {"enabled": [{"name": "ImageLocality",
                                                                          "weight": weight}]}}}])
    assert problems == [f"profiles[0].plugins.score.enabled[0].weight: plugin 'ImageLocality': {message}"]
    problems = problems_of(profiles=[{"plugins": {"multiPoint": {"enabled": [{"name": "NodeAffinity",
                                                                               "weight": weight}]}}}])
    assert problems == [f"profiles[0].plugins.multiPoint.enabled[0].weight: plugin 'NodeAffinity': {message}"]


def test_bad_args_name_the_plugin():
    problems = problems_of(profiles=[{"pluginConfig": [
        {"name": "NodeResourcesFit", "args": {"scoringStrategy": {"type": "Random"}}},
        {"name": "ImageLocality", "args": ["not", "a", "dict"]},
    ]}])
    assert problems == [
        "profiles[0].pluginConfig[1].args: plugin 'ImageLocality': args must be an object",
        "profiles[0].pluginConfig[0].args: plugin 'NodeResourcesFit': scoringStrategy.type: "
        "Unsupported value: 'Random'"]


def test_duplicate_plugin_config():
    problems = problems_of(profiles=[{"pluginConfig": [{"name": "ImageLocality"}, {"name": "ImageLocality"}]}])
    assert problems == ["profiles[0].pluginConfig[1]: Duplicate value: 'ImageLocality' "
                        "(repeated config for plugin 'ImageLocality')"]


@pytest.mark.parametrize(("fields", "problem"), [
    ({"percentageOfNodesToScore": 101}, "percentageOfNodesToScore: Invalid value: 101: not in valid range [0-100]"),
    ({"percentageOfNodesToScore": -1}, "percentageOfNodesToScore: Invalid value: -1: not in valid range [0-100]"),
    ({"profiles": [{"percentageOfNodesToScore": 150}]},
     "profiles[0].percentageOfNodesToScore: Invalid value: 150: not in valid range [0-100]"),
    ({"parallelism": 0}, "parallelism: Invalid value: 0: should be an integer value greater than zero"),
    ({"parallelism": "many"}, "parallelism: must be an integer, got 'many'"),
    ({"podInitialBackoffSeconds": 0}, "podInitialBackoffSeconds: Invalid value: 0: must be greater than 0"),
    ({"podInitialBackoffSeconds": 5, "podMaxBackoffSeconds": 2},
     "podMaxBackoffSeconds: Invalid value: 2: must be greater than or equal to PodInitialBackoffSeconds"),
    ({"leaderElection": {"leaseDuration": "5s"}},
     "leaderElection.leaseDuration: Invalid value: 5.0s: LeaseDuration must be greater than RenewDeadline"),
    ({"leaderElection": {"retryPeriod": "9s"}},
     "leaderElection.renewDeadline: Invalid value: 10.0s: RenewDeadline must be greater than "
     "retryPeriod*JitterFactor"),
    ({"leaderElection": {"resourceLock": "endpoints"}},
     "leaderElection.resourceLock: Invalid value: 'endpoints': resourceLock value must be \"leases\""),
    ({"leaderElection": {"leaseDuration": "soon"}}, "leaderElection.leaseDuration: invalid duration 'soon'"),
    ({"extenders": [{"urlPrefix": "http://x"}]},
     "extenders: scheduler extenders are not supported; use a plugin instead"),
    ({"surprise": 1}, 'surprise: unknown field "surprise"'),
    ({"profiles": [{"plugins": {"filters": {}}}]}, 'profiles[0].plugins.filters: unknown field "filters"'),
    ({"profiles": "x"}, "profiles: must be a list"),
])
def test_field_validation(fields, problem):
    assert problems_of(**fields) == [problem]


def test_every_problem_is_reported_together():
    problems = problems_of(parallelism=-1, percentageOfNodesToScore=200,
                           profiles=[{"schedulerName": "a", "plugins": {"filter": {"enabled": [{"name": "X"}]}}},
                                     {"schedulerName": "a"}])
    assert len(problems) == 4
    assert [p.split(":")[0] for p in problems] == ["parallelism", "percentageOfNodesToScore",
                                                   "profiles[0].plugins.filter.enabled[0]",
                                                   "profiles[1].schedulerName"]


def test_leader_election_disabled_skips_its_checks_and_durations_parse():
    cfg = parse(leaderElection={"leaderElect": False, "leaseDuration": "1s"})
    assert cfg.leader_election.leader_elect is False
    cfg = parse(leaderElection={"leaseDuration": "1m30s", "renewDeadline": "45s", "retryPeriod": "500ms",
                                "resourceNamespace": "sched", "resourceName": "mine"})
    le = cfg.leader_election
    assert (le.lease_duration, le.renew_deadline, le.retry_period) == (90, 45, 0.5)
    assert (le.resource_namespace, le.resource_name) == ("sched", "mine")


@pytest.mark.parametrize(("text", "seconds"), [("15s", 15), ("1h2m3s", 3723), ("250ms", 0.25), ("1.5s", 1.5),
                                                ("0", 0), (3, 3)])
def test_parse_duration(text, seconds):
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("bad", ["", "15", "s", "1x", "1s2", True])
def test_parse_duration_rejects(bad):
    with pytest.raises(ValueError):
        parse_duration(bad)


# -- files --------------------------------------------------------------------------------------------


def test_load_yaml_and_json_files(tmp_path):
    yaml_file = tmp_path / "sched.yaml"
    yaml_file.write_text(f"""\
apiVersion: {API_VERSION}
kind: {KIND}
parallelism: 8
percentageOfNodesToScore: 40
podMaxBackoffSeconds: 20
profiles:
- schedulerName: default-scheduler
- schedulerName: spread
  plugins:
    score:
      disabled:
      - name: NodeResourcesBalancedAllocation
      enabled:
      - name: PodTopologySpread
        weight: 10
  pluginConfig:
  - name: NodeResourcesFit
    args:
      scoringStrategy:
        type: MostAllocated
""")
    cfg = load_config(yaml_file, FakeRegistry())
    assert (cfg.parallelism, cfg.percentage_of_nodes_to_score, cfg.pod_max_backoff_seconds) == (8, 40, 20)
    spread = cfg.profile("spread")
    assert spread.points["score"][0] == ("PodTopologySpread", 10)
    assert "NodeResourcesBalancedAllocation" not in spread.enabled("score")
    assert spread.plugin_args["NodeResourcesFit"]["scoringStrategy"] == {"type": "MostAllocated"}
    json_file = tmp_path / "sched.json"
    json_file.write_text(json.dumps(doc(parallelism=4)))
    assert load_config(json_file, FakeRegistry()).parallelism == 4


def test_load_errors_name_the_file(tmp_path):
    with pytest.raises(ConfigError, match="cannot read the file"):
        load_config(tmp_path / "missing.yaml", FakeRegistry())
    bad = tmp_path / "bad.yaml"
    bad.write_text("apiVersion: [unclosed\n")
    with pytest.raises(ConfigError, match=r"bad\.yaml:\n  - cannot decode the file"):
        load_config(bad, FakeRegistry())
    wrong = tmp_path / "wrong.yaml"
    wrong.write_text("- a list\n")
    with pytest.raises(ConfigError, match="must be a KubeSchedulerConfiguration object"):
        load_config(wrong, FakeRegistry())


# -- the real in-tree plugins ----------------------------------------------------------------------


# a plugin may add a PreFilter or PreScore of its own (to compute once per pod what its Filter or
# Score needs) beyond upstream's points; any other difference is a bug
HELPER_POINTS = {"preFilter", "preScore"}


@pytest.mark.parametrize("name", sorted(IN_TREE))
def test_in_tree_plugin_implements_upstreams_extension_points(name):
    cls = Registry(entry_points=[]).load(name)
    implemented = {point for point, method in POINTS.items() if callable(getattr(cls, method, None))}
    assert UPSTREAM_POINTS[name] <= implemented
    assert implemented - UPSTREAM_POINTS[name] <= HELPER_POINTS


def test_default_config_with_the_real_registry():
    cfg = parse_config(doc(), Registry(entry_points=[]))
    points = cfg.profiles[0].points
    for point, entries in EXPECTED_DEFAULT_POINTS.items():
        expected = [e for e in entries if e[0] in IN_TREE]
        assert [e for e in points[point] if e in expected] == expected, point
        if point not in HELPER_POINTS:
            assert points[point] == expected, point
