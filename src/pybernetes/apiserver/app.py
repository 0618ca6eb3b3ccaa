"""The API server application: configuration, routes, start-up and shutdown.

``build_app(config)`` assembles the aiohttp application: discovery, OpenAPI and health
endpoints, the REST handlers for ``/api/v1/...`` and ``/apis/{group}/{version}/...``, the
pipeline (pass-through authn/authz/admission for now) and the watch server.  The store is
opened in the application's start-up context (SQLite at ``DATA_DIR/state.db`` or memory) and
closed after the last request, so the same app serves tests (``aiohttp.test_utils`` or an
``AppRunner`` on an ephemeral port) and ``run_server``, which serves until SIGTERM/SIGINT
and then ends watches, drains requests, stops the caches and closes the store.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import signal
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web

from pybernetes.api.registry import Registry, builtin_registry
from pybernetes.api.schemas import schemas
from pybernetes.apiserver import bodies, discovery, health, openapi, podlogs, responses
from pybernetes.apiserver.handlers import ResourceHandlers
from pybernetes.apiserver.pipeline import GuardedApp, Pipeline, default_pipeline
from pybernetes.apiserver.requestinfo import not_found_path
from pybernetes.apiserver.store import Stores
from pybernetes.apiserver.watch import WatchServer
from pybernetes.storage.interface import Storage

log = logging.getLogger(__name__)

DEFAULT_PORT = 6443
STATE_FILE = "state.db"
COMPACT_INTERVAL = 300.0  # seconds, as upstream's API server compacts etcd


@dataclass
class ServerConfig:
    data_dir: Path | str = ""
    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    storage: str = "sqlite"  # "sqlite" (DATA_DIR/state.db) | "memory"
    service_cidr: str = "10.43.0.0/16"
    node_port_range: tuple[int, int] = (30000, 32767)
    shutdown_timeout: float = 10.0
    compact_interval: float | None = COMPACT_INTERVAL
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def state_path(self) -> Path:
        return Path(self.data_dir) / STATE_FILE


# Application keys.
STORES: web.AppKey[Stores] = web.AppKey("stores", Stores)
STORAGE: web.AppKey[Storage] = web.AppKey("storage", object)  # type: ignore[arg-type]
REGISTRY: web.AppKey[Registry] = web.AppKey("registry", Registry)
HANDLERS: web.AppKey[ResourceHandlers] = web.AppKey("handlers", ResourceHandlers)
WATCHES: web.AppKey[WatchServer] = web.AppKey("watches", WatchServer)
CONFIG: web.AppKey[ServerConfig] = web.AppKey("config", ServerConfig)


async def open_storage(config: ServerConfig) -> Storage:
    if config.storage == "memory":
        from pybernetes.storage.memory import MemoryStorage

        return MemoryStorage()
    if config.storage != "sqlite":
        raise ValueError(f"unknown storage {config.storage!r} (sqlite or memory)")
    from pybernetes.storage.sqlite import SQLiteStorage

    os.makedirs(config.data_dir, exist_ok=True)
    return await SQLiteStorage.open(config.state_path, compact_interval=config.compact_interval)


class _State:
    """What the health checks look at."""

    def __init__(self) -> None:
        self.stores: Stores | None = None
        self.shutting_down = False

    def storage_ok(self) -> bool:
        return self.stores is not None

    def synced(self) -> bool:
        return self.stores is not None and self.stores.ready()

    def not_shutting_down(self) -> bool:
        return not self.shutting_down


def build_app(config: ServerConfig, *, registry: Registry | None = None,
              pipeline: Pipeline | None = None) -> web.Application:
    registry = registry or builtin_registry()
    app = web.Application(client_max_size=bodies.MAX_BODY_BYTES, handler_args={"max_field_size": 65536})
    app[CONFIG] = config
    app[REGISTRY] = registry
    watches = WatchServer()
    app[WATCHES] = watches
    state = _State()
    pipeline = pipeline or default_pipeline()
    handlers = ResourceHandlers(registry, None, pipeline, watches)  # type: ignore[arg-type]
    app[HANDLERS] = handlers
    podlogs.install(app, handlers)  # pods/log, proxied to the pod's kubelet

    async def storage_context(app: web.Application) -> AsyncIterator[None]:
        storage = await open_storage(config)
        stores = Stores(registry, storage, service_cidr=config.service_cidr,
                        node_port_range=config.node_port_range)
        try:
            await stores.start()
        except BaseException:
            with contextlib.suppress(Exception):
                await storage.close()
            raise
        app[STORAGE] = storage
        app[STORES] = stores
        handlers.stores = stores
        for plugin in getattr(pipeline.admission, "plugins", ()):  # plugins reading the caches
            if hasattr(plugin, "set_stores"):
                plugin.set_stores(stores)
        state.stores = stores
        yield
        await stores.stop()
        await storage.close()

    async def on_shutdown(app: web.Application) -> None:
        state.shutting_down = True
        await watches.shutdown()

    app.cleanup_ctx.append(storage_context)
    app.on_shutdown.append(on_shutdown)

    # Resource routes first: the router tries the routes under one first path segment in
    # registration order, and these carry almost all the traffic.
    router = app.router
    router.add_route("*", "/api/v1/{tail:.+}", handlers.core)
    router.add_route("*", "/apis/{group}/{version}/{tail:.+}", handlers.grouped)
    # Non-resource endpoints pass authentication and authorization too (a wrapper per route,
    # so resource requests pay nothing for it).
    guarded: Any = GuardedApp(app, pipeline)
    health.add_routes(guarded, [("etcd", state.storage_ok), ("informer-sync", state.synced),
                                ("shutdown", state.not_shutting_down)],
                      readyz_only=("informer-sync", "shutdown"))
    discovery.add_routes(guarded, registry)
    openapi.add_routes(guarded, registry)
    guarded.router.add_route("*", "/{tail:.*}", _not_found)
    return app


async def _settle(registry: Registry) -> None:
    """After start-up: load the schemas that field validation and patches use (off the event
    loop), then move every long-lived object to the permanent generation, so that the
    collector's full passes never walk them (an 80 ms pause per pass otherwise, seen in the
    p99 latency of writes)."""

    def load() -> None:
        known = schemas()
        for res in registry.all():
            known.node_for(res.group, res.version, res.kind)

    await asyncio.to_thread(load)
    gc.collect()
    gc.freeze()


async def _not_found(request: web.Request) -> web.Response:
    return responses.status_error_response(not_found_path())


async def run_server(config: ServerConfig, *, ready: asyncio.Event | None = None,
                     before_shutdown: Callable[[], Awaitable[None]] | None = None) -> None:
    """Serve until SIGTERM or SIGINT, then shut down cleanly; ``before_shutdown`` runs while
    the server still answers (its clients, e.g. a controller manager, stop first)."""
    app = build_app(config)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=config.shutdown_timeout,
                           handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, config.host, config.port, reuse_address=True)
    await site.start()
    log.info("pybernetes API server listening on http://%s:%d", config.host, config.port)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    if ready is not None:
        ready.set()
    await _settle(app[REGISTRY])
    try:
        await stop.wait()
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
        log.info("shutting down")
        if before_shutdown is not None:
            await before_shutdown()
        await runner.cleanup()
