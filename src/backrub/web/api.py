"""The JSON API under /api/v1 that the pages use (docs/web.md is the contract).

Thin: each route validates its input (schemas.py), turns it into core values (inputs.py), calls
the service (backrub.service; the player's events: backrub.service.events), and answers with
plain data.
Errors are turned into sentences by errors.py.

No `from __future__ import annotations` here: FastAPI reads the route annotations at run time.
"""

import json
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Response

from backrub import service
from backrub.core.export import plan_as_dict, record_as_dict, verdict_as_dict
from backrub.service import events
from backrub.web import event_answer, history
from backrub.web.deps import (
    CatalogueDep,
    EventQuotaDep,
    RuntimeDep,
    SessionQuotaDep,
    StoreDep,
    UserDep,
)
from backrub.web.inputs import findings, plan_request, player_event
from backrub.web.schemas import (
    Deleted,
    ErrorOut,
    EventAnswer,
    EventBody,
    EventSaved,
    FinishBody,
    PlanBody,
    ReminderQuery,
    SafetyBody,
    SessionBody,
    SessionList,
    SessionView,
    StopOut,
    VerdictOut,
)
from backrub.web.views import session_view

PREFIX = "/api/v1"
JSON = "application/json"

# What any route may answer, whatever it does (the other routers of the API share it).
COMMON: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorOut, "description": "The request body could not be read"},
    401: {"model": ErrorOut, "description": "Accounts are on and this browser is not signed in"},
    403: {"model": ErrorOut, "description": "Missing CSRF token, or another site's request"},
    413: {"model": ErrorOut, "description": "The request body is too large"},
    422: {"model": ErrorOut, "description": "The input is not allowed; the sentence says why"},
}
router = APIRouter(prefix=PREFIX, responses=COMMON)
NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorOut, "description": "No such session for this profile"}
}
NEW_SESSIONS: dict[int | str, dict[str, Any]] = {
    429: {"model": ErrorOut, "description": "Too many new sessions for one person (accounts on)"}
}
TOO_MANY: dict[int | str, dict[str, Any]] = {
    429: {"model": ErrorOut, "description": "Too many events for one person (accounts on)"}
}
STOPPED: dict[int | str, dict[str, Any]] = {
    409: {"model": StopOut, "description": "The safety check says stop"}
}
ENDED: dict[int | str, dict[str, Any]] = {
    409: {"model": ErrorOut, "description": "The session has already ended"}
}


def _now() -> datetime:
    return datetime.now(UTC)


@router.get("/catalogue", responses={200: {"content": {JSON: {}}}})
async def get_catalogue(rt: RuntimeDep) -> Response:
    """Regions (with their shapes on the back map), techniques (with their motion), the safety
    questions, the set-up checklist, the guide's facts, and the pressure words."""
    return Response(rt.catalogue_json, media_type=JSON)


@router.post("/safety", response_model=VerdictOut)
async def check_safety(body: SafetyBody, catalogue: CatalogueDep) -> dict[str, Any]:
    """The verdict on what applies: clear, caution (what changes) or stop (why)."""
    return verdict_as_dict(service.verdict_for(catalogue, findings(catalogue, body.findings)))


@router.post("/plans", response_model=dict[str, Any], responses=STOPPED)
def make_plan(body: PlanBody, catalogue: CatalogueDep, store: StoreDep) -> dict[str, Any]:
    """The plan a session would follow (as `backrub plan --json`); none for a stop verdict."""
    plan, _ = service.plan(catalogue, store, plan_request(body), findings(catalogue, body.findings))
    return plan_as_dict(catalogue, plan)


@router.post(
    "/sessions",
    status_code=201,
    response_model=SessionView,
    responses={**STOPPED, **NEW_SESSIONS},
    dependencies=[SessionQuotaDep],
)
def create_session(body: SessionBody, catalogue: CatalogueDep, store: StoreDep) -> dict[str, Any]:
    """Plan and save a new session, ready to play; refused for a stop verdict."""
    live = service.start(
        catalogue,
        store,
        plan_request(body),
        findings(catalogue, body.findings),
        tension_before=body.tension_before,
        now=_now(),
    )
    return session_view(live)


@router.get("/sessions", response_model=SessionList)
def list_sessions(store: StoreDep) -> dict[str, Any]:
    """Every session of this profile, newest first."""
    return {"sessions": [record_as_dict(r) for r in service.history(store)]}


@router.get("/sessions/{session_id}", response_model=SessionView, responses=NOT_FOUND)
def get_session(session_id: str, catalogue: CatalogueDep, store: StoreDep) -> dict[str, Any]:
    """A session as the player resumes it: where it was, paused."""
    return session_view(service.load(catalogue, store, session_id))


@router.post(
    "/sessions/{session_id}/events",
    response_model=EventAnswer | EventSaved,
    responses={**NOT_FOUND, **TOO_MANY},
    dependencies=[EventQuotaDep],
)
def post_event(
    session_id: str, body: EventBody, catalogue: CatalogueDep, store: StoreDep
) -> Response:
    """Apply one of the player's events at the active time it happened. A progress save, pause
    or resume answers small (`EventSaved`); a skip, extend or feedback answers with the new
    timeline (`EventAnswer`), as does an event not newer than the saved state, which is ignored
    (`accepted: false`)."""
    outcome = events.apply_event(catalogue, store, session_id, player_event(body))
    # The models describe the answer (OpenAPI) and tests check answers by them; the answer is
    # sent as made, not filtered through them again.
    return Response(event_answer.answer_json(outcome), media_type=JSON)


@router.post(
    "/sessions/{session_id}/finish",
    response_model=SessionView,
    responses={**NOT_FOUND, **ENDED},
)
def finish_session(
    session_id: str, body: FinishBody, catalogue: CatalogueDep, store: StoreDep
) -> dict[str, Any]:
    """End the session, finished or stopped early, with the tension after."""
    live = service.finish(
        catalogue,
        store,
        session_id,
        active=body.active,
        stopped=body.stopped,
        tension_after=body.tension_after,
        note=body.note,
        now=_now(),
    )
    return session_view(live)


@router.get("/stats", response_model=dict[str, Any])
def get_stats(store: StoreDep) -> dict[str, Any]:
    """What helps, the trend, the streak and the next session (as `backrub stats --json`)."""
    return history.stats(store)


@router.get("/export", responses={200: {"content": {JSON: {}}}})
def export_data(store: StoreDep, rt: RuntimeDep, user: UserDep) -> Response:
    """Everything stored about this profile, as `backrub export` writes it; with accounts on,
    the account too (`account`)."""
    data = service.export(store)
    if user is not None:
        data["account"] = rt.account_service().export(user)
    text = json.dumps(data, indent=2, ensure_ascii=False) + "\n"
    return Response(
        text.encode(),
        media_type=JSON,
        headers={"Content-Disposition": 'attachment; filename="backrub-export.json"'},
    )


@router.delete("/sessions/{session_id}", status_code=204, responses=NOT_FOUND)
def delete_session(session_id: str, store: StoreDep) -> Response:
    """Delete one session and everything about it."""
    service.delete(store, session_id)
    return Response(status_code=204)


@router.delete("/data", response_model=Deleted)
def delete_data(store: StoreDep) -> dict[str, Any]:
    """Delete every session of this profile and everything about them."""
    return {"deleted": service.forget(store)}


@router.get("/reminders.ics", responses={200: {"content": {"text/calendar": {}}}})
def get_reminders(
    query: Annotated[ReminderQuery, Query()], catalogue: CatalogueDep, store: StoreDep
) -> Response:
    """Recurring calendar reminders (.ics), from the suggested next session on."""
    return Response(
        history.reminders(catalogue, store, query),
        media_type="text/calendar",
        headers={"Content-Disposition": 'attachment; filename="backrub.ics"'},
    )
