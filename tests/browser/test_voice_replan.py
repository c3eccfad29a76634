"""A cue overtaken by a re-plan is still spoken, with backrub's own voice, in a real browser.

Headless Chromium has no speech-synthesis voice, so the player asks the server for each cue's
clip (POST /api/v1/sessions/{id}/voice {text}), and the server speaks only the saved session's
own words. Tap a feedback and at once Next step: the page fires the next step's cue with its
words as they stood before the feedback's re-plan reached the page; the server, having re-planned
(the step's pressure word changed), refuses those words (422). The step must not be silent: the
page asks again with the step's words as they are now, and the server says them (200).

The race is made to happen every round, not left to luck, by `page.route`: the feedback goes on
to the server at once (which re-plans) but its answer is held back, so the Next step fires the
stale cue; that cue's clip request goes on to the server only after the re-plan, so it is
refused. Then, by `order`, what reaches the page first: "refusal-first", the refusal, while the
feedback's answer is still held (a slow answer); "replan-first", the feedback's answer, then the
refusal, and only then the answer to the skip queued behind the feedback (as over a network: the
skip goes out only once the feedback is answered, after the clip request). Either way the step's
current words must be asked for and said. The service worker is blocked: Playwright does not
route what a service worker fetches.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pytest
from playwright.sync_api import expect

from .support import play_to_step_two

if TYPE_CHECKING:
    from collections.abc import Callable

    from playwright.sync_api import Page, Response, Route

    from .support import Server, Watch

# A round on each of three steps in a row, from the first focus step (medium pressure, as are
# the focus steps after it): softer takes the next step to light, softer again to feather (the
# lightest), then firmer back to light. Each changes the next step's pressure word.
ROUNDS = ["Softer", "Softer", "Firmer"]
STEP_COUNT = re.compile(r"^Step (\d+) of (\d+)$")
# How long the feedback's answer is held when the page asks for no stale clip at all.
HOLD_SECONDS = 0.3
# Longest wait for any one thing the page or the server does.
WAIT_SECONDS = 5.0
# The browser's own line for the refused clip request.
REFUSED = re.compile(
    r"^console\.error: Failed to load resource: the server responded with a status of 422 "
    r"\([^)]*\) \(http://[^ ]+/api/v1/sessions/[0-9a-f]+/voice:0\)$"
)


@dataclass
class Clip:
    """One answer to a clip request the page made: the words it asked for, and the answer."""

    text: str
    status: int
    content_type: str


@dataclass
class Race:
    """The routes that make each round's race happen, and what they saw.

    `order`: "refusal-first" (the stale cue's 422 reaches the page while the feedback's answer is
    still held) or "replan-first" (the feedback's answer reaches the page, and the page has taken
    it, before the stale cue's 422 does)."""

    page: Page
    order: str
    stale: str | None = None  # the next step's words before the re-plan, while a round is on
    replanned: bool = False  # the server has applied the round's feedback
    stale_asked: bool = False  # the page asked for the stale words' clip
    stale_fetched: bool = False  # ... and the server has answered that
    stale_delivered: bool = False  # ... and the page has the answer
    feedback_delivered: bool = False
    taken: bool = False  # the page sent its next event: it has handled the feedback's answer
    notes: list[str] = field(default_factory=list)

    def arm(self, stale: str) -> None:
        self.stale = stale
        self.replanned = self.stale_asked = self.stale_fetched = self.stale_delivered = False
        self.feedback_delivered = self.taken = False
        self.notes = []

    def disarm(self) -> None:
        self.stale = None

    def until(self, test: Callable[[], bool], seconds: float = WAIT_SECONDS) -> bool:
        """Wait (letting the page and the other routes go on) until `test()` holds."""
        deadline = time.monotonic() + seconds
        while not test():
            if time.monotonic() > deadline:
                return False
            self.page.wait_for_timeout(10)
        return True

    def events(self, route: Route) -> None:
        body = route.request.post_data_json
        kind = body.get("kind") if isinstance(body, dict) else None
        if self.stale is not None and kind == "feedback" and not self.replanned:
            self.hold_feedback(route)
        elif self.stale is not None and self.feedback_delivered and not self.taken:
            # The skip, sent once the page has handled the feedback's answer.
            self.taken = True
            if self.order == "replan-first" and self.stale_asked:
                # Its answer (the session re-timed, the page's cues made afresh) comes after
                # the refusal, as it does over a network: the skip went out after the clip.
                answer = route.fetch()
                self.until(lambda: self.stale_delivered)
                self.page.wait_for_timeout(50)
                route.fulfill(response=answer)
                self.notes.append("skip answer delivered to the page")
            else:
                route.fallback()
        else:
            route.fallback()

    def hold_feedback(self, route: Route) -> None:
        answer = route.fetch()  # the server applies the feedback now
        self.replanned = True
        self.notes.append(f"feedback applied by the server ({answer.status})")
        started = time.monotonic()
        # Held until the stale clip's answer is on its way (as `order` says), or, when the
        # page asks for no stale clip, a moment: long enough for the Next step to fire its cue.
        ready = (
            (lambda: self.stale_delivered)
            if self.order == "refusal-first"
            else (lambda: self.stale_fetched)
        )
        self.until(
            lambda: ready() or (not self.stale_asked and time.monotonic() - started > HOLD_SECONDS)
        )
        if self.order == "refusal-first":
            self.page.wait_for_timeout(50)  # the page handles the refusal first
        route.fulfill(response=answer)
        self.feedback_delivered = True
        self.notes.append("feedback answer delivered to the page")

    def voice(self, route: Route) -> None:
        body = route.request.post_data_json
        text = body.get("text") if isinstance(body, dict) else None
        if self.stale is None or text != self.stale or self.stale_asked:
            route.fallback()
            return
        self.stale_asked = True
        # Reaches the server after the re-plan: the words are no longer the session's.
        self.until(lambda: self.replanned)
        answer = route.fetch()
        self.stale_fetched = True
        self.notes.append(f"stale clip answered by the server ({answer.status})")
        if self.order == "replan-first":
            self.until(lambda: self.taken)
        route.fulfill(response=answer)
        self.stale_delivered = True
        self.notes.append("stale clip answer delivered to the page")


def clip_answer(response: Response) -> Clip | None:
    """The clip request a response answers, or None for any other response."""
    request = response.request
    if request.method != "POST" or not response.url.endswith("/voice"):
        return None
    body = request.post_data_json
    return Clip(body["text"], response.status, response.headers.get("content-type", ""))


def shown_step(page: Page) -> int:
    """The step (0-based) the player shows."""
    found = STEP_COUNT.match(page.locator("#step-count").text_content() or "")
    assert found, page.locator("#step-count").text_content()
    return int(found.group(1)) - 1


def step_cue(view: dict[str, Any], step: int) -> str:
    """The words of a step's cue in a session view: its cue entry, as the engine made it (which
    is the step's own `cue`)."""
    text: str = next(c["text"] for c in view["cues"] if c["id"] == f"step:{step}")
    assert text == view["state"]["steps"][step]["cue"], (text, view["state"]["steps"][step])
    return text


def settled(race: Race, server: Server, session_id: str, seq: int, what: str) -> dict[str, Any]:
    """Wait until the server has saved event `seq`; its view of the session. (Waiting in the
    page: Playwright runs the routes only while the test waits on it.)"""
    race.until(lambda: server.session(session_id)["state"]["seq"] >= seq)
    view = server.session(session_id)
    assert view["state"]["seq"] == seq, f"{what}: the server is at {view['state']['seq']}"
    return view


def start_paused(page: Page) -> tuple[str, int]:
    """Safety (no to all) → map → plan → player; Begin, run on to step 2 and pause there, the
    voice on (backrub's clips). Returns the session's id and its number of steps."""
    session_id, steps = play_to_step_two(page, service_worker=False)
    assert page.evaluate("speechSynthesis.getVoices().length") == 0, "Chromium has a voice here"
    page.keyboard.press("Space")
    expect(page.locator("#pause-btn")).to_have_text("Resume")
    expect(page.locator("#voice-label")).to_have_text("Voice")
    expect(page.locator("#voice-btn")).to_have_attribute("aria-pressed", "true")
    return session_id, steps


@pytest.mark.parametrize("order", ["refusal-first", "replan-first"])
def test_a_cue_overtaken_by_a_replan_is_spoken_with_its_new_words(
    lite_server: Server, new_page: Callable[..., tuple[Page, Watch]], order: str
) -> None:
    page, watch = new_page(lite_server, service_workers="block")
    session_id, steps = start_paused(page)
    clips: list[Clip] = []

    def heard(response: Response) -> None:
        clip = clip_answer(response)
        if clip is not None:
            clips.append(clip)

    page.on("response", heard)
    race = Race(page, order)
    page.route("**/api/v1/sessions/*/events", race.events)
    page.route("**/api/v1/sessions/*/voice", race.voice)

    # On to the first focus step.
    seq = lite_server.session(session_id)["state"]["seq"] + 1
    page.keyboard.press("n")
    view = settled(race, lite_server, session_id, seq, "the skip to step 3")
    refused: list[bool] = []  # each round: were the stale words asked for (and refused)?
    for round_, tap in enumerate(ROUNDS):
        at = shown_step(page)
        assert at == 2 + round_, f"round {round_}: the player shows step {at + 1}"
        assert at + 1 < steps - 1, "too few steps for the rounds"
        stale = step_cue(view, at + 1)
        race.arm(stale)
        start = len(clips)

        # The feedback, and at once on to the next step: its cue fires with the words from
        # before the re-plan.
        page.get_by_role("button", name=tap, exact=True).click()
        page.keyboard.press("n")
        seq += 2
        view = settled(race, lite_server, session_id, seq, f"round {round_}: {tap} and the skip")
        assert view["record"]["feedback"][-1]["kind"] == tap.lower()
        fresh = step_cue(view, at + 1)
        assert fresh != stale, (
            f"round {round_}: {tap} did not re-plan step {at + 2}'s words: the test shows nothing"
        )
        expect(page.locator("#step-count")).to_have_text(f"Step {at + 2} of {steps}")
        race.until(lambda f=fresh, s=start: any(c.text == f for c in clips[s:]))
        race.until(lambda: race.feedback_delivered)
        expect(page.locator("#message")).to_have_text(re.compile(f"^{tap}: "))
        race.disarm()
        said = [c for c in clips[start:] if c.text in (stale, fresh)]
        story = (
            f"round {round_} ({tap}, {order}), step {at + 2}:\n  stale: {stale}\n  fresh: {fresh}\n"
            + "\n".join(f"  route: {note}" for note in race.notes)
            + "\n"
            + "\n".join(f"  clip {c.status} {c.content_type}: {c.text}" for c in said)
        )

        stale_asks = [n for n, c in enumerate(said) if c.text == stale]
        fresh_asks = [n for n, c in enumerate(said) if c.text == fresh]
        # The step's words as the server has them now were asked for, and said.
        assert fresh_asks, f"the step's current words were never asked for\n{story}"
        last = said[fresh_asks[-1]]
        assert last.status == 200 and last.content_type == "audio/ogg", story
        # The words from before the re-plan, where the page asked for them (the race happened),
        # were refused, and the current ones asked for after that (the retry).
        assert all(said[n].status == 422 for n in stale_asks), story
        if stale_asks:
            assert stale_asks[-1] < fresh_asks[0], story
        refused.append(bool(stale_asks))

    # The routes make the race happen each round: the retry was seen (at least once).
    assert any(refused), f"no stale cue was ever refused and asked again: {refused}"
    watch.seen = [line for line in watch.seen if not REFUSED.match(line)]
    watch.expect_clean(
        "the player's clips, re-planned by feedback",
        allowed=["Service Worker registration blocked by Playwright"],
    )
    assert not lite_server.trouble(), "\n".join(lite_server.errors)
