"""`backrub audio`: a session plan rendered into a guided audio track.

numpy, soundfile and the voices are imported inside the command, never at start-up, so the
other commands start as fast without it.

No `from __future__ import annotations` here: Typer reads the option annotations at run time.
"""

import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from backrub.cli.common import (
    DEFAULT_MINUTES,
    FocusOpt,
    HasOpt,
    JsonOpt,
    MinutesOpt,
    ModeOpt,
    NoneOpt,
    OilOpt,
    PressureOpt,
    catalogue_of,
    emit_json,
    reported,
)
from backrub.cli.inputs import parse_findings, parse_request
from backrub.cli.planning import planned_or_exit
from backrub.cli.prompts import answers
from backrub.config import Settings
from backrub.core.errors import BadInput

if TYPE_CHECKING:
    from backrub.audio.encoder import Format
    from backrub.audio.render import Rendered

FORMAT_NAMES = "ogg, mp3, flac, wav, opus"


def parse_volume(text: str) -> float:
    try:
        volume = float(text)
    except ValueError:
        volume = -1.0
    if not 0 <= volume <= 1:
        raise BadInput(f"--ambient-volume must be a number 0 to 1 (got {text!r}).")
    return volume


def check_writable(path: Path) -> None:
    """Refuse an output that cannot be written before any work is done."""
    folder = path.parent
    if path.is_dir():
        raise BadInput(f"{path} is a folder; give a file name with -o.")
    if not folder.is_dir():
        raise BadInput(f"Cannot write {path}: the folder {folder} does not exist.")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise BadInput(f"Cannot write {path}: the folder {folder} is not writable.")


OutputOpt = Annotated[
    Path | None,
    typer.Option(
        "--output",
        "-o",
        help="The track to write; its cue list (.json) and chapters (.chapters.json) "
        "go beside it. Default: backrub-massage.FORMAT.",
    ),
]
FormatOpt = Annotated[
    str | None,
    typer.Option(
        "--format",
        help=f"{FORMAT_NAMES} (default: the file's extension, else ogg).",
        metavar="FORMAT",
    ),
]
VoiceOpt = Annotated[
    str,
    typer.Option(help="neural (needs backrub[voice]), espeak, or auto: neural when installed."),
]
AmbientOpt = Annotated[
    bool,
    typer.Option(
        help="A soft generated sound bed that swells with the breathing pace (in 4 s, out 6 s)."
    ),
]
VolumeOpt = Annotated[
    str,
    typer.Option(help="The bed's level, 0 to 1 (1 is 20 LU under the voice).", metavar="0-1"),
]


def target_for(output: Path | None, audio_format: str | None) -> "tuple[Path, Format]":
    """The file to write and its format, checked before any work is done."""
    from backrub.audio.encoder import choose_format

    if output is not None and output.is_dir():
        raise BadInput(f"{output} is a folder; give a file name with -o.")
    fmt = choose_format(audio_format, output or Path("backrub-massage"))
    target = output or Path(f"backrub-massage.{fmt.name}")
    if not target.suffix:
        target = target.with_name(f"{target.name}.{fmt.name}")
    check_writable(target)
    return target, fmt


def audio(
    ctx: typer.Context,
    minutes: MinutesOpt = DEFAULT_MINUTES,
    mode: ModeOpt = "self",
    focus: FocusOpt = None,
    pressure: PressureOpt = "medium",
    oil: OilOpt = True,
    has: HasOpt = None,
    none: NoneOpt = False,
    output: OutputOpt = None,
    audio_format: FormatOpt = None,
    voice: VoiceOpt = "auto",
    ambient: AmbientOpt = True,
    ambient_volume: VolumeOpt = "0.3",
    json_out: JsonOpt = False,
) -> None:
    """Render a session into an audio track to play on any device: each cue spoken at its
    moment, a chime at each step, the breathing pace in a soft ambient bed.

    Takes the same session options and --has flags as `start`; with neither --has nor
    --none it asks the safety questions. Exit code 3 when the answers say stop.
    """
    catalogue = catalogue_of(ctx)
    with reported():
        findings = parse_findings(catalogue, has or [], none)
        request = parse_request(
            catalogue, minutes=minutes, mode=mode, focus=focus or [], pressure=pressure, oil=oil
        )
        volume = parse_volume(ambient_volume)
        target, fmt = target_for(output, audio_format)
        if voice not in ("auto", "neural", "espeak"):
            raise BadInput(f"voice must be one of: auto, neural, espeak (got {voice!r}).")
        findings = answers(catalogue, findings, bool(has) or none)
        plan, rules = planned_or_exit(catalogue, request, findings, json_out)
        from backrub.audio import voices
        from backrub.audio.render import render

        result = render(
            catalogue,
            plan,
            rules,
            output=target,
            fmt=fmt,
            voice=voices.choose(voice),
            cache_dir=Settings.from_env().cache_dir,
            ambient=ambient,
            ambient_volume=volume,
        )
    if json_out:
        emit_json({"track": str(result.track), **_described(result)})
        return
    length = f"{result.seconds // 60}:{result.seconds % 60:02d}"
    typer.echo(
        f"Wrote {result.track} ({length}, {result.cues} cues, voice {result.voice}), "
        f"with its cue list {result.cue_list} and chapters {result.chapters}."
    )


def _described(result: "Rendered") -> dict[str, object]:
    return {
        "cue_list": str(result.cue_list),
        "chapters": str(result.chapters),
        "seconds": result.seconds,
        "cues": result.cues,
        "voice": result.voice,
        "synthesised": result.synthesised,
        "from_cache": result.from_cache,
    }


def register(app: typer.Typer) -> None:
    app.command()(audio)
