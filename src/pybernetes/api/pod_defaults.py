"""Upstream's defaulting of PodSpec and everything inside it (core/v1 defaults).

Used by pods, pod templates, replication controllers and the workload kinds of other groups
(through ``pybernetes.api.podspec``).  Everything works in place on wire-shaped dicts.
"""

from __future__ import annotations

from typing import Any

Obj = dict[str, Any]

DEFAULT_MODE = 420  # 0644
PROJECTED_TOKEN_EXPIRATION = 3600


def _dicts(value: Any) -> list[Obj]:
    """The dict items of a list field (non-dicts are left for validation to report)."""
    if not isinstance(value, list):
        return []
    return [item for item in value if isinstance(item, dict)]


def image_pull_policy_for(image: str) -> str:
    """``Always`` for ``:latest`` or untagged images (without digest), else ``IfNotPresent``."""
    if "@" in image:
        return "IfNotPresent"
    last = image.rsplit("/", 1)[-1]
    if ":" in last:
        tag = last.rsplit(":", 1)[1]
        return "Always" if tag == "latest" else "IfNotPresent"
    return "Always"


def default_http_get(action: Obj) -> None:
    action.setdefault("path", "/")
    action.setdefault("scheme", "HTTP")


def default_probe(probe: Obj) -> None:
    probe.setdefault("timeoutSeconds", 1)
    probe.setdefault("periodSeconds", 10)
    probe.setdefault("successThreshold", 1)
    probe.setdefault("failureThreshold", 3)
    if isinstance(probe.get("httpGet"), dict):
        default_http_get(probe["httpGet"])
    grpc = probe.get("grpc")
    if isinstance(grpc, dict):
        grpc.setdefault("service", "")


def _default_lifecycle(lifecycle: Any) -> None:
    if not isinstance(lifecycle, dict):
        return
    for hook in ("postStart", "preStop"):
        handler = lifecycle.get(hook)
        if isinstance(handler, dict) and isinstance(handler.get("httpGet"), dict):
            default_http_get(handler["httpGet"])


def _default_env(container: Obj) -> None:
    for env in _dicts(container.get("env")):
        source = env.get("valueFrom")
        if not isinstance(source, dict):
            continue
        field_ref = source.get("fieldRef")
        if isinstance(field_ref, dict):
            field_ref.setdefault("apiVersion", "v1")
        resource_ref = source.get("resourceFieldRef")
        if isinstance(resource_ref, dict):
            resource_ref.setdefault("divisor", "0")


def _requests_from_limits(container: Obj) -> None:
    resources = container.get("resources")
    if not isinstance(resources, dict):
        return
    limits = resources.get("limits")
    if not isinstance(limits, dict) or not limits:
        return
    requests = resources.get("requests")
    if requests is None:
        requests = resources["requests"] = {}
    if isinstance(requests, dict):
        for name, value in limits.items():
            requests.setdefault(name, value)


def default_container(container: Obj, host_network: bool = False) -> None:
    """Defaults of one container (regular, init or ephemeral)."""
    image = container.get("image")
    if not container.get("imagePullPolicy"):
        container["imagePullPolicy"] = image_pull_policy_for(image) if isinstance(image, str) and image \
            else "IfNotPresent"
    container.setdefault("terminationMessagePath", "/dev/termination-log")
    container.setdefault("terminationMessagePolicy", "File")
    if not isinstance(container.get("resources"), dict):
        container["resources"] = {}
    for port in _dicts(container.get("ports")):
        port.setdefault("protocol", "TCP")
        if host_network and not port.get("hostPort") and "containerPort" in port:
            port["hostPort"] = port["containerPort"]
    for probe_name in ("livenessProbe", "readinessProbe", "startupProbe"):
        probe = container.get(probe_name)
        if isinstance(probe, dict):
            default_probe(probe)
    _default_lifecycle(container.get("lifecycle"))
    _default_env(container)
    _requests_from_limits(container)


_VOLUME_SOURCES = (
    "hostPath", "emptyDir", "gcePersistentDisk", "awsElasticBlockStore", "gitRepo", "secret",
    "nfs", "iscsi", "glusterfs", "persistentVolumeClaim", "rbd", "flexVolume", "cinder",
    "cephfs", "flocker", "downwardAPI", "fc", "azureFile", "configMap", "vsphereVolume",
    "quobyte", "azureDisk", "photonPersistentDisk", "projected", "portworxVolume", "scaleIO",
    "storageos", "csi", "ephemeral", "image",
)


def volume_sources() -> tuple[str, ...]:
    return _VOLUME_SOURCES


def _default_projection(projected: Obj) -> None:
    projected.setdefault("defaultMode", DEFAULT_MODE)
    for source in _dicts(projected.get("sources")):
        token = source.get("serviceAccountToken")
        if isinstance(token, dict):
            token.setdefault("expirationSeconds", PROJECTED_TOKEN_EXPIRATION)
        downward = source.get("downwardAPI")
        if isinstance(downward, dict):
            _default_downward_items(downward)


def _default_downward_items(downward: Obj) -> None:
    for item in _dicts(downward.get("items")):
        if isinstance(item.get("fieldRef"), dict):
            item["fieldRef"].setdefault("apiVersion", "v1")
        if isinstance(item.get("resourceFieldRef"), dict):
            item["resourceFieldRef"].setdefault("divisor", "0")


def default_volume(volume: Obj) -> None:
    if not any(source in volume for source in _VOLUME_SOURCES):
        volume["emptyDir"] = {}
    for name in ("secret", "configMap"):
        source = volume.get(name)
        if isinstance(source, dict):
            source.setdefault("defaultMode", DEFAULT_MODE)
    downward = volume.get("downwardAPI")
    if isinstance(downward, dict):
        downward.setdefault("defaultMode", DEFAULT_MODE)
        _default_downward_items(downward)
    projected = volume.get("projected")
    if isinstance(projected, dict):
        _default_projection(projected)
    host_path = volume.get("hostPath")
    if isinstance(host_path, dict):
        host_path.setdefault("type", "")
    iscsi = volume.get("iscsi")
    if isinstance(iscsi, dict):
        iscsi.setdefault("iscsiInterface", "default")
    rbd = volume.get("rbd")
    if isinstance(rbd, dict):
        rbd.setdefault("pool", "rbd")
        rbd.setdefault("user", "admin")
        rbd.setdefault("keyring", "/etc/ceph/keyring")
    azure_disk = volume.get("azureDisk")
    if isinstance(azure_disk, dict):
        azure_disk.setdefault("cachingMode", "ReadWrite")
        azure_disk.setdefault("fsType", "ext4")
        azure_disk.setdefault("readOnly", False)
        azure_disk.setdefault("kind", "Shared")
    ephemeral = volume.get("ephemeral")
    if isinstance(ephemeral, dict):
        template = ephemeral.get("volumeClaimTemplate")
        if isinstance(template, dict) and isinstance(template.get("spec"), dict):
            default_pvc_spec(template["spec"])


def default_pvc_spec(spec: Obj) -> None:
    spec.setdefault("volumeMode", "Filesystem")
    if not isinstance(spec.get("resources"), dict):
        spec["resources"] = {}


def default_pod_spec(spec: Obj) -> None:
    """Upstream's SetDefaults_PodSpec and the pod-level parts of SetDefaults_Pod."""
    if not spec.get("dnsPolicy"):
        spec["dnsPolicy"] = "ClusterFirst"
    if not spec.get("restartPolicy"):
        spec["restartPolicy"] = "Always"
    if not isinstance(spec.get("securityContext"), dict):
        spec["securityContext"] = {}
    if spec.get("terminationGracePeriodSeconds") is None:
        spec["terminationGracePeriodSeconds"] = 30
    if not spec.get("schedulerName"):
        spec["schedulerName"] = "default-scheduler"
    if spec.get("enableServiceLinks") is None:
        spec["enableServiceLinks"] = True
    # v1 keeps the deprecated serviceAccount field in step with serviceAccountName.
    if not spec.get("serviceAccountName") and spec.get("serviceAccount"):
        spec["serviceAccountName"] = spec["serviceAccount"]
    if spec.get("serviceAccountName"):
        spec["serviceAccount"] = spec["serviceAccountName"]
    host_network = spec.get("hostNetwork") is True
    for key in ("initContainers", "containers"):
        for container in _dicts(spec.get(key)):
            default_container(container, host_network)
    for container in _dicts(spec.get("ephemeralContainers")):
        default_container(container, host_network)
    for volume in _dicts(spec.get("volumes")):
        default_volume(volume)


def default_pod_template(template: Obj) -> None:
    """Defaults of a PodTemplateSpec (metadata is left alone; spec defaulted)."""
    if not isinstance(template.get("spec"), dict):
        return
    default_pod_spec(template["spec"])
