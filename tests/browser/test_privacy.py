"""Health data stays where it belongs (issue 6: the canary test, and stored XSS): a marker in a
session's note and the safety answers' condition ids appear in no server log line, no URL the
browser asked for, nothing in localStorage, and no request to any other host; the note, an
HTML payload, renders as text and runs nothing."""

from __future__ import annotations

import re
import uuid
from typing import TYPE_CHECKING

import pytest
from playwright.sync_api import expect

from .support import answer_safety, begin_session, choose_on_map, see_plan, start_server

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from pathlib import Path

    from playwright.sync_api import Page, Request

    from .support import Server, Watch

# A caution whose id would tell what the person has; it must stay out of logs and URLs too.
CAUTION = "blood-thinners"


@pytest.fixture
def loud_server(tmp_path: Path) -> Iterator[Server]:
    """A server whose every line of output is kept (start_server keeps standard error)."""
    server = start_server(tmp_path, None)
    try:
        yield server
    finally:
        server.stop()


def test_a_canary_in_the_note_goes_nowhere_but_the_server(
    loud_server: Server,
    new_page: Callable[..., tuple[Page, Watch]],
) -> None:
    marker = f"CANARY{uuid.uuid4().hex[:12]}"
    payload = f'{marker} <img src=x onerror="window.__xss=1"><script>window.__xss=2</script>'
    page, watch = new_page(loud_server, "laptop")
    asked: list[Request] = []
    page.context.on("request", lambda request: asked.append(request))

    answer_safety(page, yes={CAUTION})
    page.get_by_role("link", name="Continue: where is it tense?").click()
    choose_on_map(page, {"shoulders": 6}, 15)
    see_plan(page)
    session_id = begin_session(page, 6)
    page.get_by_role("button", name="Begin").click()
    page.locator("#end-btn").click()
    page.locator("#end-go").click()
    finish = page.locator("#finish-panel")
    expect(finish).to_be_visible()
    finish.get_by_label("A note for next time (optional)").fill(payload)
    finish.get_by_role("button", name="Save and see the history").click()
    page.wait_for_url("**/history")
    sessions = page.locator("#sessions > li")
    expect(sessions.first).to_contain_text(payload)

    # Rendered as text: no element made from it, no script run.
    assert page.evaluate("window.__xss") is None
    assert page.locator("#sessions img[src='x']").count() == 0
    # The server kept it as typed.
    assert loud_server.get("/api/v1/sessions")["sessions"][0]["note"] == payload

    # Nowhere else: no URL, no other host, no localStorage, no log line.
    for request in asked:
        # blob: URLs are the page's own objects (the voice's clips), never a network request.
        own = request.url.removeprefix("blob:")
        assert own.startswith(loud_server.url), f"a request left the app: {request.url}"
        assert marker not in request.url and CAUTION not in request.url
    stored = page.evaluate("JSON.stringify(Object.assign({}, window.localStorage))")
    assert marker not in stored and CAUTION not in stored
    assert session_id not in page.evaluate("document.cookie")
    loud_server.stop()
    output = "\n".join(loud_server.errors)
    assert marker not in output and CAUTION not in output
    assert not re.search(r"Traceback|ERROR", output)
    watch.expect_clean("the session and its history")
