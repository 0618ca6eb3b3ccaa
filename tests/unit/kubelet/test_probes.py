"""One probe attempt (kubelet/probes.py): exec through a fake runtime, httpGet against a real
aiohttp server on 127.0.0.1 (and HTTPS with a self-signed certificate), tcpSocket against a
real listener, named ports, timeouts and upstream's messages."""

from __future__ import annotations

import asyncio
import shutil
import socket
import ssl
import subprocess
from pathlib import Path

import pytest
from aiohttp import web

from pybernetes.kubelet.probes import (
    ProbeKind,
    ProbeResult,
    ProbeTiming,
    http_request,
    resolve_port,
    run_probe,
    timing,
)
from pybernetes.kubelet.runtime.protocol import ExecResult, RuntimeError_

POD = {"metadata": {"name": "p", "namespace": "ns", "uid": "u1"}}
CONTAINER = {"name": "web", "ports": [{"name": "http", "containerPort": 0}],
             "env": [{"name": "FILE", "value": "/tmp/ready"}, {"name": "FROM", "valueFrom": {"fieldRef": {}}}]}


class FakeExecRuntime:
    """Answers exec_sync from a function of the command; records the calls."""

    def __init__(self, answer) -> None:
        self.answer = answer
        self.calls: list[tuple[str, list[str], float]] = []

    async def exec_sync(self, container_id: str, command: list[str], limit_seconds: float) -> ExecResult:
        self.calls.append((container_id, command, limit_seconds))
        result = self.answer(command)
        if isinstance(result, Exception):
            raise result
        if asyncio.iscoroutine(result):
            return await result
        return result


async def probe(spec: dict, *, runtime=None, container=CONTAINER, pod_ip="127.0.0.1", limit=None) -> ProbeResult:
    return await run_probe(spec, kind=ProbeKind.READINESS, pod=POD, container=container, pod_ip=pod_ip,
                           container_id="cid", runtime=runtime or FakeExecRuntime(lambda c: ExecResult(0, b"", b"")),
                           limit_seconds=limit)


# -- timing and ports ----------------------------------------------------------------------------


def test_timing_defaults_and_liveness_success_threshold() -> None:
    assert timing({}, ProbeKind.READINESS) == ProbeTiming(0, 10, 1, 1, 3, None)
    spec = {"initialDelaySeconds": 5, "periodSeconds": 2, "timeoutSeconds": 4, "successThreshold": 3,
            "failureThreshold": 7, "terminationGracePeriodSeconds": 9}
    assert timing(spec, ProbeKind.READINESS) == ProbeTiming(5, 2, 4, 3, 7, 9)
    assert timing(spec, ProbeKind.LIVENESS).success_threshold == 1
    assert timing(spec, ProbeKind.STARTUP).success_threshold == 1
    assert timing({"periodSeconds": 0, "timeoutSeconds": -1}, ProbeKind.LIVENESS).period == 10


def test_ports_resolve_by_number_name_or_digits() -> None:
    container = {"name": "c", "ports": [{"name": "http", "containerPort": 8080}]}
    assert resolve_port(81, container) == 81
    assert resolve_port("http", container) == 8080
    assert resolve_port("8081", container) == 8081
    with pytest.raises(Exception, match="'metrics' not found"):
        resolve_port("metrics", container)
    with pytest.raises(Exception, match="invalid port"):
        resolve_port(70000, container)


def test_http_request_defaults_headers_and_host() -> None:
    container = {"name": "c", "ports": [{"name": "http", "containerPort": 8080}]}
    request = http_request({"port": "http", "path": "healthz?full=1"}, container, "10.1.2.3")
    assert str(request.url) == "http://10.1.2.3:8080/healthz?full=1"
    assert request.headers == [("User-Agent", "kube-probe/1.32"), ("Accept", "*/*")]
    request = http_request({"port": 443, "scheme": "HTTPS", "host": "::1", "httpHeaders": [
        {"name": "x-custom", "value": "1"}, {"name": "accept", "value": ""}, {"name": "host", "value": "a.example"},
        {"name": "User-Agent", "value": "mine"}]}, container, "10.1.2.3")
    assert (request.url.scheme, request.url.host, request.url.port, request.url.path) == ("https", "::1", 443, "/")
    assert request.headers == [("X-Custom", "1"), ("Host", "a.example"), ("User-Agent", "mine")]


# -- exec ----------------------------------------------------------------------------------------


async def test_exec_exit_code_output_and_expansion() -> None:
    runtime = FakeExecRuntime(lambda cmd: ExecResult(0 if cmd[-1] == "/tmp/ready" else 1, b"out ", b"err"))
    result = await probe({"exec": {"command": ["test", "-f", "$(FILE)"]}, "timeoutSeconds": 3}, runtime=runtime)
    assert result == ProbeResult(True, "out err")
    assert runtime.calls == [("cid", ["test", "-f", "/tmp/ready"], 3)]
    result = await probe({"exec": {"command": ["test", "-f", "$(FROM)$(MISSING)"]}}, runtime=runtime)
    assert result == ProbeResult(False, "out err")
    assert runtime.calls[-1][1] == ["test", "-f", "$(MISSING)"]


async def test_exec_output_is_capped_at_10_kib() -> None:
    runtime = FakeExecRuntime(lambda cmd: ExecResult(3, b"x" * 8000, b"y" * 8000))
    result = await probe({"exec": {"command": ["noisy"]}}, runtime=runtime)
    assert result.success is False and len(result.message) == 10 * 1024 and result.message.endswith("y")


async def test_exec_timeout_is_a_failure_and_a_runtime_error_is_unknown() -> None:
    timeout = RuntimeError_("ExecError", "command timed out after 1s")
    result = await probe({"exec": {"command": ["sleep", "5"]}}, runtime=FakeExecRuntime(lambda cmd: timeout))
    assert result == ProbeResult(False, 'command "sleep 5" timed out')

    async def hang() -> ExecResult:
        await asyncio.Event().wait()
        raise AssertionError

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr("pybernetes.kubelet.probes.EXEC_SLACK", 0.05)
        result = await probe({"exec": {"command": ["hang"]}}, runtime=FakeExecRuntime(lambda cmd: hang()), limit=0.05)
    assert result == ProbeResult(False, 'command "hang" timed out')
    gone = RuntimeError_("NotFound", "container 'cid' not found")
    result = await probe({"exec": {"command": ["true"]}}, runtime=FakeExecRuntime(lambda cmd: gone))
    assert result.success is None and "not found" in result.message


async def test_a_probe_without_handler_or_with_an_unknown_port_is_unknown() -> None:
    assert (await probe({"periodSeconds": 3})).success is None
    result = await probe({"tcpSocket": {"port": "metrics"}})
    assert result.success is None and "'metrics' not found" in result.message


# -- HTTP ----------------------------------------------------------------------------------------


@pytest.fixture
async def http_server():
    release = asyncio.Event()
    seen: list[dict[str, str]] = []

    async def ok(request: web.Request) -> web.Response:
        seen.append(dict(request.headers))
        return web.Response(text="fine")

    async def status(request: web.Request) -> web.Response:
        return web.Response(status=int(request.match_info["code"]), text="body")

    async def redirect(request: web.Request) -> web.Response:
        raise web.HTTPFound(request.query["to"])

    async def loop(request: web.Request) -> web.Response:
        raise web.HTTPFound("/loop")

    async def slow(request: web.Request) -> web.Response:
        await release.wait()
        return web.Response(text="late")

    async def big(request: web.Request) -> web.Response:
        return web.Response(status=302, text="z" * 20000)

    app = web.Application()
    app.router.add_get("/ok", ok)
    app.router.add_get("/status/{code}", status)
    app.router.add_get("/redirect", redirect)
    app.router.add_get("/loop", loop)
    app.router.add_get("/slow", slow)
    app.router.add_get("/big", big)
    runner = web.AppRunner(app, shutdown_timeout=0.5)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]
    try:
        yield port, seen, runner, app
    finally:
        release.set()
        await runner.cleanup()


def http_probe_spec(port: int, path: str, **extra) -> dict:
    return {"httpGet": {"port": port, "path": path, **extra}}


async def test_http_success_failure_and_headers(http_server) -> None:
    port, seen, _, _ = http_server
    container = {"name": "web", "ports": [{"name": "http", "containerPort": port}]}
    assert await probe(http_probe_spec("http", "/ok"), container=container) == ProbeResult(True, "fine")
    assert seen[-1]["User-Agent"] == "kube-probe/1.32" and seen[-1]["Accept"] == "*/*"
    assert seen[-1]["Host"] == f"127.0.0.1:{port}"
    result = await probe(http_probe_spec(port, "/ok", httpHeaders=[{"name": "x-probe", "value": "yes"},
                                                                   {"name": "Host", "value": "app.example"}]))
    assert result.success is True
    assert seen[-1]["X-Probe"] == "yes" and seen[-1]["Host"] == "app.example"
    assert await probe(http_probe_spec(port, "/status/500")) == ProbeResult(
        False, "HTTP probe failed with statuscode: 500")
    assert (await probe(http_probe_spec(port, "/status/399"))).success is True
    assert (await probe(http_probe_spec(port, "/status/404"))).success is False


async def test_http_redirects_same_host_followed_other_host_a_warning(http_server) -> None:
    port, seen, _, _ = http_server
    result = await probe(http_probe_spec(port, "/redirect?to=/ok"))
    assert result == ProbeResult(True, "fine")
    result = await probe(http_probe_spec(port, f"/redirect?to=http://127.0.0.2:{port}/ok"))
    assert result.success is True and result.warning
    assert result.message.startswith("Probe terminated redirects, Response body: ")
    result = await probe(http_probe_spec(port, "/loop"))
    assert result == ProbeResult(False, f'Get "http://127.0.0.1:{port}/loop": stopped after 10 redirects')
    # the body of a response is read up to 10 KiB only
    result = await probe(http_probe_spec(port, "/big"))
    assert result.warning and len(result.message) == len("Probe terminated redirects, Response body: ") + 10240


async def test_http_refused_and_timeout(http_server) -> None:
    port, _, _, _ = http_server
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed = sock.getsockname()[1]
    result = await probe(http_probe_spec(closed, "/ok"))
    assert result == ProbeResult(False, f'Get "http://127.0.0.1:{closed}/ok": dial tcp 127.0.0.1:{closed}: '
                                        "connect: connection refused")
    result = await probe(http_probe_spec(port, "/slow"), limit=0.2)
    assert result.success is False and "Client.Timeout exceeded" in result.message


@pytest.fixture
def self_signed(tmp_path: Path) -> Path:
    if not shutil.which("openssl"):
        pytest.skip("the openssl command is missing")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                    "-nodes", "-keyout", "key.pem", "-out", "cert.pem", "-days", "1", "-subj", "/CN=elsewhere"],
                   cwd=tmp_path, check=True, capture_output=True, timeout=60)
    return tmp_path


async def test_https_without_certificate_checks(self_signed: Path) -> None:
    tmp_path = self_signed
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(tmp_path / "cert.pem", tmp_path / "key.pem")
    async def hello(request: web.Request) -> web.Response:
        return web.Response(text="secure")

    app = web.Application()
    app.router.add_get("/", hello)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=context)
    await site.start()
    try:
        port = site._server.sockets[0].getsockname()[1]
        assert await probe({"httpGet": {"port": port, "scheme": "HTTPS"}}) == ProbeResult(True, "secure")
    finally:
        await runner.cleanup()


# -- TCP -----------------------------------------------------------------------------------------


async def test_tcp_connect_success_and_refusal() -> None:
    server = await asyncio.start_server(lambda r, w: w.close(), "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        assert await probe({"tcpSocket": {"port": port}}) == ProbeResult(True, "")
        assert (await probe({"tcpSocket": {"port": port, "host": "127.0.0.1"}}, pod_ip="")).success is True
    finally:
        server.close()
        await server.wait_closed()
    result = await probe({"tcpSocket": {"port": port}})
    assert result == ProbeResult(False, f"dial tcp 127.0.0.1:{port}: connect: connection refused")
