"""``pybernetes server`` / ``up`` as a real process: kubeconfig, 127.0.0.1, data kept, SIGTERM."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import yaml

from pybernetes.cli.main import build_parser, default_data_dir

PYBERNETES = str(Path(sys.executable).parent / "pybernetes")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_ready(url: str, process: subprocess.Popen, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert process.poll() is None, process.stdout.read() if process.stdout else ""
        try:
            with urllib.request.urlopen(url + "/readyz", timeout=1) as resp:
                if resp.status == 200:
                    return
        except OSError:
            time.sleep(0.02)
    raise TimeoutError("server did not become ready")


def _request(url: str, method: str = "GET", body: dict | None = None) -> tuple[int, dict]:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def _stop(process: subprocess.Popen) -> int:
    process.send_signal(signal.SIGTERM)
    try:
        return process.wait(15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
        raise


@pytest.mark.parametrize("command", ["server", "up"])
def test_server_process_lifecycle(tmp_path: Path, command: str):
    data_dir = tmp_path / "data"
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    cmd = [PYBERNETES, command, "--data-dir", str(data_dir), "--port", str(port), "--log-level", "warning"]
    process = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        _wait_ready(url, process)
        kubeconfig = yaml.safe_load((data_dir / "kubeconfig.yaml").read_text())
        assert kubeconfig["clusters"][0]["cluster"]["server"] == url
        assert kubeconfig["current-context"] == "pybernetes"
        assert (data_dir / "kubeconfig.yaml").stat().st_mode & 0o077 == 0
        assert (data_dir / "state.db").exists()
        status, body = _request(f"{url}/api/v1/namespaces/default/configmaps", "POST",
                                {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "kept"}})
        assert status == 201, body
        # a long-running watch must not hold up shutdown
        watch = urllib.request.urlopen(f"{url}/api/v1/configmaps?watch=true", timeout=30)
        started = time.monotonic()
        assert _stop(process) == 0
        assert time.monotonic() - started < 10
        watch.read()
        watch.close()
        output = process.stdout.read() if process.stdout else ""
        assert f"export KUBECONFIG={data_dir / 'kubeconfig.yaml'}" in output
        # the store survives a restart
        process = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        _wait_ready(url, process)
        status, body = _request(f"{url}/api/v1/namespaces/default/configmaps/kept")
        assert status == 200 and body["metadata"]["name"] == "kept"
    finally:
        if process.poll() is None:
            _stop(process)
        if process.stdout:
            process.stdout.close()


def test_listens_on_loopback_only(tmp_path: Path):
    port = _free_port()
    cmd = [PYBERNETES, "server", "--data-dir", str(tmp_path / "d"), "--port", str(port), "--log-level", "warning"]
    process = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait_ready(f"http://127.0.0.1:{port}", process)
        listening = Path("/proc/net/tcp").read_text().splitlines()[1:]
        local = [line.split()[1] for line in listening if line.split()[3] == "0A"]
        mine = [addr for addr in local if int(addr.split(":")[1], 16) == port]
        assert mine == [f"0100007F:{port:04X}"]
    finally:
        _stop(process)


def test_cli_defaults():
    args = build_parser().parse_args(["server"])
    assert args.port == 6443 and args.data_dir is None and args.log_level == "info"
    expected = Path("/var/lib/pybernetes") if os.geteuid() == 0 else Path.home() / ".local/share/pybernetes"
    if os.geteuid() != 0 and os.environ.get("XDG_DATA_HOME"):
        expected = Path(os.environ["XDG_DATA_HOME"]) / "pybernetes"
    assert default_data_dir() == expected
    with pytest.raises(SystemExit):
        build_parser().parse_args([])
