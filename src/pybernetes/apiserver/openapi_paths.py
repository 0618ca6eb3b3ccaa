"""OpenAPI v3 paths and operations of one group-version, built from the resource registry.

Owns the operation shapes upstream publishes: one path per collection, item, watch and
subresource URL; operations named like upstream's (``readAppsV1NamespacedDeployment``),
tagged with ``x-kubernetes-action`` and ``x-kubernetes-group-version-kind``; the query
parameters each verb takes (``fieldValidation``, ``dryRun``, ``fieldManager`` on writes;
selectors, paging and watch parameters on lists); request bodies and responses referring to
component schemas.  Pure: no I/O.
"""

from __future__ import annotations

from typing import Any

from pybernetes.api.resource import ResourceDef, Subresource

Obj = dict[str, Any]
META = "io.k8s.apimachinery.pkg.apis.meta.v1"
SCHEMAS = "#/components/schemas/"
CONNECT_SUBRESOURCES = ("attach", "exec", "portforward", "proxy")
PATCH_TYPES = (
    "application/apply-patch+yaml",
    "application/json-patch+json",
    "application/merge-patch+json",
    "application/strategic-merge-patch+json",
)
RESPONSE_TYPES = ("application/json", "application/yaml")
WATCH_RESPONSE_TYPES = ("application/json", "application/yaml", "application/json;stream=watch")


def _param(name: str, where: str, description: str, type_: str = "string", required: bool = False) -> Obj:
    param: Obj = {"name": name, "in": where, "description": description}
    if required:
        param["required"] = True
    param["schema"] = {"type": type_, "uniqueItems": True}
    return param


def _query(name: str, description: str, type_: str = "string") -> Obj:
    return _param(name, "query", description, type_)


PRETTY = _query("pretty", "If 'true', then the output is pretty printed.")
DRY_RUN = _query(
    "dryRun",
    "When present, modifications are not persisted. The only valid value is 'All' (every stage "
    "of the request runs except storage).",
)
FIELD_MANAGER = _query(
    "fieldManager",
    "A name for the actor making these changes; at most 128 printable characters.",
)
FIELD_VALIDATION = _query(
    "fieldValidation",
    "What the server does with unknown or duplicate fields in the body: Ignore (drop them "
    "silently), Warn (drop them and answer with a Warning header per field; the default) or "
    "Strict (fail the request with BadRequest naming every such field).",
)
FORCE = _query(
    "force",
    "Force an apply request to take over fields owned by other managers. Only for apply patches.",
    "boolean",
)
LIST_PARAMS = (
    _query("allowWatchBookmarks", "Ask for BOOKMARK events in a watch; the server may ignore it.", "boolean"),
    _query("continue", "The continue token of the previous page of a paginated list."),
    _query("fieldSelector", "Restrict the result to objects whose fields match, e.g. metadata.name=x."),
    _query("labelSelector", "Restrict the result to objects whose labels match the selector."),
    _query("limit", "The largest number of items to return; a continue token gives the rest.", "integer"),
    _query("resourceVersion", "Which version of the collection to read or watch from."),
    _query("resourceVersionMatch", "How resourceVersion applies to a list: Exact or NotOlderThan."),
    _query("sendInitialEvents", "Start a watch with the current state as synthetic events.", "boolean"),
    _query("timeoutSeconds", "End a list or watch call after this many seconds.", "integer"),
    _query("watch", "Watch for changes to the described resources instead of listing them.", "boolean"),
)
DELETE_PARAMS = (
    DRY_RUN,
    _query("gracePeriodSeconds", "Seconds before the object is deleted; zero deletes now.", "integer"),
    _query(
        "ignoreStoreReadErrorWithClusterBreakingPotential",
        "Delete an object whose stored form cannot be read (unsafe).",
        "boolean",
    ),
    _query("orphanDependents", "Deprecated: use propagationPolicy.", "boolean"),
    _query("propagationPolicy", "Garbage collection of dependents: Orphan, Background or Foreground."),
)
LOG_PARAMS = (
    _query("container", "The container to stream logs of; optional with one container."),
    _query("follow", "Follow the log stream.", "boolean"),
    _query("insecureSkipTLSVerifyBackend", "Skip verifying the kubelet's serving certificate.", "boolean"),
    _query("limitBytes", "The most bytes of log to return.", "integer"),
    _query("previous", "The logs of the previous, terminated container.", "boolean"),
    _query("sinceSeconds", "Only logs newer than this many seconds.", "integer"),
    _query("stream", "Which stream: All, Stdout or Stderr."),
    _query("tailLines", "Only this many lines from the end of the log.", "integer"),
    _query("timestamps", "Prefix every line with an RFC 3339 timestamp.", "boolean"),
)
EXEC_PARAMS = (
    _query("command", "The command to run, one argument per parameter."),
    _query("container", "The container to run it in."),
    _query("stderr", "Redirect standard error.", "boolean"),
    _query("stdin", "Redirect standard input.", "boolean"),
    _query("stdout", "Redirect standard output.", "boolean"),
    _query("tty", "Allocate a terminal.", "boolean"),
)
CONNECT_PARAMS = {
    "exec": EXEC_PARAMS,
    "attach": tuple(p for p in EXEC_PARAMS if p["name"] != "command"),
    "portforward": (_query("ports", "The ports to forward.", "integer"),),
    "proxy": (_query("path", "The path to proxy to."),),
}


def group_title(group: str) -> str:
    """``rbac.authorization.k8s.io`` -> ``RbacAuthorization``; core -> ``Core``."""
    if not group:
        return "Core"
    name = group.removesuffix(".k8s.io")
    return "".join(part[:1].upper() + part[1:] for part in name.replace("-", ".").split("."))


def tag(group: str, version: str) -> str:
    title = group_title(group)
    return f"{title[:1].lower()}{title[1:]}_{version}"


def _ref(name: str | None) -> Obj:
    return {"$ref": SCHEMAS + name} if name else {"type": "object"}


def _content(schema: Obj, types: tuple[str, ...] = RESPONSE_TYPES) -> Obj:
    return {t: {"schema": schema} for t in types}


def _responses(codes: tuple[str, ...], schema: Obj, types: tuple[str, ...] = RESPONSE_TYPES) -> Obj:
    descriptions = {"200": "OK", "201": "Created", "202": "Accepted"}
    out = {code: {"description": descriptions[code], "content": _content(schema, types)} for code in codes}
    out["401"] = {"description": "Unauthorized"}
    return out


def kind_roots(res: ResourceDef, index: dict[tuple[str, str, str], str]) -> list[str]:
    """Definitions a resource's operations refer to: its kind, its list and subresources'."""
    names = [
        index.get((res.group, res.version, res.kind)),
        index.get((res.group, res.version, res.list_kind)),
    ]
    names.extend(index.get((sub.group, sub.version, sub.kind)) for sub in res.subresources)
    return [n for n in names if n]


class _PathBuilder:
    """Paths of one group-version."""

    def __init__(self, group: str, version: str, index: dict[tuple[str, str, str], str]) -> None:
        self.group = group
        self.version = version
        self.index = index
        self.prefix = f"/apis/{group}/{version}" if group else f"/api/{version}"
        self.title = group_title(group) + version[:1].upper() + version[1:]
        self.tags = [tag(group, version)]
        self.paths: dict[str, Obj] = {}

    def _schema(self, group: str, version: str, kind: str) -> Obj:
        return _ref(self.index.get((group, version, kind)))

    def _op(self, action: str, op_id: str, description: str, gvk: tuple[str, str, str], **parts: Any) -> Obj:
        op: Obj = {"tags": self.tags, "description": description, "operationId": op_id}
        op.update({k: v for k, v in parts.items() if v})
        op["x-kubernetes-action"] = action
        op["x-kubernetes-group-version-kind"] = {"group": gvk[0], "kind": gvk[2], "version": gvk[1]}
        return op

    def _path(self, url: str, path_params: list[Obj]) -> Obj:
        return self.paths.setdefault(url, {"parameters": [*path_params, PRETTY]})

    def add_resource(self, res: ResourceDef) -> None:
        verbs = set(res.verbs)
        gvk = (res.group, res.version, res.kind)
        kind_schema = self._schema(*gvk)
        list_schema = self._schema(res.group, res.version, res.list_kind)
        scoped = "Namespaced" if res.namespaced else ""
        name_param = _param("name", "path", f"name of the {res.kind}", required=True)
        ns_param = _param(
            "namespace", "path", "object name and auth scope, such as for teams and projects", required=True
        )
        base = self.prefix + (
            f"/namespaces/{{namespace}}/{res.resource}" if res.namespaced else f"/{res.resource}"
        )
        ns_params = [ns_param] if res.namespaced else []
        item_params = [name_param, *ns_params]
        suffix = f"{self.title}{scoped}{res.kind}"

        collection = self._path(base, ns_params) if verbs & {"list", "create", "deletecollection"} else None
        if collection is not None and "list" in verbs:
            collection["get"] = self._op(
                "list",
                f"list{suffix}",
                f"list or watch objects of kind {res.kind}",
                gvk,
                parameters=list(LIST_PARAMS),
                responses=_responses(("200",), list_schema, WATCH_RESPONSE_TYPES),
            )
        if collection is not None and "create" in verbs:
            collection["post"] = self._create_op(f"create{suffix}", f"create a {res.kind}", gvk, kind_schema)
        if collection is not None and "deletecollection" in verbs:
            collection["delete"] = self._op(
                "deletecollection",
                f"delete{self.title}Collection{scoped}{res.kind}",
                f"delete collection of {res.kind}",
                gvk,
                parameters=[*DELETE_PARAMS, *(p for p in LIST_PARAMS if p["name"] != "watch")],
                requestBody=self._delete_body(),
                responses=_responses(("200",), _ref(f"{META}.Status")),
            )
        if verbs & {"get", "update", "patch", "delete"}:
            item = self._path(f"{base}/{{name}}", item_params)
            self._item_ops(item, res, gvk, kind_schema, suffix, verbs)
        if "list" in verbs and res.namespaced:
            everywhere = self._path(f"{self.prefix}/{res.resource}", [])
            everywhere["get"] = self._op(
                "list",
                f"list{self.title}{res.kind}ForAllNamespaces",
                f"list or watch objects of kind {res.kind}",
                gvk,
                parameters=list(LIST_PARAMS),
                responses=_responses(("200",), list_schema, WATCH_RESPONSE_TYPES),
            )
        if "watch" in verbs:
            self._watch_paths(res, gvk, ns_params, item_params, suffix)
        for sub in res.subresources:
            self.add_subresource(res, sub, base, item_params, suffix)

    def _delete_body(self) -> Obj:
        return {"content": {"*/*": {"schema": _ref(f"{META}.DeleteOptions")}}}

    def _create_op(self, operation_id: str, summary: str, gvk: tuple[str, str, str], schema: Obj) -> Obj:
        return self._op(
            "post",
            operation_id,
            summary,
            gvk,
            parameters=[DRY_RUN, FIELD_MANAGER, FIELD_VALIDATION],
            requestBody={"content": {"*/*": {"schema": schema}}, "required": True},
            responses=_responses(("200", "201", "202"), schema),
        )

    def _read_replace_patch(
        self, path: Obj, verbs: set[str], suffix: str, what: str, gvk: tuple[str, str, str], schema: Obj
    ) -> None:
        """The get, put and patch operations of one object path (``what``: "the specified
        Pod" or "status of the specified Pod")."""
        if "get" in verbs:
            path["get"] = self._op(
                "get", f"read{suffix}", f"read {what}", gvk, responses=_responses(("200",), schema)
            )
        if "update" in verbs:
            path["put"] = self._op(
                "put",
                f"replace{suffix}",
                f"replace {what}",
                gvk,
                parameters=[DRY_RUN, FIELD_MANAGER, FIELD_VALIDATION],
                requestBody={"content": {"*/*": {"schema": schema}}, "required": True},
                responses=_responses(("200", "201"), schema),
            )
        if "patch" in verbs:
            path["patch"] = self._patch_op(f"patch{suffix}", f"partially update {what}", gvk, schema)

    def _item_ops(
        self,
        item: Obj,
        res: ResourceDef,
        gvk: tuple[str, str, str],
        schema: Obj,
        suffix: str,
        verbs: set[str],
    ) -> None:
        self._read_replace_patch(item, verbs, suffix, f"the specified {res.kind}", gvk, schema)
        if "delete" in verbs:
            item["delete"] = self._op(
                "delete",
                f"delete{suffix}",
                f"delete a {res.kind}",
                gvk,
                parameters=list(DELETE_PARAMS),
                requestBody=self._delete_body(),
                responses=_responses(("200", "202"), _ref(f"{META}.Status")),
            )

    def _patch_op(self, op_id: str, description: str, gvk: tuple[str, str, str], schema: Obj) -> Obj:
        return self._op(
            "patch",
            op_id,
            description,
            gvk,
            parameters=[DRY_RUN, FIELD_MANAGER, FIELD_VALIDATION, FORCE],
            requestBody={"content": _content(_ref(f"{META}.Patch"), PATCH_TYPES), "required": True},
            responses=_responses(("200", "201"), schema),
        )

    def _watch_paths(
        self,
        res: ResourceDef,
        gvk: tuple[str, str, str],
        ns_params: list[Obj],
        item_params: list[Obj],
        suffix: str,
    ) -> None:
        event = _ref(f"{META}.WatchEvent")
        scope = f"/namespaces/{{namespace}}/{res.resource}" if res.namespaced else f"/{res.resource}"
        watch_params = list(LIST_PARAMS)
        collection = self._path(f"{self.prefix}/watch{scope}", ns_params)
        collection["get"] = self._op(
            "watchlist",
            f"watch{suffix}List",
            f"watch changes to a list of {res.kind}",
            gvk,
            parameters=watch_params,
            responses=_responses(("200",), event, WATCH_RESPONSE_TYPES),
        )
        item = self._path(f"{self.prefix}/watch{scope}/{{name}}", item_params)
        item["get"] = self._op(
            "watch",
            f"watch{suffix}",
            f"watch changes to an object of kind {res.kind}",
            gvk,
            parameters=watch_params,
            responses=_responses(("200",), event, WATCH_RESPONSE_TYPES),
        )
        if res.namespaced:
            everywhere = self._path(f"{self.prefix}/watch/{res.resource}", [])
            everywhere["get"] = self._op(
                "watchlist",
                f"watch{self.title}{res.kind}ListForAllNamespaces",
                f"watch changes to a list of {res.kind}",
                gvk,
                parameters=watch_params,
                responses=_responses(("200",), event, WATCH_RESPONSE_TYPES),
            )

    def add_subresource(
        self, res: ResourceDef, sub: Subresource, base: str, item_params: list[Obj], suffix: str
    ) -> None:
        path = self._path(f"{base}/{{name}}/{sub.name}", item_params)
        gvk = (sub.group, sub.version, sub.kind)
        title = sub.name[:1].upper() + sub.name[1:]
        op_suffix = f"{suffix}{title}"
        if sub.name in CONNECT_SUBRESOURCES:
            params = list(CONNECT_PARAMS.get(sub.name, ()))
            text = _responses(("200",), {"type": "string"}, ("*/*",))
            for method in ("get", "post"):
                path[method] = self._op(
                    "connect",
                    f"connect{method.title()}{op_suffix}",
                    f"connect {method.upper()} requests to {sub.name} of {res.kind}",
                    gvk,
                    parameters=params,
                    responses=text,
                )
            return
        schema = self._schema(*gvk)
        if sub.name == "log":
            path["get"] = self._op(
                "get",
                f"read{op_suffix}",
                f"read log of the specified {res.kind}",
                gvk,
                parameters=list(LOG_PARAMS),
                responses=_responses(("200",), {"type": "string"}, ("text/plain",)),
            )
            return
        verbs = set(sub.verbs)
        self._read_replace_patch(path, verbs, op_suffix, f"{sub.name} of the specified {res.kind}",
                                 gvk, schema)
        if "create" in verbs:
            path["post"] = self._create_op(
                f"create{op_suffix}", f"create {sub.name} of a {res.kind}", gvk, schema
            )


def gv_paths(
    group: str, version: str, resources: list[ResourceDef], index: dict[tuple[str, str, str], str]
) -> dict[str, Obj]:
    """All paths of one group-version, sorted, with the discovery path first."""
    builder = _PathBuilder(group, version, index)
    builder.paths[builder.prefix + "/"] = {
        "get": {
            "tags": builder.tags,
            "description": "get available resources",
            "operationId": f"get{builder.title}APIResources",
            "responses": _responses(("200",), _ref(f"{META}.APIResourceList")),
        }
    }
    for res in resources:
        builder.add_resource(res)
    return dict(sorted(builder.paths.items()))
