"""Query parameters of REST requests, parsed and checked as upstream does.

Pure functions from the query (a mapping of str to str, aiohttp's ``request.query``) to the
store's ``WriteOptions`` / ``ListOptions`` and to a DeleteOptions dict; malformed values are a
400 BadRequest, contradictory list options a 422 Invalid naming the field, as upstream's
``ValidateListOptions`` does.  ``pretty`` and other presentation parameters are ignored.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pybernetes.apiserver.store import ListOptions, WriteOptions
from pybernetes.machinery.errors import (
    FieldError,
    StatusError,
    bad_request,
    forbidden_field,
    invalid,
    invalid_value,
    not_supported,
)

FIELD_VALIDATION_VALUES = ("Ignore", "Strict", "Warn")
_MAX_FIELD_MANAGER = 128


def query_bool(query: Mapping[str, str], key: str) -> bool:
    value = query.get(key)
    if value is None:
        return False
    lowered = value.lower()
    if lowered in ("true", "1", ""):
        return True
    if lowered in ("false", "0"):
        return False
    raise bad_request(f'invalid boolean value "{value}" for query parameter "{key}"')


def query_int(query: Mapping[str, str], key: str,
              invalid: str = 'invalid integer value "{value}" for query parameter "{key}"') -> int | None:
    """An integer query parameter (None when absent or empty); a 400 with ``invalid``
    (formatted with value and key) when it is not one."""
    value = query.get(key)
    if value is None or value == "":
        return None
    try:
        return int(value)
    except ValueError:
        raise bad_request(invalid.format(value=value, key=key)) from None


def _invalid_options(kind: str, errors: list[FieldError]) -> StatusError:
    return invalid(kind, "", errors, group="meta.k8s.io")


def write_options(query: Mapping[str, str], *, apply: bool = False) -> WriteOptions:
    """dryRun, fieldManager, fieldValidation of create/update/patch/delete."""
    opts = WriteOptions()
    if query:
        dry_run = query.getall("dryRun", ()) if hasattr(query, "getall") else (
            [query["dryRun"]] if "dryRun" in query else [])
        for value in dry_run:
            if value != "All":
                raise bad_request(
                    f'dryRun: Unsupported value: "{value}": supported values: "All"')
            opts.dry_run = True
        manager = query.get("fieldManager")
        if manager:
            if len(manager) > _MAX_FIELD_MANAGER:
                raise bad_request(
                    f"fieldManager: Too long: may not be more than {_MAX_FIELD_MANAGER} bytes")
            if not manager.isprintable():
                raise bad_request(
                    f'fieldManager: Invalid value: "{manager}": must only contain printable characters')
            opts.field_manager = manager
        validation = query.get("fieldValidation")
        if validation:
            if validation not in FIELD_VALIDATION_VALUES:
                raise bad_request(
                    f'fieldValidation: Unsupported value: "{validation}": supported values: '
                    + ", ".join(f'"{v}"' for v in FIELD_VALIDATION_VALUES))
            opts.field_validation = validation
    if apply and not opts.field_manager:
        raise _invalid_options("PatchOptions", [forbidden_field(
            "fieldManager", "is required for apply patch")])
    return opts


def list_options(query: Mapping[str, str], *, watch: bool) -> ListOptions:
    opts = ListOptions()
    if not query:
        return opts
    opts.label_selector = query.get("labelSelector", "")
    opts.field_selector = query.get("fieldSelector", "")
    limit = query_int(query, "limit")
    if limit is not None and limit > 0 and not watch:
        opts.limit = limit
    opts.continue_token = query.get("continue", "")
    opts.resource_version = query.get("resourceVersion", "")
    opts.resource_version_match = query.get("resourceVersionMatch", "")
    timeout = query_int(query, "timeoutSeconds")
    if timeout is not None:
        opts.timeout_seconds = max(timeout, 0)
    opts.allow_bookmarks = query_bool(query, "allowWatchBookmarks")
    if "sendInitialEvents" in query:
        opts.send_initial_events = query_bool(query, "sendInitialEvents")
        send_initial: bool | None = opts.send_initial_events
    else:
        send_initial = None
    _validate_list_options(opts, watch, send_initial)
    return opts


def _validate_list_options(opts: ListOptions, watch: bool, send_initial: bool | None) -> None:
    """Upstream's ValidateListOptions: separate rules for lists and for watches."""
    errors: list[FieldError] = []
    rv, match = opts.resource_version, opts.resource_version_match
    if rv and rv != "0":
        try:
            if int(rv) < 0:
                raise ValueError
        except ValueError:
            errors.append(invalid_value("resourceVersion", rv, "must be a non-negative integer"))
    if watch:
        if send_initial is not None and match != "NotOlderThan":
            errors.append(forbidden_field(
                "resourceVersionMatch", "sendInitialEvents requires setting resourceVersionMatch to NotOlderThan"))
        if match:
            if send_initial is None:
                errors.append(forbidden_field(
                    "resourceVersionMatch",
                    "resourceVersionMatch is forbidden for watch unless sendInitialEvents is provided"))
            if match != "NotOlderThan":
                errors.append(not_supported("resourceVersionMatch", match, ("NotOlderThan",)))
            if opts.continue_token:
                errors.append(forbidden_field(
                    "resourceVersionMatch", "resourceVersionMatch is forbidden when continue is provided"))
    else:
        opts.allow_bookmarks = False  # bookmarks mean nothing to a list
        if match:
            if not rv:
                errors.append(forbidden_field(
                    "resourceVersionMatch", "resourceVersionMatch is forbidden unless resourceVersion is provided"))
            if opts.continue_token:
                errors.append(forbidden_field(
                    "resourceVersionMatch", "resourceVersionMatch is forbidden when continue is provided"))
            if match not in ("Exact", "NotOlderThan"):
                errors.append(not_supported("resourceVersionMatch", match, ("Exact", "NotOlderThan")))
            if match == "Exact" and rv == "0":
                errors.append(forbidden_field(
                    "resourceVersionMatch", 'resourceVersionMatch "exact" is forbidden for resourceVersion "0"'))
        if opts.continue_token and rv and rv != "0":
            errors.append(forbidden_field(
                "resourceVersion", "specifying resource version is not allowed when using continue"))
        if send_initial is not None:
            errors.append(forbidden_field("sendInitialEvents", "sendInitialEvents is forbidden for list"))
    if errors:
        raise _invalid_options("ListOptions", errors)


def delete_options(query: Mapping[str, str], body: Any) -> dict[str, Any]:
    """A DeleteOptions dict from the body (may be None) with query parameters on top."""
    options: dict[str, Any] = {}
    if body is not None:
        if not isinstance(body, dict):
            raise bad_request("DeleteOptions must be a JSON object")
        kind = body.get("kind")
        if kind not in (None, "", "DeleteOptions"):
            raise bad_request(f'the kind in the body ({kind}) is not DeleteOptions')
        options = {k: v for k, v in body.items() if k not in ("kind", "apiVersion")}
    if query:
        grace = query_int(query, "gracePeriodSeconds")
        if grace is not None:
            options["gracePeriodSeconds"] = grace
        policy = query.get("propagationPolicy")
        if policy:
            options["propagationPolicy"] = policy
        if "orphanDependents" in query:
            options["orphanDependents"] = query_bool(query, "orphanDependents")
        dry_run = query.get("dryRun")
        if dry_run:
            options["dryRun"] = [dry_run]
    errors: list[FieldError] = []
    grace = options.get("gracePeriodSeconds")
    if grace is not None and (not isinstance(grace, int) or isinstance(grace, bool)):
        errors.append(invalid_value("gracePeriodSeconds", grace, "must be an integer"))
    policy = options.get("propagationPolicy")
    if policy is not None and policy not in ("Orphan", "Background", "Foreground"):
        errors.append(not_supported("propagationPolicy", policy, ("Foreground", "Background", "Orphan")))
    if policy is not None and options.get("orphanDependents") is not None:
        errors.append(invalid_value("propagationPolicy", policy,
                                    "orphanDependents and deletionPropagation cannot be both set"))
    preconditions = options.get("preconditions")
    if preconditions is not None and not isinstance(preconditions, dict):
        errors.append(invalid_value("preconditions", preconditions, "must be an object"))
    for value in options.get("dryRun") or ():
        if value != "All":
            errors.append(not_supported("dryRun", value, ("All",)))
    if errors:
        raise _invalid_options("DeleteOptions", errors)
    return options
