"""The informer's local cache: an ``Indexer`` of objects by key, with secondary indexes.

Owns the thread-free equivalent of client-go's ThreadSafeStore: objects by
``namespace/name`` key (``key_of``), and named indexes, each an index function turning an
object into the values it is filed under (``namespace`` is always there).  Objects handed
out are the cache's own: callers must copy (``pybernetes.machinery.meta.clone``) before
changing one.  ``DeletedFinalStateUnknown`` is the tombstone a delete handler gets for an
object that vanished while the watch was down (found missing at a relist).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from pybernetes.machinery.meta import key_of

Obj = dict[str, Any]
IndexFunc = Callable[[Obj], Iterable[str]]
NAMESPACE_INDEX = "namespace"


def namespace_index(obj: Obj) -> list[str]:
    """The namespace index function ("" for cluster-scoped objects)."""
    return [(obj.get("metadata") or {}).get("namespace") or ""]


@dataclass(frozen=True, slots=True)
class DeletedFinalStateUnknown:
    """A tombstone: the object was deleted while the watch was down; ``obj`` is the last
    state the cache knew."""

    key: str
    obj: Obj


def object_of(item: Obj | DeletedFinalStateUnknown) -> Obj:
    """The object of a delete notification, tombstone or not."""
    return item.obj if isinstance(item, DeletedFinalStateUnknown) else item


class Indexer:
    def __init__(self, indexers: dict[str, IndexFunc] | None = None,
                 key_func: Callable[[Obj], str] = key_of) -> None:
        self.key_func = key_func
        self._items: dict[str, Obj] = {}
        self._funcs: dict[str, IndexFunc] = {NAMESPACE_INDEX: namespace_index}
        self._indices: dict[str, dict[str, set[str]]] = {NAMESPACE_INDEX: {}}
        if indexers:
            self.add_indexers(indexers)

    # -- indexes ---------------------------------------------------------------------------

    def add_indexers(self, indexers: dict[str, IndexFunc]) -> None:
        """Add index functions; existing items are indexed by them at once."""
        for name in indexers:
            if name in self._funcs:
                raise ValueError(f"indexer {name!r} already exists")
        for name, func in indexers.items():
            self._funcs[name] = func
            index: dict[str, set[str]] = {}
            self._indices[name] = index
            for key, obj in self._items.items():
                for value in func(obj):
                    index.setdefault(value, set()).add(key)

    def _file(self, key: str, old: Obj | None, new: Obj | None) -> None:
        for name, func in self._funcs.items():
            index = self._indices[name]
            old_values = set(func(old)) if old is not None else set()
            new_values = set(func(new)) if new is not None else set()
            if old_values == new_values:
                continue
            for value in old_values - new_values:
                keys = index.get(value)
                if keys is not None:
                    keys.discard(key)
                    if not keys:
                        del index[value]
            for value in new_values - old_values:
                index.setdefault(value, set()).add(key)

    # -- writes (the informer's) -----------------------------------------------------------

    def update(self, obj: Obj) -> Obj | None:
        """Add or replace the object; the one it replaced."""
        key = self.key_func(obj)
        old = self._items.get(key)
        self._items[key] = obj
        self._file(key, old, obj)
        return old

    add = update

    def delete(self, obj_or_key: Obj | str) -> Obj | None:
        """Remove by object or key; the object removed (None when it was not there)."""
        key = obj_or_key if isinstance(obj_or_key, str) else self.key_func(obj_or_key)
        old = self._items.pop(key, None)
        if old is not None:
            self._file(key, old, None)
        return old

    def replace(self, objs: Iterable[Obj]) -> None:
        self._items = {}
        self._indices = {name: {} for name in self._funcs}
        for obj in objs:
            self.update(obj)

    # -- reads -----------------------------------------------------------------------------

    def get(self, key: str) -> Obj | None:
        return self._items.get(key)

    get_by_key = get

    def get_object(self, obj: Obj) -> Obj | None:
        return self._items.get(self.key_func(obj))

    def list(self) -> list[Obj]:
        return list(self._items.values())

    def list_keys(self) -> list[str]:
        return list(self._items)

    def index_keys(self, index: str, value: str) -> list[str]:
        if index not in self._indices:
            raise KeyError(f"index {index!r} does not exist")
        return sorted(self._indices[index].get(value, ()))

    def by_index(self, index: str, value: str) -> list[Obj]:
        items = self._items
        return [items[k] for k in self.index_keys(index, value)]

    def index_values(self, index: str) -> list[str]:
        return sorted(self._indices[index])

    def by_namespace(self, namespace: str) -> list[Obj]:
        return self.by_index(NAMESPACE_INDEX, namespace)

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, key: object) -> bool:
        return key in self._items
