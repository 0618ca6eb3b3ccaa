"""The runc runtime's smaller pieces, without root: the cgroup layout and figures (v1 hybrid and
v2, on fake cgroup trees), its records' JSON round trip, the pod's /etc files, and runc's error
messages as conmon relays them."""

from __future__ import annotations

import json
from pathlib import Path

from pybernetes.kubelet.runtime.cgroups import Layout
from pybernetes.kubelet.runtime.conmon import runc_message
from pybernetes.kubelet.runtime.protocol import (
    ContainerConfig,
    ContainerState,
    ContainerStatus,
    DNSConfig,
    Mount,
    PodSandboxConfig,
    PodSandboxStatus,
    PortMapping,
    Resources,
    SandboxState,
    SecurityContext,
)
from pybernetes.kubelet.runtime.runc_state import (
    ContainerRecord,
    SandboxRecord,
    container_from,
    hosts_file,
    load_all,
    resolv_conf,
    sandbox_from,
    write_json,
)

HYBRID = """\
25 1 254:0 / / rw,relatime shared:1 - ext4 /dev/vda rw
30 25 0:26 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
31 30 0:27 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
32 30 0:28 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
33 30 0:29 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
34 30 0:30 / /sys/fs/cgroup/pids,x rw,relatime - cgroup cgroup rw,pids,blkio
35 30 0:31 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
36 30 0:32 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
"""


def test_a_hybrid_host_is_v1_with_every_hierarchy_known() -> None:
    layout = Layout.detect(HYBRID)
    assert not layout.v2
    assert layout.controllers["memory"] == Path("/sys/fs/cgroup/memory")
    assert layout.controllers["blkio"] == layout.controllers["pids"] == Path("/sys/fs/cgroup/pids,x")
    assert Path("/sys/fs/cgroup/systemd") in layout.hierarchies and Path("/sys/fs/cgroup/unified") in layout.hierarchies
    assert layout.dirs("/pyb/pod1") == [h / "pyb/pod1" for h in layout.hierarchies]
    unified = "40 25 0:26 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n"
    assert Layout.detect(unified).v2


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def test_v1_figures_and_oom_kills(tmp_path: Path) -> None:
    layout = Layout(False, {"cpuacct": tmp_path / "cpuacct", "memory": tmp_path / "memory"},
                    [tmp_path / "cpuacct", tmp_path / "memory"])
    _write(tmp_path / "cpuacct/pod/c/cpuacct.usage", "123456\n")
    _write(tmp_path / "memory/pod/c/memory.usage_in_bytes", "10000\n")
    _write(tmp_path / "memory/pod/c/memory.stat", "cache 5\nrss 7\ntotal_rss 4000\ntotal_inactive_file 3000\n")
    _write(tmp_path / "memory/pod/c/memory.oom_control", "oom_kill_disable 0\nunder_oom 0\noom_kill 2\n")
    _write(tmp_path / "memory/pod/c/memory.limit_in_bytes", "33554432\n")
    usage = layout.usage("/pod/c")
    assert (usage.cpu_ns, usage.memory_bytes, usage.working_set_bytes, usage.rss_bytes) == (123456, 10000, 7000, 4000)
    assert layout.oom_kills("/pod/c") == 2 and layout.memory_limit("/pod/c") == 32 << 20
    assert layout.usage("/pod/missing").cpu_ns == 0 and layout.oom_kills("/pod/missing") == 0
    (tmp_path / "memory/pod/c").joinpath("memory.stat").unlink()
    for name in ("cpuacct.usage",):
        (tmp_path / "cpuacct/pod/c" / name).unlink()
    for name in list((tmp_path / "memory/pod/c").iterdir()):
        name.unlink()
    assert layout.remove("/pod") == [] and not layout.exists("/pod")


def test_v2_figures(tmp_path: Path) -> None:
    layout = Layout(True, {}, [tmp_path])
    _write(tmp_path / "pod/c/cpu.stat", "usage_usec 250\nuser_usec 200\n")
    _write(tmp_path / "pod/c/memory.current", "9000\n")
    _write(tmp_path / "pod/c/memory.stat", "anon 6000\nfile 2000\ninactive_file 1500\n")
    _write(tmp_path / "pod/c/memory.events", "low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\n")
    _write(tmp_path / "pod/c/memory.max", "max\n")
    usage = layout.usage("/pod/c")
    assert (usage.cpu_ns, usage.memory_bytes, usage.working_set_bytes, usage.rss_bytes) == (250_000, 9000, 7500, 6000)
    assert layout.oom_kills("/pod/c") == 1 and layout.memory_limit("/pod/c") == 0
    _write(tmp_path / "pod/c/cgroup.procs", "12\n34\n")
    assert layout.pids("/pod") == [12, 34]


def test_records_survive_a_json_round_trip(tmp_path: Path) -> None:
    config = PodSandboxConfig(name="web", namespace="ns", uid="u", dns=DNSConfig(["10.0.0.10"], ["a"], ["ndots:5"]),
                              port_mappings=[PortMapping(80, 8080, "TCP", "1.2.3.4")], share_process_namespace=True)
    sandbox = SandboxRecord(PodSandboxStatus("s1", config, SandboxState.READY, 5, "10.1.0.2"), tmp_path / "s1",
                            "/run/netns/pyb-s1", {"ipc": "/x/ipc"}, "/pyb/podu", True,
                            {"conflist": {}, "result": {"ips": []}, "args": "", "runtime_config": {}}, [10, 20], {"c1"})
    (tmp_path / "s1").mkdir()
    write_json(tmp_path / "s1" / "sandbox.json", sandbox)
    assert sandbox_from(json.loads((tmp_path / "s1" / "sandbox.json").read_text())) == sandbox
    container_config = ContainerConfig(name="c", image="img", command=["sh"], env=[("A", "1")],
                                       mounts=[Mount("/d", "/h", True, "rslave")],
                                       resources=Resources(memory_limit=5, oom_score_adj=3),
                                       security=SecurityContext(run_as_user=1, add_capabilities=["NET_ADMIN"]))
    container = ContainerRecord(ContainerStatus("c1", "s1", container_config, ContainerState.EXITED, 1, 2, 3, 137,
                                                "OOMKilled", "", "sha256:x", "/l"), tmp_path / "cs" / "c1",
                                "/pyb/podu/c1", 11, 12, 13, 14, True)
    (tmp_path / "cs" / "c1").mkdir(parents=True)
    write_json(tmp_path / "cs" / "c1" / "container.json", container)
    (loaded,) = load_all(tmp_path / "cs", "container.json")
    assert container_from(loaded) == container
    (tmp_path / "cs" / "half").mkdir()  # created, crashed before its record was written
    assert {d.get("incomplete", False) for d in load_all(tmp_path / "cs", "container.json")} == {True, False}


def test_pod_files() -> None:
    hosts = hosts_file("10.1.0.2", "web-0")
    assert hosts.startswith("# Kubernetes-managed hosts file.\n127.0.0.1\tlocalhost\n")
    assert hosts.endswith("10.1.0.2\tweb-0\n")
    fqdn = hosts_file("10.1.0.2", "web-0", "web-0.web.ns.svc.cluster.local", [("10.9.9.9", ["a.local", "b.local"])])
    assert fqdn.endswith("10.1.0.2\tweb-0.web.ns.svc.cluster.local\tweb-0\n\n"
                         "# Entries added by HostAliases.\n10.9.9.9\ta.local\tb.local\n")
    assert resolv_conf(DNSConfig(["10.96.0.10", "8.8.8.8"], ["ns.svc.cluster.local"], ["ndots:5"])) == (
        "search ns.svc.cluster.local\nnameserver 10.96.0.10\nnameserver 8.8.8.8\noptions ndots:5\n")


def test_runc_messages_are_unwrapped() -> None:
    logrus = ('time="2026-01-01T00:00:00Z" level=error msg="runc create failed: unable to start container process: '
              'exec: \\"x\\": executable file not found in $PATH"\n')
    assert runc_message(logrus) == ('runc create failed: unable to start container process: exec: "x": '
                                    'executable file not found in $PATH')
    as_json = '{"level":"info","msg":"hello"}\n{"level":"error","msg":"exec failed: boom","time":"t"}\n'
    assert runc_message(as_json) == "exec failed: boom"
    assert runc_message("plain words\n") == "plain words"
