"""Resource quantities (``100m``, ``1.5``, ``512Mi``, ``1e3``), parsed and printed as upstream.

A quantity is a signed decimal number with an optional suffix: decimal SI (``n u m "" k M G
T P E``), binary SI (``Ki Mi Gi Ti Pi Ei``) or a decimal exponent (``e3``, ``E-2``).  Values
are exact ``Fraction``s, rounded up (away from zero) to 1n as upstream rounds; binary values
are capped at 2^63-1.  The *format* of a quantity is the family of its suffix
(``DecimalSI``, ``BinarySI``, ``DecimalExponent``) and decides how it is printed:

- ``format_quantity(value, like)`` prints the canonical form in the format of ``like`` (a
  format name or a quantity string): ``1.5`` -> ``1500m``, ``1024Ki`` -> ``1Mi``;
- ``canonical_quantity(text)`` is what upstream serialises for a parsed string (it keeps the
  original text when that is already canonical, exactly as upstream does).

Errors are ``QuantityError`` (a ``ValueError``) with upstream's messages.
"""

from __future__ import annotations

import math
from fractions import Fraction
from typing import Any

DECIMAL_SI = "DecimalSI"
BINARY_SI = "BinarySI"
DECIMAL_EXPONENT = "DecimalExponent"

SPLIT_RE = "^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$"
ERR_FORMAT_WRONG = f"quantities must match the regular expression '{SPLIT_RE}'"
ERR_NUMERIC = "unable to parse numeric part of quantity"
ERR_SUFFIX = "unable to parse quantity's suffix"

_DECIMAL_SUFFIXES = {"n": -9, "u": -6, "m": -3, "": 0, "k": 3, "M": 6, "G": 9, "T": 12, "P": 15, "E": 18}
_DECIMAL_BY_EXPONENT = {v: k for k, v in _DECIMAL_SUFFIXES.items()}
_BINARY_SUFFIXES = {"Ki": 10, "Mi": 20, "Gi": 30, "Ti": 40, "Pi": 50, "Ei": 60}
_BINARY_BY_EXPONENT = {v: k for k, v in _BINARY_SUFFIXES.items()}
_BINARY_BY_EXPONENT[0] = ""
_SUFFIX_CHARS = frozenset("eEinumkKMGTP")
_DIGITS = frozenset("0123456789")

NANO = Fraction(1, 10**9)
MAX_INT64 = 2**63 - 1
# Larger decimal exponents are refused: they would only build huge integers.
MAX_EXPONENT = 10_000


class QuantityError(ValueError):
    """A string that is not a quantity (message as upstream's)."""


def _split(text: str) -> tuple[bool, str, str, str]:
    """Upstream parseQuantityString: (positive, numerator, denominator, suffix)."""
    positive = True
    pos = 0
    end = len(text)
    if end and text[0] in "+-":
        positive = text[0] == "+"
        pos = 1
    while pos < end and text[pos] == "0":
        pos += 1
    if pos >= end:
        return positive, "0", "", ""
    start = pos
    while pos < end and text[pos] in _DIGITS:
        pos += 1
    num = text[start:pos] or "0"
    denom = ""
    if pos < end and text[pos] == ".":
        pos += 1
        start = pos
        while pos < end and text[pos] in _DIGITS:
            pos += 1
        denom = text[start:pos]
    suffix_start = pos
    while pos < end and text[pos] in _SUFFIX_CHARS:
        pos += 1
    if pos < end and text[pos] in "+-":
        pos += 1
    while pos < end and text[pos] in _DIGITS:
        pos += 1
    if pos < end:
        raise QuantityError(ERR_FORMAT_WRONG)
    return positive, num, denom, text[suffix_start:]


def _interpret(suffix: str) -> tuple[int, int, str]:
    """(base, exponent, format) of a suffix."""
    if suffix in _DECIMAL_SUFFIXES:
        return 10, _DECIMAL_SUFFIXES[suffix], DECIMAL_SI
    if suffix in _BINARY_SUFFIXES:
        return 2, _BINARY_SUFFIXES[suffix], BINARY_SI
    if len(suffix) > 1 and suffix[0] in "eE":
        digits = suffix[1:]
        body = digits[1:] if digits[0] in "+-" else digits
        if body and all(c in _DIGITS for c in body):
            exponent = int(digits)
            if abs(exponent) > MAX_EXPONENT:
                raise QuantityError(ERR_NUMERIC)
            return 10, exponent, DECIMAL_EXPONENT
    raise QuantityError(ERR_SUFFIX)


def _round_up_nano(value: Fraction) -> Fraction:
    """Round away from zero to a multiple of 1e-9 (upstream's inf.RoundUp at scale 9)."""
    scaled = value * 10**9
    if scaled.denominator == 1:
        return value
    magnitude = math.ceil(abs(scaled))
    return Fraction(magnitude if value > 0 else -magnitude, 10**9)


def parse_quantity_full(text: Any) -> tuple[Fraction, str, bool]:
    """(value, format, text_is_canonical).  ``text_is_canonical`` is upstream's test for
    keeping the original string when the quantity is serialised again."""
    if isinstance(text, bool):
        raise QuantityError(ERR_FORMAT_WRONG)
    if isinstance(text, int):
        text = str(text)
    elif isinstance(text, float):
        if not math.isfinite(text):
            raise QuantityError(ERR_FORMAT_WRONG)
        text = repr(text)
    elif not isinstance(text, str):
        raise QuantityError(ERR_FORMAT_WRONG)
    text = text.strip()  # as upstream's JSON decoding trims surrounding space
    if not text:
        raise QuantityError(ERR_FORMAT_WRONG)
    if text == "0":
        return Fraction(0), DECIMAL_SI, True
    positive, num, denom, suffix = _split(text)
    base, exponent, fmt = _interpret(suffix)
    sign = 1 if positive else -1
    # upstream's int64 fast path (also decides whether the text is kept as is)
    if fmt in (DECIMAL_SI, DECIMAL_EXPONENT):
        precision = 18 - (len(num) + len(denom))
        scale = exponent - len(denom)
        if precision >= 0 and scale >= -9:
            shifted = num + denom
            amount = int(shifted)
            value = sign * amount * Fraction(10) ** scale
            canonical = scale % 3 == 0 and not shifted.endswith("000") and shifted[0] != "0"
            return value, fmt, canonical
    elif not denom:
        precision = 15 - len(num) - int(exponent * 3 / 10) - 1
        if precision >= 0:
            amount = int(num)
            result = amount << exponent
            if result <= MAX_INT64:
                return Fraction(sign * result), fmt, (amount & 7) != 0
    # the general path: exact arithmetic, rounding and the binary cap
    try:
        magnitude = Fraction(int(num + denom), 10 ** len(denom))
    except ValueError:  # more digits than Python converts
        raise QuantityError(ERR_NUMERIC) from None
    magnitude = magnitude * (Fraction(10) ** exponent if base == 10 else 2**exponent)
    if magnitude:
        magnitude = _round_up_nano(magnitude)
    if fmt == BINARY_SI and magnitude > MAX_INT64:
        magnitude = Fraction(MAX_INT64)
    if fmt == BINARY_SI and 0 < magnitude < 1:
        fmt = DECIMAL_SI
    return sign * magnitude, fmt, False


def parse_quantity(text: Any) -> Fraction:
    """The value of a quantity string (ints and floats, as JSON numbers, are accepted too).
    Raises ``QuantityError`` (a ValueError) with upstream's message."""
    return parse_quantity_full(text)[0]


def is_valid_quantity(text: Any) -> bool:
    try:
        parse_quantity_full(text)
    except ValueError:
        return False
    return True


def quantity_format(like: str) -> str:
    """The format named by ``like`` (a format name or a quantity string); DecimalSI otherwise."""
    if like in (DECIMAL_SI, BINARY_SI, DECIMAL_EXPONENT):
        return like
    if not like:
        return DECIMAL_SI
    try:
        return parse_quantity_full(like)[1]
    except ValueError:
        return DECIMAL_SI


def format_quantity(value: Fraction | int, like: str = "") -> str:
    """The canonical string of ``value`` in the format of ``like`` (upstream Quantity.String):
    binary values print with the largest exact binary suffix (values below 1024 in magnitude
    or not whole print as decimal SI); decimal values print with an exponent that is a multiple
    of 3 and the smallest integer mantissa."""
    value = Fraction(value)
    if value == 0:
        return "0"
    value = _round_up_nano(value)
    fmt = quantity_format(like)
    if fmt == BINARY_SI:
        if -1024 < value < 1024 or value.denominator != 1:
            fmt = DECIMAL_SI
        else:
            amount = int(value)
            times = 0
            while abs(amount) >= 1024 and amount % 1024 == 0 and times < 6:
                amount //= 1024
                times += 1
            return f"{amount}{_BINARY_BY_EXPONENT[times * 10]}"
    scaled = value * 10**9  # an integer after rounding
    amount = scaled.numerator
    exponent = -9
    while abs(amount) >= 10 and amount % 10 == 0:
        amount //= 10
        exponent += 1
    while exponent % 3:
        amount *= 10
        exponent -= 1
    if fmt == DECIMAL_EXPONENT:
        return f"{amount}e{exponent}" if exponent else str(amount)
    suffix = _DECIMAL_BY_EXPONENT.get(exponent)
    if suffix is None:  # beyond E (10^18): exponent notation keeps the magnitude
        return f"{amount}e{exponent}"
    return f"{amount}{suffix}"


def canonical_quantity(text: Any) -> str:
    """What upstream serialises for a parsed quantity (the text itself when canonical)."""
    value, fmt, keep = parse_quantity_full(text)
    if keep:
        return str(text).strip() if not isinstance(text, float) else repr(text)
    return format_quantity(value, fmt)


def quantity_value(value: Fraction) -> int:
    """Upstream Quantity.Value(): the integer value, rounded up."""
    return math.ceil(value)


def quantity_milli_value(value: Fraction) -> int:
    """Upstream Quantity.MilliValue(): thousandths, rounded up."""
    return math.ceil(value * 1000)
