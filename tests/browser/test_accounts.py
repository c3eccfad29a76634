"""Accounts in a real browser: `backrub serve --accounts` (as beyond this computer) on SQLite and
PostgreSQL. A person is sent to sign in, makes an account (consent asked), plans and starts a
session; a second person cannot open it; signing out ends the first one's access."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

import pytest
from playwright.sync_api import expect

from .support import (
    answer_safety,
    begin_session,
    choose_on_map,
    screenshot,
    see_plan,
    start_server,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from pathlib import Path

    from playwright.sync_api import Page

    from .support import Server, Watch

PASSWORD = "a calm back every week"  # noqa: S105 - a test account's
LOGIN_COOKIE = "__Host-backrub_login"


@pytest.fixture
def hosted(tmp_path: Path, database: str | None) -> Iterator[Server]:
    server = start_server(tmp_path, database, options=["--accounts"])
    try:
        yield server
    finally:
        server.stop()


def sign_up(page: Page, email: str, *, size: str, check_a11y: Callable[[Page, str], None]) -> None:
    page.goto("/history")
    expect(page).to_have_url(re.compile(r"/signin\?next=/history$"))
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    check_a11y(page, "sign in")
    screenshot(page, f"{size}-signin")
    page.get_by_role("link", name="Make an account").click()
    expect(page).to_have_url(re.compile(r"/signup\?next=/history$"))
    page.get_by_label("Email address").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    # Without consent, the server refuses and the page says why.
    page.get_by_role("button", name="Make my account").click()
    expect(page.locator("#form-error")).to_contain_text("consent must be true")
    check_a11y(page, "sign up, refused")
    screenshot(page, f"{size}-signup")
    page.get_by_label("I agree that backrub keeps this for me.").check()
    page.get_by_role("button", name="Make my account").click()
    expect(page).to_have_url(re.compile(r"/history$"))
    expect(page.get_by_role("button", name="Sign out")).to_be_visible()


def test_accounts_keep_each_persons_sessions_theirs(
    hosted: Server,
    new_page: Callable[..., tuple[Page, Watch]],
    check_a11y: Callable[[Page, str], None],
) -> None:
    ana, ana_watch = new_page(hosted, "laptop")
    sign_up(ana, "ana@example.org", size="laptop", check_a11y=check_a11y)
    ana_watch.expect_clean("signing up", allowed=["status of 422"])
    cookie = next(c for c in ana.context.cookies() if c["name"] == LOGIN_COOKIE)
    # The browser kept a Secure, HttpOnly cookie for this host only.
    assert cookie["secure"] and cookie["httpOnly"] and cookie["sameSite"] == "Lax"
    assert cookie["path"] == "/" and not cookie["domain"].startswith(".")
    assert ana.evaluate("document.cookie").find(LOGIN_COOKIE) == -1

    answer_safety(ana)
    ana.get_by_role("link", name="Continue: where is it tense?").click()
    choose_on_map(ana, {"shoulders": 7}, 15)
    see_plan(ana)
    session_id = begin_session(ana, 6)

    ben, ben_watch = new_page(hosted, "phone")
    ben.goto("/signup")
    screenshot(ben, "phone-signup")
    ben.get_by_label("Email address").fill("ben@example.org")
    ben.get_by_label("Password").fill(PASSWORD)
    ben.get_by_label("I agree that backrub keeps this for me.").check()
    ben.get_by_role("button", name="Make my account").click()
    expect(ben).to_have_url(re.compile(r"/$"))
    check_a11y(ben, "welcome, signed in")
    screenshot(ben, "phone-welcome-signed-in")
    # Ben cannot open Ana's session, by page or by API, and his history is empty.
    answer = ben.goto(f"/play/{session_id}")
    assert answer is not None and answer.status == 404
    api = ben.request.get(f"/api/v1/sessions/{session_id}")
    assert api.status == 404
    assert ben.request.get("/api/v1/sessions").json() == {"sessions": []}

    ben.goto("/account")
    expect(ben.get_by_text("Signed in as ben@example.org")).to_be_visible()
    check_a11y(ben, "account")
    screenshot(ben, "phone-account")

    # Ana signs out: her pages and her session are closed to this browser until she signs in.
    ana.goto("/history")
    ana.get_by_role("button", name="Sign out").click()
    expect(ana).to_have_url(re.compile(r"/signin$"))
    assert not [c for c in ana.context.cookies() if c["name"] == LOGIN_COOKIE]
    assert ana.request.get(f"/api/v1/sessions/{session_id}").status == 401
    ana.goto(f"/play/{session_id}")
    expect(ana).to_have_url(re.compile(rf"/signin\?next=/play/{session_id}$"))
    ana.get_by_label("Email address").fill("ana@example.org")
    ana.get_by_label("Password").fill(PASSWORD)
    ana.get_by_role("button", name="Sign in").click()
    expect(ana).to_have_url(re.compile(rf"/play/{session_id}$"))
    expect(ana.locator("#start-panel")).to_be_visible()

    # The refusals the test provoked are the only things the browsers reported.
    ana_watch.expect_clean("Ana's pages", allowed=["status of 422", "status of 401"])
    ben_watch.expect_clean("Ben's pages", allowed=["status of 404"])
    assert not hosted.trouble()
