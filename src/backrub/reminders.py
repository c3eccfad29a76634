"""Calendar reminders: a recurring back-massage event as an RFC 5545 (iCalendar) file that any
calendar app can import, so the person sets the reminder up on their own terms.

`icalendar` is imported only when a calendar is built: parsing `--at` and `--every` stays cheap
for the CLI's start-up.
"""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, time, timedelta
from typing import TYPE_CHECKING, Literal

from backrub.core.errors import BadInput, OutOfRange

if TYPE_CHECKING:
    from datetime import date

Every = Literal["weekly", "fortnightly", "monthly"]
EVERY_CHOICES: tuple[Every, ...] = ("weekly", "fortnightly", "monthly")

PRODID = "-//backrub//backrub//EN"
SUMMARY = "Back massage (backrub)"
ALARM_BEFORE = timedelta(minutes=15)
# The source guide's session length (data/guide.toml `min_minutes`, `max_minutes`).
MIN_MINUTES = 15
MAX_MINUTES = 60
# The suggestion (insights.suggest_interval, 7 to 30 days) → the nearest recurrence.
WEEKLY_UP_TO = 10
FORTNIGHTLY_UP_TO = 21

_TIME = re.compile(r"([0-9]{1,2}):([0-9]{2})")


def every_for_interval(days: int) -> Every:
    if days <= WEEKLY_UP_TO:
        return "weekly"
    if days <= FORTNIGHTLY_UP_TO:
        return "fortnightly"
    return "monthly"


def parse_at(text: str) -> time:
    """`19:30` or `7:05` → a time of day."""
    match = _TIME.fullmatch(text.strip())
    if match:
        hour, minute = int(match[1]), int(match[2])
        if hour <= 23 and minute <= 59:
            return time(hour, minute)
    raise BadInput(f"--at must be a time of day as HH:MM, 00:00 to 23:59 (got {text!r}).")


def parse_every(text: str) -> Every | Literal["auto"]:
    value = text.strip().lower()
    if value == "auto":
        return "auto"
    for every in EVERY_CHOICES:
        if value == every:
            return every
    raise BadInput(f"--every must be one of: {', '.join(EVERY_CHOICES)}, auto (got {text!r}).")


def _rrule(every: Every, first: date) -> dict[str, object]:
    if every == "weekly":
        return {"FREQ": "WEEKLY", "INTERVAL": 1}
    if every == "fortnightly":
        return {"FREQ": "WEEKLY", "INTERVAL": 2}
    if first.day == 31:
        # By RFC 5545 a plain monthly rule from the 31st skips every shorter month; "the last
        # day of the month" is the same date in long months and keeps the reminder in the rest.
        return {"FREQ": "MONTHLY", "BYMONTHDAY": -1}
    return {"FREQ": "MONTHLY"}


def build_calendar(
    *, every: Every, first: date, at: time, minutes: int, description: str, now: datetime
) -> bytes:
    """A VCALENDAR with one recurring VEVENT and a display alarm 15 minutes before it.

    The start is a floating local time (no time zone), so a calendar app shows 19:30 as 19:30
    wherever the person is. `now` (timezone-aware) is the stamp of when the file was made.
    """
    if not MIN_MINUTES <= minutes <= MAX_MINUTES:
        raise OutOfRange("minutes", minutes, MIN_MINUTES, MAX_MINUTES)
    if every not in EVERY_CHOICES:
        raise BadInput(f"every must be one of: {', '.join(EVERY_CHOICES)} (got {every!r}).")
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("now must be a timezone-aware datetime")

    from icalendar import Alarm, Calendar, Event  # imported here: see the module docstring

    alarm = Alarm()
    alarm.add("action", "DISPLAY")
    alarm.add("description", f"{SUMMARY} in 15 minutes")
    alarm.add("trigger", -ALARM_BEFORE)

    event = Event()
    event.add("uid", f"{uuid.uuid4()}@backrub")
    event.add("dtstamp", now.astimezone(UTC))
    # Naive on purpose: a floating time (RFC 5545 §3.3.5, form #1).
    event.add("dtstart", datetime.combine(first, at.replace(tzinfo=None)))
    event.add("duration", timedelta(minutes=minutes))
    event.add("summary", SUMMARY)
    event.add("description", description)
    event.add("rrule", _rrule(every, first))
    event.add_component(alarm)

    calendar = Calendar()
    calendar.add("prodid", PRODID)
    calendar.add("version", "2.0")
    calendar.add("calscale", "GREGORIAN")
    calendar.add_component(event)
    ical: bytes = calendar.to_ical()
    return ical
