"""The event writer in a process of its own, for `backrub serve`.

The player's events are most of a busy server's work, and saving one — above all a feedback's
re-plan — costs more Python than answering its request. In the app's process the writer's thread
and the event loop take turns at Python's one lock (the GIL), so the server did one or the
other; here the writer (`EventSaver`, the same batches and answers) runs beside the loop, which
only reads requests and writes answers (bench/RESULTS.md).

The two talk over a pair of pipes in frames: an event's session id, sign-in cookie, body and
whether gzip is accepted one way; its reply the other (its answer's bytes, or "the route answers
it", or "over the limit"). Nothing else is shared: the writer process opens the database and the
catalogue itself, and keeps its own limit of each person's events (the route keeps its own for
the events it answers, so each event is counted once).

Should the writer process fail to start, or end early, the app saves the events in a thread of
its own from then on, as apps made without it do (events in flight when it ended are answered by
the app's route). Either is logged. It ends when the app's end closes its pipe, or when the
app's process dies (the pipe closes then too), after saving what it was sent.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import os
import select
import signal
import struct
import subprocess
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from backrub.catalogue_cache import cached_catalogue
from backrub.config import Settings
from backrub.store.engine import make_engine
from backrub.web.fast_events import BATCH, EventSaver, Job, Reply
from backrub.web.ratelimit import SlidingWindow

if TYPE_CHECKING:
    from collections.abc import Callable

    from backrub.web.fast_events import EventWriter

LOG = logging.getLogger(__name__)
# id, gzip accepted, the lengths of the session id, of the sign-in (NO_LOGIN: none), of the body.
REQUEST = struct.Struct("!QBHHI")
NO_LOGIN = 0xFFFF
# id, what the reply is (below), its flags, the length of its payload.
REPLY = struct.Struct("!QBBHI")
ANSWERED, ROUTE, OVER_LIMIT = 0, 1, 2
# The answer's extra headers, as flags.
GZIPPED, VARY = 1, 2
GZIP_HEADER = (b"content-encoding", b"gzip")
VARY_HEADER = (b"vary", b"Accept-Encoding")
# Not `-m`: the package (backrub.web) imports this module before it would run as __main__.
ENTRY = "import sys; from backrub.web.writer_process import main; main(sys.argv)"
# The writer process says it is ready with a reply of id 0.
READY = 0
# At the app's end, what it was sent is saved within this, or the process is stopped.
STOP_TIMEOUT_S = 30.0


class _Replies(asyncio.Protocol):
    """Reads the writer process's replies and hands each to the request waiting for it."""

    def __init__(self) -> None:
        # True once the app has closed the pipe: the writer process's end is expected.
        self.closing = False
        self.pending: dict[int, asyncio.Future[Reply]] = {}
        # True once the writer process has said it is ready.
        self.ready = False
        self.closed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._buffer = bytearray()

    def data_received(self, data: bytes) -> None:
        buffer = self._buffer
        buffer += data
        at, size = 0, len(buffer)
        while size - at >= REPLY.size:
            ident, kind, flags, status, length = REPLY.unpack_from(buffer, at)
            end = at + REPLY.size + length
            if end > size:
                break
            payload = bytes(buffer[at + REPLY.size : end])
            at = end
            if ident == READY:
                self.ready = True
                continue
            future = self.pending.pop(ident, None)
            if future is not None:
                _resolve(future, _reply(kind, flags, status, payload))
        del buffer[:at]

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.closing:
            LOG.error(
                "The event writer process %s; the app saves the events itself now",
                "has ended" if self.ready else "did not start",
            )
        for future in list(self.pending.values()):
            _resolve(future, None)  # the route answers it
        self.pending.clear()
        if not self.closed.done():
            self.closed.set_result(None)


def _resolve(future: asyncio.Future[Reply], reply: Reply) -> None:
    """Hand a request its reply, on its own event loop (there is one under `backrub serve`;
    a test client may run each request on another)."""
    loop = future.get_loop()
    if loop is asyncio.get_running_loop():
        if not future.done():  # done: the client went away
            future.set_result(reply)
    else:
        with contextlib.suppress(RuntimeError):  # that loop has closed: nobody is waiting
            loop.call_soon_threadsafe(_resolve, future, reply)


def _reply(kind: int, flags: int, status: int, payload: bytes) -> Reply:
    if kind == ROUTE:
        return None
    if kind == OVER_LIMIT:
        return int(payload)
    headers = []
    if flags & GZIPPED:
        headers.append(GZIP_HEADER)
    if flags & VARY:
        headers.append(VARY_HEADER)
    return status, payload, headers


class WriterProcess:
    """The app's side: `answer` and `close` as `EventWriter`'s. Should the writer process end
    early, the events from then on go to a writer made by `instead` (a thread of the app)."""

    def __init__(
        self,
        process: subprocess.Popen[bytes],
        sending: asyncio.WriteTransport,
        replies: _Replies,
        instead: Callable[[], EventWriter],
    ) -> None:
        self._process = process
        self._sending = sending
        self._replies = replies
        self._loop = asyncio.get_running_loop()
        self._idents = itertools.count(READY + 1)
        self._make_instead = instead
        self._instead: EventWriter | None = None
        self._instead_lock = threading.Lock()

    @classmethod
    async def start(
        cls,
        settings: Settings,
        *,
        accounts: bool,
        limit: SlidingWindow,
        instead: Callable[[], EventWriter],
    ) -> WriterProcess | None:
        """The writer process for `settings`' database, started; None if it could not be.
        `limit`: of each person's events, as the app's own (the writer process keeps
        a count of its own). `instead`: the writer for when the process has ended early."""
        loop = asyncio.get_running_loop()
        to_child, to_us = os.pipe()
        from_child, from_us = os.pipe()
        try:
            process = subprocess.Popen(  # noqa: S603  (this Python, this package's module)
                [sys.executable, "-c", ENTRY, str(to_child), str(from_us)],
                pass_fds=(to_child, from_us),
                stdin=subprocess.DEVNULL,
            )
        except OSError:
            LOG.exception(
                "The event writer process could not start; the app saves the events itself"
            )
            os.close(to_us)
            os.close(from_child)
            return None
        finally:
            os.close(to_child)
            os.close(from_us)
        sending, _ = await loop.connect_write_pipe(asyncio.Protocol, open(to_us, "wb", 0))
        replies = _Replies()
        await loop.connect_read_pipe(lambda: replies, open(from_child, "rb", 0))
        config = {
            "data_dir": str(settings.data_dir),
            "cache_dir": str(settings.cache_dir),
            # Through the pipe, not the command line: a URL may hold a password.
            "database_url": settings.database_url,
            "accounts": accounts,
            "limit": [limit.limit, limit.window],
        }
        data = json.dumps(config).encode()
        sending.write(struct.pack("!I", len(data)) + data)
        # Not waited for: the events sent meanwhile wait in the pipe for it (a second or so).
        return cls(process, sending, replies, instead)

    async def answer(self, job: Job) -> Reply:
        if self._replies.closed.done():  # it has ended: early, or with the app
            return None if self._replies.closing else await self._fallback().answer(job)
        try:
            session = job.session_id.encode()
            login = b"" if job.login is None else job.login.encode()
        except UnicodeEncodeError:
            return None  # not an id or a sign-in backrub made: the route says so
        if len(session) >= NO_LOGIN or len(login) >= NO_LOGIN:
            return None
        ident = next(self._idents)  # one step, so that two threads' loops cannot share one
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Reply] = loop.create_future()
        self._replies.pending[ident] = future
        if self._replies.closed.done():  # ended meanwhile (a test client's other thread)
            self._replies.pending.pop(ident, None)
            return None
        head = REQUEST.pack(
            ident,
            job.gzipped,
            len(session),
            NO_LOGIN if job.login is None else len(login),
            len(job.body),
        )
        frame = b"".join((head, session, login, job.body))
        if loop is self._loop:
            self._sending.write(frame)
        else:  # the pipe is written from the loop that opened it
            self._loop.call_soon_threadsafe(self._write, frame)
        try:
            return await future
        finally:
            self._replies.pending.pop(ident, None)

    @property
    def pid(self) -> int:
        return self._process.pid

    @property
    def running(self) -> bool:
        """False once the writer process has ended (its replies' pipe has closed)."""
        return not self._replies.closed.done()

    def _fallback(self) -> EventWriter:
        with self._instead_lock:  # one, whichever loop asks first
            if self._instead is None:
                self._instead = self._make_instead()
            return self._instead

    def _write(self, frame: bytes) -> None:
        if not self._sending.is_closing():
            self._sending.write(frame)

    async def close(self) -> None:
        """Save what was sent, then stop: the writer process ends once its pipe is closed."""
        self._replies.closing = True
        self._sending.close()
        try:
            await asyncio.to_thread(self._process.wait, STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            LOG.error("The event writer process did not stop; it is ended")
            self._process.kill()
            await asyncio.to_thread(self._process.wait)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(self._replies.closed), STOP_TIMEOUT_S)
        with self._instead_lock:
            instead, self._instead = self._instead, None
        if instead is not None:
            await instead.close()


# ---- the writer process --------------------------------------------------------------------


def _read_exactly(fd: int, size: int) -> bytes:
    data = b""
    while len(data) < size:
        more = os.read(fd, size - len(data))
        if not more:
            raise EOFError
        data += more
    return data


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _encode(ident: int, reply: Reply) -> bytes:
    if reply is None:
        return REPLY.pack(ident, ROUTE, 0, 0, 0)
    if isinstance(reply, int):
        payload = str(reply).encode()
        return REPLY.pack(ident, OVER_LIMIT, 0, 0, len(payload)) + payload
    status, payload, headers = reply
    flags = (GZIPPED if GZIP_HEADER in headers else 0) | (VARY if VARY_HEADER in headers else 0)
    return REPLY.pack(ident, ANSWERED, flags, status, len(payload)) + payload


def _jobs(buffer: bytearray) -> tuple[list[tuple[int, Job]], int]:
    """The whole requests at the start of `buffer` (at most a batch), and where they end."""
    found: list[tuple[int, Job]] = []
    at, size = 0, len(buffer)
    while len(found) < BATCH and size - at >= REQUEST.size:
        ident, gzipped, session_size, login_size, body_size = REQUEST.unpack_from(buffer, at)
        start = at + REQUEST.size
        login_at = start + session_size
        body_at = login_at + (0 if login_size == NO_LOGIN else login_size)
        end = body_at + body_size
        if end > size:
            break
        login = None if login_size == NO_LOGIN else buffer[login_at:body_at].decode()
        session = buffer[start:login_at].decode()
        found.append((ident, Job(session, bytes(buffer[body_at:end]), login, bool(gzipped))))
        at = end
    return found, at


def serve(incoming: int, outgoing: int) -> None:
    """Save the events the app sends on `incoming` until it closes it; replies on `outgoing`."""
    (length,) = struct.unpack("!I", _read_exactly(incoming, 4))
    config: dict[str, Any] = json.loads(_read_exactly(incoming, length))
    settings = Settings(
        data_dir=Path(config["data_dir"]),
        cache_dir=Path(config["cache_dir"]),
        database_url=config["database_url"],
    )
    engine = make_engine(settings)
    saver = EventSaver(
        cached_catalogue(settings.cache_dir),
        engine,
        accounts=bool(config["accounts"]),
        limit=SlidingWindow(*config["limit"]),
    )
    try:
        _write_all(outgoing, REPLY.pack(READY, ANSWERED, 0, 0, 0))
        buffer = bytearray()
        ended = False
        while True:
            found, used = _jobs(buffer)
            if not found:
                if ended:
                    return
                data = os.read(incoming, 1 << 20)  # waits for the next event
                ended = not data
                buffer += data
                # What else has come meanwhile joins this batch.
                while not ended and select.select([incoming], [], [], 0)[0]:
                    data = os.read(incoming, 1 << 20)
                    ended = not data
                    buffer += data
                continue
            del buffer[:used]
            replies = saver.replies([job for _, job in found])
            out = b"".join(_encode(ident, r) for (ident, _), r in zip(found, replies, strict=True))
            _write_all(outgoing, out)
    finally:
        saver.close()
        engine.dispose()


def main(argv: list[str]) -> None:
    # Ctrl-C in a terminal reaches the whole process group: the app ends this process, by
    # closing its pipe, once what it was sent is saved.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    with contextlib.suppress(EOFError, BrokenPipeError):
        serve(int(argv[1]), int(argv[2]))
