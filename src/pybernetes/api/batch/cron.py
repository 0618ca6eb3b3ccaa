"""Cron schedule syntax as upstream's CronJob validation parses it (robfig/cron's standard
parser): five fields (minute hour day-of-month month day-of-week) with ``*``, ``?``,
ranges, steps, lists and month/day names, or a descriptor (@yearly, @annually, @monthly,
@weekly, @daily, @midnight, @hourly, @every <duration>), optionally after ``TZ=``/``CRON_TZ=``.
``parse_error(schedule)`` returns upstream's error text, or None when the schedule is valid;
``parse_schedule(schedule)`` returns the parsed form (``ParsedSchedule``: the set of values
of each field and which day fields were a bare ``*``/``?``, the ``TZ=`` zone, or the
``@every`` delay) that the CronJob controller computes activation times from.
"""

from __future__ import annotations

import re
import zoneinfo
from dataclasses import dataclass

_MONTHS = {name: i + 1 for i, name in enumerate(
    ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"))}
_DAYS = {name: i for i, name in enumerate(("sun", "mon", "tue", "wed", "thu", "fri", "sat"))}
# (min, max, names) for minute, hour, day of month, month, day of week.
_BOUNDS = ((0, 59, None), (0, 23, None), (1, 31, None), (1, 12, _MONTHS), (0, 6, _DAYS))
_DESCRIPTORS = {"@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly"}
_DURATION_PART = re.compile(r"([0-9]*(?:\.[0-9]*)?)(ns|us|µs|μs|ms|s|m|h)")


class CronError(ValueError):
    pass


@dataclass(frozen=True)
class ParsedSchedule:
    """A parsed schedule: the allowed values of each field, and whether day-of-month and
    day-of-week were a bare ``*``/``?`` (robfig/cron's star bit: a day then matches when both
    day fields match, else when either does).  ``zone`` is a ``TZ=``/``CRON_TZ=`` prefix's
    zone name; ``every`` the delay in seconds of an ``@every`` schedule (fields then unused)."""

    minutes: frozenset[int] = frozenset()
    hours: frozenset[int] = frozenset()
    days_of_month: frozenset[int] = frozenset()
    months: frozenset[int] = frozenset()
    days_of_week: frozenset[int] = frozenset()
    dom_star: bool = False
    dow_star: bool = False
    zone: str | None = None
    every: float | None = None


def load_zone(name: str) -> zoneinfo.ZoneInfo:
    """time.LoadLocation: an IANA zone name; CronError("unknown time zone X") otherwise."""
    if name in ("", "UTC"):
        return zoneinfo.ZoneInfo("UTC")
    if name.startswith("/") or ".." in name.split("/") or "\\" in name:
        raise CronError(f"unknown time zone {name}")
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
        raise CronError(f"unknown time zone {name}") from None


def _go_duration_ok(text: str) -> bool:
    """Whether Go's time.ParseDuration accepts ``text`` (e.g. 1h30m, 90s, 1.5h)."""
    body = text[1:] if text[:1] in "+-" else text
    if body == "0":
        return True
    if not body:
        return False
    pos = 0
    while pos < len(body):
        match = _DURATION_PART.match(body, pos)
        if not match or match.group(1) in ("", "."):
            return False
        pos = match.end()
    return True


def _parse_int(expr: str) -> int:
    if not re.fullmatch(r"[+-]?[0-9]+", expr):
        raise CronError(f'failed to parse int from {expr}: strconv.Atoi: parsing "{expr}": invalid syntax')
    number = int(expr)
    if number < 0:
        raise CronError(f"negative number ({number}) not allowed: {expr}")
    return number


def _parse_int_or_name(expr: str, names: dict[str, int] | None) -> int:
    if names and expr.lower() in names:
        return names[expr.lower()]
    return _parse_int(expr)


def _check_range(expr: str, low: int, high: int, names: dict[str, int] | None) -> tuple[range, bool]:
    """The values ``expr`` allows and whether it is a star (``*``/``?`` with step 1)."""
    range_and_step = expr.split("/")
    low_and_high = range_and_step[0].split("-")
    single = len(low_and_high) == 1
    star = low_and_high[0] in ("*", "?")
    if star:
        start, end = low, high
    else:
        start = _parse_int_or_name(low_and_high[0], names)
        if len(low_and_high) == 1:
            end = start
        elif len(low_and_high) == 2:
            end = _parse_int_or_name(low_and_high[1], names)
        else:
            raise CronError(f"too many hyphens: {expr}")
    if len(range_and_step) == 1:
        step = 1
    elif len(range_and_step) == 2:
        step = _parse_int(range_and_step[1])
        if single:
            end = high
    else:
        raise CronError(f"too many slashes: {expr}")
    if start < low:
        raise CronError(f"beginning of range ({start}) below minimum ({low}): {expr}")
    if end > high:
        raise CronError(f"end of range ({end}) above maximum ({high}): {expr}")
    if start > end:
        raise CronError(f"beginning of range ({start}) beyond end of range ({end}): {expr}")
    if step == 0:
        raise CronError(f"step of range should be a positive number: {expr}")
    return range(start, end + 1, step), star and step == 1


def parse(schedule: str) -> None:
    """Raise CronError with upstream's message when ``schedule`` is not a valid schedule."""
    parse_schedule(schedule)


def _every_seconds(duration: str) -> float:
    """An ``@every`` duration in seconds, as robfig/cron keeps it: under a second becomes a
    second, else whole seconds."""
    sign = -1.0 if duration.startswith("-") else 1.0
    units = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "μs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
    total = 0.0
    for number, unit in _DURATION_PART.findall(duration.lstrip("+-")):
        total += float(number) * units[unit]
    total *= sign
    return 1.0 if total < 1.0 else float(int(total))


_DESCRIPTOR_FIELDS = {
    "@yearly": "0 0 1 1 *", "@annually": "0 0 1 1 *", "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0", "@daily": "0 0 * * *", "@midnight": "0 0 * * *", "@hourly": "0 * * * *",
}


def parse_schedule(schedule: str) -> ParsedSchedule:
    """The parsed schedule; CronError with upstream's message when it is not valid."""
    if not schedule:
        raise CronError("empty spec string")
    spec = schedule
    zone_name: str | None = None
    if spec.startswith("TZ=") or spec.startswith("CRON_TZ="):
        space, eq = spec.find(" "), spec.find("=")
        zone = spec[eq + 1:space] if space >= 0 else spec[eq + 1:]
        try:
            load_zone(zone)
        except CronError as err:
            raise CronError(f"provided bad location {zone}: {err}") from None
        zone_name = zone
        spec = spec[space:].strip() if space >= 0 else ""
    if spec.startswith("@"):
        if spec in _DESCRIPTORS:
            spec = _DESCRIPTOR_FIELDS[spec]
        elif spec.startswith("@every "):
            duration = spec[len("@every "):]
            if not _go_duration_ok(duration):
                raise CronError(f'failed to parse duration {spec}: time: invalid duration "{duration}"')
            return ParsedSchedule(zone=zone_name, every=_every_seconds(duration))
        else:
            raise CronError(f"unrecognized descriptor: {spec}")
    fields = spec.split()
    if len(fields) != 5:
        raise CronError(f"expected exactly 5 fields, found {len(fields)}: [{' '.join(fields)}]")
    values: list[frozenset[int]] = []
    stars: list[bool] = []
    for field, (low, high, names) in zip(fields, _BOUNDS, strict=True):
        allowed: set[int] = set()
        star = False
        for expr in field.split(","):
            numbers, expr_star = _check_range(expr, low, high, names)
            allowed.update(numbers)
            star = star or expr_star
        values.append(frozenset(allowed))
        stars.append(star)
    return ParsedSchedule(minutes=values[0], hours=values[1], days_of_month=values[2], months=values[3],
                          days_of_week=values[4], dom_star=stars[2], dow_star=stars[4], zone=zone_name)


def parse_error(schedule: str) -> str | None:
    try:
        parse(schedule)
    except CronError as err:
        return str(err)
    return None
