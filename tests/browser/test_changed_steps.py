"""The answer to an accepted skip, extend or feedback carries only the fields of the steps the
event changed (`changed_steps`) and the `seq` of the save it was applied to (`applied_to`), in a
real browser: the page writes every answer's changes into its steps — not only the newest
answer's — so it shows the pressure the server re-planned; the service worker writes them into
its cached copy of the session (dropping the cached cues, which the page makes) when that copy is
the save they were applied to, so a reload offline shows the re-planned steps; and when its copy
is another save, it asks the server for the session afresh instead."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

import httpx
from playwright.sync_api import expect

from .support import play_to_step_two, screenshot, step_at

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

    from playwright.sync_api import Page, Request, Response

    from .support import Server, Watch

STEP_COUNT = re.compile(r"^Step (\d+) of (\d+)$")
SAID = {
    "softer": re.compile(r"^Softer: "),
    "firmer": re.compile(r"^Firmer: "),
    "tender": re.compile(r"^Tender spot: "),
}
# The browser's own line for each of the player's sends that could not go out while offline
# (the service worker passes the failure on), and for a spoken cue's clip.
UNSENT = re.compile(
    r"^console\.error: Failed to load resource: net::ERR_[A-Z_]+ "
    r"\(http://[^ ]+/api/v1/sessions/[0-9a-f]+/(events|voice):0\)$"
)

CACHED = """async ([name, path]) => {
  const cache = await caches.open(name);
  const found = await cache.match(path, { ignoreVary: true });
  return found ? await found.json() : null;
}"""

# The cached session replaced by `view`, stored as the service worker stores its copies.
PUT_CACHED = """async ([name, path, view]) => {
  const cache = await caches.open(name);
  const headers = { "Content-Type": "application/json", "Cache-Control": "no-store" };
  await cache.put(new Request(path), new Response(JSON.stringify(view), { headers }));
}"""


# ---- what the page, the service worker and the server have -------------------------------------


def cache_name(server: Server) -> str:
    """The service worker's cache, as sw.js names it (its version changes with it)."""
    source = httpx.get(f"{server.url}/sw.js", timeout=10).text
    found = re.search(r"""const CACHE = ["']([^"']+)["']""", source)
    assert found, "sw.js names no CACHE"
    return found.group(1)


def cached_session(page: Page, cache: str, session_id: str) -> dict[str, Any] | None:
    """The service worker's cached copy of GET /api/v1/sessions/{id}, read in the page."""
    view: dict[str, Any] | None = page.evaluate(CACHED, [cache, f"/api/v1/sessions/{session_id}"])
    return view


def wait_cached(page: Page, cache: str, session_id: str, seq: int) -> dict[str, Any]:
    """Wait until the cached copy is the save `seq` (the service worker writes it before the
    page reads the answer, but the page may not have asked yet); that copy."""
    cached = None
    for _ in range(200):
        cached = cached_session(page, cache, session_id)
        if cached is not None and cached["state"]["seq"] == seq:
            return cached
        page.wait_for_timeout(50)
    shown = None if cached is None else cached["state"]["seq"]
    raise AssertionError(f"The cached session never became save {seq}: it is at {shown}.")


def settle(server: Server, session_id: str, seq: int, what: str) -> dict[str, Any]:
    """Wait until the server has saved event `seq`; its view of the session."""
    server.wait_for(session_id, what, lambda view: view["state"]["seq"] >= seq)
    view = server.session(session_id)
    assert view["state"]["seq"] == seq, f"{what}: the server is at {view['state']['seq']}"
    return view


def shown_step(page: Page) -> int:
    """The step (0-based) the player shows."""
    found = STEP_COUNT.match(page.locator("#step-count").text_content() or "")
    assert found, page.locator("#step-count").text_content()
    return int(found.group(1)) - 1


def pressure_words(page: Page) -> dict[str, str]:
    """The player's words for the pressure levels ("2" → "light")."""
    words: dict[str, str] = page.locator("#player-data").evaluate(
        "el => JSON.parse(el.dataset.pressureWords)"
    )
    return words


def expect_server_pressure(page: Page, view: dict[str, Any], where: str) -> int:
    """The player shows the server's saved pressure for the step it is on (and is on the step
    the server's saved time falls in); that step."""
    at = step_at(view)
    expect(page.locator("#step-count")).to_have_text(f"Step {at + 1} of {len(view['durations'])}")
    step = view["state"]["steps"][at]
    word = pressure_words(page)[str(step["pressure"])]
    doing = page.locator("#doing")
    expect(doing).to_have_text(re.compile(rf" · {re.escape(word)} pressure$"))
    assert shown_step(page) == at, where
    return at


def expect_cached_is_server(cached: dict[str, Any], view: dict[str, Any], where: str) -> None:
    assert cached["state"]["seq"] == view["state"]["seq"], where
    assert cached["state"]["steps"] == view["state"]["steps"], (
        f"{where}: the cached steps are not the server's"
    )
    assert cached["durations"] == view["durations"], where


def session_fetches(requests: Iterable[Request], session_id: str) -> int:
    """How many times the service worker itself asked GET /api/v1/sessions/{id}."""
    path = f"/api/v1/sessions/{session_id}"
    return sum(
        1
        for r in requests
        if r.service_worker is not None and r.method == "GET" and r.url.endswith(path)
    )


# ---- a person's way to the player ----------------------------------------------------------------


def start_paused(page: Page) -> tuple[str, int]:
    """The player under the service worker at step 2 (`play_to_step_two`), paused there.
    Returns the session's id and its number of steps."""
    session_id, steps = play_to_step_two(page)
    page.keyboard.press("Space")
    expect(page.locator("#pause-btn")).to_have_text("Resume")
    expect(page.locator("#net-status")).to_be_hidden()
    # No spoken cues: a cue said at once after a feedback tap is the step's text from before
    # the re-plan, which the server, having re-planned, refuses to speak (a 422 in the console).
    voice = page.locator("#voice-btn")
    if voice.get_attribute("aria-pressed") == "true":
        voice.click()
    expect(voice).to_have_attribute("aria-pressed", "false")
    return session_id, steps


def keep_requests(page: Page) -> list[Request]:
    """Every request of the page's context (the service worker's own included), as they go."""
    kept: list[Request] = []

    def seen(request: Request) -> None:
        kept.append(request)

    page.context.on("request", seen)
    return kept


def a_feedback_answer(response: Response) -> bool:
    """Whether this is the answer to one of the page's feedback events."""
    request = response.request
    if request.method != "POST" or not response.url.endswith("/events"):
        return False
    body = request.post_data_json
    return isinstance(body, dict) and body.get("kind") == "feedback"


def expect_clean(watch: Watch, where: str) -> None:
    """Nothing reported but the sends that could not go out offline."""
    watch.seen = [line for line in watch.seen if not UNSENT.match(line)]
    watch.expect_clean(where)


# ---- the tests -----------------------------------------------------------------------------------


def test_feedback_answers_reach_the_page_and_the_cached_session(
    server: Server, new_page: Callable[..., tuple[Page, Watch]]
) -> None:
    page, watch = new_page(server)
    requests = keep_requests(page)
    session_id, steps = start_paused(page)
    cache = cache_name(server)
    view = server.session(session_id)
    seq = view["state"]["seq"]
    fetched = session_fetches(requests, session_id)
    assert fetched >= 1, "the player's session did not come through the service worker"
    wait_cached(page, cache, session_id, seq)
    page.keyboard.press("n")
    seq += 1
    view = settle(server, session_id, seq, "the skip to step 3")
    expect_server_pressure(page, view, "step 3")

    # Each round: feedback on the step shown, then (at once, while its answer may still be on its
    # way: the page then takes its changes from an answer that is not the newest) on to the next
    # step, which the feedback re-planned; the last round goes on to a lower-back step first, and
    # its feedback is the newest event.
    rounds: list[tuple[str, Callable[[], None], str]] = [
        ("softer", lambda: page.get_by_role("button", name="Softer", exact=True).click(), "after"),
        ("tender", lambda: page.keyboard.press("t"), "after"),
        ("firmer", lambda: page.keyboard.press("+"), "before"),
    ]
    answers: list[dict[str, Any]] = []
    for kind, tap, skip in rounds:
        before = view["state"]["steps"]
        with page.expect_response(a_feedback_answer) as answered:
            if skip == "before":
                page.keyboard.press("n")
            tap()
            if skip == "after":
                page.keyboard.press("n")
        answers.append(answered.value.json())
        expect(page.locator("#message")).to_have_text(SAID[kind])
        seq += 2
        view = settle(server, session_id, seq, f"the {kind} tap")
        assert view["record"]["feedback"][-1]["kind"] == kind
        at = expect_server_pressure(page, view, f"after {kind}")
        after = view["state"]["steps"]
        assert after[at]["pressure"] != before[at]["pressure"], (
            f"{kind} did not re-plan step {at + 1}'s pressure: the test shows nothing"
        )
        # The cue line, shown as the step began (before the answer, when the skip came first),
        # says the step's cue as re-planned: its new pressure, not the one it was shown with.
        assert after[at]["cue"] != before[at]["cue"], f"{kind} left step {at + 1}'s cue as it was"
        expect(page.locator("#cue")).to_have_text(after[at]["cue"])
        expect(page.locator("#net-status")).to_be_hidden()
        cached = wait_cached(page, cache, session_id, seq)
        expect_cached_is_server(cached, view, f"the cached session after {kind}")
        assert "cues" not in cached, f"the cached session kept cues after {kind}"

    # The server answered each feedback with the changed fields only, and the service worker
    # wrote them into its copy: it never had to ask for the session again.
    for answer in answers:
        assert answer["accepted"] is True
        assert "steps" not in answer["state"] and "cues" not in answer
        assert answer["changed_steps"], answer
        assert answer["applied_to"] == answer["state"]["seq"] - 1
    assert session_fetches(requests, session_id) == fetched, (
        "the service worker fetched the session again instead of writing the changes in"
    )
    assert shown_step(page) < steps - 1
    watch.expect_clean("the player's feedback, online")
    assert not server.trouble(), "\n".join(server.errors)


def test_a_reload_offline_shows_the_replanned_pressure(
    lite_server: Server,
    new_page: Callable[..., tuple[Page, Watch]],
    check_a11y: Callable[[Page, str], None],
) -> None:
    page, watch = new_page(lite_server)
    requests = keep_requests(page)
    session_id, _ = start_paused(page)
    cache = cache_name(lite_server)
    original = lite_server.session(session_id)
    seq = original["state"]["seq"]
    wait_cached(page, cache, session_id, seq)
    fetched = session_fetches(requests, session_id)

    # On to the first focus step, softer there, and on to the next, which softer made lighter.
    page.keyboard.press("n")
    page.get_by_role("button", name="Softer", exact=True).click()
    expect(page.locator("#message")).to_have_text(SAID["softer"])
    page.keyboard.press("n")
    seq += 3
    view = settle(lite_server, session_id, seq, "the skip, softer and skip")
    at = expect_server_pressure(page, view, "online, after softer")
    pressure = view["state"]["steps"][at]["pressure"]
    assert pressure != original["state"]["steps"][at]["pressure"], (
        f"softer did not re-plan step {at + 1}: the test shows nothing"
    )
    expect(page.locator("#net-status")).to_be_hidden()
    cached = wait_cached(page, cache, session_id, seq)
    expect_cached_is_server(cached, view, "the cached session, before going offline")
    assert session_fetches(requests, session_id) == fetched, (
        "the service worker fetched the session again instead of writing the changes in"
    )
    shown = page.locator("#doing").text_content()

    # ---- offline: the reload opens from the cache, on the same step, with the new pressure ----
    page.context.set_offline(True)
    page.reload()
    expect(page.locator("#veil-title")).to_have_text("Paused")
    assert expect_server_pressure(page, view, "offline, after a reload") == at
    expect(page.locator("#doing")).to_have_text(shown or "")
    word = pressure_words(page)[str(pressure)]
    expect(page.locator("#doing")).to_contain_text(f"{word} pressure")
    screenshot(page, "laptop-player-offline-replanned")
    check_a11y(page, "player (offline, re-planned by feedback, after a reload)")
    assert lite_server.session(session_id)["state"]["steps"] == view["state"]["steps"]
    page.context.set_offline(False)
    expect(page.locator("#net-status")).to_be_hidden()
    expect_clean(watch, "the player reloaded offline after feedback")
    assert not lite_server.trouble(), "\n".join(lite_server.errors)


def test_a_stale_cached_session_is_fetched_afresh(
    lite_server: Server, new_page: Callable[..., tuple[Page, Watch]]
) -> None:
    page, watch = new_page(lite_server)
    requests = keep_requests(page)
    session_id, _ = start_paused(page)
    cache = cache_name(lite_server)
    seq = lite_server.session(session_id)["state"]["seq"] + 1
    page.keyboard.press("n")
    view = settle(lite_server, session_id, seq, "the skip to step 3")
    expect_server_pressure(page, view, "step 3")
    cached = wait_cached(page, cache, session_id, seq)

    # An older save in the cache, whose steps are not the server's: were the changes written
    # into it, the cached steps would keep its made-up pressures.
    stale = {**cached, "state": {**cached["state"], "seq": seq - 1}}
    stale["state"]["steps"] = [{**step, "pressure": 5} for step in cached["state"]["steps"]]
    page.evaluate(PUT_CACHED, [cache, f"/api/v1/sessions/{session_id}", stale])
    assert cached_session(page, cache, session_id) == stale
    fetched = session_fetches(requests, session_id)

    with page.expect_response(a_feedback_answer) as answered:
        page.get_by_role("button", name="Softer", exact=True).click()
    expect(page.locator("#message")).to_have_text(SAID["softer"])
    seq += 1
    view = settle(lite_server, session_id, seq, "the softer tap")
    answer = answered.value.json()
    assert answer["changed_steps"] and answer["applied_to"] == seq - 1, answer
    assert "steps" not in answer["state"]
    cached = wait_cached(page, cache, session_id, seq)
    expect_cached_is_server(cached, view, "the cached session after softer on a stale copy")
    assert cached["state"] == view["state"]
    assert session_fetches(requests, session_id) == fetched + 1, (
        "the service worker did not ask for the session afresh"
    )
    expect_server_pressure(page, view, "after softer")
    watch.expect_clean("the player, its cached session stale")
    assert not lite_server.trouble(), "\n".join(lite_server.errors)
