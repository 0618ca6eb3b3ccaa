"""The NetworkPolicy renderer: the ruleset of a model, the full script, and the incremental
script — checked as text, and (as root, in a scratch network namespace) by nft itself: a diff
applied on top of the old table must leave exactly what a full sync of the new model makes."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import subprocess
import uuid

import pytest

from pybernetes.proxy.netpol_model import compute
from pybernetes.proxy.netpol_rules import build, diff_script, element, full_script, name
from pybernetes.proxy.nft import Nft

NODE = "n1"


def pod(ns: str, pod_name: str, ip: str, node: str = NODE, ports: list | None = None, **labels: str) -> dict:
    container: dict = {"name": "c", "image": "busybox", "ports": ports or []}
    return {"metadata": {"namespace": ns, "name": pod_name, "labels": labels},
            "spec": {"nodeName": node, "containers": [container]},
            "status": {"phase": "Running", "podIP": ip}}


def namespace(ns: str, **labels: str) -> dict:
    return {"metadata": {"name": ns, "labels": labels}}


def policy(ns: str, policy_name: str, **spec) -> dict:
    spec.setdefault("podSelector", {})
    return {"metadata": {"namespace": ns, "name": policy_name}, "spec": spec}


HTTP = [{"name": "http", "containerPort": 8080}]
PODS = [pod("a", "web", "10.0.0.2", ports=HTTP, app="web"), pod("a", "db", "10.0.0.3", app="db"),
        pod("b", "client", "10.0.0.4", role="client"), pod("b", "remote", "10.0.1.4", node="n2", role="client")]
NAMESPACES = [namespace("a", team="x"), namespace("b", team="y")]
RICH = [
    policy("a", "deny"),
    policy("a", "from-b", podSelector={"matchLabels": {"app": "web"}}, ingress=[
        {"from": [{"namespaceSelector": {"matchLabels": {"team": "y"}},
                   "podSelector": {"matchLabels": {"role": "client"}}}],
         "ports": [{"port": 80}, {"port": 8000, "endPort": 8100}, {"protocol": "UDP"}, {"port": "http"}]},
        {"from": [{"ipBlock": {"cidr": "192.168.0.0/16", "except": ["192.168.1.0/24"]}}]}]),
    policy("b", "egress", policyTypes=["Egress"], egress=[
        {"to": [{"namespaceSelector": {}, "podSelector": {"matchLabels": {"app": "web"}}}],
         "ports": [{"port": "http"}, {"protocol": "SCTP", "port": 9}]},
        {"to": [{"ipBlock": {"cidr": "0.0.0.0/0", "except": ["10.0.0.0/8"]}}]}]),
]


def ruleset(policies, pods=PODS, namespaces=NAMESPACES):
    return build(compute(pods, namespaces, policies, NODE))


def test_ruleset_of_a_rich_model():
    rs = ruleset(RICH)
    assert rs.ingress == {"10.0.0.2": "pod-in_a_web", "10.0.0.3": "pod-in_a_db"}
    assert rs.egress == {"10.0.0.4": "pod-eg_b_client"}  # not the pod of node n2
    assert rs.chains["pod-in_a_web"] == ("ip saddr 10.0.0.2 accept", "jump pol-in_a_deny",
                                         "jump pol-in_a_from-b", "drop")
    assert rs.chains["pod-eg_b_client"] == ("ip daddr 10.0.0.4 accept", "jump pol-eg_b_egress", "drop")
    assert rs.chains["pol-in_a_deny"] == ()
    assert rs.chains["pol-in_a_from-b"] == (
        "ip saddr @peers-in_a_from-b_0 meta l4proto udp accept",
        "ip saddr @peers-in_a_from-b_0 meta l4proto tcp th dport { 80, 8000-8100 } accept",
        "ip saddr @peers-in_a_from-b_0 ip daddr . meta l4proto . th dport @ports-in_a_from-b_0 accept",
        "ip saddr @peers-in_a_from-b_1 accept",
    )
    assert rs.sets["peers-in_a_from-b_0"].elements == {"10.0.0.4", "10.0.1.4"}
    assert rs.sets["ports-in_a_from-b_0"].elements == {"10.0.0.2 . tcp . 8080"}
    assert rs.sets["peers-in_a_from-b_1"].elements == {"192.168.0.0/24", "192.168.2.0-192.168.255.255"}
    assert rs.chains["pol-eg_b_egress"] == (
        "meta l4proto sctp th dport { 9 } goto check-ingress".replace("meta", "ip daddr @peers-eg_b_egress_0 meta"),
        "ip daddr . meta l4proto . th dport @ports-eg_b_egress_0 goto check-ingress",
        "ip daddr @peers-eg_b_egress_1 goto check-ingress",
    )
    assert rs.sets["ports-eg_b_egress_0"].elements == {"10.0.0.2 . tcp . 8080"}


def test_full_script_recreates_the_table_in_one_go():
    script = full_script("t", ruleset(RICH))
    lines = script.splitlines()
    assert lines[:3] == ["add table ip t", "delete table ip t", "table ip t {"]
    assert "    type filter hook forward priority filter; policy accept;" in lines
    assert "    ct state established,related accept" in lines
    assert lines[-2:] == ["add element ip t ingress-pods { 10.0.0.2 : goto pod-in_a_web, 10.0.0.3 : goto pod-in_a_db }",
                          "add element ip t egress-pods { 10.0.0.4 : goto pod-eg_b_client }"]
    # the chains jumped to are declared before the chains jumping to them
    assert lines.index("  chain pol-in_a_deny {") < lines.index("  chain pod-in_a_web {")
    empty = full_script("t", ruleset([]))
    assert "element" not in empty and "pod-" not in empty


def test_diff_of_equal_rulesets_is_empty_and_a_new_pod_is_small():
    assert diff_script("t", ruleset(RICH), ruleset(RICH)) == ""
    more = [*PODS, pod("b", "client2", "10.0.0.9", role="client")]
    script = diff_script("t", ruleset(RICH), ruleset(RICH, pods=more))
    assert script.splitlines() == [
        "add element ip t peers-in_a_from-b_0 { 10.0.0.9 }",
        "add chain ip t pod-eg_b_client2",
        "add rule ip t pod-eg_b_client2 ip daddr 10.0.0.9 accept",
        "add rule ip t pod-eg_b_client2 jump pol-eg_b_egress",
        "add rule ip t pod-eg_b_client2 drop",
        "add element ip t egress-pods { 10.0.0.9 : goto pod-eg_b_client2 }",
    ]
    # an address next to one already there collapses with it: the old element is replaced
    adjacent = [*PODS, pod("b", "client3", "10.0.0.5", role="client")]
    script = diff_script("t", ruleset(RICH), ruleset(RICH, pods=adjacent))
    assert script.splitlines()[:2] == ["delete element ip t peers-in_a_from-b_0 { 10.0.0.4 }",
                                       "add element ip t peers-in_a_from-b_0 { 10.0.0.4/31 }"]
    wider = [*adjacent, pod("b", "client4", "10.0.0.6", role="client")]
    script = diff_script("t", ruleset(RICH, pods=adjacent), ruleset(RICH, pods=wider))
    assert script.splitlines()[:2] == ["delete element ip t peers-in_a_from-b_0 { 10.0.0.4/31 }",
                                       "add element ip t peers-in_a_from-b_0 { 10.0.0.4-10.0.0.6 }"]


def test_elements_are_addresses_prefixes_or_ranges():
    assert element((167772162, 167772162)) == "10.0.0.2"
    assert element((167772160, 167772415)) == "10.0.0.0/24"
    assert element((0, 2**32 - 1)) == "0.0.0.0/0"
    assert element((167772161, 167772415)) == "10.0.0.1-10.0.0.255"
    assert element((167772160, 167772161)) == "10.0.0.0/31"
    assert element((167772161, 167772162)) == "10.0.0.1-10.0.0.2"


def test_names_stay_identifiers():
    assert name("pod-in", "ns", "web-1.x") == "pod-in_ns_web-1.x"
    long = name("pod-in", "ns", "x" * 250)
    assert re.fullmatch(r"pod-in_[0-9a-f]{24}", long)
    assert name("pod-in", "ns", "Odd Name") != name("pod-in", "ns", "odd-name")


# -- checked by nft, as root, in a scratch network namespace ------------------------------------

def _nft_missing() -> str | None:
    if os.geteuid() != 0:
        return "needs root (network namespaces)"
    if not shutil.which("nft") or not shutil.which("ip"):
        return "needs nft and ip"
    return None


@pytest.fixture
def scratch():
    reason = _nft_missing()
    if reason:
        pytest.skip(reason)
    netns = f"npu-{uuid.uuid4().hex[:8]}"
    subprocess.run(["ip", "netns", "add", netns], check=True)
    try:
        yield Nft(netns=netns)
    finally:
        subprocess.run(["ip", "netns", "del", netns], check=False)


async def _listing(nft: Nft, table: str) -> list[str]:
    process = await asyncio.create_subprocess_exec(*nft._argv("list", "table", "ip", table),
                                                   stdout=asyncio.subprocess.PIPE)
    out, _ = await process.communicate()
    text = out.decode()
    # the order of chains and of a set's elements is nft's business: compare sorted
    text = re.sub(r"elements = \{([^}]*)\}",
                  lambda m: "elements = {" + ",".join(sorted(e.strip() for e in m.group(1).split(","))) + "}",
                  text, flags=re.S)
    body = text.strip().removeprefix(f"table ip {table} {{").removesuffix("}")
    return sorted(block.strip() for block in body.split("\n\n"))

STEPS = [
    ([], PODS, NAMESPACES),
    (RICH, PODS, NAMESPACES),
    (RICH, [*PODS, pod("b", "client2", "10.0.0.5", role="client"), pod("a", "web2", "10.0.0.6", ports=HTTP, app="web")],
     NAMESPACES),
    (RICH, [*PODS, pod("b", "c5", "10.0.0.5", role="client"), pod("b", "c6", "10.0.0.6", role="client")],
     NAMESPACES),  # .4-.6: a range element replaces the /31
    (RICH, [p for p in PODS if p["metadata"]["name"] != "web"], NAMESPACES),  # a target goes
    (RICH, PODS, [namespace("a", team="x"), namespace("b", team="z")]),  # peers go with a label
    (RICH[:1] + [policy("a", "from-b", podSelector={"matchLabels": {"app": "db"}},
                        ingress=[{"ports": [{"port": "http"}]}])], PODS, NAMESPACES),  # a policy changes
    (RICH[2:], PODS, NAMESPACES),
    ([], PODS, NAMESPACES),
]


async def test_nft_accepts_full_scripts_and_diffs_equal_full_syncs(scratch):
    previous = None
    for policies, pods, namespaces in STEPS:
        rs = ruleset(policies, pods, namespaces)
        await scratch.check(full_script("full", rs))
        await scratch.apply(full_script("full", rs))
        if previous is None:
            await scratch.apply(full_script("incr", rs))
        else:
            script = diff_script("incr", previous, rs)
            if script:
                await scratch.apply(script)
        listing = await _listing(scratch, "incr")
        assert any(block.startswith("chain forward {") for block in listing)
        assert listing == await _listing(scratch, "full")
        previous = rs
    assert await scratch.delete_table("ip", "incr")
