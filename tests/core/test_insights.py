from __future__ import annotations

import random
import subprocess
import sys
from datetime import UTC, date, datetime, time, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from hypothesis import given
from hypothesis import strategies as st

from backrub.core import insights
from backrub.core.insights import (
    RegionEffect,
    TrendPoint,
    compute_stats,
    history_for_planning,
    sparkline,
    suggest_interval,
)
from backrub.core.models import Focus, PlanHistory, SessionRecord

if TYPE_CHECKING:
    from collections.abc import Sequence

    from backrub.core.models import SessionStatus

# A Thursday: its ISO week runs Monday 23 November to Sunday 29 November 2026.
TODAY = date(2026, 11, 26)
REGIONS = (
    "shoulders",
    "shoulder-blades",
    "between-shoulder-blades",
    "sides-of-spine",
    "mid-back",
    "lower-back",
)
BANNED = ("broke", "missed", "failed")


def record(
    n: int,
    day: date,
    *,
    before: int | None = None,
    after: int | None = None,
    focus: Sequence[str] = (),
    tender: Sequence[str] = (),
    status: SessionStatus = "finished",
    at: time = time(18, 0),
) -> SessionRecord:
    """A session on `day` (UTC); `n` gives it a stable id."""
    return SessionRecord(
        id=f"s{n:04d}",
        started_at=datetime.combine(day, at, tzinfo=UTC),
        mode="self",
        minutes_planned=20,
        seconds_done=1200 if status == "finished" else 300,
        status=status,
        focus=tuple(Focus(region, 7) for region in focus),
        verdict="clear",
        verdict_conditions=(),
        tension_before=before,
        tension_after=after,
        tender=tuple(tender),
    )


def weekly(first: date, weeks: int, *, start: int = 0) -> list[SessionRecord]:
    return [record(start + i, first + timedelta(weeks=i)) for i in range(weeks)]


def shuffled(records: Sequence[SessionRecord], seed: int = 7) -> list[SessionRecord]:
    out = list(records)
    random.Random(seed).shuffle(out)  # noqa: S311  (a seeded shuffle, not a secret)
    return out


# ---- hypothesis: random, but plausible, histories ------------------------------------------

tensions = st.one_of(st.none(), st.integers(0, 10))


@st.composite
def histories(draw: st.DrawFn, max_size: int = 20) -> list[SessionRecord]:
    size = draw(st.integers(0, max_size))
    out = []
    for n in range(size):
        day = TODAY - timedelta(days=draw(st.integers(-3, 400)))
        out.append(
            record(
                n,
                day,
                before=draw(tensions),
                after=draw(tensions),
                focus=draw(st.lists(st.sampled_from(REGIONS), max_size=3, unique=True)),
                tender=draw(st.lists(st.sampled_from(REGIONS), max_size=2, unique=True)),
                status=draw(st.sampled_from(["finished", "finished", "stopped", "active"])),
                at=time(draw(st.integers(0, 23)), draw(st.integers(0, 59))),
            )
        )
    return out


# ---- the core stays pure -------------------------------------------------------------------


def test_insights_imports_no_framework_and_reads_no_clock() -> None:
    code = (
        "import sys, backrub.core.insights;"
        "banned = {'sqlalchemy','fastapi','starlette','typer','rich','textual','pydantic',"
        "'icalendar'};"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in banned))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
    source = Path(insights.__file__).read_text(encoding="utf-8")
    for clock in ("now(", "today(", "time.time", "monotonic", "utcnow"):
        assert clock not in source


# ---- counts, drops, regions ----------------------------------------------------------------


def test_no_sessions_gives_an_empty_but_friendly_summary() -> None:
    stats = compute_stats([], today=TODAY)
    assert stats.sessions == 0
    assert stats.per_month == ()
    assert stats.average_drop is None
    assert stats.regions == ()
    assert stats.trend == ()
    assert stats.trend_direction == "unknown"
    assert (stats.streak_weeks, stats.longest_streak_weeks) == (0, 0)
    assert stats.interval_days == 14
    assert stats.next_session is None
    assert stats.message


def test_sessions_per_month_oldest_first_months_without_any_left_out() -> None:
    records = [
        record(1, date(2026, 10, 3)),
        record(2, date(2026, 10, 30), status="stopped"),
        record(3, date(2026, 11, 2)),
        record(4, date(2026, 11, 9)),
        record(5, date(2026, 11, 20)),
        record(6, date(2026, 11, 21), status="active"),
        record(7, date(2026, 8, 14)),
    ]
    stats = compute_stats(shuffled(records), today=TODAY)
    assert stats.sessions == 6
    assert stats.per_month == (("2026-08", 1), ("2026-10", 2), ("2026-11", 3))


def test_average_drop_counts_only_sessions_with_both_scores() -> None:
    records = [
        record(1, date(2026, 11, 1), before=8, after=3),  # 5
        record(2, date(2026, 11, 8), before=6, after=5),  # 1
        record(3, date(2026, 11, 15), before=7),  # no after: left out
        record(4, date(2026, 11, 16), after=2),  # no before: left out
        record(5, date(2026, 11, 17), before=4, after=6),  # -2: tension can rise
        record(6, date(2026, 11, 18), before=10, after=0, status="active"),  # ignored
    ]
    assert compute_stats(records, today=TODAY).average_drop == pytest.approx(4 / 3)


def test_average_drop_is_none_without_any_complete_session() -> None:
    records = [record(1, date(2026, 11, 1), before=8), record(2, date(2026, 11, 2), after=3)]
    assert compute_stats(records, today=TODAY).average_drop is None


def test_region_effects_best_first_ties_by_region_id() -> None:
    records = [
        record(1, date(2026, 11, 1), before=8, after=2, focus=["shoulders", "lower-back"]),  # 6
        record(2, date(2026, 11, 8), before=7, after=5, focus=["shoulders"]),  # 2
        record(3, date(2026, 11, 9), before=6, after=2, focus=["sides-of-spine"]),  # 4
        record(4, date(2026, 11, 10), before=9, after=3, focus=["mid-back"]),  # 6
        record(5, date(2026, 11, 11), before=9, focus=["between-shoulder-blades"]),  # no after
        record(6, date(2026, 11, 12), before=9, after=0, focus=["shoulders"], status="active"),
    ]
    stats = compute_stats(shuffled(records), today=TODAY)
    assert stats.regions == (
        RegionEffect("lower-back", 1, 6.0),
        RegionEffect("mid-back", 1, 6.0),
        RegionEffect("shoulders", 2, 4.0),
        RegionEffect("sides-of-spine", 1, 4.0),
    )


def test_a_region_listed_twice_in_one_session_counts_once() -> None:
    records = [record(1, date(2026, 11, 1), before=8, after=2, focus=["shoulders", "shoulders"])]
    assert compute_stats(records, today=TODAY).regions == (RegionEffect("shoulders", 1, 6.0),)


# ---- trend ---------------------------------------------------------------------------------


def test_trend_is_the_last_twelve_sessions_oldest_first() -> None:
    first = date(2026, 6, 1)
    records = [
        record(i, first + timedelta(days=7 * i), before=i % 11, after=(i + 1) % 4)
        for i in range(15)
    ]
    records.append(record(99, date(2026, 11, 25), before=1, after=1, status="active"))
    stats = compute_stats(shuffled(records), today=TODAY)
    assert len(stats.trend) == 12
    assert stats.trend == tuple(
        TrendPoint(first + timedelta(days=7 * i), i % 11, (i + 1) % 4) for i in range(3, 15)
    )


@pytest.mark.parametrize(
    ("befores", "direction"),
    [
        ([8, 8, 7, 6, 6, 5, 4], "easing"),
        ([3, 4, 4, 6, 7], "rising"),
        ([5, 6, 5, 6, 5, 5], "steady"),
        ([7, None, 6, None, 5], "easing"),  # gaps in the scores are skipped
        ([7, 3], "unknown"),  # too few scores to tell
        ([None, None, 6, None], "unknown"),
        ([], "unknown"),
    ],
)
def test_trend_direction_follows_tension_before(befores: list[int | None], direction: str) -> None:
    records = [
        record(i, date(2026, 9, 1) + timedelta(days=5 * i), before=b) for i, b in enumerate(befores)
    ]
    assert compute_stats(records, today=TODAY).trend_direction == direction


def test_trend_direction_looks_only_at_the_trend_window() -> None:
    # Long ago tension was high; over the last twelve sessions it has crept up a little.
    old = [record(i, date(2025, 1, 1) + timedelta(days=i), before=10) for i in range(10)]
    recent = [
        record(100 + i, date(2026, 6, 1) + timedelta(days=7 * i), before=2 + i // 4)
        for i in range(12)
    ]
    assert compute_stats(old + recent, today=TODAY).trend_direction == "rising"


# ---- streaks -------------------------------------------------------------------------------

THIS_MONDAY = date(2026, 11, 23)


def test_a_week_not_yet_over_does_not_break_the_streak() -> None:
    records = weekly(THIS_MONDAY - timedelta(weeks=4), 4)  # the four weeks before this one
    stats = compute_stats(records, today=TODAY)
    assert stats.streak_weeks == 4
    assert stats.longest_streak_weeks == 4


def test_a_session_this_week_extends_the_streak() -> None:
    records = [*weekly(THIS_MONDAY - timedelta(weeks=4), 4), record(50, THIS_MONDAY)]
    assert compute_stats(records, today=TODAY).streak_weeks == 5


def test_several_sessions_in_one_week_count_as_one_week() -> None:
    records = [record(i, THIS_MONDAY - timedelta(days=i)) for i in range(1, 8)]  # all last week
    stats = compute_stats(records, today=TODAY)
    assert (stats.streak_weeks, stats.longest_streak_weeks) == (1, 1)


def test_a_gap_week_ends_the_streak_but_the_longest_is_remembered() -> None:
    earlier = weekly(THIS_MONDAY - timedelta(weeks=10), 5)  # weeks −10 … −6
    later = weekly(THIS_MONDAY - timedelta(weeks=3), 2, start=20)  # weeks −3, −2; −1 is empty
    stats = compute_stats([*earlier, *later], today=TODAY)
    assert stats.streak_weeks == 0
    assert stats.longest_streak_weeks == 5


def test_a_gap_week_before_the_current_run_is_where_counting_stops() -> None:
    earlier = weekly(THIS_MONDAY - timedelta(weeks=6), 2)  # weeks −6, −5; −4 is empty
    later = weekly(THIS_MONDAY - timedelta(weeks=3), 4, start=20)  # weeks −3 … 0 (this week)
    stats = compute_stats([*earlier, *later], today=TODAY)
    assert stats.streak_weeks == 4
    assert stats.longest_streak_weeks == 4


def test_an_active_session_neither_makes_nor_keeps_a_streak() -> None:
    records = [
        *weekly(THIS_MONDAY - timedelta(weeks=4), 2),  # weeks −4, −3
        record(10, THIS_MONDAY - timedelta(weeks=2), status="active"),
        record(11, THIS_MONDAY - timedelta(weeks=1)),
        record(12, THIS_MONDAY, status="active"),
    ]
    stats = compute_stats(records, today=TODAY)
    assert stats.streak_weeks == 1
    assert stats.longest_streak_weeks == 2


def test_weeks_are_iso_weeks_across_a_new_year() -> None:
    # Mon 28 Dec 2026 starts ISO week 53; Mon 4 Jan 2027 starts week 1 of 2027.
    records = [record(1, date(2026, 12, 31)), record(2, date(2027, 1, 4))]
    stats = compute_stats(records, today=date(2027, 1, 6))
    assert stats.streak_weeks == 2


def test_sunday_late_evening_stays_in_its_week_in_the_persons_time_zone() -> None:
    # 23:30 on Sunday 22 November in New York (UTC−5) is already Monday in UTC.
    new_york = timezone(timedelta(hours=-5))
    late = record(1, date(2026, 11, 23), at=time(4, 30))
    earlier = record(2, date(2026, 11, 15))  # the week before
    stats = compute_stats([late, earlier], today=TODAY, tz=new_york)
    assert stats.trend[-1].day == date(2026, 11, 22)
    assert stats.streak_weeks == 2
    # In UTC the late session falls into this week and the streak has a gap.
    assert compute_stats([late, earlier], today=TODAY).streak_weeks == 1


# ---- the suggested interval and the next session -------------------------------------------


@pytest.mark.parametrize(
    ("befores", "days"),
    [
        ([], 14),
        ([None, None], 14),
        ([8, 9, 7], 7),
        ([6, 6, 6], 7),
        ([10], 7),
        ([3, 3, 3], 30),
        ([0, 1], 30),
        ([4, 5, 4], 20),  # 30 − (4.33 − 3) / 3 × 23 = 19.78
        ([5, 4], 19),  # 18.5 rounds up
        ([5, 5, 5], 15),  # 14.67
        ([9, 9, 9, 2, None, 3, 2], 30),  # only the last three scores count
    ],
)
def test_suggest_interval_from_the_last_three_scores(befores: list[int | None], days: int) -> None:
    records = [
        record(i, date(2026, 9, 1) + timedelta(days=i), before=b) for i, b in enumerate(befores)
    ]
    assert suggest_interval(records) == days


def test_suggest_interval_ignores_active_sessions_and_record_order() -> None:
    records = [
        record(1, date(2026, 9, 1), before=2),
        record(2, date(2026, 9, 2), before=2),
        record(3, date(2026, 9, 3), before=2),
        record(4, date(2026, 9, 4), before=9, status="active"),
    ]
    assert suggest_interval(shuffled(records)) == 30


@given(histories())
def test_suggested_interval_is_always_weekly_to_monthly(records: list[SessionRecord]) -> None:
    assert 7 <= suggest_interval(records) <= 30
    stats = compute_stats(records, today=TODAY)
    assert stats.interval_days == suggest_interval(records)


def test_next_session_is_the_last_session_plus_the_interval() -> None:
    records = [
        record(1, date(2026, 11, 2), before=8, after=3),
        record(2, date(2026, 11, 20), before=7, after=2),
        record(3, date(2026, 11, 12), before=9, after=4),
        record(4, date(2026, 11, 25), before=1, status="active"),
    ]
    stats = compute_stats(records, today=TODAY)
    assert stats.interval_days == 7
    assert stats.next_session == date(2026, 11, 27)


def test_an_overdue_next_session_is_suggested_for_today_not_the_past() -> None:
    records = [record(1, date(2026, 3, 2), before=2, after=1)]
    stats = compute_stats(records, today=TODAY)
    assert stats.interval_days == 30
    assert stats.next_session == TODAY


# ---- the message ---------------------------------------------------------------------------


def _one_gentle_sentence(message: str) -> None:
    assert message.endswith((".", "!"))
    assert message[0].isupper() or message[0].isdigit()
    assert ". " not in message
    lowered = message.lower()
    for word in BANNED:
        assert word not in lowered
    assert "proven" not in lowered


def test_welcome_back_after_a_gap() -> None:
    records = weekly(date(2026, 6, 1), 6)
    message = compute_stats(records, today=TODAY).message
    assert message.startswith("Welcome back")
    _one_gentle_sentence(message)


def test_a_run_of_weeks_is_celebrated() -> None:
    message = compute_stats(weekly(THIS_MONDAY - timedelta(weeks=3), 3), today=TODAY).message
    assert "3 weeks in a row" in message
    _one_gentle_sentence(message)


def test_easing_tension_is_told_honestly() -> None:
    records = [
        record(i, THIS_MONDAY - timedelta(days=i), before=b, after=b - 1)
        for i, b in zip(range(6, 0, -1), (8, 7, 7, 6, 5, 4), strict=True)
    ]
    stats = compute_stats(records, today=TODAY)
    assert stats.trend_direction == "easing"
    assert "many people find" in stats.message
    _one_gentle_sentence(stats.message)


def test_first_session_and_no_session_messages() -> None:
    _one_gentle_sentence(compute_stats([], today=TODAY).message)
    first = compute_stats([record(1, THIS_MONDAY)], today=TODAY).message
    assert "first" in first
    _one_gentle_sentence(first)


@given(histories(), st.integers(-30, 400))
def test_the_message_never_scolds(records: list[SessionRecord], days_later: int) -> None:
    _one_gentle_sentence(compute_stats(records, today=TODAY + timedelta(days=days_later)).message)


# ---- every field together, and order independence ------------------------------------------


@given(histories(), st.randoms(use_true_random=False))
def test_stats_do_not_depend_on_record_order(
    records: list[SessionRecord], rng: random.Random
) -> None:
    again = list(records)
    rng.shuffle(again)
    assert compute_stats(again, today=TODAY) == compute_stats(records, today=TODAY)


@given(histories())
def test_stats_are_consistent(records: list[SessionRecord]) -> None:
    stats = compute_stats(records, today=TODAY)
    counted = [r for r in records if r.status != "active"]
    assert stats.sessions == len(counted) == sum(n for _, n in stats.per_month)
    assert [m for m, _ in stats.per_month] == sorted({m for m, _ in stats.per_month})
    assert len(stats.trend) == min(12, len(counted))
    assert [p.day for p in stats.trend] == sorted(p.day for p in stats.trend)
    assert 0 <= stats.streak_weeks <= stats.longest_streak_weeks <= stats.sessions
    drops = [e.average_drop for e in stats.regions]
    assert drops == sorted(drops, reverse=True)
    assert (stats.next_session is None) == (not counted)
    if stats.next_session is not None:
        assert stats.next_session >= TODAY


# ---- what the planner learns ---------------------------------------------------------------


def test_high_regions_stay_high_in_two_of_the_last_three_sessions() -> None:
    records = [
        # Older than the last three: never counts.
        record(1, date(2026, 10, 1), before=9, after=9, focus=["lower-back"]),
        record(2, date(2026, 11, 1), before=8, after=6, focus=["shoulders", "sides-of-spine"]),
        record(3, date(2026, 11, 8), before=8, after=2, focus=["sides-of-spine", "mid-back"]),
        # No tension_after: not one of "the last three with tension_after known".
        record(4, date(2026, 11, 12), before=9, focus=["between-shoulder-blades"]),
        record(5, date(2026, 11, 15), before=7, after=5, focus=["shoulders", "mid-back"]),
        record(6, date(2026, 11, 16), before=9, after=9, focus=["sides-of-spine"], status="active"),
    ]
    history = history_for_planning(records)
    # shoulders: high in 2 of 2; sides-of-spine: 1 of 2; mid-back: 1 of 2.
    assert history.high_regions == frozenset({"shoulders"})


def test_a_region_focused_only_once_is_high_when_that_session_was() -> None:
    records = [
        record(1, date(2026, 11, 1), before=8, after=3, focus=["mid-back"]),
        record(2, date(2026, 11, 8), before=8, after=2, focus=["mid-back"]),
        record(3, date(2026, 11, 15), before=7, after=5, focus=["lower-back", "mid-back"]),
    ]
    assert history_for_planning(records).high_regions == frozenset({"lower-back"})


def test_high_in_two_of_three() -> None:
    records = [
        record(1, date(2026, 11, 1), before=8, after=5, focus=["shoulders"]),
        record(2, date(2026, 11, 8), before=8, after=1, focus=["shoulders"]),
        record(3, date(2026, 11, 15), before=7, after=6, focus=["shoulders"]),
    ]
    assert history_for_planning(records).high_regions == frozenset({"shoulders"})


def test_tender_regions_come_from_the_last_three_sessions() -> None:
    records = [
        record(1, date(2026, 10, 1), tender=["lower-back"]),  # too long ago
        record(2, date(2026, 11, 1), tender=["shoulders"]),
        record(3, date(2026, 11, 8)),
        record(4, date(2026, 11, 15), tender=["mid-back", "shoulders"], status="stopped"),
        record(5, date(2026, 11, 16), tender=["sides-of-spine"], status="active"),
    ]
    history = history_for_planning(shuffled(records))
    assert history.tender_regions == frozenset({"shoulders", "mid-back"})
    assert history.high_regions == frozenset()


def test_no_history_teaches_nothing() -> None:
    assert history_for_planning([]) == PlanHistory()


def test_same_start_time_is_ordered_by_id() -> None:
    same = datetime(2026, 11, 1, 18, 0, tzinfo=UTC)
    records = [
        record(i, date(2026, 11, 1), tender=[region])._replace(started_at=same)
        for i, region in enumerate(REGIONS[:4])
    ]
    # The last three by (started_at, id) are s0001, s0002, s0003.
    for seed in range(5):
        history = history_for_planning(shuffled(records, seed))
        assert history.tender_regions == frozenset(REGIONS[1:4])


@given(histories(), st.randoms(use_true_random=False))
def test_shuffled_records_give_the_same_plan_history(
    records: list[SessionRecord], rng: random.Random
) -> None:
    again = list(records)
    rng.shuffle(again)
    assert history_for_planning(again) == history_for_planning(records)


# ---- the terminal chart ------------------------------------------------------------------


def test_sparkline() -> None:
    assert sparkline([0, 10, None, 5]) == "▁█ ▅"
    assert sparkline([]) == ""
    assert sparkline(list(range(11))) == "▁▂▂▃▄▅▅▆▇▇█"
    # Out-of-range values are drawn at the nearest end rather than failing.
    assert sparkline([-3, 14]) == "▁█"
