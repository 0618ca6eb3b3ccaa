"""The official ``kubernetes`` Python client against the real server (acceptance of issue 2)."""

from __future__ import annotations

import time

import pytest

kubernetes = pytest.importorskip("kubernetes")
from kubernetes import client, watch  # noqa: E402
from kubernetes.client.rest import ApiException  # noqa: E402

NS = "default"


def cm(name: str, labels: dict | None = None, **data: str) -> client.V1ConfigMap:
    return client.V1ConfigMap(metadata=client.V1ObjectMeta(name=name, labels=labels), data=data)


def test_configmap_crud(k8s_api_client):
    core = client.CoreV1Api(k8s_api_client)
    created = core.create_namespaced_config_map(NS, cm("crud", a="1"))
    assert created.metadata.uid and created.data == {"a": "1"}
    got = core.read_namespaced_config_map("crud", NS)
    got.data["b"] = "2"
    replaced = core.replace_namespaced_config_map("crud", NS, got)
    assert replaced.data == {"a": "1", "b": "2"}
    with pytest.raises(ApiException) as caught:
        core.replace_namespaced_config_map("crud", NS, got)  # stale resourceVersion
    assert caught.value.status == 409
    status = core.delete_namespaced_config_map("crud", NS)
    assert status.status == "Success"
    with pytest.raises(ApiException) as caught:
        core.read_namespaced_config_map("crud", NS)
    assert caught.value.status == 404


def test_list_with_pagination(k8s_api_client):
    core = client.CoreV1Api(k8s_api_client)
    for i in range(7):
        core.create_namespaced_config_map(NS, cm(f"page-{i}"))
    names: list[str] = []
    token = None
    pages = 0
    while True:
        page = core.list_namespaced_config_map(NS, limit=3, _continue=token)
        pages += 1
        names += [item.metadata.name for item in page.items]
        token = page.metadata._continue
        if not token:
            break
    assert pages == 3
    assert names == [f"page-{i}" for i in range(7)]


def test_watch_in_order_then_ends_at_timeout(k8s_api_client):
    core = client.CoreV1Api(k8s_api_client)
    rv = core.list_namespaced_config_map(NS).metadata.resource_version
    core.create_namespaced_config_map(NS, cm("watched", a="1"))
    core.patch_namespaced_config_map("watched", NS, {"data": {"a": "2"}})
    core.delete_namespaced_config_map("watched", NS)
    seen = []
    started = time.monotonic()
    stream = watch.Watch().stream(core.list_namespaced_config_map, NS, resource_version=rv, timeout_seconds=2)
    for event in stream:
        seen.append((event["type"], event["object"].metadata.name))
    elapsed = time.monotonic() - started
    assert seen == [("ADDED", "watched"), ("MODIFIED", "watched"), ("DELETED", "watched")]
    assert 1.5 <= elapsed < 10


def test_every_patch_type(k8s_api_client):
    apps = client.AppsV1Api(k8s_api_client)
    body = {
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "patched"},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "p"}},
                 "template": {"metadata": {"labels": {"app": "p"}},
                              "spec": {"containers": [{"name": "main", "image": "nginx:1"},
                                                      {"name": "side", "image": "busybox"}]}}},
    }
    apps.create_namespaced_deployment(NS, body)
    # strategic merge (the client's default for a dict body): containers merge by name
    patched = apps.patch_namespaced_deployment(
        "patched", NS, {"spec": {"template": {"spec": {"containers": [{"name": "main", "image": "nginx:2"}]}}}})
    images = {c.name: c.image for c in patched.spec.template.spec.containers}
    assert images == {"main": "nginx:2", "side": "busybox"}
    # JSON patch (the client's choice for a list body)
    patched = apps.patch_namespaced_deployment(
        "patched", NS, [{"op": "replace", "path": "/spec/replicas", "value": 4}])
    assert patched.spec.replicas == 4
    # merge patch (the generated methods cannot choose it: go through the ApiClient)
    patched = k8s_api_client.call_api(
        "/apis/apps/v1/namespaces/{namespace}/deployments/{name}", "PATCH",
        path_params={"namespace": NS, "name": "patched"},
        header_params={"Content-Type": "application/merge-patch+json", "Accept": "application/json"},
        body={"metadata": {"labels": {"merge": "yes"}}}, response_type="V1Deployment",
        _return_http_data_only=True)
    assert patched.metadata.labels == {"merge": "yes"}
    assert len(patched.spec.template.spec.containers) == 2
    scale = apps.patch_namespaced_deployment_scale("patched", NS, {"spec": {"replicas": 2}})
    assert scale.spec.replicas == 2


def test_deletecollection_with_label_selector(k8s_api_client):
    core = client.CoreV1Api(k8s_api_client)
    for i in range(3):
        core.create_namespaced_config_map(NS, cm(f"doomed-{i}", labels={"fate": "doomed"}))
    core.create_namespaced_config_map(NS, cm("survivor", labels={"fate": "spared"}))
    core.delete_collection_namespaced_config_map(NS, label_selector="fate=doomed")
    left = [item.metadata.name for item in core.list_namespaced_config_map(NS).items]
    assert left == ["survivor"]


def test_namespaces_and_cluster_wide_list(k8s_api_client):
    core = client.CoreV1Api(k8s_api_client)
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name="team-a")))
    core.create_namespaced_config_map("team-a", cm("x"))
    core.create_namespaced_config_map(NS, cm("y"))
    every = core.list_config_map_for_all_namespaces()
    assert {(i.metadata.namespace, i.metadata.name) for i in every.items} >= {("team-a", "x"), (NS, "y")}
    names = {n.metadata.name for n in core.list_namespace().items}
    assert {"default", "kube-system", "kube-public", "kube-node-lease", "team-a"} <= names
