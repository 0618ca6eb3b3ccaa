"""The REST client's retries, rate limiting, headers and errors, against a scripted
aiohttp server (answers chosen per test)."""

from __future__ import annotations

import asyncio

import orjson
import pytest
from aiohttp import web

from pybernetes.client.discovery import ApiResource
from pybernetes.client.errors import (
    ApiError,
    ConnectionFailed,
    Forbidden,
    ServiceUnavailable,
    TooManyRequests,
)
from pybernetes.client.flowcontrol import Backoff, TokenBucket
from pybernetes.client.kubeconfig import Config
from pybernetes.client.rest import RestClient

CM = ApiResource("", "v1", "configmaps", "ConfigMap", True)


def status(code: int, reason: str, message: str = "no") -> web.Response:
    body = {"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": code,
            "reason": reason, "message": message}
    return web.Response(status=code, body=orjson.dumps(body), content_type="application/json")


class Script:
    """Answers requests with the next scripted response, then 200 with the object."""

    def __init__(self, *responses) -> None:
        self.responses = list(responses)
        self.requests: list[web.Request] = []

    async def handle(self, request: web.Request) -> web.StreamResponse:
        self.requests.append(request)
        if self.responses:
            return self.responses.pop(0)()
        return web.json_response({"kind": "ConfigMap", "metadata": {"name": "x"}})


@pytest.fixture
async def serve(unused_tcp_port_factory):
    runners = []

    async def start(script: Script) -> str:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", script.handle)
        runner = web.AppRunner(app)
        await runner.setup()
        port = unused_tcp_port_factory()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        runners.append(runner)
        return f"http://127.0.0.1:{port}"

    yield start
    for runner in runners:
        await runner.cleanup()


def client(url: str, **kw) -> RestClient:
    kw.setdefault("retry_backoff", Backoff(0.001, 0.01, jitter=0))
    return RestClient(Config(servers=[url] if isinstance(url, str) else url, token="tkn"), **kw)


async def test_429_is_retried_after_retry_after_for_any_verb(serve):
    script = Script(lambda: web.Response(status=429, headers={"Retry-After": "1"}, text="slow down"))
    async with client(await serve(script)) as c:
        loop = asyncio.get_running_loop()
        start = loop.time()
        await c.create(CM, {"metadata": {"name": "x"}}, "default")
        assert loop.time() - start >= 0.95  # honoured Retry-After: 1
    assert [r.method for r in script.requests] == ["POST", "POST"]
    assert script.requests[0].headers["Authorization"] == "Bearer tkn"


async def test_5xx_retried_for_get_but_not_for_post(serve):
    script = Script(lambda: status(503, "ServiceUnavailable"), lambda: status(500, "InternalError"))
    async with client(await serve(script)) as c:
        got = await c.get(CM, "x", "default")
        assert got["metadata"]["name"] == "x" and len(script.requests) == 3
    script = Script(lambda: status(503, "ServiceUnavailable", "down"))
    async with client(await serve(script)) as c:
        with pytest.raises(ServiceUnavailable) as info:
            await c.create(CM, {"metadata": {"name": "x"}}, "default")
        assert info.value.message == "down" and len(script.requests) == 1


async def test_retries_give_up_after_max_retries(serve):
    script = Script(*[lambda: status(429, "TooManyRequests")] * 5)
    async with client(await serve(script), max_retries=2) as c:
        with pytest.raises(TooManyRequests):
            await c.get(CM, "x", "default")
    assert len(script.requests) == 3


async def test_errors_without_a_status_body_are_typed_by_code(serve):
    script = Script(lambda: web.Response(status=403, text="go away"))
    async with client(await serve(script)) as c:
        with pytest.raises(Forbidden) as info:
            await c.get(CM, "x", "default")
    assert info.value.reason == "Forbidden" and "go away" in info.value.message
    script = Script(lambda: web.Response(status=418, text="teapot"))
    async with client(await serve(script)) as c:
        with pytest.raises(ApiError) as info:
            await c.get(CM, "x", "default")
    assert info.value.code == 418


async def test_connection_refused_retries_then_fails(unused_tcp_port):
    async with client(f"http://127.0.0.1:{unused_tcp_port}", max_retries=2) as c:
        with pytest.raises(ConnectionFailed):
            await c.get(CM, "x", "default")


async def test_rate_limiter_spaces_requests(serve):
    script = Script()
    async with client(await serve(script), rate_limiter=TokenBucket(20, 2)) as c:
        loop = asyncio.get_running_loop()
        start = loop.time()
        for _ in range(6):
            await c.get(CM, "x", "default")
        # 2 at once, then 4 at 20 qps: at least 0.2 s
        assert loop.time() - start >= 0.19
    assert len(script.requests) == 6


async def test_paths_and_query_parameters(serve):
    script = Script()
    async with client(await serve(script)) as c:
        await c.list(CM, None, label_selector="a=b", limit=5)
        await c.patch(CM, "x", {"data": {}}, "ns", patch_type="strategic", field_manager="me")
        await c.delete(CM, "x", "ns", propagation_policy="Foreground")
        deploy = ApiResource("apps", "v1", "deployments", "Deployment", True)
        await c.get(deploy, "d", "ns", subresource="scale")
    reqs = script.requests
    assert reqs[0].path == "/api/v1/configmaps" and reqs[0].query["labelSelector"] == "a=b"
    assert reqs[0].query["limit"] == "5"
    assert reqs[1].headers["Content-Type"] == "application/strategic-merge-patch+json"
    assert reqs[1].query["fieldManager"] == "me"
    assert reqs[1].path == "/api/v1/namespaces/ns/configmaps/x"
    assert reqs[3].path == "/apis/apps/v1/namespaces/ns/deployments/d/scale"
