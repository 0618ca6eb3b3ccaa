"""The namespace controller: empties a namespace being deleted, then lets it go, as upstream's
pkg/controller/namespace (v1.32).

Owns the I/O of namespace deletion (the decisions are in ``namespace_deletion``): for a
namespace with a deletionTimestamp it makes sure the phase is Terminating, deletes every
namespaced resource in it that discovery lists as deletable (built-in and custom: a
deletecollection where supported, else list and delete each, Background propagation),
lists what remains, records why in the namespace's deletion conditions, and requeues
(half the estimate + 1 s: pods terminating gracefully, content held by finalizers) until
nothing is left; then it removes the ``kubernetes`` finalizer with PUT
namespaces/<name>/finalize, and the API server removes the namespace (unless other
finalizers remain).

Options: ``namespace_deletion_grace_period`` (seconds to wait after a namespace event
before acting, upstream's 5 s: admission and discovery caches catch up) and
``namespace_finalizer_estimate`` (seconds assumed for content held by finalizers, 15).
"""

from __future__ import annotations

import logging
from typing import Any

from pybernetes.client.discovery import ApiResource
from pybernetes.client.errors import ApiError, Conflict, NotFound
from pybernetes.controllers import namespace_deletion as nd
from pybernetes.controllers.base import Controller, Obj
from pybernetes.controllers.garbagecollector import fetch_preferred_resources
from pybernetes.controllers.gc_graph import supports
from pybernetes.controllers.podutil import parse_time

log = logging.getLogger(__name__)

NAMESPACES = "/v1/namespaces"
RESYNC_PERIOD = 300.0  # upstream's namespace resync: 5 minutes
FINALIZE_ATTEMPTS = 5


class NamespaceController(Controller):
    name = "namespace"
    component = "namespace-controller"
    default_workers = 10  # upstream's --concurrent-namespace-syncs

    def setup(self) -> None:
        self.grace_period = float(self.options.get("namespace_deletion_grace_period", 5.0))
        self.finalizer_estimate = int(self.options.get("namespace_finalizer_estimate",
                                                       nd.FINALIZER_ESTIMATE_SECONDS))
        self.namespaces = self.informer(NAMESPACES)
        self.namespaces.add_event_handler(self._on_namespace, lambda old, new: self._on_namespace(new),
                                          resync_period=RESYNC_PERIOD)

    def _on_namespace(self, ns: Obj) -> None:
        if (ns.get("metadata") or {}).get("deletionTimestamp"):
            self.enqueue_after(ns, self.grace_period)

    # -- sync --------------------------------------------------------------------------------

    async def sync(self, key: str) -> None:
        try:
            namespace = await self.client.get(NAMESPACES, key)  # live: the cache may lag
        except NotFound:
            return
        if not (namespace.get("metadata") or {}).get("deletionTimestamp"):
            return
        namespace = await self._mark_terminating(namespace)
        if namespace is None or nd.finalized(namespace):
            return
        estimate = await self._delete_all_content(namespace)
        if estimate > 0:
            delay = nd.requeue_delay(estimate)
            log.info("namespace %s: content remaining, checking again in %.1fs", key, delay)
            self.queue.add_after(key, delay)
            return
        await self._finalize(namespace)

    async def _mark_terminating(self, namespace: Obj) -> Obj | None:
        if (namespace.get("status") or {}).get("phase") == "Terminating":
            return namespace
        updated = dict(namespace)
        updated["status"] = {**(namespace.get("status") or {}), "phase": "Terminating"}
        try:
            return await self.client.update_status(NAMESPACES, updated)
        except NotFound:
            return None

    async def _finalize(self, namespace: Obj) -> None:
        name = namespace["metadata"]["name"]
        for _ in range(FINALIZE_ATTEMPTS):
            try:
                await self.client.update(NAMESPACES, nd.without_kubernetes_finalizer(namespace),
                                         subresource="finalize")
                log.info("namespace %s: content removed, finalized", name)
                return
            except NotFound:
                return
            except Conflict:
                try:
                    namespace = await self.client.get(NAMESPACES, name)
                except NotFound:
                    return
                if nd.finalized(namespace):
                    return
        raise Conflict(409, "Conflict", f"finalizing namespace {name}: too many conflicts")

    # -- content -----------------------------------------------------------------------------

    async def _delete_all_content(self, namespace: Obj) -> float:
        """Delete what is in the namespace; the seconds to wait for what remains.  Raises when
        something could not be deleted (after recording it in the conditions)."""
        name = namespace["metadata"]["name"]
        failures: list[Obj] = []
        errors: list[str] = []
        try:
            resources = [r for r in await fetch_preferred_resources(self.client)
                         if r.namespaced and supports(r, "delete")]
        except ApiError as exc:
            resources = []
            errors.append(f"discovery: {exc}")
            failures.append(nd.discovery_failure(str(exc)))
        deleted_at = parse_time(namespace["metadata"]["deletionTimestamp"])
        totals = nd.ContentTotals()
        estimate = 0.0
        content_errors: list[str] = []
        for res in resources:
            try:
                gvr_estimate = await self._delete_resource_content(res, name, deleted_at, totals)
            except ApiError as exc:
                content_errors.append(f"{res.resource}.{res.group}: {exc.message}")
                continue
            estimate = max(estimate, gvr_estimate)
        if content_errors:
            failures.append(nd.content_failure(content_errors))
            errors.extend(content_errors)
        failures.extend(nd.remaining_conditions(totals))
        await self._update_conditions(namespace, failures)
        if errors:
            raise RuntimeError(f"namespace {name}: {'; '.join(errors)}")
        return estimate

    async def _delete_resource_content(self, res: ApiResource, namespace: str, deleted_at: float | None,
                                       totals: nd.ContentTotals) -> float:
        estimate = 0
        if res.group == "" and res.resource == "pods":
            pods = (await self.client.list_all(res, namespace))["items"]
            estimate = nd.estimate_pods(pods, deleted_at, self.clock.now())
        collection_deleted = False
        if supports(res, "deletecollection"):
            try:
                await self.client.delete_collection(res, namespace, propagation_policy="Background")
                collection_deleted = True
            except ApiError as exc:
                if exc.code not in (404, 405):
                    raise
        if not supports(res, "list"):
            return estimate
        if not collection_deleted:
            for item in (await self.client.list_all(res, namespace))["items"]:
                try:
                    await self.client.delete(res, item["metadata"]["name"], namespace,
                                             propagation_policy="Background")
                except NotFound:
                    pass
        remaining = (await self.client.list_all(res, namespace))["items"]
        if not remaining:
            return estimate
        totals.add(res.group, res.resource, remaining)
        if estimate:
            return estimate
        if nd.finalizer_counts(remaining):
            return self.finalizer_estimate
        raise ApiError(500, "InternalError",
                       f"unexpected items still remain in namespace: {namespace} for gvr: {res.gvr}")

    async def _update_conditions(self, namespace: Obj, failures: list[Obj]) -> None:
        status = namespace.get("status") or {}
        conditions, changed = nd.update_conditions(status.get("conditions"), failures, self.clock.now())
        if not changed:
            return
        updated: dict[str, Any] = dict(namespace)
        updated["status"] = {**status, "conditions": conditions}
        try:
            fresh = await self.client.update_status(NAMESPACES, updated)
        except ApiError as exc:  # upstream only logs: the next pass writes them again
            log.info("namespace %s: updating conditions: %s", namespace["metadata"]["name"], exc)
            return
        namespace["metadata"] = fresh.get("metadata") or namespace["metadata"]
        namespace["status"] = fresh.get("status") or namespace.get("status")
