"""Watch streams: chunked HTTP, one JSON event per line, flushed per event.

Owns the wire form of a watch: ``{"type":"ADDED|MODIFIED|DELETED|BOOKMARK|ERROR",
"object":...}`` lines on a ``Transfer-Encoding: chunked`` response.  JSON events are built by
joining the cache entry's stored bytes (no decode); a Table watch (kubectl get -w) carries a
one-row Table per event (column definitions in the first only, as upstream), a metadata watch
a PartialObjectMetadata.  BOOKMARKs carry only kind, apiVersion and
metadata.resourceVersion (plus the initial-events-end annotation).  A StatusError raised by
the store's watch (410 Expired ...) becomes an ERROR event carrying the Status and ends
the stream.  The stream ends at timeoutSeconds (default: a random 30-60 minutes, as
upstream's min-request-timeout), when the client goes away, or when the server shuts down.

Fan-out is the hot path (one write, thousands of watchers): a plain JSON event is encoded
once for all its watchers, and an open stream costs its request's own objects plus a queue
and a small record here, so that a thousand streams add little for the garbage collector's
full passes to walk (see ``WatchServer``).
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import logging
import random
from typing import Any

import orjson
from aiohttp import web

from pybernetes.api.resource import ResourceDef
from pybernetes.apiserver import tables
from pybernetes.apiserver.negotiation import Target
from pybernetes.apiserver.requestinfo import RequestInfo
from pybernetes.apiserver.store import ListOptions, ResourceStore
from pybernetes.apiserver.store_read import StoreWatch
from pybernetes.machinery.errors import StatusError, internal_error
from pybernetes.storage.cacher import VALUE, CacheEvent

log = logging.getLogger(__name__)

MIN_REQUEST_TIMEOUT = 1800.0  # seconds; a watch without timeoutSeconds lasts 1x-2x this
# How often idle streams are checked for clients that went away; also how long an ended
# stream's handler may take to finish before it is cancelled.
LIVENESS_INTERVAL = 5.0
SHUTDOWN_GRACE = 5.0  # seconds the open streams get to end when the server stops
INITIAL_EVENTS_END = "k8s.io/initial-events-end"

_PREFIX = {
    "ADDED": b'{"type":"ADDED","object":',
    "MODIFIED": b'{"type":"MODIFIED","object":',
    "DELETED": b'{"type":"DELETED","object":',
}


def json_event(event: CacheEvent) -> bytes:
    return b"".join((_PREFIX[event.type], event.entry[VALUE], b"}\n"))


# The last plain JSON event encoded and its line: one event goes to every watcher of its
# resource in turn, so it is encoded once, not once per watcher.
_last: tuple[CacheEvent | None, bytes] = (None, b"")


def json_line(event: CacheEvent) -> bytes:
    """``json_event``, memoised for the event just encoded."""
    global _last
    last = _last
    if last[0] is event:
        return last[1]
    line = json_event(event)
    _last = (event, line)
    return line


def bookmark_object(res: ResourceDef, revision: int, initial_events_end: bool = False) -> dict[str, Any]:
    meta: dict[str, Any] = {"resourceVersion": str(revision)}
    if initial_events_end:
        meta["annotations"] = {INITIAL_EVENTS_END: "true"}
    return {"kind": res.kind, "apiVersion": res.api_version, "metadata": meta}


def error_event(err: StatusError) -> bytes:
    return orjson.dumps({"type": "ERROR", "object": err.to_status()}) + b"\n"


class EventEncoder:
    """Turns cache events into stream lines for one watch's negotiated target."""

    def __init__(self, res: ResourceDef, target: Target, include_object: str) -> None:
        self.res = res
        self.target = target
        self.include_object = include_object
        self.plain = target.kind == "json" and target.encoding == "json"
        self.first_table = True

    def encode(self, event: CacheEvent) -> bytes:
        if event.type == "BOOKMARK":
            obj = self._bookmark(event)
            return orjson.dumps({"type": "BOOKMARK", "object": obj}) + b"\n"
        if self.plain:
            return json_line(event)
        obj = orjson.loads(event.entry[VALUE])
        if self.target.kind == "table":
            converted = tables.to_table(self.res, [obj], include_object=self.include_object,
                                        version=self.target.version, with_columns=self.first_table)
            self.first_table = False
        elif self.target.kind == "partial":
            converted = tables.to_partial(obj, self.target.version)
        else:
            converted = obj
        return orjson.dumps({"type": event.type, "object": converted}) + b"\n"

    def _bookmark(self, event: CacheEvent) -> dict[str, Any]:
        end = False
        if event.entry[VALUE]:
            # The store may hand a ready bookmark object (initial-events-end annotation).
            with contextlib.suppress(orjson.JSONDecodeError):
                meta = orjson.loads(event.entry[VALUE]).get("metadata") or {}
                end = (meta.get("annotations") or {}).get(INITIAL_EVENTS_END) == "true"
        obj = bookmark_object(self.res, event.revision, end)
        if self.target.kind == "table":
            return {"kind": "Table", "apiVersion": f"meta.k8s.io/{self.target.version}",
                    "metadata": obj["metadata"], "rows": []}
        if self.target.kind == "partial":
            return tables.to_partial(obj, self.target.version)
        return obj


class _OpenWatch:
    """What the server keeps of one open watch stream: when it must end, its connection,
    and its handler's task (cancelled if ending the stream does not finish it in time)."""

    __slots__ = ("deadline", "stream", "request", "task", "ended_at", "finished")

    def __init__(self, deadline: float, stream: StoreWatch, request: web.Request,
                 task: asyncio.Task[Any] | None) -> None:
        self.deadline = deadline
        self.stream: StoreWatch | None = stream
        self.request: web.Request | None = request
        self.task = task
        self.ended_at: float | None = None  # when the server ended it
        self.finished = False  # its handler is done with it

    def __lt__(self, other: _OpenWatch) -> bool:  # the deadline heap's order
        return self.deadline < other.deadline


class WatchServer:
    """Serves watch requests; ends them at their timeout, when their client goes away, or
    when the server shuts down.

    A stream is served by its request handler alone, pulling events from its ``StoreWatch``
    (no task, generator or timer per stream).  One timer of the server's ends the streams
    whose deadline passed (a heap by deadline) and, every LIVENESS_INTERVAL, those whose
    client went away while idle; a stream whose handler does not finish within
    LIVENESS_INTERVAL of being ended (stuck writing to a client that stopped reading) has its
    task cancelled.
    """

    def __init__(self) -> None:
        self._open: dict[_OpenWatch, None] = {}
        self._deadlines: list[_OpenWatch] = []  # heap; finished entries are dropped lazily
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = 0.0
        self._next_liveness = 0.0
        self._closing = False
        self._drained: asyncio.Future[None] | None = None  # set when the last stream ends

    @property
    def active(self) -> int:
        return len(self._open)

    async def serve(self, request: web.Request, info: RequestInfo, store: ResourceStore,
                    opts: ListOptions, target: Target, include_object: str) -> web.StreamResponse:
        if opts.timeout_seconds is not None:
            timeout = float(opts.timeout_seconds)
        else:
            timeout = MIN_REQUEST_TIMEOUT * (1 + random.random())
        # Bad options fail here and are answered as a plain error response.  What fails once
        # the stream has begun (a too old resourceVersion: 410, as upstream's watch cache;
        # the cache not catching up: 504) is sent as an ERROR event on the 200 stream.
        stream = store.open_watch(info.namespace, opts, info.name)
        encoder = EventEncoder(info.res, target, include_object)
        response = web.StreamResponse(status=200, headers={"Content-Type": target.content_type})
        response.enable_chunked_encoding()
        try:
            await response.prepare(request)
        except BaseException:
            stream.close()
            raise
        if self._closing:
            stream.close()
            await _write_eof(response)
            return response
        loop = asyncio.get_running_loop()
        record = _OpenWatch(loop.time() + timeout, stream, request, asyncio.current_task())
        self._add(record, loop)
        try:
            await stream.start()
            while True:
                event = stream.pop()
                if event is None:
                    if stream.done:
                        break
                    await stream.wait()
                    continue
                await response.write(encoder.encode(event))
        except StatusError as err:
            with contextlib.suppress(Exception):
                await response.write(error_event(err))
        except ConnectionError:
            pass  # the client went away
        except Exception as exc:
            log.exception("watch stream failed")
            with contextlib.suppress(Exception):
                await response.write(error_event(internal_error(f"{type(exc).__name__}: {exc}")))
        finally:
            stream.close()
            self._remove(record)
        await _write_eof(response)
        return response

    # -- ending streams --------------------------------------------------------------------

    def _add(self, record: _OpenWatch, loop: asyncio.AbstractEventLoop) -> None:
        self._open[record] = None
        heapq.heappush(self._deadlines, record)
        if not self._next_liveness:
            self._next_liveness = loop.time() + LIVENESS_INTERVAL
        self._schedule(loop)

    def _remove(self, record: _OpenWatch) -> None:
        record.finished = True
        self._open.pop(record, None)
        record.task = record.request = record.stream = None  # it may stay in the heap a while
        if not self._open and self._drained is not None and not self._drained.done():
            self._drained.set_result(None)
        if len(self._deadlines) > 64 and len(self._deadlines) > 2 * len(self._open):
            self._deadlines = [r for r in self._deadlines if not r.finished]
            heapq.heapify(self._deadlines)

    def _schedule(self, loop: asyncio.AbstractEventLoop) -> None:
        """Arm the server's timer for the next deadline or liveness check."""
        if not self._open:
            return
        when = self._next_liveness
        if self._deadlines and self._deadlines[0].deadline < when:
            when = self._deadlines[0].deadline
        if self._timer is not None:
            if self._timer_at <= when:
                return
            self._timer.cancel()
        self._timer_at = when
        self._timer = loop.call_at(when, self._sweep, loop)

    def _sweep(self, loop: asyncio.AbstractEventLoop) -> None:
        self._timer = None
        now = loop.time()
        heap = self._deadlines
        while heap and heap[0].deadline <= now:
            record = heapq.heappop(heap)
            if not record.finished:
                self._end(record, now)
        if now >= self._next_liveness:
            self._next_liveness = now + LIVENESS_INTERVAL
            for record in list(self._open):
                if record.ended_at is not None:
                    if now - record.ended_at >= LIVENESS_INTERVAL and record.task is not None:
                        record.task.cancel()
                    continue
                transport = record.request.transport if record.request is not None else None
                if transport is None or transport.is_closing():
                    self._end(record, now)  # the client went away
        if self._open:
            self._schedule(loop)
        else:
            self._next_liveness = 0.0

    @staticmethod
    def _end(record: _OpenWatch, now: float) -> None:
        if record.ended_at is None:
            record.ended_at = now
            if record.stream is not None:
                record.stream.close()  # its handler wakes, finds the stream done and ends it

    async def shutdown(self) -> None:
        """End every open watch (their clients see the stream end and re-watch)."""
        self._closing = True
        if not self._open:
            return
        loop = asyncio.get_running_loop()
        self._drained = loop.create_future()
        now = loop.time()
        for record in list(self._open):
            self._end(record, now)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(self._drained), SHUTDOWN_GRACE)
        for record in list(self._open):  # stuck writing to clients that stopped reading
            if record.task is not None:
                record.task.cancel()


async def _write_eof(response: web.StreamResponse) -> None:
    with contextlib.suppress(Exception):
        await response.write_eof()
