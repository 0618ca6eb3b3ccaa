"""The node agent against a real API server: it registers its Node with the host's figures and
truthful conditions, renews its Lease in kube-node-lease (owned by the Node), and keeps both
current on its periods."""

from __future__ import annotations

import asyncio
import time

from pybernetes.client.kubeconfig import Config
from pybernetes.client.rest import RestClient
from pybernetes.kubelet.agent import LEASE_NAMESPACE, LEASES, NODES, NodeAgent
from pybernetes.kubelet.runtime.simulated import SimulatedRuntime


async def poll(predicate, within: float = 10.0):
    deadline = time.monotonic() + within
    while True:
        value = await predicate()
        if value:
            return value
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.05)


async def test_the_agent_registers_its_node_and_keeps_its_lease(api_server, tmp_path) -> None:
    async with RestClient(Config(servers=[api_server.url])) as client:
        agent = NodeAgent(client, "worker-1", SimulatedRuntime(), str(tmp_path), status_period=0.2,
                          lease_period=0.2)
        await agent.start()
        try:
            node = await client.get(NODES, "worker-1")
            assert node["metadata"]["labels"]["kubernetes.io/hostname"] == "worker-1"
            status = node["status"]
            assert set(status["capacity"]) >= {"cpu", "memory", "ephemeral-storage", "pods"}
            assert status["capacity"]["pods"] == "110"
            assert status["nodeInfo"]["containerRuntimeVersion"] == "simulated://0.1.0"
            ready = next(c for c in status["conditions"] if c["type"] == "Ready")
            assert ready["status"] == "True"
            lease = await client.get(LEASES, "worker-1", LEASE_NAMESPACE)
            assert lease["spec"]["holderIdentity"] == "worker-1" and lease["spec"]["leaseDurationSeconds"] == 40
            assert lease["metadata"]["ownerReferences"][0]["uid"] == node["metadata"]["uid"]
            first_renew = lease["spec"]["renewTime"]

            async def renewed():
                later = await client.get(LEASES, "worker-1", LEASE_NAMESPACE)
                return later["spec"]["renewTime"] != first_renew

            await poll(renewed)

            async def heartbeat():
                later = await client.get(NODES, "worker-1")
                beat = next(c for c in later["status"]["conditions"] if c["type"] == "Ready")
                return later["metadata"]["resourceVersion"] != node["metadata"]["resourceVersion"] and beat

            beat = await poll(heartbeat)
            assert beat["lastTransitionTime"] == ready["lastTransitionTime"]  # still Ready since registration
        finally:
            await agent.stop()


async def test_an_existing_node_is_taken_over(api_server, tmp_path) -> None:
    async with RestClient(Config(servers=[api_server.url])) as client:
        await client.create(NODES, {"apiVersion": "v1", "kind": "Node", "metadata": {"name": "worker-2"}})
        agent = NodeAgent(client, "worker-2", SimulatedRuntime(), str(tmp_path))
        await agent.register()
        node = await client.get(NODES, "worker-2")
        assert node["status"]["capacity"]["pods"] == "110"
