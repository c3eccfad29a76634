"""Insights: what a person's history of sessions says — how much tension eases, where a session
helps most, whether it is easing over time, a gentle streak, and when the next session might be.

Pure: no clock (today's date is an argument), no I/O. Sessions still "active" are ignored
everywhere. The wording is honest about evidence (low to very low quality for massage and back
pain, Cochrane 2015): "many people find", never "proven".
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from datetime import UTC, date, timedelta
from typing import TYPE_CHECKING, Literal, NamedTuple

from backrub.core.models import PlanHistory

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence
    from datetime import tzinfo

    from backrub.core.models import SessionRecord

TrendDirection = Literal["easing", "steady", "rising", "unknown"]

TREND_POINTS = 12
# A trend needs a few points before it means anything.
TREND_MIN_POINTS = 3
# The fitted change in tension-before across the trend window, in points of the 0–10 scale,
# that counts as easing or rising rather than steady.
TREND_THRESHOLD = 1.0

# The source guide's range: weekly to monthly.
WEEKLY = 7
MONTHLY = 30
# Without any tension scores, a middle suggestion.
NO_DATA_INTERVAL = 14
RECENT_SESSIONS = 3
# Tension that comes back at this level or above suggests weekly sessions; at or below LOW, monthly.
HIGH_TENSION = 6.0
LOW_TENSION = 3.0
# After a session, tension at or above this still counts as high for the planner.
STILL_HIGH_AFTER = 5

SPARK_BARS = "▁▂▃▄▅▆▇█"


class RegionEffect(NamedTuple):
    region: str
    sessions: int
    average_drop: float


class TrendPoint(NamedTuple):
    day: date
    before: int | None
    after: int | None


class Stats(NamedTuple):
    # Finished or stopped sessions (never "active" ones).
    sessions: int
    # ("2026-11", 3), oldest first; months without a session are left out.
    per_month: tuple[tuple[str, int], ...]
    # Mean of before − after over the sessions that have both.
    average_drop: float | None
    # Per focus region, the mean drop of the sessions that focused it; best first.
    regions: tuple[RegionEffect, ...]
    # The last TREND_POINTS sessions, oldest first.
    trend: tuple[TrendPoint, ...]
    # Is the tension before a session going down over time?
    trend_direction: TrendDirection
    # Consecutive ISO weeks with a session, up to this week (a week not yet over never breaks it).
    streak_weeks: int
    longest_streak_weeks: int
    interval_days: int
    next_session: date | None
    message: str


def _counted(records: Iterable[SessionRecord]) -> list[SessionRecord]:
    """Finished and stopped sessions, oldest first; the id breaks ties, so input order never
    matters."""
    return sorted((r for r in records if r.status != "active"), key=lambda r: (r.started_at, r.id))


def _day(record: SessionRecord, tz: tzinfo) -> date:
    return record.started_at.astimezone(tz).date()


def _drop(record: SessionRecord) -> int | None:
    if record.tension_before is None or record.tension_after is None:
        return None
    return record.tension_before - record.tension_after


def _round_half_up(value: float) -> int:
    # round() rounds halves to even; a person expects 18.5 → 19.
    return math.floor(value + 0.5)


def suggest_interval(records: Sequence[SessionRecord]) -> int:
    """Days until the next session: weekly when tension comes back high, up to monthly when it
    stays low, judged from the tension before the last few sessions that have it."""
    befores = [r.tension_before for r in _counted(records) if r.tension_before is not None]
    recent = befores[-RECENT_SESSIONS:]
    if not recent:
        return NO_DATA_INTERVAL
    average = sum(recent) / len(recent)
    if average >= HIGH_TENSION:
        return WEEKLY
    if average <= LOW_TENSION:
        return MONTHLY
    share = (average - LOW_TENSION) / (HIGH_TENSION - LOW_TENSION)
    days = _round_half_up(MONTHLY - share * (MONTHLY - WEEKLY))
    return min(MONTHLY, max(WEEKLY, days))


def history_for_planning(records: Sequence[SessionRecord]) -> PlanHistory:
    """What the planner should know: regions whose tension stayed high after recent sessions
    (more focus time) and regions marked tender recently (lighter pressure)."""
    counted = _counted(records)

    with_after = [r for r in counted if r.tension_after is not None][-RECENT_SESSIONS:]
    focused: Counter[str] = Counter()
    stayed_high: Counter[str] = Counter()
    for record in with_after:
        for region in {f.region for f in record.focus}:
            focused[region] += 1
            if record.tension_after is not None and record.tension_after >= STILL_HIGH_AFTER:
                stayed_high[region] += 1
    high = frozenset(
        region for region, times in focused.items() if stayed_high[region] >= min(2, times)
    )

    tender = frozenset(region for r in counted[-RECENT_SESSIONS:] for region in r.tender)
    return PlanHistory(high_regions=high, tender_regions=tender)


def sparkline(values: Sequence[int | None]) -> str:
    """One bar per value on the 0–10 scale (▁ … █); a space where there is no value."""
    bars = []
    for value in values:
        if value is None:
            bars.append(" ")
            continue
        level = min(10, max(0, value))
        bars.append(SPARK_BARS[_round_half_up(level * (len(SPARK_BARS) - 1) / 10)])
    return "".join(bars)


def compute_stats(records: Sequence[SessionRecord], *, today: date, tz: tzinfo = UTC) -> Stats:
    """Everything `backrub stats` shows. `tz` is the person's time zone: it decides which day,
    week and month a session belongs to (a session at 23:30 on Sunday stays in Sunday's week)."""
    counted = _counted(records)
    days = [_day(r, tz) for r in counted]

    months = Counter(f"{d.year:04d}-{d.month:02d}" for d in days)
    per_month = tuple(sorted(months.items()))

    drops = [d for d in (_drop(r) for r in counted) if d is not None]
    average_drop = sum(drops) / len(drops) if drops else None

    trend = tuple(
        TrendPoint(day, r.tension_before, r.tension_after)
        for day, r in zip(days[-TREND_POINTS:], counted[-TREND_POINTS:], strict=True)
    )
    direction = _direction([p.before for p in trend])

    weeks = {_week(d) for d in days}
    streak = _current_streak(weeks, _week(today))

    interval = suggest_interval(counted)
    next_session = max(days[-1] + timedelta(days=interval), today) if days else None

    return Stats(
        sessions=len(counted),
        per_month=per_month,
        average_drop=average_drop,
        regions=_region_effects(counted),
        trend=trend,
        trend_direction=direction,
        streak_weeks=streak,
        longest_streak_weeks=_longest_streak(weeks),
        interval_days=interval,
        next_session=next_session,
        message=_message(
            sessions=len(counted),
            last_day=days[-1] if days else None,
            today=today,
            streak=streak,
            direction=direction,
            average_drop=average_drop,
        ),
    )


def _region_effects(counted: Sequence[SessionRecord]) -> tuple[RegionEffect, ...]:
    drops: defaultdict[str, list[int]] = defaultdict(list)
    for record in counted:
        drop = _drop(record)
        if drop is None:
            continue
        for region in {f.region for f in record.focus}:
            drops[region].append(drop)
    effects = [
        RegionEffect(region, len(values), sum(values) / len(values))
        for region, values in drops.items()
    ]
    return tuple(sorted(effects, key=lambda e: (-e.average_drop, e.region)))


def _direction(befores: Sequence[int | None]) -> TrendDirection:
    """Least-squares slope of tension-before over the sessions in the window."""
    points = [(i, v) for i, v in enumerate(befores) if v is not None]
    if len(points) < TREND_MIN_POINTS:
        return "unknown"
    n = len(points)
    mean_x = sum(x for x, _ in points) / n
    mean_y = sum(y for _, y in points) / n
    spread = sum((x - mean_x) ** 2 for x, _ in points)
    slope = sum((x - mean_x) * (y - mean_y) for x, y in points) / spread
    change = slope * (points[-1][0] - points[0][0])
    if change <= -TREND_THRESHOLD:
        return "easing"
    if change >= TREND_THRESHOLD:
        return "rising"
    return "steady"


def _week(day: date) -> date:
    """The Monday that starts the ISO week of `day`: consecutive weeks are 7 days apart."""
    return day - timedelta(days=day.weekday())


def _current_streak(weeks: set[date], this_week: date) -> int:
    # This week is not over: without a session yet, the streak runs up to last week.
    week = this_week if this_week in weeks else this_week - timedelta(weeks=1)
    streak = 0
    while week in weeks:
        streak += 1
        week -= timedelta(weeks=1)
    return streak


def _longest_streak(weeks: set[date]) -> int:
    longest = 0
    for week in weeks:
        if week - timedelta(weeks=1) in weeks:
            continue  # not the start of a run
        length = 1
        while week + timedelta(weeks=length) in weeks:
            length += 1
        longest = max(longest, length)
    return longest


def _message(
    *,
    sessions: int,
    last_day: date | None,
    today: date,
    streak: int,
    direction: TrendDirection,
    average_drop: float | None,
) -> str:
    """One encouraging sentence. It never counts what did not happen: no "missed", no "broke"."""
    if sessions == 0 or last_day is None:
        return (
            "Whenever you are ready, a gentle 15-minute session is a fine place to start — "
            "many people find it helps them unwind."
        )
    if _week(last_day) < _week(today) - timedelta(weeks=1):
        return "Welcome back — any session is a good one, whenever it suits you."
    if streak >= 2:
        return f"{streak} weeks in a row with a session — a lovely rhythm to keep."
    if direction == "easing":
        return (
            "The tension you start with has been easing — many people find regular sessions help."
        )
    if average_drop is not None and average_drop > 0:
        return (
            f"On average your tension eases by {average_drop:.1f} points in a session — nice work."
        )
    if sessions == 1:
        return "Your first session is done — a good start."
    return f"{sessions} sessions so far — every one is time well spent on your back."
