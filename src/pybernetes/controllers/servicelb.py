"""The built-in LoadBalancer controller (k3s's ServiceLB): Services of type LoadBalancer
without a ``spec.loadBalancerClass`` get ``status.loadBalancer.ingress``.

Option ``service_lb_pool`` (controller-manager option; ``""`` or absent = no pool): a
comma-separated list of CIDRs, ``a.b.c.d-a.b.c.e`` ranges and addresses (see
``servicelb_core``).  With a pool every Service holds one address of it (``loadBalancerIP``
honoured when in the pool and free); the allocation is rebuilt from the Services' statuses
before the workers start, so a restart hands out nothing twice; an address is free again once
its Service is deleted or stops being ours; a full pool leaves the Service without ingress and
records a Warning ``AllocationFailed``.  Without a pool the ingress holds the addresses of the
ready, schedulable nodes (only those with a ready endpoint for ``externalTrafficPolicy:
Local``), and of two Services asking for the same port the newer gets none (Warning
``PortConflict``) until the older one goes.

Keys are Service keys.  ``sync`` computes the Service's ingress from the informer caches and
writes it through ``services/status`` (a PUT carrying the cached resourceVersion: a stale
cache is a conflict, retried) only when it differs.  A Service that is no longer of type
LoadBalancer has its ``status.loadBalancer`` cleared; one that got a loadBalancerClass is
cleared only if this controller wrote its ingress.  Events as upstream's service controller
(``EnsuringLoadBalancer``/``EnsuredLoadBalancer``, ``DeletingLoadBalancer``/
``DeletedLoadBalancer``).  Nodes (address, readiness, schedulability, labels) and, for
Services with ``externalTrafficPolicy: Local``, EndpointSlices re-queue the Services concerned.
"""

from __future__ import annotations

import logging
from typing import Any, ClassVar

from pybernetes.client.cache import object_of
from pybernetes.client.errors import NotFound
from pybernetes.controllers.base import Controller, Obj
from pybernetes.controllers.servicelb_core import (
    SERVICE_NAME_LABEL,
    PoolAllocator,
    current_ingress,
    ingress_of,
    is_load_balancer,
    is_ours,
    local_endpoint_nodes,
    node_mode_addresses,
    node_signature,
    parse_pool,
    port_claims,
    port_conflicts,
    service_key,
    service_order,
    service_versions,
)
from pybernetes.machinery.meta import clone

log = logging.getLogger(__name__)

SERVICES = "/v1/services"
NODES = "/v1/nodes"
SLICES = "discovery.k8s.io/v1/endpointslices"
SLICE_INDEX = "servicelb/service"
POOL_OPTION = "service_lb_pool"


def _slice_service_key(slice_: Obj) -> list[str]:
    meta = slice_.get("metadata") or {}
    name = (meta.get("labels") or {}).get(SERVICE_NAME_LABEL)
    return [f"{meta.get('namespace')}/{name}"] if name else []


def _uid(obj: Obj) -> str:
    return str((obj.get("metadata") or {}).get("uid") or "")


class ServiceLBController(Controller):
    name: ClassVar[str] = "service-lb"
    component: ClassVar[str] = "service-lb-controller"

    def setup(self) -> None:
        pool = parse_pool(self.options.get(POOL_OPTION) or "")
        self.allocator: PoolAllocator | None = PoolAllocator(pool) if pool else None
        self.problems: dict[str, str] = {}  # key -> the Warning last recorded (no ingress)
        self.written: dict[str, str] = {}  # key -> uid of a Service whose ingress we set
        self.services = self.informer(SERVICES)
        self.services.add_event_handler(self._service_added, self._service_updated, self._service_deleted)
        if self.allocator is None:
            self.nodes = self.informer(NODES)
            self.nodes.add_event_handler(self._node_changed, self._node_updated, self._node_changed)
            self.slices = self.informer(SLICES, indexers={SLICE_INDEX: _slice_service_key})
            self.slices.add_event_handler(self._slice_changed, self._slice_updated, self._slice_changed)

    # -- handlers ---------------------------------------------------------------------------

    def _ours(self) -> list[Obj]:
        return [s for s in self.services.indexer.list() if is_ours(s)]

    def _enqueue_sharers(self, *services: Obj) -> None:
        """Node mode: Services whose port claims meet those of ``services`` (a conflict may
        have begun or ended), and every Service waiting for something."""
        if self.allocator is not None:
            return
        claims = set().union(*(port_claims(s) for s in services if is_ours(s)))
        if claims:
            for other in self._ours():
                if port_claims(other) & claims:
                    self.enqueue(other)
        for key in list(self.problems):
            self.enqueue(key)

    def _service_added(self, service: Obj) -> None:
        self.enqueue(service)
        if self.services.has_synced():  # the initial list queues every Service anyway
            self._enqueue_sharers(service)

    def _service_updated(self, old: Obj, new: Obj) -> None:
        self.enqueue(new)
        if (is_ours(old), port_claims(old), service_order(old)) != \
                (is_ours(new), port_claims(new), service_order(new)):
            self._enqueue_sharers(old, new)

    def _service_deleted(self, item: Any) -> None:
        service = object_of(item)
        self.enqueue(service)
        self._enqueue_sharers(service)

    def _node_changed(self, item: Any) -> None:
        for service in self._ours():
            self.enqueue(service)

    def _node_updated(self, old: Obj, new: Obj) -> None:
        if node_signature(old) != node_signature(new):
            self._node_changed(new)

    def _slice_changed(self, item: Any) -> None:
        for key in _slice_service_key(object_of(item)):
            service = self.services.indexer.get(key)
            if service is not None and is_ours(service) and \
                    (service.get("spec") or {}).get("externalTrafficPolicy") == "Local":
                self.enqueue(key)

    def _slice_updated(self, old: Obj, new: Obj) -> None:
        if _slice_service_key(old) != _slice_service_key(new) or \
                local_endpoint_nodes([old]) != local_endpoint_nodes([new]):
            self._slice_changed(old)
            self._slice_changed(new)

    # -- running ----------------------------------------------------------------------------

    async def run(self, workers: int) -> None:
        await self.wait_for_sync()
        if self.allocator is not None:
            self.rebuild_allocations(self.services.indexer.list())
        await super().run(workers)

    def rebuild_allocations(self, services: list[Obj]) -> None:
        """Before any sync: every Service of ours keeps the pool address its status shows
        (the older Service wins an address two statuses show)."""
        assert self.allocator is not None
        for service in sorted(services, key=service_order):
            if not is_ours(service):
                continue
            key = service_key(service)
            for item in current_ingress(service):
                if item.get("ip") and self.allocator.occupy(key, item["ip"]):
                    break
        if self.allocator.by_key:
            log.info("service-lb: %d pool addresses held by existing Services", len(self.allocator.by_key))

    # -- sync -------------------------------------------------------------------------------

    async def sync(self, key: str) -> None:
        service = self.services.indexer.get(key)
        if service is None:
            self._release(key)
            self.problems.pop(key, None)
            self.written.pop(key, None)
            return
        if not is_ours(service):
            await self._not_ours(key, service)
            return
        ingress, problem = self._desired(key, service)
        if problem is None:
            self.problems.pop(key, None)
        elif self.problems.get(key) != problem[1]:
            self.problems[key] = problem[1]
            self.recorder.event(service, "Warning", problem[0], problem[1])
        if ingress == current_ingress(service):
            if ingress:
                self.written[key] = _uid(service)
            return
        if ingress:
            self.recorder.event(service, "Normal", "EnsuringLoadBalancer", "Ensuring load balancer")
        written = await self._write(service, {"ingress": ingress} if ingress else {})
        if written is None:
            return
        if ingress:
            self.written[key] = _uid(service)
            self.recorder.event(service, "Normal", "EnsuredLoadBalancer", "Ensured load balancer")
            log.info("service-lb: %s ingress %s", key, ", ".join(i["ip"] for i in ingress))
        else:
            self.written.pop(key, None)

    def _desired(self, key: str, service: Obj) -> tuple[list[Obj], tuple[str, str] | None]:
        """The ingress the Service should have, and the reason and message of a Warning when
        it gets none for a reason of ours."""
        versions = service_versions(service)
        if self.allocator is not None:
            requested = (service.get("spec") or {}).get("loadBalancerIP")
            ip = self.allocator.ensure(key, requested, versions)
            if ip is None:
                return [], ("AllocationFailed", self.allocator.exhausted_message(key, versions))
            return ingress_of([ip]), None
        conflict = port_conflicts(self._ours()).get(key)
        if conflict is not None:
            return [], ("PortConflict", conflict.message())
        slices = self.slices.indexer.by_index(SLICE_INDEX, key)
        return ingress_of(node_mode_addresses(service, self.nodes.indexer.list(), slices)), None

    async def _not_ours(self, key: str, service: Obj) -> None:
        """Not (or no longer) ours: the pool address goes back; the status is cleared when
        the Service is not a load balancer at all, or when it got a class after we served it."""
        self._release(key)
        self.problems.pop(key, None)
        lb_status = (service.get("status") or {}).get("loadBalancer")
        ours_before = self.written.pop(key, None) == _uid(service)
        if not lb_status or (is_load_balancer(service) and not ours_before):
            return
        self.recorder.event(service, "Normal", "DeletingLoadBalancer", "Deleting load balancer")
        if await self._write(service, {}) is not None:
            self.recorder.event(service, "Normal", "DeletedLoadBalancer", "Deleted load balancer")

    def _release(self, key: str) -> None:
        if self.allocator is not None and self.allocator.release(key) is not None:
            for waiting in list(self.problems):  # a full pool has room again
                self.enqueue(waiting)

    async def _write(self, service: Obj, load_balancer: Obj) -> Obj | None:
        """PUT the status with ``load_balancer`` (a Conflict — our cache is stale — raises and
        the sync is retried); None when the Service is gone."""
        body = clone(service)
        status = body.get("status")
        if not isinstance(status, dict):
            status = body["status"] = {}
        status["loadBalancer"] = load_balancer
        try:
            return await self.client.update_status(SERVICES, body)
        except NotFound:
            return None
