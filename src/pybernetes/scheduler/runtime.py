"""One profile's plugins, run point by point (upstream's frameworkruntime).

``Framework`` instantiates each plugin of a profile once (a plugin serving several points is
one object), keeps the ordered plugins of every extension point with their score weights,
and runs them as upstream does:

- PreFilter: every plugin; a Skip status skips that plugin's Filter for this pod; the node
  sets plugins return are intersected; the first rejection ends the cycle.
- Filter: plugins in order on one node; the first non-success status is the node's verdict.
- PreScore / Score: a Skip skips that plugin's Score; scores are normalized by the plugin
  (NormalizeScore) and summed with the profile's weights.
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
from typing import Any

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

log = logging.getLogger(__name__)

Obj = dict[str, Any]
POINTS = ("queueSort", "preEnqueue", "preFilter", "filter", "postFilter", "preScore", "score", "reserve",
          "permit", "preBind", "bind", "postBind")


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
        self._scores = [(p, p.score, getattr(p, "normalize_score", None), self.weights.get(p.name, 1))
                        for p in self.points["score"]]  # type: ignore[attr-defined]

    # -- the scheduling cycle ------------------------------------------------------------------

    def less(self, a: Any, b: Any) -> bool:
        return self.points["queueSort"][0].less(a, b)

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

    def run_filter(self, state: CycleState, pod: Obj, node: NodeInfo) -> Status:
        skip = state.skip_filter_plugins
        for name, filter_ in self._filters:
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

    def run_remove_pod(self, state: CycleState, pod: Obj, entry: Any, node: NodeInfo) -> Status:
        for plugin in self.points["preFilter"]:
            if plugin.name in state.skip_filter_plugins or not hasattr(plugin, "remove_pod"):
                continue
            status = self._call(plugin, "remove_pod", pod, state, pod, entry, node)
            if not status.is_success():
                return status
        return SUCCESS

    def run_pre_score(self, state: CycleState, pod: Obj, nodes: list[NodeInfo]) -> Status:
        for plugin in self.points["preScore"]:
            status = self._call(plugin, "pre_score", pod, state, pod, nodes)
            if status.is_skip():
                state.skip_score_plugins.add(plugin.name)
            elif not status.is_success():
                return status
        return SUCCESS

    def run_score(self, state: CycleState, pod: Obj, nodes: list[NodeInfo]) -> tuple[dict[str, int], Status]:
        """Total weighted score per node name."""
        names = [n.name for n in nodes]
        totals = dict.fromkeys(names, 0)
        skip = state.skip_score_plugins
        for plugin, score, normalize, weight in self._scores:
            if skip and plugin.name in skip:
                continue
            values: list[int] = []
            append = values.append
            try:
                for node in nodes:
                    value, status = score(state, pod, node)
                    if status.code:
                        status.plugin = status.plugin or plugin.name
                        return totals, status
                    append(value)
                if normalize is not None:
                    scores = dict(zip(names, values, strict=True))
                    status = normalize(state, pod, scores)
                    if status.code:
                        return totals, status
                    values = [scores[name] for name in names]
            except Exception as exc:  # noqa: BLE001
                return totals, self._error(plugin, pod, "Score", exc)
            if values and (min(values) < 0 or max(values) > MAX_NODE_SCORE):
                bad = next(v for v in values if not 0 <= v <= MAX_NODE_SCORE)
                return totals, Status.error(
                    f"plugin {plugin.name!r} returns an invalid score {bad}, it should in the range of "
                    f"[0, {MAX_NODE_SCORE}] after normalizing", plugin.name)
            for name, value in zip(names, values, strict=True):
                totals[name] += value * weight
        return totals, SUCCESS

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
