"""The one contract suite every proxy backend passes (proxy/backend.py's ProxyBackend).

A backend's test module subclasses ``BackendContract`` (not collected by itself) and provides:

- ``make_backend``: ``make_backend(stale_grace=0.0) -> backend``, a fresh backend programming
  its own table (cleaned up by the fixture); two made in one test must not share a table (the
  table name comes from the config, so each nftables backend gets its own network namespace);
- ``tamper``: ``await tamper(backend, ops)`` applies table operations (proxy/table.py) to what
  the backend programmed behind its back (someone else editing the table).

Every check reads the table back (``programmed()``): what each service address and node port
leads to, and, for incremental syncs, that the table is exactly what a full sync makes.
"""

from __future__ import annotations

import asyncio
import dataclasses
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from proxy_objects import endpoint, endpoint_slice, lb_status, port, service  # noqa: E402

from pybernetes.proxy.backend import ProxyBackend, SyncError  # noqa: E402
from pybernetes.proxy.rules import RenderConfig  # noqa: E402
from pybernetes.proxy.table import DELETE_CHAIN, DELETE_TABLE, FLUSH_CHAIN, Target  # noqa: E402
from pybernetes.proxy.tracker import ChangeTracker, ProxyState, refresh  # noqa: E402

CONFIG = RenderConfig(table="pyb-contract", node_name="node-a", cluster_cidr="10.244.0.0/16",
                      nodeport_ips=("172.31.254.1", "127.0.0.1"))


class World:
    """Services and slices fed through the real change tracker into a ProxyState."""

    def __init__(self) -> None:
        self.tracker = ChangeTracker("node-a")
        self.state = ProxyState()

    def apply(self, *objs: dict, delete: bool = False) -> set:
        for obj in objs:
            if obj["kind"] == "Service":
                (self.tracker.service_deleted if delete else self.tracker.service_updated)(obj)
            else:
                (self.tracker.slice_deleted if delete else self.tracker.slice_updated)(obj)
        return refresh(self.tracker, self.state)


def scenario() -> list[dict]:
    eps = [endpoint("10.244.1.1"), endpoint("10.244.1.2"), endpoint("10.244.1.3", node="node-b"),
           endpoint("10.244.1.4", ready=False), endpoint("10.244.1.5", ready=False, terminating=True)]
    return [
        service("web", "10.43.0.10"), endpoint_slice("web", eps),
        service("empty", "10.43.0.11"),
        service("term", "10.43.0.12"),
        endpoint_slice("term", [endpoint("10.244.1.6", ready=False, serving=True, terminating=True),
                                endpoint("10.244.1.7", ready=False, serving=False, terminating=True)]),
        service("np", "10.43.0.13", [port("http", 80, node_port=30080)], type="NodePort"),
        endpoint_slice("np", [endpoint("10.244.1.8")]),
        service("ext", "10.43.0.14", [port("http", 8080)], externalIPs=["192.0.2.10"]),
        endpoint_slice("ext", [endpoint("10.244.1.9")]),
        service("lb", "10.43.0.15", [port("http", 443, node_port=30443)], type="LoadBalancer",
                status={"loadBalancer": {"ingress": [{"ip": "192.0.2.20"},
                                                     {"ip": "192.0.2.21", "ipMode": "Proxy"}]}},
                loadBalancerSourceRanges=["10.0.0.0/8", "198.51.100.0/24"]),
        endpoint_slice("lb", [endpoint("10.244.1.11")]),
        service("sticky", "10.43.0.16", sessionAffinity="ClientIP",
                sessionAffinityConfig={"clientIP": {"timeoutSeconds": 60}}),
        endpoint_slice("sticky", [endpoint("10.244.1.12"), endpoint("10.244.1.13")]),
        service("itp", "10.43.0.17", internalTrafficPolicy="Local"),
        endpoint_slice("itp", [endpoint("10.244.1.14"), endpoint("10.244.2.1", node="node-b")]),
        service("itp-none", "10.43.0.18", internalTrafficPolicy="Local"),
        endpoint_slice("itp-none", [endpoint("10.244.2.2", node="node-b")]),
        service("etp", "10.43.0.19", [port("http", 80, node_port=30081)], type="NodePort",
                externalTrafficPolicy="Local"),
        endpoint_slice("etp", [endpoint("10.244.1.15"), endpoint("10.244.2.3", node="node-b")]),
        service("etp-none", "10.43.0.20", [port("http", 80, node_port=30082)], type="NodePort",
                externalTrafficPolicy="Local"),
        endpoint_slice("etp-none", [endpoint("10.244.2.4", node="node-b")]),
        service("dns", "10.43.0.21", [port("dns", 53, "UDP"), port("dns-tcp", 53, "TCP")]),
        endpoint_slice("dns", [endpoint("10.244.1.16")], [{"name": "dns", "port": 5353, "protocol": "UDP"},
                                                          {"name": "dns-tcp", "port": 5353, "protocol": "TCP"}]),
        service("sctp", "10.43.0.22", [port("s", 9999, "SCTP")]),
        endpoint_slice("sctp", [endpoint("10.244.1.17")], [{"name": "s", "port": 9999, "protocol": "SCTP"}]),
        service("headless", "None"), endpoint_slice("headless", [endpoint("10.244.1.18")]),
        service("old", "10.43.0.23", externalIPs=["192.0.2.30"], created="2024-01-01T00:00:00Z"),
        endpoint_slice("old", [endpoint("10.244.1.19")]),
        service("young", "10.43.0.24", externalIPs=["192.0.2.30"], created="2024-02-01T00:00:00Z"),
        endpoint_slice("young", [endpoint("10.244.1.20")]),
    ]


def dnat(*ips: str, port: int = 8080, affinity: int = 0) -> Target:
    return Target("dnat", tuple(sorted(f"{ip}:{port}" for ip in ips)), affinity)


EXPECTED = {
    ("10.43.0.10", "tcp", 80): dnat("10.244.1.1", "10.244.1.2", "10.244.1.3"),
    ("10.43.0.11", "tcp", 80): Target("reject"),
    ("10.43.0.12", "tcp", 80): dnat("10.244.1.6"),
    ("10.43.0.13", "tcp", 80): dnat("10.244.1.8"),
    ("nodeport", "tcp", 30080): dnat("10.244.1.8"),
    ("10.43.0.14", "tcp", 8080): dnat("10.244.1.9"),
    ("192.0.2.10", "tcp", 8080): dnat("10.244.1.9"),
    ("10.43.0.15", "tcp", 443): dnat("10.244.1.11"),
    ("192.0.2.20", "tcp", 443): dnat("10.244.1.11"),
    ("nodeport", "tcp", 30443): dnat("10.244.1.11"),
    ("10.43.0.16", "tcp", 80): dnat("10.244.1.12", "10.244.1.13", affinity=60),
    ("10.43.0.17", "tcp", 80): dnat("10.244.1.14"),
    ("10.43.0.18", "tcp", 80): Target("drop"),
    ("10.43.0.19", "tcp", 80): dnat("10.244.1.15", "10.244.2.3"),
    ("nodeport", "tcp", 30081): dnat("10.244.1.15"),
    ("10.43.0.20", "tcp", 80): dnat("10.244.2.4"),
    ("nodeport", "tcp", 30082): Target("drop"),
    ("10.43.0.21", "udp", 53): dnat("10.244.1.16", port=5353),
    ("10.43.0.21", "tcp", 53): dnat("10.244.1.16", port=5353),
    ("10.43.0.22", "sctp", 9999): dnat("10.244.1.17", port=9999),
    ("10.43.0.23", "tcp", 80): dnat("10.244.1.19"),
    ("192.0.2.30", "tcp", 80): dnat("10.244.1.19"),
    ("10.43.0.24", "tcp", 80): dnat("10.244.1.20"),
}


async def programmed_frontends(backend: ProxyBackend) -> dict:
    return (await backend.programmed()).frontends


async def collect_all_garbage(backend: ProxyBackend, within: float = 5.0) -> None:
    """Delete what the backend left unused, once its grace period is over (polled)."""
    deadline = asyncio.get_running_loop().time() + within
    while (due := backend.garbage_due_in()) is not None:
        assert asyncio.get_running_loop().time() < deadline, "the stale objects never became due"
        if due > 0:
            await asyncio.sleep(min(due, 0.05))
            continue
        await backend.collect_garbage()


class BackendContract:
    async def test_it_is_a_backend(self, make_backend) -> None:
        backend = make_backend()
        assert isinstance(backend, ProxyBackend) and backend.name

    async def test_full_sync_programs_every_kind_of_frontend(self, make_backend) -> None:
        backend = make_backend()
        world = World()
        world.apply(*scenario())
        result = await backend.sync(world.state, CONFIG, None)
        assert result.full and result.operations > 0
        assert await programmed_frontends(backend) == EXPECTED
        assert not await backend.check_drift()
        table = (await backend.programmed()).table
        firewall = table.sets["firewall-ips"].elements
        assert list(firewall) == ["192.0.2.20 . tcp . 443"]  # the LoadBalancer IP only
        assert table.chains[firewall["192.0.2.20 . tcp . 443"].split()[1]].rules == [
            "ip saddr != { 10.0.0.0/8, 198.51.100.0/24 } drop"]
        counts = backend.counts()
        assert counts["chains"] > 20 and counts["rules"] > counts["chains"] and counts["elements"] > 20

    async def test_incremental_syncs_leave_what_a_full_sync_makes(self, make_backend) -> None:
        incremental, reference = make_backend(), make_backend()
        world = World()
        world.apply(*scenario())
        await incremental.sync(world.state, CONFIG, None)
        steps = [
            [endpoint_slice("web", [endpoint("10.244.1.1"), endpoint("10.244.1.30")])],  # one in, two out
            [endpoint_slice("web", [])],  # scaled to zero: reject
            [endpoint_slice("web", [endpoint("10.244.1.31"), endpoint("10.244.1.32")])],  # back
            [endpoint_slice("empty", [endpoint("10.244.1.33")])],  # the rejecting one gets endpoints
            [service("sticky", "10.43.0.16", sessionAffinity="ClientIP",
                     sessionAffinityConfig={"clientIP": {"timeoutSeconds": 120}})],  # new timeout
            [service("sticky", "10.43.0.16")],  # no affinity any more
            [service("np", "10.43.0.13", [port("http", 80, node_port=30099)], type="NodePort")],
            [service("etp-none", "10.43.0.20", [port("http", 80, node_port=30082)], type="NodePort")],
            [service("itp", "10.43.0.17")],
            [service("new", "10.43.0.40", externalIPs=["192.0.2.40"]),
             endpoint_slice("new", [endpoint("10.244.1.40")])],
            [service("lb", "10.43.0.15", [port("http", 443, node_port=30443)], type="LoadBalancer",
                     status=lb_status("192.0.2.20", "192.0.2.22"), loadBalancerSourceRanges=["10.0.0.0/8"])],
            [service("lb", "10.43.0.15", [port("http", 443, node_port=30443)], type="LoadBalancer",
                     status=lb_status("192.0.2.20", "192.0.2.22"))],  # no source ranges any more
        ]
        for step in steps:
            changed = world.apply(*step)
            assert changed, step
            result = await incremental.sync(world.state, CONFIG, changed)
            assert not result.full
            await reference.sync(world.state, CONFIG, None)
            mine, theirs = (await incremental.programmed()).table, (await reference.programmed()).table
            assert mine == theirs, mine.differences(theirs)
        frontends = await programmed_frontends(incremental)
        assert frontends[("10.43.0.10", "tcp", 80)] == dnat("10.244.1.31", "10.244.1.32")
        assert frontends[("10.43.0.11", "tcp", 80)] == dnat("10.244.1.33")
        assert frontends[("nodeport", "tcp", 30099)] == dnat("10.244.1.8")
        assert ("nodeport", "tcp", 30080) not in frontends
        assert frontends[("nodeport", "tcp", 30082)] == dnat("10.244.2.4")
        assert frontends[("192.0.2.22", "tcp", 443)] == dnat("10.244.1.11")
        assert frontends[("10.43.0.16", "tcp", 80)].affinity == 0
        assert not (await incremental.programmed()).table.sets["firewall-ips"].elements

    @pytest.mark.parametrize("grace", [0.0, 0.2], ids=["at-once", "deferred"])
    async def test_affinity_endpoints_coming_one_by_one(self, make_backend, grace: float) -> None:
        # each incremental sync rewrites the service chain, which uses the affinity sets of
        # endpoints programmed by earlier syncs: nft must be told about them again
        incremental, reference = make_backend(stale_grace=grace), make_backend()
        world = World()
        world.apply(service("sticky", "10.43.0.16", sessionAffinity="ClientIP"))
        await incremental.sync(world.state, CONFIG, None)
        a, b, c = "10.78.0.9", "10.78.0.10", "10.78.0.11"
        not_ready, draining = {"ready": False}, {"ready": False, "serving": True, "terminating": True}
        steps: list[tuple[dict[str, dict], Target, bool]] = [
            ({a: not_ready, b: not_ready, c: not_ready}, Target("reject"), False),
            ({a: {}, b: not_ready, c: not_ready}, dnat(a), False),
            ({a: {}, b: {}, c: not_ready}, dnat(a, b), False),
            ({a: {}, b: {}, c: {}}, dnat(a, b, c), False),
            ({a: {}, b: draining, c: {}}, dnat(a, c), True),  # b's set and chain go (later)
            ({a: draining, b: draining, c: {}}, dnat(c), False),
            ({a: draining, b: draining}, dnat(a, b), True),  # none ready: the serving ones
            ({b: {}}, dnat(b), True),
            ({a: not_ready, b: {}, c: {}}, dnat(b, c), False),
            ({a: {}, b: {}, c: {}}, dnat(a, b, c), False),
        ]
        for wanted, target, collect in steps:
            changed = world.apply(endpoint_slice("sticky", [endpoint(ip, **conditions)
                                                            for ip, conditions in wanted.items()]))
            assert changed, wanted
            result = await incremental.sync(world.state, CONFIG, changed)
            assert not result.full
            frontend = (await programmed_frontends(incremental))[("10.43.0.16", "tcp", 80)]
            assert frontend == (target if target.verdict != "dnat" else dataclasses.replace(target, affinity=10800))
            if collect:  # the deferred deletes happen before the next change
                await collect_all_garbage(incremental)
            await reference.sync(world.state, CONFIG, None)
            if not grace:
                mine, theirs = (await incremental.programmed()).table, (await reference.programmed()).table
                assert mine == theirs, mine.differences(theirs)
        await collect_all_garbage(incremental)
        mine, theirs = (await incremental.programmed()).table, (await reference.programmed()).table
        assert mine == theirs, mine.differences(theirs)
        assert not await incremental.check_drift()

    async def test_deleting_services_and_losing_a_collision(self, make_backend) -> None:
        backend = make_backend()
        world = World()
        objs = scenario()
        world.apply(*objs)
        await backend.sync(world.state, CONFIG, None)
        old = next(o for o in objs if o["kind"] == "Service" and o["metadata"]["name"] == "old")
        changed = world.apply(old, delete=True)
        assert {str(n) for n in changed} == {"default/old:http/tcp", "default/young:http/tcp"}
        await backend.sync(world.state, CONFIG, changed)
        frontends = await programmed_frontends(backend)
        assert frontends[("192.0.2.30", "tcp", 80)] == dnat("10.244.1.20")  # the younger one now
        assert ("10.43.0.23", "tcp", 80) not in frontends
        services = [o for o in objs if o["kind"] == "Service"]
        changed = world.apply(*services, delete=True)
        await backend.sync(world.state, CONFIG, changed)
        table = (await backend.programmed()).table
        assert (await backend.programmed()).frontends == {}
        assert not [name for name in table.chains if "/" in name]  # no service chain is left
        assert not table.sets["cluster-ips"].elements
        assert not await backend.check_drift()

    async def test_unused_chains_go_after_the_grace_period(self, make_backend) -> None:
        backend = make_backend(stale_grace=0.2)
        world = World()
        world.apply(*scenario())
        await backend.sync(world.state, CONFIG, None)
        chains = set((await backend.programmed()).table.chains)
        changed = world.apply(endpoint_slice("web", [endpoint("10.244.1.1")]))
        await backend.sync(world.state, CONFIG, changed)
        after = (await backend.programmed()).table
        assert chains <= set(after.chains)  # flushed, not deleted yet
        assert [n for n in chains if "10.244.1.2/" in n and not after.chains[n].rules]
        assert backend.garbage_due_in() is not None
        await asyncio.sleep(0.25)
        await backend.collect_garbage()
        assert backend.garbage_due_in() is None
        final = (await backend.programmed()).table
        assert not [n for n in final.chains if "10.244.1.2/" in n]
        reference = make_backend()
        await reference.sync(world.state, CONFIG, None)
        assert final == (await reference.programmed()).table

    async def test_drift_is_found_and_repaired(self, make_backend, tamper) -> None:
        backend = make_backend()
        world = World()
        world.apply(*scenario())
        await backend.sync(world.state, CONFIG, None)
        expected = (await backend.programmed()).table
        chain = next(name for name in expected.chains if name.startswith("service-") and "/web/" in name)
        for ops in ([(FLUSH_CHAIN, chain)], [(DELETE_TABLE,)]):
            await tamper(backend, ops)
            assert await backend.check_drift()
            result = await backend.sync(world.state, CONFIG, set())
            assert result.full
            assert (await backend.programmed()).table == expected
            assert not await backend.check_drift()

    async def test_a_failed_transaction_changes_nothing(self, make_backend, tamper) -> None:
        backend = make_backend()
        world = World()
        world.apply(*scenario())
        await backend.sync(world.state, CONFIG, None)
        expected = (await backend.programmed()).table
        victim = next(name for name in expected.chains if name.startswith("endpoint-") and "10.244.1.2/" in name)
        web = next(name for name in expected.chains if name.startswith("service-") and "/web/" in name)
        await tamper(backend, [(FLUSH_CHAIN, web), (FLUSH_CHAIN, victim), (DELETE_CHAIN, victim)])
        before = (await backend.programmed()).table
        changed = world.apply(endpoint_slice("web", [endpoint("10.244.1.1")]))  # flushes the victim
        with pytest.raises(SyncError):
            await backend.sync(world.state, CONFIG, changed)
        assert (await backend.programmed()).table == before  # all or nothing
        result = await backend.sync(world.state, CONFIG, changed)  # untrusted now: full
        assert result.full
        frontends = await programmed_frontends(backend)
        assert frontends[("10.43.0.10", "tcp", 80)] == dnat("10.244.1.1")

    async def test_a_new_config_means_a_full_sync(self, make_backend) -> None:
        backend = make_backend()
        world = World()
        world.apply(*scenario())
        await backend.sync(world.state, CONFIG, None)
        config = dataclasses.replace(CONFIG, nodeport_ips=("172.31.254.5",), cluster_cidr="")
        result = await backend.sync(world.state, config, set())
        assert result.full
        table = (await backend.programmed()).table
        assert set(table.sets["nodeport-ips"].elements) == {"172.31.254.5"}
        assert not [r for c in table.chains.values() for r in c.rules if "10.244.0.0/16" in r]
        assert await programmed_frontends(backend) == EXPECTED

    async def test_cleanup_removes_the_table(self, make_backend) -> None:
        backend = make_backend()
        world = World()
        world.apply(*scenario())
        await backend.sync(world.state, CONFIG, None)
        await backend.cleanup()
        assert not (await backend.programmed()).exists
        await backend.cleanup()  # nothing left to remove: fine
        result = await backend.sync(world.state, CONFIG, set())  # and it can start again
        assert result.full and await programmed_frontends(backend) == EXPECTED
