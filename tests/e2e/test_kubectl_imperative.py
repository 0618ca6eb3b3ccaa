"""kubectl's imperative commands against ``pybernetes server``: protobuf request bodies.

``kubectl create configmap|secret|deployment|...`` use client-go typed clients, which send
``Content-Type: application/vnd.kubernetes.protobuf``; ``kubectl run`` and ``expose`` send JSON.
The server runs as a subprocess on a free port with a temporary data directory; kubectl 1.32
(called directly, not through the version dispatcher) runs with an isolated HOME.
"""

from __future__ import annotations

import base64
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from pybernetes.machinery.protobuf import MAGIC
from pybernetes.machinery.protobuf_wire import encode_field

KUBECTL = "/usr/lib/google-cloud-sdk/bin/kubectl.1.32"
pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(not os.access(KUBECTL, os.X_OK),
                       reason=f"{KUBECTL} is missing (Debian package google-cloud-cli-kubectl / kubectl)"),
]
SERVER = Path(sys.executable).parent / "pybernetes"
PROTOBUF = "application/vnd.kubernetes.protobuf"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Server:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.data_dir = root / "data"
        self.home = root / "home"
        self.home.mkdir()
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = open(root / "server.log", "wb")  # noqa: SIM115
        self.process = subprocess.Popen(
            [str(SERVER), "server", "--data-dir", str(self.data_dir), "--port", str(self.port),
             "--log-level", "warning"],
            stdout=self.log, stderr=subprocess.STDOUT)

    def wait_ready(self) -> None:
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
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.log.close()

    def kubectl(self, *args: str) -> str:
        result = subprocess.run(
            [KUBECTL, "--kubeconfig", str(self.data_dir / "kubeconfig.yaml"), *args],
            capture_output=True, text=True, timeout=60,
            env={"HOME": str(self.home), "PATH": os.environ.get("PATH", "/usr/bin:/bin")})
        assert result.returncode == 0, f"kubectl {' '.join(args)}:\n{result.stdout}\n{result.stderr}"
        return result.stdout

    def get(self, *args: str) -> dict:
        return orjson.loads(self.kubectl("get", *args, "-o", "json"))

    def request(self, method: str, path: str, body: bytes, content_type: str) -> tuple[int, dict]:
        req = urllib.request.Request(self.url + path, data=body, method=method,
                                     headers={"Content-Type": content_type,
                                              "Accept": f"{PROTOBUF},application/json"})
        try:
            with urllib.request.urlopen(req, timeout=10) as resp:
                return resp.status, orjson.loads(resp.read())
        except urllib.error.HTTPError as err:
            return err.code, orjson.loads(err.read())


@pytest.fixture(scope="module")
def server() -> Iterator[Server]:
    root = Path(tempfile.mkdtemp(prefix="pyb-imperative-"))
    srv = Server(root)
    try:
        srv.wait_ready()
        yield srv
    finally:
        srv.stop()
        shutil.rmtree(root, ignore_errors=True)


def test_create_configmap_and_secret(server: Server) -> None:
    server.kubectl("create", "configmap", "x", "--from-literal=a=b")
    assert server.get("configmap", "x")["data"] == {"a": "b"}
    server.kubectl("create", "secret", "generic", "s", "--from-literal=p=q")
    secret = server.get("secret", "s")
    assert secret["data"] == {"p": base64.b64encode(b"q").decode()}
    assert secret["type"] == "Opaque"


def test_create_workloads(server: Server) -> None:
    server.kubectl("create", "deployment", "d", "--image=nginx", "--replicas=2")
    deployment = server.get("deployment", "d")
    assert deployment["spec"]["replicas"] == 2
    assert deployment["spec"]["selector"] == {"matchLabels": {"app": "d"}}
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == "nginx" and container["name"] == "nginx"
    assert container["terminationMessagePath"] == "/dev/termination-log"  # defaulted: "" was not sent

    server.kubectl("create", "job", "j", "--image=busybox")
    job = server.get("job", "j")
    assert job["spec"]["template"]["spec"]["containers"][0]["image"] == "busybox"
    assert job["spec"]["template"]["spec"]["restartPolicy"] == "Never"

    server.kubectl("create", "cronjob", "c", "--image=busybox", "--schedule=*/5 * * * *")
    cronjob = server.get("cronjob", "c")
    assert cronjob["spec"]["schedule"] == "*/5 * * * *"
    assert cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"]["restartPolicy"] == "OnFailure"

    server.kubectl("run", "p", "--image=busybox")
    assert server.get("pod", "p")["spec"]["containers"][0]["image"] == "busybox"


def test_create_services(server: Server) -> None:
    server.kubectl("create", "service", "clusterip", "svc", "--tcp=80:8080")
    service = server.get("service", "svc")
    assert service["spec"]["ports"][0]["port"] == 80
    assert service["spec"]["ports"][0]["targetPort"] == 8080
    assert service["spec"]["type"] == "ClusterIP"

    server.kubectl("create", "deployment", "web", "--image=nginx")
    server.kubectl("expose", "deployment", "web", "--port=80")
    exposed = server.get("service", "web")
    assert exposed["spec"]["selector"] == {"app": "web"}
    assert exposed["spec"]["ports"][0]["port"] == 80

    server.kubectl("create", "ingress", "i", "--rule=foo.com/bar=svc:80")
    rule = server.get("ingress", "i")["spec"]["rules"][0]
    assert rule["host"] == "foo.com"
    path = rule["http"]["paths"][0]
    assert path["path"] == "/bar" and path["pathType"] == "Exact"
    assert path["backend"]["service"] == {"name": "svc", "port": {"number": 80}}


def test_create_cluster_objects(server: Server) -> None:
    server.kubectl("create", "namespace", "n")
    assert server.get("namespace", "n")["status"]["phase"] == "Active"
    server.kubectl("create", "priorityclass", "pc", "--value=100")
    priority_class = server.get("priorityclass", "pc")
    assert priority_class["value"] == 100
    assert priority_class["preemptionPolicy"] == "PreemptLowerPriority"


def test_create_rbac_and_policy(server: Server) -> None:
    server.kubectl("create", "serviceaccount", "sa")
    assert server.get("serviceaccount", "sa")["metadata"]["name"] == "sa"

    server.kubectl("create", "role", "r", "--verb=get", "--resource=pods")
    assert server.get("role", "r")["rules"] == [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]}]
    server.kubectl("create", "rolebinding", "rb", "--role=r", "--user=u")
    binding = server.get("rolebinding", "rb")
    assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "r"}
    assert binding["subjects"] == [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "u"}]
    server.kubectl("create", "clusterrole", "cr", "--verb=list", "--resource=nodes")
    assert server.get("clusterrole", "cr")["rules"][0]["verbs"] == ["list"]
    server.kubectl("create", "clusterrolebinding", "crb", "--clusterrole=cr", "--user=u")
    assert server.get("clusterrolebinding", "crb")["roleRef"]["name"] == "cr"

    server.kubectl("create", "quota", "q", "--hard=pods=3")
    assert server.get("resourcequota", "q")["spec"]["hard"] == {"pods": "3"}
    server.kubectl("create", "pdb", "p", "--selector=a=b", "--min-available=1")
    pdb = server.get("pdb", "p")
    assert pdb["spec"]["minAvailable"] == 1
    assert pdb["spec"]["selector"] == {"matchLabels": {"a": "b"}}


def test_protobuf_delete_options_and_malformed_bodies(server: Server) -> None:
    server.kubectl("create", "configmap", "gone", "--from-literal=k=v")
    options = encode_field(4, "Background") + encode_field(5, "All")  # propagationPolicy, dryRun
    body = MAGIC + encode_field(1, encode_field(1, "v1") + encode_field(2, "DeleteOptions")) + \
        encode_field(2, options)
    status, _ = server.request("DELETE", "/api/v1/namespaces/default/configmaps/gone", body, PROTOBUF)
    assert status == 200
    assert server.get("configmap", "gone")["metadata"]["name"] == "gone"  # dryRun: still there
    body = MAGIC + encode_field(1, encode_field(1, "v1") + encode_field(2, "DeleteOptions"))
    status, _ = server.request("DELETE", "/api/v1/namespaces/default/configmaps/gone", body, PROTOBUF)
    assert status == 200
    status, reply = server.request("GET", "/api/v1/namespaces/default/configmaps/gone", b"", "")
    assert status == 404

    status, reply = server.request("POST", "/api/v1/namespaces/default/configmaps",
                                   MAGIC + b"\x12\x05ab", PROTOBUF)
    assert status == 400 and reply["kind"] == "Status"
    assert "invalid protobuf body" in reply["message"]
