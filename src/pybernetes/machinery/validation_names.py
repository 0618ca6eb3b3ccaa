"""Name rules with upstream's messages: DNS-1123 subdomains and labels, DNS-1035 labels,
qualified names (``prefix/name``: label keys, annotation keys, finalizers), label values, and
names that become URL path segments.

Each ``is_*`` function returns the list of problems, ``[]`` when the value is valid
(upstream's ``k8s.io/apimachinery/pkg/util/validation``).  Re-exported by ``validation``.
"""

from __future__ import annotations

import re

# ---------------------------------------------------------------------------------------
# Message builders (upstream's RegexError, MaxLenError, EmptyError)
# ---------------------------------------------------------------------------------------


def regex_error(message: str, pattern: str, *examples: str) -> str:
    if not examples:
        return f"{message} (regex used for validation is '{pattern}')"
    shown = " or ".join(f"'{e}'" for e in examples)
    return f"{message} (e.g. {shown}, regex used for validation is '{pattern}')"


def max_len_error(length: int) -> str:
    return f"must be no more than {length} characters"


def empty_error() -> str:
    return "must be non-empty"


def inclusive_range_error(lo: int, hi: int) -> str:
    return f"must be between {lo} and {hi}, inclusive"


# ---------------------------------------------------------------------------------------
# DNS names, qualified names, label values
# ---------------------------------------------------------------------------------------

DNS1123_LABEL_FMT = "[a-z0-9]([-a-z0-9]*[a-z0-9])?"
DNS1123_LABEL_ERR = (
    "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', "
    "and must start and end with an alphanumeric character"
)
DNS1123_LABEL_MAX = 63
DNS1123_SUBDOMAIN_FMT = DNS1123_LABEL_FMT + "(\\." + DNS1123_LABEL_FMT + ")*"
DNS1123_SUBDOMAIN_ERR = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or "
    "'.', and must start and end with an alphanumeric character"
)
DNS1123_SUBDOMAIN_MAX = 253
DNS1035_LABEL_FMT = "[a-z]([-a-z0-9]*[a-z0-9])?"
DNS1035_LABEL_ERR = (
    "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an "
    "alphabetic character, and end with an alphanumeric character"
)
DNS1035_LABEL_MAX = 63

QNAME_CHAR_FMT = "[A-Za-z0-9]"
QNAME_EXT_CHAR_FMT = "[-A-Za-z0-9_.]"
QUALIFIED_NAME_FMT = "(" + QNAME_CHAR_FMT + QNAME_EXT_CHAR_FMT + "*)?" + QNAME_CHAR_FMT
QUALIFIED_NAME_ERR = (
    "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an "
    "alphanumeric character"
)
QUALIFIED_NAME_MAX = 63
LABEL_VALUE_FMT = "(" + QUALIFIED_NAME_FMT + ")?"
LABEL_VALUE_ERR = (
    "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or "
    "'.', and must start and end with an alphanumeric character"
)
LABEL_VALUE_MAX = 63

# Go's regexp MatchString against ^...$ ; Python's fullmatch with ASCII classes is the same.
_dns1123_label = re.compile(DNS1123_LABEL_FMT).fullmatch
_dns1123_subdomain = re.compile(DNS1123_SUBDOMAIN_FMT).fullmatch
_dns1035_label = re.compile(DNS1035_LABEL_FMT).fullmatch
_qualified_name = re.compile(QUALIFIED_NAME_FMT).fullmatch
_label_value = re.compile(LABEL_VALUE_FMT).fullmatch


def is_dns1123_label(value: str) -> list[str]:
    """RFC 1123 label: at most 63 characters, ``[a-z0-9]([-a-z0-9]*[a-z0-9])?``."""
    errs: list[str] = []
    if len(value) > DNS1123_LABEL_MAX:
        errs.append(max_len_error(DNS1123_LABEL_MAX))
    if not _dns1123_label(value):
        if _dns1123_subdomain(value):
            # A valid subdomain that is not a label can only be so because of its dots.
            errs.append("must not contain dots")
        else:
            errs.append(regex_error(DNS1123_LABEL_ERR, DNS1123_LABEL_FMT, "my-name", "123-abc"))
    return errs


def is_dns1123_subdomain(value: str) -> list[str]:
    """RFC 1123 subdomain: at most 253 characters, dot-separated RFC 1123 labels."""
    errs: list[str] = []
    if len(value) > DNS1123_SUBDOMAIN_MAX:
        errs.append(max_len_error(DNS1123_SUBDOMAIN_MAX))
    if not _dns1123_subdomain(value):
        errs.append(regex_error(DNS1123_SUBDOMAIN_ERR, DNS1123_SUBDOMAIN_FMT, "example.com"))
    return errs


def is_dns1035_label(value: str) -> list[str]:
    """RFC 1035 label (service names): at most 63 characters, starts with a letter."""
    errs: list[str] = []
    if len(value) > DNS1035_LABEL_MAX:
        errs.append(max_len_error(DNS1035_LABEL_MAX))
    if not _dns1035_label(value):
        errs.append(regex_error(DNS1035_LABEL_ERR, DNS1035_LABEL_FMT, "my-name", "abc-123"))
    return errs


def is_qualified_name(value: str) -> list[str]:
    """A label key / annotation key / finalizer: ``[prefix/]name``, prefix a DNS subdomain."""
    errs: list[str] = []
    parts = value.split("/")
    if len(parts) == 1:
        name = parts[0]
    elif len(parts) == 2:
        prefix, name = parts
        if not prefix:
            errs.append("prefix part " + empty_error())
        else:
            errs.extend("prefix part " + m for m in is_dns1123_subdomain(prefix))
    else:
        return [
            "a qualified name "
            + regex_error(QUALIFIED_NAME_ERR, QUALIFIED_NAME_FMT, "MyName", "my.name", "123-abc")
            + " with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')"
        ]
    if not name:
        errs.append("name part " + empty_error())
    elif len(name) > QUALIFIED_NAME_MAX:
        errs.append("name part " + max_len_error(QUALIFIED_NAME_MAX))
    if not _qualified_name(name):
        errs.append(
            "name part "
            + regex_error(QUALIFIED_NAME_ERR, QUALIFIED_NAME_FMT, "MyName", "my.name", "123-abc")
        )
    return errs


def is_valid_label_value(value: str) -> list[str]:
    """A label value: empty, or a qualified name part of at most 63 characters."""
    errs: list[str] = []
    if len(value) > LABEL_VALUE_MAX:
        errs.append(max_len_error(LABEL_VALUE_MAX))
    if not _label_value(value):
        errs.append(regex_error(LABEL_VALUE_ERR, LABEL_VALUE_FMT, "MyValue", "my_value", "12345"))
    return errs


def mask_trailing_dash(name: str) -> str:
    """A generateName may end in '-': check it as if that dash were a letter."""
    if len(name) > 1 and name.endswith("-"):
        return name[:-1] + "a"
    return name


# ---------------------------------------------------------------------------------------
# Path segments (names that become URL path segments)
# ---------------------------------------------------------------------------------------

NAME_MAY_NOT_BE = (".", "..")
NAME_MAY_NOT_CONTAIN = ("/", "%")


def validate_path_segment_name(name: str, prefix: bool = False) -> list[str]:
    """Upstream ValidatePathSegmentName: not "." or "..", no "/" nor "%"."""
    if not prefix:
        for illegal in NAME_MAY_NOT_BE:
            if name == illegal:
                return [f"may not be '{illegal}'"]
    return [f"may not contain '{c}'" for c in NAME_MAY_NOT_CONTAIN if c in name]
