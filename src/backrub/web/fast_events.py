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
from typing import TYPE_CHECKING, NamedTuple

import orjson
from pydantic import ValidationError
from starlette.datastructures import Headers
from starlette.middleware.gzip import GZipMiddleware
from starlette.requests import cookie_parser

from backrub.core.errors import BackrubError
from backrub.store.engine import Held, writer_engine
from backrub.web import sessions
from backrub.web.accounts import LOGIN_COOKIE, Accounts
from backrub.web.deps import LOCAL_OWNER, OVER_LIMIT
from backrub.web.schemas import EventBody

if TYPE_CHECKING:
    from collections.abc import Sequence

    from sqlalchemy import Engine
    from starlette.types import ASGIApp, Message, Receive, Scope, Send

    from backrub.core.catalogue import Catalogue
    from backrub.store.accounts import User
    from backrub.web.deps import Runtime
    from backrub.web.ratelimit import SlidingWindow

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
# What the writer makes of an event: its answer; or None, for the route to answer it; or, for
# a person over their limit of events, the seconds until they may send again (the route then
# answers 429 from that: deps.OVER_LIMIT).
Reply = Answer | int | None
# An event saved whose answer could not be made (only a fault in backrub can do that): it must
# not go to the route, which would answer `accepted: false` and so have the page send it again.
SAVED_BUT_FAULT = (
    "Something went wrong inside backrub after your change was saved; reload the page to "
    "continue where the session is."
)


class Job(NamedTuple):
    """An event as the fast path read it: its session, its body as sent (the writer checks it
    with the route's own model), the sign-in cookie, and whether gzip is accepted."""

    session_id: str
    body: bytes
    login: str | None
    gzipped: bool


class _Work(NamedTuple):
    job: Job
    future: asyncio.Future[Reply]


class EventSaver:
    """The events waiting, saved in one transaction (group commit: store/events.py), and each
    one's reply: the work of the writer, wherever it runs — a thread of the app's process
    (`EventWriter`) or a process of its own (writer_process.py). Used by one thread."""

    def __init__(
        self, catalogue: Catalogue, engine: Engine, *, accounts: bool, limit: SlidingWindow
    ) -> None:
        self.catalogue = catalogue
        self.accounts = accounts
        self.limit = limit
        self._accounts = Accounts(engine)
        self._main = engine
        # One connection held between batches (and, on PostgreSQL, an engine of its own).
        self._engine = writer_engine(engine)
        self._db = Held(self._engine)
        self._remembered = sessions.Remembered()

    def close(self) -> None:
        self._db.close()
        if self._engine is not self._main:
            self._engine.dispose()

    def replies(self, jobs: Sequence[Job]) -> list[Reply]:
        counted: list[str] = []
        try:
            replies = self._replies(jobs, counted)
        except Exception as exc:  # the route answers each again, with its one error source
            # The store's own failures (the database busy or gone) are one sentence; anything
            # else is a fault in backrub, worth its traceback.
            known = isinstance(exc, BackrubError)
            LOG.warning("Events handed to the route: %s", exc, exc_info=not known)
            replies = [None] * len(jobs)
        # An event the route answers is counted there: not twice against a person's limit.
        for owner, reply in zip(counted, replies, strict=False):
            if reply is None and owner:
                self.limit.forget_one(owner)
        return replies

    def _replies(self, jobs: Sequence[Job], counted: list[str]) -> list[Reply]:
        """The answers' bytes; None for an event the route must answer. `counted` gets, for each
        event in turn, the person it was counted against ("" for none)."""
        replies: list[Reply] = [None] * len(jobs)
        ready: list[int] = []
        events: list[tuple[str, str, EventBody]] = []
        # Whose events they are: with accounts on, the batch's sign-ins looked up at once.
        users = self._accounts.users_for(j.login for j in jobs) if self.accounts else {}
        for n, job in enumerate(jobs):
            event = _event(job.body)
            owner = self._owner(job.login, users) if event is not None else None
            counted.append(owner if self.accounts and isinstance(owner, str) else "")
            if isinstance(owner, int):
                replies[n] = owner
            elif owner is not None and event is not None:
                ready.append(n)
                events.append((owner, job.session_id, event))
        if not events:
            return replies
        outcomes = sessions.apply_events(self.catalogue, self._db, events, self._remembered)
        for n, outcome in zip(ready, outcomes, strict=True):
            if not isinstance(outcome, sessions.Outcome):
                continue  # not applied: the route answers it
            try:
                replies[n] = _encoded(sessions.answer_json(outcome), jobs[n].gzipped)
            except Exception:
                LOG.exception("The answer to a saved event could not be made")
                replies[n] = (500, orjson.dumps({"error": SAVED_BUT_FAULT}), [])
        return replies

    def _owner(self, login: str | None, users: dict[str, User]) -> str | int | None:
        """Whose event it is: the local profile, or the signed-in person (`users`: by sign-in)
        within their limit; past it, the seconds until they may send again; None when the
        route must answer (not signed in)."""
        if not self.accounts:
            return LOCAL_OWNER
        user = users.get(login or "")
        if user is None:
            return None
        if not self.limit.allow(user.id):
            return self.limit.retry_after(user.id)
        return user.id


class EventWriter:
    """A thread of the app's process that saves the events waiting when it is free
    (`EventSaver`), and hands each request its reply.

    Under load the events of many players share a commit and one wake-up of the event loop;
    alone, an event is saved at once.
    """

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        if runtime.engine is None:
            raise RuntimeError("the event writer starts once the database is open")
        self._saver = EventSaver(
            runtime.catalogue,
            runtime.engine,
            accounts=runtime.accounts,
            limit=runtime.event_limit,
        )
        self._queue: queue.SimpleQueue[_Work | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="backrub-events", daemon=True)
        self._thread.start()

    async def answer(self, job: Job) -> Reply:
        future: asyncio.Future[Reply] = asyncio.get_running_loop().create_future()
        self._queue.put(_Work(job, future))
        return await future

    async def close(self) -> None:
        """Save what is waiting, then stop."""
        self._queue.put(None)
        await asyncio.to_thread(self._thread.join)

    def _run(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                self._saver.close()
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
            jobs = [work.job for work in batch]
            if self.runtime.engine is None:  # the app is shutting down
                _settle(batch, [None] * len(batch))
            else:
                _settle(batch, self._saver.replies(jobs))


def _settle(batch: list[_Work], answers: Sequence[Reply]) -> None:
    """Hand the answers to the requests, in one wake-up of each event loop."""
    by_loop: dict[asyncio.AbstractEventLoop, list[tuple[asyncio.Future[Reply], Reply]]] = {}
    for work, answer in zip(batch, answers, strict=True):
        by_loop.setdefault(work.future.get_loop(), []).append((work.future, answer))
    for loop, pairs in by_loop.items():
        with contextlib.suppress(RuntimeError):  # that loop has closed: nobody is waiting
            loop.call_soon_threadsafe(_resolve, pairs)


def _resolve(pairs: list[tuple[asyncio.Future[Reply], Reply]]) -> None:
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
        answer: Reply = None
        if body is not None and JSON_TYPE.fullmatch(headers.get("content-type", "")):
            writer = self.runtime.event_writer
            if writer is not None:  # None: the app's lifespan has not started, or has ended
                login = cookie_parser(headers.get("cookie", "")).get(LOGIN_COOKIE)
                gzipped = "gzip" in headers.get("accept-encoding", "")
                answer = await writer.answer(Job(match.group(1), body, login, gzipped))
        if isinstance(answer, int):  # over the limit: the route says so (deps.event_quota)
            scope = {**scope, OVER_LIMIT: answer}
        if not isinstance(answer, tuple):
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
