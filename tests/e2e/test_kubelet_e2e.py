"""Issue 5's acceptance, as root with real runc, conmon, CNI and a real registry, driven by the
real kubectl: ``pybernetes up`` runs the control plane and a node agent with the runc
runtime; the test image (busybox-static as an OCI image) is pushed to Debian's docker-registry
on 127.0.0.1 and pulled from there by the node.

Scenarios: a file-puller container and an httpd sharing an emptyDir; a sidecar reaching the
main container over localhost; a Deployment scaled 1 -> 5 -> 2 with every pod answering on its
pod IP; CrashLoopBackOff with a growing restart count; OOMKilled under a memory limit; a
readiness probe gating Ready; init containers in order; a PVC of the default StorageClass
keeping its data across pods; limits visible in the container's cgroup; and nothing left
behind once the pods are gone (containers, namespaces, CNI allocations, mounts, cgroups).
"""

from __future__ import annotations

import subprocess
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from e2e_cluster import Cluster, poll
from e2e_node import apply, is_ready, missing, node_cluster, phase_is

pytestmark = pytest.mark.e2e
NODE = "e2e-node"
POD_CIDR = "10.77.0.0/24"
BRIDGE = "pybe2e0"  # not the default pyb0: a cluster the developer runs keeps its own


@pytest.fixture(scope="module")
def node() -> Iterator[tuple[Cluster, str]]:
    """The cluster (control plane + a runc node) and the image reference to use."""
    why = missing()
    if why:
        pytest.skip(why)
    with node_cluster(NODE, POD_CIDR, BRIDGE) as (cluster, image):
        yield cluster, image


def pod(cluster: Cluster, name: str) -> dict:
    return cluster.get("pod", name)


def http_get(ip: str, port: int = 80, path: str = "/") -> str:
    with urllib.request.urlopen(f"http://{ip}:{port}{path}", timeout=5) as response:
        return response.read().decode()


def answers(ip: str, port: int = 80, path: str = "/") -> str | None:
    try:
        return http_get(ip, port, path)
    except OSError:
        return None


def test_a_file_puller_and_an_httpd_share_an_emptydir(node) -> None:
    cluster, image = node
    apply(cluster, f"""
apiVersion: v1
kind: Pod
metadata: {{name: shared}}
spec:
  volumes: [{{name: content, emptyDir: {{}}}}]
  containers:
  - name: puller
    image: {image}
    command: [sh, -c, "echo pulled by the puller > /data/index.html; sleep 3600"]
    volumeMounts: [{{name: content, mountPath: /data}}]
  - name: web
    image: {image}
    command: [httpd, -f, -p, "80", -h, /www]
    volumeMounts: [{{name: content, mountPath: /www}}]
""")
    running = poll(phase_is(cluster, "shared", "Running"), "the pod Running", timeout=90)
    ip = running["status"]["podIP"]
    assert ip.startswith("10.77.0.")
    text = poll(lambda: answers(ip), "httpd serving the puller's file", timeout=30)
    assert text == "pulled by the puller\n"
    described = cluster.kubectl("describe", "pod", "shared").stdout
    assert "Pulled" in described or "Pulling" in described
    cluster.kubectl("delete", "pod", "shared")


def test_a_sidecar_reaches_the_main_container_over_localhost(node) -> None:
    cluster, image = node
    apply(cluster, f"""
apiVersion: v1
kind: Pod
metadata: {{name: sidecar}}
spec:
  initContainers:
  - name: probe
    image: {image}
    restartPolicy: Always
    command: [sh, -c, "while true; do wget -qO- http://127.0.0.1:8080/ 2>/dev/null; sleep 1; done"]
  containers:
  - name: main
    image: {image}
    command: [sh, -c, "mkdir -p /www && echo hello over localhost > /www/index.html && exec httpd -f -p 8080 -h /www"]
""")
    poll(phase_is(cluster, "sidecar", "Running"), "the pod Running", timeout=90)
    poll(lambda: "hello over localhost" in cluster.kubectl("logs", "sidecar", "-c", "probe", check=False).stdout,
         "the sidecar's log showing the main container's answer", timeout=30)
    cluster.kubectl("delete", "pod", "sidecar")


def test_a_deployment_scales_and_every_pod_answers_on_its_ip(node) -> None:
    cluster, image = node
    apply(cluster, f"""
apiVersion: apps/v1
kind: Deployment
metadata: {{name: web}}
spec:
  replicas: 1
  selector: {{matchLabels: {{app: web}}}}
  template:
    metadata: {{labels: {{app: web}}}}
    spec:
      terminationGracePeriodSeconds: 2
      containers:
      - name: httpd
        image: {image}
        command: [sh, -c, "mkdir -p /www && hostname > /www/index.html && exec httpd -f -p 80 -h /www"]
        readinessProbe: {{httpGet: {{path: /, port: 80}}, periodSeconds: 1}}
""")
    for replicas in (1, 5, 2):
        cluster.kubectl("scale", "deployment", "web", f"--replicas={replicas}")

        def settled(replicas=replicas):
            pods = [p for p in cluster.get("pods", "-l", "app=web")["items"]
                    if not p["metadata"].get("deletionTimestamp")]
            if len(pods) != replicas or not all(is_ready(p) for p in pods):
                return None
            return pods if len(cluster.get("pods", "-l", "app=web")["items"]) == replicas else None

        pods = poll(settled, f"{replicas} ready replicas", timeout=120)
        for p in pods:
            assert http_get(p["status"]["podIP"]).strip() == p["metadata"]["name"]
        assert len({p["status"]["podIP"] for p in pods}) == replicas
    cluster.kubectl("delete", "deployment", "web")


def test_a_crashing_container_loops_with_back_off(node) -> None:
    cluster, image = node
    apply(cluster, f"""
apiVersion: v1
kind: Pod
metadata: {{name: crasher}}
spec:
  containers:
  - {{name: crash, image: {image}, command: [sh, -c, "echo about to fail; exit 3"]}}
""")

    def looping():
        status = pod(cluster, "crasher").get("status", {})
        for entry in status.get("containerStatuses") or []:
            waiting = entry["state"].get("waiting") or {}
            if waiting.get("reason") == "CrashLoopBackOff" and entry["restartCount"] >= 2:
                return entry
        return None

    entry = poll(looping, "CrashLoopBackOff with restarts", timeout=90)
    assert entry["lastState"]["terminated"]["exitCode"] == 3
    assert "about to fail" in cluster.kubectl("logs", "crasher", "--previous").stdout
    assert "CrashLoopBackOff" in cluster.kubectl("get", "pod", "crasher").stdout
    cluster.kubectl("delete", "pod", "crasher", "--grace-period=1")


def test_a_memory_hog_is_oom_killed_under_its_limit(node) -> None:
    cluster, image = node
    apply(cluster, f"""
apiVersion: v1
kind: Pod
metadata: {{name: hog}}
spec:
  restartPolicy: Never
  containers:
  - name: hog
    image: {image}
    command: [sh, -c, "x=0123456789; while true; do x=$x$x; done"]
    resources: {{limits: {{memory: 32Mi}}}}
""")
    done = poll(phase_is(cluster, "hog", "Failed"), "the pod Failed", timeout=90)
    terminated = done["status"]["containerStatuses"][0]["state"]["terminated"]
    assert terminated["reason"] == "OOMKilled" and terminated["exitCode"] == 137
    cluster.kubectl("delete", "pod", "hog")


def test_a_pod_writing_past_its_empty_dir_size_limit_is_evicted(node) -> None:
    cluster, image = node
    apply(cluster, f"""
apiVersion: v1
kind: Pod
metadata: {{name: filler}}
spec:
  terminationGracePeriodSeconds: 30
  volumes: [{{name: scratch, emptyDir: {{sizeLimit: 1Mi}}}}]
  containers:
  - name: filler
    image: {image}
    command: [sh, -c, "dd if=/dev/zero of=/scratch/big bs=64k count=48; exec sleep 3600"]
    volumeMounts: [{{name: scratch, mountPath: /scratch}}]
""")
    done = poll(phase_is(cluster, "filler", "Failed"), "the pod evicted", timeout=60)
    message = 'Usage of EmptyDir volume "scratch" exceeds the limit "1Mi". '
    assert done["status"]["reason"] == "Evicted" and done["status"]["message"] == message
    assert "terminated" in done["status"]["containerStatuses"][0]["state"]
    described = cluster.kubectl("describe", "pod", "filler").stdout
    assert "Evicted" in described and "exceeds the limit" in described
    cluster.kubectl("delete", "pod", "filler")


def test_a_readiness_probe_gates_ready(node) -> None:
    cluster, image = node
    apply(cluster, f"""
apiVersion: v1
kind: Pod
metadata: {{name: gated}}
spec:
  containers:
  - name: web
    image: {image}
    command: [sh, -c, "mkdir -p /www; (sleep 6; echo ok > /www/ready) & exec httpd -f -p 80 -h /www"]
    readinessProbe: {{httpGet: {{path: /ready, port: 80}}, periodSeconds: 1}}
""")
    running = poll(phase_is(cluster, "gated", "Running"), "Running", timeout=90)
    if not is_ready(running):  # seen before the file appeared: not Ready yet
        assert running["status"]["containerStatuses"][0]["ready"] is False
    poll(lambda: is_ready(pod(cluster, "gated")), "Ready once the probe passes", timeout=60)
    assert pod(cluster, "gated")["status"]["containerStatuses"][0]["restartCount"] == 0
    cluster.kubectl("delete", "pod", "gated")


def test_init_containers_run_in_order(node) -> None:
    cluster, image = node
    apply(cluster, f"""
apiVersion: v1
kind: Pod
metadata: {{name: inits}}
spec:
  volumes: [{{name: work, emptyDir: {{}}}}]
  initContainers:
  - {{name: one, image: {image}, command: [sh, -c, "echo one >> /work/order"], volumeMounts: [{{name: work, mountPath: /work}}]}}
  - {{name: two, image: {image}, command: [sh, -c, "echo two >> /work/order"], volumeMounts: [{{name: work, mountPath: /work}}]}}
  containers:
  - {{name: main, image: {image}, command: [sh, -c, "cat /work/order; sleep 3600"], volumeMounts: [{{name: work, mountPath: /work}}]}}
""")
    poll(phase_is(cluster, "inits", "Running"), "Running", timeout=90)
    logs = poll(lambda: cluster.kubectl("logs", "inits", check=False).stdout, "the main container's log", timeout=30)
    assert logs.split() == ["one", "two"]
    statuses = pod(cluster, "inits")["status"]["initContainerStatuses"]
    assert [s["state"]["terminated"]["reason"] for s in statuses] == ["Completed", "Completed"]
    cluster.kubectl("delete", "pod", "inits")


def test_a_claim_of_the_default_storage_class_keeps_its_data(node) -> None:
    cluster, image = node
    apply(cluster, """
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: keep}
spec:
  accessModes: [ReadWriteOnce]
  resources: {requests: {storage: 10Mi}}
""")
    claim = cluster.get("pvc", "keep")
    assert claim["spec"]["storageClassName"] == "local-path"  # the default class was given
    writer = f"""
apiVersion: v1
kind: Pod
metadata: {{name: writer}}
spec:
  restartPolicy: Never
  volumes: [{{name: data, persistentVolumeClaim: {{claimName: keep}}}}]
  containers:
  - {{name: w, image: {image}, command: [sh, -c, "echo kept-across-pods > /data/stamp"], volumeMounts: [{{name: data, mountPath: /data}}]}}
"""
    apply(cluster, writer)
    poll(phase_is(cluster, "writer", "Succeeded"), "the writer done", timeout=120)
    assert cluster.get("pvc", "keep")["status"]["phase"] == "Bound"
    cluster.kubectl("delete", "pod", "writer")
    apply(cluster, writer.replace("writer", "reader").replace(
        '"echo kept-across-pods > /data/stamp"', '"cat /data/stamp"'))
    poll(phase_is(cluster, "reader", "Succeeded"), "the reader done", timeout=120)
    assert cluster.kubectl("logs", "reader").stdout.strip() == "kept-across-pods"
    cluster.kubectl("delete", "pod", "reader")


def test_limits_are_visible_in_the_container_cgroup(node) -> None:
    cluster, image = node
    apply(cluster, f"""
apiVersion: v1
kind: Pod
metadata: {{name: limited}}
spec:
  containers:
  - name: c
    image: {image}
    command: [sh, -c, "cat /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/cpu/cpu.cfs_quota_us /sys/fs/cgroup/cpu/cpu.shares; sleep 3600"]
    resources: {{limits: {{memory: 64Mi, cpu: 500m}}, requests: {{cpu: 250m}}}}
""")
    poll(phase_is(cluster, "limited", "Running"), "Running", timeout=90)
    logs = poll(lambda: cluster.kubectl("logs", "limited", check=False).stdout.split(), "the values", timeout=30)
    assert logs == [str(64 << 20), "50000", "256"]
    cluster.kubectl("delete", "pod", "limited")


def test_nothing_is_left_once_the_pods_are_gone(node) -> None:
    cluster, image = node
    namespaces_before = set(_netns())
    apply(cluster, f"""
apiVersion: v1
kind: Pod
metadata: {{name: transient}}
spec:
  terminationGracePeriodSeconds: 1
  volumes: [{{name: scratch, emptyDir: {{medium: Memory}}}}]
  containers:
  - {{name: c, image: {image}, command: [sleep, "3600"], volumeMounts: [{{name: scratch, mountPath: /scratch}}]}}
""")
    running = poll(phase_is(cluster, "transient", "Running"), "Running", timeout=90)
    uid, ip = running["metadata"]["uid"], running["status"]["podIP"]
    container_id = running["status"]["containerStatuses"][0]["containerID"].split("://", 1)[1]
    # pulled from the registry: its imageID is the repo digest, as containerd shows it
    assert running["status"]["containerStatuses"][0]["imageID"].startswith(image.rsplit(":", 1)[0] + "@sha256:")
    cluster.kubectl("delete", "pod", "transient")
    poll(lambda: not cluster.get("pods", "--field-selector", "metadata.name=transient")["items"], "the pod gone")
    agent_root = cluster.data_dir / "agent"

    def leftovers() -> list[str]:
        found = []
        runc_list = subprocess.run(["runc", "--root", str(agent_root / "runc" / "runc"), "list", "-q"],
                                   capture_output=True, text=True).stdout.split()
        if container_id in runc_list:
            found.append("runc container")
        if any(container_id in line or uid in line for line in Path("/proc/self/mountinfo").read_text().splitlines()):
            found.append("mounts")
        if set(_netns()) - namespaces_before:
            found.append("network namespace")
        if list(agent_root.glob(f"runc/cni/**/{ip}")) or ip in _cni_allocations(agent_root):
            found.append("CNI allocation")
        if list(Path("/sys/fs/cgroup/memory").glob(f"**/pod{uid}")):
            found.append("cgroup")
        if (agent_root / "pods" / uid).exists():
            found.append("pod directory")
        if list((agent_root / "runc" / "containers").glob(f"{container_id}*")):
            found.append("container bundle / overlay dirs")
        return found

    seen: list[list[str]] = []

    def clean() -> bool:
        seen.append(leftovers())
        return not seen[-1]

    try:
        poll(clean, "nothing left behind", timeout=30)
    except AssertionError:
        raise AssertionError(f"left behind after the pod was deleted: {seen[-1]}") from None


def _netns() -> list[str]:
    listed = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    return [line.split()[0] for line in listed.splitlines() if line.strip()]


def _cni_allocations(agent_root: Path) -> str:
    names = []
    for path in agent_root.glob("runc/cni/**/*"):
        if path.is_file():
            names.append(path.name)
    return " ".join(names)


def test_bad_input_is_reported_per_pod_and_harms_no_other(node) -> None:
    """Issue 5 item 8: each failure visible in kubectl describe with its reason, while a good
    pod beside them runs."""
    cluster, image = node
    registry_host = image.split("/", 1)[0]
    apply(cluster, f"""
apiVersion: v1
kind: Pod
metadata: {{name: no-such-image}}
spec:
  containers: [{{name: c, image: "{registry_host}/nothing-here:1"}}]
---
apiVersion: v1
kind: Pod
metadata: {{name: no-such-command}}
spec:
  containers: [{{name: c, image: {image}, command: [/bin/not-in-the-image]}}]
---
apiVersion: v1
kind: Pod
metadata: {{name: no-such-secret}}
spec:
  containers:
  - name: c
    image: {image}
    command: [sleep, "3600"]
    env: [{{name: TOKEN, valueFrom: {{secretKeyRef: {{name: absent, key: token}}}}}}]
---
apiVersion: v1
kind: Pod
metadata: {{name: root-image}}
spec:
  securityContext: {{runAsNonRoot: true}}
  containers: [{{name: c, image: {image}, command: [sleep, "3600"]}}]
---
apiVersion: v1
kind: Pod
metadata: {{name: healthy}}
spec:
  containers: [{{name: c, image: {image}, command: [sleep, "3600"]}}]
""")

    def reason(name: str) -> str | None:
        for entry in pod(cluster, name).get("status", {}).get("containerStatuses") or []:
            waiting = entry["state"].get("waiting") or {}
            if waiting.get("reason") not in (None, "ContainerCreating"):
                return waiting["reason"]
            terminated = entry["state"].get("terminated") or entry["lastState"].get("terminated") or {}
            if terminated.get("reason"):
                return terminated["reason"]
        return None

    poll(lambda: reason("no-such-image") in ("ErrImagePull", "ImagePullBackOff"), "ErrImagePull", timeout=60)
    described = cluster.kubectl("describe", "pod", "no-such-image").stdout
    assert "manifest unknown" in described or "not found" in described.lower()
    poll(lambda: reason("no-such-command") in ("RunContainerError", "StartError", "CrashLoopBackOff"),
         "RunContainerError", timeout=60)
    assert "not-in-the-image" in cluster.kubectl("describe", "pod", "no-such-command").stdout
    poll(lambda: reason("no-such-secret") == "CreateContainerConfigError", "CreateContainerConfigError", timeout=60)
    assert 'secret "absent" not found' in cluster.kubectl("describe", "pod", "no-such-secret").stdout
    poll(lambda: reason("root-image") == "CreateContainerConfigError", "runAsNonRoot refused", timeout=60)
    assert "runAsNonRoot" in cluster.kubectl("describe", "pod", "root-image").stdout
    healthy = poll(phase_is(cluster, "healthy", "Running"), "the good pod Running", timeout=60)
    assert healthy["status"]["containerStatuses"][0]["restartCount"] == 0
    cluster.kubectl("delete", "pod", "no-such-image", "no-such-command", "no-such-secret", "root-image", "healthy",
                    "--grace-period=1")
