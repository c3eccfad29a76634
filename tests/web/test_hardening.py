"""What an outside probe found, each a sentence now, on SQLite and PostgreSQL: text no database
keeps (a lone surrogate, a NUL) in a body, an address or an email; nothing a person sent in a
log line, even when backrub itself fails; a limit on new sessions; `Allow` on a 405; HSTS over
HTTPS; pages that are never cached; a 404 that does not echo a long id whole."""

from __future__ import annotations

import json
import logging
import os
import re
import select
import signal
import ssl
import subprocess
import sys
import warnings
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import httpx
import pytest
from argon2 import PasswordHasher
from starlette.exceptions import StarletteDeprecationWarning

from backrub.store import validation
from backrub.web import create_app
from backrub.web.ratelimit import SESSIONS_PER_HOUR

with warnings.catch_warnings():
    warnings.filterwarnings("ignore", "Using `httpx`", StarletteDeprecationWarning)
    from fastapi.testclient import TestClient

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from pathlib import Path

    from fastapi import FastAPI

    from backrub.config import Settings

# Whatever a person sends: it must never reach a log line.
SECRET = "hunter2-private-words"  # noqa: S105 - what a test sends
PASSWORD = "correct horse battery staple"  # noqa: S105 - a test account's
SERVER_FAULT = {"error": "Something went wrong inside backrub; nothing more was saved. Try again."}
SURROGATE = "\ud800"
BAD_UNICODE = "must be valid Unicode text, without lone surrogates (\\ud800)."
NUL_TEXT = "must be plain text, without NUL characters (\\u0000)."
CONTROL_IN_ADDRESS = (
    "The address holds a control character (such as NUL, %00), which no address here has."
)
EMAIL_SENTENCE = "email must be an email address such as name@example.org (at most 254 characters)."
FINISH = {"active": 60.0, "tension_after": 3, "stopped": True}


def raw(value: object) -> str:
    """`value` as JSON with every non-ASCII character escaped: a lone surrogate is sent as the
    six characters `\\ud800`, which JSON allows and no database keeps."""
    return json.dumps(value, ensure_ascii=True)


def post_raw(client: TestClient, path: str, value: object) -> httpx.Response:
    return client.post(path, content=raw(value), headers={"Content-Type": "application/json"})


def assert_sentence(response: httpx.Response, status: int, sentence: str) -> None:
    assert response.status_code == status, response.text
    assert response.json() == {"error": sentence}


def assert_nothing_logged(caplog: pytest.LogCaptureFixture, *values: str) -> None:
    for record in caplog.records:
        text = record.getMessage() + (record.exc_text or "")
        if record.exc_info:
            text += logging.Formatter().formatException(record.exc_info)
        for value in values:
            assert value not in text, record


@pytest.fixture
def logs(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.DEBUG)
    return caplog


# ---- accounts on: a real app with its own templates -------------------------------------------

HTTPS_BASE = "https://backrub.example"


@contextmanager
def browser(app: FastAPI, email: str | None = None) -> Iterator[TestClient]:
    """A browser of its own with accounts on, signed up as `email` when one is given."""
    with TestClient(app, base_url=HTTPS_BASE, follow_redirects=False) as client:
        assert client.get("/signin").status_code == 200
        client.headers["X-CSRF-Token"] = client.cookies["__Host-backrub_csrf"]
        if email is not None:
            answer = client.post(
                "/api/v1/account/signup",
                json={"email": email, "password": PASSWORD, "consent": True},
            )
            assert answer.status_code == 201, answer.text
        yield client


@pytest.fixture
def hosted(settings: Settings) -> FastAPI:
    return create_app(settings, accounts=True)


# ---- 1. text no database keeps is a 422 sentence, and is never logged ---------------------------

# (path, body with the bad text where `X` is, the field's name in the sentence)
LOCAL_ROUTES = [
    ("/api/v1/safety", {"findings": [{"condition": "X"}]}, "findings[0].condition"),
    ("/api/v1/plans", {"focus": [{"region": "X", "tension": 3}]}, "focus[0].region"),
    ("/api/v1/sessions", {"mode": "X", "tension_before": 5}, "mode"),
    ("/api/v1/sessions/{id}/events", {"kind": "X", "active": 1.0, "seq": 1}, "kind"),
    ("/api/v1/sessions/{id}/finish", {**FINISH, "note": "X"}, "note"),
    ("/api/v1/sessions/{id}/voice", {"text": "X"}, "text"),
    ("/api/v1/audio", {"format": "X"}, "format"),
    ("/api/v1/remote/ABC234/feedback", {"kind": "X"}, "kind"),
]
ACCOUNT_ROUTES = [
    ("/api/v1/account/signup", {"email": "X", "password": PASSWORD, "consent": True}, "email"),
    ("/api/v1/account/signup", {"email": "a@b.cd", "password": "X", "consent": True}, "password"),
    ("/api/v1/account/signin", {"email": "X", "password": PASSWORD}, "email"),
    ("/api/v1/account/signin", {"email": "ann@example.org", "password": "X"}, "password"),
    ("/api/v1/account/password", {"current": "X", "new": PASSWORD}, "current"),
    ("/api/v1/account/password", {"current": PASSWORD, "new": "X"}, "new"),
    ("/api/v1/account/delete", {"password": "X"}, "password"),
]


def with_text(body: dict[str, Any], text: str) -> Any:
    return json.loads(json.dumps(body).replace('"X"', json.dumps(text)))


@pytest.mark.parametrize(("bad", "ending"), [(SURROGATE, BAD_UNICODE), ("\x00", NUL_TEXT)])
def test_bad_text_in_any_body_is_a_sentence_and_never_logged(
    api: TestClient,
    start: Callable[..., dict[str, Any]],
    logs: pytest.LogCaptureFixture,
    bad: str,
    ending: str,
) -> None:
    session = start(api, minutes=15)["id"]
    for path, body, field in LOCAL_ROUTES:
        answer = post_raw(api, path.format(id=session), with_text(body, bad + SECRET))
        assert_sentence(answer, 422, f"{field} {ending}")
    # A field's name, too, and text anywhere in a list.
    answer = post_raw(api, "/api/v1/plans", {bad + SECRET: 1})
    assert_sentence(answer, 422, "The request body has a field name that is not valid text.")
    answer = post_raw(api, f"/api/v1/sessions/{session}/events", {
        "kind": "progress", "active": 1.0, "seq": 1, "fired": ["step:0", bad],
    })  # fmt: skip
    assert_sentence(answer, 422, f"fired[1] {ending}")
    # Nothing was saved: the session ends as it would have.
    assert api.post(f"/api/v1/sessions/{session}/finish", json=FINISH).status_code == 200
    assert_nothing_logged(logs, SECRET)


def test_bad_text_as_raw_bytes_is_a_sentence_too(lite: TestClient) -> None:
    json_body = {"Content-Type": "application/json"}
    # A surrogate written in UTF-8's bytes (as CESU-8 has it): read as one, refused as one.
    answer = lite.post(
        "/api/v1/safety",
        content=b'{"findings": [{"condition": "\xed\xa0\x80"}]}',
        headers=json_body,
    )
    assert_sentence(answer, 422, f"findings[0].condition {BAD_UNICODE}")
    # A NUL byte inside a JSON string is not JSON at all.
    answer = lite.post("/api/v1/safety", content=b'{"findings": ["a\x00b"]}', headers=json_body)
    assert_sentence(
        answer,
        422,
        "The request body is not valid JSON (Invalid control character at character 16).",
    )


@pytest.mark.parametrize(("bad", "ending"), [(SURROGATE, BAD_UNICODE), ("\x00", NUL_TEXT)])
def test_bad_text_in_sign_up_sign_in_and_passwords_is_a_sentence(
    hosted: FastAPI, logs: pytest.LogCaptureFixture, bad: str, ending: str
) -> None:
    with browser(hosted, "ann@example.org") as client:
        for path, body, field in ACCOUNT_ROUTES:
            answer = post_raw(client, path, with_text(body, bad + SECRET))
            assert_sentence(answer, 422, f"{field} {ending}")
        # Still signed in, with the same password.
        assert client.get("/api/v1/account").json() == {"email": "ann@example.org"}
    with browser(hosted) as other:
        answer = other.post(
            "/api/v1/account/signin", json={"email": "ann@example.org", "password": PASSWORD}
        )
        assert answer.status_code == 200
    assert_nothing_logged(logs, SECRET)


def test_a_crash_on_a_note_logs_neither_the_note_nor_a_traceback_holding_it(
    api: TestClient,
    start: Callable[..., dict[str, Any]],
    logs: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A fault of backrub's own: the database driver refuses what the store hands it, and its
    error (as SQLAlchemy words it) quotes the statement's parameters — the note among them."""
    session = start(api)["id"]

    def broken(value: object) -> object:
        return {"the note": value}  # no driver binds a dict

    monkeypatch.setattr(validation, "note", broken)
    answer = api.post(
        f"/api/v1/sessions/{session}/finish", json={**FINISH, "note": f"my {SECRET} back"}
    )
    assert answer.status_code == 500
    assert answer.json() == SERVER_FAULT
    assert SECRET not in answer.text
    [record] = [r for r in logs.records if r.name == "backrub.web.security"]
    assert record.levelno == logging.ERROR
    message = record.getMessage()
    # Where it failed, and what kind of error: enough to mend it, nothing a person sent.
    assert message.startswith("A request to /api/v1/sessions/{session_id}/finish failed:\n")
    assert "in finish" in message and "(its message is not logged)" in message
    assert record.exc_info is None
    assert_nothing_logged(logs, SECRET)


def test_a_crash_on_sign_up_logs_no_password(
    hosted: FastAPI, logs: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret_password = f"my {SECRET} password"

    def broken(_self: PasswordHasher, password: str, **_: Any) -> str:
        try:
            raise ValueError(f"cannot hash {password!r}")
        except ValueError as cause:
            raise RuntimeError(f"hashing failed for {password}") from cause

    monkeypatch.setattr(PasswordHasher, "hash", broken)
    with browser(hosted) as client:
        answer = client.post(
            "/api/v1/account/signup",
            json={"email": "ann@example.org", "password": secret_password, "consent": True},
        )
    assert answer.status_code == 500
    assert answer.json() == SERVER_FAULT
    logged = "\n".join(r.getMessage() for r in logs.records if r.name == "backrub.web.security")
    # Both errors of the chain, by type only.
    assert "builtins.ValueError (its message" in logged
    assert "builtins.RuntimeError (its message" in logged
    assert_nothing_logged(logs, SECRET)


# ---- 2. NUL in an address or an email, on both backends ---------------------------------------


def test_a_control_character_in_an_address_is_a_sentence(
    api: TestClient, start: Callable[..., dict[str, Any]]
) -> None:
    session = start(api)["id"]
    for method, path in [
        ("GET", "/api/v1/sessions/a%00b"),
        ("DELETE", "/api/v1/sessions/a%00b"),
        ("POST", "/api/v1/sessions/a%00b/finish"),
        ("GET", "/api/v1/sessions/a%01b"),
        ("GET", "/play/a%00b"),
        ("GET", "/api/v1/remote/AB%00CD"),
        ("GET", "/r/AB%00CD"),
        ("GET", "/r?code=AB%00CD"),
        ("GET", f"/api/v1/sessions/{session}/remote/messages?after=%00"),
    ]:
        answer = api.request(method, path, json=FINISH if method == "POST" else None)
        assert_sentence(answer, 400, CONTROL_IN_ADDRESS)
    # The session is untouched.
    assert api.get(f"/api/v1/sessions/{session}").status_code == 200


@pytest.mark.parametrize(
    "email",
    ["ann\x00@example.org", "ann\x01@example.org", "ann@exa\x7fmple.org", "ann@example.org\x85x",
     "an\tn@example.org"],
)  # fmt: skip
def test_control_characters_in_an_email_address_are_refused(hosted: FastAPI, email: str) -> None:
    with browser(hosted) as client:
        answer = client.post(
            "/api/v1/account/signup",
            json={"email": email, "password": PASSWORD, "consent": True},
        )
        assert answer.status_code == 422
        sentence = answer.json()["error"]
        assert sentence in (EMAIL_SENTENCE, f"email {NUL_TEXT}")
        answer = client.post("/api/v1/account/signin", json={"email": email, "password": PASSWORD})
        assert answer.status_code in (401, 422)
        assert set(answer.json()) == {"error"}


# ---- 3. a limit on new sessions ------------------------------------------------------------


def test_one_person_starts_only_so_many_sessions_an_hour(
    hosted: FastAPI, body: Callable[..., dict[str, Any]]
) -> None:
    long_one = body(minutes=60)
    with browser(hosted, "ann@example.org") as ann:
        answers = [
            ann.post("/api/v1/sessions", json=long_one) for _ in range(SESSIONS_PER_HOUR + 5)
        ]
        statuses = [a.status_code for a in answers]
        assert statuses == [201] * SESSIONS_PER_HOUR + [429] * 5
        refused = answers[-1]
        assert refused.json() == {
            "error": f"Too many new sessions: at most {SESSIONS_PER_HOUR} an hour for one "
            "person; try again later (the sessions you have keep working)."
        }
        assert 1 <= int(refused.headers["retry-after"]) <= 3600
        # What was started keeps working.
        assert len(ann.get("/api/v1/sessions").json()["sessions"]) == SESSIONS_PER_HOUR
    with browser(hosted, "ben@example.org") as ben:
        assert ben.post("/api/v1/sessions", json=long_one).status_code == 201


def test_the_local_profile_has_no_limit_on_new_sessions(
    lite: TestClient, body: Callable[..., dict[str, Any]]
) -> None:
    """As for events and audio tracks: one person on their own computer, no one to protect."""
    for _ in range(SESSIONS_PER_HOUR + 1):
        assert lite.post("/api/v1/sessions", json=body()).status_code == 201


# ---- 4. headers, a bounded 404 ------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("PUT", "/api/v1/sessions", "GET, POST"),
        ("PATCH", "/api/v1/sessions/abc", "DELETE, GET"),
        ("DELETE", "/api/v1/catalogue", "GET"),
        ("POST", "/history", "GET"),
    ],
)
def test_a_405_names_the_methods_allowed(
    lite: TestClient, method: str, path: str, allowed: str
) -> None:
    answer = lite.request(method, path)
    assert answer.status_code == 405
    assert answer.headers["allow"] == allowed


def test_https_answers_carry_strict_transport_security(hosted: FastAPI, lite: TestClient) -> None:
    with browser(hosted) as client:
        for path in ("/signin", "/api/v1/catalogue", "/api/v1/nowhere", "/static/css/app.css"):
            answer = client.get(path)
            assert answer.headers["strict-transport-security"] == "max-age=31536000", path
            assert len(answer.headers.get_list("strict-transport-security")) == 1
    # Over plain HTTP the header means nothing (and must not be sent).
    assert "strict-transport-security" not in lite.get("/").headers


def test_pages_with_a_persons_data_are_never_cached(
    hosted: FastAPI, api: TestClient, start: Callable[..., dict[str, Any]]
) -> None:
    with browser(hosted, "ann@example.org") as client:
        session_id = start(client)["id"]
        for path in ("/account", f"/play/{session_id}", "/history", "/", "/plan", "/signin"):
            answer = client.get(path)
            assert answer.status_code == 200, path
            assert answer.headers["cache-control"] == "no-store", path
        # Static files are the same for everyone: cached as before.
        assert client.get("/static/css/app.css").headers.get("cache-control") != "no-store"
    local = start(api)["id"]
    for path in (f"/play/{local}", "/history"):
        assert api.get(path).headers["cache-control"] == "no-store", path


def test_a_404_does_not_echo_a_long_id_whole(api: TestClient) -> None:
    long_id = "x" * 10_000
    answer = api.get(f"/api/v1/sessions/{long_id}")
    assert_sentence(
        answer,
        404,
        f"No session '{'x' * 40}…' is stored; check the id against your history.",
    )
    page = api.get(f"/play/{long_id}")
    assert page.status_code == 404
    assert long_id not in page.text and len(page.text) < 1000


# ---- HSTS from a real `backrub serve --certfile` ------------------------------------------------


def self_signed(folder: Path) -> tuple[Path, Path]:
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
         "-keyout", str(key), "-out", str(cert)],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return cert, key


def test_backrub_serve_over_https_sends_strict_transport_security(tmp_path: Path) -> None:
    cert, key = self_signed(tmp_path)
    env = {**os.environ, "BACKRUB_DATA_DIR": str(tmp_path / "data")}
    env.pop("BACKRUB_DATABASE_URL", None)
    process = subprocess.Popen(
        [sys.executable, "-m", "backrub", "serve", "--port", "0",
         "--certfile", str(cert), "--keyfile", str(key)],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert process.stdout is not None
        ready, _, _ = select.select([process.stdout], [], [], 30)
        assert ready, "backrub serve printed nothing in 30 s"
        found = re.search(r"https://127\.0\.0\.1:[0-9]+", process.stdout.readline())
        assert found is not None
        trusted = ssl.create_default_context(cafile=str(cert))
        with httpx.Client(verify=trusted, timeout=10) as client:
            answer = client.get(f"{found.group()}/api/v1/catalogue")
        assert answer.status_code == 200
        assert answer.headers["strict-transport-security"] == "max-age=31536000"
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        for stream in (process.stdout, process.stderr):
            if stream is not None:
                stream.close()
