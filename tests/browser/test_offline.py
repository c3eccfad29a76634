"""The player without the network, in a real browser: events wait in the outbox (kept in
IndexedDB, mirrored in sessionStorage), a reload offline resumes where the person was — not
where the server last heard — and says how many changes wait; they reach the server when the
network returns, also from a new page after the first was closed offline, and after the server
itself was stopped and started again."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from playwright.sync_api import expect

from .support import play_to_step_two, screenshot, start_server, step_at

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from playwright.sync_api import Page

    from .support import Server, Watch

WAITING = re.compile(r"^Offline — (\d+) changes? will be sent when you're back online\.$")
UNREACHABLE = re.compile(
    r"^The server can't be reached — (\d+) changes? will be sent when it's back\.$"
)
# The browser's own line for each of the player's sends that could not go out (the service
# worker passes the failure on), and for a spoken cue's clip while the server was down; the
# pages themselves log nothing.
UNSENT = re.compile(
    r"^console\.error: Failed to load resource: net::ERR_[A-Z_]+ "
    r"\(http://[^ ]+/api/v1/sessions/[0-9a-f]+/(events|voice):0\)$"
)
# The fields an event kept in the browser may hold: positions, cue ids, a feedback word.
EVENT_FIELDS = {"kind", "active", "seq", "fired", "feedback"}

KEPT_EVENTS = """async (key) => {
  const db = await new Promise((resolve, reject) => {
    const request = indexedDB.open("backrub");
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => reject(request.error);
  });
  if (!db.objectStoreNames.contains("outbox")) { db.close(); return []; }
  const record = await new Promise((resolve, reject) => {
    const request = db.transaction("outbox").objectStore("outbox").get(key);
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => reject(request.error);
  });
  db.close();
  return record ? record.items.map((item) => item.body) : [];
}"""


def kept_events(page: Page, session_id: str) -> list[dict[str, Any]]:
    """The bodies the outbox keeps in IndexedDB for the session."""
    bodies: list[dict[str, Any]] = page.evaluate(KEPT_EVENTS, session_id)
    return bodies


def settled(server: Server, session_id: str, step: int) -> dict[str, Any]:
    """Wait until the server has saved the session on `step` (0-based); its view."""
    server.wait_for(session_id, f"step {step + 1}", lambda view: step_at(view) >= step)
    return server.session(session_id)


def where(page: Page) -> tuple[str, str, str]:
    """What the player shows of its position: the step, its countdown, the time left."""
    return (
        page.locator("#step-count").text_content() or "",
        page.locator("#countdown").text_content() or "",
        page.locator("#session-left").text_content() or "",
    )


def pause(page: Page) -> None:
    page.get_by_role("button", name="Pause", exact=True).click()
    expect(page.locator("#pause-btn")).to_have_text("Resume")


def waiting(page: Page, pattern: re.Pattern[str]) -> int:
    """The status line says how many changes wait; that number."""
    status = page.locator("#net-status")
    expect(status).to_be_visible()
    expect(status).to_have_text(pattern)
    found = pattern.match(status.text_content() or "")
    assert found
    return int(found.group(1))


def expect_clean(watch: Watch, where: str) -> None:
    """Nothing reported but the sends that could not go out."""
    watch.seen = [line for line in watch.seen if not UNSENT.match(line)]
    watch.expect_clean(where)


def feedback_kinds(view: dict[str, Any]) -> list[str]:
    return [event["kind"] for event in view["record"]["feedback"]]


def test_a_reload_offline_resumes_where_the_person_was_and_sends_it_all_later(
    lite_server: Server,
    new_page: Callable[..., tuple[Page, Watch]],
    check_a11y: Callable[[Page, str], None],
) -> None:
    page, watch = new_page(lite_server)
    session_id, steps = play_to_step_two(page)
    before = settled(lite_server, session_id, 1)

    # ---- offline: skip to step 3, "softer", let it run a moment, pause ----
    page.context.set_offline(True)
    page.keyboard.press("n")
    expect(page.locator("#step-count")).to_have_text(f"Step 3 of {steps}")
    page.get_by_role("button", name="Softer", exact=True).click()
    expect(page.locator("#message")).to_have_text(re.compile(r"^Softer: noted"))
    page.wait_for_timeout(700)
    pause(page)
    shown = where(page)
    sent_offline = waiting(page, WAITING)
    assert sent_offline >= 3  # the skip, the feedback, the pause (and progress)

    # Kept in the browser: positions only, nothing in localStorage.
    kept = kept_events(page, session_id)
    assert [body["seq"] for body in kept] == list(
        range(before["state"]["seq"] + 1, before["state"]["seq"] + 1 + sent_offline)
    )
    assert all(set(body) <= EVENT_FIELDS for body in kept), kept
    assert [body["kind"] for body in kept if body["kind"] in {"skip", "feedback"}] == [
        "skip",
        "feedback",
    ]
    assert page.evaluate("() => localStorage.length") == 0

    # ---- reload, still offline: where the person was, paused; the server knows none of it ----
    page.reload()
    expect(page.locator("#veil-title")).to_have_text("Paused")
    expect(page.locator("#step-count")).to_have_text(shown[0])
    assert where(page) == shown
    waiting_now = waiting(page, WAITING)
    assert waiting_now >= sent_offline  # leaving the page may add a progress save
    assert lite_server.session(session_id)["state"]["seq"] == before["state"]["seq"]
    assert step_at(lite_server.session(session_id)) == 1
    screenshot(page, "laptop-player-offline")
    check_a11y(page, "player (offline, after a reload)")

    # ---- online: every change reaches the server, in order, and the status clears ----
    page.context.set_offline(False)
    expected_seq = before["state"]["seq"] + waiting_now
    lite_server.wait_for(
        session_id,
        f"the offline changes (seq {expected_seq})",
        lambda view: view["state"]["seq"] == expected_seq,
    )
    expect(page.locator("#net-status")).to_be_hidden()
    view = lite_server.session(session_id)
    assert feedback_kinds(view) == [*feedback_kinds(before), "softer"]
    assert step_at(view) == 2
    assert view["record"]["feedback"][-1]["step"] == 2
    # The page keeps its place once it has adopted the server's answers.
    expect(page.locator("#step-count")).to_have_text(shown[0])
    assert where(page)[0] == shown[0]
    assert kept_events(page, session_id) == []
    expect_clean(watch, "the player offline")
    assert not lite_server.trouble(), "\n".join(lite_server.errors)


def test_events_kept_when_the_page_was_closed_offline_go_from_the_next_page(
    lite_server: Server, new_page: Callable[..., tuple[Page, Watch]]
) -> None:
    page, watch = new_page(lite_server)
    session_id, steps = play_to_step_two(page)
    before = settled(lite_server, session_id, 1)

    page.context.set_offline(True)
    page.keyboard.press("n")
    expect(page.locator("#step-count")).to_have_text(f"Step 3 of {steps}")
    page.get_by_role("button", name="Firmer", exact=True).click()
    pause(page)
    shown = where(page)
    count = waiting(page, WAITING)
    # Closed once IndexedDB has them all (a new tab has no sessionStorage of this one).
    for _ in range(50):
        if len(kept_events(page, session_id)) == count:
            break
        page.wait_for_timeout(50)
    assert len(kept_events(page, session_id)) == count
    context = page.context
    page.close()
    # What the closing page hands to the browser to send fails too: it is still offline.
    again = context.new_page()
    again.wait_for_timeout(500)

    context.set_offline(False)
    assert lite_server.session(session_id)["state"]["seq"] == before["state"]["seq"]
    again.goto(f"/play/{session_id}")
    expect(again.locator("#veil-title")).to_have_text("Paused")
    expect(again.locator("#step-count")).to_have_text(shown[0])
    # (Closing may have kept one more progress save: the page was hidden.)
    expected_seq = before["state"]["seq"] + count
    lite_server.wait_for(
        session_id,
        f"the changes kept from the closed page (seq {expected_seq} or one more)",
        lambda view: view["state"]["seq"] in {expected_seq, expected_seq + 1},
    )
    view = lite_server.session(session_id)
    assert feedback_kinds(view) == [*feedback_kinds(before), "firmer"]
    assert step_at(view) == 2
    expect(again.locator("#net-status")).to_be_hidden()
    assert where(again)[0] == shown[0]
    assert kept_events(again, session_id) == []
    expect_clean(watch, "the player, closed offline")


def test_the_page_keeps_its_changes_while_the_server_restarts(
    tmp_path: Path, lite_server: Server, new_page: Callable[..., tuple[Page, Watch]]
) -> None:
    page, watch = new_page(lite_server)
    session_id, steps = play_to_step_two(page)
    before = settled(lite_server, session_id, 1)

    lite_server.stop()
    page.keyboard.press("n")
    expect(page.locator("#step-count")).to_have_text(f"Step 3 of {steps}")
    page.get_by_role("button", name="Good", exact=True).click()
    pause(page)
    shown = where(page)
    count = waiting(page, UNREACHABLE)

    port = int(lite_server.url.rsplit(":", 1)[1])
    again = start_server(tmp_path, None, port=port)
    try:
        expected_seq = before["state"]["seq"] + count
        # The outbox tries again every 5 s.
        again.wait_for(
            session_id,
            f"the changes made while it was down (seq {expected_seq})",
            lambda view: view["state"]["seq"] == expected_seq,
        )
        view = again.session(session_id)
        assert feedback_kinds(view) == [*feedback_kinds(before), "good"]
        assert step_at(view) == 2
        expect(page.locator("#net-status")).to_be_hidden()
        assert where(page)[0] == shown[0]
        assert not again.trouble(), "\n".join(again.errors)
    finally:
        again.stop()
    expect_clean(watch, "the player while the server restarted")
