"""The receiver's remote: a short code that lets a second phone send "softer", "firmer", "good"
or "tender" to one live partner session, and the giver's player reading what was sent.

Everything lives in the database (the `remotes`, `remote_messages` and `failed_logins` tables),
never in a process: the remote may post to one app process while the player polls another.
Every method is one transaction. The code is the capability: whoever holds it may send feedback
to that one session while it is active, and learn nothing else about it.
"""

from __future__ import annotations

import hashlib
import ipaddress
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, cast

from sqlalchemy import delete, func, insert, select

from backrub.core.models import FEEDBACK_KINDS
from backrub.store import validation as check
from backrub.store.engine import transaction
from backrub.store.errors import NoSuchSession, StoreError
from backrub.store.tables import FailedLoginRow, RemoteMessageRow, RemoteRow, SessionRow

if TYPE_CHECKING:
    from sqlalchemy import Connection, Engine

    from backrub.core.models import FeedbackKind, Mode, SessionStatus

# Six characters people can read aloud and type without confusing them: no 0/O, 1/I/L.
CODE_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"
CODE_LENGTH = 6
CODE_LIFETIME = timedelta(hours=12)
# Wrong codes a client may try in an hour before every code it tries is refused.
GUESSES_PER_HOUR = 30
GUESS_WINDOW = timedelta(hours=1)
# Messages one remote may send in a window (a finger resting on a button, a script).
MESSAGES_PER_WINDOW = 20
MESSAGE_WINDOW = timedelta(seconds=10)
# The most messages one read returns; the player asks again for the rest.
READ_LIMIT = 100
_KEY_PREFIX = "remote:"
_NEW_CODE_TRIES = 8


class RemoteError(StoreError):
    """Something the remote may not do; the sentence says why."""


class NoSuchRemote(RemoteError):
    """The code is unknown or has expired (the web answers 404)."""

    def __init__(self) -> None:
        super().__init__(
            "There is no live session with this code; check the six characters on the "
            "giver's screen."
        )


class RemoteClosed(RemoteError):
    """The session behind the code is not active, or not one a remote can join (409)."""


class TooManyGuesses(RemoteError):
    """This client has tried too many wrong codes within the hour (429)."""

    def __init__(self) -> None:
        super().__init__(
            f"Too many wrong codes from this device (at most {GUESSES_PER_HOUR} an hour); "
            "wait a while and try again."
        )


class TooManyMessages(RemoteError):
    """The remote is sending faster than the limit (429)."""

    def __init__(self) -> None:
        seconds = int(MESSAGE_WINDOW.total_seconds())
        super().__init__(
            f"That is a lot of taps: at most {MESSAGES_PER_WINDOW} every {seconds} seconds; "
            "wait a moment."
        )


@dataclass(frozen=True, slots=True)
class RemoteCode:
    """An open remote for a session, and the newest message it has sent so far."""

    code: str
    session_id: str
    expires_at: datetime
    last: int


@dataclass(frozen=True, slots=True)
class RemoteTarget:
    """What a remote may know about its session: whether it is active, and its mode."""

    session_id: str
    status: SessionStatus
    mode: Mode

    @property
    def active(self) -> bool:
        return self.status == "active"


@dataclass(frozen=True, slots=True)
class RemoteMessage:
    id: int
    kind: FeedbackKind
    sent_at: datetime


@dataclass(frozen=True, slots=True)
class RemoteInbox:
    """Messages after the id asked for, and whether the session is still active."""

    messages: tuple[RemoteMessage, ...]
    active: bool


def normalise_code(text: str) -> str | None:
    """A code as typed (any case, spaces or a dash) → its canonical form; None if it cannot be
    a code at all."""
    code = "".join(text.split()).replace("-", "").upper()
    if len(code) != CODE_LENGTH or any(c not in CODE_ALPHABET for c in code):
        return None
    return code


def client_key(address: str) -> str:
    """The `failed_logins` key for a client: a hash, so no address is kept. An IPv6 client is
    its /64 network: one home or phone holds a whole /64, so counting single addresses would
    give it 2^64 times the allowance."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        ip = None
    if ip is not None and ip.version == 6:
        address = str(ipaddress.ip_network(f"{ip}/64", strict=False))
    digest = hashlib.sha256(address.encode("utf-8", "replace")).hexdigest()
    return _KEY_PREFIX + digest[:32]


def _new_code() -> str:
    return "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))


class RemoteStore:
    """The remotes of every owner on one engine. Methods that touch a session's own data take
    its owner and check it; the others are reached by the code alone."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    # ---- the giver's side (owner-checked) --------------------------------------------------

    def open(self, *, owner: str, session_id: str, now: datetime) -> RemoteCode:
        """The code for an active partner session of `owner`: the one already open, or a new
        one valid for 12 hours. NoSuchSession for another owner's or an unknown session."""
        owner = check.owner(owner)
        now = check.moment("The time", now)
        with transaction(self.engine, write=True) as conn:
            row = conn.execute(
                select(SessionRow.status, SessionRow.mode)
                .where(SessionRow.id == session_id, SessionRow.owner == owner)
                .with_for_update()
            ).first()
            if row is None:
                raise NoSuchSession(session_id)
            if row.status != "active":
                raise RemoteClosed("This session has ended, so a remote can no longer join it.")
            if row.mode != "partner":
                raise RemoteClosed(
                    "The receiver's remote is for a partner's massage; this session is "
                    "massaging your own back."
                )
            conn.execute(
                delete(RemoteRow).where(
                    RemoteRow.session_id == session_id, RemoteRow.expires_at <= now
                )
            )
            current = conn.execute(
                select(RemoteRow.code, RemoteRow.expires_at)
                .where(RemoteRow.session_id == session_id)
                .order_by(RemoteRow.expires_at.desc())
                .limit(1)
            ).first()
            if current is not None:
                code, expires_at = current.code, current.expires_at
            else:
                code, expires_at = self._insert_code(conn, session_id, now)
            last = self._last_id(conn, session_id)
        return RemoteCode(code=code, session_id=session_id, expires_at=expires_at, last=last)

    def messages(
        self, *, owner: str, session_id: str, after: int, limit: int = READ_LIMIT
    ) -> RemoteInbox:
        """Messages to `owner`'s session with an id above `after`, oldest first."""
        owner = check.owner(owner)
        after = check.whole("after", after, 0)
        with transaction(self.engine, write=False) as conn:
            status = conn.execute(
                select(SessionRow.status).where(
                    SessionRow.id == session_id, SessionRow.owner == owner
                )
            ).scalar()
            if status is None:
                raise NoSuchSession(session_id)
            rows = conn.execute(
                select(RemoteMessageRow.id, RemoteMessageRow.kind, RemoteMessageRow.sent_at)
                .where(RemoteMessageRow.session_id == session_id, RemoteMessageRow.id > after)
                .order_by(RemoteMessageRow.id)
                .limit(limit)
            ).all()
        messages = tuple(
            RemoteMessage(id=r.id, kind=cast("FeedbackKind", r.kind), sent_at=r.sent_at)
            for r in rows
        )
        return RemoteInbox(messages=messages, active=status == "active")

    # ---- the receiver's side (the code is the key) -----------------------------------------

    def resolve(self, code: str, *, client: str, now: datetime) -> RemoteTarget:
        """The session behind `code`. A wrong or expired code counts against `client`:
        NoSuchRemote, or TooManyGuesses once it has tried too many (then even a right code is
        refused, so guessing on cannot tell a right one)."""
        with transaction(self.engine, write=True) as conn:
            target = self._target(conn, code, client=client, now=now)
        # Raised after the block: the wrong guess it counted is committed.
        if target is None:
            raise NoSuchRemote()
        return target

    def post(self, code: str, kind: str, *, client: str, now: datetime) -> int:
        """Send `kind` to the session behind `code`; returns the message's id.

        NoSuchRemote (counted, as `resolve`), RemoteClosed when the session is no longer
        active, TooManyMessages over the rate."""
        kind = check.one_of("The feedback", kind, FEEDBACK_KINDS)
        with transaction(self.engine, write=True) as conn:
            target = self._target(conn, code, client=client, now=now, lock=True)
            message_id = None if target is None else self._send(conn, target, kind, now)
        if message_id is None:
            raise NoSuchRemote()
        return message_id

    # ---- helpers ---------------------------------------------------------------------------

    def _target(
        self, conn: Connection, code: str, *, client: str, now: datetime, lock: bool = False
    ) -> RemoteTarget | None:
        """The session behind `code`, or None for a wrong code, which is counted against the
        client (TooManyGuesses once it has tried too many)."""
        now = check.moment("The time", now)
        key = client_key(client)
        since = now - GUESS_WINDOW
        guesses = conn.execute(
            select(func.count())
            .select_from(FailedLoginRow)
            .where(FailedLoginRow.key == key, FailedLoginRow.at > since)
        ).scalar_one()
        if guesses >= GUESSES_PER_HOUR:
            raise TooManyGuesses()
        canonical = normalise_code(code)
        row = None
        if canonical is not None:
            query = (
                select(RemoteRow.session_id, SessionRow.status, SessionRow.mode)
                .join(SessionRow, SessionRow.id == RemoteRow.session_id)
                .where(RemoteRow.code == canonical, RemoteRow.expires_at > now)
            )
            row = conn.execute(query.with_for_update() if lock else query).first()
        if row is None:
            # Counted in the same table as failed sign-ins, so every process counts the same
            # guesses; the client's own older ones go at the same time.
            conn.execute(
                delete(FailedLoginRow).where(FailedLoginRow.key == key, FailedLoginRow.at <= since)
            )
            conn.execute(insert(FailedLoginRow), {"key": key, "at": now})
            return None
        return RemoteTarget(
            session_id=row.session_id,
            status=cast("SessionStatus", row.status),
            mode=cast("Mode", row.mode),
        )

    @staticmethod
    def _send(conn: Connection, target: RemoteTarget, kind: str, now: datetime) -> int:
        if not target.active:
            raise RemoteClosed("This session has ended; thank you, and rest a moment.")
        recent = conn.execute(
            select(func.count())
            .select_from(RemoteMessageRow)
            .where(
                RemoteMessageRow.session_id == target.session_id,
                RemoteMessageRow.sent_at > now - MESSAGE_WINDOW,
            )
        ).scalar_one()
        if recent >= MESSAGES_PER_WINDOW:
            raise TooManyMessages()
        message_id = conn.execute(
            insert(RemoteMessageRow).returning(RemoteMessageRow.id),
            {"session_id": target.session_id, "kind": kind, "sent_at": now},
        ).scalar_one()
        return int(message_id)

    @staticmethod
    def _insert_code(conn: Connection, session_id: str, now: datetime) -> tuple[str, datetime]:
        expires_at = now + CODE_LIFETIME
        for _ in range(_NEW_CODE_TRIES):
            code = _new_code()
            taken = conn.execute(select(RemoteRow.code).where(RemoteRow.code == code)).first()
            if taken is None:
                conn.execute(
                    insert(RemoteRow),
                    {
                        "code": code,
                        "session_id": session_id,
                        "created_at": now,
                        "expires_at": expires_at,
                    },
                )
                return code, expires_at
        raise StoreError("No free remote code could be found; try again.")  # pragma: no cover

    @staticmethod
    def _last_id(conn: Connection, session_id: str) -> int:
        last = conn.execute(
            select(func.max(RemoteMessageRow.id)).where(RemoteMessageRow.session_id == session_id)
        ).scalar()
        return int(last or 0)
