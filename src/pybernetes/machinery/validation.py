"""Name and value validation as upstream apimachinery does it, with upstream's messages.

Two layers:

- ``is_*`` functions take one value and return the list of problems (upstream's
  ``k8s.io/apimachinery/pkg/util/validation``): ``[]`` when valid, otherwise the messages
  (e.g. "a lowercase RFC 1123 subdomain must consist of ...").
- ``validate_*`` functions take a part of an object and a field path and return
  ``FieldError`` lists (upstream's ``pkg/api/validation`` and ``metav1/validation``):
  ObjectMeta on create and on update, labels, annotations, label selectors.

Name rules live in ``validation_names`` and network values (IPs, CIDRs, ports, port names) in
``validation_net``; both are re-exported here, so ``validation.is_dns1123_label`` etc. work.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pybernetes.machinery.errors import (
    FieldError,
    forbidden_field,
    immutable,
    invalid_value,
    required,
    too_long,
)
from pybernetes.machinery.validation_names import (  # noqa: F401  (re-exported)
    DNS1035_LABEL_FMT,
    DNS1123_LABEL_FMT,
    DNS1123_SUBDOMAIN_FMT,
    LABEL_VALUE_FMT,
    QUALIFIED_NAME_FMT,
    empty_error,
    inclusive_range_error,
    is_dns1035_label,
    is_dns1123_label,
    is_dns1123_subdomain,
    is_qualified_name,
    is_valid_label_value,
    mask_trailing_dash,
    max_len_error,
    regex_error,
    validate_path_segment_name,
)
from pybernetes.machinery.validation_net import (  # noqa: F401  (re-exported)
    is_percent_or_int,
    is_valid_cidr,
    is_valid_ip,
    is_valid_percent,
    is_valid_port_name,
    is_valid_port_num,
)

NameRule = Callable[[str], list[str]]


# ---------------------------------------------------------------------------------------
# Labels and annotations
# ---------------------------------------------------------------------------------------

TOTAL_ANNOTATION_SIZE_LIMIT = 256 * 1024


def validate_label_name(name: Any, path: str) -> list[FieldError]:
    if not isinstance(name, str):
        return [invalid_value(path, name, "must be a string")]
    return [invalid_value(path, name, m) for m in is_qualified_name(name)]


def validate_labels(labels: Any, path: str) -> list[FieldError]:
    """Every key a qualified name, every value a valid label value (keys in sorted order)."""
    if labels is None:
        return []
    if not isinstance(labels, dict):
        return [invalid_value(path, labels, "must be a map of string keys to string values")]
    errs: list[FieldError] = []
    for key in sorted(labels, key=str):
        errs.extend(validate_label_name(key, path))
        value = labels[key]
        if not isinstance(value, str):
            errs.append(invalid_value(path, value, "must be a string"))
            continue
        errs.extend(invalid_value(path, value, m) for m in is_valid_label_value(value))
    return errs


def validate_annotations(annotations: Any, path: str) -> list[FieldError]:
    """Keys are qualified names (case-insensitively); all keys and values total <= 256 KiB."""
    if annotations is None:
        return []
    if not isinstance(annotations, dict):
        return [invalid_value(path, annotations, "must be a map of string keys to string values")]
    errs: list[FieldError] = []
    total = 0
    for key in sorted(annotations, key=str):
        value = annotations[key]
        if not isinstance(key, str):
            errs.append(invalid_value(path, key, "must be a string"))
            continue
        errs.extend(invalid_value(path, key, m) for m in is_qualified_name(key.lower()))
        if not isinstance(value, str):
            errs.append(invalid_value(f"{path}[{key}]", value, "must be a string"))
            continue
        total += len(key.encode()) + len(value.encode())
    if total > TOTAL_ANNOTATION_SIZE_LIMIT:
        errs.append(too_long(path, "", TOTAL_ANNOTATION_SIZE_LIMIT))
    return errs


# ---------------------------------------------------------------------------------------
# Finalizers and owner references
# ---------------------------------------------------------------------------------------

STANDARD_FINALIZERS = frozenset({"kubernetes", "orphan", "foregroundDeletion"})


def validate_finalizers(finalizers: Any, path: str) -> list[FieldError]:
    """Upstream ValidateFinalizers: each finalizer a qualified name (errors at ``path``), and
    not both orphan and foregroundDeletion."""
    if finalizers is None:
        return []
    if not isinstance(finalizers, list):
        return [invalid_value(path, finalizers, "must be a list of strings")]
    errs: list[FieldError] = []
    for i, fin in enumerate(finalizers):
        if not isinstance(fin, str):
            errs.append(invalid_value(f"{path}[{i}]", fin, "must be a string"))
            continue
        errs.extend(invalid_value(path, fin, m) for m in is_qualified_name(fin))
    if "orphan" in finalizers and "foregroundDeletion" in finalizers:
        errs.append(
            invalid_value(path, finalizers, "finalizer orphan and foregroundDeletion cannot be both set")
        )
    return errs


def validate_kube_finalizer_names(finalizers: Any, path: str) -> list[FieldError]:
    """The built-in types' extra check (errors at ``path[i]``): a qualified name, and a name
    without a '/' only if it is a standard finalizer."""
    if not isinstance(finalizers, list):
        return []
    errs: list[FieldError] = []
    for i, fin in enumerate(finalizers):
        if not isinstance(fin, str):
            continue
        errs.extend(invalid_value(f"{path}[{i}]", fin, m) for m in is_qualified_name(fin))
        if "/" not in fin and fin not in STANDARD_FINALIZERS:
            errs.append(
                invalid_value(
                    f"{path}[{i}]", fin, "name is neither a standard finalizer name nor is it fully qualified"
                )
            )
    return errs


def finalizer_warnings(finalizers: Any, path: str = "metadata.finalizers") -> list[str]:
    """Upstream's warnings for finalizer names without a domain (not errors)."""
    if not isinstance(finalizers, list):
        return []
    out = []
    for i, fin in enumerate(finalizers):
        if isinstance(fin, str) and "/" not in fin and fin not in STANDARD_FINALIZERS:
            out.append(
                f'{path}[{i}]: "{fin}": prefer a domain-qualified finalizer name including a path '
                "(/) to avoid accidental conflicts with other finalizer writers"
            )
    return out


def _split_api_version(api_version: str) -> tuple[str, str]:
    """(group, version) as upstream's ParseGroupVersion; ("", "") when malformed."""
    if not api_version or api_version == "/":
        return "", ""
    parts = api_version.split("/")
    if len(parts) == 1:
        return "", parts[0]
    if len(parts) == 2:
        return parts[0], parts[1]
    return "", ""


def validate_owner_references(refs: Any, path: str) -> list[FieldError]:
    if refs is None:
        return []
    if not isinstance(refs, list):
        return [invalid_value(path, refs, "must be a list of owner references")]
    errs: list[FieldError] = []
    first_controller = ""
    for i, ref in enumerate(refs):
        if not isinstance(ref, dict):
            errs.append(invalid_value(f"{path}[{i}]", ref, "must be an object"))
            continue
        api_version = ref.get("apiVersion") or ""
        kind = ref.get("kind") or ""
        group, version = _split_api_version(api_version if isinstance(api_version, str) else "")
        if not version:
            errs.append(invalid_value(f"{path}.apiVersion", api_version, "version must not be empty"))
        if not kind:
            errs.append(invalid_value(f"{path}.kind", kind, "kind must not be empty"))
        if not ref.get("name"):
            errs.append(invalid_value(f"{path}.name", ref.get("name") or "", "name must not be empty"))
        if not ref.get("uid"):
            errs.append(invalid_value(f"{path}.uid", ref.get("uid") or "", "uid must not be empty"))
        if group == "" and version == "v1" and kind == "Event":
            errs.append(invalid_value(path, ref, "/v1, Kind=Event is disallowed from being an owner"))
        if ref.get("controller") is True:
            current = f"{kind}/{ref.get('name') or ''}"
            if first_controller:
                errs.append(
                    invalid_value(
                        path,
                        refs,
                        "Only one reference can have Controller set to true. Found \"true\" in "
                        f"references for {first_controller} and {current}",
                    )
                )
            else:
                first_controller = current
    return errs


# ---------------------------------------------------------------------------------------
# ObjectMeta
# ---------------------------------------------------------------------------------------

NEGATIVE_ERROR = "must be greater than or equal to 0"


def _str_field(meta: dict, key: str) -> str:
    value = meta.get(key)
    return value if isinstance(value, str) else ""


def _type_errors(meta: dict, path: str) -> list[FieldError]:
    """Fields of the wrong JSON type (a typed decoder would have refused them)."""
    errs = []
    for key in ("name", "generateName", "namespace", "uid", "resourceVersion", "creationTimestamp",
                "deletionTimestamp", "selfLink"):
        value = meta.get(key)
        if value is not None and not isinstance(value, str):
            errs.append(invalid_value(f"{path}.{key}", value, "must be a string"))
    for key in ("generation", "deletionGracePeriodSeconds"):
        value = meta.get(key)
        if value is not None and (not isinstance(value, int) or isinstance(value, bool)):
            errs.append(invalid_value(f"{path}.{key}", value, "must be an integer"))
    return errs


def validate_object_meta(
    meta: Any,
    *,
    namespaced: bool,
    name_rule: NameRule = is_dns1123_subdomain,
    path: str = "metadata",
) -> list[FieldError]:
    """Upstream ValidateObjectMeta (the flavour of the built-in types, which adds the
    finalizer-name check per index; upstream reports a bad finalizer both at
    ``metadata.finalizers`` and at ``metadata.finalizers[i]``).

    ``name_rule`` checks the name (and a generateName with its trailing '-' masked).  It runs
    after the store has turned a generateName into a name, so a missing name is an error.
    """
    if meta is None:
        meta = {}
    if not isinstance(meta, dict):
        return [invalid_value(path, meta, "must be an object")]
    errs = _type_errors(meta, path)
    if errs:
        return errs
    generate_name = _str_field(meta, "generateName")
    if generate_name:
        masked = mask_trailing_dash(generate_name)
        errs.extend(invalid_value(f"{path}.generateName", generate_name, m) for m in name_rule(masked))
    name = _str_field(meta, "name")
    if not name:
        errs.append(required(f"{path}.name", "name or generateName is required"))
    else:
        errs.extend(invalid_value(f"{path}.name", name, m) for m in name_rule(name))
    namespace = _str_field(meta, "namespace")
    if namespaced:
        if not namespace:
            errs.append(required(f"{path}.namespace"))
        else:
            errs.extend(invalid_value(f"{path}.namespace", namespace, m) for m in is_dns1123_label(namespace))
    elif namespace:
        errs.append(forbidden_field(f"{path}.namespace", "not allowed on this type"))
    generation = meta.get("generation")
    if isinstance(generation, int) and generation < 0:
        errs.append(invalid_value(f"{path}.generation", generation, NEGATIVE_ERROR))
    errs.extend(_common_meta(meta, path))
    errs.extend(validate_finalizers(meta.get("finalizers"), f"{path}.finalizers"))
    errs.extend(validate_kube_finalizer_names(meta.get("finalizers"), f"{path}.finalizers"))
    return errs


def _common_meta(meta: dict, path: str) -> list[FieldError]:
    errs = validate_labels(meta.get("labels"), f"{path}.labels")
    errs.extend(validate_annotations(meta.get("annotations"), f"{path}.annotations"))
    errs.extend(validate_owner_references(meta.get("ownerReferences"), f"{path}.ownerReferences"))
    managed = meta.get("managedFields")
    if managed is not None and not isinstance(managed, list):
        errs.append(invalid_value(f"{path}.managedFields", managed, "must be a list"))
    elif isinstance(managed, list):
        for i, entry in enumerate(managed):
            if not isinstance(entry, dict):
                errs.append(invalid_value(f"{path}.managedFields[{i}]", entry, "must be an object"))
                continue
            operation = entry.get("operation")
            if operation not in ("Apply", "Update"):
                errs.append(
                    FieldError(
                        "FieldValueNotSupported",
                        f"{path}.managedFields[{i}].operation",
                        'supported values: "Apply", "Update"',
                        operation if operation is not None else "",
                    )
                )
            if entry.get("fieldsType", "FieldsV1") != "FieldsV1":
                errs.append(
                    FieldError(
                        "FieldValueNotSupported",
                        f"{path}.managedFields[{i}].fieldsType",
                        '"FieldsV1"',
                        entry.get("fieldsType"),
                    )
                )
    return errs


def validate_object_meta_update(new_meta: Any, old_meta: Any, path: str = "metadata") -> list[FieldError]:
    """Upstream ValidateObjectMetaUpdate: identity fields are immutable, resourceVersion is
    required, generation never decreases, no new finalizers while the object is being deleted."""
    new_meta = new_meta if isinstance(new_meta, dict) else {}
    old_meta = old_meta if isinstance(old_meta, dict) else {}
    errs = _type_errors(new_meta, path)
    if errs:
        return errs
    if old_meta.get("deletionTimestamp"):
        old_fins = old_meta.get("finalizers") or []
        new_fins = new_meta.get("finalizers") or []
        if isinstance(new_fins, list) and isinstance(old_fins, list):
            extra = sorted({f for f in new_fins if isinstance(f, str)} - set(old_fins))
            if extra:
                shown = ", ".join(f'"{f}"' for f in extra)
                errs.append(
                    forbidden_field(
                        f"{path}.finalizers",
                        "no new finalizers can be added if the object is being deleted, "
                        f"found new finalizers []string{{{shown}}}",
                    )
                )
    if not _str_field(new_meta, "resourceVersion"):
        errs.append(invalid_value(f"{path}.resourceVersion", "", "must be specified for an update"))
    new_gen = new_meta.get("generation") or 0
    old_gen = old_meta.get("generation") or 0
    if isinstance(new_gen, int) and isinstance(old_gen, int) and new_gen < old_gen:
        errs.append(invalid_value(f"{path}.generation", new_gen, "must not be decremented"))
    for key in ("name", "namespace", "uid", "creationTimestamp", "deletionTimestamp",
                "deletionGracePeriodSeconds"):
        new_value = new_meta.get(key)
        old_value = old_meta.get(key)
        if key in ("name", "namespace", "uid", "creationTimestamp", "deletionTimestamp"):
            new_value = new_value or ""
            old_value = old_value or ""
        if new_value != old_value:
            errs.append(immutable(f"{path}.{key}", new_value))
    errs.extend(_common_meta(new_meta, path))
    finalizers = new_meta.get("finalizers")
    if finalizers is not None and not isinstance(finalizers, list):
        errs.append(invalid_value(f"{path}.finalizers", finalizers, "must be a list of strings"))
    errs.extend(validate_kube_finalizer_names(finalizers, f"{path}.finalizers"))
    return errs


# ---------------------------------------------------------------------------------------
# metav1.LabelSelector
# ---------------------------------------------------------------------------------------

SELECTOR_OPERATORS = ("In", "NotIn", "Exists", "DoesNotExist")


def validate_label_selector(
    selector: Any, path: str, *, allow_invalid_label_values: bool = False
) -> list[FieldError]:
    """A metav1.LabelSelector dict: matchLabels like labels; each matchExpressions entry a
    qualified key, a known operator, values present exactly when the operator needs them."""
    if selector is None:
        return []
    if not isinstance(selector, dict):
        return [invalid_value(path, selector, "must be an object")]
    errs = validate_labels(selector.get("matchLabels"), f"{path}.matchLabels")
    expressions = selector.get("matchExpressions")
    if expressions is None:
        return errs
    if not isinstance(expressions, list):
        return [*errs, invalid_value(f"{path}.matchExpressions", expressions, "must be a list")]
    for i, expr in enumerate(expressions):
        epath = f"{path}.matchExpressions[{i}]"
        if not isinstance(expr, dict):
            errs.append(invalid_value(epath, expr, "must be an object"))
            continue
        values = expr.get("values") or []
        if not isinstance(values, list):
            errs.append(invalid_value(f"{epath}.values", values, "must be a list of strings"))
            values = []
        operator = expr.get("operator")
        if operator in ("In", "NotIn"):
            if not values:
                errs.append(
                    required(f"{epath}.values", "must be specified when `operator` is 'In' or 'NotIn'")
                )
        elif operator in ("Exists", "DoesNotExist"):
            if values:
                errs.append(
                    forbidden_field(
                        f"{epath}.values", "may not be specified when `operator` is 'Exists' or 'DoesNotExist'"
                    )
                )
        else:
            errs.append(
                invalid_value(f"{epath}.operator", operator if operator is not None else "",
                              "not a valid selector operator")
            )
        errs.extend(validate_label_name(expr.get("key", ""), f"{epath}.key"))
        for j, value in enumerate(values):
            if not isinstance(value, str):
                errs.append(invalid_value(f"{epath}.values[{j}]", value, "must be a string"))
            elif not allow_invalid_label_values:
                errs.extend(
                    invalid_value(f"{epath}.values[{j}]", value, m) for m in is_valid_label_value(value)
                )
    return errs
