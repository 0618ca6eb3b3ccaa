"""client/http11.py against real servers on loopback: Content-Length, chunked and
close-delimited bodies, bodiless statuses, keep-alive reuse, a stale idle connection sent
again, Connection: close, timeouts, connection failures, and TLS."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import pytest
from aiohttp import web

from pybernetes.client.http11 import Pool, TransportError


@pytest.fixture
async def server() -> AsyncIterator[tuple[str, list]]:
    peers: list = []

    async def plain(request: web.Request) -> web.Response:
        peers.append(request.transport.get_extra_info("peername") if request.transport else None)
        body = await request.read()
        return web.json_response({"method": request.method, "path": request.path_qs, "body": body.decode(),
                                  "ctype": request.headers.get("Content-Type", "")})

    async def chunked(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"Content-Type": "text/plain"})
        resp.enable_chunked_encoding()
        await resp.prepare(request)
        for part in (b"hello ", b"chunked ", b"world" * 1000):
            await resp.write(part)
        await resp.write_eof()
        return resp

    async def empty(request: web.Request) -> web.Response:
        return web.Response(status=204)

    async def closing(request: web.Request) -> web.Response:
        return web.Response(text="bye", headers={"Connection": "close"})

    async def slow(request: web.Request) -> web.Response:
        await asyncio.sleep(5)
        return web.Response(text="late")

    app = web.Application()
    app.router.add_route("*", "/plain", plain)
    app.router.add_get("/chunked", chunked)
    app.router.add_get("/empty", empty)
    app.router.add_get("/closing", closing)
    app.router.add_get("/slow", slow)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield f"http://127.0.0.1:{port}", peers
    finally:
        await runner.cleanup()


async def test_bodies_of_every_framing_and_keep_alive(server) -> None:
    url, peers = server
    pool = Pool(url)
    try:
        r = await pool.request("POST", "/plain?a=1", {"Content-Type": "application/json"}, b'{"x":1}', 5)
        assert r.status == 200 and r.headers["content-type"].startswith("application/json")
        assert r.body == b'{"method": "POST", "path": "/plain?a=1", "body": "{\\"x\\":1}", "ctype": "application/json"}'
        r = await pool.request("GET", "/chunked", {}, None, 5)
        assert r.body == b"hello chunked " + b"world" * 1000
        r = await pool.request("GET", "/empty", {}, None, 5)
        assert (r.status, r.body) == (204, b"")
        r = await pool.request("HEAD", "/plain", {}, None, 5)
        assert r.status == 200 and r.body == b""
        await pool.request("GET", "/plain", {}, None, 5)
        assert len(set(peers)) == 1  # one connection served them all
        r = await pool.request("GET", "/closing", {}, None, 5)
        assert r.body == b"bye"
        await pool.request("GET", "/plain", {}, None, 5)
        assert len(set(peers)) == 2  # the server said close: a new connection
    finally:
        pool.close()


async def test_a_stale_idle_connection_is_replaced_and_the_request_sent_again() -> None:
    """A server that answers one request per connection and then hangs up on the next one
    without a byte (an idle-timeout race): the pool sends that request again on a new one."""
    seen: list[bytes] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        length = int(next((line.split(b":")[1] for line in head.split(b"\r\n")
                           if line.lower().startswith(b"content-length")), b"0"))
        body = await reader.readexactly(length)
        seen.append(body)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
        await writer.drain()
        with contextlib.suppress(Exception):
            await reader.readuntil(b"\r\n\r\n")  # the next request on this connection: dropped
        writer.close()

    srv = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = srv.sockets[0].getsockname()[1]
    pool = Pool(f"http://127.0.0.1:{port}")
    try:
        assert (await pool.request("POST", "/", {}, b"one", 5)).body == b"one"
        assert len(pool._idle) == 1
        assert (await pool.request("POST", "/", {}, b"two", 5)).body == b"two"
        assert seen == [b"one", b"two"]  # "two" reached the server once, on the second connection
    finally:
        pool.close()
        srv.close()
        await srv.wait_closed()


async def test_timeouts_and_refused_connections(server, unused_tcp_port: int) -> None:
    url, _ = server
    pool = Pool(url)
    try:
        with pytest.raises(TimeoutError):
            await pool.request("GET", "/slow", {}, None, 0.3)
        assert not pool._idle  # the timed-out connection is not reused
        assert (await pool.request("GET", "/plain", {}, None, 5)).status == 200
    finally:
        pool.close()
    refused = Pool(f"http://127.0.0.1:{unused_tcp_port}")
    with pytest.raises(TransportError) as err:
        await refused.request("GET", "/", {}, None, 5)
    assert err.value.sent is False  # never reached a server: safe to retry any verb
    with pytest.raises(ValueError):
        Pool("ftp://example")
