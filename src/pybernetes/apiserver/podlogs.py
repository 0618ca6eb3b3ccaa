"""pods/log: ``GET /api/v1/namespaces/{ns}/pods/{name}/log``, proxied to the pod's kubelet.

The pure part reads upstream's PodLogOptions from the query (``container``, ``follow``,
``previous``, ``timestamps``, ``tailLines``, ``sinceSeconds``, ``sinceTime``, ``limitBytes``,
``insecureSkipTLSVerifyBackend``): malformed values are a 400, values out of range (and
``sinceSeconds`` with ``sinceTime``) a 422 ``PodLogOptions "x" is invalid``, as upstream's
validation words them.  It picks the container as upstream's ``LogLocation`` does (the only
one when none is named; otherwise a 400 naming the choices; an unknown name a 400) and finds
the kubelet from the Node: its InternalIP address (else its Hostname) and
``status.daemonEndpoints.kubeletEndpoint.Port`` (10250 when unset).  A pod not bound to a
node is a 400 (upstream answers an empty log; a clear error says more).

``PodLogs.handle`` then asks the kubelet (``GET /containerLogs/{ns}/{pod}/{container}``) and
streams its answer back as chunked text/plain, each piece as it comes (so ``follow`` shows
every line at once), until the kubelet ends or the client goes away.  A kubelet error comes
back as a Status carrying the kubelet's message with its code; an unreachable kubelet is a
500 in upstream's words (``Get "http://...": dial tcp ...: connect: connection refused``).

The API server talks to kubelets over plain HTTP without authentication: there is no TLS
between them yet (the security issue adds the kubelet's serving certificate and the API
server's client certificate); ``insecureSkipTLSVerifyBackend`` is accepted and has nothing
to skip.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, urlencode

import aiohttp
from aiohttp import web

from pybernetes.apiserver.handlers import ResourceHandlers
from pybernetes.apiserver.params import query_bool, query_int
from pybernetes.apiserver.pipeline import UserInfo
from pybernetes.apiserver.requestinfo import RequestInfo
from pybernetes.apiserver.store import ResourceStore
from pybernetes.machinery.errors import (
    FieldError,
    StatusError,
    bad_request,
    forbidden_field,
    internal_error,
    invalid,
    invalid_value,
)

log = logging.getLogger(__name__)

Obj = dict[str, Any]

DEFAULT_KUBELET_PORT = 10250
CONNECT_TIMEOUT = 10.0  # seconds to reach a kubelet
DISCONNECT_CHECK = 0.5  # seconds between looks at the client while the kubelet is quiet
MAX_ERROR_BODY = 16 * 1024
RFC3339_LAYOUT = "2006-01-02T15:04:05Z07:00"
_TIME_RE = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?(Z|[+-]\d\d:\d\d)")


@dataclass(slots=True)
class PodLogOptions:
    container: str = ""
    follow: bool = False
    previous: bool = False
    timestamps: bool = False
    tail_lines: int | None = None
    since_seconds: int | None = None
    since_time: str | None = None  # RFC 3339, seconds, UTC (as upstream forwards it)
    limit_bytes: int | None = None
    insecure_skip_tls_verify_backend: bool = False


def _int(query: Mapping[str, str], key: str) -> int | None:
    return query_int(query, key, invalid='strconv.ParseInt: parsing "{value}": invalid syntax')


def _since_time(value: str) -> str:
    """An RFC 3339 time as upstream forwards it: whole seconds, UTC."""
    if not _TIME_RE.fullmatch(value):
        raise bad_request(f'parsing time "{value}" as "{RFC3339_LAYOUT}": not an RFC 3339 time')
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise bad_request(f'parsing time "{value}" as "{RFC3339_LAYOUT}": out of range') from None
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def log_options(query: Mapping[str, str], pod_name: str) -> PodLogOptions:
    """PodLogOptions from the query, decoded then validated as upstream does."""
    since_time = query.get("sinceTime") or None
    opts = PodLogOptions(
        container=query.get("container", ""),
        follow=query_bool(query, "follow"),
        previous=query_bool(query, "previous"),
        timestamps=query_bool(query, "timestamps"),
        tail_lines=_int(query, "tailLines"),
        since_seconds=_int(query, "sinceSeconds"),
        since_time=_since_time(since_time) if since_time is not None else None,
        limit_bytes=_int(query, "limitBytes"),
        insecure_skip_tls_verify_backend=query_bool(query, "insecureSkipTLSVerifyBackend"),
    )
    errors: list[FieldError] = []
    if opts.tail_lines is not None and opts.tail_lines < 0:
        errors.append(invalid_value("tailLines", opts.tail_lines, "must be greater than or equal to 0"))
    if opts.limit_bytes is not None and opts.limit_bytes < 1:
        errors.append(invalid_value("limitBytes", opts.limit_bytes, "must be greater than 0"))
    if opts.since_seconds is not None and opts.since_time is not None:
        errors.append(forbidden_field("", "at most one of `sinceTime` or `sinceSeconds` may be specified"))
    elif opts.since_seconds is not None and opts.since_seconds < 1:
        errors.append(invalid_value("sinceSeconds", opts.since_seconds, "must be greater than 0"))
    if errors:
        raise invalid("PodLogOptions", pod_name, errors)
    return opts


def _container_names(spec: Obj) -> list[str]:
    """Every container of the pod, as upstream visits them: init, regular, ephemeral."""
    names: list[str] = []
    for key in ("initContainers", "containers", "ephemeralContainers"):
        for container in spec.get(key) or ():
            if isinstance(container, dict) and container.get("name"):
                names.append(container["name"])
    return names


def choose_container(pod: Obj, container: str) -> str:
    name = (pod.get("metadata") or {}).get("name", "")
    spec = pod.get("spec") or {}
    if not container:
        regular = [c for c in spec.get("containers") or () if isinstance(c, dict)]
        if len(regular) == 1:
            return str(regular[0].get("name", ""))
        if not regular:
            raise bad_request(f"a container name must be specified for pod {name}")
        choices = " ".join(_container_names(spec))
        raise bad_request(f"a container name must be specified for pod {name}, choose one of: [{choices}]")
    if container not in _container_names(spec):
        raise bad_request(f"container {container} is not valid for pod {name}")
    return container


def kubelet_address(node: Obj) -> tuple[str, int]:
    """(host, port) of a Node's kubelet: InternalIP, else Hostname; the daemon endpoint port."""
    status = node.get("status") or {}
    addresses = [a for a in status.get("addresses") or () if isinstance(a, dict)]
    host = ""
    for kind in ("InternalIP", "Hostname"):
        host = next((str(a.get("address") or "") for a in addresses if a.get("type") == kind), "")
        if host:
            break
    if not host:
        known = " ".join(f"{{{a.get('type', '')} {a.get('address', '')}}}" for a in addresses)
        name = (node.get("metadata") or {}).get("name", "")
        raise StatusError(500, "InternalError",
                          f'no preferred addresses found for node "{name}"; known addresses: [{known}]')
    endpoint = ((status.get("daemonEndpoints") or {}).get("kubeletEndpoint") or {})
    port = endpoint.get("Port")
    if not isinstance(port, int) or isinstance(port, bool) or port <= 0:
        port = DEFAULT_KUBELET_PORT
    return host, port


def kubelet_url(host: str, port: int, namespace: str, pod: str, container: str,
                opts: PodLogOptions) -> str:
    params: list[tuple[str, str]] = []
    for key, on in (("follow", opts.follow), ("previous", opts.previous), ("timestamps", opts.timestamps)):
        if on:
            params.append((key, "true"))
    for key, value in (("sinceSeconds", opts.since_seconds), ("sinceTime", opts.since_time),
                       ("tailLines", opts.tail_lines), ("limitBytes", opts.limit_bytes)):
        if value is not None:
            params.append((key, str(value)))
    hostport = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    path = "/".join(quote(part, safe="") for part in (namespace, pod, container))
    query = f"?{urlencode(params)}" if params else ""
    return f"http://{hostport}/containerLogs/{path}{query}"


def unreachable(url: str, host: str, port: int, err: BaseException) -> StatusError:
    """Upstream's words for a kubelet that cannot be reached (a 500 with no reason)."""
    cause = getattr(err, "os_error", None) or err.__cause__ or err
    if isinstance(cause, ConnectionRefusedError):
        detail = "connect: connection refused"
    elif isinstance(cause, TimeoutError):
        detail = "i/o timeout"
    else:
        detail = getattr(cause, "strerror", None) or str(cause) or type(cause).__name__
    hostport = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    return StatusError(500, "", f'Get "{url}": dial tcp {hostport}: {detail}')


def kubelet_error(code: int, text: str) -> StatusError:
    text = text.strip()
    if code == 400:
        return bad_request(text)
    if code == 404:
        return StatusError(404, "NotFound", text)
    if code == 500:
        return internal_error(text)
    return StatusError(code, "", text or f"the server responded with the status code {code}")


def _gone(request: web.Request) -> bool:
    transport = request.transport
    return transport is None or transport.is_closing()


class PodLogs:
    """The pods/log handler of one API server (one HTTP client for its kubelets)."""

    def __init__(self, handlers: ResourceHandlers) -> None:
        self.handlers = handlers
        self._session: aiohttp.ClientSession | None = None

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            # No limit on connections: every follower holds one for as long as it follows.
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=0),
                timeout=aiohttp.ClientTimeout(total=None, connect=CONNECT_TIMEOUT),
                auto_decompress=False)
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def _node(self, name: str) -> Obj:
        nodes = self.handlers.registry.get("", "v1", "nodes")
        assert nodes is not None
        return await self.handlers.stores.for_resource(nodes).get(None, name)

    async def handle(self, request: web.Request, info: RequestInfo, store: ResourceStore,
                     user: UserInfo) -> web.StreamResponse:
        namespace, name = info.namespace or "", info.name or ""
        opts = log_options(request.query, name)
        pod = await store.get(namespace, name)
        container = choose_container(pod, opts.container)
        node_name = (pod.get("spec") or {}).get("nodeName")
        if not node_name:
            raise bad_request(f"pod {name} does not have a host assigned")
        host, port = kubelet_address(await self._node(node_name))
        url = kubelet_url(host, port, namespace, name, container, opts)
        try:
            upstream = await self._client().get(url)
        except (TimeoutError, aiohttp.ClientConnectionError, OSError) as err:
            raise unreachable(url, host, port, err) from None
        async with upstream:
            if not 200 <= upstream.status <= 206:
                body = await upstream.content.read(MAX_ERROR_BODY)
                raise kubelet_error(upstream.status, body.decode("utf-8", "replace"))
            return await self._relay(request, upstream, opts)

    async def _relay(self, request: web.Request, upstream: aiohttp.ClientResponse,
                     opts: PodLogOptions) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/plain"})
        response.enable_chunked_encoding()
        await response.prepare(request)
        remaining = opts.limit_bytes
        started = time.monotonic()
        pending: asyncio.Task[bytes] | None = None
        try:
            while remaining is None or remaining > 0:
                if pending is None:
                    pending = asyncio.ensure_future(upstream.content.readany())
                done, _ = await asyncio.wait({pending}, timeout=DISCONNECT_CHECK)
                if not done:
                    if _gone(request):
                        break
                    continue
                chunk, pending = pending.result(), None
                if not chunk:
                    break
                if remaining is not None:
                    chunk = chunk[:remaining]
                    remaining -= len(chunk)
                await response.write(chunk)
            await response.write_eof()
        except (ConnectionError, RuntimeError, aiohttp.ClientError) as err:
            # The client or the kubelet went away: the answer ends here.
            log.debug("pod log stream ended after %.1fs: %s", time.monotonic() - started, err)
        except Exception:  # the response has started: no Status can be sent any more
            log.exception("pod log stream failed")
        finally:
            if pending is not None and not pending.done():
                pending.cancel()
                with contextlib.suppress(BaseException):
                    await pending
            if not upstream.content.at_eof():
                upstream.close()  # the kubelet sees its client go and ends its stream
        return response


def install(app: web.Application, handlers: ResourceHandlers) -> PodLogs:
    """Serve pods/log through ``handlers`` and close the kubelet client with the app."""
    logs = PodLogs(handlers)
    handlers.subresource_handlers[("", "pods", "log")] = logs.handle

    async def close(app: web.Application) -> None:
        await logs.close()

    app.on_cleanup.append(close)
    return logs
