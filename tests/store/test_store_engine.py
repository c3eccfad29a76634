"""Choosing and reaching the database: the default, the URL setting, and what goes wrong."""

from __future__ import annotations

import os
import subprocess
import sys
from typing import TYPE_CHECKING

import pytest

from backrub.config import Settings
from backrub.store import StoreError, database_url, make_engine, open_store

if TYPE_CHECKING:
    from pathlib import Path

BAD_URL = "BACKRUB_DATABASE_URL is not a database URL backrub can use: "
USE = "; use sqlite:///PATH or postgresql+psycopg://USER@HOST/DB."


def settings_for(tmp_path: Path, url: str | None) -> Settings:
    return Settings(data_dir=tmp_path / "data", cache_dir=tmp_path / "cache", database_url=url)


def test_default_is_an_sqlite_file_in_the_data_directory(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "deep" / "data", cache_dir=tmp_path / "cache")
    assert database_url(settings) == f"sqlite:///{tmp_path}/deep/data/backrub.db"
    assert settings.data_dir.is_dir()
    store = open_store(settings)
    try:
        assert store.sessions() == []
        assert (settings.data_dir / "backrub.db").is_file()
    finally:
        store.close()


def test_the_url_setting_wins(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/elsewhere.db"
    assert database_url(settings_for(tmp_path, url)) == url
    assert not (tmp_path / "data").exists()


def test_sqlite_is_set_up_for_several_processes(tmp_path: Path) -> None:
    engine = make_engine(settings_for(tmp_path, None))
    try:
        with engine.connect() as conn:
            pragma = {
                name: conn.exec_driver_sql(f"PRAGMA {name}").scalar()
                for name in ("journal_mode", "synchronous", "busy_timeout", "foreign_keys")
            }
    finally:
        engine.dispose()
    # synchronous 1 is NORMAL.
    assert pragma == {
        "journal_mode": "wal",
        "synchronous": 1,
        "busy_timeout": 10_000,
        "foreign_keys": 1,
    }


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("not a database", "it cannot be read as a URL"),
        ("postgresql+psycopg://u:secret@host:port/db", "it cannot be read as a URL"),
        ("mysql+pymysql://u:secret@host/db", "the driver 'mysql+pymysql' is not supported"),
        (
            "postgresql+psycopg2://u:secret@host/db",
            "the driver 'postgresql+psycopg2' is not supported",
        ),
        ("sqlite://", "it names no database file, and an in-memory database keeps nothing"),
        (
            "sqlite:///:memory:",
            "it names no database file, and an in-memory database keeps nothing",
        ),
    ],
)
def test_a_url_backrub_cannot_use_is_one_sentence(tmp_path: Path, url: str, why: str) -> None:
    with pytest.raises(StoreError) as caught:
        make_engine(settings_for(tmp_path, url))
    assert caught.value.message == BAD_URL + why + USE


@pytest.mark.parametrize(
    "url", ["postgresql://u@db.example/backrub", "postgres://u@db.example/backrub"]
)
def test_plain_postgresql_urls_use_psycopg(tmp_path: Path, url: str) -> None:
    engine = make_engine(settings_for(tmp_path, url))  # connects lazily: no server needed
    try:
        assert (engine.dialect.name, engine.dialect.driver) == ("postgresql", "psycopg")
    finally:
        engine.dispose()


def test_an_unreachable_server_is_one_sentence(tmp_path: Path) -> None:
    url = "postgresql+psycopg://postgres:secret@127.0.0.1:1/backrub"
    with pytest.raises(StoreError) as caught:
        open_store(settings_for(tmp_path, url))
    message = caught.value.message
    assert message.startswith(
        "The database postgresql+psycopg://postgres:***@127.0.0.1:1/backrub cannot be used ("
    )
    assert message.endswith("and try again.")
    assert "\n" not in message
    assert "secret" not in message


def test_an_sqlite_file_that_cannot_be_opened_is_one_sentence(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/missing/folder/backrub.db"
    with pytest.raises(
        StoreError,
        match=r"^The database sqlite:///.* cannot be used \(unable to "
        r"open database file\); .*\.$",
    ):
        open_store(settings_for(tmp_path, url))


def test_a_data_folder_that_cannot_be_made_is_one_sentence(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("not a folder")
    settings = Settings(data_dir=tmp_path / "file" / "data", cache_dir=tmp_path)
    with pytest.raises(
        StoreError, match=r"^Cannot create backrub's data folder .*BACKRUB_DATA_DIR"
    ):
        open_store(settings)


def test_importing_the_store_builds_and_loads_nothing_more(tmp_path: Path) -> None:
    code = (
        "import sys, backrub.store\n"
        "loaded = {'alembic', 'psycopg', 'sqlite3'} & set(sys.modules)\n"
        "assert not loaded, loaded\n"
    )
    env = {**os.environ, "BACKRUB_DATA_DIR": str(tmp_path / "unused")}
    done = subprocess.run(
        [sys.executable, "-c", code],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert not (tmp_path / "unused").exists()
