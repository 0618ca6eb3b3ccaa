"""Pod (anti-)affinity terms for the InterPodAffinity plugin, parsed once per pod (upstream's
framework.AffinityTerm / PodInfo terms) — pure helpers, no I/O.

- ``AffinityTerm``: the namespaces a term names, its label selector (with the owner pod's
  ``matchLabelKeys`` / ``mismatchLabelKeys`` merged in, as the 1.32 beta feature does), its
  namespace selector, topology key and weight; ``matches(pod, namespace_labels)``.
- ``PodTerms``: a pod's required and preferred affinity and anti-affinity terms, plus the
  parse errors (a category with an invalid selector keeps no terms, as upstream).
- ``TermCache``: parsed terms of pods by object identity (pods are never mutated in place:
  an update is a new dict), so the terms of existing pods are parsed once, not per cycle;
  equal terms and equal (namespace, labels) pairs are interned, so a cycle decides each
  distinct one once.
- ``update_counts``: the topology-pair counters of PreFilter (zero counts are removed).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pybernetes.machinery.selectors import (
    IN,
    NOT_IN,
    LabelSelector,
    Requirement,
    SelectorParseError,
    label_selector_from_dict,
)

Obj = dict[str, Any]
Pair = tuple[str, str]


class AffinityTerm:
    """One processed PodAffinityTerm.  ``namespaces`` is the set of namespaces named (or the
    owner's namespace when neither namespaces nor namespaceSelector is given); a pod matches
    when its namespace is named or its namespace's labels match ``namespace_selector``, and its
    labels match ``selector``."""

    __slots__ = ("namespaces", "selector", "namespace_selector", "topology_key", "weight", "_any_ns",
                 "_no_ns_selector")

    def __init__(self, namespaces: frozenset[str], selector: LabelSelector, namespace_selector: LabelSelector,
                 topology_key: str, weight: int = 0) -> None:
        self.namespaces = namespaces
        self.selector = selector
        self.namespace_selector = namespace_selector
        self.topology_key = topology_key
        self.weight = weight
        self._any_ns = namespace_selector.empty  # {}: every namespace
        self._no_ns_selector = namespace_selector.matches_nothing

    def matches(self, pod: Obj, namespace_labels: Mapping[str, str] | None) -> bool:
        meta = pod.get("metadata") or {}
        if not ((meta.get("namespace") or "") in self.namespaces or self._any_ns
                or (not self._no_ns_selector and self.namespace_selector.matches(namespace_labels))):
            return False
        return self.selector.matches(meta.get("labels") or {})

    def matches_meta(self, namespace: str | None, labels: Mapping[str, str]) -> bool:
        """``matches`` for a pod already taken apart, for a term whose namespace selector was
        merged into ``namespaces`` (an incoming pod's terms)."""
        if namespace in self.namespaces or self._any_ns:
            return self.selector.matches(labels)
        return False

    def with_namespaces(self, extra: frozenset[str]) -> AffinityTerm:
        """A copy whose namespace selector is unrolled into ``extra`` names (and then matches
        nothing), as upstream does for the incoming pod's terms."""
        return AffinityTerm(self.namespaces | extra, self.selector, LabelSelector.nothing(), self.topology_key,
                            self.weight)

    def __repr__(self) -> str:
        return (f"AffinityTerm(namespaces={sorted(self.namespaces)}, selector={self.selector!r}, "
                f"namespace_selector={self.namespace_selector!r}, topology_key={self.topology_key!r}, "
                f"weight={self.weight})")


class PodTerms:
    __slots__ = ("required_affinity", "required_anti_affinity", "preferred_affinity", "preferred_anti_affinity",
                 "errors")

    def __init__(self, required_affinity: list[AffinityTerm], required_anti_affinity: list[AffinityTerm],
                 preferred_affinity: list[AffinityTerm], preferred_anti_affinity: list[AffinityTerm],
                 errors: list[str]) -> None:
        self.required_affinity = required_affinity
        self.required_anti_affinity = required_anti_affinity
        self.preferred_affinity = preferred_affinity
        self.preferred_anti_affinity = preferred_anti_affinity
        self.errors = errors


EMPTY_TERMS = PodTerms([], [], [], [], [])


def _selector_with_label_keys(term: Obj, pod_labels: Mapping[str, str]) -> LabelSelector:
    """The term's label selector (nil matches nothing) with ``key in (value)`` for each
    matchLabelKeys and ``key notin (value)`` for each mismatchLabelKeys key the owner pod has
    (requirements already present are not repeated; a nil selector stays nil)."""
    raw = term.get("labelSelector")
    selector = label_selector_from_dict(raw, nil_matches_nothing=True)
    if raw is None:
        return selector
    extra: list[Requirement] = []
    for field_name, operator in (("matchLabelKeys", IN), ("mismatchLabelKeys", NOT_IN)):
        for key in term.get(field_name) or ():
            if key in pod_labels:
                req = Requirement(key, operator, (pod_labels[key],))
                if req not in selector.requirements and req not in extra:
                    extra.append(req)
    if not extra:
        return selector
    return LabelSelector([*selector.requirements, *extra])


def new_affinity_term(pod: Obj, term: Obj, weight: int = 0) -> AffinityTerm:
    """Raises SelectorParseError for an invalid label or namespace selector."""
    meta = pod.get("metadata") or {}
    pod_labels = meta.get("labels") or {}
    if not isinstance(term, Mapping):
        raise SelectorParseError("pod affinity term must be an object")
    selector = _selector_with_label_keys(term, pod_labels)
    raw_ns_selector = term.get("namespaceSelector")
    names = term.get("namespaces") or []
    if not names and raw_ns_selector is None:
        namespaces = frozenset((meta.get("namespace") or "",))
    else:
        namespaces = frozenset(names)
    ns_selector = label_selector_from_dict(raw_ns_selector, nil_matches_nothing=True)
    return AffinityTerm(namespaces, selector, ns_selector, str(term.get("topologyKey") or ""), weight)


def _required(pod: Obj, terms: Any, errors: list[str]) -> list[AffinityTerm]:
    out: list[AffinityTerm] = []
    try:
        for term in terms or ():
            out.append(new_affinity_term(pod, term))
    except (SelectorParseError, AttributeError, TypeError) as err:
        errors.append(str(err))
        return []
    return out


def _preferred(pod: Obj, terms: Any, errors: list[str]) -> list[AffinityTerm]:
    out: list[AffinityTerm] = []
    try:
        for weighted in terms or ():
            out.append(new_affinity_term(pod, weighted.get("podAffinityTerm") or {}, int(weighted.get("weight") or 0)))
    except (SelectorParseError, AttributeError, TypeError, ValueError) as err:
        errors.append(str(err))
        return []
    return out


def parse_pod_terms(pod: Obj) -> PodTerms:
    affinity = (pod.get("spec") or {}).get("affinity") or {}
    pod_affinity = affinity.get("podAffinity") or {}
    pod_anti = affinity.get("podAntiAffinity") or {}
    if not pod_affinity and not pod_anti:
        return EMPTY_TERMS
    errors: list[str] = []
    return PodTerms(
        _required(pod, pod_affinity.get("requiredDuringSchedulingIgnoredDuringExecution"), errors),
        _required(pod, pod_anti.get("requiredDuringSchedulingIgnoredDuringExecution"), errors),
        _preferred(pod, pod_affinity.get("preferredDuringSchedulingIgnoredDuringExecution"), errors),
        _preferred(pod, pod_anti.get("preferredDuringSchedulingIgnoredDuringExecution"), errors),
        errors)


class PodIdentity:
    """A pod's namespace and labels, interned: pods with equal ones share one object, so a
    scheduling cycle can decide a term once per distinct identity (hashed by object id)."""

    __slots__ = ("namespace", "labels")

    def __init__(self, namespace: str, labels: Mapping[str, str]) -> None:
        self.namespace = namespace
        self.labels = labels


class PodRecord:
    """What the plugin keeps per pod object: its parsed terms and its interned identity."""

    __slots__ = ("pod", "terms", "identity")

    def __init__(self, pod: Obj, terms: PodTerms, identity: PodIdentity) -> None:
        self.pod = pod
        self.terms = terms
        self.identity = identity


class TermCache:
    """Parsed terms of pods by object identity (the pod is kept, so its id cannot be reused while
    cached; pods are never changed in place, an update is a new dict).  Equal terms and equal
    (namespace, labels) are interned across pods.  Emptied when it grows past ``limit``."""

    __slots__ = ("items", "_terms", "_identities", "limit")

    def __init__(self, limit: int = 200_000) -> None:
        self.items: dict[int, PodRecord] = {}  # id(pod) -> record (check record.pod is pod)
        self._terms: dict[tuple, AffinityTerm] = {}
        self._identities: dict[tuple, PodIdentity] = {}
        self.limit = limit

    def record(self, pod: Obj) -> PodRecord:
        hit = self.items.get(id(pod))
        if hit is not None and hit.pod is pod:
            return hit
        if len(self.items) >= self.limit:
            self.items.clear()
            self._terms.clear()
            self._identities.clear()
        terms = parse_pod_terms(pod)
        if terms is not EMPTY_TERMS:
            terms = PodTerms(self._intern(terms.required_affinity), self._intern(terms.required_anti_affinity),
                             self._intern(terms.preferred_affinity), self._intern(terms.preferred_anti_affinity),
                             terms.errors)
        meta = pod.get("metadata") or {}
        labels = meta.get("labels") or {}
        key = (meta.get("namespace") or "", frozenset(labels.items()))
        identity = self._identities.get(key)
        if identity is None:
            identity = self._identities[key] = PodIdentity(key[0], dict(labels))
        rec = self.items[id(pod)] = PodRecord(pod, terms, identity)
        return rec

    def get(self, pod: Obj) -> PodTerms:
        return self.record(pod).terms

    def _intern(self, terms: list[AffinityTerm]) -> list[AffinityTerm]:
        out = []
        for term in terms:
            key = (term.namespaces, term.selector, term.namespace_selector, term.topology_key, term.weight)
            out.append(self._terms.setdefault(key, term))
        return out

    def __len__(self) -> int:
        return len(self.items)


def update_counts(counts: dict[Pair, int], node_labels: Mapping[str, str], topology_key: str, value: int) -> None:
    """Add ``value`` to the count of the node's (topology_key, its value) pair, if the node has
    the key; a count reaching zero is removed."""
    tp_value = node_labels.get(topology_key)
    if tp_value is None:
        return
    pair = (topology_key, tp_value)
    total = counts.get(pair, 0) + value
    if total:
        counts[pair] = total
    else:
        del counts[pair]


def matches_all(terms: list[AffinityTerm], pod: Obj) -> bool:
    """Whether ``pod`` matches every term (false for no terms); the terms' namespace selectors
    are merged already (nil namespace labels), as upstream's podMatchesAllAffinityTerms."""
    if not terms:
        return False
    for term in terms:
        if not term.matches(pod, None):
            return False
    return True
