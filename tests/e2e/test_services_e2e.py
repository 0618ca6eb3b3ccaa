"""Issue 6's acceptance, as root with real pods (runc, CNI), the node's service proxy in
nftables, the cluster DNS, the built-in LoadBalancer and NetworkPolicy, driven by the real
kubectl against ``pybernetes up``.

Pods reach Services by name through the cluster DNS (a client pod runs its requests and prints
what it got; the test reads its log); the node itself reaches ClusterIPs, NodePorts and
LoadBalancer addresses through the proxy's output hook.

Scenarios: a 3-replica httpd Deployment behind a ClusterIP Service reached by ``web``,
``web.<ns>`` and ``web.<ns>.svc.cluster.local`` with every endpoint answering over 60 requests;
scaled to 0 the Service refuses connections at once; a pod failing readiness leaves rotation
within two probe periods; NodePort from the host; a LoadBalancer Service gets an ingress IP that
answers; ClientIP session affinity sticks; a headless Service resolves to its pods and a
StatefulSet's pods by their hostnames; a default-deny NetworkPolicy blocks a pod from another
namespace while an allow rule lets a labelled one through; bad input harms no other Service.
"""

from __future__ import annotations

import collections
import socket
import time
import urllib.request
from collections.abc import Iterator

import pytest
from e2e_cluster import Cluster, poll
from e2e_node import apply, is_ready, missing, node_cluster, phase_is

pytestmark = pytest.mark.e2e
NODE = "e2e-svc-node"
POD_CIDR = "10.78.0.0/24"
BRIDGE = "pybe2e1"
NS = "svc-e2e"


@pytest.fixture(scope="module")
def node() -> Iterator[tuple[Cluster, str]]:
    why = missing()
    if why:
        pytest.skip(why)
    with node_cluster(NODE, POD_CIDR, BRIDGE) as (cluster, image):
        cluster.kubectl("create", "namespace", NS)
        yield cluster, image


def http_get(host: str, port: int, timeout: float = 3) -> str | None:
    try:
        with urllib.request.urlopen(f"http://{host}:{port}/", timeout=timeout) as response:
            return response.read().decode().strip()
    except OSError:
        return None


def run_client(cluster: Cluster, image: str, name: str, script: str, *, namespace: str = NS,
               labels: str = "{}", timeout: float = 120) -> str:
    """Run ``script`` in a fresh busybox pod and return its log once it has finished."""
    apply(cluster, f"""
apiVersion: v1
kind: Pod
metadata: {{name: {name}, namespace: {namespace}, labels: {labels}}}
spec:
  restartPolicy: Never
  terminationGracePeriodSeconds: 1
  containers:
  - name: client
    image: {image}
    command: [sh, -c, {script!r}]
""")
    poll(phase_is(cluster, name, "Succeeded", "Failed", namespace=namespace), f"the client {name} finished",
         timeout=timeout)
    log = cluster.kubectl("logs", name, "-n", namespace).stdout
    cluster.kubectl("delete", "pod", name, "-n", namespace, "--wait=false")
    return log


def web_deployment(image: str, name: str, replicas: int, *, readiness: str = "", labels: str = "") -> str:
    return f"""
apiVersion: apps/v1
kind: Deployment
metadata: {{name: {name}, namespace: {NS}}}
spec:
  replicas: {replicas}
  selector: {{matchLabels: {{app: {name}}}}}
  template:
    metadata: {{labels: {{app: {name}{labels}}}}}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - name: httpd
        image: {image}
        command: [sh, -c, "mkdir -p /www && hostname > /www/index.html && touch /www/ready && exec httpd -f -p 80 -h /www"]
        readinessProbe: {readiness or '{httpGet: {path: /, port: 80}, periodSeconds: 1}'}
"""


def service(name: str, *, type_: str = "ClusterIP", port: int = 80, extra: str = "", selector: str = "") -> str:
    return f"""
apiVersion: v1
kind: Service
metadata: {{name: {name}, namespace: {NS}}}
spec:
  type: {type_}
  selector: {{app: {selector or name}}}
  ports: [{{name: http, port: {port}, targetPort: 80, protocol: TCP}}]
{extra}
"""


def ready_pods(cluster: Cluster, app: str, count: int) -> list[dict]:
    def check():
        pods = [p for p in cluster.get("pods", "-n", NS, "-l", f"app={app}")["items"]
                if not p["metadata"].get("deletionTimestamp")]
        return pods if len(pods) == count and all(is_ready(p) for p in pods) else None
    return poll(check, f"{count} ready {app} pods", timeout=120)


def refused_in(ip: str, port: int) -> float | None:
    """How long a connection to ``ip:port`` took to be refused (None: it was not refused)."""
    started = time.monotonic()
    try:
        socket.create_connection((ip, port), timeout=5).close()
    except ConnectionRefusedError:
        return time.monotonic() - started
    except OSError:
        return None
    return None


def cluster_ip(cluster: Cluster, name: str) -> str:
    return cluster.get("service", name, "-n", NS)["spec"]["clusterIP"]


def test_a_client_pod_reaches_a_service_by_name_and_every_endpoint_answers(node) -> None:
    cluster, image = node
    apply(cluster, web_deployment(image, "web", 3) + "---" + service("web"))
    names = {p["metadata"]["name"] for p in ready_pods(cluster, "web", 3)}
    ip = cluster_ip(cluster, "web")
    seen: set[str | None] = set()

    def all_in_rotation() -> bool:  # ready pods reach the proxy's rules through their slice
        seen.update(http_get(ip, 80) for _ in range(10))
        return names <= seen

    poll(all_in_rotation, "every endpoint answering the node through the ClusterIP")
    script = (f"for n in web web.{NS} web.{NS}.svc.cluster.local; do "
              "echo name=$n $(wget -qO- http://$n/ || echo FAILED); done; "
              "for i in $(seq 60); do echo hit=$(wget -qO- http://web/ || echo FAILED); done")
    log = run_client(cluster, image, "by-name", script)
    by_name = [line for line in log.splitlines() if line.startswith("name=")]
    assert len(by_name) == 3 and all(line.split()[1] in names for line in by_name), log
    hits = collections.Counter(line.split("=", 1)[1] for line in log.splitlines() if line.startswith("hit="))
    assert sum(hits.values()) == 60 and set(hits) == names, hits


def test_scaled_to_zero_the_service_refuses_at_once(node) -> None:
    cluster, image = node
    apply(cluster, web_deployment(image, "gone", 1) + "---" + service("gone"))
    ready_pods(cluster, "gone", 1)
    ip = cluster_ip(cluster, "gone")
    poll(lambda: http_get(ip, 80), "the ClusterIP answering")
    cluster.kubectl("scale", "deployment", "gone", "-n", NS, "--replicas=0")
    poll(lambda: not cluster.get("pods", "-n", NS, "-l", "app=gone")["items"], "the pods gone")

    elapsed = poll(lambda: refused_in(ip, 80), "connections refused", timeout=30)
    assert elapsed < 1.0, f"refusal took {elapsed:.2f}s"


def test_a_pod_failing_readiness_leaves_rotation_within_two_probe_periods(node, tmp_path) -> None:
    cluster, image = node
    control = tmp_path / "control"
    control.mkdir()
    period = 2
    apply(cluster, f"""
apiVersion: v1
kind: Pod
metadata: {{name: flaky, namespace: {NS}, labels: {{app: rot}}}}
spec:
  terminationGracePeriodSeconds: 1
  volumes: [{{name: ctl, hostPath: {{path: {control}, type: Directory}}}}]
  containers:
  - name: httpd
    image: {image}
    command: [sh, -c, "mkdir -p /www && hostname > /www/index.html && touch /www/ready && httpd -p 80 -h /www && while true; do [ -f /ctl/unready ] && rm -f /www/ready; sleep 0.2; done"]
    volumeMounts: [{{name: ctl, mountPath: /ctl}}]
    readinessProbe: {{httpGet: {{path: /ready, port: 80}}, periodSeconds: {period}, failureThreshold: 1}}
""" + "---" + web_deployment(image, "steady", 1, labels=", pool: rot") + "---" + service("rot", selector="rot"))
    poll(lambda: is_ready(cluster.get("pod", "flaky", "-n", NS)), "flaky ready")
    ip = cluster_ip(cluster, "rot")
    poll(lambda: "flaky" in {http_get(ip, 80) for _ in range(10)}, "flaky in rotation")
    (control / "unready").touch()
    failed_at = time.monotonic()

    def out_of_rotation() -> bool:
        return "flaky" not in {http_get(ip, 80, timeout=2) for _ in range(12)}

    poll(out_of_rotation, "flaky out of rotation", timeout=6 * period)
    took = time.monotonic() - failed_at
    assert took <= 2 * period + 1.0, f"left rotation after {took:.1f}s (probe period {period}s)"
    cluster.kubectl("delete", "pod", "flaky", "-n", NS, "--wait=false")


def test_node_port_load_balancer_and_session_affinity_from_the_host(node) -> None:
    cluster, image = node
    apply(cluster, web_deployment(image, "edge", 3)
          + "---" + service("edge-np", type_="NodePort", selector="edge")
          + "---" + service("edge-lb", type_="LoadBalancer", port=8089, selector="edge")
          + "---" + service("edge-sticky", selector="edge", extra="  sessionAffinity: ClientIP"))
    names = {p["metadata"]["name"] for p in ready_pods(cluster, "edge", 3)}
    node_port = cluster.get("service", "edge-np", "-n", NS)["spec"]["ports"][0]["nodePort"]
    seen = set()

    def spread_over_node_port() -> bool:
        seen.update(http_get("127.0.0.1", node_port) for _ in range(10))
        return names <= seen

    poll(spread_over_node_port, "the NodePort answering from every endpoint")

    def ingress() -> str | None:
        found = (cluster.get("service", "edge-lb", "-n", NS).get("status") or {}).get("loadBalancer", {})
        return (found.get("ingress") or [{}])[0].get("ip")

    lb_ip = poll(ingress, "a LoadBalancer ingress IP")
    assert poll(lambda: http_get(lb_ip, 8089), "the LoadBalancer address answering") in names
    sticky = cluster_ip(cluster, "edge-sticky")
    poll(lambda: http_get(sticky, 80), "the sticky ClusterIP answering")
    answers = {http_get(sticky, 80) for _ in range(20)}
    assert len(answers) == 1 and answers <= names, answers


def test_headless_service_and_statefulset_hostnames_resolve(node) -> None:
    cluster, image = node
    apply(cluster, f"""
apiVersion: v1
kind: Service
metadata: {{name: db, namespace: {NS}}}
spec:
  clusterIP: None
  selector: {{app: db}}
  ports: [{{name: http, port: 80}}]
---
apiVersion: apps/v1
kind: StatefulSet
metadata: {{name: db, namespace: {NS}}}
spec:
  serviceName: db
  replicas: 2
  selector: {{matchLabels: {{app: db}}}}
  template:
    metadata: {{labels: {{app: db}}}}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - name: httpd
        image: {image}
        command: [sh, -c, "mkdir -p /www && hostname > /www/index.html && exec httpd -f -p 80 -h /www"]
        readinessProbe: {{httpGet: {{path: /, port: 80}}, periodSeconds: 1}}
""")
    pods = {p["metadata"]["name"]: p["status"]["podIP"] for p in ready_pods(cluster, "db", 2)}
    assert set(pods) == {"db-0", "db-1"}
    # busybox nslookup applies the search path only to names without a dot: the full name here
    script = (f"nslookup db; echo ---; nslookup db-0.db.{NS}.svc.cluster.local; echo ---; "
              "echo hostname=$(wget -qO- http://db-1.db/ || echo FAILED)")
    log = poll(lambda: (lambda out: out if "hostname=db-1" in out else None)(
        run_client(cluster, image, f"resolver-{int(time.monotonic() * 1000) % 100000}", script)),
        "the headless names resolving", timeout=180)
    headless, one, _ = log.split("---", 2)
    assert set(pods.values()) <= set(_addresses(headless)), log
    assert _addresses(one) == [pods["db-0"]], log


def _addresses(nslookup_output: str) -> list[str]:
    """The answer addresses of busybox nslookup's output (not the server's)."""
    answers = nslookup_output.split("Name:", 1)[1] if "Name:" in nslookup_output else ""
    return [line.split()[-1] for line in answers.splitlines() if line.strip().startswith("Address")]


def test_a_network_policy_denies_by_default_and_admits_the_labelled(node) -> None:
    cluster, image = node
    cluster.kubectl("create", "namespace", "np-clients")
    apply(cluster, web_deployment(image, "guarded", 1) + f"""
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {{name: deny-all, namespace: {NS}}}
spec:
  podSelector: {{matchLabels: {{app: guarded}}}}
  policyTypes: [Ingress]
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {{name: admit-granted, namespace: {NS}}}
spec:
  podSelector: {{matchLabels: {{app: guarded}}}}
  ingress:
  - from:
    - namespaceSelector: {{}}
      podSelector: {{matchLabels: {{access: granted}}}}
    ports: [{{port: 80}}]
""")
    (guarded,) = ready_pods(cluster, "guarded", 1)
    ip = guarded["status"]["podIP"]
    script = (f"wget -qO- http://{ip}/ > /tmp/out 2>&1 & pid=$!; "
              "for i in 1 2 3 4 5 6; do sleep 0.5; kill -0 $pid 2>/dev/null || break; done; "
              "kill $pid 2>/dev/null; echo result=$(cat /tmp/out)")
    admitted = run_client(cluster, image, "granted", script, namespace="np-clients", labels="{access: granted}")
    assert f"result={guarded['metadata']['name']}" in admitted, admitted
    blocked = run_client(cluster, image, "stranger", script, namespace="np-clients")
    assert "result=" in blocked and guarded["metadata"]["name"] not in blocked, blocked
    cluster.kubectl("delete", "networkpolicy", "deny-all", "admit-granted", "-n", NS)
    reopened = run_client(cluster, image, "stranger-again", script, namespace="np-clients")
    assert f"result={guarded['metadata']['name']}" in reopened, reopened


def test_bad_input_harms_no_other_service(node) -> None:
    cluster, image = node
    apply(cluster, web_deployment(image, "solid", 1) + "---" + service("solid"))
    ready_pods(cluster, "solid", 1)
    solid = cluster_ip(cluster, "solid")
    poll(lambda: http_get(solid, 80), "solid answering")
    # a selector matching nothing; two Services claiming one external IP and port
    apply(cluster, service("empty", selector="nothing-has-this-label")
          + "---" + service("claim-a", selector="solid", port=81, extra="  externalIPs: [10.99.0.1]")
          + "---" + service("claim-b", selector="solid", port=81, extra="  externalIPs: [10.99.0.1]"))
    empty = cluster_ip(cluster, "empty")

    poll(lambda: refused_in(empty, 80), "the Service without endpoints refusing")
    assert http_get(solid, 80)
    bad = cluster.kubectl("apply", "-f", "-", check=False, input=f"""
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {{name: bad-cidr, namespace: {NS}}}
spec:
  podSelector: {{}}
  ingress: [{{from: [{{ipBlock: {{cidr: 10.0.0.0/33}}}}]}}]
""")
    assert bad.returncode != 0 and "Invalid value" in bad.stderr, bad.stderr
    assert "bad-cidr" not in cluster.kubectl("get", "networkpolicies", "-n", NS).stdout
    assert http_get(solid, 80)
