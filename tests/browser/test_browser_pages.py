"""Every page at phone and laptop size: a screenshot of each in `<repo>/.artifacts/screenshots/`
(look at them), axe-core on each (no serious or critical violations), and nothing in the
console (a CSP violation is a console error)."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

import pytest
from playwright.sync_api import expect

from .support import SIZES, answer_safety, begin_session, choose_on_map, screenshot, see_plan

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

    from playwright.sync_api import Page

    from .support import Server, Watch


@pytest.mark.parametrize("size", list(SIZES))
def test_every_page_at_phone_and_laptop_size(
    size: str,
    lite_server: Server,
    new_page: Callable[..., tuple[Page, Watch]],
    check_a11y: Callable[[Page, str], None],
) -> None:
    page, watch = new_page(lite_server, size)

    def look(name: str, allowed: Iterable[str] = ()) -> None:
        screenshot(page, f"{size}-{name}")
        check_a11y(page, f"{name} ({size})")
        watch.expect_clean(f"{name} ({size})", allowed)

    with page.expect_response("**/api/v1/sessions"):  # the check for an open session
        page.goto("/")
    expect(page.get_by_role("heading", level=1)).to_be_visible()
    look("index")

    page.goto("/safety")
    look("safety")
    page.get_by_role("button", name="Begin the questions").click()
    expect(page.locator("#progress-text")).to_have_text(re.compile(r"^1 of \d+$"))
    look("safety-question")
    answer_safety(page)
    look("safety-clear")

    page.get_by_role("link", name="Continue: where is it tense?").click()
    choose_on_map(page, {"shoulders": 8, "lower-back": 5}, minutes=15)
    look("map")

    see_plan(page)
    look("plan")
    begin_session(page, tension_before=7)
    look("player-start")

    page.get_by_role("button", name="Begin").click()
    expect(page.locator("#start-panel")).to_be_hidden()
    expect(page.locator("#step-count")).to_have_text(re.compile(r"^Step 1 of"))
    look("player")  # mid-step, running

    page.get_by_role("button", name="End session").click()
    expect(page.locator("#end-dialog")).to_be_visible()
    page.get_by_role("button", name="End it").click()
    expect(page.locator("#finish-title")).to_have_text("Ended. Rest a moment.")
    look("player-finish")
    page.locator("#tension-after").fill("3")
    page.get_by_role("button", name="Save and see the history").click()
    page.wait_for_url("**/history")
    expect(page.locator("#sessions .tension-change")).to_have_text(["7 → 3"])
    expect(page.locator("#chart-section")).to_be_visible()
    look("history")

    page.goto("/play/no-such-session")
    expect(page.get_by_role("heading", level=1)).to_have_text("Not here")
    # Chromium logs the page's own 404 status.
    look("not-found", allowed=["status of 404 (Not Found)"])

    # The watch is not blind: an inline script, which the CSP forbids, is reported.
    page.evaluate(
        "document.body.append(Object.assign(document.createElement('script'), "
        "{textContent: 'document.title = 1'}))"
    )
    with pytest.raises(AssertionError, match="Content Security Policy"):
        watch.expect_clean("an inline script")
    assert not lite_server.trouble(), "\n".join(lite_server.errors)


def test_the_clear_verdict_shows_only_its_own_words(
    lite_server: Server, new_page: Callable[..., tuple[Page, Watch]]
) -> None:
    page, watch = new_page(lite_server)
    answer_safety(page)
    result = page.locator("#result")
    expect(result.locator("h1")).to_have_text("Nothing stands in the way.")
    # Every piece of text in the result sits in an element of its own: no stray text node
    # (appending a missing part with `append(null)` writes the word "null").
    stray = result.evaluate(
        "el => [...el.childNodes].filter(n => n.nodeType === 3 && n.textContent.trim())"
        ".map(n => n.textContent)"
    )
    assert stray == [], f"stray text in the safety result: {stray}"
    expect(result).not_to_contain_text("null")
    watch.expect_clean("the clear verdict")
