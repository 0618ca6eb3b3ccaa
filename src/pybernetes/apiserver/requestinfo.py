"""Which resource, object and verb a REST request is about (upstream's RequestInfo).

Pure: given the HTTP method, the path after the group-version prefix and whether the query
asks for a watch, ``resolve`` finds the ResourceDef in the registry and the namespace, name,
subresource and verb, or raises the StatusError the API answers (404 for an unknown
resource or path, 405 for a verb the resource lacks).  No regular expressions: the path is
split on "/" once.
"""

from __future__ import annotations

from dataclasses import dataclass

from pybernetes.api.registry import Registry
from pybernetes.api.resource import ResourceDef
from pybernetes.machinery.errors import StatusError, method_not_allowed

NOT_FOUND_MESSAGE = "the server could not find the requested resource"

# Subresources of a namespace that are addressed as /namespaces/{name}/{subresource}.
_NAMESPACE_SUBRESOURCES = frozenset(("status", "finalize"))


def not_found_path() -> StatusError:
    return StatusError(404, "NotFound", NOT_FOUND_MESSAGE, {})


@dataclass(slots=True)
class RequestInfo:
    res: ResourceDef
    verb: str  # get list watch create update patch delete deletecollection
    namespace: str | None  # None: cluster-scoped resource or a request across namespaces
    name: str | None
    subresource: str | None

    @property
    def scope_namespace(self) -> str:
        return self.namespace or ""


def _verb(method: str, has_name: bool, watch: bool, subresource: str | None) -> str | None:
    if method == "GET" or method == "HEAD":
        if watch:
            return "watch"
        return "get" if has_name else "list"
    if watch:
        return None
    if method == "POST":
        # POST on a named object only reaches subresources (pods/binding, eviction ...).
        if has_name and subresource is None:
            return None
        return "create"
    if not has_name:
        return "deletecollection" if method == "DELETE" else None
    if method == "PUT":
        return "update"
    if method == "PATCH":
        return "patch"
    if method == "DELETE":
        return "delete"
    return None


def resolve(
    registry: Registry,
    group: str,
    version: str,
    method: str,
    tail: str,
    *,
    watch_param: bool = False,
) -> RequestInfo:
    """``tail`` is the path after ``/api/v1/`` or ``/apis/{group}/{version}/``."""
    parts = tail.split("/")
    if parts and parts[-1] == "":
        parts.pop()
    if not parts or "" in parts:
        raise not_found_path()
    watch = False
    if parts[0] == "watch":
        watch = True
        parts = parts[1:]
        if not parts:
            raise not_found_path()
    namespace: str | None = None
    if parts[0] == "namespaces" and len(parts) > 1:
        if len(parts) == 2 or parts[2] in _NAMESPACE_SUBRESOURCES:
            # The namespace object itself: /namespaces/{name}[/status|/finalize].
            pass
        else:
            namespace = parts[1]
            parts = parts[2:]
    if len(parts) > 3:
        raise not_found_path()
    res = registry.get(group, version, parts[0])
    if res is None:
        raise not_found_path()
    name = parts[1] if len(parts) > 1 else None
    subresource = parts[2] if len(parts) > 2 else None
    if namespace is not None and not res.namespaced:
        raise not_found_path()
    if res.namespaced and namespace is None and name is not None:
        # Named namespaced objects are only addressed inside their namespace.
        raise not_found_path()
    if watch_param and name is None and method == "GET":
        watch = True  # ?watch=true turns a collection GET into a watch (not a named GET)
    sub = None
    if subresource is not None:
        sub = res.subresource(subresource)
        if sub is None:
            raise not_found_path()
        if watch:
            raise not_found_path()
    verb = _verb(method, name is not None, watch, subresource)
    if verb is None:
        raise _not_allowed(method, res)
    if res.namespaced and namespace is None and verb not in ("list", "watch"):
        # Across namespaces only list and watch exist (upstream registers no other route).
        raise _not_allowed(method, res)
    allowed = sub.verbs if sub is not None else res.verbs
    if verb not in allowed:
        raise _not_allowed(method, res, verb)
    return RequestInfo(res, verb, namespace, name, subresource)


def _not_allowed(method: str, res: ResourceDef, verb: str | None = None) -> StatusError:
    action = verb or method.lower()
    err = method_not_allowed(f'{action} is not supported on resources of kind "{res.group_resource}"')
    err.details = {"group": res.group, "kind": res.resource}
    return err
