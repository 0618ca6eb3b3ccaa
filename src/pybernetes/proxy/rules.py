"""The proxy's nftables rules (pure): the fixed skeleton of its table and one ``Unit`` (chains,
sets, map elements) per service port, laid out as upstream kube-proxy's nftables mode.

The table (family ``ip``, name from the config, default ``pybernetes-proxy``):

- base chains ``nat-prerouting`` and ``nat-output`` (dstnat, -100) jump to ``services``, which
  dispatches ``ip daddr . meta l4proto . th dport`` through the verdict map ``service-ips``
  (ClusterIPs, externalIPs, LoadBalancer IPs) and, for the addresses in ``nodeport-ips``,
  ``meta l4proto . th dport`` through ``service-nodeports``;
- ``filter-prerouting`` and ``filter-output`` (-110, before DNAT) send new connections through
  ``no-endpoint-services`` / ``no-endpoint-nodeports``: ``goto reject-chain`` (ICMP port
  unreachable: a TCP client gets "connection refused" at once) for a service without endpoints,
  ``drop`` when a Local traffic policy finds none on this node.  Upstream does this from the
  input, forward and output hooks because kernels before 5.9 cannot reject in prerouting; doing
  it in prerouting also answers when the node has no route for the address;
- ``firewall-check`` (jumped to first from ``filter-prerouting`` and ``filter-output``, new
  connections only) enforces ``loadBalancerSourceRanges`` as upstream: the verdict map
  ``firewall-ips`` sends each LoadBalancer IP + protocol + port of a Service with source ranges to
  its ``firewall-*`` chain, which drops sources outside them (the LoadBalancer IPs themselves
  count as inside when a range holds one of the node's addresses: a node reaching a VIP that is
  local to it loops back from that VIP).  ClusterIPs, externalIPs and node ports are not
  limited;
- ``cluster-ips-check`` (prerouting and output after DNAT, at -90) rejects what is still
  addressed to a ClusterIP after DNAT: a port the Service does not have;
- ``mark-for-masquerade`` sets the masquerade bit; ``nat-postrouting`` (srcnat, 100) masquerades
  marked packets (clearing the bit) and anything from 127.0.0.0/8 leaving by another interface
  (node ports and LoadBalancer IPs on 127.0.0.1 need route_localnet and this), while
  ``filter-input`` drops new connections from other interfaces to 127.0.0.0/8 that were not
  DNATed (what route_localnet would otherwise let in).

Per service port (chain names as upstream's: a prefix, a hash, then namespace/name/proto/port):
``service-*`` balances over the Cluster-policy endpoints (``numgen random mod N vmap``, with
ClientIP affinity first through one ``affinity-*`` timeout set per endpoint), ``local-*`` over
this node's endpoints, ``external-*`` handles external traffic (masquerade for policy Cluster;
for Local, pod and node traffic short-circuits to ``service-*``), and ``endpoint-*`` marks
hairpin traffic, records affinity and DNATs.  Off-cluster traffic to a ClusterIP is masqueraded
when the cluster CIDR is known.
"""

from __future__ import annotations

import base64
import hashlib
import ipaddress
import re
from dataclasses import dataclass, field

from pybernetes.proxy.model import PortName, PortView, Range, categorize, merge_ranges
from pybernetes.proxy.table import ADD_CHAIN, ADD_SET, BaseChain, Op, SetSpec

SERVICE_KEY = "ipv4_addr . inet_proto . inet_service"
NODEPORT_KEY = "inet_proto . inet_service"
SERVICE_IPS, SERVICE_NODEPORTS = "service-ips", "service-nodeports"
NO_ENDPOINT_SERVICES, NO_ENDPOINT_NODEPORTS = "no-endpoint-services", "no-endpoint-nodeports"
FIREWALL_IPS, FIREWALL_CHECK = "firewall-ips", "firewall-check"
CLUSTER_IPS, NODEPORT_IPS = "cluster-ips", "nodeport-ips"
MARK_CHAIN, MASQ_CHAIN, REJECT_CHAIN = "mark-for-masquerade", "masquerading", "reject-chain"

MAPS = {SERVICE_IPS: SetSpec(SERVICE_KEY, True), SERVICE_NODEPORTS: SetSpec(NODEPORT_KEY, True),
        NO_ENDPOINT_SERVICES: SetSpec(SERVICE_KEY, True), NO_ENDPOINT_NODEPORTS: SetSpec(NODEPORT_KEY, True),
        FIREWALL_IPS: SetSpec(SERVICE_KEY, True)}
ADDRESS_SETS = {CLUSTER_IPS: SetSpec("ipv4_addr"), NODEPORT_IPS: SetSpec("ipv4_addr")}

# levels: the order chains are created in (what a rule jumps to exists before it)
ENDPOINT_LEVEL, POLICY_LEVEL, EXTERNAL_LEVEL = 1, 2, 3


@dataclass(frozen=True, slots=True)
class RenderConfig:
    table: str = "pybernetes-proxy"
    node_name: str = ""
    cluster_cidr: str = ""  # the pods' addresses ("" : unknown)
    nodeport_ips: tuple[str, ...] = ()  # addresses node ports answer on
    node_ips: tuple[str, ...] = ()  # the node's own addresses (LoadBalancer source ranges)
    masquerade_bit: int = 14
    sctp: bool = True  # whether SCTP service ports are programmed (the kernel has SCTP conntrack)

    @property
    def mark(self) -> str:
        return hex(1 << self.masquerade_bit)

    @property
    def cidr(self) -> str:
        if not self.cluster_cidr:
            return ""
        network = ipaddress.ip_network(self.cluster_cidr, strict=False)
        return str(network.network_address) if network.prefixlen == 32 else str(network)


@dataclass(slots=True)
class Unit:
    """What one service port adds to the table."""

    chains: dict[str, tuple[int, tuple[str, ...]]] = field(default_factory=dict)  # name -> (level, rules)
    sets: dict[str, SetSpec] = field(default_factory=dict)  # affinity sets
    elements: dict[str, dict[str, str]] = field(default_factory=dict)  # map -> key -> verdict
    members: tuple[tuple[str, str], ...] = ()  # (set, element), shared between ports (cluster-ips)


_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]")


def _hash(text: str) -> str:
    return base64.b32encode(hashlib.sha256(text.encode()).digest()).decode()[:8]


def _safe(part: str) -> str:
    return _UNSAFE.sub("_", part)


def port_chain_base(name: PortName) -> str:
    text = f"{_safe(name.namespace)}/{_safe(name.service)}/{name.protocol}/{_safe(name.port)}"
    return f"{_hash(str(name))}-{text}"


def endpoint_chain_base(name: PortName, address: str) -> str:
    ip, port = address.rsplit(":", 1)
    text = f"{_safe(name.namespace)}/{_safe(name.service)}/{name.protocol}/{_safe(name.port)}__{ip}/{port}"
    return f"{_hash(f'{name}@{address}')}-{text}"


def _address_text(value: int) -> str:
    return str(ipaddress.IPv4Address(value))


def range_text(addresses: Range) -> str:
    """A range as nft lists it back: an address, a prefix when it is one, else first-last."""
    start, end = addresses
    if start == end:
        return _address_text(start)
    size = end - start + 1
    if size & (size - 1) == 0 and start % size == 0:
        return f"{_address_text(start)}/{33 - size.bit_length()}"
    return f"{_address_text(start)}-{_address_text(end)}"


def firewall_rule(config: RenderConfig, source_ranges: tuple[Range, ...], lb_ips: tuple[str, ...]) -> str:
    """The rule of a ``firewall-*`` chain: drop sources outside the ranges (see the module doc),
    in the form nft lists it back (merged ranges; no braces around one element)."""
    ranges = merge_ranges(source_ranges)
    nodes = [int(ipaddress.IPv4Address(ip)) for ip in config.node_ips]
    if any(start <= ip <= end for ip in nodes for start, end in ranges):
        ranges = merge_ranges([*ranges, *((int(ipaddress.IPv4Address(ip)),) * 2 for ip in lb_ips)])
    texts = [range_text(r) for r in ranges]
    allowed = texts[0] if len(texts) == 1 else "{ " + ", ".join(texts) + " }"
    return f"ip saddr != {allowed} drop"


def render_port(config: RenderConfig, view: PortView) -> Unit:
    """The chains, affinity sets and map elements of one service port (see the module doc)."""
    service = view.service
    name = service.name
    unit = Unit()
    if name.protocol == "sctp" and not config.sctp:
        return unit
    proto, port = name.protocol, service.port
    base = port_chain_base(name)
    cluster_chain, local_chain, external_chain = f"service-{base}", f"local-{base}", f"external-{base}"
    found = categorize(view, config.node_name)
    has_any = found.has_any
    uses_cluster = bool(found.cluster) and service.uses_cluster_endpoints
    uses_local = bool(found.local) and service.uses_local_endpoints
    internal_chain = local_chain if service.internal_local else cluster_chain
    has_internal = has_any and (not service.internal_local or bool(found.local))
    policy_chain = local_chain if service.external_local else cluster_chain
    has_external = has_any and (not service.external_local or bool(found.local))
    uses_external = has_any and service.externally_accessible
    internal_filter = "drop" if has_any else f"goto {REJECT_CHAIN}"
    external_filter = "drop" if has_any else f"goto {REJECT_CHAIN}"
    service_ips: dict[str, str] = {}
    no_endpoints: dict[str, str] = {}

    if service.cluster_ip:
        key = f"{service.cluster_ip} . {proto} . {port}"
        if has_internal:
            service_ips[key] = f"goto {internal_chain}"
        else:
            no_endpoints[key] = internal_filter
        unit.members = ((CLUSTER_IPS, service.cluster_ip),)
    for ip in service.external_ips + service.lb_ips:
        key = f"{ip} . {proto} . {port}"
        if has_any:
            service_ips[key] = f"goto {external_chain}"
        if not has_external:
            no_endpoints[key] = external_filter
    if service.node_port:
        key = f"{proto} . {service.node_port}"
        if has_any:
            unit.elements[SERVICE_NODEPORTS] = {key: f"goto {external_chain}"}
        if not has_external:
            unit.elements[NO_ENDPOINT_NODEPORTS] = {key: external_filter}
    if service_ips:
        unit.elements[SERVICE_IPS] = service_ips
    if service.source_ranges and service.lb_ips:
        firewall_chain = f"firewall-{base}"
        unit.chains[firewall_chain] = (ENDPOINT_LEVEL, (firewall_rule(config, service.source_ranges,
                                                                      service.lb_ips),))
        unit.elements[FIREWALL_IPS] = {f"{ip} . {proto} . {port}": f"goto {firewall_chain}"
                                       for ip in service.lb_ips}
    if no_endpoints:
        unit.elements[NO_ENDPOINT_SERVICES] = no_endpoints

    affinity = service.affinity_timeout
    chains = unit.chains
    endpoint_chains: dict[str, str] = {}
    for endpoint in found.reachable:
        ep_base = endpoint_chain_base(name, endpoint.address)
        chain = endpoint_chains[endpoint.address] = f"endpoint-{ep_base}"
        rules = [f"ip saddr {endpoint.ip} jump {MARK_CHAIN}"]
        if affinity:
            unit.sets[f"affinity-{ep_base}"] = SetSpec("ipv4_addr", timeout=affinity)
            rules.append(f"update @affinity-{ep_base} {{ ip saddr }}")
        rules.append(f"meta l4proto {proto} dnat to {endpoint.address}")
        chains[chain] = (ENDPOINT_LEVEL, tuple(rules))

    cidr = config.cidr
    masquerade_outsiders = (f"ip daddr {service.cluster_ip} {proto} dport {port} ip saddr != {cidr} "
                            f"jump {MARK_CHAIN}") if cidr and service.cluster_ip and has_internal else ""
    for wanted, chain, endpoints in ((uses_cluster, cluster_chain, found.cluster),
                                     (uses_local, local_chain, found.local)):
        if not wanted:
            continue
        rules = [masquerade_outsiders] if masquerade_outsiders and chain == internal_chain else []
        if affinity:
            rules.extend(f"ip saddr @affinity-{endpoint_chains[e.address][len('endpoint-'):]} "
                         f"goto {endpoint_chains[e.address]}" for e in endpoints)
        items = ", ".join(f"{i} : goto {endpoint_chains[e.address]}" for i, e in enumerate(endpoints))
        rules.append(f"numgen random mod {len(endpoints)} vmap {{ {items} }}")
        chains[chain] = (POLICY_LEVEL, tuple(rules))

    if uses_external:
        rules = []
        if not service.external_local:
            rules.append(f"jump {MARK_CHAIN}")
        else:
            if cidr:
                rules.append(f"ip saddr {cidr} goto {cluster_chain}")  # pods: as if via the LB
            rules.append(f"fib saddr type local jump {MARK_CHAIN}")  # the node: its own address
            rules.append(f"fib saddr type local goto {cluster_chain}")
        if has_external:
            rules.append(f"goto {policy_chain}")
        chains[external_chain] = (EXTERNAL_LEVEL, tuple(rules))
    return unit


# -- the fixed part ------------------------------------------------------------------------------

BASE_CHAINS = {
    "filter-prerouting": BaseChain("filter", "prerouting", -110),
    "filter-input": BaseChain("filter", "input", -110),
    "filter-output": BaseChain("filter", "output", -110),
    "filter-prerouting-post-dnat": BaseChain("filter", "prerouting", -90),
    "filter-output-post-dnat": BaseChain("filter", "output", -90),
    "nat-prerouting": BaseChain("nat", "prerouting", -100),
    "nat-output": BaseChain("nat", "output", -100),
    "nat-postrouting": BaseChain("nat", "postrouting", 100),
}


def leaf_chains(config: RenderConfig) -> dict[str, tuple[str, ...]]:
    """Chains that jump nowhere: created first."""
    mark = config.mark
    return {
        MARK_CHAIN: (f"meta mark set meta mark | {mark}",),
        MASQ_CHAIN: ('ip saddr 127.0.0.0/8 meta oifname != "lo" masquerade fully-random',
                     f"meta mark & {mark} == 0x0 return",
                     f"meta mark set meta mark ^ {mark}",
                     "masquerade fully-random"),
        REJECT_CHAIN: ("reject",),
    }


def dispatch_chains() -> dict[str, tuple[str, ...]]:
    """Chains jumped to from the base chains (they use the maps: created after them)."""
    return {
        "services": (f"ip daddr . meta l4proto . th dport vmap @{SERVICE_IPS}",
                     f"ip daddr @{NODEPORT_IPS} meta l4proto . th dport vmap @{SERVICE_NODEPORTS}"),
        "service-endpoints-check": (f"ip daddr . meta l4proto . th dport vmap @{NO_ENDPOINT_SERVICES}",),
        "nodeport-endpoints-check": (f"ip daddr @{NODEPORT_IPS} meta l4proto . th dport vmap "
                                     f"@{NO_ENDPOINT_NODEPORTS}",),
        "cluster-ips-check": (f"ip daddr @{CLUSTER_IPS} reject",),
        FIREWALL_CHECK: (f"ip daddr . meta l4proto . th dport vmap @{FIREWALL_IPS}",),
    }


def base_chain_rules() -> dict[str, tuple[str, ...]]:
    return {
        "filter-prerouting": (f"ct state new jump {FIREWALL_CHECK}",
                              "ct state new jump nodeport-endpoints-check",
                              "ct state new jump service-endpoints-check"),
        # with route_localnet on, only DNAT (a node port on 127.0.0.1) may bring outside
        # traffic to 127.0.0.0/8: as upstream's iptables mode, drop the rest
        "filter-input": ('ip daddr 127.0.0.0/8 meta iifname != "lo" ct state new drop',),
        "filter-output": (f"ct state new jump {FIREWALL_CHECK}",
                          "ct state new jump nodeport-endpoints-check",
                          "ct state new jump service-endpoints-check"),
        "filter-prerouting-post-dnat": ("ct state new jump cluster-ips-check",),
        "filter-output-post-dnat": ("ct state new jump cluster-ips-check",),
        "nat-prerouting": ("jump services",),
        "nat-output": ("jump services",),
        "nat-postrouting": (f"jump {MASQ_CHAIN}",),
    }


def skeleton_names() -> tuple[set[str], set[str]]:
    """Names of the fixed chains and sets."""
    chains = set(BASE_CHAINS) | set(dispatch_chains()) | {MARK_CHAIN, MASQ_CHAIN, REJECT_CHAIN}
    return chains, set(MAPS) | set(ADDRESS_SETS)


def skeleton_before(config: RenderConfig, members: dict[str, list[str]]) -> list[Op]:
    """The fixed sets (with ``members``) and leaf chains: what unit chains need first."""
    ops: list[Op] = [(ADD_SET, name, spec, ()) for name, spec in MAPS.items()]
    addresses = {CLUSTER_IPS: members.get(CLUSTER_IPS, []), NODEPORT_IPS: list(config.nodeport_ips)}
    for name, spec in ADDRESS_SETS.items():
        ops.append((ADD_SET, name, spec, tuple((ip, None) for ip in sorted(set(addresses[name])))))
    ops.extend((ADD_CHAIN, name, None, rules) for name, rules in leaf_chains(config).items())
    return ops


def skeleton_after() -> list[Op]:
    """The dispatch and base chains: created last, once everything they reach exists."""
    ops: list[Op] = [(ADD_CHAIN, name, None, rules) for name, rules in dispatch_chains().items()]
    rules = base_chain_rules()
    ops.extend((ADD_CHAIN, name, base, rules[name]) for name, base in BASE_CHAINS.items())
    return ops
