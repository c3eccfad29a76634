"""`backrub restore` of a gzip damaged at its end (its check sum, its length, cut short): one line
on stderr with exit code 2, one sentence — not one sentence quoted inside another."""

from __future__ import annotations

import gzip
import json
from typing import TYPE_CHECKING

import pytest
from typer.testing import CliRunner

from backrub.cli.main import make_app

if TYPE_CHECKING:
    from pathlib import Path

    from backrub.core.catalogue import Catalogue

HEADER = {"format": "backrub-backup", "version": 1, "schema": "0004", "created_at": "2025-03-02"}
END = {"end": {"users": 0, "sessions": 0, "logins": 0, "feedback_events": 0, "remotes": 0}}


@pytest.mark.parametrize("damage", ["crc", "cut"])
def test_a_damaged_gzip_is_one_sentence(
    catalogue: Catalogue, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, damage: str
) -> None:
    data = bytearray(gzip.compress(b"".join(json.dumps(x).encode() + b"\n" for x in (HEADER, END))))
    if damage == "crc":
        data[-8] ^= 0xFF
    else:
        del data[-4:]
    path = tmp_path / "backup.gz"
    path.write_bytes(bytes(data))
    monkeypatch.setenv("BACKRUB_DATABASE_URL", f"sqlite:///{tmp_path}/target.db")
    result = CliRunner().invoke(make_app(catalogue), ["restore", str(path)])
    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr == (
        "Error: The backup cannot be restored: it is not a backrub backup, or it is damaged or "
        "cut short (after line 2); nothing was restored.\n"
    )
