"""Field selectors (``?fieldSelector=``) as upstream's ``k8s.io/apimachinery/pkg/fields``.

``f=v``, ``f==v`` and ``f!=v`` terms joined by commas (sorted, as upstream sorts them); values
escape ``\\``, ``,`` and ``=`` with a backslash.  A selector matches a dict of field strings
(a missing field is the empty string); ``field_names()`` lists the fields it uses so that the
store can refuse unsupported ones (``unsupported_field_error``).  Re-exported by ``selectors``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pybernetes.machinery.errors import StatusError, bad_request


def escape_field_value(value: str) -> str:
    return value.replace("\\", "\\\\").replace(",", "\\,").replace("=", "\\=")


def unescape_field_value(value: str) -> str:
    """Upstream UnescapeValue; raises ValueError with upstream's message."""
    if "\\" not in value and "," not in value and "=" not in value:
        return value
    out = []
    escaped = False
    for ch in value:
        if escaped:
            if ch in "\\,=":
                out.append(ch)
            else:
                raise ValueError(f"invalid field selector: invalid escape sequence: \\{ch}")
            escaped = False
            continue
        if ch == "\\":
            escaped = True
        elif ch in ",=":
            raise ValueError(f"invalid field selector: unescaped character in value: {ord(ch)}")
        else:
            out.append(ch)
    if escaped:
        raise ValueError("invalid field selector: invalid escape sequence: \\")
    return "".join(out)


def _split_terms(text: str) -> list[str]:
    if not text:
        return []
    terms = []
    start = 0
    escaped = False
    for i, ch in enumerate(text):
        if escaped:
            escaped = False
        elif ch == "\\":
            escaped = True
        elif ch == ",":
            terms.append(text[start:i])
            start = i + 1
    terms.append(text[start:])
    return terms


def _split_term(term: str) -> tuple[str, str, str] | None:
    for i in range(len(term)):
        for op in ("!=", "==", "="):
            if term.startswith(op, i):
                return term[:i], op, term[i + len(op):]
    return None


class FieldSelector:
    """A conjunction of ``field=value`` / ``field!=value`` terms."""

    __slots__ = ("terms",)

    def __init__(self, terms: list[tuple[str, str, str]] | None = None) -> None:
        # each term: (field, "=" or "!=", value)
        self.terms: tuple[tuple[str, str, str], ...] = tuple(terms or ())

    @property
    def empty(self) -> bool:
        return not self.terms

    def field_names(self) -> set[str]:
        return {field for field, _, _ in self.terms}

    def matches(self, fields: Mapping[str, str]) -> bool:
        get = fields.get
        for field, op, value in self.terms:
            actual = get(field) or ""
            if (actual == value) != (op == "="):
                return False
        return True

    def requires_exact(self, field: str) -> str | None:
        """The value ``field`` must equal, if the selector says so."""
        for name, op, value in self.terms:
            if name == field and op == "=":
                return value
        return None

    def transform(self, fn: Any) -> FieldSelector:
        """A selector whose (field, value) pairs went through ``fn(field, value) -> (f, v)``
        (upstream's label conversion funcs, e.g. ``spec.host`` -> ``spec.nodeName``)."""
        out = []
        for field, op, value in self.terms:
            new_field, new_value = fn(field, value)
            out.append((new_field, op, new_value))
        return FieldSelector(out)

    def __str__(self) -> str:
        return ",".join(f"{field}{op}{escape_field_value(value)}" for field, op, value in self.terms)

    def __repr__(self) -> str:
        return f"FieldSelector({str(self)!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, FieldSelector) and self.terms == other.terms

    def __hash__(self) -> int:
        return hash(self.terms)


def parse_field_selector_or_error(text: str) -> FieldSelector:
    """Upstream fields.ParseSelector; raises ValueError with upstream's message."""
    parts = sorted(_split_terms(text or ""))
    terms = []
    for part in parts:
        if not part:
            continue
        split = _split_term(part)
        if split is None:
            raise ValueError(f"invalid selector: '{text}'; can't understand '{part}'")
        field, op, raw = split
        value = unescape_field_value(raw)
        terms.append((field, "!=" if op == "!=" else "=", value))
    return FieldSelector(terms)


def parse_field_selector(text: str) -> FieldSelector:
    """Parse ``?fieldSelector=``; a bad selector is a 400 BadRequest StatusError."""
    try:
        return parse_field_selector_or_error(text)
    except ValueError as exc:
        raise bad_request(str(exc)) from None


def unsupported_field_error(field: str) -> StatusError:
    """What the store answers for a field selector on a field the resource does not index."""
    return bad_request(f'field label not supported: {field}')
