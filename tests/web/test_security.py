"""CSRF, the host and origin checks, and the headers every response carries (docs/web.md)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest
from opentelemetry import trace

from backrub.web.security import CONTENT_SECURITY_POLICY, host_name

if TYPE_CHECKING:
    from collections.abc import Callable
    from contextlib import AbstractContextManager
    from pathlib import Path

    from fastapi import FastAPI
    from fastapi.testclient import TestClient

    from backrub.config import Settings

    Connect = Callable[[FastAPI], AbstractContextManager[TestClient]]

OWN_ORIGIN = "http://127.0.0.1:8000"
SESSION = {"tension_before": 5}
# Every state-changing route, with a body it would accept (`{id}`: an active session).
CHANGING: list[tuple[str, str, dict[str, Any] | None]] = [
    ("POST", "/api/v1/safety", {"findings": []}),
    ("POST", "/api/v1/plans", {}),
    ("POST", "/api/v1/sessions", SESSION),
    ("POST", "/api/v1/sessions/{id}/events", {"kind": "skip", "active": 5, "seq": 1}),
    ("POST", "/api/v1/sessions/{id}/finish", {"active": 5, "tension_after": 2, "stopped": True}),
    ("DELETE", "/api/v1/data", None),
]
READING = [
    "/", "/safety", "/map", "/plan", "/play/{id}", "/history", "/sw.js", "/static/app.js",
    "/api/v1/catalogue", "/api/v1/sessions", "/api/v1/sessions/{id}", "/api/v1/stats",
    "/api/v1/export", "/api/v1/reminders.ics", "/api/v1/openapi.json",
]  # fmt: skip


@pytest.fixture
def active_id(lite: TestClient) -> str:
    session_id: str = lite.post("/api/v1/sessions", json=SESSION).json()["id"]
    return session_id


def snapshot(client: TestClient) -> dict[str, Any]:
    data: dict[str, Any] = client.get("/api/v1/export").json()
    data.pop("exported_at")
    return data


def refused(response: Any, status: int = 403) -> str:
    assert response.status_code == status, response.text
    answer = response.json()
    assert set(answer) == {"error"}
    sentence: str = answer["error"]
    return sentence


@pytest.mark.parametrize(("method", "path", "body"), CHANGING)
def test_csrf_token_is_required(
    lite: TestClient, active_id: str, method: str, path: str, body: dict[str, Any] | None
) -> None:
    url = path.format(id=active_id)
    token = lite.headers.pop("X-CSRF-Token")
    before = snapshot(lite)
    assert "CSRF token" in refused(lite.request(method, url, json=body))
    wrong = {"X-CSRF-Token": token[::-1]}
    assert "CSRF token" in refused(lite.request(method, url, json=body, headers=wrong))
    # The right token, but no cookie to match it: a forged request has no cookie.
    cookie = lite.cookies.pop("backrub_csrf")
    right = {"X-CSRF-Token": token}
    assert "CSRF token" in refused(lite.request(method, url, json=body, headers=right))
    lite.cookies.set("backrub_csrf", cookie)
    # Another site's page, even with the token.
    foreign = {"X-CSRF-Token": token, "Origin": "http://evil.example"}
    assert "another site" in refused(lite.request(method, url, json=body, headers=foreign))
    null = {"X-CSRF-Token": token, "Origin": "null"}
    assert "another site" in refused(lite.request(method, url, json=body, headers=null))
    assert snapshot(lite) == before
    # Our own origin with the token is let through.
    ours = {"X-CSRF-Token": token, "Origin": OWN_ORIGIN}
    assert lite.request(method, url, json=body, headers=ours).status_code in (200, 201)


def test_a_cookie_set_by_someone_else_is_not_a_token(lite: TestClient) -> None:
    lite.cookies.set("backrub_csrf", "short")
    response = lite.post("/api/v1/plans", json={}, headers={"X-CSRF-Token": "short"})
    assert "CSRF token" in refused(response)


def test_pages_set_the_csrf_cookie_once(lite: TestClient) -> None:
    lite.cookies.clear()
    first = lite.get("/map")
    cookie = first.headers["set-cookie"]
    assert cookie.startswith("backrub_csrf=")
    attributes = {part.strip().lower() for part in cookie.split(";")[1:]}
    assert attributes == {"path=/", "samesite=strict"}  # readable by scripts: not HttpOnly
    assert len(lite.cookies["backrub_csrf"]) == 43
    assert "set-cookie" not in lite.get("/history").headers
    assert "set-cookie" not in lite.get("/api/v1/catalogue").headers
    lite.cookies.set("backrub_csrf", "tampered")
    assert lite.get("/").headers["set-cookie"].startswith("backrub_csrf=")


def test_get_changes_nothing(lite: TestClient, active_id: str) -> None:
    before = snapshot(lite)
    for path in READING:
        response = lite.get(path.format(id=active_id))
        assert response.status_code == 200, path
    assert snapshot(lite) == before


@pytest.mark.parametrize(
    "path",
    [*READING, "/nowhere", "/play/unknown", "/api/v1/nowhere", "/static/missing.js"],
)
def test_every_response_carries_the_security_headers(
    lite: TestClient, active_id: str, path: str
) -> None:
    response = lite.get(path.format(id=active_id))
    assert response.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["referrer-policy"] == "no-referrer"
    if path.startswith("/api/"):
        assert response.headers["cache-control"] == "no-store"


def test_refusals_and_errors_carry_them_too(lite: TestClient) -> None:
    for response in (
        lite.post("/api/v1/plans", json={}, headers={"X-CSRF-Token": ""}),
        lite.post("/api/v1/plans", json={"minutes": 1}),
        lite.get("/", headers={"host": "evil.example"}),
    ):
        assert response.status_code in (400, 403, 422)
        assert response.headers["content-security-policy"] == CONTENT_SECURITY_POLICY


def test_the_policy_allows_no_inline_script_or_style() -> None:
    directives = dict(d.strip().split(" ", 1) for d in CONTENT_SECURITY_POLICY.split(";"))
    assert directives["script-src"] == "'self'"
    assert directives["style-src"] == "'self'"
    assert directives["frame-ancestors"] == "'none'"
    assert "unsafe" not in CONTENT_SECURITY_POLICY and "http" not in CONTENT_SECURITY_POLICY


@pytest.mark.parametrize(
    "host", ["127.0.0.1:8000", "127.0.0.1", "localhost:8000", "LOCALHOST", "[::1]:8000", "[::1]"]
)
def test_loopback_names_are_served(lite: TestClient, host: str) -> None:
    assert lite.get("/api/v1/catalogue", headers={"host": host}).status_code == 200


@pytest.mark.parametrize(
    "host", ["evil.example", "evil.example:8000", "127.0.0.1.nip.io", "192.168.1.5:8000", "", "::1"]
)
def test_other_names_are_refused(lite: TestClient, host: str) -> None:
    """A page elsewhere cannot point a name of its own at 127.0.0.1 and read the profile
    (DNS rebinding): the Host header gives it away."""
    response = lite.get("/api/v1/export", headers={"host": host})
    assert refused(response, 400).startswith(
        "This server answers only to 127.0.0.1, ::1, localhost"
    )


def test_the_address_it_was_started_on_is_served_too(
    sqlite_settings: Settings, site: Path, build: Callable[..., FastAPI], connect: Connect
) -> None:
    with connect(build(sqlite_settings, site, hosts=["127.0.0.2"])) as client:
        assert client.get("/", headers={"host": "127.0.0.2:9000"}).status_code == 200


@pytest.mark.parametrize(
    ("header", "name"),
    [
        ("127.0.0.1:8000", "127.0.0.1"),
        ("Example.COM", "example.com"),
        ("[::1]:80", "::1"),
        ("[::1]", "::1"),
        ("[::1]x", None),
        ("a:b", None),
        ("a:1:2", None),
        (":80", None),
    ],
)
def test_host_names(header: str, name: str | None) -> None:
    assert host_name(header) == name


class RecordingTracerProvider(trace.TracerProvider):
    """A tracer provider set up in the process, as an OpenTelemetry exporter would be."""

    def __init__(self) -> None:
        self.asked: list[str] = []

    def get_tracer(self, instrumenting_module_name: str, *args: Any, **kwargs: Any) -> trace.Tracer:
        self.asked.append(instrumenting_module_name)
        return trace.NoOpTracer()


def test_no_request_is_traced_even_when_the_process_has_a_tracer(
    lite: TestClient, active_id: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """URLs name health data (a session's id, its events): none may reach an exporter."""
    provider = RecordingTracerProvider()
    monkeypatch.setattr(trace, "get_tracer_provider", lambda: provider)
    assert lite.get("/").status_code == 200
    assert lite.get(f"/api/v1/sessions/{active_id}").status_code == 200
    event = {"kind": "progress", "active": 5, "seq": 1}
    assert lite.post(f"/api/v1/sessions/{active_id}/events", json=event).status_code == 200
    assert provider.asked == []
