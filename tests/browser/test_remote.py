"""The receiver's remote in real browsers, with two `backrub serve` processes behind one
database (SQLite and PostgreSQL): the giver's player on server A opens the remote and shows its
code; a second browser context on server B opens /r/{code} and taps Softer; the giver's player
shows and re-plans it within a second. Nothing about it may pass through a process's memory."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from playwright.sync_api import expect

from .support import (
    ARTIFACTS,
    answer_safety,
    begin_session,
    choose_on_map,
    csrf_token,
    screenshot,
    see_plan,
)

if TYPE_CHECKING:
    from collections.abc import Callable

    from playwright.sync_api import Page

    from .support import Server, Watch

TENSIONS = {"shoulders": 8, "lower-back": 5}
MINUTES = 15
# How long the receiver's tap may take to show on the giver's player.
WITHIN_MS = 1000
# The browser logs a refused request itself (the remote's tap after the end).
REFUSED = ["status of 409 (Conflict)"]

# On the giver's page: the moment (Date.now()) the banner first says "Receiver: softer".
WATCH_BANNER = """() => {
  window.remoteShownAt = null;
  const said = document.getElementById("remote-said");
  new MutationObserver(() => {
    if (window.remoteShownAt === null && said.textContent === "Receiver: softer" && !said.hidden) {
      window.remoteShownAt = Date.now();
    }
  }).observe(said, { childList: true, characterData: true, subtree: true, attributes: true });
}"""
# On the remote's page: the moment of the tap.
WATCH_TAP = """() => {
  window.tappedAt = null;
  document.querySelector('[data-kind="softer"]').addEventListener(
    "click", () => (window.tappedAt = Date.now()), { capture: true, once: true });
}"""


def feedback_kinds(view: dict[str, Any]) -> list[str]:
    return [event["kind"] for event in view["record"]["feedback"]]


def test_the_receivers_softer_reaches_the_giver_through_another_process(
    serve: Callable[[str | None], Server],
    database: str | None,
    new_page: Callable[..., tuple[Page, Watch]],
    check_a11y: Callable[[Page, str], None],
) -> None:
    giver_server = serve(database)
    remote_server = serve(database)  # the same database (the same SQLite file, or PostgreSQL)
    assert giver_server.url != remote_server.url

    # ---- the giver: safety → map (a partner's back) → plan → the player ----
    giver, giver_watch = new_page(giver_server, "phone")
    answer_safety(giver)
    giver.get_by_role("link", name="Continue: where is it tense?").click()
    choose_on_map(giver, TENSIONS, MINUTES)
    assert see_plan(giver)["mode"] == "partner"
    session_id = begin_session(giver, tension_before=7)

    # ---- the remote's panel: the code, large, and its QR code ----
    opener = giver.locator("#start-panel").get_by_role("button", name="Receiver's remote")
    expect(opener).to_be_visible()
    opener.click()
    panel = giver.locator("#remote-dialog")
    expect(panel).to_be_visible()
    code_text = giver.locator("#remote-code")
    expect(code_text).to_have_text(re.compile(r"^[A-HJKMNP-Z2-9]{6}$"))
    code = code_text.text_content() or ""
    expect(giver.locator("#remote-qr")).to_be_visible()
    # The QR image is drawn by the server: wait for it to arrive, then check it decoded.
    giver.wait_for_function(
        "() => { const img = document.getElementById('remote-qr');"
        " return img.complete && img.naturalWidth > 0; }"
    )
    expect(giver.locator("#remote-url")).to_have_text(f"{giver_server.url}/r/{code}")
    expect(giver.locator("#remote-state")).to_have_text("Waiting for the receiver…")
    screenshot(giver, "phone-player-remote-panel")
    check_a11y(giver, "player (the remote's panel)")
    panel.get_by_role("button", name="Done").click()
    expect(panel).to_be_hidden()

    # Begin, and pause at once (a tap on the clock): the feedback below meets step 1.
    giver.get_by_role("button", name="Begin").click()
    giver.locator("#start-panel").wait_for(state="hidden")
    giver.locator("#countdown").click()
    expect(giver.locator("#pause-btn")).to_have_text("Resume")

    # ---- the receiver, on the other server: type the code, then the remote ----
    remote, remote_watch = new_page(remote_server, "phone")
    remote.goto("/r")
    expect(remote.get_by_role("heading", level=1)).to_have_text("Join as the receiver")
    screenshot(remote, "phone-remote-join")
    check_a11y(remote, "remote (type the code)")
    remote.get_by_label("The code on the giver's screen").fill(code.lower())
    remote.get_by_role("button", name="Open the remote").click()
    remote.wait_for_url(f"**/r/{code}")
    expect(remote.get_by_role("heading", level=1)).to_have_text("How does it feel?")
    for word in ("Good", "Softer", "Firmer", "Tender"):
        button = remote.get_by_role("button", name=re.compile(f"^{word}"))
        box = button.bounding_box()
        assert box is not None and box["height"] >= 48 and box["width"] >= 48, word
    check_a11y(remote, "remote (the buttons)")

    # ---- Softer: on the giver's player within a second, said, and re-planned ----
    before = feedback_kinds(giver_server.session(session_id))
    giver.evaluate(WATCH_BANNER)
    remote.evaluate(WATCH_TAP)
    remote.get_by_role("button", name=re.compile("^Softer")).click()
    expect(remote.locator("#remote-status")).to_have_text("Softer: sent — the giver sees it.")
    said = giver.locator("#remote-said")
    expect(said).to_have_text("Receiver: softer", timeout=WITHIN_MS)
    expect(said).to_be_visible()
    shown_at = giver.evaluate("window.remoteShownAt")
    tapped_at = remote.evaluate("window.tappedAt")
    latency = shown_at - tapped_at
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with (ARTIFACTS / "remote-latency.txt").open("a", encoding="utf-8") as out:
        backend = "sqlite" if database is None else "postgresql"
        out.write(f"{backend}: the remote's tap → the giver's banner in {latency} ms\n")
    assert 0 <= latency < WITHIN_MS, f"the remote's softer took {latency} ms to show"
    # The player's own feedback path: its sentence, and the session's record (read through the
    # other process).
    expect(giver.locator("#message")).to_have_text(
        re.compile(r"^Softer: \w+ pressure now\.|^That is already the lightest touch\.")
    )
    remote_server.wait_for(
        session_id,
        "the remote's softer",
        lambda view: feedback_kinds(view) == [*before, "softer"],
    )
    expect(giver.locator("#remote-state")).to_have_text("Last from the receiver: softer")
    screenshot(remote, "phone-remote")
    screenshot(giver, "phone-player-remote-said")

    # ---- a reload of the player does not replay it ----
    giver.reload()
    expect(giver.locator("#veil-title")).to_have_text("Paused")
    giver.wait_for_timeout(800)
    expect(giver.locator("#remote-said")).to_be_hidden()
    assert feedback_kinds(giver_server.session(session_id)) == [*before, "softer"]

    # ---- the session ends: the remote says so ----
    token = csrf_token(giver.context)
    ended = giver.request.post(
        f"/api/v1/sessions/{session_id}/finish",
        data={"active": 30, "tension_after": 3, "stopped": True},
        headers={"X-CSRF-Token": token},
    )
    assert ended.status == 200, ended.text()
    remote.get_by_role("button", name=re.compile("^Good")).click()
    expect(remote.get_by_role("heading", level=1)).to_have_text("The session has ended")
    check_a11y(remote, "remote (ended)")
    screenshot(remote, "phone-remote-ended")

    giver_watch.expect_clean("the giver's player")
    remote_watch.expect_clean("the remote", allowed=REFUSED)
    for server in (giver_server, remote_server):
        assert not server.trouble(), "\n".join(server.errors)


def test_an_unknown_code_says_so(
    lite_server: Server,
    new_page: Callable[..., tuple[Page, Watch]],
    check_a11y: Callable[[Page, str], None],
) -> None:
    page, watch = new_page(lite_server, "phone")
    page.goto("/r/ZZZZZZ")
    expect(page.get_by_role("heading", level=1)).to_have_text("No session with this code")
    expect(page.get_by_role("link", name="Type a code")).to_be_visible()
    check_a11y(page, "remote (unknown code)")
    screenshot(page, "phone-remote-unknown")
    watch.expect_clean("an unknown code", allowed=["status of 404 (Not Found)"])

    # Dark when the phone is dark, like the planning pages (the receiver lies in a dim room).
    dark, dark_watch = new_page(lite_server, "phone", color_scheme="dark")
    dark.goto("/r")
    expect(dark.get_by_role("heading", level=1)).to_have_text("Join as the receiver")
    assert dark.evaluate("getComputedStyle(document.body).backgroundColor") == "rgb(27, 35, 48)"
    check_a11y(dark, "remote (type the code, dark)")
    screenshot(dark, "phone-remote-join-dark")
    dark_watch.expect_clean("the remote in the dark")
