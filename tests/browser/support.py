"""What the browser tests share: a real `backrub serve` in a subprocess, a watch on what the
browser reports (console messages, page errors: a CSP violation is a console error), axe-core,
screenshots, and the steps a person takes through the pages."""

from __future__ import annotations

import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import expect

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

    from playwright.sync_api import BrowserContext, ConsoleMessage, Page, WebError

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / ".artifacts"
SCREENSHOTS = ARTIFACTS / "screenshots"
FAILURES = ARTIFACTS / "failures"

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SIZES: dict[str, dict[str, int]] = {
    "phone": {"width": 390, "height": 844},
    "laptop": {"width": 1280, "height": 800},
}
# The player's clock runs this many times faster: 15 minutes take 15 s.
SPEED = 60
SERVER_START_SECONDS = 30
ADDRESS = re.compile(r"http://127\.0\.0\.1:\d+")
# What a server's standard error must never hold: uvicorn logs a fault inside backrub as an
# error with its traceback.
SERVER_TROUBLE = re.compile(r"Traceback|ERROR|CRITICAL")
SERIOUS = ("serious", "critical")
# A test's report carries axe-core's lesser findings in user properties of this name, to the list
# at the end of the run (tests/conftest.py), from whichever xdist worker ran the test.
MINOR_FINDING = "axe-minor"


# ---- the server ---------------------------------------------------------------------------------


@dataclass
class Server:
    """A `backrub serve` subprocess and the address it printed."""

    url: str
    process: subprocess.Popen[str]
    errors: list[str] = field(default_factory=list)
    readers: list[threading.Thread] = field(default_factory=list)

    def get(self, path: str) -> Any:
        """GET an API path from Python (not through the browser) and return its JSON."""
        response = httpx.get(f"{self.url}{path}", timeout=10)
        assert response.status_code == 200, f"GET {path}: {response.status_code} {response.text}"
        return response.json()

    def session(self, session_id: str) -> dict[str, Any]:
        view: dict[str, Any] = self.get(f"/api/v1/sessions/{session_id}")
        return view

    def wait_for(self, session_id: str, what: str, test: Callable[[dict[str, Any]], bool]) -> None:
        """Poll GET /api/v1/sessions/{id} until `test(view)` holds (the page sends its events
        in the background); fail saying `what` was expected."""
        deadline = time.monotonic() + 10
        view = self.session(session_id)
        while not test(view):
            if time.monotonic() > deadline:
                pytest.fail(f"The server never recorded {what}; it has:\n{view['state']}")
            time.sleep(0.1)
            view = self.session(session_id)

    def trouble(self) -> list[str]:
        """Lines of the server's standard error that tell of a fault."""
        return [line for line in self.errors if SERVER_TROUBLE.search(line)]

    def stop(self) -> None:
        """SIGTERM, then SIGKILL if it has not stopped within 5 s."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)
        for reader in self.readers:
            reader.join(timeout=5)
        for stream in (self.process.stdout, self.process.stderr):
            if stream is not None:
                stream.close()


def _pump(stream: Iterable[str], sink: Callable[[str], object]) -> None:
    for line in stream:
        sink(line.rstrip("\n"))


def start_server(
    tmp_path: Path,
    database_url: str | None,
    speed: int = SPEED,
    port: int = 0,
    options: Iterable[str] = (),
) -> Server:
    """`python -m backrub serve --port 0 --speed N` with its data and cache in `tmp_path` and
    its database there too (SQLite, the default: `database_url` None) or at `database_url`;
    returns once it has printed the address it serves (it takes connections then). `port`
    other than 0 serves on that port (a restart where the pages already are); `options` are
    more of `serve`'s (`--accounts`)."""
    env = {
        **os.environ,
        "BACKRUB_DATA_DIR": str(tmp_path / "data"),
        "BACKRUB_CACHE_DIR": str(tmp_path / "cache"),
        "PYTHONUNBUFFERED": "1",
    }
    env.pop("BACKRUB_DATABASE_URL", None)
    if database_url is not None:
        env["BACKRUB_DATABASE_URL"] = database_url
    command = [
        *(sys.executable, "-m", "backrub", "serve", "--port", str(port), "--speed", str(speed)),
        *options,
    ]
    process = subprocess.Popen(
        command,
        env=env,
        cwd=tmp_path,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        encoding="utf-8",
    )
    assert process.stdout is not None
    assert process.stderr is not None
    lines: queue.Queue[str | None] = queue.Queue()
    errors: list[str] = []

    def read_out() -> None:
        assert process.stdout is not None
        _pump(process.stdout, lines.put)
        lines.put(None)

    readers = [
        threading.Thread(target=read_out, daemon=True),
        threading.Thread(target=_pump, args=(process.stderr, errors.append), daemon=True),
    ]
    for reader in readers:
        reader.start()
    server = Server(url="", process=process, errors=errors, readers=readers)
    deadline = time.monotonic() + SERVER_START_SECONDS
    while True:
        try:
            line = lines.get(timeout=max(0.0, deadline - time.monotonic()))
        except queue.Empty:
            line = None
        found = ADDRESS.search(line) if line else None
        if found:
            server.url = found.group(0)
            return server
        if line is None:
            server.stop()
            said = "\n".join(errors) or "(nothing)"
            pytest.fail(
                f"`{' '.join(command[1:])}` printed no address within {SERVER_START_SECONDS} s "
                f"(exit {process.returncode}); it said:\n{said}",
                pytrace=False,
            )


# ---- what the browser reports -------------------------------------------------------------------


# The browser reports every refused fetch. A clip asked for just before a re-plan changed its cue
# is refused (422) and asked again with the new words (voice.js `sayClip`): by design, under load.
_REPLANNED_CLIP = "status of 422"


class Watch:
    """Every console message and uncaught page error of a browser context. The pages log
    nothing, so any message is a problem: a CSP violation, a failed load, a script error."""

    def __init__(self, context: BrowserContext) -> None:
        self.seen: list[str] = []
        context.on("console", self._console)
        context.on("weberror", self._error)

    def _console(self, message: ConsoleMessage) -> None:
        where = message.location
        if _REPLANNED_CLIP in message.text and where["url"].endswith("/voice"):
            return
        self.seen.append(
            f"console.{message.type}: {message.text} ({where['url']}:{where['lineNumber']})"
        )

    def _error(self, error: WebError) -> None:
        self.seen.append(f"page error: {error.error}")

    def expect_clean(self, where: str, allowed: Iterable[str] = ()) -> None:
        """Nothing reported since the last check, but for messages containing one of
        `allowed` (a 404 page's own status, say)."""
        allowed = tuple(allowed)
        seen, self.seen = self.seen, []
        problems = [line for line in seen if not any(text in line for text in allowed)]
        assert not problems, f"The browser reported on {where}:\n" + "\n".join(problems)


# ---- accessibility ------------------------------------------------------------------------------

AXE = Axe()


def axe_findings(page: Page, where: str) -> tuple[list[str], list[str]]:
    """axe-core run in the page: (serious or critical violations, the others), one line each.
    The script (from axe-playwright-python, offline) is put in once per loaded document."""
    if page.evaluate("typeof window.axe") == "undefined":
        page.evaluate(AXE.axe_script)
    results = page.evaluate("axe.run({resultTypes: ['violations']})")
    serious: list[str] = []
    minor: list[str] = []
    for violation in results["violations"]:
        targets = ", ".join(str(node["target"]) for node in violation["nodes"][:4])
        line = (
            f"{where}: {violation['id']} ({violation['impact']}) {violation['help']} "
            f"— {len(violation['nodes'])} element(s): {targets}"
        )
        (serious if violation["impact"] in SERIOUS else minor).append(line)
    return serious, minor


# ---- screenshots --------------------------------------------------------------------------------


def screenshot(page: Page, name: str, folder: Path = SCREENSHOTS) -> Path:
    """The whole page as `<repo>/.artifacts/screenshots/<name>.png`. CSS transitions and
    animations are finished first (the back map's fills fade in over 0.6 s)."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.png"
    # Scrolled to the end, a bar that sticks to the bottom of the screen (the map's "See the
    # plan") is drawn where it rests, not over the content above it.
    where = page.evaluate("[window.scrollX, window.scrollY]")
    page.evaluate("window.scrollTo(0, document.documentElement.scrollHeight)")
    page.screenshot(path=path, full_page=True, animations="disabled")
    page.evaluate("([x, y]) => window.scrollTo(x, y)", where)
    return path


# ---- a person's way through the pages ----------------------------------------------------------


def answer_safety(page: Page, yes: Iterable[str] = ()) -> None:
    """/safety: begin, then answer every question, Yes for the conditions in `yes`."""
    yes = set(yes)
    page.goto("/safety")
    page.get_by_role("button", name="Begin the questions").click()
    conditions = page.locator(".question[data-condition]").evaluate_all(
        "questions => questions.map(q => q.dataset.condition)"
    )
    assert conditions, "no questions on /safety"
    assert yes <= set(conditions), f"no question about {yes - set(conditions)}"
    for n, condition in enumerate(conditions, start=1):
        expect(page.locator("#progress-text")).to_have_text(f"{n} of {len(conditions)}")
        answer = "Yes" if condition in yes else "No"
        page.get_by_role("button", name=answer, exact=True).click()
    expect(page.locator("#result")).to_be_visible()


def choose_on_map(page: Page, tensions: dict[str, int], minutes: int) -> None:
    """/map: tap each region's shape on the back, set its tension with its slider, say it is a
    partner's back, and step the minutes to `minutes`."""
    # The map's script runs when the page has loaded: a tap before that would be lost.
    page.wait_for_url(re.compile(r"/map$"), wait_until="domcontentloaded")
    for region, tension in tensions.items():
        shape = page.locator(f'#map .region[data-region="{region}"]')
        # A paired region's centre lies on the spine, between its two shapes: tap a shape.
        shape.locator("polygon").first.click()
        expect(shape).to_have_attribute("aria-pressed", "true")
        expect(page.locator(f'.chip[data-region="{region}"]')).to_have_attribute(
            "aria-pressed", "true"
        )
        slider = page.locator(f"#t-{region}")
        expect(slider).to_be_visible()
        slider.fill(str(tension))
        expect(page.locator(f"#o-{region}")).to_have_text(str(tension))
        expect(slider).to_have_attribute("aria-valuetext", f"{tension} of 10")
    page.get_by_label("A partner's back").check()
    shown = page.locator("#minutes-out")
    for _ in range(12):
        now = int((shown.text_content() or "0").split()[0])
        if now == minutes:
            break
        label = "5 minutes less" if now > minutes else "5 minutes more"
        page.get_by_role("button", name=label).click()
        expect(shown).not_to_have_text(f"{now} minutes")
    expect(shown).to_have_text(f"{minutes} minutes")


def see_plan(page: Page) -> dict[str, Any]:
    """Submit the map; return the plan the server answered to /plan's request."""
    with page.expect_response("**/api/v1/plans") as answered:
        page.get_by_role("button", name="See the plan").click()
    response = answered.value
    assert response.status == 200, response.text()
    expect(page.locator("#plan")).to_be_visible()
    plan: dict[str, Any] = response.json()
    return plan


# The session the player tests walk to: two areas, a quarter of an hour.
PLAYER_TENSIONS = {"shoulders": 8, "lower-back": 5}
PLAYER_MINUTES = 15


def play_to_step_two(page: Page, *, service_worker: bool = True) -> tuple[str, int]:
    """Safety (no to all) → map (`PLAYER_TENSIONS`, `PLAYER_MINUTES`) → plan → player; Begin,
    and run on to step 2. With `service_worker`, the player page and its session came through
    the service worker (so they are cached). Returns the session's id and its number of steps."""
    answer_safety(page)
    page.get_by_role("link", name="Continue: where is it tense?").click()
    # The map's script runs before DOMContentLoaded: a tap before it would be lost.
    page.wait_for_url(re.compile(r"/map$"), wait_until="domcontentloaded")
    choose_on_map(page, PLAYER_TENSIONS, PLAYER_MINUTES)
    steps = len(see_plan(page)["steps"])
    session_id = begin_session(page, tension_before=6)
    if service_worker:
        page.wait_for_function("() => navigator.serviceWorker.controller !== null")
    page.get_by_role("button", name="Begin").click()
    page.locator("#start-panel").wait_for(state="hidden")
    expect(page.locator("#step-count")).to_have_text(f"Step 2 of {steps}")
    return session_id, steps


def begin_session(page: Page, tension_before: int) -> str:
    """On /plan: Begin, say how tense, start; returns the new session's id once the player
    has loaded it."""
    page.get_by_role("button", name="Begin", exact=True).click()
    dialog = page.locator("#begin-dialog")
    expect(dialog).to_be_visible()
    dialog.locator("#tension-before").fill(str(tension_before))
    expect(dialog.locator("#tension-before-out")).to_have_text(str(tension_before))
    with page.expect_response("**/api/v1/sessions") as created:
        dialog.get_by_role("button", name="Start the session").click()
    # The page moves on to the player at once, so the answer's body is gone: read the id
    # from the player's address.
    assert created.value.status == 201
    page.wait_for_url(re.compile(r"/play/[^/]+$"))
    session_id = page.url.rsplit("/", 1)[1]
    expect(page.locator("#start-panel")).to_be_visible()
    return session_id


def csrf_token(context: BrowserContext) -> str:
    """The CSRF cookie every page sets, which state-changing requests echo in a header."""
    for cookie in context.cookies():
        if cookie["name"] == "backrub_csrf":
            return cookie["value"]
    pytest.fail("No backrub_csrf cookie: the pages should set it.")


def step_at(view: dict[str, Any]) -> int:
    """The step (0-based) a session view's saved active time falls in."""
    end = 0.0
    durations = [float(d) for d in view["durations"]]
    for index, seconds in enumerate(durations):
        end += seconds
        if float(view["active"]) < end:
            return index
    return len(durations) - 1
