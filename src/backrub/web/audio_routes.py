"""Guided audio over HTTP: the player's per-cue clips, and the plan page's "Download as audio".

- `POST /api/v1/sessions/{id}/voice` `{text}`: one thing the player would say, spoken by
  backrub's own voice, for browsers without a speech-synthesis voice (a POST: the words stay out
  of addresses and proxy logs, and the answer is not cached). Only the session's own words are
  spoken — its cues (on its saved state), the player's fixed phrases and the sentences feedback
  can answer with — never any other text, so the server is no text-to-speech service for anyone.
  Each clip is synthesised once and kept on the server's disk, content-addressed
  (`backrub.audio.cache`).
- `POST /api/v1/audio`: a plan body (as `POST /plans`) → the whole track (`backrub.audio.render`,
  streamed to a temporary folder, deleted once sent), as a download. One render per process at
  a time; another is 503 with a sentence while one runs.

The web speaks with eSpeak NG, whatever is installed: a clip is wanted at the moment of its cue
and eSpeak says one in milliseconds with nothing to load, where the neural voice loads a model
of ~250 MB into each server process and renders a cold 15-minute track in about 25 s instead of
5. `backrub audio` (the CLI) keeps the neural voice.

numpy, soundfile and the voices are imported inside the routes, never when the app is built.

No `from __future__ import annotations` here: FastAPI reads the route annotations at run time.
"""

import os
import shutil
import tempfile
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from fastapi import APIRouter, HTTPException, Request, Response
from fastapi.responses import FileResponse
from pydantic import Field
from starlette.background import BackgroundTask

from backrub import service
from backrub.core import engine
from backrub.core.models import PRESSURE_WORDS
from backrub.web.api import COMMON, NOT_FOUND, PREFIX, STOPPED
from backrub.web.deps import CatalogueDep, RuntimeDep, StoreDep
from backrub.web.inputs import findings, plan_request
from backrub.web.ratelimit import TRACKS_PER_HOUR
from backrub.web.schemas import Body, ErrorOut, PlanBody

if TYPE_CHECKING:
    from collections.abc import Callable

    from backrub.audio.loudness import Samples
    from backrub.audio.voices import Voice
    from backrub.core.catalogue import Catalogue
    from backrub.core.models import Plan
    from backrub.core.planner import Rules

router = APIRouter(prefix=PREFIX, responses=COMMON)

WEB_VOICE = "espeak"
# The longest sentence the player says is a cue or a feedback answer: far below this.
MAX_TEXT = 1000
# Clips are the plan's own wording (no tension, condition or note), the same for anyone with
# that plan: the browser may keep them a day, so repeated phrases and a reload fetch nothing.
CLIP_FORMAT = "1"  # bump when the way web clips are made changes
# Renders at a time in one process: each is a core busy for seconds.
MAX_RENDERS = 1
RENDERING = threading.BoundedSemaphore(MAX_RENDERS)
BUSY = "Another audio track is being prepared; try again in a minute."
NO_SUCH_TEXT = "text must be one of this session's own phrases: backrub speaks nothing else."
# A render folder older than this is left over (a download cut off): removed at the next render.
STALE_SECONDS = 3600
MEDIA = {"ogg": "audio/ogg", "mp3": "audio/mpeg"}

# The player's own phrases (player.js, remote.js).
FIXED_PHRASES = frozenset(
    {
        "Get ready.",
        *(f"Receiver: {word}." for word in ("good", "softer", "firmer", "tender")),
    }
)

AUDIO_OK: dict[int | str, dict[str, Any]] = {
    200: {"content": {m: {} for m in MEDIA.values()}, "description": "The track, as a download"}
}
CLIP_OK: dict[int | str, dict[str, Any]] = {
    200: {"content": {"audio/ogg": {}}, "description": "The phrase, spoken (Ogg Vorbis)"}
}
BUSY_ANSWER: dict[int | str, dict[str, Any]] = {
    503: {"model": ErrorOut, "description": "Another track is being prepared"}
}
TOO_MANY_TRACKS = (
    f"You have made {TRACKS_PER_HOUR} audio tracks in the last hour; try again later "
    "(the ones you have keep working)."
)


class AudioBody(PlanBody):
    format: Literal["ogg", "mp3"] = "ogg"


def make_voice() -> "Voice":
    from backrub.audio import voices

    return voices.choose(WEB_VOICE)


def _voice(request: Request) -> "Voice":
    """The app's voice, made on first use (kept on the app: one per process)."""
    state = request.app.state
    voice: Voice | None = getattr(state, "audio_voice", None)
    if voice is None:
        voice = make_voice()
        state.audio_voice = voice
    return voice


# ---- what a session may say -------------------------------------------------------------------


def feedback_sentence(catalogue: "Catalogue", text: str) -> bool:
    """Whether `text` is a sentence the engine's feedback can answer with (engine.feedback)."""
    for technique in catalogue.techniques.values():
        ending = f" Switch to {technique.name.lower()}."
        if text.endswith(ending):
            text = text[: -len(ending)]
            break
    fixed = {
        "That is already the lightest touch.",
        "That is as firm as this session goes here.",
        "Good — carry on like this.",
        "The session has ended.",
    }
    words = PRESSURE_WORDS.values()
    return (
        text in fixed
        or any(text in (f"Softer: {w} pressure now.", f"Firmer: {w} pressure now.") for w in words)
        or any(
            text == f"Tender spot: lighter on the {region.name} from now on."
            for region in catalogue.regions.values()
        )
    )


def may_say(catalogue: "Catalogue", live: service.Live, text: str) -> bool:
    if text in FIXED_PHRASES or feedback_sentence(catalogue, text):
        return True
    return any(cue.text == text for cue in engine.schedule(live.state))


# ---- clips --------------------------------------------------------------------------------------


def clip_bytes(cache_dir: Path, voice: "Voice", text: str) -> bytes:
    """`text` spoken, levelled as in a track, as Ogg Vorbis: made once, then read from disk."""
    from backrub.audio.cache import ClipCache, clip_key
    from backrub.audio.encoder import FORMATS

    fmt = FORMATS["ogg"]
    key = clip_key(voice, f"web-{CLIP_FORMAT}\0{text}", fmt.rate)
    path = cache_dir / "voice-web" / key[:2] / f"{key}.ogg"
    try:
        return path.read_bytes()
    except OSError:
        pass
    samples = ClipCache(cache_dir / "voice", voice).ready(text, fmt.rate, _make_ready(fmt.rate))
    data = _encoded(samples, fmt.rate)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".clip-", suffix=".ogg")
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except OSError:
        pass  # a read-only cache only costs speed
    return data


def _make_ready(rate: int) -> "Callable[[Samples, int], Samples]":
    from backrub.audio import loudness, mixer

    def make(samples: "Samples", source_rate: int) -> "Samples":
        ready = mixer.level(mixer.trim(mixer.resample(samples, source_rate, rate), rate), rate)
        return loudness.limit(ready, rate)

    return make


def _encoded(samples: "Samples", rate: int) -> bytes:
    import io

    import soundfile  # type: ignore[import-untyped]

    out = io.BytesIO()
    soundfile.write(out, samples, rate, format="OGG", subtype="VORBIS")
    return out.getvalue()


class SayBody(Body):
    text: str = Field(min_length=1, max_length=MAX_TEXT)


@router.post(
    "/sessions/{session_id}/voice",
    response_class=Response,
    responses={**CLIP_OK, **NOT_FOUND},
)
def post_voice(
    session_id: str, body: SayBody, request: Request, rt: RuntimeDep, store: StoreDep
) -> Response:
    """One phrase the player would say in this session, in backrub's voice (Ogg Vorbis): for
    browsers without a speech-synthesis voice. Only the session's own words; others are 404.
    A POST, so the words (a tender spot, say) stay out of addresses and logs, and are not cached."""
    live = service.load(rt.catalogue, store, session_id)
    if not may_say(rt.catalogue, live, body.text):
        # 422, not 404: the session is there; the text is what is not allowed.
        raise HTTPException(422, NO_SUCH_TEXT)
    data = clip_bytes(rt.settings.cache_dir, _voice(request), body.text)
    return Response(data, media_type="audio/ogg")


# ---- the whole track ----------------------------------------------------------------------------


def render_track(
    catalogue: "Catalogue",
    body: AudioBody,
    planned: tuple["Plan", "Rules"],
    *,
    folder: Path,
    cache_dir: Path,
    voice: "Voice",
) -> Path:
    """Render the plan into `folder`; the track's path. (A seam for the fuzz tests.)"""
    from backrub.audio.encoder import FORMATS
    from backrub.audio.render import render

    fmt = FORMATS[body.format]
    plan, rules = planned
    result = render(
        catalogue,
        plan,
        rules,
        output=folder / f"backrub-massage.{fmt.name}",
        fmt=fmt,
        voice=voice,
        cache_dir=cache_dir,
    )
    return result.track


def _sweep(renders: Path) -> None:
    """Remove render folders left over by a download that was cut off."""
    try:
        entries = list(renders.iterdir())
    except OSError:
        return
    for entry in entries:
        try:
            if time.time() - entry.stat().st_mtime > STALE_SECONDS:
                shutil.rmtree(entry, ignore_errors=True)
        except OSError:
            continue


@router.post(
    "/audio",
    response_class=FileResponse,
    responses={
        **AUDIO_OK,
        **STOPPED,
        **BUSY_ANSWER,
        429: {"model": ErrorOut, "description": "Too many tracks for one person (accounts on)"},
    },
)
def post_audio(
    body: AudioBody, request: Request, rt: RuntimeDep, catalogue: CatalogueDep, store: StoreDep
) -> FileResponse:
    """The plan (as `POST /plans` makes it) rendered into a guided audio track — each cue spoken
    at its moment, a chime at each step, a soft ambient bed — as a download; none for a stop
    verdict. One track is prepared at a time: another request meanwhile is 503."""
    planned = service.plan(catalogue, store, plan_request(body), findings(catalogue, body.findings))
    # Hosted: a few tracks an hour for each person, so no one keeps the one render slot.
    if rt.accounts and not rt.audio_limit.allow(store.owner):
        raise HTTPException(
            429,
            TOO_MANY_TRACKS,
            headers={"Retry-After": str(rt.audio_limit.retry_after(store.owner))},
        )
    if not RENDERING.acquire(blocking=False):
        raise HTTPException(503, BUSY, headers={"Retry-After": "30"})
    renders = rt.settings.cache_dir / "renders"
    try:
        renders.mkdir(parents=True, exist_ok=True)
        _sweep(renders)
        folder = Path(tempfile.mkdtemp(dir=renders, prefix="track-"))
        try:
            track = render_track(
                catalogue,
                body,
                planned,
                folder=folder,
                cache_dir=rt.settings.cache_dir,
                voice=_voice(request),
            )
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
            raise
    finally:
        RENDERING.release()
    return FileResponse(
        track,
        media_type=MEDIA[body.format],
        filename=track.name,
        headers={"Cache-Control": "no-store"},
        background=BackgroundTask(shutil.rmtree, folder, ignore_errors=True),
    )
