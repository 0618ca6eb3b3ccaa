"""The kubelet's HTTP server: what the API server (and the node's own tools) ask a node.

- ``GET /containerLogs/{namespace}/{pod}/{container}`` with upstream's query parameters
  (``follow``, ``previous``, ``timestamps``, ``tailLines`` or the older ``tail``,
  ``sinceSeconds``, ``sinceTime``, ``limitBytes``): the container's log as text, streamed
  in chunks (``logs.LogStream``); with ``follow`` new lines are sent as they are written
  until the container stops or the client goes away.  Malformed parameters are a 400,
  values out of range a 422; the resolver's ``KubeletLookupError`` is answered with its code
  and message (a plain ``LookupError`` with 404), as plain text, as upstream's kubelet does.
- ``GET /healthz``: ``ok``.
- ``GET /pods``: the pods the kubelet runs (a PodList), when the agent gives a way to list them.
- ``GET /stats/summary``: the node's and its pods' resource usage (stats.py), when given.

No TLS and no authentication or authorization yet (the security issue adds them, with the
API server's client certificate): bind it to the address the agent gives, 127.0.0.1 or the
node's own address.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import orjson
from aiohttp import web

from pybernetes.kubelet.logs import (
    POLL_INTERVAL,
    KubeletLookupError,
    LogOptions,
    LogStream,
    Resolver,
    parse_time_ns,
)

log = logging.getLogger(__name__)

DEFAULT_PORT = 10250
TEXT = "text/plain; charset=utf-8"
RFC3339_LAYOUT = "2006-01-02T15:04:05Z07:00"  # how upstream's messages name the format

Obj = dict[str, Any]


class OptionsError(ValueError):
    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


_FALSE = ("0", "f", "false", "n", "no")


def _bool(query: Mapping[str, str], key: str) -> bool:
    value = query.get(key)
    return value is not None and value.lower() not in _FALSE


def _int(query: Mapping[str, str], key: str) -> int | None:
    value = query.get(key)
    if value is None or value == "":
        return None
    try:
        return int(value)
    except ValueError:
        raise OptionsError(400, f'strconv.ParseInt: parsing "{value}": invalid syntax') from None


def log_options(query: Mapping[str, str], now_ns: int | None = None) -> tuple[LogOptions, bool]:
    """(options, previous) from the query of a /containerLogs request."""
    tail = query.get("tail")  # the older name; "all" is every line
    tail_lines = _int(query, "tailLines")
    if tail:
        tail_lines = None if tail == "all" else _int({"tail": tail}, "tail")
    since_seconds = _int(query, "sinceSeconds")
    limit_bytes = _int(query, "limitBytes")
    since_time = query.get("sinceTime") or None
    since_ns = None
    if since_time is not None:
        since_ns = parse_time_ns(since_time)
        if since_ns is None:
            raise OptionsError(400, f'parsing time "{since_time}" as "{RFC3339_LAYOUT}": '
                                    "not an RFC 3339 time")
    if tail_lines is not None and tail_lines < 0:
        raise OptionsError(422, f"tailLines: Invalid value: {tail_lines}: must be greater than or equal to 0")
    if limit_bytes is not None and limit_bytes < 1:
        raise OptionsError(422, f"limitBytes: Invalid value: {limit_bytes}: must be greater than 0")
    if since_seconds is not None and since_time is not None:
        raise OptionsError(422, ": Forbidden: at most one of `sinceTime` or `sinceSeconds` may be specified")
    if since_seconds is not None:
        if since_seconds < 1:
            raise OptionsError(422, f"sinceSeconds: Invalid value: {since_seconds}: must be greater than 0")
        since_ns = (now_ns if now_ns is not None else time.time_ns()) - since_seconds * 1_000_000_000
    opts = LogOptions(follow=_bool(query, "follow"), timestamps=_bool(query, "timestamps"),
                      tail_lines=tail_lines, since_ns=since_ns, limit_bytes=limit_bytes)
    return opts, _bool(query, "previous")


def _text(code: int, message: str) -> web.Response:
    return web.Response(status=code, text=message, content_type="text/plain")


def _gone(request: web.Request) -> bool:
    transport = request.transport
    return transport is None or transport.is_closing()


class KubeletServer:
    """The server on ``host:port`` (port 0: an ephemeral one, returned by ``start``)."""

    def __init__(self, resolver: Resolver, *, host: str, port: int = DEFAULT_PORT,
                 pods: Callable[[], list[Obj]] | None = None,
                 stats: Callable[[], Awaitable[Obj]] | None = None,
                 poll_interval: float = POLL_INTERVAL) -> None:
        self.resolver = resolver
        self.host = host
        self.port = port
        self.pods = pods
        self.stats = stats
        self.poll_interval = poll_interval
        self._runner: web.AppRunner | None = None

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/healthz", self._healthz)
        app.router.add_get("/pods", self._pods)
        app.router.add_get("/pods/", self._pods)
        app.router.add_get("/containerLogs/{namespace}/{pod}/{container}", self._container_logs)
        app.router.add_get("/stats/summary", self._stats_summary)
        return app

    async def start(self) -> int:
        runner = web.AppRunner(self.app(), access_log=None, handle_signals=False, shutdown_timeout=1)
        await runner.setup()
        try:
            site = web.TCPSite(runner, self.host, self.port, reuse_address=True)
            await site.start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        self.port = runner.addresses[0][1]
        log.info("kubelet server listening on http://%s:%d", self.host, self.port)
        return self.port

    async def stop(self) -> None:
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()

    # -- handlers ---------------------------------------------------------------------------------

    async def _healthz(self, request: web.Request) -> web.Response:
        return _text(200, "ok")

    async def _pods(self, request: web.Request) -> web.Response:
        if self.pods is None:
            return _text(404, "404 page not found")
        body = {"kind": "PodList", "apiVersion": "v1", "metadata": {}, "items": self.pods()}
        return web.Response(body=orjson.dumps(body), content_type="application/json")

    async def _stats_summary(self, request: web.Request) -> web.Response:
        if self.stats is None:
            return _text(404, "404 page not found")
        return web.Response(body=orjson.dumps(await self.stats()), content_type="application/json")

    async def _container_logs(self, request: web.Request) -> web.StreamResponse:
        match = request.match_info
        namespace, pod, container = match["namespace"], match["pod"], match["container"]
        try:
            opts, previous = log_options(request.query)
        except OptionsError as err:
            return _text(err.code, err.message)
        try:
            target = await self.resolver(namespace, pod, container, previous)
            stream = LogStream(target, opts, poll_interval=self.poll_interval,
                               closed=lambda: _gone(request))
            await stream.open()
        except KubeletLookupError as err:
            return _text(err.code, err.message)
        except LookupError as err:
            return _text(404, str(err.args[0]) if err.args else "not found")
        except Exception as err:  # the resolver failed: say so, as text
            log.exception("logs of %s/%s/%s", namespace, pod, container)
            return _text(500, f"{type(err).__name__}: {err}")
        response = web.StreamResponse(headers={"Content-Type": TEXT})
        response.enable_chunked_encoding()
        try:
            await response.prepare(request)
            async with contextlib.aclosing(stream.chunks()) as chunks:
                async for chunk in chunks:
                    await response.write(chunk)
            await response.write_eof()
        except (ConnectionError, RuntimeError) as err:
            # The client went away (aiohttp raises ConnectionResetError, or RuntimeError on a
            # closed transport): the stream is closed by chunks() ending.
            log.debug("log stream of %s/%s/%s ended: %s", namespace, pod, container, err)
        finally:
            stream.close()
        return response
