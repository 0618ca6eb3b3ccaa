"""DefaultBinder against the real in-process API server: the pod gets spec.nodeName and
PodScheduled=True; binding it again, or binding a pod that does not exist, is an Error status
carrying the API server's message."""

from __future__ import annotations

from pybernetes.client.kubeconfig import Config
from pybernetes.client.rest import RestClient
from pybernetes.scheduler.framework import Code, CycleState
from pybernetes.scheduler.handle import Handle
from pybernetes.scheduler.plugins.defaultbinder import DefaultBinder

PODS = ("", "v1", "pods")


async def test_default_binder_binds_through_the_api(api_server):
    async with RestClient(Config(servers=[api_server.url])) as client:
        for name in ("node-a", "node-b"):
            await client.create(("", "v1", "nodes"), {"apiVersion": "v1", "kind": "Node", "metadata": {"name": name}})
        pod = await client.create(PODS, {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web"},
                                         "spec": {"containers": [{"name": "c", "image": "nginx"}]}}, "default")
        binder = DefaultBinder({}, Handle(client=client))

        status = await binder.bind(CycleState(), pod, "node-a")
        assert status.is_success(), status
        bound = await client.get(PODS, "web", "default")
        assert bound["spec"]["nodeName"] == "node-a"
        conditions = {c["type"]: c["status"] for c in bound["status"]["conditions"]}
        assert conditions["PodScheduled"] == "True"

        again = await binder.bind(CycleState(), pod, "node-b")
        assert again.code == Code.ERROR and again.plugin == "DefaultBinder"
        assert 'pod web is already assigned to node "node-a"' in again.message()
        assert (await client.get(PODS, "web", "default"))["spec"]["nodeName"] == "node-a"

        ghost = {"metadata": {"name": "ghost", "namespace": "default"}}
        missing = await binder.bind(CycleState(), ghost, "node-a")
        assert missing.code == Code.ERROR
        assert missing.message() == 'pods "ghost" not found'
