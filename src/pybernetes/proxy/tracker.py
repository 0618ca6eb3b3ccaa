"""Change tracking and collision resolution for the service proxy (pure).

``ChangeTracker`` is fed informer events (Services, EndpointSlices) and remembers which Services
changed in a way the proxy cares about (an update that only moves the resourceVersion is no
change).  ``ProxyState`` holds the current ``PortView`` of every service port and settles who owns
each frontend (an address + protocol + port, or a node port + protocol): when several service
ports claim one, the port of the older Service wins (creationTimestamp, then namespace/name,
then port name) and the others lose that frontend only (logged by the caller from
``conflicts``).  ``ProxyState.update`` returns every service port whose programming changes
(the updated one and those that won or lost a frontend because of it), so an incremental sync
touches exactly those.  ``refresh`` joins both: the changed Services since the last call become
the changed service ports.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable

from pybernetes.proxy.model import (
    Obj,
    PortName,
    PortView,
    ServicePort,
    SliceInfo,
    merge_endpoints,
    parse_service,
    parse_slice,
    service_key,
)

Claim = tuple[str, str, int]  # (ip or "nodeport", protocol, port)


class ChangeTracker:
    def __init__(self, node_name: str = "") -> None:
        self.node_name = node_name
        self._services: dict[str, tuple[ServicePort, ...]] = {}
        self._slices: dict[str, dict[str, SliceInfo]] = {}
        self._slice_owner: dict[str, str] = {}  # "namespace/slice" -> service key
        self._dirty: set[str] = set()
        self.problems: dict[str, list[str]] = {}  # service key -> what was skipped in it
        self.service_changes = 0
        self.endpoint_changes = 0

    # -- events ----------------------------------------------------------------------------

    def service_updated(self, obj: Obj) -> bool:
        key = service_key(obj)
        ports, problems = parse_service(obj)
        if problems:
            self.problems[key] = problems
        else:
            self.problems.pop(key, None)
        if self._services.get(key, ()) == ports:
            return False
        if ports:
            self._services[key] = ports
        else:
            del self._services[key]
        self._dirty.add(key)
        self.service_changes += 1
        return True

    def service_deleted(self, obj: Obj) -> bool:
        key = service_key(obj)
        self.problems.pop(key, None)
        if self._services.pop(key, None) is None:
            return False
        self._dirty.add(key)
        self.service_changes += 1
        return True

    def slice_updated(self, obj: Obj) -> bool:
        meta = obj.get("metadata") or {}
        slice_key = f"{meta.get('namespace') or ''}/{meta.get('name') or ''}"
        parsed = parse_slice(obj)
        previous_owner = self._slice_owner.get(slice_key)
        changed = False
        if previous_owner is not None and (parsed is None or parsed[0] != previous_owner):
            changed = self._drop_slice(previous_owner, slice_key)  # relabelled or unusable now
        if parsed is not None:
            owner, name, info = parsed
            slices = self._slices.setdefault(owner, {})
            if slices.get(name) != info:
                slices[name] = info
                self._slice_owner[slice_key] = owner
                self._dirty.add(owner)
                changed = True
        if changed:
            self.endpoint_changes += 1
        return changed

    def slice_deleted(self, obj: Obj) -> bool:
        meta = obj.get("metadata") or {}
        slice_key = f"{meta.get('namespace') or ''}/{meta.get('name') or ''}"
        owner = self._slice_owner.get(slice_key)
        if owner is None or not self._drop_slice(owner, slice_key):
            return False
        self.endpoint_changes += 1
        return True

    def _drop_slice(self, owner: str, slice_key: str) -> bool:
        self._slice_owner.pop(slice_key, None)
        slices = self._slices.get(owner) or {}
        if slices.pop(slice_key.split("/", 1)[1], None) is None:
            return False
        if not slices:
            self._slices.pop(owner, None)
        self._dirty.add(owner)
        return True

    def mark_all(self) -> None:
        """Every Service counts as changed (the node name changed, say)."""
        self._dirty.update(self._services)

    # -- reads -------------------------------------------------------------------------------

    def pending(self) -> int:
        return len(self._dirty)

    def pop_dirty(self) -> set[str]:
        dirty, self._dirty = self._dirty, set()
        return dirty

    def views(self, key: str) -> dict[PortName, PortView]:
        """The current view of every port of the Service ``key`` (empty when it is gone)."""
        slices = self._slices.get(key) or {}
        return {port.name: PortView(port, merge_endpoints(slices, port.name.port, port.name.protocol,
                                                          self.node_name))
                for port in self._services.get(key, ())}

    def service_keys(self) -> list[str]:
        return list(self._services)


def _claims(service: ServicePort) -> list[Claim]:
    protocol, port = service.protocol, service.port
    out: list[Claim] = [(service.cluster_ip, protocol, port)]
    out.extend((ip, protocol, port) for ip in service.external_ips + service.lb_ips)
    if service.node_port:
        out.append(("nodeport", protocol, service.node_port))
    return out


def _rank(service: ServicePort) -> tuple[str, str, str, str]:
    return (service.created or "~", service.name.namespace, service.name.service, service.name.port)


class ProxyState:
    """Every service port's view, with frontend ownership settled (see the module doc)."""

    def __init__(self) -> None:
        self.ports: dict[PortName, PortView] = {}
        self._claims: dict[Claim, dict[PortName, tuple[str, str, str, str]]] = {}
        self._services: dict[str, set[PortName]] = {}

    def __len__(self) -> int:
        return len(self.ports)

    def names_of(self, key: str) -> set[PortName]:
        return set(self._services.get(key, ()))

    def _winner(self, claim: Claim) -> PortName | None:
        claimants = self._claims.get(claim)
        if not claimants:
            return None
        return min(claimants, key=lambda name: (claimants[name], name))

    def update(self, name: PortName, view: PortView | None) -> set[PortName]:
        """Set (or with None remove) one port's view; the ports whose programming changes."""
        old = self.ports.get(name)
        if old == view:
            return set()
        touched = set(_claims(old.service)) if old is not None else set()
        if view is not None:
            touched.update(_claims(view.service))
        before = {claim: self._winner(claim) for claim in touched}
        if old is not None:
            for claim in _claims(old.service):
                claimants = self._claims.get(claim)
                if claimants is not None:
                    claimants.pop(name, None)
                    if not claimants:
                        del self._claims[claim]
            del self.ports[name]
            names = self._services.get(name.service_key)
            if names is not None:
                names.discard(name)
                if not names:
                    del self._services[name.service_key]
        if view is not None:
            rank = _rank(view.service)
            for claim in _claims(view.service):
                self._claims.setdefault(claim, {})[name] = rank
            self.ports[name] = view
            self._services.setdefault(name.service_key, set()).add(name)
        affected = {name}
        for claim in touched:
            after = self._winner(claim)
            if after != before[claim]:
                affected.update(n for n in (before[claim], after) if n is not None)
        return affected

    def owns(self, name: PortName, claim: Claim) -> bool:
        return self._winner(claim) == name

    def effective(self, name: PortName) -> PortView:
        """The port's view without the frontends another Service owns."""
        view = self.ports[name]
        service = view.service
        if all(self._winner(claim) == name for claim in _claims(service)):
            return view
        protocol, port = service.protocol, service.port
        return dataclasses.replace(view, service=dataclasses.replace(
            service,
            cluster_ip=service.cluster_ip if self.owns(name, (service.cluster_ip, protocol, port)) else "",
            external_ips=tuple(ip for ip in service.external_ips if self.owns(name, (ip, protocol, port))),
            lb_ips=tuple(ip for ip in service.lb_ips if self.owns(name, (ip, protocol, port))),
            node_port=service.node_port if self.owns(name, ("nodeport", protocol, service.node_port)) else 0))

    def conflicts(self, names: Iterable[PortName] | None = None) -> list[tuple[Claim, PortName, list[PortName]]]:
        """(frontend, winner, losers) of every contested frontend (of ``names`` only if given)."""
        wanted = set(names) if names is not None else None
        out = []
        for claim, claimants in self._claims.items():
            if len(claimants) < 2:
                continue
            if wanted is not None and not wanted.intersection(claimants):
                continue
            winner = self._winner(claim)
            assert winner is not None
            out.append((claim, winner, sorted(n for n in claimants if n != winner)))
        return out


def refresh(tracker: ChangeTracker, state: ProxyState, keys: Iterable[str] | None = None,
            before: dict[PortName, PortView | None] | None = None) -> set[PortName]:
    """Bring ``state`` up to date with the Services ``tracker`` saw change (or ``keys``); the
    service ports whose programming changed.  ``before``, if given, gets the view every UDP
    port had before its first change since it was last emptied (None: it had none), for the
    conntrack cleanup (conntrack.py)."""
    changed: set[PortName] = set()
    for key in tracker.pop_dirty() if keys is None else keys:
        views = tracker.views(key)
        for name in state.names_of(key) - set(views):
            if before is not None and name.protocol == "udp":
                before.setdefault(name, state.ports.get(name))
            changed |= state.update(name, None)
        for name, view in views.items():
            if before is not None and name.protocol == "udp" and state.ports.get(name) != view:
                before.setdefault(name, state.ports.get(name))
            changed |= state.update(name, view)
    return changed
