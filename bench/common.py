"""Shared helpers of the benchmarks: start a real server, load it, read figures.

Benchmarks are scripts, not tests: each prints its figures and the ratio to a reference
measured in the same run.  The server under test is the real ``pybernetes server`` in its own
process (one core); load comes from ``wrk`` where it is installed (Debian package ``wrk``),
else from Python client processes.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def percentile(values: list[float], pct: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(pct / 100 * (len(ordered) - 1))))
    return ordered[index]


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


@dataclass
class Server:
    process: subprocess.Popen
    port: int
    data_dir: str
    startup_seconds: float

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def _wait_ready(url: str, process: subprocess.Popen, deadline: float) -> None:
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}")
        try:
            with urllib.request.urlopen(url + "/readyz", timeout=1) as resp:
                if resp.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.005)
    raise TimeoutError("server did not become ready")


@contextlib.contextmanager
def running_server(extra_args: tuple[str, ...] = (), *, controller_manager: bool = False,
                   scheduler: bool = False) -> Iterator[Server]:
    """Start ``pybernetes server`` on a free port with a fresh data directory (without its
    controller-manager and scheduler children unless asked: the API benchmarks measure the
    API server alone)."""
    data_dir = tempfile.mkdtemp(prefix="pyb-bench-")
    port = free_port()
    cmd = [str(VENV_BIN / "pybernetes"), "server", "--data-dir", data_dir, "--port", str(port),
           "--log-level", "warning", *extra_args]
    if not controller_manager:
        cmd.append("--disable-controller-manager")
    if not scheduler:
        cmd.append("--disable-scheduler")
    started = time.monotonic()
    process = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        _wait_ready(f"http://127.0.0.1:{port}", process, started + 30)
        yield Server(process, port, data_dir, time.monotonic() - started)
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        shutil.rmtree(data_dir, ignore_errors=True)


# --------------------------------------------------------------------------------------
# wrk
# --------------------------------------------------------------------------------------


def have_wrk() -> bool:
    return shutil.which("wrk") is not None


@dataclass
class WrkResult:
    requests_per_second: float
    p50_ms: float
    p99_ms: float
    non_2xx: int


_WRK_REPORT = """
done = function(summary, latency, requests)
  io.write(string.format("RESULT %d %f %f %f %d\\n", summary.requests, summary.duration,
    latency:percentile(50) / 1000, latency:percentile(99) / 1000,
    summary.errors.status + summary.errors.connect + summary.errors.read +
    summary.errors.write + summary.errors.timeout))
end
"""


def run_wrk(url: str, *, seconds: int = 5, connections: int = 32, threads: int = 1,
            script: str = "") -> WrkResult:
    """Run wrk against url with a Lua script (plus a reporting ``done``)."""
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as lua:
        lua.write(script + "\n" + _WRK_REPORT)
        lua_path = lua.name
    try:
        out = subprocess.run(
            ["wrk", "-t", str(threads), "-c", str(connections), "-d", f"{seconds}s",
             "--latency", "-s", lua_path, url],
            check=True, capture_output=True, text=True,
        ).stdout
    finally:
        os.unlink(lua_path)
    for line in out.splitlines():
        if line.startswith("RESULT "):
            _, count, duration_us, p50, p99, errors = line.split()
            return WrkResult(int(count) / (float(duration_us) / 1e6), float(p50), float(p99),
                             int(errors))
    raise RuntimeError("wrk printed no result:\n" + out)


@contextlib.contextmanager
def bare_aiohttp_server() -> Iterator[str]:
    """The reference: a bare aiohttp + uvloop handler returning a 1 KB JSON object."""
    port = free_port()
    code = (
        "import asyncio, uvloop, orjson\n"
        "from aiohttp import web\n"
        "body = orjson.dumps({'kind': 'ConfigMap', 'apiVersion': 'v1', 'metadata': {'name': 'x'},"
        " 'data': {'k': 'v' * 960}})\n"
        "async def handle(request):\n"
        "    return web.Response(body=body, content_type='application/json')\n"
        "app = web.Application()\n"
        "app.router.add_get('/{tail:.*}', handle)\n"
        "uvloop.install()\n"
        f"web.run_app(app, host='127.0.0.1', port={port}, print=None, access_log=None)\n"
    )
    process = subprocess.Popen([sys.executable, "-c", code])
    try:
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/x", timeout=1):
                    break
            except OSError:
                time.sleep(0.02)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(10)


def header(title: str) -> None:
    print(f"\n== {title} ==", flush=True)
