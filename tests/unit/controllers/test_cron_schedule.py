"""Cron activation times (controllers/cron_schedule.py): fields, names, steps, macros,
timeZone, DST as robfig/cron handles it, and the most recent missed time."""

from __future__ import annotations

import zoneinfo
from datetime import datetime

import pytest

from pybernetes.api.batch.cron import CronError, parse_error, parse_schedule
from pybernetes.controllers.cron_schedule import (
    TOO_MANY_MISSED,
    Schedule,
    format_go_rfc3339,
    most_recent_schedule_time,
)


def at(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()


def next_of(spec: str, start: str, zone: str | None = None) -> str | None:
    got = Schedule.from_spec(spec, zone).next_after(at(start))
    return None if got is None else format_go_rfc3339(got, zoneinfo.ZoneInfo(zone or "UTC"))


@pytest.mark.parametrize(("spec", "start", "expected"), [
    ("* * * * *", "2024-05-01T10:00:00Z", "2024-05-01T10:01:00Z"),
    ("* * * * *", "2024-05-01T10:00:30Z", "2024-05-01T10:01:00Z"),
    ("*/15 * * * *", "2012-07-09T23:46:00Z", "2012-07-10T00:00:00Z"),
    ("0/15 * * * *", "2012-07-09T14:45:00Z", "2012-07-09T15:00:00Z"),
    ("20-35/15 * * * *", "2012-07-09T23:45:00Z", "2012-07-10T00:20:00Z"),
    ("15/35 * * * *", "2012-07-09T23:35:51Z", "2012-07-09T23:50:00Z"),
    ("5,10 * * * *", "2024-05-01T10:05:00Z", "2024-05-01T10:10:00Z"),
    ("*/10 12-14 * * *", "2012-07-09T23:35:51Z", "2012-07-10T12:00:00Z"),
    ("0 0 * * sat", "2012-07-09T23:35:51Z", "2012-07-14T00:00:00Z"),
    ("0 0 * * MON-FRI", "2012-07-13T01:00:00Z", "2012-07-16T00:00:00Z"),
    ("0 0 * JAN,jul *", "2012-07-31T01:00:00Z", "2013-01-01T00:00:00Z"),
    ("0 0 ? * 0", "2012-07-09T00:00:00Z", "2012-07-15T00:00:00Z"),
    ("0 0 29 2 *", "2012-07-09T23:35:51Z", "2016-02-29T00:00:00Z"),
    # both day fields restricted: either may match
    ("0 0 1,15 * Mon", "2012-07-09T23:35:51Z", "2012-07-15T00:00:00Z"),
    ("0 0 1,15 * Mon", "2012-07-15T23:35:51Z", "2012-07-16T00:00:00Z"),
    # a star day-of-week (even */1) makes both fields required
    ("0 0 13 * *", "2012-07-09T00:00:00Z", "2012-07-13T00:00:00Z"),
    ("0 0 13 * */1", "2012-07-09T00:00:00Z", "2012-07-13T00:00:00Z"),
    ("0 0 13 * */2", "2012-07-09T00:00:00Z", "2012-07-10T00:00:00Z"),
    ("@yearly", "2012-07-09T23:35:51Z", "2013-01-01T00:00:00Z"),
    ("@annually", "2012-07-09T23:35:51Z", "2013-01-01T00:00:00Z"),
    ("@monthly", "2012-07-09T23:35:51Z", "2012-08-01T00:00:00Z"),
    ("@weekly", "2012-07-09T23:35:51Z", "2012-07-15T00:00:00Z"),
    ("@daily", "2012-07-09T23:35:51Z", "2012-07-10T00:00:00Z"),
    ("@midnight", "2012-07-09T23:35:51Z", "2012-07-10T00:00:00Z"),
    ("@hourly", "2012-07-09T23:35:51Z", "2012-07-10T00:00:00Z"),
    ("@every 90s", "2012-07-09T23:35:51Z", "2012-07-09T23:37:21Z"),
])
def test_next_activation_utc(spec: str, start: str, expected: str) -> None:
    assert next_of(spec, start) == expected


def test_never_firing_schedule_has_no_next_time() -> None:
    assert Schedule.from_spec("0 0 30 2 *").next_after(at("2024-01-01T00:00:00Z")) is None


def test_time_zone_shifts_activation() -> None:
    assert next_of("0 9 * * *", "2024-01-15T12:00:00Z", "Europe/Berlin") == "2024-01-16T09:00:00+01:00"
    assert next_of("0 9 * * *", "2024-07-15T12:00:00Z", "Europe/Berlin") == "2024-07-16T09:00:00+02:00"
    assert next_of("30 5 * * *", "2024-07-15T00:00:00Z", "Asia/Kolkata") == "2024-07-16T05:30:00+05:30"


def test_tz_prefix_parses_in_its_zone() -> None:
    # the API refuses TZ= in new schedules; old objects may still carry it
    assert next_of("TZ=Asia/Tokyo 0 9 * * *", "2024-01-15T01:00:00Z") == "2024-01-16T00:00:00Z"


@pytest.mark.parametrize(("spec", "start", "expected"), [
    # spring forward in New York: 02:xx does not exist that day
    ("30 2 11 Mar ?", "2012-03-11T00:00:00-05:00", "2013-03-11T02:30:00-04:00"),
    ("0 * * * *", "2012-03-11T00:00:00-05:00", "2012-03-11T01:00:00-05:00"),
    ("0 * * * *", "2012-03-11T01:00:00-05:00", "2012-03-11T03:00:00-04:00"),
    ("0 * * * *", "2012-03-11T03:00:00-04:00", "2012-03-11T04:00:00-04:00"),
    ("0 1 * * *", "2012-03-11T01:00:00-05:00", "2012-03-12T01:00:00-04:00"),
    ("0 2 * * *", "2012-03-11T00:00:00-05:00", "2012-03-12T02:00:00-04:00"),
    # fall back: 01:xx happens twice and fires twice
    ("30 2 04 Nov ?", "2012-11-04T00:00:00-04:00", "2012-11-04T02:30:00-05:00"),
    ("30 1 04 Nov ?", "2012-11-04T01:45:00-04:00", "2012-11-04T01:30:00-05:00"),
    ("0 * * * *", "2012-11-04T00:00:00-04:00", "2012-11-04T01:00:00-04:00"),
    ("0 * * * *", "2012-11-04T01:00:00-04:00", "2012-11-04T01:00:00-05:00"),
    ("0 * * * *", "2012-11-04T01:00:00-05:00", "2012-11-04T02:00:00-05:00"),
    ("0 1 * * *", "2012-11-04T01:00:00-04:00", "2012-11-04T01:00:00-05:00"),
    ("0 1 * * *", "2012-11-04T01:00:00-05:00", "2012-11-05T01:00:00-05:00"),
    ("0 2 * * *", "2012-11-04T00:00:00-04:00", "2012-11-04T02:00:00-05:00"),
    ("0 3 * * *", "2012-11-04T00:00:00-04:00", "2012-11-04T03:00:00-05:00"),
])
def test_dst_in_new_york(spec: str, start: str, expected: str) -> None:
    assert next_of(spec, start, "America/New_York") == expected


def test_bad_schedules_and_zones_raise() -> None:
    for bad in ("", "* * * *", "60 * * * *", "* * * * 7", "@fortnightly", "5-1 * * * *", "*/0 * * * *"):
        with pytest.raises(CronError):
            Schedule.from_spec(bad)
        assert parse_error(bad)
    with pytest.raises(CronError, match="unknown time zone"):
        Schedule.from_spec("* * * * *", "Mars/Olympus")
    with pytest.raises(CronError):
        Schedule.from_spec("TZ=UTC * * * * *", "Europe/Berlin")


def test_parsed_fields() -> None:
    parsed = parse_schedule("0-10/5 1,3 * jan-mar sun")
    assert parsed.minutes == {0, 5, 10}
    assert parsed.hours == {1, 3}
    assert parsed.months == {1, 2, 3}
    assert parsed.days_of_week == {0}
    assert parsed.dom_star and not parsed.dow_star


def test_go_rfc3339() -> None:
    assert format_go_rfc3339(at("2024-01-01T00:00:00Z"), zoneinfo.ZoneInfo("UTC")) == "2024-01-01T00:00:00Z"
    assert format_go_rfc3339(at("2024-01-01T00:00:00Z"), zoneinfo.ZoneInfo("Europe/London")) == "2024-01-01T00:00:00Z"
    assert format_go_rfc3339(at("2024-01-01T00:00:00Z"),
                             zoneinfo.ZoneInfo("America/New_York")) == "2023-12-31T19:00:00-05:00"


# -- the most recent missed time ---------------------------------------------------------------


def test_most_recent_none_before_first_activation() -> None:
    sched = Schedule.from_spec("0 * * * *")
    assert most_recent_schedule_time(sched, at("2024-01-01T10:00:00Z"), at("2024-01-01T10:59:59Z")) == (None, 0)


def test_most_recent_single_and_several_missed() -> None:
    sched = Schedule.from_spec("0 * * * *")
    start = at("2024-01-01T10:00:00Z")
    assert most_recent_schedule_time(sched, start, at("2024-01-01T11:00:00Z")) == (at("2024-01-01T11:00:00Z"), 1)
    got, missed = most_recent_schedule_time(sched, start, at("2024-01-01T15:30:00Z"))
    assert got == at("2024-01-01T15:00:00Z") and missed == 5


def test_most_recent_many_missed_is_still_the_latest() -> None:
    sched = Schedule.from_spec("*/5 * * * *")
    got, missed = most_recent_schedule_time(sched, at("2024-01-01T00:00:00Z"), at("2024-01-03T07:33:00Z"))
    assert got == at("2024-01-03T07:30:00Z")
    assert missed > TOO_MANY_MISSED


def test_most_recent_many_missed_irregular_schedule() -> None:
    # weekdays 06:30, 10:30, 14:30: the intervals differ, the answer must still be exact
    sched = Schedule.from_spec("30 6-16/4 * * 1-5")
    got, missed = most_recent_schedule_time(sched, at("2024-01-01T00:00:00Z"), at("2024-03-02T12:00:00Z"))
    assert got == at("2024-03-01T14:30:00Z")  # a Friday; Saturday has none
    assert missed > TOO_MANY_MISSED


def test_most_recent_never_firing_raises() -> None:
    with pytest.raises(CronError):
        most_recent_schedule_time(Schedule.from_spec("0 0 31 2 *"), 0.0, at("2024-01-01T00:00:00Z"))
