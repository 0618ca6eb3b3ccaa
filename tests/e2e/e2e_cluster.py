"""The harness of the kubectl end-to-end tests: ``pybernetes server`` (or ``up``) as a subprocess on a
free port with a temporary data directory, and kubectl run against it with an isolated HOME
(its discovery and /version caches live there) and the admin kubeconfig the server wrote.

The ``cluster`` fixture (conftest.py) starts one per test module, with the kubectl binary the
module names in its ``KUBECTL`` constant.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

SERVER = Path(sys.executable).parent / "pybernetes"
PROTOBUF = "application/vnd.kubernetes.protobuf"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Cluster:
    def __init__(self, root: Path, kubectl: str, *, command: str = "server", extra: tuple[str, ...] = ()) -> None:
        self.root = root
        self.command = command
        self.extra = extra
        self.kubectl_binary = kubectl
        self.data_dir = root / "data"
        self.home = root / "home"
        self.home.mkdir()
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen | None = None

    @property
    def kubeconfig(self) -> Path:
        return self.data_dir / "kubeconfig.yaml"

    def start(self) -> None:
        cmd = [str(SERVER), self.command, "--data-dir", str(self.data_dir),
               "--port", str(self.port), "--log-level", "warning", *self.extra]
        self.log = open(self.root / "server.log", "wb")  # noqa: SIM115
        self.process = subprocess.Popen(cmd, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError("server exited: " + (self.root / "server.log").read_text())
            try:
                with urllib.request.urlopen(f"{self.url}/readyz", timeout=1) as resp:
                    if resp.status == 200:
                        return
            except OSError:
                time.sleep(0.05)
        raise TimeoutError("server did not become ready")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.process is not None:
            self.log.close()

    def env(self, **extra: str) -> dict[str, str]:
        env = {"HOME": str(self.home), "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
               "KUBECONFIG": str(self.kubeconfig)}
        env.update(extra)
        return env

    def kubectl(self, *args: str, input: str | None = None, check: bool = True,
                env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        cmd = [self.kubectl_binary, "--kubeconfig", str(self.kubeconfig), *args]
        result = subprocess.run(cmd, input=input, capture_output=True, text=True, timeout=60,
                                env=env or self.env())
        if check and result.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed ({result.returncode}):\n"
                                 f"{result.stdout}\n{result.stderr}")
        return result

    def json(self, *args: str) -> dict:
        return orjson.loads(self.kubectl(*args, "-o", "json").stdout)

    def get(self, *args: str) -> dict:
        """``kubectl get ARGS -o json``, decoded."""
        return self.json("get", *args)

    def request(self, method: str, path: str, body: bytes, content_type: str) -> tuple[int, dict]:
        """A raw HTTP request to the server (no kubectl): its status and decoded reply."""
        req = urllib.request.Request(self.url + path, data=body, method=method,
                                     headers={"Content-Type": content_type,
                                              "Accept": f"{PROTOBUF},application/json"})
        try:
            with urllib.request.urlopen(req, timeout=10) as resp:
                return resp.status, orjson.loads(resp.read())
        except urllib.error.HTTPError as err:
            return err.code, orjson.loads(err.read())


def poll(check: Callable[[], Any], what: str, timeout: float = 60.0) -> Any:
    """Call ``check`` until it returns something truthy (that value) or ``timeout`` passes."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}: last {last!r}")
