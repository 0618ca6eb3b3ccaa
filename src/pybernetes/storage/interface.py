"""The Storage protocol: a key space with one global, monotonic revision.

Keys look like upstream's (``/registry/<resource>/<namespace>/<name>``); values are opaque
bytes (the API server stores an object's JSON).  Every write gets the next revision of the
whole store; a key's ``mod_revision`` is what the API calls its ``resourceVersion``.

Every implementation (SQLite, memory, later etcd) passes the one contract suite in
``tests/unit/storage_contract.py``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Literal, Protocol


class StorageError(Exception):
    """Base class of storage failures."""


class KeyExistsError(StorageError):
    def __init__(self, key: str) -> None:
        super().__init__(f"key exists: {key}")
        self.key = key


class KeyNotFoundError(StorageError):
    def __init__(self, key: str) -> None:
        super().__init__(f"key not found: {key}")
        self.key = key


class RevisionConflictError(StorageError):
    """A compare-and-swap failed: the key's revision is not the expected one."""

    def __init__(self, key: str, expected: int, actual: int) -> None:
        super().__init__(f"revision conflict on {key}: expected {expected}, found {actual}")
        self.key = key
        self.expected = expected
        self.actual = actual


class CompactedError(StorageError):
    """The requested revision has been compacted away (the API's 410 Expired)."""

    def __init__(self, requested: int, compacted: int) -> None:
        super().__init__(
            f"required revision {requested} has been compacted (oldest available: {compacted + 1})"
        )
        self.requested = requested
        self.compacted = compacted


class FutureRevisionError(StorageError):
    """The requested revision is newer than the store's current revision."""

    def __init__(self, requested: int, current: int) -> None:
        super().__init__(f"revision {requested} is newer than the current revision {current}")
        self.requested = requested
        self.current = current


@dataclass(slots=True, frozen=True)
class KeyValue:
    key: str
    value: bytes
    mod_revision: int
    create_revision: int


@dataclass(slots=True, frozen=True)
class ListResult:
    items: list[KeyValue]
    revision: int  # the revision the list was read at
    more: bool  # True when the limit cut the list short


EventType = Literal["ADDED", "MODIFIED", "DELETED"]


@dataclass(slots=True, frozen=True)
class WatchEvent:
    type: EventType
    key: str
    value: bytes  # the new value; for DELETED, the last value before deletion
    revision: int  # the revision of this write (for DELETED: the deletion's revision)
    prev_value: bytes | None = None  # the value before this write (None for ADDED)


# A guaranteed_update mutation: given the current key (or None when absent and allowed),
# return the new value, or None to leave the key unchanged.  It may be async.
Mutation = Callable[[KeyValue | None], "bytes | None | Awaitable[bytes | None]"]


class Storage(Protocol):
    async def get(self, key: str) -> KeyValue | None:
        """The current value of key, or None."""

    async def list(
        self,
        prefix: str,
        *,
        limit: int = 0,
        start_after: str | None = None,
        revision: int = 0,
    ) -> ListResult:
        """Keys under prefix in key order, as of revision (0: current).

        ``start_after`` continues a paginated list after that key; ``limit`` 0 means all.
        Raises CompactedError for a compacted revision, FutureRevisionError for one not yet
        written.
        """

    async def create(self, key: str, value: bytes) -> KeyValue:
        """Create key; raises KeyExistsError if it exists."""

    async def update(self, key: str, value: bytes, *, expected_revision: int) -> KeyValue:
        """Replace key if its mod_revision is expected_revision.

        Raises KeyNotFoundError or RevisionConflictError.
        """

    async def delete(self, key: str, *, expected_revision: int | None = None) -> KeyValue:
        """Delete key (if at expected_revision when given); returns the deleted value with
        ``mod_revision`` = the deletion's revision.  Raises KeyNotFoundError or
        RevisionConflictError."""

    async def guaranteed_update(
        self, key: str, mutate: Mutation, *, create_if_missing: bool = False
    ) -> KeyValue | None:
        """Read-modify-write with compare-and-swap, retried until it applies.

        ``mutate`` gets the current KeyValue (None when missing and create_if_missing, else
        KeyNotFoundError is raised) and returns new bytes, or None for no change (then the
        current KeyValue is returned).  Exceptions from mutate propagate.
        """

    def watch(self, prefix: str, revision: int) -> AsyncIterator[WatchEvent]:
        """Every event under prefix with a revision greater than ``revision``, in order.

        Raises CompactedError (on first iteration) if revision is older than the compacted
        revision.  The iterator ends only when the consumer stops or the store closes.
        """

    async def compact(self, revision: int) -> None:
        """Forget history at and before revision (current values are kept)."""

    async def current_revision(self) -> int: ...

    async def compacted_revision(self) -> int: ...

    async def close(self) -> None: ...
