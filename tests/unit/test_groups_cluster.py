"""rbac, scheduling.k8s.io priorityclasses, storage.k8s.io storageclasses,
discovery.k8s.io endpointslices, events.k8s.io events, autoscaling/v2 HPAs."""

from __future__ import annotations

import copy

from pybernetes.api import autoscaling, discovery, events, rbac, scheduling, storageclasses
from pybernetes.api.printing import parse_time

NOW = parse_time("2024-01-01T00:10:00Z")
CREATED = "2024-01-01T00:00:00Z"


def meta(name="x", namespace="default"):
    m = {"name": name, "creationTimestamp": CREATED}
    if namespace:
        m["namespace"] = namespace
    return m


def run(res, obj):
    res.strategy.default(obj)
    res.strategy.prepare_for_create(obj)
    return res.strategy.validate(obj)


def paths(errs):
    return [(e.field, e.type) for e in errs]


def test_rbac_rules_and_names():
    role = {"metadata": meta("system:reader"), "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": []},
                                                         {"nonResourceURLs": ["/healthz"], "verbs": ["get"]}]}
    errs = run(rbac.ROLES, role)
    assert paths(errs) == [("rules[0].verbs", "FieldValueRequired"), ("rules[1].nonResourceURLs", "FieldValueInvalid")]
    assert rbac.ROLES.strategy.name_rule("system:reader") == []
    assert rbac.ROLES.strategy.name_rule("a/b") != []
    cluster_role = {"metadata": meta("view", None), "rules": [{"nonResourceURLs": ["/x"], "verbs": ["get"]}],
                    "aggregationRule": {"clusterRoleSelectors": []}}
    assert paths(run(rbac.CLUSTERROLES, cluster_role)) == [("aggregationRule.clusterRoleSelectors",
                                                           "FieldValueRequired")]
    assert rbac.ROLES.strategy.cells(role, NOW) == [CREATED]


def test_rbac_bindings():
    binding = {"metadata": meta("b"), "roleRef": {"kind": "Role", "name": "reader"},
               "subjects": [{"kind": "User", "name": "alice"}, {"kind": "ServiceAccount", "name": "sa",
                                                                "namespace": "ns"},
                            {"kind": "Group", "name": "devs"}]}
    assert run(rbac.ROLEBINDINGS, binding) == []
    assert binding["roleRef"]["apiGroup"] == "rbac.authorization.k8s.io"
    assert binding["subjects"][1]["apiGroup"] == ""
    assert rbac.ROLEBINDINGS.strategy.cells(binding, NOW) == ["Role/reader", "10m", "alice", "devs", "ns/sa"]
    new = copy.deepcopy(binding)
    new["roleRef"]["name"] = "writer"
    errs = rbac.ROLEBINDINGS.strategy.validate_update(new, binding)
    assert paths(errs) == [("roleRef", "FieldValueInvalid")] and errs[0].detail == "cannot change roleRef"
    crb = {"metadata": meta("c", None), "roleRef": {"kind": "Role", "name": "r"},
           "subjects": [{"kind": "ServiceAccount", "name": "sa"}, {"kind": "Robot", "name": "r"}]}
    assert paths(run(rbac.CLUSTERROLEBINDINGS, crb)) == [
        ("roleRef.kind", "FieldValueNotSupported"), ("subjects[0].namespace", "FieldValueRequired"),
        ("subjects[1].kind", "FieldValueNotSupported")]


def test_priorityclass():
    pc = scheduling.PRIORITYCLASSES
    obj = {"metadata": meta("high", None), "value": 1000}
    assert run(pc, obj) == [] and obj["preemptionPolicy"] == "PreemptLowerPriority"
    assert pc.short_names == ("pc",)
    assert pc.strategy.cells(obj, NOW) == [1000, False, "10m", "PreemptLowerPriority"]
    assert [c.name for c in pc.strategy.columns()] == ["Value", "Global-Default", "Age", "PreemptionPolicy"]
    errs = run(pc, {"metadata": meta("huge", None), "value": 1_000_000_001})
    assert paths(errs) == [("value", "FieldValueForbidden")]
    errs = run(pc, {"metadata": meta("system-mine", None), "value": 1})
    assert paths(errs) == [("metadata.name", "FieldValueForbidden")]
    assert run(pc, {"metadata": meta("system-node-critical", None), "value": 2000001000}) == []
    new = copy.deepcopy(obj)
    new["value"] = 5
    errs = pc.strategy.validate_update(new, obj)
    assert paths(errs) == [("value", "FieldValueForbidden")] and errs[0].detail == "may not be changed in an update."


def test_storageclass():
    sc = storageclasses.STORAGECLASSES
    obj = {"metadata": {**meta("standard", None),
                        "annotations": {"storageclass.kubernetes.io/is-default-class": "true"}},
           "provisioner": "rancher.io/local-path", "parameters": {"a": "b"}}
    assert run(sc, obj) == []
    assert (obj["reclaimPolicy"], obj["volumeBindingMode"]) == ("Delete", "Immediate")
    assert sc.strategy.cells(obj, NOW) == ["rancher.io/local-path", "Delete", "Immediate", False, "10m"]
    assert sc.strategy.name_cell(obj) == "standard (default)"
    assert paths(run(sc, {"metadata": meta("s", None)})) == [("provisioner", "FieldValueRequired")]
    new = copy.deepcopy(obj)
    new["parameters"] = {"a": "c"}
    new["volumeBindingMode"] = "WaitForFirstConsumer"
    assert paths(sc.strategy.validate_update(new, obj)) == [("parameters", "FieldValueForbidden"),
                                                             ("volumeBindingMode", "FieldValueInvalid")]


def test_endpointslice():
    eps = discovery.ENDPOINTSLICES
    obj = {"metadata": meta("web-abc"), "addressType": "IPv4",
           "endpoints": [{"addresses": ["10.0.0.1"]}, {"addresses": ["10.0.0.2", "10.0.0.3", "10.0.0.4"]}],
           "ports": [{"port": 80}, {"name": "https", "port": 443}]}
    assert run(eps, obj) == []
    assert obj["ports"][0] == {"port": 80, "name": "", "protocol": "TCP"}
    assert eps.strategy.cells(obj, NOW) == ["IPv4", "80,443", "10.0.0.1,10.0.0.2,10.0.0.3 + 1 more...", "10m"]
    assert eps.strategy.cells({"metadata": meta(), "addressType": "IPv6"}, NOW)[1:3] == ["<unset>", "<unset>"]
    bad = {"metadata": meta(), "addressType": "IPv4",
           "endpoints": [{"addresses": []}, {"addresses": ["fe80::1", "127.0.0.1"]}],
           "ports": [{"name": "a", "protocol": "ICMP"}, {"name": "a"}]}
    assert paths(run(eps, bad)) == [
        ("endpoints[0].addresses", "FieldValueRequired"),
        ("endpoints[1].addresses[0]", "FieldValueInvalid"),
        ("endpoints[1].addresses[1]", "FieldValueInvalid"),
        ("ports[0].protocol", "FieldValueNotSupported"),
        ("ports[1].name", "FieldValueDuplicate"),
    ]
    assert paths(run(eps, {"metadata": meta(), "addressType": "IPX"})) == [("addressType", "FieldValueNotSupported")]
    new = copy.deepcopy(obj)
    new["addressType"] = "FQDN"
    assert paths(eps.strategy.validate_update(new, obj)) == [("addressType", "FieldValueInvalid")]


def event(**fields):
    body = {"metadata": meta("web.17a"), "eventTime": "2024-01-01T00:05:00.000000Z", "type": "Normal",
            "reason": "Started", "action": "Start", "reportingController": "example.com/ctl",
            "reportingInstance": "ctl-1", "note": "started ",
            "regarding": {"kind": "Pod", "name": "web", "namespace": "default", "fieldPath": "spec.containers{c}"}}
    body.update(fields)
    return body


def test_events_k8s_io():
    ev = events.EVENTS
    obj = event()
    assert run(ev, obj) == []
    assert ev.strategy.cells(obj, NOW) == ["5m", "Normal", "Started", "pod/web", "spec.containers{c}",
                                           "example.com/ctl, ctl-1", "started", "5m", 1, "web.17a"]
    errs = run(ev, event(eventTime=None, type="Odd", reportingController="", deprecatedCount=3))
    assert paths(errs)[0] == ("reportingController", "FieldValueRequired")
    assert paths(errs)[-3:] == [("eventTime", "FieldValueRequired"),
                           ("type", "FieldValueInvalid"), ("count", "FieldValueInvalid")]
    fields = ev.strategy.fields(obj)
    assert fields["regarding.name"] == "web" and fields["reason"] == "Started" and fields["type"] == "Normal"
    assert set(ev.strategy.field_names) >= {"regarding.kind", "reportingController"}
    new = copy.deepcopy(obj)
    new["note"] = "changed"
    assert paths(ev.strategy.validate_update(new, obj)) == [("message", "FieldValueInvalid")]
    series = event(series={"count": 4, "lastObservedTime": "2024-01-01T00:09:00.000000Z"})
    assert ev.strategy.cells(series, NOW)[0] == "60s" and ev.strategy.cells(series, NOW)[8] == 4


def hpa(**spec):
    return {"metadata": meta("web"), "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment",
                                                                 "name": "web"}, "maxReplicas": 5, **spec}}


def test_hpa_defaults():
    res = autoscaling.HORIZONTALPODAUTOSCALERS
    assert res.version == "v2" and res.short_names == ("hpa",) and res.categories == ("all",)
    obj = hpa()
    assert run(res, obj) == []
    assert obj["spec"]["minReplicas"] == 1
    assert obj["spec"]["metrics"] == [{"type": "Resource", "resource": {
        "name": "cpu", "target": {"type": "Utilization", "averageUtilization": 80}}}]
    assert "behavior" not in obj["spec"] and obj["status"] == {"desiredReplicas": 0}
    obj = hpa(behavior={"scaleDown": {"stabilizationWindowSeconds": 60}})
    run(res, obj)
    behavior = obj["spec"]["behavior"]
    assert behavior["scaleDown"] == {"stabilizationWindowSeconds": 60, "selectPolicy": "Max",
                                     "policies": [{"type": "Percent", "value": 100, "periodSeconds": 15}]}
    assert behavior["scaleUp"]["stabilizationWindowSeconds"] == 0
    assert len(behavior["scaleUp"]["policies"]) == 2


def test_hpa_validation_and_table():
    res = autoscaling.HORIZONTALPODAUTOSCALERS
    errs = run(res, hpa(minReplicas=6, metrics=[{"type": "Resource", "resource": {"name": "cpu", "target": {
        "type": "Utilization", "averageUtilization": 0}}}]))
    assert paths(errs) == [("spec.maxReplicas", "FieldValueInvalid"),
                           ("spec.metrics[0].resource.target.averageUtilization", "FieldValueInvalid")]
    assert errs[0].detail == "must be greater than or equal to `minReplicas`"
    obj = hpa()
    run(res, obj)
    assert res.strategy.cells(obj, NOW) == ["Deployment/web", "cpu: <unknown>/80%", "1", 5, 0, "10m"]
    obj["status"] = {"currentReplicas": 2, "currentMetrics": [
        {"type": "Resource", "resource": {"name": "cpu", "current": {"averageUtilization": 40}}}]}
    assert res.strategy.cells(obj, NOW)[1] == "cpu: 40%/80%"
    obj["spec"]["minReplicas"] = None
    assert res.strategy.cells(obj, NOW)[2] == "<unset>"
