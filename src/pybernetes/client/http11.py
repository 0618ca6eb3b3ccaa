"""A lean HTTP/1.1 client for the REST client's plain exchanges: one request, one complete
response, over keep-alive connections to one server (plain TCP or TLS).

Why not aiohttp here: every component's hot path is small JSON requests (a pod binding, an
event, a status update), thousands per second.  aiohttp's client spends about 0.18–0.27 ms of
CPU on each (request and response objects, URL parsing, cookie jar, tracing, timers); a
protocol that writes the request bytes and parses the reply spends about 0.06 ms, measured
here against the same server.  aiohttp stays in charge of everything else: streams (watches,
logs), proxies, and any session a caller supplies.

What it does:

- Requests carry a Content-Length body (or none); responses are read whole, sized by
  Content-Length, chunked transfer encoding, or the end of the connection; no body for HEAD,
  1xx, 204 and 304.  Header names are case-insensitive (``multidict.CIMultiDict``).
- Connections are kept alive unless either side says ``Connection: close``, and reused
  last-in first-out; there is no limit on how many are open at once (as the REST client's
  aiohttp connector).
- A request sent on a reused connection that the server closed before answering a byte is
  sent again once on a new connection: an HTTP/1.1 server closes idle connections only
  between requests, so the first one never reached it.
- Failures raise ``TransportError``: ``sent`` tells whether the request may have reached the
  server (False when the connection could not be made), for the caller's retry policy.
"""

from __future__ import annotations

import asyncio
import ssl
from dataclasses import dataclass
from urllib.parse import urlsplit

from multidict import CIMultiDict

_CRLF = b"\r\n"
_HEAD_END = b"\r\n\r\n"
MAX_HEAD = 64 * 1024


class TransportError(ConnectionError):
    def __init__(self, message: str, *, sent: bool) -> None:
        super().__init__(message)
        self.sent = sent


@dataclass(slots=True)
class Response:
    status: int
    headers: CIMultiDict[str]
    body: bytes


class _Connection(asyncio.Protocol):
    """One connection; one exchange at a time."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self._waiter: asyncio.Future[Response] | None = None
        self._buf = bytearray()
        self._head: tuple[int, CIMultiDict[str], bool] | None = None  # status, headers, keep-alive
        self._mode = ""  # "length" | "chunked" | "close" | "none"
        self._length = 0
        self._body = bytearray()
        self._chunk_left = -1  # chunked: bytes left in the current chunk (-1: expecting a size line)
        self.got_bytes = False
        self.reusable = False
        self._no_body = False

    # -- asyncio.Protocol ------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        if self._waiter is None or self._waiter.done():
            self._close()  # bytes nobody asked for: the connection cannot be trusted
            return
        self.got_bytes = True
        self._buf += data
        try:
            self._parse()
        except ValueError as exc:
            self._fail(TransportError(f"bad HTTP response: {exc}", sent=True))
            self._close()

    def eof_received(self) -> bool:
        if self._waiter is not None and not self._waiter.done() and self._head is not None and self._mode == "close":
            self._body += self._buf
            self._buf.clear()
            self._finish(keep_alive=False)
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self._waiter is not None and not self._waiter.done():
            if self._head is not None and self._mode == "close":
                self._body += self._buf
                self._finish(keep_alive=False)
            else:
                self._fail(TransportError(f"connection lost: {exc or 'closed by the server'}", sent=True))

    # -- an exchange ---------------------------------------------------------------------------

    def start(self, request: bytes, no_body: bool) -> asyncio.Future[Response]:
        assert self.transport is not None
        loop = asyncio.get_running_loop()
        self._waiter = loop.create_future()
        self._buf.clear()
        self._body = bytearray()
        self._head = None
        self._chunk_left = -1
        self.got_bytes = False
        self.reusable = False
        self._no_body = no_body
        self.transport.write(request)
        return self._waiter

    def _parse(self) -> None:
        if self._head is None:
            end = self._buf.find(_HEAD_END)
            if end < 0:
                if len(self._buf) > MAX_HEAD:
                    raise ValueError("header section too long")
                return
            head = bytes(self._buf[:end]).decode("latin-1")
            del self._buf[: end + 4]
            self._start_body(head)
        if self._mode == "length":
            if len(self._buf) >= self._length:
                self._body = self._buf[: self._length]
                extra = len(self._buf) > self._length
                self._buf = bytearray()
                self._finish(keep_alive=self._head[2] and not extra)  # type: ignore[index]
        elif self._mode == "chunked":
            self._parse_chunks()
        elif self._mode == "none":
            self._finish(keep_alive=self._head[2] and not self._buf)  # type: ignore[index]

    def _start_body(self, head: str) -> None:
        lines = head.split("\r\n")
        version, _, rest = lines[0].partition(" ")
        if not version.startswith("HTTP/1."):
            raise ValueError(f"status line {lines[0]!r}")
        status = int(rest[:3])
        headers: CIMultiDict[str] = CIMultiDict()
        for line in lines[1:]:
            name, sep, value = line.partition(":")
            if not sep:
                raise ValueError(f"header line {line!r}")
            headers.add(name.strip(), value.strip())
        connection = headers.get("Connection", "").lower()
        keep_alive = "close" not in connection if version == "HTTP/1.1" else "keep-alive" in connection
        self._head = (status, headers, keep_alive)
        if self._no_body or 100 <= status < 200 or status in (204, 304):
            self._mode = "none"
        elif "chunked" in headers.get("Transfer-Encoding", "").lower():
            self._mode = "chunked"
        elif "Content-Length" in headers:
            self._mode = "length"
            self._length = int(headers["Content-Length"])
            if self._length < 0:
                raise ValueError("negative Content-Length")
        else:
            self._mode = "close"

    def _parse_chunks(self) -> None:
        """Chunked body: size line, data, CRLF ... then a 0 size line, trailers, empty line."""
        buf = self._buf
        while True:
            if self._chunk_left == -2:  # after the last chunk: trailers up to an empty line
                if buf[:2] == _CRLF:
                    del buf[:2]
                else:
                    end = buf.find(_HEAD_END)
                    if end < 0:
                        return
                    del buf[: end + 4]
                self._finish(keep_alive=self._head[2] and not buf)  # type: ignore[index]
                return
            if self._chunk_left == -1:
                end = buf.find(_CRLF)
                if end < 0:
                    return
                size = int(bytes(buf[:end]).split(b";", 1)[0].strip() or b"0", 16)
                del buf[: end + 2]
                self._chunk_left = size if size else -2
                continue
            if len(buf) < self._chunk_left + 2:
                return
            self._body += buf[: self._chunk_left]
            del buf[: self._chunk_left + 2]
            self._chunk_left = -1

    def _finish(self, keep_alive: bool) -> None:
        status, headers, _ = self._head  # type: ignore[misc]
        self.reusable = keep_alive
        waiter, self._waiter = self._waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(Response(status, headers, bytes(self._body)))
        if not keep_alive:
            self._close()

    def _fail(self, exc: Exception) -> None:
        waiter, self._waiter = self._waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_exception(exc)

    def _close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()

    def abort(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.abort()


class Pool:
    """Keep-alive connections to the server of ``url`` (its scheme, host and port)."""

    def __init__(self, url: str, *, ssl_context: ssl.SSLContext | None = None,
                 server_hostname: str | None = None) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https"):
            raise ValueError(f"not an http(s) URL: {url!r}")
        self.host = parts.hostname or "localhost"
        self.port = parts.port or (443 if parts.scheme == "https" else 80)
        self.ssl = ssl_context if parts.scheme == "https" else None
        if parts.scheme == "https" and self.ssl is None:
            self.ssl = ssl.create_default_context()
        self.server_hostname = (server_hostname or self.host) if self.ssl is not None else None
        netloc = parts.netloc.rpartition("@")[2]
        self.host_header = netloc.encode("latin-1")
        self._idle: list[_Connection] = []
        self._closed = False

    async def _connect(self) -> _Connection:
        loop = asyncio.get_running_loop()
        try:
            _, conn = await loop.create_connection(_Connection, self.host, self.port, ssl=self.ssl,
                                                   server_hostname=self.server_hostname)
        except (OSError, ssl.SSLError) as exc:
            raise TransportError(f"cannot connect to {self.host}:{self.port}: {exc}", sent=False) from exc
        return conn

    def _take_idle(self) -> _Connection | None:
        while self._idle:
            conn = self._idle.pop()
            if not conn.closed and conn.transport is not None and not conn.transport.is_closing():
                return conn
        return None

    async def request(self, method: str, target: str, headers: dict[str, str], body: bytes | None,
                      seconds: float | None) -> Response:
        """Send one request (``target``: path and query) and read its whole response, all within
        ``seconds`` (None: no limit)."""
        if self._closed:
            raise TransportError("the connection pool is closed", sent=False)
        lines = [f"{method} {target} HTTP/1.1".encode("latin-1"), b"Host: " + self.host_header]
        lines.extend(f"{k}: {v}".encode("latin-1") for k, v in headers.items())
        if body is not None or method in ("POST", "PUT", "PATCH"):
            lines.append(b"Content-Length: %d" % len(body or b""))
        request = _CRLF.join(lines) + _HEAD_END + (body or b"")
        async with asyncio.timeout(seconds):
            for attempt in range(2):
                conn = self._take_idle() if attempt == 0 else None
                reused = conn is not None
                if conn is None:
                    conn = await self._connect()
                try:
                    response = await conn.start(request, method == "HEAD")
                except TransportError:
                    conn.abort()
                    if reused and not conn.got_bytes:
                        continue  # the server had closed this idle connection: send on a new one
                    raise
                except BaseException:  # cancelled or timed out mid-exchange: the connection is spent
                    conn.abort()
                    raise
                if conn.reusable and not self._closed:
                    self._idle.append(conn)
                return response
        raise AssertionError("unreachable")

    def close(self) -> None:
        self._closed = True
        for conn in self._idle:
            conn.abort()
        self._idle.clear()
