"""The scale and binding subresources of the generic store.

scale (deployments, replicasets, statefulsets, replicationcontrollers): the autoscaling/v1
Scale seen through a workload, and a Scale's ``spec.replicas`` written back into it.
binding (pods): what a Binding does to the pod it targets.  The pure functions come first;
``SubresourceSide`` (a mixin of ResourceStore) runs them through the store's update path.
"""

from __future__ import annotations

from typing import Any

from pybernetes.api.resource import ResourceDef
from pybernetes.apiserver import patching
from pybernetes.apiserver.store_types import WriteOptions
from pybernetes.machinery import selectors
from pybernetes.machinery.errors import (
    FieldError,
    StatusError,
    bad_request,
    conflict,
    invalid,
    invalid_value,
    not_supported,
    required,
)
from pybernetes.machinery.meta import clone, now_rfc3339

Obj = dict[str, Any]

MAX_SUBRESOURCE_PATCH_ATTEMPTS = 5


def scale_of(res: ResourceDef, obj: Obj) -> Obj:
    meta = obj.get("metadata") or {}
    spec = obj.get("spec") or {}
    status = obj.get("status") or {}
    scale_meta: Obj = {"name": meta.get("name", "")}
    for key in ("namespace", "uid", "resourceVersion", "creationTimestamp"):
        if key in meta:
            scale_meta[key] = meta[key]
    selector = spec.get("selector")
    if res.kind == "ReplicationController":
        text = selectors.format_label_selector({"matchLabels": selector or {}}) if selector else ""
    elif isinstance(selector, dict):
        text = selectors.format_label_selector(selector)
    else:
        text = ""
    replicas = spec.get("replicas")
    if replicas is None:
        replicas = 1
    scale_status: Obj = {"replicas": status.get("replicas") or 0}
    if text:
        scale_status["selector"] = text
    return {
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": scale_meta,
        "spec": {"replicas": replicas},
        "status": scale_status,
    }


def check_scale(name: str, url_name: str, namespace: str | None, scale: Any) -> int:
    """Validate a Scale body for the object ``url_name``; returns spec.replicas."""
    if not isinstance(scale, dict):
        raise bad_request("the object provided is unrecognized (must be of type Scale)")
    kind = scale.get("kind")
    if kind not in (None, "", "Scale"):
        raise bad_request(f"the kind in the data ({kind}) does not match the expected kind (Scale)")
    api_version = scale.get("apiVersion")
    if api_version not in (None, "", "autoscaling/v1"):
        raise bad_request(
            f"the API version in the data ({api_version}) does not match the expected API "
            "version (autoscaling/v1)"
        )
    meta = scale.get("metadata") or {}
    if not isinstance(meta, dict):
        raise bad_request("metadata: must be an object")
    if (meta.get("name") or "") != url_name:
        raise bad_request(
            f"the name of the object ({meta.get('name') or ''}) does not match the name on the "
            f"URL ({url_name})"
        )
    body_ns = meta.get("namespace")
    if body_ns and namespace and body_ns != namespace:
        raise bad_request(
            f"the namespace of the object ({body_ns}) does not match the namespace on the "
            f"request ({namespace})"
        )
    spec = scale.get("spec") or {}
    replicas = spec.get("replicas", 0) if isinstance(spec, dict) else None
    errs: list[FieldError] = []
    if isinstance(replicas, bool) or not isinstance(replicas, int):
        errs.append(invalid_value("spec.replicas", replicas, "must be an integer"))
    elif replicas < 0:
        errs.append(invalid_value("spec.replicas", replicas, "must be greater than or equal to 0"))
    if errs:
        err = invalid("Scale", name, errs, "autoscaling")
        err.message = "Scale.autoscaling" + err.message[len("Scale"):]
        raise err
    return int(replicas)


def check_binding(binding: Any, pod_name: str) -> tuple[str, Obj]:
    """(node name, annotations) of a valid Binding for ``pod_name``."""
    if not isinstance(binding, dict):
        raise bad_request("the object provided is unrecognized (must be of type Binding)")
    meta = binding.get("metadata") or {}
    if not isinstance(meta, dict):
        raise bad_request("metadata: must be an object")
    if meta.get("name") and meta["name"] != pod_name:
        raise bad_request(
            f"the name of the object ({meta['name']}) does not match the name on the URL "
            f"({pod_name})"
        )
    target = binding.get("target")
    errs: list[FieldError] = []
    if not isinstance(target, dict):
        errs.append(required("target.name"))
        target = {}
    kind = target.get("kind") or ""
    if kind not in ("", "Node"):
        errs.append(not_supported("target.kind", kind, ["Node", "<empty>"]))
    node = target.get("name")
    if not node or not isinstance(node, str):
        if not any(e.field == "target.name" for e in errs):
            errs.append(required("target.name"))
    if errs:
        raise invalid("Binding", pod_name, errs)
    annotations = meta.get("annotations") or {}
    if not isinstance(annotations, dict):
        annotations = {}
    return node, annotations


def bind_pod(pod: Obj, node: str, annotations: Obj, now: str) -> Obj:
    """The pod bound to ``node`` (mutates and returns ``pod``, a private copy)."""
    meta = pod["metadata"]
    name = meta.get("name", "")
    if meta.get("deletionTimestamp"):
        raise conflict("pods", name, f"pod {name} is being deleted, cannot be assigned to a host")
    spec = pod.setdefault("spec", {})
    if spec.get("nodeName"):
        raise _already_assigned(name, spec["nodeName"])
    spec["nodeName"] = node
    if annotations:
        merged = dict(meta.get("annotations") or {})
        merged.update(annotations)
        meta["annotations"] = merged
    status = pod.get("status")
    if not isinstance(status, dict):
        status = pod["status"] = {}
    conditions = [c for c in status.get("conditions") or () if isinstance(c, dict)]
    for cond in conditions:
        if cond.get("type") == "PodScheduled":
            if cond.get("status") != "True":
                cond["status"] = "True"
                cond["lastTransitionTime"] = now
                cond.pop("reason", None)
                cond.pop("message", None)
            break
    else:
        conditions.append(
            {"type": "PodScheduled", "status": "True", "lastProbeTime": None, "lastTransitionTime": now}
        )
    status["conditions"] = conditions
    return pod


def _already_assigned(name: str, node: str) -> StatusError:
    return conflict("pods/binding", name, f'pod {name} is already assigned to node "{node}"')


BINDING_SUCCESS: Obj = {
    "kind": "Status",
    "apiVersion": "v1",
    "metadata": {},
    "status": "Success",
    "code": 201,
}


class SubresourceSide:
    """Mixin of ResourceStore: scale and binding on top of its ``get`` and ``_update``."""

    res: ResourceDef
    get: Any
    _update: Any
    _conflict: Any

    # -- subresources ---------------------------------------------------------------------

    async def get_scale(self, namespace: str, name: str) -> Obj:
        """autoscaling/v1 Scale of a workload (spec.replicas, status.replicas, selector)."""
        return scale_of(self.res, await self.get(namespace, name))

    async def update_scale(self, namespace: str, name: str, scale: Obj, opts: WriteOptions) -> Obj:
        replicas = check_scale(name, name, namespace, scale)
        wanted_rv = str((scale.get("metadata") or {}).get("resourceVersion") or "")

        def build(old: Obj | None) -> Obj:
            assert old is not None
            if wanted_rv and wanted_rv != old["metadata"]["resourceVersion"]:
                raise self._conflict(name)
            new = clone(old)
            spec = new.get("spec")
            if not isinstance(spec, dict):
                spec = new["spec"] = {}
            spec["replicas"] = replicas
            return new

        obj, _ = await self._update(namespace, name, build, opts, None)
        return scale_of(self.res, obj)

    async def patch_scale(
        self, namespace: str, name: str, patch_type: str, body: bytes, opts: WriteOptions
    ) -> Obj:
        ptype = patching.patch_type_of(patch_type)
        patch = patching.decode_patch(body, ptype)
        for attempt in range(MAX_SUBRESOURCE_PATCH_ATTEMPTS):
            current = await self.get_scale(namespace, name)
            patched = patching.apply_patch("autoscaling", "v1", "Scale", current, ptype, patch)
            try:
                return await self.update_scale(namespace, name, patched, opts)
            except StatusError as err:
                if err.reason != "Conflict" or attempt + 1 == MAX_SUBRESOURCE_PATCH_ATTEMPTS:
                    raise
                if (patched.get("metadata") or {}).get("resourceVersion") != current["metadata"].get(
                    "resourceVersion"
                ):
                    raise  # the patch itself asked for another resourceVersion
        raise AssertionError("unreachable")

    async def bind(self, namespace: str, name: str, binding: Obj, opts: WriteOptions) -> Obj:
        """pods/binding: set spec.nodeName (409 Conflict if already bound) and PodScheduled."""
        node, annotations = check_binding(binding, name)

        def build(old: Obj | None) -> Obj:
            assert old is not None
            return bind_pod(clone(old), node, annotations, now_rfc3339())

        await self._update(namespace, name, build, opts, "binding")
        return dict(BINDING_SUCCESS)
