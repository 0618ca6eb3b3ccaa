"""Discovery (/version, /api, /apis, resource lists) and health endpoints over real HTTP."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from kubectl_cli import kubectl_in_thread, needs_kubectl

from pybernetes.api.registry import Registry
from pybernetes.api.resource import SCALE, ResourceDef, Subresource, status_of
from pybernetes.apiserver import discovery, health

AGGREGATED = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"
KUBECTL_DISCOVERY = (
    "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,"
    "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList,application/json"
)


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
                categories=("all",),
                subresources=(
                    status_of("Pod"),
                    Subresource("log", "Pod", verbs=("get",)),
                    Subresource("eviction", "Eviction", "policy", "v1", verbs=("create",)),
                ),
            ),
            ResourceDef("", "v1", "namespaces", "Namespace", "namespace", False, short_names=("ns",)),
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
            ResourceDef(
                "coordination.k8s.io",
                "v1",
                "leases",
                "Lease",
                "lease",
                True,
                verbs=("create", "delete", "get", "list", "patch", "update", "watch"),
            ),
            ResourceDef(
                "autoscaling",
                "v1",
                "horizontalpodautoscalers",
                "HorizontalPodAutoscaler",
                "horizontalpodautoscaler",
                True,
                short_names=("hpa",),
            ),
            ResourceDef(
                "autoscaling",
                "v2",
                "horizontalpodautoscalers",
                "HorizontalPodAutoscaler",
                "horizontalpodautoscaler",
                True,
                short_names=("hpa",),
            ),
        ]
    )


class Health:
    ready = True

    def storage_ok(self) -> bool:
        return self.ready

    async def synced(self) -> bool:
        return True


@pytest.fixture
def checks() -> Health:
    return Health()


@pytest.fixture
async def client(checks: Health) -> AsyncIterator[TestClient]:
    app = web.Application()
    discovery.add_routes(app, sample_registry())
    health.add_routes(
        app, [("etcd", checks.storage_ok), ("informer-sync", checks.synced)], readyz_only=("informer-sync",)
    )
    async with TestClient(TestServer(app, host="127.0.0.1")) as test_client:
        yield test_client


# -- /version ---------------------------------------------------------------------------------


async def test_version(client: TestClient) -> None:
    resp = await client.get("/version", params={"timeout": "5s"})
    assert resp.status == 200
    info = await resp.json()
    assert info["major"] == "1" and info["minor"] == "32"
    assert re.fullmatch(r"v1\.32\.\d+(\+[0-9A-Za-z.-]+)?", info["gitVersion"])
    for key in ("gitCommit", "gitTreeState", "buildDate", "goVersion", "compiler", "platform"):
        assert key in info
    assert "/" in info["platform"]


# -- aggregated discovery -----------------------------------------------------------------------


async def test_aggregated_api_for_kubectl(client: TestClient) -> None:
    resp = await client.get("/api", headers={"Accept": KUBECTL_DISCOVERY})
    assert resp.status == 200
    assert resp.headers["Content-Type"] == AGGREGATED
    doc = await resp.json()
    assert doc["kind"] == "APIGroupDiscoveryList"
    assert doc["apiVersion"] == "apidiscovery.k8s.io/v2"
    [core] = doc["items"]
    assert core["metadata"].get("name", "") == ""
    [v1] = core["versions"]
    assert v1["version"] == "v1" and v1["freshness"] == "Current"
    assert [r["resource"] for r in v1["resources"]] == ["namespaces", "pods"]
    pods = v1["resources"][1]
    assert pods["responseKind"] == {"group": "", "version": "v1", "kind": "Pod"}
    assert pods["scope"] == "Namespaced"
    assert pods["singularResource"] == "pod"
    assert pods["shortNames"] == ["po"] and pods["categories"] == ["all"]
    assert "watch" in pods["verbs"]
    subs = {s["subresource"]: s for s in pods["subresources"]}
    assert subs["eviction"]["responseKind"] == {"group": "policy", "version": "v1", "kind": "Eviction"}
    assert subs["log"]["verbs"] == ["get"]
    namespaces = v1["resources"][0]
    assert namespaces["scope"] == "Cluster"
    assert "categories" not in namespaces and "subresources" not in namespaces


async def test_aggregated_apis(client: TestClient) -> None:
    resp = await client.get("/apis", headers={"Accept": KUBECTL_DISCOVERY})
    assert resp.headers["Content-Type"] == AGGREGATED
    doc = await resp.json()
    groups = {item["metadata"]["name"]: item for item in doc["items"]}
    assert list(groups) == ["apps", "coordination.k8s.io", "autoscaling"]
    # Preferred version first: v2 before v1.
    assert [v["version"] for v in groups["autoscaling"]["versions"]] == ["v2", "v1"]
    [deployments] = groups["apps"]["versions"][0]["resources"]
    scale = next(s for s in deployments["subresources"] if s["subresource"] == "scale")
    assert scale["responseKind"] == {"group": "autoscaling", "version": "v1", "kind": "Scale"}
    leases = groups["coordination.k8s.io"]["versions"][0]["resources"][0]
    assert "deletecollection" not in leases["verbs"]


async def test_aggregated_v2beta1_and_etag(client: TestClient) -> None:
    accept = "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList"
    resp = await client.get("/apis", headers={"Accept": accept})
    assert resp.headers["Content-Type"].endswith("v=v2beta1;as=APIGroupDiscoveryList")
    assert (await resp.json())["apiVersion"] == "apidiscovery.k8s.io/v2beta1"
    etag = resp.headers["ETag"]
    again = await client.get("/apis", headers={"Accept": accept, "If-None-Match": etag})
    assert again.status == 304
    assert await again.read() == b""
    v2 = await client.get("/apis", headers={"Accept": AGGREGATED})
    assert v2.headers["ETag"] != etag


async def test_protobuf_only_discovery_is_not_acceptable(client: TestClient) -> None:
    resp = await client.get("/apis", headers={"Accept": "application/vnd.kubernetes.protobuf"})
    assert resp.status == 406
    body = await resp.json()
    assert body["kind"] == "Status" and body["reason"] == "NotAcceptable"


# -- legacy discovery --------------------------------------------------------------------------


async def test_legacy_api_and_apis(client: TestClient) -> None:
    resp = await client.get("/api")
    assert resp.headers["Content-Type"].startswith("application/json")
    versions = await resp.json()
    assert versions["kind"] == "APIVersions" and versions["versions"] == ["v1"]
    assert versions["serverAddressByClientCIDRs"][0]["clientCIDR"] == "0.0.0.0/0"
    groups = await (await client.get("/apis", headers={"Accept": "application/json"})).json()
    assert groups["kind"] == "APIGroupList"
    by_name = {g["name"]: g for g in groups["groups"]}
    assert set(by_name) == {"apps", "coordination.k8s.io", "autoscaling"}
    assert by_name["autoscaling"]["preferredVersion"] == {"groupVersion": "autoscaling/v2", "version": "v2"}
    assert by_name["apps"]["versions"] == [{"groupVersion": "apps/v1", "version": "v1"}]


async def test_resource_lists(client: TestClient) -> None:
    core = await (await client.get("/api/v1")).json()
    assert core["kind"] == "APIResourceList" and core["groupVersion"] == "v1"
    names = [r["name"] for r in core["resources"]]
    assert names == ["namespaces", "pods", "pods/eviction", "pods/log", "pods/status"]
    pods = core["resources"][1]
    assert pods["singularName"] == "pod" and pods["namespaced"] is True and pods["kind"] == "Pod"
    assert pods["shortNames"] == ["po"] and pods["storageVersionHash"]
    eviction = core["resources"][2]
    assert (eviction["group"], eviction["version"], eviction["kind"]) == ("policy", "v1", "Eviction")
    assert eviction["verbs"] == ["create"] and eviction["singularName"] == ""
    assert "group" not in core["resources"][4]
    apps = await (await client.get("/apis/apps/v1")).json()
    assert apps["groupVersion"] == "apps/v1" and apps["apiVersion"] == "v1"
    scale = next(r for r in apps["resources"] if r["name"] == "deployments/scale")
    assert (scale["group"], scale["kind"]) == ("autoscaling", "Scale")
    group = await (await client.get("/apis/autoscaling")).json()
    assert group["kind"] == "APIGroup" and group["name"] == "autoscaling"
    assert [v["version"] for v in group["versions"]] == ["v2", "v1"]


@pytest.mark.parametrize("path", ["/apis/nope", "/apis/apps/v9", "/api/v2", "/apis/nope/v1"])
async def test_unknown_group_or_version_is_a_404_status(client: TestClient, path: str) -> None:
    resp = await client.get(path)
    assert resp.status == 404
    body = await resp.json()
    assert (body["kind"], body["reason"], body["code"]) == ("Status", "NotFound", 404)


# -- health ------------------------------------------------------------------------------------


async def test_health_ok_and_verbose(client: TestClient) -> None:
    for endpoint in ("/healthz", "/livez", "/readyz"):
        resp = await client.get(endpoint)
        assert resp.status == 200 and await resp.text() == "ok"
        assert resp.headers["Content-Type"].startswith("text/plain")
    text = await (await client.get("/readyz", params={"verbose": ""})).text()
    assert text.splitlines() == ["[+]ping ok", "[+]etcd ok", "[+]informer-sync ok", "readyz check passed"]
    live = await (await client.get("/livez?verbose=1")).text()
    assert "informer-sync" not in live and live.endswith("livez check passed\n")


async def test_health_failure_and_per_check_paths(client: TestClient, checks: Health) -> None:
    checks.ready = False
    resp = await client.get("/readyz")
    assert resp.status == 500
    text = await resp.text()
    assert "[-]etcd failed: reason withheld" in text and "[+]ping ok" in text
    assert text.endswith("readyz check failed\n")
    one = await client.get("/readyz/etcd")
    assert one.status == 500 and "internal server error" in await one.text()
    ping = await client.get("/readyz/ping")
    assert ping.status == 200 and await ping.text() == "ok"
    excluded = await client.get("/readyz", params={"exclude": "etcd", "verbose": "true"})
    assert excluded.status == 200
    assert "[+]etcd excluded: ok" in await excluded.text()
    assert (await client.get("/readyz/nosuch")).status == 404
    checks.ready = True
    assert (await client.get("/healthz")).status == 200


async def test_a_raising_check_fails_without_crashing() -> None:
    def broken() -> bool:
        raise RuntimeError("store gone")

    app = web.Application()
    health.add_routes(app, [("etcd", broken)])
    async with TestClient(TestServer(app, host="127.0.0.1")) as test_client:
        resp = await test_client.get("/healthz/etcd")
        assert resp.status == 500
        assert "store gone" in await resp.text()
        assert (await test_client.get("/healthz")).status == 500


# -- the real kubectl --------------------------------------------------------------------------


@needs_kubectl
async def test_kubectl_api_resources_and_version(client: TestClient, tmp_path: Path) -> None:
    server = str(client.make_url("")).rstrip("/")
    result = await kubectl_in_thread(server, tmp_path, "api-resources", "--no-headers")
    assert result.returncode == 0, result.stderr
    rows = [line.split() for line in result.stdout.splitlines()]
    assert ["deployments", "deploy", "apps/v1", "true", "Deployment"] in rows
    assert ["namespaces", "ns", "v1", "false", "Namespace"] in rows
    assert ["leases", "coordination.k8s.io/v1", "true", "Lease"] in rows
    version = await kubectl_in_thread(server, tmp_path, "version")
    assert "Server Version: v1.32." in version.stdout, version.stderr

