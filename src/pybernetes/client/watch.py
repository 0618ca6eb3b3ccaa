"""A watch stream as an async iterator of (type, object).

Owns the client side of ``?watch=true``: opening the stream (through the REST client's
rate limiting and retries), splitting the chunked body into JSON lines, and the event
types: ADDED / MODIFIED / DELETED are yielded with their object; BOOKMARK updates the
tracked resourceVersion and is yielded only when bookmarks were asked for; ERROR raises
the ``ApiError`` of its Status (``Expired`` for 410, the "resourceVersion too old" case
informers answer by relisting).  The iteration ends when the server ends the stream
(timeoutSeconds, shutdown).  ``resource_version`` is the last one seen, to resume from.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import aiohttp
import orjson

from pybernetes.client.errors import ApiError, ConnectionFailed, from_status

if TYPE_CHECKING:
    from pybernetes.client.rest import ResourceArg, RestClient

Obj = dict[str, Any]
MAX_LINE = 64 * 1024 * 1024  # one event larger than this is a broken stream


class Watch:
    def __init__(self, client: RestClient, res: ResourceArg, namespace: str | None,
                 params: dict[str, str], *, bookmarks: bool) -> None:
        self._client = client
        self._res = res
        self._namespace = namespace
        self._params = {**params, "watch": "true"}
        self._bookmarks = bookmarks
        self._resp: aiohttp.ClientResponse | None = None
        self._buffer = bytearray()
        self._done = False
        self.resource_version: str | None = params.get("resourceVersion")

    async def _open(self) -> aiohttp.ClientResponse:
        r = await self._client.resource(self._res)
        path = r.path(self._namespace if r.namespaced else None)
        timeout = aiohttp.ClientTimeout(total=None, sock_read=None)
        return await self._client.open("GET", path, params=self._params, client_timeout=timeout)

    def __aiter__(self) -> Watch:
        return self

    async def __anext__(self) -> tuple[str, Obj]:
        if self._done:
            raise StopAsyncIteration
        if self._resp is None:
            try:
                self._resp = await self._open()
            except BaseException:
                self._done = True
                raise
        while True:
            line = await self._next_line()
            if line is None:
                await self.close()
                raise StopAsyncIteration
            if not line.strip():
                continue
            try:
                event = orjson.loads(line)
            except orjson.JSONDecodeError:
                await self.close()
                raise ApiError(500, "InternalError", "a watch event that is not JSON") from None
            etype = event.get("type")
            obj = event.get("object")
            if not isinstance(obj, dict):
                obj = {}
            if etype == "ERROR":
                await self.close()
                raise from_status(obj, int(obj.get("code") or 500))
            rv = (obj.get("metadata") or {}).get("resourceVersion")
            if rv:
                self.resource_version = rv
            if etype == "BOOKMARK" and not self._bookmarks:
                continue
            return etype, obj

    async def _next_line(self) -> bytes | None:
        assert self._resp is not None
        buf = self._buffer
        while True:
            idx = buf.find(b"\n")
            if idx >= 0:
                line = bytes(buf[:idx])
                del buf[: idx + 1]
                return line
            try:
                chunk = await self._resp.content.readany()
            except (aiohttp.ClientPayloadError, aiohttp.ClientConnectionError) as exc:
                await self.close()
                raise ConnectionFailed(f"watch stream broke: {exc!r}") from exc
            if not chunk:
                if buf:
                    line = bytes(buf)
                    buf.clear()
                    return line
                return None
            buf.extend(chunk)
            if len(buf) > MAX_LINE:
                await self.close()
                raise ApiError(500, "InternalError", "a watch event larger than the client accepts")

    async def close(self) -> None:
        self._done = True
        resp, self._resp = self._resp, None
        if resp is not None:
            resp.close()  # drop the connection: a watch body cannot be drained

    async def __aenter__(self) -> Watch:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
