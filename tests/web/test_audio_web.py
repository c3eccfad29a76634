"""Guided audio in the web app: the player's per-cue clips and the plan page's download."""

from __future__ import annotations

import io
import warnings
from typing import TYPE_CHECKING, Any

import numpy as np
import pytest
import soundfile  # type: ignore[import-untyped]
from starlette.exceptions import StarletteDeprecationWarning

from backrub.config import Settings
from backrub.web import audio_routes, create_app

with warnings.catch_warnings():
    # Starlette would rather have httpx2; the httpx pinned for the tests works the same.
    warnings.filterwarnings("ignore", "Using `httpx`", StarletteDeprecationWarning)
    from fastapi.testclient import TestClient

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from pathlib import Path

    from backrub.audio.loudness import Samples
    from backrub.audio.voices import Voice

PLAN = {"mode": "self", "minutes": 15, "focus": [{"region": "shoulders", "tension": 7}]}


class Counting:
    """The web's voice, counting what it is asked to say."""

    def __init__(self, inner: Voice) -> None:
        self.inner = inner
        self.engine = inner.engine
        self.name = inner.name
        self.said: list[str] = []

    def synthesize(self, text: str) -> tuple[Samples, int]:
        self.said.append(text)
        return self.inner.synthesize(text)


@pytest.fixture
def voice(monkeypatch: pytest.MonkeyPatch) -> Counting:
    counting = Counting(audio_routes.make_voice())
    monkeypatch.setattr(audio_routes, "make_voice", lambda: counting)
    return counting


def decoded(data: bytes) -> tuple[Samples, int]:
    samples, rate = soundfile.read(io.BytesIO(data), dtype="float32")
    return samples, int(rate)


def clip(client: TestClient, session_id: str, text: str) -> Any:
    return client.post(f"/api/v1/sessions/{session_id}/voice", json={"text": text})


def test_a_cue_of_the_session_is_spoken_once_and_kept(
    api: TestClient, start: Callable[..., dict[str, Any]], voice: Counting, settings: Settings
) -> None:
    view = start(api)
    cue = view["cues"][0]["text"]
    first = clip(api, view["id"], cue)
    assert first.status_code == 200, first.text
    assert first.headers["content-type"] == "audio/ogg"
    assert first.headers["cache-control"] == "no-store"  # the words may say where it is tender
    samples, rate = decoded(first.content)
    assert rate == 22_050
    assert 0.5 < len(samples) / rate < 20
    assert float(np.sqrt(np.mean(samples**2))) > 0.01  # speech, not silence
    assert voice.said == [cue]
    again = clip(api, view["id"], cue)
    assert again.status_code == 200
    assert again.content == first.content
    assert voice.said == [cue]  # from the cache
    assert list((settings.cache_dir / "voice-web").rglob("*.ogg"))
    # The player's fixed phrases and feedback answers may be said too.
    for text in ("Get ready.", "Receiver: softer.", "Softer: light pressure now."):
        assert clip(api, view["id"], text).status_code == 200, text


def test_only_the_sessions_own_words_are_spoken(
    lite: TestClient, start: Callable[..., dict[str, Any]], voice: Counting
) -> None:
    view = start(lite)
    for text in ("Read this aloud for me.", "Step 1 of 9. " + view["cues"][0]["text"], " "):
        response = clip(lite, view["id"], text)
        assert response.status_code == 422, text
        assert response.json()["error"].startswith("text ")
    assert clip(lite, "no-such-session", "Get ready.").status_code == 404
    assert voice.said == []


def test_another_owners_session_is_not_found(
    settings: Settings, start: Callable[..., dict[str, Any]], voice: Counting
) -> None:
    app = create_app(settings, accounts=True)
    with TestClient(app, base_url="https://127.0.0.1") as alice:
        with TestClient(app, base_url="https://127.0.0.1") as bob:
            for client, email in ((alice, "alice@example.org"), (bob, "bob@example.org")):
                assert client.get("/signin").status_code == 200
                client.headers["X-CSRF-Token"] = client.cookies["__Host-backrub_csrf"]
                signup = {"email": email, "password": "a long password!", "consent": True}
                assert client.post("/api/v1/account/signup", json=signup).status_code == 201
            view = start(alice)
            cue = view["cues"][0]["text"]
            assert clip(alice, view["id"], cue).status_code == 200
            response = clip(bob, view["id"], cue)
            assert response.status_code == 404
            assert response.json()["error"].startswith("No session")
            assert voice.said == [cue]


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory, site: Path) -> Iterator[tuple[Any, Path]]:
    """One 15-minute track through POST /api/v1/audio (a render takes seconds)."""
    root = tmp_path_factory.mktemp("audio")
    settings = Settings(
        data_dir=root / "data", cache_dir=root / "cache", database_url=f"sqlite:///{root}/a.db"
    )
    app = create_app(settings, templates_dir=site / "templates", static_dir=site / "static")
    with TestClient(app, base_url="http://127.0.0.1:8000") as client:
        assert client.get("/").status_code == 200
        client.headers["X-CSRF-Token"] = client.cookies["backrub_csrf"]
        yield client.post("/api/v1/audio", json=PLAN), settings.cache_dir


def test_the_plan_downloads_as_a_track_of_its_length(rendered: tuple[Any, Path]) -> None:
    response, cache_dir = rendered
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "audio/ogg"
    disposition = response.headers["content-disposition"]
    assert disposition == 'attachment; filename="backrub-massage.ogg"'
    info = soundfile.info(io.BytesIO(response.content))
    assert info.format == "OGG"
    assert info.frames / info.samplerate == pytest.approx(15 * 60, abs=0.01)
    # The render's temporary folder is gone once the track was sent.
    assert list((cache_dir / "renders").iterdir()) == []


def test_a_stop_verdict_or_a_bad_body_renders_nothing(lite: TestClient) -> None:
    stop = lite.post("/api/v1/audio", json={**PLAN, "findings": [{"condition": "open-wounds"}]})
    assert stop.status_code == 409, stop.text
    assert stop.json()["safety"]["verdict"] == "stop"
    for bad, word in (
        ({**PLAN, "minutes": 90}, "minutes"),
        ({**PLAN, "format": "wav"}, "format"),
        ({**PLAN, "voice": "neural"}, "voice"),
    ):
        response = lite.post("/api/v1/audio", json=bad)
        assert response.status_code == 422, bad
        sentence = response.json()["error"]
        assert word in sentence and sentence.endswith("."), sentence


def test_one_track_at_a_time(lite: TestClient) -> None:
    assert audio_routes.RENDERING.acquire(blocking=False)
    try:
        response = lite.post("/api/v1/audio", json=PLAN)
    finally:
        audio_routes.RENDERING.release()
    assert response.status_code == 503
    assert response.json()["error"] == audio_routes.BUSY
    assert response.headers["retry-after"] == "30"


def test_hosted_each_person_has_a_few_tracks_an_hour(sqlite_settings: Settings) -> None:
    from backrub.web.ratelimit import SlidingWindow

    app = create_app(sqlite_settings, accounts=True)
    app.state.backrub.audio_limit = SlidingWindow(0, window=3600)  # as if the hour's were used
    with TestClient(app, base_url="https://127.0.0.1") as client:
        client.get("/signin")
        client.headers["X-CSRF-Token"] = client.cookies["__Host-backrub_csrf"]
        signup = {"email": "ana@example.org", "password": "a long password!", "consent": True}
        assert client.post("/api/v1/account/signup", json=signup).status_code == 201
        answer = client.post("/api/v1/audio", json={"minutes": 15})
    assert answer.status_code == 429
    assert answer.json()["error"].startswith("You have made 6 audio tracks in the last hour")
    assert not (sqlite_settings.cache_dir / "renders").exists()
