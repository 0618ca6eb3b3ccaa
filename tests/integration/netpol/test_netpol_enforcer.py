"""NetworkPolicy enforced on a node in network namespaces, driven through a real API server.

Each test starts the in-process API server, a NetnsLab node (a bridge with pods as network
namespaces, busybox httpd in them) and a NetworkPolicyEnforcer programming nftables inside the
lab's node namespace.  Pods are API objects bound to the lab node whose status carries the lab
pods' addresses (no kubelet runs); connectivity is checked with real wget.  As root only."""

from __future__ import annotations

import asyncio
import sys
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from pybernetes.client.informer import SharedInformerFactory
from pybernetes.client.kubeconfig import Config
from pybernetes.client.rest import RestClient
from pybernetes.proxy.netpol import NetworkPolicyEnforcer
from pybernetes.proxy.nft import Nft

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "support"))
import netns_lab  # noqa: E402

pytestmark = pytest.mark.skipif(netns_lab.available() is not None or not Nft.available(),
                                reason=str(netns_lab.available() or "needs nft"))

NODE = "np-node"
TABLE = "pybernetes-netpol"
PODS = ("", "v1", "pods")
NAMESPACES = ("", "v1", "namespaces")
POLICIES = ("networking.k8s.io", "v1", "networkpolicies")
BLOCKED = 1  # seconds a blocked wget waits


async def until(check: Callable[[], Awaitable[bool]], within: float = 15.0, what: str = "condition") -> None:
    deadline = asyncio.get_running_loop().time() + within
    while not await check():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"{what}: not met within {within}s")
        await asyncio.sleep(0.05)


class Cluster:
    """The lab node, the API client and the enforcer of one test."""

    def __init__(self, lab: netns_lab.NetnsLab, client: RestClient, enforcer: NetworkPolicyEnforcer,
                 nft: Nft) -> None:
        self.lab, self.client, self.enforcer, self.nft = lab, client, enforcer, nft
        self.ips: dict[str, str] = {}  # "ns/name" -> lab pod IP

    async def namespace(self, name: str, **labels: str) -> None:
        await self.client.create(NAMESPACES, {"metadata": {"name": name, "labels": labels}})

    async def pod(self, ns: str, name: str, ports: tuple[int, ...] = (), node: str = NODE, **labels: str) -> str:
        """A lab pod serving httpd on ``ports`` and its Pod object (bound, Running, with its IP)."""
        lab_pod = await asyncio.to_thread(self.lab.add_pod, f"{ns[-1]}{name}"[:6])
        for port in ports:
            await asyncio.to_thread(self.lab.serve_http, lab_pod.netns, port, f"{name}:{port}")
        container = {"name": "c", "image": "busybox",
                     "ports": [{"name": "http" if port == 80 else f"p{port}", "containerPort": port}
                               for port in ports]}
        await self.client.create(PODS, {"metadata": {"name": name, "namespace": ns, "labels": labels},
                                        "spec": {"nodeName": node, "containers": [container]}}, ns)
        await self.client.patch(PODS, name, {"status": {"phase": "Running", "podIP": lab_pod.ip,
                                                        "podIPs": [{"ip": lab_pod.ip}]}},
                                ns, subresource="status")
        self.ips[f"{ns}/{name}"] = lab_pod.ip
        return lab_pod.ip

    def netns(self, key: str) -> str:
        return next(p.netns for p in self.lab.pods.values() if p.ip == self.ips[key])

    async def get(self, source: str, target: str, port: int = 80, wait: float = 3) -> str | None:
        """What ``target``'s httpd answers to ``source`` (a pod key, or "node"), None if blocked."""
        netns = self.lab.node if source == "node" else self.netns(source)
        return await asyncio.to_thread(self.lab.http_get, netns, self.ips[target], port, wait)

    async def reaches(self, source: str, target: str, port: int = 80) -> bool:
        return await self.get(source, target, port) == f"{target.split('/')[1]}:{port}"

    async def blocked(self, source: str, target: str, port: int = 80) -> bool:
        return await self.get(source, target, port, BLOCKED) is None

    async def eventually_reaches(self, source: str, target: str, port: int = 80) -> None:
        await until(lambda: self.reaches(source, target, port), what=f"{source} -> {target}:{port}")

    async def table(self) -> str:
        process = await asyncio.create_subprocess_exec(*self.nft._argv("list", "table", "ip", TABLE),
                                                       stdout=asyncio.subprocess.PIPE,
                                                       stderr=asyncio.subprocess.DEVNULL)
        out, _ = await process.communicate()
        return out.decode()

    async def until_table(self, predicate: Callable[[str], bool], what: str) -> None:
        async def check() -> bool:
            return predicate(await self.table())
        await until(check, what=what)

    async def policy(self, ns: str, name: str, **spec) -> None:
        spec.setdefault("podSelector", {})
        await self.client.create(POLICIES, {"metadata": {"name": name, "namespace": ns}, "spec": spec}, ns)
        await self.until_table(lambda text: f"pol-in_{ns}_{name} " in text or f"pol-eg_{ns}_{name} " in text,
                               f"policy {ns}/{name} in the table")

    async def delete_policy(self, ns: str, name: str) -> None:
        await self.client.delete(POLICIES, name, ns)
        await self.until_table(lambda text: f"_{ns}_{name} " not in text, f"policy {ns}/{name} gone")


@pytest.fixture
async def cluster(api_server, request):
    """The lab with namespaces np-a (team=a: web serving 80 and 8081, peer) and np-b (team=b:
    client serving 80, other) and a started enforcer; a test parametrizing ``cluster`` with True
    gives the enforcer a factory it shares (and must leave running when it stops)."""
    prefix = f"np{uuid.uuid4().hex[:4]}"
    lab = await asyncio.to_thread(netns_lab.NetnsLab, prefix, "10.244.93.0/24")
    nft = Nft(netns=lab.node)
    enforcer = None
    shared = None
    try:
        async with RestClient(Config(servers=[api_server.url])) as client:
            if getattr(request, "param", False):
                shared = SharedInformerFactory(client)
            enforcer = NetworkPolicyEnforcer(client, NODE, nft=nft, table=TABLE, informers=shared,
                                             min_sync_period=0.05, drift_check_period=0.2)
            c = Cluster(lab, client, enforcer, nft)
            await c.namespace("np-a", team="a")
            await c.namespace("np-b", team="b")
            await c.pod("np-a", "web", ports=(80, 8081), app="web")
            await c.pod("np-a", "peer", role="client")
            await c.pod("np-b", "client", ports=(80,), role="client")
            await c.pod("np-b", "other")
            await enforcer.start()
            assert await enforcer.wait_for_sync(15)
            yield c
            await enforcer.stop()
            enforcer = None
            assert not await nft.table_exists("ip", TABLE), "the table is removed on stop"
            if shared is not None:
                pods = shared.informer(PODS)
                assert len(pods._tasks) > 0, "a shared factory keeps running after the enforcer stops"
    finally:
        if enforcer is not None:
            await enforcer.stop()
        if shared is not None:
            await shared.shutdown()
        await asyncio.to_thread(lab.close)


async def test_ingress_default_deny_allow_from_labelled_pod_of_another_namespace(cluster):
    c = cluster
    for source in ("np-b/client", "np-b/other", "np-a/peer", "node"):
        assert await c.reaches(source, "np-a/web"), f"no policy: {source} reaches web"

    await c.policy("np-a", "deny")
    assert await c.blocked("np-b/client", "np-a/web")
    assert await c.blocked("np-a/peer", "np-a/web")
    assert await c.reaches("node", "np-a/web"), "the node always reaches its pods"
    assert await c.reaches("np-a/web", "np-b/client"), "ingress isolation does not limit egress"

    await c.policy("np-a", "from-b-clients", podSelector={"matchLabels": {"app": "web"}}, ingress=[{"from": [
        {"namespaceSelector": {"matchLabels": {"team": "b"}}, "podSelector": {"matchLabels": {"role": "client"}}}]}])
    await c.eventually_reaches("np-b/client", "np-a/web")
    assert await c.blocked("np-b/other", "np-a/web"), "unlabelled pod of the allowed namespace"
    assert await c.blocked("np-a/peer", "np-a/web"), "labelled pod of another namespace"

    # a pod coming later is a peer at once (an incremental change, no table rebuild)
    full_syncs = c.enforcer.full_syncs
    await c.pod("np-b", "late", ports=(80,), role="client")
    await c.eventually_reaches("np-b/late", "np-a/web")
    assert c.enforcer.full_syncs == full_syncs

    # the namespace loses its label: its pods lose their access
    await c.client.patch(NAMESPACES, "np-b", {"metadata": {"labels": {"team": "c"}}})
    await c.until_table(lambda text: c.ips["np-b/client"] not in text, "np-b's pods out of the peer set")
    assert await c.blocked("np-b/client", "np-a/web")

    await c.delete_policy("np-a", "from-b-clients")
    await c.delete_policy("np-a", "deny")
    for source in ("np-b/client", "np-b/other", "np-a/peer"):
        await c.eventually_reaches(source, "np-a/web")


async def test_egress_default_deny_and_ports(cluster):
    c = cluster
    await c.policy("np-b", "no-egress", podSelector={"matchLabels": {"role": "client"}}, policyTypes=["Egress"])
    assert await c.blocked("np-b/client", "np-a/web")
    assert await c.reaches("np-b/other", "np-a/web"), "a pod the policy does not select"
    assert await c.reaches("node", "np-a/web")
    await asyncio.to_thread(c.lab.serve_http, c.lab.node, 8099, "the node")
    answer = await asyncio.to_thread(c.lab.http_get, c.netns("np-b/client"), c.lab.gateway, 8099, 3)
    assert answer == "the node", "a pod always reaches its node"

    # egress to web's named port "http": resolved against the peer pod (port 80, not 8081)
    await c.policy("np-b", "to-web-http", podSelector={"matchLabels": {"role": "client"}}, egress=[{
        "to": [{"namespaceSelector": {}, "podSelector": {"matchLabels": {"app": "web"}}}],
        "ports": [{"port": "http"}]}])
    await c.eventually_reaches("np-b/client", "np-a/web", 80)
    assert await c.blocked("np-b/client", "np-a/web", 8081)
    await c.delete_policy("np-b", "to-web-http")
    await c.delete_policy("np-b", "no-egress")

    # ingress ports: a range that holds 8081 but not 80
    await c.policy("np-a", "range", podSelector={"matchLabels": {"app": "web"}},
                   ingress=[{"ports": [{"port": 8000, "endPort": 8100}]}])
    await c.eventually_reaches("np-b/client", "np-a/web", 8081)
    assert await c.blocked("np-b/client", "np-a/web", 80)
    # UDP only on 80: TCP 80 stays blocked; TCP by name opens it
    await c.policy("np-a", "udp", podSelector={"matchLabels": {"app": "web"}},
                   ingress=[{"ports": [{"port": 80, "protocol": "UDP"}]}])
    assert await c.blocked("np-b/client", "np-a/web", 80)
    await c.policy("np-a", "named", podSelector={"matchLabels": {"app": "web"}}, ingress=[{"ports": [{"port": "http"}]}])
    await c.eventually_reaches("np-b/client", "np-a/web", 80)


async def test_both_ends_must_allow(cluster):
    c = cluster
    await c.policy("np-b", "egress-to-web", podSelector={}, egress=[{"to": [
        {"namespaceSelector": {}, "podSelector": {"matchLabels": {"app": "web"}}}]}])
    await c.eventually_reaches("np-b/client", "np-a/web")
    await c.policy("np-a", "deny")  # the destination's ingress isolation still applies
    assert await c.blocked("np-b/client", "np-a/web")
    await c.policy("np-a", "from-b", ingress=[{"from": [{"namespaceSelector": {"matchLabels": {"team": "b"}}}]}])
    await c.eventually_reaches("np-b/client", "np-a/web")
    assert await c.blocked("np-a/peer", "np-a/web")


async def test_ip_block_with_except(cluster):
    c = cluster
    await c.policy("np-a", "block", podSelector={"matchLabels": {"app": "web"}}, ingress=[{"from": [
        {"ipBlock": {"cidr": "10.244.93.0/24", "except": [f"{c.ips['np-b/client']}/32"]}}]}])
    await c.eventually_reaches("np-b/other", "np-a/web")
    await c.eventually_reaches("np-a/peer", "np-a/web")
    assert await c.blocked("np-b/client", "np-a/web")
    # a block that holds none of the pods
    await c.delete_policy("np-a", "block")
    await c.policy("np-a", "elsewhere", ingress=[{"from": [{"ipBlock": {"cidr": "192.168.0.0/16"}}]}])
    assert await c.blocked("np-b/other", "np-a/web")


@pytest.mark.parametrize("cluster", [True], indirect=True, ids=["shared-informers"])
async def test_pods_of_other_nodes_are_peers_and_the_table_comes_back(cluster):
    c = cluster
    # "remote" is a lab pod, but its Pod object says it runs on another node: not enforced here
    await c.pod("np-b", "remote", ports=(80,), node="elsewhere", role="client")
    await c.policy("np-b", "deny")
    assert await c.reaches("np-a/web", "np-b/remote"), "another node enforces its own pods"
    assert await c.blocked("np-a/web", "np-b/client")
    await c.policy("np-a", "from-b-clients", podSelector={"matchLabels": {"app": "web"}}, ingress=[{"from": [
        {"namespaceSelector": {"matchLabels": {"team": "b"}}, "podSelector": {"matchLabels": {"role": "client"}}}]}])
    await c.eventually_reaches("np-b/remote", "np-a/web")

    # someone removes the table: the enforcer notices and recreates it
    syncs = c.enforcer.full_syncs
    assert await c.nft.delete_table("ip", TABLE)
    await c.until_table(lambda text: "pol-in_np-a_from-b-clients" in text, "the table recreated")

    async def counted() -> bool:  # nft commits before the enforcer's coroutine resumes and counts
        return c.enforcer.full_syncs > syncs

    await until(counted, what="the full sync counted")
    assert await c.blocked("np-a/peer", "np-a/web")
