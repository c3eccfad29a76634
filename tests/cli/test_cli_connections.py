"""The session commands close their database connections: run in one process against
PostgreSQL (as a script, a notebook or the tests run them), they leave no connection open."""

from __future__ import annotations

import gc
import warnings
from typing import TYPE_CHECKING

import pytest
from typer.testing import CliRunner

from backrub.cli.main import make_app
from pg_databases import temporary_database

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from backrub.core.catalogue import Catalogue


@pytest.fixture(scope="module")
def postgres() -> Iterator[str]:
    with temporary_database("backrub_cliconn") as url:
        yield url


@pytest.mark.parametrize(
    "args",
    [
        ["history", "--json"],
        ["stats", "--json"],
        ["export", "--output", "{tmp}/export.json"],
        ["forget", "--yes"],
        [
            "start",
            "--none",
            "--yes",
            "--before",
            "5",
            "--after",
            "3",
            "--speed",
            "1000",
            "--minutes",
            "15",
        ],
    ],
    ids=lambda args: args[0],
)
def test_a_command_leaves_no_connection_open(
    catalogue: Catalogue,
    postgres: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    args: list[str],
) -> None:
    monkeypatch.setenv("BACKRUB_DATABASE_URL", postgres)
    monkeypatch.setenv("BACKRUB_CACHE_DIR", str(tmp_path / "cache"))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = CliRunner().invoke(make_app(catalogue), [a.format(tmp=tmp_path) for a in args])
        gc.collect()
    assert result.exit_code == 0, result.output
    left_open = [str(w.message) for w in caught if issubclass(w.category, ResourceWarning)]
    assert left_open == []
