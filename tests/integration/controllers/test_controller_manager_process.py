"""``pybernetes controller-manager`` as real processes: leader election hands over within the
lease duration when the leader is killed, and a leader that loses its lease exits non-zero."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
from pathlib import Path

import yaml

from pybernetes.cli.main import admin_kubeconfig

LEASES = ("coordination.k8s.io", "v1", "leases")
LEASE_DURATION = 3.0


async def _start(kubeconfig: Path, identity: str, *extra: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "pybernetes.cli.main", "controller-manager", "--kubeconfig", str(kubeconfig),
        "--controllers", "", "--leader-elect-identity", identity,
        "--leader-elect-lease-duration", f"{LEASE_DURATION}s", "--leader-elect-renew-deadline", "2s",
        "--leader-elect-retry-period", "500ms", "--log-level", "warning", *extra,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE, env={**os.environ})


async def _stop(*procs: asyncio.subprocess.Process) -> None:
    for proc in procs:
        if proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(proc.communicate(), 10)


def _kubeconfig(tmp_path: Path, url: str) -> Path:
    path = tmp_path / "kubeconfig.yaml"
    path.write_text(yaml.safe_dump(admin_kubeconfig(url)))
    return path


async def _holder(cluster) -> str:
    try:
        lease = await cluster.client.get(LEASES, "kube-controller-manager", "kube-system")
    except Exception:  # noqa: BLE001 - not created yet
        return ""
    return lease["spec"].get("holderIdentity") or ""


async def test_leader_killed_hands_over_within_lease_duration(cluster, tmp_path: Path) -> None:
    kubeconfig = _kubeconfig(tmp_path, cluster.url)
    first = await _start(kubeconfig, "cm-a")
    second = None
    try:
        await cluster.wait_for(lambda: _holder(cluster), timeout=30, message="a leader")
        assert await _holder(cluster) == "cm-a"
        second = await _start(kubeconfig, "cm-b")
        await asyncio.sleep(0)  # cm-b now campaigns; it must not take a held lease
        lease = await cluster.client.get(LEASES, "kube-controller-manager", "kube-system")
        transitions = lease["spec"].get("leaseTransitions", 0)
        loop = asyncio.get_running_loop()
        first.send_signal(signal.SIGKILL)
        killed_at = loop.time()
        await cluster.wait_for(lambda: _holder_is(cluster, "cm-b"), timeout=30, interval=0.05,
                               message="cm-b leading")
        handover = loop.time() - killed_at
        # Upstream's bound: the lease expires LEASE_DURATION after its last renewal, and the
        # standby notices within one retry period (x1.2 jitter) — plus process start-up here.
        assert handover <= LEASE_DURATION + 1.5, f"hand-over took {handover:.2f}s"
        lease = await cluster.client.get(LEASES, "kube-controller-manager", "kube-system")
        assert lease["spec"]["leaseTransitions"] == transitions + 1
        assert second.returncode is None
    finally:
        await _stop(first, *([second] if second else []))


async def _holder_is(cluster, who: str) -> bool:
    return await _holder(cluster) == who


async def test_leader_that_loses_its_lease_exits_non_zero(cluster, tmp_path: Path) -> None:
    kubeconfig = _kubeconfig(tmp_path, cluster.url)
    proc = await _start(kubeconfig, "cm-a")
    try:
        await cluster.wait_for(lambda: _holder_is(cluster, "cm-a"), timeout=30, message="cm-a leading")
        for _ in range(20):  # another holder takes the lease (a split brain the leader must notice)
            lease = await cluster.client.get(LEASES, "kube-controller-manager", "kube-system")
            lease["spec"]["holderIdentity"] = "usurper"
            try:
                await cluster.client.update(LEASES, lease, "kube-system")
                break
            except Exception:  # noqa: BLE001 - a renewal raced us: read and try again
                continue
        code = await asyncio.wait_for(proc.wait(), 30)
        assert code == 1
    finally:
        await _stop(proc)


async def test_sigterm_releases_the_lease_and_exits_zero(cluster, tmp_path: Path) -> None:
    kubeconfig = _kubeconfig(tmp_path, cluster.url)
    proc = await _start(kubeconfig, "cm-a")
    try:
        await cluster.wait_for(lambda: _holder_is(cluster, "cm-a"), timeout=30, message="cm-a leading")
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(proc.wait(), 30) == 0
        assert await _holder(cluster) == ""
    finally:
        await _stop(proc)


async def test_bad_flags_fail_at_start_naming_the_problem(tmp_path: Path) -> None:
    kubeconfig = _kubeconfig(tmp_path, "http://127.0.0.1:1")
    proc = await _start(kubeconfig, "x", "--controllers", "replicaset,nope")
    _, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 2
    assert b"unknown controllers: nope" in err
