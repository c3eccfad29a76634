"""The player's events under concurrency, on SQLite and PostgreSQL: many players at once are all
answered and saved, and many devices on one session lose no accepted event."""

from __future__ import annotations

import functools
import threading
from typing import TYPE_CHECKING, Any

from backrub.web.schemas import EventAnswer, EventSaved

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    import httpx
    from fastapi.testclient import TestClient

    Start = Callable[..., dict[str, Any]]

EVENTS = "/api/v1/sessions/{}/events"
FEEDBACK_KINDS = ("softer", "firmer", "tender", "good")
# Longer than any wait these tests have: only a hang reaches it.
HANG = 120.0


def post_event(client: TestClient, session_id: str, body: dict[str, Any]) -> httpx.Response:
    response: httpx.Response = client.post(EVENTS.format(session_id), json=body)
    return response


def checked(response: httpx.Response) -> dict[str, Any]:
    """A 200 answer, one of the two the OpenAPI schema describes."""
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    if "state" in answer:
        EventAnswer.model_validate(answer)
    else:
        EventSaved.model_validate(answer)
    return answer


def view_of(client: TestClient, session_id: str) -> dict[str, Any]:
    response = client.get(f"/api/v1/sessions/{session_id}")
    assert response.status_code == 200, response.text
    view: dict[str, Any] = response.json()
    return view


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


def test_many_players_at_once_are_all_answered_and_saved(api: TestClient, start: Start) -> None:
    players, events = 8, 15
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


def test_many_devices_on_one_session_lose_no_accepted_event(api: TestClient, start: Start) -> None:
    """Six devices send rising seqs, interleaved: what is accepted is saved, and only that."""
    sid = start(api)["id"]
    devices, events = 6, 15
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
