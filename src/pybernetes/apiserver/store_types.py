"""The generic store's request and result types (shared by the store and the HTTP layer).

Re-exported by ``pybernetes.apiserver.store``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pybernetes.storage.cacher import Entry

Obj = dict[str, Any]


@dataclass(slots=True)
class WriteOptions:
    """Query parameters of a write (create/update/patch/delete)."""

    dry_run: bool = False
    field_manager: str = ""
    # fieldValidation: "Strict" | "Warn" | "Ignore" (upstream default: Warn).  The store
    # checks unknown/duplicate fields only on objects it decodes itself (patches); the HTTP
    # layer checks request bodies and passes what it found in ``warnings``.
    field_validation: str = "Warn"
    warnings: list[str] = field(default_factory=list)  # out: Warning headers to send


@dataclass(slots=True)
class ListOptions:
    label_selector: str = ""
    field_selector: str = ""
    limit: int = 0
    continue_token: str = ""
    resource_version: str = ""  # "" | "0" | "<n>"
    resource_version_match: str = ""  # "" | "NotOlderThan" | "Exact"
    # watch only:
    allow_bookmarks: bool = False
    send_initial_events: bool = False
    timeout_seconds: int | None = None


@dataclass(slots=True)
class ListPage:
    entries: list[Entry]  # each entry[VALUE] is the object's JSON bytes with resourceVersion set
    resource_version: str
    continue_token: str = ""
    remaining_item_count: int | None = None


@dataclass(slots=True)
class DeleteResult:
    obj: Obj  # the object as deleted, or as it now stands (deletionTimestamp set)
    deleted: bool  # True: gone from the store; False: still there (finalizers / grace)
    # When the object is gone and the resource answers DELETE with a Status (upstream's
    # ReturnDeletedObject false: most resources), that Status {status: Success, details}.
    status: Obj | None = None
