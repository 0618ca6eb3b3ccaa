"""The DefaultStorageClass admission plugin (upstream plugin/pkg/admission/storage/
storageclass/setdefault): a PersistentVolumeClaim created without ``spec.storageClassName``
(and without the beta ``volume.beta.kubernetes.io/storage-class`` annotation) gets the
default StorageClass's name.  An explicit ``""`` means "no class" and is kept.

The default class is the one annotated ``storageclass.kubernetes.io/is-default-class: "true"``
(or the beta annotation); with several, the newest (ties by name), as upstream since 1.26.
No default class: the claim is left as it is (the PV binder assigns one retroactively if one
appears later).

The classes are read from the API server's own watch cache, so the plugin needs the stores:
``set_stores(stores)`` is called when the server has opened them (before it serves); until
then, and for requests other than creating a claim, the plugin does nothing.  Mutating only.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import orjson

from pybernetes.apiserver import meta_semantics as ms
from pybernetes.apiserver.pipeline import AdmissionAttributes
from pybernetes.storage.cacher import VALUE

if TYPE_CHECKING:
    from pybernetes.apiserver.store import Stores

Obj = dict[str, Any]

DEFAULT_ANNOTATIONS = ("storageclass.kubernetes.io/is-default-class",
                       "storageclass.beta.kubernetes.io/is-default-class")
BETA_CLASS_ANNOTATION = "volume.beta.kubernetes.io/storage-class"


def _d(value: Any) -> Obj:
    return value if isinstance(value, dict) else {}


def is_default_class(storage_class: Obj) -> bool:
    notes = _d(_d(storage_class.get("metadata")).get("annotations"))
    return any(str(notes.get(key, "")).lower() == "true" for key in DEFAULT_ANNOTATIONS)


def pick_default(classes: list[Obj]) -> Obj | None:
    """The default class: the newest of those marked default, ties broken by name."""
    defaults = [c for c in classes if is_default_class(c)]
    if not defaults:
        return None
    newest = max(_created(c) for c in defaults)
    return min((c for c in defaults if _created(c) == newest),
               key=lambda c: str(_d(c.get("metadata")).get("name") or ""))


def _created(storage_class: Obj) -> str:
    return str(_d(storage_class.get("metadata")).get("creationTimestamp") or "")


def needs_class(claim: Any) -> bool:
    if not isinstance(claim, dict):
        return False
    if "storageClassName" in _d(claim.get("spec")) and claim["spec"]["storageClassName"] is not None:
        return False
    return BETA_CLASS_ANNOTATION not in _d(_d(claim.get("metadata")).get("annotations"))


class DefaultStorageClass:
    name = "DefaultStorageClass"

    def __init__(self) -> None:
        self._stores: Stores | None = None

    def set_stores(self, stores: Stores) -> None:
        self._stores = stores

    def handles(self, operation: str) -> bool:
        return operation == "CREATE"

    def _classes(self) -> list[Obj]:
        if self._stores is None:
            return []
        store = self._stores.find("storage.k8s.io", "storageclasses")
        if store is None:
            return []
        listing = store.cacher.list(ms.key_root(store.res))
        return [orjson.loads(entry[VALUE]) for entry in listing.entries]

    async def admit(self, attrs: AdmissionAttributes) -> None:
        if attrs.resource != "persistentvolumeclaims" or attrs.group != "" or attrs.subresource:
            return
        if not needs_class(attrs.obj):
            return
        default = pick_default(self._classes())
        if default is None:
            return
        attrs.obj.setdefault("spec", {})["storageClassName"] = _d(default.get("metadata")).get("name")
