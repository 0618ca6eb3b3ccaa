"""Node selectors as upstream's component-helpers nodeaffinity matches them: a pod's
``spec.nodeSelector`` and the nodeSelectorTerms of node affinity, parsed once and matched
against a node's labels and name.  Pure; used by the scheduler (NodeAffinity,
PodTopologySpread's nodeAffinityPolicy, VolumeBinding's PV node affinity) and by the DaemonSet
controller (which nodes a daemon pod belongs on).

Semantics, as upstream:

- ``spec.nodeSelector``: every key must be a label of the node with exactly that value.
- ``nodeSelectorTerms`` are ORed; inside a term, ``matchExpressions`` (on labels) and
  ``matchFields`` (only ``metadata.name``) are ANDed.  Operators: In, NotIn (a missing
  label satisfies NotIn), Exists, DoesNotExist, Gt, Lt (the label and the single value
  parsed as integers).  A term with neither expressions nor fields matches nothing.
- Required affinity is parsed leniently (``NodeSelector.lenient``): a term that does not
  parse is dropped and only the others can match; a selector with no terms matches nothing.
  Preferred terms and the scheduler's addedAffinity are parsed strictly
  (``NodeSelectorError`` names the problem).

Speed: ``RequiredNodeAffinity`` and ``PreferredSchedulingTerms`` match through a function
generated once per distinct selector (``compile_matcher``: one flat boolean expression over
``labels.get``), and parsed selectors are cached by content, so the pods of one workload parse
once and Filter/Score cost a fraction of a microsecond per node.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import orjson

from pybernetes.machinery.selectors import (
    DOES_NOT_EXIST,
    EXISTS,
    GREATER_THAN,
    IN,
    LESS_THAN,
    NOT_IN,
    LabelSelector,
    Requirement,
    SelectorParseError,
)

Obj = dict[str, Any]

NODE_NAME_FIELD = "metadata.name"

_OPERATORS = {"In": IN, "NotIn": NOT_IN, "Exists": EXISTS, "DoesNotExist": DOES_NOT_EXIST,
              "Gt": GREATER_THAN, "Lt": LESS_THAN}


def _int64(text: str | None) -> int | None:
    """A label value as Go's strconv.ParseInt(v, 10, 64) reads it (None when it does not)."""
    if not text:
        return None
    body = text[1:] if text[0] in "+-" else text
    if not body.isascii() or not body.isdigit():
        return None
    value = int(text)
    return value if -(2**63) <= value < 2**63 else None


def _gt(text: str | None, bound: int) -> bool:
    value = _int64(text)
    return value is not None and value > bound


def _lt(text: str | None, bound: int) -> bool:
    value = _int64(text)
    return value is not None and value < bound


_MATCHERS: dict[Any, Any] = {}
_REQUIRED_CACHE: dict[bytes, Any] = {}
_PREFERRED_CACHE: dict[bytes, Any] = {}
_MATCHERS_MAX = 1024


def compile_matcher(selector_pairs: Iterable[tuple[str, str]],
                    terms: Iterable[NodeSelectorTerm] | None) -> Any:
    """One function ``match(labels, name) -> bool`` for "every pair matches and (no terms
    given, or some term matches)", generated so Filter runs a single flat expression instead
    of walking parsed objects.  Keys and values are bound as constants of the generated
    function's namespace, never spliced into its source.  Matchers are cached by content
    (the pods of one workload share one)."""
    selector_pairs = tuple(selector_pairs)
    terms = None if terms is None else tuple(terms)
    cache_key = (selector_pairs, None if terms is None else tuple(
        (None if t.labels is None else tuple((r.key, r.operator, r.values) for r in t.labels.requirements),
         t.names_in, t.names_not_in) for t in terms))
    match = _MATCHERS.get(cache_key)
    if match is None:
        if len(_MATCHERS) >= _MATCHERS_MAX:
            _MATCHERS.clear()
        match = _MATCHERS[cache_key] = _generate(selector_pairs, terms)
    return match


def _generate(selector_pairs: tuple[tuple[str, str], ...], terms: tuple[NodeSelectorTerm, ...] | None) -> Any:
    namespace: dict[str, Any] = {"_gt": _gt, "_lt": _lt}

    def const(value: Any) -> str:
        ref = f"c{len(namespace)}"
        namespace[ref] = value
        return ref

    lines = ["def match(labels, name):", "    get = labels.get"]
    for key, value in selector_pairs:
        lines.append(f"    if get({const(key)}) != {const(value)}: return False")
    if terms is None:
        lines.append("    return True")
    else:
        for term in terms:
            checks = []
            for req in term.labels.requirements if term.labels is not None else ():
                k, op = const(req.key), req.operator
                if op == IN:
                    checks.append(f"get({k}) in {const(frozenset(req.values))}")
                elif op == NOT_IN:
                    checks.append(f"get({k}) not in {const(frozenset(req.values))}")
                elif op == EXISTS:
                    checks.append(f"{k} in labels")
                elif op == DOES_NOT_EXIST:
                    checks.append(f"{k} not in labels")
                else:
                    fn = "_gt" if op == GREATER_THAN else "_lt"
                    checks.append(f"{fn}(get({k}), {const(_int64(req.values[0]))})")
            for wanted in term.names_in:
                checks.append(f"name == {const(wanted)}")
            if term.names_not_in:
                checks.append(f"name not in {const(term.names_not_in)}")
            lines.append(f"    if {' and '.join(checks) or 'False'}: return True")
        lines.append("    return False")
    exec(compile("\n".join(lines), "<node-selector>", "exec"), namespace)  # noqa: S102 - constants only
    return namespace["match"]


class NodeSelectorError(ValueError):
    """A node selector term that does not parse (message says where and why)."""


class NodeSelectorTerm:
    """One parsed nodeSelectorTerm: label requirements ANDed with name requirements."""

    __slots__ = ("labels", "names_in", "names_not_in")

    def __init__(self, labels: LabelSelector | None, names_in: tuple[str, ...] = (),
                 names_not_in: frozenset[str] = frozenset()) -> None:
        self.labels = labels
        self.names_in = names_in  # each must equal the node's name
        self.names_not_in = names_not_in

    def matches(self, labels: dict[str, str], name: str) -> bool:
        if self.labels is not None and not self.labels.matches(labels):
            return False
        for wanted in self.names_in:
            if name != wanted:
                return False
        return not (self.names_not_in and name in self.names_not_in)


def parse_term(term: Any, path: str = "nodeSelectorTerms[0]") -> NodeSelectorTerm | None:
    """A nodeSelectorTerm dict parsed; None for an empty term (it matches nothing).
    Raises ``NodeSelectorError`` when it does not parse."""
    if not isinstance(term, dict):
        raise NodeSelectorError(f"{path}: must be an object")
    expressions = term.get("matchExpressions") or []
    fields = term.get("matchFields") or []
    if not expressions and not fields:
        return None
    labels: LabelSelector | None = None
    if expressions:
        reqs = []
        for i, expr in enumerate(expressions):
            where = f"{path}.matchExpressions[{i}]"
            if not isinstance(expr, dict):
                raise NodeSelectorError(f"{where}: must be an object")
            op = _OPERATORS.get(expr.get("operator"))  # type: ignore[arg-type]
            if op is None:
                raise NodeSelectorError(f"{where}.operator: {expr.get('operator')!r} is not a valid node "
                                        "selector operator")
            values = expr.get("values") or []
            if not isinstance(values, list):
                raise NodeSelectorError(f"{where}.values: must be a list")
            try:
                reqs.append(Requirement.new(str(expr.get("key") or ""), op, [str(v) for v in values], where))
            except SelectorParseError as exc:
                raise NodeSelectorError(str(exc)) from None
        labels = LabelSelector(reqs)
    names_in: list[str] = []
    names_not_in: list[str] = []
    for i, expr in enumerate(fields):
        where = f"{path}.matchFields[{i}]"
        if not isinstance(expr, dict):
            raise NodeSelectorError(f"{where}: must be an object")
        if expr.get("key") != NODE_NAME_FIELD:
            raise NodeSelectorError(f"{where}.key: Invalid value: {expr.get('key')!r}: not a valid field "
                                    "selector key")
        values = expr.get("values") or []
        if not isinstance(values, list) or len(values) != 1:
            raise NodeSelectorError(f"{where}.values: Required value: must have one element")
        operator = expr.get("operator")
        if operator == "In":
            names_in.append(str(values[0]))
        elif operator == "NotIn":
            names_not_in.append(str(values[0]))
        else:
            raise NodeSelectorError(f"{where}.operator: Invalid value: {operator!r}: not a valid selector "
                                    "operator")
    return NodeSelectorTerm(labels, tuple(names_in), frozenset(names_not_in))


class NodeSelector:
    """ORed terms (a v1.NodeSelector).  ``errors`` lists the terms dropped by ``lenient``."""

    __slots__ = ("terms", "errors")

    def __init__(self, terms: Iterable[NodeSelectorTerm], errors: Iterable[str] = ()) -> None:
        self.terms = tuple(terms)
        self.errors = tuple(errors)

    @classmethod
    def strict(cls, selector: Any, path: str = "nodeSelectorTerms") -> NodeSelector:
        """Parse a NodeSelector dict; raises NodeSelectorError on the first bad term."""
        terms = []
        for i, term in enumerate(_terms_of(selector)):
            parsed = parse_term(term, f"{path}[{i}]")
            if parsed is not None:
                terms.append(parsed)
        return cls(terms)

    @classmethod
    def lenient(cls, selector: Any, path: str = "nodeSelectorTerms") -> NodeSelector:
        """Parse a NodeSelector dict, dropping the terms that do not parse."""
        terms, errors = [], []
        for i, term in enumerate(_terms_of(selector)):
            try:
                parsed = parse_term(term, f"{path}[{i}]")
            except NodeSelectorError as exc:
                errors.append(str(exc))
                continue
            if parsed is not None:
                terms.append(parsed)
        return cls(terms, errors)

    def matches(self, labels: dict[str, str], name: str) -> bool:
        for term in self.terms:
            if term.matches(labels, name):
                return True
        return False

    def matches_node(self, node: Obj) -> bool:
        meta = node.get("metadata") or {}
        return self.matches(meta.get("labels") or {}, meta.get("name") or "")


def _terms_of(selector: Any) -> list[Any]:
    if not isinstance(selector, dict):
        return []
    terms = selector.get("nodeSelectorTerms") or []
    return terms if isinstance(terms, list) else []


class RequiredNodeAffinity:
    """A pod's ``spec.nodeSelector`` and required node affinity together (upstream's
    GetRequiredNodeAffinity): a node must satisfy both."""

    __slots__ = ("selector_pairs", "affinity", "matches")

    def __init__(self, node_selector: dict[str, str] | None, affinity: NodeSelector | None) -> None:
        self.selector_pairs = tuple((str(k), str(v)) for k, v in (node_selector or {}).items())
        self.affinity = affinity
        #: ``matches(labels, name) -> bool``: the node's labels and name satisfy both
        self.matches = compile_matcher(self.selector_pairs, affinity.terms if affinity is not None else None)

    @classmethod
    def of_pod(cls, pod: Obj) -> RequiredNodeAffinity:
        """Parsed (and cached by content: a workload's pods share one; it is immutable)."""
        spec = pod.get("spec") or {}
        node_selector = spec.get("nodeSelector")
        required = required_affinity_of(spec)
        try:
            cache_key = orjson.dumps([node_selector, required], option=orjson.OPT_SORT_KEYS)
        except TypeError:
            cache_key = None
        parsed = _REQUIRED_CACHE.get(cache_key) if cache_key is not None else None
        if parsed is None:
            parsed = cls(node_selector if isinstance(node_selector, dict) else None,
                         NodeSelector.lenient(required) if required is not None else None)
            if cache_key is not None:
                if len(_REQUIRED_CACHE) >= _MATCHERS_MAX:
                    _REQUIRED_CACHE.clear()
                _REQUIRED_CACHE[cache_key] = parsed
        return parsed

    def matches_node(self, node: Obj) -> bool:
        meta = node.get("metadata") or {}
        return self.matches(meta.get("labels") or {}, meta.get("name") or "")


def required_affinity_of(pod_spec: Obj) -> Any:
    """The pod's nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution (None when unset)."""
    affinity = pod_spec.get("affinity") or {}
    node_affinity = affinity.get("nodeAffinity") if isinstance(affinity, dict) else None
    if not isinstance(node_affinity, dict):
        return None
    return node_affinity.get("requiredDuringSchedulingIgnoredDuringExecution")


def preferred_affinity_of(pod_spec: Obj) -> Any:
    """The pod's nodeAffinity.preferredDuringSchedulingIgnoredDuringExecution (None when unset)."""
    affinity = pod_spec.get("affinity") or {}
    node_affinity = affinity.get("nodeAffinity") if isinstance(affinity, dict) else None
    if not isinstance(node_affinity, dict):
        return None
    return node_affinity.get("preferredDuringSchedulingIgnoredDuringExecution")


class PreferredSchedulingTerms:
    """Weighted terms (preferredDuringScheduling...): ``score`` sums the weights of the terms
    the node matches.  Terms of weight 0 and empty preferences are ignored, as upstream."""

    __slots__ = ("terms", "_compiled")

    def __init__(self, terms: Iterable[tuple[NodeSelectorTerm, int]]) -> None:
        self.terms = tuple(terms)
        self._compiled = tuple((compile_matcher((), (term,)), weight) for term, weight in self.terms)

    @classmethod
    def strict(cls, terms: Any, path: str = "preferredDuringSchedulingIgnoredDuringExecution"
               ) -> PreferredSchedulingTerms:
        """Parse a list of {weight, preference}; raises NodeSelectorError on a bad term.
        Parsed lists are cached by content (they are immutable)."""
        try:
            cache_key = orjson.dumps([path, terms], option=orjson.OPT_SORT_KEYS)
        except TypeError:
            return cls._parse(terms, path)
        cached = _PREFERRED_CACHE.get(cache_key)
        if cached is None:
            cached = cls._parse(terms, path)
            if len(_PREFERRED_CACHE) >= _MATCHERS_MAX:
                _PREFERRED_CACHE.clear()
            _PREFERRED_CACHE[cache_key] = cached
        return cached

    @classmethod
    def _parse(cls, terms: Any, path: str) -> PreferredSchedulingTerms:
        parsed: list[tuple[NodeSelectorTerm, int]] = []
        for i, item in enumerate(terms if isinstance(terms, list) else ()):
            if not isinstance(item, dict):
                raise NodeSelectorError(f"{path}[{i}]: must be an object")
            try:
                weight = int(item.get("weight") or 0)
            except (TypeError, ValueError):
                raise NodeSelectorError(f"{path}[{i}].weight: must be an integer") from None
            if weight == 0:
                continue
            term = parse_term(item.get("preference") or {}, f"{path}[{i}].preference")
            if term is not None:
                parsed.append((term, weight))
        return cls(parsed)

    def __add__(self, other: PreferredSchedulingTerms) -> PreferredSchedulingTerms:
        return PreferredSchedulingTerms(self.terms + other.terms)

    def __bool__(self) -> bool:
        return bool(self.terms)

    def score(self, labels: dict[str, str], name: str) -> int:
        total = 0
        for match, weight in self._compiled:
            if match(labels, name):
                total += weight
        return total


def match_fields_node_names(selector: Any) -> set[str] | None:
    """The node names a required node selector is limited to by ``metadata.name In`` fields
    (upstream NodeAffinity PreFilter): the union over terms of each term's intersection of its
    In-lists; None when some term has no such field (then any node may match)."""
    names: set[str] | None = None
    for term in _terms_of(selector):
        term_names: set[str] | None = None
        for expr in (term.get("matchFields") or []) if isinstance(term, dict) else ():
            if isinstance(expr, dict) and expr.get("key") == NODE_NAME_FIELD and expr.get("operator") == "In":
                values = {str(v) for v in expr.get("values") or ()}
                term_names = values if term_names is None else term_names & values
        if term_names is None:
            return None
        names = term_names if names is None else names | term_names
    return names
