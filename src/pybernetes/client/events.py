"""The event recorder: core/v1 Events about objects, as ``kubectl describe`` shows them.

Owns client-go's record package for asyncio: ``EventRecorder.event(obj, type, reason,
message)`` never blocks the caller — it queues the event and one writer task (started
through a ``TaskSet``) sends it.  As client-go's EventCorrelator:

- identical events (same source, involved object, type, reason and message) are one Event
  whose ``count`` and ``lastTimestamp`` are bumped by a strategic-merge PATCH; if that
  Event is gone (404) it is created again;
- similar events (same but for the message) beyond 10 within 10 minutes are combined into
  one with the message "(combined from similar events): <latest message>";
- a spam filter allows each (source, involved object) a burst of 25 events, then one per
  5 minutes; events beyond are dropped.

An Event is named ``<object name>.<unix nanoseconds in hex>`` and lives in the object's
namespace (``default`` for cluster-scoped objects).
"""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from collections import OrderedDict
from typing import Any

from pybernetes.client.errors import ApiError, ConnectionFailed, NotFound
from pybernetes.client.flowcontrol import Backoff, TokenBucket
from pybernetes.client.rest import RestClient
from pybernetes.client.tasks import TaskSet
from pybernetes.machinery.meta import now_rfc3339

log = logging.getLogger(__name__)

Obj = dict[str, Any]
EVENTS = ("", "v1", "events")
NORMAL, WARNING = "Normal", "Warning"
CACHE_SIZE = 4096
SIMILAR_MAX = 10  # client-go's defaultAggregateMaxEvents
SIMILAR_INTERVAL = 600.0  # seconds (defaultAggregateIntervalInSeconds)
SPAM_BURST = 25
SPAM_QPS = 1 / 300
WRITE_ATTEMPTS = 5
COMBINED = "(combined from similar events): "


def object_reference(obj: Obj, field_path: str | None = None) -> Obj:
    """The ObjectReference of an object (kind, apiVersion, namespace, name, uid,
    resourceVersion)."""
    if obj.get("kind") and obj.get("metadata") is None and obj.get("name"):
        return dict(obj)  # already a reference
    meta = obj.get("metadata") or {}
    ref: Obj = {"kind": obj.get("kind") or "", "apiVersion": obj.get("apiVersion") or ""}
    for key in ("namespace", "name", "uid", "resourceVersion"):
        if meta.get(key):
            ref[key] = meta[key]
    if field_path:
        ref["fieldPath"] = field_path
    return ref


class _Lru(OrderedDict):
    def __init__(self, size: int) -> None:
        super().__init__()
        self.size = size

    def get_fresh(self, key: Any) -> Any:
        value = self.get(key)
        if value is not None:
            self.move_to_end(key)
        return value

    def put(self, key: Any, value: Any) -> None:
        self[key] = value
        self.move_to_end(key)
        while len(self) > self.size:
            self.popitem(last=False)


class EventRecorder:
    def __init__(self, client: RestClient, component: str, host: str | None = None, *,
                 spam_burst: int = SPAM_BURST, spam_qps: float = SPAM_QPS) -> None:
        self.client = client
        self.component = component
        self.host = socket.gethostname() if host is None else host
        self._spam_burst = spam_burst
        self._spam_qps = spam_qps
        self._queue: asyncio.Queue[Obj] | None = None
        self._tasks = TaskSet(f"events[{component}]")
        self._seen = _Lru(CACHE_SIZE)  # identical-event key -> (name, namespace, count, first)
        self._similar = _Lru(CACHE_SIZE)  # similar-event key -> (first seen, messages)
        self._spam = _Lru(CACHE_SIZE)  # source+object key -> TokenBucket
        self.written = 0
        self.dropped = 0

    # -- the caller's side -----------------------------------------------------------------

    def event(self, obj: Obj, type_: str, reason: str, message: str, *,
              field_path: str | None = None) -> None:
        """Record an event about ``obj`` (Normal or Warning); returns at once."""
        if type_ not in (NORMAL, WARNING):
            raise ValueError(f"event type must be Normal or Warning, not {type_!r}")
        if self._queue is None:
            self._queue = asyncio.Queue()
            self._tasks.start("writer", self._write_loop())
        ref = object_reference(obj, field_path)
        self._queue.put_nowait({"ref": ref, "type": type_, "reason": reason, "message": message,
                                "time": now_rfc3339(), "nanos": time.time_ns()})

    def eventf(self, obj: Obj, type_: str, reason: str, fmt: str, *args: Any) -> None:
        self.event(obj, type_, reason, fmt % args if args else fmt)

    async def flush(self) -> None:
        """Wait until every event recorded so far was written (or dropped)."""
        if self._queue is not None:
            await self._queue.join()

    async def stop(self) -> None:
        await self._tasks.stop()
        self._queue = None

    # -- correlation -----------------------------------------------------------------------

    def _event_object(self, item: Obj) -> tuple[Obj, tuple[Any, ...]] | None:
        ref, now = item["ref"], item["time"]
        source = (self.component, self.host)
        obj_key = (source, ref.get("kind"), ref.get("namespace"), ref.get("name"), ref.get("uid"),
                   ref.get("apiVersion"), ref.get("fieldPath"))
        bucket = self._spam.get_fresh(obj_key)
        if bucket is None:
            bucket = TokenBucket(self._spam_qps, self._spam_burst)
            self._spam.put(obj_key, bucket)
        if not bucket.try_accept():
            return None
        message = item["message"]
        similar_key = obj_key + (item["type"], item["reason"])
        loop_now = time.monotonic()
        first, messages = self._similar.get_fresh(similar_key) or (loop_now, set())
        if loop_now - first > SIMILAR_INTERVAL:
            first, messages = loop_now, set()
        messages.add(message)
        self._similar.put(similar_key, (first, messages))
        key = similar_key + (message,)
        if len(messages) >= SIMILAR_MAX:
            # One combined Event for all of them from now on, carrying the latest message.
            message = COMBINED + message
            key = similar_key + (COMBINED,)
        namespace = ref.get("namespace") or "default"
        event: Obj = {
            "apiVersion": "v1", "kind": "Event",
            "metadata": {"name": f"{ref.get('name') or ''}.{item['nanos']:x}", "namespace": namespace},
            "involvedObject": ref, "reason": item["reason"], "message": message,
            "source": {"component": self.component, **({"host": self.host} if self.host else {})},
            "firstTimestamp": now, "lastTimestamp": now, "count": 1, "type": item["type"],
            "eventTime": None, "reportingComponent": self.component,
            "reportingInstance": self.host,
        }
        return event, key

    # -- the writer ------------------------------------------------------------------------

    async def _write_loop(self) -> None:
        assert self._queue is not None
        queue = self._queue
        while True:
            item = await queue.get()
            try:
                made = self._event_object(item)
                if made is None:
                    self.dropped += 1
                    continue
                await self._write(*made)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("%s: writing an event failed", self._tasks.owner)
            finally:
                queue.task_done()

    async def _write(self, event: Obj, key: tuple[Any, ...]) -> None:
        previous = self._seen.get_fresh(key)
        if previous is not None:
            name, namespace, count, first = previous
            event["metadata"]["name"] = name
            event["count"] = count + 1
            event["firstTimestamp"] = first
        backoff = Backoff(0.1, 2.0)
        for attempt in range(WRITE_ATTEMPTS):
            try:
                written = await self._send(event, previous is not None)
                break
            except (ConnectionFailed, ApiError) as exc:
                if isinstance(exc, ApiError) and exc.code < 500 and exc.code != 429:
                    log.warning("%s: event %s rejected: %s", self._tasks.owner,
                                event["metadata"]["name"], exc)
                    self.dropped += 1
                    return
                if attempt == WRITE_ATTEMPTS - 1:
                    self.dropped += 1
                    log.warning("%s: giving up on an event: %s", self._tasks.owner, exc)
                    return
                await asyncio.sleep(backoff.next())
        meta = written.get("metadata") or {}
        self._seen.put(key, (meta.get("name") or event["metadata"]["name"], event["metadata"]["namespace"],
                             int(written.get("count") or event["count"]), event["firstTimestamp"]))
        self.written += 1

    async def _send(self, event: Obj, existing: bool) -> Obj:
        ns = event["metadata"]["namespace"]
        if existing:
            patch = {"count": event["count"], "lastTimestamp": event["lastTimestamp"],
                     "message": event["message"]}
            try:
                return await self.client.patch(EVENTS, event["metadata"]["name"], patch, ns,
                                               patch_type="strategic")
            except NotFound:
                pass  # it expired or was deleted: create it again
        return await self.client.create(EVENTS, event, ns)
