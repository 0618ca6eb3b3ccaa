"""Cron activation times for the CronJob controller (pure; no I/O, no clock).

Owns turning a schedule into times, with robfig/cron's semantics as upstream's CronJob
controller uses them (``cron.ParseStandard`` then ``Schedule.Next``):

- ``Schedule.from_spec(schedule, time_zone)`` parses with ``pybernetes.api.batch.cron`` (the
  parser the API validates with: five fields, names, ranges, steps, lists, ``?``, the
  @yearly/@annually/@monthly/@weekly/@daily/@midnight/@hourly macros and ``@every``) and
  resolves the zone: ``spec.timeZone`` (an IANA name), else a ``TZ=`` prefix of the schedule,
  else UTC (upstream uses the controller manager's local zone; ours is UTC everywhere).
- ``Schedule.next_after(t)`` — the first activation strictly after epoch ``t`` (whole
  seconds), walking month, day, hour and minute in the schedule's zone the way robfig/cron
  does, so DST behaves as upstream: a time inside a spring-forward gap never fires (an hourly
  schedule goes 01:00 EST -> 03:00 EDT), a time repeated at fall-back fires twice (01:00 EDT
  and 01:00 EST).  None when nothing matches within five years (e.g. "0 0 30 2 *").
- ``most_recent_schedule_time(schedule, earliest, now)`` — the latest activation in
  (earliest, now] and how many were missed (counted up to ``TOO_MANY_MISSED`` + 1), which the
  controller needs because it starts only the most recent missed run.
"""

from __future__ import annotations

import calendar
import math
import zoneinfo
from dataclasses import dataclass
from datetime import datetime

from pybernetes.api.batch.cron import CronError, ParsedSchedule, load_zone, parse_schedule

__all__ = ["CronError", "Schedule", "most_recent_schedule_time", "TOO_MANY_MISSED", "format_go_rfc3339"]

TOO_MANY_MISSED = 100  # upstream starts warning (TooManyMissedTimes) above this many misses
_YEARS_AHEAD = 5  # robfig/cron gives up after five years


def _local(t: int, zone: zoneinfo.ZoneInfo) -> datetime:
    return datetime.fromtimestamp(t, zone)


def _offset_at(t: int, zone: zoneinfo.ZoneInfo) -> int:
    off = datetime.fromtimestamp(t, zone).utcoffset()
    return int(off.total_seconds()) if off is not None else 0


def go_date(year: int, month: int, day: int, hour: int, minute: int, zone: zoneinfo.ZoneInfo) -> int:
    """Go's ``time.Date`` in ``zone`` as epoch seconds: out-of-range fields normalise (day 32
    is the next month's first), and a wall time that does not exist or exists twice is
    resolved as Go resolves it (the zone in effect at the wall time read as UTC, corrected
    once when the result falls outside it)."""
    month_index = (year * 12 + month - 1)
    year, month = divmod(month_index, 12)
    month += 1
    # calendar.timegm normalises day/hour/minute overflow the way Go does.
    wall = calendar.timegm((year, month, 1, 0, 0, 0)) + (day - 1) * 86400 + hour * 3600 + minute * 60
    offset = _offset_at(wall, zone)
    utc = wall - offset
    if _offset_at(utc, zone) != offset:
        offset = _offset_at(utc, zone)
    return wall - offset


def format_go_rfc3339(t: float, zone: zoneinfo.ZoneInfo) -> str:
    """Go's RFC 3339 rendering of ``t`` in ``zone``: ``Z`` for a zero offset, else ±hh:mm."""
    local = datetime.fromtimestamp(int(t), zone)
    offset = local.utcoffset()
    seconds = int(offset.total_seconds()) if offset is not None else 0
    stamp = local.strftime("%Y-%m-%dT%H:%M:%S")
    if seconds == 0:
        return stamp + "Z"
    sign = "+" if seconds > 0 else "-"
    hours, minutes = divmod(abs(seconds) // 60, 60)
    return f"{stamp}{sign}{hours:02d}:{minutes:02d}"


@dataclass(frozen=True)
class Schedule:
    parsed: ParsedSchedule
    zone: zoneinfo.ZoneInfo

    @classmethod
    def from_spec(cls, schedule: str, time_zone: str | None = None) -> Schedule:
        """Parse ``schedule`` in ``time_zone`` (CronError when either is bad: an unknown zone
        says "unknown time zone X")."""
        if time_zone is not None:
            zone = load_zone(time_zone)
            if not schedule.startswith(("TZ=", "CRON_TZ=")):
                return cls(parse_schedule(schedule), zone)
            # upstream prefixes "TZ=<zone> " and the doubled prefix does not parse
            parse_schedule(f"TZ={time_zone} {schedule}")
        parsed = parse_schedule(schedule)
        return cls(parsed, load_zone(parsed.zone) if parsed.zone else zoneinfo.ZoneInfo("UTC"))

    # -- matching ----------------------------------------------------------------------------

    def _day_matches(self, local: datetime) -> bool:
        p = self.parsed
        dom = local.day in p.days_of_month
        dow = (local.isoweekday() % 7) in p.days_of_week
        if p.dom_star or p.dow_star:
            return dom and dow
        return dom or dow

    def next_after(self, t: float) -> int | None:
        """The first activation strictly after ``t`` (epoch seconds), or None."""
        p = self.parsed
        start = int(math.floor(t)) + 1
        if p.every is not None:
            return int(math.floor(t)) + int(p.every)
        zone = self.zone
        cur = start
        year_limit = _local(cur, zone).year + _YEARS_AHEAD
        truncated = False  # robfig's "added": a field was moved, lower fields start at zero
        while True:  # WRAP
            local = _local(cur, zone)
            if local.year > year_limit:
                return None
            wrapped = False
            while local.month not in p.months:
                if not truncated:
                    truncated = True
                    cur = go_date(local.year, local.month, 1, 0, 0, zone)
                    local = _local(cur, zone)
                cur = go_date(local.year, local.month + 1, local.day, local.hour, local.minute, zone)
                local = _local(cur, zone)
                if local.month == 1:
                    wrapped = True
                    break
            if wrapped:
                continue
            while not self._day_matches(local):
                if not truncated:
                    truncated = True
                    cur = go_date(local.year, local.month, local.day, 0, 0, zone)
                    local = _local(cur, zone)
                cur = go_date(local.year, local.month, local.day + 1, local.hour, local.minute, zone)
                local = _local(cur, zone)
                if local.hour != 0:  # a DST shift moved midnight: back to (or forward to) it
                    cur += (24 - local.hour) * 3600 if local.hour > 12 else -local.hour * 3600
                    local = _local(cur, zone)
                if local.day == 1:
                    wrapped = True
                    break
            if wrapped:
                continue
            while local.hour not in p.hours:
                if not truncated:
                    truncated = True
                    cur = go_date(local.year, local.month, local.day, local.hour, 0, zone)
                cur += 3600
                local = _local(cur, zone)
                if local.hour == 0:
                    wrapped = True
                    break
            if wrapped:
                continue
            while local.minute not in p.minutes:
                if not truncated:
                    cur -= cur % 60
                cur += 60
                local = _local(cur, zone)
                if local.minute == 0:
                    wrapped = True
                    break
            if wrapped:
                continue
            if local.second != 0:  # the standard parser's seconds field is always {0}
                cur += 60 - local.second
                continue
            return cur


def most_recent_schedule_time(schedule: Schedule, earliest: float, now: float) -> tuple[int | None, int]:
    """The latest activation in (``earliest``, ``now``] and the number of activations in that
    window (counting stops at ``TOO_MANY_MISSED`` + 1).  ``(None, 0)`` when none is due.

    CronError when the schedule never fires again or fires twice within a second (upstream:
    "time difference between two schedules is less than 1 second")."""
    first = schedule.next_after(earliest)
    if first is None:
        raise CronError("the schedule has no activation time in the next five years")
    if first > now:
        return None, 0
    second = schedule.next_after(first)
    if second is None or second > now:
        return first, 1
    if second - first < 1:
        raise CronError("time difference between two schedules is less than 1 second")
    latest, count = second, 2
    while count <= TOO_MANY_MISSED:
        following = schedule.next_after(latest)
        if following is None or following > now:
            return latest, count
        latest, count = following, count + 1
    # Too many to walk one by one: look back from now over a window that certainly holds an
    # activation (it grows until it reaches the last one walked), then walk forward from there.
    window = max(2 * (second - first), 60)
    while True:
        start = max(now - window, latest)
        candidate = schedule.next_after(start)
        if candidate is not None and candidate <= now:
            break
        if start == latest:
            return latest, count
        window *= 2
    while True:
        following = schedule.next_after(candidate)
        if following is None or following > now:
            return candidate, count
        candidate = following

