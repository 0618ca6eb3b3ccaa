"""Helpers for table cells: ages as upstream prints them, timestamps, joined lists; the AGE
column as the core/v1 tables describe it."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

from pybernetes.api.strategy import Column

# The Age column of core/v1 tables (the other groups' tables use groupcommon.AGE).
CORE_AGE = Column("Age", description="CreationTimestamp is a timestamp representing the server time when "
                  "this object was created.")


def parse_time(value: str | None) -> float | None:
    """RFC 3339 (``2024-01-02T03:04:05Z``) to epoch seconds; None when absent or bad."""
    if not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def format_time(epoch: float | None = None) -> str:
    """Epoch seconds (default now) as upstream's RFC 3339 with second precision."""
    if epoch is None:
        epoch = time.time()
    return datetime.fromtimestamp(int(epoch), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def human_duration(seconds: float) -> str:
    """Upstream's duration.HumanDuration."""
    if seconds < -1:
        return "<invalid>"
    if seconds < 0:
        return "0s"
    s = int(seconds)
    if s < 60 * 2:
        return f"{s}s"
    minutes = s // 60
    if minutes < 10:
        rest = s % 60
        return f"{minutes}m{rest}s" if rest else f"{minutes}m"
    if minutes < 60 * 3:
        return f"{minutes}m"
    hours = minutes // 60
    if hours < 8:
        rest = minutes % 60
        return f"{hours}h{rest}m" if rest else f"{hours}h"
    if hours < 48:
        return f"{hours}h"
    if hours < 24 * 8:
        rest = hours % 24
        return f"{hours // 24}d{rest}h" if rest else f"{hours // 24}d"
    if hours < 24 * 365 * 2:
        return f"{hours // 24}d"
    if hours < 24 * 365 * 8:
        days = hours // 24 - 365 * (hours // 24 // 365)
        return f"{hours // 24 // 365}y{days}d" if days else f"{hours // 24 // 365}y"
    return f"{hours // 24 // 365}y"


def since(timestamp: str | None, now: float) -> str:
    """Age of an RFC 3339 timestamp, ``<unknown>`` when absent (upstream's
    translateTimestampSince)."""
    epoch = parse_time(timestamp)
    if epoch is None:
        return "<unknown>"
    return human_duration(now - epoch)


def age(obj: dict[str, Any], now: float) -> str:
    return since((obj.get("metadata") or {}).get("creationTimestamp"), now)


def join_or_none(values: list[str], none: str = "<none>") -> str:
    return ",".join(values) if values else none
