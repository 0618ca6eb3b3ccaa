"""The scheduler as ``pybernetes server`` runs it (a supervised child process), seen through
the real kubectl 1.32: pods of a Deployment are bound to a Node object, a pod that fits
nowhere shows upstream's FailedScheduling event in ``kubectl describe``, and a pod with a
WaitForFirstConsumer claim goes where its local volume is while the PV binder binds the claim."""

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


VOLUMES = """
apiVersion: storage.k8s.io/v1
kind: StorageClass
metadata: {name: local-e2e}
provisioner: kubernetes.io/no-provisioner
volumeBindingMode: WaitForFirstConsumer
---
apiVersion: v1
kind: PersistentVolume
metadata: {name: pv-e2e}
spec:
  capacity: {storage: 1Gi}
  accessModes: [ReadWriteOnce]
  storageClassName: local-e2e
  local: {path: /mnt/disks/e2e}
  nodeAffinity:
    required:
      nodeSelectorTerms:
      - matchExpressions:
        - {key: kubernetes.io/hostname, operator: In, values: [worker-2]}
---
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: data, namespace: default}
spec:
  accessModes: [ReadWriteOnce]
  storageClassName: local-e2e
  resources: {requests: {storage: 1Gi}}
---
apiVersion: v1
kind: Pod
metadata: {name: with-volume, namespace: default}
spec:
  containers: [{name: c, image: busybox}]
  volumes: [{name: data, persistentVolumeClaim: {claimName: data}}]
"""


def test_a_waiting_claim_binds_where_its_pod_is_scheduled(cluster: Cluster) -> None:
    """The server's scheduler and its controller manager's PV binder together: the pod goes to
    the node of the only fitting local volume, and the claim binds to that volume."""
    for name in ("worker-1", "worker-2"):
        cluster.kubectl("apply", "-f", "-", input=NODE.replace("worker-1", name))
        cluster.kubectl("patch", "node", name, "--subresource=status", "--type=merge", "-p",
                        '{"status":{"allocatable":{"cpu":"2","memory":"4Gi","pods":"110"},'
                        '"capacity":{"cpu":"2","memory":"4Gi","pods":"110"}}}')
    cluster.kubectl("apply", "-f", "-", input=VOLUMES)
    try:
        node = poll(lambda: cluster.get("pod", "with-volume")["spec"].get("nodeName"), "with-volume bound")
        assert node == "worker-2"
        claim = poll(lambda: (c := cluster.get("pvc", "data"))["status"].get("phase") == "Bound" and c,
                     "the claim Bound")
        assert claim["spec"]["volumeName"] == "pv-e2e"
    finally:
        cluster.kubectl("delete", "-f", "-", "--wait=false", "--ignore-not-found", input=VOLUMES)
        cluster.kubectl("delete", "node", "worker-2", "--wait=false", "--ignore-not-found")
