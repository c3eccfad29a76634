"""A plan → a guided audio track, its cue list and its chapters. The one entry point adapters
call (the CLI's `backrub audio`, and later the web app's download)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, NamedTuple

import numpy as np

from backrub.audio import cues, encoder, loudness, mixer
from backrub.audio.ambient import Bed, chime
from backrub.audio.cache import ClipCache

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from backrub.audio.encoder import Format
    from backrub.audio.loudness import Floats, Samples
    from backrub.audio.voices import Voice
    from backrub.core.catalogue import Catalogue
    from backrub.core.models import Plan
    from backrub.core.planner import Rules

# The voice's energy is kept at this resolution for the loudness forecast (10 ms: a clip lands
# at most 5 ms from where the forecast puts it, far inside one 100 ms hop).
FINE_SECONDS = 0.01


class Rendered(NamedTuple):
    track: Path
    cue_list: Path
    chapters: Path
    seconds: int
    cues: int
    voice: str
    synthesised: int
    from_cache: int


class _Prepared(NamedTuple):
    samples: int
    # K-weighted energy per FINE_SECONDS of the levelled clip.
    energy: Floats


def sidecars(track: Path) -> tuple[Path, Path]:
    """`my-massage.ogg` → `my-massage.json` (cue list), `my-massage.chapters.json`."""
    return track.with_suffix(".json"), track.with_suffix(".chapters.json")


def render(
    catalogue: Catalogue,
    plan: Plan,
    rules: Rules,
    *,
    output: Path,
    fmt: Format,
    voice: Voice,
    cache_dir: Path,
    ambient: bool = True,
    ambient_volume: float = 0.3,
) -> Rendered:
    rate = fmt.rate
    total_seconds = plan.total_seconds
    total = total_seconds * rate
    spoken = cues.spoken_cues(plan, rules)
    cache = ClipCache(cache_dir / "voice", voice)

    def make_ready(samples: Samples, source_rate: int) -> Samples:
        return mixer.level(mixer.trim(mixer.resample(samples, source_rate, rate), rate), rate)

    def voiced(text: str) -> Samples:
        return cache.ready(text, rate, make_ready)

    fine = round(rate * FINE_SECONDS)
    prepared = _prepare([c.text for c in spoken], voiced, rate, fine)
    placed = cues.place(
        spoken, [prepared[c.text].samples / rate for c in spoken], float(total_seconds)
    )
    chime_times = cues.chimes(placed, float(total_seconds))
    bell = chime(rate)
    bed = None
    if ambient:
        speaking = [(p.start, p.start + p.seconds) for p in placed]
        bed = Bed(rate, volume=ambient_volume, speaking=speaking)

    synthesised, from_cache = cache.synthesised, cache.found
    # Each cue's energy outline, placed at its start (in 10 ms bins).
    voices = [(round(p.start / FINE_SECONDS), prepared[p.spoken.text].energy) for p in placed]
    gain = mixer.forecast_gain(
        rate=rate,
        total=total,
        fine=fine,
        voices=voices,
        chime=bell,
        chimes=[round(t * rate) for t in chime_times],
        bed=bed,
    )
    del voices

    clips = [
        mixer.Clip(
            round(p.start * rate),
            prepared[p.spoken.text].samples,
            _clip_loader(voiced, p.spoken.text, gain, rate),
        )
        for p in placed
    ]
    cue_path, chapter_path = sidecars(output)
    cue_data = cues.cue_list(
        placed, total=float(total_seconds), track=output.name, voice=f"{voice.engine} {voice.name}"
    )
    with encoder.outputs() as out:
        track_tmp = out.reserve(output)
        cue_tmp = out.reserve(cue_path)
        chapter_tmp = out.reserve(chapter_path)
        encoder.encode(
            track_tmp,
            mixer.mix(
                rate=rate,
                total=total,
                clips=clips,
                chime=bell,
                chimes=[round(t * rate) for t in chime_times],
                bed=bed,
                gain=gain,
            ),
            fmt,
        )
        cue_tmp.write_text(json.dumps(cue_data, indent=2, ensure_ascii=False) + "\n")
        chapter_data = cues.chapters(catalogue, plan, placed)
        chapter_tmp.write_text(json.dumps(chapter_data, indent=2, ensure_ascii=False) + "\n")
    return Rendered(
        track=output,
        cue_list=cue_path,
        chapters=chapter_path,
        seconds=total_seconds,
        cues=len(placed),
        voice=f"{voice.engine} {voice.name}",
        synthesised=synthesised,
        from_cache=from_cache,
    )


def _prepare(
    texts: list[str], voiced: Callable[[str], Samples], rate: int, fine: int
) -> dict[str, _Prepared]:
    """Every distinct text spoken (or found in the cache) and measured before mixing starts;
    only its length, level and energy outline are kept, not its samples."""
    prepared: dict[str, _Prepared] = {}
    for text in texts:
        if text not in prepared:
            samples = voiced(text)
            squares = loudness.weighted_square(samples, rate)
            bins = np.arange(len(squares)) // fine
            prepared[text] = _Prepared(len(samples), np.bincount(bins, squares).astype(float))
    return prepared


def _clip_loader(
    voiced: Callable[[str], Samples], text: str, gain: float, rate: int
) -> Callable[[], Samples]:
    def load() -> Samples:
        return loudness.limit((voiced(text) * gain).astype(np.float32), rate)

    return load
