"""The OCI runtime spec builder of the runc runtime (ocispec.py, seccomp.py): pure functions."""

from __future__ import annotations

import pytest

from pybernetes.kubelet.runtime import ocispec, seccomp
from pybernetes.kubelet.runtime.protocol import (
    ContainerConfig,
    Mount,
    Resources,
    RuntimeError_,
    SecurityContext,
)

PASSWD = "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1001:app:/home/app:/bin/sh\nweb:x:33:33::/var/www:/bin/false\n"
GROUP = "root:x:0:\napp:x:1001:\nstaff:x:50:app,web\nvideo:x:44:app\n"
HOST_CAPS = [c for c in ocispec.CAPABILITY_NAMES if c != "CAP_SYS_RESOURCE"]


def cfg(**kw) -> ContainerConfig:
    return ContainerConfig(name="c", image="img", **kw)


def sec(**kw) -> SecurityContext:
    return SecurityContext(**kw)


def spec(config: ContainerConfig, image: dict | None = None, **kw) -> dict:
    sandbox = kw.pop("sandbox", ocispec.Sandbox(
        hostname="web-0", namespaces={"net": "/run/netns/pyb-x", "ipc": "/s/ns/ipc", "uts": "/s/ns/uts"},
        etc_files={"/etc/hosts": "/s/hosts", "/etc/resolv.conf": "/s/resolv.conf", "/etc/hostname": "/s/hostname"},
        shm="/s/shm"))
    return ocispec.build_spec(config, image if image is not None else {"Cmd": ["sh"]}, rootfs="/b/rootfs",
                              user=ocispec.User(0, 0), sandbox=sandbox, cgroups_path="/pyb/poduid/cid",
                              host_caps=HOST_CAPS, **kw)


# -- argv and env -------------------------------------------------------------------------------------

@pytest.mark.parametrize(("command", "args", "expected"), [
    ([], [], ["/entry", "e1", "cmd1"]),
    (["/bin/x"], [], ["/bin/x"]),  # command replaces the entrypoint and drops Cmd
    (["/bin/x"], ["a"], ["/bin/x", "a"]),
    ([], ["a", "b"], ["/entry", "e1", "a", "b"]),  # args replace Cmd only
])
def test_argv_follows_the_kubelet_rules(command, args, expected) -> None:
    image = {"Entrypoint": ["/entry", "e1"], "Cmd": ["cmd1"]}
    assert ocispec.resolve_argv(cfg(command=command, args=args), image) == expected


def test_no_command_anywhere_is_a_create_container_error() -> None:
    with pytest.raises(RuntimeError_) as err:
        ocispec.resolve_argv(cfg(), {})
    assert err.value.reason == "CreateContainerError"


def test_env_is_merged_over_the_image_in_place() -> None:
    image = {"Env": ["PATH=/img/bin", "A=1", "B=2"]}
    env = ocispec.merge_env(cfg(env=[("B", "x"), ("C", "3")]), image, "web-0")
    assert env == ["PATH=/img/bin", "HOSTNAME=web-0", "A=1", "B=x", "C=3"]
    assert ocispec.merge_env(cfg(), {}, "")[0] == f"PATH={ocispec.DEFAULT_PATH}"


# -- users ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("image_user", "uid", "gid", "extra"), [
    ("", 0, 0, ()),
    ("app", 1000, 1001, (44, 50)),  # its groups in /etc/group become additional gids
    ("1000", 1000, 1001, (44, 50)),
    ("app:staff", 1000, 50, (44,)),
    ("2000:3000", 2000, 3000, ()),  # numeric ids need no entry
])
def test_the_image_user_is_resolved_through_passwd_and_group(image_user, uid, gid, extra) -> None:
    user = ocispec.resolve_user(cfg(), image_user, PASSWD, GROUP)
    assert (user.uid, user.gid, user.additional_gids) == (uid, gid, extra)


def test_the_security_context_overrides_the_image_user() -> None:
    user = ocispec.resolve_user(cfg(security=sec(run_as_user=33, supplemental_groups=[7])), "app", PASSWD, GROUP)
    assert (user.uid, user.gid, user.additional_gids) == (33, 33, (7, 50))
    user = ocispec.resolve_user(cfg(security=sec(run_as_user=5000, run_as_group=6000)), "", PASSWD, GROUP)
    assert (user.uid, user.gid, user.additional_gids) == (5000, 6000, ())


@pytest.mark.parametrize("image_user", ["nobody-here", "app:nogroup"])
def test_an_unknown_user_or_group_is_a_create_container_error(image_user) -> None:
    with pytest.raises(RuntimeError_) as err:
        ocispec.resolve_user(cfg(), image_user, PASSWD, GROUP)
    assert err.value.reason == "CreateContainerError" and "unable to find" in err.value.message


@pytest.mark.parametrize(("security", "image_user", "message"), [
    (sec(run_as_non_root=True), "", "image will run as root"),
    (sec(run_as_non_root=True), "0:0", "image will run as root"),
    (sec(run_as_non_root=True), "app", "non-numeric user (app)"),
    (sec(run_as_non_root=True, run_as_user=0), "1000", "runAsUser breaks non-root policy"),
])
def test_run_as_non_root_refuses_root(security, image_user, message) -> None:
    with pytest.raises(RuntimeError_) as err:
        ocispec.check_run_as_non_root(cfg(security=security), image_user, "web_default(uid)")
    assert err.value.reason == "CreateContainerConfigError" and message in err.value.message


def test_run_as_non_root_lets_a_numeric_non_root_user_through() -> None:
    ocispec.check_run_as_non_root(cfg(security=sec(run_as_non_root=True)), "1000:1000", "p")
    ocispec.check_run_as_non_root(cfg(security=sec(run_as_non_root=True, run_as_user=1)), "", "p")
    ocispec.check_run_as_non_root(cfg(), "", "p")  # not asked


# -- capabilities ---------------------------------------------------------------------------------------

def test_capabilities_default_add_drop_and_all() -> None:
    assert set(ocispec.capabilities(cfg(), HOST_CAPS)) == set(ocispec.DEFAULT_CAPABILITIES)
    caps = ocispec.capabilities(cfg(security=sec(add_capabilities=["NET_ADMIN"], drop_capabilities=["KILL"])),
                                HOST_CAPS)
    assert "CAP_NET_ADMIN" in caps and "CAP_KILL" not in caps
    caps = ocispec.capabilities(cfg(security=sec(drop_capabilities=["ALL"], add_capabilities=["NET_BIND_SERVICE"])),
                                HOST_CAPS)
    assert caps == ["CAP_NET_BIND_SERVICE"]
    caps = ocispec.capabilities(cfg(security=sec(add_capabilities=["ALL"], drop_capabilities=["CAP_SYS_ADMIN"])),
                                HOST_CAPS)
    assert "CAP_SYS_ADMIN" not in caps and "CAP_SYS_MODULE" in caps


def test_capabilities_never_include_sys_resource_or_what_the_host_lacks() -> None:
    everything = list(ocispec.CAPABILITY_NAMES)
    for security in (sec(privileged=True), sec(add_capabilities=["SYS_RESOURCE", "ALL"])):
        assert "CAP_SYS_RESOURCE" not in ocispec.capabilities(cfg(security=security), everything)
    assert "CAP_BPF" not in ocispec.capabilities(cfg(security=sec(privileged=True)), ["CAP_CHOWN"])
    assert ocispec.caps_from_mask(0b101) == ["CAP_CHOWN", "CAP_DAC_READ_SEARCH"]


# -- the spec ---------------------------------------------------------------------------------------

def test_spec_joins_the_sandbox_namespaces_and_sets_cgroups() -> None:
    s = spec(cfg(resources=Resources(cpu_shares=512, cpu_quota=50_000, memory_limit=64 << 20, pids_limit=100)))
    namespaces = {n["type"]: n.get("path") for n in s["linux"]["namespaces"]}
    assert namespaces == {"mount": None, "network": "/run/netns/pyb-x", "ipc": "/s/ns/ipc", "uts": "/s/ns/uts",
                          "pid": None}
    assert "hostname" not in s  # the UTS namespace is the sandbox's and already named
    assert s["linux"]["cgroupsPath"] == "/pyb/poduid/cid"
    resources = s["linux"]["resources"]
    assert resources["cpu"] == {"shares": 512, "quota": 50_000, "period": 100_000}
    assert resources["memory"] == {"limit": 64 << 20, "swap": 64 << 20}
    assert resources["pids"] == {"limit": 100}
    assert resources["devices"] == [{"allow": False, "access": "rwm"}]
    assert s["process"]["env"][1] == "HOSTNAME=web-0" and s["process"]["cwd"] == "/"
    assert "rlimits" not in s["process"] and "oomScoreAdj" not in s["process"]


def test_a_shared_pid_namespace_is_joined_and_a_host_network_pod_has_no_network_namespace() -> None:
    sandbox = ocispec.Sandbox(namespaces={"ipc": "/s/ipc", "pid": "/proc/9/ns/pid"})
    namespaces = {n["type"]: n.get("path") for n in spec(cfg(), sandbox=sandbox)["linux"]["namespaces"]}
    assert namespaces == {"mount": None, "ipc": "/s/ipc", "pid": "/proc/9/ns/pid"}


def test_oom_score_adj_is_only_ever_raised() -> None:
    assert "oomScoreAdj" not in spec(cfg(resources=Resources(oom_score_adj=-997)))["process"]
    assert spec(cfg(resources=Resources(oom_score_adj=1000)))["process"]["oomScoreAdj"] == 1000


def test_mounts_defaults_then_the_containers_shallowest_first() -> None:
    mounts = [Mount("/data/sub", "/h/sub", readonly=True), Mount("/data", "/h/data", propagation="rslave"),
              Mount("/etc/hosts", "/kubelet/etc-hosts")]
    s = spec(cfg(mounts=mounts))
    destinations = [m["destination"] for m in s["mounts"]]
    assert destinations[:7] == ["/proc", "/dev", "/dev/pts", "/dev/mqueue", "/sys", "/sys/fs/cgroup", "/dev/shm"]
    assert destinations.count("/etc/hosts") == 1  # the container's mount replaces the sandbox's file
    assert destinations.index("/data") < destinations.index("/data/sub")
    by_dest = {m["destination"]: m for m in s["mounts"]}
    assert by_dest["/etc/hosts"]["source"] == "/kubelet/etc-hosts"
    assert by_dest["/data/sub"]["options"] == ["rbind", "rprivate", "ro"]
    assert by_dest["/data"]["options"] == ["rbind", "rslave", "rw"]
    assert by_dest["/dev/shm"]["source"] == "/s/shm" and by_dest["/etc/resolv.conf"]["source"] == "/s/resolv.conf"
    assert s["linux"]["rootfsPropagation"] == "rslave"
    assert by_dest["/sys"]["options"][-1] == "ro"


def test_restricted_versus_privileged() -> None:
    plain = spec(cfg(security=sec(readonly_rootfs=True, no_new_privileges=True)))
    assert plain["root"] == {"path": "/b/rootfs", "readonly": True}
    assert plain["process"]["noNewPrivileges"] is True
    assert "/proc/kcore" in plain["linux"]["maskedPaths"] and "/proc/sys" in plain["linux"]["readonlyPaths"]
    assert plain["linux"]["seccomp"]["defaultAction"] == "SCMP_ACT_ALLOW"
    assert {m["destination"]: m for m in plain["mounts"]}["/etc/hosts"]["options"][-1] == "ro"
    device = {"path": "/dev/null", "type": "c", "major": 1, "minor": 3, "fileMode": 0o666, "uid": 0, "gid": 0}
    privileged = spec(cfg(security=sec(privileged=True, no_new_privileges=True)), host_devices=[device])
    linux = privileged["linux"]
    assert "maskedPaths" not in linux and "seccomp" not in linux and linux["devices"] == [device]
    assert linux["resources"]["devices"] == [{"allow": True, "access": "rwm"}]
    assert privileged["process"]["noNewPrivileges"] is False
    assert "CAP_SYS_ADMIN" in privileged["process"]["capabilities"]["bounding"]
    assert {m["destination"]: m for m in privileged["mounts"]}["/sys"]["options"][-1] == "rw"


def test_seccomp_profiles() -> None:
    assert "seccomp" not in spec(cfg(security=sec(seccomp="Unconfined")))["linux"]
    with pytest.raises(RuntimeError_):
        spec(cfg(security=sec(seccomp="bogus")))
    with pytest.raises(RuntimeError_):
        spec(cfg(security=sec(seccomp="localhost/p.json")))  # not loaded
    docker_form = {"defaultAction": "SCMP_ACT_ERRNO",
                   "archMap": [{"architecture": "SCMP_ARCH_X86_64", "subArchitectures": ["SCMP_ARCH_X86"]}],
                   "syscalls": [{"name": "read", "action": "SCMP_ACT_ALLOW"},
                                {"names": ["mount"], "action": "SCMP_ACT_ALLOW", "includes": {"caps": ["CAP_SYS_ADMIN"]}}]}
    loaded = spec(cfg(security=sec(seccomp="localhost/p.json")), localhost_profile=docker_form)["linux"]["seccomp"]
    assert loaded == {"defaultAction": "SCMP_ACT_ERRNO", "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"],
                      "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ALLOW"}]}
    with pytest.raises(ValueError):
        seccomp.localhost({"syscalls": []}, [])


def test_runtime_default_blocks_what_no_capability_allows() -> None:
    def blocked(profile):
        return set(profile["syscalls"][0]["names"])

    plain = seccomp.runtime_default(ocispec.DEFAULT_CAPABILITIES)
    assert {"mount", "unshare", "setns", "kexec_load", "init_module", "keyctl", "bpf"} <= blocked(plain)
    assert "read" not in blocked(plain) and "ptrace" not in blocked(plain)
    clone_rules = [r for r in plain["syscalls"] if r["names"] == ["clone"]]
    assert {r["args"][0]["value"] for r in clone_rules} == set(seccomp.CLONE_NAMESPACE_FLAGS)
    admin = seccomp.runtime_default([*ocispec.DEFAULT_CAPABILITIES, "CAP_SYS_ADMIN"])
    assert "mount" not in blocked(admin) and "keyctl" in blocked(admin)
    assert not [r for r in admin["syscalls"] if r["names"] in (["clone"], ["clone3"])]
