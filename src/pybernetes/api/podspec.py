"""PodSpec and PodTemplateSpec policy shared by every kind that embeds pods.

The one import other groups need (apps, batch ...): defaulting, validation, the pod-spec
update rule of pods, and the helpers table printers use (container names and images).
"""

from __future__ import annotations

from typing import Any

from pybernetes.api.pod_defaults import (
    default_container,
    default_pod_spec,
    default_pod_template,
    default_pvc_spec,
    image_pull_policy_for,
)
from pybernetes.api.pod_validation import validate_pod_spec, validate_pod_template, validate_tolerations

__all__ = [
    "container_images",
    "container_names",
    "containers_and_images",
    "default_container",
    "default_pod_spec",
    "default_pod_template",
    "default_pvc_spec",
    "image_pull_policy_for",
    "template_spec",
    "validate_pod_spec",
    "validate_pod_template",
    "validate_template_restart_policy",
    "validate_tolerations",
]

Obj = dict[str, Any]


def _containers(spec: Any) -> list[Obj]:
    if not isinstance(spec, dict) or not isinstance(spec.get("containers"), list):
        return []
    return [c for c in spec["containers"] if isinstance(c, dict)]


def container_names(spec: Any) -> list[str]:
    return [str(c.get("name", "")) for c in _containers(spec)]


def container_images(spec: Any) -> list[str]:
    return [str(c.get("image", "")) for c in _containers(spec)]


def containers_and_images(spec: Any) -> tuple[str, str]:
    """The CONTAINERS and IMAGES cells of workload tables (upstream's layoutContainerCells)."""
    return ",".join(container_names(spec)), ",".join(container_images(spec))


def template_spec(obj: Obj) -> Any:
    """``spec.template.spec`` of a workload object, or None."""
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        return None
    template = spec.get("template")
    if not isinstance(template, dict):
        return None
    return template.get("spec")


def validate_template_restart_policy(
    template: Any, path: str = "spec.template", allowed: tuple[str, ...] = ("Always",)
) -> list:
    """Workloads restrict the template's restartPolicy (RCs, ReplicaSets, Deployments:
    Always; Jobs: OnFailure or Never)."""
    from pybernetes.machinery.errors import not_supported

    if not isinstance(template, dict) or not isinstance(template.get("spec"), dict):
        return []
    policy = template["spec"].get("restartPolicy")
    if policy in allowed or policy is None:
        return []
    return [not_supported(f"{path}.spec.restartPolicy", policy, allowed)]
