"""The Proxier against a real API server, programming the simulated backend: Services and
EndpointSlices made through the API become frontends; changes coalesce; drift, failures and a
colliding Service are survived; metrics and health are served; stop removes the table."""

from __future__ import annotations

import asyncio
import functools
import logging
import sys
from pathlib import Path

import aiohttp
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "unit" / "proxy"))
from proxy_objects import endpoint, endpoint_slice, port, service  # noqa: E402

from pybernetes.client.informer import SharedInformerFactory  # noqa: E402
from pybernetes.client.kubeconfig import Config  # noqa: E402
from pybernetes.client.rest import RestClient  # noqa: E402
from pybernetes.proxy.backend import SimulatedBackend, SyncError  # noqa: E402
from pybernetes.proxy.conntrack import Conntrack, ConntrackError, Flow  # noqa: E402
from pybernetes.proxy.proxier import ENDPOINT_SLICES, NODES, SERVICES, Proxier, ProxierOptions  # noqa: E402
from pybernetes.proxy.table import Target  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "support"))
import async_poll  # noqa: E402

poll = functools.partial(async_poll.poll, within=10.0, interval=0.02)


def options(**kw) -> ProxierOptions:
    base = dict(node_name="node-a", cluster_cidr="10.244.0.0/16", min_sync_period=0.05, sync_period=0.3,
                sysctls=False, metrics_port=0, healthz_port=0)
    base.update(kw)
    return ProxierOptions(**base)


async def create_service(client: RestClient, obj: dict) -> str:
    obj = {**obj, "spec": {k: v for k, v in obj["spec"].items() if k not in ("clusterIP", "clusterIPs")}}
    created = await client.create(SERVICES, obj, "default")
    return created["spec"]["clusterIP"]


def frontend_of(backend: SimulatedBackend):
    async def read(ip: str, number: int = 80, protocol: str = "tcp") -> Target | None:
        return (await backend.programmed()).frontends.get((ip, protocol, number))
    return read


async def test_services_and_slices_from_the_api_become_frontends(api_server) -> None:
    backend = SimulatedBackend(stale_grace=0.05)
    async with RestClient(Config(servers=[api_server.url])) as client:
        await client.create(NODES, {"metadata": {"name": "node-a"},
                                    "status": {"addresses": [{"type": "InternalIP", "address": "10.0.0.5"}]}})
        proxier = Proxier(client, options(), backend=backend)
        await proxier.start()
        try:
            assert await proxier.wait_synced(10)
            read = frontend_of(backend)
            web = await create_service(client, service("web", None, [port("http", 80, node_port=30080)],
                                                       type="NodePort"))
            await client.create(ENDPOINT_SLICES, endpoint_slice("web", [
                endpoint("10.244.0.1"), endpoint("10.244.0.2"), endpoint("10.244.0.3", node="node-b")]), "default")
            three = Target("dnat", ("10.244.0.1:8080", "10.244.0.2:8080", "10.244.0.3:8080"))

            async def web_is(target):
                async def check():
                    return await read(web) == target
                return check

            await poll(await web_is(three), what="three endpoints")
            frontends = (await backend.programmed()).frontends
            assert frontends[("nodeport", "tcp", 30080)] == three
            table = (await backend.programmed()).table
            assert set(table.sets["nodeport-ips"].elements) == {"10.0.0.5"}  # the Node's InternalIP

            slice_obj = await client.get(ENDPOINT_SLICES, "web-abcde", "default")
            slice_obj["endpoints"][1]["conditions"] = {"ready": False}  # fails its readiness probe
            await client.update(ENDPOINT_SLICES, slice_obj, "default")
            await poll(await web_is(Target("dnat", ("10.244.0.1:8080", "10.244.0.3:8080"))), what="two")
            await client.delete(ENDPOINT_SLICES, "web-abcde", "default")
            await poll(await web_is(Target("reject")), what="reject")
            await client.delete(SERVICES, "web", "default")
            await poll(await web_is(None), what="gone")

            async def collected():  # its chains, flushed at once, are deleted after the grace period
                return not [name for name in (await backend.programmed()).table.chains if "/web/" in name]

            await poll(collected, what="unused chains deleted")

            async with aiohttp.ClientSession() as http:
                async with http.get(f"http://127.0.0.1:{proxier.metrics_port}/metrics") as resp:
                    text = await resp.text()
                values = dict(line.rsplit(" ", 1) for line in text.splitlines() if not line.startswith("#"))
                assert float(values["kubeproxy_sync_proxy_rules_service_changes_total"]) >= 2  # and kubernetes
                assert float(values["kubeproxy_sync_proxy_rules_endpoint_changes_total"]) == 3
                assert float(values["kubeproxy_sync_full_proxy_rules_duration_seconds_count"]) >= 1
                assert float(values["kubeproxy_sync_partial_proxy_rules_duration_seconds_count"]) >= 4
                assert 'kubeproxy_sync_proxy_rules_nftables_objects{type="chains"}' in text
                async with http.get(f"http://127.0.0.1:{proxier.healthz_port}/healthz") as resp:
                    assert resp.status == 200 and (await resp.json())["nodeEligible"] is True
        finally:
            await proxier.stop()
        assert not (await backend.programmed()).exists  # its table is removed on a clean stop


async def test_a_burst_of_changes_coalesces(api_server) -> None:
    backend = SimulatedBackend()
    async with RestClient(Config(servers=[api_server.url])) as client:
        proxier = Proxier(client, options(min_sync_period=1.0), backend=backend)
        await proxier.start()
        try:
            assert await proxier.wait_synced(10)
            before = proxier.syncs
            ips = await asyncio.gather(*(create_service(client, service(f"s{i}", None)) for i in range(20)))

            async def all_there():
                frontends = (await backend.programmed()).frontends
                return all((ip, "tcp", 80) in frontends for ip in ips)

            await poll(all_there, what="20 services")
            assert proxier.syncs - before <= 3  # one sync a second at most: the burst coalesced
        finally:
            await proxier.stop()


class FlakyBackend(SimulatedBackend):
    def __init__(self, failures: int) -> None:
        super().__init__(stale_grace=0.0)
        self.failures = failures

    async def _apply(self, transaction) -> None:
        if self.failures > 0:
            self.failures -= 1
            raise SyncError("injected failure")
        await super()._apply(transaction)


async def test_failures_and_drift_are_repaired_and_a_colliding_service_breaks_nothing(
        api_server, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, "pybernetes.proxy")
    backend = FlakyBackend(failures=3)
    factory = None
    async with RestClient(Config(servers=[api_server.url])) as client:
        factory = SharedInformerFactory(client)
        proxier = Proxier(client, options(), backend=backend, informers=factory)
        await proxier.start()
        try:
            assert await proxier.wait_synced(20)  # three failed syncs first, retried with backoff
            assert proxier.metrics.failures._value.get() >= 3
            read = frontend_of(backend)
            old = await create_service(client, service("old", None, externalIPs=["192.0.2.7"], externalTrafficPolicy="Cluster"))
            await client.create(ENDPOINT_SLICES, endpoint_slice("old", [endpoint("10.244.0.1")]), "default")
            await poll(lambda: read("192.0.2.7"), what="the external IP")
            await asyncio.sleep(1.1)  # creationTimestamp has a one-second resolution
            young = await create_service(client, service("young", None, externalIPs=["192.0.2.7"], externalTrafficPolicy="Cluster"))
            await client.create(ENDPOINT_SLICES, endpoint_slice("young", [endpoint("10.244.0.2")]), "default")

            async def young_ready():
                return await read(young) == Target("dnat", ("10.244.0.2:8080",))

            await poll(young_ready, what="the younger service")
            assert await read("192.0.2.7") == Target("dnat", ("10.244.0.1:8080",))
            assert await read(old) == Target("dnat", ("10.244.0.1:8080",))
            assert "192.0.2.7:80/tcp is claimed by several services" in caplog.text

            backend.kernel.apply([("delete-table",)])  # someone removes the table
            await poll(lambda: read(old), within=5, what="the repaired table")
            assert proxier.metrics.drift._value.get() >= 1
        finally:
            await proxier.stop(cleanup=False)
        assert (await backend.programmed()).exists  # stop(cleanup=False) leaves it
        assert all(inf.started for inf in factory._informers.values())  # a shared factory runs on
        await factory.shutdown()


class RecordingConntrack(Conntrack):
    """Records what it is asked to delete; fails while ``failures`` last."""

    def __init__(self, failures: int = 0) -> None:
        super().__init__()
        self.calls: list[list[Flow]] = []
        self.failures = failures

    def available(self) -> bool:
        return True

    async def delete(self, flows) -> int:
        self.calls.append(list(flows))
        if self.failures > 0:
            self.failures -= 1
            raise ConntrackError("injected failure")
        return len(self.calls[-1])


async def test_stale_udp_flows_are_deleted_after_committed_syncs_and_failures_only_logged(
        api_server, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, "pybernetes.proxy")
    backend = FlakyBackend(failures=0)
    async with RestClient(Config(servers=[api_server.url])) as client:
        proxier = Proxier(client, options(), backend=backend)
        assert proxier.conntrack is None  # the simulated backend has no kernel flows
        proxier.conntrack = tool = RecordingConntrack(failures=1)
        await proxier.start()
        try:
            assert await proxier.wait_synced(10)
            read = frontend_of(backend)
            dns = await create_service(client, service("dns", None, [port("dns", 53, "UDP")]))
            udp = [{"name": "dns", "port": 5353, "protocol": "UDP"}]
            await client.create(ENDPOINT_SLICES, endpoint_slice("dns", [endpoint("10.244.0.1")], udp), "default")
            await poll(lambda: read(dns, 53, "udp"), what="the UDP service")
            await poll(lambda: asyncio.sleep(0, "injected failure" in caplog.text), what="the failure logged")
            assert [Flow(dns)] in tool.calls  # newly active (that first cleanup failed: logged, not fatal)

            calls = len(tool.calls)
            backend.failures = 3  # the next sync fails (and both full retries): nothing is deleted until one commits
            slice_obj = await client.get(ENDPOINT_SLICES, "dns-abcde", "default")
            slice_obj["endpoints"] = [endpoint("10.244.0.2")]
            await client.update(ENDPOINT_SLICES, slice_obj, "default")

            async def moved() -> bool:
                return await read(dns, 53, "udp") == Target("dnat", ("10.244.0.2:5353",))

            await poll(moved, what="the moved endpoint")
            await poll(lambda: asyncio.sleep(0, len(tool.calls) > calls), what="the gone endpoint's flows deleted")
            assert tool.calls[calls:] == [[Flow(dns, 0, "10.244.0.1")]]
            assert proxier.metrics.failures._value.get() >= 2

            proxier.conntrack = Conntrack("/nonexistent/conntrack")  # not installed: logged once
            for ip in ("10.244.0.3", "10.244.0.4"):
                slice_obj = await client.get(ENDPOINT_SLICES, "dns-abcde", "default")
                slice_obj["endpoints"] = [endpoint(ip)]
                await client.update(ENDPOINT_SLICES, slice_obj, "default")

                async def there(ip: str = ip) -> bool:
                    return await read(dns, 53, "udp") == Target("dnat", (f"{ip}:5353",))

                await poll(there, what=f"the endpoint {ip}")
            assert caplog.text.count("/nonexistent/conntrack is not installed") == 1
            assert proxier.conntrack is None and proxier.last_error == ""
        finally:
            await proxier.stop()


async def test_an_unexpected_error_in_a_sync_does_not_end_the_sync_loop(api_server, caplog) -> None:
    caplog.set_level(logging.ERROR, "pybernetes.proxy")
    backend = SimulatedBackend(stale_grace=0.05)
    async with RestClient(Config(servers=[api_server.url])) as client:
        proxier = Proxier(client, options(), backend=backend)
        real, calls = proxier.render_config, []

        def breaks_once():
            calls.append(1)
            if len(calls) == 2:  # the first sync after start works; the next one meets a bug
                raise ValueError("a bug outside the backend")
            return real()

        proxier.render_config = breaks_once
        await proxier.start()
        try:
            assert await proxier.wait_synced(10)
            ip = await create_service(client, service("late", None))
            await client.create(ENDPOINT_SLICES, endpoint_slice("late", [endpoint("10.244.0.9")]), "default")
            read = frontend_of(backend)
            assert await poll(lambda: read(ip), within=10, what="the service after the failed sync")
            assert "a bug outside the backend" in caplog.text
        finally:
            await proxier.stop(cleanup=False)
