"""Every bad input to `backrub audio`: one sentence, exit 2 (3 for a stop), no file left."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
from typer.testing import CliRunner

from backrub.cli.main import make_app

if TYPE_CHECKING:
    from pathlib import Path

    from backrub.core.catalogue import Catalogue

runner = CliRunner()
BASE = ("audio", "--minutes", "15", "--voice", "espeak")


@pytest.mark.parametrize(
    ("args", "code", "says"),
    [
        (("--none", "--format", "aiff", "-o", "{dir}/t.aiff"), 2, "format must be one of"),
        (("--none", "-o", "{dir}/t.m4a"), 2, "Unknown audio format .m4a"),
        (("--none", "--format", "mp3", "-o", "{dir}/t.ogg"), 2, "make them match"),
        (("--none", "-o", "{dir}/missing/t.ogg"), 2, "does not exist"),
        (("--none", "-o", "{dir}"), 2, "is a folder"),
        (("--none", "--minutes", "70", "-o", "{dir}/t.ogg"), 2, "minutes must be 15 to 60"),
        (("--none", "--minutes", "ten", "-o", "{dir}/t.ogg"), 2, "minutes must be a whole"),
        (("--none", "--voice", "robot", "-o", "{dir}/t.ogg"), 2, "voice must be one of"),
        (("--none", "--ambient-volume", "2", "-o", "{dir}/t.ogg"), 2, "--ambient-volume must"),
        (("--none", "--focus", "knees", "-o", "{dir}/t.ogg"), 2, "Unknown region"),
        (("-o", "{dir}/t.ogg"), 2, "No answer was given"),
        (("--has", "pregnancy", "-o", "{dir}/t.ogg"), 3, ""),
    ],
)
def test_bad_input_is_one_sentence_and_leaves_no_file(
    catalogue: Catalogue, tmp_path: Path, args: tuple[str, ...], code: int, says: str
) -> None:
    argv = [*BASE, *(a.format(dir=tmp_path) for a in args)]
    result = runner.invoke(make_app(catalogue), argv, input="", env={"COLUMNS": "200"})
    assert result.exit_code == code, (result.stdout, result.stderr)
    if code == 2:
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1, lines
        assert lines[0].startswith("Error: ") and lines[0].endswith(".")
        assert says in lines[0]
        assert "Traceback" not in result.stdout + result.stderr
    else:
        assert "Stop" in result.stdout
    assert list(tmp_path.iterdir()) == []


def test_a_good_render_writes_the_track_and_both_lists(
    catalogue: Catalogue, tmp_path: Path
) -> None:
    out = tmp_path / "my-massage"
    argv = [*BASE, "--none", "--no-ambient", "--format", "flac", "-o", str(out), "--json"]
    result = runner.invoke(make_app(catalogue), argv, env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.stderr
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["my-massage.chapters.json", "my-massage.flac", "my-massage.json"]
    assert '"seconds": 900' in result.stdout
