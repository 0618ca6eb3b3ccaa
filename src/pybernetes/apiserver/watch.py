"""Watch streams: chunked HTTP, one JSON event per line, flushed per event.

Owns the wire form of a watch: ``{"type":"ADDED|MODIFIED|DELETED|BOOKMARK|ERROR",
"object":...}`` lines on a ``Transfer-Encoding: chunked`` response.  JSON events are built by
joining the cache entry's stored bytes (no decode); a Table watch (kubectl get -w) carries a
one-row Table per event (column definitions in the first only, as upstream), a metadata watch
a PartialObjectMetadata.  BOOKMARKs carry only kind, apiVersion and
metadata.resourceVersion (plus the initial-events-end annotation).  A StatusError raised by
the store's iterator (410 Expired ...) becomes an ERROR event carrying the Status and ends
the stream.  The stream ends at timeoutSeconds (default: a random 30-60 minutes, as
upstream's min-request-timeout), when the client goes away, or when the server shuts down.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from typing import Any

import orjson
from aiohttp import web

from pybernetes.api.resource import ResourceDef
from pybernetes.apiserver import tables
from pybernetes.apiserver.negotiation import Target
from pybernetes.apiserver.requestinfo import RequestInfo
from pybernetes.apiserver.store import ListOptions, ResourceStore
from pybernetes.machinery.errors import StatusError, internal_error
from pybernetes.storage.cacher import CacheEvent

log = logging.getLogger(__name__)

MIN_REQUEST_TIMEOUT = 1800.0  # seconds; a watch without timeoutSeconds lasts 1x-2x this
# How often an idle stream checks that its client is still connected.
LIVENESS_INTERVAL = 5.0
INITIAL_EVENTS_END = "k8s.io/initial-events-end"

_PREFIX = {
    "ADDED": b'{"type":"ADDED","object":',
    "MODIFIED": b'{"type":"MODIFIED","object":',
    "DELETED": b'{"type":"DELETED","object":',
}


def json_event(event: CacheEvent) -> bytes:
    return b"".join((_PREFIX[event.type], event.entry.value, b"}\n"))


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
            return json_event(event)
        obj = orjson.loads(event.entry.value)
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
        if event.entry.value:
            # The store may hand a ready bookmark object (initial-events-end annotation).
            with contextlib.suppress(orjson.JSONDecodeError):
                meta = orjson.loads(event.entry.value).get("metadata") or {}
                end = (meta.get("annotations") or {}).get(INITIAL_EVENTS_END) == "true"
        obj = bookmark_object(self.res, event.revision, end)
        if self.target.kind == "table":
            return {"kind": "Table", "apiVersion": f"meta.k8s.io/{self.target.version}",
                    "metadata": obj["metadata"], "rows": []}
        if self.target.kind == "partial":
            return tables.to_partial(obj, self.target.version)
        return obj


class WatchServer:
    """Serves watch requests and ends them all when the server shuts down."""

    def __init__(self) -> None:
        self._active: set[asyncio.Task[None]] = set()
        self._closing = False

    @property
    def active(self) -> int:
        return len(self._active)

    async def serve(self, request: web.Request, info: RequestInfo, store: ResourceStore,
                    opts: ListOptions, target: Target, include_object: str) -> web.StreamResponse:
        if opts.timeout_seconds is not None:
            timeout = float(opts.timeout_seconds)
        else:
            timeout = MIN_REQUEST_TIMEOUT * (1 + random.random())
        iterator = store.watch(info.namespace, opts, info.name).__aiter__()
        # Take the first step now: a bad selector or option fails here and is answered as a
        # plain error response.  Only a too old resourceVersion (410) is sent as an ERROR
        # event on a 200 stream, as upstream's watch cache does.
        first: asyncio.Future[CacheEvent] = asyncio.ensure_future(iterator.__anext__())
        await asyncio.sleep(0)
        if first.done() and not first.cancelled():
            exc = first.exception()
            if isinstance(exc, StatusError) and exc.code != 410:
                raise exc
        encoder = EventEncoder(info.res, target, include_object)
        response = web.StreamResponse(status=200, headers={"Content-Type": target.content_type})
        response.enable_chunked_encoding()
        try:
            await response.prepare(request)
        except BaseException:
            first.cancel()
            await self._close(iterator, None)
            raise
        if self._closing:
            first.cancel()
            await self._close(iterator, response)
            return response
        pump = asyncio.create_task(self._pump(first, iterator, encoder, response))
        self._active.add(pump)
        deadline = time.monotonic() + timeout
        try:
            while not pump.done():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                await asyncio.wait((pump,), timeout=min(remaining, LIVENESS_INTERVAL))
                transport = request.transport
                if transport is None or transport.is_closing():
                    break  # the client went away
        finally:
            self._active.discard(pump)
            if not pump.done():
                pump.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await pump
        await self._close(iterator, response)
        return response

    async def _pump(self, first: asyncio.Future[CacheEvent], iterator: Any, encoder: EventEncoder,
                    response: web.StreamResponse) -> None:
        try:
            try:
                event = await first
            except StopAsyncIteration:
                return
            await response.write(encoder.encode(event))
            async for event in iterator:
                await response.write(encoder.encode(event))
        except StatusError as err:
            await response.write(error_event(err))
        except (ConnectionError, asyncio.CancelledError):
            raise
        except Exception as exc:
            log.exception("watch stream failed")
            with contextlib.suppress(Exception):
                await response.write(error_event(internal_error(f"{type(exc).__name__}: {exc}")))

    @staticmethod
    async def _close(iterator: Any, response: web.StreamResponse | None) -> None:
        aclose = getattr(iterator, "aclose", None)
        if aclose is not None:
            with contextlib.suppress(Exception):
                await aclose()
        if response is not None:
            with contextlib.suppress(Exception):
                await response.write_eof()

    async def shutdown(self) -> None:
        """End every open watch (their clients see the stream end and re-watch)."""
        self._closing = True
        for task in list(self._active):
            task.cancel()
        if self._active:
            await asyncio.wait(list(self._active), timeout=5)
