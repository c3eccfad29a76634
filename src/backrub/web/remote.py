"""The receiver's remote: routes for the giver's player (open a code, wait for messages) and for
the second phone (the remote's page and its feedback), and the code's QR image.

The giver's routes are the owner's, like the rest of /api/v1. The remote's routes (`/r…` and
`/api/v1/remote/…`) need no login: the code is the capability, and it reaches one live session's
feedback and nothing else. Nothing is kept in the process: messages go through the database, and
the player's long poll reads it every quarter second, so the two phones may be served by
different app processes (docs/web.md, "Receiver's remote").

No `from __future__ import annotations` here: FastAPI reads the route annotations at run time.
"""

import io
from datetime import UTC, datetime
from typing import Annotated, Any, Literal
from urllib.parse import quote

import anyio
import segno
from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from backrub.core.models import FeedbackKind, Mode
from backrub.store.remote import (
    GUESS_WINDOW,
    MESSAGE_WINDOW,
    NoSuchRemote,
    RemoteError,
    RemoteStore,
    TooManyGuesses,
    TooManyMessages,
    normalise_code,
)
from backrub.web.api import COMMON
from backrub.web.deps import DATABASE_NOT_OPEN, RuntimeDep, StoreDep
from backrub.web.pages import render
from backrub.web.schemas import MAX_SEQ, Body, ErrorOut

API = "/api/v1"
# The long poll: how long it may wait at most, by default, and how often it reads the database.
MAX_WAIT = 25
DEFAULT_WAIT = 20
POLL_SECONDS = 0.25

router = APIRouter(responses=COMMON)

NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorOut, "description": "No such session for this profile"}
}
NO_CODE: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorOut, "description": "No live session has this code"},
    429: {"model": ErrorOut, "description": "Too many wrong codes from this client"},
}


# ---- what goes in and out ---------------------------------------------------------------------


class FeedbackIn(Body):
    kind: FeedbackKind


class MessagesQuery(BaseModel):
    # Query strings are text: numbers are parsed from them, so this one is not strict.
    model_config = ConfigDict(extra="forbid")

    after: int = Field(default=0, ge=0, le=MAX_SEQ)
    wait: int = Field(default=DEFAULT_WAIT, ge=0, le=MAX_WAIT)


class RemoteOut(BaseModel):
    code: str
    # The remote page's address, as the giver's browser reached this server.
    url: str
    # The path of the QR code of `url` (SVG).
    qr: str
    expires_at: str
    # The newest message sent so far (0 for none): the player waits for those after it.
    last: int


class MessageOut(BaseModel):
    id: int
    kind: FeedbackKind
    sent_at: str


class InboxOut(BaseModel):
    messages: list[MessageOut]
    # The highest id in `messages`, or `after` when there are none.
    last: int
    # False once the session has ended: the player stops asking.
    active: bool


class RemoteStatusOut(BaseModel):
    status: Literal["active", "ended"]
    mode: Mode


class SentOut(BaseModel):
    id: int


# ---- helpers ----------------------------------------------------------------------------------


def _now() -> datetime:
    return datetime.now(UTC)


async def get_remotes(rt: RuntimeDep) -> RemoteStore:
    if rt.engine is None:
        raise HTTPException(503, DATABASE_NOT_OPEN)
    return RemoteStore(rt.engine)


RemotesDep = Annotated[RemoteStore, Depends(get_remotes)]


def _client(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def _status_of(error: RemoteError) -> int:
    if isinstance(error, NoSuchRemote):
        return 404
    if isinstance(error, TooManyGuesses | TooManyMessages):
        return 429
    return 409


def _retry_after(error: RemoteError) -> dict[str, str]:
    if isinstance(error, TooManyGuesses):
        return {"Retry-After": str(int(GUESS_WINDOW.total_seconds()))}
    if isinstance(error, TooManyMessages):
        return {"Retry-After": str(int(MESSAGE_WINDOW.total_seconds()))}
    return {}


def _refusal(error: RemoteError) -> JSONResponse:
    return JSONResponse({"error": error.message}, _status_of(error), headers=_retry_after(error))


def remote_url(request: Request, code: str) -> str:
    # The Host header has passed the security middleware's check.
    host = request.headers.get("host", request.url.netloc)
    return f"{request.url.scheme}://{host}/r/{code}"


# ---- the giver's player (the owner's) ---------------------------------------------------------


@router.post(
    f"{API}/sessions/{{session_id}}/remote",
    response_model=RemoteOut,
    responses={
        **NOT_FOUND,
        409: {"model": ErrorOut, "description": "Not an active partner session"},
    },
)
def open_remote(request: Request, session_id: str, store: StoreDep) -> dict[str, Any]:
    """The receiver's remote for an active partner session: a six-character code (the same
    one while it lasts: 12 hours, or until the session ends), the remote's address and the
    path of its QR code."""
    opened = RemoteStore(store.engine).open(owner=store.owner, session_id=session_id, now=_now())
    return {
        "code": opened.code,
        "url": remote_url(request, opened.code),
        "qr": f"/r/{opened.code}/qr.svg",
        "expires_at": opened.expires_at.isoformat(),
        "last": opened.last,
    }


# Open long polls per owner in this process (see remote_messages).
_open_polls: dict[str, int] = {}
MAX_POLLS = 4
TOO_MANY_POLLS = "Too many open waits for the remote from this profile; close other players."


def _too_many_polls() -> Any:
    return JSONResponse({"error": TOO_MANY_POLLS}, 429, headers={"Retry-After": "5"})


@router.get(
    f"{API}/sessions/{{session_id}}/remote/messages",
    response_model=InboxOut,
    responses={
        **NOT_FOUND,
        429: {"model": ErrorOut, "description": "Too many open waits from this profile"},
    },
)
async def remote_messages(
    request: Request, session_id: str, query: Annotated[MessagesQuery, Query()], store: StoreDep
) -> Any:
    """What the remote sent after message `after`: at once if there is some, otherwise as soon
    as it arrives, waiting up to `wait` seconds (then an empty list). Answers at once when the
    session has ended (`active: false`)."""
    remotes = RemoteStore(store.engine)
    deadline = anyio.current_time() + query.wait
    # A player keeps one poll open; a few more (a second tab) are fine, hundreds would take the
    # thread pool from everyone's players. Counted per process: this route runs on its loop.
    if _open_polls.get(store.owner, 0) >= MAX_POLLS:
        return _too_many_polls()
    _open_polls[store.owner] = _open_polls.get(store.owner, 0) + 1
    try:
        while True:
            inbox = await run_in_threadpool(
                remotes.messages, owner=store.owner, session_id=session_id, after=query.after
            )
            left = deadline - anyio.current_time()
            if inbox.messages or not inbox.active or left <= 0 or await request.is_disconnected():
                break
            await anyio.sleep(min(POLL_SECONDS, left))
    finally:
        _open_polls[store.owner] -= 1
        if not _open_polls[store.owner]:
            del _open_polls[store.owner]
    messages = [
        {"id": m.id, "kind": m.kind, "sent_at": m.sent_at.isoformat()} for m in inbox.messages
    ]
    last = max((m.id for m in inbox.messages), default=query.after)
    return {"messages": messages, "last": last, "active": inbox.active}


# ---- the remote (no login: the code is the key) -----------------------------------------------


@router.get(f"{API}/remote/{{code}}", response_model=RemoteStatusOut, responses=NO_CODE)
def remote_status(request: Request, code: str, remotes: RemotesDep) -> Any:
    """Whether the session behind the code is still active, and its mode; nothing else."""
    try:
        target = remotes.resolve(code, client=_client(request), now=_now())
    except RemoteError as error:
        return _refusal(error)
    return {"status": "active" if target.active else "ended", "mode": target.mode}


@router.post(
    f"{API}/remote/{{code}}/feedback",
    status_code=202,
    response_model=SentOut,
    responses={
        **NO_CODE,
        409: {"model": ErrorOut, "description": "The session has ended"},
        429: {"model": ErrorOut, "description": "Too many wrong codes, or too many messages"},
    },
)
def remote_feedback(request: Request, code: str, body: FeedbackIn, remotes: RemotesDep) -> Any:
    """Send "good", "softer", "firmer" or "tender" to the giver's player (at most 20 every
    10 seconds)."""
    try:
        message_id = remotes.post(code, body.kind, client=_client(request), now=_now())
    except RemoteError as error:
        return _refusal(error)
    return {"id": message_id}


# ---- pages ------------------------------------------------------------------------------------


@router.get("/r", include_in_schema=False)
async def remote_join(request: Request, rt: RuntimeDep, code: str | None = None) -> Response:
    """Type the code. The form is sent here as `?code=…` (it works without scripts too)."""
    if code is not None and code.strip():
        canonical = normalise_code(code) or "".join(code.split()).upper()[:16]
        return RedirectResponse(f"/r/{quote(canonical, safe='')}", status_code=303)
    return render(request, rt, "remote_join")


@router.get("/r/{code}", include_in_schema=False)
def remote_page(request: Request, code: str, rt: RuntimeDep, remotes: RemotesDep) -> Response:
    """The remote: four big buttons, or a clear sentence when the code leads nowhere."""
    try:
        target = remotes.resolve(code, client=_client(request), now=_now())
    except RemoteError as error:
        return render(
            request,
            rt,
            "remote",
            status_code=_status_of(error),
            code=normalise_code(code) or "",
            state="throttled" if isinstance(error, TooManyGuesses) else "unknown",
            message=error.message,
        )
    state = "active" if target.active else "ended"
    message = "" if target.active else "This session has ended; thank you, and rest a moment."
    return render(request, rt, "remote", code=normalise_code(code), state=state, message=message)


@router.get("/r/{code}/qr.svg", include_in_schema=False)
def remote_qr(request: Request, code: str, remotes: RemotesDep) -> Response:
    """The remote's address as a QR code, dark on light whatever the theme (scanners need it)."""
    try:
        remotes.resolve(code, client=_client(request), now=_now())
    except RemoteError as error:
        raise HTTPException(_status_of(error), error.message, _retry_after(error)) from error
    canonical = normalise_code(code) or code
    out = io.BytesIO()
    segno.make(remote_url(request, canonical), error="m").save(
        out,
        kind="svg",
        border=2,
        dark="#1f2630",
        light="#fbf8f3",
        xmldecl=False,
        omitsize=True,
        title="The remote's address as a QR code",
    )
    return Response(
        out.getvalue(), media_type="image/svg+xml", headers={"Cache-Control": "no-store"}
    )
