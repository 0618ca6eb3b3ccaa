"""From a pod's spec to the runtime's configs (pure): the sandbox config of a pod and the
container config of each container, as upstream kubelet's kuberuntime generates them for CRI.

- **Identity labels** on sandboxes and containers (``io.kubernetes.pod.uid``,
  ``io.kubernetes.pod.name``, ``io.kubernetes.pod.namespace``,
  ``io.kubernetes.container.name``) let a restarted kubelet find what it ran (adoption), and
  annotations carry the container's spec hash and restart count.
- **Logs:** a pod's logs live in ``<logs root>/<namespace>_<name>_<uid>/<container>/<restart
  count>.log``, so a restart leaves the previous instance's log beside the new one.
- **Resources:** cpu shares = milli-CPU requests x 1024 / 1000 (minimum 2), a CFS quota from
  the cpu limit over a 100 ms period, the memory limit in bytes.
- **Security:** the pod's securityContext under the container's, as upstream merges them.
"""

from __future__ import annotations

import hashlib
from typing import Any

import orjson

from pybernetes.kubelet.runtime.protocol import (
    ContainerConfig,
    DNSConfig,
    Mount,
    PodSandboxConfig,
    PortMapping,
    Resources,
    SecurityContext,
)
from pybernetes.machinery.quantity import parse_quantity

Obj = dict[str, Any]

POD_UID = "io.kubernetes.pod.uid"
POD_NAME = "io.kubernetes.pod.name"
POD_NAMESPACE = "io.kubernetes.pod.namespace"
CONTAINER_NAME = "io.kubernetes.container.name"
CONTAINER_HASH = "io.kubernetes.container.hash"
RESTART_COUNT = "io.kubernetes.container.restartCount"
TERMINATION_MESSAGE_PATH = "io.kubernetes.container.terminationMessagePath"
CPU_PERIOD = 100_000  # microseconds, upstream's default CFS period
MIN_SHARES = 2
DEFAULT_TERMINATION_MESSAGE_PATH = "/dev/termination-log"


def pod_labels(pod: Obj) -> dict[str, str]:
    meta = pod.get("metadata") or {}
    return {POD_UID: meta.get("uid", ""), POD_NAME: meta.get("name", ""), POD_NAMESPACE: meta.get("namespace", "")}


def log_directory(logs_root: str, pod: Obj) -> str:
    meta = pod.get("metadata") or {}
    return f"{logs_root}/{meta.get('namespace', '')}_{meta.get('name', '')}_{meta.get('uid', '')}"


def container_hash(container: Obj) -> str:
    """A stable digest of the container's spec: a change restarts the container (as upstream's
    hash of the container, which only changes with the image, as the other fields of a pod's
    containers are immutable)."""
    return hashlib.sha256(orjson.dumps(container, option=orjson.OPT_SORT_KEYS)).hexdigest()[:16]


def hostname(pod: Obj) -> str:
    spec = pod.get("spec") or {}
    if spec.get("hostNetwork"):
        return ""
    return (spec.get("hostname") or (pod.get("metadata") or {}).get("name", ""))[:63]


def hostname_fqdn(pod: Obj, cluster_domain: str = "cluster.local") -> str:
    """``<hostname>.<subdomain>.<namespace>.svc.<domain>`` for a pod with a subdomain (a
    StatefulSet's pods behind their headless Service), else ""."""
    spec = pod.get("spec") or {}
    subdomain = spec.get("subdomain")
    name = hostname(pod)
    if not subdomain or not name:
        return ""
    return f"{name}.{subdomain}.{(pod.get('metadata') or {}).get('namespace', '')}.svc.{cluster_domain}"


def host_aliases(pod: Obj) -> list[tuple[str, list[str]]]:
    return [(str(a.get("ip", "")), [str(h) for h in a.get("hostnames") or []])
            for a in (pod.get("spec") or {}).get("hostAliases") or [] if a.get("ip")]


def sandbox_config(pod: Obj, *, attempt: int, logs_root: str, dns: DNSConfig | None,
                   cluster_domain: str = "cluster.local") -> PodSandboxConfig:
    meta, spec = pod.get("metadata") or {}, pod.get("spec") or {}
    ports = []
    for container in spec.get("containers") or []:
        for port in container.get("ports") or []:
            if port.get("hostPort"):
                ports.append(PortMapping(int(port["containerPort"]), int(port["hostPort"]),
                                         str(port.get("protocol") or "TCP"), str(port.get("hostIP") or "")))
    return PodSandboxConfig(
        name=meta.get("name", ""), namespace=meta.get("namespace", ""), uid=meta.get("uid", ""), attempt=attempt,
        hostname=hostname(pod), host_network=bool(spec.get("hostNetwork")),
        log_directory=log_directory(logs_root, pod), dns=dns, port_mappings=ports, labels=pod_labels(pod),
        annotations=dict(meta.get("annotations") or {}),  # the runtime places the pod's cgroup
        hostname_fqdn=hostname_fqdn(pod, cluster_domain), host_aliases=host_aliases(pod))


def _milli(value: Any) -> int:
    return int(parse_quantity(str(value)) * 1000)


def resources(container: Obj) -> Resources:
    res = container.get("resources") or {}
    requests, limits = res.get("requests") or {}, res.get("limits") or {}
    out = Resources()
    cpu_request = requests.get("cpu", limits.get("cpu"))
    out.cpu_shares = max(MIN_SHARES, _milli(cpu_request) * 1024 // 1000) if cpu_request is not None else MIN_SHARES
    if limits.get("cpu") is not None:
        out.cpu_period = CPU_PERIOD
        out.cpu_quota = max(1000, _milli(limits["cpu"]) * CPU_PERIOD // 1000)
    if limits.get("memory") is not None:
        out.memory_limit = int(parse_quantity(str(limits["memory"])))
    return out


def security(pod: Obj, container: Obj) -> SecurityContext:
    pod_sc = (pod.get("spec") or {}).get("securityContext") or {}
    sc = container.get("securityContext") or {}

    def pick(key: str) -> Any:
        return sc[key] if sc.get(key) is not None else pod_sc.get(key)

    caps = sc.get("capabilities") or {}
    seccomp = sc.get("seccompProfile") or pod_sc.get("seccompProfile") or {}
    seccomp_type = seccomp.get("type") or "RuntimeDefault"
    if seccomp_type == "Localhost":
        seccomp_value = f"localhost/{seccomp.get('localhostProfile', '')}"
    else:
        seccomp_value = "Unconfined" if seccomp_type == "Unconfined" else "RuntimeDefault"
    groups = [int(g) for g in pod_sc.get("supplementalGroups") or []]
    if pod_sc.get("fsGroup") is not None and int(pod_sc["fsGroup"]) not in groups:
        groups.append(int(pod_sc["fsGroup"]))
    privileged = bool(sc.get("privileged"))
    escalation = sc.get("allowPrivilegeEscalation")
    return SecurityContext(
        run_as_user=pick("runAsUser"), run_as_group=pick("runAsGroup"), supplemental_groups=groups,
        privileged=privileged, readonly_rootfs=bool(sc.get("readOnlyRootFilesystem")),
        no_new_privileges=escalation is False and not privileged,
        add_capabilities=list(caps.get("add") or []), drop_capabilities=list(caps.get("drop") or []),
        seccomp=seccomp_value, run_as_non_root=bool(pick("runAsNonRoot")))


def container_config(pod: Obj, container: Obj, *, restart_count: int, env: list[tuple[str, str]],
                     mounts: list[Mount], termination_log: str = "") -> ContainerConfig:
    """The runtime config of one container.  ``termination_log``: the host file the kubelet
    mounts at the container's terminationMessagePath (read back when it exits)."""
    name = container.get("name", "")
    labels = {**pod_labels(pod), CONTAINER_NAME: name}
    message_path = container.get("terminationMessagePath") or DEFAULT_TERMINATION_MESSAGE_PATH
    all_mounts = list(mounts)
    if termination_log:
        all_mounts.append(Mount(container_path=message_path, host_path=termination_log))
    return ContainerConfig(
        name=name, image=container.get("image", ""), attempt=restart_count,
        command=list(container.get("command") or []), args=list(container.get("args") or []),
        working_dir=container.get("workingDir") or "", env=env, mounts=all_mounts,
        log_path=f"{name}/{restart_count}.log", tty=bool(container.get("tty")), stdin=bool(container.get("stdin")),
        resources=resources(container), security=security(pod, container), labels=labels,
        annotations={CONTAINER_HASH: container_hash(container), RESTART_COUNT: str(restart_count),
                     TERMINATION_MESSAGE_PATH: message_path})


def read_resolv_conf(path: str = "/etc/resolv.conf") -> DNSConfig:
    """The host's resolver configuration (what dnsPolicy Default gives a pod)."""
    out = DNSConfig()
    try:
        with open(path) as f:
            lines = f.read().splitlines()
    except OSError:
        return out
    for line in lines:
        words = line.split("#", 1)[0].split()
        if len(words) < 2:
            continue
        if words[0] == "nameserver":
            out.servers.append(words[1])
        elif words[0] in ("search", "domain"):
            out.searches = words[1:]
        elif words[0] == "options":
            out.options.extend(words[1:])
    return out


def dns_config(pod: Obj, host: DNSConfig, cluster_dns: list[str], cluster_domain: str = "cluster.local") -> DNSConfig:
    """A pod's resolv.conf by dnsPolicy, as upstream: ClusterFirst (the default) uses the cluster
    DNS servers with the namespace's search path and ndots:5, and falls back to the node's
    resolvers while the cluster has no DNS service (``cluster_dns`` empty) or for hostNetwork
    pods; Default uses the node's; None uses dnsConfig alone; dnsConfig is merged last."""
    spec = pod.get("spec") or {}
    policy = spec.get("dnsPolicy") or "ClusterFirst"
    if policy == "ClusterFirst" and spec.get("hostNetwork"):
        policy = "Default"
    if policy == "ClusterFirstWithHostNet":
        policy = "ClusterFirst"
    if policy == "ClusterFirst" and not cluster_dns:
        policy = "Default"
    namespace = (pod.get("metadata") or {}).get("namespace", "")
    if policy == "ClusterFirst":
        out = DNSConfig(servers=list(cluster_dns),
                        searches=[f"{namespace}.svc.{cluster_domain}", f"svc.{cluster_domain}", cluster_domain,
                                  *host.searches],
                        options=["ndots:5"])
    elif policy == "Default":
        out = DNSConfig(list(host.servers), list(host.searches), list(host.options))
    else:
        out = DNSConfig()
    extra = spec.get("dnsConfig") or {}
    for server in extra.get("nameservers") or []:
        if server not in out.servers:
            out.servers.append(server)
    for search in extra.get("searches") or []:
        if search not in out.searches:
            out.searches.append(search)
    options = {o.split(":", 1)[0]: o for o in out.options}
    for option in extra.get("options") or []:
        name = option.get("name", "")
        options[name] = f"{name}:{option['value']}" if option.get("value") is not None else name
    out.options = list(options.values())
    out.servers = out.servers[:3]
    out.searches = out.searches[:32]
    return out
