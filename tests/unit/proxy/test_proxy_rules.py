"""The proxy's renderer (proxy/rules.py), planner (proxy/plan.py), in-memory table (proxy/table.py)
and JSON reader (proxy/nftjson.py).  The whole script of a realistic state is checked by ``nft
-c`` when nft is there (inside a scratch network namespace)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from proxy_backend_contract import CONFIG, World, scenario  # noqa: E402
from proxy_objects import endpoint, endpoint_slice, lb_status, port, service  # noqa: E402

from pybernetes.proxy.model import Endpoint, PortName, PortView, ServicePort  # noqa: E402
from pybernetes.proxy.nft import Nft, NftError  # noqa: E402
from pybernetes.proxy.nftjson import rule_text, table_from_json  # noqa: E402
from pybernetes.proxy.plan import Planner  # noqa: E402
from pybernetes.proxy.rules import RenderConfig, port_chain_base, render_port  # noqa: E402
from pybernetes.proxy.table import (  # noqa: E402
    ADD_CHAIN,
    ADD_SET,
    ADD_TABLE,
    DELETE_CHAIN,
    DELETE_ELEMENTS,
    FLUSH_CHAIN,
    FLUSH_SET,
    SetSpec,
    TableError,
    TableState,
    to_script,
)

NAME = PortName("default", "web", "http", "tcp")


def unit_for(endpoints: list[Endpoint], config: RenderConfig = CONFIG, **kw):
    return render_port(config, PortView(ServicePort(NAME, "10.43.0.1", 80, **kw), tuple(endpoints)))


def all_rules(unit) -> list[str]:
    return [rule for _, rules in unit.chains.values() for rule in rules]


def test_a_cluster_ip_balances_over_endpoint_chains_that_mark_hairpin_traffic() -> None:
    unit = unit_for([Endpoint("10.244.0.1", 8080, "node-a"), Endpoint("10.244.0.2", 8080, "node-b")])
    service_chain = f"service-{port_chain_base(NAME)}"
    assert unit.elements["service-ips"] == {"10.43.0.1 . tcp . 80": f"goto {service_chain}"}
    assert unit.members == (("cluster-ips", "10.43.0.1"),)
    rules = unit.chains[service_chain][1]
    assert rules[0] == "ip daddr 10.43.0.1 tcp dport 80 ip saddr != 10.244.0.0/16 jump mark-for-masquerade"
    assert rules[1].startswith("numgen random mod 2 vmap { 0 : goto endpoint-")
    endpoint_rules = [r for name, (_, r) in unit.chains.items() if name.startswith("endpoint-")]
    assert ("ip saddr 10.244.0.1 jump mark-for-masquerade", "meta l4proto tcp dnat to 10.244.0.1:8080") \
        in endpoint_rules
    no_cidr = unit_for([Endpoint("10.244.0.1", 8080)], RenderConfig(node_name="node-a"))
    assert not [r for r in all_rules(no_cidr) if "!=" in r]  # nobody to call an outsider


def test_no_endpoints_rejects_and_local_policies_drop() -> None:
    unit = unit_for([], node_port=30080)
    assert unit.chains == {}
    assert unit.elements == {"no-endpoint-services": {"10.43.0.1 . tcp . 80": "goto reject-chain"},
                             "no-endpoint-nodeports": {"tcp . 30080": "goto reject-chain"}}
    elsewhere = [Endpoint("10.244.0.2", 8080, "node-b")]
    unit = unit_for(elsewhere, internal_local=True)
    assert unit.elements == {"no-endpoint-services": {"10.43.0.1 . tcp . 80": "drop"}}
    unit = unit_for(elsewhere, node_port=30080, external_local=True)
    assert unit.elements["no-endpoint-nodeports"] == {"tcp . 30080": "drop"}
    assert unit.elements["service-nodeports"]["tcp . 30080"].startswith("goto external-")
    external = unit.chains[f"external-{port_chain_base(NAME)}"][1]
    assert external == (f"ip saddr 10.244.0.0/16 goto service-{port_chain_base(NAME)}",
                        "fib saddr type local jump mark-for-masquerade",
                        f"fib saddr type local goto service-{port_chain_base(NAME)}")  # no goto local-


def test_external_traffic_with_policy_cluster_is_masqueraded() -> None:
    unit = unit_for([Endpoint("10.244.0.1", 8080, "node-a")], external_ips=("192.0.2.1",))
    external = f"external-{port_chain_base(NAME)}"
    assert unit.elements["service-ips"]["192.0.2.1 . tcp . 80"] == f"goto {external}"
    assert unit.chains[external][1] == ("jump mark-for-masquerade", f"goto service-{port_chain_base(NAME)}")


def test_client_ip_affinity_uses_a_timeout_set_per_endpoint() -> None:
    unit = unit_for([Endpoint("10.244.0.1", 8080), Endpoint("10.244.0.2", 8080)], affinity_timeout=30)
    assert len(unit.sets) == 2 and all(spec == SetSpec("ipv4_addr", timeout=30) for spec in unit.sets.values())
    rules = unit.chains[f"service-{port_chain_base(NAME)}"][1]
    assert [r for r in rules if r.startswith("ip saddr @affinity-")] and " goto endpoint-" in rules[1]
    assert [r for r in all_rules(unit) if r.startswith("update @affinity-") and r.endswith("{ ip saddr }")]


def test_load_balancer_source_ranges_drop_other_sources_to_the_load_balancer_ips_only() -> None:
    ten = ((0x0A000000, 0x0AFFFFFF),)
    unit = unit_for([Endpoint("10.244.0.1", 8080)], lb_ips=("192.0.2.5", "192.0.2.6"), node_port=30080,
                    external_ips=("192.0.2.1",), source_ranges=((0xC0A80000, 0xC0A802FF), *ten))
    firewall = f"firewall-{port_chain_base(NAME)}"
    assert unit.elements["firewall-ips"] == {"192.0.2.5 . tcp . 80": f"goto {firewall}",
                                             "192.0.2.6 . tcp . 80": f"goto {firewall}"}
    assert unit.chains[firewall][1] == ("ip saddr != { 10.0.0.0/8, 192.168.0.0-192.168.2.255 } drop",)
    # the ClusterIP, the externalIP and the node port are not limited
    assert set(unit.elements["service-ips"]) == {"10.43.0.1 . tcp . 80", "192.0.2.1 . tcp . 80",
                                                 "192.0.2.5 . tcp . 80", "192.0.2.6 . tcp . 80"}
    assert unit.elements["service-nodeports"]
    # a range holding the node's address lets the VIPs in too (the node reaching a local VIP)
    config = RenderConfig(node_name="node-a", node_ips=("10.1.2.3",))
    one = render_port(config, PortView(ServicePort(NAME, "10.43.0.1", 80, lb_ips=("192.0.2.5",), source_ranges=ten),
                                       (Endpoint("10.244.0.1", 8080),)))
    assert one.chains[firewall][1] == ("ip saddr != { 10.0.0.0/8, 192.0.2.5 } drop",)
    single = unit_for([], lb_ips=("192.0.2.5",), source_ranges=((0xC0000202, 0xC0000202),))
    assert single.chains[firewall][1] == ("ip saddr != 192.0.2.2 drop",)  # no endpoints: still firewalled
    assert "firewall-ips" not in unit_for([Endpoint("10.244.0.1", 8080)], source_ranges=ten).elements  # no LB IP
    assert firewall not in unit_for([Endpoint("10.244.0.1", 8080)], lb_ips=("192.0.2.5",)).chains  # no ranges


def test_chain_names_are_safe_and_distinct() -> None:
    odd = PortName("ns", "svc", "we ird;port", "tcp")
    base = port_chain_base(odd)
    assert ";" not in base and " " not in base and len(base) < 200
    assert port_chain_base(PortName("ns", "svc", "we_ird_port", "tcp")) != base  # the hash tells apart


def test_an_endpoint_change_needs_no_deletes_and_no_element_changes() -> None:
    world = World()
    world.apply(*scenario())
    planner = Planner(CONFIG, stale_grace=1.0)
    table = TableState()
    full = planner.full(world.state, table)
    table.apply(full.ops)
    planner.commit()
    changed = world.apply(endpoint_slice("web", [endpoint("10.244.1.1"), endpoint("10.244.1.99")]))
    transaction = planner.incremental(world.state, changed, table)
    assert {op[0] for op in transaction.ops} == {FLUSH_CHAIN, ADD_CHAIN}  # cheap for nft
    table.apply(transaction.ops)
    planner.commit()
    assert planner.garbage_due_in() is not None
    planner.stale = {key: 0.0 for key in planner.stale}
    garbage = planner.garbage(table)
    assert {op[0] for op in garbage.ops} == {DELETE_CHAIN}
    table.apply(garbage.ops)
    planner.commit()
    assert planner.garbage_due_in() is None


def test_the_table_refuses_what_the_kernel_refuses_and_changes_nothing() -> None:
    table = TableState()
    table.apply([(ADD_TABLE,), (ADD_CHAIN, "a", None, ()), (ADD_CHAIN, "b", None, ("goto a",)),
                 (ADD_SET, "m", SetSpec("ipv4_addr", True), (("10.0.0.1", "goto a"),))])
    snapshot = table.copy()
    for ops in ([(DELETE_CHAIN, "a")],  # still jumped to
                [(ADD_CHAIN, "c", None, ("goto nowhere",))],
                [(ADD_SET, "m", SetSpec("ipv4_addr", True), (("10.0.0.1", "goto b"),))],  # other value
                [(FLUSH_CHAIN, "b"), (DELETE_CHAIN, "b"), (FLUSH_CHAIN, "gone")]):
        with pytest.raises(TableError):
            table.apply(ops)
        assert table == snapshot


AFFINITY = SetSpec("ipv4_addr", timeout=60)
USE = ("ip saddr @aff goto a",)
SET_SETUP = [(ADD_TABLE,), (ADD_SET, "aff", AFFINITY, ()), (ADD_SET, "m", SetSpec("ipv4_addr", True), ()),
             (ADD_CHAIN, "a", None, ()), (ADD_CHAIN, "b", None, USE)]
SET_CASES = {  # a transaction over SET_SETUP -> whether nft 1.0.6 takes it
    "a chain alone using an existing set": ([(ADD_CHAIN, "c", None, USE)], False),
    "a chain refilled": ([(FLUSH_CHAIN, "b"), (ADD_CHAIN, "b", None, USE)], False),
    "the set declared after its use": ([(ADD_CHAIN, "c", None, USE), (ADD_SET, "aff", AFFINITY, ())], False),
    "another set declared": ([(ADD_SET, "m", SetSpec("ipv4_addr", True), (("10.0.0.1", "goto a"),)),
                              (ADD_CHAIN, "c", None, USE)], False),
    "the set declared first": ([(FLUSH_CHAIN, "b"), (ADD_SET, "aff", AFFINITY, ()), (ADD_CHAIN, "b", None, USE)],
                               True),
    "a set flushed": ([(FLUSH_SET, "m", "map"), (ADD_CHAIN, "c", None, USE)], True),
    "a chain deleted later": ([(ADD_CHAIN, "c", None, USE), (DELETE_CHAIN, "a")], False),  # a still used
    "an empty chain deleted later": ([(ADD_CHAIN, "c", None, USE), (ADD_CHAIN, "d", None, ()),
                                      (DELETE_CHAIN, "d")], True),
}


def test_a_written_chain_uses_only_sets_its_transaction_declares_or_makes_nft_list() -> None:
    for case, (ops, accepted) in SET_CASES.items():
        table = TableState()
        table.apply(SET_SETUP)
        snapshot = table.copy()
        if accepted:
            table.apply(ops)
        else:
            with pytest.raises(TableError):
                table.apply(ops)
            assert table == snapshot, case
    table = TableState()
    table.apply([*SET_SETUP, (ADD_SET, "m", SetSpec("ipv4_addr", True), (("10.0.0.1", "goto a"),))])
    table.apply([(DELETE_ELEMENTS, "m", ("10.0.0.1",)), (ADD_CHAIN, "c", None, USE)])  # a delete lists sets


@pytest.mark.skipif(os.geteuid() != 0 or not Nft.available(), reason="needs root and nft")
def test_nft_takes_and_refuses_the_same_set_uses_as_the_table() -> None:
    netns = f"pybsu-{uuid.uuid4().hex[:8]}"
    subprocess.run(["ip", "netns", "add", netns], check=True)
    try:
        nft = Nft(netns=netns)
        for ops, accepted in SET_CASES.values():
            asyncio.run(nft.delete_table("ip", "pyb-sets"))
            asyncio.run(nft.apply(to_script(SET_SETUP, "pyb-sets")))
            if accepted:
                asyncio.run(nft.apply(to_script(ops, "pyb-sets")))
            else:
                with pytest.raises(NftError):
                    asyncio.run(nft.apply(to_script(ops, "pyb-sets")))
    finally:
        subprocess.run(["ip", "netns", "del", netns], check=False)


def test_json_rules_print_in_the_canonical_text() -> None:
    mark = {"meta": {"key": "mark"}}
    daddr = {"payload": {"protocol": "ip", "field": "daddr"}}
    cases = {
        "meta mark & 0x4000 == 0x0 return": [
            {"match": {"op": "==", "left": {"&": [mark, 16384]}, "right": 0}}, {"return": None}],
        "meta mark set meta mark | 0x4000": [{"mangle": {"key": mark, "value": {"|": [mark, 16384]}}}],
        "ct state new jump services": [
            {"match": {"op": "in", "left": {"ct": {"key": "state"}}, "right": "new"}},
            {"jump": {"target": "services"}}],
        'ip saddr 127.0.0.0/8 meta oifname != "lo" masquerade fully-random': [
            {"match": {"op": "==", "left": {"payload": {"protocol": "ip", "field": "saddr"}},
                       "right": {"prefix": {"addr": "127.0.0.0", "len": 8}}}},
            {"match": {"op": "!=", "left": {"meta": {"key": "oifname"}}, "right": "lo"}},
            {"masquerade": {"flags": "fully-random"}}],
        "ip daddr . meta l4proto . th dport vmap @service-ips": [
            {"vmap": {"key": {"concat": [daddr, {"meta": {"key": "l4proto"}},
                                         {"payload": {"protocol": "th", "field": "dport"}}]},
                      "data": "@service-ips"}}],
        "numgen random mod 2 vmap { 0 : goto a, 1 : goto b }": [
            {"vmap": {"key": {"numgen": {"mode": "random", "mod": 2, "offset": 0}},
                      "data": {"set": [[0, {"goto": {"target": "a"}}], [1, {"goto": {"target": "b"}}]]}}}],
        "meta l4proto udp dnat to 10.0.0.3:53": [
            {"match": {"op": "==", "left": {"meta": {"key": "l4proto"}}, "right": "udp"}},
            {"dnat": {"addr": "10.0.0.3", "port": 53}}],
        "update @aff { ip saddr }": [
            {"set": {"op": "update", "elem": {"payload": {"protocol": "ip", "field": "saddr"}}, "set": "@aff"}}],
        "ip saddr != { 10.0.0.0/8, 172.31.254.2, 192.168.0.0-192.168.1.255 } drop": [
            {"match": {"op": "!=", "left": {"payload": {"protocol": "ip", "field": "saddr"}},
                       "right": {"set": [{"prefix": {"addr": "10.0.0.0", "len": 8}}, "172.31.254.2",
                                         {"range": ["192.168.0.0", "192.168.1.255"]}]}}},
            {"drop": None}],
        "ip saddr != 10.0.0.0-10.0.1.127 drop": [
            {"match": {"op": "!=", "left": {"payload": {"protocol": "ip", "field": "saddr"}},
                       "right": {"range": ["10.0.0.0", "10.0.1.127"]}}}, {"drop": None}],
        "ip daddr @cluster-ips reject": [
            {"match": {"op": "==", "left": daddr, "right": "@cluster-ips"}},
            {"reject": {"type": "icmp", "expr": "port-unreachable"}}],
    }
    for text, exprs in cases.items():
        assert rule_text(exprs) == text
    assert rule_text([{"counter": {"packets": 1, "bytes": 2}}]).startswith("{")  # not one of ours
    table = table_from_json([{"table": {"name": "t"}},
                             {"map": {"name": "m", "type": ["ipv4_addr", "inet_proto", "inet_service"],
                                      "map": "verdict",
                                      "elem": [[{"concat": ["10.0.0.1", "tcp", 80]}, {"goto": {"target": "a"}}]]}},
                             {"chain": {"name": "a"}}, {"rule": {"chain": "a", "expr": [{"drop": None}]}}])
    assert table.sets["m"].elements == {"10.0.0.1 . tcp . 80": "goto a"} and table.chains["a"].rules == ["drop"]


@pytest.mark.skipif(os.geteuid() != 0 or not Nft.available(), reason="needs root and nft")
def test_nft_accepts_the_whole_script() -> None:
    world = World()
    world.apply(*scenario(), service("sctp-np", "10.43.0.50", [port("s", 80, "SCTP", node_port=30500)],
                                     type="NodePort", sessionAffinity="ClientIP"),
                endpoint_slice("sctp-np", [endpoint("10.244.1.50")], [{"name": "s", "port": 80, "protocol": "SCTP"}]))
    script = Planner(CONFIG).full(world.state, None).script(CONFIG.table)
    netns = f"pybck-{uuid.uuid4().hex[:8]}"
    subprocess.run(["ip", "netns", "add", netns], check=True)
    try:
        nft = Nft(netns=netns)
        asyncio.run(nft.check(script))
        with pytest.raises(NftError):
            asyncio.run(nft.check(script.replace("dnat to", "dnat too", 1)))
    finally:
        subprocess.run(["ip", "netns", "del", netns], check=False)


@pytest.mark.skipif(os.geteuid() != 0 or not Nft.available(), reason="needs root and nft")
def test_firewall_rules_read_back_from_nft_as_rendered() -> None:
    world = World()
    world.apply(*scenario())
    config = RenderConfig(table="pyb-fw", node_name="node-a", node_ips=("10.9.9.9",))
    sources = [["10.0.0.0/24", "10.0.1.0/25"], ["10.0.0.0/24", "10.0.1.0/24"], ["192.0.2.7/32"], ["0.0.0.0/0"],
               ["10.9.0.0/16", "192.168.0.0/16", "172.16.0.0/12"]]
    for i, ranges in enumerate(sources):
        world.apply(service(f"fw{i}", f"10.43.1.{i}", [port("http", 80)], type="LoadBalancer",
                            status=lb_status(f"192.0.2.{100 + i}"), loadBalancerSourceRanges=ranges))
    planner = Planner(config)
    expected = TableState()
    transaction = planner.full(world.state, None)
    expected.apply(transaction.ops)
    rules = [rule for name, chain in expected.chains.items() if name.startswith("firewall-") and "/" in name
             for rule in chain.rules]
    assert set(rules) >= {"ip saddr != 10.0.0.0-10.0.1.127 drop", "ip saddr != 10.0.0.0/23 drop",
                          "ip saddr != 192.0.2.7 drop", "ip saddr != 0.0.0.0/0 drop",
                          "ip saddr != { 10.9.0.0/16, 172.16.0.0/12, 192.0.2.104, 192.168.0.0/16 } drop"}
    netns = f"pybfw-{uuid.uuid4().hex[:8]}"
    subprocess.run(["ip", "netns", "add", netns], check=True)
    try:
        nft = Nft(netns=netns)
        asyncio.run(nft.apply(transaction.script(config.table)))
        actual = table_from_json(asyncio.run(nft.list_table("ip", config.table)))
        assert actual == expected, expected.differences(actual)
    finally:
        subprocess.run(["ip", "netns", "del", netns], check=False)


def test_sctp_ports_are_skipped_when_the_kernel_cannot_track_sctp() -> None:
    sctp = PortView(ServicePort(PortName("default", "s", "s", "sctp"), "10.43.0.9", 9999),
                    (Endpoint("10.244.0.1", 9999),))
    assert render_port(RenderConfig(), sctp).chains
    unit = render_port(RenderConfig(sctp=False), sctp)
    assert unit.chains == {} and unit.elements == {} and unit.members == ()
