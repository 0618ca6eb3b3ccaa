"""The async REST client: every API call of every component goes through ``RestClient``.

Owns the HTTP exchange with the API server (JSON through orjson; plain request/response
exchanges over the lean keep-alive pool of ``client/http11.py``, streams and caller-supplied
sessions over aiohttp): the verbs get,
list, create, update, patch (json, merge, strategic merge, and server-side apply),
delete, delete_collection and watch (``pybernetes.client.watch``) for any resource, named
by a ``ResourceDef`` / ``ApiResource`` or by group/version/resource resolved through
discovery; failures as typed ``ApiError``s from the server's Status; client-side rate
limiting (a token bucket, 50 QPS / 100 burst by default, as client-go); retries with
backoff on 429 (honouring Retry-After), on 5xx for idempotent verbs (any verb when the
server sent Retry-After) and on connection errors (idempotent verbs, or any verb when the
connection was never made), failing over along the configured server list; TLS with the
configured CA and client certificate; bearer-token (or basic) authentication.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote, urlencode

import aiohttp
import orjson

from pybernetes.client.discovery import ApiResource, Discovery, ResourceLike, parse_gvr
from pybernetes.client.errors import ApiError, ConnectionFailed, from_response
from pybernetes.client.flowcontrol import Backoff, TokenBucket
from pybernetes.client.http11 import Pool, TransportError
from pybernetes.client.kubeconfig import Config
from pybernetes.client.watch import Watch

log = logging.getLogger(__name__)

JSON = "application/json"
PATCH_TYPES = {
    "json": "application/json-patch+json",
    "merge": "application/merge-patch+json",
    "strategic": "application/strategic-merge-patch+json",
    "apply": "application/apply-patch+yaml",
}
IDEMPOTENT = frozenset({"GET", "HEAD", "PUT", "DELETE", "OPTIONS"})
MAX_RETRY_AFTER = 60.0  # seconds: a longer Retry-After is cut to this
Obj = dict[str, Any]
ResourceArg = ResourceLike | ApiResource | str | tuple[str, str, str]


def _param_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def query(**params: Any) -> dict[str, str]:
    """Keyword parameters (snake or camel case) as query parameters, Nones dropped."""
    out: dict[str, str] = {}
    for key, value in params.items():
        if value is None:
            continue
        head, *rest = key.rstrip("_").split("_")
        name = head + "".join(p[:1].upper() + p[1:] for p in rest)
        if isinstance(value, list | tuple):
            value = ",".join(str(v) for v in value)
        out[name] = _param_value(value)
    return out


def _retry_after(headers: Mapping[str, str]) -> float | None:
    raw = headers.get("Retry-After")
    if not raw:
        return None
    try:
        value = float(raw)
    except ValueError:
        return None
    return min(max(value, 0.0), MAX_RETRY_AFTER)


class RestClient:
    def __init__(self, config: Config, *, max_retries: int = 10, retry_backoff: Backoff | None = None,
                 rate_limiter: TokenBucket | None = None,
                 session: aiohttp.ClientSession | None = None) -> None:
        if not config.servers:
            raise ValueError("a client needs at least one server")
        self.config = config
        self.max_retries = max_retries
        self._backoff_proto = retry_backoff or Backoff(initial=0.2, cap=5.0, jitter=0.5)
        self.rate_limiter = rate_limiter or TokenBucket(config.qps, config.burst)
        self._session = session
        self._own_session = session is None
        self._server = 0  # index of the server last answering
        self.discovery = Discovery(self._fetch_discovery)
        self._closed = False
        self._pools: dict[str, Pool] = {}  # server URL -> keep-alive connections (send())
        self._ssl_context: Any = None

    # -- lifecycle ---------------------------------------------------------------------------

    def _get_session(self) -> aiohttp.ClientSession:
        if self._closed:
            raise RuntimeError("the client is closed")
        if self._session is None:
            connector = aiohttp.TCPConnector(limit=0, ssl=self.config.ssl_context() or False)
            headers = {"User-Agent": self.config.user_agent}
            self._session = aiohttp.ClientSession(connector=connector, headers=headers,
                                                  json_serialize=lambda o: orjson.dumps(o).decode())
        return self._session

    async def close(self) -> None:
        self._closed = True
        for pool in self._pools.values():
            pool.close()
        self._pools.clear()
        if self._session is not None and self._own_session:
            await self._session.close()
        self._session = None

    async def __aenter__(self) -> RestClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # -- resources ---------------------------------------------------------------------------

    async def resource(self, res: ResourceArg) -> ApiResource:
        """An ``ApiResource`` for a ResourceDef/ApiResource (no request), a
        ``"group/version/resource"`` string or a (group, version, resource) tuple."""
        if isinstance(res, ApiResource):
            return res
        if isinstance(res, str):
            return await self.discovery.resource(*parse_gvr(res))
        if isinstance(res, tuple):
            return await self.discovery.resource(*res)
        return ApiResource.of(res)

    async def resource_for_kind(self, api_version: str, kind: str) -> ApiResource:
        return await self.discovery.resource_for_kind(api_version, kind)

    async def _fetch_discovery(self, path: str, accept: str) -> tuple[str, Any]:
        resp = await self.send("GET", path, accept=accept)
        return resp

    def _namespace(self, res: ApiResource, namespace: str | None, obj: Obj | None = None) -> str | None:
        if not res.namespaced:
            return None
        if namespace:
            return namespace
        if obj is not None:
            ns = (obj.get("metadata") or {}).get("namespace")
            if ns:
                return ns
        return self.config.namespace

    # -- the exchange ------------------------------------------------------------------------

    def _headers(self, accept: str, content_type: str | None) -> dict[str, str]:
        headers = {"Accept": accept}
        if content_type:
            headers["Content-Type"] = content_type
        auth = self.config.auth_header()
        if auth:
            headers["Authorization"] = auth
        return headers

    async def open(self, method: str, path: str, *, params: Mapping[str, str] | None = None,
                   body: bytes | None = None, content_type: str | None = None, accept: str = JSON,
                   client_timeout: aiohttp.ClientTimeout | None = None) -> aiohttp.ClientResponse:
        """Send a request through aiohttp with rate limiting and retries; the 2xx response,
        unread (the caller releases it): for streams (watch, logs).  Raises ApiError for a
        failure Status, ConnectionFailed when no server answers."""
        session = self._get_session()
        timeout = client_timeout or aiohttp.ClientTimeout(total=self.config.timeout)
        headers = self._headers(accept, content_type)

        async def exchange(server: str) -> tuple[int, Any, Any, Any]:
            resp = await session.request(method, server + path, params=params, data=body, timeout=timeout,
                                         headers=headers, server_hostname=self.config.tls_server_name)

            async def error_body() -> bytes:
                try:
                    return await resp.read()
                except aiohttp.ClientError:
                    return b""
                finally:
                    resp.release()

            return resp.status, resp.headers, resp, error_body

        return await self._attempts(method, path, exchange)

    async def _attempts(self, method: str, path: str, exchange: Any) -> Any:
        """One request to the servers, retried as the module docstring says.  ``exchange(server)``
        returns (status, headers, the result to return on 2xx, a coroutine function giving the
        body of a failure)."""
        backoff = Backoff(self._backoff_proto.initial, self._backoff_proto.cap,
                          self._backoff_proto.factor, self._backoff_proto.jitter)
        idempotent = method in IDEMPOTENT
        servers = self.config.servers
        attempt = 0
        while True:
            await self.rate_limiter.acquire()
            index = self._server % len(servers)
            url = servers[index] + path
            try:
                status, headers, result, error_body = await exchange(servers[index])
            except (aiohttp.ClientConnectionError, TimeoutError, TransportError) as exc:
                never_sent = isinstance(exc, aiohttp.ClientConnectorError) or (
                    isinstance(exc, TransportError) and not exc.sent)
                if attempt >= self.max_retries or not (idempotent or never_sent):
                    raise ConnectionFailed(f"{method} {url}: {exc!r}") from exc
                attempt += 1
                if len(servers) > 1:
                    self._server = index + 1  # fail over to the next server
                delay = backoff.next()
                log.debug("%s %s failed (%r); retry %d in %.2fs", method, url, exc, attempt, delay)
                await asyncio.sleep(delay)
                continue
            if status < 300:
                return result
            data = await error_body()
            retry_after = _retry_after(headers)
            error = from_response(status, data, retry_after)
            retry = status == 429 or (status >= 500 and (idempotent or retry_after is not None))
            if not retry or attempt >= self.max_retries:
                raise error
            attempt += 1
            delay = retry_after if retry_after is not None else (error.retry_after or backoff.next())
            log.debug("%s %s: %s; retry %d in %.2fs", method, url, status, attempt, delay)
            await asyncio.sleep(delay)

    def _pool(self, server: str) -> Pool:
        pool = self._pools.get(server)
        if pool is None:
            if self._ssl_context is None and self.config.uses_tls:
                self._ssl_context = self.config.ssl_context()
            pool = self._pools[server] = Pool(server, ssl_context=self._ssl_context,
                                              server_hostname=self.config.tls_server_name)
        return pool

    async def send(self, method: str, path: str, *, params: Mapping[str, str] | None = None,
                   body: Any = None, content_type: str | None = None,
                   accept: str = JSON) -> tuple[str, Any]:
        """One request: (response content type, decoded JSON body or None).  Goes through the
        lean HTTP/1.1 pool (client/http11.py) unless the client was given an aiohttp session."""
        raw = None
        if body is not None:
            raw = body if isinstance(body, bytes) else orjson.dumps(body)
            content_type = content_type or JSON
        if self._own_session:
            if self._closed:
                raise RuntimeError("the client is closed")
            target = path + ("?" + urlencode(params, quote_via=quote) if params else "")
            headers = {"User-Agent": self.config.user_agent, **self._headers(accept, content_type)}

            async def exchange(server: str) -> tuple[int, Any, Any, Any]:
                response = await self._pool(server).request(method, target, headers, raw, self.config.timeout)

                async def error_body() -> bytes:
                    return response.body

                return response.status, response.headers, response, error_body

            response = await self._attempts(method, target, exchange)
            status, ctype, data = response.status, response.headers.get("Content-Type", ""), response.body
        else:
            resp = await self.open(method, path, params=params, body=raw, content_type=content_type,
                                   accept=accept)
            try:
                data = await resp.read()
            except aiohttp.ClientError as exc:
                raise ConnectionFailed(f"{method} {path}: reading the response: {exc!r}") from exc
            finally:
                resp.release()
            status, ctype = resp.status, resp.headers.get("Content-Type", "")
        if not data:
            return ctype, None
        try:
            return ctype, orjson.loads(data)
        except orjson.JSONDecodeError:
            raise ApiError(status, "InternalError",
                           f"the server answered {status} with a body that is not JSON") from None

    async def _call(self, method: str, path: str, params: Mapping[str, str] | None = None,
                    body: Any = None, content_type: str | None = None) -> Any:
        return (await self.send(method, path, params=params, body=body, content_type=content_type))[1]

    # -- verbs -------------------------------------------------------------------------------

    async def get(self, res: ResourceArg, name: str, namespace: str | None = None, *,
                  subresource: str | None = None, **params: Any) -> Obj:
        r = await self.resource(res)
        return await self._call("GET", r.path(self._namespace(r, namespace), name, subresource),
                                query(**params))

    async def list(self, res: ResourceArg, namespace: str | None = None, *,
                   label_selector: str | None = None, field_selector: str | None = None,
                   limit: int | None = None, continue_: str | None = None,
                   resource_version: str | None = None, **params: Any) -> Obj:
        """One list call; ``namespace=None`` lists every namespace."""
        r = await self.resource(res)
        return await self._call("GET", r.path(namespace if r.namespaced else None), query(
            labelSelector=label_selector, fieldSelector=field_selector, limit=limit,
            continue_=continue_, resourceVersion=resource_version, **params))

    async def list_all(self, res: ResourceArg, namespace: str | None = None, *,
                       page_size: int = 500, **params: Any) -> Obj:
        """Every page of a list joined: one list object with all items and the resourceVersion
        of the (consistent) snapshot."""
        items: list[Obj] = []
        token: str | None = None
        while True:
            page = await self.list(res, namespace, limit=page_size, continue_=token, **params)
            items.extend(page.get("items") or [])
            token = (page.get("metadata") or {}).get("continue")
            if not token:
                page["items"] = items
                page.setdefault("metadata", {}).pop("continue", None)
                return page

    async def create(self, res: ResourceArg, obj: Obj, namespace: str | None = None, *,
                     subresource: str | None = None, name: str | None = None, **params: Any) -> Obj:
        """POST the object (``subresource`` with ``name`` for e.g. pods/x/binding)."""
        r = await self.resource(res)
        ns = self._namespace(r, namespace, obj)
        path = r.path(ns, name, subresource) if subresource else r.path(ns)
        return await self._call("POST", path, query(**params), obj)

    async def update(self, res: ResourceArg, obj: Obj, namespace: str | None = None, *,
                     subresource: str | None = None, **params: Any) -> Obj:
        """PUT the object (its metadata.resourceVersion makes it a compare-and-swap)."""
        r = await self.resource(res)
        name = (obj.get("metadata") or {}).get("name") or ""
        path = r.path(self._namespace(r, namespace, obj), name, subresource)
        return await self._call("PUT", path, query(**params), obj)

    async def update_status(self, res: ResourceArg, obj: Obj, namespace: str | None = None,
                            **params: Any) -> Obj:
        return await self.update(res, obj, namespace, subresource="status", **params)

    async def patch(self, res: ResourceArg, name: str, patch: Any, namespace: str | None = None, *,
                    patch_type: str = "merge", subresource: str | None = None,
                    field_manager: str | None = None, force: bool | None = None, **params: Any) -> Obj:
        """PATCH with ``patch_type`` json | merge | strategic | apply (apply needs a
        field_manager)."""
        if patch_type not in PATCH_TYPES:
            raise ValueError(f"unknown patch type {patch_type!r}: one of {sorted(PATCH_TYPES)}")
        if patch_type == "apply" and not field_manager:
            raise ValueError("server-side apply needs a field_manager")
        r = await self.resource(res)
        path = r.path(self._namespace(r, namespace), name, subresource)
        return await self._call("PATCH", path, query(fieldManager=field_manager, force=force, **params),
                                patch, PATCH_TYPES[patch_type])

    async def delete(self, res: ResourceArg, name: str, namespace: str | None = None, *,
                     propagation_policy: str | None = None, grace_period_seconds: int | None = None,
                     preconditions: Obj | None = None, dry_run: bool = False,
                     **params: Any) -> Obj:
        """DELETE; the deleted object (or the object with deletionTimestamp while finalizers
        hold it, or a Success Status)."""
        r = await self.resource(res)
        body = _delete_options(propagation_policy, grace_period_seconds, preconditions, dry_run)
        return await self._call("DELETE", r.path(self._namespace(r, namespace), name),
                                query(**params), body)

    async def delete_collection(self, res: ResourceArg, namespace: str | None = None, *,
                                label_selector: str | None = None, field_selector: str | None = None,
                                propagation_policy: str | None = None,
                                grace_period_seconds: int | None = None, **params: Any) -> Obj:
        r = await self.resource(res)
        body = _delete_options(propagation_policy, grace_period_seconds, None, False)
        path = r.path(self._namespace(r, namespace))
        return await self._call("DELETE", path, query(labelSelector=label_selector,
                                                      fieldSelector=field_selector, **params), body)

    def watch(self, res: ResourceArg, namespace: str | None = None, *,
              resource_version: str | None = None, label_selector: str | None = None,
              field_selector: str | None = None, allow_watch_bookmarks: bool = False,
              timeout_seconds: int | None = None, **params: Any) -> Watch:
        """An async iterator of (type, object); see ``pybernetes.client.watch.Watch``."""
        return Watch(self, res, namespace, query(
            resourceVersion=resource_version, labelSelector=label_selector,
            fieldSelector=field_selector, allowWatchBookmarks=allow_watch_bookmarks or None,
            timeoutSeconds=timeout_seconds, **params), bookmarks=allow_watch_bookmarks)


def _delete_options(policy: str | None, grace: int | None, preconditions: Obj | None,
                    dry_run: bool) -> Obj | None:
    opts: Obj = {}
    if policy:
        opts["propagationPolicy"] = policy
    if grace is not None:
        opts["gracePeriodSeconds"] = grace
    if preconditions:
        opts["preconditions"] = preconditions
    if dry_run:
        opts["dryRun"] = ["All"]
    if not opts:
        return None
    return {"kind": "DeleteOptions", "apiVersion": "v1", **opts}

