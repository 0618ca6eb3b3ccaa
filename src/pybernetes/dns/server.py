"""The DNS transports: asyncio UDP and TCP servers on a list of (host, port).

``DnsServer(handler, listen)`` binds, for every (host, port), a UDP socket and a TCP socket
on the same port (port 0: the UDP socket's ephemeral port is reused for TCP, so a client
retrying over TCP after TC finds the same server).  Sockets are bound with IP_FREEBIND, so
an address that does not exist yet (the pod bridge appears with the first pod) can be
listened on.  ``addresses`` lists the bound (host, port) pairs after ``start()``.

UDP is a DatagramProtocol; TCP a Protocol reading 2-byte length-framed messages, several
per connection (answered as they complete), closed after ``idle_timeout`` seconds without a
query or when a frame is unreadable.  Queries the handler must forward run as tasks of the
server's ``TaskSet`` (at most ``max_pending`` at once; more are dropped, the client
retries).  Nothing a client sends can raise out of a protocol callback.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import socket
import struct
from collections.abc import Coroutine
from typing import Any

from pybernetes.client.tasks import TaskSet
from pybernetes.dns.handler import QueryHandler

log = logging.getLogger(__name__)

IP_FREEBIND = 15
Address = tuple[str, int]


def bind_socket(host: str, port: int, kind: int) -> socket.socket:
    """A socket of ``kind`` bound to (host, port) with IP_FREEBIND (and SO_REUSEADDR for TCP)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, kind)
    try:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_IP, IP_FREEBIND, 1)
        if kind == socket.SOCK_STREAM:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        sock.bind((host, port))
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return sock


def bind_pair(host: str, port: int, attempts: int = 20) -> tuple[socket.socket, socket.socket]:
    """UDP and TCP sockets on the same port (for port 0, an ephemeral port free for both)."""
    for attempt in range(attempts):
        udp = bind_socket(host, port, socket.SOCK_DGRAM)
        try:
            return udp, bind_socket(host, udp.getsockname()[1], socket.SOCK_STREAM)
        except OSError as exc:
            udp.close()
            if port != 0 or exc.errno != errno.EADDRINUSE or attempt == attempts - 1:
                raise
    raise AssertionError("unreachable")


class _Udp(asyncio.DatagramProtocol):
    def __init__(self, server: DnsServer) -> None:
        self.server = server
        self.handle = server.handler.handle
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: Any) -> None:
        reply = self.handle(data, False)
        if reply is None:
            return
        if isinstance(reply, bytes):
            self.transport.sendto(reply, addr)  # type: ignore[union-attr]
        else:
            self.server.spawn(reply, self._send_later(addr))

    def _send_later(self, addr: Any) -> Any:
        def send(reply: bytes | None) -> None:
            if reply is not None and self.transport is not None and not self.transport.is_closing():
                self.transport.sendto(reply, addr)
        return send

    def error_received(self, exc: Exception) -> None:
        log.debug("dns: udp error: %r", exc)


class _Tcp(asyncio.Protocol):
    def __init__(self, server: DnsServer) -> None:
        self.server = server
        self.handle = server.handler.handle
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.idle: asyncio.TimerHandle | None = None
        self.pending = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.server.connections.add(self)
        self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self.server.connections.discard(self)
        if self.idle is not None:
            self.idle.cancel()
        self.transport = None

    def _arm(self) -> None:
        if self.idle is not None:
            self.idle.cancel()
        loop = asyncio.get_running_loop()
        self.idle = loop.call_later(self.server.idle_timeout, self._idle_out)

    def _idle_out(self) -> None:
        if self.pending:
            self._arm()
        elif self.transport is not None:
            self.transport.close()

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        self._arm()
        while len(self.buffer) >= 2:
            (length,) = struct.unpack_from("!H", self.buffer)
            if len(self.buffer) < 2 + length:
                return
            message = bytes(self.buffer[2:2 + length])
            del self.buffer[:2 + length]
            reply = self.handle(message, True)
            if reply is None:
                if length < 12 and self.transport is not None:  # not even a header: give up on it
                    self.transport.close()
                    return
                continue
            if isinstance(reply, bytes):
                self.send(reply)
            else:
                self.pending += 1
                self.server.spawn(reply, self._send_later)

    def _send_later(self, reply: bytes | None) -> None:
        self.pending -= 1
        if reply is not None:
            self.send(reply)

    def pause_writing(self) -> None:  # a client that does not read its replies: stop reading
        if self.transport is not None:
            self.transport.pause_reading()

    def resume_writing(self) -> None:
        if self.transport is not None:
            self.transport.resume_reading()

    def send(self, reply: bytes) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(struct.pack("!H", len(reply)) + reply)


class DnsServer:
    def __init__(self, handler: QueryHandler, listen: list[Address], *, idle_timeout: float = 10.0,
                 max_pending: int = 1000) -> None:
        self.handler = handler
        self.listen = list(listen)
        self.idle_timeout = idle_timeout
        self.max_pending = max_pending
        self.addresses: list[Address] = []
        self.connections: set[_Tcp] = set()
        self._transports: list[asyncio.BaseTransport] = []
        self._servers: list[asyncio.AbstractServer] = []
        self._tasks = TaskSet("dns-server")
        self._serial = 0

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            for host, port in self.listen:
                udp, tcp = bind_pair(host, port)
                bound = udp.getsockname()[1]
                transport, _ = await loop.create_datagram_endpoint(lambda: _Udp(self), sock=udp)
                self._transports.append(transport)
                server = await loop.create_server(lambda: _Tcp(self), sock=tcp, backlog=256)
                self._servers.append(server)
                self.addresses.append((host, bound))
        except BaseException:
            await self.stop()
            raise

    def spawn(self, coro: Coroutine[Any, Any, bytes | None], send: Any) -> None:
        """Run a forwarded query; ``send(reply)`` when it completes."""
        if len(self._tasks) >= self.max_pending:
            coro.close()
            send(None)
            return
        self._serial += 1
        self._tasks.start(f"query-{self._serial}", self._run(coro, send))

    async def _run(self, coro: Coroutine[Any, Any, bytes | None], send: Any) -> None:
        reply = None
        try:
            reply = await coro
        except Exception:  # noqa: BLE001 - a failed query is a dropped query
            log.exception("dns: forwarded query failed")
        send(reply)

    async def stop(self) -> None:
        for transport in self._transports:
            transport.close()
        for server in self._servers:
            server.close()
        for conn in list(self.connections):
            if conn.transport is not None:
                conn.transport.close()
        for server in self._servers:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(server.wait_closed(), 5)
        self._transports.clear()
        self._servers.clear()
        await self._tasks.stop(grace=2)
