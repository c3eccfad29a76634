"""Accounts, when backrub serves beyond this computer: users, signed-in browsers and failed
sign-ins. The only code that reads and writes those tables.

Passwords arrive here already hashed and sign-in tokens as their SHA-256: this module never
sees a secret. A user's id is the owner of their sessions (`SessionStore(engine, user_id)`).
Throttling counts live in the database, so every app process counts the same attempts.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any, NamedTuple

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from backrub.store.engine import transaction
from backrub.store.errors import StoreError
from backrub.store.repository import delete_sessions
from backrub.store.tables import FailedLoginRow, LoginRow, SessionRow, UserRow

if TYPE_CHECKING:
    from datetime import datetime

    from sqlalchemy import ColumnElement, Engine


class AccountTaken(StoreError):
    """An account with this email address exists already."""


class User(NamedTuple):
    id: str
    email: str
    password_hash: str


class AccountStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    # ---- users ------------------------------------------------------------------------------

    def create_user(self, *, email: str, password_hash: str, now: datetime) -> User:
        """A new account; `now` is also when its owner consented to backrub keeping their
        health-related answers (the sign-up form asks)."""
        user = User(uuid.uuid4().hex, email, password_hash)
        values = {**user._asdict(), "created_at": now, "consent_at": now}
        try:
            with transaction(self.engine, write=True) as conn:
                conn.execute(insert(UserRow), values)
        except StoreError as error:
            if isinstance(error.__cause__, IntegrityError):
                raise AccountTaken(
                    "An account with this email address exists already; sign in instead."
                ) from error
            raise
        return user

    def user_by_email(self, email: str) -> User | None:
        if "\x00" in email:
            return None  # no address holds one, and PostgreSQL would refuse to look
        return self._user(UserRow.email == email)

    def user_by_id(self, user_id: str) -> User | None:
        return self._user(UserRow.id == user_id)

    def _user(self, where: ColumnElement[bool]) -> User | None:
        with transaction(self.engine, write=False) as conn:
            row = conn.execute(
                select(UserRow.id, UserRow.email, UserRow.password_hash).where(where)
            ).first()
        return None if row is None else User(*row)

    def set_password(self, user_id: str, password_hash: str, *, keep_login: str) -> None:
        """A new password; every other signed-in browser of the user is signed out."""
        with transaction(self.engine, write=True) as conn:
            conn.execute(
                update(UserRow).where(UserRow.id == user_id).values(password_hash=password_hash)
            )
            conn.execute(
                delete(LoginRow).where(
                    LoginRow.user_id == user_id, LoginRow.token_hash != keep_login
                )
            )

    def delete_user(self, user_id: str, *, failure_keys: tuple[str, ...] = ()) -> int:
        """The account and everything it owns, in one transaction; returns the sessions deleted.
        `failure_keys` are the account's own failed sign-ins."""
        with transaction(self.engine, write=True) as conn:
            sessions = delete_sessions(conn, SessionRow.owner == user_id)
            conn.execute(delete(LoginRow).where(LoginRow.user_id == user_id))
            conn.execute(delete(FailedLoginRow).where(FailedLoginRow.key.in_(failure_keys)))
            conn.execute(delete(UserRow).where(UserRow.id == user_id))
        return sessions

    def export(self, user_id: str) -> dict[str, Any]:
        """What the account itself holds (its sessions are exported by their store): the
        address, when it was made and consent given, and its signed-in browsers (when, not
        their tokens)."""
        with transaction(self.engine, write=False) as conn:
            user = conn.execute(
                select(UserRow.email, UserRow.created_at, UserRow.consent_at).where(
                    UserRow.id == user_id
                )
            ).one()
            logins = conn.execute(
                select(LoginRow.created_at, LoginRow.expires_at)
                .where(LoginRow.user_id == user_id)
                .order_by(LoginRow.created_at)
            ).all()
        return {
            "email": user.email,
            "created_at": user.created_at.isoformat(),
            "consent_at": user.consent_at.isoformat(),
            "logins": [
                {"created_at": a.isoformat(), "expires_at": b.isoformat()} for a, b in logins
            ],
        }

    # ---- signed-in browsers -----------------------------------------------------------------

    def open_login(
        self, *, user_id: str, token_hash: str, now: datetime, expires_at: datetime
    ) -> None:
        with transaction(self.engine, write=True) as conn:
            # Expired logins are swept on each sign-in, so the table does not grow for ever.
            conn.execute(delete(LoginRow).where(LoginRow.expires_at < now))
            conn.execute(
                insert(LoginRow),
                {
                    "token_hash": token_hash,
                    "user_id": user_id,
                    "created_at": now,
                    "expires_at": expires_at,
                },
            )

    def user_for_login(self, token_hash: str, *, now: datetime) -> User | None:
        """Whose browser this is, or None for an unknown, signed-out or expired token."""
        with transaction(self.engine, write=False) as conn:
            row = conn.execute(
                select(UserRow.id, UserRow.email, UserRow.password_hash)
                .join(LoginRow, LoginRow.user_id == UserRow.id)
                .where(LoginRow.token_hash == token_hash, LoginRow.expires_at > now)
            ).first()
        return None if row is None else User(*row)

    def close_login(self, token_hash: str) -> None:
        with transaction(self.engine, write=True) as conn:
            conn.execute(delete(LoginRow).where(LoginRow.token_hash == token_hash))

    # ---- throttling -------------------------------------------------------------------------

    def failures_since(self, keys: tuple[str, ...], since: datetime) -> dict[str, int]:
        """How many failed sign-ins each key has had since `since`."""
        with transaction(self.engine, write=False) as conn:
            rows = conn.execute(
                select(FailedLoginRow.key, func.count())
                .where(FailedLoginRow.key.in_(keys), FailedLoginRow.at >= since)
                .group_by(FailedLoginRow.key)
            ).all()
        counts = dict.fromkeys(keys, 0)
        counts.update({str(key): int(count) for key, count in rows})
        return counts

    def record_failure(
        self, keys: tuple[str, ...], *, now: datetime, forget_before: datetime
    ) -> None:
        with transaction(self.engine, write=True) as conn:
            conn.execute(delete(FailedLoginRow).where(FailedLoginRow.at < forget_before))
            conn.execute(insert(FailedLoginRow), [{"key": key, "at": now} for key in keys])
