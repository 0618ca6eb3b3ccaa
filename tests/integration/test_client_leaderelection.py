"""Lease-based leader election against the real in-process API server, with short
durations: one of two candidates leads; the other takes over when it stops; a leader that
cannot renew stops leading."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from pybernetes.client.flowcontrol import Backoff
from pybernetes.client.kubeconfig import Config
from pybernetes.client.leaderelection import LEASES, LeaderElector
from pybernetes.client.rest import RestClient

FAST = {"lease_duration": 1.0, "renew_deadline": 0.6, "retry_period": 0.15}


async def until(cond: Callable[[], bool], within: float = 10.0) -> float:
    loop = asyncio.get_running_loop()
    start = loop.time()
    while not cond():
        if loop.time() - start > within:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.01)
    return loop.time() - start


class Candidate:
    def __init__(self, client: RestClient, identity: str, **kw) -> None:
        self.working = False
        self.stopped = 0
        self.work_cancelled = False
        self.leaders: list[str] = []
        self.elector = LeaderElector(client, name="ctrl", identity=identity,
                                     on_started_leading=self.work, on_stopped_leading=self.stop,
                                     on_new_leader=self.leaders.append, **FAST, **kw)
        self.task: asyncio.Task | None = None

    async def work(self) -> None:
        self.working = True
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            self.work_cancelled = True
            self.working = False
            raise

    def stop(self) -> None:
        self.stopped += 1

    def start(self) -> None:
        self.task = asyncio.create_task(self.elector.run())

    async def cancel(self) -> None:
        if self.task is not None and not self.task.done():
            self.task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await self.task


@pytest.fixture
async def client(api_server):
    async with RestClient(Config(servers=[api_server.url])) as c:
        yield c


async def test_one_leads_and_the_other_takes_over_when_it_stops(client):
    a, b = Candidate(client, "a"), Candidate(client, "b")
    a.start()
    try:
        await until(lambda: a.working)
        b.start()
        await until(lambda: b.elector.leader == "a")
        lease = await client.get(LEASES, "ctrl", "kube-system")
        assert lease["spec"]["holderIdentity"] == "a"
        assert lease["spec"]["leaseTransitions"] == 0
        # a keeps renewing: renewTime moves on while b stays a follower.
        first = lease["spec"]["renewTime"]
        await until(lambda: b.elector._observed["renewTime"] != first)
        assert not b.working and a.elector.is_leader()
        acquired = lease["spec"]["acquireTime"]
        await a.cancel()  # dies without releasing the lease
        assert a.work_cancelled and a.stopped == 1
        took = await until(lambda: b.working, within=5)
        assert took <= FAST["lease_duration"] + 3 * FAST["retry_period"] * 2.2
        lease = await client.get(LEASES, "ctrl", "kube-system")
        assert lease["spec"]["holderIdentity"] == "b"
        assert lease["spec"]["leaseTransitions"] == 1
        assert lease["spec"]["acquireTime"] != acquired
        assert b.leaders == ["a", "b"]
    finally:
        await a.cancel()
        await b.cancel()


async def test_release_on_cancel_hands_over_at_once(client):
    a = Candidate(client, "a", release_on_cancel=True)
    a.start()
    b = Candidate(client, "b")
    try:
        await until(lambda: a.working)
        await a.cancel()
        lease = await client.get(LEASES, "ctrl", "kube-system")
        assert lease["spec"]["holderIdentity"] == ""
        b.start()
        # No waiting out the lease: the released lease is free.
        await until(lambda: b.working, within=FAST["lease_duration"])
    finally:
        await a.cancel()
        await b.cancel()


async def test_release_after_an_unseen_renewal_still_frees_the_lease(client):
    """A renewal that lands while the leader is cancelled leaves its resourceVersion stale;
    the release must read the lease again rather than give up on the conflict."""
    a = Candidate(client, "a", release_on_cancel=True)
    a.start()
    try:
        await until(lambda: a.working)
        lease = await client.get(LEASES, "ctrl", "kube-system")
        lease["spec"]["renewTime"] = lease["spec"]["renewTime"][:-3] + "1Z"  # same holder
        await client.update(LEASES, lease, "kube-system")  # the elector has not seen this
        await a.cancel()
        lease = await client.get(LEASES, "ctrl", "kube-system")
        assert lease["spec"]["holderIdentity"] == ""
    finally:
        await a.cancel()


async def test_a_leader_that_cannot_renew_stops_leading(server_starter, tmp_path):
    server, runner = await server_starter(tmp_path / "data")
    client = RestClient(Config(servers=[server.url]), retry_backoff=Backoff(0.02, 0.05))
    a = Candidate(client, "a")
    try:
        a.start()
        await until(lambda: a.working)
        await runner.cleanup()  # the API server goes away
        took = await until(lambda: a.task.done(), within=5)
        assert took <= FAST["renew_deadline"] + 2 * FAST["retry_period"] + 0.5
        assert a.work_cancelled and a.stopped == 1 and not a.elector.is_leader()
        await a.task  # run() returns normally when leadership is lost
    finally:
        await a.cancel()
        await client.close()


def test_durations_are_checked():
    with pytest.raises(ValueError):
        LeaderElector(None, name="x", identity="i", on_started_leading=None,  # type: ignore[arg-type]
                      lease_duration=1, renew_deadline=2, retry_period=0.1)
    with pytest.raises(ValueError):
        LeaderElector(None, name="x", identity="i", on_started_leading=None,  # type: ignore[arg-type]
                      lease_duration=3, renew_deadline=2, retry_period=2)
