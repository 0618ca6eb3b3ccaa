"""The real kubectl against ``pybernetes server`` (acceptance of issue 2).

The ``cluster`` fixture (conftest.py, e2e_cluster.py) runs the server as a subprocess on a free
port with a temporary data directory; kubectl runs with an isolated HOME (its discovery and
/version caches live there) and ``--kubeconfig`` set to the admin kubeconfig the server wrote.
kubectl's own validation stays on (the default
``--validate=strict`` asks the server, through /openapi/v3, to check fields).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import orjson
import pytest
from e2e_cluster import Cluster

KUBECTL = shutil.which("kubectl")
pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(KUBECTL is None, reason="kubectl is not installed (Debian package kubectl)"),
]


def manifest(text: str) -> str:
    return textwrap.dedent(text).strip() + "\n"


def configmap_yaml(name: str, **data: str) -> str:
    return orjson.dumps({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name},
                         "data": data}).decode()


def namespace_yaml(name: str) -> str:
    return orjson.dumps({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}).decode()


def deployment_yaml(name: str) -> str:
    return DEPLOYMENT.replace("name: web\n", f"name: {name}\n", 1)


DEPLOYMENT = manifest("""
    apiVersion: apps/v1
    kind: Deployment
    metadata:
      name: web
      labels: {app: web}
    spec:
      replicas: 2
      selector:
        matchLabels: {app: web}
      template:
        metadata:
          labels: {app: web}
        spec:
          containers:
          - name: nginx
            image: nginx:1.25
            ports:
            - containerPort: 80
""")
SERVICE = manifest("""
    apiVersion: v1
    kind: Service
    metadata:
      name: web
    spec:
      selector: {app: web}
      ports:
      - port: 80
        targetPort: 80
""")
POD = manifest("""
    apiVersion: v1
    kind: Pod
    metadata:
      name: box
      labels: {app: box}
    spec:
      containers:
      - name: main
        image: busybox:1.36
        command: ["sleep", "3600"]
""")


def test_create_get_describe(cluster: Cluster):
    for text in (DEPLOYMENT, SERVICE, POD):
        cluster.kubectl("create", "-f", "-", input=text)
    cluster.kubectl("create", "-f", "-", input=configmap_yaml("settings", a="1"))
    cluster.kubectl("create", "-f", "-", input=manifest("""
        apiVersion: v1
        kind: Secret
        metadata: {name: token}
        stringData: {key: s3cr3t}
    """))
    cluster.kubectl("create", "-f", "-", input=namespace_yaml("team-a"))

    pods = cluster.kubectl("get", "pods").stdout
    assert pods.split("\n")[0].split() == ["NAME", "READY", "STATUS", "RESTARTS", "AGE"]
    assert "box" in pods and "0/1" in pods
    wide = cluster.kubectl("get", "pods", "-o", "wide").stdout.split("\n")[0]
    for column in ("IP", "NODE", "NOMINATED", "READINESS"):
        assert column in wide
    deploy_header = cluster.kubectl("get", "deployments").stdout.split("\n")[0].split()
    assert deploy_header == ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"]
    svc = cluster.kubectl("get", "svc", "web").stdout
    assert svc.split("\n")[0].split()[:4] == ["NAME", "TYPE", "CLUSTER-IP", "EXTERNAL-IP"]
    assert "ClusterIP" in svc and "80/TCP" in svc
    assert "team-a" in cluster.kubectl("get", "ns").stdout

    as_yaml = cluster.kubectl("get", "configmap", "settings", "-o", "yaml").stdout
    assert "kind: ConfigMap" in as_yaml and "a: \"1\"" in as_yaml
    secret = cluster.json("get", "secret", "token")
    assert secret["data"]["key"] == "czNjcjN0"
    assert cluster.kubectl("get", "deploy", "-o", "name").stdout.split() == ["deployment.apps/web"]
    image = cluster.kubectl("get", "deploy", "web", "-o",
                            "jsonpath={.spec.template.spec.containers[0].image}").stdout
    assert image == "nginx:1.25"
    assert cluster.kubectl("get", "pods", "-l", "app=box", "-o", "name").stdout.split() == ["pod/box"]
    assert cluster.kubectl("get", "pods", "-l", "app=none", "-o", "name").stdout.strip() == ""
    every = cluster.kubectl("get", "configmaps", "-A").stdout
    assert every.split("\n")[0].split()[:2] == ["NAMESPACE", "NAME"] and "settings" in every

    described = cluster.kubectl("describe", "deployment", "web").stdout
    assert "Name:" in described and "web" in described and "nginx:1.25" in described
    assert "box" in cluster.kubectl("describe", "pod", "box").stdout
    assert "settings" in cluster.kubectl("describe", "configmap", "settings").stdout


def test_generator_commands(cluster: Cluster):
    """kubectl's generators use typed clients, which send protobuf bodies."""
    cluster.kubectl("create", "namespace", "gen")
    cluster.kubectl("-n", "gen", "create", "configmap", "cfg", "--from-literal=a=1")
    cluster.kubectl("-n", "gen", "create", "secret", "generic", "sec", "--from-literal=k=v")
    cluster.kubectl("-n", "gen", "create", "deployment", "dep", "--image=nginx", "--replicas=2")
    cluster.kubectl("-n", "gen", "expose", "deployment", "dep", "--port=80")
    cluster.kubectl("-n", "gen", "run", "solo", "--image=busybox", "--labels=app=solo")
    assert cluster.json("-n", "gen", "get", "cm", "cfg")["data"] == {"a": "1"}
    assert cluster.json("-n", "gen", "get", "secret", "sec")["data"] == {"k": "dg=="}
    assert cluster.json("-n", "gen", "get", "deploy", "dep")["spec"]["replicas"] == 2
    assert cluster.json("-n", "gen", "get", "svc", "dep")["spec"]["ports"][0]["port"] == 80
    assert cluster.json("-n", "gen", "get", "pod", "solo")["metadata"]["labels"] == {"app": "solo"}


def test_api_resources(cluster: Cluster):
    out = cluster.kubectl("api-resources").stdout
    lines = {line.split()[0]: line for line in out.splitlines()[1:] if line.strip()}
    assert "deploy" in lines["deployments"] and "apps/v1" in lines["deployments"]
    assert "po" in lines["pods"] and "true" in lines["pods"]
    assert "false" in lines["namespaces"]


def test_get_watch_streams_new_objects(cluster: Cluster):
    cluster.kubectl("create", "-f", "-", input=configmap_yaml("watch-anchor"))  # so a header prints
    proc = subprocess.Popen(
        [KUBECTL or "kubectl", "--kubeconfig", str(cluster.kubeconfig), "get", "configmaps", "-w",
         "-n", "default"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=cluster.env())
    seen: list[str] = []
    reader = threading.Thread(target=lambda: seen.extend(iter(proc.stdout.readline, "")), daemon=True)
    reader.start()
    try:
        deadline = time.monotonic() + 20
        created = False
        while time.monotonic() < deadline:
            if not created and any("NAME" in line for line in seen):
                cluster.kubectl("create", "-f", "-", input=configmap_yaml("watched-one"))
                cluster.kubectl("create", "-f", "-", input=configmap_yaml("watched-two"))
                created = True
            if any(line.startswith("watched-two") for line in seen):
                break
            time.sleep(0.05)
        names = [line.split()[0] for line in seen if line.startswith("watched-")]
        assert names == ["watched-one", "watched-two"], seen
        assert sum(1 for line in seen if line.startswith("NAME")) == 1, seen
    finally:
        proc.terminate()
        proc.wait(10)
        proc.stdout.close()
        proc.stderr.close()


def test_edit_patch_label_annotate_scale(cluster: Cluster, tmp_path: Path):
    cluster.kubectl("create", "-f", "-", input=configmap_yaml("editable", color="blue"))
    editor = tmp_path / "editor.py"
    editor.write_text("import sys\np = sys.argv[1]\ntext = open(p).read()\n"
                      "open(p, 'w').write(text.replace('color: blue', 'color: green'))\n")
    cluster.kubectl("edit", "configmap", "editable",
                    env=cluster.env(KUBE_EDITOR=f"{sys.executable} {editor}"))
    assert cluster.json("get", "cm", "editable")["data"] == {"color": "green"}

    cluster.kubectl("patch", "cm", "editable", "-p", '{"data":{"size":"L"}}')
    cluster.kubectl("patch", "cm", "editable", "--type", "merge", "-p", '{"data":{"color":null}}')
    cluster.kubectl("patch", "cm", "editable", "--type", "json",
                    "-p", '[{"op":"add","path":"/data/shape","value":"round"}]')
    assert cluster.json("get", "cm", "editable")["data"] == {"size": "L", "shape": "round"}

    cluster.kubectl("label", "cm", "editable", "tier=web")
    cluster.kubectl("annotate", "cm", "editable", "note=hello")
    meta = cluster.json("get", "cm", "editable")["metadata"]
    assert meta["labels"] == {"tier": "web"} and meta["annotations"]["note"] == "hello"
    cluster.kubectl("label", "cm", "editable", "tier-")
    assert not cluster.json("get", "cm", "editable")["metadata"].get("labels")

    cluster.kubectl("create", "-f", "-", input=deployment_yaml("scaled"))
    cluster.kubectl("scale", "deployment", "scaled", "--replicas=4")
    assert cluster.json("get", "deploy", "scaled")["spec"]["replicas"] == 4
    bad = cluster.kubectl("patch", "cm", "editable", "--type", "json", "-p", "[{\"op\":\"nope\"}]", check=False)
    assert bad.returncode != 0


def test_delete_orphan_and_finalizers(cluster: Cluster):
    # Its own labels: a Deployment of another test selecting app=web would adopt the orphan.
    cluster.kubectl("create", "-f", "-", input=deployment_yaml("orphaned").replace("app: web", "app: orphaned"))

    def rs_of() -> list[dict]:
        return [rs for rs in cluster.get("rs")["items"] if rs["metadata"]["name"].startswith("orphaned-")]

    deadline = time.monotonic() + 60
    while not rs_of() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert rs_of(), "the deployment controller made no ReplicaSet"
    # The server marks the Deployment with the "orphan" finalizer; the garbage collector
    # removes the ownerReferences of its ReplicaSet, then the finalizer, and it goes.
    out = cluster.kubectl("delete", "deployment", "orphaned", "--cascade=orphan", "--wait=false").stdout
    assert 'deployment.apps "orphaned" deleted' in out
    while cluster.kubectl("get", "deploy", "orphaned", check=False).returncode == 0:
        assert time.monotonic() < deadline, "the orphaned Deployment was never removed"
        time.sleep(0.1)
    orphans = rs_of()
    assert len(orphans) == 1 and not orphans[0]["metadata"].get("ownerReferences")
    cluster.kubectl("create", "-f", "-", input=deployment_yaml("cascaded"))
    out = cluster.kubectl("delete", "deployment", "cascaded").stdout
    assert 'deployment.apps "cascaded" deleted' in out
    assert cluster.kubectl("get", "deploy", "cascaded", check=False).returncode != 0

    held = manifest("""
        apiVersion: v1
        kind: ConfigMap
        metadata:
          name: held
          finalizers: ["example.com/hold"]
        data: {a: "1"}
    """)
    cluster.kubectl("create", "-f", "-", input=held)
    cluster.kubectl("delete", "configmap", "held", "--wait=false")
    still = cluster.json("get", "cm", "held")
    assert still["metadata"]["deletionTimestamp"]
    cluster.kubectl("patch", "cm", "held", "--type", "json",
                    "-p", '[{"op":"remove","path":"/metadata/finalizers"}]')
    assert cluster.kubectl("get", "cm", "held", check=False).returncode != 0
    cluster.kubectl("create", "-f", "-", input=namespace_yaml("short-lived"))
    cluster.kubectl("delete", "namespace", "short-lived", "--wait=false")


APPLY_CASES = {
    "deployments": (DEPLOYMENT.replace("name: web\n", "name: applied\n", 1), "replicas: 2", "replicas: 3",
                    ("spec", "replicas"), 3),
    "services": (SERVICE.replace("name: web", "name: applied"), "port: 80\n", "port: 8080\n",
                 ("spec", "ports", 0, "port"), 8080),
    "configmaps": (manifest("""
        apiVersion: v1
        kind: ConfigMap
        metadata: {name: applied}
        data: {a: "1"}
    """), 'a: "1"', 'a: "2"', ("data", "a"), "2"),
    "secrets": (manifest("""
        apiVersion: v1
        kind: Secret
        metadata: {name: applied}
        data: {a: MQ==}
    """), "a: MQ==", "a: Mg==", ("data", "a"), "Mg=="),
    "namespaces": (manifest("""
        apiVersion: v1
        kind: Namespace
        metadata:
          name: applied
          labels: {rev: "1"}
    """), 'rev: "1"', 'rev: "2"', ("metadata", "labels", "rev"), "2"),
    "pods": (POD.replace("name: box", "name: applied"), "busybox:1.36", "busybox:1.37",
             ("spec", "containers", 0, "image"), "busybox:1.37"),
}


@pytest.mark.parametrize("resource", list(APPLY_CASES))
def test_client_side_apply_keeps_other_writers_fields(cluster: Cluster, resource: str):
    text, old, new, path, expected = APPLY_CASES[resource]
    assert old in text
    out = cluster.kubectl("apply", "-f", "-", input=text).stdout
    assert "created" in out
    # another writer sets fields the manifest does not own
    cluster.kubectl("annotate", resource, "applied", "other-writer=was-here")
    cluster.kubectl("label", resource, "applied", "owner=someone-else")
    out = cluster.kubectl("apply", "-f", "-", input=text.replace(old, new)).stdout
    assert "configured" in out
    obj = cluster.json("get", resource, "applied")
    value = obj
    for key in path:
        value = value[key]
    assert value == expected
    assert obj["metadata"]["annotations"]["other-writer"] == "was-here"
    assert obj["metadata"]["labels"]["owner"] == "someone-else"
    assert "kubectl.kubernetes.io/last-applied-configuration" in obj["metadata"]["annotations"]
    # applying the same manifest again changes nothing
    out = cluster.kubectl("apply", "-f", "-", input=text.replace(old, new)).stdout
    assert "unchanged" in out


def test_strict_validation_rejects_unknown_fields(cluster: Cluster):
    bad = manifest("""
        apiVersion: v1
        kind: ConfigMap
        metadata: {name: strict}
        data: {a: "1"}
        bogus: true
    """)
    result = cluster.kubectl("create", "-f", "-", input=bad, check=False)
    assert result.returncode != 0
    assert 'unknown field "bogus"' in result.stderr
    assert cluster.kubectl("get", "cm", "strict", check=False).returncode != 0
