"""Accounts (serving beyond this computer): sign up, sign in and out, each person's sessions
their own, throttled sign-ins, argon2id hashes — on SQLite and PostgreSQL, with real templates."""

from __future__ import annotations

import json
import warnings
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import pytest
from sqlalchemy import create_engine, func, select
from starlette.exceptions import StarletteDeprecationWarning

from backrub.store.tables import (
    FailedLoginRow,
    FeedbackRow,
    LoginRow,
    RemoteMessageRow,
    RemoteRow,
    SessionRow,
    UserRow,
)
from backrub.web import accounts as accounts_module
from backrub.web import create_app
from backrub.web.accounts import LOGIN_COOKIE
from backrub.web.ratelimit import SlidingWindow

with warnings.catch_warnings():
    warnings.filterwarnings("ignore", "Using `httpx`", StarletteDeprecationWarning)
    from fastapi.testclient import TestClient

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from fastapi import FastAPI

    from backrub.config import Settings

# With accounts on, the CSRF cookie is bound to this host (and sent over HTTPS only).
CSRF = "__Host-backrub_csrf"
# Accounts answer to any host name; https, so the client sends the Secure login cookie back.
BASE = "https://backrub.example"
PASSWORD = "correct horse battery staple"  # noqa: S105 - a test account's


@pytest.fixture
def hosted(settings: Settings) -> FastAPI:
    return create_app(settings, accounts=True)


@contextmanager
def browser(app: FastAPI) -> Iterator[TestClient]:
    """A browser of its own: its own cookies, the CSRF header echoed as the pages do."""
    with TestClient(app, base_url=BASE, follow_redirects=False) as client:
        page = client.get("/signin")
        assert page.status_code == 200
        client.headers["X-CSRF-Token"] = client.cookies[CSRF]
        yield client


def sign_up(client: TestClient, email: str, password: str = PASSWORD) -> dict[str, Any]:
    answer = client.post(
        "/api/v1/account/signup", json={"email": email, "password": password, "consent": True}
    )
    assert answer.status_code == 201, answer.text
    result: dict[str, Any] = answer.json()
    return result


def rows(settings: Settings, table: Any, *where: Any) -> int:
    engine = create_engine(settings.database_url or "")
    try:
        with engine.connect() as conn:
            return int(
                conn.execute(select(func.count()).select_from(table).where(*where)).scalar_one()
            )
    finally:
        engine.dispose()


def test_without_accounts_there_is_nothing_to_sign_in_to(app: FastAPI) -> None:
    with TestClient(app, base_url="http://127.0.0.1:8000") as client:
        client.get("/")
        client.headers["X-CSRF-Token"] = client.cookies["backrub_csrf"]
        answer = client.post("/api/v1/account/signin", json={"email": "a@b.cd", "password": "x"})
        assert answer.status_code == 404
        assert answer.json() == {
            "error": "This server has no accounts: it serves this computer's own profile."
        }
        # The local profile needs no login.
        assert client.get("/api/v1/sessions").status_code == 200


def test_a_browser_that_is_not_signed_in_is_sent_to_sign_in(hosted: FastAPI) -> None:
    with browser(hosted) as client:
        for page in ("/", "/safety", "/map", "/plan", "/history", "/account"):
            answer = client.get(page)
            assert answer.status_code == 303, page
            assert answer.headers["location"] == f"/signin?next={page}"
        answer = client.get("/api/v1/sessions")
        assert answer.status_code == 401
        assert answer.json()["error"].startswith("Sign in first")
        assert client.post("/api/v1/sessions", json={}).status_code == 401
        # What every visitor may read: the catalogue and the sign-up page.
        assert client.get("/api/v1/catalogue").status_code == 200
        assert 'id="signup-form"' in client.get("/signup").text


@pytest.mark.parametrize(
    ("body", "sentence"),
    [
        ({"email": "nobody", "password": PASSWORD, "consent": True},
         "email must be an email address such as name@example.org (at most 254 characters)."),
        ({"email": "a@b.cd", "password": "short", "consent": True},
         "password must be 12 to 128 characters long (got 5); a few words with spaces make a "
         "good one."),
        ({"email": "a@b.cd", "password": PASSWORD, "consent": False},
         "consent must be true: backrub keeps your sessions (tension scores, notes, the safety "
         "verdict) to guide and learn; you can export or delete them at any time."),
        ({"email": "a@b.cd", "password": PASSWORD}, "consent is required."),
    ],
)  # fmt: skip
def test_sign_up_says_what_is_allowed(
    hosted: FastAPI, settings: Settings, body: dict[str, Any], sentence: str
) -> None:
    with browser(hosted) as client:
        answer = client.post("/api/v1/account/signup", json=body)
    assert answer.status_code == 422
    assert answer.json() == {"error": sentence}
    assert rows(settings, UserRow) == 0


def test_sign_up_signs_in_with_a_secure_cookie_and_an_argon2id_hash(
    hosted: FastAPI, settings: Settings
) -> None:
    with browser(hosted) as client:
        answer = client.post(
            "/api/v1/account/signup",
            json={"email": " Ana@Example.ORG ", "password": PASSWORD, "consent": True},
        )
        assert answer.status_code == 201
        assert answer.json() == {"email": "ana@example.org"}
        cookie = answer.headers["set-cookie"]
        assert cookie.startswith(f"{LOGIN_COOKIE}=")
        for attribute in ("HttpOnly", "Path=/", "SameSite=lax", "Secure"):
            assert attribute in cookie
        assert "Domain" not in cookie  # a __Host- cookie belongs to exactly this host
        assert client.get("/api/v1/account").json() == {"email": "ana@example.org"}
        assert client.get("/").status_code == 200
        again = client.post(
            "/api/v1/account/signup",
            json={"email": "ana@example.org", "password": PASSWORD, "consent": True},
        )
        assert again.status_code == 409
    engine = create_engine(settings.database_url or "")
    with engine.connect() as conn:
        stored, consent = conn.execute(select(UserRow.password_hash, UserRow.consent_at)).one()
    engine.dispose()
    assert consent is not None
    # ASVS 2.4: argon2id with at least 19 MiB of memory, 2 passes and 1 lane.
    variant, version, params, _salt, _hash = stored.split("$")[1:]
    settings_of = dict(p.split("=") for p in params.split(","))
    assert variant == "argon2id" and version == "v=19"
    assert int(settings_of["m"]) >= 19 * 1024
    assert int(settings_of["t"]) >= 2
    assert int(settings_of["p"]) >= 1
    assert PASSWORD not in stored


def test_each_person_reads_and_changes_only_their_own_sessions(
    hosted: FastAPI, settings: Settings, start: Callable[..., dict[str, Any]]
) -> None:
    with browser(hosted) as ana, browser(hosted) as ben:
        sign_up(ana, "ana@example.org")
        sign_up(ben, "ben@example.org")
        mine = start(ana)["id"]
        event = {"kind": "feedback", "active": 30.0, "seq": 1, "feedback": "softer"}
        for method, path, body in [
            ("GET", f"/api/v1/sessions/{mine}", None),
            ("POST", f"/api/v1/sessions/{mine}/events", event),
            ("POST", f"/api/v1/sessions/{mine}/finish",
             {"active": 60.0, "tension_after": 2, "stopped": True}),
            ("DELETE", f"/api/v1/sessions/{mine}", None),
        ]:  # fmt: skip
            answer = ben.request(method, path, json=body)
            assert answer.status_code == 404, (method, path)
            assert "No session" in answer.json()["error"]
        assert ben.get(f"/play/{mine}").status_code == 404
        assert ben.get("/api/v1/sessions").json() == {"sessions": []}
        assert ben.get("/api/v1/export").json()["sessions"] == []
        assert ben.delete("/api/v1/data").json() == {"deleted": 0}
        # Ana's session is as she left it.
        view = ana.get(f"/api/v1/sessions/{mine}").json()
        assert view["record"]["status"] == "active" and view["state"]["seq"] == 0
        assert [s["id"] for s in ana.get("/api/v1/sessions").json()["sessions"]] == [mine]
    assert rows(settings, FeedbackRow) == 0


def test_sign_in_out_and_a_new_token_every_time(hosted: FastAPI) -> None:
    with browser(hosted) as first:
        sign_up(first, "ana@example.org")
        signed_up = first.cookies[LOGIN_COOKIE]
    with browser(hosted) as second:
        wrong = second.post(
            "/api/v1/account/signin", json={"email": "ana@example.org", "password": "nope" * 4}
        )
        assert wrong.status_code == 401
        assert wrong.json() == {"error": "The email address or the password is wrong."}
        unknown = second.post(
            "/api/v1/account/signin", json={"email": "who@example.org", "password": PASSWORD}
        )
        assert unknown.json() == wrong.json()
        ok = second.post(
            "/api/v1/account/signin", json={"email": "ANA@example.org", "password": PASSWORD}
        )
        assert ok.status_code == 200
        token = second.cookies[LOGIN_COOKIE]
        assert token != signed_up
        assert second.post("/api/v1/account/signout").status_code == 204
        # The old token is refused even when a browser still sends it.
        second.cookies.set(LOGIN_COOKIE, token)
        assert second.get("/api/v1/account").status_code == 401
        second.cookies.set(LOGIN_COOKIE, "made-up-token")
        assert second.get("/api/v1/sessions").status_code == 401


def test_changing_the_password_signs_out_the_other_browsers(hosted: FastAPI) -> None:
    with browser(hosted) as phone, browser(hosted) as laptop:
        sign_up(phone, "ana@example.org")
        laptop.post(
            "/api/v1/account/signin", json={"email": "ana@example.org", "password": PASSWORD}
        )
        assert laptop.get("/api/v1/account").status_code == 200
        new = "a new and longer passphrase"
        wrong = phone.post("/api/v1/account/password", json={"current": "x" * 12, "new": new})
        assert wrong.status_code == 401
        assert (
            phone.post(
                "/api/v1/account/password", json={"current": PASSWORD, "new": new}
            ).status_code
            == 204
        )
        assert phone.get("/api/v1/account").status_code == 200
        assert laptop.get("/api/v1/account").status_code == 401
        old = laptop.post(
            "/api/v1/account/signin", json={"email": "ana@example.org", "password": PASSWORD}
        )
        assert old.status_code == 401
        assert (
            laptop.post(
                "/api/v1/account/signin", json={"email": "ana@example.org", "password": new}
            ).status_code
            == 200
        )


def test_sign_in_is_throttled_across_processes_even_with_the_right_password(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The limit is 100 an hour (ASVS); 3 here keeps argon2's deliberate slowness out of the run.
    assert accounts_module.FAILURE_LIMIT == 100
    assert accounts_module.FAILURE_WINDOW.total_seconds() == 3600
    monkeypatch.setattr(accounts_module, "FAILURE_LIMIT", 3)
    # Two apps on one database stand for two app processes.
    one, two = create_app(settings, accounts=True), create_app(settings, accounts=True)
    with browser(one) as first, browser(two) as second:
        sign_up(first, "ana@example.org")
        for _ in range(2):
            answer = first.post(
                "/api/v1/account/signin", json={"email": "ana@example.org", "password": "x" * 12}
            )
            assert answer.status_code == 401
        answer = second.post(
            "/api/v1/account/signin", json={"email": "ana@example.org", "password": "y" * 12}
        )
        assert answer.status_code == 401
        refused = second.post(
            "/api/v1/account/signin", json={"email": "ana@example.org", "password": PASSWORD}
        )
        assert refused.status_code == 429
        assert refused.json()["error"].startswith("Too many failed sign-ins")
        # A spoofed X-Forwarded-For from a client that is not a trusted proxy changes nothing.
        spoofed = second.post(
            "/api/v1/account/signin",
            json={"email": "ana@example.org", "password": PASSWORD},
            headers={"X-Forwarded-For": "203.0.113.9"},
        )
        assert spoofed.status_code == 429


def test_one_client_guessing_many_accounts_is_throttled(
    hosted: FastAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(accounts_module, "FAILURE_LIMIT", 3)
    with browser(hosted) as client:
        sign_up(client, "ana@example.org")
        client.post("/api/v1/account/signout")
        for name in ("bo", "cy", "di"):
            answer = client.post(
                "/api/v1/account/signin",
                json={"email": f"{name}@example.org", "password": "z" * 12},
            )
            assert answer.status_code == 401
        answer = client.post(
            "/api/v1/account/signin", json={"email": "ana@example.org", "password": PASSWORD}
        )
        assert answer.status_code == 429


def test_deleting_the_account_deletes_everything_in_it(
    hosted: FastAPI, settings: Settings, start: Callable[..., dict[str, Any]]
) -> None:
    with browser(hosted) as ana, browser(hosted) as ben:
        sign_up(ana, "ana@example.org")
        sign_up(ben, "ben@example.org")
        session = start(ana)["id"]
        ana.post(
            f"/api/v1/sessions/{session}/events",
            json={"kind": "feedback", "active": 30.0, "seq": 1, "feedback": "softer"},
        )
        start(ben)
        user_id = ana.get("/api/v1/export").json()["sessions"][0]["id"]
        assert user_id == session
        wrong = ana.post("/api/v1/account/delete", json={"password": "not it at all"})
        assert wrong.status_code == 401
        answer = ana.post("/api/v1/account/delete", json={"password": PASSWORD})
        assert answer.status_code == 200 and answer.json() == {"deleted": 1}
        assert ana.get("/api/v1/sessions").status_code == 401
        again = ana.post(
            "/api/v1/account/signin", json={"email": "ana@example.org", "password": PASSWORD}
        )
        assert again.status_code == 401
        assert len(ben.get("/api/v1/sessions").json()["sessions"]) == 1
    assert rows(settings, UserRow) == 1
    assert rows(settings, SessionRow) == 1
    assert rows(settings, FeedbackRow) == 0
    assert rows(settings, LoginRow) == 1  # Ben's


def test_after_sign_in_only_a_path_of_this_site(hosted: FastAPI) -> None:
    with browser(hosted) as client:
        for given, kept in [("/history", "/history"), ("//evil.example/x", "/"),
                            ("https://evil.example", "/"), ("/\\evil.example", "/"),
                            ("/\t/evil.example", "/"), ("/%09/x", "/%09/x")]:  # fmt: skip
            page = client.get("/signin", params={"next": given}).text
            assert f'data-next="{kept}"' in page, given


def test_each_persons_events_are_limited_and_no_one_elses(
    hosted: FastAPI, app: FastAPI, start: Callable[..., dict[str, Any]]
) -> None:
    # 120 a minute in service; 3 here, so the test sends few events.
    hosted.state.backrub.event_limit = SlidingWindow(3)
    app.state.backrub.event_limit = SlidingWindow(3)
    with browser(hosted) as ana, browser(hosted) as ben:
        sign_up(ana, "ana@example.org")
        sign_up(ben, "ben@example.org")
        sessions = {client: start(client)["id"] for client in (ana, ben)}

        def progress(client: TestClient, seq: int) -> Any:
            return client.post(
                f"/api/v1/sessions/{sessions[client]}/events",
                json={"kind": "progress", "active": float(seq), "seq": seq},
            )

        assert [progress(ana, seq).status_code for seq in (1, 2, 3)] == [200, 200, 200]
        refused = progress(ana, 4)
        assert refused.status_code == 429
        assert refused.json()["error"].startswith("Too many changes at once: at most 120 a minute")
        assert 1 <= int(refused.headers["retry-after"]) <= 60
        assert ana.get(f"/api/v1/sessions/{sessions[ana]}").json()["state"]["seq"] == 3
        # Ben's page is not held up by Ana's.
        assert progress(ben, 1).status_code == 200
    # Serving the local profile: no one else to protect, no limit.
    with TestClient(app, base_url="http://127.0.0.1:8000") as local:
        local.get("/")
        local.headers["X-CSRF-Token"] = local.cookies["backrub_csrf"]
        session = start(local)["id"]
        for seq in range(1, 6):
            answer = local.post(
                f"/api/v1/sessions/{session}/events",
                json={"kind": "progress", "active": float(seq), "seq": seq},
            )
            assert answer.status_code == 200


def test_export_is_complete_and_deleting_the_account_leaves_no_row_of_it(
    hosted: FastAPI, settings: Settings, start: Callable[..., dict[str, Any]]
) -> None:
    """A person with rows in every table: the export counts them all; after deleting the
    account, no row anywhere refers to them and none of their browsers works."""
    with browser(hosted) as ana, browser(hosted) as laptop, browser(hosted) as ben:
        sign_up(ana, "ana@example.org")
        sign_up(ben, "ben@example.org")
        laptop.post(
            "/api/v1/account/signin", json={"email": "ana@example.org", "password": "x" * 12}
        )
        laptop.post(
            "/api/v1/account/signin", json={"email": "ana@example.org", "password": PASSWORD}
        )
        first, second = start(ana)["id"], start(ana)["id"]
        start(ben)
        ana.post(
            f"/api/v1/sessions/{first}/events",
            json={"kind": "feedback", "active": 20.0, "seq": 1, "feedback": "firmer"},
        )
        code = ana.post(f"/api/v1/sessions/{first}/remote").json()["code"]
        assert (
            ana.post(f"/api/v1/remote/{code}/feedback", json={"kind": "softer"}).status_code == 202
        )

        exported = ana.get("/api/v1/export").json()
        assert exported["account"]["email"] == "ana@example.org"
        assert len(exported["account"]["logins"]) == 2  # this browser and the laptop
        assert "token_hash" not in json.dumps(exported)
        by_id = {s["id"]: s for s in exported["sessions"]}
        assert set(by_id) == {first, second}
        assert [f["kind"] for f in by_id[first]["feedback"]] == ["firmer"]
        assert [r["code"] for r in by_id[first]["remotes"]] == [code]
        assert [m["kind"] for m in by_id[first]["remote_messages"]] == ["softer"]
        user_id = exported["owner"]
        # The export's counts are the database's.
        assert rows(settings, SessionRow, SessionRow.owner == user_id) == 2
        assert rows(settings, LoginRow, LoginRow.user_id == user_id) == 2
        mine = (first, second)
        assert rows(settings, FeedbackRow, FeedbackRow.session_id.in_(mine)) == 1
        assert rows(settings, RemoteRow, RemoteRow.session_id.in_(mine)) == 1
        assert rows(settings, RemoteMessageRow, RemoteMessageRow.session_id.in_(mine)) == 1
        # The laptop's wrong password: one row for the account, one for the client.
        assert rows(settings, FailedLoginRow, FailedLoginRow.key.not_like("signup:%")) == 2

        assert ana.post("/api/v1/account/delete", json={"password": PASSWORD}).json() == {
            "deleted": 2
        }
        assert laptop.get("/api/v1/sessions").status_code == 401
        assert ana.get("/api/v1/account").status_code == 401
        assert ben.get("/api/v1/account").status_code == 200
    assert rows(settings, UserRow, UserRow.id == user_id) == 0
    assert rows(settings, UserRow) == 1
    assert rows(settings, SessionRow, SessionRow.owner == user_id) == 0
    assert rows(settings, LoginRow, LoginRow.user_id == user_id) == 0
    for table in (FeedbackRow, RemoteRow, RemoteMessageRow):
        assert rows(settings, table, table.session_id.in_(mine)) == 0
    # The account's failed sign-in went with it; the client's count stays an hour (it is
    # about a device, not a person).
    assert rows(settings, FailedLoginRow, FailedLoginRow.key.not_like("signup:%")) == 1


def test_the_csrf_cookie_is_bound_to_this_host_when_hosted(hosted: FastAPI) -> None:
    with TestClient(hosted, base_url=BASE) as client:
        cookie = client.get("/signin").headers["set-cookie"]
        assert cookie.startswith(f"{CSRF}=")
        for attribute in ("Path=/", "SameSite=strict", "Secure"):
            assert attribute in cookie
        assert "Domain" not in cookie
        # The local profile's name is not accepted in its place.
        client.cookies.set("backrub_csrf", client.cookies[CSRF])
        del client.cookies[CSRF]
        refused = client.post(
            "/api/v1/account/signout", headers={"X-CSRF-Token": client.cookies["backrub_csrf"]}
        )
        assert refused.status_code == 403


def test_new_accounts_from_one_client_are_limited(
    hosted: FastAPI, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert accounts_module.SIGN_UPS_PER_HOUR == 20
    monkeypatch.setattr(accounts_module, "SIGN_UPS_PER_HOUR", 2)
    with browser(hosted) as client:
        sign_up(client, "one@example.org")
        sign_up(client, "two@example.org")
        third = client.post(
            "/api/v1/account/signup",
            json={"email": "three@example.org", "password": PASSWORD, "consent": True},
        )
        assert third.status_code == 429
        assert third.json() == {
            "error": "Too many new accounts from this device; wait an hour, then try again."
        }
    assert rows(settings, UserRow) == 2
