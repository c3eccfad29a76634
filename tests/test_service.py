"""The CLI and the web are peers over one service: the same request, with the same history in a
real SQLite file, gives the same plan from `backrub plan --json` and `POST /api/v1/plans`, and
the same track plan from `backrub audio` and `POST /api/v1/audio` — a plan that history changes;
a session started in the terminal follows the web's preview; the history, the stats and the
reminders read the same in both.
"""

from __future__ import annotations

import json
import warnings
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import icalendar
import pytest
from starlette.exceptions import StarletteDeprecationWarning
from typer.testing import CliRunner

from backrub import service
from backrub.audio import render as audio_render
from backrub.cli.main import make_app
from backrub.config import Settings
from backrub.core.export import plan_as_dict
from backrub.core.models import Focus, PlanRequest
from backrub.store import open_store
from backrub.web import audio_routes, create_app

with warnings.catch_warnings():
    warnings.filterwarnings("ignore", "Using `httpx`", StarletteDeprecationWarning)
    from fastapi.testclient import TestClient

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from backrub.core.catalogue import Catalogue
    from backrub.core.models import Plan
    from backrub.core.planner import Rules

# Shoulders and lower back equally tense today; in the past, the shoulders stayed tense after.
FOCUS = (("shoulders", 5), ("lower-back", 5))
WEB_BODY = {
    "mode": "partner",
    "minutes": 30,
    "focus": [{"region": r, "tension": t} for r, t in FOCUS],
    "pressure": "firm",
    "oil": True,
    "findings": [{"condition": "sunburn-or-rash", "region": "mid-back"}],
}
CLI_ARGS = [
    "--mode", "partner", "--minutes", "30",
    *(arg for r, t in FOCUS for arg in ("--focus", f"{r}={t}")),
    "--pressure", "firm", "--has", "sunburn-or-rash=mid-back",
]  # fmt: skip


def settings(folder: Path) -> Settings:
    # No database URL: the SQLite file in the data folder, where `backrub` keeps it by default.
    return Settings(data_dir=folder / "data", cache_dir=folder / "cache")


@pytest.fixture
def with_history(tmp_path: Path, catalogue: Catalogue) -> Settings:
    """Three finished sessions on the shoulders, tension 8 before and 7 after each."""
    chosen = settings(tmp_path / "with")
    store = open_store(chosen)
    request = PlanRequest(
        mode="partner", minutes=15, focus=(Focus("shoulders", 8),), ceiling=3, oil=True
    )
    day = datetime(2026, 11, 2, 19, 30, tzinfo=UTC)
    try:
        for n in range(3):
            at = day + timedelta(weeks=n)
            live = service.start(catalogue, store, request, [], tension_before=8, now=at)
            service.finish(
                catalogue,
                store,
                live.record.id,
                active=900.0,
                stopped=False,
                tension_after=7,
                note=None,
                now=at + timedelta(minutes=15),
            )
    finally:
        store.close()
    assert (chosen.data_dir / "backrub.db").is_file()
    return chosen


@pytest.fixture
def without_history(tmp_path: Path) -> Settings:
    return settings(tmp_path / "without")


def use(monkeypatch: pytest.MonkeyPatch, chosen: Settings) -> None:
    monkeypatch.setenv("BACKRUB_DATA_DIR", str(chosen.data_dir))
    monkeypatch.setenv("BACKRUB_CACHE_DIR", str(chosen.cache_dir))
    monkeypatch.delenv("BACKRUB_DATABASE_URL", raising=False)


def cli(catalogue: Catalogue, *args: str) -> str:
    result = CliRunner().invoke(make_app(catalogue), list(args), env={"COLUMNS": "200"})
    assert result.exit_code == 0, (result.stdout, result.stderr)
    return result.stdout


@pytest.fixture
def web(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """A signed-in client of the app on the settings given."""

    def client(chosen: Settings) -> TestClient:
        app = create_app(chosen)
        made = TestClient(app, base_url="http://127.0.0.1:8000")
        made.__enter__()
        opened.append(made)
        made.get("/")
        made.headers["X-CSRF-Token"] = made.cookies["backrub_csrf"]
        return made

    opened: list[TestClient] = []
    yield client
    for made in opened:
        made.__exit__(None, None, None)


def cli_plan(catalogue: Catalogue, monkeypatch: pytest.MonkeyPatch, chosen: Settings) -> Any:
    use(monkeypatch, chosen)
    data = json.loads(cli(catalogue, "plan", "--json", *CLI_ARGS))
    assert data.pop("safety_checked") is True
    return data


def web_plan(web: Any, chosen: Settings) -> Any:
    response = web(chosen).post("/api/v1/plans", json=WEB_BODY)
    assert response.status_code == 200, response.text
    return response.json()


def focus_seconds(plan: dict[str, Any], region: str) -> int:
    return sum(
        s["seconds"] for s in plan["steps"] if s["phase"] == "focus" and s["region"] == region
    )


def test_the_cli_and_the_web_plan_alike_and_both_learn_from_history(
    catalogue: Catalogue,
    monkeypatch: pytest.MonkeyPatch,
    web: Any,
    with_history: Settings,
    without_history: Settings,
) -> None:
    learned = cli_plan(catalogue, monkeypatch, with_history)
    assert learned == web_plan(web, with_history)
    fresh = cli_plan(catalogue, monkeypatch, without_history)
    # A first run's plan creates no database.
    assert not (without_history.data_dir / "backrub.db").exists()
    assert fresh == web_plan(web, without_history)
    # The history is what makes them differ: the shoulders, which stayed tense, get more time.
    assert learned != fresh
    assert focus_seconds(fresh, "shoulders") == focus_seconds(fresh, "lower-back")
    assert focus_seconds(learned, "shoulders") > focus_seconds(learned, "lower-back")


@pytest.fixture
def rendered(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> list[tuple[Plan, Rules]]:
    """What each adapter hands the renderer, kept instead of rendered (the track itself is
    tested in tests/audio)."""
    seen: list[tuple[Plan, Rules]] = []

    def cli_render(catalogue: Catalogue, plan: Plan, rules: Rules, **options: Any) -> Any:
        seen.append((plan, rules))
        track = options["output"]
        return audio_render.Rendered(track, track, track, plan.total_seconds, 0, "none", 0, 0)

    def web_render(
        catalogue: Catalogue, body: Any, planned: tuple[Plan, Rules], **options: Any
    ) -> Path:
        seen.append(planned)
        track: Path = options["folder"] / "backrub-massage.ogg"
        track.write_bytes(b"OggS")
        return track

    monkeypatch.setattr(audio_render, "render", cli_render)
    monkeypatch.setattr(audio_routes, "render_track", web_render)
    return seen


def test_the_cli_and_the_web_render_the_same_plan_into_audio(
    catalogue: Catalogue,
    monkeypatch: pytest.MonkeyPatch,
    web: Any,
    with_history: Settings,
    rendered: list[tuple[Plan, Rules]],
    tmp_path: Path,
) -> None:
    use(monkeypatch, with_history)
    cli(catalogue, "audio", *CLI_ARGS, "--voice", "espeak", "-o", str(tmp_path / "t.ogg"))
    client = web(with_history)
    response = client.post("/api/v1/audio", json={**WEB_BODY, "format": "ogg"})
    assert response.status_code == 200, response.text
    (cli_plan_, cli_rules), (web_plan_, web_rules) = rendered
    assert cli_rules == web_rules
    as_data = plan_as_dict(catalogue, cli_plan_)
    assert as_data == plan_as_dict(catalogue, web_plan_)
    # The plan the preview shows, learned from history.
    assert as_data == client.post("/api/v1/plans", json=WEB_BODY).json()
    assert focus_seconds(as_data, "shoulders") > focus_seconds(as_data, "lower-back")


def test_the_cli_s_default_minutes_are_the_guide_s(catalogue: Catalogue) -> None:
    from backrub.cli.common import DEFAULT_MINUTES

    assert int(DEFAULT_MINUTES) == catalogue.facts.default_minutes


def test_a_session_started_in_the_terminal_follows_the_web_s_preview(
    catalogue: Catalogue, monkeypatch: pytest.MonkeyPatch, web: Any, with_history: Settings
) -> None:
    client = web(with_history)
    preview = client.post("/api/v1/plans", json=WEB_BODY).json()
    use(monkeypatch, with_history)
    cli(catalogue, "start", *CLI_ARGS, "--before", "6", "--after", "3", "--yes", "--speed", "1000")
    newest = client.get("/api/v1/sessions").json()["sessions"][0]
    assert (newest["tension_before"], newest["tension_after"]) == (6, 3)
    assert client.get(f"/api/v1/sessions/{newest['id']}").json()["plan"] == preview


def test_history_stats_and_reminders_are_the_same_in_the_terminal_and_the_browser(
    catalogue: Catalogue,
    monkeypatch: pytest.MonkeyPatch,
    web: Any,
    with_history: Settings,
    tmp_path: Path,
) -> None:
    client = web(with_history)
    use(monkeypatch, with_history)
    assert json.loads(cli(catalogue, "history", "--json")) == client.get("/api/v1/sessions").json()
    assert json.loads(cli(catalogue, "stats", "--json")) == client.get("/api/v1/stats").json()
    ics = tmp_path / "reminders.ics"
    cli(catalogue, "remind", "--every", "auto", "--at", "07:15", "--minutes", "30", "-o", str(ics))
    answer = client.get("/api/v1/reminders.ics", params={"at": "07:15", "minutes": 30})
    assert answer.status_code == 200, answer.text

    def event(data: bytes) -> dict[str, Any]:
        found = icalendar.Calendar.from_ical(data).walk("VEVENT")[0]
        return {key: found[key].to_ical() for key in ("DTSTART", "DURATION", "RRULE", "SUMMARY")}

    assert event(ics.read_bytes()) == event(answer.content)
