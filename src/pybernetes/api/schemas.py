"""The upstream v1.32 object schemas, as data: where field validation and strategic merge
patch learn the shape of every built-in kind.

The definitions ship with the ``kubernetes-validate`` package
(``kubernetes-json-schema/v1.32.0-local/_definitions.json``, 638 JSON Schema definitions that
keep every ``x-kubernetes-*`` extension).  They are read once, on first use or from a
background thread started by ``schemas().load_in_background()``; parsing takes a few tens of
milliseconds.  Each definition is compiled on demand into a ``TypeNode`` — a struct (named
properties), a map (``additionalProperties``), a list, or a leaf (scalars, int-or-string,
quantities, and free-form objects such as RawExtension or FieldsV1 or anything marked
``x-kubernetes-preserve-unknown-fields``).  A struct node answers the ``PatchMeta`` protocol
(patch strategy and merge key of each field), and precomputed key sets make
``unknown_fields`` a walk of set differences.
"""

from __future__ import annotations

import importlib.util
import threading
from pathlib import Path
from typing import Any

import orjson

from pybernetes.machinery.errors import StatusError, bad_request
from pybernetes.machinery.patch.meta import FieldMeta, parse_strategies

SCHEMA_PACKAGE = "kubernetes_validate"
SCHEMA_FILE = "kubernetes-json-schema/v1.32.0-local/_definitions.json"

STRUCT = "struct"
MAP = "map"
LIST = "list"
LEAF = "leaf"
ANY = "any"


class TypeNode:
    """One compiled schema type.  Struct and map nodes implement ``PatchMeta``."""

    __slots__ = ("name", "kind", "fields", "children", "elem", "_patch", "_value_meta")

    def __init__(self, name: str = "") -> None:
        self.name = name
        self.kind = LEAF
        #: struct: property name -> node (all properties); map/list: unused
        self.fields: dict[str, TypeNode] = {}
        #: struct: only the properties whose node may hold unknown fields (struct/map/list)
        self.children: dict[str, TypeNode] = {}
        #: list: the element node; map: the value node
        self.elem: TypeNode | None = None
        #: struct: property name -> FieldMeta (patch strategy, merge key, sub-meta)
        self._patch: dict[str, FieldMeta] = {}
        self._value_meta: FieldMeta | None = None

    def __repr__(self) -> str:
        return f"TypeNode({self.name or self.kind!r}, {self.kind})"

    # PatchMeta protocol ------------------------------------------------------------
    def field(self, name: str) -> FieldMeta | None:
        if self.kind == STRUCT:
            return self._patch.get(name)
        if self.kind == MAP:
            return self._value_meta
        return None


def definitions_path() -> Path:
    """Where the definitions file is, found without importing kubernetes_validate (whose
    import pulls in jsonschema and costs more than reading the file)."""
    spec = importlib.util.find_spec(SCHEMA_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError(f"the {SCHEMA_PACKAGE} package (schema data) is not installed")
    return Path(next(iter(spec.submodule_search_locations))) / SCHEMA_FILE


def _ref_name(ref: str) -> str:
    return ref.rsplit("/", 1)[-1]


def _types(schema: dict[str, Any]) -> set[str]:
    declared = schema.get("type")
    if declared is None:
        return set()
    if isinstance(declared, str):
        return {declared}
    return {t for t in declared if t != "null"}


class Schemas:
    """The loaded definitions and everything derived from them."""

    def __init__(self, definitions: dict[str, dict[str, Any]] | None = None) -> None:
        self._definitions = definitions
        self._lock = threading.RLock()
        self._gvk: dict[tuple[str, str, str], str] = {}
        self._nodes: dict[str, TypeNode] = {}  # compiled or being compiled (under the lock)
        self._ready: dict[str, TypeNode] = {}  # fully compiled: safe to read without the lock
        self._loader: threading.Thread | None = None

    # loading -----------------------------------------------------------------------
    def _ensure(self) -> dict[str, dict[str, Any]]:
        definitions = self._definitions
        if definitions is not None and self._gvk:
            return definitions
        with self._lock:
            if self._definitions is None:
                document = orjson.loads(definitions_path().read_bytes())
                self._definitions = document.get("$defs") or document.get("definitions") or {}
            if not self._gvk:
                self._gvk = _gvk_index(self._definitions)
            return self._definitions

    def load_in_background(self) -> threading.Thread:
        """Start loading the definitions on a daemon thread (returns the thread)."""
        with self._lock:
            if self._loader is None:
                self._loader = threading.Thread(target=self._ensure, name="schemas-load", daemon=True)
                self._loader.start()
            return self._loader

    @property
    def loaded(self) -> bool:
        return self._definitions is not None and bool(self._gvk)

    # lookups -----------------------------------------------------------------------
    def definitions(self) -> dict[str, dict[str, Any]]:
        """All definitions by name (``io.k8s.api.core.v1.Pod``); do not mutate."""
        return self._ensure()

    def definition_name(self, group: str, version: str, kind: str) -> str | None:
        self._ensure()
        return self._gvk.get((group, version, kind))

    def node(self, name: str) -> TypeNode | None:
        """The compiled type of definition ``name`` (None when unknown)."""
        found = self._ready.get(name)
        if found is not None:
            return found
        definitions = self._ensure()
        if name not in definitions:
            return None
        with self._lock:  # another thread may be compiling: never hand out a half-built node
            node = self._compile_ref(name)
            self._ready[name] = node
            return node

    def node_for(self, group: str, version: str, kind: str) -> TypeNode | None:
        name = self.definition_name(group, version, kind)
        return self.node(name) if name else None

    def patch_meta(self, group: str, version: str, kind: str) -> TypeNode | None:
        """The strategic-merge-patch metadata of a kind (None for unknown kinds)."""
        found = self.node_for(group, version, kind)
        return found if found is not None and found.kind == STRUCT else None

    def unknown_fields(self, obj: Any, group: str, version: str, kind: str) -> list[str]:
        """Paths (``spec.containers[0].foo``) of the fields of ``obj`` its schema lacks.

        Unknown kinds have no schema: nothing is reported for them."""
        root = self.node_for(group, version, kind)
        if root is None or not isinstance(obj, dict):
            return []
        found: list[str] = []
        _walk(obj, root, "", found)
        return found

    # compilation -------------------------------------------------------------------
    def _compile_ref(self, name: str) -> TypeNode:
        existing = self._nodes.get(name)
        if existing is not None:
            return existing
        node = TypeNode(name)
        self._nodes[name] = node  # registered first: definitions may refer to themselves
        schema = self._definitions.get(name, {}) if self._definitions else {}
        self._fill(node, schema)
        return node

    def _compile(self, schema: dict[str, Any]) -> TypeNode:
        ref = schema.get("$ref")
        if isinstance(ref, str):
            return self._compile_ref(_ref_name(ref))
        node = TypeNode()
        self._fill(node, schema)
        return node

    def _fill(self, node: TypeNode, schema: dict[str, Any]) -> None:
        ref = schema.get("$ref")
        if isinstance(ref, str):
            target = self._compile_ref(_ref_name(ref))
            node.kind, node.fields, node.children = target.kind, target.fields, target.children
            node.elem, node._patch, node._value_meta = target.elem, target._patch, target._value_meta
            return
        if schema.get("x-kubernetes-preserve-unknown-fields"):
            node.kind = ANY
            return
        types = _types(schema)
        properties = schema.get("properties")
        additional = schema.get("additionalProperties")
        if isinstance(properties, dict) and properties:
            node.kind = STRUCT  # set before compiling children: they may refer back to us
            for prop, sub in properties.items():
                child = self._compile(sub)
                node.fields[prop] = child
                if child.kind in (STRUCT, MAP, LIST):
                    node.children[prop] = child
                node._patch[prop] = _field_meta(sub, child)
        elif isinstance(additional, dict):
            node.kind = MAP
            node.elem = self._compile(additional)
            node._value_meta = _field_meta(additional, node.elem)
        elif "array" in types or "items" in schema:
            node.kind = LIST
            items = schema.get("items")
            node.elem = self._compile(items) if isinstance(items, dict) else TypeNode()
        elif "object" in types or not types and "oneOf" not in schema:
            node.kind = ANY
        else:
            node.kind = LEAF


def _field_meta(schema: dict[str, Any], child: TypeNode) -> FieldMeta:
    strategies = parse_strategies(schema.get("x-kubernetes-patch-strategy"))
    merge_key = schema.get("x-kubernetes-patch-merge-key") or ""
    if child.kind == LIST:
        elem = child.elem if child.elem is not None and child.elem.kind in (STRUCT, MAP) else None
        return FieldMeta(strategies, merge_key, True, elem)
    if child.kind in (STRUCT, MAP):
        return FieldMeta(strategies, merge_key, False, child)
    return FieldMeta(strategies, merge_key, False, None)


def _gvk_index(definitions: dict[str, dict[str, Any]]) -> dict[tuple[str, str, str], str]:
    index: dict[tuple[str, str, str], str] = {}
    for name, schema in definitions.items():
        for gvk in schema.get("x-kubernetes-group-version-kind") or ():
            key = (gvk.get("group", ""), gvk.get("version", ""), gvk.get("kind", ""))
            # Several definitions may claim one GVK (e.g. shared option types); the first
            # whose name ends with the kind wins.
            if key not in index or name.endswith("." + key[2]):
                index[key] = name
    return index


def _walk(value: Any, node: TypeNode, path: str, found: list[str]) -> None:
    kind = node.kind
    if kind == STRUCT:
        if value.__class__ is not dict:
            return
        fields = node.fields
        children = node.children
        all_known = fields.keys() >= value.keys()  # one C-level set test for the usual case
        for key, item in value.items():
            child = children.get(key)
            if child is not None:
                if item.__class__ is dict or item.__class__ is list:
                    _walk(item, child, f"{path}.{key}" if path else key, found)
            elif not all_known and key not in fields:
                found.append(f"{path}.{key}" if path else key)
    elif kind == MAP:
        if value.__class__ is not dict:
            return
        elem = node.elem
        if elem is not None and elem.kind in (STRUCT, MAP, LIST):
            for key, item in value.items():
                _walk(item, elem, f"{path}.{key}" if path else key, found)
    elif kind == LIST:
        if value.__class__ is not list:
            return
        elem = node.elem
        if elem is not None and elem.kind in (STRUCT, MAP, LIST):
            for index, item in enumerate(value):
                _walk(item, elem, f"{path}[{index}]", found)


# ---------------------------------------------------------------------------------------
# strict decoding messages
# ---------------------------------------------------------------------------------------


def field_problems(unknown: list[str], duplicates: list[str] = ()) -> list[str]:  # type: ignore[assignment]
    """One line per problem, as upstream words them (also the text of Warning headers)."""
    return [f'unknown field "{p}"' for p in unknown] + [f'duplicate field "{p}"' for p in duplicates]


def strict_decoding_message(unknown: list[str], duplicates: list[str] = ()) -> str:  # type: ignore[assignment]
    """``strict decoding error: unknown field "spec.foo", duplicate field "metadata.name"``."""
    return "strict decoding error: " + ", ".join(field_problems(unknown, duplicates))


def strict_decoding_error(
    kind: str, version: str, unknown: list[str], duplicates: list[str] = ()  # type: ignore[assignment]
) -> StatusError:
    """The 400 a create or update with ``fieldValidation=Strict`` gets:
    ``Deployment in version "v1" cannot be handled as a Deployment: strict decoding error: ...``."""
    return bad_request(
        f'{kind} in version "{version}" cannot be handled as a {kind}: '
        + strict_decoding_message(unknown, duplicates)
    )


_SCHEMAS: Schemas | None = None
_SCHEMAS_LOCK = threading.Lock()


def schemas() -> Schemas:
    """The process-wide Schemas (its definitions load on first use)."""
    global _SCHEMAS
    if _SCHEMAS is None:
        with _SCHEMAS_LOCK:
            if _SCHEMAS is None:
                _SCHEMAS = Schemas()
    return _SCHEMAS
