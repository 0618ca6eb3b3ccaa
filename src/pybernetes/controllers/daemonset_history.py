"""A DaemonSet's template history in ControllerRevisions, the pure part (upstream
pkg/controller/daemon/update.go: constructHistory, snapshot, Match, dedupCurHistories,
cleanupHistory).

- A revision's ``data`` is the strategic-merge patch that restores the template:
  ``{"spec": {"template": {<template>, "$patch": "replace"}}}`` (``revision_data``); a revision
  is the DaemonSet's current one when its data is exactly that (``matches``).
- ``split_revisions``: the current revisions and the old ones; ``pick_current`` keeps the
  current revision with the highest number (the others are duplicates to remove, after their
  pods are relabelled with the kept hash); the current revision's number must exceed every
  old one (``next_revision_number``).
- ``revisions_to_prune``: beyond ``revisionHistoryLimit`` old revisions, the oldest whose
  hash no live pod carries.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import orjson

from pybernetes.controllers.history import (
    REVISION_HASH_LABEL,
    max_revision,
    new_revision,
    revision_number,
    sort_revisions,
)
from pybernetes.machinery.meta import clone

Obj = dict[str, Any]

DAEMONSET_KIND = {"apiVersion": "apps/v1", "kind": "DaemonSet"}
DEFAULT_HISTORY_LIMIT = 10


def revision_data(ds: Obj) -> Obj:
    template = clone(((ds.get("spec") or {}).get("template")) or {})
    template["$patch"] = "replace"
    return {"spec": {"template": template}}


def _canonical(data: Any) -> bytes:
    return orjson.dumps(data, option=orjson.OPT_SORT_KEYS)


def matches(ds: Obj, rev: Obj, data: Obj | None = None) -> bool:
    """Whether ``rev`` holds the DaemonSet's current template."""
    return _canonical(rev.get("data")) == _canonical(revision_data(ds) if data is None else data)


def revision_hash(rev: Obj) -> str:
    """The revision's hash label (its name when it has none, as upstream labels it)."""
    meta = rev.get("metadata") or {}
    return (meta.get("labels") or {}).get(REVISION_HASH_LABEL) or meta.get("name") or ""


def split_revisions(ds: Obj, revs: Iterable[Obj]) -> tuple[list[Obj], list[Obj]]:
    """(revisions holding the current template, the others)."""
    data = revision_data(ds)
    current: list[Obj] = []
    old: list[Obj] = []
    for rev in revs:
        (current if matches(ds, rev, data) else old).append(rev)
    return current, old


def pick_current(current: list[Obj]) -> tuple[Obj, list[Obj]]:
    """(the revision to keep: highest number, later ones winning ties; the duplicates)."""
    keep = current[0]
    for rev in current:
        if revision_number(rev) >= revision_number(keep):
            keep = rev
    return keep, [r for r in current if r is not keep]


def next_revision_number(old: Iterable[Obj]) -> int:
    return max_revision(old) + 1


def snapshot(ds: Obj, number: int, collision_count: int | None) -> Obj:
    """A new ControllerRevision of the DaemonSet's current template."""
    labels = dict((((ds.get("spec") or {}).get("template") or {}).get("metadata") or {}).get("labels") or {})
    return new_revision(ds, DAEMONSET_KIND, revision_data(ds), number, collision_count, labels)


def history_limit(ds: Obj) -> int:
    limit = (ds.get("spec") or {}).get("revisionHistoryLimit")
    return DEFAULT_HISTORY_LIMIT if limit is None else max(int(limit), 0)


def revisions_to_prune(ds: Obj, old: list[Obj], live_pods: Iterable[Obj]) -> list[Obj]:
    """The old revisions to delete to keep at most revisionHistoryLimit, oldest first,
    never one whose hash a live pod still carries."""
    to_kill = len(old) - history_limit(ds)
    if to_kill <= 0:
        return []
    live = {((p.get("metadata") or {}).get("labels") or {}).get(REVISION_HASH_LABEL) for p in live_pods}
    live.discard(None)
    out: list[Obj] = []
    for rev in sort_revisions(old):
        if len(out) >= to_kill:
            break
        if ((rev.get("metadata") or {}).get("labels") or {}).get(REVISION_HASH_LABEL) in live:
            continue
        out.append(rev)
    return out
