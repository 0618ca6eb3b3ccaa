"""The agent with the process runtime: a readiness probe gates Ready, a failing liveness probe
restarts the container, and the container's log is read through the API server's pods/log
(which the agent's kubelet server answers)."""

from __future__ import annotations

import functools
import sys
from pathlib import Path

import aiohttp
import pytest

from pybernetes.client.kubeconfig import Config
from pybernetes.client.rest import RestClient
from pybernetes.kubelet.agent import NodeAgent
from pybernetes.kubelet.runtime.process import ProcessRuntime

PODS = ("", "v1", "pods")
NODE = "node-p"
IMAGE = "host/shell:1"
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "support"))
import async_poll  # noqa: E402

poll = functools.partial(async_poll.poll, within=20.0, interval=0.05)


@pytest.fixture
async def agent(api_server, tmp_path):
    async with RestClient(Config(servers=[api_server.url])) as client:
        runtime = ProcessRuntime(tmp_path / "rt", images={IMAGE})
        agent = NodeAgent(client, NODE, runtime, str(tmp_path), relist_period=0.05, node_ip="127.0.0.1")
        agent.probes._scale = 0.2  # probe periods of 1 s run every 0.2 s here
        await agent.start()
        try:
            yield agent
        finally:
            await agent.stop()
            for sandbox in await runtime.list_pod_sandboxes():
                await runtime.remove_pod_sandbox(sandbox.id)


async def status_of(client, name):
    return (await client.get(PODS, name, "default")).get("status") or {}


async def test_a_readiness_probe_gates_ready(agent, tmp_path) -> None:
    client = agent.client
    flag = tmp_path / "ready-flag"
    container = {"name": "main", "image": IMAGE, "command": ["sleep", "60"],
                 "readinessProbe": {"exec": {"command": ["test", "-f", str(flag)]}, "periodSeconds": 1}}
    await client.create(PODS, {"metadata": {"name": "gated"}, "spec": {"nodeName": NODE, "containers": [container]}},
                        "default")

    async def running():
        status = await status_of(client, "gated")
        return status if status.get("phase") == "Running" else None

    status = await poll(running, what="Running")
    ready = {c["type"]: c for c in status["conditions"]}["Ready"]
    assert ready["status"] == "False" and status["containerStatuses"][0]["ready"] is False
    flag.write_text("ok")

    async def is_ready():
        status = await status_of(client, "gated")
        return {c["type"]: c["status"] for c in status.get("conditions") or []}.get("Ready") == "True"

    await poll(is_ready, what="Ready after the probe succeeds")
    flag.unlink()

    async def unready():
        status = await status_of(client, "gated")
        return {c["type"]: c["status"] for c in status.get("conditions") or []}.get("Ready") == "False"

    await poll(unready, what="not Ready once the probe fails")


async def test_a_failing_liveness_probe_restarts_the_container(agent, tmp_path) -> None:
    client = agent.client
    container = {"name": "main", "image": IMAGE, "command": ["sleep", "60"],
                 "livenessProbe": {"exec": {"command": ["false"]}, "periodSeconds": 1, "failureThreshold": 1}}
    await client.create(PODS, {"metadata": {"name": "sick"}, "spec": {"nodeName": NODE, "containers": [container],
                                                                     "terminationGracePeriodSeconds": 1}}, "default")

    async def restarted():
        status = await status_of(client, "sick")
        entries = status.get("containerStatuses") or []
        return entries[0] if entries and entries[0]["restartCount"] >= 1 else None

    entry = await poll(restarted, what="a restart after the liveness failure")
    assert entry["lastState"]["terminated"]["exitCode"] in (137, 143)
    events = await client.list(("", "v1", "events"), "default")
    reasons = {e["reason"] for e in events["items"] if e["involvedObject"]["name"] == "sick"}
    assert {"Unhealthy", "Killing"} <= reasons


async def test_kubectl_logs_path_through_the_api_server(agent, api_server) -> None:
    client = agent.client
    container = {"name": "talker", "image": IMAGE,
                 "command": ["sh", "-c", "echo first; echo second >&2; sleep 60"]}
    await client.create(PODS, {"metadata": {"name": "talky"}, "spec": {"nodeName": NODE, "containers": [container]}},
                        "default")

    async def logged():
        async with aiohttp.ClientSession() as session, \
                session.get(f"{api_server.url}/api/v1/namespaces/default/pods/talky/log") as response:
            text = await response.text()
            return text if response.status == 200 and "second" in text else None

    text = await poll(logged, what="the log through pods/log")
    assert text.splitlines() == ["first", "second"]
    node = await client.get(("", "v1", "nodes"), NODE)
    assert node["status"]["daemonEndpoints"]["kubeletEndpoint"]["Port"] == agent.server_port


async def test_the_kubelet_serves_its_pods_and_a_stats_summary(agent) -> None:
    client = agent.client
    container = {"name": "busy", "image": IMAGE, "command": ["sh", "-c", "while true; do :; done"]}
    await client.create(PODS, {"metadata": {"name": "measured"}, "spec": {"nodeName": NODE, "containers": [container]}},
                        "default")

    async def running():
        status = await status_of(client, "measured")
        return status if status.get("phase") == "Running" else None

    await poll(running, what="Running")
    base = f"http://127.0.0.1:{agent.server_port}"
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{base}/pods") as response:
            names = [p["metadata"]["name"] for p in (await response.json())["items"]]
        assert "measured" in names

        async def measured():
            async with session.get(f"{base}/stats/summary") as response:
                body = await response.json()
            pods = [p for p in body["pods"] if p["podRef"]["name"] == "measured"]
            if pods and pods[0]["containers"] and "usageNanoCores" in pods[0]["containers"][0]["cpu"]:
                return body, pods[0]
            return None

        body, pod = await poll(measured, what="two readings of the pod's usage")
    assert body["node"]["nodeName"] == NODE and body["node"]["cpu"]["usageCoreNanoSeconds"] > 0
    assert body["node"]["memory"]["availableBytes"] > 0 and body["node"]["fs"]["capacityBytes"] > 0
    network = body["node"]["network"]
    assert network["name"] != "lo" and network["rxBytes"] >= 0 and network["interfaces"][0]["name"] == network["name"]
    (busy,) = pod["containers"]
    assert busy["name"] == "busy" and busy["cpu"]["usageCoreNanoSeconds"] > 0
    assert busy["cpu"]["usageNanoCores"] > 0 and busy["memory"]["rssBytes"] > 0  # a spinning shell
    assert pod["cpu"]["usageCoreNanoSeconds"] >= busy["cpu"]["usageCoreNanoSeconds"]
