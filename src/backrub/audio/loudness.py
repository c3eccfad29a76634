"""Loudness as ITU-R BS.1770 measures it (K-weighting, 400 ms blocks, gating), in numpy alone.

The track is streamed, so it is never measured whole. Instead every part of it is known before
the first chunk is written: each voice clip is measured here, the ambient bed and the chime are
generated with a known K-weighted power. `integrated` then predicts the finished track's loudness
from the per-100 ms energy of its parts (they are uncorrelated, so their powers add), and the
mixer applies the one gain that lands it on the target.

K-weighting is applied in the frequency domain (the biquads' magnitude response, designed as
pyloudnorm designs them), so no IIR filter loop is needed.
"""

from __future__ import annotations

import functools
import math
from typing import Any

import numpy as np
import numpy.typing as npt

Samples = npt.NDArray[np.float32]
Floats = npt.NDArray[np.floating[Any]]

TARGET_LUFS = -16.0
# Sample peaks are held this far below full scale: room for the peaks between samples and for
# what a lossy encoder adds, so the true peak stays below 0 dBFS.
CEILING_DBFS = -1.5
HOP_SECONDS = 0.1  # gating blocks are 4 hops (400 ms) long and start every hop (75 % overlap)
ABSOLUTE_GATE = -70.0
RELATIVE_GATE = -10.0


def _biquad(kind: str, gain_db: float, q: float, fc: float, rate: int) -> tuple[Floats, Floats]:
    a_ = 10 ** (gain_db / 40.0)
    w0 = 2.0 * math.pi * fc / rate
    alpha = math.sin(w0) / (2.0 * q)
    cos, root = math.cos(w0), 2 * math.sqrt(a_) * alpha
    if kind == "high_shelf":
        b = [
            a_ * ((a_ + 1) + (a_ - 1) * cos + root),
            -2 * a_ * ((a_ - 1) + (a_ + 1) * cos),
            a_ * ((a_ + 1) + (a_ - 1) * cos - root),
        ]
        a = [(a_ + 1) - (a_ - 1) * cos + root, 2 * ((a_ - 1) - (a_ + 1) * cos)]
        a.append((a_ + 1) - (a_ - 1) * cos - root)
    else:  # high pass
        b = [(1 + cos) / 2, -(1 + cos), (1 + cos) / 2]
        a = [1 + alpha, -2 * cos, 1 - alpha]
    return np.array(b), np.array(a)


def k_gain(freqs: Floats, rate: int) -> Floats:
    """|H(f)|² of the K-weighting filter (shelf then high-pass) at each frequency in Hz."""
    z = np.exp(-1j * 2 * np.pi * np.asarray(freqs) / rate)
    power = np.ones(len(z))
    for kind, gain, q, fc in (("high_shelf", 4.0, 1 / math.sqrt(2), 1500.0), ("hp", 0, 0.5, 38.0)):
        b, a = _biquad(kind, gain, q, fc, rate)
        h = (b[0] + b[1] * z + b[2] * z**2) / (a[0] + a[1] * z + a[2] * z**2)
        power *= np.abs(h) ** 2
    return power


def weighted_square(samples: Samples, rate: int) -> Floats:
    """The K-weighted signal, squared, sample by sample (for a clip: seconds, not an hour)."""
    n = len(samples)
    size = 1 << max(1, (n + rate // 10)).bit_length()  # zero padding keeps the tail linear
    spectrum = np.fft.rfft(samples.astype(np.float64), size)
    spectrum *= k_root(size, rate)
    return np.fft.irfft(spectrum, size)[:n] ** 2


@functools.lru_cache(maxsize=8)
def k_root(size: int, rate: int) -> Floats:
    """|H| of the K-weighting filter at each bin of an rfft of `size` (sizes repeat: powers of
    two, so this is computed a few times per render)."""
    return np.sqrt(k_gain(np.fft.rfftfreq(size, 1 / rate), rate))


def hop_energy(squares: Floats, *, offset: int, hop: int, hops: int) -> Floats:
    """Sum of `squares` placed at sample `offset`, per hop of a track `hops` hops long."""
    index = (offset + np.arange(len(squares))) // hop
    keep = index < hops
    return np.bincount(index[keep], weights=squares[keep], minlength=hops).astype(np.float64)


def integrated(energy: Floats, hop: int) -> float:
    """BS.1770 integrated loudness (LUFS) of a track given its K-weighted energy per hop."""
    if len(energy) < 4:
        power = np.array([energy.sum() / max(1, len(energy) * hop)])
    else:
        blocks = energy[:-3] + energy[1:-2] + energy[2:-1] + energy[3:]
        power = blocks / (4 * hop)
    with np.errstate(divide="ignore"):
        loud = -0.691 + 10 * np.log10(power)
    above = power[loud >= ABSOLUTE_GATE]
    if not len(above):
        return -math.inf
    relative = -0.691 + 10 * math.log10(float(above.mean())) + RELATIVE_GATE
    kept = power[(loud > relative) & (loud > ABSOLUTE_GATE)]
    return -0.691 + 10 * math.log10(float(kept.mean()))


def clip_loudness(samples: Samples, rate: int) -> float:
    hop = round(rate * HOP_SECONDS)
    squares = weighted_square(samples, rate)
    return integrated(hop_energy(squares, offset=0, hop=hop, hops=-(-len(squares) // hop)), hop)


def limit(samples: Samples, rate: int, ceiling_dbfs: float = CEILING_DBFS) -> Samples:
    """A look-ahead peak limiter for a clip: smooth gain dips that keep every sample under the
    ceiling, so a loudness-normalised voice is never clipped."""
    ceiling = 10 ** (ceiling_dbfs / 20)
    magnitude = np.abs(samples)
    if not len(samples) or float(magnitude.max()) <= ceiling:
        return samples
    width = max(1, round(rate * 0.004))
    # A moving maximum over ±width, then a moving average over width: the average at every
    # sample still covers that sample's own peak, so the gain below always suffices.
    peak = _moving_max(magnitude, width)
    kernel = np.ones(width) / width
    envelope = np.maximum(np.convolve(peak, kernel, mode="same"), magnitude)
    gain = np.minimum(1.0, ceiling / np.maximum(envelope, 1e-9))
    limited: Samples = (samples * gain).astype(np.float32)
    return limited


def _moving_max(values: Samples, width: int) -> Samples:
    """max(values[i - width : i + width + 1]) for every i, in O(n log width)."""
    span = 2 * width + 1
    padded = np.pad(values, (width, width + span))
    out, reach = padded.copy(), 1  # out[i] = max(padded[i : i + reach])
    while reach * 2 <= span:
        out[: len(out) - reach] = np.maximum(out[: len(out) - reach], out[reach:])
        reach *= 2
    if reach < span:  # two overlapping windows of `reach` cover the rest of `span`
        shift = span - reach
        out[: len(out) - shift] = np.maximum(out[: len(out) - shift], out[shift:])
    return out[: len(values)]
