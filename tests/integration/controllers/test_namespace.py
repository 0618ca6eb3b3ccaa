"""The namespace controller against a real API server: deleting a namespace empties it
(pods, configmaps, services, deployments, secrets ...), removes the kubernetes finalizer and
the namespace goes; its conditions say what still blocks it."""

from __future__ import annotations

from typing import Any

from pybernetes.client.errors import NotFound

NSS = "/v1/namespaces"
OPTIONS = {"namespace_deletion_grace_period": 0, "namespace_finalizer_estimate": 1, "gc_discovery_interval": 2.0}


async def create_namespace(client: Any, name: str, finalizers: list[str] | None = None) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name}
    if finalizers:
        meta["finalizers"] = finalizers
    return await client.create(NSS, {"apiVersion": "v1", "kind": "Namespace", "metadata": meta})


async def fill(client: Any, ns: str) -> list[tuple[str, str]]:
    pod_spec = {"containers": [{"name": "c", "image": "busybox"}]}
    labels = {"app": "web"}
    objects = [
        ("/v1/configmaps", {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cfg"}, "data": {"a": "b"}}),
        ("/v1/secrets", {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "sec"}, "stringData": {"a": "b"}}),
        ("/v1/pods", {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p1"}, "spec": pod_spec}),
        ("/v1/pods", {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p2"}, "spec": pod_spec}),
        ("/v1/services", {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "svc"},
                          "spec": {"selector": labels, "ports": [{"port": 80}]}}),
        ("/v1/serviceaccounts", {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "robot"}}),
        ("apps/v1/deployments", {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
                                 "spec": {"replicas": 1, "selector": {"matchLabels": labels},
                                          "template": {"metadata": {"labels": labels}, "spec": pod_spec}}}),
        ("batch/v1/jobs", {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "once"},
                           "spec": {"template": {"spec": {**pod_spec, "restartPolicy": "Never"}}}}),
    ]
    out = []
    for res, obj in objects:
        await client.create(res, obj, ns)
        out.append((res, obj["metadata"]["name"]))
    return out


async def exists(client: Any, res: str, name: str, ns: str | None = None) -> bool:
    try:
        await client.get(res, name, ns)
    except NotFound:
        return False
    return True


def namespace_gone(client: Any, name: str) -> Any:
    async def check() -> bool:
        return not await exists(client, NSS, name)
    return check


def conditions_of(ns: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["type"]: c for c in (ns.get("status") or {}).get("conditions") or []}


async def test_deleting_a_namespace_empties_it_and_it_goes(cluster: Any) -> None:
    client = cluster.client
    await cluster.start("namespace", options=OPTIONS)
    await create_namespace(client, "doomed")
    await create_namespace(client, "kept")
    content = await fill(client, "doomed")
    kept = await fill(client, "kept")
    ns = await client.delete(NSS, "doomed")
    assert ns["status"]["phase"] == "Terminating"
    await cluster.wait_for(namespace_gone(client, "doomed"), message="the namespace removed")
    for res, name in content:
        assert not await exists(client, res, name, "doomed"), (res, name)
    for res, name in kept:
        assert await exists(client, res, name, "kept"), (res, name)


async def test_conditions_explain_what_blocks_deletion(cluster: Any) -> None:
    client = cluster.client
    await cluster.start("namespace", options=OPTIONS)
    await create_namespace(client, "stuck")
    await client.create("/v1/configmaps", {"apiVersion": "v1", "kind": "ConfigMap",
                                           "metadata": {"name": "held", "finalizers": ["example.com/hold"]}}, "stuck")
    await client.create("/v1/secrets", {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}}, "stuck")
    await client.delete(NSS, "stuck")

    async def blocked() -> dict[str, dict[str, Any]] | None:
        conds = conditions_of(await client.get(NSS, "stuck"))
        remaining = conds.get("NamespaceContentRemaining")
        return conds if remaining and remaining["status"] == "True" else None

    conds = await cluster.wait_for(blocked, message="NamespaceContentRemaining true")
    assert conds["NamespaceContentRemaining"]["reason"] == "SomeResourcesRemain"
    assert conds["NamespaceContentRemaining"]["message"] == \
        "Some resources are remaining: configmaps. has 1 resource instances"
    assert conds["NamespaceFinalizersRemaining"]["status"] == "True"
    assert conds["NamespaceFinalizersRemaining"]["reason"] == "SomeFinalizersRemain"
    assert conds["NamespaceFinalizersRemaining"]["message"] == \
        "Some content in the namespace has finalizers remaining: example.com/hold in 1 resource instances"
    for ok in ("NamespaceDeletionDiscoveryFailure", "NamespaceDeletionGroupVersionParsingFailure",
               "NamespaceDeletionContentFailure"):
        assert conds[ok]["status"] == "False", conds[ok]
    assert conds["NamespaceDeletionContentFailure"]["reason"] == "ContentDeleted"
    assert not await exists(client, "/v1/secrets", "s", "stuck")
    held = await client.get("/v1/configmaps", "held", "stuck")
    assert held["metadata"]["deletionTimestamp"]
    ns = await client.get(NSS, "stuck")
    assert ns["status"]["phase"] == "Terminating"
    assert ns["spec"]["finalizers"] == ["kubernetes"]
    # the finalizer's owner lets go: the namespace finishes
    await client.patch("/v1/configmaps", "held", {"metadata": {"finalizers": None}}, "stuck")
    await cluster.wait_for(namespace_gone(client, "stuck"), message="the namespace removed once unblocked")


async def test_gracefully_terminating_pods_are_waited_for(cluster: Any) -> None:
    client = cluster.client
    await cluster.start("namespace", options=OPTIONS)
    await create_namespace(client, "pods")
    await cluster.node.create_node("node-1")
    await client.create("/v1/pods", {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "slow"},
                                     "spec": {"nodeName": "node-1", "terminationGracePeriodSeconds": 3,
                                              "containers": [{"name": "c", "image": "busybox"}]}}, "pods")
    await client.delete(NSS, "pods")

    async def pod_terminating() -> bool:
        try:
            pod = await client.get("/v1/pods", "slow", "pods")
        except NotFound:
            return False
        return bool(pod["metadata"].get("deletionTimestamp"))

    await cluster.wait_for(pod_terminating, message="the pod deleted gracefully")
    ns = await client.get(NSS, "pods")
    assert ns["spec"]["finalizers"] == ["kubernetes"]  # not finalized while the pod terminates
    cluster.node.auto_run("pods")  # the kubelet finishes the pod
    await cluster.wait_for(namespace_gone(client, "pods"), message="the namespace removed after its pods")


async def test_other_namespace_finalizers_keep_it(cluster: Any) -> None:
    client = cluster.client
    await cluster.start("namespace", options=OPTIONS)
    await create_namespace(client, "extra", finalizers=["example.com/ns"])
    await client.create("/v1/configmaps", {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}},
                        "extra")
    await client.delete(NSS, "extra")

    async def finalized() -> bool:
        ns = await client.get(NSS, "extra")
        return not (ns.get("spec") or {}).get("finalizers")

    await cluster.wait_for(finalized, message="the kubernetes finalizer removed")
    assert not await exists(client, "/v1/configmaps", "c", "extra")
    assert await exists(client, NSS, "extra")
    await client.patch(NSS, "extra", {"metadata": {"finalizers": None}})
    await cluster.wait_for(namespace_gone(client, "extra"), message="the namespace removed")


async def test_namespace_deletion_with_garbage_collector(cluster: Any) -> None:
    """Both controllers: owned content goes too, and nothing is left behind."""
    client = cluster.client
    await cluster.start("namespace", "garbagecollector", options=OPTIONS)
    await create_namespace(client, "owned")
    owner = await client.create("/v1/configmaps", {"apiVersion": "v1", "kind": "ConfigMap",
                                                   "metadata": {"name": "owner"}}, "owned")
    ref = {"apiVersion": "v1", "kind": "ConfigMap", "name": "owner", "uid": owner["metadata"]["uid"],
           "blockOwnerDeletion": True}
    await client.create("/v1/secrets", {"apiVersion": "v1", "kind": "Secret",
                                        "metadata": {"name": "dep", "ownerReferences": [ref]}}, "owned")
    await client.delete(NSS, "owned")
    await cluster.wait_for(namespace_gone(client, "owned"), message="the namespace removed")
    assert not await exists(client, "/v1/secrets", "dep", "owned")
