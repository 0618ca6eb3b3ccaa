"""The garbage collector's ownership graph and its decisions (pure: no I/O).

Owns upstream's GraphBuilder state (pkg/controller/garbagecollector, v1.32) and the pure
parts of the collector's decisions:

- ``Identity`` — an object's coordinates (apiVersion, kind, name, uid, namespace).
- ``Node`` — one object by uid: its ownerReferences, the uids of its dependents, whether it
  is being deleted, whether it waits for its dependents (foregroundDeletion), whether it is
  *virtual* (an owner only known from a dependent's reference) and whether an informer has
  observed it.
- ``Graph.process(change)`` applies one informer event (or a *virtual delete* the
  collector found by a GET) and answers an ``Actions``: the uids to try to delete, to try to
  orphan, and dependents whose owner reference names the wrong namespace (an event).
- ``classify_references`` / ``decide_delete`` — what to do with an object once its owners
  were looked up: nothing, drop the dangling references, or delete it with a policy.
- ``preferred_resources`` — the resources the server serves (aggregated or legacy discovery
  documents), one version per group/resource, as upstream's ServerPreferredResources.
"""

from __future__ import annotations

import copy
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from pybernetes.client.discovery import ApiResource

Obj = dict[str, Any]

ORPHAN_FINALIZER = "orphan"
FOREGROUND_FINALIZER = "foregroundDeletion"
ABSENT_OWNER_CACHE_SIZE = 500  # upstream's absentOwnerCache
# Resources the collector never watches (upstream's default ignored resources).
IGNORED_RESOURCES = frozenset({("", "events"), ("events.k8s.io", "events")})


@dataclass(frozen=True, slots=True)
class Identity:
    api_version: str
    kind: str
    name: str
    uid: str
    namespace: str = ""

    def __str__(self) -> str:
        return (f"[{self.api_version}/{self.kind}, namespace: {self.namespace}, "
                f"name: {self.name}, uid: {self.uid}]")

    def sort_key(self) -> tuple[str, ...]:
        # kind and apiVersion before namespace, as upstream's referenceLessThan
        return (self.kind, self.api_version, self.namespace, self.name, self.uid)


def identity_of(obj: Obj) -> Identity:
    meta = obj.get("metadata") or {}
    return Identity(obj.get("apiVersion") or "", obj.get("kind") or "", meta.get("name") or "",
                    meta.get("uid") or "", meta.get("namespace") or "")


def owner_identity(ref: Obj, namespace: str) -> Identity:
    """The identity a dependent in ``namespace`` gives its owner through ``ref``."""
    return Identity(ref.get("apiVersion") or "", ref.get("kind") or "", ref.get("name") or "",
                    ref.get("uid") or "", namespace)


def ref_matches(ref: Obj, ident: Identity) -> bool:
    """An ownerReference names exactly these coordinates (uid, name, kind, apiVersion)."""
    return (ref.get("uid") == ident.uid and ref.get("name") == ident.name
            and ref.get("kind") == ident.kind and ref.get("apiVersion") == ident.api_version)


def being_deleted(obj: Obj | None) -> bool:
    return bool(obj and (obj.get("metadata") or {}).get("deletionTimestamp"))


def has_finalizer(obj: Obj | None, finalizer: str) -> bool:
    return bool(obj) and finalizer in ((obj.get("metadata") or {}).get("finalizers") or ())  # type: ignore[union-attr]


def owner_refs(obj: Obj | None) -> list[Obj]:
    refs = ((obj or {}).get("metadata") or {}).get("ownerReferences") or []
    return [r for r in refs if isinstance(r, dict) and r.get("uid")]


def _blocks(ref: Obj) -> bool:
    return ref.get("blockOwnerDeletion") is True


@dataclass(eq=False, slots=True)
class Node:
    identity: Identity
    owners: list[Obj] = field(default_factory=list)
    dependents: set[str] = field(default_factory=set)
    being_deleted: bool = False
    deleting_dependents: bool = False
    virtual: bool = False
    observed: bool = False

    @property
    def uid(self) -> str:
        return self.identity.uid

    def clone(self) -> Node:
        return Node(self.identity, list(self.owners), set(self.dependents), self.being_deleted,
                    self.deleting_dependents, self.virtual, self.observed)


@dataclass(slots=True)
class Change:
    """One graph change: an informer event (``obj``, ``old`` for updates) or a virtual delete
    (``virtual`` with ``identity``: the collector verified the object is gone)."""

    type: str  # "add" | "update" | "delete"
    obj: Obj | None = None
    old: Obj | None = None
    virtual: bool = False
    identity: Identity | None = None

    def ident(self) -> Identity:
        if self.identity is not None:
            return self.identity
        assert self.obj is not None
        return identity_of(self.obj)


@dataclass(slots=True)
class Actions:
    attempt_to_delete: list[str] = field(default_factory=list)  # uids
    attempt_to_delete_later: list[str] = field(default_factory=list)  # rate limited
    attempt_to_orphan: list[str] = field(default_factory=list)
    invalid_namespace: list[tuple[Identity, Obj]] = field(default_factory=list)  # (dependent, ref)

    def delete(self, uid: str) -> None:
        if uid not in self.attempt_to_delete:
            self.attempt_to_delete.append(uid)


class AbsentOwners:
    """An LRU set of owner identities verified absent."""

    def __init__(self, size: int = ABSENT_OWNER_CACHE_SIZE) -> None:
        self.size = size
        self._items: OrderedDict[Identity, None] = OrderedDict()

    def add(self, ident: Identity) -> None:
        self._items[ident] = None
        self._items.move_to_end(ident)
        while len(self._items) > self.size:
            self._items.popitem(last=False)

    def __contains__(self, ident: object) -> bool:
        return ident in self._items


def references_diffs(old: list[Obj], new: list[Obj]) -> tuple[list[Obj], list[Obj], list[tuple[Obj, Obj]]]:
    """(added, removed, changed (old, new)) ownerReferences, matched by uid."""
    old_by_uid = {r["uid"]: r for r in old}
    new_by_uid = {r["uid"]: r for r in new}
    added = [r for u, r in new_by_uid.items() if u not in old_by_uid]
    removed = [r for u, r in old_by_uid.items() if u not in new_by_uid]
    changed = [(old_by_uid[u], r) for u, r in new_by_uid.items() if u in old_by_uid and old_by_uid[u] != r]
    return added, removed, changed


def _deletion_starts_with(old: Obj | None, new: Obj | None, finalizer: str) -> bool:
    if not being_deleted(new) or not has_finalizer(new, finalizer):
        return False
    if old is None:
        return True
    return not being_deleted(old) or not has_finalizer(old, finalizer)


class Graph:
    def __init__(self) -> None:
        self.nodes: dict[str, Node] = {}
        self.absent_owners = AbsentOwners()

    # -- queries -----------------------------------------------------------------------------

    def dependents_of(self, node: Node) -> list[Node]:
        return [d for u in sorted(node.dependents) if (d := self.nodes.get(u)) is not None]

    def blocking_dependents(self, node: Node) -> list[Node]:
        """Dependents whose reference to ``node`` has blockOwnerDeletion=true."""
        return [d for d in self.dependents_of(node)
                if any(r.get("uid") == node.uid and _blocks(r) for r in d.owners)]

    def partition_dependents(self, deps: Iterable[Node], owner: Identity) -> tuple[list[Node], list[Node]]:
        """Dependents whose reference matches ``owner``'s coordinates, and those that do not."""
        matching, nonmatching = [], []
        for dep in deps:
            match = mismatch = False
            if owner.namespace and owner.namespace != dep.identity.namespace:
                mismatch = True  # a namespaced owner in another namespace: no reference matches
            else:
                for ref in dep.owners:
                    if ref.get("uid") == owner.uid:
                        if ref_matches(ref, owner):
                            match = True
                        else:
                            mismatch = True
            if match:
                matching.append(dep)
            if mismatch:
                nonmatching.append(dep)
        return matching, nonmatching

    def alternate_owner_identity(self, deps: list[Node], absent: Identity) -> Identity | None:
        """Another identity the dependents give the (verified absent) owner, preferring the
        first one sorting after it (so two alternates are not checked in a loop)."""
        cluster_scoped = not absent.namespace
        seen = {absent}
        first: Identity | None = None
        following: Identity | None = None
        for dep in deps:
            for ref in dep.owners:
                if ref.get("uid") != absent.uid:
                    continue
                if ref_matches(ref, absent) and (cluster_scoped or absent.namespace == dep.identity.namespace):
                    continue
                alt = owner_identity(ref, dep.identity.namespace)
                if cluster_scoped and alt.api_version == absent.api_version and alt.kind == absent.kind:
                    alt = owner_identity(ref, "")
                if alt in seen:
                    continue
                seen.add(alt)
                if first is None:
                    first = alt
                if following is None and absent.sort_key() < alt.sort_key():
                    following = alt
        return following or first

    # -- changes -----------------------------------------------------------------------------

    def process(self, change: Change) -> Actions:
        act = Actions()
        ident = change.ident()
        existing = self.nodes.get(ident.uid)
        if existing is not None and not change.virtual and not existing.observed:
            if ident != existing.identity:
                # the object is not what its dependents said: check the ones that disagree
                _, suspicious = self.partition_dependents(self.dependents_of(existing), ident)
                for dep in suspicious:
                    if ident.namespace and dep.identity.namespace != ident.namespace:
                        self._report_invalid_namespace(dep, ident.uid, act)
                    act.delete(dep.uid)
                existing = existing.clone()
                existing.identity = ident
                existing.virtual = False
                self.nodes[ident.uid] = existing
            existing.observed = True
            existing.virtual = False
        if change.type in ("add", "update"):
            obj = change.obj
            if existing is None:
                node = Node(ident, owners=owner_refs(obj), being_deleted=being_deleted(obj),
                            deleting_dependents=being_deleted(obj) and has_finalizer(obj, FOREGROUND_FINALIZER),
                            observed=True)
                self.nodes[ident.uid] = node
                self._add_dependent_to_owners(node, node.owners, act)
                self._transitions(change.old, obj, node, act)
            else:
                new_refs = owner_refs(obj)
                added, removed, changed = references_diffs(existing.owners, new_refs)
                if added or removed or changed:
                    self._add_unblocked_owners(removed, changed, act)
                    existing.owners = new_refs
                    self._add_dependent_to_owners(existing, added, act)
                    self._remove_dependent_from_owners(existing, removed)
                if being_deleted(obj):
                    existing.being_deleted = True
                self._transitions(change.old, obj, existing, act)
        elif change.type == "delete" and existing is not None:
            self._delete(existing, ident, change.virtual, act)
        return act

    def _report_invalid_namespace(self, dep: Node, owner_uid: str, act: Actions) -> None:
        for ref in dep.owners:
            if ref.get("uid") == owner_uid:
                act.invalid_namespace.append((dep.identity, ref))
                return

    def _add_dependent_to_owners(self, node: Node, owners: list[Obj], act: Actions) -> None:
        suspicious = False
        for ref in owners:
            owner = self.nodes.get(ref["uid"])
            if owner is None:
                owner = Node(owner_identity(ref, node.identity.namespace), virtual=True)
                self.nodes[owner.uid] = owner
                owner.dependents.add(node.uid)
                act.delete(owner.uid)  # verify the owner exists (a GET), or drop the virtual node
                continue
            owner.dependents.add(node.uid)
            if suspicious:
                continue
            owner_namespaced = bool(owner.identity.namespace)
            if owner_namespaced and owner.identity.namespace != node.identity.namespace:
                if owner.observed:
                    self._report_invalid_namespace(node, owner.uid, act)
                suspicious = True
            elif not ref_matches(ref, owner.identity):
                suspicious = True
            elif not owner_namespaced and owner.identity.namespace != node.identity.namespace \
                    and not owner.observed:
                suspicious = True
        if suspicious:
            act.delete(node.uid)

    def _remove_dependent_from_owners(self, node: Node, owners: list[Obj]) -> None:
        for ref in owners:
            owner = self.nodes.get(ref["uid"])
            if owner is not None:
                owner.dependents.discard(node.uid)

    def _add_unblocked_owners(self, removed: list[Obj], changed: list[tuple[Obj, Obj]], act: Actions) -> None:
        for ref in removed:
            if _blocks(ref) and ref["uid"] in self.nodes:
                act.delete(ref["uid"])
        for old, new in changed:
            if _blocks(old) and not _blocks(new) and new["uid"] in self.nodes:
                act.delete(new["uid"])

    def _transitions(self, old: Obj | None, new: Obj | None, node: Node, act: Actions) -> None:
        if _deletion_starts_with(old, new, ORPHAN_FINALIZER):
            act.attempt_to_orphan.append(node.uid)
            return
        if _deletion_starts_with(old, new, FOREGROUND_FINALIZER):
            node.deleting_dependents = True
            node.being_deleted = True
            for dep_uid in sorted(node.dependents):
                act.delete(dep_uid)
            act.delete(node.uid)

    def _delete(self, existing: Node, deleted: Identity, virtual: bool, act: Actions) -> None:
        remove = True
        if virtual:
            if existing.virtual or not existing.observed:
                matching, nonmatching = self.partition_dependents(self.dependents_of(existing), deleted)
                if nonmatching:
                    # dependents disagree on the owner's coordinates: keep the virtual node
                    remove = False
                    if matching:
                        self.absent_owners.add(deleted)
                        for dep in matching:
                            act.delete(dep.uid)
                    if existing.identity == deleted:
                        alt = self.alternate_owner_identity(nonmatching, deleted)
                        if alt is not None:
                            replacement = existing.clone()
                            replacement.identity = alt
                            self.nodes[alt.uid] = replacement
                            act.attempt_to_delete_later.append(alt.uid)
            elif existing.identity != deleted:
                # a real node is never removed by a virtual delete of other coordinates
                remove = False
                matching, _ = self.partition_dependents(self.dependents_of(existing), deleted)
                if matching:
                    self.absent_owners.add(deleted)
                    for dep in matching:
                        act.delete(dep.uid)
        if not remove:
            return
        self.nodes.pop(existing.uid, None)
        self._remove_dependent_from_owners(existing, existing.owners)
        if existing.dependents:
            self.absent_owners.add(deleted)
        for dep_uid in sorted(existing.dependents):
            if dep_uid in self.nodes:
                act.delete(dep_uid)
        for ref in existing.owners:
            owner = self.nodes.get(ref["uid"])
            if owner is not None and owner.deleting_dependents:
                act.delete(owner.uid)  # it may be waiting for this dependent only


# -- the collector's decisions ---------------------------------------------------------------


@dataclass(slots=True)
class Classified:
    solid: list[Obj] = field(default_factory=list)
    dangling: list[Obj] = field(default_factory=list)
    waiting: list[Obj] = field(default_factory=list)  # owners deleting their dependents


def classify_references(refs: list[Obj], owners: dict[str, Obj | None]) -> Classified:
    """Split ``refs`` by what the owner lookups found: ``owners[uid]`` is the live owner (same
    uid) or None when it is gone."""
    out = Classified()
    for ref in refs:
        owner = owners.get(ref["uid"])
        if owner is None:
            out.dangling.append(ref)
        elif being_deleted(owner) and has_finalizer(owner, FOREGROUND_FINALIZER):
            out.waiting.append(ref)
        else:
            out.solid.append(ref)
    return out


@dataclass(slots=True)
class Decision:
    action: str  # "none" | "remove_refs" | "delete"
    policy: str | None = None
    remove_uids: list[str] = field(default_factory=list)
    unblock_first: bool = False  # set blockOwnerDeletion=false on its references first (cycles)


def decide_delete(latest: Obj, refs: Classified, has_dependents: bool,
                  dependent_deleting_dependents: bool) -> Decision:
    """Upstream's attemptToDeleteItem once owners are classified."""
    if refs.solid:
        if not refs.dangling and not refs.waiting:
            return Decision("none")
        return Decision("remove_refs", remove_uids=[r["uid"] for r in refs.dangling + refs.waiting])
    if refs.waiting and has_dependents:
        return Decision("delete", "Foreground", unblock_first=dependent_deleting_dependents)
    if has_finalizer(latest, ORPHAN_FINALIZER):
        policy = "Orphan"
    elif has_finalizer(latest, FOREGROUND_FINALIZER):
        policy = "Foreground"
    else:
        policy = "Background"
    return Decision("delete", policy)


def remove_refs_patch(dependent_uid: str, owner_uids: list[str]) -> Obj:
    """A strategic-merge patch deleting the references to ``owner_uids`` (uid precondition)."""
    return {"metadata": {"ownerReferences": [{"$patch": "delete", "uid": u} for u in owner_uids],
                         "uid": dependent_uid}}


def remove_refs_merge_patch(obj: Obj, owner_uids: list[str]) -> Obj:
    """The JSON merge patch doing the same for resources without strategic merge."""
    meta = obj.get("metadata") or {}
    kept = [r for r in meta.get("ownerReferences") or [] if r.get("uid") not in owner_uids]
    return {"metadata": {"resourceVersion": meta.get("resourceVersion"), "uid": meta.get("uid"),
                         "ownerReferences": kept or None}}


def unblock_refs_merge_patch(obj: Obj) -> Obj:
    """A JSON merge patch setting blockOwnerDeletion=false on every reference that has it."""
    meta = obj.get("metadata") or {}
    refs = copy.deepcopy(meta.get("ownerReferences") or [])
    for ref in refs:
        if ref.get("blockOwnerDeletion"):
            ref["blockOwnerDeletion"] = False
    return {"metadata": {"resourceVersion": meta.get("resourceVersion"), "uid": meta.get("uid"),
                         "ownerReferences": refs}}


# -- discovery -------------------------------------------------------------------------------


def _aggregated(doc: Obj) -> list[ApiResource]:
    out: list[ApiResource] = []
    for item in doc.get("items") or []:
        group = (item.get("metadata") or {}).get("name") or ""
        for ver in item.get("versions") or []:  # preferred version first
            for r in ver.get("resources") or []:
                out.append(ApiResource(
                    group, ver.get("version") or "", r.get("resource") or "",
                    (r.get("responseKind") or {}).get("kind") or "", r.get("scope") == "Namespaced",
                    r.get("singularResource") or "", tuple(r.get("verbs") or ())))
    return out


def resources_from_list(group: str, version: str, doc: Obj) -> list[ApiResource]:
    """An APIResourceList's resources (subresources left out)."""
    return [ApiResource(group, version, r["name"], r.get("kind") or "", bool(r.get("namespaced")),
                        r.get("singularName") or "", tuple(r.get("verbs") or ()))
            for r in doc.get("resources") or [] if r.get("name") and "/" not in r["name"]]


def preferred_resources(documents: list[Obj], legacy: list[ApiResource] | None = None) -> list[ApiResource]:
    """One ApiResource per (group, resource), from the preferred version first, out of the
    aggregated discovery documents (and legacy lists, already in preference order)."""
    seen: set[tuple[str, str]] = set()
    out: list[ApiResource] = []
    candidates: list[ApiResource] = []
    for doc in documents:
        candidates.extend(_aggregated(doc))
    candidates.extend(legacy or ())
    for res in candidates:
        key = (res.group, res.resource)
        if key in seen or not res.resource:
            continue
        seen.add(key)
        out.append(res)
    return out


def supports(res: ApiResource, *verbs: str) -> bool:
    return all(v in res.verbs for v in verbs)


def gc_resources(resources: list[ApiResource]) -> list[ApiResource]:
    """What the collector watches: listable, watchable, deletable, not ignored."""
    return [r for r in resources if supports(r, "delete", "list", "watch")
            and (r.group, r.resource) not in IGNORED_RESOURCES]
