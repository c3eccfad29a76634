"""`backrub audio` end to end: the track decoded back and checked against the plan."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import numpy as np
import pyloudnorm
import pytest
import soundfile
from scipy.signal import butter, correlate, resample_poly, sosfilt
from typer.testing import CliRunner

from backrub.audio import cues as cue_rules
from backrub.audio.cache import ClipCache
from backrub.audio.voices import EspeakLibrary
from backrub.cli.main import make_app
from backrub.config import Settings
from backrub.core import engine
from backrub.core.planner import build_plan, rules_for
from backrub.core.safety import assess

if TYPE_CHECKING:
    from pathlib import Path

    from backrub.core.catalogue import Catalogue

runner = CliRunner()
ARGS = ("--minutes", "15", "--mode", "partner", "--focus", "shoulders=8", "--none")


def render_cli(catalogue: Catalogue, *args: str) -> tuple[int, str, str]:
    result = runner.invoke(make_app(catalogue), ["audio", *args], env={"COLUMNS": "200"})
    return result.exit_code, result.stdout, result.stderr


def not_expected(samples: Any, rate: int) -> Any:
    raise AssertionError("the clip should be in the cache")


def true_peak(samples: np.ndarray[Any, Any]) -> float:
    """Highest 4× oversampled magnitude, 30 s at a time (BS.1770 true peak, near enough)."""
    step, pad, peak = 30 * 22_050, 64, 0.0
    for begin in range(0, len(samples), step):
        part = samples[max(0, begin - pad) : begin + step + pad]
        peak = max(peak, float(np.abs(resample_poly(part, 4, 1)).max()))
    return peak


@pytest.fixture(scope="module")
def spoken_track(
    catalogue: Catalogue, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, dict[str, Any]]:
    """15 minutes, partner mode (check-ins), eSpeak NG, no ambient bed: the voice alone."""
    out = tmp_path_factory.mktemp("spoken") / "session.wav"
    code, stdout, stderr = render_cli(
        catalogue, *ARGS, "--voice", "espeak", "--no-ambient", "-o", str(out)
    )
    assert code == 0, stderr
    assert "Wrote" in stdout
    return out, json.loads(out.with_suffix(".json").read_text())


@pytest.fixture(scope="module")
def full_track(
    catalogue: Catalogue, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, dict[str, Any]]:
    """The real thing: 15 minutes of ogg/vorbis with the ambient bed and the chimes."""
    out = tmp_path_factory.mktemp("full") / "my-massage.ogg"
    code, _, stderr = render_cli(catalogue, *ARGS, "--voice", "espeak", "-o", str(out))
    assert code == 0, stderr
    return out, json.loads(out.with_suffix(".json").read_text())


def test_duration_is_the_plans(spoken_track: tuple[Path, dict[str, Any]]) -> None:
    path, listing = spoken_track
    info = soundfile.info(path)
    assert info.samplerate == 22_050
    assert info.frames == 15 * 60 * 22_050
    assert listing["seconds"] == 900


def test_every_planned_cue_is_said_at_its_moment(
    catalogue: Catalogue, spoken_track: tuple[Path, dict[str, Any]]
) -> None:
    """The cue list holds the engine's schedule, each cue at its planned time unless the one
    before is still speaking (then just after it), as the README states."""
    _, listing = spoken_track
    request_plan = build_plan_for_args(catalogue)
    schedule = engine.schedule(engine.new_session(*request_plan))
    said = [c for c in listing["cues"] if c["kind"] != "breath"]
    assert [c["planned"] for c in said] == [round(c.at, 3) for c in schedule]
    assert all(c.text in s["text"] for c, s in zip(schedule, said, strict=True))
    kinds = {c["kind"] for c in said}
    assert {"step", "halfway", "check-in", "finish"} <= kinds
    previous_end = 0.0
    for cue in listing["cues"]:
        lead = cue_rules.CHIME_LEAD if cue["kind"] == "step" else cue_rules.GAP
        if cue["kind"] == "finish":
            assert cue["end"] == pytest.approx(900 - cue_rules.TAIL, abs=0.01)
        elif cue["start"] != cue["planned"]:
            # Moved only by the overlap with the cue before (or the opening chime).
            assert cue["start"] > cue["planned"]
            assert cue["start"] == pytest.approx(max(previous_end + lead, lead), abs=0.002)
        assert cue["start"] >= previous_end + (lead if previous_end else 0) - 0.002
        previous_end = cue["end"]
    moved = [c for c in said if c["start"] != c["planned"] and c["kind"] != "finish"]
    assert len(moved) <= 3, moved  # cues are far apart: almost all are exactly on time


def build_plan_for_args(catalogue: Catalogue) -> tuple[Any, Any]:
    from backrub.cli.inputs import parse_request

    request = parse_request(
        catalogue, minutes="15", mode="partner", focus=["shoulders=8"], pressure="medium", oil=True
    )
    verdict = assess(catalogue, [])
    return build_plan(catalogue, request, verdict), rules_for(request, verdict)


def test_voice_onsets_are_where_the_cue_list_says(
    spoken_track: tuple[Path, dict[str, Any]],
) -> None:
    """Detected in the audio: after silence, sound begins within 30 ms of each cue's start.
    (Step cues follow their chime, so they are found by correlation instead.)"""
    path, listing = spoken_track
    audio, rate = soundfile.read(path, dtype="float32")
    frame = rate // 100  # 220 samples: 9.98 ms
    rms = np.sqrt(np.mean(audio[: len(audio) // frame * frame].reshape(-1, frame) ** 2, axis=1))
    loud = rms > 10 ** (-50 / 20)
    checked = 0
    for cue in listing["cues"]:
        if cue["kind"] == "step":
            continue
        at = round(cue["start"] * rate / frame)
        assert not loud[at - 40 : at - 3].any(), cue  # quiet before …
        onset = at - 3 + int(np.argmax(loud[at - 3 : at + 50]))
        assert abs(onset - at) <= 3, (cue, onset * frame / rate)  # … and the voice within 30 ms
        checked += 1
    assert checked >= 10
    # Step cues follow their ringing chime: find their words by correlating the track with
    # the clip the cue cache holds for them.
    cache = ClipCache(Settings.from_env().cache_dir / "voice", EspeakLibrary())
    for cue in [c for c in listing["cues"] if c["kind"] == "step"]:
        clip = cache.ready(cue["text"], rate, make=not_expected)
        begin = round((cue["start"] - 0.5) * rate)
        segment = audio[begin : begin + len(clip) + rate]
        lag = int(np.argmax(correlate(segment, clip, mode="valid", method="fft")))
        assert abs((begin + lag) / rate - cue["start"]) < 0.005, cue


def test_loudness_is_about_minus_16_lufs_without_clipping(
    spoken_track: tuple[Path, dict[str, Any]], full_track: tuple[Path, dict[str, Any]]
) -> None:
    for path, _ in (spoken_track, full_track):
        audio, rate = soundfile.read(path, dtype="float64")
        loudness = pyloudnorm.Meter(rate).integrated_loudness(audio)
        assert -17.0 <= loudness <= -15.0, (path.name, loudness)
        assert true_peak(audio) < 1.0, path.name  # below 0 dBFS true peak


def test_full_ogg_track_with_ambient_bed(full_track: tuple[Path, dict[str, Any]]) -> None:
    path, listing = full_track
    audio, rate = soundfile.read(path, dtype="float32")
    assert soundfile.info(path).format == "OGG"
    assert len(audio) == 900 * rate
    # Between cues the bed is heard, rising and falling with the breath: 4 s in, 6 s out.
    quiet_from = next(
        c["end"]
        for a, c in zip(listing["cues"][1:], listing["cues"], strict=False)
        if a["start"] - c["end"] > 35
    )
    begin = round((quiet_from + 4) * rate)
    stretch = audio[begin : begin + 30 * rate]
    assert 20 * np.log10(np.sqrt(np.mean(stretch**2))) > -60  # audible
    # The breathing is in the noise above the pad's chord.
    breath = sosfilt(butter(4, 350, "highpass", fs=rate, output="sos"), stretch)
    tenth = rate // 10
    envelope = np.sqrt(np.mean(breath.reshape(-1, tenth) ** 2, axis=1))
    envelope = envelope - envelope.mean()
    correlation = [
        float(np.corrcoef(envelope[:-lag], envelope[lag:])[0, 1]) for lag in range(50, 150)
    ]
    assert 50 + int(np.argmax(correlation)) == pytest.approx(100, abs=2)  # a 10 s cycle
    assert max(correlation) > 0.8
    assert path.with_suffix(".chapters.json").exists()


def test_chapters_are_podcasting_json_chapters(full_track: tuple[Path, dict[str, Any]]) -> None:
    path, listing = full_track
    chapters = json.loads(path.with_suffix(".chapters.json").read_text())
    assert chapters["version"] == "1.2.0"
    items = chapters["chapters"]
    steps = [c for c in listing["cues"] if c["kind"] == "step"]
    assert len(items) == len(steps) + 1
    assert items[0]["startTime"] == 0
    starts = [c["startTime"] for c in items]
    assert starts == sorted(starts)
    assert items[-1]["title"] == "Rest"
    assert all(c["title"].startswith(f"Step {i + 1}: ") for i, c in enumerate(items[:-1]))
    assert starts[:-1] == pytest.approx([c["start"] - cue_rules.CHIME_LEAD for c in steps])
