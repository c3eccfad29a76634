"""What every test package shares: private data folders, the catalogue, and the databases.

A test's database is migrated once per run (per xdist worker): on SQLite a copy of a migrated
file; on PostgreSQL (127.0.0.1:5432) the run's migrated database, emptied before each test.
PostgreSQL tests are never skipped: when the server is down they fail and say how to start it.
Tests that run on PostgreSQL are marked `postgresql`, those in tests/browser/ `browser`, so that
`-m "not browser"` and the like choose among them.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from sqlalchemy import create_engine

from backrub.catalogue_cache import cached_catalogue
from backrub.core.catalogue import Catalogue, load_catalogue
from pg_databases import (
    admin_engine,
    copy_sqlite,
    create_database,
    drop_database,
    empty_postgres,
    migrate_at,
    reset_postgres,
    schema_of,
    settings_for,
    temporary_database,
    with_catalogue,
)

if TYPE_CHECKING:
    from collections.abc import Iterator

    from _pytest.terminal import TerminalReporter
    from sqlalchemy import Engine

    from backrub.config import Settings

BACKENDS = ["sqlite", "postgresql"]
BROWSER_TESTS = Path(__file__).parent / "browser"
# Fixtures that hand a test a PostgreSQL database whatever its parameters.
PG_FIXTURES = {
    *("postgres_migrated", "migrated_postgres", "empty_postgres_url", "postgres_url"),
    *("postgres", "second_postgres"),  # test modules' own
}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if BROWSER_TESTS in item.path.parents:
            item.add_marker(pytest.mark.browser)
        params = getattr(item, "callspec", None)
        if params is not None:
            on_postgres = "postgresql" in params.id.split("-")
        else:  # a test that takes its PostgreSQL database itself says so in its name
            on_postgres = "postgresql" in item.name
        if on_postgres or PG_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.postgresql)


def pytest_terminal_summary(terminalreporter: TerminalReporter) -> None:
    """axe-core's findings below "serious" in the browser tests: listed, and kept in
    `<repo>/.artifacts/axe.txt`."""
    reports = [r for rs in terminalreporter.stats.values() for r in rs if hasattr(r, "when")]
    if not any(r.user_properties for r in reports):
        return
    from browser.support import ARTIFACTS, MINOR_FINDING

    found = (v for r in reports for k, v in r.user_properties if k == MINOR_FINDING)
    findings = list(dict.fromkeys(found))
    if not findings:
        return
    terminalreporter.section("axe-core: moderate and minor findings (not failures)")
    for line in findings:
        terminalreporter.line(line)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / "axe.txt").write_text("\n".join(findings) + "\n", encoding="utf-8")


@pytest.fixture(scope="session", autouse=True)
def _private_dirs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Keep every test, and every backrub it starts, out of the real user's data and cache."""
    saved = {k: os.environ.get(k) for k in ("BACKRUB_DATA_DIR", "BACKRUB_CACHE_DIR")}
    os.environ["BACKRUB_DATA_DIR"] = str(tmp_path_factory.mktemp("data"))
    os.environ["BACKRUB_CACHE_DIR"] = str(tmp_path_factory.mktemp("cache"))
    yield
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


@pytest.fixture(scope="session")
def catalogue() -> Catalogue:
    return load_catalogue()


# ---- databases ----------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def pg_admin() -> Iterator[Engine]:
    engine = admin_engine()
    yield engine
    engine.dispose()


@pytest.fixture(scope="session")
def postgres_migrated(pg_admin: Engine, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """This run's (this xdist worker's) PostgreSQL database at this code's schema, dropped when
    the run ends. `migrated_postgres` empties it for each test: on this server a new database
    (CREATE DATABASE … TEMPLATE) costs more than migrating an empty one, and emptying it far
    less."""
    url = create_database(pg_admin, "backrub_test")
    try:
        yield migrate_at(url, tmp_path_factory.mktemp("pg-migrated"))
    finally:
        drop_database(pg_admin, url)


@pytest.fixture(scope="session")
def _postgres_migrated_engine(postgres_migrated: str) -> Iterator[tuple[Engine, str]]:
    """A connection to the migrated database, and its schema as migrated."""
    engine = create_engine(postgres_migrated, pool_size=1)
    migrated = schema_of(engine)
    assert migrated is not None
    yield engine, migrated
    engine.dispose()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An SQLite file at this code's schema, which tests copy."""
    path = tmp_path_factory.mktemp("sqlite-template") / "backrub.db"
    migrate_at(f"sqlite:///{path}", path.parent)
    return path


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """An empty PostgreSQL database of this run's own, dropped when the run ends."""
    with temporary_database("backrub_test") as url:
        yield url


@pytest.fixture
def migrated_postgres(postgres_migrated: str, _postgres_migrated_engine: tuple[Engine, str]) -> str:
    """The run's migrated PostgreSQL database, with no rows and its schema as migrated."""
    engine, migrated = _postgres_migrated_engine
    reset_postgres(engine, postgres_migrated, migrated)
    return postgres_migrated


@pytest.fixture
def empty_postgres_url(postgres_url: str) -> str:
    """The run's other PostgreSQL database, with no tables."""
    return empty_postgres(postgres_url)


@pytest.fixture(params=BACKENDS)
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A database at this code's schema, with no rows: a copy of the SQLite file or of the
    PostgreSQL database migrated once for the run (the test runs once with each)."""
    if request.param == "sqlite":
        template: Path = request.getfixturevalue("sqlite_template")
        return copy_sqlite(template, tmp_path / "backrub.db")
    url: str = request.getfixturevalue("migrated_postgres")
    return url


@pytest.fixture(params=BACKENDS)
def empty_db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A database backrub has never set up: a new SQLite file, or an empty PostgreSQL one."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/backrub.db"
    url: str = request.getfixturevalue("empty_postgres_url")
    return url


@pytest.fixture(scope="session")
def catalogue_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A cache folder as backrub leaves it after its first start: the parsed catalogue in it."""
    folder = tmp_path_factory.mktemp("catalogue-cache")
    cached_catalogue(folder)
    return folder


@pytest.fixture
def settings(db_url: str, tmp_path: Path, catalogue_cache: Path) -> Settings:
    """Settings on `db_url`, with the data and cache folders in `tmp_path`."""
    return with_catalogue(settings_for(tmp_path, db_url), catalogue_cache)


@pytest.fixture
def empty_settings(empty_db_url: str, tmp_path: Path, catalogue_cache: Path) -> Settings:
    """Settings on `empty_db_url`, for what happens to a database backrub has never set up."""
    return with_catalogue(settings_for(tmp_path, empty_db_url), catalogue_cache)


@pytest.fixture
def sqlite_url(sqlite_template: Path, tmp_path: Path) -> str:
    """A copy of the migrated SQLite file, for what does not depend on the database."""
    return copy_sqlite(sqlite_template, tmp_path / "backrub.db")
