"""Robustness: while the API server is unreachable, the agent keeps its containers running;
when the server comes back (same address, same store) the agent picks up where it was — the
pod still Running with no restart counted — and acts on new requests (a deletion)."""

from __future__ import annotations

import asyncio
import functools
import socket
import sys
import time
from pathlib import Path

from aiohttp import web

from pybernetes.apiserver.app import ServerConfig, build_app
from pybernetes.client.errors import NotFound
from pybernetes.client.flowcontrol import Backoff
from pybernetes.client.kubeconfig import Config
from pybernetes.client.rest import RestClient
from pybernetes.kubelet.agent import NodeAgent
from pybernetes.kubelet.runtime.protocol import ContainerState
from pybernetes.kubelet.runtime.simulated import SimulatedRuntime

PODS = ("", "v1", "pods")
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "support"))
import async_poll  # noqa: E402


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def serve(data_dir, port: int) -> web.AppRunner:
    app = build_app(ServerConfig(data_dir=data_dir, port=port, shutdown_timeout=1))
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=1, handle_signals=False)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    return runner


poll = functools.partial(async_poll.poll, within=20.0, interval=0.05)


async def test_the_agent_rides_out_an_api_server_outage(tmp_path) -> None:
    port = free_port()
    runner = await serve(tmp_path / "data", port)
    runtime = SimulatedRuntime()
    client = RestClient(Config(servers=[f"http://127.0.0.1:{port}"]), max_retries=1,
                        retry_backoff=Backoff(initial=0.05, cap=0.2))
    agent = NodeAgent(client, "node-o", runtime, str(tmp_path / "agent"), relist_period=0.05,
                      status_period=0.2, lease_period=0.2)
    await agent.start()
    try:
        await client.create(PODS, {"metadata": {"name": "steady"},
                                   "spec": {"nodeName": "node-o", "containers": [{"name": "c", "image": "i:1"}]}},
                            "default")

        async def running():
            try:
                pod = await client.get(PODS, "steady", "default")
            except NotFound:
                return None
            return pod if (pod.get("status") or {}).get("phase") == "Running" else None

        await poll(running, what="Running")
        (container,) = await runtime.list_containers()
        await runner.cleanup()  # the API server is gone
        outage_ends = time.monotonic() + 1.5
        while time.monotonic() < outage_ends:  # syncs, relists, failed status and lease writes
            await agent.workers.relist()
            await asyncio.sleep(0.1)
        status = await runtime.container_status(container.id)
        assert status.state is ContainerState.RUNNING  # nothing was stopped
        runner = await serve(tmp_path / "data", port)  # back, same store

        pod = await poll(running, what="still Running after the outage")
        assert pod["status"]["containerStatuses"][0]["restartCount"] == 0
        assert [c.id for c in await runtime.list_containers()] == [container.id]  # no duplicate
        await client.delete(PODS, "steady", "default")

        async def gone():
            try:
                await client.get(PODS, "steady", "default")
            except NotFound:
                return True
            return False

        await poll(gone, what="the deletion carried out after the outage")
        await poll(lambda: _empty(runtime), what="the container removed")
    finally:
        await agent.stop()
        await client.close()
        await runner.cleanup()


async def _empty(runtime) -> bool:
    return not await runtime.list_containers()
