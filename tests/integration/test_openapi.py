"""OpenAPI v3: schema conversion, per-group-version documents, caching, and real kubectl."""

from __future__ import annotations

import json
import subprocess
from collections.abc import AsyncIterator
from functools import cache
from pathlib import Path
from typing import Any

import kubernetes_validate
import orjson
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from kubectl_cli import kubectl_in_thread, needs_kubectl

from pybernetes.api.registry import Registry
from pybernetes.api.resource import SCALE, ResourceDef, Subresource, status_of
from pybernetes.apiserver import discovery, openapi
from pybernetes.apiserver.openapi import convert_definitions, convert_schema, reachable

META = "io.k8s.apimachinery.pkg.apis.meta.v1"
DEPLOYMENT_ITEM = "/apis/apps/v1/namespaces/{namespace}/deployments/{name}"


@cache
def upstream_definitions() -> dict[str, Any]:
    path = (
        Path(kubernetes_validate.__file__).parent / "kubernetes-json-schema/v1.32.0-local/_definitions.json"
    )
    return json.loads(path.read_text())["$defs"]


def sample_registry() -> Registry:
    return Registry(
        [
            ResourceDef(
                "",
                "v1",
                "pods",
                "Pod",
                "pod",
                True,
                short_names=("po",),
                subresources=(
                    status_of("Pod"),
                    Subresource("log", "Pod", verbs=("get",)),
                    Subresource("exec", "PodExecOptions", verbs=("create", "get")),
                    Subresource("binding", "Binding", verbs=("create",)),
                ),
            ),
            ResourceDef(
                "",
                "v1",
                "namespaces",
                "Namespace",
                "namespace",
                False,
                short_names=("ns",),
                subresources=(status_of("Namespace"),),
            ),
            ResourceDef(
                "",
                "v1",
                "componentstatuses",
                "ComponentStatus",
                "componentstatus",
                False,
                verbs=("get", "list"),
            ),
            ResourceDef(
                "apps",
                "v1",
                "deployments",
                "Deployment",
                "deployment",
                True,
                short_names=("deploy",),
                categories=("all",),
                subresources=(status_of("Deployment", "apps"), SCALE),
            ),
            ResourceDef("rbac.authorization.k8s.io", "v1", "roles", "Role", "role", True),
        ]
    )


@pytest.fixture
async def client() -> AsyncIterator[TestClient]:
    app = web.Application()
    discovery.add_routes(app, sample_registry())
    openapi.add_routes(app, sample_registry(), upstream_definitions())
    async with TestClient(TestServer(app, host="127.0.0.1")) as test_client:
        yield test_client


async def fetch_doc(client: TestClient, key: str) -> dict[str, Any]:
    index = await (await client.get("/openapi/v3")).json()
    resp = await client.get(index["paths"][key]["serverRelativeURL"])
    assert resp.status == 200
    return await resp.json()


# -- conversion (pure) -------------------------------------------------------------------------


def test_convert_schema_to_openapi_30() -> None:
    schema = {
        "type": ["object", "null"],
        "properties": {
            "kind": {"type": ["string", "null"], "enum": ["Deployment"]},
            "spec": {"$ref": "#/$defs/io.k8s.api.apps.v1.DeploymentSpec", "description": "d"},
            "items": {"type": "array", "items": {"$ref": "#/$defs/X"}},
        },
    }
    out = convert_schema(schema)
    assert out["type"] == "object"
    assert out["properties"]["kind"] == {"type": "string"}
    assert out["properties"]["spec"] == {
        "allOf": [{"$ref": "#/components/schemas/io.k8s.api.apps.v1.DeploymentSpec"}],
        "description": "d",
    }
    assert out["properties"]["items"]["items"] == {"$ref": "#/components/schemas/X"}
    assert schema["properties"]["kind"]["enum"] == ["Deployment"]  # input untouched


def test_converted_upstream_definitions_are_openapi_30() -> None:
    schemas = convert_definitions(upstream_definitions())
    text = orjson.dumps(schemas).decode()
    assert "#/$defs/" not in text
    assert '"null"' not in text
    int_or_string = schemas["io.k8s.apimachinery.pkg.util.intstr.IntOrString"]
    assert int_or_string["format"] == "int-or-string"
    assert {s["type"] for s in int_or_string["oneOf"]} == {"string", "integer"}
    containers = schemas["io.k8s.api.core.v1.PodSpec"]["properties"]["containers"]
    assert containers["x-kubernetes-patch-merge-key"] == "name"
    assert containers["x-kubernetes-patch-strategy"] == "merge"
    strategy = schemas["io.k8s.api.apps.v1.DeploymentSpec"]["properties"]["strategy"]
    assert strategy["x-kubernetes-patch-strategy"] == "retainKeys"
    assert strategy["allOf"] == [{"$ref": "#/components/schemas/io.k8s.api.apps.v1.DeploymentStrategy"}]


def test_reachable_follows_refs_transitively() -> None:
    schemas = convert_definitions(upstream_definitions())
    closure = reachable(schemas, ["io.k8s.api.apps.v1.Deployment"])
    assert "io.k8s.api.core.v1.Container" in closure  # via spec.template.spec.containers
    assert "io.k8s.api.core.v1.Service" not in closure
    for schema in closure.values():
        for ref in openapi.refs_in(schema):
            assert ref in closure


# -- documents over HTTP -----------------------------------------------------------------------


async def test_index_lists_every_group_version_with_a_hash(client: TestClient) -> None:
    resp = await client.get("/openapi/v3", headers={"Accept": "application/json, */*"})
    assert resp.status == 200
    index = await resp.json()
    assert set(index["paths"]) == {"api/v1", "apis/apps/v1", "apis/rbac.authorization.k8s.io/v1"}
    url = index["paths"]["apis/apps/v1"]["serverRelativeURL"]
    assert url.startswith("/openapi/v3/apis/apps/v1?hash=")
    assert len(url.split("hash=")[1]) == 128
    assert resp.headers["ETag"]


async def test_document_caching_headers(client: TestClient) -> None:
    index = await (await client.get("/openapi/v3")).json()
    url = index["paths"]["api/v1"]["serverRelativeURL"]
    doc_hash = url.split("hash=")[1]
    pinned = await client.get(url)
    assert pinned.status == 200
    assert pinned.headers["Cache-Control"] == "public, immutable"
    assert "Expires" in pinned.headers
    assert pinned.headers["ETag"] == f'"{doc_hash}"'
    assert pinned.headers["Content-Type"].startswith("application/json")
    unpinned = await client.get("/openapi/v3/api/v1")
    assert unpinned.headers["Cache-Control"] == "no-cache, private"
    assert await unpinned.read() == await pinned.read()
    stale = await client.get("/openapi/v3/api/v1?hash=0123", allow_redirects=False)
    assert stale.status == 301
    assert stale.headers["Location"] == url
    not_modified = await client.get("/openapi/v3/api/v1", headers={"If-None-Match": f'"{doc_hash}"'})
    assert not_modified.status == 304
    assert (await client.get("/openapi/v3/apis/nope/v1")).status == 404
    protobuf = await client.get(
        "/openapi/v3/api/v1", headers={"Accept": "application/vnd.kubernetes.protobuf"}
    )
    assert protobuf.status == 406


async def test_hash_changes_with_the_document() -> None:
    defs = upstream_definitions()
    smaller = Registry(
        [r for r in sample_registry().all() if r.resource != "roles"]
        + [
            ResourceDef(
                "rbac.authorization.k8s.io", "v1", "roles", "Role", "role", True, verbs=("get", "list")
            ),
        ]
    )
    one = openapi.OpenAPIService(sample_registry(), defs)
    two = openapi.OpenAPIService(smaller, defs)
    key = "apis/rbac.authorization.k8s.io/v1"
    assert one.document(key).hash != two.document(key).hash
    assert one.document("apis/apps/v1").hash == two.document("apis/apps/v1").hash
    assert one.document(key) is one.document(key)  # built once, cached


async def test_deployment_operations_for_kubectl(client: TestClient) -> None:
    doc = await fetch_doc(client, "apis/apps/v1")
    assert doc["openapi"].startswith("3.0")
    item = doc["paths"][DEPLOYMENT_ITEM]
    assert set(item) == {"parameters", "get", "put", "patch", "delete"}
    patch = item["patch"]
    assert patch["x-kubernetes-action"] == "patch"
    assert patch["x-kubernetes-group-version-kind"] == {
        "group": "apps",
        "version": "v1",
        "kind": "Deployment",
    }
    assert patch["operationId"] == "patchAppsV1NamespacedDeployment"
    names = {p["name"] for p in patch["parameters"]}
    assert {"fieldValidation", "dryRun", "fieldManager", "force"} <= names
    assert "application/strategic-merge-patch+json" in patch["requestBody"]["content"]
    for op in (item["put"], doc["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments"]["post"]):
        assert "fieldValidation" in {p["name"] for p in op["parameters"]}
        body_ref = op["requestBody"]["content"]["*/*"]["schema"]["$ref"]
        assert body_ref == "#/components/schemas/io.k8s.api.apps.v1.Deployment"
    collection = doc["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments"]
    assert collection["get"]["x-kubernetes-action"] == "list"
    assert {"labelSelector", "limit", "continue", "watch"} <= {
        p["name"] for p in collection["get"]["parameters"]
    }
    assert collection["delete"]["x-kubernetes-action"] == "deletecollection"
    list_ref = collection["get"]["responses"]["200"]["content"]["application/json"]["schema"]["$ref"]
    assert list_ref.endswith("io.k8s.api.apps.v1.DeploymentList")
    assert doc["paths"]["/apis/apps/v1/deployments"]["get"]["operationId"] == (
        "listAppsV1DeploymentForAllNamespaces"
    )
    watch = doc["paths"]["/apis/apps/v1/watch/namespaces/{namespace}/deployments/{name}"]["get"]
    assert watch["x-kubernetes-action"] == "watch"
    scale = doc["paths"][DEPLOYMENT_ITEM + "/scale"]
    assert scale["patch"]["x-kubernetes-group-version-kind"] == {
        "group": "autoscaling",
        "version": "v1",
        "kind": "Scale",
    }
    assert "post" not in scale


async def test_document_schemas_are_closed_and_reachable_only(client: TestClient) -> None:
    doc = await fetch_doc(client, "apis/apps/v1")
    schemas = doc["components"]["schemas"]
    for name in (
        "io.k8s.api.apps.v1.Deployment",
        "io.k8s.api.apps.v1.DeploymentList",
        "io.k8s.api.autoscaling.v1.Scale",
        f"{META}.DeleteOptions",
        f"{META}.Status",
        f"{META}.Patch",
        f"{META}.WatchEvent",
    ):
        assert name in schemas
    assert "io.k8s.api.core.v1.Service" not in schemas
    text = orjson.dumps(doc).decode()
    assert "#/$defs/" not in text
    for ref in openapi.refs_in(doc):
        assert ref in schemas, ref
    gvks = schemas["io.k8s.api.apps.v1.Deployment"]["x-kubernetes-group-version-kind"]
    assert {"group": "apps", "kind": "Deployment", "version": "v1"} in gvks


async def test_core_document_scopes_verbs_and_subresources(client: TestClient) -> None:
    doc = await fetch_doc(client, "api/v1")
    paths = doc["paths"]
    assert "/api/v1/namespaces/{name}" in paths
    assert "/api/v1/namespaces/{namespace}/namespaces" not in paths
    assert paths["/api/v1/namespaces"]["post"]["operationId"] == "createCoreV1Namespace"
    assert paths["/api/v1/namespaces/{namespace}/pods/{name}"]["get"]["operationId"] == (
        "readCoreV1NamespacedPod"
    )
    # get/list only: no writes, no watch paths.
    statuses = paths["/api/v1/componentstatuses"]
    assert set(statuses) == {"parameters", "get"}
    assert set(paths["/api/v1/componentstatuses/{name}"]) == {"parameters", "get"}
    assert "/api/v1/watch/componentstatuses" not in paths
    exec_path = paths["/api/v1/namespaces/{namespace}/pods/{name}/exec"]
    assert exec_path["get"]["x-kubernetes-action"] == "connect"
    assert "command" in {p["name"] for p in exec_path["post"]["parameters"]}
    log = paths["/api/v1/namespaces/{namespace}/pods/{name}/log"]["get"]
    assert "follow" in {p["name"] for p in log["parameters"]}
    binding = paths["/api/v1/namespaces/{namespace}/pods/{name}/binding"]
    assert binding["post"]["x-kubernetes-group-version-kind"]["kind"] == "Binding"
    assert "io.k8s.api.core.v1.Binding" in doc["components"]["schemas"]
    rbac = await fetch_doc(client, "apis/rbac.authorization.k8s.io/v1")
    assert rbac["paths"]["/apis/rbac.authorization.k8s.io/v1/namespaces/{namespace}/roles"]["get"][
        "tags"
    ] == ["rbacAuthorization_v1"]


async def test_default_definitions_come_from_api_schemas() -> None:
    schemas_module = pytest.importorskip("pybernetes.api.schemas")
    service = openapi.OpenAPIService(sample_registry())
    doc = orjson.loads(service.document("apis/apps/v1").body)
    assert "io.k8s.api.apps.v1.Deployment" in doc["components"]["schemas"]
    assert len(schemas_module.schemas().definitions()) > 600


# -- the real kubectl --------------------------------------------------------------------------


class FakeDeployments:
    """Just enough of a deployments endpoint for kubectl create/apply to talk to."""

    def __init__(self) -> None:
        self.objects: dict[str, dict[str, Any]] = {}
        self.requests: list[tuple[str, str, str, bytes]] = []

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        self.requests.append((request.method, request.path_qs, request.content_type, body))
        name = request.match_info.get("name", "")
        if request.method == "POST":
            obj = orjson.loads(body)
            obj["metadata"].update(namespace="default", resourceVersion="1", uid="uid-1")
            self.objects[obj["metadata"]["name"]] = obj
            return web.json_response(obj, status=201)
        if name not in self.objects:
            status = {
                "kind": "Status",
                "apiVersion": "v1",
                "status": "Failure",
                "reason": "NotFound",
                "message": f'deployments.apps "{name}" not found',
                "code": 404,
                "details": {"name": name, "group": "apps", "kind": "deployments"},
            }
            return web.json_response(status, status=404)
        return web.json_response(self.objects[name])


DEPLOYMENT = """\
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: default}
spec:
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers: [CONTAINERS]
"""


@needs_kubectl
async def test_kubectl_validation_apply_and_explain(tmp_path: Path) -> None:
    fake = FakeDeployments()
    app = web.Application()
    discovery.add_routes(app, sample_registry())
    openapi.add_routes(app, sample_registry(), upstream_definitions())
    app.router.add_post("/apis/apps/v1/namespaces/default/deployments", fake.handle)
    app.router.add_route("*", "/apis/apps/v1/namespaces/default/deployments/{name}", fake.handle)
    async with TestServer(app, host="127.0.0.1") as server:
        url = str(server.make_url("")).rstrip("/")

        async def kubectl(*args: str) -> subprocess.CompletedProcess[str]:
            return await kubectl_in_thread(url, tmp_path, *args)

        first = tmp_path / "first.yaml"
        first.write_text(DEPLOYMENT.replace("CONTAINERS", "{name: app, image: nginx}"))
        created = await kubectl("apply", "-f", str(first))
        assert created.returncode == 0, created.stderr
        post = next(r for r in fake.requests if r[0] == "POST")
        assert "fieldValidation=Strict" in post[1]  # kubectl found the parameter in our document

        second = tmp_path / "second.yaml"
        second.write_text(
            DEPLOYMENT.replace("CONTAINERS", "{name: app, image: nginx:2}, {name: side, image: busybox}")
        )
        applied = await kubectl("apply", "-f", str(second))
        assert applied.returncode == 0, applied.stderr
        assert "openapi" not in applied.stderr  # no "error calculating patch from openapi v3 spec"
        method, path_qs, content_type, body = fake.requests[-1]
        assert method == "PATCH" and content_type == "application/strategic-merge-patch+json"
        assert "fieldValidation=Strict" in path_qs
        patch = orjson.loads(body)
        pod_spec = patch["spec"]["template"]["spec"]
        assert pod_spec["$setElementOrder/containers"] == [{"name": "app"}, {"name": "side"}]

        explained = await kubectl("explain", "deployment.spec.strategy")
        assert explained.returncode == 0, explained.stderr
        assert "KIND:       Deployment" in explained.stdout
        assert "rollingUpdate" in explained.stdout


def test_every_builtin_kind_has_its_schema_in_its_document() -> None:
    from pybernetes.api.registry import builtin_registry

    registry = builtin_registry()
    service = openapi.OpenAPIService(registry, upstream_definitions())
    missing = []
    for res in registry.all():
        key = openapi.gv_path_key(res.group, res.version)
        doc = orjson.loads(service.document(key).body)
        kinds = {
            (gvk["group"], gvk["version"], gvk["kind"])
            for schema in doc["components"]["schemas"].values()
            for gvk in schema.get("x-kubernetes-group-version-kind") or ()
        }
        wanted = [(res.group, res.version, res.kind), (res.group, res.version, res.list_kind)]
        wanted += [(s.group, s.version, s.kind) for s in res.subresources if s.name not in CONNECT]
        missing += [f"{res.group_resource}: {gvk}" for gvk in wanted if gvk not in kinds]
    assert not missing
    assert set(json.loads(service.index().body)["paths"]) == {
        openapi.gv_path_key(g, v) for g, v in registry.group_versions()
    }


CONNECT = ("attach", "exec", "portforward", "proxy")
