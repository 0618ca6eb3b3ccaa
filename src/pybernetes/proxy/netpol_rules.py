"""The NetworkPolicy model as nftables, pure: a ``Ruleset`` value, the full script that recreates
the table, and the smallest script that turns one ruleset into another.

One ``ip`` table (default ``pybernetes-netpol``)::

    chain forward      hook forward, priority filter, policy accept
        ct state established,related accept     replies of allowed connections
        ip saddr vmap @egress-pods              egress-isolated source: goto its pod chain
        goto check-ingress
    chain check-ingress
        ip daddr vmap @ingress-pods             ingress-isolated destination: goto its pod chain
        accept
    chain pod-in_<ns>_<pod>                     ip saddr <own IP> accept; jump pol-in_<policy>...; drop
    chain pod-eg_<ns>_<pod>                     ip daddr <own IP> accept; jump pol-eg_<policy>...; drop
    chain pol-in_<ns>_<policy>                  one line per rule and protocol: ... accept
    chain pol-eg_<ns>_<policy>                  ... goto check-ingress (the destination decides next)
    set peers-in_<ns>_<policy>_<i>              interval set: the rule's peer pods and ipBlocks
    set ports-in_<ns>_<policy>_<i>              ipv4_addr . inet_proto . inet_service: named ports

The maps ``ingress-pods`` / ``egress-pods`` are the sets of isolated pod IPs (with their verdicts).
Pod-to-pod traffic on the node's bridge reaches the forward hook through br_netfilter; service
traffic is seen after DNAT (at its endpoint).  The node's own traffic to and from its pods goes
through the output and input hooks, which this table leaves alone: it always passes.

Peer sets hold canonical (collapsed) networks, so a pod coming or going is a few element changes;
``diff_script`` emits only what changed, in an order nft accepts in one transaction.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from pybernetes.proxy.netpol_model import Model, Policy, Ports, Range, Rule, address_text

FAMILY = "ip"
DEFAULT_TABLE = "pybernetes-netpol"
INGRESS_MAP = "ingress-pods"
EGRESS_MAP = "egress-pods"
DISPATCH = "check-ingress"  # checks the destination's ingress after the source's egress allowed
PEER_SET = "type ipv4_addr; flags interval;"
PORT_SET = "type ipv4_addr . inet_proto . inet_service;"
_SAFE = re.compile(r"[a-z0-9][a-z0-9._-]*")


@dataclass(frozen=True)
class NftSet:
    spec: str  # "type ...; flags ...;"
    elements: frozenset[str]


@dataclass
class Ruleset:
    sets: dict[str, NftSet] = field(default_factory=dict)
    chains: dict[str, tuple[str, ...]] = field(default_factory=dict)  # regular chains and their rules
    ingress: dict[str, str] = field(default_factory=dict)  # isolated pod IP -> its chain
    egress: dict[str, str] = field(default_factory=dict)

    @property
    def rule_count(self) -> int:
        return sum(len(rules) for rules in self.chains.values()) + 4


def name(prefix: str, *parts: str) -> str:
    """An nft identifier for ``prefix`` and object names (a digest when they are long or odd)."""
    text = "_".join(parts)
    if len(text) <= 180 and all(_SAFE.fullmatch(p) for p in parts):
        return f"{prefix}_{text}"
    return f"{prefix}_{hashlib.sha256(text.encode()).hexdigest()[:24]}"


def element(addresses: Range) -> str:
    """An interval set element: an address, a prefix when the range is one, else first-last."""
    start, end = addresses
    if start == end:
        return address_text(start)
    size = end - start + 1
    if size & (size - 1) == 0 and start % size == 0:
        return f"{address_text(start)}/{32 - size.bit_length() + 1}"
    return f"{address_text(start)}-{address_text(end)}"


def _ranges(ranges: Iterable[tuple[int, int]]) -> str:
    return ", ".join(str(a) if a == b else f"{a}-{b}" for a, b in ranges)


def rule_lines(rule: Rule, peer_match: str, port_set: str | None, verdict: str, egress: bool) -> list[str]:
    """The nft rules of one policy rule: any one of them matching allows."""
    ports: Ports | None = rule.ports
    if ports is None:
        return [f"{peer_match}{verdict}"]
    lines = [f"{peer_match}meta l4proto {proto.lower()} {verdict}" for proto in ports.whole]
    lines += [f"{peer_match}meta l4proto {proto.lower()} th dport {{ {_ranges(ranges)} }} {verdict}"
              for proto, ranges in ports.ranges]
    if port_set is not None:
        # egress: the set's addresses are the peer pods already; ingress: still check the source
        lookup = f"ip daddr . meta l4proto . th dport @{port_set} {verdict}"
        lines.append(lookup if egress else f"{peer_match}{lookup}")
    return lines


def _policy(policy: Policy, rs: Ruleset) -> None:
    for egress, wanted, rules in ((False, policy.ingress, policy.ingress_rules),
                                  (True, policy.egress, policy.egress_rules)):
        if not wanted:
            continue
        tag = "eg" if egress else "in"
        verdict = f"goto {DISPATCH}" if egress else "accept"
        lines: list[str] = []
        for i, rule in enumerate(rules):
            peer_match = ""
            if rule.peers is not None:
                peer_set = name(f"peers-{tag}", policy.namespace, policy.name, str(i))
                rs.sets[peer_set] = NftSet(PEER_SET, frozenset(element(n) for n in rule.peers))
                peer_match = f"ip {'daddr' if egress else 'saddr'} @{peer_set} "
            port_set = None
            if rule.ports is not None and rule.ports.named:
                port_set = name(f"ports-{tag}", policy.namespace, policy.name, str(i))
                rs.sets[port_set] = NftSet(PORT_SET, frozenset(
                    f"{ip} . {proto.lower()} . {port}" for ip, proto, port in rule.ports.resolved))
            lines += rule_lines(rule, peer_match, port_set, verdict, egress)
        rs.chains[name(f"pol-{tag}", policy.namespace, policy.name)] = tuple(lines)


def build(model: Model) -> Ruleset:
    """The table's variable part for ``model``."""
    rs = Ruleset()
    for policy in model.policies.values():
        _policy(policy, rs)
    for egress, isolated, pod_map in ((False, model.ingress, rs.ingress), (True, model.egress, rs.egress)):
        tag = "eg" if egress else "in"
        for ip, why in isolated.items():
            chain = name(f"pod-{tag}", why.pod.namespace, why.pod.name)
            own = f"ip {'daddr' if egress else 'saddr'} {ip} accept"  # a pod never blocks itself
            jumps = [f"jump {name(f'pol-{tag}', *key.split('/', 1))}" for key in why.policies]
            rs.chains[chain] = (own, *jumps, "drop")
            pod_map[ip] = chain
    return rs


def _base(table: str) -> list[str]:
    return [
        f"table {FAMILY} {table} {{",
        f"  map {INGRESS_MAP} {{ type ipv4_addr : verdict; }}",
        f"  map {EGRESS_MAP} {{ type ipv4_addr : verdict; }}",
        "  chain forward {",
        "    type filter hook forward priority filter; policy accept;",
        "    ct state established,related accept",
        f"    ip saddr vmap @{EGRESS_MAP}",
        f"    goto {DISPATCH}",
        "  }",
        f"  chain {DISPATCH} {{",
        f"    ip daddr vmap @{INGRESS_MAP}",
        "    accept",
        "  }",
    ]


def _elements(table: str, set_name: str, elements: Iterable[str], verb: str = "add") -> list[str]:
    items = sorted(elements)
    if not items:
        return []
    return [f"{verb} element {FAMILY} {table} {set_name} {{ {', '.join(items)} }}"]


def _map_elements(table: str, map_name: str, entries: dict[str, str], verb: str = "add") -> list[str]:
    if verb == "delete":
        return _elements(table, map_name, entries, "delete")
    return _elements(table, map_name, (f"{ip} : goto {chain}" for ip, chain in entries.items()))


def full_script(table: str, rs: Ruleset) -> str:
    """One transaction that (re)creates the whole table."""
    lines = [f"add table {FAMILY} {table}", f"delete table {FAMILY} {table}", *_base(table)]
    for set_name, nft_set in sorted(rs.sets.items()):
        elements = f" elements = {{ {', '.join(sorted(nft_set.elements))} }};" if nft_set.elements else ""
        lines.append(f"  set {set_name} {{ {nft_set.spec}{elements} }}")
    for chain in sorted(rs.chains, key=_chain_order):
        lines.append(f"  chain {chain} {{")
        lines += [f"    {rule}" for rule in rs.chains[chain]]
        lines.append("  }")
    lines.append("}")
    lines += _map_elements(table, INGRESS_MAP, rs.ingress)
    lines += _map_elements(table, EGRESS_MAP, rs.egress)
    return "\n".join(lines) + "\n"


def _chain_order(chain: str) -> tuple[int, str]:
    return (0 if chain.startswith("pol-") else 1, chain)  # what is jumped to comes first


def diff_script(table: str, old: Ruleset, new: Ruleset) -> str:
    """The transaction turning ``old`` (what the table holds) into ``new``; "" when equal.

    Order: drop map entries that go or change; flush chains that change or go (so nothing
    refers to what is deleted next); delete those chains and the sets that go; create sets and
    move elements; create chains and fill them; add the map entries."""
    out: list[str] = []
    t = f"{FAMILY} {table}"
    for map_name, before, after in ((INGRESS_MAP, old.ingress, new.ingress), (EGRESS_MAP, old.egress, new.egress)):
        out += _map_elements(table, map_name, {ip: c for ip, c in before.items() if after.get(ip) != c}, "delete")
    gone_chains = [c for c in old.chains if c not in new.chains]
    changed_chains = [c for c in new.chains if c in old.chains and old.chains[c] != new.chains[c]]
    out += [f"flush chain {t} {c}" for c in sorted(gone_chains + changed_chains)]
    out += [f"delete chain {t} {c}" for c in sorted(gone_chains)]
    replaced = {s for s in old.sets if s in new.sets and old.sets[s].spec != new.sets[s].spec}
    out += [f"delete set {t} {s}" for s in sorted(s for s in old.sets if s not in new.sets or s in replaced)]
    for set_name, nft_set in sorted(new.sets.items()):
        before = old.sets.get(set_name)
        if before is None or set_name in replaced:
            out.append(f"add set {t} {set_name} {{ {nft_set.spec} }}")
            out += _elements(table, set_name, nft_set.elements)
        elif before.elements != nft_set.elements:
            out += _elements(table, set_name, before.elements - nft_set.elements, "delete")
            out += _elements(table, set_name, nft_set.elements - before.elements)
    added_chains = [c for c in new.chains if c not in old.chains]
    out += [f"add chain {t} {c}" for c in sorted(added_chains, key=_chain_order)]
    for chain in sorted(added_chains + changed_chains, key=_chain_order):
        out += [f"add rule {t} {chain} {rule}" for rule in new.chains[chain]]
    for map_name, before, after in ((INGRESS_MAP, old.ingress, new.ingress), (EGRESS_MAP, old.egress, new.egress)):
        out += _map_elements(table, map_name, {ip: c for ip, c in after.items() if before.get(ip) != c})
    return "\n".join(out) + "\n" if out else ""
