"""The controller manager and the controller base, with a tiny controller of the test's own:
informers shared, handlers enqueue, sync runs per key, failures retried with backoff."""

from __future__ import annotations

from typing import ClassVar

import pytest

from pybernetes.client.kubeconfig import Config
from pybernetes.client.rest import RestClient
from pybernetes.controllers import registry
from pybernetes.controllers.base import Controller, FakeClock, key_of, split_key
from pybernetes.controllers.manager import ControllerManager

CONFIGMAPS = ("", "v1", "configmaps")


class EchoController(Controller):
    """Copies each ConfigMap's data key "in" to "out"; fails twice on a "flaky" one."""

    name: ClassVar[str] = "echo"
    component: ClassVar[str] = "echo-controller"
    default_workers = 2

    def setup(self) -> None:
        self.cms = self.informer(CONFIGMAPS)
        self.cms.add_event_handler(self.enqueue, lambda old, new: self.enqueue(new))
        self.failures: dict[str, int] = {}
        self.running: set[str] = set()
        self.overlap = False

    async def sync(self, key: str) -> None:
        if key in self.running:
            self.overlap = True
        self.running.add(key)
        try:
            ns, name = split_key(key)
            cm = self.cms.indexer.get(key)
            if cm is None:
                return
            if name == "flaky" and self.failures.get(key, 0) < 2:
                self.failures[key] = self.failures.get(key, 0) + 1
                raise RuntimeError("flaky")
            data = cm.get("data") or {}
            if data.get("out") != data.get("in"):
                patch = {"data": {"out": data.get("in")}}
                await self.client.patch(CONFIGMAPS, name, patch, ns)
                self.recorder.event(cm, "Normal", "Echoed", f"copied {data.get('in')}")
        finally:
            self.running.discard(key)


@pytest.fixture
def echo_registered(monkeypatch):
    monkeypatch.setitem(registry.CONTROLLERS, "echo", f"{__name__}:EchoController")


async def test_controller_syncs_keys_and_retries_failures(cluster, echo_registered) -> None:
    cm = await cluster.start("echo")
    echo = cm.controllers["echo"]
    for name in ("a", "b", "flaky"):
        await cluster.client.create(CONFIGMAPS, {"metadata": {"name": name}, "data": {"in": name}}, "default")

    async def all_echoed() -> bool:
        items = (await cluster.client.list(CONFIGMAPS, "default"))["items"]
        return all((i.get("data") or {}).get("out") == i["metadata"]["name"] for i in items) and len(items) == 3

    await cluster.wait_for(all_echoed, message="every ConfigMap echoed")
    assert echo.failures["default/flaky"] == 2
    assert echo.sync_errors >= 2
    assert not echo.overlap

    async def event_written() -> bool:
        evs = (await cluster.client.list(("", "v1", "events"), "default"))["items"]
        return any(e["reason"] == "Echoed" and e["source"]["component"] == "echo-controller" for e in evs)

    await cluster.wait_for(event_written, message="an Echoed event")


def test_select_reads_upstream_flag_syntax() -> None:
    assert registry.select("*,-podgc") == [n for n in registry.CONTROLLERS if n != "podgc"]
    assert registry.select("job,cronjob") == ["job", "cronjob"]
    with pytest.raises(ValueError, match="unknown controllers: nope"):
        registry.select("*,nope")


def test_keys() -> None:
    assert key_of({"metadata": {"namespace": "ns", "name": "x"}}) == "ns/x"
    assert key_of({"metadata": {"name": "n1"}}) == "n1"
    assert split_key("ns/x") == ("ns", "x")
    assert split_key("n1") == (None, "n1")


async def test_manager_rejects_workers_for_unknown_controllers() -> None:
    client = RestClient(Config(servers=["http://127.0.0.1:1"]))
    try:
        with pytest.raises(ValueError, match="unknown controllers: bogus"):
            ControllerManager(client, ["replicaset"], workers={"bogus": 2})
    finally:
        await client.close()


async def test_controllers_read_the_managers_clock(cluster, echo_registered) -> None:
    clock = FakeClock(1000.0)
    cm = await cluster.start("echo", clock=clock)
    assert cm.controllers["echo"].clock.now() == 1000.0
    clock.advance(5)
    assert cm.controllers["echo"].clock.now() == 1005.0
    clock.set(10)
    assert cm.controllers["echo"].clock.now() == 10


async def test_write_status_retries_a_conflict_from_a_fresh_read(cluster, echo_registered) -> None:
    rs_res = ("apps", "v1", "replicasets")
    cm = await cluster.start("echo")
    ctl = cm.controllers["echo"]
    body = {"metadata": {"name": "r"}, "spec": {"replicas": 0, "selector": {"matchLabels": {"a": "b"}},
                                                 "template": {"metadata": {"labels": {"a": "b"}},
                                                              "spec": {"containers": [{"name": "c", "image": "i"}]}}}}
    stale = await cluster.client.create(rs_res, body, "default")
    await cluster.client.update_status(rs_res, {**stale, "status": {"replicas": 0, "observedGeneration": 7}})
    seen = []

    def merge(current: dict, ours: dict) -> dict:
        seen.append(current)
        return {**ours, "observedGeneration": max(current.get("observedGeneration", 0), ours["observedGeneration"])}

    written = await ctl.write_status(rs_res, stale, {"replicas": 0, "observedGeneration": 1}, merge=merge)
    assert seen and seen[0]["observedGeneration"] == 7  # the conflict made it read the object again
    assert written["status"]["observedGeneration"] == 7
    assert stale.get("status") is None or "observedGeneration" not in stale["status"]  # the cached copy untouched
    await cluster.client.delete(rs_res, "r", "default")
    assert await ctl.write_status(rs_res, stale, {"replicas": 0}) is None
