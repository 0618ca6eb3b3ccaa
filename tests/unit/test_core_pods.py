"""Pods: upstream defaults, validation with field paths, update rules, QoS, table, fields."""

from __future__ import annotations

import copy

from pybernetes.api.core.pods import PODS, pod_qos_class
from pybernetes.api.podspec import container_images, default_pod_template, validate_pod_template
from pybernetes.api.printing import parse_time

S = PODS.strategy
NOW = parse_time("2024-01-01T12:00:00Z")


def make_pod(**spec_extra):
    spec = {"containers": [{"name": "web", "image": "nginx:1.25", "ports": [{"containerPort": 80}]}]}
    spec.update(spec_extra)
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "p", "namespace": "default", "creationTimestamp": "2024-01-01T11:55:00Z"},
            "spec": spec}


def created(pod):
    S.default(pod)
    S.prepare_for_create(pod)
    return pod


def texts(errs):
    return [e.error_text() for e in errs]


def fields_of(errs):
    return [e.field for e in errs]


def test_pod_defaults():
    pod = created(make_pod())
    spec = pod["spec"]
    assert spec["restartPolicy"] == "Always"
    assert spec["dnsPolicy"] == "ClusterFirst"
    assert spec["terminationGracePeriodSeconds"] == 30
    assert spec["schedulerName"] == "default-scheduler"
    assert spec["securityContext"] == {}
    assert spec["enableServiceLinks"] is True
    c = spec["containers"][0]
    assert c["imagePullPolicy"] == "IfNotPresent"
    assert c["terminationMessagePath"] == "/dev/termination-log"
    assert c["terminationMessagePolicy"] == "File"
    assert c["ports"][0]["protocol"] == "TCP"
    assert c["resources"] == {}
    assert pod["status"] == {"phase": "Pending", "qosClass": "BestEffort"}
    assert S.validate(pod) == []


def test_image_pull_policy_by_tag():
    for image, policy in [("nginx", "Always"), ("nginx:latest", "Always"), ("nginx:1", "IfNotPresent"),
                          ("localhost:5000/app", "Always"), ("localhost:5000/app:v2", "IfNotPresent"),
                          ("nginx@sha256:" + "a" * 64, "IfNotPresent")]:
        pod = created(make_pod(containers=[{"name": "c", "image": image}]))
        assert pod["spec"]["containers"][0]["imagePullPolicy"] == policy, image


def test_probe_volume_and_resource_defaults():
    pod = created(make_pod(
        containers=[{"name": "c", "image": "x:1", "resources": {"limits": {"cpu": "1", "memory": "1Gi"}},
                     "readinessProbe": {"httpGet": {"port": 80}},
                     "env": [{"name": "N", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}]}],
        volumes=[{"name": "a"}, {"name": "b", "secret": {"secretName": "s"}}, {"name": "c", "configMap": {"name": "m"}}],
    ))
    c = pod["spec"]["containers"][0]
    assert c["resources"]["requests"] == {"cpu": "1", "memory": "1Gi"}
    assert c["readinessProbe"] == {"httpGet": {"port": 80, "path": "/", "scheme": "HTTP"}, "timeoutSeconds": 1,
                                   "periodSeconds": 10, "successThreshold": 1, "failureThreshold": 3}
    assert c["env"][0]["valueFrom"]["fieldRef"]["apiVersion"] == "v1"
    vols = pod["spec"]["volumes"]
    assert vols[0]["emptyDir"] == {}
    assert vols[1]["secret"]["defaultMode"] == 420
    assert vols[2]["configMap"]["defaultMode"] == 420
    assert pod["status"]["qosClass"] == "Guaranteed"
    assert S.validate(pod) == []


def test_qos_classes():
    assert pod_qos_class({"containers": [{"resources": {}}]}) == "BestEffort"
    assert pod_qos_class({"containers": [{"resources": {"requests": {"cpu": "1"}}}]}) == "Burstable"
    assert pod_qos_class({"containers": [{"resources": {"limits": {"cpu": "1", "memory": "1"},
                                                        "requests": {"cpu": "1", "memory": "1"}}}]}) == "Guaranteed"


def test_containers_required():
    pod = make_pod(containers=[])
    S.default(pod)
    assert texts(S.validate(pod)) == ["spec.containers: Required value"]


def test_container_validation_paths():
    pod = make_pod(containers=[
        {"name": "Bad", "image": "", "ports": [{"containerPort": 70000, "protocol": "ICMP"}]},
        {"name": "ok", "image": "x", "volumeMounts": [{"name": "missing", "mountPath": "/m"}],
         "resources": {"requests": {"cpu": "2"}, "limits": {"cpu": "1"}}},
        {"name": "ok", "image": "x", "env": [{"name": "1BAD", "value": "v"}]},
    ], restartPolicy="Sometimes", dnsPolicy="Weird")
    S.default(pod)
    out = texts(S.validate(pod))
    assert any(t.startswith('spec.containers[0].name: Invalid value: "Bad": a lowercase RFC 1123 label') for t in out)
    assert "spec.containers[0].image: Required value" in out
    assert "spec.containers[0].ports[0].containerPort: Invalid value: 70000: must be between 1 and 65535, inclusive" in out
    assert ('spec.containers[0].ports[0].protocol: Unsupported value: "ICMP": supported values: '
            '"SCTP", "TCP", "UDP"') in out
    assert 'spec.containers[1].volumeMounts[0].name: Not found: "missing"' in out
    assert 'spec.containers[1].resources.requests: Invalid value: "2": must be less than or equal to cpu limit of 1' in out
    assert 'spec.containers[2].name: Duplicate value: "ok"' in out
    assert any(t.startswith('spec.containers[2].env[0].name: Invalid value: "1BAD"') for t in out)
    assert ('spec.restartPolicy: Unsupported value: "Sometimes": supported values: "Always", "OnFailure", "Never"'
            in out)
    assert any(t.startswith('spec.dnsPolicy: Unsupported value: "Weird"') for t in out)


def test_volume_validation():
    pod = make_pod(volumes=[
        {"name": "a", "emptyDir": {}, "configMap": {"name": "x"}},
        {"name": "a", "secret": {}},
        {"name": "c", "persistentVolumeClaim": {}},
    ])
    S.default(pod)
    out = texts(S.validate(pod))
    assert "spec.volumes[0].configMap: Forbidden: may not specify more than 1 volume type" in out
    assert 'spec.volumes[1].name: Duplicate value: "a"' in out
    assert "spec.volumes[1].secret.secretName: Required value" in out
    assert "spec.volumes[2].persistentVolumeClaim.claimName: Required value" in out


def test_wrong_types_do_not_crash():
    for spec in ({"containers": "nope"}, {"containers": [1, None]}, {"containers": [{"name": 3, "image": []}]},
                 {"containers": [{"name": "a", "image": "b", "ports": {"x": 1}, "env": "y"}]}, "string"):
        pod = {"metadata": {"name": "p"}, "spec": spec}
        S.default(pod)
        assert S.validate(pod)


def test_update_allows_image_and_forbids_other_changes():
    old = created(make_pod())
    new = copy.deepcopy(old)
    new["spec"]["containers"][0]["image"] = "nginx:1.26"
    S.default(new)
    S.prepare_for_update(new, old)
    assert S.validate_update(new, old) == []
    new["spec"]["containers"][0]["ports"][0]["containerPort"] = 81
    errs = S.validate_update(new, old)
    assert fields_of(errs) == ["spec"]
    assert errs[0].body().startswith("Forbidden: pod updates may not change fields other than "
                                     "`spec.containers[*].image`")
    assert "spec.containers[0].ports[0].containerPort" in errs[0].detail


def test_update_active_deadline_and_tolerations():
    old = created(make_pod(activeDeadlineSeconds=100, tolerations=[{"key": "a", "operator": "Exists"}]))
    new = copy.deepcopy(old)
    new["spec"]["activeDeadlineSeconds"] = 50
    new["spec"]["tolerations"].append({"key": "b", "operator": "Exists"})
    assert S.validate_update(new, old) == []
    new["spec"]["activeDeadlineSeconds"] = 200
    assert texts(S.validate_update(new, old)) == [
        "spec.activeDeadlineSeconds: Invalid value: 200: must be less than or equal to previous value"]
    new["spec"]["activeDeadlineSeconds"] = 50
    new["spec"]["tolerations"] = [{"key": "b", "operator": "Exists"}]
    assert fields_of(S.validate_update(new, old)) == ["spec.tolerations[0]"]


def test_update_keeps_status_and_status_update_keeps_spec():
    old = created(make_pod())
    old["status"]["phase"] = "Running"
    new = copy.deepcopy(old)
    new["status"] = {"phase": "Failed"}
    S.prepare_for_update(new, old)
    assert new["status"]["phase"] == "Running"
    new = copy.deepcopy(old)
    new["spec"]["containers"][0]["image"] = "other"
    new["status"] = {"phase": "Running", "podIPs": [{"ip": "10.0.0.5"}]}
    S.prepare_for_status_update(new, old)
    assert new["spec"] == old["spec"]
    assert new["status"]["podIP"] == "10.0.0.5"
    assert S.validate_status_update(new, old) == []
    new["status"]["podIPs"] = [{"ip": "nope"}]
    assert fields_of(S.validate_status_update(new, old)) == ["status.podIPs[0].ip"]


def test_field_selectors():
    pod = created(make_pod(nodeName="n1", hostNetwork=True))
    pod["status"]["podIPs"] = [{"ip": "10.1.1.1"}]
    f = S.fields(pod)
    assert f["spec.nodeName"] == "n1"
    assert f["spec.hostNetwork"] == "true"
    assert f["status.phase"] == "Pending"
    assert f["status.podIP"] == "10.1.1.1"
    assert f["metadata.namespace"] == "default"
    assert set(S.field_names) <= set(f)


def _status(pod, **status):
    pod = created(pod)
    pod["status"].update(status)
    return S.cells(pod, NOW)


def test_table_pending_and_running():
    assert [c.name for c in S.columns()] == ["Ready", "Status", "Restarts", "Age", "IP", "Node",
                                            "Nominated Node", "Readiness Gates"]
    assert [c.priority for c in S.columns()] == [0, 0, 0, 0, 1, 1, 1, 1]
    assert _status(make_pod()) == ["0/1", "Pending", "0", "5m", "<none>", "<none>", "<none>", "<none>"]
    running = _status(make_pod(nodeName="n1"), phase="Running", podIPs=[{"ip": "10.0.0.9"}], containerStatuses=[
        {"name": "web", "ready": True, "restartCount": 0, "state": {"running": {"startedAt": "2024-01-01T11:56:00Z"}}}])
    assert running == ["1/1", "Running", "0", "5m", "10.0.0.9", "n1", "<none>", "<none>"]


def test_table_waiting_reasons_and_restarts():
    cells = _status(make_pod(), phase="Running", containerStatuses=[
        {"name": "web", "ready": False, "restartCount": 5,
         "state": {"waiting": {"reason": "CrashLoopBackOff"}},
         "lastState": {"terminated": {"exitCode": 1, "finishedAt": "2024-01-01T11:57:00Z"}}}])
    assert cells[:3] == ["0/1", "CrashLoopBackOff", "5 (3m ago)"]
    creating = _status(make_pod(), containerStatuses=[
        {"name": "web", "ready": False, "restartCount": 0, "state": {"waiting": {"reason": "ContainerCreating"}}}])
    assert creating[1] == "ContainerCreating"
    done = _status(make_pod(), phase="Succeeded", containerStatuses=[
        {"name": "web", "ready": False, "restartCount": 0, "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}}])
    assert done[:2] == ["0/1", "Completed"]
    signal = _status(make_pod(), phase="Failed", containerStatuses=[
        {"name": "web", "state": {"terminated": {"exitCode": 137, "signal": 9}}}])
    assert signal[1] == "Signal:9"


def test_table_init_containers_and_terminating():
    pod = make_pod(initContainers=[{"name": "i1", "image": "x"}, {"name": "i2", "image": "x"}])
    cells = _status(pod, initContainerStatuses=[
        {"name": "i1", "state": {"terminated": {"exitCode": 0}}},
        {"name": "i2", "state": {"running": {}}}])
    assert cells[1] == "Init:1/2"
    pod = make_pod(initContainers=[{"name": "i1", "image": "x"}])
    cells = _status(pod, initContainerStatuses=[{"name": "i1", "state": {"waiting": {"reason": "ImagePullBackOff"}}}])
    assert cells[1] == "Init:ImagePullBackOff"
    pod = created(make_pod())
    pod["metadata"]["deletionTimestamp"] = "2024-01-01T11:59:00Z"
    pod["status"]["phase"] = "Running"
    assert S.cells(pod, NOW)[1] == "Terminating"


def test_table_readiness_gates():
    pod = created(make_pod(readinessGates=[{"conditionType": "a"}, {"conditionType": "b"}]))
    pod["status"]["conditions"] = [{"type": "a", "status": "True"}, {"type": "b", "status": "False"}]
    assert S.cells(pod, NOW)[-1] == "1/2"


def test_pod_template_helpers():
    template = {"metadata": {"labels": {"app": "x"}}, "spec": {"containers": [{"name": "c", "image": "i:1"}]}}
    default_pod_template(template)
    assert template["spec"]["restartPolicy"] == "Always"
    assert validate_pod_template(template, "spec.template") == []
    assert container_images(template["spec"]) == ["i:1"]
    template["spec"]["containers"][0]["image"] = ""
    assert fields_of(validate_pod_template(template, "spec.template")) == ["spec.template.spec.containers[0].image"]
