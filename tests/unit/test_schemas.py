"""The upstream schemas as data: index by group/version/kind, patch metadata, unknown fields
and the strict-decoding messages."""

from __future__ import annotations

import pytest

from pybernetes.api.schemas import (
    Schemas,
    field_problems,
    schemas,
    strict_decoding_error,
    strict_decoding_message,
)


@pytest.fixture(scope="module")
def s() -> Schemas:
    return schemas()


def test_definitions_are_loaded_and_indexed(s):
    assert len(s.definitions()) > 600
    assert s.definition_name("apps", "v1", "Deployment") == "io.k8s.api.apps.v1.Deployment"
    assert s.definition_name("", "v1", "Pod") == "io.k8s.api.core.v1.Pod"
    assert s.definition_name("rbac.authorization.k8s.io", "v1", "ClusterRole") == (
        "io.k8s.api.rbac.v1.ClusterRole"
    )
    assert s.definition_name("example.com", "v1", "Widget") is None


def test_schemas_is_a_singleton_and_background_load_completes():
    fresh = Schemas()
    thread = fresh.load_in_background()
    thread.join(timeout=10)
    assert fresh.loaded
    assert fresh.load_in_background() is thread
    assert schemas() is schemas()


def test_patch_meta_follows_refs(s):
    meta = s.patch_meta("apps", "v1", "Deployment")
    pod_spec = meta.field("spec").elem.field("template").elem.field("spec").elem
    containers = pod_spec.field("containers")
    assert (containers.strategy, containers.merge_key, containers.is_list) == ("merge", "name", True)
    container = containers.elem
    assert container.field("env").merge_key == "name"
    assert container.field("ports").merge_key == "containerPort"
    assert container.field("args").strategy == ""
    assert pod_spec.field("volumes").merge_key == "name"
    strategy = meta.field("spec").elem.field("strategy")
    assert strategy.retain_keys and strategy.strategy == ""
    finalizers = meta.field("metadata").elem.field("finalizers")
    assert (finalizers.strategy, finalizers.merge_key, finalizers.elem) == ("merge", "", None)
    labels = meta.field("metadata").elem.field("labels")
    assert labels.elem is not None and labels.elem.field("anything") is not None
    assert s.patch_meta("example.com", "v1", "Widget") is None


def test_no_unknown_fields_in_a_full_deployment(s):
    obj = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": "web",
            "labels": {"any-key": "v"},
            "annotations": {"k": "v"},
            "ownerReferences": [{"apiVersion": "v1", "kind": "X", "name": "n", "uid": "u"}],
            "managedFields": [{"manager": "kubectl", "fieldsV1": {"f:spec": {"f:replicas": {}}}}],
        },
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": "web"}},
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": 1}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {
                    "containers": [
                        {
                            "name": "web",
                            "image": "nginx",
                            "ports": [{"containerPort": 80}],
                            "resources": {"limits": {"cpu": "500m", "memory": 1024}},
                            "livenessProbe": {"httpGet": {"port": "http", "path": "/"}},
                            "env": [{"name": "A", "valueFrom": {"fieldRef": {"fieldPath": "x"}}}],
                        }
                    ],
                    "volumes": [{"name": "v", "configMap": {"name": "cm", "items": [{"key": "a", "path": "b"}]}}],
                },
            },
        },
        "status": {"replicas": 2, "conditions": [{"type": "Available", "status": "True"}]},
    }
    assert s.unknown_fields(obj, "apps", "v1", "Deployment") == []


def test_unknown_fields_have_upstream_paths(s):
    obj = {
        "apiVersion": "v1",
        "kind": "Pod",
        "foo": 1,
        "metadata": {"name": "p", "bogus": True},
        "spec": {
            "containers": [
                {"name": "a", "image": "x"},
                {"name": "b", "image": "y", "imagePullPolice": "Always", "ports": [{"containerPort": 1, "hostIP2": ""}]},
            ],
            "nodeSelectr": {"a": "b"},
        },
    }
    assert s.unknown_fields(obj, "", "v1", "Pod") == [
        "foo",
        "metadata.bogus",
        "spec.containers[1].imagePullPolice",
        "spec.containers[1].ports[0].hostIP2",
        "spec.nodeSelectr",
    ]


def test_free_form_and_map_fields_accept_any_keys(s):
    cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"x.y": "1"},
          "binaryData": {"b": "AA=="}}
    assert s.unknown_fields(cm, "", "v1", "ConfigMap") == []
    crd = {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": "w.example.com"},
        "spec": {
            "group": "example.com",
            "names": {"kind": "W", "plural": "ws"},
            "scope": "Namespaced",
            "versions": [
                {
                    "name": "v1",
                    "served": True,
                    "storage": True,
                    "schema": {"openAPIV3Schema": {"type": "object", "properties": {"spec": {
                        "type": "object", "x-kubernetes-preserve-unknown-fields": True,
                        "default": {"anything": {"goes": 1}}}}}},
                }
            ],
        },
    }
    assert s.unknown_fields(crd, "apiextensions.k8s.io", "v1", "CustomResourceDefinition") == []
    crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["typo"] = 1
    assert s.unknown_fields(crd, "apiextensions.k8s.io", "v1", "CustomResourceDefinition") == [
        "spec.versions[0].schema.openAPIV3Schema.properties.spec.typo"
    ]


def test_wrong_types_are_not_unknown_fields(s):
    obj = {"apiVersion": "v1", "kind": "Pod", "metadata": "oops", "spec": {"containers": {"a": 1}}}
    assert s.unknown_fields(obj, "", "v1", "Pod") == []
    assert s.unknown_fields({"x": 1}, "example.com", "v1", "Widget") == []
    assert s.unknown_fields("nope", "", "v1", "Pod") == []


def test_strict_decoding_messages():
    assert field_problems(["spec.foo"], ["metadata.name"]) == [
        'unknown field "spec.foo"',
        'duplicate field "metadata.name"',
    ]
    assert strict_decoding_message(["spec.foo"]) == 'strict decoding error: unknown field "spec.foo"'
    err = strict_decoding_error("Deployment", "v1", ["spec.foo", "spec.bar"], ["metadata.name"])
    assert err.code == 400 and err.reason == "BadRequest"
    assert err.message == (
        'Deployment in version "v1" cannot be handled as a Deployment: strict decoding error: '
        'unknown field "spec.foo", unknown field "spec.bar", duplicate field "metadata.name"'
    )


@pytest.mark.parametrize(
    "group, version, kind",
    [("", "v1", k) for k in ("Namespace", "Service", "Secret", "Node", "Event", "Endpoints",
                              "PersistentVolumeClaim", "ReplicationController")]
    + [("apps", "v1", k) for k in ("StatefulSet", "DaemonSet", "ReplicaSet", "ControllerRevision")]
    + [("batch", "v1", "CronJob"), ("networking.k8s.io", "v1", "Ingress"), ("autoscaling", "v2", "HorizontalPodAutoscaler"),
       ("policy", "v1", "PodDisruptionBudget"), ("coordination.k8s.io", "v1", "Lease"),
       ("discovery.k8s.io", "v1", "EndpointSlice"), ("events.k8s.io", "v1", "Event"),
       ("storage.k8s.io", "v1", "StorageClass"), ("scheduling.k8s.io", "v1", "PriorityClass")],
)
def test_every_builtin_kind_has_a_schema(s, group, version, kind):
    meta = s.patch_meta(group, version, kind)
    assert meta is not None
    assert meta.field("metadata") is not None
    assert s.unknown_fields({"apiVersion": "x", "kind": kind, "metadata": {"name": "n"}}, group, version, kind) == []
