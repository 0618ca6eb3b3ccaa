"""The garbage collector against a real API server: Background, Foreground and Orphan
propagation with a ConfigMap owning a ConfigMap, a Secret and a Pod (no other controller
involved), dangling references, blockOwnerDeletion, and collection after a restart."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from kubectl_cli import kubectl_in_thread, needs_kubectl

from pybernetes.client.errors import NotFound

CM, SECRET, POD = "/v1/configmaps", "/v1/secrets", "/v1/pods"
NS = "default"
OPTIONS = {"gc_discovery_interval": 2.0}


def ref_to(owner: dict[str, Any], block: bool | None = True) -> dict[str, Any]:
    ref = {"apiVersion": "v1", "kind": owner["kind"], "name": owner["metadata"]["name"],
           "uid": owner["metadata"]["uid"]}
    if block is not None:
        ref["blockOwnerDeletion"] = block
    return ref


def meta(name: str, refs: list[dict[str, Any]] | None = None, finalizers: list[str] | None = None,
         namespace: str = NS) -> dict[str, Any]:
    m: dict[str, Any] = {"name": name, "namespace": namespace}
    if refs:
        m["ownerReferences"] = refs
    if finalizers:
        m["finalizers"] = finalizers
    return m


async def make_owner(client: Any, name: str = "owner", namespace: str = NS) -> dict[str, Any]:
    obj = await client.create(CM, {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta(name, namespace=namespace),
                                   "data": {"role": "owner"}}, namespace)
    obj.setdefault("kind", "ConfigMap")
    return obj


async def make_dependents(client: Any, owner: dict[str, Any], block: bool | None = True,
                          namespace: str = NS, finalizers: list[str] | None = None) -> dict[str, tuple[str, str]]:
    refs = [ref_to(owner, block)]
    await client.create(CM, {"apiVersion": "v1", "kind": "ConfigMap",
                             "metadata": meta("dep-cm", refs, finalizers, namespace)}, namespace)
    await client.create(SECRET, {"apiVersion": "v1", "kind": "Secret",
                                 "metadata": meta("dep-secret", refs, None, namespace)}, namespace)
    await client.create(POD, {"apiVersion": "v1", "kind": "Pod", "metadata": meta("dep-pod", refs, None, namespace),
                              "spec": {"containers": [{"name": "c", "image": "busybox"}]}}, namespace)
    return {"cm": (CM, "dep-cm"), "secret": (SECRET, "dep-secret"), "pod": (POD, "dep-pod")}


async def get_or_none(client: Any, res: str, name: str, namespace: str = NS) -> dict[str, Any] | None:
    try:
        return await client.get(res, name, namespace)
    except NotFound:
        return None


def gone(client: Any, res: str, name: str, namespace: str = NS) -> Any:
    async def check() -> bool:
        return await get_or_none(client, res, name, namespace) is None
    return check


async def all_gone(client: Any, deps: dict[str, tuple[str, str]], namespace: str = NS) -> bool:
    for res, name in deps.values():
        if await get_or_none(client, res, name, namespace) is not None:
            return False
    return True


async def test_background_deletes_every_dependent(cluster: Any) -> None:
    await cluster.start("garbagecollector", options=OPTIONS)
    client = cluster.client
    owner = await make_owner(client)
    deps = await make_dependents(client, owner)
    await client.delete(CM, "owner", NS)  # default: Background
    assert await get_or_none(client, CM, "owner") is None  # the owner goes at once
    await cluster.wait_for(lambda: all_gone(client, deps), message="dependents collected")


async def test_dangling_reference_removed_when_another_owner_remains(cluster: Any) -> None:
    await cluster.start("garbagecollector", options=OPTIONS)
    client = cluster.client
    first = await make_owner(client, "first")
    second = await make_owner(client, "second")
    await client.create(CM, {"apiVersion": "v1", "kind": "ConfigMap",
                             "metadata": meta("shared", [ref_to(first), ref_to(second)])}, NS)
    await client.delete(CM, "first", NS)

    async def only_second() -> bool:
        obj = await get_or_none(client, CM, "shared")
        assert obj is not None, "a dependent with a remaining owner must stay"
        return [r["uid"] for r in obj["metadata"].get("ownerReferences", [])] == [second["metadata"]["uid"]]

    await cluster.wait_for(only_second, message="the dangling reference removed")
    await client.delete(CM, "second", NS)
    await cluster.wait_for(gone(client, CM, "shared"), message="collected once the last owner goes")


async def test_foreground_waits_for_blocking_dependents(cluster: Any) -> None:
    await cluster.start("garbagecollector", options=OPTIONS)
    client = cluster.client
    owner = await make_owner(client)
    deps = await make_dependents(client, owner)
    # one more blocking dependent that a custom finalizer keeps around for a while
    await client.create(CM, {"apiVersion": "v1", "kind": "ConfigMap",
                             "metadata": meta("held", [ref_to(owner)], ["example.com/hold"])}, NS)
    await client.delete(CM, "owner", NS, propagation_policy="Foreground")
    await cluster.wait_for(lambda: all_gone(client, deps), message="dependents deleted in the foreground")

    async def held_terminating() -> bool:
        held = await get_or_none(client, CM, "held")
        return bool(held and held["metadata"].get("deletionTimestamp"))

    await cluster.wait_for(held_terminating, message="the held dependent marked for deletion")
    live = await client.get(CM, "owner", NS)
    assert live["metadata"].get("deletionTimestamp")
    assert "foregroundDeletion" in live["metadata"]["finalizers"]
    # the dependent lets go: then the owner goes
    await client.patch(CM, "held", {"metadata": {"finalizers": None}}, NS)
    await cluster.wait_for(gone(client, CM, "owner"), message="the owner deleted after its dependents")


async def test_foreground_does_not_wait_for_non_blocking_dependents(cluster: Any) -> None:
    await cluster.start("garbagecollector", options=OPTIONS)
    client = cluster.client
    owner = await make_owner(client)
    await client.create(CM, {"apiVersion": "v1", "kind": "ConfigMap",
                             "metadata": meta("loose", [ref_to(owner, block=False)], ["example.com/hold"])}, NS)
    await client.delete(CM, "owner", NS, propagation_policy="Foreground")
    await cluster.wait_for(gone(client, CM, "owner"), message="the owner deleted without waiting")
    loose = await client.get(CM, "loose", NS)
    assert loose["metadata"].get("deletionTimestamp"), "the dependent is deleted too"
    await client.patch(CM, "loose", {"metadata": {"finalizers": None}}, NS)


async def test_orphan_removes_owner_references(cluster: Any) -> None:
    await cluster.start("garbagecollector", options=OPTIONS)
    client = cluster.client
    owner = await make_owner(client)
    deps = await make_dependents(client, owner)
    await client.delete(CM, "owner", NS, propagation_policy="Orphan")
    await cluster.wait_for(gone(client, CM, "owner"), message="the owner deleted after orphaning")
    for res, name in deps.values():
        obj = await client.get(res, name, NS)
        assert not obj["metadata"].get("ownerReferences"), (name, obj["metadata"])
        assert not obj["metadata"].get("deletionTimestamp")


async def test_dependents_of_owner_deleted_while_stopped(cluster: Any) -> None:
    client = cluster.client
    await cluster.start("garbagecollector", options=OPTIONS)
    owner = await make_owner(client)
    deps = await make_dependents(client, owner)
    await cluster.stop()
    await client.delete(CM, "owner", NS)
    # and a dependent of an owner that never existed
    ghost = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "ghost", "uid": str(uuid.uuid4())}}
    await client.create(CM, {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta("orphaned", [ref_to(ghost)])},
                        NS)
    for res, name in deps.values():
        assert await get_or_none(client, res, name) is not None  # nobody collects while stopped
    await cluster.start("garbagecollector", options=OPTIONS)
    await cluster.wait_for(lambda: all_gone(client, deps), message="dependents collected after the restart")
    await cluster.wait_for(gone(client, CM, "orphaned"), message="dependent of a missing owner collected")


async def test_owner_in_another_namespace_is_invalid(cluster: Any) -> None:
    client = cluster.client
    await client.create("/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "other"}})
    gc = (await cluster.start("garbagecollector", options=OPTIONS)).controllers["garbagecollector"]
    owner = await make_owner(client, "owner", "other")
    await cluster.wait_for(lambda: owner["metadata"]["uid"] in gc.graph.nodes, message="owner observed")
    await client.create(CM, {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta("cross", [ref_to(owner)])}, NS)
    await cluster.wait_for(gone(client, CM, "cross"), message="a dependent naming an owner elsewhere is collected")

    async def warned() -> list[dict[str, Any]]:
        events = (await client.list("/v1/events", NS))["items"]
        return [e for e in events if e.get("reason") == "OwnerRefInvalidNamespace"]

    events = await cluster.wait_for(warned, message="an OwnerRefInvalidNamespace event")
    assert events[0]["type"] == "Warning"
    assert f"uid: {owner['metadata']['uid']}" in events[0]["message"]
    assert 'does not exist in namespace "default"' in events[0]["message"]
    assert await get_or_none(client, CM, "owner", "other") is not None  # the owner is untouched


async def test_cluster_scoped_dependent_of_namespaced_kind_is_left_with_a_warning(cluster: Any) -> None:
    client = cluster.client
    await cluster.start("garbagecollector", options=OPTIONS)
    ghost = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cm", "uid": str(uuid.uuid4())}}
    await client.create("/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace",
                                           "metadata": {"name": "child", "ownerReferences": [ref_to(ghost)]}})

    async def warned() -> list[dict[str, Any]]:
        events = (await client.list("/v1/events", NS))["items"]
        return [e for e in events if e.get("reason") == "OwnerRefInvalidNamespace"
                and e["involvedObject"].get("name") == "child"]

    events = await cluster.wait_for(warned, message="an OwnerRefInvalidNamespace event")
    assert events[0]["involvedObject"]["kind"] == "Namespace"
    assert 'does not exist in namespace ""' in events[0]["message"]
    ns = await client.get("/v1/namespaces", "child")
    assert not ns["metadata"].get("deletionTimestamp")  # never collected on a bad reference


async def test_orphan_and_foreground_requested_while_stopped(cluster: Any) -> None:
    client = cluster.client
    await cluster.start("garbagecollector", options=OPTIONS)
    kept_owner = await make_owner(client, "kept-owner")
    await client.create(CM, {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta("kept", [ref_to(kept_owner)])},
                        NS)
    fg_owner = await make_owner(client, "fg-owner")
    await client.create(CM, {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta("fg-dep", [ref_to(fg_owner)])},
                        NS)
    await cluster.stop()
    await client.delete(CM, "kept-owner", NS, propagation_policy="Orphan")
    await client.delete(CM, "fg-owner", NS, propagation_policy="Foreground")
    await cluster.start("garbagecollector", options=OPTIONS)
    await cluster.wait_for(gone(client, CM, "kept-owner"), message="the orphaning owner finished")
    kept = await client.get(CM, "kept", NS)
    assert not kept["metadata"].get("ownerReferences")
    await cluster.wait_for(gone(client, CM, "fg-owner"), message="the foreground owner finished")
    assert await get_or_none(client, CM, "fg-dep") is None


@needs_kubectl
@pytest.mark.parametrize("cascade", ["background", "foreground", "orphan"])
async def test_kubectl_cascade(cluster: Any, cascade: str, tmp_path: Any) -> None:
    await cluster.start("garbagecollector", options=OPTIONS)
    client = cluster.client
    owner = await make_owner(client)
    deps = await make_dependents(client, owner)
    args = ["delete", "configmap", "owner", "-n", NS, f"--cascade={cascade}"]
    if cascade == "foreground":
        args.append("--wait=true")
    result = await kubectl_in_thread(cluster.url, tmp_path, *args)
    assert result.returncode == 0, result.stderr
    assert 'configmap "owner" deleted' in result.stdout
    await cluster.wait_for(gone(client, CM, "owner"), message="owner gone")
    if cascade == "orphan":
        for res, name in deps.values():
            obj = await client.get(res, name, NS)
            assert not obj["metadata"].get("ownerReferences")
    else:
        await cluster.wait_for(lambda: all_gone(client, deps), message="dependents collected")
