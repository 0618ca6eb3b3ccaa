"""apps/v1 strategies: defaults, validation field paths, update rules, table cells."""

from __future__ import annotations

import copy

from pybernetes.api import apps
from pybernetes.api.apps.controllerrevisions import CONTROLLERREVISIONS
from pybernetes.api.apps.daemonsets import DAEMONSETS
from pybernetes.api.apps.deployments import DEPLOYMENTS
from pybernetes.api.apps.replicasets import REPLICASETS
from pybernetes.api.apps.statefulsets import STATEFULSETS
from pybernetes.api.printing import parse_time

NOW = parse_time("2024-01-01T01:00:00Z")


def workload(kind: str, **spec) -> dict:
    body = {
        "apiVersion": "apps/v1",
        "kind": kind,
        "metadata": {"name": "web", "namespace": "default", "creationTimestamp": "2024-01-01T00:00:00Z"},
        "spec": {
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "nginx", "image": "nginx:1.25"},
                                        {"name": "side", "image": "busybox"}]},
            },
        },
    }
    body["spec"].update(spec)
    return body


def created(res, obj):
    s = res.strategy
    s.default(obj)
    s.prepare_for_create(obj)
    return obj, s.validate(obj)


def fields_of(errs):
    return [(e.field, e.type) for e in errs]


def test_registered_with_short_names_and_categories():
    by = {r.resource: r for r in apps.RESOURCES}
    assert by["deployments"].short_names == ("deploy",)
    assert by["replicasets"].short_names == ("rs",)
    assert by["statefulsets"].short_names == ("sts",)
    assert by["daemonsets"].short_names == ("ds",)
    for name in ("deployments", "replicasets", "statefulsets", "daemonsets"):
        assert by[name].categories == ("all",)
        assert by[name].subresource("status") is not None
    for name in ("deployments", "replicasets", "statefulsets"):
        assert by[name].subresource("scale").kind == "Scale"
    assert by["daemonsets"].subresource("scale") is None
    assert by["controllerrevisions"].categories == ()


def test_deployment_defaults():
    obj, errs = created(DEPLOYMENTS, workload("Deployment"))
    assert errs == []
    spec = obj["spec"]
    assert spec["replicas"] == 1
    assert spec["strategy"] == {"type": "RollingUpdate",
                                "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"}}
    assert spec["revisionHistoryLimit"] == 10
    assert spec["progressDeadlineSeconds"] == 600
    assert spec["template"]["spec"]["restartPolicy"] == "Always"
    assert obj["status"] == {}


def test_deployment_keeps_explicit_values_and_recreate_has_no_rolling_update():
    obj, errs = created(DEPLOYMENTS, workload("Deployment", replicas=0, strategy={"type": "Recreate"}))
    assert errs == []
    assert obj["spec"]["replicas"] == 0
    assert obj["spec"]["strategy"] == {"type": "Recreate"}


def test_deployment_selector_must_match_template_labels():
    body = workload("Deployment")
    body["spec"]["selector"] = {"matchLabels": {"app": "other"}}
    _, errs = created(DEPLOYMENTS, body)
    assert fields_of(errs) == [("spec.template.metadata.labels", "FieldValueInvalid")]
    assert "`selector` does not match template `labels`" in errs[0].error_text()


def test_workload_selector_matching_uses_the_machinery_semantics():
    # matchExpressions are matched, and a selector that does not convert is reported as
    # upstream does ("invalid label selector"), not compared with the template's labels.
    body = workload("ReplicaSet", selector={"matchExpressions": [
        {"key": "app", "operator": "In", "values": ["web", "api"]},
        {"key": "tier", "operator": "DoesNotExist"}]})
    _, errs = created(REPLICASETS, body)
    assert errs == []
    body = workload("ReplicaSet", selector={"matchExpressions": [{"key": "app", "operator": "Bad"}]})
    _, errs = created(REPLICASETS, body)
    assert fields_of(errs) == [("spec.selector.matchExpressions[0].operator", "FieldValueInvalid"),
                               ("spec.selector", "FieldValueInvalid")]
    assert errs[1].detail == "invalid label selector"


def test_deployment_selector_required_and_not_empty():
    body = workload("Deployment")
    del body["spec"]["selector"]
    _, errs = created(DEPLOYMENTS, body)
    assert ("spec.selector", "FieldValueRequired") in fields_of(errs)
    body = workload("Deployment", selector={})
    _, errs = created(DEPLOYMENTS, body)
    assert errs[0].field == "spec.selector"
    assert "empty selector is invalid for deployment" in errs[0].detail


def test_deployment_spec_checks():
    body = workload("Deployment", replicas=-1, minReadySeconds=5, progressDeadlineSeconds=5,
                    strategy={"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 0, "maxUnavailable": "0%"}})
    _, errs = created(DEPLOYMENTS, body)
    by_field = {e.field: e for e in errs}
    assert by_field["spec.replicas"].detail == "must be greater than or equal to 0"
    assert by_field["spec.progressDeadlineSeconds"].detail == "must be greater than minReadySeconds"
    assert by_field["spec.strategy.rollingUpdate.maxUnavailable"].detail == "may not be 0 when `maxSurge` is 0"


def test_deployment_bad_percent_and_strategy_type():
    body = workload("Deployment", strategy={"type": "RollingUpdate",
                                            "rollingUpdate": {"maxSurge": "x", "maxUnavailable": "120%"}})
    _, errs = created(DEPLOYMENTS, body)
    fields = [e.field for e in errs]
    assert "spec.strategy.rollingUpdate.maxSurge" in fields
    assert any(e.detail == "must not be greater than 100%" for e in errs)
    _, errs = created(DEPLOYMENTS, workload("Deployment", strategy={"type": "Blue"}))
    assert fields_of(errs) == [("spec.strategy", "FieldValueNotSupported")]
    body = workload("Deployment", strategy={"type": "Recreate", "rollingUpdate": {"maxSurge": 1}})
    _, errs = created(DEPLOYMENTS, body)
    assert fields_of(errs) == [("spec.strategy.rollingUpdate", "FieldValueForbidden")]


def test_deployment_template_restart_policy_always():
    body = workload("Deployment")
    body["spec"]["template"]["spec"]["restartPolicy"] = "Never"
    _, errs = created(DEPLOYMENTS, body)
    assert fields_of(errs) == [("spec.template.spec.restartPolicy", "FieldValueNotSupported")]


def test_deployment_selector_immutable_on_update():
    old, _ = created(DEPLOYMENTS, workload("Deployment"))
    new = copy.deepcopy(old)
    new["spec"]["selector"] = {"matchLabels": {"app": "web", "tier": "x"}}
    new["spec"]["template"]["metadata"]["labels"]["tier"] = "x"
    s = DEPLOYMENTS.strategy
    s.default(new)
    s.prepare_for_update(new, old)
    errs = s.validate(new) + s.validate_update(new, old)
    assert fields_of(errs) == [("spec.selector", "FieldValueInvalid")]
    assert errs[0].detail == "field is immutable"


def test_deployment_update_keeps_status_and_status_update_keeps_spec():
    old, _ = created(DEPLOYMENTS, workload("Deployment"))
    old["status"] = {"replicas": 1}
    new = copy.deepcopy(old)
    new["status"] = {"replicas": 5}
    new["spec"]["replicas"] = 3
    DEPLOYMENTS.strategy.prepare_for_update(new, old)
    assert new["status"] == {"replicas": 1} and new["spec"]["replicas"] == 3
    new2 = copy.deepcopy(old)
    new2["spec"]["replicas"] = 7
    new2["status"] = {"replicas": 2, "readyReplicas": 3}
    DEPLOYMENTS.strategy.prepare_for_status_update(new2, old)
    assert new2["spec"]["replicas"] == 1
    errs = DEPLOYMENTS.strategy.validate_status_update(new2, old)
    assert fields_of(errs) == [("status.readyReplicas", "FieldValueInvalid")]
    assert errs[0].detail == "cannot be greater than status.replicas"


def test_deployment_table():
    obj, _ = created(DEPLOYMENTS, workload("Deployment", replicas=3))
    obj["status"] = {"readyReplicas": 2, "updatedReplicas": 3, "availableReplicas": 2}
    cols = [c.name for c in DEPLOYMENTS.strategy.columns()]
    assert cols == ["Ready", "Up-to-date", "Available", "Age", "Containers", "Images", "Selector"]
    assert [c.priority for c in DEPLOYMENTS.strategy.columns()] == [0, 0, 0, 0, 1, 1, 1]
    assert DEPLOYMENTS.strategy.cells(obj, NOW) == ["2/3", 3, 2, "60m", "nginx,side", "nginx:1.25,busybox",
                                                    "app=web"]


def test_replicaset_defaults_validation_and_table():
    obj, errs = created(REPLICASETS, workload("ReplicaSet"))
    assert errs == [] and obj["spec"]["replicas"] == 1 and obj["status"] == {"replicas": 0}
    obj["spec"]["selector"] = {"matchLabels": {"app": "web"},
                               "matchExpressions": [{"key": "tier", "operator": "NotIn", "values": ["b", "a"]}]}
    obj["status"] = {"replicas": 2, "readyReplicas": 1}
    assert REPLICASETS.strategy.cells(obj, NOW) == [1, 2, 1, "60m", "nginx,side", "nginx:1.25,busybox",
                                                    "app=web,tier notin (a,b)"]
    assert REPLICASETS.strategy.fields(obj)["status.replicas"] == "2"
    body = workload("ReplicaSet", replicas=-2)
    body["spec"]["template"]["spec"]["activeDeadlineSeconds"] = 5
    _, errs = created(REPLICASETS, body)
    assert fields_of(errs) == [("spec.replicas", "FieldValueInvalid"),
                               ("spec.template.spec.activeDeadlineSeconds", "FieldValueForbidden")]


def test_statefulset_defaults():
    body = workload("StatefulSet", serviceName="web",
                    volumeClaimTemplates=[{"metadata": {"name": "data"},
                                           "spec": {"accessModes": ["ReadWriteOnce"],
                                                    "resources": {"requests": {"storage": "1Gi"}}}}])
    obj, errs = created(STATEFULSETS, body)
    assert errs == []
    spec = obj["spec"]
    assert spec["podManagementPolicy"] == "OrderedReady"
    assert spec["updateStrategy"] == {"type": "RollingUpdate", "rollingUpdate": {"partition": 0}}
    assert spec["persistentVolumeClaimRetentionPolicy"] == {"whenDeleted": "Retain", "whenScaled": "Retain"}
    assert spec["replicas"] == 1 and spec["revisionHistoryLimit"] == 10
    claim = spec["volumeClaimTemplates"][0]
    assert claim["spec"]["volumeMode"] == "Filesystem" and claim["status"] == {"phase": "Pending"}
    assert obj["status"] == {"replicas": 0, "availableReplicas": 0}


def test_statefulset_validation():
    body = workload("StatefulSet", podManagementPolicy="Sometimes",
                    updateStrategy={"type": "OnDelete", "rollingUpdate": {"partition": 1}},
                    persistentVolumeClaimRetentionPolicy={"whenDeleted": "Keep", "whenScaled": "Retain"})
    _, errs = created(STATEFULSETS, body)
    assert fields_of(errs) == [
        ("spec.podManagementPolicy", "FieldValueInvalid"),
        ("spec.updateStrategy.rollingUpdate", "FieldValueInvalid"),
        ("spec.persistentVolumeClaimRetentionPolicy.whenDeleted", "FieldValueNotSupported"),
    ]
    body = workload("StatefulSet", selector={})
    _, errs = created(STATEFULSETS, body)
    assert errs[0].detail == "empty selector is invalid for statefulset"


def test_statefulset_update_forbids_other_spec_fields():
    old, _ = created(STATEFULSETS, workload("StatefulSet", serviceName="web"))
    new = copy.deepcopy(old)
    new["spec"]["replicas"] = 4
    new["spec"]["template"]["spec"]["containers"][0]["image"] = "nginx:2"
    assert STATEFULSETS.strategy.validate_update(new, old) == []
    new["spec"]["serviceName"] = "other"
    errs = STATEFULSETS.strategy.validate_update(new, old)
    assert fields_of(errs) == [("spec", "FieldValueForbidden")]
    assert "'replicas', 'ordinals', 'template'" in errs[0].detail


def test_statefulset_table():
    obj, _ = created(STATEFULSETS, workload("StatefulSet", replicas=3))
    obj["status"]["readyReplicas"] = 1
    assert [c.name for c in STATEFULSETS.strategy.columns()] == ["Ready", "Age", "Containers", "Images"]
    assert STATEFULSETS.strategy.cells(obj, NOW) == ["1/3", "60m", "nginx,side", "nginx:1.25,busybox"]


def test_daemonset_defaults_validation_and_table():
    obj, errs = created(DAEMONSETS, workload("DaemonSet"))
    assert errs == []
    assert obj["spec"]["updateStrategy"] == {"type": "RollingUpdate",
                                             "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 0}}
    assert obj["spec"]["revisionHistoryLimit"] == 10
    obj["spec"]["template"]["spec"]["nodeSelector"] = {"zone": "a", "disk": "ssd"}
    obj["status"] = {"desiredNumberScheduled": 3, "currentNumberScheduled": 2, "numberReady": 1,
                     "updatedNumberScheduled": 2, "numberAvailable": 1}
    cols = [c.name for c in DAEMONSETS.strategy.columns()]
    assert cols == ["Desired", "Current", "Ready", "Up-to-date", "Available", "Node Selector", "Age",
                    "Containers", "Images", "Selector"]
    assert DAEMONSETS.strategy.cells(obj, NOW) == [3, 2, 1, 2, 1, "disk=ssd,zone=a", "60m", "nginx,side",
                                                   "nginx:1.25,busybox", "app=web"]
    body = workload("DaemonSet", updateStrategy={"type": "RollingUpdate",
                                                 "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 1}})
    _, errs = created(DAEMONSETS, body)
    assert fields_of(errs) == [("spec.updateStrategy.rollingUpdate.maxSurge", "FieldValueInvalid")]
    body = workload("DaemonSet", updateStrategy={"type": "RollingUpdate",
                                                 "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 0}})
    _, errs = created(DAEMONSETS, body)
    assert fields_of(errs) == [("spec.updateStrategy.rollingUpdate.maxUnavailable", "FieldValueRequired")]


def test_controllerrevision():
    rev = {"metadata": {"name": "web-abc", "creationTimestamp": "2024-01-01T00:00:00Z",
                        "ownerReferences": [{"apiVersion": "apps/v1", "kind": "StatefulSet", "name": "web",
                                             "uid": "u", "controller": True}]},
           "data": {"spec": {}}, "revision": 2}
    s = CONTROLLERREVISIONS.strategy
    assert s.validate(rev) == []
    assert s.cells(rev, NOW) == ["statefulset.apps/web", 2, "60m"]
    assert fields_of(s.validate({"metadata": {}, "revision": -1})) == [
        ("data", "FieldValueRequired"), ("revision", "FieldValueInvalid")]
    new = copy.deepcopy(rev)
    new["data"] = {"spec": {"x": 1}}
    assert fields_of(s.validate_update(new, rev)) == [("data", "FieldValueInvalid")]
    assert s.has_generation is False
