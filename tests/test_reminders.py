from __future__ import annotations

import subprocess
import sys
import uuid
from datetime import UTC, date, datetime, time, timedelta, timezone
from typing import TYPE_CHECKING

import pytest
from hypothesis import given
from hypothesis import strategies as st
from icalendar import Calendar, vRecur

from backrub.core.errors import BadInput, OutOfRange
from backrub.reminders import (
    build_calendar,
    every_for_interval,
    parse_at,
    parse_every,
)

if TYPE_CHECKING:
    from icalendar import Component

    from backrub.reminders import Every

# 09:30 in Berlin (UTC+1) on 24 November 2026 is 08:30 UTC.
NOW = datetime(2026, 11, 24, 9, 30, tzinfo=timezone(timedelta(hours=1)))
FIRST = date(2026, 12, 1)
AT = time(19, 30)
DESCRIPTION = "A gentle 20-minute back massage; warm hands, oil, and breathe slowly."


def build(
    every: Every = "weekly",
    *,
    first: date = FIRST,
    minutes: int = 20,
    description: str = DESCRIPTION,
) -> bytes:
    return build_calendar(
        every=every, first=first, at=AT, minutes=minutes, description=description, now=NOW
    )


def parsed(data: bytes) -> tuple[Calendar, Component]:
    calendar = Calendar.from_ical(data)
    events = calendar.walk("VEVENT")
    assert len(events) == 1
    return calendar, events[0]


def _rule(event: Component) -> dict[str, list[object]]:
    rule = event["RRULE"]
    assert isinstance(rule, vRecur)
    return dict(rule)


def test_the_calendar_has_every_property() -> None:
    data = build()
    calendar, event = parsed(data)

    assert calendar.name == "VCALENDAR"
    assert str(calendar["PRODID"]) == "-//backrub//backrub//EN"
    assert str(calendar["VERSION"]) == "2.0"

    uid = str(event["UID"])
    assert uid.endswith("@backrub")
    assert uuid.UUID(uid.removesuffix("@backrub")).version == 4

    stamp = event.decoded("DTSTAMP")
    assert stamp == datetime(2026, 11, 24, 8, 30, tzinfo=UTC)
    assert stamp.utcoffset() == timedelta(0)
    assert b"\r\nDTSTAMP:20261124T083000Z\r\n" in data

    start = event.decoded("DTSTART")
    assert start == datetime(2026, 12, 1, 19, 30)  # noqa: DTZ001  (floating: no zone)
    assert start.tzinfo is None
    assert b"\r\nDTSTART:20261201T193000\r\n" in data  # no TZID, no Z
    assert b"TZID" not in data
    assert b"VTIMEZONE" not in data

    assert event.decoded("DURATION") == timedelta(minutes=20)
    assert str(event["SUMMARY"]) == "Back massage (backrub)"
    assert str(event["DESCRIPTION"]) == DESCRIPTION

    alarms = event.walk("VALARM")
    assert len(alarms) == 1
    alarm = alarms[0]
    assert str(alarm["ACTION"]) == "DISPLAY"
    assert alarm.decoded("TRIGGER") == timedelta(minutes=-15)
    assert str(alarm["DESCRIPTION"])  # RFC 5545 requires one for a DISPLAY alarm


@pytest.mark.parametrize(
    ("every", "rule"),
    [
        ("weekly", {"FREQ": ["WEEKLY"], "INTERVAL": [1]}),
        ("fortnightly", {"FREQ": ["WEEKLY"], "INTERVAL": [2]}),
        ("monthly", {"FREQ": ["MONTHLY"]}),
    ],
)
def test_the_rule_repeats_as_asked(every: Every, rule: dict[str, list[object]]) -> None:
    _, event = parsed(build(every))
    assert _rule(event) == rule


def test_monthly_from_the_31st_falls_on_the_last_day_of_shorter_months() -> None:
    _, event = parsed(build("monthly", first=date(2027, 1, 31)))
    assert _rule(event) == {"FREQ": ["MONTHLY"], "BYMONTHDAY": [-1]}
    assert event.decoded("DTSTART") == datetime(2027, 1, 31, 19, 30)  # noqa: DTZ001


def test_lines_are_crlf_and_folded_at_75_octets() -> None:
    data = build(description="Breathe in slowly for 4, and out for 6. " * 10)
    assert data.endswith(b"END:VCALENDAR\r\n")
    lines = data.split(b"\r\n")[:-1]
    assert all(len(line) <= 75 for line in lines)
    assert b"\n" not in data.replace(b"\r\n", b"")


def test_each_calendar_has_its_own_uid() -> None:
    assert parsed(build())[1]["UID"] != parsed(build())[1]["UID"]


# icalendar reads a backslash before a capital N as a line break (how some calendars write one),
# so that one pair cannot come back as it went; backrub's descriptions are its own words.
@given(
    st.text(alphabet=st.characters(exclude_categories=("Cs", "Cc")), max_size=300).filter(
        lambda text: "\\N" not in text
    )
)
def test_any_description_comes_back_unchanged(description: str) -> None:
    _, event = parsed(build(description=description))
    assert str(event["DESCRIPTION"]) == description


@pytest.mark.parametrize("minutes", [15, 60])
def test_minutes_at_the_bounds_are_fine(minutes: int) -> None:
    assert parsed(build(minutes=minutes))[1].decoded("DURATION") == timedelta(minutes=minutes)


@pytest.mark.parametrize("minutes", [0, 14, 61, 120])
def test_minutes_out_of_range_are_refused(minutes: int) -> None:
    with pytest.raises(OutOfRange) as err:
        build(minutes=minutes)
    assert err.value.message == f"minutes must be 15 to 60 (got {minutes})."


def test_a_naive_now_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        build_calendar(
            every="weekly",
            first=FIRST,
            at=AT,
            minutes=20,
            description=DESCRIPTION,
            now=datetime(2026, 11, 24, 9, 30),  # noqa: DTZ001
        )


# ---- parsing the flags ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("19:30", time(19, 30)),
        ("7:05", time(7, 5)),
        ("07:05", time(7, 5)),
        ("00:00", time(0, 0)),
        ("23:59", time(23, 59)),
        (" 19:30 ", time(19, 30)),
    ],
)
def test_parse_at_accepts_times_of_day(text: str, expected: time) -> None:
    assert parse_at(text) == expected


@pytest.mark.parametrize(
    "text", ["25:00", "24:00", "12:60", "7pm", "1930", "7:5", "", ":30", "19:30:00", "٣:٣٠"]
)
def test_parse_at_refuses_anything_else_in_one_sentence(text: str) -> None:
    with pytest.raises(BadInput) as err:
        parse_at(text)
    assert err.value.message == (
        f"--at must be a time of day as HH:MM, 00:00 to 23:59 (got {text!r})."
    )


def test_parse_at_sentence_for_25_00() -> None:
    with pytest.raises(BadInput) as err:
        parse_at("25:00")
    assert err.value.message == (
        "--at must be a time of day as HH:MM, 00:00 to 23:59 (got '25:00')."
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("weekly", "weekly"),
        ("fortnightly", "fortnightly"),
        ("monthly", "monthly"),
        ("auto", "auto"),
        ("Monthly", "monthly"),
    ],
)
def test_parse_every(text: str, expected: str) -> None:
    assert parse_every(text) == expected


@pytest.mark.parametrize("text", ["daily", "", "week", "biweekly"])
def test_parse_every_names_the_allowed_values(text: str) -> None:
    with pytest.raises(BadInput) as err:
        parse_every(text)
    assert err.value.message == (
        f"--every must be one of: weekly, fortnightly, monthly, auto (got {text!r})."
    )


@pytest.mark.parametrize(
    ("days", "every"),
    [
        (7, "weekly"),
        (10, "weekly"),
        (11, "fortnightly"),
        (14, "fortnightly"),
        (21, "fortnightly"),
        (22, "monthly"),
        (30, "monthly"),
    ],
)
def test_every_for_interval(days: int, every: str) -> None:
    assert every_for_interval(days) == every


def test_parsing_flags_does_not_import_icalendar() -> None:
    code = (
        "import sys, backrub.reminders;"
        "backrub.reminders.parse_at('19:30'); backrub.reminders.parse_every('auto');"
        "print('icalendar' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
