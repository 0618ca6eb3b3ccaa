"""Shared informers: list then watch one resource, keep a local cache, notify handlers.

Owns client-go's reflector + shared informer + factory, for asyncio:

- ``SharedInformer`` lists the resource (in pages), fills its ``Indexer``, then watches
  from the list's resourceVersion with allowWatchBookmarks (bookmarks only move the
  resourceVersion on) and a server timeout of 1x-2x ``min_watch_timeout`` (renewed from the
  last resourceVersion when the server ends the stream).  A 410 Expired relists at once; a
  broken connection or 429 re-watches after a backoff; other errors relist after a backoff.
  A relist reconciles the cache: new objects are adds, known ones updates (as client-go's
  Replaced deltas), vanished ones deletes with a ``DeletedFinalStateUnknown`` tombstone.
- Handlers (on_add(obj), on_update(old, new), on_delete(obj | tombstone)) each get their
  own ordered queue and task, so a slow handler delays no one else; one added late first
  gets an add for every cached object.  A handler's resync period replays every cached
  object to it as on_update(obj, obj).  Handlers may be plain functions or coroutines.
- ``SharedInformerFactory`` shares one informer per (resource, namespace, selectors).

Every task is started through a ``TaskSet``; ``stop()`` cancels them all in order.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import random
from collections.abc import Callable
from typing import Any

from pybernetes.client.cache import DeletedFinalStateUnknown, Indexer, IndexFunc
from pybernetes.client.discovery import ApiResource, parse_gvr
from pybernetes.client.errors import ApiError, ConnectionFailed, Expired, TooManyRequests
from pybernetes.client.flowcontrol import Backoff
from pybernetes.client.rest import ResourceArg, RestClient
from pybernetes.client.tasks import TaskSet

log = logging.getLogger(__name__)

Obj = dict[str, Any]
Handler = Callable[..., Any]
MIN_WATCH_TIMEOUT = 300.0  # seconds (client-go's reflector: 5 minutes, times 1..2)
PAGE_SIZE = 500


class _Listener:
    """One registered handler: its notifications queue, resync schedule and sync state."""

    def __init__(self, on_add: Handler | None, on_update: Handler | None,
                 on_delete: Handler | None, resync_period: float) -> None:
        self.on_add = on_add
        self.on_update = on_update
        self.on_delete = on_delete
        self.resync_period = resync_period
        self.next_resync = 0.0
        self.queue: asyncio.Queue[tuple[Handler | None, tuple[Any, ...]]] = asyncio.Queue()
        self._pending_initial = 0
        self._synced = asyncio.Event()

    def push(self, func: Handler | None, *args: Any, initial: bool = False) -> None:
        if func is None:
            return
        if initial:
            self._pending_initial += 1
        self.queue.put_nowait((func, args) if not initial else (func, args + (_INITIAL,)))

    def mark_initial_done(self) -> None:
        self.queue.put_nowait((None, (_INITIAL_END,)))

    def has_synced(self) -> bool:
        return self._synced.is_set()

    async def wait_synced(self) -> None:
        await self._synced.wait()

    async def run(self) -> None:
        while True:
            func, args = await self.queue.get()
            if func is None:
                self._synced.set()
                continue
            if args and args[-1] is _INITIAL:
                args = args[:-1]
            try:
                result = func(*args)
                if inspect.isawaitable(result):
                    await result
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("informer event handler %r failed", func)


_INITIAL = object()
_INITIAL_END = object()


class SharedInformer:
    def __init__(self, client: RestClient, res: ResourceArg, *, namespace: str | None = None,
                 label_selector: str | None = None, field_selector: str | None = None,
                 resync_period: float = 0.0, indexers: dict[str, IndexFunc] | None = None,
                 min_watch_timeout: float = MIN_WATCH_TIMEOUT, page_size: int = PAGE_SIZE,
                 backoff: Backoff | None = None) -> None:
        self.client = client
        self._res_arg = res
        self.namespace = namespace
        self.label_selector = label_selector
        self.field_selector = field_selector
        self.default_resync = resync_period
        self.min_watch_timeout = min_watch_timeout
        self.page_size = page_size
        self._backoff = backoff or Backoff(initial=0.8, cap=30.0, jitter=1.0)
        self.indexer = Indexer(indexers)
        self.resource: ApiResource | None = None
        self.last_sync_resource_version: str = ""
        self._listeners: list[_Listener] = []
        self._synced = asyncio.Event()
        self._tasks = TaskSet(f"informer[{self._describe()}]")
        self._started = False
        self._resync_wakeup = asyncio.Event()
        self.lists = 0  # how many times it listed (for tests and metrics)
        self.watches = 0
        self._watch_events = 0

    def _describe(self) -> str:
        res = self._res_arg
        if isinstance(res, str):
            return res
        if isinstance(res, tuple):
            return "/".join(x for x in res if x)
        return f"{res.resource}.{res.group}" if res.group else res.resource

    # -- handlers --------------------------------------------------------------------------

    def add_event_handler(self, on_add: Handler | None = None, on_update: Handler | None = None,
                          on_delete: Handler | None = None, *,
                          resync_period: float | None = None) -> _Listener:
        """Register handlers; they run in order of events, on the handler's own task."""
        period = self.default_resync if resync_period is None else resync_period
        listener = _Listener(on_add, on_update, on_delete, period)
        self._listeners.append(listener)
        if self._started:
            loop = asyncio.get_running_loop()
            for obj in self.indexer.list():
                listener.push(listener.on_add, obj, initial=True)
            if self._synced.is_set():
                listener.mark_initial_done()
            self._tasks.start(f"handler-{len(self._listeners)}", listener.run())
            if period > 0:
                listener.next_resync = loop.time() + period
                self._resync_wakeup.set()
        return listener

    def remove_event_handler(self, listener: _Listener) -> None:
        if listener in self._listeners:
            self._listeners.remove(listener)
            listener.on_add = listener.on_update = listener.on_delete = None

    def add_indexers(self, indexers: dict[str, IndexFunc]) -> None:
        self.indexer.add_indexers(indexers)

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> None:
        if self._started:
            return
        self._started = True
        loop = asyncio.get_running_loop()
        for i, listener in enumerate(self._listeners, 1):
            self._tasks.start(f"handler-{i}", listener.run())
            if listener.resync_period > 0:
                listener.next_resync = loop.time() + listener.resync_period
        self._tasks.start("reflector", self._reflect())
        self._tasks.start("resync", self._resync_loop())

    async def stop(self) -> None:
        await self._tasks.stop()

    @property
    def started(self) -> bool:
        return self._started

    def has_synced(self) -> bool:
        return self._synced.is_set()

    async def wait_for_sync(self, within: float | None = None) -> bool:
        """Whether the first list reached the cache and every handler within ``within``
        seconds (None: however long it takes)."""
        try:
            async with asyncio.timeout(within):
                await self._synced.wait()
                for listener in list(self._listeners):
                    await listener.wait_synced()
        except TimeoutError:
            return False
        return True

    # -- the reflector ---------------------------------------------------------------------

    async def _reflect(self) -> None:
        need_list = True
        expired_in_a_row = 0
        while True:
            try:
                if self.resource is None:
                    self.resource = await self.client.resource(self._res_arg)
                if need_list:
                    await self._list_and_replace()
                    need_list = False
                await self._watch()
                expired_in_a_row = 0
            except asyncio.CancelledError:
                raise
            except Expired as exc:
                log.info("%s: %s; relisting", self._tasks.owner, exc.message)
                need_list = True
                expired_in_a_row = 1 if self._watch_events else expired_in_a_row + 1
                if expired_in_a_row > 1:  # relisting did not help: do not spin
                    await asyncio.sleep(self._backoff.next())
            except (ConnectionFailed, TooManyRequests) as exc:
                delay = self._backoff.next()
                log.info("%s: %s; retrying in %.2fs", self._tasks.owner, exc, delay)
                await asyncio.sleep(delay)
            except (ApiError, Exception) as exc:
                delay = self._backoff.next()
                log.warning("%s: %r; relisting in %.2fs", self._tasks.owner, exc, delay)
                need_list = True
                await asyncio.sleep(delay)

    def _params(self) -> dict[str, Any]:
        return {"label_selector": self.label_selector, "field_selector": self.field_selector}

    async def _list_and_replace(self) -> None:
        assert self.resource is not None
        items: list[Obj] = []
        token: str | None = None
        while True:
            try:
                page = await self.client.list(self.resource, self.namespace, limit=self.page_size,
                                              continue_=token, **self._params())
            except Expired:
                if token is None:
                    raise
                items, token = [], None  # the continue token expired: start again
                continue
            items.extend(page.get("items") or [])
            meta = page.get("metadata") or {}
            token = meta.get("continue")
            if not token:
                rv = meta.get("resourceVersion") or ""
                break
        self.lists += 1
        self._replace(items, rv)

    def _replace(self, items: list[Obj], rv: str) -> None:
        api_version, kind = self.resource.api_version, self.resource.kind  # type: ignore[union-attr]
        indexer = self.indexer
        new_keys = set()
        for obj in items:
            obj.setdefault("apiVersion", api_version)  # list items carry no apiVersion/kind
            obj.setdefault("kind", kind)
            new_keys.add(indexer.key_func(obj))
        for key in indexer.list_keys():
            if key not in new_keys:
                old = indexer.delete(key)
                assert old is not None
                self._notify("delete", DeletedFinalStateUnknown(key, old))
        first = not self._synced.is_set()
        for obj in items:
            old = indexer.update(obj)
            if old is None:
                self._notify("add", obj, initial=first)
            else:
                self._notify("update", old, obj)
        self.last_sync_resource_version = rv
        if first:
            for listener in self._listeners:
                listener.mark_initial_done()
            self._synced.set()

    async def _watch(self) -> None:
        """One watch, from the last resourceVersion, until the server ends it."""
        assert self.resource is not None
        timeout = int(self.min_watch_timeout * (1 + random.random()))
        self.watches += 1
        self._watch_events = 0
        async with self.client.watch(self.resource, self.namespace,
                                     resource_version=self.last_sync_resource_version,
                                     allow_watch_bookmarks=True, timeout_seconds=max(timeout, 1),
                                     **self._params()) as stream:
            async for etype, obj in stream:
                self._apply(etype, obj)
                self._backoff.reset()
                self._watch_events += 1

    def _apply(self, etype: str, obj: Obj) -> None:
        rv = (obj.get("metadata") or {}).get("resourceVersion")
        if etype == "BOOKMARK":
            if rv:
                self.last_sync_resource_version = rv
            return
        if etype in ("ADDED", "MODIFIED"):
            old = self.indexer.update(obj)
            if old is None:
                self._notify("add", obj)
            else:
                self._notify("update", old, obj)
        elif etype == "DELETED":
            old = self.indexer.delete(obj)
            self._notify("delete", obj if old is None or obj.get("metadata") else old)
        else:
            log.warning("%s: unknown watch event type %r", self._tasks.owner, etype)
        if rv:
            self.last_sync_resource_version = rv

    def _notify(self, what: str, *args: Any, initial: bool = False) -> None:
        for listener in self._listeners:
            func = {"add": listener.on_add, "update": listener.on_update,
                    "delete": listener.on_delete}[what]
            listener.push(func, *args, initial=initial)

    # -- resync ------------------------------------------------------------------------------

    async def _resync_loop(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            periodic = [lst for lst in self._listeners if lst.resync_period > 0]
            self._resync_wakeup.clear()
            if not periodic:
                await self._resync_wakeup.wait()
                continue
            due_at = min(lst.next_resync for lst in periodic)
            delay = due_at - loop.time()
            if delay > 0:
                try:
                    async with asyncio.timeout(delay):
                        await self._resync_wakeup.wait()
                    continue  # a handler came or went: compute again
                except TimeoutError:
                    pass
            now = loop.time()
            if not self._synced.is_set():
                for lst in periodic:
                    lst.next_resync = now + lst.resync_period
                continue
            objs = self.indexer.list()
            for lst in periodic:
                if lst.next_resync <= now:
                    lst.next_resync = now + lst.resync_period
                    for obj in objs:
                        lst.push(lst.on_update, obj, obj)


def _resource_key(res: ResourceArg) -> tuple[str, str, str]:
    if isinstance(res, str):
        return parse_gvr(res)
    if isinstance(res, tuple):
        return res
    return (res.group, res.version, res.resource)


class SharedInformerFactory:
    """One informer per (resource, namespace, label selector, field selector)."""

    def __init__(self, client: RestClient, *, default_resync: float = 0.0,
                 namespace: str | None = None, min_watch_timeout: float = MIN_WATCH_TIMEOUT) -> None:
        self.client = client
        self.default_resync = default_resync
        self.namespace = namespace
        self.min_watch_timeout = min_watch_timeout
        self._informers: dict[tuple[Any, ...], SharedInformer] = {}

    def informer(self, res: ResourceArg, *, namespace: str | None = None,
                 label_selector: str | None = None, field_selector: str | None = None,
                 resync_period: float | None = None,
                 indexers: dict[str, IndexFunc] | None = None) -> SharedInformer:
        ns = namespace if namespace is not None else self.namespace
        key = (_resource_key(res), ns, label_selector, field_selector)
        inf = self._informers.get(key)
        if inf is None:
            inf = SharedInformer(
                self.client, res, namespace=ns, label_selector=label_selector,
                field_selector=field_selector,
                resync_period=self.default_resync if resync_period is None else resync_period,
                indexers=indexers, min_watch_timeout=self.min_watch_timeout)
            self._informers[key] = inf
        elif indexers:
            missing = {k: v for k, v in indexers.items() if k not in inf.indexer._funcs}
            if missing:
                inf.add_indexers(missing)
        return inf

    def start(self) -> None:
        for inf in self._informers.values():
            inf.start()

    async def wait_for_cache_sync(self, within: float | None = None) -> bool:
        results = await asyncio.gather(*(inf.wait_for_sync(within)
                                         for inf in self._informers.values() if inf.started))
        return all(results)

    async def shutdown(self) -> None:
        for inf in reversed(list(self._informers.values())):
            await inf.stop()
