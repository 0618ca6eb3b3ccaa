"""Pure core of the Endpoints controller, and the pod/service helpers the EndpointSlice
controller shares with it (upstream pkg/controller/endpoint and endpointslice's util).

- which pods may be endpoints (``should_pod_be_in_endpoints``), which port a service port
  resolves to on a pod (``find_port``: numbers, or named container ports), the pod address of
  the service's IP family, hostnames for pods of a headless service's subdomain;
- ``desired_endpoints``: the Endpoints object a Service with a selector should have (ready
  addresses, notReadyAddresses, publishNotReadyAddresses, repacked subsets, the
  last-change-trigger-time annotation, truncation to 1000 addresses with the over-capacity
  annotation, the headless label), or None when the current one is already right;
- ``TriggerTimeTracker``: when the pods/service last changed in a way that led to this sync.

No I/O: wire-shaped dicts in, wire-shaped dicts out.
"""

from __future__ import annotations

import ipaddress
import math
from typing import Any

from pybernetes.controllers.podutil import format_time, is_pod_ready, parse_time, pod_condition
from pybernetes.machinery.meta import clone

Obj = dict[str, Any]

MAX_CAPACITY = 1000
TRIGGER_TIME_ANNOTATION = "endpoints.kubernetes.io/last-change-trigger-time"
OVER_CAPACITY_ANNOTATION = "endpoints.kubernetes.io/over-capacity"
TRUNCATED = "truncated"
HEADLESS_LABEL = "service.kubernetes.io/headless"


# -- services and pods -------------------------------------------------------------------------


def service_selector(service: Obj) -> dict[str, str] | None:
    """The service's selector, None when it has none (an empty map is none, as on the wire)."""
    selector = (service.get("spec") or {}).get("selector")
    return dict(selector) if selector else None


def selects(selector: dict[str, str] | None, labels: dict[str, str] | None) -> bool:
    if not selector:
        return False
    labels = labels or {}
    return all(labels.get(k) == v for k, v in selector.items())


def manages_endpoints(service: Obj) -> bool:
    """Services with a selector (and not ExternalName) get endpoints from the controllers."""
    spec = service.get("spec") or {}
    return spec.get("type") != "ExternalName" and service_selector(service) is not None


def is_service_ip_set(service: Obj) -> bool:
    ip = (service.get("spec") or {}).get("clusterIP")
    return bool(ip) and ip != "None"


def service_ip_families(service: Obj) -> list[str]:
    """The address families the service's endpoints carry (legacy fallback: its cluster IP)."""
    spec = service.get("spec") or {}
    families = [f for f in spec.get("ipFamilies") or () if f in ("IPv4", "IPv6")]
    if families:
        return families
    ip = spec.get("clusterIP")
    return ["IPv6" if ip and ip != "None" and ":" in ip else "IPv4"]


def pod_ips(pod: Obj) -> list[str]:
    status = pod.get("status") or {}
    ips = [entry.get("ip") for entry in status.get("podIPs") or () if isinstance(entry, dict) and entry.get("ip")]
    if not ips and status.get("podIP"):
        ips = [status["podIP"]]
    return ips


def is_ipv6(text: str) -> bool:
    try:
        return ipaddress.ip_address(text).version == 6
    except ValueError:
        return ":" in text


def pod_ips_of_family(pod: Obj, family: str) -> list[str]:
    want_v6 = family == "IPv6"
    return [ip for ip in pod_ips(pod) if is_ipv6(ip) == want_v6]


def is_pod_terminal(pod: Obj) -> bool:
    return (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed")


def should_pod_be_in_endpoints(pod: Obj, include_terminating: bool) -> bool:
    """Not terminal, has an IP, and (unless ``include_terminating``) not being deleted."""
    if is_pod_terminal(pod) or not pod_ips(pod):
        return False
    return include_terminating or not (pod.get("metadata") or {}).get("deletionTimestamp")


def should_set_hostname(pod: Obj, service: Obj) -> bool:
    spec = pod.get("spec") or {}
    return (bool(spec.get("hostname")) and spec.get("subdomain") == service["metadata"]["name"]
            and pod["metadata"].get("namespace") == service["metadata"].get("namespace"))


def _is_sidecar(container: Obj) -> bool:
    return container.get("restartPolicy") == "Always"


def find_port(pod: Obj, service_port: Obj) -> int | None:
    """The container port a service port's targetPort names on ``pod`` (a number as is; a
    name looked up among the containers' and sidecars' ports of the same protocol); None when
    the pod has no such named port."""
    target = service_port.get("targetPort")
    if target is None or target == "" or target == 0:
        target = service_port.get("port")
    if isinstance(target, int):
        return target
    if isinstance(target, str) and target.isdigit():
        return int(target)
    protocol = service_port.get("protocol") or "TCP"
    spec = pod.get("spec") or {}
    containers = list(spec.get("containers") or ()) + [c for c in spec.get("initContainers") or ()
                                                         if _is_sidecar(c)]
    for container in containers:
        for port in container.get("ports") or ():
            if port.get("name") == target and (port.get("protocol") or "TCP") == protocol:
                return port.get("containerPort")
    return None


def target_ref(pod: Obj) -> Obj:
    meta = pod["metadata"]
    return {"kind": "Pod", "namespace": meta.get("namespace", ""), "name": meta["name"], "uid": meta.get("uid", "")}


# -- Endpoints subsets ------------------------------------------------------------------------


def _address(service: Obj, pod: Obj) -> Obj | None:
    family = service_ip_families(service)[0]
    ips = pod_ips_of_family(pod, family)
    if not ips:
        return None
    address: Obj = {"ip": ips[0]}
    if should_set_hostname(pod, service):
        address["hostname"] = pod["spec"]["hostname"]
    node = (pod.get("spec") or {}).get("nodeName")
    if node:
        address["nodeName"] = node
    address["targetRef"] = target_ref(pod)
    return address


def _endpoint_port(service_port: Obj, number: int) -> Obj:
    port: Obj = {"port": number, "protocol": service_port.get("protocol") or "TCP"}
    if service_port.get("name"):
        port["name"] = service_port["name"]
    if service_port.get("appProtocol"):
        port["appProtocol"] = service_port["appProtocol"]
    return port


def _port_key(port: Obj) -> tuple[str, int, str, str]:
    return (port.get("name") or "", int(port.get("port") or 0), port.get("protocol") or "TCP",
            port.get("appProtocol") or "")


def _address_key(address: Obj) -> tuple[str, str]:
    return (address.get("ip", ""), (address.get("targetRef") or {}).get("uid", ""))


def build_subsets(service: Obj, pods: list[Obj]) -> list[Obj]:
    """Every (address, port) the selected pods offer, repacked: one subset per group of
    addresses offering the same ports.  Terminating pods only with publishNotReadyAddresses."""
    spec = service.get("spec") or {}
    tolerate_unready = bool(spec.get("publishNotReadyAddresses"))
    headless = spec.get("clusterIP") == "None"
    entries: list[tuple[Obj, Obj | None, bool]] = []  # (address, port, ready)
    for pod in pods:
        if not should_pod_be_in_endpoints(pod, tolerate_unready):
            continue
        address = _address(service, pod)
        if address is None:
            continue
        ready = tolerate_unready or is_pod_ready(pod)
        ports = spec.get("ports") or []
        if not ports:
            if headless:
                entries.append((address, None, ready))
            continue
        for service_port in ports:
            number = find_port(pod, service_port)
            if number is None:
                continue
            entries.append((address, _endpoint_port(service_port, number), ready))
    return repack_subsets(entries)


def repack_subsets(entries: list[tuple[Obj, Obj | None, bool]]) -> list[Obj]:
    """Group (address, port, ready) triples into subsets: addresses offering exactly the same
    ports share one; sorted so that equal inputs give equal outputs."""
    by_port: dict[tuple[Any, ...] | None, dict[tuple[str, str], tuple[Obj, bool]]] = {}
    ports: dict[tuple[Any, ...] | None, Obj | None] = {}
    for address, port, ready in entries:
        pkey = _port_key(port) if port is not None else None
        ports[pkey] = port
        group = by_port.setdefault(pkey, {})
        akey = _address_key(address)
        if akey in group:
            ready = ready or group[akey][1]
        group[akey] = (address, ready)
    by_addresses: dict[tuple[Any, ...], tuple[dict[tuple[str, str], tuple[Obj, bool]], list[Obj]]] = {}
    for pkey, group in by_port.items():
        akey = tuple(sorted((k, r) for k, (_, r) in group.items()))
        slot = by_addresses.setdefault(akey, (group, []))
        if pkey is not None:
            slot[1].append(ports[pkey])  # type: ignore[arg-type]
    subsets: list[Obj] = []
    for group, subset_ports in by_addresses.values():
        ready = [a for k, (a, r) in sorted(group.items()) if r]
        not_ready = [a for k, (a, r) in sorted(group.items()) if not r]
        subset: Obj = {}
        if ready:
            subset["addresses"] = ready
        if not_ready:
            subset["notReadyAddresses"] = not_ready
        if subset_ports:
            subset["ports"] = sorted(subset_ports, key=_port_key)
        subsets.append(subset)
    subsets.sort(key=lambda s: ([_port_key(p) for p in s.get("ports") or ()],
                                [_address_key(a) for a in s.get("addresses") or s.get("notReadyAddresses") or ()]))
    return subsets


def truncate_subsets(subsets: list[Obj]) -> bool:
    """Cut ``subsets`` (in place) to MAX_CAPACITY addresses, as upstream: not-ready addresses
    go first; each subset keeps its proportional share (rounded up).  Whether it cut any."""
    total_ready = sum(len(s.get("addresses") or ()) for s in subsets)
    total_not_ready = sum(len(s.get("notReadyAddresses") or ()) for s in subsets)
    if total_ready + total_not_ready <= MAX_CAPACITY:
        return False
    cut_ready = total_ready > MAX_CAPACITY
    budget, total = (MAX_CAPACITY, total_ready) if cut_ready else (MAX_CAPACITY - total_ready, total_not_ready)
    left = budget
    for subset in subsets:
        field = "addresses" if cut_ready else "notReadyAddresses"
        items = subset.get(field) or []
        share = min(left, math.ceil(len(items) / total * budget)) if total else 0
        subset[field] = items[:share]
        left -= len(subset[field])
        if cut_ready:
            subset["notReadyAddresses"] = []
        for key in ("addresses", "notReadyAddresses"):
            if not subset.get(key):
                subset.pop(key, None)
    subsets[:] = [s for s in subsets if s.get("addresses") or s.get("notReadyAddresses")]
    return True


def _normal_subsets(subsets: list[Obj] | None) -> list[Obj]:
    out = []
    for subset in subsets or ():
        norm = {k: v for k, v in subset.items() if v}
        if "ports" in norm:
            norm["ports"] = [{**p, "protocol": p.get("protocol") or "TCP"} for p in norm["ports"]]
        if norm:
            out.append(norm)
    return out


def desired_endpoints(service: Obj, pods: list[Obj], current: Obj | None, trigger_time: float | None) -> Obj | None:
    """The Endpoints to write for ``service`` (a Service with a selector) given its pods, or
    None when ``current`` already says the same."""
    subsets = build_subsets(service, pods)
    truncated = truncate_subsets(subsets)
    svc_meta = service["metadata"]
    labels = dict(svc_meta.get("labels") or {})
    if is_service_ip_set(service):
        labels.pop(HEADLESS_LABEL, None)
    else:
        labels[HEADLESS_LABEL] = ""
    if current is not None:
        cur_meta = current.get("metadata") or {}
        cur_ann = cur_meta.get("annotations") or {}
        if (_normal_subsets(current.get("subsets")) == _normal_subsets(subsets)
                and (cur_meta.get("labels") or {}) == labels
                and (cur_ann.get(OVER_CAPACITY_ANNOTATION) == TRUNCATED) == truncated):
            return None
        new = clone(current)
    else:
        new = {"apiVersion": "v1", "kind": "Endpoints",
               "metadata": {"name": svc_meta["name"], "namespace": svc_meta.get("namespace")}}
    meta = new["metadata"]
    annotations = dict(meta.get("annotations") or {})
    if trigger_time:
        annotations[TRIGGER_TIME_ANNOTATION] = format_time(trigger_time)
    else:
        annotations.pop(TRIGGER_TIME_ANNOTATION, None)
    if truncated:
        annotations[OVER_CAPACITY_ANNOTATION] = TRUNCATED
    else:
        annotations.pop(OVER_CAPACITY_ANNOTATION, None)
    meta["annotations"] = annotations
    if not annotations:
        meta.pop("annotations")
    meta["labels"] = labels
    new["subsets"] = subsets
    return new


# -- trigger times ----------------------------------------------------------------------------


def pod_trigger_time(pod: Obj) -> float | None:
    cond = pod_condition(pod, "Ready")
    return parse_time(cond.get("lastTransitionTime")) if cond else None


class TriggerTimeTracker:
    """Per service: the pods' Ready-transition times and the service's creation time seen at
    its last sync.  ``compute`` returns the earliest of those that changed since (the moment
    the change this sync publishes happened), the creation time for a service not seen yet,
    or None when nothing changed."""

    def __init__(self) -> None:
        self._states: dict[str, tuple[dict[str, float], float]] = {}

    def compute(self, key: str, service: Obj, pods: list[Obj]) -> float | None:
        known = self._states.get(key)
        last_pods, last_service = known if known is not None else ({}, 0.0)
        earliest: float | None = None
        now_pods: dict[str, float] = {}
        for pod in pods:
            t = pod_trigger_time(pod)
            if t is None:
                continue
            name = pod["metadata"]["name"]
            now_pods[name] = t
            if t > last_pods.get(name, 0.0):
                earliest = t if earliest is None else min(earliest, t)
        service_time = parse_time(service["metadata"].get("creationTimestamp")) or 0.0
        if service_time > last_service:
            earliest = service_time if earliest is None else min(earliest, service_time)
        self._states[key] = (now_pods, service_time)
        if known is None:
            return service_time or earliest
        return earliest

    def delete(self, key: str) -> None:
        self._states.pop(key, None)
