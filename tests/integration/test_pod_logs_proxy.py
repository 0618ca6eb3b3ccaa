"""pods/log through the in-process API server, proxied to a real KubeletServer on 127.0.0.1
that a Node's status points at (the kubelet's pod workers replaced by a fake resolver over
log files in a temp directory): the raw HTTP API with its options and errors, discovery,
the real kubectl 1.32 (`kubectl logs` plain, -f, --tail, --timestamps, --since, -c,
--previous) and the official client's read_namespaced_pod_log."""

from __future__ import annotations

import asyncio
import os
import socket
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import pytest
from kubectl_cli import KUBECTL, kubectl_in_thread, needs_kubectl

from pybernetes.kubelet.logs import KubeletLookupError, LogTarget
from pybernetes.kubelet.server import KubeletServer

NS = "default"
T0 = int(time.time()) - 100  # the lines were written in the last two minutes


def stamp(second: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(T0 + second)) + ".250000000Z"


def printed(second: int) -> str:
    """The time as the kubelet prints it (RFC 3339, trailing zeros trimmed)."""
    return stamp(second)[:-11] + ".25Z"


def rec(second: int, content: str, stream: str = "stdout", tag: str = "F") -> bytes:
    return f"{stamp(second)} {stream} {tag} {content}\n".encode()


def append(path: Path, data: bytes) -> None:
    with open(path, "ab") as f:
        f.write(data)


@dataclass
class FakeKubelet:
    """The node's containers: (pod, container) → log file; running flags."""

    root: Path
    running: dict[tuple[str, str], bool] = field(default_factory=dict)
    asked: list[tuple[str, str, str, bool]] = field(default_factory=list)

    def path(self, pod: str, container: str, previous: bool = False) -> Path:
        return self.root / f"{pod}_{container}{'_0' if previous else '_1'}.log"

    def add(self, pod: str, container: str, *records: bytes, running: bool = False) -> None:
        self.path(pod, container).write_bytes(b"".join(records))
        self.running[(pod, container)] = running

    async def resolve(self, namespace: str, pod: str, container: str, previous: bool) -> LogTarget:
        self.asked.append((namespace, pod, container, previous))
        key = (pod, container)
        if key not in self.running:
            raise LookupError(f'container "{container}" not found in pod "{pod}"')
        if pod == "starting":
            raise KubeletLookupError(400, f'container "{container}" in pod "{pod}" is waiting to start: '
                                          "ContainerCreating")
        if previous and not self.path(pod, container, True).exists():
            raise KubeletLookupError(400, f'previous terminated container "{container}" in pod "{pod}" '
                                          "not found")
        return LogTarget(self.path(pod, container, previous), [], lambda: self.running[key])


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def node(name: str, port: int, address_type: str = "InternalIP") -> dict:
    return {"apiVersion": "v1", "kind": "Node", "metadata": {"name": name},
            "status": {"addresses": [{"type": address_type, "address": "127.0.0.1"}],
                       "daemonEndpoints": {"kubeletEndpoint": {"Port": port}}}}


def pod(name: str, containers: list[str], node_name: str | None = "n1", init: list[str] = ()) -> dict:
    spec: dict = {"containers": [{"name": c, "image": "busybox"} for c in containers]}
    if init:
        spec["initContainers"] = [{"name": c, "image": "busybox"} for c in init]
    if node_name:
        spec["nodeName"] = node_name
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": NS}, "spec": spec}


async def post(http: aiohttp.ClientSession, path: str, body: dict) -> None:
    async with http.post(path, json=body) as resp:
        assert resp.status == 201, await resp.text()


async def setup_cluster(http: aiohttp.ClientSession, fake: FakeKubelet, port: int) -> None:
    await post(http, "/api/v1/nodes", node("n1", port))
    await post(http, "/api/v1/nodes", node("by-hostname", port, "Hostname"))
    await post(http, "/api/v1/nodes", node("down", free_port()))
    fake.add("web", "app", rec(0, "one"), rec(1, "two", "stderr"), rec(2, "thr", tag="P"), rec(2, "ee"),
             running=True)
    fake.path("web", "app", previous=True).write_bytes(rec(-50, "the first run"))
    fake.add("multi", "a", rec(0, "from a"))
    fake.add("multi", "b", rec(0, "from b"))
    fake.add("multi", "setup", rec(0, "from setup"))
    fake.add("starting", "app")
    fake.add("empty", "app")
    fake.add("named", "app")
    for body in (pod("web", ["app"]), pod("multi", ["a", "b"], init=["setup"]), pod("pending", ["app"], None),
                 pod("starting", ["app"]), pod("gone", ["app"], "ghost"), pod("lost", ["app"], "down"),
                 pod("named", ["app"], "by-hostname"), pod("empty", ["app"])):
        await post(http, f"/api/v1/namespaces/{NS}/pods", body)


@pytest.fixture
async def cluster(api_server, http, tmp_path) -> AsyncIterator[tuple[aiohttp.ClientSession, FakeKubelet]]:
    fake = FakeKubelet(tmp_path)
    kubelet = KubeletServer(fake.resolve, host="127.0.0.1", port=0, poll_interval=0.02)
    port = await kubelet.start()
    try:
        await setup_cluster(http, fake, port)
        yield http, fake
    finally:
        await kubelet.stop()


async def get_log(http: aiohttp.ClientSession, name: str, **params: str) -> tuple[int, str]:
    async with http.get(f"/api/v1/namespaces/{NS}/pods/{name}/log", params=params) as resp:
        return resp.status, await resp.text()


async def get_status(http: aiohttp.ClientSession, name: str, **params: str) -> dict:
    async with http.get(f"/api/v1/namespaces/{NS}/pods/{name}/log", params=params) as resp:
        body = await resp.json()
        assert resp.status == body["code"], body
        assert body["kind"] == "Status" and body["status"] == "Failure"
        return body


async def test_logs_and_options_through_the_api(cluster):
    http, fake = cluster
    async with http.get(f"/api/v1/namespaces/{NS}/pods/web/log") as resp:
        assert resp.status == 200
        assert resp.headers["Content-Type"].startswith("text/plain")
        assert resp.headers.get("Transfer-Encoding") == "chunked"
        assert await resp.text() == "one\ntwo\nthree\n"
    assert fake.asked[-1] == (NS, "web", "app", False)
    assert await get_log(http, "web", tailLines="1") == (200, "three\n")
    assert await get_log(http, "web", limitBytes="5") == (200, "one\nt")
    assert await get_log(http, "web", timestamps="true", tailLines="2") == (
        200, f"{printed(1)} two\n{printed(2)} three\n")
    assert await get_log(http, "web", sinceTime=stamp(1)[:-11] + "Z") == (200, "two\nthree\n")
    assert await get_log(http, "web", sinceSeconds="3600") == (200, "one\ntwo\nthree\n")
    assert await get_log(http, "web", previous="true") == (200, "the first run\n")
    assert await get_log(http, "web", insecureSkipTLSVerifyBackend="true") == (200, "one\ntwo\nthree\n")
    assert await get_log(http, "multi", container="setup") == (200, "from setup\n")
    assert await get_log(http, "named") == (200, "")  # a kubelet found by its Hostname address
    assert fake.asked[-1] == (NS, "named", "app", False)


async def test_bad_requests(cluster):
    http, _ = cluster
    body = await get_status(http, "multi")
    assert (body["code"], body["reason"]) == (400, "BadRequest")
    assert body["message"] == "a container name must be specified for pod multi, choose one of: [setup a b]"
    body = await get_status(http, "web", container="nope")
    assert (body["code"], body["message"]) == (400, "container nope is not valid for pod web")
    body = await get_status(http, "pending")
    assert (body["code"], body["message"]) == (400, "pod pending does not have a host assigned")
    body = await get_status(http, "web", tailLines="lots")
    assert (body["code"], body["message"]) == (400, 'strconv.ParseInt: parsing "lots": invalid syntax')
    body = await get_status(http, "web", follow="maybe")
    assert body["code"] == 400 and "follow" in body["message"]
    body = await get_status(http, "web", sinceTime="yesterday")
    assert body["code"] == 400 and '"yesterday"' in body["message"]
    body = await get_status(http, "web", tailLines="-1")
    assert (body["code"], body["reason"]) == (422, "Invalid")
    assert body["message"] == ('PodLogOptions "web" is invalid: tailLines: Invalid value: -1: '
                               "must be greater than or equal to 0")
    body = await get_status(http, "web", limitBytes="0")
    assert body["code"] == 422 and "limitBytes: Invalid value: 0: must be greater than 0" in body["message"]
    body = await get_status(http, "web", sinceSeconds="10", sinceTime=stamp(0)[:-11] + "Z")
    assert body["code"] == 422
    assert "at most one of `sinceTime` or `sinceSeconds` may be specified" in body["message"]
    body = await get_status(http, "web", sinceSeconds="0")
    assert body["code"] == 422 and "sinceSeconds" in body["message"]
    body = await get_status(http, "absent")
    assert (body["code"], body["message"]) == (404, 'pods "absent" not found')
    async with http.post(f"/api/v1/namespaces/{NS}/pods/web/log", json={}) as resp:
        assert resp.status == 405


async def test_kubelet_and_node_errors(cluster):
    http, _ = cluster
    body = await get_status(http, "starting")
    assert (body["code"], body["reason"]) == (400, "BadRequest")
    assert body["message"] == 'container "app" in pod "starting" is waiting to start: ContainerCreating'
    body = await get_status(http, "empty", previous="true")
    assert (body["code"], body["message"]) == (400, 'previous terminated container "app" in pod "empty" not found')
    body = await get_status(http, "gone")
    assert (body["code"], body["message"]) == (404, 'nodes "ghost" not found')
    body = await get_status(http, "lost")
    assert body["code"] == 500
    assert body["message"].startswith('Get "http://127.0.0.1:')
    assert "/containerLogs/default/lost/app" in body["message"]
    assert body["message"].endswith(": connect: connection refused")


async def test_follow_streams_through_the_api(cluster):
    http, fake = cluster
    async with http.get(f"/api/v1/namespaces/{NS}/pods/web/log", params={"follow": "true"}) as resp:
        assert resp.status == 200
        got = b""
        async with asyncio.timeout(10):
            while not got.endswith(b"three\n"):
                got += await resp.content.readany()
            append(fake.path("web", "app"), rec(3, "four"))
            while not got.endswith(b"four\n"):
                got += await resp.content.readany()
            fake.running[("web", "app")] = False
            got += await resp.content.read()  # ends with the container
    assert got == b"one\ntwo\nthree\nfour\n"


async def test_a_client_leaving_a_follow_closes_the_kubelet_stream(cluster):
    http, fake = cluster
    path = fake.path("web", "app")
    resp = await http.get(f"/api/v1/namespaces/{NS}/pods/web/log", params={"follow": "true"})
    try:
        async with asyncio.timeout(10):
            got = b""
            while not got.endswith(b"three\n"):
                got += await resp.content.readany()
        assert open_fds(path) == 1
    finally:
        resp.close()
    await no_open_fds(path)


async def no_open_fds(path: Path, deadline: float = 10.0) -> None:
    """Polls until no descriptor of this process refers to ``path``."""
    end = time.monotonic() + deadline
    while True:
        left = open_fds(path)
        if not left:
            return
        if time.monotonic() > end:
            pytest.fail(f"{path} is still open {deadline}s after the client left")
        await asyncio.sleep(0.02)


def open_fds(path: Path) -> int:
    count = 0
    for fd in os.listdir("/proc/self/fd"):
        try:
            count += os.readlink(f"/proc/self/fd/{fd}") == str(path)
        except OSError:
            continue
    return count


async def test_discovery_lists_pods_log(cluster):
    http, _ = cluster
    async with http.get("/api/v1") as resp:
        resources = {r["name"]: r for r in (await resp.json())["resources"]}
    assert resources["pods/log"]["verbs"] == ["get"]
    assert resources["pods/log"]["kind"] == "Pod"


# -- the real kubectl -------------------------------------------------------------------------------


async def kubectl_logs(server: str, home: Path, *args: str) -> str:
    result = await kubectl_in_thread(server, home, "-n", NS, "logs", *args)
    assert result.returncode == 0, f"kubectl logs {' '.join(args)}: {result.stdout}{result.stderr}"
    return result.stdout


@needs_kubectl
async def test_kubectl_logs(api_server, cluster, tmp_path):
    url = api_server.url
    home = tmp_path / "home"
    home.mkdir()
    assert await kubectl_logs(url, home, "web") == "one\ntwo\nthree\n"
    assert await kubectl_logs(url, home, "web", "--tail=2") == "two\nthree\n"
    assert await kubectl_logs(url, home, "pod/web", "--timestamps", "--tail=1") == f"{printed(2)} three\n"
    assert await kubectl_logs(url, home, "web", "--since=1h") == "one\ntwo\nthree\n"
    assert await kubectl_logs(url, home, "web", "--previous") == "the first run\n"
    assert await kubectl_logs(url, home, "multi", "-c", "b") == "from b\n"
    assert await kubectl_logs(url, home, "multi", "-c", "setup") == "from setup\n"
    failed = await kubectl_in_thread(url, home, "-n", NS, "logs", "starting")
    assert failed.returncode != 0
    assert 'container "app" in pod "starting" is waiting to start: ContainerCreating' in failed.stderr
    failed = await kubectl_in_thread(url, home, "-n", NS, "logs", "multi", "-c", "nope")
    assert "container nope is not valid for pod multi" in failed.stderr
    failed = await kubectl_in_thread(url, home, "-n", NS, "logs", "lost")
    assert failed.returncode != 0
    assert "/containerLogs/default/lost/app" in failed.stderr, failed.stderr
    assert "connect: connection refused" in failed.stderr, failed.stderr


@needs_kubectl
async def test_kubectl_logs_follow(api_server, cluster, tmp_path):
    _, fake = cluster
    home = tmp_path / "home"
    home.mkdir()
    env = {**os.environ, "HOME": str(home), "KUBECONFIG": str(home / "none")}
    process = await asyncio.create_subprocess_exec(
        KUBECTL, "--server", api_server.url, "-n", NS, "logs", "-f", "web",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env)
    try:
        assert process.stdout is not None
        async with asyncio.timeout(30):
            assert [await process.stdout.readline() for _ in range(3)] == [b"one\n", b"two\n", b"three\n"]
            append(fake.path("web", "app"), rec(3, "four"))
            assert await process.stdout.readline() == b"four\n"
            fake.running[("web", "app")] = False
            assert await process.stdout.read() == b""
            assert await process.wait() == 0
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


# -- the official client ----------------------------------------------------------------------------


def test_official_client_reads_pod_logs(threaded_api_server, k8s_api_client, tmp_path):
    kubernetes = pytest.importorskip("kubernetes")
    fake = FakeKubelet(tmp_path)
    kubelet = KubeletServer(fake.resolve, host="127.0.0.1", port=0, poll_interval=0.02)
    port = threaded_api_server.run(kubelet.start())
    try:
        core = kubernetes.client.CoreV1Api(k8s_api_client)
        core.create_node(node("n1", port))
        fake.add("web", "app", rec(0, "one"), rec(1, "two"), running=False)
        fake.add("web", "side", rec(0, "side line"))
        core.create_namespaced_pod(NS, pod("web", ["app", "side"]))
        assert core.read_namespaced_pod_log("web", NS, container="app") == "one\ntwo\n"
        assert core.read_namespaced_pod_log("web", NS, container="app", tail_lines=1, timestamps=True) == (
            f"{printed(1)} two\n")
        assert core.read_namespaced_pod_log("web", NS, container="side", limit_bytes=4) == "side"
        streamed = core.read_namespaced_pod_log("web", NS, container="app", follow=True,
                                                _preload_content=False)
        assert b"".join(streamed.stream()) == b"one\ntwo\n"
        with pytest.raises(kubernetes.client.ApiException) as err:
            core.read_namespaced_pod_log("web", NS)
        assert err.value.status == 400 and "choose one of: [app side]" in err.value.body
    finally:
        threaded_api_server.run(kubelet.stop())
