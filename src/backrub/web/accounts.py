"""Accounts when backrub serves beyond this computer: who is signed in, passwords, throttling.

- Passwords are hashed with argon2id (argon2-cffi's defaults: 64 MiB, 3 passes, 4 lanes —
  above OWASP ASVS's minimum of 19 MiB, 2 passes, 1 lane). A sign-in for an unknown address
  verifies against a dummy hash, so the answer takes as long as for a real one.
- A signed-in browser holds a random token in the `__Host-backrub_login` cookie (Secure,
  HttpOnly, SameSite=Lax, Path=/); the database keeps only its SHA-256, so a copy of the
  database signs no one in. Every sign-in makes a new token; signing out deletes it.
- Failed sign-ins are counted per account and per client address in the database (all app
  processes share the count): after `FAILURE_LIMIT` in an hour, sign-in answers 429 for that
  account or client until the hour has passed — even with the right password.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import threading
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, NamedTuple

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from backrub.core.errors import BadInput
from backrub.store.accounts import AccountStore, User

if TYPE_CHECKING:
    from sqlalchemy import Engine

LOGIN_COOKIE = "__Host-backrub_login"
LOGIN_DAYS = 30
FAILURE_LIMIT = 100
FAILURE_WINDOW = timedelta(hours=1)
PASSWORD_MIN = 12
PASSWORD_MAX = 128
EMAIL_MAX = 254
# No spaces or control characters (PostgreSQL refuses NUL; the others no address has).
_EMAIL_PART = r"[^@\s\x00-\x1f\x7f-\x9f]+"
_EMAIL = re.compile(rf"{_EMAIL_PART}@{_EMAIL_PART}\.{_EMAIL_PART}")
_HASHER = PasswordHasher()
# Each hash or check takes 64 MiB for a moment: at most this many at once in a process, so a
# burst of sign-ins waits its turn instead of exhausting memory (the thread pool has 40 threads).
_HASHING = threading.BoundedSemaphore(2)
SIGN_UPS_PER_HOUR = 20
# Verified against when the address is unknown, so that answer is no faster (made on first use:
# nothing is built at import).
_dummy_hash: str | None = None

WRONG_PASSWORD = "The email address or the password is wrong."  # noqa: S105 - a sentence
THROTTLED = (
    "Too many failed sign-ins for this account or from this device; wait an hour, then try again."
)


TOO_MANY_SIGN_UPS = "Too many new accounts from this device; wait an hour, then try again."


class SignInRequired(Exception):
    """The request needs a signed-in account (the web answers 401, or sends a page to /signin)."""


class WrongPassword(BadInput):
    def __init__(self) -> None:
        super().__init__(WRONG_PASSWORD)


class Throttled(BadInput):
    def __init__(self, message: str = THROTTLED) -> None:
        super().__init__(message)


class SignedIn(NamedTuple):
    user: User
    token: str


def now() -> datetime:
    return datetime.now(UTC)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def normal_email(email: str) -> str:
    """The address as stored: trimmed and lower-cased; one sentence when it is not one."""
    value = email.strip().lower()
    if len(value) > EMAIL_MAX or _EMAIL.fullmatch(value) is None:
        raise BadInput(
            "email must be an email address such as name@example.org "
            f"(at most {EMAIL_MAX} characters)."
        )
    return value


def check_password(password: str) -> str:
    if not PASSWORD_MIN <= len(password) <= PASSWORD_MAX:
        raise BadInput(
            f"password must be {PASSWORD_MIN} to {PASSWORD_MAX} characters long "
            f"(got {len(password)}); a few words with spaces make a good one."
        )
    return password


def _throttle_keys(email: str, client: str) -> tuple[str, str]:
    # Hashed: a mistyped address or a client's IP is not kept in clear.
    return (
        "account:" + hashlib.sha256(email.encode()).hexdigest()[:48],
        "client:" + hashlib.sha256(client.encode()).hexdigest()[:48],
    )


def _verifies(password_hash: str, password: str) -> bool:
    with _HASHING:
        try:
            return _HASHER.verify(password_hash, password)
        except (VerificationError, InvalidHashError):
            return False


def _as_long_as_a_check(password: str) -> None:
    """For an unknown address: the same work as checking a real password, so the refusal takes
    as long and says nothing about which addresses have accounts."""
    global _dummy_hash
    if _dummy_hash is None:
        with _HASHING:
            _dummy_hash = _HASHER.hash(secrets.token_urlsafe(16))
    _verifies(_dummy_hash, password)


def _hash(password: str) -> str:
    with _HASHING:
        return _HASHER.hash(check_password(password))


class Accounts:
    """Sign up, sign in and out, change the password, delete the account. Blocking calls (the
    hash is deliberately slow): routes run them in the thread pool."""

    def __init__(self, engine: Engine) -> None:
        self.store = AccountStore(engine)

    def _open(self, user: User) -> SignedIn:
        token = secrets.token_urlsafe(32)
        moment = now()
        self.store.open_login(
            user_id=user.id,
            token_hash=token_hash(token),
            now=moment,
            expires_at=moment + timedelta(days=LOGIN_DAYS),
        )
        return SignedIn(user, token)

    def sign_up(self, *, email: str, password: str, client: str) -> SignedIn:
        address = normal_email(email)
        check_password(password)
        # New accounts per client, counted with the failed sign-ins (shared by every process):
        # no one device makes accounts, or probes which addresses have one, without end.
        key = ("signup:" + hashlib.sha256(client.encode()).hexdigest()[:48],)
        moment = now()
        if self.store.failures_since(key, moment - FAILURE_WINDOW)[key[0]] >= SIGN_UPS_PER_HOUR:
            raise Throttled(TOO_MANY_SIGN_UPS)
        self.store.record_failure(key, now=moment, forget_before=moment - FAILURE_WINDOW)
        user = self.store.create_user(email=address, password_hash=_hash(password), now=moment)
        return self._open(user)

    def sign_in(self, *, email: str, password: str, client: str) -> SignedIn:
        address = email.strip().lower()
        keys = _throttle_keys(address, client)
        moment = now()
        counts = self.store.failures_since(keys, moment - FAILURE_WINDOW)
        if max(counts.values()) >= FAILURE_LIMIT:
            raise Throttled
        user = self.store.user_by_email(address)
        if user is None:
            _as_long_as_a_check(password)
        if user is None or not _verifies(user.password_hash, password):
            self.store.record_failure(keys, now=moment, forget_before=moment - FAILURE_WINDOW)
            raise WrongPassword
        return self._open(user)

    def user_for(self, token: str | None) -> User | None:
        """Whose browser this sign-in token is; None for a missing, malformed, unknown,
        signed-out or expired one."""
        if not token or len(token) > 100:
            return None
        return self.store.user_for_login(token_hash(token), now=now())

    def sign_out(self, token: str | None) -> None:
        if token and len(token) <= 100:
            self.store.close_login(token_hash(token))

    def change_password(self, user: User, *, token: str, current: str, new: str) -> None:
        """A new password; every other browser signed in to this account is signed out."""
        if not _verifies(user.password_hash, current):
            raise WrongPassword
        self.store.set_password(user.id, _hash(new), keep_login=token_hash(token))

    def delete(self, user: User, *, password: str) -> int:
        """The account and all its sessions; the password is asked again for this."""
        if not _verifies(user.password_hash, password):
            raise WrongPassword
        return self.store.delete_user(user.id, failure_keys=_throttle_keys(user.email, "")[:1])

    def export(self, user: User) -> dict[str, Any]:
        return self.store.export(user.id)
