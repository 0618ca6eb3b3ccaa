"""Unit tests of machinery.quantity: parsing, rounding and canonical printing as upstream."""

from __future__ import annotations

from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pybernetes.machinery.quantity import (
    BINARY_SI,
    DECIMAL_EXPONENT,
    DECIMAL_SI,
    ERR_FORMAT_WRONG,
    ERR_SUFFIX,
    QuantityError,
    canonical_quantity,
    format_quantity,
    is_valid_quantity,
    parse_quantity,
    parse_quantity_full,
    quantity_milli_value,
    quantity_value,
)

F = Fraction


@pytest.mark.parametrize(
    ("text", "value", "fmt"),
    [
        ("0", F(0), DECIMAL_SI),
        ("0Ki", F(0), BINARY_SI),
        ("1", F(1), DECIMAL_SI),
        ("1Ki", F(1024), BINARY_SI),
        ("7Mi", F(7 * 2**20), BINARY_SI),
        ("3Ei", F(3 * 2**60), BINARY_SI),
        ("5n", F(5, 10**9), DECIMAL_SI),
        ("4u", F(4, 10**6), DECIMAL_SI),
        ("3m", F(3, 1000), DECIMAL_SI),
        ("50k", F(50000), DECIMAL_SI),
        ("1E", F(10**18), DECIMAL_SI),
        ("1E-3", F(1, 1000), DECIMAL_EXPONENT),
        ("1e3", F(1000), DECIMAL_EXPONENT),
        ("1.3E+6", F(1300000), DECIMAL_EXPONENT),
        ("100.035k", F(100035), DECIMAL_SI),
        ("0.0005k", F(1, 2), DECIMAL_SI),
        ("3.001n", F(4, 10**9), DECIMAL_SI),  # rounds up to whole nanos
        ("1.1E-9", F(2, 10**9), DECIMAL_EXPONENT),
        ("0.0000000001", F(1, 10**9), DECIMAL_SI),
        ("0.00000012345", F(124, 10**9), DECIMAL_SI),
        ("9Ei", F(2**63 - 1), BINARY_SI),  # binary values are capped
        ("9223372036854775807Ki", F(2**63 - 1), BINARY_SI),
        ("12E", F(12 * 10**18), DECIMAL_SI),
        ("100.035Ki", F(10243584, 100), BINARY_SI),
        ("0.5Mi", F(2**19), BINARY_SI),
        ("0.000000000001Ki", F(2, 10**9), DECIMAL_SI),  # below 1: becomes decimal
        (".001", F(1, 1000), DECIMAL_SI),
        ("1.", F(1), DECIMAL_SI),
        ("1.G", F(10**9), DECIMAL_SI),
        ("-1.5", F(-3, 2), DECIMAL_SI),
        ("+2", F(2), DECIMAL_SI),
        (" 1 ", F(1), DECIMAL_SI),  # JSON decoding trims space
    ],
)
def test_parse(text, value, fmt):
    got, got_fmt, _ = parse_quantity_full(text)
    assert got == value and got_fmt == fmt
    assert parse_quantity(text) == value
    if value and text.strip()[0] not in "+-":
        assert parse_quantity("-" + text.strip()) == -value


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", ERR_FORMAT_WRONG),
        ("1.1.M", ERR_FORMAT_WRONG),
        ("1+1.0M", ERR_FORMAT_WRONG),
        ("aoeu", ERR_FORMAT_WRONG),
        ("0.1mi", ERR_SUFFIX),
        ("0.1am", ERR_FORMAT_WRONG),
        (".5i", ERR_SUFFIX),
        ("1i", ERR_SUFFIX),
        ("-3.01e-", ERR_SUFFIX),
        ("1 Gi", ERR_FORMAT_WRONG),
        ("1K", ERR_SUFFIX),
    ],
)
def test_parse_errors(text, message):
    with pytest.raises(QuantityError) as info:
        parse_quantity(text)
    assert str(info.value) == message
    assert not is_valid_quantity(text)


def test_error_message_is_upstreams():
    assert ERR_FORMAT_WRONG == (
        "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"
    )


def test_json_numbers_and_bad_types():
    assert parse_quantity(2) == 2
    assert parse_quantity(0.5) == F(1, 2)
    assert canonical_quantity(0.5) == "500m"
    assert canonical_quantity(1e21) == "1e+21"  # canonical already: kept as written
    for bad in [True, None, [], {}, float("nan")]:
        assert not is_valid_quantity(bad)


def test_huge_inputs_fail_cleanly():
    assert not is_valid_quantity("1e99999999")
    assert not is_valid_quantity("1" * 10000 + ".5")


@pytest.mark.parametrize(
    ("text", "canonical"),
    [
        ("1000m", "1"),
        ("1.5", "1500m"),
        ("1024Ki", "1Mi"),
        ("0.1", "100m"),
        ("1Ki", "1Ki"),
        ("1Mi", "1Mi"),
        ("1024Mi", "1Gi"),
        ("1000M", "1G"),
        (".001Ki", "1024m"),
        (".000001Ki", "1024u"),
        (".000000001Ki", "1024n"),
        (".000000000001Ki", "2n"),
        ("-1024Mi", "-1Gi"),
        ("-.001Ki", "-1024m"),
        ("0.0", "0"),
        ("-0", "0"),
        ("500m", "500m"),
        ("0.5", "500m"),
        ("1.08", "1080m"),
        ("1080000000n", "1080m"),
        ("0.001T", "1G"),
        ("307200Ki", "300Mi"),
        ("1025024Mi", "1001Gi"),
        ("5000m", "5"),
        ("1000u", "1m"),
        (".001e12", "1e9"),
        ("0.001e0", "1e-3"),
        ("1000e-12", "1e-9"),
        ("00", "0"),
        ("1000E", "1e21"),
        ("5000E", "5e21"),
        ("1.2e3", "1200"),
        ("128974848", "128974848"),
        ("129e6", "129e6"),
        ("123Mi", "123Mi"),
        ("128974848000m", "128974848"),
        ("0.5Mi", "512Ki"),
        ("100.035Ki", "102435840m"),
        # upstream keeps a text it considers canonical as it is
        ("+1Ki", "+1Ki"),
        ("01", "01"),
    ],
)
def test_canonical(text, canonical):
    assert canonical_quantity(text) == canonical
    value, fmt, _ = parse_quantity_full(text)
    assert parse_quantity(canonical) == value


@pytest.mark.parametrize(
    ("value", "fmt", "text"),
    [
        (F(2**30), BINARY_SI, "1Gi"),
        (F(300 * 2**20), BINARY_SI, "300Mi"),
        (F(5), BINARY_SI, "5"),
        (F(1, 2), BINARY_SI, "500m"),
        (F(1025), BINARY_SI, "1025"),
        (F(10**9), DECIMAL_SI, "1G"),
        (F(1080, 1000), DECIMAL_SI, "1080m"),
        (F(10**12), DECIMAL_SI, "1T"),
        (F(10**18), DECIMAL_SI, "1E"),
        (F(10**24), DECIMAL_SI, "1e24"),
        (F(1234567 * 10**6), DECIMAL_SI, "1234567M"),
        (F(1234567, 1000), BINARY_SI, "1234567m"),
        (F(10**9), DECIMAL_EXPONENT, "1e9"),
        (F(1, 1000), DECIMAL_EXPONENT, "1e-3"),
        (F(80, 1000), DECIMAL_EXPONENT, "80e-3"),
        (F(300 * 10**6), DECIMAL_EXPONENT, "300e6"),
        (F(0), DECIMAL_EXPONENT, "0"),
        (F(1, 10**9), DECIMAL_SI, "1n"),
        (F(1080, 10**9), DECIMAL_SI, "1080n"),
        (F(80, 10**6), DECIMAL_SI, "80u"),
        (F(1, 3), DECIMAL_SI, "333333334n"),  # rounded up to whole nanos
        (F(901, 100), DECIMAL_SI, "9010m"),
    ],
)
def test_format(value, fmt, text):
    assert format_quantity(value, fmt) == text
    if value:
        assert format_quantity(-value, fmt) == "-" + text


def test_format_like_a_quantity_string():
    assert format_quantity(F(2**21), "1Mi") == "2Mi"
    assert format_quantity(F(2**21), "100m") == "2097152"
    assert format_quantity(F(2000), "1e3") == "2e3"
    assert format_quantity(F(2000)) == "2k"
    assert format_quantity(3) == "3"


def test_value_helpers():
    assert quantity_value(parse_quantity("1500m")) == 2
    assert quantity_milli_value(parse_quantity("1.5")) == 1500
    assert quantity_milli_value(parse_quantity("1n")) == 1


# --------------------------------------------------------------------------- properties

_suffix = st.sampled_from(["", "n", "u", "m", "k", "M", "G", "T", "P", "E", "Ki", "Mi", "Gi", "Ti", "Pi",
                           "Ei", "e3", "e-3", "E6", "e0"])


@given(st.integers(-(10**12), 10**12), st.integers(0, 6), _suffix)
def test_round_trip_through_canonical(mantissa, decimals, suffix):
    digits = str(abs(mantissa)).rjust(decimals + 1, "0")
    number = digits[: len(digits) - decimals] + ("." + digits[len(digits) - decimals:] if decimals else "")
    text = ("-" if mantissa < 0 else "") + number + suffix
    value, fmt, _ = parse_quantity_full(text)
    canonical = canonical_quantity(text)
    again, _, keep = parse_quantity_full(canonical)
    assert again == value
    # the canonical form is a fixed point
    assert canonical_quantity(canonical) == canonical
    if fmt == BINARY_SI:
        factor = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60}[suffix]
        exact = parse_quantity(number if mantissa >= 0 else "-" + number) * factor
        # binary magnitudes are capped at 2^63-1 (the sign is kept)
        assert value == exact or (abs(exact) > 2**63 - 1 and abs(value) == 2**63 - 1)


@given(st.fractions(min_value=-(10**15), max_value=10**15, max_denominator=10**9),
       st.sampled_from([DECIMAL_SI, BINARY_SI, DECIMAL_EXPONENT]))
def test_format_then_parse_is_exact_to_the_nano(value, fmt):
    text = format_quantity(value, fmt)
    parsed = parse_quantity(text)
    assert abs(parsed - value) < F(1, 10**9)
    assert abs(parsed) >= abs(value)  # rounding is away from zero
    assert format_quantity(parsed, fmt) == text


@given(st.text(alphabet="0123456789.+-eEinumkKMGTPi ", max_size=12))
def test_random_text_never_crashes(text):
    try:
        value = parse_quantity(text)
    except QuantityError:
        return
    assert isinstance(value, Fraction)
    assert parse_quantity(canonical_quantity(text)) == value
