"""Shared harness for the generic-store tests: a small registry, a started ``Stores`` over a
storage backend chosen by the including module, and helpers.  The test modules
``test_store_*.py`` (MemoryStorage) and ``tests/integration/test_store_sqlite.py``
(SQLiteStorage) run the same suites by providing the ``make_storage`` fixture.
"""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Any

import pytest

from pybernetes.api.registry import Registry
from pybernetes.api.resource import SCALE, ResourceDef, Subresource, status_of
from pybernetes.api.strategy import Strategy
from pybernetes.apiserver.store import ListOptions, Stores, WriteOptions
from pybernetes.machinery.errors import FieldError, StatusError, required

Obj = dict[str, Any]


class WidgetStrategy(Strategy):
    """A namespaced kind with spec/status and generation; spec.size is required."""

    field_names = ("spec.color",)

    def validate(self, obj: Obj) -> list[FieldError]:
        spec = obj.get("spec")
        if not isinstance(spec, dict) or "size" not in spec:
            return [required("spec.size")]
        return []

    def fields(self, obj: Obj) -> dict[str, str]:
        out = super().fields(obj)
        out["spec.color"] = str((obj.get("spec") or {}).get("color", ""))
        return out


class GadgetStrategy(Strategy):
    """Cluster-scoped, created by PUT, updates must name a resourceVersion."""

    allow_create_on_update = True
    allow_unconditional_update = False
    has_generation = False


WIDGETS = ResourceDef(
    group="example.com", version="v1", resource="widgets", kind="Widget", singular="widget",
    namespaced=True, strategy=WidgetStrategy(), subresources=(status_of("Widget", "example.com"),),
)
GADGETS = ResourceDef(
    group="example.com", version="v1", resource="gadgets", kind="Gadget", singular="gadget",
    namespaced=False, strategy=GadgetStrategy(),
)


def test_registry() -> Registry:
    from pybernetes.api.apps import RESOURCES as APPS
    from pybernetes.api.core import RESOURCES as CORE

    core = [r for r in CORE if r.resource in ("namespaces", "pods", "services", "configmaps")]
    apps = [r for r in APPS if r.resource == "deployments"]
    return Registry([*core, *apps, WIDGETS, GADGETS])


test_registry.__test__ = False  # type: ignore[attr-defined]

_ = (SCALE, Subresource)


def res_of(stores: Stores, group: str, resource: str) -> ResourceDef:
    store = stores.find(group, resource)
    assert store is not None, f"{group}/{resource} not registered"
    return store.res


def widget(name: str, ns: str = "default", **spec: Any) -> Obj:
    return {
        "apiVersion": "example.com/v1",
        "kind": "Widget",
        "metadata": {"name": name, "namespace": ns},
        "spec": {"size": 1, **spec},
    }


def configmap(name: str, labels: dict[str, str] | None = None, **data: str) -> Obj:
    meta: Obj = {"name": name}
    if labels:
        meta["labels"] = labels
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta, "data": dict(data)}


def pod(name: str, node: str = "", grace: int | None = None) -> Obj:
    spec: Obj = {"containers": [{"name": "c", "image": "busybox"}]}
    if node:
        spec["nodeName"] = node
    if grace is not None:
        spec["terminationGracePeriodSeconds"] = grace
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name}, "spec": spec}


def deployment(name: str, replicas: int = 1) -> Obj:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "web", "image": "nginx"}]},
            },
        },
    }


def service(name: str, **spec: Any) -> Obj:
    body: Obj = {"ports": [{"port": 80, "protocol": "TCP", "targetPort": 80}], **spec}
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name}, "spec": body}


W = WriteOptions


def opts(**kwargs: Any) -> ListOptions:
    return ListOptions(**kwargs)


async def raises(coro: Awaitable[Any], code: int, reason: str | None = None) -> StatusError:
    with pytest.raises(StatusError) as info:
        await coro
    err = info.value
    assert err.code == code, f"expected {code}, got {err!r}"
    if reason is not None:
        assert err.reason == reason, f"expected {reason}, got {err!r}"
    return err


async def unchanged(stores: Stores, coro: Awaitable[Any], code: int, reason: str | None = None) -> StatusError:
    """The failing request changes nothing: the store's revision does not move."""
    before = await stores.storage.current_revision()
    err = await raises(coro, code, reason)
    assert await stores.storage.current_revision() == before, "a failed request wrote something"
    return err


class StoreFixtures:
    """Subclasses provide ``make_storage`` (an async factory fixture)."""

    @pytest.fixture
    async def stores(self, make_storage) -> Any:
        storage = await make_storage()
        made = Stores(test_registry(), storage)
        await made.start()
        yield made
        await made.stop()

    @pytest.fixture
    async def small_stores(self, make_storage) -> Any:
        """Stores whose caches keep only the last 3 changes (to reach "too old" quickly)."""
        storage = await make_storage()
        made = Stores(test_registry(), storage, cache_history=3)
        await made.start()
        yield made
        await made.stop()


class MemoryBackend:
    """Mixin: run a suite over MemoryStorage."""

    @pytest.fixture
    async def make_storage(self):
        from pybernetes.storage.memory import MemoryStorage

        made: list[Any] = []

        async def make() -> Any:
            storage = MemoryStorage()
            made.append(storage)
            return storage

        yield make
        for storage in made:
            await storage.close()


class SQLiteBackend:
    """Mixin: run a suite over SQLiteStorage in a temporary file."""

    @pytest.fixture
    async def make_storage(self, tmp_path):
        from pybernetes.storage.sqlite import SQLiteStorage

        made: list[Any] = []

        async def make() -> Any:
            storage = await SQLiteStorage.open(tmp_path / f"store{len(made)}.db")
            made.append(storage)
            return storage

        yield make
        for storage in made:
            await storage.close()

