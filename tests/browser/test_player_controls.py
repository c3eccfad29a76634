"""The player's keyboard and its drawings in a real browser: every feedback key reaches the
server, `?` opens and closes the list of keys, "How to do it" shows the step's technique, and
the hands move along the step's motion while the session runs (and stand still while paused)."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from playwright.sync_api import expect

from .support import answer_safety, begin_session, choose_on_map, see_plan

if TYPE_CHECKING:
    from collections.abc import Callable

    from playwright.sync_api import Page

    from .support import Server, Watch

TENSIONS = {"shoulders": 8}
MINUTES = 30  # at 60×: the first step lasts a second or two, long enough to watch the hands


def hand_place(page: Page) -> str:
    return page.locator(".hand").first.get_attribute("transform") or ""


def test_keys_help_howto_and_the_moving_hands(
    lite_server: Server, new_page: Callable[..., tuple[Page, Watch]]
) -> None:
    page, _ = new_page(lite_server)
    answer_safety(page)
    page.get_by_role("link", name="Continue: where is it tense?").click()
    choose_on_map(page, TENSIONS, MINUTES)
    see_plan(page)
    session_id = begin_session(page, tension_before=6)
    page.get_by_role("button", name="Begin").click()
    page.locator("#start-panel").wait_for(state="hidden")

    # Running: the hands move along the step's motion (seen within one step, not by a new one).
    moved = False
    for _ in range(10):
        step, place = page.locator("#step-count").text_content(), hand_place(page)
        page.wait_for_timeout(100)
        if page.locator("#step-count").text_content() == step and hand_place(page) != place:
            moved = True
            break
    assert moved, "the hands stood still within a step while the session ran"
    page.keyboard.press("Space")
    expect(page.locator("#pause-btn")).to_have_text("Resume")
    # The frame already on screen was drawn while running: the next one draws the paused moment.
    page.evaluate("() => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)))")
    still = hand_place(page)
    page.wait_for_timeout(300)
    assert hand_place(page) == still, "the hands moved while paused"

    # Every feedback key, paused: its sentence, and the server's record of it.
    message = page.locator("#message")
    for key, kind, said in [
        ("+", "firmer", r"^Firmer"),
        ("-", "softer", r"^Softer|^That is already the lightest touch"),
        ("g", "good", r"."),
        ("T", "tender", r"^Tender spot"),
    ]:
        before = len(lite_server.session(session_id)["record"]["feedback"])
        page.keyboard.press(key)
        expect(message).to_have_text(re.compile(said))
        lite_server.wait_for(
            session_id,
            f"the {kind} key",
            lambda view, n=before, k=kind: (
                len(view["record"]["feedback"]) > n and view["record"]["feedback"][-1]["kind"] == k
            ),
        )

    # `?` opens the list of keys and closes it again; keys do nothing while it is open.
    page.keyboard.press("?")
    help_dialog = page.locator("#help")
    expect(help_dialog).to_be_visible()
    seq = lite_server.session(session_id)["state"]["seq"]
    page.keyboard.press("n")
    page.keyboard.press("?")
    expect(help_dialog).to_be_hidden()
    assert lite_server.session(session_id)["state"]["seq"] == seq, "a key acted behind the dialog"

    # "How to do it": the card of the technique the step names, with its numbered steps.
    page.locator("#howto summary").click()
    name = page.locator("#doing strong").text_content() or ""
    assert name
    expect(page.locator("#howto-body h3")).to_have_text(name)
    expect(page.locator("#howto-body ol > li").first).to_be_visible()
