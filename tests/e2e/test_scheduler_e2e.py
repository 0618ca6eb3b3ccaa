"""The scheduler as ``pybernetes server`` runs it (a supervised child process), seen through
the real kubectl 1.32: pods of a Deployment are bound to a Node object, a pod that fits
nowhere shows upstream's FailedScheduling event in ``kubectl describe``."""

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

NODE = """
apiVersion: v1
kind: Node
metadata:
  name: worker-1
  labels: {kubernetes.io/hostname: worker-1}
"""


def test_deployment_pods_are_scheduled_and_impossible_pods_explained(cluster: Cluster) -> None:
    cluster.kubectl("apply", "-f", "-", input=NODE)
    cluster.kubectl("patch", "node", "worker-1", "--subresource=status", "--type=merge", "-p",
                    '{"status":{"allocatable":{"cpu":"2","memory":"4Gi","pods":"110"},'
                    '"capacity":{"cpu":"2","memory":"4Gi","pods":"110"}}}')
    cluster.kubectl("create", "deployment", "web", "--image=busybox", "--replicas=3")

    def bound() -> list[str]:
        pods = cluster.get("pods", "-l", "app=web")["items"]
        nodes = [p["spec"].get("nodeName") for p in pods]
        return nodes if len(nodes) == 3 and all(nodes) else []

    assert poll(bound, "3 web pods bound") == ["worker-1"] * 3
    cluster.kubectl("run", "huge", "--image=busybox", "--overrides",
                    '{"spec":{"containers":[{"name":"huge","image":"busybox",'
                    '"resources":{"requests":{"cpu":"64"}}}]}}')
    expected = "0/1 nodes are available: 1 Insufficient cpu."
    poll(lambda: expected in cluster.kubectl("describe", "pod", "huge").stdout, "FailedScheduling in describe")
    described = cluster.kubectl("describe", "pod", "huge").stdout
    assert "FailedScheduling" in described and "default-scheduler" in described
    events = cluster.get("events", "--field-selector", "reason=Scheduled")["items"]
    assert any(e["message"].startswith("Successfully assigned default/web-") for e in events)
