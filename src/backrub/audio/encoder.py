"""Output formats, and writing a track so that a file is either whole or not there at all.

Everything is written under a temporary name in the destination folder and renamed into place
only when complete; on any failure, Ctrl-C included, the temporary files are deleted.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

from backrub.core.errors import BadInput

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator

    from backrub.audio.loudness import Samples


class Format(NamedTuple):
    name: str
    container: str  # libsndfile's major format
    subtype: str
    # The track's sample rate: the voices speak at 22,050 Hz, so most formats keep it (mono,
    # half the work of 44.1 kHz); libsndfile's Opus takes only 8, 12, 16, 24 or 48 kHz.
    rate: int


FORMATS = {
    "ogg": Format("ogg", "OGG", "VORBIS", 22_050),
    "mp3": Format("mp3", "MP3", "MPEG_LAYER_III", 22_050),
    "flac": Format("flac", "FLAC", "PCM_16", 22_050),
    "wav": Format("wav", "WAV", "PCM_16", 22_050),
    "opus": Format("opus", "OGG", "OPUS", 48_000),
}
DEFAULT_FORMAT = "ogg"


def choose_format(given: str | None, output: Path) -> Format:
    """--format, else the output's extension, else ogg; a clash between the two is an error."""
    suffix = output.suffix.lower().lstrip(".")
    if given is not None:
        name = given.strip().lower()
        if name not in FORMATS:
            raise BadInput(f"format must be one of: {', '.join(FORMATS)} (got {given!r}).")
        if suffix in FORMATS and suffix != name:
            raise BadInput(
                f"{output.name} ends in .{suffix} but --format is {name}; make them match."
            )
        return FORMATS[name]
    if not suffix:
        return FORMATS[DEFAULT_FORMAT]
    if suffix not in FORMATS:
        raise BadInput(
            f"Unknown audio format .{suffix}; use one of: {', '.join(FORMATS)} "
            "(as the file's extension or --format)."
        )
    return FORMATS[suffix]


class Outputs:
    """Temporary files beside their destinations, renamed together by `commit`."""

    def __init__(self) -> None:
        self.pending: list[tuple[Path, Path]] = []

    def reserve(self, destination: Path) -> Path:
        folder = destination.parent
        try:
            if not folder.is_dir():
                raise FileNotFoundError(2, "no such folder")
            fd, name = tempfile.mkstemp(dir=folder, prefix=f".{destination.name}.", suffix=".part")
            os.close(fd)
        except OSError as error:
            raise BadInput(
                f"Cannot write {destination}: {error.strerror or error}; choose another -o."
            ) from None
        temporary = Path(name)
        self.pending.append((temporary, destination))
        return temporary

    def commit(self) -> None:
        # mkstemp makes files only their owner may read; give them the usual permissions.
        mask = os.umask(0)
        os.umask(mask)
        for temporary, destination in self.pending:
            temporary.chmod(0o666 & ~mask)
            os.replace(temporary, destination)
        self.pending = []

    def discard(self) -> None:
        for temporary, _ in self.pending:
            temporary.unlink(missing_ok=True)
        self.pending = []


@contextlib.contextmanager
def outputs() -> Iterator[Outputs]:
    out = Outputs()
    try:
        yield out
        out.commit()
    finally:
        out.discard()  # after a commit there is nothing left to discard


def encode(path: Path, chunks: Iterable[Samples], fmt: Format) -> None:
    import soundfile  # type: ignore[import-untyped]

    try:
        with soundfile.SoundFile(
            path, "w", samplerate=fmt.rate, channels=1, format=fmt.container, subtype=fmt.subtype
        ) as sink:
            for chunk in chunks:
                sink.write(chunk)
    except (OSError, soundfile.LibsndfileError) as error:
        raise BadInput(f"Cannot write the {fmt.name} track: {error}.") from None
