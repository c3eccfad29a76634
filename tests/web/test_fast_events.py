"""The player's events through the fast path (web/fast_events.py), on SQLite and PostgreSQL: it
answers and saves exactly as the FastAPI route would, every refusal is still the route's own, its
answers are compressed and secured as the others are, many events at once are all answered and
none is lost, and the app stops cleanly with events still waiting.

"The route" is the same app with the fast path taken out of its middleware (`route_only`), so
each comparison is between the two ways one request can be answered.
"""

from __future__ import annotations

import asyncio
import functools
import gzip
import json
import logging
import os
import secrets
import signal
import threading
import time
import warnings
from collections import Counter
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import pytest
from sqlalchemy import select
from starlette.exceptions import StarletteDeprecationWarning

from backrub.config import Settings
from backrub.store import open_store
from backrub.store.tables import FeedbackRow, SessionRow
from backrub.web import create_app, fast_events, sessions, writer_process
from backrub.web.app import BackrubApp
from backrub.web.fast_events import EVENT_GZIP_MINIMUM, EventFastPath
from backrub.web.ratelimit import SlidingWindow
from backrub.web.schemas import EventAnswer, EventSaved
from backrub.web.security import CONTENT_SECURITY_POLICY
from pg_databases import empty_postgres, temporary_database

with warnings.catch_warnings():
    warnings.filterwarnings("ignore", "Using `httpx`", StarletteDeprecationWarning)
    from fastapi.testclient import TestClient

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Sequence
    from contextlib import AbstractContextManager
    from pathlib import Path

    import httpx
    from fastapi import FastAPI
    from sqlalchemy import Engine
    from starlette.types import Message

    from backrub.web.deps import Runtime

    Start = Callable[..., dict[str, Any]]
    Body = Callable[..., dict[str, Any]]
    Build = Callable[..., FastAPI]
    Connect = Callable[[FastAPI], AbstractContextManager[TestClient]]

EVENTS = "/api/v1/sessions/{}/events"
SESSIONS = "/api/v1/sessions"
# With accounts on: any host, over HTTPS, the CSRF cookie bound to the host.
HOSTED = "https://backrub.example"
HOSTED_CSRF = "__Host-backrub_csrf"
PASSWORD = "correct horse battery staple"  # noqa: S105 - a test account's
# Longer than any wait these tests have: only a hang reaches it.
HANG = 120.0

# A session as a player sends it: every kind of event, a repeated and two stale seqs, time that
# would go back, and the last cue ids.
SCRIPT: list[dict[str, Any]] = [
    {"kind": "progress", "active": 12.5, "seq": 1, "fired": ["step:0"]},
    {"kind": "pause", "active": 20.0, "seq": 2},
    {"kind": "resume", "active": 20.0, "seq": 3, "fired": ["half:0"]},
    {"kind": "skip", "active": 30.0, "seq": 4},
    {"kind": "extend", "active": 45.0, "seq": 5, "fired": ["step:1"]},
    {"kind": "feedback", "feedback": "softer", "active": 50.0, "seq": 6},
    {"kind": "feedback", "feedback": "firmer", "active": 55.0, "seq": 7},
    {"kind": "feedback", "feedback": "tender", "active": 60.25, "seq": 8},
    {"kind": "feedback", "feedback": "good", "active": 65.0, "seq": 9},
    {"kind": "progress", "active": 70.0, "seq": 9, "fired": ["check:0"]},  # repeated seq
    {"kind": "feedback", "feedback": "softer", "active": 75.0, "seq": 4},  # stale
    {"kind": "skip", "active": 80.0, "seq": 3},  # stale
    {"kind": "pause", "active": 10.0, "seq": 10},  # earlier: time does not go back
    {"kind": "progress", "active": 90.0, "seq": 12, "fired": ["check:0", "half:1"]},
    {"kind": "extend", "active": 95.0, "seq": 13},
]
FEEDBACK_KINDS = ("softer", "firmer", "tender", "good")
UNKNOWN = "0123456789abcdef0123456789abcdef"


# ---- helpers --------------------------------------------------------------------------------


def route_only(app: FastAPI) -> FastAPI:
    """The same app with the fast path taken out: every event reaches the FastAPI route.
    (The middleware stack is built at the first request, so this is before it.)"""
    assert isinstance(app, BackrubApp)
    fast: object = EventFastPath
    kept = [m for m in app.outermost if m.cls is not fast]
    assert len(kept) == len(app.outermost) - 1, "the fast path is not where it was"
    app.outermost = kept
    return app


def runtime(app: FastAPI) -> Runtime:
    found: Runtime = app.state.backrub
    return found


def open_engine(app: FastAPI) -> Engine:
    engine = runtime(app).engine
    assert engine is not None, "the app's lifespan has not opened its database"
    return engine


@pytest.fixture
def writer(request: pytest.FixtureRequest) -> str:
    """Where the app's event writer runs: a thread of its process, or (`backrub serve`'s way,
    for the tests marked `BOTH_WRITERS`) a process of its own."""
    return str(getattr(request, "param", "thread"))


BOTH_WRITERS = pytest.mark.parametrize("writer", ["thread", "process"], indirect=True)


@pytest.fixture
def build(build: Build, writer: str) -> Build:
    return functools.partial(build, event_process=writer == "process")


@pytest.fixture
def app(settings: Settings, site: Path, build: Build) -> FastAPI:
    return build(settings, site)


@pytest.fixture
def routed(monkeypatch: pytest.MonkeyPatch) -> list[Engine]:
    """The engines of the apps whose FastAPI route applied an event (the fast path saves
    through `sessions.apply_events` and never calls the route's `apply_event`)."""
    calls: list[Engine] = []
    original = sessions.apply_event

    def spy(catalogue: Any, store: Any, session_id: str, body: Any) -> sessions.Outcome:
        calls.append(store.engine)
        return original(catalogue, store, session_id, body)

    monkeypatch.setattr(sessions, "apply_event", spy)
    return calls


def served_by_route(routed: list[Engine], app: FastAPI) -> int:
    engine = open_engine(app)
    return sum(1 for e in routed if e is engine)


@pytest.fixture(scope="module")
def twin_postgres() -> Iterator[str]:
    with temporary_database("backrub_webtwin") as url:
        yield url


@pytest.fixture
def twin(db_url: str, tmp_path: Path, request: pytest.FixtureRequest) -> Settings:
    """A second empty database on the same backend as `settings`'."""
    if db_url.startswith("sqlite"):
        url = f"sqlite:///{tmp_path}/twin.db"
    else:
        url = empty_postgres(request.getfixturevalue("twin_postgres"))
    return Settings(data_dir=tmp_path / "twin", cache_dir=tmp_path / "cache", database_url=url)


def post_event(client: TestClient, session_id: str, body: dict[str, Any]) -> httpx.Response:
    response: httpx.Response = client.post(EVENTS.format(session_id), json=body)
    return response


def comparable(answer: Any) -> Any:
    """An answer without what two databases necessarily give differently: the session's id
    and its start and end times (whether it has ended is kept)."""
    if not isinstance(answer, dict):
        return answer
    out = {k: v for k, v in answer.items() if k != "id"}
    record = out.get("record")
    if isinstance(record, dict):
        out["record"] = {k: v for k, v in record.items() if k not in ("id", "started_at")}
        out["record"]["ended_at"] = record["ended_at"] is not None
    return out


def same_answer(fast: httpx.Response, route: httpx.Response, what: object) -> None:
    assert fast.status_code == route.status_code, (what, fast.text, route.text)
    for header in ("content-type", "content-encoding", "cache-control", "retry-after"):
        assert fast.headers.get(header) == route.headers.get(header), (what, header)
    assert comparable(fast.json()) == comparable(route.json()), what


def stored_rows(app: FastAPI, session_id: str) -> dict[str, Any]:
    """Everything saved about a session, but its id and the clock's times."""
    with open_engine(app).connect() as conn:
        row = conn.execute(select(SessionRow).where(SessionRow.id == session_id)).one()
        heard = conn.execute(
            select(FeedbackRow.kind, FeedbackRow.at, FeedbackRow.step, FeedbackRow.region)
            .where(FeedbackRow.session_id == session_id)
            .order_by(FeedbackRow.id)
        ).all()
    kept = {
        k: v
        for k, v in row._asdict().items()
        if k not in ("id", "started_at", "ended_at", "updated_at")
    }
    return {**kept, "ended": row.ended_at is not None, "feedback": [tuple(h) for h in heard]}


def view_of(client: TestClient, session_id: str) -> dict[str, Any]:
    response = client.get(f"{SESSIONS}/{session_id}")
    assert response.status_code == 200, response.text
    view: dict[str, Any] = response.json()
    return view


def but_the_plan(view: dict[str, Any]) -> dict[str, Any]:
    """A session's view as an accepted event's full answer has it: no event changes the plan,
    the record comes only with a refused event, the page makes the cues itself, and of the
    steps only those the event changed come (apart: `changed_steps`)."""
    answer = {k: v for k, v in view.items() if k not in {"plan", "id", "record", "cues"}}
    answer["state"] = {k: v for k, v in view["state"].items() if k != "steps"}
    return answer


def checked(response: httpx.Response) -> dict[str, Any]:
    """A 200 answer, one of the two the OpenAPI schema describes."""
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    if "state" in answer:
        EventAnswer.model_validate(answer)
    else:
        EventSaved.model_validate(answer)
    return answer


# ---- (a) the same answers and the same saved session ----------------------------------------


@BOTH_WRITERS
def test_the_fast_path_answers_and_saves_as_the_route_does(
    settings: Settings,
    twin: Settings,
    site: Path,
    build: Build,
    connect: Connect,
    start: Start,
    routed: list[Engine],
) -> None:
    fast_app, route_app = build(settings, site), route_only(build(twin, site))
    with connect(fast_app) as fast, connect(route_app) as route:
        ids = {fast: start(fast)["id"], route: start(route)["id"]}
        assert comparable(view_of(fast, ids[fast])) == comparable(view_of(route, ids[route]))
        kinds: Counter[tuple[bool, bool]] = Counter()
        for body in SCRIPT:
            answers = {client: post_event(client, ids[client], body) for client in (fast, route)}
            same_answer(answers[fast], answers[route], body)
            answer = checked(answers[fast])
            kinds[answer["accepted"], "state" in answer] += 1
            views = [comparable(view_of(client, ids[client])) for client in (fast, route)]
            assert views[0] == views[1], body
        # Both kinds of answer were compared: small and whole, accepted and refused.
        assert kinds == {(True, False): 5, (True, True): 7, (False, True): 3}
        finish = {"active": 120.0, "tension_after": 3, "stopped": True}
        for client in (fast, route):
            assert client.post(f"{SESSIONS}/{ids[client]}/finish", json=finish).status_code == 200
        late = {"kind": "feedback", "feedback": "good", "active": 130.0, "seq": 99}
        answers = {client: post_event(client, ids[client], late) for client in (fast, route)}
        same_answer(answers[fast], answers[route], late)
        assert checked(answers[fast])["accepted"] is False
        assert stored_rows(fast_app, ids[fast]) == stored_rows(route_app, ids[route])
        saved = stored_rows(fast_app, ids[fast])
        assert [kind for kind, *_ in saved["feedback"]] == ["softer", "firmer", "tender", "good"]
        assert saved["progress_seq"] == 14 and saved["status"] == "stopped"
        # The fast path answered every event of one app, and the route every one of the other.
        assert served_by_route(routed, fast_app) == 0
        assert served_by_route(routed, route_app) == len(SCRIPT) + 1


# ---- (b) refusals are the route's own -------------------------------------------------------


def raw(body: dict[str, Any]) -> bytes:
    return json.dumps(body).encode()


PROGRESS = {"kind": "progress", "active": 10.0, "seq": 1}
JSON_TYPE = "application/json"
# (body, Content-Type, status, how the route's sentence starts)
REFUSED: list[tuple[bytes, str | None, int, str]] = [
    (b"{kind: progress}", JSON_TYPE, 422, "The request body is not valid JSON ("),
    (b'{"kind": "progress", "active": 1, "seq": 1', JSON_TYPE, 422,
     "The request body is not valid JSON ("),
    (b"\xff\xfe", JSON_TYPE, 422, "The request body is not valid JSON ("),
    (b"", JSON_TYPE, 422, "The request needs a JSON body."),
    (b"[]", JSON_TYPE, 422, "The request body must be a JSON object"),
    (b'"progress"', JSON_TYPE, 422, "The request body must be a JSON object"),
    (raw({"kind": "feedback", "active": 1.0, "seq": 1}), JSON_TYPE, 422,
     "A feedback event needs feedback: 'good', 'softer', 'firmer' or 'tender'."),
    (raw({**PROGRESS, "feedback": "good"}), JSON_TYPE, 422,
     "feedback goes only with kind 'feedback' (got kind 'progress')."),
    (raw({**PROGRESS, "seq": 0}), JSON_TYPE, 422, "seq must be 1 to 2147483647 (got 0)."),
    (raw({**PROGRESS, "seq": "1"}), JSON_TYPE, 422, "seq must be a whole number"),
    (raw({**PROGRESS, "mood": "calm"}), JSON_TYPE, 422, "mood is not a field here; the fields"),
    (raw({**PROGRESS, "kind": "rest"}), JSON_TYPE, 422, "kind must be one of: progress, pause"),
    (raw({**PROGRESS, "fired": ["step:x"]}), JSON_TYPE, 422, "fired[0] must be a cue id"),
    (b'{"kind": "progress", "active": NaN, "seq": 1}', JSON_TYPE, 422, "active must be"),
    (raw(PROGRESS), "text/plain", 422, "The request body must be a JSON object"),
    (raw(PROGRESS), None, 422, "The request body must be a JSON object"),
    (raw(PROGRESS), "application/x-www-form-urlencoded", 422, "The request body must be"),
    # Nested deeper than the JSON parser goes (a fault, once, before the route saw it).
    (b'{"kind": ' + b"[" * 5000 + b"]" * 5000 + b"}", JSON_TYPE, 400,
     "The request body could not be read as JSON; send one JSON object, nested a few"),
]  # fmt: skip


@contextmanager
def both(
    settings: Settings, site: Path, build: Build, connect: Connect
) -> Iterator[tuple[TestClient, TestClient]]:
    """A client of the app with the fast path and one of the app without, on one database."""
    with (
        connect(build(settings, site)) as fast,
        connect(route_only(build(settings, site))) as route,
    ):
        yield fast, route


@BOTH_WRITERS
def test_every_refusal_is_the_routes_own(
    settings: Settings, site: Path, build: Build, connect: Connect, start: Start
) -> None:
    with both(settings, site, build, connect) as (fast, route):
        sid = start(fast)["id"]
        before = view_of(fast, sid)
        for content, content_type, status, sentence in REFUSED:
            headers = {} if content_type is None else {"content-type": content_type}
            answers = [
                client.post(EVENTS.format(sid), content=content, headers=headers)
                for client in (fast, route)
            ]
            same_answer(answers[0], answers[1], content)
            assert_secured(answers[0])
            assert answers[0].status_code == status, (content[:40], answers[0].text)
            error = answers[0].json()["error"]
            assert error.startswith(sentence), (content, error)
            assert set(answers[0].json()) == {"error"}
        answers = [post_event(client, UNKNOWN, PROGRESS) for client in (fast, route)]
        same_answer(answers[0], answers[1], UNKNOWN)
        assert answers[0].status_code == 404
        assert answers[0].json() == {
            "error": f"No session {UNKNOWN!r} is stored; check the id against your history."
        }
        # Without the CSRF token, refused before either: by the security middleware.
        for client in (fast, route):
            unsigned = client.post(EVENTS.format(sid), json=PROGRESS, headers={"X-CSRF-Token": ""})
            assert unsigned.status_code == 403
            assert unsigned.json()["error"].startswith("The request lacks the page's CSRF token")
        # Nothing was saved by any of them: the first event is still seq 1's to take.
        assert view_of(fast, sid) == before
        assert checked(post_event(fast, sid, PROGRESS))["accepted"] is True


def browser_on(app: FastAPI, like: TestClient | None = None) -> TestClient:
    """A browser on the hosted app, the CSRF header echoed as the pages do; `like`: with its
    cookies (the same person, signed in on another app on the same database). Not entered:
    the app's lifespan is run by a client of its own (`hosted`)."""
    client = TestClient(app, base_url=HOSTED, follow_redirects=False)
    if like is None:
        assert client.get("/signin").status_code == 200
    else:
        for name, value in like.cookies.items():
            client.cookies.set(name, value, domain="backrub.example")
    client.headers["X-CSRF-Token"] = client.cookies[HOSTED_CSRF]
    return client


def person(
    fast_app: FastAPI, route_app: FastAPI, email: str | None
) -> tuple[TestClient, TestClient]:
    """One person's browser on each app, signed up on the first (None: not signed in)."""
    fast = browser_on(fast_app)
    if email is not None:
        signed = fast.post(
            "/api/v1/account/signup", json={"email": email, "password": PASSWORD, "consent": True}
        )
        assert signed.status_code == 201, signed.text
    return fast, browser_on(route_app, like=fast)


@contextmanager
def hosted(settings: Settings, limit: int, writer: str) -> Iterator[tuple[FastAPI, FastAPI]]:
    """The app with accounts on, with and without the fast path, on one database, running;
    each person's events limited to `limit` a minute (120 in service)."""
    fast_app = create_app(settings, accounts=True, event_process=writer == "process")
    route_app = route_only(create_app(settings, accounts=True))
    for app in (fast_app, route_app):
        runtime(app).event_limit = SlidingWindow(limit)
    with TestClient(fast_app, base_url=HOSTED), TestClient(route_app, base_url=HOSTED):
        yield fast_app, route_app


@BOTH_WRITERS
def test_refusals_with_accounts_are_the_routes_own(
    settings: Settings, body: Body, routed: list[Engine], writer: str
) -> None:
    with hosted(settings, 3, writer) as (fast_app, route_app):
        ana, ana_route = person(fast_app, route_app, "ana@example.org")
        ben, ben_route = person(fast_app, route_app, "ben@example.org")
        nobody, nobody_route = person(fast_app, route_app, None)
        made = {client: client.post(SESSIONS, json=body()) for client in (ana, ana_route)}
        assert [m.status_code for m in made.values()] == [201, 201]
        sid = made[ana].json()["id"]
        theirs = {client: m.json()["id"] for client, m in made.items()}
        before = stored_rows(fast_app, sid)

        def compare(fast: TestClient, route: TestClient, seq: int) -> httpx.Response:
            """The same event from one person to each app: to Ana's session on each for Ana,
            to Ana's first session on both for anyone else."""
            step = {**PROGRESS, "active": float(seq), "seq": seq}
            answers = [post_event(c, theirs.get(c, sid), step) for c in (fast, route)]
            same_answer(answers[0], answers[1], (seq, answers[0].text))
            return answers[0]

        # Not signed in: 401, before anyone looks for the session.
        refused = compare(nobody, nobody_route, 1)
        assert refused.status_code == 401
        assert refused.json()["error"].startswith("Sign in first")
        # Someone else's session: as if there were none.
        refused = compare(ben, ben_route, 1)
        assert refused.status_code == 404
        assert refused.json() == {
            "error": f"No session {sid!r} is stored; check the id against your history."
        }
        assert stored_rows(fast_app, sid) == before
        # Within the limit, Ana's events are saved (by the fast path); past it, 429.
        assert [compare(ana, ana_route, seq).status_code for seq in (1, 2, 3)] == [200] * 3
        limited = compare(ana, ana_route, 4)
        assert limited.status_code == 429
        assert limited.json()["error"].startswith("Too many changes at once")
        assert 1 <= int(limited.headers["retry-after"]) <= 60
        assert stored_rows(fast_app, sid)["progress_seq"] == 3
        # The fast path saved Ana's events and handed Ben's back to the route.
        assert served_by_route(routed, fast_app) == 1
        assert served_by_route(routed, route_app) == 4
        # Without the CSRF token: refused by the security middleware, on both.
        for client in (ana, ana_route):
            unsigned = client.post(
                EVENTS.format(theirs[client]),
                json={**PROGRESS, "seq": 9},
                headers={"X-CSRF-Token": ""},
            )
            assert unsigned.status_code == 403
        assert stored_rows(fast_app, sid)["progress_seq"] == 3


@BOTH_WRITERS
@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_an_event_for_no_such_session_counts_once_against_the_limit(
    settings: Settings, body: Body, writer: str
) -> None:
    with hosted(settings, 3, writer) as (fast_app, route_app):
        statuses = []
        for client in person(fast_app, route_app, "ana@example.org"):
            made = client.post(SESSIONS, json=body())
            assert made.status_code == 201
            statuses.append(
                [
                    post_event(client, UNKNOWN, PROGRESS).status_code,
                    post_event(client, UNKNOWN, PROGRESS).status_code,
                    post_event(client, made.json()["id"], PROGRESS).status_code,
                ]
            )
        # Three events, three within the limit: the route's answers.
        assert statuses[1] == [404, 404, 200]
        assert statuses[0] == statuses[1]


# ---- (c) compressed and secured as every other answer ---------------------------------------


def raw_post(
    client: TestClient, session_id: str, body: dict[str, Any], encoding: str, content_type: str
) -> tuple[httpx.Response, bytes]:
    """The answer as sent, not decoded by the client."""
    with client.stream(
        "POST",
        EVENTS.format(session_id),
        content=raw(body),
        headers={"Accept-Encoding": encoding, "Content-Type": content_type},
    ) as response:
        sent = b"".join(response.iter_raw())
    return response, sent


def assert_secured(response: httpx.Response) -> None:
    assert response.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["referrer-policy"] == "no-referrer"
    assert response.headers["cache-control"] == "no-store"


@BOTH_WRITERS
def test_a_large_answer_is_gzipped_a_small_one_is_not_and_both_are_secured(
    api: TestClient, start: Start, routed: list[Engine]
) -> None:
    view = start(api)
    sid = view["id"]
    # An accepted feedback carries only the fields of the steps it changed: after "good",
    # none, and so small it is sent as it is.
    good = {"kind": "feedback", "feedback": "good", "active": 30.0, "seq": 1}
    response, sent = raw_post(api, sid, good, "gzip, deflate", JSON_TYPE)
    assert response.status_code == 200
    assert "content-encoding" not in response.headers
    assert_secured(response)
    assert len(sent) < EVENT_GZIP_MINIMUM
    answer = json.loads(sent)
    EventAnswer.model_validate(answer)
    assert answer["changed_steps"] == [] and answer["applied_to"] == 0
    # After "softer", the fields it re-planned: sent as they are, though the client takes gzip
    # (compressing them cost more of the server than the bytes they would save).
    feedback = {"kind": "feedback", "feedback": "softer", "active": 40.0, "seq": 2}
    response, sent = raw_post(api, sid, feedback, "gzip, deflate", JSON_TYPE)
    assert response.status_code == 200
    assert_secured(response)
    assert "content-encoding" not in response.headers and "vary" not in response.headers
    assert len(sent) < EVENT_GZIP_MINIMUM
    answer = json.loads(sent)
    EventAnswer.model_validate(answer)
    assert answer["accepted"] is True
    assert answer["message"].startswith(("Softer", "That is already the lightest"))
    now = view_of(api, sid)
    changed = [
        [i, {k: v for k, v in step.items() if v != old[k]}]
        for i, (old, step) in enumerate(
            zip(view["state"]["steps"], now["state"]["steps"], strict=True)
        )
        if step != old
    ]
    assert changed and all(len(fields) < len(view["state"]["steps"][0]) for _, fields in changed)
    assert answer == {
        **but_the_plan(now),
        "accepted": True,
        "message": answer["message"],
        "changed_steps": changed,
        "applied_to": 1,
    }

    # Large: the same event again is refused, and answered with all of the session, gzipped.
    response, sent = raw_post(api, sid, feedback, "gzip, deflate", JSON_TYPE)
    assert response.status_code == 200
    assert response.headers["content-encoding"] == "gzip"
    assert response.headers["vary"] == "Accept-Encoding"
    assert int(response.headers["content-length"]) == len(sent)
    assert_secured(response)
    text = gzip.decompress(sent)
    assert len(text) >= EVENT_GZIP_MINIMUM and len(sent) < len(text)
    refused = json.loads(text)
    EventAnswer.model_validate(refused)
    whole = {k: v for k, v in now.items() if k not in {"plan", "cues"}}
    assert refused == {**whole, "accepted": False, "message": None}

    # Small: sent as it is, whatever the client accepts; the charset parameter is allowed.
    progress = {"kind": "progress", "active": 45.0, "seq": 3, "fired": ["half:0"]}
    response, sent = raw_post(api, sid, progress, "gzip", "application/json; charset=utf-8")
    assert response.status_code == 200
    assert "content-encoding" not in response.headers
    assert_secured(response)
    assert json.loads(sent) == {
        "accepted": True, "seq": 3, "active": 45.0, "fired": ["half:0"], "message": None,
    }  # fmt: skip

    # A large answer to a client that does not take gzip: plain JSON.
    response, sent = raw_post(api, sid, {**progress, "seq": 1}, "identity", JSON_TYPE)
    assert response.status_code == 200
    assert "content-encoding" not in response.headers
    assert_secured(response)
    assert len(sent) >= EVENT_GZIP_MINIMUM
    assert json.loads(sent) == {
        **{k: v for k, v in view_of(api, sid).items() if k not in {"plan", "cues"}},
        "accepted": False,
        "message": None,
    }
    # All three were the fast path's.
    assert routed == []


@BOTH_WRITERS
@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_an_answer_is_compressed_by_the_route_as_by_the_fast_path(
    settings: Settings, site: Path, build: Build, connect: Connect, start: Start
) -> None:
    with both(settings, site, build, connect) as (fast, route):
        responses = []
        for client in (fast, route):
            sid = start(client)["id"]
            extend = {"kind": "extend", "active": 50.0, "seq": 1}
            raw_post(client, sid, extend, "identity", JSON_TYPE)
            # Sent again: refused, and answered with the whole session.
            response, sent = raw_post(client, sid, extend, "identity", JSON_TYPE)
            assert response.status_code == 200
            assert len(sent) >= EVENT_GZIP_MINIMUM
            responses.append(response)
        assert responses[0].headers.get("vary") == responses[1].headers.get("vary")
        assert responses[0].headers["vary"] == "Accept-Encoding"
        # The fields a feedback changed: sent as they are by both, to a client taking gzip.
        for client in (fast, route):
            sid = start(client)["id"]
            softer = {"kind": "feedback", "feedback": "softer", "active": 200.0, "seq": 1}
            response, sent = raw_post(client, sid, softer, "gzip", JSON_TYPE)
            assert response.status_code == 200
            assert json.loads(sent)["changed_steps"]
            assert "content-encoding" not in response.headers and "vary" not in response.headers


# ---- (d) many at once -----------------------------------------------------------------------


def run_threads(work: Sequence[Callable[[], None]]) -> None:
    failures: list[BaseException] = []

    def guarded(job: Callable[[], None]) -> None:
        try:
            job()
        except BaseException as exc:  # reported by the test, not lost in the thread
            failures.append(exc)

    threads = [threading.Thread(target=guarded, args=(job,)) for job in work]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=HANG)
        assert not thread.is_alive(), "a request never got its answer"
    assert failures == []


def player_event(seq: int, active: float) -> dict[str, Any]:
    """Every fifth event feedback (of each kind in turn), the others progress with a cue of
    their own, so what is saved shows which events were applied."""
    if seq % 5 == 0:
        kind = FEEDBACK_KINDS[(seq // 5) % len(FEEDBACK_KINDS)]
        return {"kind": "feedback", "feedback": kind, "active": active, "seq": seq}
    return {"kind": "progress", "active": active, "seq": seq, "fired": [f"check:{seq}"]}


@BOTH_WRITERS
def test_many_players_at_once_are_all_answered_and_saved(
    app: FastAPI, api: TestClient, start: Start, routed: list[Engine]
) -> None:
    players, events = 16, 20
    ids = [start(api)["id"] for _ in range(players)]
    answers: dict[str, list[dict[str, Any]]] = {sid: [] for sid in ids}

    def play(sid: str) -> None:
        for seq in range(1, events + 1):
            answers[sid].append(checked(post_event(api, sid, player_event(seq, 3.0 * seq))))

    run_threads([functools.partial(play, sid) for sid in ids])
    for sid in ids:
        assert [a["accepted"] for a in answers[sid]] == [True] * events
        view = view_of(api, sid)
        assert view["state"]["seq"] == events and view["active"] == 3.0 * events
        sent = [player_event(seq, 3.0 * seq) for seq in range(1, events + 1)]
        assert view["state"]["fired"] == sorted(c for b in sent for c in b.get("fired", []))
        heard = [(f["kind"], f["at"]) for f in view["record"]["feedback"]]
        assert heard == [(b["feedback"], b["active"]) for b in sent if b["kind"] == "feedback"]
    assert served_by_route(routed, app) == 0


def test_a_saved_event_whose_answer_fails_is_not_applied_again(
    app: FastAPI,
    api: TestClient,
    start: Start,
    routed: list[Engine],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A fault after the save (only a bug can make one) is a 500 saying the change was kept —
    not a hand-over to the route, which would answer `accepted: false` and so make the page
    send the skip again."""
    sid = start(api)["id"]
    before = view_of(api, sid)["durations"]

    def broken(outcome: sessions.Outcome) -> bytes:
        raise RuntimeError("a fault in making the answer")

    monkeypatch.setattr(sessions, "answer_json", broken)
    answer = post_event(api, sid, {"kind": "skip", "active": 10.0, "seq": 1})
    assert answer.status_code == 500
    assert answer.json() == {"error": fast_events.SAVED_BUT_FAULT}
    assert answer.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
    assert "could not be made" in caplog.text
    monkeypatch.undo()
    after = view_of(api, sid)
    assert after["state"]["seq"] == 1
    # Skipped once: the first step ends at 10 s, and the rest is as it was.
    assert after["durations"][0] == 10.0 and after["durations"][1:] == before[1:]
    assert served_by_route(routed, app) == 0


@BOTH_WRITERS
def test_many_devices_on_one_session_lose_no_accepted_event(api: TestClient, start: Start) -> None:
    """Eight devices send rising seqs, interleaved: what is accepted is saved, and only that."""
    sid = start(api)["id"]
    devices, events = 8, 20
    results: list[tuple[dict[str, Any], dict[str, Any]]] = []
    lock = threading.Lock()

    def send(device: int) -> None:
        for n in range(events):
            seq = devices * n + device + 1
            body = player_event(seq, float(seq))
            answer = checked(post_event(api, sid, body))
            with lock:
                results.append((body, answer))

    run_threads([functools.partial(send, d) for d in range(devices)])
    assert len(results) == devices * events
    taken = [body for body, answer in results if answer["accepted"]]
    for body, answer in results:
        if not answer["accepted"]:
            # Refused only for a seq at least as high already saved, which it answers with.
            assert answer["state"]["seq"] >= body["seq"]
    view = view_of(api, sid)
    assert view["state"]["seq"] == max(b["seq"] for b in taken) == devices * events
    assert view["state"]["fired"] == sorted(c for b in taken for c in b.get("fired", []))
    heard = [(f["kind"], f["at"]) for f in view["record"]["feedback"]]
    # In the order they were applied: by seq, as only rising seqs are accepted.
    assert heard == [
        (b["feedback"], b["active"])
        for b in sorted(taken, key=lambda b: b["seq"])
        if b["kind"] == "feedback"
    ]


# ---- in one event loop: batches and shutdown, step by step ----------------------------------


class Gate:
    """Holds the event writer's first batch until released, so that the events sent meanwhile
    wait together and make the next batch (as they do when a commit is slow). Records the
    size of every batch the writer saves."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.entered = threading.Event()
        self.release = threading.Event()
        self.batches: list[int] = []
        original = sessions.apply_events

        def spy(catalogue: Any, db: Any, events: Any, *remembered: Any) -> Any:
            if threading.current_thread().name == "backrub-events":
                self.batches.append(len(events))
                if len(self.batches) == 1:
                    self.entered.set()
                    assert self.release.wait(HANG)
            return original(catalogue, db, events, *remembered)

        monkeypatch.setattr(sessions, "apply_events", spy)

    async def held(self) -> None:
        assert await asyncio.to_thread(self.entered.wait, HANG)


class Direct:
    """Requests straight to the ASGI app, in this event loop: each runs until it waits for its
    answer before the next one starts, so the order they are made is the order they queue."""

    def __init__(self, app: FastAPI) -> None:
        self.app = app
        self.token = secrets.token_urlsafe(32)
        self.inbox: asyncio.Queue[Message] = asyncio.Queue()
        self.outbox: asyncio.Queue[Message] = asyncio.Queue()
        self.life: asyncio.Task[None] | None = None

    async def startup(self) -> None:
        scope = {"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}}
        self.life = asyncio.create_task(self.app(scope, self.inbox.get, self.outbox.put))
        await self.inbox.put({"type": "lifespan.startup"})
        assert (await self.outbox.get())["type"] == "lifespan.startup.complete"

    async def begin_shutdown(self) -> None:
        await self.inbox.put({"type": "lifespan.shutdown"})

    async def shutdown_done(self) -> str:
        message = await self.outbox.get()
        assert self.life is not None
        await self.life
        return str(message["type"])

    def post(self, path: str, body: dict[str, Any]) -> asyncio.Task[tuple[int, Any]]:
        return asyncio.create_task(self._post(path, raw(body)))

    async def _post(self, path: str, content: bytes) -> tuple[int, Any]:
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "POST",
            "scheme": "http",
            "path": path,
            "raw_path": path.encode(),
            "root_path": "",
            "query_string": b"",
            "headers": [
                (b"host", b"127.0.0.1:8000"),
                (b"content-type", b"application/json"),
                (b"content-length", str(len(content)).encode()),
                (b"cookie", f"backrub_csrf={self.token}".encode()),
                (b"x-csrf-token", self.token.encode()),
            ],
            "client": ("127.0.0.1", 50000),
            "server": ("127.0.0.1", 8000),
            "state": {},
        }
        answered = asyncio.Event()
        pending = [{"type": "http.request", "body": content, "more_body": False}]
        status: list[int] = []
        parts: list[bytes] = []

        async def receive() -> Message:
            if pending:
                return pending.pop()
            await answered.wait()
            return {"type": "http.disconnect"}

        async def send(message: Message) -> None:
            if message["type"] == "http.response.start":
                status.append(message["status"])
            elif message["type"] == "http.response.body":
                parts.append(message.get("body", b""))
                if not message.get("more_body", False):
                    answered.set()

        await self.app(scope, receive, send)
        return status[0], json.loads(b"".join(parts))


def session_body() -> dict[str, Any]:
    return {"mode": "self", "minutes": 20, "focus": [], "tension_before": 6}


async def new_sessions(client: Direct, count: int) -> list[str]:
    made = await asyncio.gather(*(client.post(SESSIONS, session_body()) for _ in range(count)))
    assert all(status == 201 for status, _ in made), made
    return [view["id"] for _, view in made]


def batch_script(ids: Sequence[str]) -> list[tuple[str, dict[str, Any]]]:
    """What waits behind the first event of session a, and is saved in one batch: two sessions'
    events, two more of session a (one with a seq already taken), a stale one, an unknown
    session."""
    a, b, c = ids
    return [
        (b, {"kind": "feedback", "feedback": "softer", "active": 30.0, "seq": 1}),
        (a, {"kind": "skip", "active": 20.0, "seq": 2}),
        (a, {"kind": "extend", "active": 25.0, "seq": 2}),  # seq 2 is taken just before
        (c, {"kind": "progress", "active": 15.0, "seq": 1, "fired": ["step:0"]}),
        (UNKNOWN, {"kind": "progress", "active": 15.0, "seq": 1}),
        (b, {"kind": "progress", "active": 99.0, "seq": 1}),  # stale
        (a, {"kind": "feedback", "feedback": "firmer", "active": 40.0, "seq": 3}),
    ]


FIRST = {"kind": "progress", "active": 10.0, "seq": 1, "fired": ["step:0"]}


async def one_batch(app: FastAPI, gate: Gate | None) -> tuple[list[tuple[int, Any]], list[Any]]:
    """The batch script on a fresh app: held behind the gate (all in one batch), or one at a
    time. The answers, and the sessions as they end."""
    client = Direct(app)
    await client.startup()
    ids = await new_sessions(client, 3)
    answers: list[tuple[int, Any]] = []
    if gate is None:
        answers.append(await client.post(EVENTS.format(ids[0]), FIRST))
        for sid, body in batch_script(ids):
            answers.append(await client.post(EVENTS.format(sid), body))
    else:
        first = client.post(EVENTS.format(ids[0]), FIRST)
        await gate.held()
        waiting = [client.post(EVENTS.format(sid), body) for sid, body in batch_script(ids)]
        await asyncio.sleep(0)  # each runs until it waits for its answer: all are queued
        gate.release.set()
        answers = [await first, *await asyncio.gather(*waiting)]
    engine = open_engine(app)
    with engine.connect() as conn:
        saved = [
            conn.execute(
                select(SessionRow.progress_seq, SessionRow.state, SessionRow.tender).where(
                    SessionRow.id == sid
                )
            ).one()
            for sid in ids
        ]
        heard = [
            conn.execute(
                select(FeedbackRow.kind, FeedbackRow.at).where(FeedbackRow.session_id == sid)
            ).all()
            for sid in ids
        ]
    await client.begin_shutdown()
    assert await client.shutdown_done() == "lifespan.shutdown.complete"
    return answers, [(tuple(s), [tuple(h) for h in f]) for s, f in zip(saved, heard, strict=True)]


def without_record(answer: tuple[int, Any]) -> tuple[int, Any]:
    status, body = answer
    if isinstance(body, dict):
        body = {k: v for k, v in body.items() if k not in ("id", "record")}
    return status, body


def test_events_that_share_a_batch_are_each_answered_as_alone(
    settings: Settings, twin: Settings, site: Path, build: Build, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same events one at a time through the route, and held together so the fast path
    saves them in one transaction: the same answers and the same sessions. (A whole answer's
    record is read after its batch, so it may already show a later event of the batch.)"""
    alone, alone_saved = asyncio.run(one_batch(route_only(build(twin, site)), None))
    gate = Gate(monkeypatch)
    batched, batched_saved = asyncio.run(one_batch(build(settings, site), gate))
    assert gate.batches == [1, len(batch_script(["a", "b", "c"]))]
    assert [without_record(a) for a in batched] == [without_record(a) for a in alone]
    assert batched_saved == alone_saved
    statuses = [status for status, _ in batched]
    assert statuses == [200, 200, 200, 200, 200, 404, 200, 200]
    accepted = [body.get("accepted") for _, body in batched]
    assert accepted == [True, True, True, False, True, None, False, True]
    # The refused extend answers with what the skip before it saved; the firmer after it
    # starts from that skip.
    skip, extend, firmer = batched[2][1], batched[3][1], batched[7][1]
    # (The accepted skip's answer carries only the steps it changed: none.)
    assert skip["changed_steps"] == [] and "steps" in extend["state"]
    assert {k: v for k, v in extend["state"].items() if k != "steps"} == skip["state"]
    assert extend["durations"] == skip["durations"]
    assert firmer["durations"][0] == skip["durations"][0] == 20.0
    assert batched[5][1] == {
        "error": f"No session {UNKNOWN!r} is stored; check the id against your history."
    }


# ---- (e) stopping with events in flight -----------------------------------------------------


def writer_threads() -> set[int]:
    return {t.ident for t in threading.enumerate() if t.name == "backrub-events" and t.ident}


def test_the_app_stops_cleanly_with_events_waiting(
    settings: Settings, site: Path, build: Build, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Events waiting for the writer when the app is told to stop are saved and answered
    before it stops; events that arrive while it stops are answered by the route."""
    app = build(settings, site)
    gate = Gate(monkeypatch)
    before = writer_threads()

    async def scenario() -> tuple[list[str], list[tuple[int, Any]], list[tuple[int, Any]], str]:
        client = Direct(app)
        await client.startup()
        assert writer_threads() - before
        ids = await new_sessions(client, 6)
        waiting = [client.post(EVENTS.format(ids[0]), FIRST)]
        await gate.held()
        for seq in range(2, 8):
            for sid in ids[:4]:
                waiting.append(client.post(EVENTS.format(sid), player_event(seq, 5.0 * seq)))
        await asyncio.sleep(0)  # all of them are queued behind the first
        await client.begin_shutdown()
        while runtime(app).event_writer is not None:
            await asyncio.sleep(0)
        # Arriving while the app stops: the writer takes no more, the route answers.
        late = [client.post(EVENTS.format(sid), player_event(5, 25.0)) for sid in ids[4:]]
        late_answers = list(await asyncio.gather(*late))
        gate.release.set()
        answers = list(await asyncio.gather(*waiting))
        return ids, answers, late_answers, await client.shutdown_done()

    ids, answers, late, stopped = asyncio.run(asyncio.wait_for(scenario(), HANG))
    assert stopped == "lifespan.shutdown.complete"
    assert writer_threads() - before == set()
    assert gate.batches[0] == 1 and sum(gate.batches) == len(answers)
    assert [status for status, _ in answers + late] == [200] * (len(answers) + len(late))
    assert all(body["accepted"] for _, body in answers + late)
    heard = player_event(5, 25.0)
    store = open_store(settings)
    try:
        for n, sid in enumerate(ids):
            record = store.get(sid)
            state = store.plan_and_state(sid)[1]
            assert state["seq"] == (7 if n < 4 else 5)
            # Each session's one feedback event (seq 5), saved by the writer or the route.
            assert [(f.kind, f.at) for f in record.feedback] == [(heard["feedback"], 25.0)]
    finally:
        store.close()


@BOTH_WRITERS
def test_a_fault_outside_the_framework_is_answered_in_json_with_the_headers(
    api: TestClient, start: Start, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The fast path and the security checks run outside FastAPI's own error handling: a fault
    there still gets the one JSON sentence for a fault, with the security headers."""
    sid = start(api)["id"]

    async def broken(receive: object, limit: int) -> None:
        raise RuntimeError("a bug in the fast path")

    monkeypatch.setattr(fast_events, "_read_body", broken)
    response = post_event(api, sid, PROGRESS)
    assert response.status_code == 500
    assert response.json() == {
        "error": "Something went wrong inside backrub; nothing more was saved. Try again."
    }
    assert_secured(response)


def test_an_app_whose_writer_process_cannot_start_saves_the_events_itself(
    settings: Settings,
    site: Path,
    build: Build,
    connect: Connect,
    start: Start,
    routed: list[Engine],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A writer process that ends before it is ready leaves the writing to a thread of the
    app's own process, as an app made without one has it: the events are still saved by the
    fast path, and the failure is logged."""
    monkeypatch.setattr(writer_process, "ENTRY", "raise SystemExit(3)")
    app = build(settings, site, event_process=True)
    with caplog.at_level(logging.ERROR, logger=writer_process.__name__), connect(app) as api:
        writer = runtime(app).event_writer
        assert isinstance(writer, writer_process.WriterProcess)
        until_ended(writer)
        sid = start(api)["id"]
        softer = {"kind": "feedback", "feedback": "softer", "active": 30.0, "seq": 1}
        assert checked(post_event(api, sid, softer))["accepted"] is True
        assert [f["kind"] for f in view_of(api, sid)["record"]["feedback"]] == ["softer"]
        assert served_by_route(routed, app) == 0
    assert "The event writer process did not start" in caplog.text


def until_ended(writer: writer_process.WriterProcess) -> None:
    deadline = time.monotonic() + HANG
    while writer.running and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not writer.running


def test_events_after_the_writer_process_ended_are_saved_by_the_app(
    settings: Settings,
    site: Path,
    build: Build,
    connect: Connect,
    start: Start,
    routed: list[Engine],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A writer process that dies (killed, out of memory) hands the writing to a thread of the
    app: the events go on being saved by the fast path, and its end is logged."""
    app = build(settings, site, event_process=True)
    with caplog.at_level(logging.ERROR, logger=writer_process.__name__), connect(app) as api:
        sid = start(api)["id"]
        writer = runtime(app).event_writer
        assert isinstance(writer, writer_process.WriterProcess)

        def feedback(kind: str, seq: int) -> dict[str, Any]:
            body = {"kind": "feedback", "feedback": kind, "active": 30.0 + seq, "seq": seq}
            return checked(post_event(api, sid, body))

        assert feedback("softer", 1)["accepted"] is True
        os.kill(writer.pid, signal.SIGKILL)
        until_ended(writer)
        assert feedback("firmer", 2)["accepted"] is True
        assert feedback("tender", 3)["accepted"] is True
        heard = [f["kind"] for f in view_of(api, sid)["record"]["feedback"]]
        assert heard == ["softer", "firmer", "tender"]
        assert served_by_route(routed, app) == 0
    assert "The event writer process has ended" in caplog.text
