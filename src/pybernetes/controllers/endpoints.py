"""The Endpoints controller (upstream pkg/controller/endpoint): for every Service with a
selector, an Endpoints object of the same name listing the selected pods' addresses.

Keys are Service keys.  Services, pods and Endpoints deletions enqueue them; ``sync`` reads
the caches, asks ``endpoints_core.desired_endpoints`` what the object should be, and creates
or updates it.  Endpoints of a Service that is gone are deleted (at start-up too: leftovers
whose Service no longer exists, unless they hold a leader-election record).  Endpoints of
Services without a selector (and of ExternalName Services) are left to their owners.
"""

from __future__ import annotations

import contextlib
from typing import Any, ClassVar

from pybernetes.client.cache import object_of
from pybernetes.client.errors import ApiError, NotFound
from pybernetes.controllers.base import Controller, Obj, key_of, split_key
from pybernetes.controllers.endpoints_core import (
    TriggerTimeTracker,
    desired_endpoints,
    is_pod_terminal,
    manages_endpoints,
    pod_ips,
    selects,
    service_selector,
)
from pybernetes.controllers.podutil import is_pod_ready

SERVICES = "/v1/services"
PODS = "/v1/pods"
ENDPOINTS = "/v1/endpoints"
LEADER_ANNOTATION = "control-plane.alpha.kubernetes.io/leader"


def pod_endpoint_view(pod: Obj) -> tuple[Any, ...]:
    """What of a pod an Endpoints/EndpointSlice can show: a change here re-syncs its services."""
    spec = pod.get("spec") or {}
    meta = pod.get("metadata") or {}
    ports = [(c.get("name"), tuple((p.get("name"), p.get("containerPort"), p.get("protocol"))
                                   for p in c.get("ports") or ()))
             for c in list(spec.get("containers") or ()) + list(spec.get("initContainers") or ())]
    return (tuple(pod_ips(pod)), is_pod_ready(pod), is_pod_terminal(pod), bool(meta.get("deletionTimestamp")),
            spec.get("nodeName"), spec.get("hostname"), spec.get("subdomain"), tuple(ports),
            meta.get("uid"))


def services_selecting(services: list[Obj], pod: Obj) -> list[str]:
    labels = (pod.get("metadata") or {}).get("labels") or {}
    return [key_of(s) for s in services if selects(service_selector(s), labels)]


class PodsOfServices:
    """Pod handlers shared by the Endpoints and EndpointSlice controllers: a pod change
    enqueues every Service selecting the pod (before and after a label change), and only
    when something an endpoint shows changed.  Needs ``self.services`` and ``self.enqueue``."""

    services: Any
    enqueue: Any

    def _services_for(self, pod: Obj) -> list[str]:
        ns = (pod.get("metadata") or {}).get("namespace") or ""
        return services_selecting(self.services.indexer.by_namespace(ns), pod)

    def _pod_added(self, pod: Obj) -> None:
        for key in self._services_for(pod):
            self.enqueue(key)

    def _pod_updated(self, old: Obj, new: Obj) -> None:
        labels_changed = (old.get("metadata") or {}).get("labels") != (new.get("metadata") or {}).get("labels")
        if not labels_changed and pod_endpoint_view(old) == pod_endpoint_view(new):
            return
        keys = set(self._services_for(new))
        if labels_changed:
            keys.update(self._services_for(old))
        for key in keys:
            self.enqueue(key)

    def _pod_deleted(self, item: Any) -> None:
        self._pod_added(object_of(item))


class EndpointsController(PodsOfServices, Controller):
    name: ClassVar[str] = "endpoints"
    component: ClassVar[str] = "endpoint-controller"

    def setup(self) -> None:
        self.services = self.informer(SERVICES)
        self.pods = self.informer(PODS)
        self.endpoints = self.informer(ENDPOINTS)
        self.services.add_event_handler(self.enqueue, lambda old, new: self.enqueue(new),
                                        lambda obj: self.enqueue(object_of(obj)))
        self.pods.add_event_handler(self._pod_added, self._pod_updated, self._pod_deleted)
        self.endpoints.add_event_handler(None, None, lambda obj: self.enqueue(object_of(obj)))
        self.triggers = TriggerTimeTracker()

    # -- handlers ---------------------------------------------------------------------------

    # -- running ----------------------------------------------------------------------------

    async def run(self, workers: int) -> None:
        await self.wait_for_sync()
        self.enqueue_leftovers()
        await super().run(workers)

    def enqueue_leftovers(self) -> None:
        """Endpoints whose Service is gone (from before a restart) are queued to be deleted."""
        for ep in self.endpoints.indexer.list():
            annotations = (ep.get("metadata") or {}).get("annotations") or {}
            if LEADER_ANNOTATION in annotations:
                continue
            key = key_of(ep)
            if self.services.indexer.get(key) is None:
                self.enqueue(key)

    async def sync(self, key: str) -> None:
        ns, name = split_key(key)
        service = self.services.indexer.get(key)
        if service is None:
            self.triggers.delete(key)
            with contextlib.suppress(NotFound):
                await self.client.delete(ENDPOINTS, name, ns)
            return
        if not manages_endpoints(service):
            return
        selector = service_selector(service)
        pods = [p for p in self.pods.indexer.by_namespace(ns or "")
                if selects(selector, (p.get("metadata") or {}).get("labels"))]
        pods.sort(key=lambda p: p["metadata"]["name"])
        trigger = self.triggers.compute(key, service, pods)
        current = self.endpoints.indexer.get(key)
        new = desired_endpoints(service, pods, current, trigger)
        if new is None:
            return
        try:
            if current is None:
                await self.client.create(ENDPOINTS, new, ns)
            else:
                await self.client.update(ENDPOINTS, new, ns)
        except ApiError as exc:
            if namespace_terminating(exc):
                return
            if exc.code not in (404, 409):
                verb = "create" if current is None else "update"
                self.recorder.event(service, "Warning", "FailedToCreateEndpoint" if current is None
                                    else "FailedToUpdateEndpoint",
                                    f"Failed to {verb} endpoint for service {ns}/{name}: {exc}")
            raise


def namespace_terminating(exc: ApiError) -> bool:
    details = getattr(exc, "details", None) or {}
    causes = details.get("causes") if isinstance(details, dict) else None
    if any(isinstance(c, dict) and c.get("reason") == "NamespaceTerminating" for c in causes or ()):
        return True
    return exc.code == 403 and "being terminated" in str(exc)
