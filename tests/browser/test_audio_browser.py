"""Guided audio in a real browser: headless Chromium has no speech-synthesis voice, so the player
speaks through backrub's own clips (a clip requested and played at a step change); and the plan
page's "Download as audio" saves a track of the plan's length."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import soundfile  # type: ignore[import-untyped]
from playwright.sync_api import expect

from .support import answer_safety, begin_session, choose_on_map, screenshot, see_plan

if TYPE_CHECKING:
    from collections.abc import Callable

    from playwright.sync_api import Page, Response

    from .support import Server, Watch

MINUTES = 15
# Every clip the page starts playing, and how it ends (recorded before the page's scripts run).
RECORD_PLAYS = """
window.__clips = [];
const play = HTMLMediaElement.prototype.play;
HTMLMediaElement.prototype.play = function () {
  const clip = { text: this.title, src: this.src, playing: false, ended: false, played: 0 };
  window.__clips.push(clip);
  this.addEventListener("playing", () => { clip.playing = true; });
  this.addEventListener("ended", () => { clip.ended = true; clip.played = this.played.length; });
  return play.call(this);
};
"""


def spoken(response: Response) -> str | None:
    """The text a clip request asked for, or None for any other request."""
    parts = urlsplit(response.url)
    if not parts.path.endswith("/voice") or response.request.method != "POST":
        return None
    asked: str = response.request.post_data_json["text"]
    # Asked for in the body: the words never travel in the address.
    assert not parts.query
    return asked


def test_the_player_speaks_with_backrubs_clips_and_the_plan_downloads_as_audio(
    lite_server: Server,
    new_page: Callable[..., tuple[Page, Watch]],
    check_a11y: Callable[[Page, str], None],
) -> None:
    page, watch = new_page(lite_server, size="phone")
    page.context.add_init_script(RECORD_PLAYS)
    assert page.evaluate("speechSynthesis.getVoices().length") == 0, "Chromium has a voice here"
    answer_safety(page)
    page.get_by_role("link", name="Continue: where is it tense?").click()
    choose_on_map(page, {"shoulders": 7}, MINUTES)
    see_plan(page)

    # The plan page's download.
    button = page.get_by_role("button", name="Download as audio")
    expect(button).to_be_visible()
    screenshot(page, "plan-download-audio-phone")
    check_a11y(page, "the plan with its audio button")
    with page.expect_download(timeout=30_000) as downloading:
        button.click()
        expect(page.locator("#audio-status")).to_contain_text("Preparing your audio… (about")
    download = downloading.value
    assert download.suggested_filename == "backrub-massage.ogg"
    info = soundfile.info(download.path())
    assert info.format == "OGG"
    assert abs(info.frames / info.samplerate - MINUTES * 60) < 0.01
    expect(page.locator("#audio-status")).to_contain_text("Your audio is ready")

    # The player: no browser voice, so backrub's voice.
    session_id = begin_session(page, tension_before=6)
    expect(page.locator("#voice-label")).to_have_text("Voice")
    expect(page.locator("#voice-btn")).to_have_attribute("aria-pressed", "true")
    view: dict[str, Any] = lite_server.session(session_id)
    second = next(c["text"] for c in view["cues"] if c["kind"] == "step" and c["step"] == 1)
    page.get_by_role("button", name="Begin").click()
    page.locator("#start-panel").wait_for(state="hidden")
    with page.expect_response(lambda r: spoken(r) == second, timeout=20_000) as answered:
        page.locator("#skip-btn").click()
    assert answered.value.status == 200
    assert answered.value.headers["content-type"] == "audio/ogg"
    # Played, through to its end (clips queue as utterances do: the ones before go first).
    # Played through to its end (clips queue as utterances do: the ones before it go first).
    page.wait_for_function(
        "text => window.__clips.some(c => c.text === text && c.ended)",
        arg=second,
        timeout=30_000,
        polling=200,
    )
    clips = page.evaluate("window.__clips")
    assert clips[0]["text"] == "Get ready."
    played = next(c for c in clips if c["text"] == second)
    assert played["playing"] and played["played"] >= 1, played
    assert played["src"].startswith("blob:"), played
    watch.expect_clean("the player speaking with backrub's clips")
