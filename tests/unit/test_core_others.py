"""Events, serviceaccounts, PV/PVC, limitranges, resourcequotas, RCs, podtemplates, and
checks over every core resource (definitions, cells per column, no crash on odd input)."""

from __future__ import annotations

import copy

import pytest

from pybernetes.api.core import RESOURCES
from pybernetes.api.core.events import EVENTS
from pybernetes.api.core.policy import LIMITRANGES, RESOURCEQUOTAS
from pybernetes.api.core.replicationcontrollers import PODTEMPLATES, REPLICATIONCONTROLLERS
from pybernetes.api.core.serviceaccounts import SERVICEACCOUNTS
from pybernetes.api.core.volumes import PERSISTENTVOLUMECLAIMS, PERSISTENTVOLUMES
from pybernetes.api.printing import parse_time

NOW = parse_time("2024-01-01T12:00:00Z")


def texts(errs):
    return [e.error_text() for e in errs]


def test_resource_definitions():
    by_name = {r.resource: r for r in RESOURCES}
    assert set(by_name) == {
        "namespaces", "pods", "services", "configmaps", "secrets", "nodes", "endpoints", "events",
        "serviceaccounts", "persistentvolumes", "persistentvolumeclaims", "limitranges", "resourcequotas",
        "replicationcontrollers", "podtemplates"}
    expected_short = {"namespaces": ("ns",), "pods": ("po",), "services": ("svc",), "configmaps": ("cm",),
                      "nodes": ("no",), "endpoints": ("ep",), "events": ("ev",), "serviceaccounts": ("sa",),
                      "persistentvolumes": ("pv",), "persistentvolumeclaims": ("pvc",),
                      "limitranges": ("limits",), "resourcequotas": ("quota",), "replicationcontrollers": ("rc",)}
    for name, short in expected_short.items():
        assert by_name[name].short_names == short
    assert {r.resource for r in RESOURCES if "all" in r.categories} == {"pods", "services", "replicationcontrollers"}
    assert {r.resource for r in RESOURCES if not r.namespaced} == {"namespaces", "nodes", "persistentvolumes"}
    assert [s.name for s in by_name["pods"].subresources] == ["status", "binding", "log"]
    assert by_name["pods"].subresource("binding").verbs == ("create",)
    assert [s.name for s in by_name["replicationcontrollers"].subresources] == ["status", "scale"]
    assert all(r.group == "" and r.version == "v1" for r in RESOURCES)


@pytest.mark.parametrize("res", RESOURCES, ids=lambda r: r.resource)
def test_cells_match_columns_and_odd_input_never_crashes(res):
    s = res.strategy
    odd_inputs = [
        {"metadata": {"name": "x"}},
        {"metadata": {"name": "x"}, "spec": "text", "status": [], "data": 5, "subsets": "a", "template": 1},
        {"metadata": {"name": "x"}, "spec": {"containers": [None], "ports": [3], "limits": [7], "hard": "h",
                                             "template": {"spec": 4}}, "status": {"conditions": "c"}},
    ]
    for obj in odd_inputs:
        obj = copy.deepcopy(obj)
        s.default(obj)
        s.prepare_for_create(obj)
        s.validate(obj)
        s.validate_update(obj, copy.deepcopy(obj))
        assert len(s.cells(obj, NOW)) == len(s.columns())
        fields = s.fields(obj)
        assert set(s.field_names) <= set(fields)
        assert all(isinstance(v, str) for v in fields.values())


def test_events():
    e = EVENTS.strategy
    ev = {"metadata": {"name": "p.1", "namespace": "default"},
          "involvedObject": {"kind": "Pod", "name": "p", "namespace": "default", "fieldPath": "spec.containers{c}"},
          "reason": "Pulled", "message": " done \n", "type": "Normal", "source": {"component": "kubelet", "host": "n1"},
          "firstTimestamp": "2024-01-01T11:00:00Z", "lastTimestamp": "2024-01-01T11:58:00Z", "count": 3}
    assert e.validate(ev) == []
    assert [c.name for c in e.columns()] == ["Last Seen", "Type", "Reason", "Object", "Subobject", "Source",
                                             "Message", "First Seen", "Count", "Name"]
    assert e.name_column is False
    assert e.cells(ev, NOW) == ["2m", "Normal", "Pulled", "pod/p", "spec.containers{c}", "kubelet, n1", "done",
                                "60m", 3, "p.1"]
    f = e.fields(ev)
    assert f["involvedObject.kind"] == "Pod" and f["source"] == "kubelet" and f["reason"] == "Pulled"
    assert f["type"] == "Normal" and f["involvedObject.uid"] == ""
    bad = copy.deepcopy(ev)
    bad["involvedObject"]["namespace"] = "other"
    assert texts(e.validate(bad)) == ['involvedObject.namespace: Invalid value: "other": does not match event.namespace']
    series = {"eventTime": "2024-01-01T11:00:00.000000Z", "series": {"count": 7, "lastObservedTime": "2024-01-01T11:59:00.000000Z"},
              "reportingComponent": "ctrl", "involvedObject": {"kind": "Node"}}
    assert e.cells(series, NOW)[0] == "60s"
    assert e.cells(series, NOW)[3] == "node"
    assert e.cells(series, NOW)[-2] == 7
    assert e.cells(series, NOW)[5] == "ctrl"


def test_serviceaccounts():
    s = SERVICEACCOUNTS.strategy
    assert s.cells({"secrets": [{"name": "a"}]}, NOW)[0] == 1
    assert not s.has_generation
    assert texts(s.validate({"imagePullSecrets": [{}]})) == ["imagePullSecrets[0].name: Required value"]


def test_persistent_volumes():
    s = PERSISTENTVOLUMES.strategy
    pv = {"metadata": {"name": "pv1"}, "spec": {"capacity": {"storage": "5Gi"}, "accessModes": ["ReadWriteOnce"],
                                                "hostPath": {"path": "/data"}}}
    s.default(pv)
    s.prepare_for_create(pv)
    assert pv["spec"]["persistentVolumeReclaimPolicy"] == "Retain"
    assert pv["spec"]["volumeMode"] == "Filesystem"
    assert pv["status"]["phase"] == "Pending" and "lastPhaseTransitionTime" in pv["status"]
    assert s.validate(pv) == []
    assert s.name_rule("Any_Name") == []
    cells = s.cells(pv, NOW)
    assert cells[:8] == ["5Gi", "RWO", "Retain", "Pending", "", "", "<unset>", ""]
    assert cells[-1] == "Filesystem"
    bad = {"spec": {"accessModes": ["Sometimes"]}}
    out = texts(s.validate(bad))
    assert "spec.capacity: Required value" in out
    assert "spec: Required value: must specify a volume type" in out
    assert any(t.startswith('spec.accessModes: Unsupported value: "Sometimes"') for t in out)
    new = copy.deepcopy(pv)
    new["spec"]["hostPath"]["path"] = "/other"
    assert [e.field for e in s.validate_update(new, pv)] == ["spec.persistentvolumesource"]


def test_persistent_volume_claims():
    s = PERSISTENTVOLUMECLAIMS.strategy
    pvc = {"metadata": {"name": "c", "namespace": "d"},
           "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}
    s.default(pvc)
    s.prepare_for_create(pvc)
    assert pvc["spec"]["volumeMode"] == "Filesystem"
    assert pvc["status"] == {"phase": "Pending"}
    assert s.validate(pvc) == []
    assert s.cells(pvc, NOW)[:6] == ["Pending", "", "", "", "", "<unset>"]
    assert texts(s.validate({"spec": {}})) == ["spec.accessModes: Required value: at least 1 access mode is required",
                                               "spec.resources[storage]: Required value"]
    bound = copy.deepcopy(pvc)
    bound["spec"]["volumeName"] = "pv1"
    assert s.validate_update(bound, pvc) == []  # binding sets volumeName once
    grown = copy.deepcopy(bound)
    grown["spec"]["resources"]["requests"]["storage"] = "2Gi"
    assert s.validate_update(grown, bound) == []
    changed = copy.deepcopy(bound)
    changed["spec"]["accessModes"] = ["ReadWriteMany"]
    assert [e.field for e in s.validate_update(changed, bound)] == ["spec"]
    bound["status"] = {"phase": "Bound", "accessModes": ["ReadWriteOnce", "ReadOnlyMany"], "capacity": {"storage": "1Gi"}}
    assert s.cells(bound, NOW)[:4] == ["Bound", "pv1", "1Gi", "RWO,ROX"]


def test_limit_ranges():
    s = LIMITRANGES.strategy
    lr = {"metadata": {"name": "l", "creationTimestamp": "2024-01-01T10:00:00Z"},
          "spec": {"limits": [{"type": "Container", "max": {"cpu": "2"}, "min": {"memory": "64Mi"}}]}}
    s.default(lr)
    item = lr["spec"]["limits"][0]
    assert item["default"] == {"cpu": "2"}
    assert item["defaultRequest"] == {"cpu": "2", "memory": "64Mi"}
    assert s.validate(lr) == []
    assert s.cells(lr, NOW) == ["2024-01-01T10:00:00Z"]
    assert s.columns()[0].type == "date"
    bad = {"spec": {"limits": [{"type": "Pod", "min": {"cpu": "2"}, "max": {"cpu": "1"}, "default": {"cpu": "1"}}]}}
    out = texts(s.validate(bad))
    assert 'spec.limits[0].min[cpu]: Invalid value: "2": min value 2 is greater than max value 1' in out
    assert "spec.limits[0].default: Forbidden: may not be specified when `type` is 'Pod'" in out


def test_resource_quotas():
    s = RESOURCEQUOTAS.strategy
    q = {"metadata": {"name": "q", "creationTimestamp": "2024-01-01T11:00:00Z"},
         "spec": {"hard": {"pods": "10", "requests.cpu": "4", "limits.memory": "8Gi", "count/deployments.apps": "2"}},
         "status": {"hard": {"pods": "10", "requests.cpu": "4", "limits.memory": "8Gi"},
                    "used": {"pods": "3", "requests.cpu": "500m"}}}
    assert s.validate(q) == []
    assert s.cells(q, NOW) == ["60m", "pods: 3/10, requests.cpu: 500m/4", "limits.memory: 0/8Gi"]
    bad = {"spec": {"hard": {"bogus": "1", "pods": "-1"}, "scopes": ["Sometimes"]}}
    out = texts(s.validate(bad))
    assert 'spec.hard[bogus]: Invalid value: "bogus": must be a standard resource for quota' in out
    assert 'spec.hard[pods]: Invalid value: "-1": must be greater than or equal to 0' in out
    assert any(t.startswith('spec.scopes[0]: Unsupported value: "Sometimes"') for t in out)


def rc(**spec):
    base = {"template": {"metadata": {"labels": {"app": "web"}},
                         "spec": {"containers": [{"name": "c", "image": "nginx:1"}, {"name": "d", "image": "busybox"}]}}}
    base.update(spec)
    return {"metadata": {"name": "r", "namespace": "d", "creationTimestamp": "2024-01-01T11:00:00Z"}, "spec": base}


def test_replication_controllers():
    s = REPLICATIONCONTROLLERS.strategy
    obj = rc()
    s.default(obj)
    s.prepare_for_create(obj)
    assert obj["spec"]["selector"] == {"app": "web"}
    assert obj["metadata"]["labels"] == {"app": "web"}
    assert obj["spec"]["replicas"] == 1
    assert obj["spec"]["template"]["spec"]["restartPolicy"] == "Always"
    assert s.validate(obj) == []
    obj["status"] = {"replicas": 1, "readyReplicas": 1}
    assert s.cells(obj, NOW) == [1, 1, 1, "60m", "c,d", "nginx:1,busybox", "app=web"]
    assert s.fields(obj)["status.replicas"] == "1"
    bad = rc(selector={"app": "other"}, replicas=-1)
    bad["spec"]["template"]["spec"]["restartPolicy"] = "OnFailure"
    s.default(bad)
    out = texts(s.validate(bad))
    assert "spec.replicas: Invalid value: -1: must be greater than or equal to 0" in out
    assert any(t.startswith("spec.template.metadata.labels: Invalid value") and "`selector` does not match template"
               in t for t in out)
    assert ('spec.template.spec.restartPolicy: Unsupported value: "OnFailure": supported values: "Always"' in out)
    assert texts(s.validate({"spec": {"selector": {"a": "b"}}})) == ["spec.template: Required value"]


def test_pod_templates():
    s = PODTEMPLATES.strategy
    pt = {"metadata": {"name": "t"}, "template": {"metadata": {"labels": {"a": "b"}},
                                                  "spec": {"containers": [{"name": "c", "image": "x"}]}}}
    s.default(pt)
    assert pt["template"]["spec"]["dnsPolicy"] == "ClusterFirst"
    assert s.validate(pt) == []
    assert s.cells(pt, NOW) == ["c", "x", "a=b"]
    assert s.has_generation and s.status_fields == ()
    del pt["template"]["spec"]["containers"][0]["name"]
    assert texts(s.validate(pt)) == ["template.spec.containers[0].name: Required value"]
