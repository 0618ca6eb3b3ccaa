"""The read side of the generic store: get, list and watch, served from the watch cache.

resourceVersion semantics (upstream v1.32): unset = most recent (the cache first catches up
with the store's current revision), "0" = any (the cache as it is), N = not older than N
(wait a few seconds for the cache, else 504), Exact N = the state at N from the cache's
history (410 when too old).  limit + continue give a consistent snapshot at the first page's
revision; label and field selectors filter on the cache's precomputed attributes.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import orjson

from pybernetes.apiserver import meta_semantics as ms
from pybernetes.apiserver.continue_token import decode_continue, encode_continue
from pybernetes.apiserver.store_types import ListOptions, ListPage
from pybernetes.machinery import selectors
from pybernetes.machinery.errors import (
    FieldError,
    StatusError,
    bad_request,
    expired,
    forbidden_field,
    invalid,
    not_found,
    not_supported,
    timeout,
)
from pybernetes.storage.cacher import KEY, REVISION, VALUE, CacheEvent, Entry, Predicate, make_entry
from pybernetes.storage.cachewatch import CacheWatcher
from pybernetes.storage.interface import CompactedError, FutureRevisionError

Obj = dict[str, Any]

# How long a read waits for the cache to reach a requested revision (upstream: 3 s).
WAIT_FOR_REVISION_SECONDS = 3.0
INITIAL_EVENTS_END = "k8s.io/initial-events-end"

CONTINUE_TOO_OLD = (
    "The provided continue parameter is too old to display a consistent list result. You can "
    "start a new list without the continue parameter, or use the continue token in this response "
    "to retrieve the remainder of the results. Continuing with the provided token results in an "
    "inconsistent list - objects that were created, modified, or deleted between the time the "
    "first chunk was returned and now may show up in the list."
)


def parse_revision(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise bad_request(f"invalid resource version: {text!r}") from None
    if value < 0:
        raise bad_request(f"invalid resource version: {text!r}")
    return value


def _invalid_list_options(errs: list[FieldError]) -> StatusError:
    err = invalid("ListOptions", "", errs, "meta.k8s.io")
    err.message = "ListOptions.meta.k8s.io" + err.message[len("ListOptions"):]
    return err


def validate_list_options(opts: ListOptions, *, watch: bool) -> None:
    """Upstream's ValidateListOptions (a 422 on ListOptions)."""
    errs: list[FieldError] = []
    match = opts.resource_version_match
    rv = opts.resource_version
    if match and not (watch and opts.send_initial_events):
        if match not in ("Exact", "NotOlderThan"):
            errs.append(not_supported("resourceVersionMatch", match, ["Exact", "NotOlderThan", ""]))
        if not rv:
            errs.append(
                forbidden_field(
                    "resourceVersionMatch",
                    "resourceVersionMatch is forbidden unless resourceVersion is provided",
                )
            )
        if opts.continue_token:
            errs.append(
                forbidden_field(
                    "resourceVersionMatch", "resourceVersionMatch is forbidden when continue is provided"
                )
            )
        if match == "Exact" and rv == "0":
            errs.append(
                forbidden_field(
                    "resourceVersionMatch",
                    'resourceVersionMatch "exact" is forbidden for resourceVersion "0"',
                )
            )
    if watch and opts.send_initial_events:
        if match != "NotOlderThan":
            errs.append(
                forbidden_field(
                    "resourceVersionMatch",
                    "sendInitialEvents requires setting resourceVersionMatch to NotOlderThan",
                )
            )
        if not opts.allow_bookmarks:
            errs.append(
                forbidden_field(
                    "allowWatchBookmarks", "sendInitialEvents requires setting allowWatchBookmarks to true"
                )
            )
    if errs:
        raise _invalid_list_options(errs)


class ReadSide:
    """Mixin of ResourceStore: needs ``res``, ``cacher``, ``storage``, ``stores``."""

    res: Any
    cacher: Any
    storage: Any
    stores: Any
    allowed_fields: frozenset[str]

    # -- helpers --------------------------------------------------------------------------

    def _not_found(self, name: str) -> StatusError:
        return not_found(self.res.resource, name, self.res.group)

    async def _catch_up(self, revision: int | None = None) -> None:
        """Wait until the cache has applied ``revision`` (default: the store's current)."""
        if revision is None:
            revision = await self.storage.current_revision()
        if self.cacher.revision >= revision:
            return
        try:
            await self.cacher.wait_for_revision(revision, WAIT_FOR_REVISION_SECONDS)
        except TimeoutError:
            raise timeout(
                f"Timeout: Too large resource version: {revision}, current: {self.cacher.revision}"
            ) from None

    def _predicate(self, label_text: str, field_text: str, name: str | None = None) -> Predicate:
        label_sel = selectors.parse_label_selector(label_text) if label_text else None
        field_sel = selectors.parse_field_selector(field_text) if field_text else None
        if field_sel is not None:
            for field in sorted(field_sel.field_names()):
                if field not in self.allowed_fields:
                    gv = self.res.api_version if self.res.group else f"/{self.res.version}"
                    raise bad_request(
                        f'Unable to find "{gv}, Resource={self.res.resource}" that match label '
                        f'selector "{label_text}", field selector "{field_text}": field label '
                        f"not supported: {field}"
                    )
        if label_sel is not None and label_sel.empty:
            label_sel = None
        if field_sel is not None and field_sel.empty:
            field_sel = None
        if label_sel is None and field_sel is None and name is None:
            return None

        def predicate(labels: dict[str, str], fields: dict[str, str]) -> bool:
            if name is not None and fields.get("metadata.name") != name:
                return False
            if label_sel is not None and not label_sel.matches(labels):
                return False
            return field_sel is None or field_sel.matches(fields)

        return predicate

    @staticmethod
    def decode_entry(entry: Entry) -> Obj:
        return orjson.loads(entry[VALUE])

    # -- get ------------------------------------------------------------------------------

    async def get(self, namespace: str | None, name: str, resource_version: str = "") -> Obj:
        key = ms.object_key(self.res, namespace, name)
        if resource_version == "":
            await self._catch_up()
        elif resource_version != "0":
            await self._catch_up(parse_revision(resource_version))
        entry = self.cacher.get(key)
        if entry is None:
            raise self._not_found(name)
        return orjson.loads(entry[VALUE])

    # -- list -----------------------------------------------------------------------------

    async def list(self, namespace: str | None, opts: ListOptions) -> ListPage:
        validate_list_options(opts, watch=False)
        predicate = self._predicate(opts.label_selector, opts.field_selector)
        prefix = ms.key_prefix(self.res, namespace)
        root = ms.key_root(self.res)
        rv, match = opts.resource_version, opts.resource_version_match
        limit = opts.limit if opts.limit and opts.limit > 0 else 0
        start_after: str | None = None
        revision = 0
        if opts.continue_token:
            if rv and rv != "0":
                raise _invalid_list_options(
                    [
                        forbidden_field(
                            "resourceVersion",
                            "specifying resource version is not allowed when using continue",
                        )
                    ]
                )
            revision, start_after = decode_continue(opts.continue_token, root)
            if not start_after.startswith(prefix):
                raise bad_request("continue key is not valid: key is not in the list's key space")
        elif rv == "":
            await self._catch_up()
        elif rv == "0":
            limit = 0  # served from the cache as it is, without pagination (as upstream)
        else:
            wanted = parse_revision(rv)
            if match == "Exact":
                await self._catch_up(wanted)
                revision = wanted
            else:
                await self._catch_up(wanted)
        try:
            result = self.cacher.list(
                prefix, predicate=predicate, limit=limit, start_after=start_after, revision=revision
            )
        except CompactedError as exc:
            if opts.continue_token:
                raise expired(CONTINUE_TOO_OLD) from None
            raise expired(f"too old resource version: {exc.requested} ({exc.compacted})") from None
        except FutureRevisionError as exc:
            raise timeout(
                f"Timeout: Too large resource version: {exc.requested}, current: {exc.current}"
            ) from None
        page = ListPage(entries=result.entries, resource_version=str(result.revision))
        if result.more and result.entries:
            page.continue_token = encode_continue(result.revision, result.entries[-1][KEY], root)
            page.remaining_item_count = result.remaining
        return page

    # -- watch ----------------------------------------------------------------------------

    def open_watch(self, namespace: str | None, opts: ListOptions, name: str | None = None) -> StoreWatch:
        """A watch to pull events from (``StoreWatch``).  Bad options raise here (a plain
        error answer); what goes wrong later (410, 504) is raised by ``start`` or ``pop``."""
        validate_list_options(opts, watch=True)
        predicate = self._predicate(opts.label_selector, opts.field_selector, name or None)
        prefix = ms.key_prefix(self.res, namespace)
        rv = opts.resource_version
        interval = self.stores.bookmark_interval if opts.allow_bookmarks else None
        stream = StoreWatch(self, prefix, predicate, interval)
        if opts.send_initial_events or rv in ("", "0"):
            stream.initial = True
            stream.catch_up = rv != "0"
            stream.start_revision = parse_revision(rv) if rv not in ("", "0") else None
            stream.initial_events_end = opts.send_initial_events
        else:
            stream.start_revision = parse_revision(rv)
        return stream

    def watch(
        self, namespace: str | None, opts: ListOptions, name: str | None = None
    ) -> AsyncIterator[CacheEvent]:
        return self._watch(namespace, opts, name)

    async def _watch(
        self, namespace: str | None, opts: ListOptions, name: str | None
    ) -> AsyncIterator[CacheEvent]:
        stream = self.open_watch(namespace, opts, name)
        try:
            await stream.start()
            while True:
                event = stream.pop()
                if event is not None:
                    yield event
                elif stream.done:
                    return
                else:
                    await stream.wait()
        finally:
            stream.close()


class StoreWatch:
    """One watch of a resource store, pulled by its consumer: ``await start()``, then
    ``pop()`` until None, then end if ``done`` or ``await wait()``; ``close()`` at the end.

    A watch that begins with the current state (resourceVersion unset or "0", or
    sendInitialEvents) first catches the cache up and takes its snapshot in ``start``; its
    objects come out as ADDED events (then the initial-events-end BOOKMARK when asked), and
    only then is the cache watcher opened, from the snapshot's revision.  No task or
    generator runs per watch, so thousands of open watches stay cheap.
    """

    __slots__ = ("store", "prefix", "predicate", "interval", "initial", "catch_up", "start_revision",
                 "initial_events_end", "_entries", "_index", "_marker", "_watcher", "_closed")

    def __init__(self, store: ReadSide, prefix: str, predicate: Predicate, interval: float | None) -> None:
        self.store = store
        self.prefix = prefix
        self.predicate = predicate
        self.interval = interval
        self.initial = False  # begin with the current state
        self.catch_up = False  # ... after the cache has caught up with start_revision (None: the store's)
        self.start_revision: int | None = None
        self.initial_events_end = False
        self._entries: list[Entry] | None = None
        self._index = 0
        self._marker: CacheEvent | None = None
        self._watcher: CacheWatcher | None = None
        self._closed = False

    async def start(self) -> None:
        if not self.initial:
            return
        store = self.store
        if self.catch_up:
            await store._catch_up(self.start_revision)
        snapshot = store.cacher.list(self.prefix, predicate=self.predicate)
        start = self.start_revision = snapshot.revision
        self._entries = snapshot.entries
        if self.initial_events_end:
            marker = {
                "kind": store.res.kind,
                "apiVersion": store.res.api_version,
                "metadata": {"resourceVersion": str(start), "annotations": {INITIAL_EVENTS_END: "true"}},
            }
            self._marker = CacheEvent("BOOKMARK", make_entry("", start, orjson.dumps(marker)), start)

    def pop(self) -> CacheEvent | None:
        """The next event, None when none is ready; raises a StatusError (410 Expired) when
        the watch's revision is or became too old for the cache."""
        if self._closed:
            return None
        entries = self._entries
        if entries is not None:
            index = self._index
            if index < len(entries):
                self._index = index + 1
                entry = entries[index]
                return CacheEvent("ADDED", entry, entry[REVISION])
            self._entries = None
            if self._marker is not None:
                marker, self._marker = self._marker, None
                return marker
        try:
            watcher = self._watcher
            if watcher is None:
                assert self.start_revision is not None, "start() first"
                watcher = self._watcher = self.store.cacher.open_watch(
                    self.prefix, self.start_revision, predicate=self.predicate,
                    bookmark_interval=self.interval)
            # The cacher makes BOOKMARKs only with an interval, given only when allowed.
            return watcher.pop()
        except CompactedError as exc:
            raise expired(f"too old resource version: {self.start_revision} ({exc.compacted})") from None

    @property
    def done(self) -> bool:
        """After ``pop`` returned None: whether the watch is over (closed, or the cache
        stopped)."""
        return self._closed or (self._watcher is not None and self._watcher.done)

    def wait(self) -> asyncio.Future[None]:
        """After ``pop`` returned None: a future done when ``pop`` may have more."""
        assert self._watcher is not None
        return self._watcher.wait()

    def close(self) -> None:
        """End the watch (idempotent): ``pop`` has no more, a pending ``wait`` is done."""
        self._closed = True
        self._entries = None
        watcher, self._watcher = self._watcher, None
        if watcher is not None:
            watcher.close()
