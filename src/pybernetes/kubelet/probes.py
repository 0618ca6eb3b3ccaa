"""One attempt of a container probe, as upstream kubelet v1.32 runs it (pkg/kubelet/prober and
pkg/probe): exec, httpGet, tcpSocket and grpc, each within the probe's timeoutSeconds, with
upstream's messages (they become the "Liveness probe failed: ..." events).

- **exec**: the command (``$(VAR)`` expanded against the container's literal ``env`` values,
  as upstream's ExpandContainerCommandOnlyStatic) through ``Runtime.exec_sync``; exit 0 is
  success; stdout and stderr together, capped at 10 KiB, are the message; a timeout is a
  failure (``command "sleep 5" timed out``); a runtime error is *unknown* (upstream's "probe
  errored": the result is not counted).
- **httpGet**: GET ``scheme://host:port/path`` (scheme HTTP or HTTPS without certificate
  checks; host defaulting to the pod IP; port a number or the name of a container port), the
  probe's ``httpHeaders`` (a ``Host`` header sets the request's host), ``User-Agent:
  kube-probe/1.32`` and ``Accept: */*`` unless given (an empty Accept removes it), no
  keep-alive.  200-399 is success.  Redirects are followed (at most 10 requests) while they
  stay on the same host; a redirect elsewhere is not followed, and that 3xx is a success with
  a warning ("Probe terminated redirects, Response body: ...").  Other statuses fail with
  "HTTP probe failed with statuscode: 500"; connection errors and timeouts fail with Go's
  wording (``Get "http://10.0.0.5:80/": dial tcp 10.0.0.5:80: connect: connection refused``).
- **tcpSocket**: a TCP connection to host (default the pod IP) and port is success.
- **grpc**: ``grpc.health.v1.Health/Check`` with the probe's service on the pod IP and port;
  SERVING is success (probe_grpc.py).

A named port that the container does not declare (and that is not a number) makes the attempt
*unknown* with a message, as upstream (the probe "errored"; a worker does not count it).
``timing`` gives a probe's fields with upstream's defaults.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import json
from dataclasses import dataclass
from typing import Any

import aiohttp
from multidict import CIMultiDict
from yarl import URL

from pybernetes.kubelet.envvars import expand
from pybernetes.kubelet.probe_grpc import USER_AGENT, health_check, join_host_port, os_reason
from pybernetes.kubelet.runtime.protocol import Runtime, RuntimeError_

Obj = dict[str, Any]
MAX_OUTPUT = 10 * 1024  # upstream's cap on exec output and response bodies
MAX_REQUESTS = 10  # Go's http.Client stops after 10 redirects
REDIRECTS = (301, 302, 303, 307, 308)
EXEC_SLACK = 2.0  # seconds a runtime may take beyond the probe's timeout to report it


class ProbeKind(enum.Enum):
    LIVENESS = "liveness"
    READINESS = "readiness"
    STARTUP = "startup"

    @property
    def label(self) -> str:
        """As upstream's events name it: Liveness, Readiness, Startup."""
        return self.value.capitalize()

    @property
    def field(self) -> str:
        """The container's field: livenessProbe, readinessProbe, startupProbe."""
        return self.value + "Probe"


@dataclass(slots=True)
class ProbeResult:
    success: bool | None  # None: unknown (the probe errored; upstream does not count it)
    message: str = ""
    warning: bool = False  # a success with a warning (upstream's probe.Warning)


@dataclass(frozen=True, slots=True)
class ProbeTiming:
    initial_delay: int
    period: int
    timeout: int
    success_threshold: int
    failure_threshold: int
    termination_grace: int | None  # the probe's terminationGracePeriodSeconds


def timing(probe: Obj, kind: ProbeKind) -> ProbeTiming:
    """The probe's timing with upstream's defaults (a missing or zero field takes its default;
    successThreshold is 1 for liveness and startup probes)."""

    def field(name: str, default: int, minimum: int) -> int:
        value = probe.get(name)
        if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
            return default
        return max(value, minimum)

    success = field("successThreshold", 1, 1) if kind is ProbeKind.READINESS else 1
    grace = probe.get("terminationGracePeriodSeconds")
    return ProbeTiming(
        initial_delay=field("initialDelaySeconds", 0, 0),
        period=field("periodSeconds", 10, 1), timeout=field("timeoutSeconds", 1, 1),
        success_threshold=success, failure_threshold=field("failureThreshold", 3, 1),
        termination_grace=grace if isinstance(grace, int) and not isinstance(grace, bool) else None)


class ProbeError(Exception):
    """The probe cannot be run as written (an unknown port name ...): its result is unknown."""


def resolve_port(port: Any, container: Obj) -> int:
    """A probe's port: a number, or the name of one of the container's ports."""
    if isinstance(port, str):
        for declared in container.get("ports") or []:
            if declared.get("name") == port:
                port = declared.get("containerPort")
                break
        else:
            if not port.isdigit():
                raise ProbeError(f"port {port!r} not found in the ports of container "
                                 f"{container.get('name', '')!r}")
            port = int(port)
    if not isinstance(port, int) or isinstance(port, bool) or not 0 < port < 65536:
        raise ProbeError(f"invalid port number: {port}")
    return port


def _canonical_header(name: str) -> str:
    """Go's canonical MIME header key ("content-type" -> "Content-Type")."""
    if not name or any(not (c.isascii() and (c.isalnum() or c in "!#$%&'*+-.^_`|~")) for c in name):
        return name
    return "-".join(part[:1].upper() + part[1:].lower() for part in name.split("-"))


@dataclass(slots=True)
class HttpRequest:
    url: URL
    headers: list[tuple[str, str]]  # as sent, Host included when the probe sets it


def http_request(http_get: Obj, container: Obj, pod_ip: str) -> HttpRequest:
    """The request an httpGet probe sends (pure; raises ProbeError)."""
    scheme = str(http_get.get("scheme") or "HTTP").lower()
    if scheme not in ("http", "https"):
        raise ProbeError(f"unsupported scheme {http_get.get('scheme')!r}")
    host = http_get.get("host") or pod_ip
    if not host:
        raise ProbeError("the pod has no IP yet")
    port = resolve_port(http_get.get("port"), container)
    path = str(http_get.get("path") or "")
    path, _, query = path.partition("#")[0].partition("?")
    if not path.startswith("/"):
        path = "/" + path
    url = URL(f"{scheme}://{join_host_port(host, port)}{path}" + (f"?{query}" if query else ""))
    headers: list[tuple[str, str]] = []
    for header in http_get.get("httpHeaders") or []:
        name = header.get("name")
        if name:
            headers.append((_canonical_header(str(name)), str(header.get("value") or "")))
    names = {name for name, _ in headers}
    if "User-Agent" not in names:
        headers.append(("User-Agent", USER_AGENT))
    if "Accept" not in names:
        headers.append(("Accept", "*/*"))
    elif not next(value for name, value in headers if name == "Accept"):
        headers = [(name, value) for name, value in headers if name != "Accept"]
    headers = [(name, value) for name, value in headers if name != "User-Agent" or value]
    return HttpRequest(url, headers)


async def _read_body(response: aiohttp.ClientResponse) -> str:
    body = bytearray()
    while len(body) < MAX_OUTPUT:
        chunk = await response.content.read(MAX_OUTPUT - len(body))
        if not chunk:
            break
        body += chunk
    return body.decode(errors="replace")


async def http_probe(request: HttpRequest, limit_seconds: float) -> ProbeResult:
    url, headers = request.url, list(request.headers)
    origin = url.host
    connector = aiohttp.TCPConnector(ssl=False, force_close=True)
    async with aiohttp.ClientSession(connector=connector, auto_decompress=False, cookie_jar=aiohttp.DummyCookieJar(),
                                     skip_auto_headers=("User-Agent", "Accept", "Accept-Encoding")) as session:
        try:
            async with asyncio.timeout(limit_seconds):
                for sent in range(1, MAX_REQUESTS + 1):
                    async with session.get(url, headers=CIMultiDict(headers), allow_redirects=False) as response:
                        location = response.headers.get("Location")
                        if response.status in REDIRECTS and location:
                            target = url.join(URL(location))
                            if target.scheme in ("http", "https") and (target.host or "").lower() == (origin or "").lower():
                                if sent == MAX_REQUESTS:
                                    return ProbeResult(False, f'Get "{target}": stopped after 10 redirects')
                                if URL(location).is_absolute():  # Go keeps a set Host only for relative ones
                                    headers = [(n, v) for n, v in headers if n != "Host"]
                                url = target
                                continue
                        body = await _read_body(response)
                        return _http_result(response.status, body)
        except TimeoutError:
            return ProbeResult(False, f'Get "{url}": context deadline exceeded (Client.Timeout exceeded while awaiting headers)')
        except aiohttp.ClientConnectorError as exc:
            return ProbeResult(False, f'Get "{url}": dial tcp {join_host_port(exc.host, exc.port)}: connect: '
                                      f'{os_reason(exc.os_error)}')
        except (aiohttp.ClientError, OSError, ValueError) as exc:
            return ProbeResult(False, f'Get "{url}": {exc or type(exc).__name__}')
    return ProbeResult(False, f'Get "{url}": stopped after 10 redirects')  # not reached


def _http_result(status: int, body: str) -> ProbeResult:
    if 200 <= status < 400:
        if status >= 300:
            return ProbeResult(True, f"Probe terminated redirects, Response body: {body}", warning=True)
        return ProbeResult(True, body)
    return ProbeResult(False, f"HTTP probe failed with statuscode: {status}")


async def tcp_probe(host: str, port: int, limit_seconds: float) -> ProbeResult:
    addr = join_host_port(host, port)
    try:
        async with asyncio.timeout(limit_seconds):
            _, writer = await asyncio.open_connection(host, port)
    except TimeoutError:
        return ProbeResult(False, f"dial tcp {addr}: i/o timeout")
    except OSError as exc:
        return ProbeResult(False, f"dial tcp {addr}: connect: {os_reason(exc)}")
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
    return ProbeResult(True, "")


async def exec_probe(command: list[str], container_id: str, runtime: Runtime, limit_seconds: float) -> ProbeResult:
    timed_out = ProbeResult(False, f"command {json.dumps(' '.join(command), ensure_ascii=False)} timed out")
    try:
        async with asyncio.timeout(limit_seconds + EXEC_SLACK):
            result = await runtime.exec_sync(container_id, command, limit_seconds)
    except TimeoutError:
        return timed_out
    except RuntimeError_ as exc:
        if "timed out" in exc.message or "timeout" in exc.message:
            return timed_out
        return ProbeResult(None, exc.message)
    output = (result.stdout + result.stderr)[:MAX_OUTPUT].decode(errors="replace")
    return ProbeResult(result.exit_code == 0, output)


async def run_probe(probe: Obj, *, kind: ProbeKind, pod: Obj, container: Obj, pod_ip: str, container_id: str,
                    runtime: Runtime, limit_seconds: float | None = None) -> ProbeResult:
    """One attempt of ``probe`` (a container's livenessProbe, readinessProbe or startupProbe);
    ``limit_seconds`` overrides the probe's timeoutSeconds."""
    seconds = limit_seconds if limit_seconds is not None else timing(probe, kind).timeout
    try:
        if probe.get("exec") is not None:
            env = {e["name"]: str(e.get("value") or "") for e in container.get("env") or [] if e.get("name")}
            command = [expand(str(arg), env) for arg in probe["exec"].get("command") or []]
            if not command:
                raise ProbeError("the exec probe has no command")
            return await exec_probe(command, container_id, runtime, seconds)
        if probe.get("httpGet") is not None:
            return await http_probe(http_request(probe["httpGet"], container, pod_ip), seconds)
        if probe.get("tcpSocket") is not None:
            tcp = probe["tcpSocket"]
            host = tcp.get("host") or pod_ip
            if not host:
                raise ProbeError("the pod has no IP yet")
            return await tcp_probe(host, resolve_port(tcp.get("port"), container), seconds)
        if probe.get("grpc") is not None:
            grpc = probe["grpc"]
            if not pod_ip:
                raise ProbeError("the pod has no IP yet")
            healthy, message = await health_check(pod_ip, resolve_port(grpc.get("port"), {}),
                                                  str(grpc.get("service") or ""), seconds)
            return ProbeResult(healthy, message)
    except ProbeError as exc:
        return ProbeResult(None, str(exc))
    meta = pod.get("metadata") or {}
    return ProbeResult(None, f"missing probe handler for {meta.get('namespace', '')}/{meta.get('name', '')}:"
                             f"{container.get('name', '')}")
