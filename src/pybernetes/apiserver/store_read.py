"""The read side of the generic store: get, list and watch, served from the watch cache.

resourceVersion semantics (upstream v1.32): unset = most recent (the cache first catches up
with the store's current revision), "0" = any (the cache as it is), N = not older than N
(wait a few seconds for the cache, else 504), Exact N = the state at N from the cache's
history (410 when too old).  limit + continue give a consistent snapshot at the first page's
revision; label and field selectors filter on the cache's precomputed attributes.
"""

from __future__ import annotations

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
from pybernetes.storage.cacher import CacheEvent, Entry, Predicate
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
        return orjson.loads(entry.value)

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
        return orjson.loads(entry.value)

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
            page.continue_token = encode_continue(result.revision, result.entries[-1].key, root)
            page.remaining_item_count = result.remaining
        return page

    # -- watch ----------------------------------------------------------------------------

    def watch(
        self, namespace: str | None, opts: ListOptions, name: str | None = None
    ) -> AsyncIterator[CacheEvent]:
        return self._watch(namespace, opts, name)

    async def _watch(
        self, namespace: str | None, opts: ListOptions, name: str | None
    ) -> AsyncIterator[CacheEvent]:
        validate_list_options(opts, watch=True)
        predicate = self._predicate(opts.label_selector, opts.field_selector, name or None)
        prefix = ms.key_prefix(self.res, namespace)
        rv = opts.resource_version
        interval = self.stores.bookmark_interval if opts.allow_bookmarks else None
        initial = opts.send_initial_events or rv in ("", "0")
        if initial:
            if rv == "":
                await self._catch_up()
            elif rv != "0":
                await self._catch_up(parse_revision(rv))
            snapshot = self.cacher.list(prefix, predicate=predicate)
            start = snapshot.revision
            for entry in snapshot.entries:
                yield CacheEvent("ADDED", entry, entry.revision)
            if opts.send_initial_events:
                marker = {
                    "kind": self.res.kind,
                    "apiVersion": self.res.api_version,
                    "metadata": {
                        "resourceVersion": str(start),
                        "annotations": {INITIAL_EVENTS_END: "true"},
                    },
                }
                yield CacheEvent("BOOKMARK", Entry("", start, orjson.dumps(marker), {}, {}), start)
        else:
            start = parse_revision(rv)
        try:
            async for event in self.cacher.watch(
                prefix, start, predicate=predicate, bookmark_interval=interval
            ):
                if event.type == "BOOKMARK" and not opts.allow_bookmarks:
                    continue
                yield event
        except CompactedError as exc:
            raise expired(f"too old resource version: {start} ({exc.compacted})") from None
