"""The scheduler: informers in, one pod per scheduling cycle, bindings in parallel
(upstream's pkg/scheduler scheduler.go and schedule_one.go).

- Informers feed the cache (nodes, bound pods) and the queue (unbound pods of our profiles);
  a change that may make rejected pods schedulable (a node added or changed, a pod deleted)
  moves them back from the unschedulable pods (only those whose rejecting plugins
  registered that event).
- A scheduling cycle pops the next pod, takes a snapshot of the cache, runs PreFilter, then
  Filter over the nodes — starting where the last cycle stopped and stopping once enough
  feasible nodes are found (percentageOfNodesToScore) — then PreScore/Score, picks the best
  node (ties at random), assumes the pod on it in the cache (so the next cycle sees it at
  once), runs Reserve and Permit, and hands the pod to a binding task.
- The binding cycle (a task per pod, many in parallel) waits for Permit, runs PreBind, Bind
  (pods/binding) and PostBind; a failure unreserves, forgets the assumption and requeues.
- A pod that fits nowhere gets PodScheduled=False (reason Unschedulable, upstream's
  "0/5 nodes are available: ..." message) and a FailedScheduling event; it waits in the
  queue for a cluster event or its backoff.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections import Counter
from collections.abc import Sequence
from typing import Any

import numpy as np

from pybernetes.client.cache import object_of
from pybernetes.client.errors import ApiError, NotFound
from pybernetes.client.events import EventRecorder
from pybernetes.client.informer import SharedInformerFactory
from pybernetes.client.rest import RestClient
from pybernetes.client.tasks import TaskSet
from pybernetes.scheduler import registry
from pybernetes.scheduler.cache import SchedulerCache
from pybernetes.scheduler.framework import SUCCESS, ClusterEvent, Code, CycleState, NodeInfo, PodEntry, Status
from pybernetes.scheduler.handle import Handle, Snapshot
from pybernetes.scheduler.metrics import SchedulerMetrics
from pybernetes.scheduler.nodeinfo import pod_entry, pod_key
from pybernetes.scheduler.nodetable import RowInfos
from pybernetes.scheduler.queue import Closed, SchedulingQueue
from pybernetes.scheduler.runtime import TABLE_FILTER_KEY, Framework, pod_name

log = logging.getLogger(__name__)

Obj = dict[str, Any]
PODS = ("", "v1", "pods")
MIN_FEASIBLE_NODES = 100
MIN_FEASIBLE_PERCENTAGE = 5
_NO_ROWS = np.zeros(0, dtype=np.intp)
# What plugins may list through the handle, by the resource names they use.
LISTED = {"v1/namespaces": ("", "v1", "namespaces"), "v1/services": ("", "v1", "services"),
          "v1/replicationcontrollers": ("", "v1", "replicationcontrollers"),
          "apps/v1/replicasets": ("apps", "v1", "replicasets"),
          "apps/v1/statefulsets": ("apps", "v1", "statefulsets"),
          "v1/persistentvolumeclaims": ("", "v1", "persistentvolumeclaims"),
          "v1/persistentvolumes": ("", "v1", "persistentvolumes"),
          "storage.k8s.io/v1/storageclasses": ("storage.k8s.io", "v1", "storageclasses"),
          "policy/v1/poddisruptionbudgets": ("policy", "v1", "poddisruptionbudgets"),
          "scheduling.k8s.io/v1/priorityclasses": ("scheduling.k8s.io", "v1", "priorityclasses")}
# Listed resources whose changes may make rejected pods schedulable: the ClusterEvent kind
# their Add/Update/Delete is reported as (plugins register for them, as upstream's names).
EVENT_KINDS = {"v1/persistentvolumeclaims": "PersistentVolumeClaim", "v1/persistentvolumes": "PersistentVolume",
               "storage.k8s.io/v1/storageclasses": "StorageClass", "v1/namespaces": "Namespace",
               "v1/services": "Service"}


def feasible_nodes_to_find(total: int, percentage: int) -> int:
    """How many feasible nodes to find before scoring (upstream numFeasibleNodesToFind)."""
    if total < MIN_FEASIBLE_NODES or percentage >= 100:
        return total
    if percentage <= 0:
        percentage = max(MIN_FEASIBLE_PERCENTAGE, 50 - total // 125)
    return max(MIN_FEASIBLE_NODES, total * percentage // 100)


def fit_error_message(total: int, statuses: dict[str, Status], prefilter: Status | None = None) -> str:
    """Upstream's FitError text: "0/5 nodes are available: 3 Insufficient cpu, 2 ..."."""
    if prefilter is not None:
        return f"0/{total} nodes are available: {prefilter.message()}."
    histogram: Counter[str] = Counter()
    for status in statuses.values():
        for reason in status.reasons:
            histogram[reason] += 1
    parts = sorted(f"{count} {reason}" for reason, count in histogram.items())
    return f"0/{total} nodes are available: {', '.join(parts)}."


class Scheduler:
    def __init__(self, client: RestClient, config: Any, *, informers: SharedInformerFactory | None = None,
                 recorder: EventRecorder | None = None, metrics: SchedulerMetrics | None = None) -> None:
        self.client = client
        self.config = config
        self.informers = informers or SharedInformerFactory(client)
        self.recorder = recorder or EventRecorder(client, "default-scheduler")
        self.handle = Handle(client=client, recorder=self.recorder, lister=self._list,
                             parallelism=getattr(config, "parallelism", 16))
        self.frameworks: dict[str, Framework] = {
            p.scheduler_name: Framework(p, registry.load, self.handle) for p in config.profiles}
        first = next(iter(self.frameworks.values()))
        events_by_plugin: dict[str, set[ClusterEvent]] = {}
        for fw in self.frameworks.values():
            for name, plugin in fw.plugins.items():
                events_by_plugin.setdefault(name, set()).update(plugin.events_to_register())
        self.cache = SchedulerCache()
        self.queue = SchedulingQueue(
            first.less, self._pre_enqueue, events_by_plugin=events_by_plugin, sort_key=first.sort_key,
            initial_backoff=float(getattr(config, "pod_initial_backoff_seconds", 1.0)),
            max_backoff=float(getattr(config, "pod_max_backoff_seconds", 10.0)))
        self.handle.nominated_pods = self.queue.nominated_pods_for_node
        self._entries: dict[int, PodEntry] = {}  # see _entry_of
        self._tasks = TaskSet("scheduler")
        self._listers = {name: self.informers.informer(res) for name, res in LISTED.items()}
        self._next_start = 0
        self.binding_tasks: set[asyncio.Task[None]] = set()
        self.metrics = metrics or SchedulerMetrics()
        self.metrics.set_pending_source(self.queue.pending_counts)
        self._setup_informers()

    # -- informers ------------------------------------------------------------------------------

    def _list(self, resource: str, namespace: str | None) -> list[Obj]:
        inf = self._listers.get(resource)
        if inf is None:
            return []
        return inf.indexer.by_namespace(namespace) if namespace is not None else inf.indexer.list()

    def _setup_informers(self) -> None:
        pods = self._pods = self.informers.informer(PODS)
        pods.add_event_handler(self._pod_added, self._pod_updated, self._pod_deleted)
        nodes = self.informers.informer(("", "v1", "nodes"))
        nodes.add_event_handler(self._node_added, self._node_updated, self._node_deleted)
        for resource, kind in EVENT_KINDS.items():
            self._listers[resource].add_event_handler(*self._movers(kind))

    def _movers(self, kind: str) -> tuple[Any, Any, Any]:
        """Informer handlers reporting ``kind``'s Add/Update/Delete to the queue."""
        queue = self.queue
        return (lambda _obj: queue.move_all_to_active_or_backoff(ClusterEvent(kind, "Add")),
                lambda old, new: queue.move_all_to_active_or_backoff(ClusterEvent(kind, "Update"))
                if (old.get("metadata") or {}).get("resourceVersion") != (new.get("metadata") or {}).get("resourceVersion")
                else None,
                lambda _obj: queue.move_all_to_active_or_backoff(ClusterEvent(kind, "Delete")))

    def _ours(self, pod: Obj) -> bool:
        spec = pod.get("spec") or {}
        return (not spec.get("nodeName") and (spec.get("schedulerName") or "default-scheduler") in self.frameworks
                and not (pod.get("metadata") or {}).get("deletionTimestamp")
                and (pod.get("status") or {}).get("phase") not in ("Succeeded", "Failed"))

    @staticmethod
    def _assigned(pod: Obj) -> bool:
        return bool((pod.get("spec") or {}).get("nodeName"))

    def _pod_added(self, pod: Obj) -> None:
        if self._assigned(pod):
            self.cache.add_pod(pod)
            self.queue.assigned_pod_added(pod)
        elif self._ours(pod):
            self.queue.add(pod)

    def _pod_updated(self, old: Obj, new: Obj) -> None:
        if self._assigned(new):
            if self._assigned(old):
                self.cache.update_pod(old, new)
                if (old.get("metadata") or {}).get("labels") != (new.get("metadata") or {}).get("labels") or \
                        (new.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
                    self.queue.assigned_pod_updated(old, new)
            else:
                self.queue.delete(old)
                self.cache.add_pod(new)
        elif self.cache.is_assumed(pod_key(new)):
            return  # being bound: the binding's outcome decides (upstream skipPodUpdate)
        elif self._ours(new):
            self.queue.update(old, new)
        else:
            self.queue.delete(new)

    def _pod_deleted(self, item: Any) -> None:
        pod = object_of(item)
        if self._assigned(pod):
            self.cache.remove_pod(pod)
            self.queue.assigned_pod_deleted(pod)
        else:
            self.queue.delete(pod)

    def _node_added(self, node: Obj) -> None:
        self.cache.add_node(node)
        self.queue.move_all_to_active_or_backoff(ClusterEvent("Node", "Add"))

    def _node_updated(self, old: Obj, new: Obj) -> None:
        self.cache.update_node(old, new)
        if (old.get("metadata") or {}).get("resourceVersion") != (new.get("metadata") or {}).get("resourceVersion"):
            self.queue.move_all_to_active_or_backoff(ClusterEvent("Node", "Update"))

    def _node_deleted(self, item: Any) -> None:
        self.cache.remove_node(object_of(item))

    def _pre_enqueue(self, pod: Obj) -> Status:
        fw = self.frameworks.get((pod.get("spec") or {}).get("schedulerName") or "default-scheduler")
        return fw.run_pre_enqueue(pod) if fw is not None else Status.unresolvable("no such profile")

    # -- running --------------------------------------------------------------------------------

    async def start(self) -> None:
        self.informers.start()
        await self.informers.wait_for_cache_sync(60)
        self._tasks.start("loop", self._loop())
        self._tasks.start("flush", self._flush_loop())

    async def stop(self) -> None:
        self.queue.close()
        await self._tasks.stop(grace=5.0)
        for task in list(self.binding_tasks):
            task.cancel()
        await asyncio.gather(*self.binding_tasks, return_exceptions=True)
        await self.informers.shutdown()
        await self.recorder.stop()

    async def _flush_loop(self) -> None:
        while True:
            await asyncio.sleep(1.0)
            self.queue.flush(time.monotonic())

    async def _loop(self) -> None:
        while True:
            try:
                info = await self.queue.pop()
            except Closed:
                return
            binding = False
            try:
                binding = await self.schedule_one(info)
            except Exception:  # noqa: BLE001 - one pod's failure never stops the scheduler
                log.exception("scheduling %s failed", pod_name(info.pod))
                self.queue.add_unschedulable(info, self.queue.scheduling_cycle)
            finally:
                if not binding:  # a pod handed to binding is done when its binding ends
                    self.queue.done(info.key)
            await asyncio.sleep(0)  # let the binding tasks and informers run between cycles

    # -- one scheduling cycle -----------------------------------------------------------------

    async def schedule_one(self, info: Any) -> bool:
        """One scheduling cycle; True when the pod was handed to a binding task."""
        pod = info.pod
        fw = self.frameworks[(pod.get("spec") or {}).get("schedulerName") or "default-scheduler"]
        cycle = self.queue.scheduling_cycle
        started = time.monotonic()
        snapshot = self.cache.snapshot()
        self.handle.snapshot = snapshot
        nodes = snapshot.node_infos
        state = CycleState()
        if not nodes:
            await self._fail(info, fw, Status.unschedulable("no nodes available to schedule pods"),
                             "0/0 nodes are available: no nodes available to schedule pods.", cycle, started)
            return False
        allowed, status = fw.run_pre_filter(state, pod, nodes)
        if not status.is_success():
            info.unschedulable_plugins.add(status.plugin)
            await self._fail(info, fw, status, fit_error_message(len(nodes), {}, status), cycle, started)
            return False
        feasible, rows, statuses = self._find_feasible(fw, state, pod, snapshot, allowed)
        if not feasible:
            errors = [s for s in statuses.values() if s.code == Code.ERROR]
            if errors:
                await self._fail(info, fw, errors[0], errors[0].message(), cycle, started)
                return False
            info.unschedulable_plugins.update(s.plugin for s in statuses.values() if s.plugin)
            message = fit_error_message(len(nodes), statuses)
            nominated = None
            if fw.points["postFilter"]:
                nominated, post = await fw.run_post_filter(state, pod, statuses)
                if nominated:
                    # other pods leave room for it from now on; the API learns it with the failure
                    self.queue.add_nominated(pod, nominated)
                elif post.reasons:
                    message = f"{message[:-1]}. preemption: {post.message()}"
            await self._fail(info, fw, Status.unschedulable(), message, cycle, started, nominated)
            return False
        host = feasible[0].name
        if len(feasible) > 1 and fw.has_scores:
            status = fw.run_pre_score(state, pod, feasible)
            if not status.is_success():
                await self._fail(info, fw, status, status.message(), cycle, started)
                return False
            totals, status = fw.run_score(state, pod, feasible, snapshot.table, rows)
            if not status.is_success():
                await self._fail(info, fw, status, status.message(), cycle, started)
                return False
            ties = np.flatnonzero(totals == totals.max())
            host = feasible[int(ties[random.randrange(len(ties))])].name
        assumed = {**pod, "spec": {**(pod.get("spec") or {}), "nodeName": host}}
        self.cache.assume_pod(assumed)
        self.queue.delete_nominated(pod)  # placed: it no longer holds room elsewhere
        status = await fw.run_reserve(state, assumed, host)
        if status.is_success():
            status, wait = await fw.run_permit(state, assumed, host)
        else:
            wait = 0.0
        if not status.is_success() and status.code != Code.WAIT:
            await fw.run_unreserve(state, assumed, host)
            self.cache.forget_pod(assumed)
            await self._fail(info, fw, status, status.message(), cycle, started)
            return False
        self.metrics.observe_attempt("scheduled", fw.scheduler_name, time.monotonic() - started)
        task = asyncio.get_running_loop().create_task(
            self._bind(info, fw, state, assumed, host, wait, started), name=f"bind/{pod_name(pod)}")
        self.binding_tasks.add(task)
        task.add_done_callback(self.binding_tasks.discard)
        return True

    def _find_feasible(self, fw: Framework, state: CycleState, pod: Obj, snapshot: Snapshot,
                       allowed: frozenset[str] | None) -> tuple[Sequence[NodeInfo], np.ndarray, dict[str, Status]]:
        """Filter: the feasible nodes (and their rows in the snapshot's table), or, when there
        are none, every node's status.  Nodes are taken in turn from where the last cycle
        stopped, until enough are feasible (percentageOfNodesToScore).  The plugins' table
        forms decide all nodes at once; the rest run node by node on the candidates left."""
        nodes = snapshot.node_infos
        table = snapshot.table
        total = len(nodes)
        want = feasible_nodes_to_find(total, fw.profile.percentage_of_nodes_to_score or
                                      getattr(self.config, "percentage_of_nodes_to_score", 0) or 0)
        result = fw.run_filter_table(state, pod, table)
        state.write(TABLE_FILTER_KEY, result)
        if result.error is not None:
            return [], _NO_ROWS, {nodes[0].name: result.error}
        passing = result.passing
        if allowed is not None:
            named = table.rows_named(allowed)
            passing = named if passing is None else passing & named
        start = self._next_start % total
        if passing is None:
            order = np.concatenate((np.arange(start, total), np.arange(0, start)))
        else:
            candidates = np.flatnonzero(passing)
            split = int(np.searchsorted(candidates, start))
            order = np.concatenate((candidates[split:], candidates[:split]))
        nominated = self.queue.nominated_nodes()
        mine = (pod.get("status") or {}).get("nominatedNodeName") or self.queue.nominated_node(pod)
        if mine:  # preemption made room there: try it first, alone (upstream's evaluateNominatedNode)
            row = table.row_of.get(mine)
            if row is not None and (passing is None or passing[row]):
                if not self._candidate_status(fw, state, pod, nodes[row], result.per_node, nominated).code:
                    chosen_row = np.array([row], dtype=np.intp)
                    return RowInfos(table, chosen_row), chosen_row, {}
        statuses: dict[str, Status] = {}
        if not result.per_node and not nominated:
            rows = order[:want]
        else:
            chosen: list[int] = []
            for row in order.tolist():
                node = nodes[row]
                status = self._candidate_status(fw, state, pod, node, result.per_node, nominated)
                if status.code:
                    statuses[node.name] = status
                    continue
                chosen.append(row)
                if len(chosen) >= want:
                    break
            rows = np.array(chosen, dtype=np.intp)
        processed = int((rows[-1] - start) % total) + 1 if len(rows) >= want else total
        self._next_start = (start + processed) % total
        if len(rows):
            return RowInfos(table, rows), rows, statuses
        # No node fits: every node's status — the PreFilter's for nodes it ruled out, the first
        # rejecting table-form plugin's, or what the candidates loop found (nominated pods' room).
        rejected = fw.table_statuses(state, pod, table, result)
        if rejected is not None:
            merged: dict[str, Status] = {}
            if allowed is not None:
                ruled_out = Status.unresolvable("node(s) didn't satisfy plugin(s) [PreFilter]")
                merged = {node.name: ruled_out for node in nodes if node.name not in allowed}
            for name, status in rejected.items():
                merged.setdefault(name, status)
            merged.update(statuses)
            if len(merged) == total:
                return [], _NO_ROWS, merged
        return self._statuses_by_node(fw, state, pod, nodes, allowed)

    def _candidate_status(self, fw: Framework, state: CycleState, pod: Obj, node: NodeInfo,
                          per_node: list[Any], nominated: Any) -> Status:
        """The verdict on a node the table forms let through: the plugins left to run node by
        node, then the room of the pods nominated to it."""
        status = fw.run_filter(state, pod, node, per_node) if per_node else SUCCESS
        if not status.code and node.name in nominated:
            status = self._filter_with_nominated(fw, state, pod, node)
        return status

    def _statuses_by_node(self, fw: Framework, state: CycleState, pod: Obj, nodes: list[NodeInfo],
                          allowed: frozenset[str] | None) -> tuple[list[NodeInfo], np.ndarray, dict[str, Status]]:
        """No node is feasible: every node's status, plugin by plugin, node by node."""
        statuses: dict[str, Status] = {}
        for node in nodes:
            if allowed is not None and node.name not in allowed:
                statuses[node.name] = Status.unresolvable("node(s) didn't satisfy plugin(s) [PreFilter]")
                continue
            status = fw.run_filter(state, pod, node)
            if not status.code and self.queue.nominated_pods_for_node(node.name):
                status = self._filter_with_nominated(fw, state, pod, node)
            if status.code:
                statuses[node.name] = status
        if len(statuses) < len(nodes):  # should not happen: the table forms disagreed
            log.warning("pod %s: no node was feasible, but %d passed node by node", pod_name(pod),
                        len(nodes) - len(statuses))
        return [], _NO_ROWS, statuses

    def _filter_with_nominated(self, fw: Framework, state: CycleState, pod: Obj, node: NodeInfo) -> Status:
        """The node must also hold the pods nominated to it with a priority at least the
        pod's (they preempted for that room): filter again with them added, on copies
        (upstream's RunFilterPluginsWithNominatedPods, second pass)."""
        priority = int((pod.get("spec") or {}).get("priority") or 0)
        own = pod_key(pod)
        others = [p for p in self.queue.nominated_pods_for_node(node.name)
                  if pod_key(p) != own and int((p.get("spec") or {}).get("priority") or 0) >= priority]
        if not others:
            return Status()
        # The state changes only through PreFilter's AddPod extensions: without one in play,
        # the cycle's state serves as it is.
        hooked = fw.has_add_pod_extensions(state)
        trial_state, trial_node = (state.clone() if hooked else state), node.clone()
        for other in others:
            entry = self._entry_of(other)
            trial_node.add_entry(pod_key(other), entry)
            if hooked:
                status = fw.run_add_pod(trial_state, pod, entry, trial_node)
                if status.code:
                    return status
        return fw.run_filter(trial_state, pod, trial_node)

    def _entry_of(self, pod: Obj) -> PodEntry:
        """``pod_entry(pod)``, kept while the pod object is the same (nominated pods are tried
        against many nodes)."""
        hit = self._entries.get(id(pod))
        if hit is not None and hit.pod is pod:
            return hit
        if len(self._entries) > 4096:
            self._entries.clear()
        entry = self._entries[id(pod)] = pod_entry(pod)
        return entry

    async def _fail(self, info: Any, fw: Framework, status: Status, message: str, cycle: int,
                    started: float | None = None, nominated: str | None = None) -> None:
        """The attempt failed: metrics, a FailedScheduling event, back to the queue, and one
        status write — PodScheduled=False with the message, and status.nominatedNodeName when
        preemption chose a node for the pod (upstream's updatePod)."""
        pod = info.pod
        error = status.code == Code.ERROR
        if started is not None:
            self.metrics.observe_attempt("error" if error else "unschedulable", fw.scheduler_name,
                                         time.monotonic() - started)
        reason = "SchedulerError" if error else "Unschedulable"
        self.recorder.event(pod, "Warning", "FailedScheduling", message)
        self.queue.add_unschedulable(info, cycle)
        meta = pod.get("metadata") or {}
        patch: Obj = {"status": {"conditions": [{"type": "PodScheduled", "status": "False", "reason": reason,
                                                 "message": message, "lastProbeTime": None,
                                                 "lastTransitionTime": _now()}]}}
        if nominated:
            patch["status"]["nominatedNodeName"] = nominated
        try:
            await self.client.patch(PODS, meta.get("name", ""), patch, meta.get("namespace"),
                                    patch_type="strategic", subresource="status")
        except NotFound:
            pass
        except ApiError as exc:
            log.warning("could not record the failure of %s: %s", pod_name(pod), exc)

    # -- the binding cycle --------------------------------------------------------------------

    async def _bind(self, info: Any, fw: Framework, state: CycleState, pod: Obj, host: str, wait: float,
                    started: float) -> None:
        try:
            await self._binding_cycle(info, fw, state, pod, host, wait, started)
        finally:
            self.queue.done(info.key)

    async def _binding_cycle(self, info: Any, fw: Framework, state: CycleState, pod: Obj, host: str,
                             wait: float, started: float) -> None:
        try:
            status = await self._wait_on_permit(pod, wait) if wait else Status()
            if status.is_success():
                status = await fw.run_pre_bind(state, pod, host)
            if status.is_success():
                status = await fw.run_bind(state, pod, host)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001
            status = Status.error(f"binding: {exc!r}")
        if not status.is_success():
            await fw.run_unreserve(state, pod, host)
            self.cache.forget_pod(pod)
            if self._pods.indexer.get(pod_key(pod)) is None:
                return  # deleted meanwhile: nothing to retry
            await self._fail(info, fw, status, status.message(), self.queue.scheduling_cycle, started)
            return
        self.cache.finish_binding(pod)
        first = getattr(info, "initial_attempt_timestamp", None) or started
        self.metrics.observe_bound(getattr(info, "attempts", 1), time.monotonic() - first)
        meta = pod.get("metadata") or {}
        self.recorder.event(pod, "Normal", "Scheduled",
                            f"Successfully assigned {meta.get('namespace')}/{meta.get('name')} to {host}")
        await fw.run_post_bind(state, pod, host)

    async def _wait_on_permit(self, pod: Obj, limit: float) -> Status:
        """Permit asked to wait: until a plugin allows or rejects through the handle, or the
        timeout (then rejected, as upstream)."""
        uid = (pod.get("metadata") or {}).get("uid") or pod_name(pod)
        waiter = self.handle.waiting_pods.setdefault(uid, asyncio.get_running_loop().create_future())
        try:
            return await asyncio.wait_for(asyncio.shield(waiter), limit)
        except TimeoutError:
            return Status.unschedulable(f"rejected due to timeout after waiting {limit}s at plugin permit")
        finally:
            self.handle.waiting_pods.pop(uid, None)


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
