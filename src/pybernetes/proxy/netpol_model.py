"""NetworkPolicy semantics, pure: which pods of this node are isolated, and what each policy allows.

``compute(pods, namespaces, policies, node_name)`` turns wire-shaped Pods, Namespaces and
NetworkPolicies (networking.k8s.io/v1) into a ``Model`` the renderer (netpol_rules) writes as
nftables.  Upstream semantics:

- A pod is *isolated* for ingress (egress) when a policy of its namespace selects it
  (``spec.podSelector``, empty = every pod) and the policy's ``policyTypes`` contain Ingress
  (Egress); ``policyTypes`` default as the API does (Ingress always, Egress when egress rules
  exist).  Only pods of this node with an IPv4 pod IP, not hostNetwork, not finished, are
  enforced here; pods of every node are peers.
- What passes is the union of the selecting policies' rules.  A rule allows a connection when
  its peers (``from``/``to``; empty = anyone) match and its ports (empty = any) match.  Peers:
  podSelector alone (pods of the policy's namespace), namespaceSelector alone (every pod of the
  matching namespaces), both (those pods in those namespaces), ipBlock (cidr minus except).
  Ports: protocol (default TCP), a number, a number with endPort, or a *named* port — resolved
  against the destination: for ingress the selected pod's container ports, for egress each
  peer pod's.  A named port therefore becomes (pod IP, protocol, port) triples.
- A pod never blocks itself, and the node's own traffic is never filtered (the renderer's job).

Bad input never raises: a policy whose podSelector cannot be parsed is left out, a rule with
a bad peer or port allows nothing (the policy still isolates its pods: fail closed); both are
reported in ``Model.errors``.  IPv6 addresses and CIDRs are ignored (the table is ``ip``).
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from pybernetes.machinery.selectors import LabelSelector, SelectorParseError, label_selector_from_dict
from pybernetes.machinery.validation_net import parse_cidr_sloppy, parse_ip_sloppy
from pybernetes.proxy.model import merge_ranges

Obj = dict[str, Any]
Range = tuple[int, int]  # first and last IPv4 address, as integers
PROTOCOLS = ("TCP", "UDP", "SCTP")
NAME_LABEL = "kubernetes.io/metadata.name"
TERMINAL_PHASES = ("Succeeded", "Failed")


class PolicyError(ValueError):
    """A part of a policy that cannot be enforced."""


# -- pods and namespaces ----------------------------------------------------------------------


@dataclass(frozen=True)
class PodInfo:
    namespace: str
    name: str
    ip: str  # IPv4
    ip_int: int
    node: str
    labels: Mapping[str, str]
    ports: tuple[tuple[str, str, int], ...] = ()  # (name, protocol, containerPort) of named ports
    created: str = ""

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def pod_ipv4(obj: Obj) -> int | None:
    """The pod's IPv4 address as an integer (status.podIPs first, then status.podIP), or None."""
    status = _mapping(obj.get("status"))
    candidates = [p.get("ip") for p in status.get("podIPs") or [] if isinstance(p, Mapping)]
    candidates.append(status.get("podIP"))
    for candidate in candidates:
        address = parse_ip_sloppy(candidate) if isinstance(candidate, str) else None
        if address is not None and address.version == 4:
            return int(address)
    return None


def address_text(value: int) -> str:
    return ".".join(str((value >> shift) & 255) for shift in (24, 16, 8, 0))


def covers(ranges: tuple[Range, ...], value: int) -> bool:
    """Whether ``value`` is in ``ranges`` (as merge_ranges returns them)."""
    i = bisect.bisect_right(ranges, (value, 1 << 33)) - 1
    return i >= 0 and ranges[i][0] <= value <= ranges[i][1]


def _named_ports(spec: Mapping[str, Any]) -> tuple[tuple[str, str, int], ...]:
    out = []
    for container in spec.get("containers") or []:
        for port in _mapping(container).get("ports") or []:
            port = _mapping(port)
            name, number = port.get("name"), port.get("containerPort")
            if isinstance(name, str) and name and isinstance(number, int) and 0 < number < 65536:
                protocol = port.get("protocol") or "TCP"
                out.append((name, str(protocol), number))
    return tuple(sorted(set(out)))


def pod_info(obj: Obj) -> PodInfo | None:
    """The pod as policies see it, or None when policies do not apply to it (hostNetwork, no
    IPv4 address yet, finished: its address may already belong to another pod)."""
    meta, spec, status = _mapping(obj.get("metadata")), _mapping(obj.get("spec")), _mapping(obj.get("status"))
    if spec.get("hostNetwork") or status.get("phase") in TERMINAL_PHASES:
        return None
    address = pod_ipv4(obj)
    if address is None:
        return None
    labels = {str(k): str(v) for k, v in _mapping(meta.get("labels")).items()}
    return PodInfo(str(meta.get("namespace") or "default"), str(meta.get("name") or ""), address_text(address),
                   address, str(spec.get("nodeName") or ""), labels, _named_ports(spec),
                   str(meta.get("creationTimestamp") or ""))


def pod_digest(obj: Obj) -> Any:
    """What of a pod matters to policies (an update that keeps it needs no sync)."""
    info = pod_info(obj)
    return None if info is None else (info.ip, info.node, tuple(sorted(info.labels.items())), info.ports)


def namespace_labels(obj: Obj) -> dict[str, str]:
    """A namespace's labels, always with kubernetes.io/metadata.name (the API sets it too)."""
    meta = _mapping(obj.get("metadata"))
    labels = {str(k): str(v) for k, v in _mapping(meta.get("labels")).items()}
    labels.setdefault(NAME_LABEL, str(meta.get("name") or ""))
    return labels


# -- compiled policies ------------------------------------------------------------------------


@dataclass(frozen=True)
class Ports:
    """The ports half of a rule: port ranges per protocol, protocols with every port allowed, and
    named ports resolved to (pod IP, protocol, port)."""
    ranges: tuple[tuple[str, tuple[tuple[int, int], ...]], ...] = ()
    whole: tuple[str, ...] = ()  # protocols whose every port is allowed
    named: tuple[tuple[str, str], ...] = ()  # (protocol, name) as written
    resolved: frozenset[tuple[str, str, int]] = frozenset()


@dataclass(frozen=True)
class Rule:
    peers: tuple[Range, ...] | None  # None: any peer; else merged address ranges (pods and blocks)
    ports: Ports | None  # None: any port


@dataclass
class Policy:
    namespace: str
    name: str
    ingress: bool  # isolates its pods for ingress
    egress: bool
    ingress_rules: list[Rule] = field(default_factory=list)
    egress_rules: list[Rule] = field(default_factory=list)
    targets: list[PodInfo] = field(default_factory=list)  # the pods of this node it selects

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"


@dataclass
class Isolation:
    pod: PodInfo
    policies: list[str]  # policy keys, sorted


@dataclass
class Model:
    policies: dict[str, Policy] = field(default_factory=dict)  # only policies selecting pods here
    ingress: dict[str, Isolation] = field(default_factory=dict)  # pod IP -> why it is isolated
    egress: dict[str, Isolation] = field(default_factory=dict)
    errors: dict[str, list[str]] = field(default_factory=dict)  # policy key -> problems


def policy_types(spec: Mapping[str, Any]) -> tuple[bool, bool]:
    """(ingress, egress) isolation of a policy spec, defaulting policyTypes as the API does."""
    types = spec.get("policyTypes")
    if not types:
        return True, bool(spec.get("egress"))
    return "Ingress" in types, "Egress" in types


def _selector(value: Any, path: str) -> LabelSelector:
    try:
        return label_selector_from_dict(value if value is not None else {})
    except SelectorParseError as exc:
        raise PolicyError(f"{path}: {exc}") from None


def ip_block_ranges(block: Any, path: str = "ipBlock") -> list[Range]:
    """``cidr`` minus every ``except``, as IPv4 address ranges (none for an IPv6 block)."""
    block = _mapping(block)
    network = parse_cidr_sloppy(block.get("cidr")) if isinstance(block.get("cidr"), str) else None
    if network is None:
        raise PolicyError(f"{path}.cidr: invalid CIDR {block.get('cidr')!r}")
    if network.version != 4:
        return []
    remaining = [(int(network.network_address), int(network.broadcast_address))]
    for i, text in enumerate(block.get("except") or []):
        excepted = parse_cidr_sloppy(text) if isinstance(text, str) else None
        if excepted is None:
            raise PolicyError(f"{path}.except[{i}]: invalid CIDR {text!r}")
        if excepted.version != 4:
            continue
        low, high = int(excepted.network_address), int(excepted.broadcast_address)
        kept: list[Range] = []
        for start, end in remaining:
            if end < low or start > high:
                kept.append((start, end))
                continue
            if start < low:
                kept.append((start, low - 1))
            if end > high:
                kept.append((high + 1, end))
        remaining = kept
    return remaining


def _port_number(value: Any, path: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value < 65536:
        raise PolicyError(f"{path}: invalid port {value!r}")
    return value


def parse_ports(ports: Any, path: str) -> Ports | None:
    """A rule's ``ports`` (None: any port), named ports not yet resolved."""
    if not ports:
        return None
    ranges: dict[str, list[tuple[int, int]]] = {}
    whole: set[str] = set()
    named: set[tuple[str, str]] = set()
    for i, port in enumerate(ports):
        port, ppath = _mapping(port), f"{path}[{i}]"
        protocol = port.get("protocol") or "TCP"
        if protocol not in PROTOCOLS:
            raise PolicyError(f"{ppath}.protocol: unsupported protocol {protocol!r}")
        value = port.get("port")
        if isinstance(value, str) and value.isdigit():
            value = int(value)
        if value is None:
            whole.add(protocol)
        elif isinstance(value, str):
            if port.get("endPort") is not None:
                raise PolicyError(f"{ppath}.endPort: not allowed with a named port")
            named.add((protocol, value))
        else:
            start = _port_number(value, f"{ppath}.port")
            end = port.get("endPort")
            end = start if end is None else _port_number(end, f"{ppath}.endPort")
            if end < start:
                raise PolicyError(f"{ppath}.endPort: {end} is below port {start}")
            ranges.setdefault(protocol, []).append((start, end))
    return Ports(tuple((p, merge_ranges(r)) for p, r in sorted(ranges.items()) if p not in whole),
                 tuple(sorted(whole)), tuple(sorted(named)))


def resolve_named(named: Iterable[tuple[str, str]], pods: Iterable[PodInfo]) -> frozenset[tuple[str, str, int]]:
    """(pod IP, protocol, port) for every pod whose container declares one of the named ports."""
    wanted = set(named)
    return frozenset((pod.ip, protocol, number) for pod in pods
                     for name, protocol, number in pod.ports if (protocol, name) in wanted)


class _Cluster:
    """The pods and namespaces policies are evaluated against, indexed."""

    def __init__(self, pods: Iterable[PodInfo], namespaces: Mapping[str, Mapping[str, str]]) -> None:
        self.pods = list(pods)
        self.by_namespace: dict[str, list[PodInfo]] = {}
        for pod in self.pods:
            self.by_namespace.setdefault(pod.namespace, []).append(pod)
        self.namespace_labels = dict(namespaces)
        for name in self.by_namespace:
            self.namespace_labels.setdefault(name, {NAME_LABEL: name})

    def namespaces_matching(self, selector: LabelSelector) -> list[str]:
        return [name for name, labels in self.namespace_labels.items() if selector.matches(labels)]

    def peer_pods(self, peer: Mapping[str, Any], namespace: str, path: str) -> list[PodInfo]:
        pod_selector = _selector(peer.get("podSelector"), f"{path}.podSelector")
        if peer.get("namespaceSelector") is None:
            namespaces = [namespace]
        else:
            namespaces = self.namespaces_matching(_selector(peer["namespaceSelector"], f"{path}.namespaceSelector"))
        return [pod for ns in namespaces for pod in self.by_namespace.get(ns, ())
                if pod_selector.matches(pod.labels)]


def _compile_rule(cluster: _Cluster, namespace: str, rule: Mapping[str, Any], peers_field: str,
                  path: str, targets: list[PodInfo], egress: bool) -> Rule:
    ports = parse_ports(rule.get("ports"), f"{path}.ports")
    written = rule.get(peers_field) or []
    peer_pods: list[PodInfo] = []
    blocks: list[Range] = []
    for j, peer in enumerate(written):
        peer, ppath = _mapping(peer), f"{path}.{peers_field}[{j}]"
        if peer.get("ipBlock") is not None:
            if peer.get("podSelector") is not None or peer.get("namespaceSelector") is not None:
                raise PolicyError(f"{ppath}: ipBlock may not be combined with selectors")
            blocks.extend(ip_block_ranges(peer["ipBlock"], f"{ppath}.ipBlock"))
        elif peer.get("podSelector") is not None or peer.get("namespaceSelector") is not None:
            peer_pods.extend(cluster.peer_pods(peer, namespace, ppath))
        else:
            raise PolicyError(f"{ppath}: a peer needs podSelector, namespaceSelector or ipBlock")
    peers = None if not written else merge_ranges(blocks + [(pod.ip_int, pod.ip_int) for pod in peer_pods])
    if ports is not None and ports.named:
        if egress:  # resolved against the peers: pods selected, or pods inside the blocks
            if peers is None:
                candidates = cluster.pods
            else:
                merged = merge_ranges(blocks)
                candidates = peer_pods + [pod for pod in cluster.pods if covers(merged, pod.ip_int)]
        else:  # resolved against the pods the policy protects
            candidates = targets
        ports = Ports(ports.ranges, ports.whole, ports.named, resolve_named(ports.named, candidates))
    return Rule(peers, ports)


def compile_policy(obj: Obj, cluster: _Cluster, node_name: str) -> tuple[Policy | None, list[str]]:
    """The policy (None when it cannot select anything) and the problems found in it."""
    meta, spec = _mapping(obj.get("metadata")), _mapping(obj.get("spec"))
    namespace, name = str(meta.get("namespace") or "default"), str(meta.get("name") or "")
    try:
        selector = _selector(spec.get("podSelector"), "spec.podSelector")
    except PolicyError as exc:
        return None, [str(exc)]
    ingress, egress = policy_types(spec)
    policy = Policy(namespace, name, ingress, egress)
    policy.targets = [pod for pod in cluster.by_namespace.get(namespace, ())
                      if pod.node == node_name and selector.matches(pod.labels)]
    problems: list[str] = []
    for direction, peers_field, wanted, rules in (("ingress", "from", ingress, policy.ingress_rules),
                                                  ("egress", "to", egress, policy.egress_rules)):
        if not wanted or not policy.targets:
            continue
        for i, rule in enumerate(spec.get(direction) or []):
            path = f"spec.{direction}[{i}]"
            try:
                rules.append(_compile_rule(cluster, namespace, _mapping(rule), peers_field, path,
                                           policy.targets, direction == "egress"))
            except PolicyError as exc:
                problems.append(str(exc))  # this rule allows nothing; the others still apply
    return policy, problems


def safe_pod_info(obj: Obj) -> PodInfo | None:
    """``pod_info``, None for a malformed pod too."""
    try:
        return pod_info(obj)
    except Exception:  # noqa: BLE001 - a malformed pod is not a peer (and is not enforced)
        return None


def _dedupe_by_ip(pods: Iterable[PodInfo]) -> list[PodInfo]:
    """One pod per IP: the newest (a stale object may still carry a reused address)."""
    by_ip: dict[str, PodInfo] = {}
    for pod in sorted(pods, key=lambda p: (p.created, p.key)):
        by_ip[pod.ip] = pod
    return sorted(by_ip.values(), key=lambda p: p.key)


def compute(pods: Iterable[Obj], namespaces: Iterable[Obj], policies: Iterable[Obj], node_name: str) -> Model:
    """The whole model from wire objects (see the module doc)."""
    return compute_from(map(safe_pod_info, pods), namespaces, policies, node_name)


def compute_from(pods: Iterable[PodInfo | None], namespaces: Iterable[Obj], policies: Iterable[Obj],
                 node_name: str) -> Model:
    """``compute`` from pods already read with ``safe_pod_info`` (a caller may keep those)."""
    cluster = _Cluster(_dedupe_by_ip(info for info in pods if info is not None),
                       {str(_mapping(ns.get("metadata")).get("name") or ""): namespace_labels(ns)
                        for ns in namespaces})
    model = Model()
    ingress: dict[str, list[str]] = {}
    egress: dict[str, list[str]] = {}
    local = {pod.ip: pod for pod in cluster.pods if pod.node == node_name}
    ordered = sorted(policies, key=lambda o: (str(_mapping(o.get("metadata")).get("namespace")),
                                              str(_mapping(o.get("metadata")).get("name"))))
    for obj in ordered:
        try:
            policy, problems = compile_policy(obj, cluster, node_name)
        except Exception as exc:  # noqa: BLE001 - one malformed object must not stop the others
            policy, problems = None, [f"cannot be enforced: {exc!r}"]
        key = policy.key if policy else "{}/{}".format(_mapping(obj.get("metadata")).get("namespace"),
                                                       _mapping(obj.get("metadata")).get("name"))
        if problems:
            model.errors[key] = problems
        if policy is None or not policy.targets or not (policy.ingress or policy.egress):
            continue
        model.policies[key] = policy
        for pod in policy.targets:
            if policy.ingress:
                ingress.setdefault(pod.ip, []).append(key)
            if policy.egress:
                egress.setdefault(pod.ip, []).append(key)
    model.ingress = {ip: Isolation(local[ip], keys) for ip, keys in sorted(ingress.items())}
    model.egress = {ip: Isolation(local[ip], keys) for ip, keys in sorted(egress.items())}
    return model
