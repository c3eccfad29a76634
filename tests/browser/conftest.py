"""Fixtures of the browser tests: Chromium launched once (for this package), a real
`backrub serve --port 0 --speed 60` per test on a copy of the run's migrated SQLite file or
PostgreSQL database (tests/conftest.py), and a new browser context per test with a watch on its
console.

Screenshots go to `<repo>/.artifacts/screenshots/` (git-ignored); a failed test leaves a
screenshot of each of its pages in `<repo>/.artifacts/failures/`. axe-core's findings below
"serious" are listed at the end of the run and in `<repo>/.artifacts/axe.txt`.
"""

from __future__ import annotations

from contextlib import suppress
from typing import TYPE_CHECKING, Any

import pytest
from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import expect, sync_playwright

from pg_databases import copy_sqlite

from .support import (
    CHROMIUM,
    CHROMIUM_ARGS,
    FAILURES,
    MINOR_FINDING,
    SIZES,
    Server,
    Watch,
    axe_findings,
    start_server,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from pathlib import Path

    from playwright.sync_api import Browser, BrowserContext, Page

REPORTS = pytest.StashKey[dict[str, pytest.TestReport]]()


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    """Keep each phase's report on the test, so fixtures can tell that the test failed."""
    report = yield
    item.stash.setdefault(REPORTS, {})[report.when] = report
    return report


# ---- the browser --------------------------------------------------------------------------------


@pytest.fixture(scope="package")
def browser() -> Iterator[Browser]:
    """Debian's Chromium, launched once for all the browser tests."""
    if not CHROMIUM.is_file():
        pytest.fail(
            f"The browser tests need Debian's Chromium at {CHROMIUM}, which is missing. "
            "`make test` installs it (scripts/ensure-chromium); by hand: apt-get install chromium",
            pytrace=False,
        )
    # Slow machines (2 cores, a server and a database beside the browser) get time to answer.
    expect.set_options(timeout=10_000)
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture
def new_page(
    browser: Browser, request: pytest.FixtureRequest
) -> Iterator[Callable[..., tuple[Page, Watch]]]:
    """`new_page(server, size="laptop", **options)`: a page in a new browser context on the
    server (`options` go to `new_context`), and the watch on that context's console and
    errors."""
    contexts: list[BrowserContext] = []

    def make(server: Server, size: str = "laptop", **options: Any) -> tuple[Page, Watch]:
        phone = size == "phone"
        context = browser.new_context(
            base_url=server.url,
            viewport=SIZES[size],
            is_mobile=phone,
            has_touch=phone,
            locale="en-GB",
            timezone_id="Europe/London",
            **options,
        )
        context.set_default_timeout(10_000)
        contexts.append(context)
        watch = Watch(context)
        return context.new_page(), watch

    yield make
    call = request.node.stash.get(REPORTS, {}).get("call")
    failed = call is not None and call.failed
    name = "".join(c if c.isalnum() or c in "-_" else "_" for c in request.node.name)
    for n, context in enumerate(contexts):
        if failed:
            FAILURES.mkdir(parents=True, exist_ok=True)
            for m, page in enumerate(context.pages):
                with suppress(PlaywrightError):
                    page.screenshot(path=FAILURES / f"{name}-{n}-{m}.png", full_page=True)
        context.close()


@pytest.fixture
def check_a11y(request: pytest.FixtureRequest) -> Callable[[Page, str], None]:
    """`check_a11y(page, where)`: axe-core on the page as it is; fails on serious or critical
    violations and keeps the rest for the end-of-run list."""

    def check(page: Page, where: str) -> None:
        serious, others = axe_findings(page, where)
        request.node.user_properties.extend((MINOR_FINDING, line) for line in others)
        assert not serious, "axe-core found serious or critical violations:\n" + "\n".join(serious)

    return check


# ---- the server and its database ----------------------------------------------------------------


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> str | None:
    """A database at this code's schema, with no rows: None for `serve`'s default, a copy of
    the migrated SQLite file put where `serve` looks for it (its data folder in `tmp_path`), or
    a copy of the migrated PostgreSQL database."""
    if request.param == "sqlite":
        copy_sqlite(request.getfixturevalue("sqlite_template"), tmp_path / "data" / "backrub.db")
        return None
    url: str = request.getfixturevalue("migrated_postgres")
    return url


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Callable[[str | None], Server]]:
    """`serve(database_url)`: a running `backrub serve` (on SQLite in `tmp_path` when the URL
    is None), stopped when the test ends."""
    servers: list[Server] = []

    def start(database_url: str | None) -> Server:
        server = start_server(tmp_path, database_url)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


@pytest.fixture
def server(database: str | None, serve: Callable[[str | None], Server]) -> Server:
    """`backrub serve` on SQLite and on PostgreSQL (the test runs once with each)."""
    return serve(database)


@pytest.fixture
def lite_server(serve: Callable[[str | None], Server]) -> Server:
    """`backrub serve` on a fresh SQLite file, for what does not depend on the database."""
    return serve(None)
