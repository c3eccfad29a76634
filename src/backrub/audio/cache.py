"""Synthesised cue clips, kept on disk and addressed by their content (engine, voice, text), so a
text is spoken once per voice however many tracks use it.

Two kinds of clip are kept: what the voice said (`spoken`), and that clip ready to mix
(`ready`: resampled to the track's rate, levelled to the target loudness, peaks limited), so a
warm render reads each cue once and computes nothing for it.

Clips are 32-bit float WAV files under `<cache_dir>/voice/`: lossless, self-describing (they
carry their sample rate) and playable for a person checking one. Each is written to a temporary
file and renamed, so a crash or a second backrub never leaves a half-written clip to be read.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

import soundfile  # type: ignore[import-untyped]

if TYPE_CHECKING:
    from collections.abc import Callable

    from backrub.audio.loudness import Samples
    from backrub.audio.voices import Voice

# Bump when the way clips are made ready changes, so old ones are not reused.
READY_FORMAT = "2"


def clip_key(voice: Voice, text: str, ready_at: int | None = None) -> str:
    kind = "spoken" if ready_at is None else f"ready-{READY_FORMAT}-{ready_at}"
    address = "\0".join((kind, voice.engine, voice.name, text))
    return hashlib.sha256(address.encode()).hexdigest()


class ClipCache:
    def __init__(self, folder: Path, voice: Voice) -> None:
        self.folder = folder
        self.voice = voice
        # Distinct texts spoken by the voice / found ready in the cache, for the report.
        self.synthesised = 0
        self.found = 0
        # Clips that could not be written (a read-only cache): kept for this render only.
        self.unsaved: dict[str, tuple[Samples, int]] = {}

    def path(self, key: str) -> Path:
        return self.folder / key[:2] / f"{key}.wav"

    def spoken(self, text: str) -> tuple[Samples, int]:
        """The voice saying `text`, from the cache when it has said it before."""
        found = self._read(clip_key(self.voice, text))
        if found is not None:
            return found
        self.synthesised += 1
        samples, rate = self.voice.synthesize(text)
        self._write(clip_key(self.voice, text), samples, rate)
        return samples, rate

    def ready(self, text: str, rate: int, make: Callable[[Samples, int], Samples]) -> Samples:
        """`text` ready to mix at `rate`: `make(spoken samples, their rate)`, made once."""
        key = clip_key(self.voice, text, rate)
        found = self._read(key)
        if found is not None:
            self.found += 1
            return found[0]
        samples = make(*self.spoken(text))
        self._write(key, samples, rate)
        return samples

    def _read(self, key: str) -> tuple[Samples, int] | None:
        if key in self.unsaved:
            return self.unsaved[key]
        try:
            samples, rate = soundfile.read(self.path(key), dtype="float32")
        except (OSError, soundfile.LibsndfileError):
            return None  # not cached yet (or unreadable): make it again
        return samples, int(rate)

    def _write(self, key: str, samples: Samples, rate: int) -> None:
        path = self.path(key)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".clip-", suffix=".wav")
        except OSError:
            self.unsaved[key] = (samples, rate)  # a read-only cache only costs speed
            return
        try:
            with os.fdopen(fd, "wb") as fh:
                soundfile.write(fh, samples, rate, format="WAV", subtype="FLOAT")
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
