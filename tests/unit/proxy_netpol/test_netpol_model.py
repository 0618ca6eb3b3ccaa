"""The pure NetworkPolicy model: isolation, policyTypes defaults, the union of rules, peers of
each kind, ipBlock except, ports (numbers, endPort ranges, named ports both ways), namespace
label changes, pods of other nodes, and bad input."""

from __future__ import annotations

import ipaddress

from pybernetes.proxy.netpol_model import (
    Model,
    Ports,
    compute,
    covers,
    ip_block_ranges,
    merge_ranges,
    parse_ports,
    pod_info,
    policy_types,
)

NODE = "n1"


def pod(ns: str, name: str, ip: str, node: str = NODE, ports: list | None = None, **labels: str) -> dict:
    container = {"name": "c", "image": "busybox"}
    if ports:
        container["ports"] = ports
    return {"metadata": {"namespace": ns, "name": name, "labels": labels},
            "spec": {"nodeName": node, "containers": [container]},
            "status": {"phase": "Running", "podIP": ip, "podIPs": [{"ip": ip}]}}


def namespace(name: str, **labels: str) -> dict:
    return {"metadata": {"name": name, "labels": {"kubernetes.io/metadata.name": name, **labels}}}


def policy(ns: str, name: str, **spec) -> dict:
    spec.setdefault("podSelector", {})
    return {"metadata": {"namespace": ns, "name": name}, "spec": spec}


def nets(*texts: str) -> tuple:
    """Merged address ranges of CIDRs."""
    networks = [ipaddress.ip_network(t) for t in texts]
    return merge_ranges((int(n.network_address), int(n.broadcast_address)) for n in networks)


def addr(text: str) -> int:
    return int(ipaddress.ip_address(text))


PODS = [
    pod("a", "web", "10.0.0.2", app="web"),
    pod("a", "db", "10.0.0.3", app="db"),
    pod("b", "client", "10.0.0.4", role="client"),
    pod("b", "other", "10.0.0.5"),
    pod("a", "remote", "10.0.1.2", node="n2", app="web"),
]
NAMESPACES = [namespace("a", team="x"), namespace("b", team="y")]


def run(*policies: dict, pods: list | None = None, namespaces: list | None = None) -> Model:
    return compute(PODS if pods is None else pods, NAMESPACES if namespaces is None else namespaces,
                   list(policies), NODE)


def test_no_policy_isolates_nothing():
    model = run()
    assert model.ingress == {} and model.egress == {} and model.policies == {}


def test_default_deny_ingress_isolates_local_pods_of_its_namespace_only():
    model = run(policy("a", "deny"))
    assert set(model.ingress) == {"10.0.0.2", "10.0.0.3"}  # not the pod on n2, not namespace b
    assert model.egress == {}
    assert model.policies["a/deny"].ingress_rules == []
    assert model.ingress["10.0.0.2"].policies == ["a/deny"]


def test_pod_selector_selects_targets():
    model = run(policy("a", "web", podSelector={"matchLabels": {"app": "web"}}))
    assert set(model.ingress) == {"10.0.0.2"}
    expr = {"matchExpressions": [{"key": "app", "operator": "NotIn", "values": ["web"]}]}
    assert set(run(policy("a", "notweb", podSelector=expr)).ingress) == {"10.0.0.3"}


def test_policy_types_default_as_the_api_does():
    assert policy_types({}) == (True, False)
    assert policy_types({"egress": [{}]}) == (True, True)
    assert policy_types({"policyTypes": ["Egress"]}) == (False, True)
    assert policy_types({"policyTypes": ["Ingress", "Egress"], "egress": []}) == (True, True)
    egress_only = run(policy("a", "e", policyTypes=["Egress"]))
    assert egress_only.ingress == {} and set(egress_only.egress) == {"10.0.0.2", "10.0.0.3"}
    with_rules = run(policy("a", "e", egress=[{"to": [{"podSelector": {}}]}]))
    assert set(with_rules.ingress) == set(with_rules.egress) == {"10.0.0.2", "10.0.0.3"}


def test_selecting_policies_are_a_union():
    model = run(policy("a", "p1", ingress=[{"from": [{"podSelector": {"matchLabels": {"app": "db"}}}]}]),
                policy("a", "p2", podSelector={"matchLabels": {"app": "web"}},
                       ingress=[{"from": [{"ipBlock": {"cidr": "192.168.0.0/16"}}]}]))
    assert model.ingress["10.0.0.2"].policies == ["a/p1", "a/p2"]
    assert model.ingress["10.0.0.3"].policies == ["a/p1"]
    assert model.policies["a/p1"].ingress_rules[0].peers == nets("10.0.0.3/32")
    assert model.policies["a/p2"].ingress_rules[0].peers == nets("192.168.0.0/16")


def test_empty_from_allows_everyone_and_empty_rule_list_nothing():
    model = run(policy("a", "all", ingress=[{}]))
    rule = model.policies["a/all"].ingress_rules[0]
    assert rule.peers is None and rule.ports is None


def test_pod_selector_peer_is_the_policy_namespace_only():
    model = run(policy("a", "p", ingress=[{"from": [{"podSelector": {}}]}]))
    # every pod of namespace a, on any node, and none of namespace b
    assert model.policies["a/p"].ingress_rules[0].peers == nets("10.0.0.2/32", "10.0.0.3/32", "10.0.1.2/32")


def test_namespace_selector_peer_is_every_pod_of_matching_namespaces():
    model = run(policy("a", "p", ingress=[{"from": [{"namespaceSelector": {"matchLabels": {"team": "y"}}}]}]))
    assert model.policies["a/p"].ingress_rules[0].peers == nets("10.0.0.4/32", "10.0.0.5/32")


def test_both_selectors_in_one_peer_intersect():
    peer = {"namespaceSelector": {"matchLabels": {"team": "y"}}, "podSelector": {"matchLabels": {"role": "client"}}}
    model = run(policy("a", "p", ingress=[{"from": [peer]}]))
    assert model.policies["a/p"].ingress_rules[0].peers == nets("10.0.0.4/32")
    # the same selectors as two peers are a union instead
    split = [{"namespaceSelector": {"matchLabels": {"team": "y"}}},
             {"podSelector": {"matchLabels": {"app": "db"}}}]
    model = run(policy("a", "p", ingress=[{"from": split}]))
    assert model.policies["a/p"].ingress_rules[0].peers == nets("10.0.0.3/32", "10.0.0.4/32", "10.0.0.5/32")


def test_namespace_label_change_changes_the_peers():
    spec = {"ingress": [{"from": [{"namespaceSelector": {"matchLabels": {"team": "x"}}}]}]}
    before = run(policy("a", "p", **spec))
    assert before.policies["a/p"].ingress_rules[0].peers == nets("10.0.0.2/32", "10.0.0.3/32", "10.0.1.2/32")
    after = run(policy("a", "p", **spec), namespaces=[namespace("a"), namespace("b", team="x")])
    assert after.policies["a/p"].ingress_rules[0].peers == nets("10.0.0.4/32", "10.0.0.5/32")


def test_namespace_name_label_is_always_there():
    peer = {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "b"}}}
    model = run(policy("a", "p", ingress=[{"from": [peer]}]), namespaces=[])  # not even seen yet
    assert model.policies["a/p"].ingress_rules[0].peers == nets("10.0.0.4/32", "10.0.0.5/32")


def test_ip_block_except():
    assert ip_block_ranges({"cidr": "10.0.0.0/24", "except": ["10.0.0.128/25", "10.0.0.0/26"]}) == [
        (addr("10.0.0.64"), addr("10.0.0.127"))]
    assert ip_block_ranges({"cidr": "10.0.0.7/24"}) == [(addr("10.0.0.0"), addr("10.0.0.255"))]
    assert ip_block_ranges({"cidr": "2001:db8::/64"}) == []  # IPv6: not in an ip table
    assert ip_block_ranges({"cidr": "10.0.0.0/24", "except": ["10.0.0.0/16"]}) == []
    assert ip_block_ranges({"cidr": "10.0.0.0/24", "except": ["10.0.0.5/32"]}) == [
        (addr("10.0.0.0"), addr("10.0.0.4")), (addr("10.0.0.6"), addr("10.0.0.255"))]
    block = {"ipBlock": {"cidr": "10.0.0.0/24", "except": ["10.0.0.2/32"]}}
    model = run(policy("a", "p", ingress=[{"from": [block, {"podSelector": {"matchLabels": {"app": "web"}}}]}]))
    peers = model.policies["a/p"].ingress_rules[0].peers
    # the except is punched out of the block, but the pod peer adds the address back
    assert peers == nets("10.0.0.0/24", "10.0.1.2/32")
    only_block = run(policy("a", "p", ingress=[{"from": [block]}])).policies["a/p"].ingress_rules[0].peers
    assert not covers(only_block, addr("10.0.0.2"))
    assert covers(only_block, addr("10.0.0.1")) and covers(only_block, addr("10.0.0.3"))
    assert not covers(only_block, addr("10.0.1.2"))


def test_merge_ranges():
    assert merge_ranges([(5, 9), (1, 2), (3, 3), (8, 12), (20, 20)]) == ((1, 3), (5, 12), (20, 20))
    assert merge_ranges([]) == ()


def test_ports_numbers_ranges_protocols():
    ports = parse_ports([{"port": 80}, {"protocol": "UDP", "port": 53}, {"port": 8000, "endPort": 8080},
                         {"port": 8080, "endPort": 8090}, {"protocol": "SCTP"}, {"protocol": "TCP", "port": 81}],
                        "ports")
    assert ports == Ports(ranges=(("TCP", ((80, 81), (8000, 8090))), ("UDP", ((53, 53),))), whole=("SCTP",))
    assert parse_ports([], "ports") is None and parse_ports(None, "ports") is None
    assert parse_ports([{"protocol": "TCP"}, {"port": 80}], "ports") == Ports(whole=("TCP",))


def test_named_port_ingress_resolves_against_the_destination_pod():
    pods = [pod("a", "web", "10.0.0.2", ports=[{"name": "http", "containerPort": 8080}], app="web"),
            pod("a", "dns", "10.0.0.3", ports=[{"name": "http", "containerPort": 53, "protocol": "UDP"}]),
            pod("b", "client", "10.0.0.4", ports=[{"name": "http", "containerPort": 9999}])]
    model = run(policy("a", "p", ingress=[{"ports": [{"port": "http"}]}]), pods=pods)
    rule = model.policies["a/p"].ingress_rules[0]
    # TCP only (the dns pod's "http" is UDP); the client's port is not a destination here
    assert rule.ports.resolved == {("10.0.0.2", "TCP", 8080)}
    udp = run(policy("a", "p", ingress=[{"ports": [{"port": "http", "protocol": "UDP"}]}]), pods=pods)
    assert udp.policies["a/p"].ingress_rules[0].ports.resolved == {("10.0.0.3", "UDP", 53)}


def test_named_port_egress_resolves_against_each_peer():
    pods = [pod("a", "src", "10.0.0.2"),
            pod("b", "web1", "10.0.0.4", ports=[{"name": "http", "containerPort": 8080}], app="web"),
            pod("b", "web2", "10.0.1.4", node="n2", ports=[{"name": "http", "containerPort": 9090}], app="web"),
            pod("b", "nope", "10.0.0.5", ports=[{"name": "http", "containerPort": 7070}])]
    to_web = [{"namespaceSelector": {}, "podSelector": {"matchLabels": {"app": "web"}}}]
    model = run(policy("a", "p", policyTypes=["Egress"], egress=[{"to": to_web, "ports": [{"port": "http"}]}]),
                pods=pods)
    rule = model.policies["a/p"].egress_rules[0]
    assert rule.ports.resolved == {("10.0.0.4", "TCP", 8080), ("10.0.1.4", "TCP", 9090)}
    anywhere = run(policy("a", "p", policyTypes=["Egress"], egress=[{"ports": [{"port": "http"}]}]), pods=pods)
    assert len(anywhere.policies["a/p"].egress_rules[0].ports.resolved) == 3
    block = [{"ipBlock": {"cidr": "10.0.1.0/24"}}]
    in_block = run(policy("a", "p", policyTypes=["Egress"], egress=[{"to": block, "ports": [{"port": "http"}]}]),
                   pods=pods)
    assert in_block.policies["a/p"].egress_rules[0].ports.resolved == {("10.0.1.4", "TCP", 9090)}


def test_pods_that_policies_ignore():
    host = pod("a", "host", "10.0.0.9", app="web")
    host["spec"]["hostNetwork"] = True
    done = pod("a", "done", "10.0.0.10", app="web")
    done["status"]["phase"] = "Succeeded"
    pending = pod("a", "pending", "", app="web")
    pending["status"] = {"phase": "Pending"}
    v6 = pod("a", "v6", "fd00::1", app="web")
    assert [pod_info(p) for p in (host, done, pending, v6)] == [None, None, None, None]
    model = run(policy("a", "p", ingress=[{"from": [{"podSelector": {}}]}]), pods=[*PODS, host, done, pending, v6])
    assert set(model.ingress) == {"10.0.0.2", "10.0.0.3"}
    assert model.policies["a/p"].ingress_rules[0].peers == nets("10.0.0.2/32", "10.0.0.3/32", "10.0.1.2/32")


def test_pods_of_other_nodes_are_peers_not_targets():
    model = run(policy("a", "p", podSelector={"matchLabels": {"app": "web"}},
                       ingress=[{"from": [{"podSelector": {"matchLabels": {"app": "web"}}}]}]))
    assert set(model.ingress) == {"10.0.0.2"}
    assert model.policies["a/p"].ingress_rules[0].peers == nets("10.0.0.2/32", "10.0.1.2/32")
    remote_only = run(policy("a", "p", podSelector={"matchLabels": {"app": "nothing-here"}}))
    assert remote_only.policies == {} and remote_only.ingress == {}


def test_a_reused_address_belongs_to_the_newest_pod():
    old = pod("b", "old", "10.0.0.2", app="web")
    old["metadata"]["creationTimestamp"] = "2024-01-01T00:00:00Z"
    new = pod("a", "new", "10.0.0.2", app="web")
    new["metadata"]["creationTimestamp"] = "2024-06-01T00:00:00Z"
    model = run(policy("b", "p"), policy("a", "p"), pods=[old, new])
    assert set(model.ingress) == {"10.0.0.2"} and model.ingress["10.0.0.2"].pod.name == "new"


def test_bad_input_is_reported_and_the_rest_applied():
    bad_selector = policy("a", "bad", podSelector={"matchExpressions": [{"key": "x", "operator": "Nope"}]})
    bad_cidr = policy("a", "cidr", ingress=[{"from": [{"ipBlock": {"cidr": "10.0.0.0/33"}}]},
                                            {"from": [{"podSelector": {"matchLabels": {"app": "db"}}}]}])
    bad_port = policy("b", "port", ingress=[{"ports": [{"port": 70000}]}, {"ports": [{"protocol": "ICMP"}]}])
    garbage = {"metadata": {"namespace": "b", "name": "garbage"}, "spec": {"podSelector": {}, "ingress": 7}}
    model = run(bad_selector, bad_cidr, bad_port, garbage, policy("b", "fine"))
    assert "a/bad" not in model.policies and "a/bad" in model.errors
    # the broken rule allows nothing; the good rule of the same policy still applies
    assert len(model.policies["a/cidr"].ingress_rules) == 1 and "10.0.0.0/33" in model.errors["a/cidr"][0]
    assert model.policies["b/port"].ingress_rules == [] and len(model.errors["b/port"]) == 2
    assert "b/garbage" in model.errors
    assert model.ingress["10.0.0.4"].policies == ["b/fine", "b/port"]  # still isolated: fail closed
    weird_pod = {"metadata": {"namespace": "a", "name": "w"}, "spec": {"containers": 5},
                 "status": {"podIP": "10.0.0.77"}}
    assert set(run(policy("a", "p"), pods=[*PODS, weird_pod]).ingress) == {"10.0.0.2", "10.0.0.3"}
