"""What an outside probe found, at the store, on SQLite and PostgreSQL: text neither database
keeps is one sentence (never a driver's error), and a restore refuses a damaged file or a
login it could never match in one sentence each, leaving the database as it was."""

from __future__ import annotations

import gzip
import hashlib
import json
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import pytest
from sqlalchemy import func, select

from backrub.core.models import Focus
from backrub.store.accounts import AccountStore
from backrub.store.backup import BackupError, restore_backup, write_backup
from backrub.store.errors import StoreError
from backrub.store.tables import LoginRow, SessionRow, UserRow

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from backrub.store import SessionStore

NOW = datetime(2025, 3, 2, 8, 0, tzinfo=UTC)
HASH = "$argon2id$v=19$m=65536,t=3,p=4$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaGhhc2g"
PLAIN = "must be plain text, without NUL characters or lone surrogates."


# A byte a command line could not decode arrives as a lone surrogate ("\udcff").
@pytest.mark.parametrize("bad", ["a\x00b", "a\udcffb", "\ud800"])
def test_text_no_database_keeps_is_one_sentence(
    store: SessionStore,
    new_session: Callable[..., str],
    values: Callable[..., dict[str, Any]],
    bad: str,
) -> None:
    session = new_session()
    with pytest.raises(StoreError) as raised:
        store.finish(
            session, status="stopped", seconds_done=60, tension_after=3, note=bad, ended_at=NOW
        )
    assert raised.value.message == f"The note {PLAIN}"
    with pytest.raises(StoreError) as raised:
        store.create(**values(focus=(Focus(bad, 5),)))
    assert raised.value.message == f"A focus region {PLAIN}"
    # Nothing was written: the session is as it was, and still ends.
    assert store.get(session).status == "active"
    store.finish(
        session, status="stopped", seconds_done=60, tension_after=3, note="ok", ended_at=NOW
    )
    assert store.get(session).note == "ok"


def test_an_address_with_a_nul_finds_no_account(store: SessionStore) -> None:
    accounts = AccountStore(store.engine)
    accounts.create_user(email="ann@example.org", password_hash=HASH, now=NOW)
    assert accounts.user_by_email("ann\x00@example.org") is None
    assert accounts.user_by_email("ann@example.org") is not None


# ---- restore ----------------------------------------------------------------------------------


def backed_up(store: SessionStore, new_session: Callable[..., str], path: Path) -> Path:
    """A backup of `store`'s database with an account, a signed-in browser and a session."""
    accounts = AccountStore(store.engine)
    user = accounts.create_user(email="ann@example.org", password_hash=HASH, now=NOW)
    accounts.open_login(
        user_id=user.id,
        token_hash=hashlib.sha256(b"a token").hexdigest(),
        now=NOW,
        expires_at=NOW + timedelta(days=30),
    )
    new_session()
    write_backup(store.engine, path, now=NOW)
    return path


def rows(store: SessionStore) -> tuple[int, ...]:
    with store.engine.connect() as conn:
        return tuple(
            conn.execute(select(func.count()).select_from(table)).scalar_one()
            for table in (UserRow, LoginRow, SessionRow)
        )


@pytest.mark.parametrize("damage", ["crc", "length", "cut"])
def test_a_damaged_gzip_is_one_sentence(
    store: SessionStore, new_session: Callable[..., str], tmp_path: Path, damage: str
) -> None:
    good = backed_up(store, new_session, tmp_path / "good.gz").read_bytes()
    # The gzip trailer (CRC-32, then the length) is read after the last line: found last.
    bad = bytearray(good)
    if damage == "crc":
        bad[-8] ^= 0xFF
    elif damage == "length":
        bad[-1] ^= 0xFF
    else:
        del bad[-4:]
    path = tmp_path / "bad.gz"
    path.write_bytes(bytes(bad))
    before = rows(store)
    with pytest.raises(BackupError) as raised:
        restore_backup(store.engine, path, replace=True)
    message = raised.value.message
    assert message.startswith(
        "The backup cannot be restored: it is not a backrub backup, or it is damaged or cut "
        "short (after line "
    )
    assert message.endswith("); nothing was restored.")
    assert message.count("cannot be restored") == 1 and message.count("nothing was") == 1
    assert rows(store) == before


@pytest.mark.parametrize("token_hash", ["g" * 64, "A" * 64, "é" * 64, "0" * 63 + "\n"])
def test_a_login_whose_token_hash_is_not_hexadecimal_is_refused(
    store: SessionStore, new_session: Callable[..., str], tmp_path: Path, token_hash: str
) -> None:
    good = backed_up(store, new_session, tmp_path / "good.gz")
    lines = [json.loads(x) for x in gzip.decompress(good.read_bytes()).splitlines()]
    login = next(x["row"] for x in lines if x.get("table") == "logins")
    login["token_hash"] = token_hash
    path = tmp_path / "bad.gz"
    path.write_bytes(gzip.compress(b"".join(json.dumps(x).encode() + b"\n" for x in lines)))
    before = rows(store)
    with pytest.raises(BackupError) as raised:
        restore_backup(store.engine, path, replace=True)
    number = next(n for n, x in enumerate(lines, 1) if x.get("table") == "logins")
    assert raised.value.message == (
        f"The backup cannot be restored: line {number} is wrong (a login's token hash must be "
        "64 lower-case hexadecimal characters); nothing was restored."
    )
    assert rows(store) == before
