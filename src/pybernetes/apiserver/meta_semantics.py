"""ObjectMeta semantics of the generic store: the pure part of create and update.

What the server owns in ``metadata`` (uid, creationTimestamp, resourceVersion, generation,
deletionTimestamp, deletionGracePeriodSeconds, managedFields), which of it a client may send,
what an update keeps from the stored object, when ``generation`` moves, keys and names from
URLs, and the generic checks every resource gets (kind/apiVersion, namespace, names).
Pure functions on wire-shaped dicts; no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from pybernetes.api.resource import ResourceDef
from pybernetes.machinery import validation
from pybernetes.machinery.errors import (
    FieldError,
    StatusError,
    bad_request,
    invalid,
)

Obj = dict[str, Any]

# Fields of metadata that only the server sets on create.
_SERVER_OWNED_ON_CREATE = (
    "resourceVersion",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "managedFields",
    "selfLink",
)

# generateName: upstream keeps at most 58 characters of the base and adds 5 random ones.
GENERATED_SUFFIX_LENGTH = 5
MAX_GENERATED_BASE = 63 - GENERATED_SUFFIX_LENGTH


def key_root(res: ResourceDef) -> str:
    """``/registry/<group-resource>/``: the prefix of every key of the resource."""
    return f"/registry/{res.group_resource}/"


def key_prefix(res: ResourceDef, namespace: str | None) -> str:
    root = key_root(res)
    if res.namespaced and namespace:
        return f"{root}{namespace}/"
    return root


def object_key(res: ResourceDef, namespace: str | None, name: str) -> str:
    """The storage key of one object; bad URL names and missing namespaces are a 400."""
    if not name:
        raise bad_request("Name parameter required.")
    msgs = validation.validate_path_segment_name(name)
    if msgs:
        raise bad_request(f"Name parameter invalid: {_go_quote(name)}: {';'.join(msgs)}")
    if res.namespaced:
        if not namespace:
            raise bad_request("Namespace parameter required.")
        return f"{key_root(res)}{namespace}/{name}"
    return f"{key_root(res)}{name}"


def _go_quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def invalid_error(res: ResourceDef, name: str, errs: list[FieldError]) -> StatusError:
    """422 Invalid for ``res`` (the message names the group-qualified kind)."""
    return invalid(res.kind, name, errs, res.group)


def check_type(res: ResourceDef, obj: Any) -> Obj:
    """The body must be an object of this resource's kind and apiVersion (400 otherwise);
    absent kind/apiVersion are filled in as upstream's decoder does from the URL."""
    if not isinstance(obj, dict):
        raise bad_request(f"the object provided is unrecognized (must be of type {res.kind})")
    api_version = obj.get("apiVersion")
    if api_version not in (None, "") and api_version != res.api_version:
        raise bad_request(
            f"the API version in the data ({api_version}) does not match the expected API "
            f"version ({res.api_version})"
        )
    kind = obj.get("kind")
    if kind not in (None, "") and kind != res.kind:
        raise bad_request(
            f"the kind in the data ({kind}) does not match the expected kind ({res.kind})"
        )
    obj["apiVersion"] = res.api_version
    obj["kind"] = res.kind
    meta = obj.get("metadata")
    if meta is None:
        obj["metadata"] = {}
    elif not isinstance(meta, dict):
        raise bad_request("metadata: must be an object")
    return obj


_STRING_META = ("name", "generateName", "namespace", "uid", "resourceVersion", "selfLink")
_TIME_META = ("creationTimestamp", "deletionTimestamp")
_INT_META = ("generation", "deletionGracePeriodSeconds")
_RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$")


def check_meta_types(res: ResourceDef, meta: Obj) -> None:
    """Fields that upstream's decoder could not even read are a 400 (before the store
    overwrites the server-owned ones): wrong JSON types and unparseable timestamps."""
    problem = ""
    for key in _STRING_META:
        value = meta.get(key)
        if value is not None and not isinstance(value, str):
            problem = (
                f"json: cannot unmarshal {_json_type(value)} into Go struct field "
                f"ObjectMeta.metadata.{key} of type string"
            )
            break
    if not problem:
        for key in _INT_META:
            value = meta.get(key)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
                problem = (
                    f"json: cannot unmarshal {_json_type(value)} into Go struct field "
                    f"ObjectMeta.metadata.{key} of type int64"
                )
                break
    if not problem:
        for key in _TIME_META:
            value = meta.get(key)
            if value is not None and (not isinstance(value, str) or not _RFC3339.match(value)):
                problem = f"metadata.{key}: invalid time {value!r}: must be RFC 3339"
                break
    if problem:
        raise bad_request(
            f'{res.kind} in version "{res.version}" cannot be handled as a {res.kind}: {problem}'
        )


def _json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return "string"


def apply_create_namespace(res: ResourceDef, meta: Obj, namespace: str | None) -> None:
    """Namespace from the URL; a different one in the body is a 400 (upstream's words)."""
    if res.namespaced:
        if not namespace:
            raise bad_request("Namespace parameter required.")
        body_ns = meta.get("namespace")
        if body_ns and body_ns != namespace:
            raise bad_request(
                "the namespace of the provided object does not match the namespace sent on "
                "the request"
            )
        meta["namespace"] = namespace
    else:
        meta.pop("namespace", None)


def check_update_target(res: ResourceDef, meta: Obj, namespace: str | None, name: str) -> None:
    """PUT/PATCH: the body's name and namespace must be the URL's (upstream's checkName)."""
    body_name = meta.get("name") or ""
    if body_name != name:
        raise bad_request(
            f"the name of the object ({body_name}) does not match the name on the URL ({name})"
        )
    if res.namespaced:
        body_ns = meta.get("namespace")
        if body_ns and body_ns != namespace:
            raise bad_request(
                f"the namespace of the object ({body_ns}) does not match the namespace on the "
                f"request ({namespace})"
            )
        meta["namespace"] = namespace
    else:
        meta.pop("namespace", None)


def generated_name(generate_name: str, suffix: str) -> str:
    return generate_name[:MAX_GENERATED_BASE] + suffix


def init_create_meta(meta: Obj, *, uid: str, now: str, has_generation: bool) -> None:
    """Server-set fields of a new object; whatever the client sent for them is ignored."""
    for name in _SERVER_OWNED_ON_CREATE:
        meta.pop(name, None)
    meta["uid"] = uid
    meta["creationTimestamp"] = now
    if has_generation:
        meta["generation"] = 1
    else:
        meta.pop("generation", None)


def carry_update_meta(new_meta: Obj, old_meta: Obj) -> None:
    """What an update keeps from the stored object (upstream's BeforeUpdate)."""
    new_meta.pop("managedFields", None)
    new_meta.pop("selfLink", None)
    if not new_meta.get("uid") and old_meta.get("uid"):
        new_meta["uid"] = old_meta["uid"]
    if old_meta.get("creationTimestamp"):
        new_meta["creationTimestamp"] = old_meta["creationTimestamp"]
    if old_meta.get("deletionTimestamp"):
        new_meta["deletionTimestamp"] = old_meta["deletionTimestamp"]
    else:
        new_meta.pop("deletionTimestamp", None)
    if "deletionGracePeriodSeconds" in old_meta:
        new_meta.setdefault("deletionGracePeriodSeconds", old_meta["deletionGracePeriodSeconds"])
    elif not old_meta.get("deletionTimestamp"):
        new_meta.pop("deletionGracePeriodSeconds", None)
    if "generation" in old_meta:
        new_meta["generation"] = old_meta["generation"]
    else:
        new_meta.pop("generation", None)


def spec_changed(new: Obj, old: Obj, status_fields: tuple[str, ...]) -> bool:
    """True when something other than metadata, status and type meta differs."""
    skip = {"metadata", "kind", "apiVersion", *status_fields}
    for key in new.keys() | old.keys():
        if key in skip:
            continue
        if new.get(key) != old.get(key):
            return True
    return False


def bump_generation(new: Obj, old: Obj, status_fields: tuple[str, ...]) -> None:
    meta = new["metadata"]
    if "generation" not in meta:
        return
    if spec_changed(new, old, status_fields):
        meta["generation"] = int(old["metadata"].get("generation") or 0) + 1


def name_rule_of(res: ResourceDef) -> Callable[[str], list[str]]:
    """The strategy's name rule (``name_rule`` attribute) or DNS-1123 subdomain, plus the
    path-segment rules every name must satisfy."""
    rule = getattr(res.strategy, "name_rule", None) or validation.is_dns1123_subdomain

    def check(name: str) -> list[str]:
        msgs = list(rule(name))
        if "/" in name or "%" in name or name in (".", ".."):
            for msg in validation.validate_path_segment_name(name):
                if msg not in msgs:
                    msgs.append(msg)
        return msgs

    return check


def validate_create_meta(
    res: ResourceDef, obj: Obj, name_rule: Callable[[str], list[str]] | None = None
) -> list[FieldError]:
    return validation.validate_object_meta(
        obj["metadata"], namespaced=res.namespaced, name_rule=name_rule or name_rule_of(res)
    )


def valid_name_key(res: ResourceDef, namespace: str | None, name: str) -> str:
    """The key of an object whose name and namespace have already been validated."""
    if res.namespaced:
        return f"{key_root(res)}{namespace}/{name}"
    return f"{key_root(res)}{name}"


def validate_update_meta(new: Obj, old: Obj) -> list[FieldError]:
    """Identity fields immutable, resourceVersion present, no new finalizers while deleting."""
    return validation.validate_object_meta_update(new["metadata"], old["metadata"])
