"""The receiver's remote in process, on SQLite and on PostgreSQL (docs/web.md, "Receiver's
remote"): the giver opens a code for an active partner session, the remote sends feedback with
the code alone, and the player's long poll takes it from the database."""

from __future__ import annotations

import io
import re
import threading
import time
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import pytest
import segno
from sqlalchemy import func, select

from backrub.store import RemoteStore, SessionStore
from backrub.store.remote import (
    CODE_ALPHABET,
    GUESSES_PER_HOUR,
    MESSAGES_PER_WINDOW,
    NoSuchRemote,
    RemoteClosed,
    TooManyGuesses,
    TooManyMessages,
    client_key,
    normalise_code,
)
from backrub.store.tables import FailedLoginRow
from backrub.web import create_app
from backrub.web import remote as remote_routes

if TYPE_CHECKING:
    from collections.abc import Callable
    from contextlib import AbstractContextManager

    from fastapi import FastAPI
    from fastapi.testclient import TestClient
    from sqlalchemy import Engine

    from backrub.config import Settings

    Start = Callable[..., dict[str, Any]]
    Connect = Callable[[FastAPI], AbstractContextManager[TestClient]]

BASE_URL = "http://127.0.0.1:8000"
CODE = re.compile(f"[{CODE_ALPHABET}]{{6}}")


def engine_of(client: TestClient) -> Engine:
    app: Any = client.app
    engine: Engine | None = app.state.backrub.engine
    assert engine is not None
    return engine


def open_remote(client: TestClient, session_id: str) -> dict[str, Any]:
    response = client.post(f"/api/v1/sessions/{session_id}/remote")
    assert response.status_code == 200, response.text
    remote: dict[str, Any] = response.json()
    return remote


def send(client: TestClient, code: str, kind: str) -> int:
    response = client.post(f"/api/v1/remote/{code}/feedback", json={"kind": kind})
    assert response.status_code == 202, response.text
    message_id: int = response.json()["id"]
    return message_id


def inbox(client: TestClient, session_id: str, after: int = 0, wait: int = 0) -> dict[str, Any]:
    response = client.get(
        f"/api/v1/sessions/{session_id}/remote/messages", params={"after": after, "wait": wait}
    )
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    return answer


def refused(response: Any, status: int) -> str:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    answer = response.json()
    assert set(answer) == {"error"}
    sentence: str = answer["error"]
    assert sentence.endswith(".")
    return sentence


def finish(client: TestClient, session_id: str) -> None:
    body = {"active": 60, "tension_after": 3, "stopped": True}
    response = client.post(f"/api/v1/sessions/{session_id}/finish", json=body)
    assert response.status_code == 200, response.text


def someone_elses_session(client: TestClient) -> str:
    """An active partner session of another owner, in the same database."""
    engine = engine_of(client)
    template = client.post("/api/v1/sessions", json={"mode": "partner", "tension_before": 5})
    plan, state = SessionStore(engine).plan_and_state(template.json()["id"])
    return SessionStore(engine, owner="someone-else").create(
        started_at=datetime.now(UTC),
        mode="partner",
        minutes_planned=20,
        focus=(),
        verdict="clear",
        verdict_conditions=(),
        tension_before=5,
        plan=plan,
        state=state,
    )


# ---- the giver opens a code -----------------------------------------------------------------


def test_the_owner_opens_a_code_and_gets_the_same_one_again(api: TestClient, start: Start) -> None:
    session_id = start(api)["id"]
    remote = open_remote(api, session_id)
    assert set(remote) == {"code", "url", "qr", "expires_at", "last"}
    assert CODE.fullmatch(remote["code"])
    assert remote["url"] == f"{BASE_URL}/r/{remote['code']}"
    assert remote["qr"] == f"/r/{remote['code']}/qr.svg"
    assert remote["last"] == 0
    expires = datetime.fromisoformat(remote["expires_at"])
    assert timedelta(hours=11, minutes=59) < expires - datetime.now(UTC) <= timedelta(hours=12)
    # Opening it again (a reload, a second look) shows the same code.
    again = open_remote(api, session_id)
    assert again["code"] == remote["code"]
    # …and says which message the player has to wait after.
    message_id = send(api, remote["code"], "good")
    assert open_remote(api, session_id)["last"] == message_id
    # Another session has a code of its own.
    assert open_remote(api, start(api)["id"])["code"] != remote["code"]


def test_another_owners_session_is_not_found(api: TestClient) -> None:
    foreign = someone_elses_session(api)
    sentence = refused(api.post(f"/api/v1/sessions/{foreign}/remote"), 404)
    assert sentence.startswith("No session")
    refused(api.get(f"/api/v1/sessions/{foreign}/remote/messages?wait=0"), 404)
    refused(api.post("/api/v1/sessions/0123456789abcdef/remote"), 404)
    with pytest.raises(Exception, match="No session"):
        RemoteStore(engine_of(api)).open(owner="local", session_id=foreign, now=datetime.now(UTC))


def test_only_an_active_partner_session_gets_a_remote(api: TestClient, start: Start) -> None:
    own_back = start(api, mode="self")["id"]
    assert "partner" in refused(api.post(f"/api/v1/sessions/{own_back}/remote"), 409)
    ended = start(api)["id"]
    finish(api, ended)
    assert "ended" in refused(api.post(f"/api/v1/sessions/{ended}/remote"), 409)


# ---- the remote sends, the player reads -----------------------------------------------------


def test_messages_round_trip_after_an_id(api: TestClient, start: Start) -> None:
    session_id = start(api)["id"]
    code = open_remote(api, session_id)["code"]
    assert api.get(f"/api/v1/remote/{code}").json() == {"status": "active", "mode": "partner"}
    # The code is read however it is typed.
    lower = f"{code[:3].lower()}-{code[3:].lower()}"
    assert api.get(f"/api/v1/remote/{lower}").json()["status"] == "active"

    first = send(api, code, "softer")
    second = send(api, lower, "tender")
    assert second > first

    answer = inbox(api, session_id)
    assert [m["kind"] for m in answer["messages"]] == ["softer", "tender"]
    assert [m["id"] for m in answer["messages"]] == [first, second]
    assert answer["last"] == second and answer["active"] is True
    sent_at = datetime.fromisoformat(answer["messages"][0]["sent_at"])
    assert abs(sent_at - datetime.now(UTC)) < timedelta(minutes=1)

    assert [m["kind"] for m in inbox(api, session_id, after=first)["messages"]] == ["tender"]
    assert inbox(api, session_id, after=second) == {"messages": [], "last": second, "active": True}
    # Another session's messages are its own.
    other = start(api)["id"]
    open_remote(api, other)
    assert inbox(api, other)["messages"] == []


def test_the_long_poll_answers_as_soon_as_a_message_arrives(api: TestClient, start: Start) -> None:
    session_id = start(api)["id"]
    code = open_remote(api, session_id)["code"]
    posted: list[float] = []

    def receiver() -> None:
        time.sleep(0.6)
        posted.append(time.monotonic())
        send(api, code, "softer")

    thread = threading.Thread(target=receiver)
    began = time.monotonic()
    thread.start()
    try:
        answer = inbox(api, session_id, wait=10)
    finally:
        thread.join()
    answered = time.monotonic()
    assert [m["kind"] for m in answer["messages"]] == ["softer"]
    # Soon after the message (a quarter second's poll, and a busy machine's margin), well before
    # the 10 s the poll would otherwise wait.
    assert answered - posted[0] < 5, answered - posted[0]
    assert answered - began < 8


def test_the_long_poll_waits_then_answers_empty(api: TestClient, start: Start) -> None:
    session_id = start(api)["id"]
    open_remote(api, session_id)
    began = time.monotonic()
    assert inbox(api, session_id, wait=1) == {"messages": [], "last": 0, "active": True}
    assert 0.9 < time.monotonic() - began < 8


def test_an_ended_session_ends_the_remote(api: TestClient, start: Start) -> None:
    session_id = start(api)["id"]
    code = open_remote(api, session_id)["code"]
    send(api, code, "good")
    finish(api, session_id)
    # The player's poll answers at once, saying so; the remote learns it too.
    began = time.monotonic()
    answer = inbox(api, session_id, after=0, wait=20)
    assert time.monotonic() - began < 10  # at once, not after the 20 s wait
    assert answer["active"] is False and [m["kind"] for m in answer["messages"]] == ["good"]
    assert api.get(f"/api/v1/remote/{code}").json() == {"status": "ended", "mode": "partner"}
    assert "ended" in refused(
        api.post(f"/api/v1/remote/{code}/feedback", json={"kind": "good"}), 409
    )


def test_deleting_the_session_deletes_its_remote(api: TestClient, start: Start) -> None:
    session_id = start(api)["id"]
    code = open_remote(api, session_id)["code"]
    send(api, code, "firmer")
    assert api.delete(f"/api/v1/sessions/{session_id}").status_code == 204
    refused(api.get(f"/api/v1/remote/{code}"), 404)


# ---- guessing and flooding ------------------------------------------------------------------


def test_wrong_codes_are_throttled_per_client(api: TestClient, start: Start) -> None:
    session_id = start(api)["id"]
    code = open_remote(api, session_id)["code"]
    wrong = "Z" * 6 if code != "Z" * 6 else "Y" * 6
    for n in range(GUESSES_PER_HOUR):
        path = (
            f"/api/v1/remote/{wrong}",
            "/api/v1/remote/not-a-code/feedback",
            f"/r/{wrong}/qr.svg",
        )[n % 3]
        if path.endswith("/feedback"):
            response = api.post(path, json={"kind": "good"})
        else:
            response = api.get(path)
        assert response.status_code == 404, (n, response.text)
    # Over the limit, even the right code is refused, so guessing on tells nothing.
    sentence = refused(api.get(f"/api/v1/remote/{code}"), 429)
    assert "30" in sentence
    assert api.get(f"/api/v1/remote/{code}").headers["retry-after"] == "3600"
    refused(api.post(f"/api/v1/remote/{code}/feedback", json={"kind": "good"}), 429)
    # The giver is not affected; nor is another client.
    assert inbox(api, session_id)["messages"] == []
    remotes = RemoteStore(engine_of(api))
    now = datetime.now(UTC)
    assert remotes.resolve(code, client="192.0.2.7", now=now).active
    with pytest.raises(TooManyGuesses):
        remotes.resolve(code, client="testclient", now=now)
    # An hour on, the client may try again.
    assert remotes.resolve(code, client="testclient", now=now + timedelta(minutes=61)).active
    # What is kept is a hash of the address, never the address.
    with engine_of(api).connect() as conn:
        keys = set(conn.execute(select(FailedLoginRow.key)).scalars())
    assert keys == {client_key("testclient")}
    assert all(key.startswith("remote:") and "testclient" not in key for key in keys)


def test_a_remote_may_send_twenty_messages_in_ten_seconds(api: TestClient, start: Start) -> None:
    session_id = start(api)["id"]
    code = open_remote(api, session_id)["code"]
    for _ in range(MESSAGES_PER_WINDOW):
        send(api, code, "good")
    response = api.post(f"/api/v1/remote/{code}/feedback", json={"kind": "softer"})
    assert "20" in refused(response, 429)
    assert response.headers["retry-after"] == "10"
    assert len(inbox(api, session_id)["messages"]) == MESSAGES_PER_WINDOW
    # Ten seconds on, it may send again.
    later = datetime.now(UTC) + timedelta(seconds=11)
    remotes = RemoteStore(engine_of(api))
    assert remotes.post(code, "softer", client="testclient", now=later) > 0
    with pytest.raises(TooManyMessages):
        for _ in range(MESSAGES_PER_WINDOW):
            remotes.post(code, "softer", client="testclient", now=later)


def test_a_code_lasts_twelve_hours(api: TestClient, start: Start) -> None:
    session_id = start(api)["id"]
    code = open_remote(api, session_id)["code"]
    remotes = RemoteStore(engine_of(api))
    soon = datetime.now(UTC) + timedelta(hours=11)
    assert remotes.resolve(code, client="a", now=soon).active
    late = datetime.now(UTC) + timedelta(hours=12, minutes=1)
    with pytest.raises(NoSuchRemote):
        remotes.resolve(code, client="a", now=late)
    with pytest.raises(NoSuchRemote):
        remotes.post(code, "good", client="a", now=late)
    # Opened again after that, the session gets a new code.
    renewed = remotes.open(owner="local", session_id=session_id, now=late)
    assert renewed.code != code
    assert renewed.expires_at == late + timedelta(hours=12)
    with pytest.raises(RemoteClosed):
        finish(api, session_id)
        remotes.post(renewed.code, "good", client="a", now=late)


def test_codes_are_read_as_people_type_them() -> None:
    assert normalise_code(" k7p-q2m ") == "K7PQ2M"
    assert normalise_code("K7P Q2M") == "K7PQ2M"
    for wrong in ("", "K7PQ2", "K7PQ2MX", "K7PQ2O", "K7PQ21", "ÄÖÜ123", "K7P/Q2"):
        assert normalise_code(wrong) is None, wrong


# ---- the QR code, bad input, CSRF -----------------------------------------------------------


def test_the_qr_code_is_an_svg_of_the_remote_address(api: TestClient, start: Start) -> None:
    remote = open_remote(api, start(api)["id"])
    response = api.get(remote["qr"])
    assert response.status_code == 200
    assert response.headers["content-type"] == "image/svg+xml"
    assert response.headers["cache-control"] == "no-store"
    svg = response.text
    assert svg.startswith("<svg") and "<path" in svg
    assert not re.search(r"<script|\sstyle=|<style|\son[a-z]+=", svg)
    # The same picture segno draws for the address the answer gave.
    out = io.BytesIO()
    segno.make(remote["url"], error="m").save(out, kind="svg", border=2)
    path = re.search(r' d="([^"]+)"', out.getvalue().decode())
    assert path is not None and path.group(1) in svg


@pytest.mark.parametrize(
    ("body", "says"),
    [
        ({"kind": "softest"}, "kind must be one of: good, softer, firmer, tender"),
        ({"kind": 1}, "kind must be one of"),
        ({}, "kind is required."),
        ({"kind": "good", "extra": 1}, "extra is not a field here; the fields are: kind."),
        ([], "must be a JSON object"),
    ],
)
def test_bad_feedback_bodies(api: TestClient, start: Start, body: Any, says: str) -> None:
    code = open_remote(api, start(api)["id"])["code"]
    assert says in refused(api.post(f"/api/v1/remote/{code}/feedback", json=body), 422)


@pytest.mark.parametrize(
    ("query", "says"),
    [
        ("wait=26", "wait must be 0 to 25 (got"),
        ("wait=-1", "wait must be 0 to 25"),
        ("after=-1", "after must be 0 to"),
        ("after=x", "after must be a whole number"),
        ("since=3", "since is not a field here"),
    ],
)
def test_bad_long_poll_queries(lite: TestClient, query: str, says: str) -> None:
    session_id = lite.post("/api/v1/sessions", json={"mode": "partner", "tension_before": 5})
    path = f"/api/v1/sessions/{session_id.json()['id']}/remote/messages?{query}"
    assert says in refused(lite.get(path), 422)


def test_posts_need_the_csrf_token(lite: TestClient) -> None:
    session = lite.post("/api/v1/sessions", json={"mode": "partner", "tension_before": 5}).json()
    code = open_remote(lite, session["id"])["code"]
    token = lite.headers.pop("X-CSRF-Token")
    assert "CSRF" in refused(lite.post(f"/api/v1/sessions/{session['id']}/remote"), 403)
    assert "CSRF" in refused(
        lite.post(f"/api/v1/remote/{code}/feedback", json={"kind": "good"}), 403
    )
    lite.headers["X-CSRF-Token"] = token
    assert inbox(lite, session["id"])["messages"] == []


def test_the_remote_needs_no_profile(lite: TestClient) -> None:
    """What the remote reads says nothing about the session but whether it runs, and its mode."""
    session = lite.post("/api/v1/sessions", json={"mode": "partner", "tension_before": 5}).json()
    code = open_remote(lite, session["id"])["code"]
    answer = lite.get(f"/api/v1/remote/{code}")
    assert answer.json() == {"status": "active", "mode": "partner"}
    assert answer.headers["cache-control"] == "no-store"


# ---- the pages (the real templates) ---------------------------------------------------------


def test_the_remote_pages(sqlite_settings: Settings, connect: Connect) -> None:
    with connect(create_app(sqlite_settings, speed=30)) as client:
        session = client.post("/api/v1/sessions", json={"mode": "partner", "tension_before": 5})
        session_id = session.json()["id"]
        code = open_remote(client, session_id)["code"]
        client.cookies.clear()

        join = client.get("/r")
        assert join.status_code == 200
        assert 'action="/r"' in join.text and 'name="code"' in join.text
        assert client.cookies.get("backrub_csrf")
        typed = client.get("/r", params={"code": f" {code.lower()} "}, follow_redirects=False)
        assert typed.status_code == 303 and typed.headers["location"] == f"/r/{code}"
        odd = client.get("/r", params={"code": "a/b?c"}, follow_redirects=False)
        assert odd.headers["location"] == "/r/A%2FB%3FC"

        page = client.get(f"/r/{code}")
        assert page.status_code == 200
        assert f'data-code="{code}"' in page.text and 'data-state="active"' in page.text
        for word in ("Good", "Softer", "Firmer", "Tender"):
            assert f">{word}<small>" in page.text
        assert 'role="status"' in page.text
        assert "/static/js/receiver.js" in page.text
        # No way into the giver's pages from the remote.
        assert 'href="/history"' not in page.text and 'href="/safety"' not in page.text

        unknown = client.get("/r/ZZZZZZ" if code != "ZZZZZZ" else "/r/YYYYYY")
        assert unknown.status_code == 404
        assert "No session with this code" in unknown.text

        client.headers["X-CSRF-Token"] = client.cookies["backrub_csrf"]
        finish(client, session_id)
        ended = client.get(f"/r/{code}")
        assert ended.status_code == 200
        assert 'data-state="ended"' in ended.text and "The session has ended" in ended.text

        linked: set[str] = set()
        for response in (join, page, unknown, ended):
            html = response.text
            assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html)
            assert not re.search(r"\sstyle=|\son[a-z]+=|<style", html)
            linked.update(re.findall(r'(?:href|src)="(/static/[^"#]+)"', html))
        for link in sorted(linked):
            assert client.get(link).status_code == 200, link


def test_the_player_offers_the_remote(sqlite_settings: Settings, connect: Connect) -> None:
    with connect(create_app(sqlite_settings)) as client:
        session = client.post("/api/v1/sessions", json={"mode": "partner", "tension_before": 5})
        page = client.get(f"/play/{session.json()['id']}").text
        assert page.count("data-remote-open") == 2
        assert 'id="remote-dialog"' in page and 'id="remote-said"' in page
        assert "/static/css/remote.css" in page
        assert client.get("/static/js/remote.js").status_code == 200
        sw = client.get("/sw.js").text
        assert all(f'"/static/{f}"' in sw for f in ("js/remote.js", "js/receiver.js"))


def test_guesses_counted_in_failed_logins(api: TestClient) -> None:
    for _ in range(3):
        refused(api.get("/api/v1/remote/QQQQQQ"), 404)
    with engine_of(api).connect() as conn:
        count = conn.execute(select(func.count()).select_from(FailedLoginRow)).scalar_one()
    assert count == 3


def test_a_profile_cannot_hold_open_many_waits(
    api: TestClient, start: Start, monkeypatch: pytest.MonkeyPatch
) -> None:
    session_id = start(api)["id"]
    open_remote(api, session_id)
    # As if four players of this profile were waiting already (the local profile is "local").
    monkeypatch.setitem(remote_routes._open_polls, "local", remote_routes.MAX_POLLS)
    answer = api.get(f"/api/v1/sessions/{session_id}/remote/messages", params={"wait": 0})
    assert answer.status_code == 429
    assert answer.json() == {"error": remote_routes.TOO_MANY_POLLS}
    monkeypatch.setitem(remote_routes._open_polls, "local", 1)
    assert (
        api.get(f"/api/v1/sessions/{session_id}/remote/messages", params={"wait": 0}).status_code
        == 200
    )


def test_an_ipv6_client_is_counted_by_its_network() -> None:
    one, other = "2001:db8:1:2::1", "2001:db8:1:2:ffff::9"
    assert client_key(one) == client_key(other)
    assert client_key(one) != client_key("2001:db8:1:3::1")
    assert client_key("192.0.2.1") != client_key("192.0.2.2")
