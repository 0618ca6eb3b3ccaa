"""``pybernetes dns`` and ``pybernetes proxy`` as real processes: flags, the API server they
follow, bad flags refused, SIGTERM ending them with their state cleaned up."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from dnslib import QTYPE, DNSRecord

PYBERNETES = str(Path(sys.executable).parent / "pybernetes")


def _free_port(kind: int = socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _ask(port: int, name: str) -> DNSRecord | None:
    try:
        reply = DNSRecord.question(name, "A").send("127.0.0.1", port, timeout=1)
    except OSError:
        return None
    return DNSRecord.parse(reply)


def test_dns_command_answers_from_the_api_server_and_ends_on_sigterm(threaded_api_server) -> None:
    port = _free_port(socket.SOCK_DGRAM)
    process = subprocess.Popen([PYBERNETES, "dns", "--server", threaded_api_server.url, "--listen",
                                f"127.0.0.1:{port}", "--metrics-port", "-1", "--upstream", "127.0.0.1:9"],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 30
        answer = None
        while time.monotonic() < deadline:
            assert process.poll() is None, process.stdout.read().decode() if process.stdout else ""
            answer = _ask(port, "kubernetes.default.svc.cluster.local")
            if answer is not None and answer.rr:
                break
            time.sleep(0.1)
        assert answer is not None and [str(rr.rdata) for rr in answer.rr] == ["10.43.0.1"]
        assert QTYPE[answer.rr[0].rtype] == "A"
        assert str(_ask(port, "kube-dns.kube-system.svc.cluster.local").rr[0].rdata) == "10.43.0.10"
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(15) == 0


def test_dns_command_refuses_bad_flags() -> None:
    result = subprocess.run([PYBERNETES, "dns", "--server", "http://127.0.0.1:1", "--listen", "127.0.0.1:99999"],
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 2 and "invalid address" in result.stderr


@pytest.mark.skipif(os.geteuid() != 0 or shutil.which("nft") is None, reason="needs root and nft")
def test_proxy_cleanup_removes_its_tables_and_nothing_else() -> None:
    names = ("pybt-cli-proxy", "pybt-cli-netpol", "pybt-cli-other")
    try:
        for name in names:
            subprocess.run(["nft", "add", "table", "ip", name], check=True)
        result = subprocess.run([PYBERNETES, "proxy", "--cleanup", "--table", names[0], "--netpol-table", names[1]],
                                capture_output=True, text=True, timeout=30)
        assert result.returncode == 0, result.stderr
        tables = subprocess.run(["nft", "list", "tables"], capture_output=True, text=True).stdout
        assert names[0] not in tables and names[1] not in tables and names[2] in tables
    finally:
        for name in names:
            subprocess.run(["nft", "delete", "table", "ip", name], capture_output=True)
