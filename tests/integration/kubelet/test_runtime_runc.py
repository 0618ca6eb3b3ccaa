"""The runc runtime for real (root, runc, conmon, CNI plugins, busybox-static): the runtime
contract, pod networking, cgroups and OOM kills, users, start errors, adoption by a restarted
kubelet, and that nothing is left once a pod is removed.

Each test gets its own runtime root, bridge (``pybt<hex>``), pod CIDR and cgroup root; the
fixture removes whatever a test leaves, even when it fails.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import json
import os
import random
import secrets
import shutil
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest

SUPPORT = Path(__file__).resolve().parents[2] / "support"
sys.path.insert(0, str(SUPPORT))
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "unit" / "kubelet"))
import busybox_image  # noqa: E402
from runtime_contract import RuntimeContract, sandbox_config, wait_state  # noqa: E402

from pybernetes.kubelet.runtime import kernel  # noqa: E402
from pybernetes.kubelet.runtime.images import ImageStore, normalize_ref  # noqa: E402
from pybernetes.kubelet.runtime.protocol import (  # noqa: E402
    ContainerConfig,
    ContainerState,
    DNSConfig,
    Mount,
    PodSandboxConfig,
    PortMapping,
    Resources,
    RuntimeError_,
    SecurityContext,
)
from pybernetes.kubelet.runtime.runc import RuncRuntime  # noqa: E402

IMAGE = "pybernetes.test/busybox:1"
APP_IMAGE = "pybernetes.test/busybox-app:1"  # User "app" (1000)
CNI_BIN = "/usr/lib/cni"


def _missing() -> str:
    if os.geteuid() != 0:
        return "the runc runtime needs root"
    for binary in ("runc", "conmon", "ip"):
        if shutil.which(binary) is None:
            return f"{binary} is not installed (Debian packages runc, conmon, iproute2)"
    if not busybox_image.available():
        return "busybox-static is not installed"
    if not os.access(f"{CNI_BIN}/bridge", os.X_OK):
        return "containernetworking-plugins is not installed"
    return ""


pytestmark = pytest.mark.skipif(bool(_missing()), reason=_missing() or "ok")


@pytest.fixture(scope="module")
def tarballs(tmp_path_factory) -> dict[str, Path]:
    directory = tmp_path_factory.mktemp("images")
    busybox_image.build_tarball(directory / "busybox.tar", IMAGE)
    busybox_image.build_tarball(directory / "app.tar", APP_IMAGE, user="app")
    return {normalize_ref(IMAGE): directory / "busybox.tar", normalize_ref(APP_IMAGE): directory / "app.tar"}


@dataclass
class Node:
    runtime: RuncRuntime
    root: Path
    store: ImageStore
    options: dict

    def fresh(self) -> RuncRuntime:
        """Another RuncRuntime on the same root (a restarted kubelet)."""
        return RuncRuntime(self.root, self.store, **self.options)


def _puller(store: ImageStore, tarballs: dict[str, Path]):
    async def pull(ref: str, auth: dict[str, str] | None) -> object:
        tarball = tarballs.get(normalize_ref(ref))
        if tarball is None:
            raise RuntimeError_("ErrImagePull", f"failed to pull {ref!r}: not found")
        return (await asyncio.to_thread(store.import_archive, tarball))[0]

    return pull


def _cleanup(node: Node) -> None:
    """Remove whatever a test left (through a fresh runtime that reads the state on disk), then
    the node-wide things: the bridge, the cgroup root, stray mounts."""

    async def remove_all() -> list[str]:
        runtime = node.fresh()
        ids = [s.id for s in await runtime.list_pod_sandboxes()]
        for sandbox_id in ids:
            with contextlib.suppress(Exception):
                await runtime.remove_pod_sandbox(sandbox_id)
        for container in await runtime.list_containers():
            with contextlib.suppress(Exception):
                await runtime.remove_container(container.id)
        return ids

    ids = asyncio.run(remove_all()) if node.root.exists() else []
    for sandbox_id in ids:
        kernel.remove_namespace(Path("/run/netns") / f"pyb-{sandbox_id[:12]}")
    subprocess.run(["ip", "link", "del", node.options["bridge"]], capture_output=True)
    subprocess.run(["nft", "delete", "table", "ip", f"pybernetes-masq-{node.options['bridge']}"], capture_output=True)
    node.runtime.cgroups.remove(node.options["cgroup_root"])
    with open("/proc/self/mountinfo") as mountinfo:
        stray = [line.split()[4] for line in mountinfo if str(node.root) in line.split()[4]]
    for target in sorted(stray, key=len, reverse=True):
        kernel.umount(target)
    shutil.rmtree(node.root, ignore_errors=True)


@pytest.fixture
def node(tmp_path: Path, tarballs):
    root = tmp_path / "runtime"
    store = ImageStore(tmp_path / "images")
    options = {"pod_cidr": f"10.{random.randint(200, 250)}.{random.randint(0, 255)}.0/24",
               "bridge": f"pybt{secrets.token_hex(4)}", "cgroup_root": f"/pybt-{secrets.token_hex(4)}",
               "cni_bin_dir": CNI_BIN, "puller": _puller(store, tarballs)}
    node = Node(RuncRuntime(root, store, **options), root, store, options)
    try:
        yield node
    finally:
        _cleanup(node)


def sh(name: str, script: str, image: str = IMAGE, **kw) -> ContainerConfig:
    return ContainerConfig(name=name, image=image, command=["sh", "-c", script], **kw)


def sleeper(name: str, image: str = IMAGE, **kw) -> ContainerConfig:
    """Runs until stopped, and ends at once on SIGTERM (as PID 1, it needs a handler)."""
    return sh(name, "trap 'exit 143' TERM; sleep 3600 & wait", image, **kw)


class TestRuncRuntime(RuntimeContract):
    @pytest.fixture
    def runtime(self, node):
        return node.runtime

    @pytest.fixture
    def image(self) -> str:
        return normalize_ref(IMAGE)

    @pytest.fixture
    def missing_image(self) -> str:
        return "pybernetes.test/none:1"

    @pytest.fixture
    def sleeper(self):
        return sleeper

    @pytest.fixture
    def exiter(self):
        return lambda name, code: sh(name, f"sleep 0.05; exit {code}")

    @pytest.fixture
    def stubborn(self):
        return lambda name: sh(name, "trap '' TERM; sleep 3600 & wait")


def _processes_running(argv: list[str]) -> list[int]:
    """Host pids whose command line is ``argv``."""
    want = ("\0".join(argv) + "\0").encode()
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/cmdline", "rb") as cmdline:
                    if cmdline.read() == want:
                        found.append(int(entry))
            except OSError:
                pass
    return found


async def eventually(check, within: float = 15.0, every: float = 0.1):
    """Poll the async ``check`` until it returns something truthy; its last error otherwise."""
    deadline = time.monotonic() + within
    while True:
        try:
            result = await check()
            if result:
                return result
        except (RuntimeError_, AssertionError, OSError):
            if time.monotonic() > deadline:
                raise
        if time.monotonic() > deadline:
            pytest.fail(f"condition not met within {within}s (last: {result!r})")
        await asyncio.sleep(every)


async def run(rt: RuncRuntime, sandbox: str, config: ContainerConfig) -> str:
    container = await rt.create_container(sandbox, config)
    await rt.start_container(container)
    return container


async def exec_out(rt: RuncRuntime, container: str, *argv: str) -> str:
    result = await rt.exec_sync(container, list(argv), 10)
    assert result.exit_code == 0, result
    return result.stdout.decode()


HTTPD = "echo hello-from-$(hostname) > /var/www/index.html && exec httpd -f -p 8080 -h /var/www"


async def test_containers_of_a_pod_share_localhost_and_pods_reach_each_others_ip(node) -> None:
    rt = node.runtime
    await rt.pull_image(IMAGE)
    web = await rt.run_pod_sandbox(sandbox_config("web"))
    await run(rt, web, sh("httpd", HTTPD))
    sidecar = await run(rt, web, sleeper("sidecar"))
    fetch = ("wget", "-q", "-O", "-", "http://127.0.0.1:8080/")
    assert await eventually(lambda: exec_out(rt, sidecar, *fetch)) == "hello-from-web\n"
    await exec_out(rt, sidecar, "sh", "-c", "echo shared > /dev/shm/x")
    reader = await run(rt, web, sh("reader", "cat /dev/shm/x; sleep 3600"))
    assert (await exec_out(rt, reader, "cat", "/dev/shm/x")) == "shared\n"  # one /dev/shm per pod
    dns = DNSConfig(servers=["10.96.0.10"], searches=["default.svc.cluster.local", "svc.cluster.local"],
                    options=["ndots:5"])
    other = await rt.run_pod_sandbox(sandbox_config("client", dns=dns))
    client = await run(rt, other, sleeper("client"))
    assert await exec_out(rt, client, "cat", "/etc/resolv.conf") == (
        "search default.svc.cluster.local svc.cluster.local\nnameserver 10.96.0.10\noptions ndots:5\n")
    web_ip = (await rt.pod_sandbox_status(web)).ip
    assert ipaddress.ip_address(web_ip) in ipaddress.ip_network(node.options["pod_cidr"])
    assert await eventually(lambda: exec_out(rt, client, "wget", "-q", "-O", "-", f"http://{web_ip}:8080/")) \
        == "hello-from-web\n"
    assert (await exec_out(rt, client, "hostname")).strip() == "client"
    assert f"{(await rt.pod_sandbox_status(other)).ip}\tclient" in await exec_out(rt, client, "cat", "/etc/hosts")


async def test_a_memory_limit_is_in_the_cgroup_and_a_memory_hog_is_oom_killed(node) -> None:
    rt = node.runtime
    await rt.pull_image(IMAGE)
    sandbox = await rt.run_pod_sandbox(sandbox_config("hog"))
    limit = 32 << 20
    quiet = await run(rt, sandbox, sleeper("quiet", resources=Resources(memory_limit=limit, cpu_shares=256,
                                                                        cpu_quota=20_000, pids_limit=50)))
    inside = "/sys/fs/cgroup/memory.max" if rt.cgroups.v2 else "/sys/fs/cgroup/memory/memory.limit_in_bytes"
    assert int(await exec_out(rt, quiet, "cat", inside)) == limit
    cgroup = f"{node.options['cgroup_root']}/poduid-hog/{quiet}"
    assert rt.cgroups.memory_limit(cgroup) == limit
    if not rt.cgroups.v2:
        assert int(await exec_out(rt, quiet, "cat", "/sys/fs/cgroup/cpu/cpu.cfs_quota_us")) == 20_000
        assert int(await exec_out(rt, quiet, "cat", "/sys/fs/cgroup/pids/pids.max")) == 50
    hog = await run(rt, sandbox, sh("hog", "dd if=/dev/zero of=/dev/null bs=128M count=1",
                                    resources=Resources(memory_limit=16 << 20)))
    status = await wait_state(rt, hog, ContainerState.EXITED, within=30)
    assert (status.reason, status.exit_code) == ("OOMKilled", 137)
    assert (await rt.container_status(quiet)).state is ContainerState.RUNNING


async def test_the_image_user_and_run_as_non_root(node) -> None:
    rt = node.runtime
    await rt.pull_image(IMAGE)
    await rt.pull_image(APP_IMAGE)
    sandbox = await rt.run_pod_sandbox(sandbox_config("users"))
    app = await run(rt, sandbox, sleeper("app", APP_IMAGE))
    assert (await exec_out(rt, app, "id")).split()[:2] == ["uid=1000(app)", "gid=1000(app)"]
    with pytest.raises(RuntimeError_) as err:
        await rt.create_container(sandbox, sleeper("root", security=SecurityContext(run_as_non_root=True)))
    assert err.value.reason == "CreateContainerConfigError"
    assert "container has runAsNonRoot and image will run as root" in err.value.message
    chosen = await run(rt, sandbox, sleeper("chosen", security=SecurityContext(
        run_as_non_root=True, run_as_user=1000, run_as_group=3000, supplemental_groups=[4000])))
    assert (await exec_out(rt, chosen, "id")).split() == ["uid=1000(app)", "gid=3000", "groups=4000"]
    assert [c.config.name for c in await rt.list_containers(sandbox)] == ["app", "chosen"]


async def test_a_command_missing_from_the_image_is_a_run_container_error_on_start(node) -> None:
    rt = node.runtime
    await rt.pull_image(IMAGE)
    sandbox = await rt.run_pod_sandbox(sandbox_config("bad"))
    container = await rt.create_container(sandbox, ContainerConfig(name="x", image=IMAGE, command=["no-such-cmd"]))
    with pytest.raises(RuntimeError_) as err:
        await rt.start_container(container)
    assert err.value.reason == "RunContainerError"
    assert 'exec: "no-such-cmd": executable file not found in $PATH' in err.value.message
    status = await rt.container_status(container)
    assert status.state is ContainerState.EXITED and status.reason == "StartError"
    await rt.remove_container(container)


ADOPT = """
import asyncio, json, sys
from pathlib import Path
from pybernetes.kubelet.runtime.images import ImageStore
from pybernetes.kubelet.runtime.protocol import ContainerConfig, PodSandboxConfig
from pybernetes.kubelet.runtime.runc import RuncRuntime

async def main():
    root, images, options, image = sys.argv[1], sys.argv[2], json.loads(sys.argv[3]), sys.argv[4]
    rt = RuncRuntime(Path(root), ImageStore(images), **options)
    sandbox = await rt.run_pod_sandbox(PodSandboxConfig(name="kept", namespace="default", uid="uid-kept"))
    ids = [sandbox]
    for name, script in (("long", "trap 'exit 143' TERM; sleep 3600 & wait"), ("short", "sleep 1; exit 3")):
        container = await rt.create_container(sandbox, ContainerConfig(name=name, image=image,
                                                                       command=["sh", "-c", script]))
        await rt.start_container(container)
        ids.append(container)
    print(json.dumps(ids))

asyncio.run(main())
"""


async def test_a_restarted_kubelet_adopts_its_sandboxes_and_containers(node) -> None:
    await node.runtime.pull_image(IMAGE)
    options = {k: v for k, v in node.options.items() if k != "puller"}
    child = await asyncio.create_subprocess_exec(
        sys.executable, "-c", ADOPT, str(node.root), str(node.store.root), json.dumps(options), IMAGE,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await child.communicate()
    assert child.returncode == 0, err.decode()
    sandbox, long, short = json.loads(out)  # the process that started them is gone
    rt = node.fresh()
    assert [s.id for s in await rt.list_pod_sandboxes()] == [sandbox]
    assert (await rt.pod_sandbox_status(sandbox)).ip
    before = await rt.container_status(long)
    assert before.state is ContainerState.RUNNING and before.started_at > 0
    ended = await wait_state(rt, short, ContainerState.EXITED, within=15)
    assert (ended.exit_code, ended.reason) == (3, "Error") and ended.finished_at > ended.started_at
    assert (await rt.exec_sync(long, ["true"], 5)).exit_code == 0
    await rt.stop_container(long, 5)
    stopped = await rt.container_status(long)
    assert (stopped.state, stopped.exit_code, stopped.started_at) == (ContainerState.EXITED, 143, before.started_at)
    assert (await node.fresh().container_status(long)).exit_code == 143  # and that was recorded
    await rt.remove_pod_sandbox(sandbox)


def _processes_naming(text: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                if text.encode() in (entry / "cmdline").read_bytes():
                    found.append(int(entry.name))
    return found


def _running(pid: int) -> bool:
    """The process exists and is not a zombie (which its parent, maybe not us, reaps)."""
    try:
        data = Path(f"/proc/{pid}/stat").read_bytes()
    except OSError:
        return False
    return data[data.rindex(b")") + 2:][:1] != b"Z"


def _nat_rules() -> str:
    if shutil.which("iptables-save") is None:
        return ""
    return subprocess.run(["iptables-save", "-t", "nat"], capture_output=True, text=True).stdout


def _fetch(url: str) -> str:
    with urllib.request.urlopen(url, timeout=2) as response:
        return response.read().decode()


def _traces(node: Node, sandbox: str, container: str, ip: str) -> dict[str, object]:
    """What a pod with one container leaves on the node, by kind (falsy: nothing)."""
    netns = Path("/run/netns") / f"pyb-{sandbox[:12]}"
    bundle = node.root / "containers" / container
    with open("/proc/self/mountinfo") as mountinfo:
        mounts = [line.split()[4] for line in mountinfo if str(node.root) in line or netns.name in line]
    listed = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    traces: dict[str, object] = {
        "runc state": (node.root / "runc" / container).exists(),
        "conmon": _processes_naming(container),
        "mounts": mounts,  # rootfs overlay, /dev/shm tmpfs, ipc, uts and net namespace files
        "container dir": bundle.exists(),
        "sandbox dir": (node.root / "sandboxes" / sandbox).exists(),
        "cgroups": [str(d) for d in node.runtime.cgroups.dirs(f"{node.options['cgroup_root']}/poduid-gone")
                    if d.exists()],
        "netns": netns.exists() or netns.name in listed,
        "CNI allocation": (node.root / "cni" / "networks" / "pybernetes" / ip).exists(),
        "exit file": (node.root / "exits" / container).exists(),
    }
    if shutil.which("iptables-save"):
        traces["nat rules (ipMasq, portmap)"] = sandbox in _nat_rules()
    return traces


async def test_nothing_is_left_after_a_pod_is_removed(node) -> None:
    rt = node.runtime
    await rt.pull_image(IMAGE)
    host_port = random.randint(20000, 29999)
    config = sandbox_config("gone", port_mappings=[PortMapping(8080, host_port)])
    sandbox = await rt.run_pod_sandbox(config)
    container = await run(rt, sandbox, sh("httpd", HTTPD, log_path="httpd/0.log"))
    ip = (await rt.pod_sandbox_status(sandbox)).ip
    gateway = ipaddress.ip_network(node.options["pod_cidr"])[1]
    body = await eventually(lambda: asyncio.to_thread(_fetch, f"http://{gateway}:{host_port}/"))
    assert body == "hello-from-gone\n"  # the hostPort reaches the pod (portmap)

    present = _traces(node, sandbox, container, ip)
    assert all(v for k, v in present.items() if k != "exit file") and len(present["mounts"]) == 5, present
    await rt.remove_pod_sandbox(sandbox)
    left = _traces(node, sandbox, container, ip)
    assert not any(left.values()), left
    assert await rt.list_pod_sandboxes() == [] and await rt.list_containers() == []


async def test_exec_logs_and_stats(node) -> None:
    rt = node.runtime
    await rt.pull_image(IMAGE)
    logs = node.root.parent / "pod-logs"
    sandbox = await rt.run_pod_sandbox(sandbox_config("obs", log_directory=str(logs)))
    script = "echo out; echo err >&2; trap 'echo again; exit 143' TERM; i=0; while :; do i=$((i+1)); sleep 0.1; done"
    container = await run(rt, sandbox, sh("talker", script, log_path="talker/0.log", env=[("GREETING", "hi")]))
    log = logs / "talker" / "0.log"
    await eventually(lambda: asyncio.to_thread(lambda: "stderr F err" in log.read_text()))
    lines = log.read_text().splitlines()
    assert any(line.endswith(" stdout F out") for line in lines), lines
    result = await rt.exec_sync(container, ["sh", "-c", "echo $GREETING; echo e >&2; exit 4"], 5)
    assert (result.exit_code, result.stdout, result.stderr) == (4, b"hi\n", b"e\n")
    with pytest.raises(RuntimeError_) as err:
        await rt.exec_sync(container, ["sleep", "31"], 0.3)
    assert err.value.reason == "ExecError" and "timed out" in err.value.message
    await eventually(lambda: asyncio.to_thread(lambda: not _processes_running(["sleep", "31"])))  # killed too
    with pytest.raises(RuntimeError_) as err:
        await rt.exec_sync(container, ["no-such"], 5)
    assert "executable file not found" in err.value.message
    log.rename(log.with_suffix(".1"))  # rotation: the kubelet renames, the runtime reopens
    await rt.reopen_container_log(container)
    await exec_out(rt, container, "sh", "-c", "echo hello > /tmp/data")
    stats = await rt.container_stats(container)
    assert stats.cpu_usage_ns > 0 and stats.memory_usage_bytes > 0 and stats.fs_used_bytes > 0
    assert 0 < stats.memory_working_set_bytes <= stats.memory_usage_bytes
    gateway = ipaddress.ip_network(node.options["pod_cidr"])[1]
    refused = await rt.exec_sync(container, ["wget", "-q", "-O", "-", f"http://{gateway}:1/"], 10)
    assert refused.exit_code != 0  # but packets went out and came back
    net = await rt.pod_sandbox_stats(sandbox)
    assert net.rx_bytes > 0 and net.tx_bytes > 0 and net.rx_errors == 0
    await rt.stop_container(container, 5)
    assert log.exists() and log.read_text().splitlines()[-1].endswith(" stdout F again")


async def test_security_context(node) -> None:
    rt = node.runtime
    await rt.pull_image(IMAGE)
    sandbox = await rt.run_pod_sandbox(sandbox_config("sec"))
    none = await run(rt, sandbox, sleeper("none", security=SecurityContext(
        drop_capabilities=["ALL"], readonly_rootfs=True, no_new_privileges=True)))
    status = await exec_out(rt, none, "cat", "/proc/self/status")
    assert "CapEff:\t0000000000000000" in status and "NoNewPrivs:\t1" in status
    assert (await rt.exec_sync(none, ["touch", "/x"], 5)).exit_code != 0  # read-only root
    assert (await rt.exec_sync(none, ["touch", "/tmp/x"], 5)).exit_code != 0
    default = await run(rt, sandbox, sleeper("default"))
    unshare = await rt.exec_sync(default, ["unshare", "-n", "true"], 5)
    assert unshare.exit_code != 0  # RuntimeDefault seccomp (and no CAP_SYS_ADMIN)
    assert "Seccomp:\t2" in await exec_out(rt, default, "cat", "/proc/self/status")
    rt.seccomp_root.mkdir(parents=True, exist_ok=True)
    (rt.seccomp_root / "no-mkdir.json").write_text(json.dumps({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}]}))
    local = await run(rt, sandbox, sleeper("local", security=SecurityContext(seccomp="localhost/no-mkdir.json")))
    refused = await rt.exec_sync(local, ["mkdir", "/tmp/d"], 5)
    assert refused.exit_code != 0 and b"Operation not permitted" in refused.stderr
    data = node.root.parent / "data"
    data.mkdir()
    (data / "f").write_text("from the host")
    mounted = await run(rt, sandbox, sleeper("mounted", mounts=[Mount("/ro", str(data), readonly=True),
                                                                 Mount("/rw", str(data))]))
    assert await exec_out(rt, mounted, "cat", "/ro/f") == "from the host"
    assert (await rt.exec_sync(mounted, ["touch", "/ro/g"], 5)).exit_code != 0
    await exec_out(rt, mounted, "touch", "/rw/g")
    assert (data / "g").exists()
    privileged = await run(rt, sandbox, sleeper("privileged", security=SecurityContext(privileged=True)))
    status = await exec_out(rt, privileged, "cat", "/proc/self/status")
    effective = int(next(line for line in status.splitlines() if line.startswith("CapEff:")).split()[1], 16)
    assert effective & (1 << 21) and not effective & (1 << 24)  # SYS_ADMIN, never SYS_RESOURCE
    assert (await rt.exec_sync(privileged, ["unshare", "-n", "true"], 5)).exit_code == 0


async def test_host_network_and_a_shared_process_namespace(node) -> None:
    rt = node.runtime
    await rt.pull_image(IMAGE)
    host = await rt.run_pod_sandbox(sandbox_config("host", host_network=True))
    assert (await rt.pod_sandbox_status(host)).ip == ""
    on_host = await run(rt, host, sleeper("on-host"))
    interfaces = await exec_out(rt, on_host, "ip", "-o", "link")
    assert all(f": {name}:" in interfaces or f": {name}@" in interfaces for name in os.listdir("/sys/class/net"))
    shared = await rt.run_pod_sandbox(sandbox_config("shared", share_process_namespace=True))
    first = await run(rt, shared, sh("first", "exec sleep 3601"))
    second = await run(rt, shared, sleeper("second"))
    assert "sleep 3601" in await eventually(lambda: exec_out(rt, second, "ps", "-o", "args"))
    await rt.stop_container(first, 2)
    assert (await rt.container_status(first)).exit_code == 143  # not PID 1 here: SIGTERM's default applies
    holder = _processes_naming("CLONE_NEWPID")  # the PID namespace's init
    assert holder
    await rt.remove_pod_sandbox(shared)
    assert not [p for p in holder if _running(p)]


async def test_without_a_puller_only_present_images_are_used(node) -> None:
    rt = RuncRuntime(node.root / "other", node.store, cgroup_root=node.options["cgroup_root"],
                     bridge=node.options["bridge"], pod_cidr=node.options["pod_cidr"])
    with pytest.raises(RuntimeError_) as err:
        await rt.pull_image(IMAGE)
    assert err.value.reason == "ErrImagePull" and "not present and no registry configured" in err.value.message
    await node.runtime.pull_image(IMAGE)
    assert (await rt.pull_image(IMAGE)).startswith("sha256:")


def test_containers_start_on_the_agents_event_loop_uvloop(node) -> None:
    """The agent runs on uvloop, whose subprocesses do not honour pass_fds: conmon's start
    pipe must still reach it (a container would otherwise never start)."""
    import uvloop

    async def start_one() -> ContainerState:
        runtime = node.fresh()
        await runtime.pull_image(IMAGE)
        sandbox = await runtime.run_pod_sandbox(PodSandboxConfig(name="uv", namespace="default", uid="uid-uv",
                                                                 hostname="uv"))
        container = await runtime.create_container(sandbox, sleeper("main"))
        await asyncio.wait_for(runtime.start_container(container), 20)
        state = (await runtime.container_status(container)).state
        await runtime.remove_pod_sandbox(sandbox)
        return state

    assert uvloop.run(start_one()) is ContainerState.RUNNING


def _mounted_under(directory: Path) -> list[str]:
    with open("/proc/self/mountinfo") as mountinfo:
        return [line for line in mountinfo if str(directory) in line]


async def test_a_removal_cut_short_is_finished_by_the_next_runtime(node) -> None:
    """The kubelet killed in the middle of removing a pod: a sandbox whose record is gone but
    whose mounts and namespace remain, and a sandbox record naming a container whose record is
    gone.  A restarted runtime removes both completely."""
    runtime = node.runtime
    await runtime.pull_image(IMAGE)
    torn = await runtime.run_pod_sandbox(PodSandboxConfig(name="torn", namespace="default", uid="uid-torn",
                                                          hostname="torn"))
    half = await runtime.run_pod_sandbox(PodSandboxConfig(name="half", namespace="default", uid="uid-half",
                                                          hostname="half"))
    container = await runtime.create_container(half, sleeper("main"))
    await runtime.start_container(container)
    torn_dir = node.root / "sandboxes" / torn
    (torn_dir / "sandbox.json").unlink()  # the record went first, the rest was not done
    await runtime.stop_container(container, 0)
    bundle = node.root / "containers" / container
    kernel.umount(bundle / "rootfs")
    shutil.rmtree(bundle)  # the container went, its sandbox still lists it

    restarted = node.fresh()
    assert [s.id for s in await restarted.list_pod_sandboxes()] == [half]
    assert not _mounted_under(torn_dir)
    assert not torn_dir.exists()
    assert not (Path("/run/netns") / f"pyb-{torn[:12]}").exists()
    await restarted.remove_pod_sandbox(half)  # the missing container does not stop it
    assert await restarted.list_pod_sandboxes() == []



def _nft_table(bridge: str) -> str:
    listed = subprocess.run(["nft", "list", "table", "ip", f"pybernetes-masq-{bridge}"], capture_output=True, text=True)
    return listed.stdout if listed.returncode == 0 else ""


async def test_pod_traffic_is_masqueraded_by_one_node_rule_that_goes_with_the_last_pod(node) -> None:
    if shutil.which("nft") is None:
        pytest.skip("nft is not installed (make test installs nftables)")
    runtime, bridge = node.runtime, node.options["bridge"]
    assert _nft_table(bridge) == ""
    a = await runtime.run_pod_sandbox(PodSandboxConfig(name="a", namespace="default", uid="uid-a", hostname="a"))
    b = await runtime.run_pod_sandbox(PodSandboxConfig(name="b", namespace="default", uid="uid-b", hostname="b"))
    table = _nft_table(bridge)
    cidr = node.options["pod_cidr"]
    assert f"ip saddr {cidr} ip daddr != {cidr}" in table and "masquerade" in table
    assert cidr not in _nat_rules()  # no per-pod ipMasq rules
    await runtime.remove_pod_sandbox(a)
    assert _nft_table(bridge)  # b still needs it
    await runtime.remove_pod_sandbox(b)
    assert _nft_table(bridge) == ""
