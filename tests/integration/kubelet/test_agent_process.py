"""``pybernetes agent`` as a real process: it registers its Node and holds its Lease, and
SIGTERM ends it with status 0."""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys

from pybernetes.client.kubeconfig import Config
from pybernetes.client.rest import RestClient
from pybernetes.kubelet.agent import LEASE_NAMESPACE, LEASES, NODES


async def test_agent_process_registers_and_stops_on_sigterm(api_server, tmp_path) -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "pybernetes.cli.main", "agent", "--server", api_server.url, "--node-name",
        "agent-proc", "--data-dir", str(tmp_path), "--runtime", "simulated", "--log-level", "warning",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env={**os.environ})
    try:
        line = await asyncio.wait_for(proc.stdout.readline(), 60)
        assert b"node agent-proc registered" in line
        async with RestClient(Config(servers=[api_server.url])) as client:
            node = await client.get(NODES, "agent-proc")
            assert next(c for c in node["status"]["conditions"] if c["type"] == "Ready")["status"] == "True"
            lease = await client.get(LEASES, "agent-proc", LEASE_NAMESPACE)
            assert lease["spec"]["holderIdentity"] == "agent-proc"
        proc.terminate()
        assert await asyncio.wait_for(proc.wait(), 30) == 0
    finally:
        if proc.returncode is None:
            proc.kill()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(proc.communicate(), 10)
