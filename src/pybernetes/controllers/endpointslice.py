"""The EndpointSlice controller (upstream pkg/controller/endpointslice): for every Service
with a selector, EndpointSlices (discovery.k8s.io/v1) listing the selected pods, at most
``max_endpoints_per_slice`` (option, default 100) endpoints each.

Keys are Service keys.  ``sync`` reads the Service, its pods, the nodes (zones) and the
slices labelled ``kubernetes.io/service-name=<svc>`` and managed by this controller, lets
``endpointslice_core.reconcile`` plan the writes, and performs them.

As upstream, a ``SliceTracker`` remembers the generation of every slice this controller
wrote (and the ones it deleted): while the informer cache still shows older slices, the sync
fails and is retried instead of acting on stale data (which would duplicate slices), and the
informer events of its own writes do not re-queue the Service.  When a Service is gone its
slices are deleted (upstream leaves that to the garbage collector through their owner
reference; doing it here too keeps the cluster tidy without one).
"""

from __future__ import annotations

import contextlib
from typing import Any, ClassVar

from pybernetes.client.cache import object_of
from pybernetes.client.errors import ApiError, NotFound
from pybernetes.controllers.base import Controller, Obj, RetryLater, split_key
from pybernetes.controllers.endpoints import PodsOfServices, namespace_terminating
from pybernetes.controllers.endpoints_core import (
    TriggerTimeTracker,
    manages_endpoints,
    selects,
    service_selector,
)
from pybernetes.controllers.endpointslice_core import (
    CONTROLLER_NAME,
    MANAGED_BY_LABEL,
    MAX_ENDPOINTS_PER_SLICE,
    SERVICE_NAME_LABEL,
    reconcile,
)

SERVICES = "/v1/services"
PODS = "/v1/pods"
NODES = "/v1/nodes"
SLICES = "discovery.k8s.io/v1/endpointslices"
SLICE_INDEX = "endpointslice/service"
DELETION_EXPECTED = -1


class StaleCache(RetryLater):
    """The informer cache does not show this controller's latest writes yet (retried)."""


def _service_key_of_slice(slice_: Obj) -> list[str]:
    meta = slice_.get("metadata") or {}
    labels = meta.get("labels") or {}
    if labels.get(MANAGED_BY_LABEL) != CONTROLLER_NAME or not labels.get(SERVICE_NAME_LABEL):
        return []
    return [f"{meta.get('namespace')}/{labels[SERVICE_NAME_LABEL]}"]


class SliceTracker:
    """Generations of the slices this controller wrote, per service (upstream's
    EndpointSliceTracker)."""

    def __init__(self) -> None:
        self._by_service: dict[str, dict[str, int]] = {}

    def wrote(self, service_key: str, slice_: Obj) -> None:
        meta = slice_["metadata"]
        self._by_service.setdefault(service_key, {})[meta["uid"]] = int(meta.get("generation") or 0)

    def expect_deletion(self, service_key: str, slice_: Obj) -> None:
        self._by_service.setdefault(service_key, {})[slice_["metadata"]["uid"]] = DELETION_EXPECTED

    def has(self, service_key: str, slice_: Obj) -> bool:
        return slice_["metadata"].get("uid") in self._by_service.get(service_key, {})

    def should_sync(self, service_key: str, slice_: Obj) -> bool:
        """An informer event about a slice: worth a sync unless it is our own write."""
        known = self._by_service.get(service_key, {}).get(slice_["metadata"].get("uid"))
        return known is None or int(slice_["metadata"].get("generation") or 0) > known

    def handle_deletion(self, service_key: str, slice_: Obj) -> bool:
        """A slice vanished: True when this controller deleted it."""
        gens = self._by_service.get(service_key, {})
        known = gens.pop(slice_["metadata"].get("uid"), None)
        return known == DELETION_EXPECTED

    def stale(self, service_key: str, slices: list[Obj]) -> bool:
        gens = self._by_service.get(service_key)
        if not gens:
            return False
        seen: set[str] = set()
        for slice_ in slices:
            uid = slice_["metadata"].get("uid")
            seen.add(uid)
            known = gens.get(uid)
            if known is not None and (known == DELETION_EXPECTED or known > int(slice_["metadata"].get("generation") or 0)):
                return True
        return any(gen != DELETION_EXPECTED and uid not in seen for uid, gen in gens.items())

    def delete_service(self, service_key: str) -> None:
        self._by_service.pop(service_key, None)


class EndpointSliceController(PodsOfServices, Controller):
    name: ClassVar[str] = "endpointslice"
    component: ClassVar[str] = "endpointslice-controller"

    def setup(self) -> None:
        self.max_per_slice = int(self.options.get("max_endpoints_per_slice", MAX_ENDPOINTS_PER_SLICE))
        self.services = self.informer(SERVICES)
        self.pods = self.informer(PODS)
        self.nodes = self.informer(NODES)
        self.slices = self.informer(SLICES, indexers={SLICE_INDEX: _service_key_of_slice})
        self.services.add_event_handler(self.enqueue, lambda old, new: self.enqueue(new),
                                        lambda obj: self.enqueue(object_of(obj)))
        self.pods.add_event_handler(self._pod_added, self._pod_updated, self._pod_deleted)
        self.slices.add_event_handler(self._slice_added, self._slice_updated, self._slice_deleted)
        self.tracker = SliceTracker()
        self.triggers = TriggerTimeTracker()

    # -- handlers ---------------------------------------------------------------------------

    def _slice_added(self, slice_: Obj) -> None:
        for key in _service_key_of_slice(slice_):
            if self.tracker.should_sync(key, slice_):
                self.enqueue(key)

    def _slice_updated(self, old: Obj, new: Obj) -> None:
        old_keys, new_keys = _service_key_of_slice(old), _service_key_of_slice(new)
        if old_keys != new_keys:
            for key in old_keys + new_keys:
                self.enqueue(key)
            return
        self._slice_added(new)

    def _slice_deleted(self, item: Any) -> None:
        slice_ = object_of(item)
        for key in _service_key_of_slice(slice_):
            if not self.tracker.handle_deletion(key, slice_):
                self.enqueue(key)

    # -- sync -------------------------------------------------------------------------------

    async def sync(self, key: str) -> None:
        ns, name = split_key(key)
        service = self.services.indexer.get(key)
        slices = [s for s in self.slices.indexer.by_index(SLICE_INDEX, key)
                  if not (s.get("metadata") or {}).get("deletionTimestamp")]
        if service is None or not manages_endpoints(service):
            if service is None:
                self.triggers.delete(key)
                for slice_ in slices:
                    with contextlib.suppress(NotFound):
                        await self.client.delete(SLICES, slice_["metadata"]["name"], ns)
                self.tracker.delete_service(key)
            return
        if self.tracker.stale(key, slices):
            raise StaleCache(f"EndpointSlice informer cache is out of date for service {key}")
        selector = service_selector(service)
        pods = sorted((p for p in self.pods.indexer.by_namespace(ns or "")
                       if selects(selector, (p.get("metadata") or {}).get("labels"))),
                      key=lambda p: p["metadata"]["name"])
        trigger = self.triggers.compute(key, service, pods)
        nodes = {n["metadata"]["name"]: n for n in self.nodes.indexer.list()}
        plan = reconcile(service, pods, slices, nodes, self.max_per_slice, trigger)
        try:
            await self._apply(key, service, plan)
        except ApiError as exc:
            if namespace_terminating(exc):
                return
            if exc.code not in (404, 409):
                self.recorder.event(service, "Warning", "FailedToUpdateEndpointSlices",
                                    f"Error updating Endpoint Slices for Service {key}: {exc}")
            raise
        if plan.errors:
            raise RuntimeError("; ".join(plan.errors))

    async def _apply(self, key: str, service: Obj, plan: Any) -> None:
        ns = service["metadata"].get("namespace")
        if not (service.get("metadata") or {}).get("deletionTimestamp"):
            for slice_ in plan.create:
                created = await self.client.create(SLICES, slice_, ns)
                self.tracker.wrote(key, created)
        for slice_ in plan.update:
            updated = await self.client.update(SLICES, slice_, ns)
            self.tracker.wrote(key, updated)
        for slice_ in plan.delete:
            try:
                await self.client.delete(SLICES, slice_["metadata"]["name"], ns)
            except NotFound:
                pass
            else:
                self.tracker.expect_deletion(key, slice_)
