"""`backrub backup` and `backrub restore` as a person runs them: SQLite to PostgreSQL and back,
and every refusal one line on stderr with exit code 2."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import pytest
from sqlalchemy import create_engine, inspect, select
from typer.testing import CliRunner

from backrub.cli.main import make_app
from backrub.config import Settings
from backrub.store import open_store
from backrub.store.tables import Base
from pg_databases import empty_postgres, temporary_database

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from backrub.core.catalogue import Catalogue

runner = CliRunner()


@pytest.fixture(scope="module")
def postgres() -> Iterator[str]:
    with temporary_database("backrub_test") as url:
        yield url


def run(
    catalogue: Catalogue, database: str, *args: str, monkeypatch: pytest.MonkeyPatch
) -> tuple[int, str, str]:
    monkeypatch.setenv("BACKRUB_DATABASE_URL", database)
    result = runner.invoke(make_app(catalogue), list(args), env={"COLUMNS": "160"})
    return result.exit_code, result.stdout, result.stderr


def stored(database: str) -> dict[str, list[dict[str, Any]]]:
    """Every row of every table, in primary-key order (read here, not through `history`, so
    the test closes its own connections)."""
    engine = create_engine(database)
    try:
        with engine.connect() as conn:
            if not inspect(conn).has_table("sessions"):
                return {}
            return {
                table.name: [
                    dict(row)
                    for row in conn.execute(
                        select(table).order_by(*table.primary_key.columns)
                    ).mappings()
                ]
                for table in Base.metadata.sorted_tables
            }
    finally:
        engine.dispose()


def add_session(database: str, tmp_path: Path) -> None:
    store = open_store(Settings(data_dir=tmp_path, cache_dir=tmp_path, database_url=database))
    try:
        store.create(
            started_at=datetime(2025, 1, 1, tzinfo=UTC), mode="self", minutes_planned=20,
            focus=(), verdict="clear", verdict_conditions=(), tension_before=5,
            plan={"steps": []}, state={"active": 0.0, "started": False, "fired": [], "seq": 0},
        )  # fmt: skip
    finally:
        store.close()


@pytest.fixture
def source(catalogue: Catalogue, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """An SQLite database with two finished sessions."""
    url = f"sqlite:///{tmp_path}/source.db"
    for before, after in ((8, 4), (6, 2)):
        code, _, err = run(
            catalogue, url, "start", "--none", "--yes", "--speed", "1000", "--minutes", "15",
            "--before", str(before), "--after", str(after), "--note", f"from {before}",
            "--mode", "partner", monkeypatch=monkeypatch,
        )  # fmt: skip
        assert code == 0, err
    return url


def test_sqlite_to_postgresql_and_back(
    catalogue: Catalogue,
    source: str,
    postgres: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    file = tmp_path / "backup.gz"
    code, out, err = run(catalogue, source, "backup", str(file), monkeypatch=monkeypatch)
    assert code == 0, err
    assert out == (
        "Backed up 0 account(s), 2 session(s) with 0 feedback event(s), 0 signed-in browser(s) "
        f"and 0 remote code(s) to {file}.\n"
    )
    hosted = empty_postgres(postgres)
    code, out, err = run(catalogue, hosted, "restore", str(file), monkeypatch=monkeypatch)
    assert code == 0, err
    assert out.startswith("Restored 0 account(s), 2 session(s)")
    expected = stored(source)
    assert len(expected["sessions"]) == 2
    assert stored(hosted) == expected

    again = tmp_path / "again.gz"
    assert run(catalogue, hosted, "backup", str(again), monkeypatch=monkeypatch)[0] == 0
    back = f"sqlite:///{tmp_path}/back.db"
    assert run(catalogue, back, "restore", str(again), monkeypatch=monkeypatch)[0] == 0
    assert stored(back) == expected


def assert_one_sentence(code: int, out: str, err: str, words: str) -> None:
    assert code == 2
    assert out == ""
    assert err.startswith("Error: ") and err.count("\n") == 1 and words in err
    assert "Traceback" not in err


@pytest.mark.parametrize(
    ("damage", "words"),
    [
        (lambda lines: lines[:-1], "ends early"),
        (lambda lines: [{**lines[0], "schema": "0099"}, *lines[1:]], "upgrade backrub"),
        (lambda lines: [{"sessions": []}], "not a backrub backup"),
        (
            lambda lines: (
                [lines[0], {**lines[1], "row": {**lines[1]["row"], "seconds_done": -1}}, *lines[2:]]
            ),
            "seconds done must be a whole number",
        ),
    ],
    ids=["cut-short", "newer-schema", "wrong-format", "constraint"],
)
@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_a_bad_file_is_exit_2_and_leaves_the_database_alone(
    catalogue: Catalogue,
    source: str,
    postgres: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    damage: object,
    words: str,
    backend: str,
) -> None:
    good = tmp_path / "good.gz"
    assert run(catalogue, source, "backup", str(good), monkeypatch=monkeypatch)[0] == 0
    lines = [json.loads(x) for x in gzip.decompress(good.read_bytes()).splitlines()]
    bad = tmp_path / "bad.gz"
    bad.write_bytes(
        gzip.compress(b"".join(json.dumps(x).encode() + b"\n" for x in damage(lines)))  # type: ignore[operator]
    )
    target = f"sqlite:///{tmp_path}/target.db" if backend == "sqlite" else empty_postgres(postgres)
    # A database that already holds a session, restored over with --replace: kept as it was.
    add_session(target, tmp_path)
    before = stored(target)
    assert len(before["sessions"]) == 1
    code, out, err = run(
        catalogue, target, "restore", "--replace", str(bad), monkeypatch=monkeypatch
    )
    assert_one_sentence(code, out, err, words)
    assert stored(target) == before


def test_a_database_with_sessions_needs_replace(
    catalogue: Catalogue, source: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    file = tmp_path / "backup.gz"
    assert run(catalogue, source, "backup", str(file), monkeypatch=monkeypatch)[0] == 0
    code, out, err = run(catalogue, source, "restore", str(file), monkeypatch=monkeypatch)
    assert_one_sentence(code, out, err, "give --replace")
    code, _, err = run(
        catalogue, source, "restore", "--replace", str(file), monkeypatch=monkeypatch
    )
    assert code == 0, err
    assert len(stored(source)["sessions"]) == 2


def test_an_unwritable_backup_path_is_exit_2_and_no_file(
    catalogue: Catalogue, source: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def files() -> list[str]:
        # SQLite's -wal and -shm files come and go with its connections: not the backup's.
        return sorted(p.name for p in tmp_path.iterdir() if not p.name.endswith(("-wal", "-shm")))

    before = files()
    for path in (tmp_path / "no-such-folder" / "b.gz", tmp_path / "source.db" / "b.gz"):
        code, out, err = run(catalogue, source, "backup", str(path), monkeypatch=monkeypatch)
        assert_one_sentence(code, out, err, "nothing was written")
    folder = tmp_path / "a-folder"
    folder.mkdir()
    code, out, err = run(catalogue, source, "backup", str(folder), monkeypatch=monkeypatch)
    assert_one_sentence(code, out, err, "Is a directory")
    assert list(folder.iterdir()) == []
    assert files() == sorted([*before, "a-folder"])


def test_a_missing_file_is_exit_2(
    catalogue: Catalogue, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = f"sqlite:///{tmp_path}/target.db"
    code, out, err = run(
        catalogue, target, "restore", str(tmp_path / "nope.gz"), monkeypatch=monkeypatch
    )
    assert_one_sentence(code, out, err, "No such file or directory")
    assert not (tmp_path / "target.db").exists()


def test_the_commands_load_the_store_only_when_run() -> None:
    """`backrub plan` must start as fast as before: registering these commands imports no
    database code."""
    script = (
        "import sys, backrub.cli.backup_commands; "
        "print(sorted(m for m in sys.modules if m.startswith(('sqlalchemy', 'backrub.store'))))"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    )
    assert done.stdout.strip() == "[]"
