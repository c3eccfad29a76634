"""Object-level access, route by route: every API route that takes a session id, listed from the
OpenAPI schema (so a new route is covered the day it is added), called by one person on another
person's session reads nothing and changes nothing — on SQLite and PostgreSQL."""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING, Any

import pytest
from sqlalchemy import create_engine, func, select
from starlette.exceptions import StarletteDeprecationWarning

from backrub.store.tables import FeedbackRow, RemoteMessageRow, RemoteRow, SessionRow
from backrub.web import create_app

with warnings.catch_warnings():
    warnings.filterwarnings("ignore", "Using `httpx`", StarletteDeprecationWarning)
    from fastapi.testclient import TestClient

if TYPE_CHECKING:
    from collections.abc import Callable

    from backrub.config import Settings

BASE = "https://backrub.example"
# With accounts on, the CSRF cookie is bound to this host (and sent over HTTPS only).
CSRF = "__Host-backrub_csrf"
PASSWORD = "correct horse battery staple"  # noqa: S105 - a test account's
# A valid body for the routes that need one, so that a refusal is about whose session it is.
BODIES: dict[str, dict[str, Any]] = {
    "/api/v1/sessions/{session_id}/events": {
        "kind": "feedback", "active": 30.0, "seq": 5, "feedback": "softer", "fired": [],
    },
    "/api/v1/sessions/{session_id}/finish": {"active": 60.0, "tension_after": 2, "stopped": True},
    "/api/v1/sessions/{session_id}/voice": {"text": "Get ready."},
}  # fmt: skip
# Query strings for the routes that need one.
QUERIES: dict[str, dict[str, str]] = {}
STATE_CHANGING = {"post", "put", "patch", "delete"}


def routes_with_a_session_id(client: TestClient) -> list[tuple[str, str]]:
    schema = client.get("/api/v1/openapi.json").json()
    return [
        (method, path)
        for path, operations in schema["paths"].items()
        if "{session_id}" in path
        for method in operations
        if method in {"get", "post", "put", "patch", "delete"}
    ]


def snapshot(settings: Settings, session_id: str) -> dict[str, Any]:
    """Everything stored about one session, to compare before and after."""
    engine = create_engine(settings.database_url or "")
    try:
        with engine.connect() as conn:
            row = conn.execute(select(SessionRow).where(SessionRow.id == session_id)).one()
            counts = {
                table.__tablename__: conn.execute(
                    select(func.count()).select_from(table).where(table.session_id == session_id)
                ).scalar_one()
                for table in (FeedbackRow, RemoteRow, RemoteMessageRow)
            }
    finally:
        engine.dispose()
    return {**row._asdict(), **counts}


def test_another_persons_session_is_out_of_reach_on_every_route(
    settings: Settings, body: Callable[..., dict[str, Any]]
) -> None:
    app = create_app(settings, accounts=True)
    with (
        TestClient(app, base_url=BASE, follow_redirects=False) as ana,
        TestClient(app, base_url=BASE, follow_redirects=False) as ben,
    ):
        for client, email in ((ana, "ana@example.org"), (ben, "ben@example.org")):
            client.get("/signin")
            client.headers["X-CSRF-Token"] = client.cookies[CSRF]
            signed = client.post(
                "/api/v1/account/signup",
                json={"email": email, "password": PASSWORD, "consent": True},
            )
            assert signed.status_code == 201
        created = ana.post("/api/v1/sessions", json=body())
        assert created.status_code == 201
        session_id = created.json()["id"]
        before = snapshot(settings, session_id)

        routes = routes_with_a_session_id(ben)
        # The routes known today must be among them: the listing itself is checked.
        assert {("get", "/api/v1/sessions/{session_id}"),
                ("post", "/api/v1/sessions/{session_id}/events"),
                ("post", "/api/v1/sessions/{session_id}/finish"),
                ("delete", "/api/v1/sessions/{session_id}"),
                ("post", "/api/v1/sessions/{session_id}/remote")} <= set(routes)  # fmt: skip
        for method, path in routes:
            url = path.replace("{session_id}", session_id)
            query = QUERIES.get(path)
            answer = ben.request(method.upper(), url, json=BODIES.get(path), params=query)
            assert answer.status_code == 404, (method, path, answer.status_code, answer.text)
            assert session_id in answer.json()["error"] or "No session" in answer.json()["error"]
            # The same call with no login at all is refused before it looks.
            anonymous = TestClient(app, base_url=BASE)
            anonymous.cookies.set(CSRF, ana.cookies[CSRF])
            refused = anonymous.request(
                method.upper(),
                url,
                json=BODIES.get(path),
                params=query,
                headers={"X-CSRF-Token": ana.cookies[CSRF]},
            )
            assert refused.status_code == 401, (method, path)
        assert snapshot(settings, session_id) == before
        # Lists are scoped too.
        assert ben.get("/api/v1/sessions").json() == {"sessions": []}
        assert ben.get("/api/v1/stats").json()["sessions"] == 0
        # And Ana still reads it, so the 404s above were about Ben.
        assert ana.get(f"/api/v1/sessions/{session_id}").status_code == 200
        voice = f"/api/v1/sessions/{session_id}/voice"
        assert ana.post(voice, json={"text": "Get ready."}).status_code == 200


@pytest.mark.parametrize("accounts", [False, True])
def test_every_state_changing_route_needs_the_csrf_token(
    settings: Settings, accounts: bool
) -> None:
    """A POST, PUT, PATCH or DELETE without the token, or from another site, is refused before
    any route runs — every one of them, listed from the schema."""
    app = create_app(settings, accounts=accounts)
    base = BASE if accounts else "http://127.0.0.1:8000"
    with TestClient(app, base_url=base) as client:
        schema = client.get("/api/v1/openapi.json").json()
        client.get("/signin" if accounts else "/")
        token = client.cookies[CSRF if accounts else "backrub_csrf"]
        changing = [
            (method, path.replace("{session_id}", "x" * 32).replace("{code}", "ABCDEF"))
            for path, operations in schema["paths"].items()
            for method in operations
            if method in STATE_CHANGING
        ]
        assert len(changing) >= 10
        for method, url in changing:
            missing = client.request(method.upper(), url, json={})
            assert missing.status_code == 403, (method, url)
            foreign = client.request(
                method.upper(),
                url,
                json={},
                headers={"X-CSRF-Token": token, "Origin": "https://evil.example"},
            )
            assert foreign.status_code == 403, (method, url)
            assert foreign.json()["error"].startswith("Requests from another site are refused")


def test_every_answer_carries_the_security_headers(settings: Settings) -> None:
    """Every GET route of the schema, every page, a static file, a 404 and a refusal: a CSP
    without inline script, nosniff, and no framing."""
    app = create_app(settings, accounts=True)
    with TestClient(app, base_url=BASE, follow_redirects=False) as client:
        client.get("/signin")
        client.headers["X-CSRF-Token"] = client.cookies[CSRF]
        client.post(
            "/api/v1/account/signup",
            json={"email": "ana@example.org", "password": PASSWORD, "consent": True},
        )
        schema = client.get("/api/v1/openapi.json").json()
        urls = [
            path.replace("{session_id}", "x" * 32).replace("{code}", "ABCDEF")
            for path, operations in schema["paths"].items()
            if "get" in operations
        ]
        urls += ["/", "/safety", "/map", "/plan", "/history", "/account", "/signin", "/signup"]
        urls += ["/r", "/sw.js", "/static/css/app.css", "/no-such-page", "/api/v1/nothing"]
        answers = [client.get(url) for url in urls]
        answers.append(client.post("/api/v1/sessions", json={}, headers={"X-CSRF-Token": ""}))
        for answer in answers:
            where = f"{answer.request.method} {answer.request.url.path} → {answer.status_code}"
            policy = answer.headers.get("content-security-policy", "")
            assert "script-src 'self'" in policy and "unsafe-inline" not in policy, where
            assert "frame-ancestors 'none'" in policy, where
            assert answer.headers.get("x-content-type-options") == "nosniff", where


def test_free_text_is_shown_as_text(settings: Settings) -> None:
    """Stored XSS: what a person types (an email address, a note) comes back escaped in the
    pages the server renders; the player and history put notes in as text (browser tests)."""
    payload = "<script>alert(1)</script>@example.org"
    app = create_app(settings, accounts=True)
    with TestClient(app, base_url=BASE, follow_redirects=False) as client:
        client.get("/signin")
        client.headers["X-CSRF-Token"] = client.cookies[CSRF]
        signed = client.post(
            "/api/v1/account/signup", json={"email": payload, "password": PASSWORD, "consent": True}
        )
        assert signed.status_code == 201
        page = client.get("/account").text
        assert "<script>alert(1)</script>" not in page
        assert "&lt;script&gt;alert(1)&lt;/script&gt;@example.org" in page
        for path in ("/", "/history", "/safety"):
            assert "<script>alert(1)" not in client.get(path).text, path


def test_no_get_changes_anything(settings: Settings, body: Callable[..., dict[str, Any]]) -> None:
    """Every GET route of the schema, called by the owner on their own session: what is stored
    is the same afterwards."""
    app = create_app(settings, accounts=True)
    with TestClient(app, base_url=BASE, follow_redirects=False) as ana:
        ana.get("/signin")
        ana.headers["X-CSRF-Token"] = ana.cookies[CSRF]
        ana.post(
            "/api/v1/account/signup",
            json={"email": "ana@example.org", "password": PASSWORD, "consent": True},
        )
        session_id = ana.post("/api/v1/sessions", json=body()).json()["id"]
        code = ana.post(f"/api/v1/sessions/{session_id}/remote").json()["code"]
        before = snapshot(settings, session_id)
        schema = ana.get("/api/v1/openapi.json").json()
        for path, operations in schema["paths"].items():
            if "get" not in operations:
                continue
            url = path.replace("{session_id}", session_id).replace("{code}", code)
            params = {**QUERIES.get(path, {}), "wait": "0"} if "messages" in path else None
            answer = ana.get(url, params=params or QUERIES.get(path))
            assert answer.status_code == 200, (path, answer.status_code, answer.text)
        assert snapshot(settings, session_id) == before
