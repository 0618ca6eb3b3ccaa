"""Validation of pod volumes (one source each, names, the common sources' required fields)."""

from __future__ import annotations

from typing import Any

from pybernetes.api.fieldcheck import (
    as_dict,
    as_int,
    as_str,
    check_enum,
    check_name,
    config_key_errors,
    dict_items,
    one_of,
    parse_quantity_at,
)
from pybernetes.api.pod_defaults import volume_sources
from pybernetes.machinery import validation as mv
from pybernetes.machinery.errors import FieldError, duplicate, forbidden_field, invalid_value, required

Obj = dict[str, Any]
Errors = list[FieldError]

HOST_PATH_TYPES = ("", "BlockDevice", "CharDevice", "Directory", "DirectoryOrCreate", "File",
                   "FileOrCreate", "Socket")
STORAGE_MEDIA = ("", "HugePages", "Memory")
_MODE_MESSAGE = "must be a number between 0 and 0777 (octal), both inclusive"


def _check_mode(value: Any, path: str, errs: Errors) -> None:
    mode = as_int(value, path, errs)
    if mode is not None and not 0 <= mode <= 0o777:
        errs.append(invalid_value(path, mode, _MODE_MESSAGE))


def _check_relative_path(value: Any, path: str, errs: Errors) -> None:
    text = as_str(value, path, errs)
    if not text:
        errs.append(required(path))
        return
    if text.startswith("/"):
        errs.append(invalid_value(path, text, "must be a relative path"))
    if ".." in text.split("/"):
        errs.append(invalid_value(path, text, "must not contain '..'"))


def _check_key_items(source: Obj, path: str, errs: Errors) -> None:
    for i, item in dict_items(source.get("items"), f"{path}.items", errs):
        p = f"{path}.items[{i}]"
        key = as_str(item.get("key"), f"{p}.key", errs)
        if not key:
            errs.append(required(f"{p}.key"))
        else:
            for message in config_key_errors(key):
                errs.append(invalid_value(f"{p}.key", key, message))
        _check_relative_path(item.get("path"), f"{p}.path", errs)
        _check_mode(item.get("mode"), f"{p}.mode", errs)


def _check_downward(source: Obj, path: str, errs: Errors) -> None:
    for i, item in dict_items(source.get("items"), f"{path}.items", errs):
        p = f"{path}.items[{i}]"
        _check_relative_path(item.get("path"), f"{p}.path", errs)
        _check_mode(item.get("mode"), f"{p}.mode", errs)
        refs = [k for k in ("fieldRef", "resourceFieldRef") if item.get(k) is not None]
        if len(refs) > 1:
            errs.append(invalid_value(p, "resource", "fieldRef and resourceFieldRef can not be specified simultaneously"))
        elif not refs:
            errs.append(required(p, "one of fieldRef and resourceFieldRef is required"))


def _check_source(kind: str, source: Obj, path: str, errs: Errors) -> None:
    if kind == "hostPath":
        text = as_str(source.get("path"), f"{path}.path", errs)
        if not text:
            errs.append(required(f"{path}.path"))
        check_enum(source.get("type"), f"{path}.type", HOST_PATH_TYPES, errs)
    elif kind == "emptyDir":
        check_enum(source.get("medium"), f"{path}.medium", STORAGE_MEDIA, errs)
        if source.get("sizeLimit") is not None:
            size = parse_quantity_at(source["sizeLimit"], f"{path}.sizeLimit", errs)
            if size is not None and size < 0:
                errs.append(invalid_value(f"{path}.sizeLimit", source["sizeLimit"], "must be greater than or equal to 0"))
    elif kind == "secret":
        if not as_str(source.get("secretName"), f"{path}.secretName", errs):
            errs.append(required(f"{path}.secretName"))
        _check_mode(source.get("defaultMode"), f"{path}.defaultMode", errs)
        _check_key_items(source, path, errs)
    elif kind == "configMap":
        if not as_str(source.get("name"), f"{path}.name", errs):
            errs.append(required(f"{path}.name"))
        _check_mode(source.get("defaultMode"), f"{path}.defaultMode", errs)
        _check_key_items(source, path, errs)
    elif kind == "persistentVolumeClaim":
        if not as_str(source.get("claimName"), f"{path}.claimName", errs):
            errs.append(required(f"{path}.claimName"))
    elif kind == "nfs":
        if not as_str(source.get("server"), f"{path}.server", errs):
            errs.append(required(f"{path}.server"))
        nfs_path = as_str(source.get("path"), f"{path}.path", errs)
        if not nfs_path:
            errs.append(required(f"{path}.path"))
        elif not nfs_path.startswith("/"):
            errs.append(invalid_value(f"{path}.path", nfs_path, "must be an absolute path"))
    elif kind == "downwardAPI":
        _check_mode(source.get("defaultMode"), f"{path}.defaultMode", errs)
        _check_downward(source, path, errs)
    elif kind == "projected":
        _check_mode(source.get("defaultMode"), f"{path}.defaultMode", errs)
        _check_projected(source, path, errs)
    elif kind == "csi":
        if not as_str(source.get("driver"), f"{path}.driver", errs):
            errs.append(required(f"{path}.driver"))
    elif kind == "ephemeral":
        if source.get("volumeClaimTemplate") is None:
            errs.append(required(f"{path}.volumeClaimTemplate"))
    elif kind == "image":
        if not as_str(source.get("reference"), f"{path}.reference", errs):
            errs.append(required(f"{path}.reference"))


def _check_projected(source: Obj, path: str, errs: Errors) -> None:
    for i, projection in dict_items(source.get("sources"), f"{path}.sources", errs):
        p = f"{path}.sources[{i}]"
        kinds = [k for k in ("secret", "configMap", "downwardAPI", "serviceAccountToken",
                             "clusterTrustBundle") if projection.get(k) is not None]
        if not kinds:
            errs.append(required(p, "must specify exactly 1 of: secret, configMap, downwardAPI, "
                                    "serviceAccountToken, clusterTrustBundle"))
        for extra in kinds[1:]:
            errs.append(forbidden_field(f"{p}.{extra}", "may not specify more than 1 volume type per source"))
        for kind in kinds[:1]:
            body = as_dict(projection.get(kind), f"{p}.{kind}", errs)
            if kind in ("secret", "configMap"):
                _check_key_items(body, f"{p}.{kind}", errs)
            elif kind == "downwardAPI":
                _check_downward(body, f"{p}.{kind}", errs)
            elif kind == "serviceAccountToken":
                seconds = as_int(body.get("expirationSeconds"), f"{p}.{kind}.expirationSeconds", errs)
                if seconds is not None and not 600 <= seconds <= 2**32:
                    detail = ("may not specify a duration less than 10 minutes" if seconds < 600
                              else "may not specify a duration larger than 2^32 seconds")
                    errs.append(invalid_value(f"{p}.{kind}.expirationSeconds", seconds, detail))
                _check_relative_path(body.get("path"), f"{p}.{kind}.path", errs)


def validate_volumes(value: Any, path: str, errs: Errors) -> dict[str, Obj]:
    """The pod's volumes; returns them by name (for volumeMount checks)."""
    by_name: dict[str, Obj] = {}
    sources = volume_sources()
    for i, volume in dict_items(value, path, errs):
        p = f"{path}[{i}]"
        name = as_str(volume.get("name"), f"{p}.name", errs)
        check_name(name, f"{p}.name", mv.is_dns1123_label, errs)
        if name:
            if name in by_name:
                errs.append(duplicate(f"{p}.name", name))
            else:
                by_name[name] = volume
        kind = one_of(volume, sources, p, "volume", errs)
        if kind is None:
            continue
        _check_source(kind, as_dict(volume.get(kind), f"{p}.{kind}", errs), f"{p}.{kind}", errs)
    return by_name
