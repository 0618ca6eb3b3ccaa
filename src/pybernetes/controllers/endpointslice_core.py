"""Pure core of the EndpointSlice controller: upstream's reconciler
(staging k8s.io/endpointslice/reconciler.go), without I/O.

``reconcile(service, pods, existing, nodes, max_per_slice, trigger_time)`` returns a ``Plan``
(slices to create, update and delete) that brings the Service's EndpointSlices in line:

- one group of slices per address type the Service carries (its ipFamilies); slices of other
  types, or not owned by this Service, are deleted;
- within an address type, one group per distinct set of ports (pods resolving named ports
  differently land in different slices);
- existing slices are changed minimally: endpoints no longer wanted are removed, changed ones
  rewritten in place; new endpoints first fill slices already being updated (fullest first),
  then an unchanged slice they fit in entirely, then new slices of at most ``max_per_slice``;
- a slice left empty is deleted; creates are turned into updates of slices that would be
  deleted; a Service with no endpoints keeps one empty placeholder slice per address type;
- endpoints carry conditions ready/serving/terminating (terminating pods stay as serving or
  not), nodeName, zone (the node's topology.kubernetes.io/zone), hostname, targetRef.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pybernetes.controllers.endpoints_core import (
    HEADLESS_LABEL,
    TRIGGER_TIME_ANNOTATION,
    find_port,
    is_service_ip_set,
    pod_ips_of_family,
    service_ip_families,
    should_pod_be_in_endpoints,
    should_set_hostname,
    target_ref,
)
from pybernetes.controllers.podutil import format_time, is_pod_ready
from pybernetes.machinery.meta import clone

Obj = dict[str, Any]

MAX_ENDPOINTS_PER_SLICE = 100
SERVICE_NAME_LABEL = "kubernetes.io/service-name"
MANAGED_BY_LABEL = "endpointslice.kubernetes.io/managed-by"
CONTROLLER_NAME = "endpointslice-controller.k8s.io"
ZONE_LABEL = "topology.kubernetes.io/zone"
RESERVED_LABELS = (SERVICE_NAME_LABEL, MANAGED_BY_LABEL, HEADLESS_LABEL)

PortsKey = tuple[tuple[str, int, str, str], ...]
EndpointKey = tuple[Any, ...]


@dataclass
class Plan:
    create: list[Obj] = field(default_factory=list)
    update: list[Obj] = field(default_factory=list)
    delete: list[Obj] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not (self.create or self.update or self.delete)


# -- keys -------------------------------------------------------------------------------------


def ports_key(ports: list[Obj] | None) -> PortsKey:
    return tuple(sorted((p.get("name") or "", int(p.get("port") or 0), p.get("protocol") or "TCP",
                         p.get("appProtocol") or "") for p in ports or ()))


def endpoint_key(endpoint: Obj) -> EndpointKey:
    """An endpoint's identity (upstream's endpoint hash): addresses, hostname, target."""
    ref = endpoint.get("targetRef") or {}
    return (tuple(sorted(endpoint.get("addresses") or ())), endpoint.get("hostname") or "",
            ref.get("namespace") or "", ref.get("name") or "")


def owned_by(slice_: Obj, service: Obj) -> bool:
    uid = service["metadata"].get("uid")
    return any(ref.get("uid") == uid for ref in (slice_.get("metadata") or {}).get("ownerReferences") or ())


# -- desired state ----------------------------------------------------------------------------


def endpoint_ports(service: Obj, pod: Obj) -> list[Obj]:
    out = []
    for service_port in (service.get("spec") or {}).get("ports") or ():
        number = find_port(pod, service_port)
        if number is None:
            continue
        port: Obj = {"name": service_port.get("name") or "", "port": number,
                     "protocol": service_port.get("protocol") or "TCP"}
        if service_port.get("appProtocol"):
            port["appProtocol"] = service_port["appProtocol"]
        out.append(port)
    return out


def pod_to_endpoint(pod: Obj, node: Obj | None, service: Obj, address_type: str) -> Obj:
    serving = is_pod_ready(pod)
    terminating = bool(pod["metadata"].get("deletionTimestamp"))
    ready = bool((service.get("spec") or {}).get("publishNotReadyAddresses")) or (serving and not terminating)
    endpoint: Obj = {"addresses": pod_ips_of_family(pod, address_type),
                     "conditions": {"ready": ready, "serving": serving, "terminating": terminating}}
    if should_set_hostname(pod, service):
        endpoint["hostname"] = pod["spec"]["hostname"]
    endpoint["targetRef"] = target_ref(pod)
    node_name = (pod.get("spec") or {}).get("nodeName")
    if node_name:
        endpoint["nodeName"] = node_name
    zone = ((node or {}).get("metadata") or {}).get("labels", {}).get(ZONE_LABEL) if node else None
    if zone:
        endpoint["zone"] = zone
    return endpoint


def slice_labels(slice_: Obj | None, service: Obj) -> tuple[dict[str, str], bool]:
    """The labels a slice of ``service`` should have, and whether its own differ."""
    current = dict(((slice_ or {}).get("metadata") or {}).get("labels") or {})
    labels = {k: v for k, v in (service["metadata"].get("labels") or {}).items() if k not in RESERVED_LABELS}
    if not is_service_ip_set(service):
        labels[HEADLESS_LABEL] = ""
    labels[SERVICE_NAME_LABEL] = service["metadata"]["name"]
    labels[MANAGED_BY_LABEL] = CONTROLLER_NAME
    return labels, labels != current


def new_slice(service: Obj, ports: list[Obj], address_type: str) -> Obj:
    meta = service["metadata"]
    name = meta["name"]
    owner = {"apiVersion": "v1", "kind": "Service", "name": name, "uid": meta.get("uid", ""),
             "controller": True, "blockOwnerDeletion": True}
    labels, _ = slice_labels(None, service)
    return {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
            "metadata": {"generateName": f"{name}-", "namespace": meta.get("namespace"),
                         "labels": labels, "ownerReferences": [owner]},
            "addressType": address_type, "ports": clone(ports), "endpoints": []}


# -- reconcile --------------------------------------------------------------------------------


def reconcile(service: Obj, pods: list[Obj], existing: list[Obj], nodes: dict[str, Obj],
              max_per_slice: int = MAX_ENDPOINTS_PER_SLICE, trigger_time: float | None = None) -> Plan:
    plan = Plan()
    families = service_ip_families(service)
    by_type: dict[str, list[Obj]] = {f: [] for f in families}
    for slice_ in existing:
        if slice_.get("addressType") in by_type:
            by_type[slice_["addressType"]].append(slice_)
        else:
            plan.delete.append(slice_)
    for address_type in families:
        _reconcile_address_type(plan, service, pods, by_type[address_type], nodes, max_per_slice,
                                address_type)
    for slice_ in plan.create + plan.update:
        annotations = slice_["metadata"].setdefault("annotations", {})
        if trigger_time:
            annotations[TRIGGER_TIME_ANNOTATION] = format_time(trigger_time)
        else:
            annotations.pop(TRIGGER_TIME_ANNOTATION, None)
            if not annotations:
                del slice_["metadata"]["annotations"]
    return plan


def _reconcile_address_type(plan: Plan, service: Obj, pods: list[Obj], existing: list[Obj],
                            nodes: dict[str, Obj], max_per_slice: int, address_type: str) -> None:
    to_delete: list[Obj] = []
    existing_by_ports: dict[PortsKey, list[Obj]] = {}
    for slice_ in existing:
        if owned_by(slice_, service):
            existing_by_ports.setdefault(ports_key(slice_.get("ports")), []).append(slice_)
        else:
            to_delete.append(slice_)

    publish_not_ready = bool((service.get("spec") or {}).get("publishNotReadyAddresses"))
    desired_by_ports: dict[PortsKey, dict[EndpointKey, Obj]] = {}
    ports_by_key: dict[PortsKey, list[Obj]] = {}
    for pod in pods:
        if not should_pod_be_in_endpoints(pod, True):
            continue
        ports = endpoint_ports(service, pod)
        pkey = ports_key(ports)
        desired = desired_by_ports.setdefault(pkey, {})
        ports_by_key.setdefault(pkey, ports)
        node_name = (pod.get("spec") or {}).get("nodeName") or ""
        node = nodes.get(node_name)
        if node is None and not publish_not_ready:
            plan.errors.append(f"skipping Pod {pod['metadata']['name']} for Service "
                               f"{service['metadata'].get('namespace')}/{service['metadata']['name']}: "
                               f"node {node_name!r} not found")
            continue
        endpoint = pod_to_endpoint(pod, node, service, address_type)
        if endpoint["addresses"]:
            desired[endpoint_key(endpoint)] = endpoint

    to_create: list[Obj] = []
    to_update: list[Obj] = []
    for pkey, desired in desired_by_ports.items():
        created, updated, deleted = _reconcile_ports(service, existing_by_ports.get(pkey, []), desired,
                                                     ports_by_key[pkey], address_type, max_per_slice)
        to_create += created
        to_update += updated
        to_delete += deleted
    for pkey, slices in existing_by_ports.items():
        if pkey not in desired_by_ports:
            to_delete += slices

    if len(existing) == len(to_delete) and not to_create:
        placeholder = new_slice(service, [], address_type)
        if len(to_delete) == 1 and _is_placeholder_of(to_delete[0], service, address_type):
            to_delete = []
        else:
            to_create.append(placeholder)

    # Rather than create one slice and delete another, update the one to delete.
    kept: list[Obj] = []
    for slice_ in to_delete:
        if to_create and slice_.get("addressType") == address_type and owned_by(slice_, service):
            replacement = to_create.pop()
            meta = replacement["metadata"]
            meta.pop("generateName", None)
            meta["name"] = slice_["metadata"]["name"]
            meta["resourceVersion"] = slice_["metadata"].get("resourceVersion")
            to_update.append(replacement)
        else:
            kept.append(slice_)
    plan.create += to_create
    plan.update += to_update
    plan.delete += kept


def _is_placeholder_of(slice_: Obj, service: Obj, address_type: str) -> bool:
    return (not slice_.get("ports") and not slice_.get("endpoints") and slice_.get("addressType") == address_type
            and owned_by(slice_, service) and not slice_labels(slice_, service)[1])


def _reconcile_ports(service: Obj, existing: list[Obj], desired: dict[EndpointKey, Obj], ports: list[Obj],
                     address_type: str, max_per_slice: int) -> tuple[list[Obj], list[Obj], list[Obj]]:
    """One port group: (slices to create, to update, to delete).  ``desired`` is consumed."""
    by_name: dict[str, Obj] = {}
    unchanged: list[str] = []
    to_update: list[str] = []
    to_delete: list[str] = []
    for slice_ in existing:
        name = slice_["metadata"]["name"]
        by_name[name] = slice_
        kept: list[Obj] = []
        changed = False
        for endpoint in slice_.get("endpoints") or ():
            want = desired.pop(endpoint_key(endpoint), None)
            if want is not None:
                kept.append(want)
                changed = changed or want != endpoint
        labels, labels_changed = slice_labels(slice_, service)
        if changed or len(kept) != len(slice_.get("endpoints") or ()):
            if not kept:
                to_delete.append(name)
                continue
            copy = clone(slice_)
            copy["endpoints"] = kept
            copy["metadata"]["labels"] = labels
            by_name[name] = copy
            to_update.append(name)
        elif labels_changed:
            copy = clone(slice_)
            copy["metadata"]["labels"] = labels
            by_name[name] = copy
            to_update.append(name)
        else:
            unchanged.append(name)

    remaining = list(desired.values())
    # Fill the slices being written anyway, fullest first.
    if remaining and to_update:
        for name in sorted(to_update, key=lambda n: -len(by_name[n]["endpoints"])):
            target = by_name[name]
            room = max_per_slice - len(target["endpoints"])
            if room > 0:
                target["endpoints"].extend(remaining[:room])
                remaining = remaining[room:]

    to_create: list[Obj] = []
    while remaining:
        target = None
        if len(remaining) < max_per_slice and unchanged:
            target = _slice_to_fill([by_name[n] for n in unchanged], len(remaining), max_per_slice)
        if target is None:
            target = new_slice(service, ports, address_type)
        else:
            target = clone(target)
            by_name[target["metadata"]["name"]] = target
        endpoints = target.setdefault("endpoints", [])
        room = max_per_slice - len(endpoints)
        endpoints.extend(remaining[:room])
        remaining = remaining[room:]
        name = target["metadata"].get("name")
        if name:
            to_update.append(name)
            unchanged.remove(name)
        else:
            to_create.append(target)
    return to_create, [by_name[n] for n in to_update], [by_name[n] for n in to_delete]


def _slice_to_fill(slices: list[Obj], count: int, max_per_slice: int) -> Obj | None:
    """The slice that ends up closest to full with ``count`` more endpoints (None: none fits)."""
    best, best_gap = None, max_per_slice
    for slice_ in slices:
        gap = max_per_slice - (count + len(slice_.get("endpoints") or ()))
        if 0 <= gap < best_gap:
            best, best_gap = slice_, gap
            if gap == 0:
                break
    return best
