"""The ServiceAccount controller: a "default" ServiceAccount in every active namespace, back
after being deleted, none in a Terminating namespace."""

from __future__ import annotations

from pybernetes.client.errors import NotFound

NAMESPACES = ("", "v1", "namespaces")
SERVICE_ACCOUNTS = ("", "v1", "serviceaccounts")


async def has_default(cluster, ns: str) -> bool:
    try:
        await cluster.client.get(SERVICE_ACCOUNTS, "default", ns)
    except NotFound:
        return False
    return True


async def test_default_service_account_in_every_namespace(cluster) -> None:
    await cluster.start("serviceaccount")
    await cluster.wait_for(lambda: has_default(cluster, "default"), message="default/default")
    await cluster.wait_for(lambda: has_default(cluster, "kube-system"), message="kube-system/default")
    await cluster.client.create(NAMESPACES, {"metadata": {"name": "team-a"}})
    await cluster.wait_for(lambda: has_default(cluster, "team-a"), message="team-a/default")
    await cluster.client.delete(SERVICE_ACCOUNTS, "default", "team-a")
    await cluster.wait_for(lambda: has_default(cluster, "team-a"), message="team-a/default recreated")
    # Other accounts are not touched.
    await cluster.client.create(SERVICE_ACCOUNTS, {"metadata": {"name": "builder"}}, "team-a")
    await cluster.client.delete(SERVICE_ACCOUNTS, "builder", "team-a")


async def test_none_in_a_terminating_namespace(cluster) -> None:
    await cluster.client.create(NAMESPACES, {"metadata": {"name": "going"}})
    await cluster.client.delete(NAMESPACES, "going")
    ns = await cluster.client.get(NAMESPACES, "going")
    assert ns["status"]["phase"] == "Terminating"
    cm = await cluster.start("serviceaccount")
    controller = cm.controllers["serviceaccount"]
    await cluster.wait_for(lambda: has_default(cluster, "default"), message="default/default")
    before = controller.syncs
    controller.enqueue("going")
    await cluster.wait_for(lambda: controller.syncs > before and len(controller.queue) == 0
                           and not controller.queue.processing, message="going synced")
    assert not await has_default(cluster, "going")
