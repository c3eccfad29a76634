"""Request bodies (schemas.py) turned into the core values the service takes."""

from __future__ import annotations

from typing import TYPE_CHECKING

from backrub.core.models import PRESSURE_CEILINGS, Focus, PlanRequest
from backrub.core.safety import make_finding
from backrub.service.events import PlayerEvent

if TYPE_CHECKING:
    from collections.abc import Sequence

    from backrub.core.catalogue import Catalogue
    from backrub.core.models import Finding
    from backrub.web.schemas import EventBody, FindingIn, PlanBody


def findings(catalogue: Catalogue, items: Sequence[FindingIn]) -> list[Finding]:
    """The page's answers → findings, with the same rules as `backrub check --has`."""
    return [make_finding(catalogue, item.condition, item.region) for item in items]


def plan_request(body: PlanBody) -> PlanRequest:
    return PlanRequest(
        mode=body.mode,
        minutes=body.minutes,
        focus=tuple(Focus(f.region, f.tension) for f in body.focus),
        ceiling=PRESSURE_CEILINGS[body.pressure],
        oil=body.oil,
    )


def player_event(body: EventBody) -> PlayerEvent:
    return PlayerEvent(body.kind, body.active, body.seq, tuple(body.fired), body.feedback)
