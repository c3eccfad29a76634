"""The JSON API as the pages use it, on SQLite and on PostgreSQL (docs/web.md is the contract)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import icalendar
import pytest

from backrub.core import engine
from backrub.core.catalogue import CONTRAINDICATIONS, load_catalogue
from backrub.core.models import PRESSURE_WORDS
from backrub.store import SessionStore
from backrub.web.schemas import EventAnswer, EventSaved

if TYPE_CHECKING:
    from collections.abc import Callable
    from contextlib import AbstractContextManager
    from pathlib import Path

    from fastapi import FastAPI
    from fastapi.testclient import TestClient

    from backrub.config import Settings
    from backrub.core.catalogue import Catalogue

    Start = Callable[..., dict[str, Any]]
    Body = Callable[..., dict[str, Any]]
    Build = Callable[..., FastAPI]
    Connect = Callable[[FastAPI], AbstractContextManager[TestClient]]


CATALOGUE = load_catalogue()
SAVED_FIELDS = {"accepted", "seq", "active", "fired", "message"}


def event(client: TestClient, session_id: str, **body: Any) -> dict[str, Any]:
    """Send an event; its answer must be one of the two the OpenAPI schema describes."""
    response = client.post(f"/api/v1/sessions/{session_id}/events", json=body)
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    if "state" in answer:
        EventAnswer.model_validate(answer)
    else:
        assert set(answer) == SAVED_FIELDS
        EventSaved.model_validate(answer)
    return answer


def answered(state: dict[str, Any]) -> dict[str, Any]:
    """A saved state as an accepted event's answer carries it: without its steps (the answer
    has those the event changed, apart)."""
    return {k: v for k, v in state.items() if k != "steps"}


def patched(steps: list[dict[str, Any]], answer: dict[str, Any]) -> list[dict[str, Any]]:
    """The page's steps with an answer's changed fields written in, as adopt.js does."""
    steps = list(steps)
    for i, fields in answer["changed_steps"]:
        steps[i] = {**steps[i], **fields}
    return steps


def stored(client: TestClient) -> list[dict[str, Any]]:
    sessions: list[dict[str, Any]] = client.get("/api/v1/sessions").json()["sessions"]
    return sessions


def other_store(app: FastAPI) -> SessionStore:
    """Someone else's store on the app's own database."""
    engine = app.state.backrub.engine
    assert engine is not None
    return SessionStore(engine, owner="someone-else")


# ---- catalogue, safety, plans ---------------------------------------------------------------


def test_catalogue_is_what_the_pages_draw_from(lite: TestClient, catalogue: Catalogue) -> None:
    response = lite.get("/api/v1/catalogue")
    assert response.status_code == 200
    data = response.json()
    assert set(data) == {
        "regions", "techniques", "conditions", "setup", "facts", "pressure_words",
        "pressure_ceilings",
    }  # fmt: skip
    assert [r["id"] for r in data["regions"]] == list(catalogue.regions)
    shoulders = next(r for r in data["regions"] if r["id"] == "shoulders")
    assert len(shoulders["shapes"]) == 2 and len(shoulders["center"]) == 2
    assert all(t["motion"]["kind"] and t["motion"]["path"] for t in data["techniques"])
    assert [c["id"] for c in data["conditions"]] == list(catalogue.conditions)
    assert all(c["sources"] for c in data["conditions"])
    assert data["facts"]["min_minutes"] == 15 and data["facts"]["max_minutes"] == 60
    assert data["pressure_words"]["1"] == "feather"
    assert data["pressure_ceilings"] == {"light": 2, "medium": 3, "firm": 4, "deep": 5}


def test_safety_clear(lite: TestClient) -> None:
    verdict = lite.post("/api/v1/safety", json={"findings": []}).json()
    assert verdict == {
        "verdict": "clear", "see_doctor": False, "reasons": [], "pressure_cap": None,
        "avoid_regions": [], "avoid_tools": [],
    }  # fmt: skip


def test_safety_caution_says_what_changes_and_its_source(lite: TestClient) -> None:
    verdict = lite.post(
        "/api/v1/safety",
        json={
            "findings": [
                {"condition": "osteoporosis"},
                {"condition": "sunburn-or-rash", "region": "shoulders"},
            ]
        },
    ).json()
    assert verdict["verdict"] == "caution"
    assert verdict["pressure_cap"] == 2
    assert verdict["avoid_regions"] == ["shoulders"]
    assert verdict["avoid_tools"] == ["knuckles"]
    assert all(r["sources"] and r["change"] for r in verdict["reasons"])


@pytest.mark.parametrize("condition", [*CONTRAINDICATIONS, "fever"])
def test_safety_stop(lite: TestClient, condition: str) -> None:
    verdict = lite.post("/api/v1/safety", json={"findings": [{"condition": condition}]}).json()
    assert verdict["verdict"] == "stop"
    assert verdict["reasons"][0]["change"].startswith("Stops the session")
    assert verdict["see_doctor"] is (condition == "fever")


def test_avoiding_the_whole_back_stops(lite: TestClient) -> None:
    finding = {"condition": "recent-injury", "region": "whole-back"}
    verdict = lite.post("/api/v1/safety", json={"findings": [finding]}).json()
    assert verdict["verdict"] == "stop"


def test_plan_as_the_cli_gives_it(api: TestClient, body: Body) -> None:
    request = body()
    del request["tension_before"]
    response = api.post("/api/v1/plans", json=request)
    assert response.status_code == 200, response.text
    plan = response.json()
    assert plan["minutes"] == 20 and plan["mode"] == "partner"
    assert sum(s["seconds"] for s in plan["steps"]) == plan["total_seconds"] == 1200
    assert plan["steps"][0]["phase"] == "warm-up"
    assert plan["steps"][-1]["phase"] == "finish"
    assert max(s["pressure"] for s in plan["steps"]) <= 3
    assert plan["safety"]["verdict"] == "clear"
    assert stored(api) == []


def test_plan_defaults(api: TestClient) -> None:
    plan = api.post("/api/v1/plans", json={}).json()
    assert (plan["mode"], plan["minutes"], plan["pressure_ceiling"], plan["oil"]) == (
        "self", 20, 3, True,
    )  # fmt: skip


def test_plan_keeps_a_caution(api: TestClient) -> None:
    finding = {"condition": "sunburn-or-rash", "region": "shoulders"}
    plan = api.post(
        "/api/v1/plans",
        json={"focus": [{"region": "shoulders", "tension": 9}], "findings": [finding]},
    ).json()
    assert all(s["region"] != "shoulders" for s in plan["steps"])
    assert plan["safety"]["verdict"] == "caution"


def test_no_plan_on_a_stop_verdict(api: TestClient) -> None:
    response = api.post("/api/v1/plans", json={"findings": [{"condition": "pregnancy"}]})
    assert response.status_code == 409
    answer = response.json()
    assert set(answer) == {"error", "safety"}
    assert answer["safety"]["verdict"] == "stop"
    assert answer["safety"]["reasons"][0]["condition"] == "pregnancy"


def test_no_session_on_a_stop_verdict_and_nothing_stored(api: TestClient, body: Body) -> None:
    for findings in (
        [{"condition": "deep-vein-thrombosis"}],
        [{"condition": "blood-thinners"}, {"condition": "recent-surgery"}],
        [{"condition": "recent-injury", "region": "whole-back"}],
    ):
        response = api.post("/api/v1/sessions", json=body(findings=findings))
        assert response.status_code == 409, findings
        assert response.json()["safety"]["verdict"] == "stop"
    assert stored(api) == []
    assert api.get("/api/v1/export").json()["sessions"] == []


# ---- a live session -------------------------------------------------------------------------


def test_a_new_session_is_ready_to_play(api: TestClient, start: Start) -> None:
    view = start(api)
    assert set(view) == {"id", "record", "plan", "state", "cues", "durations", "total", "active"}
    assert view["total"] == 1200 == sum(view["durations"])
    assert view["active"] == 0
    assert view["durations"] == [s["seconds"] for s in view["plan"]["steps"]]
    first_cue = view["plan"]["steps"][0]["cue"]
    assert view["cues"][0] == {
        "id": "step:0",
        "kind": "step",
        "at": 0,
        "step": 0,
        "text": first_cue,
    }
    assert view["cues"][-1]["kind"] == "finish" and view["cues"][-1]["at"] == 1200
    assert any(c["kind"] == "check-in" for c in view["cues"])  # partner mode
    record = view["record"]
    assert record["id"] == view["id"]
    assert (record["status"], record["mode"], record["minutes_planned"]) == (
        "active",
        "partner",
        20,
    )
    assert record["tension_before"] == 7 and record["tension_after"] is None
    assert record["focus"] == [
        {"region": "shoulders", "tension": 8},
        {"region": "lower-back", "tension": 5},
    ]
    assert view["state"]["seq"] == 0 and view["state"]["started"] is False
    assert api.get(f"/api/v1/sessions/{view['id']}").json() == view


def test_a_caution_is_remembered_by_its_ids_only(api: TestClient, start: Start) -> None:
    view = start(api, findings=[{"condition": "blood-thinners"}])
    assert view["record"]["verdict"] == "caution"
    assert view["record"]["verdict_conditions"] == ["blood-thinners"]
    assert max(s["pressure"] for s in view["plan"]["steps"]) <= 2


def test_the_session_follows_the_plan_preview(api: TestClient, body: Body, start: Start) -> None:
    request = body()
    del request["tension_before"]
    # A past session with a tender spot changes the next plan: preview and session both learn it.
    sid = start(api)["id"]
    event(api, sid, kind="feedback", feedback="tender", active=10, seq=1)
    finish(api, sid, 5)
    preview = api.post("/api/v1/plans", json=request).json()
    assert start(api)["plan"] == preview
    first = api.get(f"/api/v1/sessions/{sid}").json()["plan"]
    assert preview != first


def test_progress_pause_and_resume_record_time_and_cues(api: TestClient, start: Start) -> None:
    view = start(api)
    sid = view["id"]
    answer = event(api, sid, kind="progress", active=50, seq=1, fired=["step:0", "half:0"])
    # The timeline is as the page has it: the answer is only what the server saved.
    assert answer == {
        "accepted": True, "seq": 1, "active": 50, "fired": ["half:0", "step:0"], "message": None,
    }  # fmt: skip
    saved = api.get(f"/api/v1/sessions/{sid}").json()
    assert saved["active"] == 50 and saved["state"]["fired"] == ["half:0", "step:0"]
    assert saved["state"]["started"] is True and saved["state"]["seq"] == 1
    assert saved["durations"] == view["durations"] and saved["cues"] == view["cues"]
    assert saved["record"]["seconds_done"] == 50
    answer = event(api, sid, kind="pause", active=61.5, seq=2)
    assert (answer["accepted"], answer["seq"], answer["active"]) == (True, 2, 61.5)
    answer = event(api, sid, kind="resume", active=61.5, seq=3, fired=["check:0"])
    assert answer["fired"] == ["check:0", "half:0", "step:0"]
    again = api.get(f"/api/v1/sessions/{sid}").json()
    assert again["active"] == 61.5 and again["state"]["seq"] == 3
    assert again["state"]["fired"] == ["check:0", "half:0", "step:0"]
    assert again["record"]["seconds_done"] == 61


def test_a_plain_event_saves_what_the_engine_would(api: TestClient, start: Start) -> None:
    """Progress, pause and resume change the saved state without restoring the engine's: what
    they save is what restoring it, applying the event and saving would."""
    sid = start(api)["id"]
    event(api, sid, kind="skip", active=20, seq=1)  # durations no longer the plan's
    sends = [
        {"kind": "progress", "active": 35.25, "seq": 2, "fired": ["step:1", "half:0"]},
        {"kind": "pause", "active": 30.0, "seq": 3},  # earlier: time does not go back
        {"kind": "resume", "active": 36.0, "seq": 7, "fired": ["step:1", "check:0"]},
        {"kind": "progress", "active": 86_000.0, "seq": 8, "fired": ["finish"]},  # past the end
    ]
    for body in sends:
        before = engine.state_from_dict(
            api.get(f"/api/v1/sessions/{sid}").json()["state"], CATALOGUE
        )
        at = max(before.active, body["active"])
        expected = before._replace(
            active=at,
            started=True,
            fired=before.fired | frozenset(body.get("fired", [])),
            seq=body["seq"],
        )
        answer = event(api, sid, **body)
        after = api.get(f"/api/v1/sessions/{sid}").json()
        assert after["state"] == engine.state_view(expected, at)
        assert (answer["seq"], answer["active"], answer["fired"]) == (
            body["seq"], at, after["state"]["fired"],
        )  # fmt: skip
        assert after["record"]["seconds_done"] == int(engine.position(expected, at).elapsed)
    assert after["record"]["seconds_done"] == after["total"]


def test_a_session_saved_with_its_words_goes_on_and_is_saved_without_them(
    api: TestClient, app: FastAPI, start: Start
) -> None:
    """A session saved before the saved state left out the steps' words (its steps whole, as the
    page's view has them) still opens, takes events, and is saved anew without them."""
    sid = start(api)["id"]
    store = SessionStore(app.state.backrub.engine)
    view = api.get(f"/api/v1/sessions/{sid}").json()
    old = {**view["state"], "seq": 1}
    assert old["format"] == engine.VIEW_FORMAT and "cue" in old["steps"][0]
    store.save_progress(sid, seq=1, seconds_done=0, state=old)
    assert api.get(f"/api/v1/sessions/{sid}").json()["state"] == old

    # Through the engine (the quick path takes only states saved as they are now): answered in
    # full, nothing changed in the steps.
    answer = event(api, sid, kind="progress", active=12.0, seq=2, fired=["step:0"])
    assert answer["accepted"] is True and answer["changed_steps"] == []
    _, saved = store.plan_and_state(sid)
    assert saved["format"] == engine.STATE_FORMAT
    assert [set(step) for step in saved["steps"]] == [set(engine.SAVED_STEP)] * len(old["steps"])
    again = api.get(f"/api/v1/sessions/{sid}").json()
    assert again["state"] == {**old, "active": 12.0, "started": True, "fired": ["step:0"], "seq": 2}

    focus = next(i for i, s in enumerate(old["steps"]) if s["phase"] == "focus")
    at = sum(again["durations"][:focus]) + 5
    answer = event(api, sid, kind="feedback", feedback="softer", active=at, seq=3)
    after = api.get(f"/api/v1/sessions/{sid}").json()
    assert patched(again["state"]["steps"], answer) == after["state"]["steps"]
    # Re-planned lighter, and said so in its words, made from the catalogue.
    step = after["state"]["steps"][focus]
    assert step["pressure"] == max(1, old["steps"][focus]["pressure"] - 1)
    assert f" {PRESSURE_WORDS[step['pressure']].capitalize()} pressure." in step["cue"]


def test_a_refused_progress_save_answers_the_whole_session(api: TestClient, start: Start) -> None:
    """The page adopts the server's state when its event is turned down, so it gets all of it."""
    sid = start(api)["id"]
    event(api, sid, kind="progress", active=80, seq=3, fired=["step:0"])
    for body in (
        {"kind": "progress", "active": 90, "seq": 3},
        {"kind": "pause", "active": 95, "seq": 2, "fired": ["half:0"]},
        {"kind": "resume", "active": 95, "seq": 1},
    ):
        answer = event(api, sid, **body)
        assert answer["accepted"] is False and answer["message"] is None
        # All of the session but its plan, which no event changes (the page has it), and the
        # cues, which the page makes from the steps and durations.
        view = api.get(f"/api/v1/sessions/{sid}").json()
        assert "plan" not in answer and "cues" not in answer
        assert answer == {**{k: v for k, v in view.items() if k not in ("plan", "cues")}, **answer}
        assert answer["state"]["seq"] == 3 and answer["active"] == 80
        assert answer["state"]["fired"] == ["step:0"]
    finish(api, sid, 4)
    late = event(api, sid, kind="progress", active=1000, seq=9)
    assert late["accepted"] is False and late["record"]["status"] == "finished"
    assert late["state"]["seq"] == api.get(f"/api/v1/sessions/{sid}").json()["state"]["seq"]


def test_skip_ends_the_step_now(api: TestClient, start: Start) -> None:
    view = start(api)
    first = view["durations"][0]
    answer = event(api, view["id"], kind="skip", active=20, seq=1)
    assert answer["durations"][0] == 20
    assert answer["durations"][1:] == view["durations"][1:]
    assert answer["total"] == view["total"] - (first - 20)
    assert "half:0" in answer["state"]["fired"]
    # The page makes the cues from the durations; the session's view has them.
    assert "cues" not in answer
    cues = api.get(f"/api/v1/sessions/{view['id']}").json()["cues"]
    assert cues[0]["id"] == "step:0"
    assert next(c for c in cues if c["id"] == "step:1")["at"] == 20


def test_extend_gives_the_step_a_minute(api: TestClient, start: Start) -> None:
    view = start(api)
    answer = event(api, view["id"], kind="extend", active=30, seq=1)
    assert answer["durations"][0] == view["durations"][0] + 60
    assert answer["total"] == view["total"] + 60


def test_feedback_replans_the_rest_and_is_remembered(api: TestClient, start: Start) -> None:
    view = start(api)
    sid = view["id"]
    boundaries = [sum(view["durations"][:i]) for i in range(len(view["durations"]))]
    focus = next(i for i, s in enumerate(view["plan"]["steps"]) if s["phase"] == "focus")
    at = boundaries[focus] + 5
    step = view["plan"]["steps"][focus]
    answer = event(api, sid, kind="feedback", feedback="softer", active=at, seq=1)
    assert answer["accepted"] is True
    assert answer["message"].startswith(("Softer", "That is already the lightest"))
    now = patched(view["state"]["steps"], answer)[focus]
    assert now["pressure"] == max(1, step["pressure"] - 1)
    assert "steps" not in answer["state"] and answer["applied_to"] == 0
    heard = {"kind": "softer", "at": at, "step": focus, "region": step["region"]}
    # An accepted event's answer leaves out the record (the page has it), and a state never
    # holds the feedback heard: the session's record does.
    assert "record" not in answer and "feedback" not in answer["state"]
    again = api.get(f"/api/v1/sessions/{sid}").json()
    assert again["record"]["feedback"] == [heard] and "feedback" not in again["state"]
    answer = event(api, sid, kind="feedback", feedback="tender", active=at + 10, seq=2)
    assert answer["message"].startswith("Tender spot")
    assert answer["state"]["tender"] == [step["region"]]
    again = api.get(f"/api/v1/sessions/{sid}").json()
    assert answered(again["state"]) == answer["state"]
    assert again["record"]["tender"] == [step["region"]]
    assert [f["kind"] for f in again["record"]["feedback"]] == ["softer", "tender"]
    assert again["record"]["seconds_done"] == int(at + 10)


def test_the_same_word_twice_while_paused_is_heard_twice(api: TestClient, body: Body) -> None:
    """Paused, the active time stands still: "softer" tapped twice is the same words at the same
    moment, twice. Both re-plan (two levels lighter), and the record keeps both."""
    view = api.post("/api/v1/sessions", json=body(pressure="firm", tension_before=5)).json()
    sid = view["id"]
    focus = next(i for i, s in enumerate(view["plan"]["steps"]) if s["phase"] == "focus")
    at = sum(view["durations"][:focus]) + 3
    before = view["state"]["steps"][focus]["pressure"]
    assert before >= 3, "the test needs a step that can go two levels lighter"
    for seq in (1, 2):
        answer = event(api, sid, kind="feedback", feedback="softer", active=at, seq=seq)
        assert answer["accepted"] is True and answer["message"].startswith("Softer")
    again = api.get(f"/api/v1/sessions/{sid}").json()
    assert again["state"]["steps"][focus]["pressure"] == before - 2
    heard = [(f["kind"], f["at"], f["step"]) for f in again["record"]["feedback"]]
    assert heard == [("softer", at, focus)] * 2


@pytest.mark.parametrize("mode", ["self", "partner"])
def test_the_changed_steps_of_each_answer_make_the_saved_steps(
    api: TestClient, start: Start, mode: str
) -> None:
    """The page keeps its steps by putting each answer's changed ones in place (adopt.js):
    after every event they must be the steps the server saved, and each answer names the save
    it was applied to."""
    view = start(api, mode=mode)
    sid = view["id"]
    mine, seq, saved = view["state"]["steps"], 0, 0
    events = [("feedback", "softer"), ("progress", None), ("feedback", "tender")]
    events += [("extend", None), ("feedback", "firmer"), ("skip", None), ("feedback", "good")]
    events += [("feedback", "softer"), ("feedback", "firmer"), ("feedback", "softer")]
    changed_any = False
    for n, (kind, word) in enumerate(events):
        seq += 1
        body: dict[str, Any] = {"kind": kind, "active": 30.0 + 40 * n, "seq": seq}
        if word is not None:
            body["feedback"] = word
        answer = event(api, sid, **body)
        assert answer["accepted"] is True
        if "state" in answer:
            assert answer["applied_to"] == saved and "steps" not in answer["state"]
            mine = patched(mine, answer)
            changed_any = changed_any or bool(answer["changed_steps"])
            if kind in ("skip", "extend"):
                assert answer["changed_steps"] == []
        saved = seq
        assert mine == api.get(f"/api/v1/sessions/{sid}").json()["state"]["steps"], (n, kind)
    assert changed_any


def test_firmer_never_passes_the_ceiling(api: TestClient, start: Start) -> None:
    view = start(api, pressure="light")
    sid = view["id"]
    for seq in range(1, 5):
        answer = event(api, sid, kind="feedback", feedback="firmer", active=seq * 10, seq=seq)
    steps = api.get(f"/api/v1/sessions/{sid}").json()["state"]["steps"]
    assert max(s["pressure"] for s in steps) <= 2
    assert answer["message"] == "That is as firm as this session goes here."
    assert answer["changed_steps"] == []  # nothing changed: no step is sent


def test_an_old_or_repeated_event_changes_nothing(api: TestClient, start: Start) -> None:
    sid = start(api)["id"]
    latest = event(api, sid, kind="skip", active=40, seq=5)
    for seq in (5, 4, 1):
        answer = event(api, sid, kind="extend", active=99, seq=seq)
        assert answer["accepted"] is False
        # Refused: all of the state; the accepted skip's answer had all but its steps.
        assert answered(answer["state"]) == latest["state"]
        assert answer["durations"] == latest["durations"]
    assert api.get(f"/api/v1/sessions/{sid}").json()["state"]["seq"] == 5


def test_time_never_goes_back(api: TestClient, start: Start) -> None:
    sid = start(api)["id"]
    event(api, sid, kind="progress", active=100, seq=1)
    answer = event(api, sid, kind="progress", active=40, seq=2)
    assert answer["accepted"] is True and answer["active"] == 100


def test_finish_with_tension_after(api: TestClient, start: Start) -> None:
    view = start(api)
    sid = view["id"]
    response = api.post(
        f"/api/v1/sessions/{sid}/finish",
        json={"active": 1200, "tension_after": 3, "note": "Shoulders eased.", "stopped": False},
    )
    assert response.status_code == 200, response.text
    record = response.json()["record"]
    assert record["status"] == "finished" and record["seconds_done"] == 1200
    assert record["tension_after"] == 3 and record["note"] == "Shoulders eased."
    assert record["ended_at"] is not None
    again = api.post(
        f"/api/v1/sessions/{sid}/finish",
        json={"active": 1200, "tension_after": 2, "stopped": False},
    )
    assert again.status_code == 409
    assert again.json() == {"error": f"Session {sid!r} has already ended; it stays as saved."}
    late = event(api, sid, kind="feedback", feedback="good", active=1300, seq=50)
    assert late["accepted"] is False
    assert api.get(f"/api/v1/sessions/{sid}").json()["record"]["tension_after"] == 3


def test_stopping_early_keeps_what_was_done(api: TestClient, start: Start) -> None:
    sid = start(api)["id"]
    event(api, sid, kind="progress", active=300, seq=1)
    view = api.post(
        f"/api/v1/sessions/{sid}/finish", json={"active": 310, "tension_after": 5, "stopped": True}
    ).json()
    assert view["record"]["status"] == "stopped"
    assert view["record"]["seconds_done"] == 310
    assert view["state"]["stopped"] is True
    assert view["record"]["note"] is None


def test_a_restarted_server_resumes_the_session(
    settings: Settings, site: Path, build: Build, connect: Connect, start: Start
) -> None:
    with connect(build(settings, site)) as first:
        sid = start(first)["id"]
        before = event(first, sid, kind="feedback", feedback="softer", active=95, seq=1)
    with connect(build(settings, site)) as second:
        after = second.get(f"/api/v1/sessions/{sid}").json()
        assert answered(after["state"]) == before["state"] and after["active"] == 95
        assert event(second, sid, kind="progress", active=120, seq=2)["accepted"] is True


def test_two_app_processes_serve_one_session(
    settings: Settings, site: Path, build: Build, connect: Connect, start: Start
) -> None:
    with connect(build(settings, site)) as one, connect(build(settings, site)) as two:
        view = start(one)
        sid = view["id"]
        event(one, sid, kind="extend", active=10, seq=1)
        answer = event(two, sid, kind="feedback", feedback="firmer", active=20, seq=2)
        assert answer["accepted"] is True
        assert answer["durations"][0] == view["durations"][0] + 60
        stale = event(one, sid, kind="skip", active=25, seq=2)
        # Refused: all of the state, steps included, for the page to adopt.
        assert stale["accepted"] is False and answered(stale["state"]) == answer["state"]
        assert stale["state"]["steps"] == patched(view["state"]["steps"], answer)
        last = event(one, sid, kind="skip", active=25, seq=3)
        assert last["accepted"] is True and last["durations"][0] == 25
        again = two.get(f"/api/v1/sessions/{sid}").json()
        assert answered(again["state"]) == last["state"]
        assert [f["kind"] for f in again["record"]["feedback"]] == ["firmer"]


# ---- one profile's data ---------------------------------------------------------------------


def test_another_owners_session_is_out_of_reach(api: TestClient, app: FastAPI) -> None:
    theirs = other_store(app)
    view = api.post("/api/v1/sessions", json={"tension_before": 4}).json()
    their_id = theirs.create(
        started_at=datetime.now(UTC),
        mode="self",
        minutes_planned=20,
        focus=(),
        verdict="clear",
        verdict_conditions=(),
        tension_before=5,
        plan=view["plan"],
        state=view["state"],
    )
    missing = {"error": f"No session {their_id!r} is stored; check the id against your history."}
    for method, path, json in (
        ("GET", f"/api/v1/sessions/{their_id}", None),
        ("POST", f"/api/v1/sessions/{their_id}/events", {"kind": "skip", "active": 5, "seq": 9}),
        (
            "POST",
            f"/api/v1/sessions/{their_id}/finish",
            {"active": 5, "tension_after": 1, "stopped": True},
        ),
        ("DELETE", f"/api/v1/sessions/{their_id}", None),
    ):
        response = api.request(method, path, json=json)
        assert response.status_code == 404, path
        assert response.json() == missing
    assert api.get(f"/play/{their_id}").status_code == 404
    assert [s["id"] for s in stored(api)] == [view["id"]]
    assert [s["id"] for s in api.get("/api/v1/export").json()["sessions"]] == [view["id"]]
    assert api.delete("/api/v1/data").json() == {"deleted": 1}
    record = theirs.get(their_id)
    assert record.status == "active" and record.seconds_done == 0


def test_unknown_session(api: TestClient) -> None:
    response = api.get("/api/v1/sessions/0123456789abcdef0123456789abcdef")
    assert response.status_code == 404
    assert response.json()["error"].startswith("No session ")


def test_delete_one_session(api: TestClient, start: Start) -> None:
    keep, gone = start(api)["id"], start(api)["id"]
    assert api.post(f"/api/v1/sessions/{gone}/events", json={
        "kind": "feedback", "feedback": "tender", "active": 400, "seq": 5,
    }).status_code == 200  # fmt: skip
    response = api.delete(f"/api/v1/sessions/{gone}")
    assert response.status_code == 204
    assert [s["id"] for s in stored(api)] == [keep]
    assert api.get(f"/api/v1/sessions/{gone}").status_code == 404
    again = api.delete(f"/api/v1/sessions/{gone}")
    assert again.status_code == 404 and again.json()["error"].startswith("No session ")
    del api.headers["X-CSRF-Token"]
    assert api.delete(f"/api/v1/sessions/{keep}").status_code == 403
    assert [s["id"] for s in stored(api)] == [keep]


# ---- history ------------------------------------------------------------------------------


def finish(client: TestClient, sid: str, after: int) -> None:
    response = client.post(
        f"/api/v1/sessions/{sid}/finish",
        json={"active": 1200, "tension_after": after, "stopped": False},
    )
    assert response.status_code == 200, response.text


def test_history_stats_export_and_forget(api: TestClient, start: Start) -> None:
    first = start(api, tension_before=8)["id"]
    finish(api, first, 4)
    second = start(api, tension_before=6)["id"]
    assert [s["id"] for s in stored(api)] == [second, first]
    stats = api.get("/api/v1/stats").json()
    assert stats["sessions"] == 1 and stats["average_drop"] == 4
    assert stats["trend"][0]["before"] == 8 and stats["trend"][0]["after"] == 4
    assert stats["next_session"] is not None and stats["message"]
    response = api.get("/api/v1/export")
    assert response.headers["content-disposition"].startswith("attachment")
    data = response.json()
    assert data["format"] == {"name": "backrub-export", "version": 1}
    assert data["owner"] == "local"
    assert {s["id"] for s in data["sessions"]} == {first, second}
    assert all("state" in s and "plan" in s for s in data["sessions"])
    assert api.delete("/api/v1/data").json() == {"deleted": 2}
    assert stored(api) == []
    assert api.get("/api/v1/stats").json()["sessions"] == 0


def test_reminders_as_a_calendar(api: TestClient, start: Start) -> None:
    finish(api, start(api, tension_before=9)["id"], 6)
    response = api.get("/api/v1/reminders.ics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/calendar")
    assert response.headers["content-disposition"] == 'attachment; filename="backrub.ics"'
    (event_,) = icalendar.Calendar.from_ical(response.content).walk("VEVENT")
    assert event_["RRULE"]["FREQ"] == ["WEEKLY"]  # tension came back high: weekly
    assert event_.decoded("DURATION").total_seconds() == 20 * 60
    response = api.get(
        "/api/v1/reminders.ics", params={"every": "monthly", "at": "7:05", "minutes": 45}
    )
    (event_,) = icalendar.Calendar.from_ical(response.content).walk("VEVENT")
    assert event_["RRULE"]["FREQ"] == ["MONTHLY"]
    assert event_.decoded("DTSTART").strftime("%H:%M") == "07:05"
    assert event_.decoded("DURATION").total_seconds() == 45 * 60
