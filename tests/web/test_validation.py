"""Bad input gets a 4xx and one sentence saying what is allowed: never a traceback, never a 500,
and nothing is stored or changed."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from collections.abc import Callable

    from fastapi.testclient import TestClient

SESSION = {"tension_before": 5}
EVENT = {"kind": "progress", "active": 10, "seq": 1}
FINISH = {"active": 10, "tension_after": 3, "stopped": False}
WHOLE_MINUTES = "minutes must be a whole number 15 to 60 "


def with_(base: dict[str, Any], **changes: Any) -> dict[str, Any]:
    return {**base, **changes}


def without(base: dict[str, Any], key: str) -> dict[str, Any]:
    return {k: v for k, v in base.items() if k != key}


# (path, body, status, the sentence) — `{id}` is an active session of the profile.
BAD_BODIES: list[tuple[str, Any, int, str]] = [
    # wrong types
    ("/api/v1/plans", {"minutes": "20"}, 422, WHOLE_MINUTES + '(got "20").'),
    ("/api/v1/plans", {"minutes": 20.5}, 422, WHOLE_MINUTES + "(got 20.5)."),
    ("/api/v1/plans", {"minutes": True}, 422, WHOLE_MINUTES + "(got true)."),
    ("/api/v1/plans", {"oil": "yes"}, 422, 'oil must be true or false (got "yes").'),
    ("/api/v1/plans", {"oil": 1}, 422, "oil must be true or false (got 1)."),
    ("/api/v1/plans", {"focus": "shoulders"}, 422, 'focus must be a list (got "shoulders").'),
    ("/api/v1/plans", {"focus": ["shoulders"]}, 422,
     'focus[0] must be an object with the fields region, tension (got "shoulders").'),
    ("/api/v1/plans", {"findings": [{"condition": 3}]}, 422,
     "findings[0].condition must be text (got 3)."),
    ("/api/v1/safety", {"findings": {"condition": "fever"}}, 422,
     'findings must be a list (got {"condition": "fever"}).'),
    ("/api/v1/sessions/{id}/events", with_(EVENT, active="10"), 422,
     'active must be a number 0 to 86400 (got "10").'),
    ("/api/v1/sessions/{id}/events", with_(EVENT, seq=1.0), 422,
     "seq must be a whole number 1 to 2147483647 (got 1.0)."),
    ("/api/v1/sessions/{id}/finish", with_(FINISH, stopped="no"), 422,
     'stopped must be true or false (got "no").'),
    ("/api/v1/sessions/{id}/finish", with_(FINISH, note=5), 422, "note must be text (got 5)."),
    ("/api/v1/plans", [], 422, "The request body must be a JSON object, sent as application/json."),
    ("/api/v1/plans", "minutes", 422,
     "The request body must be a JSON object, sent as application/json."),
    # out of range
    ("/api/v1/plans", {"minutes": 90}, 422, "minutes must be 15 to 60 (got 90)."),
    ("/api/v1/plans", {"minutes": 14}, 422, "minutes must be 15 to 60 (got 14)."),
    ("/api/v1/plans", {"focus": [{"region": "shoulders", "tension": 11}]}, 422,
     "focus[0].tension must be 0 to 10 (got 11)."),
    ("/api/v1/sessions", with_(SESSION, tension_before=-1), 422,
     "tension_before must be 0 to 10 (got -1)."),
    ("/api/v1/sessions/{id}/events", with_(EVENT, active=-0.5), 422,
     "active must be 0 to 86400 (got -0.5)."),
    ("/api/v1/sessions/{id}/events", with_(EVENT, active=1e9), 422,
     "active must be 0 to 86400 (got 1000000000.0)."),
    ("/api/v1/sessions/{id}/events", with_(EVENT, seq=0), 422,
     "seq must be 1 to 2147483647 (got 0)."),
    ("/api/v1/sessions/{id}/events", with_(EVENT, seq=2**31), 422,
     "seq must be 1 to 2147483647 (got 2147483648)."),
    ("/api/v1/sessions/{id}/finish", with_(FINISH, tension_after=11), 422,
     "tension_after must be 0 to 10 (got 11)."),
    ("/api/v1/sessions/{id}/finish", with_(FINISH, note="x" * 2001), 422,
     "note must be at most 2000 characters."),
    ("/api/v1/sessions/{id}/finish", with_(FINISH, note="a\x00b"), 422,
     "note must be plain text, without NUL characters (\\u0000)."),
    ("/api/v1/plans", {"focus": [{"region": f"r{i}", "tension": 1} for i in range(21)]}, 422,
     "focus may hold at most 20 items."),
    # unknown ids and values
    ("/api/v1/plans", {"mode": "both"}, 422, 'mode must be one of: self, partner (got "both").'),
    ("/api/v1/plans", {"pressure": "hard"}, 422,
     'pressure must be one of: light, medium, firm, deep (got "hard").'),
    ("/api/v1/plans", {"focus": [{"region": "neck", "tension": 5}]}, 422,
     "Unknown region 'neck'; choose from: shoulders, shoulder-blades, between-shoulder-blades, "
     "mid-back, sides-of-spine, lower-back."),
    ("/api/v1/plans", {"focus": [{"region": "whole-back", "tension": 5}]}, 422,
     "Unknown region 'whole-back'; choose from: shoulders, shoulder-blades, "
     "between-shoulder-blades, mid-back, sides-of-spine, lower-back."),
    ("/api/v1/plans", {"focus": [{"region": "shoulders", "tension": 5}] * 2}, 422,
     "shoulders is given twice; give each focus region once."),
    ("/api/v1/safety", {"findings": [{"condition": "flu"}]}, 422,
     "Unknown condition 'flu'; choose from: "),
    ("/api/v1/safety", {"findings": [{"condition": "sunburn-or-rash"}]}, 422,
     "sunburn-or-rash needs the area it affects; areas: shoulders, "),
    ("/api/v1/safety", {"findings": [{"condition": "sunburn-or-rash", "region": "neck"}]}, 422,
     "Unknown area 'neck' for sunburn-or-rash; choose from: shoulders, "),
    ("/api/v1/safety", {"findings": [{"condition": "fever", "region": "shoulders"}]}, 422,
     "fever does not take an area; leave the area out."),
    ("/api/v1/sessions", with_(SESSION, findings=[{"condition": "flu"}]), 422,
     "Unknown condition 'flu'; choose from: "),
    ("/api/v1/sessions/{id}/events", with_(EVENT, kind="rewind"), 422,
     'kind must be one of: progress, pause, resume, skip, extend, feedback (got "rewind").'),
    ("/api/v1/sessions/{id}/events", with_(EVENT, kind="feedback", feedback="harder"), 422,
     'feedback must be one of: good, softer, firmer, tender (got "harder").'),
    ("/api/v1/sessions/{id}/events", with_(EVENT, fired=["step:1", "nope"]), 422,
     'fired[1] must be a cue id: step:N, half:N, check:N or finish (got "nope").'),
    ("/api/v1/sessions/0123/events", EVENT, 404,
     "No session '0123' is stored; check the id against your history."),
    ("/api/v1/sessions/0123/finish", FINISH, 404,
     "No session '0123' is stored; check the id against your history."),
    # missing and extra fields
    ("/api/v1/sessions", {}, 422, "tension_before is required."),
    ("/api/v1/sessions/{id}/events", without(EVENT, "seq"), 422, "seq is required."),
    ("/api/v1/sessions/{id}/events", without(EVENT, "active"), 422, "active is required."),
    ("/api/v1/sessions/{id}/events", with_(EVENT, kind="feedback"), 422,
     "A feedback event needs feedback: 'good', 'softer', 'firmer' or 'tender'."),
    ("/api/v1/sessions/{id}/events", with_(EVENT, feedback="good"), 422,
     "feedback goes only with kind 'feedback' (got kind 'progress')."),
    ("/api/v1/sessions/{id}/finish", without(FINISH, "tension_after"), 422,
     "tension_after is required."),
    ("/api/v1/plans", {"focus": [{"region": "shoulders"}]}, 422, "focus[0].tension is required."),
    ("/api/v1/safety", {"findings": [{}]}, 422, "findings[0].condition is required."),
    ("/api/v1/plans", {"minute": 20}, 422,
     "minute is not a field here; the fields are: mode, minutes, focus, pressure, oil, findings."),
    ("/api/v1/sessions", with_(SESSION, safety="clear"), 422,
     "safety is not a field here; the fields are: mode, minutes, focus, pressure, oil, findings, "
     "tension_before."),
    ("/api/v1/plans", {"focus": [{"region": "shoulders", "tension": 3, "side": "left"}]}, 422,
     "focus[0].side is not a field here; the fields are: region, tension."),
]  # fmt: skip


@pytest.fixture
def active_id(lite: TestClient) -> str:
    response = lite.post("/api/v1/sessions", json=SESSION)
    assert response.status_code == 201
    session_id: str = response.json()["id"]
    return session_id


def snapshot(client: TestClient) -> dict[str, Any]:
    data: dict[str, Any] = client.get("/api/v1/export").json()
    data.pop("exported_at")
    return data


def assert_one_sentence(response: Any, status: int, start: str) -> None:
    assert response.status_code == status, response.text
    answer = response.json()
    assert set(answer) == {"error"}, answer
    sentence = answer["error"]
    assert sentence.startswith(start), sentence
    assert sentence.endswith("."), sentence
    assert "Traceback" not in sentence and "pydantic" not in sentence


@pytest.mark.parametrize(("path", "body", "status", "sentence"), BAD_BODIES)
def test_bad_bodies(
    lite: TestClient, active_id: str, path: str, body: Any, status: int, sentence: str
) -> None:
    before = snapshot(lite)
    response = lite.post(path.format(id=active_id), json=body)
    assert_one_sentence(response, status, sentence)
    assert snapshot(lite) == before


NOT_JSON: list[tuple[bytes, str | None, str]] = [
    (b"{minutes: 20}", "application/json", "The request body is not valid JSON ("),
    (b'{"minutes": 20', "application/json", "The request body is not valid JSON ("),
    (b"\xff\xfe", "application/json", "The request body is not valid JSON ("),
    (b'{"minutes": NaN}', "application/json", "minutes must be a whole number 15 to 60"),
    (b"minutes=20", "application/x-www-form-urlencoded", "The request body must be a JSON object"),
    (b'{"minutes": 20}', "text/plain", "The request body must be a JSON object"),
    (b'{"minutes": 20}', None, "The request body must be a JSON object"),
    (b"", "application/json", "The request needs a JSON body."),
]


@pytest.mark.parametrize(("content", "content_type", "sentence"), NOT_JSON)
@pytest.mark.parametrize("path", ["/api/v1/sessions", "/api/v1/sessions/{id}/events"])
def test_bodies_that_are_not_json_objects(
    lite: TestClient,
    active_id: str,
    path: str,
    content: bytes,
    content_type: str | None,
    sentence: str,
) -> None:
    headers = {"content-type": content_type} if content_type else {}
    before = snapshot(lite)
    response = lite.post(path.format(id=active_id), content=content, headers=headers)
    if sentence.startswith("minutes") and "events" in path:
        sentence = "kind is required."  # the first problem of that body there
    assert_one_sentence(response, 422, sentence)
    assert snapshot(lite) == before


def test_a_body_too_large(lite: TestClient) -> None:
    big = json.dumps({"tension_before": 5, "note": "x" * 70_000})
    response = lite.post(
        "/api/v1/sessions", content=big, headers={"content-type": "application/json"}
    )
    assert_one_sentence(response, 413, "The request body is too large: at most 64 KiB.")


@pytest.mark.parametrize(
    ("query", "sentence"),
    [
        (
            {"every": "daily"},
            'every must be one of: auto, weekly, fortnightly, monthly (got "daily").',
        ),
        ({"at": "25:00"}, 'at must be a time of day as HH:MM, 00:00 to 23:59 (got "25:00").'),
        ({"at": "7pm"}, 'at must be a time of day as HH:MM, 00:00 to 23:59 (got "7pm").'),
        ({"minutes": "abc"}, 'minutes must be a whole number 15 to 60 (got "abc").'),
        ({"minutes": "61"}, 'minutes must be 15 to 60 (got "61").'),
        ({"when": "now"}, "when is not a field here; the fields are: every, at, minutes."),
    ],
)
def test_bad_reminder_queries(lite: TestClient, query: dict[str, str], sentence: str) -> None:
    assert_one_sentence(lite.get("/api/v1/reminders.ics", params=query), 422, sentence)


@pytest.mark.parametrize(
    ("method", "path", "status", "sentence"),
    [
        ("GET", "/api/v1/nothing", 404, "There is nothing at this address"),
        ("PUT", "/api/v1/sessions", 405, "This address does not take PUT requests"),
        ("GET", "/api/v1/sessions/{id}/events", 405, "This address does not take GET requests"),
        ("DELETE", "/api/v1/catalogue", 405, "This address does not take DELETE requests"),
    ],
)
def test_unknown_addresses_and_methods(
    lite: TestClient, active_id: str, method: str, path: str, status: int, sentence: str
) -> None:
    assert_one_sentence(lite.request(method, path.format(id=active_id)), status, sentence)


def test_a_failure_inside_is_a_json_500_without_details(
    lite: TestClient, monkeypatch: pytest.MonkeyPatch, signed: Callable[..., Any]
) -> None:
    from backrub.web import history

    def broken(*_: Any) -> None:
        raise RuntimeError("secret internals")

    monkeypatch.setattr(history, "stats", broken)
    client = type(lite)(lite.app, base_url=str(lite.base_url), raise_server_exceptions=False)
    with client:
        response = client.get("/api/v1/stats")
    assert response.status_code == 500
    assert response.json() == {
        "error": "Something went wrong inside backrub; nothing more was saved. Try again."
    }
    assert "secret" not in response.text
    assert response.headers["content-security-policy"].startswith("default-src 'self'")
    # Added by the error handler and by the middleware around it: once each, not twice.
    for name in ("content-security-policy", "x-content-type-options", "cache-control"):
        assert len(response.headers.get_list(name)) == 1, name
