"""The player's events, answered without the framework's per-request machinery.

`POST /api/v1/sessions/{id}/events` is the call a player makes all session long (every step,
every 15 s, every feedback), so its cost decides how many people one process can serve. Through
FastAPI most of that cost was the framework's own (routing, dependency solving, the thread-pool
hop, the middleware chain), not backrub's work (bench/RESULTS.md).

This plain ASGI middleware answers the event route itself when it can answer it exactly as the
route would: a well-formed body (the route's own model validates it), a signed-in person within
their event limit (accounts on), and an event the store applies. Anything else — a body the model
refuses, no login, over the limit, no such session, any failure — is handed to the FastAPI route
with the body replayed, so every error answer has one source (errors.py) and the route stays
the contract the OpenAPI schema describes. A replayed event is safe to apply again: the seq
rule turns a repeat into `accepted: false`.

Sits inside `SecurityMiddleware` (Host, CSRF and Origin are checked before it; its headers are
added to its answers) and outside all of FastAPI's own middleware and the gzip middleware (it
compresses a large answer itself): see `BackrubApp` in app.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import json
import logging
import queue
import re
import threading
from typing import TYPE_CHECKING, Any, NamedTuple

import orjson
from pydantic import ValidationError
from starlette.datastructures import Headers
from starlette.middleware.gzip import GZipMiddleware
from starlette.requests import cookie_parser

from backrub.store.engine import Held, writer_engine
from backrub.web import sessions
from backrub.web.accounts import LOGIN_COOKIE
from backrub.web.deps import LOCAL_OWNER
from backrub.web.schemas import EventBody

if TYPE_CHECKING:
    from starlette.types import ASGIApp, Message, Receive, Scope, Send

    from backrub.store.accounts import User
    from backrub.web.deps import Runtime

LOG = logging.getLogger(__name__)
EVENTS_PATH = re.compile(r"/api/v1/sessions/([^/]+)/events")
JSON_TYPE = re.compile(r"application/json\s*(;.*)?", re.IGNORECASE)
# As the gzip middleware: answers below this size are sent as they are.
GZIP_MINIMUM = 1024
# zlib's default level, for pages and scripts: almost as small as at 9, for less of a core.
GZIP_LEVEL = 6
# An event's full answer (about 9 KB of JSON) at level 1 is 1.7 KB where 6 makes 1.5 KB, in
# half the time.
EVENT_GZIP_LEVEL = 1
# An event's answer is compressed only from this size: the whole session, when an event is
# refused (6–15 KB). The answer to an accepted feedback, skip or extend (0.3–3 KB: the fields of
# the steps it changed) goes as it is: compressing it cost 8 % of a feedback's CPU time, to save
# a phone 1–2 KB a few times a session (bench/RESULTS.md). The route answers the same (app.py).
EVENT_GZIP_MINIMUM = 4096
# The most events one transaction saves; more wait for the next.
BATCH = 64

# Status, body, and the headers besides content-type and -length.
Answer = tuple[int, bytes, list[tuple[bytes, bytes]]]
# An event saved whose answer could not be made (only a fault in backrub can do that): it must
# not go to the route, which would answer `accepted: false` and so have the page send it again.
SAVED_BUT_FAULT = (
    "Something went wrong inside backrub after your change was saved; reload the page to "
    "continue where the session is."
)


class _Work(NamedTuple):
    session_id: str
    event: EventBody
    login: str | None
    gzipped: bool
    future: asyncio.Future[Answer | None]


class EventWriter:
    """One thread that saves the events waiting when it is free, in one transaction (group
    commit: store/events.py), and hands each request its answer's bytes.

    Under load the events of many players share a commit and one wake-up of the event loop;
    alone, an event is saved at once. None for an answer: the route must answer that event.
    """

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        if runtime.engine is None:
            raise RuntimeError("the event writer starts once the database is open")
        # Only this writer's thread saves through it, on one connection held between batches.
        self._engine = writer_engine(runtime.engine)
        self._db = Held(self._engine)
        self._remembered = sessions.Remembered()
        self._queue: queue.SimpleQueue[_Work | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="backrub-events", daemon=True)
        self._thread.start()

    async def answer(
        self, session_id: str, event: EventBody, login: str | None, gzipped: bool
    ) -> Answer | None:
        future: asyncio.Future[Answer | None] = asyncio.get_running_loop().create_future()
        self._queue.put(_Work(session_id, event, login, gzipped, future))
        return await future

    def close(self) -> None:
        """Save what is waiting, then stop."""
        self._queue.put(None)
        self._thread.join()
        if self._engine is not self.runtime.engine:
            self._engine.dispose()

    def _run(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                self._db.close()
                return
            batch = [first]
            while len(batch) < BATCH:
                try:
                    more = self._queue.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    self._queue.put(None)  # stop after this batch
                    break
                batch.append(more)
            counted: list[str] = []
            try:
                answers = self._answers(batch, counted)
            except Exception:  # the route answers each again, with its one error source
                answers = [None] * len(batch)
            # An event the route answers is counted there: not twice against a person's limit.
            for owner, answer in zip(counted, answers, strict=False):
                if answer is None and owner:
                    self.runtime.event_limit.forget_one(owner)
            _settle(batch, answers)

    def _answers(self, batch: list[_Work], counted: list[str]) -> list[Answer | None]:
        """The answers' bytes; None for an event the route must answer. `counted` gets, for each
        event in turn, the person it was counted against ("" for none)."""
        rt = self.runtime
        if rt.engine is None:  # the app is shutting down
            return [None] * len(batch)
        answers: list[Answer | None] = [None] * len(batch)
        ready: list[int] = []
        events: list[tuple[str, str, EventBody]] = []
        # Whose events they are: with accounts on, the batch's sign-ins looked up at once.
        users = rt.account_service().users_for(w.login for w in batch) if rt.accounts else {}
        for n, work in enumerate(batch):
            owner = self._owner(work.login, users)
            counted.append(owner if rt.accounts and owner is not None else "")
            if owner is not None:
                ready.append(n)
                events.append((owner, work.session_id, work.event))
        if not events:
            return answers
        outcomes = sessions.apply_events(rt.catalogue, self._db, events, self._remembered)
        for n, outcome in zip(ready, outcomes, strict=True):
            if not isinstance(outcome, sessions.Outcome):
                continue  # not applied: the route answers it
            try:
                answers[n] = _encoded(sessions.answer_json(outcome), batch[n].gzipped)
            except Exception:
                LOG.exception("The answer to a saved event could not be made")
                answers[n] = (500, orjson.dumps({"error": SAVED_BUT_FAULT}), [])
        return answers

    def _owner(self, login: str | None, users: dict[str, User]) -> str | None:
        """Whose event it is: the local profile, or the signed-in person (`users`: by sign-in)
        within their limit; None when the route must answer (not signed in, over the limit)."""
        rt = self.runtime
        if not rt.accounts:
            return LOCAL_OWNER
        user = users.get(login or "")
        if user is None or not rt.event_limit.allow(user.id):
            return None
        return user.id


def _settle(batch: list[_Work], answers: list[Answer | None]) -> None:
    """Hand the answers to the requests, in one wake-up of each event loop."""
    by_loop: dict[asyncio.AbstractEventLoop, list[tuple[asyncio.Future[Answer | None], Any]]] = {}
    for work, answer in zip(batch, answers, strict=True):
        by_loop.setdefault(work.future.get_loop(), []).append((work.future, answer))
    for loop, pairs in by_loop.items():
        with contextlib.suppress(RuntimeError):  # that loop has closed: nobody is waiting
            loop.call_soon_threadsafe(_resolve, pairs)


def _resolve(pairs: list[tuple[asyncio.Future[Answer | None], Any]]) -> None:
    for future, answer in pairs:
        if not future.done():  # the client went away meanwhile
            future.set_result(answer)


def _encoded(payload: bytes, gzipped: bool) -> Answer:
    """The headers as the gzip middleware sends them: `Vary` on every answer large enough to
    be compressed, whether it was or not."""
    if len(payload) < EVENT_GZIP_MINIMUM:
        return 200, payload, []
    if gzipped:
        payload = gzip.compress(payload, EVENT_GZIP_LEVEL, mtime=0)
        return 200, payload, [(b"content-encoding", b"gzip"), (b"vary", b"Accept-Encoding")]
    return 200, payload, [(b"vary", b"Accept-Encoding")]


class GZipByPath:
    """The gzip middleware, with the events route's own threshold and level, so that the route
    compresses an event's answer exactly when the fast path does (`_encoded`)."""

    def __init__(self, app: ASGIApp) -> None:
        self.pages = GZipMiddleware(app, minimum_size=GZIP_MINIMUM, compresslevel=GZIP_LEVEL)
        self.events = GZipMiddleware(
            app, minimum_size=EVENT_GZIP_MINIMUM, compresslevel=EVENT_GZIP_LEVEL
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and EVENTS_PATH.fullmatch(scope["path"]):
            await self.events(scope, receive, send)
        else:
            await self.pages(scope, receive, send)


class EventFastPath:
    def __init__(self, app: ASGIApp, *, runtime: Runtime, max_body: int) -> None:
        self.app = app
        self.runtime = runtime
        self.max_body = max_body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        match = None
        if scope["type"] == "http" and scope["method"] == "POST":
            match = EVENTS_PATH.fullmatch(scope["path"])
        if match is None:
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        read, body = await _read_body(receive, self.max_body)
        answer = None
        if body is not None and JSON_TYPE.fullmatch(headers.get("content-type", "")):
            event = _event(body)
            if event is not None and self.runtime.engine is not None:
                login = cookie_parser(headers.get("cookie", "")).get(LOGIN_COOKIE)
                gzipped = "gzip" in headers.get("accept-encoding", "")
                writer = self.runtime.event_writer
                if writer is not None:  # None: the app's lifespan has not started, or has ended
                    answer = await writer.answer(match.group(1), event, login, gzipped)
        if answer is None:
            await self.app(scope, _replay(read, receive), send)
            return
        status, payload, extra = answer
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(payload)).encode()),
                    *extra,
                ],
            }
        )
        await send({"type": "http.response.body", "body": payload})


def _event(body: bytes) -> EventBody | None:
    """The body as the route's model reads it (FastAPI: `json.loads`, then the model); None
    when the model refuses it, so that the route says why."""
    try:
        return EventBody.model_validate(json.loads(body))
    except (ValueError, ValidationError, RecursionError):  # nested too deep for the parser
        return None


async def _read_body(receive: Receive, limit: int) -> tuple[list[Message], bytes | None]:
    """The messages read, and the whole body; None for the body when it is over `limit` or the
    client went away (the route then says so, or notices)."""
    read: list[Message] = []
    parts: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        read.append(message)
        if message["type"] != "http.request":
            return read, None
        chunk: bytes = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return read, None
        parts.append(chunk)
        if not message.get("more_body", False):
            return read, b"".join(parts)


def _replay(read: list[Message], receive: Receive) -> Receive:
    """A `receive` that gives the messages already read again, then reads on."""
    pending = list(read)

    async def replay() -> Message:
        if pending:
            return pending.pop(0)
        return await receive()

    return replay
