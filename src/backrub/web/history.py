"""History over HTTP: the insights and the calendar reminders, as `backrub stats` and `remind`."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any

from backrub.core.export import stats_as_dict
from backrub.core.insights import compute_stats
from backrub.localtime import local_zone
from backrub.reminders import build_calendar, every_for_interval, parse_at

if TYPE_CHECKING:
    from backrub.core.catalogue import Catalogue
    from backrub.store import SessionStore
    from backrub.web.schemas import ReminderQuery


def stats(store: SessionStore) -> dict[str, Any]:
    records = store.sessions(newest_first=False)
    today = date.today()  # noqa: DTZ011  (the person's own day)
    return stats_as_dict(compute_stats(records, today=today, tz=local_zone()))


def reminders(catalogue: Catalogue, store: SessionStore, query: ReminderQuery) -> bytes:
    """An .ics file of recurring reminders, from the suggested next session on."""
    facts = catalogue.facts
    length = query.minutes if query.minutes is not None else facts.default_minutes
    today = date.today()  # noqa: DTZ011  (the person's own day)
    result = compute_stats(store.sessions(newest_first=False), today=today, tz=local_zone())
    cadence = every_for_interval(result.interval_days) if query.every == "auto" else query.every
    first = result.next_session
    if first is None or first <= today:
        first = today + timedelta(days=1)
    description = (
        f"A {length}-minute back massage. Set the space, warm your hands, and breathe "
        f"slowly. Open backrub to begin. {facts.frequency}"
    )
    return build_calendar(
        every=cadence,
        first=first,
        at=parse_at(query.at),
        minutes=length,
        description=description,
        now=datetime.now(UTC),
    )
