"""One profile's plugins, run point by point (upstream's frameworkruntime).

``Framework`` instantiates each plugin of a profile once (a plugin serving several points is
one object), keeps the ordered plugins of every extension point with their score weights,
and runs them as upstream does:

- PreFilter: every plugin; a Skip status skips that plugin's Filter for this pod; the node
  sets plugins return are intersected; the first rejection ends the cycle.
- Filter: plugins in order on one node; the first non-success status is the node's verdict.
  ``run_filter_table`` first asks every plugin with a table form (``filter_table``) for its
  verdict on all nodes at once (nodetable.py); only the plugins without one (or that decline
  for this pod) then run node by node, on the nodes the others let through.  When no node
  passes, ``table_statuses`` gives each node the status of the first plugin that rejects it
  (that plugin's ``statuses_table`` for its rejected rows, or its per-node ``filter`` on them).
- PreScore / Score: a Skip skips that plugin's Score; scores are normalized by the plugin
  (NormalizeScore) and summed with the profile's weights.  A plugin with ``score_table``
  scores all the feasible nodes at once (already normalized).
- Reserve (in order; a failure unreserves all, in reverse), Permit (allow, reject, or wait
  up to the longest timeout asked), PreBind, Bind (the first plugin that does not Skip),
  PostBind.

A plugin that raises is turned into an Error status naming the plugin (logged with the
pod): one broken plugin fails that pod's attempt, never the scheduler.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from pybernetes.scheduler.framework import (
    MAX_NODE_SCORE,
    SUCCESS,
    Code,
    CycleState,
    NodeInfo,
    Plugin,
    PreFilterResult,
    Status,
)
from pybernetes.scheduler.handle import Handle
from pybernetes.scheduler.nodetable import NodeTable

log = logging.getLogger(__name__)

Obj = dict[str, Any]
POINTS = ("queueSort", "preEnqueue", "preFilter", "filter", "postFilter", "preScore", "score", "reserve",
          "permit", "preBind", "bind", "postBind")


FilterFn = Callable[[CycleState, Obj, NodeInfo], Status]
TABLE_FILTER_KEY = "TableFilterResult"  # the cycle's run_filter_table answer, for PostFilter


@dataclass(slots=True)
class TableFilterResult:
    """``run_filter_table``'s answer: ``passing`` — the rows every table-form plugin lets
    through (None: all rows); ``per_node`` — the (name, filter) of the plugins that must still
    run node by node, in order; ``rejecting`` — (name, per-node filter, passing rows) of each
    table-form plugin that rejected some rows, in order; ``error`` — a plugin raised."""

    passing: np.ndarray | None = None
    per_node: list[tuple[str, FilterFn]] = field(default_factory=list)
    rejecting: list[tuple[str, FilterFn, np.ndarray]] = field(default_factory=list)
    error: Status | None = None


def pod_name(pod: Obj) -> str:
    meta = pod.get("metadata") or {}
    return f"{meta.get('namespace')}/{meta.get('name')}"


class Framework:
    def __init__(self, profile: Any, load: Callable[[str], type[Plugin]], handle: Handle) -> None:
        """``profile``: a config.Profile (scheduler_name, percentage_of_nodes_to_score,
        points: point -> [(plugin name, weight)], plugin_args: name -> args)."""
        self.profile = profile
        self.scheduler_name: str = profile.scheduler_name
        self.handle = handle
        self.plugins: dict[str, Plugin] = {}
        self.points: dict[str, list[Plugin]] = {}
        self.weights: dict[str, int] = {}
        for point in POINTS:
            chosen = []
            for name, weight in profile.points.get(point, ()):
                plugin = self.plugins.get(name)
                if plugin is None:
                    plugin = load(name)(profile.plugin_args.get(name) or {}, handle)
                    plugin.framework = self  # type: ignore[attr-defined]  # for PostFilter what-ifs
                    self.plugins[name] = plugin
                if point == "score":
                    self.weights[name] = weight or 1
                chosen.append(plugin)
            self.points[point] = chosen
        self.has_scores = bool(self.points["score"])
        # Bound methods, looked up once: Filter and Score run for every node of every cycle.
        self._filters = [(p.name, p.filter) for p in self.points["filter"]]  # type: ignore[attr-defined]
        self._pre_scores = [(p, p.pre_score) for p in self.points["preScore"]]  # type: ignore[attr-defined]
        self._table_filters = [(p.name, getattr(p, "filter_table", None), p.filter)  # type: ignore[attr-defined]
                               for p in self.points["filter"]]
        self._scores = [(p, p.score, getattr(p, "normalize_score", None), self.weights.get(p.name, 1),  # type: ignore[attr-defined]
                         getattr(p, "score_table", None)) for p in self.points["score"]]

    # -- the scheduling cycle ------------------------------------------------------------------

    def less(self, a: Any, b: Any) -> bool:
        return self.points["queueSort"][0].less(a, b)

    @property
    def sort_key(self) -> Callable[[Any], Any] | None:
        """The QueueSort plugin's ``sort_key`` (an equivalent of its ``less``), if it has one."""
        return getattr(self.points["queueSort"][0], "sort_key", None)

    def run_pre_enqueue(self, pod: Obj) -> Status:
        for plugin in self.points["preEnqueue"]:
            status = self._call(plugin, "pre_enqueue", pod, pod)
            if not status.is_success():
                return status
        return SUCCESS

    def run_pre_filter(self, state: CycleState, pod: Obj, nodes: list[NodeInfo]
                       ) -> tuple[frozenset[str] | None, Status]:
        allowed: frozenset[str] | None = None
        for plugin in self.points["preFilter"]:
            try:
                result, status = plugin.pre_filter(state, pod, nodes)  # type: ignore[attr-defined]
            except Exception as exc:  # noqa: BLE001 - a broken plugin fails this pod only
                return None, self._error(plugin, pod, "PreFilter", exc)
            if status.is_skip():
                state.skip_filter_plugins.add(plugin.name)
                continue
            if not status.is_success():
                status.plugin = status.plugin or plugin.name
                return None, status
            if isinstance(result, PreFilterResult) and result.node_names is not None:
                allowed = result.node_names if allowed is None else allowed & result.node_names
                if not allowed:
                    return allowed, Status.unresolvable(
                        "node(s) didn't satisfy plugin(s) [" + plugin.name + "]", plugin=plugin.name)
        return allowed, SUCCESS

    def run_filter(self, state: CycleState, pod: Obj, node: NodeInfo,
                   filters: list[tuple[str, FilterFn]] | None = None) -> Status:
        """Filter on one node: every plugin, or only ``filters`` (``TableFilterResult.per_node``)."""
        skip = state.skip_filter_plugins
        for name, filter_ in self._filters if filters is None else filters:
            if skip and name in skip:
                continue
            try:
                status = filter_(state, pod, node)
            except Exception as exc:  # noqa: BLE001
                return self._error(self.plugins[name], pod, "Filter", exc)
            if status.code:  # Code.SUCCESS is 0
                if not status.plugin:
                    status.plugin = name
                return status
        return SUCCESS

    def run_add_pod(self, state: CycleState, pod: Obj, entry: Any, node: NodeInfo) -> Status:
        """PreFilter extensions (preemption's what-ifs): ``entry`` added to ``node``."""
        for plugin in self.points["preFilter"]:
            if plugin.name in state.skip_filter_plugins or not hasattr(plugin, "add_pod"):
                continue
            status = self._call(plugin, "add_pod", pod, state, pod, entry, node)
            if not status.is_success():
                return status
        return SUCCESS

    def has_add_pod_extensions(self, state: CycleState) -> bool:
        """Whether a PreFilter plugin in play for this cycle has AddPod/RemovePod extensions."""
        skip = state.skip_filter_plugins
        return any(p.name not in skip and (hasattr(p, "add_pod") or hasattr(p, "remove_pod"))
                   for p in self.points["preFilter"])

    def run_remove_pod(self, state: CycleState, pod: Obj, entry: Any, node: NodeInfo) -> Status:
        for plugin in self.points["preFilter"]:
            if plugin.name in state.skip_filter_plugins or not hasattr(plugin, "remove_pod"):
                continue
            status = self._call(plugin, "remove_pod", pod, state, pod, entry, node)
            if not status.is_success():
                return status
        return SUCCESS

    def run_pre_score(self, state: CycleState, pod: Obj, nodes: list[NodeInfo]) -> Status:
        for plugin, pre_score in self._pre_scores:
            try:
                status = pre_score(state, pod, nodes)
            except Exception as exc:  # noqa: BLE001
                return self._error(plugin, pod, "pre_score", exc)
            if not isinstance(status, Status) or not status.code:
                continue
            if status.code == Code.SKIP:
                state.skip_score_plugins.add(plugin.name)
                continue
            status.plugin = status.plugin or plugin.name
            return status
        return SUCCESS

    def run_filter_table(self, state: CycleState, pod: Obj, table: NodeTable) -> TableFilterResult:
        """Filter over all of ``table``'s rows at once where plugins can (module docstring)."""
        out = TableFilterResult()
        skip = state.skip_filter_plugins
        for name, filter_table, filter_ in self._table_filters:
            if skip and name in skip:
                continue
            verdict = None
            if filter_table is not None:
                try:
                    verdict = filter_table(state, pod, table)
                except Exception as exc:  # noqa: BLE001
                    out.error = self._error(self.plugins[name], pod, "Filter", exc)
                    return out
            if verdict is None:
                out.per_node.append((name, filter_))
            elif verdict is not True:
                out.rejecting.append((name, filter_, verdict))
                out.passing = verdict.copy() if out.passing is None else np.logical_and(out.passing, verdict)
        return out

    def pods_filters(self, state: CycleState) -> tuple[list[tuple[str, FilterFn]], np.ndarray | None] | None:
        """For preemption's dry runs on nodes whose pods change: the filters to run (plugins
        whose verdict depends on the node's pods, and those without a table verdict this
        cycle), and the rows the other plugins let through (None: all) — their verdicts do not
        change with the pods.  None when the cycle kept no table verdicts."""
        result = state.get(TABLE_FILTER_KEY)
        if result is None:
            return None
        untabled = {name for name, _ in result.per_node}
        skip = state.skip_filter_plugins
        filters = [(name, filter_) for name, filter_ in self._filters
                   if name not in skip and (self.plugins[name].node_pods_matter or name in untabled)]
        passing = None
        for name, _filter, mask in result.rejecting:
            if not self.plugins[name].node_pods_matter:
                passing = mask.copy() if passing is None else passing & mask
        return filters, passing

    def table_statuses(self, state: CycleState, pod: Obj, table: NodeTable, result: TableFilterResult
                       ) -> dict[str, Status] | None:
        """The status of every node that ``result``'s table-form plugins reject: the first
        rejecting plugin's per-node verdict, as ``run_filter`` would give.  None when that
        cannot be told from the table (plugins left to run node by node, or a table form
        that disagrees with its per-node form)."""
        if result.per_node:
            return None
        statuses: dict[str, Status] = {}
        alive = np.ones(table.n, bool)
        infos = table.infos
        for name, filter_, passing in result.rejecting:
            rows = np.flatnonzero(alive & ~passing)
            statuses_table = getattr(self.plugins[name], "statuses_table", None)
            given = None
            if statuses_table is not None:
                try:
                    given = statuses_table(state, pod, table, rows)
                except Exception as exc:  # noqa: BLE001
                    given = [self._error(self.plugins[name], pod, "Filter", exc)] * len(rows)
            for i, row in enumerate(rows.tolist()):
                info = infos[row]
                if given is not None:
                    status = given[i]
                else:
                    try:
                        status = filter_(state, pod, info)
                    except Exception as exc:  # noqa: BLE001
                        status = self._error(self.plugins[name], pod, "Filter", exc)
                if not status.code:
                    log.warning("plugin %s: table and per-node filters disagree on node %s", name, info.name)
                    return None
                if not status.plugin:
                    status.plugin = name
                statuses[info.name] = status
            alive &= passing
        return statuses

    def run_score(self, state: CycleState, pod: Obj, nodes: list[NodeInfo], table: NodeTable | None = None,
                  rows: np.ndarray | None = None) -> tuple[np.ndarray, Status]:
        """Total weighted score of each of ``nodes`` (``rows`` of ``table``, when given: the
        plugins with a table form score them all at once)."""
        totals = np.zeros(len(nodes), np.int64)
        skip = state.skip_score_plugins
        for plugin, score, normalize, weight, score_table in self._scores:
            if skip and plugin.name in skip:
                continue
            try:
                values = score_table(state, pod, table, rows) \
                    if score_table is not None and table is not None else None
                if values is None:
                    values, status = self._score_by_node(state, pod, nodes, plugin, score, normalize)
                    if status.code:
                        return totals, status
                else:
                    values = np.asarray(values, np.int64)
            except Exception as exc:  # noqa: BLE001
                return totals, self._error(plugin, pod, "Score", exc)
            if len(values) and (values.min() < 0 or values.max() > MAX_NODE_SCORE):
                bad = next(int(v) for v in values if not 0 <= v <= MAX_NODE_SCORE)
                return totals, Status.error(
                    f"plugin {plugin.name!r} returns an invalid score {bad}, it should in the range of "
                    f"[0, {MAX_NODE_SCORE}] after normalizing", plugin.name)
            totals += values * weight
        return totals, SUCCESS

    @staticmethod
    def _score_by_node(state: CycleState, pod: Obj, nodes: list[NodeInfo], plugin: Plugin, score: Any,
                       normalize: Any) -> tuple[np.ndarray, Status]:
        values: list[int] = []
        append = values.append
        for node in nodes:
            value, status = score(state, pod, node)
            if status.code:
                status.plugin = status.plugin or plugin.name
                return np.zeros(0, np.int64), status
            append(value)
        if normalize is not None:
            names = [n.name for n in nodes]
            scores = dict(zip(names, values, strict=True))
            status = normalize(state, pod, scores)
            if status.code:
                status.plugin = status.plugin or plugin.name
                return np.zeros(0, np.int64), status
            values = [scores[name] for name in names]
        return np.array(values, np.int64), SUCCESS

    async def run_post_filter(self, state: CycleState, pod: Obj, statuses: dict[str, Status]
                              ) -> tuple[str | None, Status]:
        """PostFilter (preemption) after no node fit: the nominated node name, if any, and
        the status of the first plugin that did not return Unschedulable."""
        last = Status.unschedulable()
        for plugin in self.points["postFilter"]:
            try:
                result, status = await plugin.post_filter(state, pod, statuses)  # type: ignore[attr-defined]
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001
                return None, self._error(plugin, pod, "PostFilter", exc)
            if status.is_success():
                return getattr(result, "nominated_node_name", None), status
            if status.code != Code.UNSCHEDULABLE:
                status.plugin = status.plugin or plugin.name
                return None, status
            last = status
        return None, last

    # -- the binding cycle ---------------------------------------------------------------------

    async def run_reserve(self, state: CycleState, pod: Obj, node_name: str) -> Status:
        for plugin in self.points["reserve"]:
            status = await self._acall(plugin, "reserve", pod, state, pod, node_name)
            if not status.is_success():
                await self.run_unreserve(state, pod, node_name)
                return status
        return SUCCESS

    async def run_unreserve(self, state: CycleState, pod: Obj, node_name: str) -> None:
        for plugin in reversed(self.points["reserve"]):
            unreserve = getattr(plugin, "unreserve", None)
            if unreserve is None:
                continue
            try:
                await unreserve(state, pod, node_name)
            except Exception as exc:  # noqa: BLE001
                self._error(plugin, pod, "Unreserve", exc)

    async def run_permit(self, state: CycleState, pod: Obj, node_name: str) -> tuple[Status, float]:
        wait = 0.0
        for plugin in self.points["permit"]:
            try:
                status, timeout = await plugin.permit(state, pod, node_name)  # type: ignore[attr-defined]
            except Exception as exc:  # noqa: BLE001
                return self._error(plugin, pod, "Permit", exc), 0.0
            if status.code == Code.WAIT:
                wait = max(wait, float(timeout))
            elif not status.is_success():
                status.plugin = status.plugin or plugin.name
                return status, 0.0
        return (Status.wait() if wait else SUCCESS), wait

    async def run_pre_bind(self, state: CycleState, pod: Obj, node_name: str) -> Status:
        for plugin in self.points["preBind"]:
            status = await self._acall(plugin, "pre_bind", pod, state, pod, node_name)
            if not status.is_success():
                return status
        return SUCCESS

    async def run_bind(self, state: CycleState, pod: Obj, node_name: str) -> Status:
        for plugin in self.points["bind"]:
            status = await self._acall(plugin, "bind", pod, state, pod, node_name)
            if status.is_skip():
                continue
            return status
        return Status.error("no bind plugin bound the pod")

    async def run_post_bind(self, state: CycleState, pod: Obj, node_name: str) -> None:
        for plugin in self.points["postBind"]:
            await self._acall(plugin, "post_bind", pod, state, pod, node_name)

    # -- helpers -------------------------------------------------------------------------------

    def _call(self, plugin: Plugin, method: str, pod: Obj, *args: Any) -> Status:
        try:
            status = getattr(plugin, method)(*args)
        except Exception as exc:  # noqa: BLE001
            return self._error(plugin, pod, method, exc)
        if isinstance(status, Status) and not status.plugin and not status.is_success():
            status.plugin = plugin.name
        return status if isinstance(status, Status) else SUCCESS

    async def _acall(self, plugin: Plugin, method: str, pod: Obj, *args: Any) -> Status:
        try:
            status = await getattr(plugin, method)(*args)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001
            return self._error(plugin, pod, method, exc)
        if isinstance(status, Status) and not status.plugin and not status.is_success():
            status.plugin = plugin.name
        return status if isinstance(status, Status) else SUCCESS

    @staticmethod
    def _error(plugin: Plugin, pod: Obj, point: str, exc: BaseException) -> Status:
        log.error("plugin %s failed at %s for pod %s: %r", plugin.name, point, pod_name(pod), exc,
                  exc_info=exc)
        return Status.error(f"running {point} plugin {plugin.name!r}: {exc}", plugin.name)
