"""The session player's first load in headless Chromium: bytes transferred, and time to interactive.

Three sessions are made through the API of a fresh `python -m backrub serve --port 0` (partner,
shoulders 8, medium pressure): a new one of 20 minutes, a new one of 60, and one of 20 begun and
saved at 4:10, as a reload mid-session finds it. `/play/{id}` is opened for each in a fresh
browser context (no cache, service worker blocked, a 390×844 phone viewport) of Debian's
Chromium (`/usr/bin/chromium`, headless, through Playwright).

Bytes: every response of the load (the page, its stylesheets, scripts and modules, the icon,
the session from the API) until the network has been quiet for 500 ms. On the wire is the sum
of Playwright's `request.sizes()["responseBodySize"]`: each body as sent, gzipped (the app
gzips answers over 1 KiB for a browser that accepts it); the response headers are added up
apart; uncompressed is the sum of the decoded bodies. Aim (issue #4): under 150 KB (150,000
bytes) on the wire.

Time to interactive (TTI), from the start of the navigation (`performance.now()`): the first
animation frame after the player's `load()` has finished — `<main>` has lost `is-loading` and
`#cue` holds the cue's text — in the state the player then waits in, with its controls wired
(player.js wires every handler before it calls `load()`):
- a new session: the "Begin" panel shown and its button focused (the last thing `load()`
  does). The cue's text is in `#cue` but on screen only after Begin and the player's deliberate
  3-2-1 count, which is not part of the load;
- a resumed session: `#cue` on screen (it has a layout box) under the pause veil, which a tap
  anywhere lifts.
A MutationObserver, installed before the page's own scripts, checks this at every change of the
page, so the moment is not sampled late. As a check that the controls respond, `?` is then
pressed and the time from the key event to the player's help dialog being open is measured.

Baseline, measured in the same run the same way: the 404 page of the same route
(`/play/no-such-session`: `error.html` on the same base template, with two stylesheets, a script
and its module), interactive at the first frame after its `load` event. Runs alternate (a fresh
context each); medians are compared; one unmeasured load of each page first lets the server
compile its templates.

    python bench/page_weight.py [--runs N]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple
from urllib.parse import urlsplit

import httpx
from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import sync_playwright

if TYPE_CHECKING:
    from collections.abc import Iterator

    from playwright.sync_api import Browser, Page, Response

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
PHONE = {"width": 390, "height": 844}
AIM_BYTES = 150_000
RESUME_AT = 250.0

# Installed before any script of the page: records when the page became interactive.
WATCH = """
(() => {
  const frameAfter = (name) =>
    requestAnimationFrame(() => { window[name] ??= performance.now(); });
  const shown = (el) => Boolean(el) && el.getClientRects().length > 0;
  const playerReady = () => {
    const main = document.getElementById("main");
    const cue = document.getElementById("cue");
    const panel = document.getElementById("start-panel");
    const veil = document.getElementById("veil");
    if (!main || main.classList.contains("is-loading") || !cue?.textContent.trim()) return false;
    // A new session waits for Begin (the cue is shown after it); a resumed one shows its
    // cue under the pause veil, and a tap anywhere resumes.
    const waiting = panel && !panel.hidden && document.activeElement?.id === "start-btn";
    return Boolean(waiting || (shown(cue) && veil && !veil.hidden));
  };
  const watch = new MutationObserver(() => {
    if (document.body && document.body.dataset.page === "play" && playerReady()) {
      watch.disconnect();
      window.__readyAt = performance.now();
      frameAfter("__tti");
    }
  });
  watch.observe(document, { subtree: true, childList: true, attributes: true,
                            characterData: true });
  addEventListener("load", () => frameAfter("__loaded"));
})();
"""


class Transfer(NamedTuple):
    path: str
    status: int
    wire: int  # body bytes as sent (encoded)
    headers: int  # response header bytes
    decoded: int  # body bytes after decoding
    encoding: str  # Content-Encoding, "" when none


class Load(NamedTuple):
    tti: float  # ms from navigation start
    loaded: float  # first frame after the load event, ms
    help_ms: float | None  # a `?` key press → the help dialog open (the player only)
    transfers: list[Transfer]


@contextlib.contextmanager
def backrub_server(env: dict[str, str]) -> Iterator[str]:
    cmd = [sys.executable, "-m", "backrub", "serve", "--port", "0"]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None  # noqa: S101  (for mypy: stdout is a pipe)
        line = proc.stdout.readline()
        if "http://" not in line:
            proc.kill()
            _, err = proc.communicate(timeout=10)
            raise SystemExit(f"backrub serve did not start: {line.strip()} {err.strip()}")
        yield "http://" + line.split("http://", 1)[1].split()[0]
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.communicate(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.communicate()


def make_sessions(base: str) -> dict[str, str]:
    """A new 20- and 60-minute session, made as the plan page makes them, and a 20-minute one
    begun and saved at RESUME_AT seconds, as a reload mid-session finds it."""
    with httpx.Client(base_url=base, timeout=30) as client:
        client.get("/").raise_for_status()  # a page sets the CSRF cookie
        headers = {"X-CSRF-Token": client.cookies["backrub_csrf"]}

        def post(path: str, body: dict[str, object]) -> dict[str, Any]:
            answer = client.post(path, json=body, headers=headers)
            answer.raise_for_status()
            result: dict[str, Any] = answer.json()
            return result

        made = {}
        for name, minutes in (("20", 20), ("60", 60), ("resumed", 20)):
            body = {
                "mode": "partner",
                "minutes": minutes,
                "focus": [{"region": "shoulders", "tension": 8}],
                "pressure": "medium",
                "tension_before": 7,
            }
            view = post("/api/v1/sessions", body)
            made[name] = view["id"]
        events = f"/api/v1/sessions/{made['resumed']}/events"
        post(events, {"kind": "resume", "active": 0, "seq": 1})
        fired = [cue["id"] for cue in view["cues"] if cue["at"] <= RESUME_AT]
        post(events, {"kind": "progress", "active": RESUME_AT, "seq": 2, "fired": fired})
        return made


def transfer(response: Response) -> Transfer:
    sizes = response.request.sizes()
    try:
        decoded = len(response.body())
    except PlaywrightError:  # a response without a body to read (a redirect): it adds nothing
        decoded = 0
    return Transfer(
        path=urlsplit(response.url).path,
        status=response.status,
        wire=sizes["responseBodySize"],
        headers=sizes["responseHeadersSize"],
        decoded=decoded,
        encoding=response.headers.get("content-encoding", ""),
    )


# Records, in the page, the time from a key press to the help dialog being open.
WATCH_HELP = """
() => {
  const help = document.getElementById("help");
  let pressed;
  addEventListener("keydown", (e) => { pressed ??= e.timeStamp; }, { capture: true });
  new MutationObserver((_, watch) => {
    if (help.open) { watch.disconnect(); window.__helpMs = performance.now() - pressed; }
  }).observe(help, { attributes: true });
}
"""


def wait_until(page: Page, expression: str, *, seconds: float = 30.0) -> None:
    """Poll `expression` from outside the page: Playwright's own waiting evaluates it in the
    page, which the app's Content-Security-Policy (no eval) refuses. The times are taken in
    the page, so the polling interval does not change them."""
    deadline = time.monotonic() + seconds
    while not page.evaluate(expression):
        if time.monotonic() > deadline:
            raise TimeoutError(f"{expression} was still false after {seconds:g} s")
        page.wait_for_timeout(10)


def open_page(browser: Browser, url: str, *, player: bool) -> Load:
    """Open `url` in a fresh context and wait until it is interactive and the network quiet."""
    context = browser.new_context(service_workers="block", viewport=PHONE)
    try:
        context.add_init_script(WATCH)
        page = context.new_page()
        seen: list[Response] = []
        page.on("response", lambda response: seen.append(response))
        page.goto(url, wait_until="load")
        wait_until(page, "window.__loaded !== undefined")
        if player:
            wait_until(page, "window.__tti !== undefined")
        page.wait_for_load_state("networkidle")
        tti, loaded = page.evaluate("[window.__tti ?? window.__loaded, window.__loaded]")
        help_ms = None
        if player:
            page.evaluate(WATCH_HELP)
            page.keyboard.press("?")
            wait_until(page, "window.__helpMs !== undefined")
            help_ms = page.evaluate("window.__helpMs")
        return Load(tti, loaded, help_ms, [transfer(r) for r in seen])
    finally:
        context.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=7, help="loads of each page (medians)")
    runs = parser.parse_args().runs
    folder = Path(tempfile.mkdtemp(prefix="backrub-bench-"))
    env = {
        **os.environ,
        "BACKRUB_DATA_DIR": str(folder / "data"),
        "BACKRUB_CACHE_DIR": str(folder / "cache"),
    }
    env.pop("BACKRUB_DATABASE_URL", None)
    try:
        with backrub_server(env) as base, sync_playwright() as playwright:
            sessions = make_sessions(base)
            pages = {
                "404 page (baseline)": (f"{base}/play/no-such-session", False),
                "player, 20 min, new": (f"{base}/play/{sessions['20']}", True),
                "player, 60 min, new": (f"{base}/play/{sessions['60']}", True),
                "player, 20 min, resumed": (f"{base}/play/{sessions['resumed']}", True),
            }
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            try:
                for url, player in pages.values():  # the server compiles its templates
                    open_page(browser, url, player=player)
                loads: dict[str, list[Load]] = {name: [] for name in pages}
                for _ in range(runs):
                    for name, (url, player) in pages.items():
                        loads[name].append(open_page(browser, url, player=player))
                report(browser.version, loads, runs)
            finally:
                browser.close()
    finally:
        shutil.rmtree(folder)


def report(version: str, loads: dict[str, list[Load]], runs: int) -> None:
    print(
        f"Chromium {version} headless, {PHONE['width']}×{PHONE['height']}, a fresh context per "
        f"load (no cache, service worker blocked); medians of {runs} loads"
    )
    print(
        f"{'first load':30s}{'requests':>9s}{'on wire':>10s}{'+headers':>10s}"
        f"{'uncompressed':>14s}{'TTI ms':>9s}{'×baseline':>10s}{'load ms':>9s}"
    )
    baseline = statistics.median(load.tti for load in next(iter(loads.values())))
    for name, runs_of in loads.items():
        last = runs_of[-1].transfers
        tti = statistics.median(load.tti for load in runs_of)
        loaded = statistics.median(load.loaded for load in runs_of)
        print(
            f"{name:30s}{len(last):9d}{sum(t.wire for t in last):10,d}"
            f"{sum(t.headers for t in last):10,d}{sum(t.decoded for t in last):14,d}"
            f"{tti:9.1f}{tti / baseline:10.2f}{loaded:9.1f}"
        )
    for name, runs_of in loads.items():
        if not name.startswith("player"):
            continue
        wire = sum(t.wire for t in runs_of[-1].transfers)
        helped = statistics.median(load.help_ms or 0.0 for load in runs_of)
        verdict = "met" if wire < AIM_BYTES else "MISSED"
        print(
            f"{name}: {wire / 1000:.1f} KB on the wire, aim under {AIM_BYTES // 1000} KB "
            f"{verdict}; `?` opened the help dialog {helped:.1f} ms after the key (median)"
        )
    name = next(n for n in loads if n.startswith("player"))
    print(f"each response of the {name} player (bytes):")
    for t in sorted(loads[name][-1].transfers, key=lambda t: -t.wire):
        print(
            f"  {t.path[:44]:44s}{t.status:4d}{t.wire:8,d} on wire{t.decoded:9,d} decoded"
            f"  {t.encoding}"
        )


if __name__ == "__main__":
    main()
