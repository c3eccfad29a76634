"""History over HTTP: the insights and the calendar reminders, as `backrub stats` and `remind`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from backrub import service
from backrub.core.export import stats_as_dict
from backrub.reminders import parse_at

if TYPE_CHECKING:
    from backrub.core.catalogue import Catalogue
    from backrub.store import SessionStore
    from backrub.web.schemas import ReminderQuery


def stats(store: SessionStore) -> dict[str, Any]:
    return stats_as_dict(service.stats(store))


def reminders(catalogue: Catalogue, store: SessionStore, query: ReminderQuery) -> bytes:
    """An .ics file of recurring reminders, from the suggested next session on."""
    made = service.reminders(
        catalogue,
        store,
        every=query.every,
        at=parse_at(query.at),
        minutes=query.minutes,
        begin="Open backrub to begin.",
    )
    return made.calendar
