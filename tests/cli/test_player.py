"""The full-screen player, driven headless through Textual's pilot on a fake clock."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from textual.widgets import Static

from backrub.cli.live import LiveSession
from backrub.cli.player import Player
from backrub.core import engine
from backrub.core.models import Focus, PlanRequest
from backrub.core.planner import build_plan, rules_for
from backrub.core.safety import assess

if TYPE_CHECKING:
    from backrub.core.catalogue import Catalogue
    from backrub.core.models import FeedbackEvent


class FakeClock:
    def __init__(self) -> None:
        self.t = 0.0

    def now(self) -> float:
        return self.t


def make_session(catalogue: Catalogue, clock: FakeClock) -> tuple[LiveSession, list[object]]:
    request = PlanRequest("partner", 15, (Focus("shoulders", 8),), 4)
    verdict = assess(catalogue, [])
    state = engine.new_session(build_plan(catalogue, request, verdict), rules_for(request, verdict))
    saves: list[object] = []

    def save(state: engine.LiveState, now: float, event: FeedbackEvent | None) -> None:
        saves.append(event or state.seq)

    return LiveSession(catalogue=catalogue, state=state, clock=clock, save=save), saves


def text(app: Player, widget: str) -> str:
    return str(app.query_one(widget, Static).render())


def test_player_guides_and_takes_every_key(catalogue: Catalogue) -> None:
    clock = FakeClock()
    session, saves = make_session(catalogue, clock)
    app = Player(session)

    async def drive() -> None:
        async with app.run_test(size=(110, 32)) as pilot:
            await pilot.pause(0.15)
            assert "Step 1 of" in text(app, "#where") and "warm-up" in text(app, "#where")
            assert "●○○○○" in text(app, "#pressure")
            assert "Session 15:00 left of 15:00" in text(app, "#timers")
            assert "Next: Long strokes" in text(app, "#next")

            await pilot.press("space")
            assert "Paused" in text(app, "#message")
            clock.t += 500  # paused: the session's time does not move
            await pilot.pause(0.15)
            assert "Session 15:00 left" in text(app, "#timers")
            await pilot.press("space")

            await pilot.press("n")  # next step
            await pilot.pause(0.15)
            assert "Step 2 of" in text(app, "#where")
            await pilot.press("e")
            assert "One more minute" in text(app, "#message")

            clock.t += 40  # into step 2: its check-in is due
            await pilot.pause(0.15)
            assert "Ask: is the pressure right?" in text(app, "#checkin")
            await pilot.press("minus")
            assert "Softer" in text(app, "#message")
            assert text(app, "#checkin") == ""
            await pilot.press("t")
            assert "Tender spot" in text(app, "#message")
            await pilot.press("q")
            await pilot.pause(0.1)

    asyncio.run(drive())
    assert session.stopped_early
    kinds = [s.kind for s in saves if hasattr(s, "kind")]
    assert kinds == ["softer", "tender"]
    assert session.state.tender == ("whole-back",)


def test_player_exits_at_the_end(catalogue: Catalogue) -> None:
    clock = FakeClock()
    session, _ = make_session(catalogue, clock)
    app = Player(session)

    async def drive() -> None:
        async with app.run_test(size=(110, 32)) as pilot:
            await pilot.pause(0.15)
            clock.t += 15 * 60 + 1
            await pilot.pause(0.3)

    asyncio.run(drive())
    assert session.finished and not session.stopped_early
    assert "finish" in session.state.fired
