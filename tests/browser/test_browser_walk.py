"""A whole session in a real browser, at 60× speed, on SQLite and on PostgreSQL: safety check,
back map, plan, the player (pause, resume, firmer, softer, tender, skip, a reload mid-session),
the finish, the history. And the stop path: a stop verdict has no way on, in the pages or
around them."""

from __future__ import annotations

import json
import math
import re
from typing import TYPE_CHECKING, Any

import pytest
from playwright.sync_api import expect

from .support import (
    answer_safety,
    begin_session,
    choose_on_map,
    csrf_token,
    screenshot,
    see_plan,
    step_at,
)

if TYPE_CHECKING:
    from collections.abc import Callable

    from playwright.sync_api import Page, Response, Route

    from .support import Server, Watch

TENSIONS = {"shoulders": 8, "lower-back": 5}
MINUTES = 15
NOTE = "Shoulders much looser; go gently low down."
# How long a still clock is watched, and the whole session's run (15 min at 60×: 15 s).
STILL_MS = 400
RUN_TO_END_MS = 60_000


def countdown(page: Page) -> str:
    return page.locator("#countdown").text_content() or ""


def expect_still(page: Page) -> None:
    """Paused: the veil is up, the button says Resume, and the countdown does not move."""
    expect(page.locator("#veil")).to_be_visible()
    expect(page.locator("#veil-title")).to_have_text("Paused")
    expect(page.locator("#pause-btn")).to_have_text("Resume")
    before = countdown(page)
    page.wait_for_timeout(STILL_MS)
    assert countdown(page) == before, "the countdown moved while paused"


def feedback_kinds(view: dict[str, Any]) -> list[str]:
    return [event["kind"] for event in view["record"]["feedback"]]


def is_skip(response: Response) -> bool:
    """The server's answer to a skip."""
    request = response.request
    return request.url.endswith("/events") and (request.post_data_json or {}).get("kind") == "skip"


def recorded(kind: str, after: int) -> Callable[[dict[str, Any]], bool]:
    """The session's feedback, past the first `after`, is just `kind`."""
    return lambda view: feedback_kinds(view)[after:] == [kind]


def clock_text(seconds: float) -> str:
    """As the pages write a time: m:ss, whole seconds rounded up."""
    whole = max(0, math.ceil(seconds - 1e-6))
    return f"{whole // 60}:{whole % 60:02d}"


def test_a_whole_session_from_the_safety_check_to_the_history(
    server: Server, new_page: Callable[..., tuple[Page, Watch]]
) -> None:
    page, watch = new_page(server)

    # ---- welcome → safety: No to every question ----
    page.goto("/")
    expect(page.get_by_role("heading", level=1)).to_contain_text("A calm back massage")
    page.get_by_role("link", name="Start a session").click()
    expect(page).to_have_url(re.compile(r"/safety$"))
    answer_safety(page)
    expect(page.locator("#result h1")).to_have_text("Nothing stands in the way.")
    page.get_by_role("link", name="Continue: where is it tense?").click()

    # ---- the back map ----
    choose_on_map(page, TENSIONS, MINUTES)

    # ---- the plan ----
    plan = see_plan(page)
    assert plan["total_seconds"] == MINUTES * 60
    assert plan["mode"] == "partner"
    assert {f["region"]: f["tension"] for f in plan["focus"]} == TENSIONS
    steps = len(plan["steps"])
    assert steps > 1
    expect(page.locator("#plan-summary")).to_contain_text(f"{MINUTES} min")
    expect(page.locator("#plan-summary")).to_contain_text(f"{steps} steps")
    expect(page.locator("#timeline rect.phase")).to_have_count(steps)
    expect(page.locator("#steps > li")).to_have_count(steps)
    last = plan["steps"][-1]
    assert last["start"] + last["seconds"] == pytest.approx(MINUTES * 60)
    # The last step starts where the steps before it end, and ends at 15:00.
    expect(page.locator("#steps > li .when").last).to_have_text(clock_text(last["start"]))
    expect(page.locator("#steps > li .how").last).to_contain_text(clock_text(last["seconds"]))

    # ---- Begin: tension before 7 → the player ----
    session_id = begin_session(page, tension_before=7)
    expect(page.locator("#start-text")).to_contain_text(f"{MINUTES} minutes, {steps} steps")
    expect(page.locator("#session-left")).to_have_text(f"{MINUTES}:00 left")
    expect(page.locator("#step-count")).to_have_text(f"Step 1 of {steps}")
    first_length = countdown(page)

    page.get_by_role("button", name="Begin").click()
    # Pause at once with a tap on the main area: the first step lasts about two seconds.
    # (`wait_for` watches the page itself; `expect` would look again only after 100–500 ms.)
    page.locator("#start-panel").wait_for(state="hidden")
    page.locator("#countdown").click()
    expect_still(page)
    expect(page.locator("#step-count")).to_have_text(f"Step 1 of {steps}")
    paused_at = countdown(page)
    assert paused_at != first_length, "the countdown did not run"

    # Resume with Space: it runs; pause again with Space, so the controls below meet step 1.
    page.keyboard.press("Space")
    expect(page.locator("#veil")).to_be_hidden()
    expect(page.locator("#countdown")).not_to_have_text(paused_at)
    page.keyboard.press("Space")
    expect_still(page)
    expect(page.locator("#step-count")).to_have_text(f"Step 1 of {steps}")

    # ---- firmer, softer, tender: the sentence shown, and the server's record ----
    message = page.locator("#message")
    for kind, said in [
        ("firmer", r"^Firmer: \w+ pressure now\."),
        ("softer", r"^Softer: \w+ pressure now\.|^That is already the lightest touch\."),
        ("tender", r"^Tender spot: lighter on the whole back from now on\."),
    ]:
        before = len(feedback_kinds(server.session(session_id)))
        page.get_by_role("button", name=kind.capitalize(), exact=True).click()
        expect(message).to_have_text(re.compile(said))
        server.wait_for(session_id, f"the {kind} feedback", recorded(kind, after=before))
    view = server.session(session_id)
    assert feedback_kinds(view) == ["firmer", "softer", "tender"]
    assert all(event["step"] == 0 for event in view["record"]["feedback"])
    assert view["state"]["tender"] == [plan["steps"][0]["region"]]

    # ---- resume, skip (n): step 2, saved ----
    # (Running: a skip while paused can leave the page on step 1 at 0:00, see the test below.)
    page.keyboard.press("Space")
    page.keyboard.press("n")
    expect(page.locator("#step-count")).to_have_text(f"Step 2 of {steps}")
    server.wait_for(session_id, "the skip to step 2", lambda view: step_at(view) == 1)

    # ---- reload mid-session, running: paused, on the same step ----
    page.reload()
    expect(page.locator("#step-count")).to_have_text(f"Step 2 of {steps}")
    expect(page.locator("#veil-hint")).to_have_text(f"Step 2 of {steps} — tap to continue")
    expect(page.locator("#start-panel")).to_be_hidden()
    expect_still(page)

    # ---- resume (tap the veil) and let it run to the end ----
    page.locator("#veil").click()
    expect(page.locator("#pause-btn")).to_have_text("Pause")
    finish = page.locator("#finish-panel")
    expect(finish).to_be_visible(timeout=RUN_TO_END_MS)
    expect(page.locator("#finish-title")).to_have_text("Well done. Rest a moment.")

    # ---- finish: tension after 3 and a note → the history ----
    finish.locator("#tension-after").fill("3")
    expect(finish.locator("#tension-after-out")).to_have_text("3")
    finish.get_by_label("A note for next time (optional)").fill(NOTE)
    finish.get_by_role("button", name="Save and see the history").click()
    page.wait_for_url("**/history")
    sessions = page.locator("#sessions > li")
    expect(sessions).to_have_count(1)
    expect(sessions.first.locator(".tension-change")).to_have_text("7 → 3")
    expect(sessions.first).to_contain_text(f"“{NOTE}”")
    expect(sessions.first).to_contain_text("partner")
    expect(page.locator("#stat-sessions")).to_have_text("1")

    # ---- what the server keeps ----
    record = server.get("/api/v1/sessions")["sessions"][0]
    assert record["id"] == session_id
    assert record["status"] == "finished"
    assert (record["tension_before"], record["tension_after"]) == (7, 3)
    assert record["note"] == NOTE
    assert record["minutes_planned"] == MINUTES
    assert record["mode"] == "partner"

    watch.expect_clean("the session's pages")
    assert not server.trouble(), "\n".join(server.errors)


def test_a_stop_verdict_offers_no_way_to_a_session(
    server: Server,
    new_page: Callable[..., tuple[Page, Watch]],
    check_a11y: Callable[[Page, str], None],
) -> None:
    page, watch = new_page(server)
    answer_safety(page, yes={"pregnancy"})

    result = page.locator("#result")
    expect(result.get_by_role("heading", level=1)).to_have_text("Please don't massage today.")
    expect(result.locator(".reasons .reason-title")).to_have_text(["Pregnancy"])
    expect(result).to_contain_text("What to do:")
    expect(result.locator(".sources li")).not_to_have_count(0)
    # The way out is back to the start or to the questions; never to the map, plan or player.
    local = [
        href
        for href in result.locator("a").evaluate_all("links => links.map(a => a.href)")
        if href.startswith(server.url)
    ]
    assert local == [f"{server.url}/"]
    expect(result.get_by_role("button")).to_have_text(["Answer again"])
    expect(page.get_by_role("link", name=re.compile("Continue"))).to_have_count(0)
    screenshot(page, "laptop-safety-stop")
    check_a11y(page, "safety (stop)")
    watch.expect_clean("the stop verdict")

    # Typing the map's address sends the person back to the verdict.
    page.goto("/map")
    expect(page).to_have_url(re.compile(r"/safety$"))
    expect(page.locator("#result h1")).to_have_text("Please don't massage today.")
    watch.expect_clean("/map after a stop")

    # The plan's address: the server refuses the plan, and there is no Begin.
    page.goto("/plan")
    expect(page.locator("#plan-error h1")).to_have_text("Please don't massage today.")
    expect(page.locator("#plan")).to_be_hidden()
    expect(page.get_by_role("button", name="Begin", exact=True)).to_be_hidden()
    # The browser logs the refused request itself; nothing else may appear.
    watch.expect_clean("/plan after a stop", allowed=["status of 409 (Conflict)"])

    # Around the pages: the API refuses a session for a stop verdict, with the CSRF header.
    body = {
        "mode": "partner",
        "minutes": 15,
        "focus": [{"region": "shoulders", "tension": 8}],
        "pressure": "medium",
        "oil": True,
        "findings": [{"condition": "pregnancy"}],
        "tension_before": 7,
    }
    refused = page.request.post(
        "/api/v1/sessions", data=body, headers={"X-CSRF-Token": csrf_token(page.context)}
    )
    assert refused.status == 409, refused.text()
    answer = refused.json()
    assert answer["error"]
    assert answer["safety"]["verdict"] == "stop"
    assert [r["condition"] for r in answer["safety"]["reasons"]] == ["pregnancy"]
    assert page.request.get("/api/v1/sessions").json() == {"sessions": []}
    assert server.get("/api/v1/sessions") == {"sessions": []}
    assert not server.trouble(), "\n".join(server.errors)


def test_a_skip_while_paused_shows_the_next_step(
    lite_server: Server, new_page: Callable[..., tuple[Page, Watch]]
) -> None:
    """Paused, `n` moves to the next step, and the page stays there once it has adopted the
    server's answer.

    The server applies the skip at the active time the page sent, or at a later one it has
    saved; the page sends its clock rounded to the millisecond (`Math.round` in `activeNow()`).
    When the server's time is ahead of the paused page's clock, even by a rounding, the next
    step begins just after that clock, and the page shows the step before at 0:00 (or 0:01);
    further skips do nothing until it runs again. Left to chance this happens to about a third
    of the skips; here every skip reaches the server 1 ms later than the page sent it."""
    # Requests a service worker handles pass by page.route: this test does without it.
    page, watch = new_page(lite_server, service_workers="block")
    answer_safety(page)
    page.get_by_role("link", name="Continue: where is it tense?").click()
    choose_on_map(page, TENSIONS, MINUTES)
    steps = len(see_plan(page)["steps"])
    begin_session(page, tension_before=7)

    def round_up(route: Route) -> None:
        body = route.request.post_data_json
        if body and body.get("kind") == "skip":
            body["active"] = round(body["active"] + 0.001, 3)
            route.continue_(post_data=json.dumps(body))
        else:
            route.continue_()

    page.route("**/api/v1/sessions/*/events", round_up)
    page.get_by_role("button", name="Begin").click()
    page.locator("#start-panel").wait_for(state="hidden")
    page.keyboard.press("Space")
    expect(page.locator("#pause-btn")).to_have_text("Resume")

    shown = []
    for step in range(2, steps + 1):
        with page.expect_response(is_skip):
            page.keyboard.press("n")
        # The page adopts the server's answer as soon as it has read it.
        page.wait_for_timeout(200)
        now = f"{page.locator('#step-count').text_content()} at {countdown(page)}"
        shown.append((now, f"Step {step} of {steps}"))
    wrong = [f"{now} (expected {want})" for now, want in shown if not now.startswith(want)]
    assert not wrong, "after a skip while paused, the player shows:\n" + "\n".join(wrong)
    # Playwright's own notice that this test blocked the service worker.
    watch.expect_clean("the player", allowed=["Service Worker registration blocked by Playwright"])
