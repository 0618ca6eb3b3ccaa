"""Seccomp profiles for the OCI spec (pure).

``runtime_default(caps)`` is the profile for ``seccompProfile: RuntimeDefault``.  It is a
*blocklist* (default action ALLOW), not the allowlist of Docker/containerd's default profile:
it refuses, with EPERM, the system calls that profile leaves out — kernel modules, kexec and
reboot, clock setting, mount/umount/pivot_root, namespace creation and joining (``unshare``,
``setns``, ``clone`` with CLONE_NEW* flags; ``clone3`` answers ENOSYS so libcs fall back to
``clone``), keyrings, BPF and perf events, NUMA policy, raw I/O ports, ``open_by_handle_at``,
``userfaultfd``, io_uring, quotas, swap, accounting, obsolete calls — and, like that profile,
lifts a group when the container holds the capability that governs it (CAP_SYS_ADMIN lifts the
mount and namespace groups, CAP_SYS_MODULE the module group, ...).  A system call added to the
kernel later is allowed by a blocklist, where an allowlist would refuse it: the price of a
profile short enough to read.

``localhost(profile, caps)`` turns a profile file (OCI form, or Docker's form with
``archMap``, ``name`` and ``includes``/``excludes`` by capability) into the spec's form.
``Unconfined`` (and privileged containers) get no profile at all.
"""

from __future__ import annotations

from typing import Any

EPERM = 1
ENOSYS = 38
ARCHES = ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"]

CLONE_NAMESPACE_FLAGS = (0x00020000, 0x02000000, 0x04000000, 0x08000000, 0x10000000, 0x20000000, 0x40000000)
# CLONE_NEWNS, CLONE_NEWCGROUP, CLONE_NEWUTS, CLONE_NEWIPC, CLONE_NEWUSER, CLONE_NEWPID, CLONE_NEWNET

# Blocked system calls, by the capability that lifts the block ("" = blocked whatever the caps).
BLOCKED: dict[str, tuple[str, ...]] = {
    "": ("add_key", "keyctl", "request_key", "uselib", "ustat", "sysfs", "_sysctl", "nfsservctl", "vm86",
         "vm86old", "io_uring_setup", "io_uring_enter", "io_uring_register", "get_kernel_syms",
         "query_module", "create_module"),
    "CAP_SYS_ADMIN": ("mount", "umount", "umount2", "pivot_root", "setns", "unshare", "fsopen", "fsmount",
                      "fsconfig", "fspick", "move_mount", "open_tree", "mount_setattr", "quotactl",
                      "quotactl_fd", "lookup_dcookie", "swapon", "swapoff", "fanotify_init", "bpf",
                      "perf_event_open", "name_to_handle_at"),
    "CAP_SYS_MODULE": ("init_module", "finit_module", "delete_module"),
    "CAP_SYS_BOOT": ("reboot", "kexec_load", "kexec_file_load"),
    "CAP_SYS_TIME": ("settimeofday", "stime", "clock_settime", "clock_settime64", "clock_adjtime",
                     "clock_adjtime64"),
    "CAP_SYS_PACCT": ("acct",),
    "CAP_SYS_RAWIO": ("iopl", "ioperm"),
    "CAP_SYS_NICE": ("mbind", "set_mempolicy", "get_mempolicy", "move_pages", "set_mempolicy_home_node"),
    "CAP_SYS_PTRACE": ("kcmp", "userfaultfd"),
    "CAP_DAC_READ_SEARCH": ("open_by_handle_at",),
    "CAP_SYSLOG": ("syslog",),
}


def runtime_default(caps: list[str] | set[str]) -> dict[str, Any]:
    """The RuntimeDefault profile for a container whose effective capabilities are ``caps``."""
    held = set(caps)
    blocked = sorted(name for cap, names in BLOCKED.items() if not cap or cap not in held for name in names)
    rules: list[dict[str, Any]] = [{"names": blocked, "action": "SCMP_ACT_ERRNO", "errnoRet": EPERM}]
    if "CAP_SYS_ADMIN" not in held:
        rules.append({"names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": ENOSYS})
        for flag in CLONE_NAMESPACE_FLAGS:  # separate rules: any one flag refuses the call
            rules.append({"names": ["clone"], "action": "SCMP_ACT_ERRNO", "errnoRet": EPERM,
                          "args": [{"index": 0, "value": flag, "valueTwo": flag, "op": "SCMP_CMP_MASKED_EQ"}]})
    return {"defaultAction": "SCMP_ACT_ALLOW", "architectures": list(ARCHES), "syscalls": rules}


def _applies(entry: dict[str, Any], held: set[str]) -> bool:
    includes = (entry.get("includes") or {}).get("caps") or []
    excludes = (entry.get("excludes") or {}).get("caps") or []
    return all(c in held for c in includes) and not any(c in held for c in excludes)


def localhost(profile: dict[str, Any], caps: list[str] | set[str]) -> dict[str, Any]:
    """A profile file's content in the OCI spec's form (see the module docstring); raises
    ValueError when it is not a seccomp profile."""
    if not isinstance(profile, dict) or not isinstance(profile.get("defaultAction"), str):
        raise ValueError("not a seccomp profile: it has no defaultAction")
    held = set(caps)
    out: dict[str, Any] = {"defaultAction": profile["defaultAction"]}
    if "defaultErrnoRet" in profile:
        out["defaultErrnoRet"] = profile["defaultErrnoRet"]
    arches = list(profile.get("architectures") or [])
    for entry in profile.get("archMap") or []:
        if entry.get("architecture") in ("SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"):
            arches += [entry["architecture"], *(entry.get("subArchitectures") or [])]
    if arches:
        out["architectures"] = list(dict.fromkeys(arches))
    if profile.get("flags"):
        out["flags"] = list(profile["flags"])
    rules = []
    for entry in profile.get("syscalls") or []:
        if not isinstance(entry, dict) or not _applies(entry, held):
            continue
        names = list(entry.get("names") or ([entry["name"]] if entry.get("name") else []))
        if not names or not isinstance(entry.get("action"), str):
            raise ValueError("a syscalls entry needs names and an action")
        rule: dict[str, Any] = {"names": names, "action": entry["action"]}
        for key in ("errnoRet", "args"):
            if entry.get(key) is not None:
                rule[key] = entry[key]
        rules.append(rule)
    out["syscalls"] = rules
    return out
