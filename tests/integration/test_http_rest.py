"""The REST surface over real HTTP: verbs, status codes, errors, encodings, field validation."""

from __future__ import annotations

import orjson
import pytest

JSON = {"Content-Type": "application/json"}
TABLE_ACCEPT = ("application/json;as=Table;v=v1;g=meta.k8s.io,"
                "application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json")
CM_URL = "/api/v1/namespaces/default/configmaps"


def configmap(name: str, **data: str) -> dict:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": data}


async def create(http, url: str, obj: dict, **params: str):
    async with http.post(url, data=orjson.dumps(obj), headers=JSON, params=params) as resp:
        return resp.status, await resp.json(), resp.headers.getall("Warning", [])


async def test_create_get_update_delete_configmap(http):
    status, body, _ = await create(http, CM_URL, configmap("one", a="1"))
    assert status == 201, body
    assert body["metadata"]["namespace"] == "default"
    assert body["metadata"]["uid"] and body["metadata"]["resourceVersion"]
    async with http.get(f"{CM_URL}/one") as resp:
        assert resp.status == 200
        got = await resp.json()
    assert got["data"] == {"a": "1"}
    got["data"]["b"] = "2"
    async with http.put(f"{CM_URL}/one", data=orjson.dumps(got), headers=JSON) as resp:
        assert resp.status == 200
        updated = await resp.json()
    assert updated["data"] == {"a": "1", "b": "2"}
    assert int(updated["metadata"]["resourceVersion"]) > int(got["metadata"]["resourceVersion"])
    # a stale resourceVersion is a 409 Conflict
    async with http.put(f"{CM_URL}/one", data=orjson.dumps(got), headers=JSON) as resp:
        assert resp.status == 409
        assert (await resp.json())["reason"] == "Conflict"
    async with http.delete(f"{CM_URL}/one") as resp:
        assert resp.status == 200
        gone = await resp.json()
    assert gone["kind"] == "Status" and gone["status"] == "Success"
    assert gone["details"]["name"] == "one" and gone["details"]["kind"] == "configmaps"
    async with http.get(f"{CM_URL}/one") as resp:
        assert resp.status == 404
        body = await resp.json()
    assert body == {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                    "message": 'configmaps "one" not found', "reason": "NotFound",
                    "details": {"name": "one", "kind": "configmaps"}, "code": 404}


async def test_create_twice_is_already_exists_and_yaml_bodies_work(http):
    yaml_body = b"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: y\ndata:\n  k: v\n"
    async with http.post(CM_URL, data=yaml_body, headers={"Content-Type": "application/yaml"}) as resp:
        assert resp.status == 201, await resp.text()
    status, body, _ = await create(http, CM_URL, configmap("y"))
    assert status == 409 and body["reason"] == "AlreadyExists"


async def test_list_is_a_typed_list_and_table_and_partial(http):
    for i in range(3):
        assert (await create(http, CM_URL, configmap(f"c{i}")))[0] == 201
    async with http.get(CM_URL) as resp:
        body = await resp.json()
    assert body["kind"] == "ConfigMapList" and body["apiVersion"] == "v1"
    assert [i["metadata"]["name"] for i in body["items"]] == ["c0", "c1", "c2"]
    assert body["metadata"]["resourceVersion"]
    async with http.get(CM_URL, headers={"Accept": TABLE_ACCEPT}) as resp:
        assert resp.headers["Content-Type"].startswith("application/json;as=Table")
        table = await resp.json()
    assert table["kind"] == "Table"
    assert [c["name"] for c in table["columnDefinitions"]][0] == "Name"
    assert [r["cells"][0] for r in table["rows"]] == ["c0", "c1", "c2"]
    assert table["rows"][0]["object"]["kind"] == "PartialObjectMetadata"
    accept = "application/json;as=PartialObjectMetadataList;v=v1;g=meta.k8s.io"
    async with http.get(CM_URL, headers={"Accept": accept}) as resp:
        partial = await resp.json()
    assert partial["kind"] == "PartialObjectMetadataList"
    assert "data" not in partial["items"][0] and partial["items"][0]["metadata"]["name"] == "c0"
    async with http.get(f"{CM_URL}/c1", headers={"Accept": TABLE_ACCEPT}) as resp:
        one = await resp.json()
    assert one["kind"] == "Table" and len(one["rows"]) == 1
    # pagination
    async with http.get(CM_URL, params={"limit": "2"}) as resp:
        page1 = await resp.json()
    assert len(page1["items"]) == 2 and page1["metadata"]["continue"]
    async with http.get(CM_URL, params={"limit": "2", "continue": page1["metadata"]["continue"]}) as resp:
        page2 = await resp.json()
    assert [i["metadata"]["name"] for i in page2["items"]] == ["c2"]
    assert not page2["metadata"].get("continue")
    # across namespaces
    async with http.get("/api/v1/configmaps", params={"labelSelector": "nosuch=label"}) as resp:
        assert resp.status == 200 and (await resp.json())["items"] == []


async def test_field_validation_modes(http):
    obj = configmap("fv", a="1")
    obj["spec"] = {"foo": 1}
    status, body, _ = await create(http, CM_URL, obj, fieldValidation="Strict")
    assert status == 400 and body["reason"] == "BadRequest"
    assert 'unknown field "spec"' in body["message"]
    status, body, warnings = await create(http, CM_URL, obj)  # Warn is the default
    assert status == 201 and "spec" not in body
    assert warnings == ['299 - "unknown field \\"spec\\""']
    obj["metadata"]["name"] = "fv2"
    status, body, warnings = await create(http, CM_URL, obj, fieldValidation="Ignore")
    assert status == 201 and "spec" not in body and warnings == []
    dup = b'{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"d","name":"d"}}'
    async with http.post(CM_URL, data=dup, headers=JSON, params={"fieldValidation": "Strict"}) as resp:
        assert resp.status == 400
        assert 'duplicate field "metadata.name"' in (await resp.json())["message"]


@pytest.mark.parametrize(("body", "headers", "code"), [
    (b"{not json", JSON, 400),
    (b"[1,2]", JSON, 400),
    (b"", JSON, 400),
    (b'{"apiVersion":"apps/v1","kind":"ConfigMap","metadata":{"name":"a"}}', JSON, 400),
    (b'{"apiVersion":"v1","kind":"Secret","metadata":{"name":"a"}}', JSON, 400),
    (b'{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"a","namespace":"other"}}', JSON, 400),
    (b'{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"Bad_Name"}}', JSON, 422),
    (b'{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":".."}}', JSON, 422),
    (b'{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"a"}}', {"Content-Type": "text/plain"}, 415),
])
async def test_bad_create_bodies(http, body, headers, code):
    async with http.post(CM_URL, data=body, headers=headers) as resp:
        assert resp.status == code, await resp.text()
        status = await resp.json()
    assert status["kind"] == "Status" and status["code"] == code
    async with http.get(CM_URL) as resp:
        assert (await resp.json())["items"] == []


async def test_too_large_body_is_413(http):
    big = configmap("big", blob="x" * (3 * 1024 * 1024 + 10))
    status, body, _ = await create(http, CM_URL, big)
    assert status == 413 and body["reason"] == "RequestEntityTooLarge"


async def test_unknown_paths_and_verbs(http):
    async with http.get("/api/v1/namespaces/default/nosuchthings") as resp:
        assert resp.status == 404
        assert (await resp.json())["message"] == "the server could not find the requested resource"
    async with http.get("/apis/nosuch.group/v1/things") as resp:
        assert resp.status == 404
    async with http.get("/nowhere") as resp:
        assert resp.status == 404 and (await resp.json())["kind"] == "Status"
    async with http.post("/api/v1/configmaps", data=b"{}", headers=JSON) as resp:
        assert resp.status == 405 and (await resp.json())["reason"] == "MethodNotAllowed"
    async with http.post("/api/v1/namespaces/nosuch/configmaps", data=orjson.dumps(configmap("a")),
                         headers=JSON) as resp:
        assert resp.status == 404


async def test_patch_types(http):
    await create(http, CM_URL, configmap("p", a="1"))
    cases = [
        ("application/merge-patch+json", {"data": {"b": "2"}}, {"a": "1", "b": "2"}),
        ("application/strategic-merge-patch+json", {"data": {"a": None}}, {"b": "2"}),
        ("application/json-patch+json", [{"op": "add", "path": "/data/c", "value": "3"}], {"b": "2", "c": "3"}),
    ]
    for content_type, patch, expected in cases:
        async with http.patch(f"{CM_URL}/p", data=orjson.dumps(patch),
                              headers={"Content-Type": content_type}) as resp:
            assert resp.status == 200, await resp.text()
            assert (await resp.json())["data"] == expected
    async with http.patch(f"{CM_URL}/p", data=b"{}", headers=JSON) as resp:
        assert resp.status == 415


async def test_dry_run_changes_nothing(http):
    status, body, _ = await create(http, CM_URL, configmap("dry"), dryRun="All")
    assert status == 201 and body["metadata"]["name"] == "dry"
    async with http.get(f"{CM_URL}/dry") as resp:
        assert resp.status == 404


async def test_deletecollection_with_label_selector(http):
    for name, tier in (("a", "web"), ("b", "web"), ("c", "db")):
        obj = configmap(name)
        obj["metadata"]["labels"] = {"tier": tier}
        await create(http, CM_URL, obj)
    async with http.delete(CM_URL, params={"labelSelector": "tier=web"}) as resp:
        assert resp.status == 200
        body = await resp.json()
    assert body["kind"] == "ConfigMapList"
    assert sorted(i["metadata"]["name"] for i in body["items"]) == ["a", "b"]
    async with http.get(CM_URL) as resp:
        assert [i["metadata"]["name"] for i in (await resp.json())["items"]] == ["c"]


async def test_finalizers_hold_an_object_and_delete_returns_it(http):
    obj = configmap("held")
    obj["metadata"]["finalizers"] = ["example.com/hold"]
    await create(http, CM_URL, obj)
    async with http.delete(f"{CM_URL}/held") as resp:
        assert resp.status == 200
        body = await resp.json()
    assert body["kind"] == "ConfigMap" and body["metadata"]["deletionTimestamp"]
    patch = orjson.dumps({"metadata": {"finalizers": None}})
    async with http.patch(f"{CM_URL}/held", data=patch,
                          headers={"Content-Type": "application/merge-patch+json"}) as resp:
        assert resp.status == 200
    async with http.get(f"{CM_URL}/held") as resp:
        assert resp.status == 404


async def test_scale_and_status_subresources(http):
    deployment = {
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "web"}},
                 "template": {"metadata": {"labels": {"app": "web"}},
                              "spec": {"containers": [{"name": "c", "image": "nginx"}]}}},
    }
    url = "/apis/apps/v1/namespaces/default/deployments"
    status, body, _ = await create(http, url, deployment)
    assert status == 201, body
    async with http.get(f"{url}/web/scale") as resp:
        scale = await resp.json()
    assert scale["kind"] == "Scale" and scale["spec"]["replicas"] == 1
    scale["spec"]["replicas"] = 3
    async with http.put(f"{url}/web/scale", data=orjson.dumps(scale), headers=JSON) as resp:
        assert resp.status == 200, await resp.text()
    async with http.get(f"{url}/web") as resp:
        assert (await resp.json())["spec"]["replicas"] == 3
    patch = orjson.dumps({"status": {"replicas": 3}})
    async with http.patch(f"{url}/web/status", data=patch,
                          headers={"Content-Type": "application/merge-patch+json"}) as resp:
        assert resp.status == 200, await resp.text()
        assert (await resp.json())["status"]["replicas"] == 3


async def test_default_namespaces_exist(http):
    async with http.get("/api/v1/namespaces") as resp:
        names = {i["metadata"]["name"] for i in (await resp.json())["items"]}
    assert {"default", "kube-system", "kube-public", "kube-node-lease"} <= names


async def test_the_cluster_dns_service_exists_on_the_tenth_address(http):
    async with http.get("/api/v1/namespaces/kube-system/services/kube-dns") as resp:
        assert resp.status == 200, await resp.text()
        svc = await resp.json()
    assert svc["spec"]["clusterIP"] == "10.43.0.10"  # the default service CIDR 10.43.0.0/16
    assert "selector" not in svc["spec"]  # each node's DNS server publishes its own slice
    assert svc["spec"]["internalTrafficPolicy"] == "Local"  # pods ask their own node's server
    assert [(p["name"], p["port"], p["protocol"]) for p in svc["spec"]["ports"]] == [
        ("dns", 53, "UDP"), ("dns-tcp", 53, "TCP"), ("metrics", 9153, "TCP")]


async def test_namespace_delete_and_finalize(http):
    ns = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "doomed"}}
    assert (await create(http, "/api/v1/namespaces", ns))[0] == 201
    async with http.delete("/api/v1/namespaces/doomed") as resp:
        assert resp.status == 200
        body = await resp.json()
    assert body["kind"] == "Namespace" and body["status"]["phase"] == "Terminating"
    # writes into a terminating namespace are refused
    status, body, _ = await create(http, "/api/v1/namespaces/doomed/configmaps", configmap("late"))
    assert status == 403, body
    async with http.get("/api/v1/namespaces/doomed") as resp:
        current = await resp.json()
    current["spec"]["finalizers"] = []
    async with http.put("/api/v1/namespaces/doomed/finalize", data=orjson.dumps(current), headers=JSON) as resp:
        assert resp.status == 200, await resp.text()
    async with http.get("/api/v1/namespaces/doomed") as resp:
        assert resp.status == 404


async def test_get_as_yaml_and_not_acceptable(http):
    await create(http, CM_URL, configmap("yml", a="1"))
    async with http.get(f"{CM_URL}/yml", headers={"Accept": "application/yaml"}) as resp:
        assert resp.status == 200 and resp.headers["Content-Type"].startswith("application/yaml")
        assert "name: yml" in await resp.text()
    async with http.get(f"{CM_URL}/yml", headers={"Accept": "application/vnd.kubernetes.protobuf"}) as resp:
        assert resp.status == 406 and (await resp.json())["reason"] == "NotAcceptable"


async def test_pods_delete_returns_the_pod_and_binding(http):
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
           "spec": {"containers": [{"name": "c", "image": "busybox"}]}}
    status, body, _ = await create(http, "/api/v1/namespaces/default/pods", pod)
    assert status == 201, body
    binding = {"apiVersion": "v1", "kind": "Binding", "metadata": {"name": "p"},
               "target": {"apiVersion": "v1", "kind": "Node", "name": "node-1"}}
    status, body, _ = await create(http, "/api/v1/namespaces/default/pods/p/binding", binding)
    assert status == 201 and body["status"] == "Success", body
    async with http.get("/api/v1/namespaces/default/pods/p") as resp:
        assert (await resp.json())["spec"]["nodeName"] == "node-1"
    status, body, _ = await create(http, "/api/v1/namespaces/default/pods/p/binding", binding)
    assert status == 409
    async with http.delete("/api/v1/namespaces/default/pods/p", params={"gracePeriodSeconds": "0"}) as resp:
        assert resp.status == 200
        assert (await resp.json())["kind"] == "Pod"
