"""The pages get the context the templates rely on; the OpenAPI schema describes the API."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

import pytest

from backrub.core.errors import BadInput
from backrub.web import create_app

if TYPE_CHECKING:
    from collections.abc import Callable
    from contextlib import AbstractContextManager
    from pathlib import Path

    from fastapi import FastAPI
    from fastapi.testclient import TestClient

    from backrub.config import Settings
    from backrub.core.catalogue import Catalogue

    Connect = Callable[[FastAPI], AbstractContextManager[TestClient]]
    Build = Callable[..., FastAPI]


def lines(text: str) -> dict[str, str]:
    return dict(line.split("=", 1) for line in text.splitlines() if "=" in line)


@pytest.mark.parametrize(
    ("path", "page"),
    [("/", "index"), ("/safety", "safety"), ("/map", "map"), ("/plan", "plan"),
     ("/history", "history")],
)  # fmt: skip
def test_each_page_renders_its_template_with_the_context(
    lite: TestClient, catalogue: Catalogue, path: str, page: str
) -> None:
    response = lite.get(path)
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    got = lines(response.text)
    assert got == {
        "page": page,
        "speed": "1.0",
        "regions": str(len(catalogue.regions)),
        "shapes": "2",
        "facts": "15-60",
        "setup": str(len(catalogue.setup)),
        "conditions": ",".join(catalogue.conditions),
        "pressure": "feather,deep",
        "session": "-",
        "static": "http://127.0.0.1:8000/static/app.js",
    }


def test_the_player_gets_its_session(api: TestClient) -> None:
    session_id = api.post("/api/v1/sessions", json={"tension_before": 6}).json()["id"]
    response = api.get(f"/play/{session_id}")
    assert response.status_code == 200
    assert lines(response.text)["page"] == "play"
    assert lines(response.text)["session"] == session_id


def test_an_unknown_session_is_the_error_page(lite: TestClient) -> None:
    response = lite.get("/play/0123456789abcdef")
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("text/html")
    assert response.text == (
        "error 404: No session &#39;0123456789abcdef&#39; is stored; "
        "check the id against your history. (error)"
    )


def test_an_unknown_page(lite: TestClient) -> None:
    response = lite.get("/nowhere")
    assert response.status_code == 404
    assert response.text == "error 404: There is no such page here. (error)"


def test_a_bare_error_page_without_the_template(
    sqlite_settings: Settings, site: Path, build: Build, connect: Connect, tmp_path: Path
) -> None:
    templates = tmp_path / "templates"
    templates.mkdir()
    (templates / "index.html").write_text("home\n")
    with connect(build(sqlite_settings, site, templates_dir=templates)) as client:
        response = client.get("/play/<script>")
    assert response.status_code == 404
    assert "<script>" not in response.text
    assert "No session &#x27;&lt;script&gt;&#x27; is stored" in response.text
    assert "style=" not in response.text and "<script" not in response.text


def test_speed_reaches_the_pages(
    sqlite_settings: Settings, site: Path, build: Build, connect: Connect
) -> None:
    with connect(build(sqlite_settings, site, speed=60)) as client:
        assert lines(client.get("/map").text)["speed"] == "60.0"


@pytest.mark.parametrize("speed", [0, -1, 1001])
def test_speed_out_of_range(sqlite_settings: Settings, speed: float) -> None:
    with pytest.raises(BadInput, match="speed must be above 0 and at most 1000"):
        create_app(sqlite_settings, speed=speed)


def test_static_files_and_the_service_worker(lite: TestClient, site: Path) -> None:
    response = lite.get("/static/app.js")
    assert response.status_code == 200
    assert response.text == (site / "static" / "app.js").read_text()
    worker = lite.get("/sw.js")
    assert worker.status_code == 200
    assert worker.headers["content-type"].startswith("text/javascript")
    assert worker.headers["cache-control"] == "no-cache"
    assert worker.text == (site / "static" / "sw.js").read_text()


def test_no_service_worker_without_the_file(
    sqlite_settings: Settings, site: Path, build: Build, connect: Connect, tmp_path: Path
) -> None:
    with connect(build(sqlite_settings, site, static_dir=tmp_path)) as client:
        assert client.get("/sw.js").status_code == 404


def test_openapi_describes_the_api_and_only_the_api(lite: TestClient) -> None:
    response = lite.get("/api/v1/openapi.json")
    assert response.status_code == 200
    schema = response.json()
    assert schema["info"]["title"] == "backrub"
    assert set(schema["paths"]) == {
        "/api/v1/catalogue", "/api/v1/safety", "/api/v1/plans", "/api/v1/sessions",
        "/api/v1/sessions/{session_id}", "/api/v1/sessions/{session_id}/events",
        "/api/v1/sessions/{session_id}/finish", "/api/v1/stats", "/api/v1/export",
        "/api/v1/data", "/api/v1/reminders.ics",
        "/api/v1/sessions/{session_id}/voice", "/api/v1/audio",
        "/api/v1/sessions/{session_id}/remote", "/api/v1/sessions/{session_id}/remote/messages",
        "/api/v1/remote/{code}", "/api/v1/remote/{code}/feedback",
        "/api/v1/account", "/api/v1/account/signup", "/api/v1/account/signin",
        "/api/v1/account/signout", "/api/v1/account/password", "/api/v1/account/delete",
    }  # fmt: skip
    events = schema["paths"]["/api/v1/sessions/{session_id}/events"]["post"]
    body = events["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    assert body.endswith("/EventBody")
    minutes = schema["components"]["schemas"]["PlanBody"]["properties"]["minutes"]
    assert (minutes["minimum"], minutes["maximum"]) == (15, 60)
    assert schema["components"]["schemas"]["PlanBody"]["additionalProperties"] is False
    sessions = schema["paths"]["/api/v1/sessions"]["post"]["responses"]
    assert {"201", "403", "409", "422"} <= set(sessions)
    # The interactive docs would need a CDN: they are off.
    for path in ("/docs", "/redoc", "/api/v1/docs"):
        assert lite.get(path).status_code == 404


def test_the_packaged_pages_render_under_the_policy(
    sqlite_settings: Settings, connect: Connect
) -> None:
    """The real templates with the real context: every page renders, passes the speed, has no
    inline script, style or event handler (the CSP would block them), and everything it links
    to is served here (no CDN)."""
    with connect(create_app(sqlite_settings, speed=30)) as client:
        session_id = client.post("/api/v1/sessions", json={"tension_before": 5}).json()["id"]
        linked: set[str] = set()
        for path, status in [
            ("/", 200), ("/safety", 200), ("/map", 200), ("/plan", 200),
            (f"/play/{session_id}", 200), ("/history", 200), ("/play/unknown", 404),
        ]:  # fmt: skip
            response = client.get(path)
            assert response.status_code == status, path
            page = response.text
            assert 'data-speed="30.0"' in page, path
            assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", page), path
            assert not re.search(r"\sstyle=|\son[a-z]+=|<style", page), path
            links = re.findall(r'(?:href|src)="([^"#]+)"', page)
            assert not [link for link in links if link.startswith(("http:", "https:", "//"))]
            linked.update(link for link in links if link.startswith("/static/"))
        assert linked
        for link in sorted(linked):
            assert client.get(link).status_code == 200, link


def test_pages_are_not_sent_to(lite: TestClient) -> None:
    response = lite.post("/map", json={})
    assert response.status_code == 405
    assert response.text == "error 405: This page can only be opened, not sent to. (error)"


def test_a_failure_inside_a_page_is_a_bare_500(
    lite: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    from backrub.web import pages

    def broken(*_: object, **__: object) -> None:
        raise RuntimeError("secret internals")

    monkeypatch.setattr(pages, "context", broken)
    client = type(lite)(lite.app, base_url=str(lite.base_url), raise_server_exceptions=False)
    with client:
        response = client.get("/history")
    assert response.status_code == 500
    assert "Something went wrong inside backrub" in response.text
    assert "secret" not in response.text
    assert response.headers["content-type"].startswith("text/html")
    assert response.headers["content-security-policy"].startswith("default-src 'self'")
