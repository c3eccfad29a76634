"""The web app in process (`TestClient` on `create_app(settings)`) against the databases of
tests/conftest.py: each test on `settings` runs once on SQLite and once on PostgreSQL.

Pages render stub templates from a temporary folder that print their context, so these tests
check what the server hands the templates; the real templates have tests of their own.
"""

from __future__ import annotations

import warnings
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import pytest
from starlette.exceptions import StarletteDeprecationWarning

from backrub.web import create_app
from pg_databases import settings_for, with_catalogue

with warnings.catch_warnings():
    # Starlette would rather have httpx2; the httpx pinned for the tests works the same.
    warnings.filterwarnings("ignore", "Using `httpx`", StarletteDeprecationWarning)
    from fastapi.testclient import TestClient

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from contextlib import AbstractContextManager
    from pathlib import Path

    from fastapi import FastAPI

    from backrub.config import Settings

BASE_URL = "http://127.0.0.1:8000"
PAGES = ("index", "safety", "map", "plan", "play", "history")
# Each stub page prints what the template author relies on, one `name=value` a line.
STUB = """\
page={{ page }}
speed={{ speed }}
regions={{ catalogue.regions|length }}
shapes={{ catalogue.regions['shoulders'].shapes|length }}
facts={{ facts.min_minutes }}-{{ facts.max_minutes }}
setup={{ setup|length }}
conditions={{ conditions|map(attribute='id')|join(',') }}
pressure={{ pressure_words[1] }},{{ pressure_words[5] }}
session={{ session_id|default('-') }}
static={{ url_for('static', path='app.js') }}
"""
ERROR_STUB = "error {{ status }}: {{ message }} ({{ page }})\n"


@pytest.fixture
def sqlite_settings(sqlite_url: str, tmp_path: Path, catalogue_cache: Path) -> Settings:
    """For what does not depend on the database (validation, headers): SQLite only."""
    return with_catalogue(settings_for(tmp_path, sqlite_url), catalogue_cache)


@pytest.fixture(scope="session")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Stub templates (with an error page) and static files."""
    root = tmp_path_factory.mktemp("site")
    (root / "templates").mkdir()
    for page in PAGES:
        (root / "templates" / f"{page}.html").write_text(STUB)
    (root / "templates" / "error.html").write_text(ERROR_STUB)
    (root / "static").mkdir()
    (root / "static" / "app.js").write_text("document.body.dataset.ready = '1';\n")
    (root / "static" / "sw.js").write_text("self.addEventListener('fetch', () => {});\n")
    return root


def make_app(settings: Settings, site: Path, **options: Any) -> FastAPI:
    options.setdefault("templates_dir", site / "templates")
    options.setdefault("static_dir", site / "static")
    return create_app(settings, **options)


def sign(client: TestClient) -> TestClient:
    """Visit a page, as a browser would, and echo its CSRF cookie as the pages' scripts do."""
    response = client.get("/")
    assert response.status_code == 200
    client.headers["X-CSRF-Token"] = client.cookies["backrub_csrf"]
    return client


@contextmanager
def connected(app: FastAPI) -> Iterator[TestClient]:
    """A signed client; the `with` block runs the app's lifespan (opens its database)."""
    with TestClient(app, base_url=BASE_URL) as client:
        yield sign(client)


@pytest.fixture
def connect() -> Callable[[FastAPI], AbstractContextManager[TestClient]]:
    return connected


@pytest.fixture
def build() -> Callable[..., FastAPI]:
    """`build(settings, site, **options)`: an app on the stub templates and static files."""
    return make_app


@pytest.fixture
def signed() -> Callable[[TestClient], TestClient]:
    return sign


@pytest.fixture
def app(settings: Settings, site: Path) -> FastAPI:
    return make_app(settings, site)


@pytest.fixture
def api(app: FastAPI) -> Iterator[TestClient]:
    """A signed client on both databases."""
    with connected(app) as client:
        yield client


@pytest.fixture
def lite(sqlite_settings: Settings, site: Path) -> Iterator[TestClient]:
    """A signed client on SQLite, for what does not depend on the database."""
    with connected(make_app(sqlite_settings, site)) as client:
        yield client


def session_body(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "mode": "partner",
        "minutes": 20,
        "focus": [{"region": "shoulders", "tension": 8}, {"region": "lower-back", "tension": 5}],
        "pressure": "medium",
        "oil": True,
        "findings": [],
        "tension_before": 7,
    }
    body.update(overrides)
    return body


@pytest.fixture
def body() -> Callable[..., dict[str, Any]]:
    """A session's body, with the fields given changed."""
    return session_body


@pytest.fixture
def start() -> Callable[..., dict[str, Any]]:
    """Create a session through the API and return its view."""

    def create(client: TestClient, **overrides: Any) -> dict[str, Any]:
        response = client.post("/api/v1/sessions", json=session_body(**overrides))
        assert response.status_code == 201, response.text
        view: dict[str, Any] = response.json()
        return view

    return create
