"""Whose browsers a batch of the player's events come from, looked up at once (accounts on)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from backrub.store.accounts import AccountStore

if TYPE_CHECKING:
    from backrub.store import SessionStore

NOW = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)
HASH = "$argon2id$v=19$m=65536,t=3,p=4$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA"  # a stand-in


def test_a_sign_in_finds_its_person_until_signed_out_or_expired(store: SessionStore) -> None:
    accounts = AccountStore(store.engine)
    ann = accounts.create_user(email="ann@example.org", password_hash=HASH, now=NOW)
    bob = accounts.create_user(email="bob@example.org", password_hash=HASH, now=NOW)
    later = NOW + timedelta(days=30)
    for user, token in ((ann, "a1"), (ann, "a2"), (bob, "b1"), (bob, "gone")):
        accounts.open_login(user_id=user.id, token_hash=token * 8, now=NOW, expires_at=later)
    accounts.close_login("gone" * 8)  # signed out
    accounts.open_login(user_id=bob.id, token_hash="old" * 8, now=NOW, expires_at=NOW)  # expired
    asked = ["a1" * 8, "a2" * 8, "b1" * 8, "gone" * 8, "old" * 8, "never" * 8]
    found = {t: accounts.user_for_login(t, now=NOW + timedelta(minutes=1)) for t in asked}
    # Each known, open sign-in its person (Ann from either browser); the rest no one.
    assert found == {
        "a1" * 8: ann,
        "a2" * 8: ann,
        "b1" * 8: bob,
        "gone" * 8: None,
        "old" * 8: None,
        "never" * 8: None,
    }
