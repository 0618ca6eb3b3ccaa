"""The enforcer's sync step with a recording nft and fake informer caches: a full table first,
then only differences, nothing when nothing changed, a full table again when nft refuses a
difference, and a policy that cannot be enforced reported (once) while the rest is applied; its
metrics."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from types import SimpleNamespace

import pytest

from pybernetes.client.flowcontrol import Backoff
from pybernetes.proxy.metrics import NetpolMetrics
from pybernetes.proxy.netpol import NetworkPolicyEnforcer
from pybernetes.proxy.nft import NftError


class RecordingNft:
    def __init__(self) -> None:
        self.scripts: list[str] = []
        self.refuse_next = False

    async def apply(self, script: str) -> None:
        if self.refuse_next:
            self.refuse_next = False
            raise NftError("Error: No such file or directory", script)
        self.scripts.append(script)


def cache(*objs: dict) -> SimpleNamespace:
    return SimpleNamespace(indexer=SimpleNamespace(list=lambda: list(objs)))


def pod(ns: str, name: str, ip: str, **labels: str) -> dict:
    return {"metadata": {"namespace": ns, "name": name, "labels": labels},
            "spec": {"nodeName": "n1", "containers": [{"name": "c"}]}, "status": {"podIP": ip}}


def policy(ns: str, name: str, **spec) -> dict:
    spec.setdefault("podSelector", {})
    return {"metadata": {"namespace": ns, "name": name}, "spec": spec}


@pytest.fixture
def enforcer():
    e = NetworkPolicyEnforcer(client=None, node_name="n1", nft=RecordingNft(), table="t")  # type: ignore[arg-type]
    e._pods, e._namespaces = cache(pod("a", "web", "10.0.0.2")), cache({"metadata": {"name": "a"}})
    e._policies = cache(policy("a", "deny"))
    return e


async def test_full_then_differences_then_nothing(enforcer):
    nft = enforcer.nft
    await enforcer.sync()
    assert nft.scripts[0].startswith("add table ip t\ndelete table ip t\n")
    assert enforcer.full_syncs == 1 and enforcer.isolated == (1, 0) and enforcer.rules > 0
    assert await enforcer.wait_for_sync(0)
    enforcer._pods = cache(pod("a", "web", "10.0.0.2"), pod("a", "db", "10.0.0.3"))
    await enforcer.sync()
    assert "table" not in nft.scripts[1] and "pod-in_a_db" in nft.scripts[1]
    await enforcer.sync()
    assert len(nft.scripts) == 2 and enforcer.full_syncs == 1


async def test_refused_difference_falls_back_to_a_full_table(enforcer):
    nft = enforcer.nft
    await enforcer.sync()
    enforcer._policies = cache()
    nft.refuse_next = True
    await enforcer.sync()
    assert enforcer.full_syncs == 2 and nft.scripts[-1].startswith("add table ip t\n")
    assert "pod-in_a_web" not in nft.scripts[-1]


async def test_bad_policy_reported_once_rest_applied(enforcer, caplog):
    bad = policy("a", "bad", podSelector={"matchExpressions": [{"key": "k", "operator": "Bogus"}]})
    enforcer._policies = cache(bad, policy("a", "deny"))
    with caplog.at_level(logging.WARNING, logger="pybernetes.proxy.netpol"):
        await enforcer.sync()
        await enforcer.sync()
    assert list(enforcer.errors) == ["a/bad"]
    assert len([r for r in caplog.records if "a/bad" in r.getMessage()]) == 1
    assert "pod-in_a_web" in enforcer.nft.scripts[0] and "pol-in_a_deny" in enforcer.nft.scripts[0]


def values(metrics: NetpolMetrics) -> dict[str, float]:
    return {f"{s.name}{s.labels.get('direction', '')}": s.value
            for family in metrics.registry.collect() for s in family.samples}


async def test_metrics_count_syncs_full_syncs_failures_rules_and_isolated_pods(enforcer):
    enforcer.metrics = metrics = NetpolMetrics()
    await enforcer.sync()
    enforcer._pods = cache(pod("a", "web", "10.0.0.2"), pod("a", "db", "10.0.0.3"))
    await enforcer.sync()
    await enforcer.sync()  # nothing changed: no transaction, still a sync
    got = values(metrics)
    assert got["pybernetes_netpol_syncs_total"] == 2 and got["pybernetes_netpol_full_syncs_total"] == 1
    assert got["pybernetes_netpol_sync_duration_seconds_count"] == 3
    assert got["pybernetes_netpol_isolated_podsingress"] == 2 and got["pybernetes_netpol_isolated_podsegress"] == 0
    assert got["pybernetes_netpol_rules"] == enforcer.rules > 0
    assert got["pybernetes_netpol_policy_problems"] == 0

    class BrokenNft(RecordingNft):
        async def apply(self, script: str) -> None:
            raise NftError("Error: Could not process rule: Operation not permitted", script)

        async def table_exists(self, family: str, table: str) -> bool:
            return True

    async def synced() -> bool:
        return True

    for informer in (enforcer._pods, enforcer._namespaces, enforcer._policies):
        informer.wait_for_sync = synced
    enforcer.nft = BrokenNft()
    enforcer._applied = None  # a full sync next, refused like every later one
    enforcer._backoff = Backoff(initial=0.01, cap=0.01)
    task = asyncio.create_task(enforcer._run())
    deadline = asyncio.get_running_loop().time() + 5
    try:
        while values(metrics)["pybernetes_netpol_sync_failures_total"] < 2:  # retried, every failure counted
            assert asyncio.get_running_loop().time() < deadline, values(metrics)
            await asyncio.sleep(0.01)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    assert enforcer.sync_failures >= 2
