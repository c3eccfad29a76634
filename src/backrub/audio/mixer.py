"""Voice, chimes and bed mixed chunk by chunk, at a gain chosen before the first chunk.

Memory stays bounded: a chunk (5 s) is mixed and handed to the encoder; a voice clip is read
from the cue cache when its cue begins and let go when it ends; the forecast of the loudness
keeps one number per 100 ms. Nothing grows with the track but that forecast (36,000 numbers
for an hour).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, NamedTuple

import numpy as np

from backrub.audio import loudness
from backrub.audio.loudness import CEILING_DBFS, HOP_SECONDS, TARGET_LUFS

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Sequence

    from backrub.audio.ambient import Bed
    from backrub.audio.loudness import Floats, Samples

CHUNK_SECONDS = 5.0
SILENCE = 10 ** (-50 / 20)  # of full scale, as the voices deliver their clips
LEVEL_PASSES = 5
LEVEL_TOLERANCE = 0.1  # LU
# Above this the mix is bent smoothly towards the ceiling rather than clipped; the limiter on
# each clip means this only ever touches a chime ringing under a word.
KNEE = 10 ** ((CEILING_DBFS - 1.5) / 20)


class Clip(NamedTuple):
    """A cue's voice in the track: where it starts and how to get its (normalised) samples."""

    start: int
    length: int
    load: Callable[[], Samples]


def resample(samples: Samples, rate: int, to: int) -> Samples:
    """Band-limited resampling of a short clip (through its spectrum; clips start and end
    quiet, so treating one as periodic does no harm)."""
    if rate == to or not len(samples):
        return samples
    count = round(len(samples) * to / rate)
    spectrum = np.fft.rfft(samples.astype(np.float64))
    return (np.fft.irfft(spectrum, count) * (count / len(samples))).astype(np.float32)


def trim(samples: Samples, rate: int) -> Samples:
    """The clip without the silence a voice puts before and after the words (so a cue's first
    word is heard exactly when the cue starts), keeping 5 ms either side."""
    loud = np.flatnonzero(np.abs(samples) > SILENCE)
    if not len(loud):
        return samples
    margin = round(rate * 0.005)
    return samples[max(0, loud[0] - margin) : loud[-1] + margin + 1]


def level(samples: Samples, rate: int) -> Samples:
    """The clip at the target loudness with its peaks under the ceiling. Limiting the peaks
    takes some loudness away (TTS voices peak 1–6 dB above full scale at -16 LUFS), so the
    gain is corrected and the clip limited again until both hold."""
    out = samples
    for _ in range(LEVEL_PASSES):
        measured = loudness.clip_loudness(out, rate)
        if not math.isfinite(measured) or abs(measured - TARGET_LUFS) < LEVEL_TOLERANCE:
            break
        out = loudness.limit((out * 10 ** ((TARGET_LUFS - measured) / 20)).astype(np.float32), rate)
    return out


def forecast_gain(
    *,
    rate: int,
    total: int,
    fine: int,
    voices: Sequence[tuple[int, Floats]],
    chime: Samples,
    chimes: Sequence[int],
    bed: Bed | None,
) -> float:
    """The gain that brings the finished mix to the target integrated loudness, from its parts:
    each voice clip's K-weighted energy per `fine` samples (a tenth of a hop) from its start
    bin, each chime's, the bed's power."""
    hop = round(rate * HOP_SECONDS)
    hops = -(-total // hop)
    energy = np.zeros(hops)
    for start, outline in voices:
        energy += loudness.hop_energy(outline, offset=start, hop=hop // fine, hops=hops)
    chime_squares = loudness.weighted_square(chime, rate)
    for start in chimes:
        energy += loudness.hop_energy(chime_squares, offset=start, hop=hop, hops=hops)
    if bed is not None:
        energy += bed.hop_power(hops)
    level = loudness.integrated(energy, hop)
    return 10 ** ((TARGET_LUFS - level) / 20) if math.isfinite(level) else 1.0


def soft_limit(chunk: Samples) -> Samples:
    ceiling = 10 ** (CEILING_DBFS / 20)
    over = np.abs(chunk) > KNEE
    if over.any():
        x = chunk[over]
        room = ceiling - KNEE
        chunk[over] = np.sign(x) * (KNEE + room * np.tanh((np.abs(x) - KNEE) / room))
    return chunk


def mix(
    *,
    rate: int,
    total: int,
    clips: Sequence[Clip],
    chime: Samples,
    chimes: Sequence[int],
    bed: Bed | None,
    gain: float,
    chunk_seconds: float = CHUNK_SECONDS,
) -> Iterator[Samples]:
    """The track, `chunk_seconds` at a time. `clips` are in time order and do not overlap."""
    size = round(rate * chunk_seconds)
    chime = (chime * gain).astype(np.float32)
    sounds: list[tuple[int, Samples]] = []  # clips and chimes still sounding: (start, samples)
    pending_clips = list(clips)
    pending_chimes = sorted(chimes)
    for begin in range(0, total, size):
        end = min(total, begin + size)
        if bed is not None:
            out = bed.render(begin, end - begin) * np.float32(gain)
        else:
            out = np.zeros(end - begin, dtype=np.float32)
        while pending_clips and pending_clips[0].start < end:
            clip = pending_clips.pop(0)
            sounds.append((clip.start, clip.load()))
        while pending_chimes and pending_chimes[0] < end:
            sounds.append((pending_chimes.pop(0), chime))
        still = []
        for start, samples in sounds:
            a, b = max(begin, start), min(end, start + len(samples))
            if a < b:
                out[a - begin : b - begin] += samples[a - start : b - start]
            if start + len(samples) > end:
                still.append((start, samples))
        sounds = still
        yield soft_limit(out)
