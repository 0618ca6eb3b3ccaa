"""Adoption and release of dependents by a controller (upstream's ControllerRefManager).

``claim`` decides, for the objects a controller could own (pods of a ReplicaSet, ReplicaSets
of a Deployment, ControllerRevisions of a DaemonSet ...), which it owns after this sync:

- owned by it (controller reference with its uid) and matching its selector: kept;
- owned by it but no longer matching: released (its controller reference removed);
- owned by no controller, matching, not being deleted: adopted (a controller reference
  added) — unless the owner itself is being deleted, or ``can_adopt`` raises (upstream
  re-reads the owner from the API to be sure it still exists with the same uid);
- owned by another controller: ignored.

Adoption and release are strategic-merge patches of ``metadata.ownerReferences`` with the
dependent's uid as a precondition, so a dependent replaced under the same name is never
touched.  A dependent that vanished meanwhile (404) is simply not claimed.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from pybernetes.client.errors import Invalid, NotFound
from pybernetes.client.rest import ResourceArg, RestClient
from pybernetes.controllers.podutil import controller_ref, new_controller_ref, selector_matches
from pybernetes.machinery.meta import is_being_deleted

log = logging.getLogger(__name__)

Obj = dict[str, Any]


def owners_of_update(old: Obj, cur: Obj, resolve: Callable[[str, Obj | None], Obj | None],
                     matching: Callable[[Obj], list[Obj]]) -> tuple[Obj | None, Obj | None, list[Obj]]:
    """Which owners a dependent's update concerns (upstream's updatePod/updateHistory):
    (the previous controller when the controller reference moved, the current controller,
    and — for an orphan whose labels or reference changed — every owner whose selector may
    now adopt it).  ``resolve(namespace, ref)`` finds a controller from a reference (None
    when it does not exist or has another uid); ``matching(obj)`` the owners selecting it."""
    old_meta, cur_meta = old.get("metadata") or {}, cur.get("metadata") or {}
    ns = cur_meta.get("namespace") or ""
    cur_ref, old_ref = controller_ref(cur), controller_ref(old)
    ref_changed = (cur_ref or {}).get("uid") != (old_ref or {}).get("uid")
    previous = resolve(ns, old_ref) if ref_changed and old_ref is not None else None
    if cur_ref is not None:
        return previous, resolve(ns, cur_ref), []
    labels_changed = (old_meta.get("labels") or {}) != (cur_meta.get("labels") or {})
    return previous, None, matching(cur) if labels_changed or ref_changed else []


def classify(owner: Obj, selector: Obj | None, candidates: list[Obj]
             ) -> tuple[list[Obj], list[Obj], list[Obj]]:
    """(kept, to adopt, to release) — the pure part of ``claim``."""
    uid = (owner.get("metadata") or {}).get("uid")
    kept: list[Obj] = []
    adopt: list[Obj] = []
    release: list[Obj] = []
    owner_deleting = is_being_deleted(owner)
    for obj in candidates:
        labels = (obj.get("metadata") or {}).get("labels") or {}
        ref = controller_ref(obj)
        matches = selector_matches(selector, labels)
        if ref is not None:
            if ref.get("uid") != uid:
                continue
            if matches:
                kept.append(obj)
            elif not owner_deleting:
                release.append(obj)
            continue
        if matches and not owner_deleting and not is_being_deleted(obj):
            adopt.append(obj)
    return kept, adopt, release


async def claim(client: RestClient, res: ResourceArg, owner: Obj, owner_kind_ref: Obj,
                selector: Obj | None, candidates: list[Obj], *,
                can_adopt: Callable[[], Awaitable[None]] | None = None) -> list[Obj]:
    """The candidates ``owner`` owns after adopting and releasing (see the module doc).

    ``owner_kind_ref`` gives ``apiVersion`` and ``kind`` of the owner.  Adopted objects are
    returned as the API answered the patch."""
    kept, adopt, release = classify(owner, selector, candidates)
    owner_uid = (owner.get("metadata") or {}).get("uid")
    if adopt and can_adopt is not None:
        try:
            await can_adopt()
        except Exception as exc:  # noqa: BLE001 - the owner changed: adopt nothing now
            log.info("not adopting for %s: %s", (owner.get("metadata") or {}).get("name"), exc)
            adopt = []
    ref = new_controller_ref(owner, owner_kind_ref["apiVersion"], owner_kind_ref["kind"])
    for obj in adopt:
        meta = obj.get("metadata") or {}
        patch = {"metadata": {"ownerReferences": [ref], "uid": meta.get("uid")}}
        try:
            kept.append(await client.patch(res, meta.get("name", ""), patch, meta.get("namespace"),
                                           patch_type="strategic"))
        except (NotFound, Invalid):
            continue  # gone, or replaced by another object of that name
    for obj in release:
        meta = obj.get("metadata") or {}
        patch = {"metadata": {"ownerReferences": [{"$patch": "delete", "uid": owner_uid}],
                              "uid": meta.get("uid")}}
        try:
            await client.patch(res, meta.get("name", ""), patch, meta.get("namespace"),
                               patch_type="strategic")
        except (NotFound, Invalid):
            continue
    return kept


def uid_precondition(client: RestClient, res: ResourceArg, owner: Obj
                     ) -> Callable[[], Awaitable[None]]:
    """A ``can_adopt`` that re-reads the owner from the API (not a cache) and raises unless it
    still exists with the same uid and is not being deleted."""
    meta = owner.get("metadata") or {}

    async def check() -> None:
        fresh = await client.get(res, meta.get("name", ""), meta.get("namespace"))
        fmeta = fresh.get("metadata") or {}
        if fmeta.get("uid") != meta.get("uid"):
            raise RuntimeError(f"original {meta.get('name')} is gone: got uid {fmeta.get('uid')}, "
                               f"wanted {meta.get('uid')}")
        if fmeta.get("deletionTimestamp"):
            raise RuntimeError(f"{meta.get('name')} has just been deleted at "
                               f"{fmeta.get('deletionTimestamp')}")
    return check
