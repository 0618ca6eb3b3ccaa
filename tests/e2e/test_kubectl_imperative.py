"""kubectl's imperative commands against ``pybernetes server``: protobuf request bodies.

``kubectl create configmap|secret|deployment|...`` use client-go typed clients, which send
``Content-Type: application/vnd.kubernetes.protobuf``; ``kubectl run`` and ``expose`` send JSON.
The ``cluster`` fixture (conftest.py, e2e_cluster.py) runs the server as a subprocess on a free
port with a temporary data directory; kubectl 1.32 (called directly, not through the version
dispatcher) runs with an isolated HOME.
"""

from __future__ import annotations

import base64
import os

import pytest
from e2e_cluster import PROTOBUF, Cluster

from pybernetes.machinery.protobuf import MAGIC
from pybernetes.machinery.protobuf_wire import encode_field

KUBECTL = "/usr/lib/google-cloud-sdk/bin/kubectl.1.32"
pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(not os.access(KUBECTL, os.X_OK),
                       reason=f"{KUBECTL} is missing (Debian package google-cloud-cli-kubectl / kubectl)"),
]


def test_create_configmap_and_secret(cluster: Cluster) -> None:
    cluster.kubectl("create", "configmap", "x", "--from-literal=a=b")
    assert cluster.get("configmap", "x")["data"] == {"a": "b"}
    cluster.kubectl("create", "secret", "generic", "s", "--from-literal=p=q")
    secret = cluster.get("secret", "s")
    assert secret["data"] == {"p": base64.b64encode(b"q").decode()}
    assert secret["type"] == "Opaque"


def test_create_workloads(cluster: Cluster) -> None:
    cluster.kubectl("create", "deployment", "d", "--image=nginx", "--replicas=2")
    deployment = cluster.get("deployment", "d")
    assert deployment["spec"]["replicas"] == 2
    assert deployment["spec"]["selector"] == {"matchLabels": {"app": "d"}}
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == "nginx" and container["name"] == "nginx"
    assert container["terminationMessagePath"] == "/dev/termination-log"  # defaulted: "" was not sent

    cluster.kubectl("create", "job", "j", "--image=busybox")
    job = cluster.get("job", "j")
    assert job["spec"]["template"]["spec"]["containers"][0]["image"] == "busybox"
    assert job["spec"]["template"]["spec"]["restartPolicy"] == "Never"

    cluster.kubectl("create", "cronjob", "c", "--image=busybox", "--schedule=*/5 * * * *")
    cronjob = cluster.get("cronjob", "c")
    assert cronjob["spec"]["schedule"] == "*/5 * * * *"
    assert cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"]["restartPolicy"] == "OnFailure"

    cluster.kubectl("run", "p", "--image=busybox")
    assert cluster.get("pod", "p")["spec"]["containers"][0]["image"] == "busybox"


def test_create_services(cluster: Cluster) -> None:
    cluster.kubectl("create", "service", "clusterip", "svc", "--tcp=80:8080")
    service = cluster.get("service", "svc")
    assert service["spec"]["ports"][0]["port"] == 80
    assert service["spec"]["ports"][0]["targetPort"] == 8080
    assert service["spec"]["type"] == "ClusterIP"

    cluster.kubectl("create", "deployment", "web", "--image=nginx")
    cluster.kubectl("expose", "deployment", "web", "--port=80")
    exposed = cluster.get("service", "web")
    assert exposed["spec"]["selector"] == {"app": "web"}
    assert exposed["spec"]["ports"][0]["port"] == 80

    cluster.kubectl("create", "ingress", "i", "--rule=foo.com/bar=svc:80")
    rule = cluster.get("ingress", "i")["spec"]["rules"][0]
    assert rule["host"] == "foo.com"
    path = rule["http"]["paths"][0]
    assert path["path"] == "/bar" and path["pathType"] == "Exact"
    assert path["backend"]["service"] == {"name": "svc", "port": {"number": 80}}


def test_create_cluster_objects(cluster: Cluster) -> None:
    cluster.kubectl("create", "namespace", "n")
    assert cluster.get("namespace", "n")["status"]["phase"] == "Active"
    cluster.kubectl("create", "priorityclass", "pc", "--value=100")
    priority_class = cluster.get("priorityclass", "pc")
    assert priority_class["value"] == 100
    assert priority_class["preemptionPolicy"] == "PreemptLowerPriority"


def test_create_rbac_and_policy(cluster: Cluster) -> None:
    cluster.kubectl("create", "serviceaccount", "sa")
    assert cluster.get("serviceaccount", "sa")["metadata"]["name"] == "sa"

    cluster.kubectl("create", "role", "r", "--verb=get", "--resource=pods")
    assert cluster.get("role", "r")["rules"] == [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]}]
    cluster.kubectl("create", "rolebinding", "rb", "--role=r", "--user=u")
    binding = cluster.get("rolebinding", "rb")
    assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "r"}
    assert binding["subjects"] == [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "u"}]
    cluster.kubectl("create", "clusterrole", "cr", "--verb=list", "--resource=nodes")
    assert cluster.get("clusterrole", "cr")["rules"][0]["verbs"] == ["list"]
    cluster.kubectl("create", "clusterrolebinding", "crb", "--clusterrole=cr", "--user=u")
    assert cluster.get("clusterrolebinding", "crb")["roleRef"]["name"] == "cr"

    cluster.kubectl("create", "quota", "q", "--hard=pods=3")
    assert cluster.get("resourcequota", "q")["spec"]["hard"] == {"pods": "3"}
    cluster.kubectl("create", "pdb", "p", "--selector=a=b", "--min-available=1")
    pdb = cluster.get("pdb", "p")
    assert pdb["spec"]["minAvailable"] == 1
    assert pdb["spec"]["selector"] == {"matchLabels": {"a": "b"}}


def test_protobuf_delete_options_and_malformed_bodies(cluster: Cluster) -> None:
    cluster.kubectl("create", "configmap", "gone", "--from-literal=k=v")
    options = encode_field(4, "Background") + encode_field(5, "All")  # propagationPolicy, dryRun
    body = MAGIC + encode_field(1, encode_field(1, "v1") + encode_field(2, "DeleteOptions")) + \
        encode_field(2, options)
    status, _ = cluster.request("DELETE", "/api/v1/namespaces/default/configmaps/gone", body, PROTOBUF)
    assert status == 200
    assert cluster.get("configmap", "gone")["metadata"]["name"] == "gone"  # dryRun: still there
    body = MAGIC + encode_field(1, encode_field(1, "v1") + encode_field(2, "DeleteOptions"))
    status, _ = cluster.request("DELETE", "/api/v1/namespaces/default/configmaps/gone", body, PROTOBUF)
    assert status == 200
    status, reply = cluster.request("GET", "/api/v1/namespaces/default/configmaps/gone", b"", "")
    assert status == 404

    status, reply = cluster.request("POST", "/api/v1/namespaces/default/configmaps",
                                   MAGIC + b"\x12\x05ab", PROTOBUF)
    assert status == 400 and reply["kind"] == "Status"
    assert "invalid protobuf body" in reply["message"]
