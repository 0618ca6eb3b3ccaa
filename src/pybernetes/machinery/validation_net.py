"""Validation of network values with upstream's messages: IPs, CIDRs, ports, port names,
percentages and int-or-percent values.

Each ``is_*`` function returns the list of problems (``[]`` when valid), like upstream's
``k8s.io/apimachinery/pkg/util/validation``.  IPs and CIDRs are parsed "sloppily" as upstream
does (IPv4 parts with leading zeros are accepted and read as decimal); zones are refused.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Any

IP_ERROR = "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)"
CIDR_ERROR = "must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)"
PORT_RANGE_ERROR = "must be between 1 and 65535, inclusive"

_IPV4_SLOPPY = re.compile(r"[0-9]+\.[0-9]+\.[0-9]+\.[0-9]+")


def parse_ip_sloppy(value: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """The address, or None.  ``010.1.1.1`` is 10.1.1.1 (upstream's legacy parsing)."""
    if not isinstance(value, str) or not value or "%" in value or not value.isascii():
        return None
    if _IPV4_SLOPPY.fullmatch(value):
        parts = [int(p) for p in value.split(".")]
        if any(p > 255 for p in parts):
            return None
        return ipaddress.IPv4Address(".".join(str(p) for p in parts))
    if ":" not in value:
        return None
    try:
        addr = ipaddress.ip_address(value)
    except ValueError:
        return None
    return addr


def parse_cidr_sloppy(value: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network | None:
    """The network (host bits may be set, as Go's ParseCIDR allows), or None."""
    if not isinstance(value, str) or "/" not in value:
        return None
    address, _, prefix = value.partition("/")
    if not prefix.isdigit() or not prefix.isascii() or len(prefix) > 3:
        return None
    ip = parse_ip_sloppy(address)
    if ip is None:
        return None
    bits = int(prefix)
    if bits > ip.max_prefixlen:
        return None
    return ipaddress.ip_network(f"{ip}/{bits}", strict=False)


def is_valid_ip(value: Any) -> list[str]:
    return [] if parse_ip_sloppy(value) is not None else [IP_ERROR]


def is_valid_ipv4(value: Any) -> list[str]:
    ip = parse_ip_sloppy(value)
    if ip is None or ip.version != 4:
        return ["must be a valid IPv4 address"]
    return []


def is_valid_ipv6(value: Any) -> list[str]:
    ip = parse_ip_sloppy(value)
    if ip is None or ip.version != 6:
        return ["must be a valid IPv6 address"]
    return []


def is_valid_cidr(value: Any) -> list[str]:
    return [] if parse_cidr_sloppy(value) is not None else [CIDR_ERROR]


def is_valid_port_num(port: Any) -> list[str]:
    """1..65535."""
    if isinstance(port, int) and not isinstance(port, bool) and 1 <= port <= 65535:
        return []
    return [PORT_RANGE_ERROR]


def is_valid_port_num_or_zero(port: Any) -> list[str]:
    if isinstance(port, int) and not isinstance(port, bool) and 0 <= port <= 65535:
        return []
    return ["must be between 0 and 65535, inclusive"]


_port_name_charset = re.compile(r"[-a-z0-9]+").fullmatch
_port_name_letter = re.compile(r"[a-z]").search


def is_valid_port_name(port: str) -> list[str]:
    """An IANA_SVC_NAME: at most 15 characters of a-z, 0-9 and '-', at least one letter,
    no '--', no leading or trailing '-'."""
    errs: list[str] = []
    if len(port) > 15:
        errs.append("must be no more than 15 characters")
    if not _port_name_charset(port):
        errs.append("must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)")
    if not _port_name_letter(port):
        errs.append("must contain at least one letter (a-z)")
    if "--" in port:
        errs.append("must not contain consecutive hyphens (-)")
    if port and (port[0] == "-" or port[-1] == "-"):
        errs.append("must not begin or end with a hyphen (-)")
    return errs


PERCENT_FMT = "[0-9]+%"
PERCENT_ERR = "a valid percent string must be a numeric string followed by an ending '%'"
_percent = re.compile(PERCENT_FMT).fullmatch


def is_valid_percent(value: str) -> list[str]:
    if isinstance(value, str) and _percent(value):
        return []
    return [f"{PERCENT_ERR} (e.g. '1%' or '93%', regex used for validation is '{PERCENT_FMT}')"]


def is_percent_or_int(value: Any) -> list[str]:
    """An IntOrString that must be an integer or a percentage such as '25%'."""
    if isinstance(value, int) and not isinstance(value, bool):
        return []
    if isinstance(value, str) and _percent(value):
        return []
    return ["must be an integer or percentage (e.g '5%')"]


def percent_or_int_value(value: Any, total: int, round_up: bool) -> int:
    """Upstream GetScaledValueFromIntOrPercent: an int as is, 'N%' of ``total``."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and _percent(value):
        scaled = int(value[:-1]) * total
        return -(-scaled // 100) if round_up else scaled // 100
    raise ValueError(f"invalid value for IntOrString: invalid value {value!r}")
