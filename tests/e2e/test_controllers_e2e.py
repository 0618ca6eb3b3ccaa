"""The controller manager as ``pybernetes server`` runs it (a supervised child process), seen
through the real kubectl 1.32: a Deployment gets its ReplicaSet and pods, a cascading delete
removes them, a new namespace gets its default ServiceAccount, and a deleted namespace is
emptied and goes away.  There are no Node objects here, so the pods stay Pending."""

from __future__ import annotations

import os

import pytest
from e2e_cluster import Cluster, poll

KUBECTL = "/usr/lib/google-cloud-sdk/bin/kubectl.1.32"
pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(not os.access(KUBECTL, os.X_OK),
                       reason=f"{KUBECTL} is missing (Debian package google-cloud-cli-kubectl / kubectl)"),
]


def test_deployment_gets_replicaset_and_pods_then_cascade_deletes(cluster: Cluster) -> None:
    cluster.kubectl("create", "deployment", "web", "--image=busybox", "--replicas=3")

    def pods() -> list[dict]:
        return cluster.get("pods", "-l", "app=web")["items"]

    created = poll(lambda: len(pods()) == 3 and pods(), "3 pods of deployment web")
    rs_name = created[0]["metadata"]["ownerReferences"][0]["name"]
    assert rs_name.startswith("web-")
    rs = cluster.get("rs", rs_name)
    assert rs["metadata"]["ownerReferences"][0]["kind"] == "Deployment"
    assert rs["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "1"
    assert "pod-template-hash" in rs["spec"]["selector"]["matchLabels"]
    cluster.kubectl("delete", "deployment", "web")
    poll(lambda: not pods() and not cluster.get("rs", "-l", "app=web")["items"],
         "the ReplicaSet and pods of web removed by the garbage collector")


def test_namespace_gets_default_serviceaccount_and_is_emptied_on_delete(cluster: Cluster) -> None:
    cluster.kubectl("create", "namespace", "team")
    poll(lambda: cluster.kubectl("get", "serviceaccount", "default", "-n", "team", check=False).returncode == 0,
         "the default ServiceAccount in team")
    cluster.kubectl("create", "configmap", "c", "-n", "team", "--from-literal=a=b")
    cluster.kubectl("delete", "namespace", "team", "--wait=false")
    poll(lambda: cluster.kubectl("get", "namespace", "team", check=False).returncode != 0,
         "namespace team gone")
