"""The page's timeline (static/js/timeline.js) schedules the cues itself when it works without
the server — a skip or an extend made offline, a session resumed from the kept events — so it
must give exactly the cues the engine gives: the same ids, kinds, moments, steps and words."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

from .support import csrf_token

if TYPE_CHECKING:
    from collections.abc import Callable

    from playwright.sync_api import Page

    from .support import Server, Watch

FOCUS = [{"region": "shoulders", "tension": 8}, {"region": "lower-back", "tension": 4}]
# (mode, minutes, the events that reshape the timeline before it is compared)
CASES: list[tuple[str, int, list[dict[str, Any]]]] = [
    ("partner", 20, []),
    ("self", 15, []),
    ("partner", 45, [
        {"kind": "extend", "active": 30.5},
        {"kind": "feedback", "feedback": "firmer", "active": 95.25},
        {"kind": "skip", "active": 140.125},
        {"kind": "feedback", "feedback": "tender", "active": 200.0},
        {"kind": "skip", "active": 260.75},
    ]),
    ("self", 60, [{"kind": "skip", "active": 12.0}, {"kind": "extend", "active": 13.5}]),
]  # fmt: skip

SCHEDULE = """async ([steps, durations, mode]) => {
  const T = await import("/static/js/timeline.js");
  return T.schedule(steps, durations, mode);
}"""


def test_the_pages_cue_schedule_is_the_engines(
    lite_server: Server, new_page: Callable[..., tuple[Page, Watch]]
) -> None:
    page, watch = new_page(lite_server)
    page.goto("/")
    headers = {"X-CSRF-Token": csrf_token(page.context)}
    for mode, minutes, events in CASES:
        body = {"mode": mode, "minutes": minutes, "focus": FOCUS, "tension_before": 6}
        made = page.request.post("/api/v1/sessions", data=body, headers=headers)
        assert made.ok, made.text()
        sid = made.json()["id"]
        for seq, event in enumerate(events, 1):
            sent = page.request.post(
                f"/api/v1/sessions/{sid}/events", data={**event, "seq": seq}, headers=headers
            )
            assert sent.ok and sent.json()["accepted"], sent.text()
        view = lite_server.session(sid)
        theirs = view["cues"]
        mine = page.evaluate(SCHEDULE, [view["state"]["steps"], view["durations"], mode])
        assert len(mine) == len(theirs) > len(view["durations"]), (mode, minutes)
        for js, engine in zip(mine, theirs, strict=True):
            assert {**js, "at": 0} == {**engine, "at": 0}, (mode, minutes, js, engine)
            assert js["at"] == pytest.approx(engine["at"], abs=1e-9)
    watch.expect_clean("the timeline compared")
