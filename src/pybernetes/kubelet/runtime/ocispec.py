"""The OCI runtime spec (config.json) of a container, from its ContainerConfig, its image's
config and the facts of its sandbox — pure: every host fact (the host's capability bounding
set, its devices, the image's /etc/passwd, the namespace paths ...) comes in as an argument.

What it decides, as kubelet + containerd do:

- **argv** (``resolve_argv``): ``command`` replaces the image's Entrypoint and drops its Cmd;
  ``args`` replace Cmd; neither: Entrypoint + Cmd.  Nothing at all: CreateContainerError.
- **env** (``merge_env``): HOSTNAME, then the image's Env (PATH defaulted), then the
  container's, a later value replacing an earlier one in place.
- **user** (``resolve_user``): runAsUser/runAsGroup, else the image's User (``name``, ``uid``,
  ``name:group``, ``uid:gid``) looked up in the image's /etc/passwd and /etc/group; the
  user's groups in /etc/group and supplementalGroups become additional gids.
  ``check_run_as_non_root`` refuses a root user with upstream's messages
  (CreateContainerConfigError).
- **capabilities** (``capabilities``): containerd's default set, plus ``add``, minus ``drop``
  ("ALL" in add: every capability; in drop: none but the added ones); privileged: all.  Always
  limited to the host's bounding set, and never CAP_SYS_RESOURCE (the node lacks it).
- **security**: noNewPrivileges, read-only root, seccomp (seccomp.py), upstream's masked and
  read-only /proc and /sys paths; privileged: none of those, host devices, all devices allowed.
- **mounts**: /proc, /dev, /dev/pts, /dev/shm (the sandbox's, shared), /dev/mqueue, /sys,
  /sys/fs/cgroup, the sandbox's /etc/hostname, /etc/hosts and /etc/resolv.conf, then the
  container's mounts as bind mounts (rbind, ro, propagation), shallowest first; a container
  mount replaces a default one at the same destination.
- **namespaces**: the sandbox's network, IPC and UTS (by path; none given: the host's), its
  PID namespace when shared, else a new one; a new mount namespace (and cgroup on v2).
- **resources**: cpu shares/quota/period, memory limit (no swap beyond it), pids limit, under
  ``cgroupsPath``; oomScoreAdj only when positive (the node cannot lower it); no rlimits (the
  container inherits the node's, never above its hard limits).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pybernetes.kubelet.runtime import seccomp
from pybernetes.kubelet.runtime.protocol import ContainerConfig, RuntimeError_

OCI_VERSION = "1.0.2-dev"
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

CAPABILITY_NAMES = (
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID", "CAP_KILL",
    "CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP", "CAP_LINUX_IMMUTABLE", "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST", "CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_IPC_LOCK", "CAP_IPC_OWNER", "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO", "CAP_SYS_CHROOT", "CAP_SYS_PTRACE", "CAP_SYS_PACCT", "CAP_SYS_ADMIN", "CAP_SYS_BOOT",
    "CAP_SYS_NICE", "CAP_SYS_RESOURCE", "CAP_SYS_TIME", "CAP_SYS_TTY_CONFIG", "CAP_MKNOD", "CAP_LEASE",
    "CAP_AUDIT_WRITE", "CAP_AUDIT_CONTROL", "CAP_SETFCAP", "CAP_MAC_OVERRIDE", "CAP_MAC_ADMIN", "CAP_SYSLOG",
    "CAP_WAKE_ALARM", "CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ", "CAP_PERFMON", "CAP_BPF", "CAP_CHECKPOINT_RESTORE",
)
DEFAULT_CAPABILITIES = (
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW", "CAP_SETGID",
    "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT", "CAP_KILL",
    "CAP_AUDIT_WRITE",
)
NEVER = frozenset({"CAP_SYS_RESOURCE"})
MASKED_PATHS = ("/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
                "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi", "/sys/firmware",
                "/sys/devices/virtual/powercap")
READONLY_PATHS = ("/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger")


def caps_from_mask(mask: int) -> list[str]:
    """Capability names of a bit mask (e.g. CapBnd of /proc/self/status)."""
    return [name for bit, name in enumerate(CAPABILITY_NAMES) if mask >> bit & 1]


# -- argv, env, user ------------------------------------------------------------------------------

def resolve_argv(config: ContainerConfig, image_config: dict[str, Any]) -> list[str]:
    entrypoint = list(image_config.get("Entrypoint") or [])
    cmd = list(image_config.get("Cmd") or [])
    if config.command:
        argv = [*config.command, *config.args]
    elif config.args:
        argv = [*entrypoint, *config.args]
    else:
        argv = [*entrypoint, *cmd]
    if not argv:
        raise RuntimeError_("CreateContainerError", f"container {config.name!r}: no command specified "
                            "(neither the pod nor the image gives one)")
    return argv


def merge_env(config: ContainerConfig, image_config: dict[str, Any], hostname: str) -> list[str]:
    env: dict[str, str] = {"PATH": DEFAULT_PATH}
    if hostname:
        env["HOSTNAME"] = hostname
    for item in image_config.get("Env") or []:
        key, _, value = str(item).partition("=")
        env[key] = value
    for key, value in config.env:
        env[key] = value
    return [f"{k}={v}" for k, v in env.items()]


@dataclass(frozen=True, slots=True)
class User:
    uid: int
    gid: int
    additional_gids: tuple[int, ...] = ()
    name: str = ""


def _table(text: str) -> list[list[str]]:
    return [line.split(":") for line in text.splitlines() if line and not line.startswith("#")]


def _user_entry(passwd: str, user: str) -> list[str] | None:
    for entry in _table(passwd):
        if len(entry) >= 4 and (entry[0] == user or (user.isdigit() and entry[2] == user)):
            return entry
    return None


def _group_id(group_text: str, group: str) -> int | None:
    if group.isdigit():
        return int(group)
    for entry in _table(group_text):
        if len(entry) >= 3 and entry[0] == group and entry[2].isdigit():
            return int(entry[2])
    return None


def resolve_user(config: ContainerConfig, image_user: str, passwd: str, group: str) -> User:
    """The container's uid, gid and additional gids (see the module docstring); an image user
    name or group not in the image's files is a CreateContainerError."""
    sec = config.security
    name = ""
    if sec.run_as_user is not None:
        uid = sec.run_as_user
        entry = _user_entry(passwd, str(uid))
        gid = int(entry[3]) if entry and entry[3].isdigit() else 0
        name = entry[0] if entry else ""
    else:
        user_part, _, group_part = (image_user or "0").partition(":")
        entry = _user_entry(passwd, user_part)
        if user_part.isdigit():
            uid = int(user_part)
        elif entry is not None and entry[2].isdigit():
            uid = int(entry[2])
        else:
            raise RuntimeError_("CreateContainerError", f"unable to find user {user_part}: no matching entries "
                                "in passwd file")
        name = entry[0] if entry else ""
        gid = int(entry[3]) if entry and entry[3].isdigit() else 0
        if group_part:
            found = _group_id(group, group_part)
            if found is None:
                raise RuntimeError_("CreateContainerError", f"unable to find group {group_part}: no matching "
                                    "entries in group file")
            gid = found
    if sec.run_as_group is not None:
        gid = sec.run_as_group
    extra: list[int] = []
    if name:
        for entry in _table(group):
            if len(entry) >= 4 and entry[2].isdigit() and name in entry[3].split(","):
                extra.append(int(entry[2]))
    extra.extend(sec.supplemental_groups)
    return User(uid, gid, tuple(sorted({g for g in extra if g != gid})), name)


def check_run_as_non_root(config: ContainerConfig, image_user: str, pod: str) -> None:
    """Upstream kubelet's verifyRunAsNonRoot (CreateContainerConfigError)."""
    sec = config.security
    if not sec.run_as_non_root:
        return
    where = f"(pod: {pod!r}, container: {config.name})"
    if sec.run_as_user is not None:
        if sec.run_as_user == 0:
            raise RuntimeError_("CreateContainerConfigError", f"container's runAsUser breaks non-root policy {where}")
        return
    user_part = (image_user or "").partition(":")[0]
    if user_part and not user_part.isdigit():
        raise RuntimeError_("CreateContainerConfigError", f"container has runAsNonRoot and image has non-numeric "
                            f"user ({user_part}), cannot verify user is non-root {where}")
    if not user_part or int(user_part) == 0:
        raise RuntimeError_("CreateContainerConfigError", f"container has runAsNonRoot and image will run as root {where}")


def _cap_name(name: str) -> str:
    name = name.strip().upper()
    return name if name.startswith("CAP_") or name == "ALL" else "CAP_" + name


def capabilities(config: ContainerConfig, host_caps: list[str]) -> list[str]:
    """The container's capability set (see the module docstring), in the kernel's order."""
    sec = config.security
    allowed = set(host_caps) - NEVER
    if sec.privileged:
        chosen = set(allowed)
    else:
        add = {_cap_name(c) for c in sec.add_capabilities}
        drop = {_cap_name(c) for c in sec.drop_capabilities}
        chosen = set(allowed) if "ALL" in add else set(DEFAULT_CAPABILITIES)
        if "ALL" in drop:
            chosen = set()
        chosen |= add - {"ALL"}
        chosen -= drop - {"ALL"}
    return [c for c in CAPABILITY_NAMES if c in chosen and c in allowed]


# -- the spec ---------------------------------------------------------------------------------

@dataclass(slots=True)
class Sandbox:
    """What a container takes from its sandbox and node."""

    hostname: str = ""
    namespaces: dict[str, str] = field(default_factory=dict)  # kind -> path; absent: the host's
    etc_files: dict[str, str] = field(default_factory=dict)  # container path -> host file
    shm: str = ""  # host directory mounted at /dev/shm ("" = a tmpfs of the container's own)
    cgroup_v2: bool = False


def _default_mounts(sandbox: Sandbox, privileged: bool, readonly: bool) -> list[dict[str, Any]]:
    mounts: list[dict[str, Any]] = [
        {"destination": "/proc", "type": "proc", "source": "proc", "options": ["nosuid", "noexec", "nodev"]},
        {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
         "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
        {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
         "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
        {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue", "options": ["nosuid", "noexec", "nodev"]},
        {"destination": "/sys", "type": "sysfs", "source": "sysfs",
         "options": ["nosuid", "noexec", "nodev", "rw" if privileged else "ro"]},
        {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
         "options": ["nosuid", "noexec", "nodev", "relatime", "rw" if privileged else "ro"]},
    ]
    if sandbox.shm:
        mounts.append({"destination": "/dev/shm", "type": "bind", "source": sandbox.shm,
                       "options": ["rbind", "nosuid", "nodev", "noexec", "rw"]})
    else:
        mounts.append({"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
                       "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]})
    for destination, source in sandbox.etc_files.items():
        mounts.append({"destination": destination, "type": "bind", "source": source,
                       "options": ["rbind", "rprivate", "ro" if readonly else "rw"]})
    return mounts


def _user_mounts(config: ContainerConfig) -> tuple[list[dict[str, Any]], str]:
    mounts, propagation = [], ""
    for m in sorted(config.mounts, key=lambda m: len([p for p in m.container_path.split("/") if p])):
        mode = {"rshared": "rshared", "rslave": "rslave"}.get(m.propagation, "rprivate")
        if mode == "rshared" or (mode == "rslave" and propagation != "rshared"):
            propagation = mode
        mounts.append({"destination": m.container_path, "type": "bind", "source": m.host_path,
                       "options": ["rbind", mode, "ro" if m.readonly else "rw"]})
    return mounts, propagation


def build_spec(config: ContainerConfig, image_config: dict[str, Any], *, rootfs: str, user: User,
               sandbox: Sandbox, cgroups_path: str, host_caps: list[str],
               host_devices: list[dict[str, Any]] | None = None,
               localhost_profile: dict[str, Any] | None = None) -> dict[str, Any]:
    """config.json for a container (see the module docstring)."""
    sec = config.security
    caps = capabilities(config, host_caps)
    process: dict[str, Any] = {
        "terminal": config.tty,
        "user": {"uid": user.uid, "gid": user.gid, **({"additionalGids": list(user.additional_gids)}
                                                     if user.additional_gids else {})},
        "args": resolve_argv(config, image_config),
        "env": merge_env(config, image_config, sandbox.hostname),
        "cwd": config.working_dir or image_config.get("WorkingDir") or "/",
        "capabilities": {"bounding": caps, "effective": caps, "permitted": caps},
        "noNewPrivileges": bool(sec.no_new_privileges and not sec.privileged),
    }
    oom = config.resources.oom_score_adj
    if oom > 0:
        process["oomScoreAdj"] = min(oom, 1000)
    defaults = _default_mounts(sandbox, sec.privileged, sec.readonly_rootfs)
    user_mounts, propagation = _user_mounts(config)
    taken = {m["destination"].rstrip("/") for m in user_mounts}
    mounts = [m for m in defaults if m["destination"] not in taken] + user_mounts

    namespaces: list[dict[str, Any]] = [{"type": "mount"}]
    for kind, oci in (("net", "network"), ("ipc", "ipc"), ("uts", "uts"), ("pid", "pid")):
        if kind in sandbox.namespaces:
            path = sandbox.namespaces[kind]
            namespaces.append({"type": oci, "path": path} if path else {"type": oci})
        elif kind == "pid":
            namespaces.append({"type": "pid"})
    if sandbox.cgroup_v2:
        namespaces.append({"type": "cgroup"})

    r = config.resources
    resources: dict[str, Any] = {"devices": [{"allow": bool(sec.privileged), "access": "rwm"}]}
    cpu: dict[str, Any] = {}
    if r.cpu_shares:
        cpu["shares"] = max(2, r.cpu_shares)
    if r.cpu_quota:
        cpu["quota"] = r.cpu_quota
        cpu["period"] = r.cpu_period or 100_000
    elif r.cpu_period:
        cpu["period"] = r.cpu_period
    if cpu:
        resources["cpu"] = cpu
    if r.memory_limit:
        resources["memory"] = {"limit": r.memory_limit, "swap": r.memory_limit}
    if r.pids_limit:
        resources["pids"] = {"limit": r.pids_limit}

    linux: dict[str, Any] = {"namespaces": namespaces, "cgroupsPath": cgroups_path, "resources": resources}
    if propagation:
        linux["rootfsPropagation"] = propagation
    if sec.privileged:
        linux["devices"] = list(host_devices or [])
    else:
        linux["maskedPaths"] = list(MASKED_PATHS)
        linux["readonlyPaths"] = list(READONLY_PATHS)
        profile = sec.seccomp or "RuntimeDefault"
        if profile.lower().startswith("localhost/"):
            if localhost_profile is None:
                raise RuntimeError_("CreateContainerError", f"seccomp profile {profile!r} was not loaded")
            linux["seccomp"] = seccomp.localhost(localhost_profile, caps)
        elif profile in ("RuntimeDefault", "runtime/default", "docker/default"):
            linux["seccomp"] = seccomp.runtime_default(caps)
        elif profile != "Unconfined" and profile != "unconfined":
            raise RuntimeError_("CreateContainerError", f"unknown seccomp profile {profile!r}")
    spec: dict[str, Any] = {
        "ociVersion": OCI_VERSION,
        "process": process,
        "root": {"path": rootfs, "readonly": bool(sec.readonly_rootfs)},
        "mounts": mounts,
        "linux": linux,
    }
    if "uts" in sandbox.namespaces and sandbox.namespaces["uts"] == "" and sandbox.hostname:
        spec["hostname"] = sandbox.hostname  # a UTS namespace of the container's own
    return spec
