"""``pybernetes scheduler`` as a real process: it takes the kube-scheduler lease and binds,
serves /metrics, and a configuration naming unknown plugins or bad args fails at start with
a message naming them."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import sys
import urllib.error
import urllib.request
from pathlib import Path

import yaml

from pybernetes.cli.main import admin_kubeconfig

LEASES = ("coordination.k8s.io", "v1", "leases")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def _run(*args: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "pybernetes.cli.main", "scheduler", *args, "--log-level", "warning",
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE, env={**os.environ})


async def lease_holder(sched) -> str:
    """Who holds the kube-scheduler Lease ("" while there is none)."""
    try:
        lease = await sched.client.get(LEASES, "kube-scheduler", "kube-system")
    except Exception:  # noqa: BLE001 - not created yet
        return ""
    return lease["spec"].get("holderIdentity") or ""


def _kubeconfig(tmp_path: Path, url: str) -> Path:
    path = tmp_path / "kubeconfig.yaml"
    path.write_text(yaml.safe_dump(admin_kubeconfig(url)))
    return path


async def test_scheduler_process_leads_binds_and_serves_metrics(sched, tmp_path: Path) -> None:
    await sched.add_node("n1")
    port = _free_port()
    proc = await _run("--kubeconfig", str(_kubeconfig(tmp_path, sched.url)), "--metrics-port", str(port),
                      "--leader-elect-identity", "sched-a")
    try:
        assert await sched.wait_for(lambda: lease_holder(sched), message="the kube-scheduler lease") == "sched-a"
        await sched.add_pod("p1", cpu="100m")
        assert (await sched.wait_bound("p1"))["p1"] == "n1"

        def scrape() -> str:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
                return resp.read().decode()

        text = await asyncio.get_running_loop().run_in_executor(None, scrape)
        assert 'scheduler_schedule_attempts_total{profile="default-scheduler",result="scheduled"} 1.0' in text
        assert 'scheduler_pending_pods{queue="active"} 0.0' in text
    finally:
        if proc.returncode is None:
            proc.terminate()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(proc.communicate(), 30)


async def test_bad_configuration_fails_at_start_naming_the_problem(tmp_path: Path) -> None:
    config = tmp_path / "sched.yaml"
    config.write_text(yaml.safe_dump({
        "apiVersion": "kubescheduler.config.k8s.io/v1", "kind": "KubeSchedulerConfiguration",
        "profiles": [{"schedulerName": "default-scheduler",
                      "plugins": {"filter": {"enabled": [{"name": "NoSuchPlugin"}]}},
                      "pluginConfig": [{"name": "InterPodAffinity", "args": {"hardPodAffinityWeight": 101}}]}]}))
    proc = await _run("--kubeconfig", str(_kubeconfig(tmp_path, "http://127.0.0.1:1")), "--config", str(config))
    _, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 2
    assert b"NoSuchPlugin" in err
    assert b"hardPodAffinityWeight" in err


async def test_a_standby_scheduler_serves_metrics_and_health(sched, tmp_path: Path) -> None:
    kubeconfig = str(_kubeconfig(tmp_path, sched.url))
    leader_port, standby_port = _free_port(), _free_port()
    leader = await _run("--kubeconfig", kubeconfig, "--metrics-port", str(leader_port),
                        "--leader-elect-identity", "sched-a")
    standby = None
    try:
        assert await sched.wait_for(lambda: lease_holder(sched), message="the kube-scheduler lease") == "sched-a"
        standby = await _run("--kubeconfig", kubeconfig, "--metrics-port", str(standby_port),
                             "--leader-elect-identity", "sched-b")

        def get(path: str) -> tuple[int, str]:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{standby_port}{path}", timeout=2) as resp:
                    return resp.status, resp.read().decode()
            except urllib.error.HTTPError as err:
                return err.code, ""
            except OSError:
                return 0, ""

        loop = asyncio.get_running_loop()

        async def healthy() -> bool:
            return (await loop.run_in_executor(None, get, "/healthz"))[0] == 200

        await sched.wait_for(healthy, message="the standby's /healthz")
        status, text = await loop.run_in_executor(None, get, "/metrics")
        assert status == 200 and "scheduler_pending_pods" in text
        assert (await loop.run_in_executor(None, get, "/readyz"))[0] == 503  # not leading
        assert await lease_holder(sched) == "sched-a"
    finally:
        for proc in (leader, standby):
            if proc is not None and proc.returncode is None:
                proc.terminate()
            if proc is not None:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(proc.communicate(), 30)
