"""The generated sound under the voice: a soft pad and a breathing wash of noise, and a chime.

Nothing is recorded or bundled. Both parts of the bed are periodic tables built once (16 s long:
the pad's partials are whole multiples of 1/16 Hz, and the noise is an inverse FFT, so each loops
without a seam), read in chunks at any offset, so a chunk costs a few array slices whatever the
track's length. The noise swells in for 4 s and out for 6 s, the engine's breathing pace, in step
with the session's clock; the whole bed dips under the voice.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

from backrub.audio.loudness import HOP_SECONDS, TARGET_LUFS, clip_loudness, k_root
from backrub.core.engine import BREATH_IN, BREATH_OUT

if TYPE_CHECKING:
    from collections.abc import Sequence

    from backrub.audio.loudness import Floats, Samples

TABLE_SECONDS = 16
# (frequency Hz, amplitude): an open A chord; the pairs 1/16 Hz apart beat very slowly (once a
# table), so the pad moves without any modulation to compute, and slower than the breath.
PAD = ((110.0, 1.0), (110.0625, 0.7), (165.0, 0.55), (164.9375, 0.4), (220.0, 0.3), (275.0, 0.15))
PAD_SHARE = 0.35  # of the bed's power; the rest is the breathing noise
# The bed's loudness at --ambient-volume 1, below the voice: soft enough that the gated loudness
# measurement (and so the -16 LUFS target) is set by the voice, not by the bed.
FULL_VOLUME_BELOW_VOICE = 20.0
# The bed under the voice: -9 dB, eased over 0.3 s.
DUCK = 10 ** (-9 / 20)
DUCK_RAMP = 0.3
SWELL_FLOOR = 0.3
CHIME_BELOW_VOICE = 10.0
SEED = 20_241_125


def _loop(table: Samples, start: int, count: int) -> Samples:
    """`count` samples of a looping table from absolute sample `start`."""
    size = len(table)
    begin = start % size
    if begin + count <= size:
        return table[begin : begin + count]
    reps = -(-(begin + count) // size)
    return np.tile(table, reps)[begin : begin + count]


def _k_power(table: Samples, rate: int) -> float:
    """Mean K-weighted power of a periodic table (exact: the filter is applied to its spectrum)."""
    spectrum = np.fft.rfft(table.astype(np.float64))
    spectrum *= k_root(len(table), rate)
    return float(np.mean(np.fft.irfft(spectrum, len(table)) ** 2))


class Bed:
    """The ambient bed for one track: `render` a chunk; `hop_power` for the loudness forecast."""

    def __init__(
        self, rate: int, *, volume: float, speaking: Sequence[tuple[float, float]]
    ) -> None:
        self.rate = rate
        size = rate * TABLE_SECONDS
        t = np.arange(size) / rate
        pad = np.sum([a * np.sin(2 * np.pi * f * t) for f, a in PAD], axis=0)
        noise = self._noise(size, rate)
        # Breathing: up over BREATH_IN seconds, down over BREATH_OUT, a raised cosine each way.
        cycle = np.arange(round(rate * (BREATH_IN + BREATH_OUT))) / rate
        rise = 0.5 - 0.5 * np.cos(np.pi * np.minimum(cycle, BREATH_IN) / BREATH_IN)
        fall = 0.5 + 0.5 * np.cos(np.pi * np.maximum(cycle - BREATH_IN, 0) / BREATH_OUT)
        swell = SWELL_FLOOR + (1 - SWELL_FLOOR) * np.where(cycle < BREATH_IN, rise, fall)
        self.swell = swell.astype(np.float32)
        # Scale each part to its share of the bed's target power (K-weighted, before ducking).
        level = TARGET_LUFS - FULL_VOLUME_BELOW_VOICE + 20 * math.log10(max(volume, 1e-6))
        power = 10 ** ((level + 0.691) / 10)
        pad_power = _k_power(np.asarray(pad, dtype=np.float32), rate)
        noise_power = _k_power(noise, rate) * float(np.mean(self.swell.astype(np.float64) ** 2))
        self.pad = (pad * math.sqrt(PAD_SHARE * power / pad_power)).astype(np.float32)
        self.noise = (noise * math.sqrt((1 - PAD_SHARE) * power / noise_power)).astype(np.float32)
        self.pad_power = PAD_SHARE * power
        self.noise_power = (1 - PAD_SHARE) * power / float(np.mean(self.swell**2))
        # The ducking envelope as breakpoints (cues never overlap, so they stay in order).
        xs, ys = [0.0], [1.0]
        for begin, end in speaking:
            xs += [max(xs[-1], begin - DUCK_RAMP), begin, end, end + DUCK_RAMP]
            ys += [1.0, DUCK, DUCK, 1.0]
        self.duck_x = np.array(xs)
        self.duck_y = np.array(ys)

    @staticmethod
    def _noise(size: int, rate: int) -> Samples:
        """Soft noise like a distant sea: pink, with little below 60 Hz or above 700 Hz."""
        rng = np.random.default_rng(SEED)
        freqs = np.fft.rfftfreq(size, 1 / rate)
        f = np.maximum(freqs, 1.0)
        shape = 1 / np.sqrt(f) / (1 + (f / 700) ** 2) / (1 + (60 / f) ** 4)
        phases = rng.uniform(0, 2 * np.pi, len(freqs))
        noise = np.fft.irfft(shape * np.exp(1j * phases), size)
        table: Samples = (noise / np.max(np.abs(noise))).astype(np.float32)
        return table

    def duck(self, seconds: Floats) -> Floats:
        gains: Floats = np.interp(seconds, self.duck_x, self.duck_y)
        return gains

    def render(self, start: int, count: int) -> Samples:
        swell = _loop(self.swell, start, count)
        out = _loop(self.pad, start, count) + _loop(self.noise, start, count) * swell
        times = (start + np.arange(count)) / self.rate
        return (out * self.duck(times).astype(np.float32)).astype(np.float32)

    def hop_power(self, hops: int) -> Floats:
        """K-weighted energy per 100 ms hop of the whole bed (the swell and the dips included)."""
        hop = round(self.rate * HOP_SECONDS)
        per_cycle = len(self.swell) // hop
        swell_sq = (self.swell[: per_cycle * hop].astype(np.float64) ** 2).reshape(per_cycle, hop)
        swell = np.resize(swell_sq.mean(axis=1), hops)
        duck = self.duck((np.arange(hops) + 0.5) * HOP_SECONDS) ** 2
        return (self.pad_power + self.noise_power * swell) * duck * hop


def chime(rate: int) -> Samples:
    """A soft bell: a few inharmonic partials, a gentle attack, a 3 s decay, level set
    `CHIME_BELOW_VOICE` LU under the voice."""
    t = np.arange(round(rate * 3.5)) / rate
    partials = ((523.25, 1.0, 1.6), (1046.5, 0.35, 1.0), (1443.0, 0.2, 0.6), (2825.0, 0.06, 0.3))
    bell = np.sum(
        [a * np.exp(-t / decay) * np.sin(2 * np.pi * f * t) for f, a, decay in partials], axis=0
    )
    bell *= np.minimum(1.0, t / 0.015)
    bell[-round(rate * 0.2) :] *= np.linspace(1, 0, round(rate * 0.2))
    samples: Samples = bell.astype(np.float32)
    samples *= np.float32(
        10 ** ((TARGET_LUFS - CHIME_BELOW_VOICE - clip_loudness(samples, rate)) / 20)
    )
    return samples
