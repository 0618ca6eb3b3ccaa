"""Label selectors and field selectors, parsed, matched and printed as upstream does.

Label selectors (``k8s.io/apimachinery/pkg/labels``): the string syntax ``a=b``, ``a==b``,
``a!=b``, ``a in (x,y)``, ``a notin (x)``, ``a``, ``!a``, ``a>1``, ``a<1``, comma-joined, with
upstream's lexer and its parse errors (``unable to parse requirement: ...``, raised as a 400
``StatusError``); metav1.LabelSelector dicts (``matchLabels`` / ``matchExpressions``); matching
(compiled into a flat tuple of checks: it runs per object on every list and watch event); and
the canonical string form (requirements sorted by key, values sorted).

Field selectors live in ``fieldselectors`` and are re-exported here (``parse_field_selector``,
``FieldSelector``, ``unsupported_field_error`` ...).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pybernetes.machinery.errors import bad_request
from pybernetes.machinery.fieldselectors import (  # noqa: F401  (re-exported)
    FieldSelector,
    escape_field_value,
    parse_field_selector,
    parse_field_selector_or_error,
    unescape_field_value,
    unsupported_field_error,
)
from pybernetes.machinery.validation import is_qualified_name, is_valid_label_value

# ---------------------------------------------------------------------------------------
# Requirements and LabelSelector
# ---------------------------------------------------------------------------------------

IN, NOT_IN, EQUALS, DOUBLE_EQUALS, NOT_EQUALS = "in", "notin", "=", "==", "!="
EXISTS, DOES_NOT_EXIST, GREATER_THAN, LESS_THAN = "exists", "!", "gt", "lt"
_BINARY_OPERATORS = (IN, NOT_IN, EQUALS, DOUBLE_EQUALS, NOT_EQUALS, GREATER_THAN, LESS_THAN)
_SUPPORTED_OPERATORS = (IN, NOT_IN, EQUALS, DOUBLE_EQUALS, NOT_EQUALS, EXISTS, DOES_NOT_EXIST,
                        GREATER_THAN, LESS_THAN)

# Compiled check kinds (small ints compare fastest).
_K_IN, _K_NOT_IN, _K_EXISTS, _K_NOT_EXISTS, _K_GT, _K_LT = range(6)


class SelectorParseError(ValueError):
    """A label selector that does not parse or validate (message as upstream's error)."""


def _go_quote(value: str) -> str:
    out = ['"']
    for ch in value:
        if ch in '"\\':
            out.append("\\" + ch)
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\t":
            out.append("\\t")
        elif ch == "\r":
            out.append("\\r")
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\x{ord(ch):02x}")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def _go_string_list(values: list[str]) -> str:
    return "[]string{" + ", ".join(_go_quote(v) for v in values) + "}"


def _parse_int64(text: str) -> int | None:
    body = text[1:] if text[:1] in "+-" else text
    if not body or not body.isascii() or not body.isdigit():
        return None
    value = int(text)
    if not -(2**63) <= value < 2**63:
        return None
    return value


class Requirement:
    """One term of a label selector: a key, an operator and its values (kept sorted)."""

    __slots__ = ("key", "operator", "values")

    def __init__(self, key: str, operator: str, values: list[str] | tuple[str, ...] = ()) -> None:
        self.key = key
        self.operator = operator
        self.values = tuple(values)

    @classmethod
    def new(cls, key: str, operator: str, values: list[str], path: str = "") -> Requirement:
        """Upstream NewRequirement: validates key, operator and values."""
        errors: list[str] = []
        key_path = f"{path}.key" if path else "key"
        values_path = f"{path}.values" if path else "values"
        messages = is_qualified_name(key)
        if messages:
            errors.append(f"{key_path}: Invalid value: {_go_quote(key)}: {'; '.join(messages)}")
        if operator in (IN, NOT_IN):
            if not values:
                errors.append(f"{values_path}: Invalid value: {_go_string_list(values)}: "
                              "for 'in', 'notin' operators, values set can't be empty")
        elif operator in (EQUALS, DOUBLE_EQUALS, NOT_EQUALS):
            if len(values) != 1:
                errors.append(f"{values_path}: Invalid value: {_go_string_list(values)}: "
                              "exact-match compatibility requires one single value")
        elif operator in (EXISTS, DOES_NOT_EXIST):
            if values:
                errors.append(f"{values_path}: Invalid value: {_go_string_list(values)}: "
                              "values set must be empty for exists and does not exist")
        elif operator in (GREATER_THAN, LESS_THAN):
            if len(values) != 1:
                errors.append(f"{values_path}: Invalid value: {_go_string_list(values)}: "
                              "for 'Gt', 'Lt' operators, exactly one value is required")
            for i, value in enumerate(values):
                if _parse_int64(value) is None:
                    errors.append(f"{values_path}[{i}]: Invalid value: {_go_quote(value)}: "
                                  "for 'Gt', 'Lt' operators, the value must be an integer")
        else:
            supported = ", ".join(_go_quote(o) for o in _SUPPORTED_OPERATORS)
            operator_path = f"{path}.operator" if path else "operator"
            errors.append(f"{operator_path}: Unsupported value: {_go_quote(operator)}: "
                          f"supported values: {supported}")
        for i, value in enumerate(values):
            messages = is_valid_label_value(value)
            if messages:
                errors.append(f"{values_path}[{i}][{key}]: Invalid value: {_go_quote(value)}: "
                              f"{'; '.join(messages)}")
        if errors:
            raise SelectorParseError(errors[0] if len(errors) == 1 else "[" + ", ".join(errors) + "]")
        return cls(key, operator, values)

    def matches(self, labels: Mapping[str, str]) -> bool:
        return _compile_one(self)(labels)

    def __str__(self) -> str:
        op = self.operator
        if op == DOES_NOT_EXIST:
            return "!" + self.key
        if op == EXISTS:
            return self.key
        values = ",".join(sorted(self.values)) if len(self.values) > 1 else "".join(self.values)
        if op in (IN, NOT_IN):
            return f"{self.key} {op} ({values})"
        symbol = {GREATER_THAN: ">", LESS_THAN: "<"}.get(op, op)
        return f"{self.key}{symbol}{values}"

    def __repr__(self) -> str:
        return f"Requirement({self.key!r}, {self.operator!r}, {list(self.values)!r})"

    def __eq__(self, other: object) -> bool:
        return (isinstance(other, Requirement) and self.key == other.key
                and self.operator == other.operator and sorted(self.values) == sorted(other.values))

    def __hash__(self) -> int:
        return hash((self.key, self.operator, tuple(sorted(self.values))))


def _compile_one(req: Requirement) -> Any:
    """A predicate for one requirement (used by Requirement.matches; selectors compile flat)."""
    sel = LabelSelector([req])
    return sel.matches


class LabelSelector:
    """A conjunction of requirements.  ``LabelSelector([])`` matches everything;
    ``LabelSelector.nothing()`` matches nothing."""

    __slots__ = ("requirements", "_nothing", "_checks", "_equal_pairs")

    def __init__(self, requirements: list[Requirement] | None = None, *, nothing: bool = False) -> None:
        reqs = list(requirements or [])
        reqs.sort(key=lambda r: r.key)  # stable, as upstream's insertion sort for small sets
        self.requirements: tuple[Requirement, ...] = tuple(reqs)
        self._nothing = nothing
        # Fast path: only equality terms -> compare label values directly.
        if all(r.operator in (EQUALS, DOUBLE_EQUALS) for r in reqs):
            self._equal_pairs: tuple[tuple[str, str], ...] | None = tuple(
                (r.key, r.values[0]) for r in reqs)
        else:
            self._equal_pairs = None
        checks = []
        for r in reqs:
            op = r.operator
            if op in (IN, EQUALS, DOUBLE_EQUALS):
                checks.append((_K_IN, r.key, frozenset(r.values), 0))
            elif op in (NOT_IN, NOT_EQUALS):
                checks.append((_K_NOT_IN, r.key, frozenset(r.values), 0))
            elif op == EXISTS:
                checks.append((_K_EXISTS, r.key, frozenset(), 0))
            elif op == DOES_NOT_EXIST:
                checks.append((_K_NOT_EXISTS, r.key, frozenset(), 0))
            else:
                bound = _parse_int64(r.values[0]) if len(r.values) == 1 else None
                kind = _K_GT if op == GREATER_THAN else _K_LT
                checks.append((kind, r.key, frozenset(), bound))
        self._checks = tuple(checks)

    @classmethod
    def everything(cls) -> LabelSelector:
        return cls([])

    @classmethod
    def nothing(cls) -> LabelSelector:
        return cls([], nothing=True)

    @property
    def empty(self) -> bool:
        """True when the selector matches everything (no requirements)."""
        return not self.requirements and not self._nothing

    @property
    def matches_nothing(self) -> bool:
        return self._nothing

    def matches(self, labels: Mapping[str, str] | None) -> bool:
        if self._nothing:
            return False
        if labels is None:
            labels = {}
        pairs = self._equal_pairs
        if pairs is not None:
            get = labels.get
            for key, value in pairs:
                if get(key) != value:
                    return False
            return True
        for kind, key, values, bound in self._checks:
            if kind == _K_IN:
                if key not in labels or labels[key] not in values:
                    return False
            elif kind == _K_NOT_IN:
                if key in labels and labels[key] in values:
                    return False
            elif kind == _K_EXISTS:
                if key not in labels:
                    return False
            elif kind == _K_NOT_EXISTS:
                if key in labels:
                    return False
            else:
                if key not in labels or bound is None:
                    return False
                actual = _parse_int64(labels[key])
                if actual is None:
                    return False
                if kind == _K_GT and not actual > bound:
                    return False
                if kind == _K_LT and not actual < bound:
                    return False
        return True

    def requires_exact(self, key: str) -> str | None:
        """The value ``key`` must equal (a single-valued =, == or in), else None."""
        for r in self.requirements:
            if r.key == key and r.operator in (EQUALS, DOUBLE_EQUALS, IN) and len(r.values) == 1:
                return r.values[0]
        return None

    def __str__(self) -> str:
        return ",".join(str(r) for r in self.requirements)

    def __repr__(self) -> str:
        if self._nothing:
            return "LabelSelector.nothing()"
        return f"LabelSelector({str(self)!r})"

    def __eq__(self, other: object) -> bool:
        return (isinstance(other, LabelSelector) and self._nothing == other._nothing
                and self.requirements == other.requirements)

    def __hash__(self) -> int:
        return hash((self._nothing, self.requirements))


# ---------------------------------------------------------------------------------------
# The lexer and parser of the label selector string syntax
# ---------------------------------------------------------------------------------------

_T_ERROR, _T_EOS, _T_CLOSE, _T_COMMA, _T_NOT, _T_DEQ, _T_EQ, _T_GT, _T_ID, _T_IN, _T_LT, \
    _T_NEQ, _T_NOTIN, _T_OPEN = range(14)

_STRING_TO_TOKEN = {
    ")": _T_CLOSE, ",": _T_COMMA, "!": _T_NOT, "==": _T_DEQ, "=": _T_EQ, ">": _T_GT,
    "in": _T_IN, "<": _T_LT, "!=": _T_NEQ, "notin": _T_NOTIN, "(": _T_OPEN,
}
_WHITESPACE = frozenset(" \t\r\n")
_SPECIAL = frozenset("=!(),><")


def _lex(text: str) -> list[tuple[int, str]]:
    """All tokens up to and including end-of-string (a NUL ends the input, as upstream)."""
    tokens: list[tuple[int, str]] = []
    n = len(text)
    pos = 0
    while True:
        while pos < n and text[pos] in _WHITESPACE:
            pos += 1
        if pos >= n or text[pos] == "\0":
            tokens.append((_T_EOS, ""))
            return tokens
        ch = text[pos]
        if ch in _SPECIAL:
            buffer = ""
            last: tuple[int, str] | None = None
            while pos < n and text[pos] in _SPECIAL:
                candidate = buffer + text[pos]
                token = _STRING_TO_TOKEN.get(candidate)
                if token is not None:
                    last = (token, candidate)
                    buffer = candidate
                    pos += 1
                elif last is not None:
                    break
                else:
                    buffer = candidate
                    pos += 1
            if last is None:
                tokens.append((_T_ERROR, f"error expected: keyword found '{buffer}'"))
            else:
                tokens.append(last)
            continue
        start = pos
        while pos < n and text[pos] not in _SPECIAL and text[pos] not in _WHITESPACE \
                and text[pos] != "\0":
            pos += 1
        word = text[start:pos]
        tokens.append((_STRING_TO_TOKEN.get(word, _T_ID), word))



class _Parser:
    __slots__ = ("tokens", "pos")

    def __init__(self, text: str) -> None:
        self.tokens = _lex(text)
        self.pos = 0

    def _peek(self, values: bool = True) -> tuple[int, str]:
        token, literal = self.tokens[self.pos]
        if values and token in (_T_IN, _T_NOTIN):
            token = _T_ID
        return token, literal

    def _next(self, values: bool = True) -> tuple[int, str]:
        token, literal = self._peek(values)
        if self.pos < len(self.tokens) - 1:
            self.pos += 1
        return token, literal

    def parse(self) -> list[Requirement]:
        requirements: list[Requirement] = []
        while True:
            token, literal = self._peek()
            if token in (_T_ID, _T_NOT):
                try:
                    requirements.append(self._requirement())
                except SelectorParseError as exc:
                    raise SelectorParseError(f"unable to parse requirement: {exc}") from None
                token, literal = self._next()
                if token == _T_EOS:
                    return requirements
                if token == _T_COMMA:
                    token2, literal2 = self._peek()
                    if token2 not in (_T_ID, _T_NOT):
                        raise SelectorParseError(f"found '{literal2}', expected: identifier after ','")
                else:
                    raise SelectorParseError(f"found '{literal}', expected: ',' or 'end of string'")
            elif token == _T_EOS:
                return requirements
            else:
                raise SelectorParseError(f"found '{literal}', expected: !, identifier, or 'end of string'")

    def _requirement(self) -> Requirement:
        operator = ""
        token, literal = self._next()
        if token == _T_NOT:
            operator = DOES_NOT_EXIST
            token, literal = self._next()
        if token != _T_ID:
            raise SelectorParseError(f"found '{literal}', expected: identifier")
        messages = is_qualified_name(literal)
        if messages:
            raise SelectorParseError(f"<nil>: Invalid value: {_go_quote(literal)}: {'; '.join(messages)}")
        key = literal
        after, _ = self._peek()
        if after in (_T_EOS, _T_COMMA):
            return Requirement.new(key, operator or EXISTS, [])
        if operator == DOES_NOT_EXIST:
            return Requirement.new(key, DOES_NOT_EXIST, [])
        token, literal = self._next(values=False)
        operator = {
            _T_IN: IN, _T_EQ: EQUALS, _T_DEQ: DOUBLE_EQUALS, _T_GT: GREATER_THAN,
            _T_LT: LESS_THAN, _T_NOTIN: NOT_IN, _T_NEQ: NOT_EQUALS,
        }.get(token, "")
        if not operator:
            raise SelectorParseError(f"found '{literal}', expected: {', '.join(_BINARY_OPERATORS)}")
        if operator in (IN, NOT_IN):
            values = self._set_values()
        else:
            values = self._exact_value()
        return Requirement.new(key, operator, sorted(values))

    def _set_values(self) -> set[str]:
        token, literal = self._next()
        if token != _T_OPEN:
            raise SelectorParseError(f"found '{literal}' expected: '('")
        token, literal = self._peek()
        if token in (_T_ID, _T_COMMA):
            values = self._identifier_list()
            closing, _ = self._next()
            if closing != _T_CLOSE:
                raise SelectorParseError(f"found '{literal}', expected: ')'")
            return values
        if token == _T_CLOSE:
            self._next()
            return {""}
        raise SelectorParseError(f"found '{literal}', expected: ',', ')' or identifier")

    def _identifier_list(self) -> set[str]:
        values: set[str] = set()
        while True:
            token, literal = self._next()
            if token == _T_ID:
                values.add(literal)
                token2, literal2 = self._peek()
                if token2 == _T_COMMA:
                    continue
                if token2 == _T_CLOSE:
                    return values
                raise SelectorParseError(f"found '{literal2}', expected: ',' or ')'")
            if token == _T_COMMA:
                if not values:
                    values.add("")
                token2, _ = self._peek()
                if token2 == _T_CLOSE:
                    values.add("")
                    return values
                if token2 == _T_COMMA:
                    self._next()
                    values.add("")
                continue
            raise SelectorParseError(f"found '{literal}', expected: ',', or identifier")

    def _exact_value(self) -> set[str]:
        token, _ = self._peek()
        if token in (_T_EOS, _T_COMMA):
            return {""}
        token, literal = self._next()
        if token == _T_ID:
            return {literal}
        raise SelectorParseError(f"found '{literal}', expected: identifier")


_parse_cache: dict[str, LabelSelector] = {}
_PARSE_CACHE_MAX = 512


def parse_label_selector_or_error(text: str) -> LabelSelector:
    """Parse the string syntax; raises ``SelectorParseError`` with upstream's message."""
    cached = _parse_cache.get(text)
    if cached is not None:
        return cached
    selector = LabelSelector(_Parser(text).parse())
    if len(_parse_cache) >= _PARSE_CACHE_MAX:
        _parse_cache.clear()
    _parse_cache[text] = selector
    return selector


def parse_label_selector(text: str) -> LabelSelector:
    """Parse the ``?labelSelector=`` syntax; a bad selector is a 400 BadRequest StatusError."""
    try:
        return parse_label_selector_or_error(text or "")
    except SelectorParseError as exc:
        raise bad_request(str(exc)) from None


_EXPRESSION_OPERATORS = {"In": IN, "NotIn": NOT_IN, "Exists": EXISTS, "DoesNotExist": DOES_NOT_EXIST}


def label_selector_from_dict(selector: Mapping[str, Any] | None, *, nil_matches_nothing: bool = False
                             ) -> LabelSelector:
    """A metav1.LabelSelector dict as a LabelSelector (upstream LabelSelectorAsSelector).

    ``{}`` (no matchLabels, no matchExpressions) matches everything.  ``None`` matches
    everything too unless ``nil_matches_nothing`` (upstream returns labels.Nothing() for a nil
    pointer; callers that keep that meaning — e.g. a PodDisruptionBudget — ask for it).
    Invalid selectors raise ``SelectorParseError`` (a ValueError).
    """
    if selector is None:
        return LabelSelector.nothing() if nil_matches_nothing else LabelSelector.everything()
    if not isinstance(selector, Mapping):
        raise SelectorParseError("label selector must be an object")
    match_labels = selector.get("matchLabels") or {}
    expressions = selector.get("matchExpressions") or []
    if not isinstance(match_labels, Mapping) or not isinstance(expressions, list):
        raise SelectorParseError("invalid label selector")
    requirements = []
    for key, value in match_labels.items():
        if not isinstance(value, str):
            raise SelectorParseError(f"invalid label value for {key!r}")
        requirements.append(Requirement.new(str(key), EQUALS, [value]))
    for expr in expressions:
        if not isinstance(expr, Mapping):
            raise SelectorParseError("invalid label selector requirement")
        op_name = expr.get("operator")
        operator = _EXPRESSION_OPERATORS.get(op_name) if isinstance(op_name, str) else None
        if operator is None:
            raise SelectorParseError(f"{_go_quote(str(op_name or ''))} is not a valid label selector operator")
        values = expr.get("values") or []
        if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
            raise SelectorParseError("label selector values must be strings")
        requirement = Requirement.new(str(expr.get("key") or ""), operator, list(values))
        requirements.append(requirement)
    return LabelSelector(requirements)


def format_label_selector(selector: Mapping[str, Any] | None) -> str:
    """Upstream FormatLabelSelector: the canonical string, ``<none>`` when empty or nil,
    ``<error>`` when invalid (used in table columns such as SELECTOR)."""
    try:
        text = str(label_selector_from_dict(selector, nil_matches_nothing=True))
    except SelectorParseError:
        return "<error>"
    return text or "<none>"


def selector_from_set(labels: Mapping[str, str]) -> LabelSelector:
    """Upstream SelectorFromSet: equality on every pair (not validated)."""
    return LabelSelector([Requirement(k, EQUALS, (v,)) for k, v in labels.items()])


def format_labels(labels: Mapping[str, Any] | None) -> str:
    """Upstream labels.FormatLabels: sorted ``k=v`` pairs joined by commas, ``<none>`` when
    nil or empty (table columns such as NODE SELECTOR and POD LABELS)."""
    if not isinstance(labels, Mapping) or not labels:
        return "<none>"
    return ",".join(f"{k}={labels[k]}" for k in sorted(labels))
